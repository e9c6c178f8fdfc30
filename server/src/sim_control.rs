//! What the simulators' control APIs (`/_sim/…` of the Hetzner and Stripe simulators) share:
//! the guard (no web pages, a token), the error shape, and JSON bodies read with errors that
//! answer in that shape.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{FromRequest, Request, State};
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;
use serde_json::json;

/// The header carrying a control API's token.
pub const CONTROL_TOKEN_HEADER: &str = "x-sim-token";

/// A control API refusal: a status and a message, as JSON.
#[derive(Debug)]
pub struct ControlError(pub StatusCode, pub String);

impl IntoResponse for ControlError {
    fn into_response(self) -> Response {
        let code = match self.0 {
            StatusCode::NOT_FOUND => "not_found",
            StatusCode::UNAUTHORIZED => "unauthorized",
            StatusCode::FORBIDDEN => "forbidden",
            StatusCode::CONFLICT => "conflict",
            _ => "invalid_input",
        };
        (
            self.0,
            axum::Json(json!({"error": {"code": code, "message": self.1}})),
        )
            .into_response()
    }
}

/// A 400 with `message`.
pub fn invalid(message: impl Into<String>) -> ControlError {
    ControlError(StatusCode::BAD_REQUEST, message.into())
}

/// A JSON body whose errors answer 400 in JSON (an empty body reads as `{}`).
pub struct Input<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for Input<T> {
    type Rejection = ControlError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = Bytes::from_request(req, state)
            .await
            .map_err(|e| ControlError(e.status(), e.body_text()))?;
        let bytes: &[u8] = if bytes.iter().all(u8::is_ascii_whitespace) {
            b"{}"
        } else {
            &bytes
        };
        serde_json::from_slice(bytes)
            .map(Input)
            .map_err(|e| invalid(format!("invalid JSON body: {e}")))
    }
}

/// Guards a control API: a request carrying an `Origin` comes from a web page (any site can
/// POST to loopback) and is refused; others need the token.
pub async fn control_gate(State(token): State<Arc<str>>, req: Request, next: Next) -> Response {
    if req.headers().contains_key(axum::http::header::ORIGIN) {
        return ControlError(
            StatusCode::FORBIDDEN,
            "the simulator's control API does not answer web pages".to_owned(),
        )
        .into_response();
    }
    let given = req
        .headers()
        .get(CONTROL_TOKEN_HEADER)
        .map(HeaderValue::as_bytes)
        .unwrap_or_default();
    if !constant_time_eq(given, token.as_bytes()) {
        return ControlError(
            StatusCode::UNAUTHORIZED,
            "the simulator's control API needs its token in an X-Sim-Token header".to_owned(),
        )
        .into_response();
    }
    next.run(req).await
}

/// Compares without an early exit on the first differing byte.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
