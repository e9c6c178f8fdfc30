//! The browser entry point: hydrates the server-rendered page. Built twice (see `app::bundle`):
//! by default the dashboard's bundle (`nest`), with the `public` feature the public pages'
//! (`nest-public`), which leaves the dashboard's pages out.

/// Called by the generated JS loader once the WASM module is instantiated. Every page is a lazy
/// route (`app::routes`): hydration starts once the page's own code has arrived.
#[wasm_bindgen::prelude::wasm_bindgen]
pub fn hydrate() {
    // Panic messages in the console, in debug builds: release bundles trap at a panic
    // without formatting anything (`-Cpanic=immediate-abort`, see `cargo make build-release`).
    #[cfg(debug_assertions)]
    console_error_panic_hook::set_once();
    // What was typed before this point, and until the page is hydrated, survives hydration.
    app::components::typed::remember();
    #[cfg(not(feature = "public"))]
    leptos::mount::hydrate_lazy(app::AdminApp);
    #[cfg(feature = "public")]
    leptos::mount::hydrate_lazy(app::PublicApp);
}
