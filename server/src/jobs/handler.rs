//! What a domain plugs into the queue: a [`Handler`] per job kind, kept in one [`Registry`],
//! and the [`Attempt`] a handler runs with (the claimed job, its typed payload, and progress
//! writes conditional on the claim's lease token).

use std::collections::HashMap;
use std::sync::Arc;

use app::models::{JobKind, JobPayload, JobStep, StepState};
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, DatabaseConnection, DatabaseTransaction, EntityTrait, QueryFilter};

use super::{JobFailure, Outcome};
use crate::clock::Clock;
use crate::entities::jobs;
use crate::error::Result;
use crate::events::{Change, Events};

/// Runs the jobs of one or more kinds.
#[async_trait::async_trait]
pub trait Handler: Send + Sync {
    /// Runs (or resumes) one attempt of `attempt.job`. Written to be resumed at any point: a
    /// previous attempt may have stopped anywhere.
    async fn run(&self, attempt: &Attempt) -> std::result::Result<Outcome, JobFailure>;

    /// The domain's reaction to the job failing for good, inside the transaction that marks it
    /// `failed` (e.g. the organization moves to `error`). Nothing by default.
    async fn failed(
        &self,
        _txn: &DatabaseTransaction,
        _job: &jobs::Model,
        _message: &str,
    ) -> Result<()> {
        Ok(())
    }
}

/// The handler of every job kind, registered once at start-up.
#[derive(Clone, Default)]
pub struct Registry {
    handlers: HashMap<JobKind, Arc<dyn Handler>>,
}

impl Registry {
    /// Registers `handler` for `kinds` (replacing an earlier one).
    #[must_use]
    pub fn with(mut self, kinds: &[JobKind], handler: Arc<dyn Handler>) -> Self {
        for kind in kinds {
            self.handlers.insert(*kind, handler.clone());
        }
        self
    }

    /// The handler of `kind`.
    pub fn get(&self, kind: JobKind) -> Option<Arc<dyn Handler>> {
        self.handlers.get(&kind).cloned()
    }
}

/// One claimed attempt of a job, as its handler sees it.
#[derive(Clone)]
pub struct Attempt {
    /// The job as claimed (its `attempts` already counts this attempt).
    pub job: jobs::Model,
    /// The claim's lease token.
    pub(crate) token: String,
    pub(crate) db: DatabaseConnection,
    pub(crate) clock: Clock,
    pub(crate) events: Events,
}

impl std::ops::Deref for Attempt {
    type Target = jobs::Model;

    fn deref(&self) -> &jobs::Model {
        &self.job
    }
}

impl Attempt {
    /// The typed payload.
    pub fn payload(&self) -> &JobPayload {
        &self.job.payload
    }

    /// The organization of a provisioning job (a failure for any other kind).
    pub fn organization_id(&self) -> std::result::Result<i64, JobFailure> {
        self.job
            .payload
            .organization_id()
            .ok_or_else(|| JobFailure::fatal(None, "the job belongs to no organization"))
    }

    /// Records `step` as `state` in the job's progress — only while this attempt still holds
    /// the lease (a worker that lost its job writes nothing).
    pub async fn mark(&self, step: JobStep, state: StepState, detail: Option<&str>) -> Result<()> {
        let Some(job) = jobs::Entity::find_by_id(self.job.id).one(&self.db).await? else {
            return Ok(());
        };
        if job.lease_token.as_deref() != Some(self.token.as_str()) {
            return Ok(());
        }
        let now = self.clock.now();
        let mut progress = job.progress;
        progress.record(step, state, now, self.job.attempts, detail);
        jobs::Entity::update_many()
            .col_expr(jobs::Column::Progress, Expr::value(progress))
            .col_expr(jobs::Column::UpdatedAt, Expr::value(now))
            .filter(jobs::Column::Id.eq(self.job.id))
            .filter(jobs::Column::LeaseToken.eq(self.token.as_str()))
            .exec(&self.db)
            .await?;
        self.publish();
        Ok(())
    }

    /// Runs `work` as `step`: marks it running, then done (or failed, by the worker).
    pub async fn step<T, F>(&self, step: JobStep, work: F) -> std::result::Result<T, JobFailure>
    where
        F: std::future::Future<Output = std::result::Result<T, JobFailure>>,
    {
        self.mark(step, StepState::Running, None)
            .await
            .map_err(|e| JobFailure::database(Some(step), &e))?;
        let started = std::time::Instant::now();
        let result = work.await.map_err(|mut f| {
            f.step = f.step.or(Some(step));
            f
        });
        crate::jobs::worker::record_step(self.job.kind, step, result.is_ok(), started.elapsed());
        if result.is_ok() {
            self.mark(step, StepState::Done, None)
                .await
                .map_err(|e| JobFailure::database(Some(step), &e))?;
        }
        result
    }

    /// Tells open pages the job and its organization changed. The progress of a job without
    /// an organization (a periodic task) is not published: it would make every open page
    /// refetch on each task; `/jobs` hears when such a job fails (see `Worker::publish`).
    pub(crate) fn publish(&self) {
        if let Some(org) = self.job.organization_id {
            self.events.publish(Change::Job(self.job.id));
            self.events.publish(Change::Organization(org));
        }
    }
}
