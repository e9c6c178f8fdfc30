//! The scheduler: Nest's periodic tasks, declared in one place ([`schedule`]) with their
//! period, each enqueued once per slot across every replica.
//!
//! Every replica ticks; a tick computes each task's current slot (`now / period`) and enqueues
//! the task with the unique key `<task>:<slot>`, so however many replicas tick, the slot's job
//! exists once and one worker runs it. A replica (or the whole fleet) that was down for several
//! periods enqueues only the current slot: a missed task runs once, not once per missed slot.

use std::sync::Arc;
use std::time::Duration;

use app::models::JobPayload;
use chrono::{DateTime, Utc};
use tokio::sync::RwLock;

use super::{NewJob, enqueue};
use crate::clock::Clock;
use crate::error::Result;
use crate::events::Events;
use sea_orm::DatabaseConnection;

/// How often the scheduler ticks. `/healthz` answers 503 when it has not ticked for three.
pub const TICK: Duration = Duration::from_secs(5);

/// A periodic task.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Periodic {
    /// Its name, the prefix of its unique key.
    pub name: &'static str,
    /// How often it runs.
    pub period: Duration,
    /// The job it enqueues.
    pub payload: JobPayload,
    /// Attempts of one slot's job.
    pub max_attempts: i32,
}

/// The periods that come from the configuration.
#[derive(Debug, Clone)]
pub struct SchedulePeriods {
    /// Caddy reconcile (`NEST_JOB_INTERVAL_SECS`).
    pub caddy_reconcile: Duration,
    /// The health sweep (`NEST_HEALTH_INTERVAL_SECS`).
    pub health_sweep: Duration,
    /// Reconciliation with Hetzner and Stripe (`NEST_RECONCILE_INTERVAL_SECS`).
    pub reconcile: Duration,
}

/// Every periodic task of Nest.
pub fn schedule(periods: &SchedulePeriods) -> Vec<Periodic> {
    vec![
        Periodic {
            name: "session_purge",
            period: Duration::from_secs(600),
            payload: JobPayload::SessionPurge,
            max_attempts: 3,
        },
        Periodic {
            name: "caddy_reconcile",
            period: periods.caddy_reconcile,
            payload: JobPayload::CaddyReconcile,
            max_attempts: 1,
        },
        Periodic {
            name: "health_sweep",
            period: periods.health_sweep,
            payload: JobPayload::HealthSweep,
            // A failed sweep is not retried: the next slot sweeps again.
            max_attempts: 1,
        },
        Periodic {
            name: "health_rollup",
            period: Duration::from_secs(3600),
            payload: JobPayload::HealthRollup,
            max_attempts: 3,
        },
        Periodic {
            name: "signup_expiry",
            period: Duration::from_secs(600),
            payload: JobPayload::SignupExpiry,
            max_attempts: 3,
        },
        Periodic {
            // Once a UTC day (the slot is the day); idempotent, so a retry or a rerun by hand
            // (`nest billing run-invoices`) changes nothing.
            name: "invoice_run",
            period: Duration::from_secs(86_400),
            payload: JobPayload::InvoiceRun,
            max_attempts: 5,
        },
        Periodic {
            // Lists every server and subscription: hourly by default, within Hetzner's budget.
            name: "reconcile",
            period: periods.reconcile,
            payload: JobPayload::Reconcile,
            max_attempts: 3,
        },
        Periodic {
            // Hetzner's prices, once a UTC day (and at the first tick of a new deployment).
            name: "price_refresh",
            period: Duration::from_secs(86_400),
            payload: JobPayload::PriceRefresh,
            max_attempts: 5,
        },
        Periodic {
            name: "job_prune",
            period: Duration::from_secs(3600),
            payload: JobPayload::JobPrune,
            max_attempts: 3,
        },
    ]
}

/// The slot of `now` for a task of `period`, and its unique key.
pub fn slot_key(name: &str, period: Duration, now: DateTime<Utc>) -> String {
    let secs = i64::try_from(period.as_secs().max(1)).unwrap_or(i64::MAX);
    format!("{name}:{}", now.timestamp().div_euclid(secs))
}

/// When the scheduler of this process started and last ticked (for `/healthz`).
#[derive(Debug, Clone, Default)]
pub struct SchedulerHealth {
    state: Arc<RwLock<TickState>>,
}

