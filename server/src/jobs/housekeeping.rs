//! The handler of Nest's own periodic tasks: purge expired sessions and old login attempts,
//! reconcile Caddy with the routes table, prune finished periodic jobs.

use app::models::{JobPayload, JobState};
use chrono::{DateTime, Utc};
use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter};
use tower_sessions::ExpiredDeletion;

use super::{Attempt, Handler, JobFailure, Outcome};
use crate::admins::session_store::DbSessionStore;
use crate::clock::Clock;
use crate::entities::jobs;
use crate::error::Error;
use crate::routing::RoutingService;

/// How long finished periodic jobs are kept (provisioning jobs are kept with their org).
pub const PERIODIC_JOB_RETENTION_DAYS: i64 = 7;

/// Runs `session_purge`, `caddy_reconcile` and `job_prune`.
pub struct Housekeeping {
    /// Database pool.
    pub db: DatabaseConnection,
    /// Time source.
    pub clock: Clock,
    /// Sessions (for their expiry purge).
    pub sessions: DbSessionStore,
    /// Caddy.
    pub routing: RoutingService,
}

/// Deletes finished jobs without an organization that ended before `cutoff`.
pub async fn prune_periodic_jobs(
    db: &DatabaseConnection,
    cutoff: DateTime<Utc>,
) -> Result<u64, Error> {
    Ok(jobs::Entity::delete_many()
        .filter(jobs::Column::OrganizationId.is_null())
        .filter(jobs::Column::State.is_in([JobState::Succeeded, JobState::Failed]))
        .filter(jobs::Column::FinishedAt.lt(cutoff))
        .exec(db)
        .await?
        .rows_affected)
}

#[async_trait::async_trait]
impl Handler for Housekeeping {
    async fn run(&self, attempt: &Attempt) -> Result<Outcome, JobFailure> {
        match attempt.payload() {
            JobPayload::SessionPurge => {
                self.sessions
                    .delete_expired()
                    .await
                    .map_err(|e| JobFailure::transient(None, format!("sessions: {e}")))?;
                crate::admins::rate_limit::purge_old(&self.db, self.clock.now())
                    .await
                    .map_err(|e| JobFailure::database(None, &e))?;
                crate::admins::rate_limit::close_windows(&self.db, self.clock.now())
                    .await
                    .map_err(|e| JobFailure::database(None, &e))?;
            }
            JobPayload::CaddyReconcile => {
                self.routing
                    .reconcile()
                    .await
                    .map_err(|e| JobFailure::transient(None, format!("Caddy: {e}")))?;
            }
            JobPayload::JobPrune => {
                let cutoff = self.clock.now() - chrono::Duration::days(PERIODIC_JOB_RETENTION_DAYS);
                let pruned = prune_periodic_jobs(&self.db, cutoff)
                    .await
                    .map_err(|e| JobFailure::database(None, &e))?;
                tracing::info!(jobs.pruned = pruned, "pruned finished periodic jobs");
            }
            other => {
                return Err(JobFailure::fatal(
                    None,
                    format!("housekeeping does not run `{}` jobs", other.kind()),
                ));
            }
        }
        Ok(Outcome::Done)
    }
}
