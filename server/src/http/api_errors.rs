//! Gives every failed `/api/` answer its HTTP status and the project's error shape (an `AppError`
//! as JSON). Leptos answers every failed server function with 500; this layer reads the
//! `AppError` in such a body and sets the status it stands for (400, 401, 403, 404, 409, 422,
//! 429, 503 with `Retry-After`), so only real failures are 5xx in logs and monitoring. Arguments that do not decode are
//! `AppError::Transport` (400), named and clipped by `app::codec`. A failed answer whose body is
//! no `AppError` (too large, not JSON, one of axum's own rejections) gets one here: a 4xx keeps
//! its status, anything else becomes a logged `Internal` error with a reference; a panic answers
//! the same way ([`panic_response`]). The browser's server-function client decodes the error
//! from any 4xx/5xx alike.

use std::any::Any;

use app::error::{AppError, clip};
use axum::body::{Body, to_bytes};
use axum::extract::Request;
use axum::http::header::{CONTENT_LENGTH, CONTENT_TYPE, HeaderValue, RETRY_AFTER};
use axum::http::{StatusCode, response::Parts};
use axum::middleware::Next;
use axum::response::Response;

use crate::error::error_reference;

/// Largest error body inspected (errors are small JSON values: their messages are clipped).
const MAX_ERROR_BODY: usize = 64 * 1024;

