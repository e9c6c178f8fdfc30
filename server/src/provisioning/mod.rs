//! Provisioning: the four job flows of an organization ([`create`], [`resize`], [`delete`],
//! [`redeploy`]) run by the [`Provisioner`] handler of the job queue (`crate::jobs`), which
//! serializes them per organization (queue key `org:<id>`) and retries them with backoff.
//!
//! Every flow is written to be resumed at any point: `create` looks for its server by id and
//! then by deterministic name before creating one. When a job fails for good, the handler's
//! failure hook moves the organization to `error` in the same transaction.

pub mod cloud_init;
pub mod create;
pub mod delete;
pub mod provisioner;
pub mod redeploy;
pub mod resize;
pub mod secrets;
pub mod signing;
pub mod smoke;

use app::models::JobStep;

use crate::hetzner::HetznerError;

pub use crate::jobs::{JobFailure, Outcome};
pub use provisioner::{Provisioner, ProvisioningConfig};

impl JobFailure {
    /// A Hetzner error at `step`, retryable as Hetzner's code says.
    pub fn hetzner(step: JobStep, e: &HetznerError) -> Self {
        Self {
            step: Some(step),
            message: e.to_string(),
            retryable: e.is_retryable(),
            retry_at: e.retry_at(),
        }
    }
}
