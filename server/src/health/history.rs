//! Bounded health history: the hourly `health_rollup` job rolls each complete hour of raw
//! checks up per server (checks, failures per service, latency p50/p95 per service), then
//! prunes raw checks past `NEST_HEALTH_RAW_RETENTION_HOURS`, roll-ups past
//! `NEST_HEALTH_ROLLUP_RETENTION_DAYS`, and closed incidents, their alerts and fleet alerts as
//! old as the roll-ups. Rolling up is idempotent (an upsert per server and hour), so a rerun or
//! a second replica changes nothing.
//!
//! Size at 10,000 servers and 288 sweeps a day: raw checks stay at 48 h × 12 × 10,000 = 5.8 M
//! rows; roll-ups at 400 × 24 × 10,000 = 96 M small rows at most (a server that existed the
//! whole time); both stop growing.

use std::collections::BTreeMap;
use std::sync::Arc;

use app::models::{HealthStatus, JobPayload, JobStep};
use chrono::{DateTime, Duration, DurationRound, Utc};
use sea_orm::sea_query::OnConflict;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect, TransactionTrait,
};

use super::HealthSettings;
use crate::clock::Clock;
use crate::entities::{
    health_alerts, health_checks, health_fleet_alerts, health_incidents, health_rollups,
};
use crate::error::Result;
use crate::jobs::{Attempt, Handler, JobFailure, Outcome};

/// Runs `health_rollup` jobs.
#[derive(Clone)]
pub struct History {
    /// Database pool.
    pub db: DatabaseConnection,
    /// Time source.
    pub clock: Clock,
    /// Retention periods.
    pub settings: Arc<HealthSettings>,
}

/// The nearest-rank percentile `p` (0–100) of `sorted` values.
pub fn percentile(sorted: &[i32], p: usize) -> Option<i32> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (sorted.len() * p).div_ceil(100).max(1);
    sorted.get(rank - 1).copied()
}

/// One server's hour, being summed up.
#[derive(Default)]
struct Hour {
    organization_id: i64,
    checks: i32,
    failures: i32,
    down: [i32; 3],
    ms: [Vec<i32>; 3],
}

type CheckRow = (
    i64,
    i64,
    HealthStatus,
    bool,
    bool,
    bool,
    Option<i32>,
    Option<i32>,
    Option<i32>,
);

/// What one run did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HistoryReport {
    /// Server-hours written.
    pub rolled_up: usize,
    /// Raw checks deleted.
    pub raw_pruned: u64,
    /// Roll-ups deleted.
    pub rollups_pruned: u64,
}

impl History {
    /// Rolls up one hour (`[start, start + 1 h)`) for every server that has checks in it.
    async fn roll_up_hour(&self, start: DateTime<Utc>) -> Result<usize> {
        let rows: Vec<CheckRow> = health_checks::Entity::find()
            .select_only()
            .column(health_checks::Column::VpsId)
            .column(health_checks::Column::OrganizationId)
            .column(health_checks::Column::Status)
            .column(health_checks::Column::ConvexUp)
            .column(health_checks::Column::WebUp)
            .column(health_checks::Column::MtaUp)
            .column(health_checks::Column::ConvexMs)
            .column(health_checks::Column::WebMs)
            .column(health_checks::Column::MtaMs)
            .filter(health_checks::Column::CheckedAt.gte(start))
            .filter(health_checks::Column::CheckedAt.lt(start + Duration::hours(1)))
            .into_tuple()
            .all(&self.db)
            .await?;
        let mut hours: BTreeMap<i64, Hour> = BTreeMap::new();
        for (vps_id, org_id, status, c, w, m, cms, wms, mms) in rows {
            let h = hours.entry(vps_id).or_default();
            h.organization_id = org_id;
            h.checks += 1;
            h.failures += i32::from(status != HealthStatus::Healthy);
            for (i, (up, ms)) in [(c, cms), (w, wms), (m, mms)].into_iter().enumerate() {
                h.down[i] += i32::from(!up);
                if let (true, Some(ms)) = (up, ms) {
                    h.ms[i].push(ms);
                }
            }
        }
        let count = hours.len();
        let models: Vec<health_rollups::ActiveModel> = hours
            .into_iter()
            .map(|(vps_id, mut h)| {
                for v in &mut h.ms {
                    v.sort_unstable();
                }
                health_rollups::ActiveModel {
                    vps_id: Set(vps_id),
                    organization_id: Set(h.organization_id),
                    hour: Set(start),
                    checks: Set(h.checks),
                    failures: Set(h.failures),
                    convex_failures: Set(h.down[0]),
                    web_failures: Set(h.down[1]),
                    mta_failures: Set(h.down[2]),
                    convex_p50_ms: Set(percentile(&h.ms[0], 50)),
                    convex_p95_ms: Set(percentile(&h.ms[0], 95)),
                    web_p50_ms: Set(percentile(&h.ms[1], 50)),
                    web_p95_ms: Set(percentile(&h.ms[1], 95)),
                    mta_p50_ms: Set(percentile(&h.ms[2], 50)),
                    mta_p95_ms: Set(percentile(&h.ms[2], 95)),
                    ..Default::default()
                }
            })
            .collect();
        let txn = self.db.begin().await?;
        for chunk in models.chunks(500) {
            health_rollups::Entity::insert_many(chunk.to_vec())
                .on_conflict(
                    OnConflict::columns([
                        health_rollups::Column::VpsId,
                        health_rollups::Column::Hour,
                    ])
                    .update_columns([
                        health_rollups::Column::Checks,
                        health_rollups::Column::Failures,
                        health_rollups::Column::ConvexFailures,
                        health_rollups::Column::WebFailures,
                        health_rollups::Column::MtaFailures,
                        health_rollups::Column::ConvexP50Ms,
                        health_rollups::Column::ConvexP95Ms,
                        health_rollups::Column::WebP50Ms,
                        health_rollups::Column::WebP95Ms,
                        health_rollups::Column::MtaP50Ms,
                        health_rollups::Column::MtaP95Ms,
                    ])
                    .to_owned(),
                )
                .exec_without_returning(&txn)
                .await?;
        }
        txn.commit().await?;
        Ok(count)
    }

