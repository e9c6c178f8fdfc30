//! Metrics hooks (placeholder until the Prometheus exporter lands in this module).

/// A job attempt ended.
pub fn job_finished(_kind: &str, _outcome: &str, _seconds: f64) {}
/// A job step ended.
pub fn job_step(_kind: &str, _step: &str, _outcome: &str, _seconds: f64) {}
/// A claim took this long.
pub fn job_claim(_seconds: f64) {}
/// Jobs of a kind in a state.
pub fn jobs_by_state(_kind: &str, _state: &str, _count: u64) {}
