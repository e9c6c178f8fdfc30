//! Prometheus metrics: the process-wide recorder, the helpers that record Nest's metrics, and
//! the small HTTP listener that serves them on `NEST_METRICS_ADDR` (never on the dashboard's
//! port).
//!
//! Labels are bounded: routes are axum's matched templates (`/organizations/{id}`), Hetzner
//! endpoints are templated paths, methods outside the standard set become `other`. Until
//! [`install`] runs, every helper records into `metrics`' no-op recorder, so they cost nothing
//! when metrics are off.

use std::net::SocketAddr;
use std::sync::OnceLock;
use std::time::Duration;

use axum::Router;
use axum::http::header::CONTENT_TYPE;
use axum::routing::get;
use metrics::{counter, describe_counter, describe_gauge, describe_histogram, gauge, histogram};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tokio::net::TcpListener;

/// Why metrics could not be served.
#[derive(Debug, thiserror::Error)]
pub enum MetricsError {
    /// The process-wide recorder could not be installed (another recorder was there first).
    #[error("could not install the metrics recorder: {0}")]
    Recorder(String),
    /// The listener could not bind its address.
    #[error("could not listen on {addr} (NEST_METRICS_ADDR): {source}")]
    Bind {
        /// The address from the configuration.
        addr: SocketAddr,
        /// Why binding failed.
        source: std::io::Error,
    },
}

/// Bucket upper bounds (seconds) for HTTP requests and Hetzner-sized waits.
const REQUEST_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];
/// Bucket upper bounds (seconds) for jobs and their steps, which run for minutes (claims are
/// quick: they use [`REQUEST_BUCKETS`]).
const JOB_BUCKETS: &[f64] = &[
    0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1200.0, 1800.0,
];

static HANDLE: OnceLock<Result<PrometheusHandle, String>> = OnceLock::new();

/// Installs the process-wide Prometheus recorder, once; later calls return the same handle
/// (tests start several apps in one process).
pub fn install() -> Result<PrometheusHandle, MetricsError> {
    HANDLE
        .get_or_init(|| {
            let handle = PrometheusBuilder::new()
                .set_buckets(REQUEST_BUCKETS)
                .and_then(|b| {
                    b.set_buckets_for_metric(
                        Matcher::Full("nest_job_duration_seconds".into()),
                        JOB_BUCKETS,
                    )
                })
                .and_then(|b| {
                    b.set_buckets_for_metric(
                        Matcher::Full("nest_job_step_duration_seconds".into()),
                        JOB_BUCKETS,
                    )
                })
                .and_then(PrometheusBuilder::install_recorder)
                .map_err(|e| e.to_string())?;
            describe();
            Ok(handle)
        })
        .clone()
        .map_err(MetricsError::Recorder)
}

fn describe() {
    describe_histogram!(
        "nest_http_request_duration_seconds",
        metrics::Unit::Seconds,
        "Dashboard HTTP requests until the response head (a stream such as /api/events is not timed to its end), by matched route template, method and status."
    );
    describe_counter!(
        "nest_hetzner_requests_total",
        "Hetzner Cloud API calls, by templated endpoint, method and status (or network error)."
    );
    describe_counter!(
        "nest_login_failures_total",
        "Failed dashboard sign-ins, by reason."
    );
    describe_histogram!(
        "nest_job_duration_seconds",
        metrics::Unit::Seconds,
        "Background job attempts, from claim to end, by kind and outcome."
    );
    describe_counter!(
        "nest_jobs_finished_total",
        "Background job attempts that ended, by kind and outcome."
    );
    describe_histogram!(
        "nest_job_step_duration_seconds",
        metrics::Unit::Seconds,
        "Steps of background jobs, by kind, step and outcome."
    );
    describe_histogram!(
        "nest_job_claim_seconds",
        metrics::Unit::Seconds,
        "How long claiming due jobs took."
    );
    describe_gauge!("nest_jobs", "Background jobs by kind and state.");
}

/// Binds `addr` and serves `GET /metrics` there until the process ends; also runs the
/// recorder's upkeep. Returns the bound address (port 0 picks a free one).
pub async fn serve(addr: SocketAddr) -> Result<SocketAddr, MetricsError> {
    let handle = install()?;
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|source| MetricsError::Bind { addr, source })?;
    let bound = listener
        .local_addr()
        .map_err(|source| MetricsError::Bind { addr, source })?;
    let upkeep = handle.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(5));
        loop {
            tick.tick().await;
            upkeep.run_upkeep();
        }
    });
    let router = Router::new().route(
        "/metrics",
        get(move || {
            let handle = handle.clone();
            async move {
                (
                    [(CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
                    handle.render(),
                )
            }
        }),
    );
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, router).await {
            tracing::error!(error.detail = %e, "the metrics listener stopped");
        }
    });
    Ok(bound)
}

