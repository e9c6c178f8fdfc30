//! The health sweep: one scheduled job per period (one slot across replicas) probes every
//! checked server (see the module docs of `health` for which) with bounded concurrency, writes
//! the raw checks and each server's current health in batches, and applies the rules of
//! `app::models::health::decide`: incidents and alerts, reboot jobs, recovery — unless the
//! fleet breaker trips, in which case no reboot is made and one fleet alert says why.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use app::models::health::{Decision, Tracker, decide, status};
use app::models::{AlertKind, HealthStatus, JobPayload, JobState, JobStep, OrgStatus, VpsStatus};
use chrono::{DateTime, Utc};
use futures::StreamExt;
use sea_orm::sea_query::{Expr, OnConflict, Query};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, Condition, DatabaseConnection, DbBackend, EntityTrait,
    QueryFilter, QuerySelect, TransactionTrait,
};

use super::HealthSettings;
use super::alerts::{self, BreakerReason, Channels, NewAlert};
use super::probe::{ProbeResult, Prober};
use crate::clock::Clock;
use crate::entities::{health_checks, health_incidents, jobs, organizations, vps_health, vpses};
use crate::error::Result;
use crate::events::Events;
use crate::jobs::{Attempt, Handler, JobFailure, NewJob, Outcome, enqueue};

/// The breaker needs at least this many failing servers: one or two servers down is not a
/// fleet-wide problem, whatever the percentage.
pub const BREAKER_MIN_FAILING: usize = 3;
/// Rows per batched statement: as many as the engine's parameter limit allows (13 columns:
/// SQLite takes 32,766 variables, PostgreSQL 65,535), since each statement has a fixed cost
/// (measured: 500-row batches made the PostgreSQL writes of a 10,000-server sweep 4× slower).
const BATCH_SQLITE: usize = 2_000;
const BATCH_POSTGRES: usize = 5_000;
/// Ids per `IN (…)` list.
const BATCH: usize = 500;

/// One server to check.
#[derive(Debug, Clone)]
struct Target {
    vps_id: i64,
    organization_id: i64,
    ip: String,
    tracker: Tracker,
    incident_id: Option<i64>,
    /// The previous sweep's status (`None`: never checked).
    previous: Option<HealthStatus>,
}

/// What one sweep did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SweepReport {
    /// Servers probed.
    pub checked: usize,
    /// Servers whose status was not `healthy`.
    pub failing: usize,
    /// Why no reboots were made, if the breaker tripped.
    pub breaker: Option<BreakerReason>,
    /// Alerts raised (server and fleet).
    pub alerts: usize,
    /// Reboot jobs queued.
    pub reboots: usize,
    /// Reboots held by the breaker.
    pub held: usize,
    /// Servers whose status differs from the previous sweep's (or that were never checked).
    pub changed: usize,
    /// Time spent probing.
    pub probe_ms: u128,
    /// Time spent writing.
    pub write_ms: u128,
}

/// Runs `health_sweep` jobs.
#[derive(Clone)]
pub struct Sweeper {
    /// Database pool.
    pub db: DatabaseConnection,
    /// Time source.
    pub clock: Clock,
    /// Intervals, thresholds, limits.
    pub settings: Arc<HealthSettings>,
    /// Probes the servers.
    pub prober: Prober,
    /// Which notification channels are on.
    pub channels: Channels,
    /// Job wake-ups and live updates.
    pub events: Events,
}

fn tracker_of(row: Option<&vps_health::Model>) -> (Tracker, Option<i64>) {
    row.map_or((Tracker::default(), None), |h| {
        (
            Tracker {
                failures: u32::try_from(h.failures).unwrap_or(0),
                incident_open: h.incident_id.is_some(),
                last_reboot_at: h.last_reboot_at,
            },
            h.incident_id,
        )
    })
}

