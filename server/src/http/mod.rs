//! The HTTP surface: Leptos pages and server functions, `/healthz`, and the browser bundle.

mod healthz;

use axum::Router;
use axum::routing::get;
use leptos::prelude::provide_context;
use leptos_axum::{LeptosRoutes, generate_route_list};
use tower_http::compression::CompressionLayer;
use tower_http::trace::TraceLayer;

use crate::state::App;

/// Builds the whole application router.
pub fn router(app: App) -> Router {
    let routes = generate_route_list(app::App);
    let backend = app.backend();
    let leptos = app.leptos.clone();

    Router::new()
        .route("/healthz", get(healthz::healthz))
        .leptos_routes_with_context(
            &app,
            routes,
            move || provide_context(backend.clone()),
            move || app::shell(leptos.clone()),
        )
        .fallback(leptos_axum::file_and_error_handler::<App, _>(app::shell))
        .layer(CompressionLayer::new())
        .layer(TraceLayer::new_for_http())
        .with_state(app)
}
