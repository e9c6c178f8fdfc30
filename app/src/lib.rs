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
pub mod json;
pub mod models;
pub mod pages;
pub mod posted;
pub mod routes;

#[cfg(feature = "ssr")]
pub mod backend;

use leptos::prelude::*;
use leptos_meta::{Title, provide_meta_context};
use leptos_router::Lazy;
use leptos_router::components::{Route, Router, Routes};
use leptos_router::path;

use crate::bundle::{Bundle, LeavesBundle};
#[cfg(any(feature = "ssr", not(feature = "public")))]
use crate::components::layout::Layout;
#[cfg(any(feature = "ssr", feature = "public"))]
use crate::components::layout::PublicLayout;
use leptos_router::SsrMode;

use crate::routes as page;

/// Where the browser bundle is served from: `/assets/<content hash>` (immutable, cached for a
/// year), provided by the server as context. Without it (no bundle built yet): `/pkg`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AssetRoot(pub String);

/// The HTML document rendered on the server around the app of the requested path's bundle
/// ([`Bundle::of`]; a path no bundle serves gets the dashboard's, whose not-found page it is).
#[cfg(feature = "ssr")]
pub fn shell(options: LeptosOptions) -> impl IntoView {
    let root = use_context::<AssetRoot>().map(|r| r.0).unwrap_or_default();
    let request = use_context::<http::request::Parts>();
    let bundle = request
        .as_ref()
        .map_or(Bundle::Admin, |parts| Bundle::of(parts.uri.path()));
    // The security layer puts this response's CSP nonce in the request; hydration scripts carry it.
    if let Some(nonce) = request
        .as_ref()
        .and_then(|parts| parts.extensions.get::<crate::backend::CspNonce>().cloned())
    {
        provide_context(leptos::nonce::Nonce::from_value(nonce.0));
    }
    if let Some(files) = use_context::<bundle::LazyFiles>() {
        files.provide(bundle);
    }
    let mut options = options;
    // `<name>/<name>.js` and `<name>/<name>_bg.wasm` (see `Bundle::output_name`).
    options.output_name = format!("{0}/{0}", bundle.output_name()).into();
    view! {
        <!DOCTYPE html>
        <html lang="en">
            <head>
                <meta charset="utf-8"/>
                <meta name="viewport" content="width=device-width, initial-scale=1"/>
                <meta name="application-name" content=brand_name()/>
                <link rel="icon" type="image/svg+xml" href="/favicon.svg"/>
                <link rel="stylesheet" href=format!("{root}/pkg/nest.css")/>
                <HydrationScripts options root/>
                <leptos_meta::MetaTags/>
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

/// The platform's name (`NEST_BRAND_NAME`, "Nest" by default). On the server it comes from the
/// configuration, and the page carries it as `<meta name="application-name">`; in the browser
/// it is read back from there, so both render the same name without asking for it.
pub fn brand_name() -> String {
    #[cfg(feature = "ssr")]
    let name = use_context::<backend::Backend>().map(|b| b.brand);
    #[cfg(all(feature = "hydrate", not(feature = "ssr")))]
    let name = leptos::prelude::document()
        .query_selector("meta[name=application-name]")
        .ok()
        .flatten()
        .and_then(|meta| meta.get_attribute("content"));
    #[cfg(not(any(feature = "ssr", feature = "hydrate")))]
    let name = None::<String>;
    name.unwrap_or_else(|| "Nest".to_owned())
}

/// The page title: "<page> · <brand>".
#[component]
fn NestTitle() -> impl IntoView {
    view! {
        <Title formatter=move |title: String| if title.is_empty() { brand_name() } else { format!("{title} · {}", brand_name()) }/>
    }
}

/// The dashboard: every page behind the admin session, inside the dashboard frame. Hydrated by
/// the `nest` bundle.
#[cfg(any(feature = "ssr", not(feature = "public")))]
#[component]
pub fn AdminApp() -> impl IntoView {
    provide_meta_context();

    view! {
        <NestTitle/>
        <Router>
            <Layout>
                // Every page is rendered in full before it is sent (its data awaited on the server, not
                // streamed in by script), so its forms work before hydration and without JavaScript.
                <Routes fallback=|| view! { <LeavesBundle this=Bundle::Admin/> }>
                    <Route path=path!("/") view={Lazy::<page::Home>::new()} ssr=SsrMode::Async/>
                    <Route path=path!("/account") view={Lazy::<page::Account>::new()} ssr=SsrMode::Async/>
                    <Route path=path!("/admins") view={Lazy::<page::Admins>::new()} ssr=SsrMode::Async/>
                    <Route path=path!("/audit") view={Lazy::<page::Audit>::new()} ssr=SsrMode::Async/>
                    <Route path=path!("/organizations") view={Lazy::<page::Organizations>::new()} ssr=SsrMode::Async/>
                    <Route path=path!("/waitlist") view={Lazy::<page::Waitlist>::new()} ssr=SsrMode::Async/>
                    <Route path=path!("/tiers") view={Lazy::<page::Tiers>::new()} ssr=SsrMode::Async/>
                    <Route path=path!("/billing") view={Lazy::<page::Billing>::new()} ssr=SsrMode::Async/>
                    <Route path=path!("/billing/invoices/:id") view={Lazy::<page::InvoicePrint>::new()} ssr=SsrMode::Async/>
                    <Route path=path!("/vpses") view={Lazy::<page::Vpses>::new()} ssr=SsrMode::Async/>
                    <Route path=path!("/vpses/:id") view={Lazy::<page::VpsDetail>::new()} ssr=SsrMode::Async/>
                    <Route path=path!("/alerts") view={Lazy::<page::Alerts>::new()} ssr=SsrMode::Async/>
                    <Route path=path!("/jobs") view={Lazy::<page::Jobs>::new()} ssr=SsrMode::Async/>
                    <Route path=path!("/reconcile") view={Lazy::<page::Reconcile>::new()} ssr=SsrMode::Async/>
                    <Route path=path!("/organizations/new") view={Lazy::<page::NewOrganization>::new()} ssr=SsrMode::Async/>
                    <Route path=path!("/organizations/:id") view={Lazy::<page::Organization>::new()} ssr=SsrMode::Async/>
                </Routes>
            </Layout>
        </Router>
    }
}

/// The public pages ([`bundle::PUBLIC_PAGES`]) in their plain frame. Hydrated by the
/// `nest-public` bundle.
#[cfg(any(feature = "ssr", feature = "public"))]
#[component]
pub fn PublicApp() -> impl IntoView {
    provide_meta_context();

    view! {
        <NestTitle/>
        <Router>
            <PublicLayout>
                <Routes fallback=|| view! { <LeavesBundle this=Bundle::Public/> }>
                    <Route path=path!("/login") view={Lazy::<page::Login>::new()}/>
                    <Route path=path!("/login/code") view={Lazy::<page::LoginCode>::new()}/>
                    <Route path=path!("/login/enrol") view={Lazy::<page::LoginEnrol>::new()}/>
                    <Route path=path!("/setup") view={Lazy::<page::Setup>::new()}/>
                    <Route path=path!("/unauthorized") view={Lazy::<page::Unauthorized>::new()}/>
                    <Route path=path!("/set-password") view={Lazy::<page::SetPassword>::new()}/>
                    // Customers' pages are sent whole (their data awaited on the server, not
                    // streamed in by script), so they work before hydration and without JavaScript.
                    <Route path=path!("/signup") view={Lazy::<page::Signup>::new()} ssr=SsrMode::Async/>
                    <Route path=path!("/pending") view={Lazy::<page::Pending>::new()} ssr=SsrMode::Async/>
                </Routes>
            </PublicLayout>
        </Router>
    }
}