impl Sweeper {
    /// The servers to check now (see the module docs of `health`).
    async fn targets(&self, now: DateTime<Utc>) -> Result<Vec<Target>> {
        let checked_orgs = Query::select()
            .column(organizations::Column::Id)
            .from(organizations::Entity)
            .and_where(organizations::Column::Status.is_in([
                OrgStatus::Active,
                OrgStatus::Suspended,
                OrgStatus::Cancelling,
            ]))
            .to_owned();
        let busy_orgs = Query::select()
            .column(jobs::Column::OrganizationId)
            .from(jobs::Entity)
            .and_where(jobs::Column::OrganizationId.is_not_null())
            .cond_where(
                Condition::any()
                    .add(jobs::Column::State.is_in([JobState::Queued, JobState::Running]))
                    .add(jobs::Column::FinishedAt.gt(now - self.settings.grace)),
            )
            .to_owned();
        let servers: Vec<(i64, i64, Option<String>)> = vpses::Entity::find()
            .select_only()
            .column(vpses::Column::Id)
            .column(vpses::Column::OrganizationId)
            .column(vpses::Column::Ipv4)
            .filter(vpses::Column::Status.eq(VpsStatus::Running))
            .filter(vpses::Column::DeletedAt.is_null())
            .filter(vpses::Column::Ipv4.is_not_null())
            .filter(vpses::Column::OrganizationId.in_subquery(checked_orgs))
            .filter(vpses::Column::OrganizationId.not_in_subquery(busy_orgs))
            .into_tuple()
            .all(&self.db)
            .await?;
        let health: HashMap<i64, vps_health::Model> = vps_health::Entity::find()
            .all(&self.db)
            .await?
            .into_iter()
            .map(|h| (h.vps_id, h))
            .collect();
        Ok(servers
            .into_iter()
            .filter_map(|(vps_id, organization_id, ip)| {
                let row = health.get(&vps_id);
                let (tracker, incident_id) = tracker_of(row);
                Some(Target {
                    vps_id,
                    organization_id,
                    ip: ip?,
                    tracker,
                    incident_id,
                    previous: row.map(|h| h.status),
                })
            })
            .collect())
    }

    /// One sweep: probe, decide, write. Also what the benchmark measures.
    pub async fn sweep(&self) -> Result<SweepReport> {
        let now = self.clock.now();
        let targets = self.targets(now).await?;
        let started = Instant::now();
        let prober = self.prober;
        let probed: Vec<(Target, ProbeResult)> = futures::stream::iter(targets)
            .map(|t| async move {
                let r = prober.probe(&t.ip).await;
                (t, r)
            })
            .buffer_unordered(self.settings.concurrency.max(1))
            .collect()
            .await;
        let probe_ms = started.elapsed().as_millis();
        let started = Instant::now();
        let mut report = self.record(probed, now).await?;
        report.probe_ms = probe_ms;
        report.write_ms = started.elapsed().as_millis();
        self.events.wake_jobs();
        // Pages refresh when something they show changed, not at every sweep.
        if report.changed > 0 || report.alerts > 0 {
            self.events.publish(app::models::Change::Health);
        }
        Ok(report)
    }

