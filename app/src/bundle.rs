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

    /// Both bundles.
    pub const ALL: [Bundle; 2] = [Bundle::Admin, Bundle::Public];

    /// The name of its directory in `/pkg` and of its main files there: `<name>/<name>.js`,
    /// `<name>/<name>_bg.wasm`. The directory also holds the lazy routes' files ([`LAZY_LOADER`],
    /// [`LAZY_MANIFEST`], one `<split point>.pack` per route).
    pub fn output_name(self) -> &'static str {
        match self {
            Bundle::Admin => "nest",
            Bundle::Public => "nest-public",
        }
    }
}

/// The script, in a bundle's directory, that fetches its lazy routes' files (written by
/// `nest-wasm-split`, `frontend/split`).
pub const LAZY_LOADER: &str = "__wasm_split.js";

/// The list, in a bundle's directory, of the files each lazy route needs: a JSON object from the
/// route's split point to its files' names, its pack `<split point>.pack` (written by
/// `nest-wasm-split`).
pub const LAZY_MANIFEST: &str = "__wasm_split_manifest.json";

/// Each bundle's lazy-route files ([`LAZY_MANIFEST`]), read by the server at start: a page that
/// renders a lazy route names that route's files in `<link rel="preload">` ([`preload`]), so the
/// browser fetches them alongside the main module and hydration does not wait for a second
/// round trip.
#[cfg(feature = "ssr")]
#[derive(Clone, Debug, Default)]
pub struct LazyFiles {
    admin: Option<BundleFiles>,
    public: Option<BundleFiles>,
}

/// One bundle's lazy-route files: where they are served, and each split point's files.
#[cfg(feature = "ssr")]
#[derive(Clone, Debug)]
struct BundleFiles {
    /// `<asset root>/pkg/<bundle>`.
    dir: String,
    files: std::sync::Arc<std::collections::HashMap<String, Vec<String>>>,
}

#[cfg(feature = "ssr")]
impl LazyFiles {
    /// From each bundle's manifest (`None`: a bundle without one), its files served under
    /// `<asset root>/pkg/<bundle>/`.
    pub fn new(
        asset_root: &str,
        manifest: impl Fn(Bundle) -> Option<std::collections::HashMap<String, Vec<String>>>,
    ) -> LazyFiles {
        let of = |bundle: Bundle| {
            manifest(bundle).map(|files| BundleFiles {
                dir: format!("{asset_root}/pkg/{}", bundle.output_name()),
                files: std::sync::Arc::new(files),
            })
        };
        LazyFiles {
            admin: of(Bundle::Admin),
            public: of(Bundle::Public),
        }
    }

    /// Provides `bundle`'s files to the page being rendered, for [`preload`].
    pub fn provide(&self, bundle: Bundle) {
        let files = match bundle {
            Bundle::Admin => &self.admin,
            Bundle::Public => &self.public,
        };
        if let Some(files) = files {
            provide_context(files.clone());
        }
    }
}

/// Names the files of the lazy route `split` of the page being rendered, and the loader that
/// instantiates them, in `<link rel="preload">` in its `<head>` (through `leptos_meta`; nothing
/// is rendered in place, so the browser's hydration sees the same body).
#[cfg(feature = "ssr")]
pub fn preload(split: &str) {
    use leptos_meta::Link;
    let Some(bundle) = use_context::<BundleFiles>() else {
        return;
    };
    for file in bundle.files.get(split).into_iter().flatten() {
        // `crossorigin`: the loader fetches in CORS mode; a preload in another mode is not reused.
        let _ = view! {
            <Link
                rel="preload"
                href=format!("{}/{file}", bundle.dir)
                as_="fetch"
                crossorigin="anonymous"
            />
        }
        .to_html();
    }
    let _ = view! { <Link rel="modulepreload" href=format!("{}/{LAZY_LOADER}", bundle.dir)/> }
        .to_html();
}

/// A route fallback: the other bundle's page at this address is loaded in full (in the
/// browser), and a path neither bundle serves gets [`crate::pages::not_found::NotFound`].
#[component]
pub fn LeavesBundle(this: Bundle) -> impl IntoView {
    crate::components::layout::page_hydrated();
    let location = leptos_router::hooks::use_location();
    let path = location.pathname.get_untracked();
    if Bundle::of(&path) == this {
        // A path this bundle should serve but matched no route: not found.
        return crate::pages::not_found::NotFound().into_any();
    }
    // Only the dashboard renders unknown paths (the server's fallback), so this is a client-side
    // navigation to the other bundle's page.
    let target = crate::auth::with_query(&path, &location.search.get_untracked());
    Effect::new(move |_| crate::auth::go(&target));
    view! { <p class="muted" role="status">"Loading…"</p> }.into_any()
}