/// A method label from the standard set, `other` otherwise (bounded cardinality).
pub fn method_label(method: &axum::http::Method) -> &'static str {
    use axum::http::Method;
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

/// One dashboard request: `nest_http_request_duration_seconds{route,method,status}`.
/// `route` is the matched route template (or `unmatched`), never a raw path.
pub fn http_request(route: &str, method: &'static str, status: u16, seconds: f64) {
    histogram!(
        "nest_http_request_duration_seconds",
        "route" => route.to_owned(),
        "method" => method,
        "status" => status.to_string(),
    )
    .record(seconds);
}

/// One Hetzner API call: `nest_hetzner_requests_total{endpoint,method,status}`. `endpoint`
/// is a templated path (`/servers/{id}`); `status` the HTTP status, or `timeout` / `network`.
pub fn hetzner_request(endpoint: &'static str, method: &'static str, status: &str) {
    counter!(
        "nest_hetzner_requests_total",
        "endpoint" => endpoint,
        "method" => method,
        "status" => status.to_owned(),
    )
    .increment(1);
}

/// A failed sign-in: `nest_login_failures_total{reason}` (`bad_credentials`, `rate_limited`).
pub fn login_failure(reason: &'static str) {
    counter!("nest_login_failures_total", "reason" => reason).increment(1);
}

/// A job attempt ended: `nest_job_duration_seconds{kind,outcome}` and
/// `nest_jobs_finished_total{kind,outcome}`.
pub fn job_finished(kind: &str, outcome: &str, seconds: f64) {
    let labels = [("kind", kind.to_owned()), ("outcome", outcome.to_owned())];
    histogram!("nest_job_duration_seconds", &labels).record(seconds);
    counter!("nest_jobs_finished_total", &labels).increment(1);
}

/// A job step ended: `nest_job_step_duration_seconds{kind,step,outcome}`.
pub fn job_step(kind: &str, step: &str, outcome: &str, seconds: f64) {
    let labels = [
        ("kind", kind.to_owned()),
        ("step", step.to_owned()),
        ("outcome", outcome.to_owned()),
    ];
    histogram!("nest_job_step_duration_seconds", &labels).record(seconds);
}

/// Claiming due jobs took `seconds`: `nest_job_claim_seconds`.
pub fn job_claim(seconds: f64) {
    histogram!("nest_job_claim_seconds").record(seconds);
}

/// How many jobs of `kind` are in `state` now: the gauge `nest_jobs{kind,state}`.
pub fn jobs_by_state(kind: &str, state: &str, count: u64) {
    // Job counts stay far below 2^53: the conversion is exact.
    #[allow(clippy::cast_precision_loss)]
    let value = count as f64;
    gauge!(
        "nest_jobs",
        "kind" => kind.to_owned(),
        "state" => state.to_owned(),
    )
    .set(value);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn installing_twice_returns_the_same_recorder() {
        let first = install().unwrap();
        let second = install().unwrap();
        jobs_by_state("installed_twice", "queued", 7);
        let gauge = "nest_jobs{kind=\"installed_twice\",state=\"queued\"} 7";
        assert!(first.render().contains(gauge));
        assert!(second.render().contains(gauge));
    }

    #[test]
    fn the_job_helpers_render_as_prometheus_histograms_counters_and_gauges() {
        let handle = install().unwrap();
        job_finished("create", "succeeded", 12.5);
        job_step("create", "smoke", "done", 3.0);
        job_claim(0.002);
        jobs_by_state("create", "queued", 4);
        login_failure("bad_credentials");
        hetzner_request("/servers/{id}/actions/{action}", "POST", "201");
        http_request("/organizations/{id}", "GET", 200, 0.02);
        let text = handle.render();
        for expected in [
            "nest_job_duration_seconds_bucket{kind=\"create\",outcome=\"succeeded\",le=\"30\"} 1",
            "nest_jobs_finished_total{kind=\"create\",outcome=\"succeeded\"} 1",
            "nest_job_step_duration_seconds_bucket{kind=\"create\",step=\"smoke\",outcome=\"done\",le=\"5\"} 1",
            "nest_job_claim_seconds_bucket{le=\"0.005\"}",
            "nest_jobs{kind=\"create\",state=\"queued\"} 4",
            "nest_login_failures_total{reason=\"bad_credentials\"} 1",
            "nest_hetzner_requests_total{endpoint=\"/servers/{id}/actions/{action}\",method=\"POST\",status=\"201\"} 1",
            "nest_http_request_duration_seconds_bucket{route=\"/organizations/{id}\",method=\"GET\",status=\"200\",le=\"0.025\"} 1",
        ] {
            assert!(text.contains(expected), "missing `{expected}` in:\n{text}");
        }
    }
}
