//! The `resize` flow: power off → `change_type` → power on → smoke test. Resumable: a server
//! already of the target type skips straight to powering on.

use app::models::{JobStep, OrgStatus, ServerType};
use sea_orm::{ActiveModelTrait, ActiveValue::Set};

use super::create::record_server;
use super::provisioner::Provisioner;
use super::{JobFailure, Outcome};
use crate::hetzner::HetznerError;
use crate::jobs::Attempt;
use crate::organizations::current_vps;

/// Runs (or resumes) a `resize` job.
pub async fn run(
    e: &Provisioner,
    job: &Attempt,
    target: ServerType,
) -> Result<Outcome, JobFailure> {
    let org = e.organization(job).await?;
    if !matches!(
        org.status,
        OrgStatus::Active | OrgStatus::Suspended | OrgStatus::Error
    ) {
        return Ok(Outcome::Skipped(format!(
            "the organization is {}",
            org.status
        )));
    }
    let vps = current_vps(&e.db, org.id)
        .await
        .map_err(|err| JobFailure::database(None, &err))?
        .ok_or_else(|| JobFailure::fatal(Some(JobStep::PowerOff), "the organization has no VPS"))?;
    let server_id = vps.hetzner_server_id.ok_or_else(|| {
        JobFailure::fatal(Some(JobStep::PowerOff), "the VPS has no Hetzner server")
    })?;
    let get = |step: JobStep| async move {
        e.hetzner
            .get_server(server_id)
            .await
            .map_err(|err| JobFailure::hetzner(step, &err))?
            .ok_or_else(|| JobFailure::fatal(Some(step), "the server no longer exists at Hetzner"))
    };
    let mut server = get(JobStep::PowerOff).await?;
    if server.server_type.name != target.as_str() {
        if server.status != "off" {
            e.power_step(job, JobStep::PowerOff, server_id, "poweroff")
                .await?;
        }
        e.step(job, JobStep::ChangeType, async {
            let hz = |err: HetznerError| JobFailure::hetzner(JobStep::ChangeType, &err);
            let action = e
                .hetzner
                .change_type(server_id, target.as_str())
                .await
                .map_err(hz)?;
            e.hetzner
                .wait_for(action, e.config.action_timeout)
                .await
                .map_err(hz)?;
            Ok(())
        })
        .await?;
        server = get(JobStep::ChangeType).await?;
    }
    let mut active: crate::entities::vpses::ActiveModel = vps.clone().into();
    active.server_type = Set(target.clone());
    active.updated_at = Set(e.clock.now());
    let vps = active
        .update(&e.db)
        .await
        .map_err(|err| JobFailure::database(Some(JobStep::ChangeType), &err.into()))?;
    if server.status != "running" {
        e.power_step(job, JobStep::PowerOn, server_id, "poweron")
            .await?;
        server = get(JobStep::PowerOn).await?;
    }
    let vps = record_server(e, &vps, &server).await?;
    let ip = vps.ipv4.clone().ok_or_else(|| {
        JobFailure::fatal(Some(JobStep::SmokeTest), "the server has no IPv4 address")
    })?;
    e.smoke_step(job, &ip).await?;
    Ok(Outcome::Done)
}
