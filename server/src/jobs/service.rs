//! `JobService`: the `/jobs` page's backend and `nest jobs`: the fleet-wide list, and retrying
//! a failed job — an organization's job through its lifecycle (`Retry`, so the organization
//! leaves `error` in the same transaction), any other job by re-queuing it, with an audit row.

use app::backend::{JobsBackend, RequestInfo};
use app::error::AppError;
use app::models::{AdminIdentity, JobPage, JobQuery, JobState, OrgEvent, OrgStatus};
use chrono::{DateTime, Utc};
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, TransactionTrait};
use serde_json::json;

use crate::audit::{self, Actor};
use crate::clock::Clock;
use crate::entities::{jobs, organizations};
use crate::error::{Error, Result};
use crate::events::{Change, Events};
use crate::organizations::{EventArgs, OrganizationService};

/// Implements [`JobsBackend`].
#[derive(Clone)]
pub struct JobService {
    /// Database pool.
    pub db: DatabaseConnection,
    /// Time source.
    pub clock: Clock,
    /// Wakes workers, tells pages.
    pub events: Events,
    /// For retries of organizations' jobs.
    pub organizations: OrganizationService,
}

impl JobService {
    /// A page of jobs.
    pub async fn list(&self, query: &JobQuery) -> Result<JobPage> {
        super::queries::list(&self.db, query).await
    }

    /// Queues failed job `id` again on behalf of `actor`.
    pub async fn retry(&self, actor: &Actor, id: i64) -> Result<()> {
        let job = jobs::Entity::find_by_id(id)
            .one(&self.db)
            .await?
            .ok_or_else(|| Error::NotFound("job".to_owned()))?;
        if job.state != JobState::Failed {
            return Err(Error::Conflict(format!(
                "job #{id} is {}; only a failed job can be retried",
                job.state
            )));
        }
        // An organization's provisioning job is retried through the lifecycle; any other job
        // (a reboot, a notification, a periodic task) is queued again as it is.
        if let (Some(org_id), true) = (job.organization_id, job.kind.is_provisioning()) {
            return self.retry_organization_job(actor, &job, org_id).await;
        }
        let now = self.clock.now();
        let txn = self.db.begin().await?;
        let requeued = jobs::Entity::update_many()
            .col_expr(jobs::Column::State, Expr::value(JobState::Queued))
            .col_expr(jobs::Column::Attempts, Expr::value(0))
            .col_expr(jobs::Column::RunAfter, Expr::value(now))
            .col_expr(
                jobs::Column::FinishedAt,
                Expr::value(Option::<DateTime<Utc>>::None),
            )
            .col_expr(jobs::Column::UpdatedAt, Expr::value(now))
            .filter(jobs::Column::Id.eq(id))
            .filter(jobs::Column::State.eq(JobState::Failed))
            .exec(&txn)
            .await?;
        if requeued.rows_affected != 1 {
            return Err(Error::Conflict(format!(
                "job #{id} changed meanwhile; reload and try again"
            )));
        }
        audit::record(
            &txn,
            actor,
            "job.retried",
            ("job", Some(id.to_string())),
            json!({"kind": job.kind, "last_error": job.last_error}),
            now,
        )
        .await?;
        txn.commit().await?;
        self.events.wake_jobs();
        self.events.publish(Change::Job(id));
        Ok(())
    }

    /// An organization's failed job is retried through the lifecycle: only the latest job of
    /// an organization in `error` can be, and the organization leaves `error` with it.
    async fn retry_organization_job(
        &self,
        actor: &Actor,
        job: &jobs::Model,
        org_id: i64,
    ) -> Result<()> {
        let org = organizations::Entity::find_by_id(org_id)
            .one(&self.db)
            .await?
            .ok_or_else(|| Error::NotFound("organization".to_owned()))?;
        if org.status != OrgStatus::Error {
            return Err(Error::Conflict(format!(
                "{} is {}, not in error: its failed job can no longer be retried",
                org.slug, org.status
            )));
        }
        let latest = jobs::Entity::find()
            .filter(jobs::Column::OrganizationId.eq(org_id))
            .filter(jobs::Column::Id.gt(job.id))
            .one(&self.db)
            .await?;
        if latest.is_some() {
            return Err(Error::Conflict(format!(
                "a newer job of {} exists; only the latest failed job can be retried",
                org.slug
            )));
        }
        self.organizations
            .apply(
                actor,
                org_id,
                OrgEvent::Retry(job.kind),
                EventArgs::default(),
            )
            .await?;
        self.events.publish(Change::Job(job.id));
        Ok(())
    }
}

#[async_trait::async_trait]
impl JobsBackend for JobService {
    async fn list(&self, query: JobQuery) -> std::result::Result<JobPage, AppError> {
        Ok(JobService::list(self, &query).await?)
    }

    async fn retry(
        &self,
        actor: &AdminIdentity,
        req: &RequestInfo,
        id: i64,
    ) -> std::result::Result<(), AppError> {
        let actor = Actor::new(req, Some(actor.user_id), &actor.email);
        Ok(JobService::retry(self, &actor, id).await?)
    }
}
