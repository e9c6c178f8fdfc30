//! The two browser bundles: the dashboard's (`nest`) and the public pages' (`nest-public`).
//!
//! Customers open `/signup` and `/pending` on their first visit, and admins pass through
//! `/login`: those pages hydrate a bundle that holds only the public pages and their plain frame,
//! a fraction of the dashboard's size. Each bundle routes its own pages client-side; a link to
//! a page of the other bundle is a full page load (see [`LeavesBundle`]).

use leptos::prelude::*;

/// Pages anyone may open, shown without the dashboard frame: the public bundle's routes. The
/// server's page guard lets them through without a session.
pub const PUBLIC_PAGES: &[&str] = &[
    "/login",
    "/login/code",
    "/login/enrol",
    "/setup",
    "/unauthorized",
    "/set-password",
    "/signup",
    "/pending",
];

/// One of the two browser bundles.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Bundle {
    /// The dashboard: every page behind the admin session, and the not-found page.
    Admin,
    /// [`PUBLIC_PAGES`].
    Public,
}

impl Bundle {
    /// The bundle that serves `path` (a path without query).
    pub fn of(path: &str) -> Bundle {
        if PUBLIC_PAGES.contains(&path) {
            Bundle::Public
        } else {
            Bundle::Admin
        }
    }

    /// The name of its files in `/pkg`: `<name>.js`, `<name>_bg.wasm`.
    pub fn output_name(self) -> &'static str {
        match self {
            Bundle::Admin => "nest",
            Bundle::Public => "nest-public",
        }
    }
}

/// A route fallback: the other bundle's page at this address is loaded in full (in the
/// browser), and a path neither bundle serves gets [`crate::pages::not_found::NotFound`].
#[component]
pub fn LeavesBundle(this: Bundle) -> impl IntoView {
    let location = leptos_router::hooks::use_location();
    let path = location.pathname.get_untracked();
    if Bundle::of(&path) == this {
        // A path this bundle should serve but matched no route: not found.
        return crate::pages::not_found::NotFound().into_any();
    }
    // Only the dashboard renders unknown paths (the server's fallback), so this is a client-side
    // navigation to the other bundle's page.
    let target = format!("{path}{}", location.search.get_untracked());
    Effect::new(move |_| crate::auth::go(&target));
    view! { <p class="muted" role="status">"Loading…"</p> }.into_any()
}
