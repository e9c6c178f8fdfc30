//! Idempotency keys as Stripe keeps them: a `POST` carrying an `Idempotency-Key` seen before
//! with the same path and body gets the stored response again (status and body, header
//! `Idempotent-Replayed: true`) without side effects; the same key with other parameters is an
//! `idempotency_error`. Keys are kept 24 hours (the simulator's clock); 5xx answers are not kept.

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::{Body, Bytes, to_bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::Shared;
use super::api::ApiError;

/// How long a key is remembered.
const KEEP_SECS: i64 = 24 * 60 * 60;
/// The largest body the simulator reads (as the API's own limit).
const BODY_LIMIT: usize = 1024 * 1024;

/// What a key was first used for, and its answer once there is one.
pub(super) struct Entry {
    method: Method,
    path: String,
    body: Bytes,
    at: i64,
    answer: Option<(StatusCode, Option<HeaderValue>, Bytes)>,
}

/// The keys seen, by key.
pub(super) type Keys = HashMap<String, Entry>;

enum Seen {
    New,
    Replay(StatusCode, Option<HeaderValue>, Bytes),
    Different,
    InFlight,
}

fn error(status: StatusCode, message: String) -> Response {
    let body = serde_json::json!({"error": {"type": "idempotency_error", "message": message}});
    (status, axum::Json(body)).into_response()
}

/// The middleware.
pub(super) async fn layer(
    State(shared): State<Arc<Shared>>,
    request: Request,
    next: Next,
) -> Response {
    let key = request
        .headers()
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let (Some(key), true) = (key, request.method() == Method::POST) else {
        return next.run(request).await;
    };
    let (parts, body) = request.into_parts();
    let Ok(bytes) = to_bytes(body, BODY_LIMIT).await else {
        return ApiError::invalid(
            StatusCode::BAD_REQUEST,
            None,
            "The request body could not be read.",
            None,
        )
        .into_response();
    };
    let path = parts
        .uri
        .path_and_query()
        .map_or_else(|| parts.uri.path().to_owned(), |p| p.as_str().to_owned());
    let now = shared.clock.now().timestamp();
    let seen = {
        let mut keys = shared.idempotency();
        keys.retain(|_, e| now - e.at < KEEP_SECS);
        match keys.get(&key) {
            None => {
                keys.insert(
                    key.clone(),
                    Entry {
                        method: parts.method.clone(),
                        path: path.clone(),
                        body: bytes.clone(),
                        at: now,
                        answer: None,
                    },
                );
                Seen::New
            }
            Some(e) if e.method != parts.method || e.path != path || e.body != bytes => {
                Seen::Different
            }
            Some(Entry {
                answer: Some((status, content_type, body)),
                ..
            }) => Seen::Replay(*status, content_type.clone(), body.clone()),
            Some(_) => Seen::InFlight,
        }
    };
    match seen {
        Seen::Different => error(
            StatusCode::BAD_REQUEST,
            format!(
                "Keys for idempotent requests can only be used with the same parameters they were first used with. Try using a key other than '{key}' if you meant to execute a different request."
            ),
        ),
        Seen::InFlight => error(
            StatusCode::CONFLICT,
            format!(
                "There is currently another in-progress request using this Idempotent Key (that probably means you submitted twice, and the other request is still going through): {key}. Please try again later."
            ),
        ),
        Seen::Replay(status, content_type, body) => {
            let mut response = (status, body).into_response();
            if let Some(ct) = content_type {
                response.headers_mut().insert(header::CONTENT_TYPE, ct);
            }
            response
                .headers_mut()
                .insert("idempotent-replayed", HeaderValue::from_static("true"));
            if let Ok(value) = HeaderValue::from_str(&key) {
                response.headers_mut().insert("idempotency-key", value);
            }
            response
        }
        Seen::New => {
            let request = Request::from_parts(parts, Body::from(bytes));
            let response = next.run(request).await;
            let (mut head, body) = response.into_parts();
            let body = to_bytes(body, usize::MAX).await.unwrap_or_default();
            {
                let mut keys = shared.idempotency();
                // Stripe saves a result once the endpoint started executing: not a 5xx, and
                // not a request whose parameters failed validation (`parameter_*` codes).
                if head.status.is_server_error() || failed_validation(head.status, &body) {
                    keys.remove(&key);
                } else if let Some(entry) = keys.get_mut(&key) {
                    entry.answer = Some((
                        head.status,
                        head.headers.get(header::CONTENT_TYPE).cloned(),
                        body.clone(),
                    ));
                }
            }
            if let Ok(value) = HeaderValue::from_str(&key) {
                head.headers.insert("idempotency-key", value);
            }
            Response::from_parts(head, Body::from(body))
        }
    }
}

/// Whether `body` is Stripe's answer to parameters that failed validation (`parameter_unknown`,
/// `parameter_missing`, `parameter_invalid_*`): nothing ran, so the key is not spent.
fn failed_validation(status: StatusCode, body: &[u8]) -> bool {
    status == StatusCode::BAD_REQUEST
        && serde_json::from_slice::<serde_json::Value>(body).is_ok_and(|v| {
            v["error"]["code"]
                .as_str()
                .is_some_and(|code| code.starts_with("parameter_"))
        })
}
