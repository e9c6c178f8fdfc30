//! Every page as a lazy route: its code is split out of its bundle's main WASM module (by
//! `nest-wasm-split`, `frontend/split`, at build time) and fetched when the page is first shown.
//! The first load of a page fetches the main module and that page's files only: the server
//! names them in `<link rel="preload">` (`bundle::preload`), and the bundle hydrates once they
//! are there (`hydrate_lazy`). A client-side navigation fetches the next page's files (cached
//! for a year, like the rest of the bundle) before it shows the page.
//!
//! If a page's files cannot be fetched on a client-side navigation — the server was updated
//! since this tab loaded, and serves only the new version's files, or the network failed — the
//! page is loaded in full instead, from the server, with the current bundle. If they cannot be
//! fetched for the first page, that page stays as the server rendered it, not hydrated (links
//! and forms then work as they do without JavaScript), rather than reloading in a loop.

use leptos::prelude::*;
use leptos_router::LazyRoute;

/// A page's files could not be fetched.
#[derive(Debug)]
pub struct LoadFailed;

impl From<leptos::wasm_split::SplitLoaderError> for LoadFailed {
    fn from(_: leptos::wasm_split::SplitLoaderError) -> Self {
        LoadFailed
    }
}

/// What a route shows when its page's files could not be fetched (see the module's note).
async fn not_loaded() -> AnyView {
    let hydrating =
        Owner::current_shared_context().is_some_and(|context| context.during_hydration());
    if hydrating {
        leptos::logging::error!("this page's code could not be fetched: it is not interactive");
        return std::future::pending().await;
    }
    let url = leptos_router::hooks::use_url().get_untracked();
    crate::auth::go(&crate::auth::with_query(url.path(), url.search()));
    view! { <p class="muted" role="status">"Loading…"</p> }.into_any()
}

/// `Route, split => page::Component;`: the lazy route `Route` showing `Component`, whose code
/// is the split point `split` (the name of its pack, `<split>.pack`, and its key in the
/// bundle's manifest).
macro_rules! lazy_pages {
    ($($route:ident, $split:ident => $page:path;)*) => {$(
        #[doc = concat!("The lazy route of [`", stringify!($page), "`].")]
        pub struct $route;

        #[allow(non_snake_case)]
        mod $split {
            use super::*;

            #[leptos::wasm_split::wasm_split(
                $split,
                wasm_split_path = ::leptos::wasm_split,
                fallible,
                preload(preload)
            )]
            pub fn view() -> Result<AnyView, LoadFailed> {
                Ok($page().into_any())
            }
        }

        impl LazyRoute for $route {
            fn data() -> Self {
                $route
            }

            async fn view(_this: Self) -> AnyView {
                // A page rendering this route preloads its files.
                #[cfg(feature = "ssr")]
                crate::bundle::preload(stringify!($split));
                match $split::view().await {
                    Ok(view) => {
                        crate::components::layout::page_hydrated();
                        view
                    }
                    Err(LoadFailed) => not_loaded().await,
                }
            }

            async fn preload() {
                // A failure shows when the page is opened: it is then loaded in full.
                let _ = $split::preload().await;
            }
        }
    )*};
}

use crate::pages;

// A split point's code is exported from the WASM module whether its app is used or not, so each
// bundle defines only its own routes (the server renders both).
#[cfg(any(feature = "ssr", not(feature = "public")))]
lazy_pages! {
    Home, home_page => pages::home::HomePage;
    Account, account_page => pages::account::AccountPage;
    Admins, admins_page => pages::admins::AdminsPage;
    Audit, audit_page => pages::audit::AuditPage;
    Organizations, organizations_page => pages::organizations::list::OrganizationsPage;
    NewOrganization, new_organization_page => pages::organizations::new::NewOrganizationPage;
    Organization, organization_page => pages::organizations::detail::OrganizationPage;
    Waitlist, waitlist_page => pages::waitlist::WaitlistPage;
    Tiers, tiers_page => pages::tiers::TiersPage;
    Billing, billing_page => pages::billing::BillingPage;
    InvoicePrint, invoice_print_page => pages::billing::InvoicePrintPage;
    Vpses, vpses_page => pages::vpses::VpsesPage;
    VpsDetail, vps_detail_page => pages::vps_detail::VpsDetailPage;
    Alerts, alerts_page => pages::alerts::AlertsPage;
    Jobs, jobs_page => pages::jobs::JobsPage;
    Reconcile, reconcile_page => pages::reconcile::ReconcilePage;
}

#[cfg(any(feature = "ssr", feature = "public"))]
lazy_pages! {
    Login, login_page => pages::login::LoginPage;
    LoginCode, login_code_page => pages::two_factor::LoginCodePage;
    LoginEnrol, login_enrol_page => pages::two_factor::LoginEnrolPage;
    Setup, setup_page => pages::setup::SetupPage;
    Unauthorized, unauthorized_page => pages::unauthorized::UnauthorizedPage;
    SetPassword, set_password_page => pages::set_password::SetPasswordPage;
    Signup, signup_page => pages::signup::SignupPage;
    Pending, pending_page => pages::pending::PendingPage;
}
