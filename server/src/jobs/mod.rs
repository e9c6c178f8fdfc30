//! The job queue every domain uses: durable jobs in the `jobs` table, claimed with leases by
//! workers in any number of `nest serve` processes sharing the database, run by the handler
//! registered for their kind, retried with backoff, and ended in one transaction that also runs
//! the domain's failure hook.
//!
//! - **Typed jobs**: a job is queued with a [`JobPayload`] (an enum in `app::models`, stored as
//!   JSON with its kind as the tag and read back as the type). The payload decides the kind,
//!   the organization and the serialization key.
//! - **Serialization** (`queue_key`, optional): a job is claimable only when no older job with
//!   the same key is unfinished, so an organization's jobs run one at a time, in order.
//! - **Idempotent enqueue** (`unique_key`, optional): a second enqueue with the same key does
//!   nothing; the scheduler relies on it for "once per slot across replicas".
//! - **Claiming**: PostgreSQL locks the candidate `FOR UPDATE SKIP LOCKED` in a transaction;
//!   SQLite reads the candidate outside a transaction (a read-then-write transaction fails with
//!   `SQLITE_BUSY_SNAPSHOT` there). On both the claim is an update conditional on the state and
//!   attempt count read, and it writes a fresh random `lease_token`.
//! - **Leases** ([`worker`]): renewal, progress writes and completion are all conditional on the
//!   claim's token, so a worker that lost its job — to a takeover, even in the same process —
//!   can never renew, record or complete it. A worker whose renewals keep failing for a whole
//!   lease period stops the job. A lapsed lease lets another worker take the job over; a
//!   takeover counts as an attempt, and a job that has used all its attempts ends `failed`.
//! - **Clock**: leases are compared with the *process* clock ([`Clock`]), not the database's:
//!   tests move it, and it is the clock the rest of Nest uses. A lease is renewed every third of
//!   its length, so its expiry is always at least ⅔ of a lease ahead of its holder's clock; a
//!   takeover by mistake needs another replica's clock to run ahead by more than that (40 s with
//!   the default 60 s lease). Keep replicas NTP-synchronized well inside that.
//! - **Failures**: a retryable failure re-queues the job with exponential backoff and jitter
//!   (never before a rate limit's reset); a final one (or the last attempt) marks it `failed`
//!   and calls the handler's [`Handler::failed`] hook in the same transaction. A panic inside a
//!   job is caught, logged with `job.id` and `job.kind`, and counts as a failed attempt; an
//!   attempt that outlives `attempt_timeout` is stopped and counts as one too.
//!
//! [`scheduler`] enqueues periodic tasks once per slot; [`supervise`] restarts background tasks.

pub mod handler;
pub mod housekeeping;
pub mod queries;
pub mod scheduler;
pub mod service;
pub mod supervise;
pub mod worker;

use std::fmt;
use std::time::Duration;

use app::models::{JobPayload, JobProgress, JobState, JobStep};
use chrono::{DateTime, Utc};
use sea_orm::sea_query::OnConflict;
use sea_orm::{ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter};

pub use handler::{Attempt, Handler, Registry};
pub use worker::Worker;

use crate::entities::jobs;
use crate::error::Result;

/// The queue's tunables (`NEST_JOB_*`; tests shorten them).
#[derive(Debug, Clone)]
pub struct QueueConfig {
    /// How often a worker looks for due jobs when nothing wakes it (`NEST_JOB_INTERVAL_SECS`).
    pub interval: Duration,
    /// How long a claim lasts without renewal (`NEST_JOB_LEASE_SECS`).
    pub lease: Duration,
    /// Jobs one process runs at once (`NEST_JOB_WORKERS`).
    pub parallel: usize,
    /// First retry delay; doubles per attempt.
    pub backoff_base: Duration,
    /// Longest retry delay.
    pub backoff_max: Duration,
    /// The longest one attempt may run before it is stopped (`NEST_JOB_ATTEMPT_TIMEOUT_SECS`).
    pub attempt_timeout: Duration,
}

impl Default for QueueConfig {
    fn default() -> Self {
        Self {
            interval: Duration::from_secs(60),
            lease: Duration::from_secs(60),
            parallel: 8,
            backoff_base: Duration::from_secs(10),
            backoff_max: Duration::from_secs(600),
            attempt_timeout: Duration::from_secs(1800),
        }
    }
}

/// Attempts a job gets unless its enqueuer says otherwise.
pub const DEFAULT_MAX_ATTEMPTS: i32 = 5;

/// A job to queue.
#[derive(Debug, Clone)]
pub struct NewJob {
    /// What to do.
    pub payload: JobPayload,
    /// Makes the enqueue idempotent (see the module docs).
    pub unique_key: Option<String>,
    /// Attempts before the job fails for good.
    pub max_attempts: i32,
    /// Not run before.
    pub run_after: DateTime<Utc>,
}

impl NewJob {
    /// A job due at `now` with the default attempts and no unique key.
    pub fn now(payload: JobPayload, now: DateTime<Utc>) -> Self {
        Self {
            payload,
            unique_key: None,
            max_attempts: DEFAULT_MAX_ATTEMPTS,
            run_after: now,
        }
    }
}