    /// Rolls up every complete hour since the last roll-up (within the raw retention), then
    /// prunes.
    pub async fn run_once(&self) -> Result<HistoryReport> {
        let now = self.clock.now();
        let this_hour = now.duration_trunc(Duration::hours(1)).unwrap_or(now);
        let last: Option<DateTime<Utc>> = health_rollups::Entity::find()
            .select_only()
            .column(health_rollups::Column::Hour)
            .order_by_desc(health_rollups::Column::Hour)
            .into_tuple()
            .one(&self.db)
            .await?;
        let first_raw: Option<DateTime<Utc>> = health_checks::Entity::find()
            .select_only()
            .column(health_checks::Column::CheckedAt)
            .order_by_asc(health_checks::Column::CheckedAt)
            .into_tuple()
            .one(&self.db)
            .await?;
        let mut report = HistoryReport::default();
        // The last rolled hour is rolled again: checks written late in it are counted.
        let mut hour = match (last, first_raw) {
            (Some(last), _) => last,
            (None, Some(first)) => first.duration_trunc(Duration::hours(1)).unwrap_or(first),
            (None, None) => this_hour,
        };
        hour = Ord::max(hour, this_hour - self.settings.raw_retention);
        while hour < this_hour {
            report.rolled_up += self.roll_up_hour(hour).await?;
            hour += Duration::hours(1);
        }
        let raw_cutoff = now - self.settings.raw_retention;
        report.raw_pruned = health_checks::Entity::delete_many()
            .filter(health_checks::Column::CheckedAt.lt(raw_cutoff))
            .exec(&self.db)
            .await?
            .rows_affected;
        let long_cutoff = now - self.settings.rollup_retention;
        report.rollups_pruned = health_rollups::Entity::delete_many()
            .filter(health_rollups::Column::Hour.lt(long_cutoff))
            .exec(&self.db)
            .await?
            .rows_affected;
        let old_incidents = health_incidents::Entity::find()
            .select_only()
            .column(health_incidents::Column::Id)
            .filter(health_incidents::Column::ClosedAt.lt(long_cutoff))
            .into_tuple::<i64>()
            .all(&self.db)
            .await?;
        for chunk in old_incidents.chunks(500) {
            health_alerts::Entity::delete_many()
                .filter(health_alerts::Column::IncidentId.is_in(chunk.iter().copied()))
                .exec(&self.db)
                .await?;
            health_incidents::Entity::delete_many()
                .filter(health_incidents::Column::Id.is_in(chunk.iter().copied()))
                .exec(&self.db)
                .await?;
        }
        health_fleet_alerts::Entity::delete_many()
            .filter(health_fleet_alerts::Column::CreatedAt.lt(long_cutoff))
            .exec(&self.db)
            .await?;
        Ok(report)
    }
}

#[async_trait::async_trait]
impl Handler for History {
    async fn run(&self, attempt: &Attempt) -> std::result::Result<Outcome, JobFailure> {
        if !matches!(attempt.payload(), JobPayload::HealthRollup) {
            return Err(JobFailure::fatal(None, "history runs only health roll-ups"));
        }
        let report = attempt
            .step(JobStep::Rollup, async {
                self.run_once()
                    .await
                    .map_err(|e| JobFailure::database(Some(JobStep::Rollup), &e))
            })
            .await?;
        tracing::info!(
            health.rolled_up = report.rolled_up,
            health.raw_pruned = report.raw_pruned,
            health.rollups_pruned = report.rollups_pruned,
            "health history rolled up and pruned"
        );
        Ok(Outcome::Done)
    }
}

#[cfg(test)]
mod tests {
    use super::percentile;

    #[test]
    fn percentiles_are_nearest_rank() {
        let v: Vec<i32> = (1..=100).collect();
        assert_eq!(percentile(&v, 50), Some(50));
        assert_eq!(percentile(&v, 95), Some(95));
        assert_eq!(percentile(&[7], 95), Some(7));
        assert_eq!(percentile(&[1, 2], 50), Some(1));
        assert_eq!(percentile(&[1, 2], 95), Some(2));
        assert_eq!(percentile(&[], 50), None);
    }
}