    /// Decides and writes everything of one sweep in one transaction.
    async fn record(
        &self,
        probed: Vec<(Target, ProbeResult)>,
        now: DateTime<Utc>,
    ) -> Result<SweepReport> {
        let statuses: Vec<HealthStatus> = probed.iter().map(|(_, r)| status(r.up)).collect();
        let checked = probed.len();
        let failing = statuses
            .iter()
            .filter(|s| **s != HealthStatus::Healthy)
            .count();
        let breaker = if failing < BREAKER_MIN_FAILING {
            None
        } else if probed.iter().all(|(_, r)| !r.answered) {
            Some(BreakerReason::CheckerOffline)
        } else if failing * 100 > checked * self.settings.breaker_percent as usize {
            Some(BreakerReason::TooManyFailing)
        } else {
            None
        };
        let mut report = SweepReport {
            checked,
            failing,
            breaker,
            ..SweepReport::default()
        };

        let txn = self.db.begin().await?;
        let mut checks = Vec::with_capacity(checked);
        let mut current = Vec::with_capacity(checked);
        let mut open_incidents: HashMap<HealthStatus, Vec<i64>> = HashMap::new();
        for ((target, result), status) in probed.into_iter().zip(statuses) {
            let (tracker, decision) = decide(
                target.tracker,
                status,
                now,
                self.settings.thresholds,
                breaker.is_some(),
            );
            if target.previous != Some(status) {
                report.changed += 1;
            }
            let mut incident_id = target.incident_id;
            let why = result.error.clone().unwrap_or_default();
            let alert = |kind: AlertKind, incident_id: Option<i64>, message: String| NewAlert {
                vps_id: target.vps_id,
                organization_id: target.organization_id,
                incident_id,
                kind,
                message,
            };
            match decision {
                Some(Decision::Alert) => {
                    let id = alerts::open_incident(
                        &txn,
                        target.vps_id,
                        target.organization_id,
                        status,
                        now,
                    )
                    .await?;
                    incident_id = Some(id);
                    let message =
                        format!("{status} for {} checks in a row: {why}", tracker.failures);
                    alerts::raise(
                        &txn,
                        self.channels,
                        alert(AlertKind::Unhealthy, incident_id, message),
                        now,
                    )
                    .await?;
                    report.alerts += 1;
                }
                Some(Decision::Reboot) => {
                    enqueue(
                        &txn,
                        NewJob {
                            payload: JobPayload::Reboot {
                                organization_id: target.organization_id,
                                vps_id: target.vps_id,
                            },
                            unique_key: Some(format!(
                                "reboot:{}:{}",
                                target.vps_id,
                                now.timestamp()
                            )),
                            max_attempts: 1,
                            run_after: now,
                        },
                        now,
                    )
                    .await?;
                    if let Some(id) = incident_id {
                        alerts::count_reboot(&txn, id).await?;
                    }
                    let message = format!(
                        "rebooting after {} failed checks in a row ({status}: {why})",
                        tracker.failures
                    );
                    alerts::raise(
                        &txn,
                        self.channels,
                        alert(AlertKind::AutoReboot, incident_id, message),
                        now,
                    )
                    .await?;
                    report.alerts += 1;
                    report.reboots += 1;
                }
                Some(Decision::RebootHeld) => report.held += 1,
                Some(Decision::Recovered) => {
                    if let Some(id) = incident_id {
                        alerts::close_incident(&txn, id, now).await?;
                    }
                    let message = format!(
                        "healthy again after {} failed checks",
                        target.tracker.failures
                    );
                    alerts::raise(
                        &txn,
                        self.channels,
                        alert(AlertKind::Recovered, incident_id, message),
                        now,
                    )
                    .await?;
                    incident_id = None;
                    report.alerts += 1;
                }
                None => {}
            }
            if let Some(id) = incident_id.filter(|_| status != HealthStatus::Healthy) {
                open_incidents.entry(status).or_default().push(id);
            }
            let [convex_ms, web_ms, mta_ms] = result.ms;
            checks.push(health_checks::ActiveModel {
                vps_id: Set(target.vps_id),
                organization_id: Set(target.organization_id),
                checked_at: Set(now),
                status: Set(status),
                convex_up: Set(result.up.convex),
                web_up: Set(result.up.web),
                mta_up: Set(result.up.mta),
                consecutive_failures: Set(i32::try_from(tracker.failures).unwrap_or(i32::MAX)),
                duration_ms: Set(result.duration_ms),
                error: Set(result.error.clone()),
                convex_ms: Set(convex_ms),
                web_ms: Set(web_ms),
                mta_ms: Set(mta_ms),
                ..Default::default()
            });
            current.push(vps_health::ActiveModel {
                vps_id: Set(target.vps_id),
                organization_id: Set(target.organization_id),
                status: Set(status),
                checked_at: Set(now),
                failures: Set(i32::try_from(tracker.failures).unwrap_or(i32::MAX)),
                convex_up: Set(result.up.convex),
                web_up: Set(result.up.web),
                mta_up: Set(result.up.mta),
                convex_ms: Set(convex_ms),
                web_ms: Set(web_ms),
                mta_ms: Set(mta_ms),
                incident_id: Set(incident_id),
                last_reboot_at: Set(tracker.last_reboot_at),
            });
        }
        for (status, ids) in open_incidents {
            for chunk in ids.chunks(BATCH) {
                health_incidents::Entity::update_many()
                    .col_expr(health_incidents::Column::LastStatus, Expr::value(status))
                    .filter(health_incidents::Column::Id.is_in(chunk.iter().copied()))
                    .exec(&txn)
                    .await?;
            }
        }
        let batch = match self.db.get_database_backend() {
            DbBackend::Postgres => BATCH_POSTGRES,
            _ => BATCH_SQLITE,
        };
        let mut checks = checks.into_iter().peekable();
        while checks.peek().is_some() {
            let chunk: Vec<_> = checks.by_ref().take(batch).collect();
            health_checks::Entity::insert_many(chunk)
                .exec_without_returning(&txn)
                .await?;
        }
        let mut current = current.into_iter().peekable();
        while current.peek().is_some() {
            let chunk: Vec<_> = current.by_ref().take(batch).collect();
            vps_health::Entity::insert_many(chunk)
                .on_conflict(
                    OnConflict::column(vps_health::Column::VpsId)
                        .update_columns([
                            vps_health::Column::OrganizationId,
                            vps_health::Column::Status,
                            vps_health::Column::CheckedAt,
                            vps_health::Column::Failures,
                            vps_health::Column::ConvexUp,
                            vps_health::Column::WebUp,
                            vps_health::Column::MtaUp,
                            vps_health::Column::ConvexMs,
                            vps_health::Column::WebMs,
                            vps_health::Column::MtaMs,
                            vps_health::Column::IncidentId,
                            vps_health::Column::LastRebootAt,
                        ])
                        .to_owned(),
                )
                .exec_without_returning(&txn)
                .await?;
        }
        if let Some(reason) = breaker.filter(|_| report.held > 0) {
            let message = match reason {
                BreakerReason::CheckerOffline => format!(
                    "no service of any of the {checked} checked servers answered: Nest's own network looks down; {} automatic reboot(s) held",
                    report.held
                ),
                BreakerReason::TooManyFailing => format!(
                    "{failing} of {checked} checked servers are failing (more than {} %): {} automatic reboot(s) held until fewer fail",
                    self.settings.breaker_percent, report.held
                ),
            };
            tracing::warn!(
                health.checked = checked,
                health.failing = failing,
                "{message}"
            );
            alerts::raise_fleet(
                &txn,
                self.channels,
                reason,
                (checked, failing),
                message,
                now,
            )
            .await?;
            report.alerts += 1;
        }
        txn.commit().await?;
        Ok(report)
    }
}

