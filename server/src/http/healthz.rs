//! `GET /healthz`: liveness plus the database's status, for load balancers and people.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Serialize;

use crate::state::App;

/// The body of `/healthz`.
#[derive(Debug, Serialize)]
pub struct Health {
    /// `ok` when every dependency answered, `degraded` otherwise.
    pub status: &'static str,
    /// Nest's version.
    pub version: &'static str,
    /// The database's status.
    pub database: DatabaseHealth,
}

/// The database part of `/healthz`.
#[derive(Debug, Serialize)]
pub struct DatabaseHealth {
    /// `sqlite` or `postgres`.
    pub kind: app::models::DatabaseKind,
    /// Whether it answered.
    pub ok: bool,
    /// Round trip of the check, in milliseconds.
    pub latency_ms: Option<f64>,
}

/// 200 with `status: ok` when the database answers, 503 otherwise.
pub async fn healthz(State(app): State<App>) -> (StatusCode, Json<Health>) {
    let ping = crate::db::ping(&app.db).await;
    if let Err(e) = &ping {
        tracing::warn!(error.detail = %e, "health check: database did not answer");
    }
    let ok = ping.is_ok();
    let body = Health {
        status: if ok { "ok" } else { "degraded" },
        version: env!("CARGO_PKG_VERSION"),
        database: DatabaseHealth {
            kind: crate::db::kind(&app.db),
            ok,
            latency_ms: ping
                .ok()
                .map(|d| (d.as_secs_f64() * 1000.0 * 100.0).round() / 100.0),
        },
    };
    (
        if ok {
            StatusCode::OK
        } else {
            StatusCode::SERVICE_UNAVAILABLE
        },
        Json(body),
    )
}
