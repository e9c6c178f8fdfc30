//! Automatic recovery: the `reboot` job reboots an organization's server through the Hetzner
//! API. It is queued on the organization's own queue key, so it never races a resize or a
//! delete, and runs once: a Hetzner error fails it for good, which raises `reboot_failed`
//! (the next reboot waits for the cooldown).

use std::time::Duration;

use app::models::{AlertKind, JobPayload, JobStep, VpsStatus};
use sea_orm::{DatabaseConnection, DatabaseTransaction, EntityTrait};

use super::alerts::{self, Channels, NewAlert};
use crate::clock::Clock;
use crate::entities::{jobs, vps_health, vpses};
use crate::error::Result;
use crate::hetzner::HetznerClient;
use crate::jobs::{Attempt, Handler, JobFailure, Outcome};

/// Runs `reboot` jobs.
#[derive(Clone)]
pub struct Rebooter {
    /// Database pool.
    pub db: DatabaseConnection,
    /// Time source.
    pub clock: Clock,
    /// Hetzner (or the simulator).
    pub hetzner: HetznerClient,
    /// How long to wait for Hetzner's reboot action.
    pub action_timeout: Duration,
    /// Which notification channels are on.
    pub channels: Channels,
}

#[async_trait::async_trait]
impl Handler for Rebooter {
    async fn run(&self, attempt: &Attempt) -> std::result::Result<Outcome, JobFailure> {
        let JobPayload::Reboot { vps_id, .. } = attempt.payload() else {
            return Err(JobFailure::fatal(
                None,
                "the rebooter runs only reboot jobs",
            ));
        };
        let vps = vpses::Entity::find_by_id(*vps_id)
            .one(&self.db)
            .await
            .map_err(|e| JobFailure::database(None, &e.into()))?;
        let Some(vps) = vps.filter(|v| v.deleted_at.is_none() && v.status == VpsStatus::Running)
        else {
            return Ok(Outcome::Skipped(
                "the server is gone or no longer running".to_owned(),
            ));
        };
        let Some(server_id) = vps.hetzner_server_id else {
            return Ok(Outcome::Skipped("the server has no Hetzner id".to_owned()));
        };
        attempt
            .step(JobStep::AutoReboot, async {
                let hz =
                    |e: crate::hetzner::HetznerError| JobFailure::hetzner(JobStep::AutoReboot, &e);
                let action = self.hetzner.power(server_id, "reboot").await.map_err(hz)?;
                self.hetzner
                    .wait_for(action, self.action_timeout)
                    .await
                    .map_err(hz)?;
                Ok(())
            })
            .await?;
        Ok(Outcome::Done)
    }

    /// `reboot_failed`, in the incident of the server's current failure episode.
    async fn failed(
        &self,
        txn: &DatabaseTransaction,
        job: &jobs::Model,
        message: &str,
    ) -> Result<()> {
        let JobPayload::Reboot {
            organization_id,
            vps_id,
        } = job.payload
        else {
            return Ok(());
        };
        let incident_id = vps_health::Entity::find_by_id(vps_id)
            .one(txn)
            .await?
            .and_then(|h| h.incident_id);
        alerts::raise(
            txn,
            self.channels,
            NewAlert {
                vps_id,
                organization_id,
                incident_id,
                kind: AlertKind::RebootFailed,
                message: format!("the automatic reboot failed: {message}"),
            },
            self.clock.now(),
        )
        .await?;
        Ok(())
    }
}
