//! The dashboard frame: top bar with the signed-in admin, sidebar navigation of the pages that
//! exist, and the content. Public pages (login, setup, …) get a plain frame, [`PublicLayout`].

use leptos::prelude::*;
use leptos_router::components::A;
use leptos_router::hooks::use_location;

use leptos::server_fn::ServerFn;

use crate::auth::{Logout, current_caller, go};
use crate::models::AdminRole;
use crate::models::IntegrationMode;

/// A page in the sidebar: where it lives and what it is called.
struct NavItem {
    href: &'static str,
    label: &'static str,
    superadmin_only: bool,
}

/// The sidebar, in the spec's order. Only pages that exist are listed.
const NAV: &[NavItem] = &[
    NavItem {
        href: "/",
        label: "Overview",
        superadmin_only: false,
    },
    NavItem {
        href: "/organizations",
        label: "Organizations",
        superadmin_only: false,
    },
    NavItem {
        href: "/vpses",
        label: "VPSes",
        superadmin_only: false,
    },
    NavItem {
        href: "/alerts",
        label: "Alerts",
        superadmin_only: false,
    },
    NavItem {
        href: "/jobs",
        label: "Jobs",
        superadmin_only: false,
    },
    NavItem {
        href: "/waitlist",
        label: "Waitlist",
        superadmin_only: false,
    },
    NavItem {
        href: "/billing",
        label: "Billing",
        superadmin_only: false,
    },
    NavItem {
        href: "/reconcile",
        label: "Reconciliation",
        superadmin_only: false,
    },
    NavItem {
        href: "/tiers",
        label: "Tiers",
        superadmin_only: false,
    },
    NavItem {
        href: "/admins",
        label: "Admins",
        superadmin_only: true,
    },
    NavItem {
        href: "/audit",
        label: "Audit log",
        superadmin_only: false,
    },
];

/// A button that signs out and goes to the login page: a form that posts, so it signs out
/// before hydration and without JavaScript too (the server then redirects to `/login`).
#[component]
pub fn SignOutButton() -> impl IntoView {
    let action = ServerAction::<Logout>::new();
    Effect::new(move |_| {
        if action.value().get().is_some() {
            go("/login");
        }
    });
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        action.dispatch(Logout {});
    };
    view! {
        <form class="sign-out" method="post" action=Logout::url() on:submit=submit>
            <button type="submit" class="button secondary">"Sign out"</button>
        </form>
    }
}

/// The error of a form posted without JavaScript (or before the page hydrated). The server
/// redirects such a post back to its page with the error in the URL (server_fn's
/// `__path`/`__err`); it is shown at the top of the page, and goes with the next navigation.
#[component]
pub fn PostedError() -> impl IntoView {
    let query = leptos_router::hooks::use_query_map();
    let message = move || {
        query.with(|q| {
            q.get("__err").map(|err| {
                leptos::server_fn::error::ServerFnUrlError::<crate::error::AppError>::decode_err(
                    &err,
                )
                .to_string()
            })
        })
    };
    view! {
        {move || message().map(|m| view! { <p class="form-error" role="alert" data-testid="posted-error">{m}</p> })}
    }
}

/// Whether the page inside the frame is interactive: set by the page's route once it is
/// hydrated ([`page_hydrated`]), which for a lazy route is after its code has arrived. The frame
/// shows it as `data-hydrated`; the end-to-end tests wait for `"true"` before they type or click.
#[derive(Clone, Copy)]
struct PageHydrated(RwSignal<bool>);

fn provide_page_hydrated() -> RwSignal<bool> {
    let hydrated = RwSignal::new(false);
    provide_context(PageHydrated(hydrated));
    hydrated
}

/// Marks the page as interactive once effects run, that is once the view being built is
/// hydrated (effects run only in the browser). Every route view calls it.
pub fn page_hydrated() {
    if let Some(PageHydrated(hydrated)) = use_context::<PageHydrated>() {
        // After the tasks already queued, among them the hydration of the page's view (this runs
        // as it starts): what was typed is put back over what hydrating the fields wrote.
        Effect::new(move |_| {
            set_timeout(
                move || {
                    crate::components::typed::restore();
                    hydrated.set(true);
                },
                std::time::Duration::ZERO,
            );
        });
    }
}

