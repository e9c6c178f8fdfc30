//! A queue worker: claims due jobs with a lease token, runs them through the registry (a panic
//! or an overlong attempt is a failed attempt), renews the lease beside the running job, and
//! ends each attempt in one transaction (see the module docs of [`crate::jobs`]).

use std::sync::Arc;
use std::time::{Duration, Instant};

use app::models::{JobKind, JobState, JobStep, StepState};
use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Alias, Expr, ExprTrait, LockBehavior, LockType, Query};
use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, DatabaseConnection, DbBackend, EntityTrait,
    QueryFilter, QueryOrder, QuerySelect, TransactionTrait,
};
use tokio::task::JoinSet;

use super::handler::{Attempt, Registry};
use super::{JobFailure, Outcome, QueueConfig, backoff, jitter, to_chrono};
use crate::clock::{Clock, random_hex};
use crate::entities::jobs;
use crate::error::Result;
use crate::events::{Change, Events};

/// One worker of the queue. Several (in one process or many, on one database) cooperate
/// through the table; cloning shares the name, [`Worker::another`] makes a new one.
#[derive(Clone)]
pub struct Worker {
    /// Database pool.
    pub db: DatabaseConnection,
    /// Time source (leases, backoff).
    pub clock: Clock,
    /// Wake-ups and live updates.
    pub events: Events,
    /// Tunables.
    pub config: Arc<QueueConfig>,
    /// The handler of each kind.
    pub registry: Arc<Registry>,
    /// This worker's lease-owner name.
    pub name: String,
}

/// Why a running job was stopped before its handler returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stopped {
    /// Another worker holds the lease now (or the job was changed under us).
    LeaseLost,
    /// Renewals failed for a whole lease period.
    Unrenewable,
}

/// Records a step's duration (metrics).
pub(crate) fn record_step(kind: JobKind, step: JobStep, ok: bool, took: Duration) {
    crate::metrics::job_step(
        kind.as_str(),
        step.as_str(),
        if ok { "done" } else { "failed" },
        took.as_secs_f64(),
    );
}

/// The text of a caught panic.
fn panic_message(panic: Box<dyn std::any::Any + Send>) -> String {
    if let Some(s) = panic.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else {
        "a panic without a message".to_owned()
    }
}

impl Worker {
    /// A worker name unique to this process and worker.
    pub fn new_name() -> String {
        format!(
            "{}-{}-{}",
            std::env::var("HOSTNAME").unwrap_or_else(|_| "nest".to_owned()),
            std::process::id(),
            random_hex(3)
        )
    }

    /// Another worker with the same settings and handlers under its own name (as a second
    /// process would be).
    #[must_use]
    pub fn another(&self) -> Self {
        Self {
            name: Self::new_name(),
            ..self.clone()
        }
    }

