//! Provisioning: the durable job engine over the `provisioning_jobs` table and the four job
//! flows ([`create`], [`resize`], [`delete`], [`redeploy`]).
//!
//! - **Claiming** ([`engine`]): a job is claimable when it is queued and due, or running with a
//!   lapsed lease, and it is the oldest unfinished job of its organization (per-org
//!   serialization, in enqueue order). On PostgreSQL the candidate row is locked `FOR UPDATE
//!   SKIP LOCKED`; on both engines the claim is a conditional update, so two workers never
//!   take the same job.
//! - **Leases**: a worker renews its lease while the job runs; if the worker dies the lease
//!   lapses and another worker resumes the job. Every flow is written to be resumed at any
//!   point: `create` looks for its server by deterministic name before creating one.
//! - **Failures**: retryable errors re-queue the job with exponential backoff and jitter (or
//!   until `RateLimit-Reset`); after `max_attempts`, or on a final error, the job is `failed`
//!   with its error and step, and the organization moves to `error` — in one transaction.

pub mod cloud_init;
pub mod create;
pub mod delete;
pub mod engine;
pub mod redeploy;
pub mod resize;
pub mod secrets;
pub mod smoke;

use std::fmt;

use app::models::JobStep;
use chrono::{DateTime, Utc};

use crate::hetzner::HetznerError;

pub use engine::{Engine, EngineConfig};

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

    /// A Hetzner error at `step`, retryable as Hetzner's code says.
    pub fn hetzner(step: JobStep, e: &HetznerError) -> Self {
        Self {
            step: Some(step),
            message: e.to_string(),
            retryable: e.is_retryable(),
            retry_at: e.retry_at(),
        }
    }

    /// A database error at `step` (retryable: the database may be back next time).
    pub fn database(step: Option<JobStep>, e: &crate::error::Error) -> Self {
        Self::transient(step, format!("database: {e}"))
    }
}

/// How a flow ended when it did not fail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The work is done.
    Done,
    /// Nothing to do any more (e.g. the organization was deleted meanwhile); the reason is kept.
    Skipped(String),
}