#[async_trait::async_trait]
impl Handler for Sweeper {
    async fn run(&self, attempt: &Attempt) -> std::result::Result<Outcome, JobFailure> {
        if !matches!(attempt.payload(), JobPayload::HealthSweep) {
            return Err(JobFailure::fatal(
                None,
                "the sweeper runs only health sweeps",
            ));
        }
        // A sweep still running from the previous slot (a slow fleet) finishes alone.
        let running = jobs::Entity::find()
            .filter(jobs::Column::Kind.eq(app::models::JobKind::HealthSweep))
            .filter(jobs::Column::State.eq(JobState::Running))
            .filter(jobs::Column::Id.ne(attempt.job.id))
            .one(&self.db)
            .await
            .map_err(|e| JobFailure::database(None, &e.into()))?;
        if let Some(other) = running {
            return Ok(Outcome::Skipped(format!(
                "sweep job #{} is still running",
                other.id
            )));
        }
        let report = attempt
            .step(JobStep::Probe, async {
                self.sweep()
                    .await
                    .map_err(|e| JobFailure::database(Some(JobStep::Probe), &e))
            })
            .await?;
        attempt
            .mark(
                JobStep::RecordChecks,
                app::models::StepState::Done,
                Some(&format!(
                    "{} checked, {} failing, {} alert(s), {} reboot(s){}; probing {} ms, writing {} ms",
                    report.checked,
                    report.failing,
                    report.alerts,
                    report.reboots,
                    report
                        .breaker
                        .map(|r| format!(", breaker tripped ({})", r.as_str()))
                        .unwrap_or_default(),
                    report.probe_ms,
                    report.write_ms
                )),
            )
            .await
            .map_err(|e| JobFailure::database(Some(JobStep::RecordChecks), &e))?;
        Ok(Outcome::Done)
    }
}