#[derive(Debug, Clone, Copy, Default)]
struct TickState {
    started_at: Option<DateTime<Utc>>,
    last_tick: Option<DateTime<Utc>>,
}

/// What `/healthz` says about the scheduler.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct SchedulerStatus {
    /// Whether this process runs a scheduler.
    pub running: bool,
    /// Seconds since its last tick (or since it started, before the first).
    pub last_tick_age_secs: Option<f64>,
    /// Whether it has not ticked for three ticks: the process is unhealthy.
    pub stale: bool,
}

impl SchedulerHealth {
    /// The last tick, if the scheduler ever ticked in this process.
    pub async fn last_tick(&self) -> Option<DateTime<Utc>> {
        self.state.read().await.last_tick
    }

    /// The scheduler's status at `now`.
    pub async fn status(&self, now: DateTime<Utc>) -> SchedulerStatus {
        let state = *self.state.read().await;
        let Some(since) = state.last_tick.or(state.started_at) else {
            return SchedulerStatus {
                running: false,
                last_tick_age_secs: None,
                stale: false,
            };
        };
        let age = (now - since).to_std().unwrap_or(Duration::ZERO);
        SchedulerStatus {
            running: true,
            last_tick_age_secs: Some((age.as_secs_f64() * 10.0).round() / 10.0),
            stale: age > TICK * 3,
        }
    }

    async fn started(&self, at: DateTime<Utc>) {
        self.state.write().await.started_at = Some(at);
    }

    async fn ticked(&self, at: DateTime<Utc>) {
        self.state.write().await.last_tick = Some(at);
    }
}

/// The scheduler of one process.
#[derive(Clone)]
pub struct Scheduler {
    /// Database pool.
    pub db: DatabaseConnection,
    /// Time source (slots).
    pub clock: Clock,
    /// Wakes workers when a slot's job was queued.
    pub events: Events,
    /// The tasks ([`schedule`]).
    pub tasks: Arc<Vec<Periodic>>,
    /// Where ticks are recorded.
    pub health: SchedulerHealth,
}

impl Scheduler {
    /// Enqueues the current slot of every task (a no-op for slots already queued by any
    /// replica). Returns how many jobs this call queued.
    pub async fn tick(&self) -> Result<usize> {
        let now = self.clock.now();
        let mut queued = 0;
        for task in self.tasks.iter() {
            let job = NewJob {
                payload: task.payload.clone(),
                unique_key: Some(slot_key(task.name, task.period, now)),
                max_attempts: task.max_attempts,
                run_after: now,
            };
            if enqueue(&self.db, job, now).await?.is_some() {
                queued += 1;
            }
        }
        if queued > 0 {
            self.events.wake_jobs();
        }
        self.health.ticked(now).await;
        if let Err(e) = super::queries::record_counts(&self.db).await {
            tracing::debug!(error.detail = %e, "could not count jobs for the metrics");
        }
        Ok(queued)
    }

    /// Ticks every [`TICK`] until the process ends; a failed tick is logged and retried.
    pub async fn run(self) -> anyhow::Result<()> {
        self.health.started(self.clock.now()).await;
        let mut interval = tokio::time::interval(TICK);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            interval.tick().await;
            if let Err(e) = self.tick().await {
                tracing::warn!(error.detail = %e, "the scheduler could not enqueue its tasks; retrying at the next tick");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(secs, 0).unwrap_or_default()
    }

    #[test]
    fn a_slot_lasts_one_period() {
        let p = Duration::from_secs(300);
        assert_eq!(slot_key("health_sweep", p, at(600)), "health_sweep:2");
        assert_eq!(slot_key("health_sweep", p, at(899)), "health_sweep:2");
        assert_eq!(slot_key("health_sweep", p, at(900)), "health_sweep:3");
    }

    #[test]
    fn every_task_has_its_own_name_and_a_period() {
        let tasks = schedule(&SchedulePeriods {
            caddy_reconcile: Duration::from_secs(60),
            health_sweep: Duration::from_secs(300),
            reconcile: Duration::from_secs(3600),
        });
        let mut names: Vec<_> = tasks.iter().map(|t| t.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), tasks.len());
        assert!(tasks.iter().all(|t| t.period >= Duration::from_secs(1)));
        assert!(tasks.iter().all(|t| t.payload.organization_id().is_none()));
    }
}