    /// Runs until the process ends: claims due jobs every `interval`, at once when a job is
    /// queued, and when a retry or a lapsed lease falls due. Errors are logged and retried;
    /// the supervisor restarts the loop if it panics.
    pub async fn run(self) -> anyhow::Result<()> {
        let mut running: JoinSet<()> = JoinSet::new();
        loop {
            while running.len() < self.config.parallel {
                match self.claim().await {
                    Ok(Some(attempt)) => {
                        let worker = self.clone();
                        running.spawn(async move { worker.execute(attempt).await });
                    }
                    Ok(None) => break,
                    Err(e) => {
                        tracing::warn!(error.detail = %e, "could not claim jobs");
                        break;
                    }
                }
            }
            let mut wait = self.config.interval;
            if let Ok(Some(due)) = self.next_due().await {
                let until = (due - self.clock.now()).to_std().unwrap_or(Duration::ZERO);
                wait = wait.min(until.max(Duration::from_millis(200)));
            }
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                () = self.events.jobs_queued() => {}
                Some(_) = running.join_next(), if !running.is_empty() => {}
            }
        }
    }

    /// Claims and runs every job that is due now, in parallel batches, until none is left.
    /// Returns how many attempts ran. (Tests and the CLI use this; [`Worker::run`] is the
    /// long-running form.)
    pub async fn run_until_idle(&self) -> Result<usize> {
        let mut total = 0;
        loop {
            let mut batch = JoinSet::new();
            while batch.len() < self.config.parallel {
                match self.claim().await? {
                    Some(attempt) => {
                        let worker = self.clone();
                        batch.spawn(async move { worker.execute(attempt).await });
                    }
                    None => break,
                }
            }
            if batch.is_empty() {
                return Ok(total);
            }
            total += batch.len();
            while batch.join_next().await.is_some() {}
        }
    }

    /// When the next job falls due: a queued job's `run_after`, or a running job's lease expiry
    /// (its worker may have died).
    async fn next_due(&self) -> Result<Option<DateTime<Utc>>> {
        let queued = jobs::Entity::find()
            .filter(jobs::Column::State.eq(JobState::Queued))
            .order_by_asc(jobs::Column::RunAfter)
            .one(&self.db)
            .await?
            .map(|j| j.run_after);
        let lease = jobs::Entity::find()
            .filter(jobs::Column::State.eq(JobState::Running))
            .filter(jobs::Column::LeaseExpiresAt.is_not_null())
            .order_by_asc(jobs::Column::LeaseExpiresAt)
            .one(&self.db)
            .await?
            .and_then(|j| j.lease_expires_at);
        Ok(match (queued, lease) {
            (Some(a), Some(b)) => Some(Ord::min(a, b)),
            (a, b) => a.or(b),
        })
    }

    /// Claims one due job, or `None`. A lapsed job that has used all its attempts is ended
    /// `failed` on the way (with its domain's hook) instead of being run again.
    pub async fn claim(&self) -> Result<Option<Attempt>> {
        let started = Instant::now();
        loop {
            let token = random_hex(16);
            let candidate = if self.db.get_database_backend() == DbBackend::Postgres {
                let txn = self.db.begin().await?;
                let job = self.claim_on(&txn, &token).await?;
                txn.commit().await?;
                job
            } else {
                self.claim_on(&self.db, &token).await?
            };
            let Some(candidate) = candidate else {
                crate::metrics::job_claim(started.elapsed().as_secs_f64());
                return Ok(None);
            };
            match candidate {
                Candidate::Exhausted(job) => {
                    self.expire(&job).await?;
                    continue;
                }
                Candidate::Claimed(job) => {
                    if job.state == JobState::Running {
                        tracing::warn!(job.id = job.id, job.kind = %job.kind, lease.owner = ?job.lease_owner, job.attempt = job.attempts + 1, "taking over a job whose lease lapsed");
                    }
                    crate::metrics::job_claim(started.elapsed().as_secs_f64());
                    let Some(job) = jobs::Entity::find_by_id(job.id).one(&self.db).await? else {
                        return Ok(None);
                    };
                    let attempt = Attempt {
                        job,
                        token,
                        db: self.db.clone(),
                        clock: self.clock.clone(),
                        events: self.events.clone(),
                    };
                    attempt.publish();
                    return Ok(Some(attempt));
                }
            }
        }
    }

    /// Finds a candidate on `conn` and claims it with `token`.
    async fn claim_on<C: ConnectionTrait>(
        &self,
        conn: &C,
        token: &str,
    ) -> Result<Option<Candidate>> {
        let now = self.clock.now();
        let earlier = Alias::new("earlier");
        let blocker = Query::select()
            .expr(Expr::val(1))
            .from_as(jobs::Entity, earlier.clone())
            .and_where(
                Expr::col((earlier.clone(), jobs::Column::QueueKey))
                    .equals((jobs::Entity, jobs::Column::QueueKey)),
            )
            .and_where(
                Expr::col((earlier.clone(), jobs::Column::State))
                    .is_in([JobState::Queued.as_str(), JobState::Running.as_str()]),
            )
            .and_where(
                Expr::col((earlier, jobs::Column::Id))
                    .lt(Expr::col((jobs::Entity, jobs::Column::Id))),
            )
            .to_owned();
        let candidate = jobs::Entity::find()
            .filter(
                Condition::any()
                    .add(
                        Condition::all()
                            .add(jobs::Column::State.eq(JobState::Queued))
                            .add(jobs::Column::RunAfter.lte(now)),
                    )
                    .add(
                        Condition::all()
                            .add(jobs::Column::State.eq(JobState::Running))
                            .add(jobs::Column::LeaseExpiresAt.lt(now)),
                    ),
            )
            .filter(Expr::exists(blocker).not())
            .order_by_asc(jobs::Column::RunAfter)
            .order_by_asc(jobs::Column::Id)
            .lock_with_behavior(LockType::Update, LockBehavior::SkipLocked)
            .one(conn)
            .await?;
        let Some(job) = candidate else {
            return Ok(None);
        };
        if job.state == JobState::Running && job.attempts >= job.max_attempts {
            return Ok(Some(Candidate::Exhausted(job)));
        }
        let lease_until = now + to_chrono(self.config.lease);
        let claimed = jobs::Entity::update_many()
            .col_expr(jobs::Column::State, Expr::value(JobState::Running))
            .col_expr(jobs::Column::LeaseOwner, Expr::value(self.name.clone()))
            .col_expr(jobs::Column::LeaseToken, Expr::value(token.to_owned()))
            .col_expr(jobs::Column::LeaseExpiresAt, Expr::value(lease_until))
            .col_expr(jobs::Column::Attempts, Expr::value(job.attempts + 1))
            .col_expr(
                jobs::Column::StartedAt,
                Expr::value(job.started_at.unwrap_or(now)),
            )
            .col_expr(jobs::Column::UpdatedAt, Expr::value(now))
            .filter(jobs::Column::Id.eq(job.id))
            .filter(jobs::Column::State.eq(job.state))
            .filter(jobs::Column::Attempts.eq(job.attempts))
            .exec(conn)
            .await?;
        Ok((claimed.rows_affected == 1).then_some(Candidate::Claimed(job)))
    }

    /// Ends a lapsed job that has no attempt left: `failed`, with its domain's hook.
    async fn expire(&self, job: &jobs::Model) -> Result<()> {
        let message = format!(
            "its worker stopped renewing the lease and all {} attempts are used",
            job.max_attempts
        );
        tracing::error!(job.id = job.id, job.kind = %job.kind, lease.owner = ?job.lease_owner, "a job's lease lapsed after its last attempt; it failed for good");
        let now = self.clock.now();
        let txn = self.db.begin().await?;
        let mut update = released(now)
            .col_expr(jobs::Column::State, Expr::value(JobState::Failed))
            .col_expr(jobs::Column::LastError, Expr::value(Some(message.clone())))
            .col_expr(jobs::Column::FinishedAt, Expr::value(Some(now)))
            .filter(jobs::Column::Id.eq(job.id))
            .filter(jobs::Column::State.eq(JobState::Running))
            .filter(jobs::Column::LeaseExpiresAt.lt(now));
        update = match &job.lease_token {
            Some(token) => update.filter(jobs::Column::LeaseToken.eq(token.as_str())),
            None => update.filter(jobs::Column::LeaseToken.is_null()),
        };
        if update.exec(&txn).await?.rows_affected == 1
            && let Some(handler) = self.registry.get(job.kind)
        {
            handler.failed(&txn, job, &message).await?;
        }
        txn.commit().await?;
        crate::metrics::job_finished(job.kind.as_str(), "failed", 0.0);
        self.publish(job).await;
        Ok(())
    }

    /// Renews the lease every third of its length while the job runs. Returns when the lease
    /// is gone (another worker took the job over) or could not be renewed for a whole lease
    /// period (the database is unreachable: another worker may take over, so stop).
    async fn keep_lease(&self, attempt: &Attempt) -> Stopped {
        let every = (self.config.lease / 3).max(Duration::from_millis(50));
        let mut last_renewed = Instant::now();
        loop {
            tokio::time::sleep(every).await;
            match self.renew(attempt.job.id, &attempt.token).await {
                Ok(true) => last_renewed = Instant::now(),
                Ok(false) => return Stopped::LeaseLost,
                Err(e) => {
                    tracing::warn!(job.id = attempt.job.id, job.kind = %attempt.job.kind, error.detail = %e, "could not renew a job lease");
                    if last_renewed.elapsed() >= self.config.lease {
                        return Stopped::Unrenewable;
                    }
                }
            }
        }
    }

    /// Extends the lease of job `id` held with `token`. `false`: the token no longer holds it.
    pub async fn renew(&self, id: i64, token: &str) -> Result<bool> {
        let now = self.clock.now();
        let renewed = jobs::Entity::update_many()
            .col_expr(
                jobs::Column::LeaseExpiresAt,
                Expr::value(now + to_chrono(self.config.lease)),
            )
            .filter(jobs::Column::Id.eq(id))
            .filter(jobs::Column::State.eq(JobState::Running))
            .filter(jobs::Column::LeaseToken.eq(token))
            .exec(&self.db)
            .await?;
        Ok(renewed.rows_affected == 1)
    }

    /// Runs one claimed attempt to its end (success, retry or failure).
    pub async fn execute(&self, attempt: Attempt) {
        let job = attempt.job.clone();
        tracing::info!(job.id = job.id, job.kind = %job.kind, org.id = job.organization_id, job.attempt = job.attempts, "job started");
        let started = Instant::now();
        let result = match self.registry.get(job.kind) {
            None => Some(Err(JobFailure::fatal(
                None,
                format!("no handler is registered for `{}` jobs", job.kind),
            ))),
            Some(handler) => {
                let running = attempt.clone();
                let mut task = tokio::spawn(async move { handler.run(&running).await });
                // If this attempt is dropped (shutdown), the job's own task stops with it.
                let _guard = super::supervise::AbortOnDrop(task.abort_handle());
                let timeout = tokio::time::sleep(self.config.attempt_timeout);
                tokio::select! {
                    joined = &mut task => Some(match joined {
                        Ok(result) => result,
                        Err(e) if e.is_panic() => {
                            let message = panic_message(e.into_panic());
                            tracing::error!(job.id = job.id, job.kind = %job.kind, panic.message = %message, "a job panicked; the attempt counts as failed");
                            Err(JobFailure::transient(None, format!("the job panicked: {message}")))
                        }
                        Err(_) => Err(JobFailure::transient(None, "the job was cancelled")),
                    }),
                    stopped = self.keep_lease(&attempt) => {
                        task.abort();
                        match stopped {
                            Stopped::LeaseLost => tracing::warn!(job.id = job.id, job.kind = %job.kind, "lease lost; stopped the job (another worker holds it now)"),
                            Stopped::Unrenewable => tracing::error!(job.id = job.id, job.kind = %job.kind, "could not renew the lease for a whole lease period; stopped the job so that another worker can take it over"),
                        }
                        None
                    }
                    () = timeout => {
                        task.abort();
                        tracing::error!(job.id = job.id, job.kind = %job.kind, timeout.secs = self.config.attempt_timeout.as_secs(), "a job attempt ran too long; stopped it");
                        Some(Err(JobFailure::transient(None, format!(
                            "the attempt did not finish within {} s",
                            self.config.attempt_timeout.as_secs()
                        ))))
                    }
                }
            }
        };
        let took = started.elapsed().as_secs_f64();
        let finished = match result {
            None => Ok(()),
            Some(Ok(outcome)) => self.succeed(&attempt, outcome, took).await,
            Some(Err(failure)) => self.fail(&attempt, failure, took).await,
        };
        if let Err(e) = finished {
            tracing::error!(job.id = job.id, job.kind = %job.kind, error.detail = %e, "could not record the end of a job; its lease will lapse and it will run again");
        }
        self.publish(&job).await;
    }

    async fn succeed(&self, attempt: &Attempt, outcome: Outcome, took: f64) -> Result<()> {
        let job = &attempt.job;
        let now = self.clock.now();
        let note = match &outcome {
            Outcome::Skipped(reason) => Some(format!("skipped: {reason}")),
            Outcome::Done => None,
        };
        let ended = released(now)
            .col_expr(jobs::Column::State, Expr::value(JobState::Succeeded))
            .col_expr(jobs::Column::FinishedAt, Expr::value(Some(now)))
            .col_expr(jobs::Column::LastError, Expr::value(note))
            .filter(jobs::Column::Id.eq(job.id))
            .filter(jobs::Column::LeaseToken.eq(attempt.token.as_str()))
            .exec(&self.db)
            .await?;
        if ended.rows_affected == 0 {
            tracing::warn!(job.id = job.id, job.kind = %job.kind, "the job finished after losing its lease; its result is discarded");
            return Ok(());
        }
        crate::metrics::job_finished(job.kind.as_str(), "succeeded", took);
        tracing::info!(job.id = job.id, job.kind = %job.kind, org.id = job.organization_id, job.outcome = ?outcome, "job succeeded");
        Ok(())
    }

    async fn fail(&self, attempt: &Attempt, failure: JobFailure, took: f64) -> Result<()> {
        let job = &attempt.job;
        let now = self.clock.now();
        let message: String = failure.to_string().chars().take(2000).collect();
        if let Some(step) = failure.step {
            let _ = attempt
                .mark(step, StepState::Failed, Some(&failure.message))
                .await;
        }
        let txn = self.db.begin().await?;
        let base = released(now)
            .col_expr(jobs::Column::LastError, Expr::value(Some(message.clone())))
            .filter(jobs::Column::Id.eq(job.id))
            .filter(jobs::Column::LeaseToken.eq(attempt.token.as_str()));
        if failure.retryable && job.attempts < job.max_attempts {
            let delay = to_chrono(backoff(&self.config, job.attempts, jitter()));
            let run_after = failure
                .retry_at
                .map_or(now + delay, |at| Ord::max(at, now + delay));
            base.col_expr(jobs::Column::State, Expr::value(JobState::Queued))
                .col_expr(jobs::Column::RunAfter, Expr::value(run_after))
                .exec(&txn)
                .await?;
            txn.commit().await?;
            crate::metrics::job_finished(job.kind.as_str(), "retried", took);
            tracing::warn!(job.id = job.id, job.kind = %job.kind, org.id = job.organization_id, job.attempt = job.attempts, job.retry_at = %run_after, error.detail = %message, "job attempt failed; will retry");
            return Ok(());
        }
        let updated = base
            .col_expr(jobs::Column::State, Expr::value(JobState::Failed))
            .col_expr(jobs::Column::FinishedAt, Expr::value(Some(now)))
            .exec(&txn)
            .await?;
        if updated.rows_affected == 1
            && let Some(handler) = self.registry.get(job.kind)
        {
            handler.failed(&txn, job, &message).await?;
        }
        txn.commit().await?;
        crate::metrics::job_finished(job.kind.as_str(), "failed", took);
        tracing::error!(job.id = job.id, job.kind = %job.kind, org.id = job.organization_id, job.attempt = job.attempts, error.detail = %message, "job failed for good");
        Ok(())
    }

    /// Tells open pages how a job ended: always for an organization's job; for a periodic task
    /// only when it `failed` for good, so that routine tasks never make open pages refetch.
    async fn publish(&self, job: &jobs::Model) {
        match job.organization_id {
            Some(org) => {
                self.events.publish(Change::Job(job.id));
                self.events.publish(Change::Organization(org));
            }
            None => {
                let failed = jobs::Entity::find_by_id(job.id)
                    .one(&self.db)
                    .await
                    .ok()
                    .flatten()
                    .is_some_and(|j| j.state == JobState::Failed);
                if failed {
                    self.events.publish(Change::Job(job.id));
                }
            }
        }
    }
}

/// An update of jobs that gives up the lease (owner, token and expiry cleared) at `now`; the
/// caller adds the state it ends in and the conditions (always the id and the lease token).
fn released(now: DateTime<Utc>) -> sea_orm::UpdateMany<jobs::Entity> {
    jobs::Entity::update_many()
        .col_expr(
            jobs::Column::LeaseOwner,
            Expr::value(Option::<String>::None),
        )
        .col_expr(
            jobs::Column::LeaseToken,
            Expr::value(Option::<String>::None),
        )
        .col_expr(
            jobs::Column::LeaseExpiresAt,
            Expr::value(Option::<DateTime<Utc>>::None),
        )
        .col_expr(jobs::Column::UpdatedAt, Expr::value(now))
}

/// What a claim found.
enum Candidate {
    /// Claimed (the row as it was before the claim).
    Claimed(jobs::Model),
    /// A lapsed job with no attempt left.
    Exhausted(jobs::Model),
}
