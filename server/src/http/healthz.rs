//! `GET /healthz`: liveness plus the database's status, the scheduler's last tick and the job
//! queue's depth, for load balancers and people.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Serialize;

use crate::jobs::scheduler::SchedulerStatus;
use crate::state::App;

/// The body of `/healthz`.
#[derive(Debug, Serialize)]
pub struct Health {
    /// `ok` when every dependency answered and the scheduler ticks, `degraded` otherwise.
    pub status: &'static str,
    /// Nest's version.
    pub version: &'static str,
    /// The database's status.
    pub database: DatabaseHealth,
    /// This process's scheduler.
    pub scheduler: SchedulerStatus,
    /// The job queue (all replicas), when the database answered.
    pub queue: Option<crate::jobs::queries::QueueDepth>,
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

/// 200 with `status: ok` when the database answers and the scheduler (if this process runs
/// one) ticked within its last three periods; 503 otherwise.
pub async fn healthz(State(app): State<App>) -> (StatusCode, Json<Health>) {
    let ping = crate::db::ping(&app.db).await;
    if let Err(e) = &ping {
        tracing::warn!(error.detail = %e, "health check: database did not answer");
    }
    let db_ok = ping.is_ok();
    let now = app.clock.now();
    let scheduler = app.scheduler_health.status(now).await;
    if scheduler.stale {
        tracing::warn!(scheduler.age_secs = ?scheduler.last_tick_age_secs, "health check: the scheduler has not ticked for three periods");
    }
    let queue = if db_ok {
        crate::jobs::queries::depth(&app.db, now).await.ok()
    } else {
        None
    };
    let ok = db_ok && !scheduler.stale;
    let body = Health {
        status: if ok { "ok" } else { "degraded" },
        version: env!("CARGO_PKG_VERSION"),
        database: DatabaseHealth {
            kind: crate::db::kind(&app.db),
            ok: db_ok,
            latency_ms: ping
                .ok()
                .map(|d| (d.as_secs_f64() * 1000.0 * 100.0).round() / 100.0),
        },
        scheduler,
        queue,
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
