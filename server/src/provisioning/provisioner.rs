//! The provisioning handler: runs an organization's `create`, `resize`, `delete` and
//! `redeploy` jobs for the queue, with the helpers every flow shares (org transitions, power
//! actions, the smoke test), and moves the organization to `error` when a job fails for good.

use std::sync::Arc;
use std::time::Duration;

use app::models::{JobKind, JobPayload, JobStep, OrgEvent};
use sea_orm::{DatabaseConnection, DatabaseTransaction, EntityTrait};

use super::secrets::SecretBox;
use crate::audit::Actor;
use crate::billing::cancellation::Cancellation;
use crate::clock::Clock;
use crate::entities::{jobs, organizations};
use crate::error::{Error, Result};
use crate::events::Events;
use crate::hetzner::HetznerClient;
use crate::jobs::{Attempt, Handler, JobFailure, Outcome};
use crate::organizations::{EventArgs, OrganizationService};
use crate::routing::RoutingService;

/// The flows' tunables (from the configuration; tests shorten them).
#[derive(Debug, Clone)]
pub struct ProvisioningConfig {
    /// How long the smoke test waits for the services (`NEST_SMOKE_TIMEOUT_SECS`).
    pub smoke_timeout: Duration,
    /// Pause between smoke-test probes.
    pub smoke_interval: Duration,
    /// How long to wait for one Hetzner action, or for a server to reach `running`.
    pub action_timeout: Duration,
    /// The image servers are created from.
    pub image: String,
    /// SSH keys installed on every server.
    pub ssh_key_ids: Vec<u64>,
    /// Nest's own URL, written into each stack's `.env`.
    pub site_url: String,
    /// Organizations are served at `<slug>.<base domain>`.
    pub base_domain: String,
}

impl Default for ProvisioningConfig {
    fn default() -> Self {
        Self {
            smoke_timeout: Duration::from_secs(300),
            smoke_interval: Duration::from_secs(1),
            action_timeout: Duration::from_secs(600),
            image: "ubuntu-24.04".to_owned(),
            ssh_key_ids: Vec::new(),
            site_url: "http://127.0.0.1:3001".to_owned(),
            base_domain: "localhost".to_owned(),
        }
    }
}

/// Runs provisioning jobs. Registered for [`Provisioner::KINDS`].
#[derive(Clone)]
pub struct Provisioner {
    /// Database pool.
    pub db: DatabaseConnection,
    /// Time source.
    pub clock: Clock,
    /// Hetzner (or the simulator).
    pub hetzner: HetznerClient,
    /// Seals and opens VPS secrets.
    pub secrets: SecretBox,
    /// Organization transitions.
    pub organizations: OrganizationService,
    /// Caddy.
    pub routing: RoutingService,
    /// Live updates.
    pub events: Events,
    /// Tunables.
    pub config: Arc<ProvisioningConfig>,
    /// For smoke tests and the self-update endpoint.
    pub http: reqwest::Client,
    /// Cancels a deleted organization's Stripe subscription.
    pub billing: Cancellation,
}

/// The actor of audit rows written by jobs.
pub fn system_actor(kind: JobKind) -> Actor {
    Actor::system(kind)
}

#[async_trait::async_trait]
impl Handler for Provisioner {
    async fn run(&self, job: &Attempt) -> std::result::Result<Outcome, JobFailure> {
        match job.payload() {
            JobPayload::Create { .. } => super::create::run(self, job).await,
            JobPayload::Resize { server_type, .. } => {
                super::resize::run(self, job, server_type.clone()).await
            }
            JobPayload::Delete { .. } => super::delete::run(self, job).await,
            JobPayload::Redeploy { .. } => super::redeploy::run(self, job).await,
            other => Err(JobFailure::fatal(
                None,
                format!("provisioning does not run `{}` jobs", other.kind()),
            )),
        }
    }

    /// The organization moves to `error` with the reason, when its state allows it.
    async fn failed(
        &self,
        txn: &DatabaseTransaction,
        job: &jobs::Model,
        message: &str,
    ) -> Result<()> {
        let Some(org_id) = job.organization_id else {
            return Ok(());
        };
        match self
            .organizations
            .prepare(
                org_id,
                OrgEvent::OperationFailed,
                EventArgs {
                    tier_id: None,
                    reason: Some(format!("{} job failed: {message}", job.kind)),
                },
            )
            .await
        {
            Ok(prepared) => {
                self.organizations
                    .write(txn, &system_actor(job.kind), prepared)
                    .await?;
                Ok(())
            }
            Err(Error::Conflict(_)) => Ok(()),
            Err(e) => Err(e),
        }
    }
}

impl Provisioner {
    /// The kinds this handler runs.
    pub const KINDS: &'static [JobKind] = &[
        JobKind::Create,
        JobKind::Resize,
        JobKind::Delete,
        JobKind::Redeploy,
    ];

    /// Runs `work` as `step` of `job`.
    pub async fn step<T, F>(
        &self,
        job: &Attempt,
        step: JobStep,
        work: F,
    ) -> std::result::Result<T, JobFailure>
    where
        F: std::future::Future<Output = std::result::Result<T, JobFailure>>,
    {
        job.step(step, work).await
    }

    /// Runs a Hetzner power action (`poweroff`, `poweron`, `reboot`) as `step` and waits for it.
    pub async fn power_step(
        &self,
        job: &Attempt,
        step: JobStep,
        server_id: i64,
        command: &str,
    ) -> std::result::Result<(), JobFailure> {
        job.step(step, async {
            let hz = |err: crate::hetzner::HetznerError| JobFailure::hetzner(step, &err);
            let action = self.hetzner.power(server_id, command).await.map_err(hz)?;
            self.hetzner
                .wait_for(action, self.config.action_timeout)
                .await
                .map_err(hz)?;
            Ok(())
        })
        .await
    }

    /// The smoke test of the server at `ip` as a step; its failure is final (it already waited
    /// `smoke_timeout`).
    pub async fn smoke_step(&self, job: &Attempt, ip: &str) -> std::result::Result<(), JobFailure> {
        job.step(JobStep::SmokeTest, async {
            super::smoke::run(
                &self.http,
                ip,
                self.config.smoke_timeout,
                self.config.smoke_interval,
            )
            .await
            .map_err(|m| JobFailure::fatal(Some(JobStep::SmokeTest), m))
        })
        .await
    }

    /// Loads the job's organization.
    pub async fn organization(
        &self,
        job: &Attempt,
    ) -> std::result::Result<organizations::Model, JobFailure> {
        organizations::Entity::find_by_id(job.organization_id()?)
            .one(&self.db)
            .await
            .map_err(|e| JobFailure::database(None, &Error::from(e)))?
            .ok_or_else(|| JobFailure::fatal(None, "the organization no longer exists"))
    }

    /// Applies a system event to the job's organization (its own transaction), then pushes
    /// routes and notifies pages.
    pub async fn transition(
        &self,
        job: &Attempt,
        event: OrgEvent,
        step: JobStep,
    ) -> std::result::Result<(), JobFailure> {
        self.organizations
            .apply(
                &system_actor(job.kind),
                job.organization_id()?,
                event,
                EventArgs::default(),
            )
            .await
            .map(|_| ())
            .map_err(|e| match e {
                Error::Conflict(m) => JobFailure::fatal(Some(step), m),
                other => JobFailure::database(Some(step), &other),
            })
    }
}
