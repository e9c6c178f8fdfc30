//! Nest's dashboard: Leptos pages and components, the typed models shared with the server, and
//! the `#[server]` functions (thin: authenticate, validate, call the backend, map errors).
//!
//! Compiled twice: with `ssr` into the `nest` server binary, with `hydrate` into the WASM
//! bundles (one for the dashboard, one for the public pages: see [`bundle`]).

pub mod auth;
pub mod bundle;
pub mod codec;
pub mod components;
pub mod error;
pub mod models;
pub mod pages;

#[cfg(feature = "ssr")]
pub mod backend;

use leptos::prelude::*;
use leptos_meta::{MetaTags, Title, provide_meta_context};
use leptos_router::components::{Route, Router, Routes};
use leptos_router::{SsrMode, path};

use crate::bundle::{Bundle, LeavesBundle};
use crate::components::layout::{Layout, PublicLayout};
use crate::pages::{
    admins::AdminsPage,
    audit::AuditPage,
    home::HomePage,
    login::LoginPage,
    organizations::{detail::OrganizationPage, list::OrganizationsPage, new::NewOrganizationPage},
    set_password::SetPasswordPage,
    setup::SetupPage,
    tiers::TiersPage,
    unauthorized::UnauthorizedPage,
    waitlist::WaitlistPage,
};

/// Where the browser bundle is served from: `/assets/<content hash>` (immutable, cached for a
/// year), provided by the server as context. Without it (no bundle built yet): `/pkg`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AssetRoot(pub String);

/// The HTML document rendered on the server around the app of the requested path's bundle
/// ([`Bundle::of`]; a path no bundle serves gets the dashboard's, whose not-found page it is).
pub fn shell(options: LeptosOptions) -> impl IntoView {
    let root = use_context::<AssetRoot>().map(|r| r.0).unwrap_or_default();
    #[cfg(feature = "ssr")]
    let request = use_context::<http::request::Parts>();
    #[cfg(feature = "ssr")]
    let bundle = request
        .as_ref()
        .map_or(Bundle::Admin, |parts| Bundle::of(parts.uri.path()));
    #[cfg(not(feature = "ssr"))]
    let bundle = Bundle::Admin;
    // The security layer puts this response's CSP nonce in the request; hydration scripts carry it.
    #[cfg(feature = "ssr")]
    if let Some(nonce) = request
        .as_ref()
        .and_then(|parts| parts.extensions.get::<crate::backend::CspNonce>().cloned())
    {
        provide_context(leptos::nonce::Nonce::from_value(nonce.0));
    }
    let mut options = options;
    options.output_name = bundle.output_name().into();
    view! {
        <!DOCTYPE html>
        <html lang="en">
            <head>
                <meta charset="utf-8"/>
                <meta name="viewport" content="width=device-width, initial-scale=1"/>
                <link rel="icon" type="image/svg+xml" href="/favicon.svg"/>
                <AutoReload options=options.clone()/>
                <link rel="stylesheet" href=format!("{root}/pkg/nest.css")/>
                <HydrationScripts options root/>
                <MetaTags/>
            </head>
            <body>
                {match bundle {
                    Bundle::Admin => view! { <AdminApp/> }.into_any(),
                    Bundle::Public => view! { <PublicApp/> }.into_any(),
                }}
            </body>
        </html>
    }
}

/// The page title: "<page> · Nest".
#[component]
fn NestTitle() -> impl IntoView {
    view! {
        <Title formatter=|title: String| if title.is_empty() { "Nest".to_owned() } else { format!("{title} · Nest") }/>
    }
}

/// The dashboard: every page behind the admin session, inside the dashboard frame. Hydrated by
/// the `nest` bundle.
#[component]
pub fn AdminApp() -> impl IntoView {
    provide_meta_context();

    view! {
        <NestTitle/>
        <Router>
            <Layout>
                <Routes fallback=|| view! { <LeavesBundle this=Bundle::Admin/> }>
                    <Route path=path!("/") view=HomePage/>
                    <Route path=path!("/account") view=crate::pages::account::AccountPage/>
                    <Route path=path!("/admins") view=AdminsPage/>
                    <Route path=path!("/audit") view=AuditPage/>
                    <Route path=path!("/organizations") view=OrganizationsPage/>
                    <Route path=path!("/waitlist") view=WaitlistPage/>
                    <Route path=path!("/tiers") view=TiersPage/>
                    <Route path=path!("/billing") view=crate::pages::billing::BillingPage/>
                    <Route path=path!("/billing/invoices/:id") view=crate::pages::billing::InvoicePrintPage/>
                    <Route path=path!("/vpses") view=crate::pages::vpses::VpsesPage/>
                    <Route path=path!("/vpses/:id") view=crate::pages::vps_detail::VpsDetailPage/>
                    <Route path=path!("/alerts") view=crate::pages::alerts::AlertsPage/>
                    <Route path=path!("/jobs") view=crate::pages::jobs::JobsPage/>
                    <Route path=path!("/organizations/new") view=NewOrganizationPage/>
                    <Route path=path!("/organizations/:id") view=OrganizationPage/>
                </Routes>
            </Layout>
        </Router>
    }
}

/// The public pages ([`bundle::PUBLIC_PAGES`]) in their plain frame. Hydrated by the
/// `nest-public` bundle.
#[component]
pub fn PublicApp() -> impl IntoView {
    provide_meta_context();

    view! {
        <NestTitle/>
        <Router>
            <PublicLayout>
                <Routes fallback=|| view! { <LeavesBundle this=Bundle::Public/> }>
                    <Route path=path!("/login") view=LoginPage/>
                    <Route path=path!("/login/code") view=crate::pages::two_factor::LoginCodePage/>
                    <Route path=path!("/login/enrol") view=crate::pages::two_factor::LoginEnrolPage/>
                    <Route path=path!("/setup") view=SetupPage/>
                    <Route path=path!("/unauthorized") view=UnauthorizedPage/>
                    <Route path=path!("/set-password") view=SetPasswordPage/>
                    // Customers' pages are sent whole (their data awaited on the server, not
                    // streamed in by script), so they work before hydration and without JavaScript.
                    <Route path=path!("/signup") view=crate::pages::signup::SignupPage ssr=SsrMode::Async/>
                    <Route path=path!("/pending") view=crate::pages::pending::PendingPage ssr=SsrMode::Async/>
                </Routes>
            </PublicLayout>
        </Router>
    }
}
