//! The `redeploy` flow: the VPS's self-update endpoint (`POST :3000/api/self-update`, signed
//! with its instance secret, see [`super::signing`]); if that fails, a Hetzner reboot. Then the
//! smoke test.

use std::time::Duration;

use app::models::{JobStep, OrgStatus, StepState};

use super::create::open_secrets;
use super::provisioner::Provisioner;
use super::signing;
use super::{JobFailure, Outcome};
use crate::jobs::Attempt;
use crate::organizations::current_vps;

/// Runs (or resumes) a `redeploy` job.
pub async fn run(e: &Provisioner, job: &Attempt) -> Result<Outcome, JobFailure> {
    let org = e.organization(job).await?;
    if !matches!(org.status, OrgStatus::Active | OrgStatus::Error) {
        return Ok(Outcome::Skipped(format!(
            "the organization is {}",
            org.status
        )));
    }
    let vps = current_vps(&e.db, org.id)
        .await
        .map_err(|err| JobFailure::database(None, &err))?
        .ok_or_else(|| {
            JobFailure::fatal(Some(JobStep::SelfUpdate), "the organization has no VPS")
        })?;
    let ip = vps.ipv4.clone().ok_or_else(|| {
        JobFailure::fatal(Some(JobStep::SelfUpdate), "the VPS has no IPv4 address")
    })?;
    let secrets = open_secrets(e, &vps, JobStep::SelfUpdate)?;

    job.mark(JobStep::SelfUpdate, StepState::Running, None)
        .await
        .map_err(|err| JobFailure::database(Some(JobStep::SelfUpdate), &err))?;
    // Signed, never sent: the request crosses the network in clear.
    let path = app::models::health::SELF_UPDATE_PATH;
    let timestamp = chrono::Utc::now().timestamp();
    let signature = signing::sign(&secrets.instance_secret, "POST", path, timestamp, b"");
    let update = e
        .http
        .post(format!(
            "http://{ip}:{}{path}",
            app::models::health::UPSTREAM.port()
        ))
        .header(signing::TIMESTAMP_HEADER, timestamp.to_string())
        .header(signing::SIGNATURE_HEADER, signature)
        .timeout(Duration::from_secs(30))
        .send()
        .await;
    let failure = match update {
        Ok(r) if r.status().is_success() => None,
        Ok(r) => Some(format!("answered HTTP {}", r.status().as_u16())),
        Err(err) => Some(err.to_string()),
    };
    match failure {
        None => {
            job.mark(JobStep::SelfUpdate, StepState::Done, None)
                .await
                .map_err(|err| JobFailure::database(Some(JobStep::SelfUpdate), &err))?;
        }
        Some(why) => {
            job.mark(
                JobStep::SelfUpdate,
                StepState::Failed,
                Some(&format!("{why}; falling back to a reboot")),
            )
            .await
            .map_err(|err| JobFailure::database(Some(JobStep::SelfUpdate), &err))?;
            let server_id = vps.hetzner_server_id.ok_or_else(|| {
                JobFailure::fatal(Some(JobStep::Reboot), "the VPS has no Hetzner server")
            })?;
            e.power_step(job, JobStep::Reboot, server_id, "reboot")
                .await?;
        }
    }
    e.smoke_step(job, &ip).await?;
    Ok(Outcome::Done)
}
