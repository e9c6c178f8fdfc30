//! The HTTP surface: Leptos pages and server functions, `/healthz`, the browser bundle, and the
//! layers around them (security perimeter, sessions, page guards, the API error shape, and a
//! panic catcher that answers 500 with a reference instead of dropping the connection).

mod api_errors;
pub mod assets;
mod events;
pub use events::{LiveStreams, MAX_STREAMS_PER_SESSION, SESSION_RECHECK};
mod guard;
mod healthz;
pub mod security;

use axum::Router;
use axum::http::StatusCode;
use axum::middleware::from_fn_with_state;
use axum::routing::get;
use leptos::prelude::provide_context;
use leptos_axum::{LeptosRoutes, generate_route_list};
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::compression::CompressionLayer;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;
use tower_sessions::cookie::SameSite;
use tower_sessions::{Expiry, SessionManagerLayer};

use crate::admins::session_store::DbSessionStore;
use crate::state::App;

/// The largest request body let in at all (forms and server-function arguments are small);
/// the server functions' own extractor limit (axum's default, 2 MB) answers a smaller excess
/// with a `400` naming the problem.
pub const MAX_REQUEST_BODY_BYTES: usize = 4 * 1024 * 1024;
/// How long a request may take to produce its response head.
pub const REQUEST_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// The session cookie's name: `__Host-` prefixed (Secure, host-only, Path=/) over https.
pub fn session_cookie_name(https: bool) -> &'static str {
    if https {
        "__Host-nest_session"
    } else {
        "nest_session"
    }
}

/// Applies [`api_errors::map_status`] to server-function paths only.
async fn api_errors_for_api(
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    if req.uri().path().starts_with("/api/") {
        api_errors::map_status(req, next).await
    } else {
        next.run(req).await
    }
}

/// Refuses a request whose declared length is over [`MAX_REQUEST_BODY_BYTES`] before anything
/// reads it: `413`, as an `AppError` on `/api/` like every failed answer there. (A body sent
/// without a length is cut at the limit by `RequestBodyLimitLayer` while it is read.)
async fn refuse_large_bodies(
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let declared = req
        .headers()
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_REQUEST_BODY_BYTES as u64) {
        let message = format!(
            "the request body is larger than {} MiB",
            MAX_REQUEST_BODY_BYTES / (1024 * 1024)
        );
        return if req.uri().path().starts_with("/api/") {
            (
                StatusCode::PAYLOAD_TOO_LARGE,
                axum::Json(app::error::AppError::Transport(message)),
            )
                .into_response()
        } else {
            (StatusCode::PAYLOAD_TOO_LARGE, message).into_response()
        };
    }
    next.run(req).await
}

/// Records every request's duration by matched route template (`unmatched` when no route
/// matched, e.g. static files), method and status (see [`crate::metrics::http_request`]).
async fn track_metrics(
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let route = req
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |m| m.as_str().to_owned());
    let method = crate::metrics::method_label(req.method());
    let started = std::time::Instant::now();
    let response = next.run(req).await;
    crate::metrics::http_request(
        &route,
        method,
        response.status().as_u16(),
        started.elapsed().as_secs_f64(),
    );
    response
}

/// The fallback: a file of the site root, a plain 404 for a file it does not have (a browser
/// asking for `/favicon.ico` gets no page), or the app's not-found page.
fn not_found(
    app: &App,
    context: impl Fn() + Clone + Send + Sync + 'static,
) -> impl Fn(
    axum::http::Uri,
    axum::extract::State<App>,
    axum::extract::Request,
) -> std::pin::Pin<Box<dyn Future<Output = axum::response::Response> + Send>>
+ Clone
+ Send
+ Sync
+ 'static {
    let site_root = app.config.site_root.clone();
    // The shell gives unknown paths the dashboard's bundle (see `app::bundle`).
    let page = leptos_axum::file_and_error_handler_with_context::<App, _>(context, app::shell);
    move |uri, state, req| {
        let site_root = site_root.clone();
        let page = page.clone();
        Box::pin(async move {
            if guard::looks_like_a_file(uri.path()) {
                let relative = std::path::PathBuf::from(uri.path().trim_start_matches('/'));
                let inside = relative
                    .components()
                    .all(|c| matches!(c, std::path::Component::Normal(_)));
                // Checked without blocking the executor.
                let exists = inside
                    && tokio::fs::metadata(site_root.join(&relative))
                        .await
                        .is_ok_and(|m| m.is_file());
                if !exists {
                    return axum::response::IntoResponse::into_response((
                        StatusCode::NOT_FOUND,
                        "not found",
                    ));
                }
            }
            page(uri, state, req).await
        })
    }
}