/// The dashboard frame around every page.
#[component]
pub fn Layout(children: Children) -> impl IntoView {
    let (menu_open, set_menu_open) = signal(true);
    let location = use_location();
    let hydrated = provide_page_hydrated();
    let caller = crate::codec::resource(
        || (),
        |()| async move {
            // The change count first: the page's data is read after it.
            let seq = crate::components::live::live_seq().await.ok();
            let caller = current_caller().await.ok()?;
            let cloud = cloud_mode().await.ok();
            Some((caller, cloud, seq))
        },
    );
    let is_superadmin =
        move || caller.get().flatten().and_then(|(c, _, _)| c.role) == Some(AdminRole::Superadmin);
    crate::components::live::provide_live(
        move || caller.get().flatten().and_then(|(_, _, seq)| seq),
        hydrated,
    );

    view! {
        <div
            class="shell"
            class:menu-collapsed=move || !menu_open.get()
            data-hydrated=move || hydrated.get().to_string()
        >
            <header class="topbar">
                <button
                    type="button"
                    class="menu-toggle"
                    aria-controls="sidebar"
                    aria-expanded=move || menu_open.get().to_string()
                    on:click=move |_| set_menu_open.update(|open| *open = !*open)
                >
                    {move || if menu_open.get() { "Hide menu" } else { "Show menu" }}
                </button>
                <a class="brand" href="/">{crate::brand_name()}</a>
                <span class="brand-sub">"control plane"</span>
                <Transition fallback=|| ()>
                    {move || caller.get().flatten().map(|(c, cloud, _)| view! {
                        {(cloud == Some(IntegrationMode::Simulated)).then(|| view! {
                            <span
                                class="badge sim"
                                data-testid="simulated-cloud"
                                title="HETZNER_API_TOKEN is not set: servers are simulated on loopback addresses"
                            >
                                "Simulated cloud"
                            </span>
                        })}
                        <div class="user-menu">
                            <span data-testid="signed-in-as">
                                {c.email.clone()}
                                " · "
                                {c.role.map(|r| r.as_str()).unwrap_or("no role")}
                            </span>
                            <a href="/account" class="account-link">"Your account"</a>
                            <SignOutButton/>
                        </div>
                    })}
                </Transition>
            </header>
            <nav id="sidebar" class="sidebar" aria-label="Main" hidden=move || !menu_open.get()>
                <Transition fallback=|| ()>
                <ul>
                    {NAV
                        .iter()
                        .map(|item| {
                            let href = item.href;
                            let superadmin_only = item.superadmin_only;
                            let current = move || {
                                let path = location.pathname.get();
                                if href == "/" { path == "/" } else { path.starts_with(href) }
                            };
                            view! {
                                <Show when=move || !superadmin_only || is_superadmin()>
                                    <li>
                                        <A href=href attr:aria-current=move || current().then_some("page")>
                                            {item.label}
                                        </A>
                                    </li>
                                </Show>
                            }
                        })
                        .collect_view()}
                </ul>
                </Transition>
            </nav>
            <main class="content" id="main">
                <PostedError/>
                {children()}
            </main>
        </div>
    }
}

/// The plain frame of the public pages: the brand and the content, no session, no navigation.
#[component]
pub fn PublicLayout(children: Children) -> impl IntoView {
    let hydrated = provide_page_hydrated();
    view! {
        <div class="shell menu-collapsed public" data-hydrated=move || hydrated.get().to_string()>
            <header class="topbar">
                <a class="brand" href="/">{crate::brand_name()}</a>
            </header>
            <main class="content" id="main">
                {children()}
            </main>
        </div>
    }
}

/// Whether servers are real Hetzner servers or simulated ones (for the top bar's badge).
#[server(prefix = "/api", endpoint = "cloud_mode", input = crate::codec::Form, output = crate::codec::Json)]
pub async fn cloud_mode() -> Result<IntegrationMode, crate::error::AppError> {
    let (backend, _req, _admin) = crate::backend::require_admin().await?;
    Ok(backend.system.platform_status().await?.hetzner)
}
