//! Page guards (server-side redirects): before setup every page leads to `/setup`; anonymous
//! visitors go to `/login?redirect=<path>`; users who are not platform admins go to
//! `/unauthorized`. These are conveniences for people: the server functions check the session
//! and role themselves.

use app::backend::{ClientIp, RequestInfo};
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use tower_sessions::Session;

use crate::state::App;

fn is_public(path: &str) -> bool {
    app::bundle::PUBLIC_PAGES.contains(&path)
        || path == "/healthz"
        || path.starts_with("/api/")
        || path.starts_with("/pkg/")
        || path.starts_with("/assets/")
        || path.starts_with("/webhooks/")
        // Static files from the site root (favicon.svg, robots.txt, …).
        || looks_like_a_file(path)
}

/// Whether `path` names a file (its last segment has an extension), not a page.
pub fn looks_like_a_file(path: &str) -> bool {
    path.rsplit('/')
        .next()
        .is_some_and(|last| last.contains('.'))
}

fn encode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// The middleware.
pub async fn pages(State(app): State<App>, session: Session, req: Request, next: Next) -> Response {
    if !matches!(*req.method(), Method::GET | Method::HEAD) {
        return next.run(req).await;
    }
    let path = req.uri().path().to_owned();
    let admins = app.admins();
    let needs_setup = match admins.needs_setup().await {
        Ok(v) => v,
        Err(e) => {
            tracing::error!(error.detail = %e, "page guard: could not read admins");
            return next.run(req).await;
        }
    };
    if path == "/setup" {
        return if needs_setup {
            next.run(req).await
        } else {
            Redirect::to("/login").into_response()
        };
    }
    if is_public(&path) {
        return next.run(req).await;
    }
    if needs_setup {
        return Redirect::to("/setup").into_response();
    }
    let info = RequestInfo {
        session,
        ip: req
            .extensions()
            .get::<ClientIp>()
            .map(|c| c.0)
            .or_else(|| {
                req.extensions()
                    .get::<ConnectInfo<std::net::SocketAddr>>()
                    .map(|c| c.0.ip())
            })
            .map(|ip| ip.to_string()),
        user_agent: req
            .headers()
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
    };
    match admins.caller_inner(&info).await {
        Ok(Some(caller)) if caller.role.is_some() => next.run(req).await,
        Ok(Some(_)) => Redirect::to("/unauthorized").into_response(),
        Ok(None) => {
            let wanted = req
                .uri()
                .path_and_query()
                .map_or(path.clone(), |pq| pq.as_str().to_owned());
            Redirect::to(&format!("/login?redirect={}", encode(&wanted))).into_response()
        }
        Err(e) => {
            tracing::error!(error.detail = %e, "page guard: could not read the session");
            Redirect::to("/login").into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn assets_and_public_pages_need_no_session() {
        for path in [
            "/login",
            "/setup",
            "/healthz",
            "/pkg/nest/nest.js",
            "/favicon.svg",
            "/api/login",
        ] {
            assert!(is_public(path), "{path}");
        }
        for path in ["/", "/admins", "/audit", "/organizations/1"] {
            assert!(!is_public(path), "{path}");
        }
    }
}