/// The status an error stands for.
pub fn status_of(err: &AppError) -> StatusCode {
    match err {
        AppError::Unauthenticated => StatusCode::UNAUTHORIZED,
        AppError::Forbidden(_) => StatusCode::FORBIDDEN,
        AppError::NotFound(_) => StatusCode::NOT_FOUND,
        AppError::Validation { .. } => StatusCode::UNPROCESSABLE_ENTITY,
        AppError::Conflict(_) => StatusCode::CONFLICT,
        AppError::RateLimited(_) => StatusCode::TOO_MANY_REQUESTS,
        AppError::Unavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
        AppError::Transport(_) => StatusCode::BAD_REQUEST,
        AppError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// The middleware, for `/api/*`.
pub async fn map_status(req: Request, next: Next) -> Response {
    let path = req.uri().path().to_owned();
    let response = next.run(req).await;
    let status = response.status();
    if !status.is_client_error() && !status.is_server_error() {
        return response;
    }
    let (parts, body) = response.into_parts();
    let bytes = to_bytes(body, MAX_ERROR_BODY).await.ok();
    let decoded = bytes
        .as_deref()
        .and_then(|b| serde_json::from_slice::<AppError>(b).ok());
    match decoded {
        // Leptos's 500 for every failure: the error says what it really was.
        Some(err) if status == StatusCode::INTERNAL_SERVER_ERROR => {
            let status = status_of(&err);
            respond(parts, status, &err)
        }
        Some(err) => respond(parts, status, &err),
        None if status.is_client_error() => {
            let err = rejection(&parts, bytes.as_deref(), status, &path);
            respond(parts, status, &err)
        }
        None => {
            let reference = error_reference();
            tracing::error!(
                error.reference = %reference,
                error.kind = "unreadable error",
                http.path = %clip(&path),
                http.status = status.as_u16(),
                "a server function failed without an error the dashboard can read"
            );
            respond(parts, status, &AppError::Internal(reference))
        }
    }
}

/// A 4xx that is not a server function's own error (axum's rejections, `/api/events`, an
/// unknown function) as the `AppError` it stands for; a short plain-text body is kept as its
/// message.
fn rejection(parts: &Parts, body: Option<&[u8]>, status: StatusCode, path: &str) -> AppError {
    let plain = parts
        .headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/plain"));
    let reason = status
        .canonical_reason()
        .unwrap_or("bad request")
        .to_lowercase();
    let text = body
        .filter(|_| plain)
        .and_then(|b| std::str::from_utf8(b).ok())
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map_or(reason, clip);
    match status {
        StatusCode::UNAUTHORIZED => AppError::Unauthenticated,
        StatusCode::FORBIDDEN => AppError::Forbidden(text),
        StatusCode::NOT_FOUND => AppError::NotFound(clip(path)),
        StatusCode::TOO_MANY_REQUESTS => AppError::RateLimited(text),
        _ => AppError::Transport(text),
    }
}

/// The answer to a request whose handler panicked: a logged `Internal` error with a reference,
/// never a dropped connection (for `tower_http::catch_panic::CatchPanicLayer`).
pub fn panic_response(panic: Box<dyn Any + Send + 'static>) -> Response {
    let detail = panic
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| panic.downcast_ref::<&str>().copied())
        .unwrap_or("(no message)");
    let reference = error_reference();
    tracing::error!(
        error.reference = %reference,
        error.kind = "panic",
        error.detail = %clip(detail),
        "request failed"
    );
    let (parts, ()) = Response::new(()).into_parts();
    respond(
        parts,
        StatusCode::INTERNAL_SERVER_ERROR,
        &AppError::Internal(reference),
    )
}

/// `err` as the JSON body of a response with `status`, keeping `parts`' other headers.
fn respond(mut parts: Parts, status: StatusCode, err: &AppError) -> Response {
    parts.status = status;
    parts.headers.remove(CONTENT_LENGTH);
    if let AppError::Unavailable {
        retry_after_secs, ..
    } = err
    {
        parts
            .headers
            .insert(RETRY_AFTER, HeaderValue::from(*retry_after_secs));
    }
    parts
        .headers
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    let body = serde_json::to_vec(err).map_or_else(|_| Body::empty(), Body::from);
    Response::from_parts(parts, body)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use axum::Router;
    use axum::routing::post;
    use tower::Service;
    use tower_http::catch_panic::CatchPanicLayer;

    /// Calls `handler` at `/api/f` behind this layer (and the panic catcher).
    async fn answer<H, T>(handler: H) -> (StatusCode, AppError)
    where
        H: axum::handler::Handler<T, ()>,
        T: 'static,
    {
        let mut router = Router::new()
            .route("/api/f", post(handler))
            .layer(axum::middleware::from_fn(map_status))
            .layer(CatchPanicLayer::custom(panic_response));
        let request = axum::http::Request::post("/api/f")
            .body(Body::empty())
            .unwrap();
        let response = router.call(request).await.unwrap();
        let status = response.status();
        let bytes = to_bytes(response.into_body(), MAX_ERROR_BODY)
            .await
            .unwrap();
        (status, serde_json::from_slice(&bytes).unwrap())
    }

    #[tokio::test]
    async fn a_server_function_error_gets_the_status_it_stands_for() {
        let (status, err) = answer(|| async {
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                serde_json::to_string(&AppError::Transport("malformed arguments: x".to_owned()))
                    .unwrap(),
            )
        })
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(
            err,
            AppError::Transport("malformed arguments: x".to_owned())
        );
    }

    #[tokio::test]
    async fn a_500_whose_body_is_too_large_or_no_error_is_an_internal_error_with_a_reference() {
        for body in ["x".repeat(2 * MAX_ERROR_BODY), String::new()] {
            let (status, err) =
                answer(move || async move { (StatusCode::INTERNAL_SERVER_ERROR, body) }).await;
            assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
            assert!(
                matches!(err, AppError::Internal(ref r) if r.starts_with('E')),
                "{err:?}"
            );
        }
    }

    #[tokio::test]
    async fn a_rejection_without_an_error_keeps_its_status_in_the_error_shape() {
        let (status, err) = answer(|| async { StatusCode::PAYLOAD_TOO_LARGE }).await;
        assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(err, AppError::Transport("payload too large".to_owned()));
        let (status, err) = answer(|| async { (StatusCode::UNAUTHORIZED, "sign in first") }).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert_eq!(err, AppError::Unauthenticated);
    }

    #[tokio::test]
    async fn a_panic_is_an_internal_error_with_a_reference() {
        fn handler_with_a_bug() -> StatusCode {
            panic!("a bug in a handler")
        }
        let (status, err) = answer(|| async { handler_with_a_bug() }).await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
        assert!(matches!(err, AppError::Internal(_)), "{err:?}");
    }
}