/// Builds the whole application router.
pub fn router(app: App) -> Router {
    // Both bundles' pages (see `app::bundle`); the shell links the bundle of the path it renders.
    let mut routes = generate_route_list(app::AdminApp);
    routes.extend(generate_route_list(app::PublicApp));
    let backend = app.backend();
    let leptos = app.leptos.clone();
    let https = app.config.is_https();
    let version = assets::version(&app.config.site_root);
    if version.is_none() {
        tracing::warn!(site_root = %app.config.site_root.display(), "no browser bundle found: pages load /pkg/ without long-lived caching");
    }
    let asset_root = app::AssetRoot(version.as_deref().map(assets::root).unwrap_or_default());
    let lazy_files = assets::lazy_files(&app.config.site_root, &asset_root.0);

    // What every page render gets, the not-found page's included.
    let context = move || {
        provide_context(backend.clone());
        provide_context(asset_root.clone());
        provide_context(lazy_files.clone());
    };

    let idle = app.session_policy().idle;
    let sessions =
        SessionManagerLayer::new(DbSessionStore::new(app.db.clone(), app.clock.clone(), idle))
            .with_name(session_cookie_name(https))
            .with_secure(https)
            .with_http_only(true)
            .with_same_site(SameSite::Strict)
            .with_path("/")
            // Only modified sessions are saved (a request in flight cannot undo a logout), and
            // the cookie lasts the browser session: the idle and absolute timeouts are the
            // server's, extended by the store as requests come (see `DbSessionStore`).
            .with_always_save(false)
            .with_expiry(Expiry::OnSessionEnd);

    let router = Router::new()
        .route("/healthz", get(healthz::healthz))
        .route("/api/events", get(events::events))
        .route(
            "/webhooks/stripe",
            axum::routing::post(crate::billing::webhook::stripe_webhook),
        )
        .leptos_routes_with_context(&app, routes, context.clone(), move || {
            app::shell(leptos.clone())
        });
    let router = match &version {
        Some(version) => assets::routes(router, &app.config.site_root, version),
        None => router,
    };
    router
        .fallback(not_found(&app, context))
        // A layer, not a route layer: unknown `/api/` paths and wrong methods get the shape too.
        .layer(axum::middleware::from_fn(api_errors_for_api))
        .layer(from_fn_with_state(app.clone(), guard::pages))
        .layer(sessions)
        .layer(from_fn_with_state(app.clone(), security::perimeter))
        .layer(CompressionLayer::new())
        .layer(CatchPanicLayer::custom(api_errors::panic_response))
        // Nothing Nest accepts is large: a bigger body is refused before it is read (413), and
        // a request whose response has not started after the timeout is answered 408 (live
        // streams start at once, so their long bodies are not cut).
        .layer(RequestBodyLimitLayer::new(MAX_REQUEST_BODY_BYTES))
        .layer(axum::middleware::from_fn(refuse_large_bodies))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            REQUEST_TIMEOUT,
        ))
        .layer(from_fn_with_state(
            security::AllowedHosts::from_config(&app.config),
            security::allowed_host,
        ))
        .layer(TraceLayer::new_for_http())
        // Outermost, so a request's whole time is counted; `Router::layer` runs after routing,
        // so the matched route template is known here.
        .layer(axum::middleware::from_fn(track_metrics))
        .with_state(app)
}
