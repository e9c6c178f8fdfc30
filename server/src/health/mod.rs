//! Health monitoring: a sweep of every running server every `NEST_HEALTH_INTERVAL_SECS`
//! (`sweep`), its probes (`probe`), alerts grouped into incidents and their notifications
//! (`alerts`, `notify`), automatic reboots (`reboot`), bounded history (`history`), and the
//! read side of the pages (`queries`).
//!
//! The rules themselves — the status table and what each sweep decides per server — are pure
//! functions in `app::models::health`, shared with the browser and tested exhaustively.
//!
//! **Which servers are checked**: those whose VPS is `running` with an address, of an
//! organization that is `active`, `suspended` (its route is off, its server still runs) or
//! `cancelling`; never while a job of that organization is queued or running (a resize powers
//! the server off on purpose), nor within `NEST_HEALTH_GRACE_SECS` after one of its jobs ended
//! (create, resize, redeploy, reboot: the stack is still starting).

pub mod alerts;
pub mod history;
pub mod notify;
pub mod probe;
pub mod queries;
pub mod reboot;
pub mod sweep;

use std::time::Duration;

use app::models::health::Thresholds;

use crate::config::Config;

/// The health monitor's settings (from `NEST_HEALTH_*`; tests shorten them).
#[derive(Debug, Clone)]
pub struct HealthSettings {
    /// The sweep period.
    pub interval: Duration,
    /// One probe's limit.
    pub probe_timeout: Duration,
    /// Probes in flight at once.
    pub concurrency: usize,
    /// No checks this long after an organization's job ended.
    pub grace: chrono::Duration,
    /// Alert and reboot thresholds, reboot cooldown.
    pub thresholds: Thresholds,
    /// Above this share (percent) of failing servers in one sweep, no reboots.
    pub breaker_percent: u32,
    /// Raw checks kept.
    pub raw_retention: chrono::Duration,
    /// Hourly roll-ups kept.
    pub rollup_retention: chrono::Duration,
}

impl HealthSettings {
    /// The settings the configuration gives.
    pub fn from_config(config: &Config) -> Self {
        let h = &config.health;
        Self {
            interval: Duration::from_secs(u64::from(h.interval_secs)),
            probe_timeout: Duration::from_millis(u64::from(h.probe_timeout_ms)),
            concurrency: usize::try_from(h.concurrency).unwrap_or(512),
            grace: chrono::Duration::seconds(i64::from(h.grace_secs)),
            thresholds: Thresholds {
                reboot_cooldown: chrono::Duration::minutes(i64::from(h.reboot_cooldown_mins)),
                ..Thresholds::default()
            },
            breaker_percent: h.breaker_percent,
            raw_retention: chrono::Duration::hours(i64::from(h.raw_retention_hours)),
            rollup_retention: chrono::Duration::days(i64::from(h.rollup_retention_days)),
        }
    }
}

/// The actor of audit rows written by the health monitor.
pub fn health_actor() -> crate::audit::Actor {
    crate::audit::Actor::system("health")
}