/// Queues `job` on `conn` (a transaction, when the job is part of a state change). Returns the
/// job, or `None` when a job with the same `unique_key` already exists. Callers wake workers
/// after their commit with `Events::wake_jobs`.
pub async fn enqueue<C: ConnectionTrait>(
    conn: &C,
    job: NewJob,
    now: DateTime<Utc>,
) -> Result<Option<jobs::Model>> {
    let row = queued(&job, now);
    match &job.unique_key {
        None => Ok(Some(
            jobs::Entity::insert(row).exec_with_returning(conn).await?,
        )),
        Some(key) => {
            let inserted = jobs::Entity::insert(row)
                .on_conflict(
                    OnConflict::column(jobs::Column::UniqueKey)
                        .do_nothing()
                        .to_owned(),
                )
                .exec_without_returning(conn)
                .await?;
            if inserted == 0 {
                return Ok(None);
            }
            Ok(jobs::Entity::find()
                .filter(jobs::Column::UniqueKey.eq(key.as_str()))
                .one(conn)
                .await?)
        }
    }
}

/// Queues several jobs on `conn` (a transaction, with the state change they belong to):
/// those without a `unique_key` in one statement, the others as [`enqueue`] does. Returns the
/// jobs queued, in no particular order (a job whose key was taken is left out).
pub async fn enqueue_many<C: ConnectionTrait>(
    conn: &C,
    jobs: Vec<NewJob>,
    now: DateTime<Utc>,
) -> Result<Vec<jobs::Model>> {
    let (keyed, plain): (Vec<NewJob>, Vec<NewJob>) =
        jobs.into_iter().partition(|j| j.unique_key.is_some());
    let mut queued_jobs = if plain.is_empty() {
        Vec::new()
    } else {
        jobs::Entity::insert_many(plain.iter().map(|job| queued(job, now)))
            .exec_with_returning(conn)
            .await?
    };
    for job in keyed {
        queued_jobs.extend(enqueue(conn, job, now).await?);
    }
    Ok(queued_jobs)
}

/// The row of a job queued at `now`. The columns a new job leaves at their defaults (no
/// attempts, lease, error, start or finish yet) are not sent: a batch insert binds 11
/// parameters per row instead of 18.
fn queued(job: &NewJob, now: DateTime<Utc>) -> jobs::ActiveModel {
    jobs::ActiveModel {
        kind: Set(job.payload.kind()),
        queue_key: Set(job.payload.queue_key()),
        unique_key: Set(job.unique_key.clone()),
        organization_id: Set(job.payload.organization_id()),
        state: Set(JobState::Queued),
        max_attempts: Set(job.max_attempts),
        run_after: Set(job.run_after),
        progress: Set(JobProgress::default()),
        payload: Set(job.payload.clone()),
        created_at: Set(now),
        updated_at: Set(now),
        ..Default::default()
    }
}

/// Why a job attempt stopped short.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobFailure {
    /// The step that failed.
    pub step: Option<JobStep>,
    /// What went wrong (never contains a secret).
    pub message: String,
    /// Whether another attempt may succeed.
    pub retryable: bool,
    /// Not before this time (a rate limit's reset).
    pub retry_at: Option<DateTime<Utc>>,
}

impl fmt::Display for JobFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.step {
            Some(step) => write!(f, "{}: {}", step.label(), self.message),
            None => f.write_str(&self.message),
        }
    }
}

impl JobFailure {
    /// A failure another attempt cannot fix.
    pub fn fatal(step: Option<JobStep>, message: impl Into<String>) -> Self {
        Self {
            step,
            message: message.into(),
            retryable: false,
            retry_at: None,
        }
    }

    /// A failure another attempt may fix.
    pub fn transient(step: Option<JobStep>, message: impl Into<String>) -> Self {
        Self {
            step,
            message: message.into(),
            retryable: true,
            retry_at: None,
        }
    }

    /// A database error at `step` (retryable: the database may be back next time).
    pub fn database(step: Option<JobStep>, e: &crate::error::Error) -> Self {
        Self::transient(step, format!("database: {e}"))
    }
}

/// How a job attempt ended when it did not fail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The work is done.
    Done,
    /// Nothing to do any more (e.g. the organization was deleted meanwhile); the reason is kept.
    Skipped(String),
}

/// The delay before attempt `attempt + 1`: `base · 2^(attempt-1)`, capped, with ±20 % jitter.
pub fn backoff(config: &QueueConfig, attempt: i32, jitter: f64) -> Duration {
    let exp = Ord::min(u32::try_from(attempt.saturating_sub(1)).unwrap_or(0), 20);
    let raw = config.backoff_base.saturating_mul(2u32.saturating_pow(exp));
    let capped = raw.min(config.backoff_max);
    capped.mul_f64(0.8 + 0.4 * jitter.clamp(0.0, 1.0))
}

/// A uniform number in `[0, 1]` for jitter.
pub(crate) fn jitter() -> f64 {
    let mut byte = [0u8; 1];
    if getrandom::fill(&mut byte).is_err() {
        return 0.5;
    }
    f64::from(byte[0]) / 255.0
}

/// `std` to `chrono` durations, saturating.
pub(crate) fn to_chrono(d: Duration) -> chrono::Duration {
    chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_per_attempt_and_stops_at_the_cap() {
        let config = QueueConfig::default();
        assert_eq!(backoff(&config, 1, 0.5), Duration::from_secs(10));
        assert_eq!(backoff(&config, 2, 0.5), Duration::from_secs(20));
        assert_eq!(backoff(&config, 3, 0.5), Duration::from_secs(40));
        assert_eq!(backoff(&config, 30, 0.5), Duration::from_secs(600));
    }

    #[test]
    fn jitter_spreads_a_delay_by_at_most_twenty_percent() {
        let config = QueueConfig::default();
        assert_eq!(backoff(&config, 1, 0.0), Duration::from_secs(8));
        assert_eq!(backoff(&config, 1, 1.0), Duration::from_secs(12));
    }
}
