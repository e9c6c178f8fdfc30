//! The `delete` flow: the Stripe subscription cancelled (billing stops first), the server
//! deleted at Hetzner, the VPS row marked deleted, the routing entry removed (table and
//! Caddy), the organization `deleted`. Resumable: a subscription already ended and a server
//! already gone count as done.

use app::models::{JobStep, OrgEvent, OrgStatus, VpsStatus};
use sea_orm::{ActiveModelTrait, ActiveValue::Set};

use super::provisioner::Provisioner;
use super::{JobFailure, Outcome};
use crate::entities::vpses;
use crate::hetzner::HetznerError;
use crate::jobs::Attempt;
use crate::organizations::current_vps;

/// Runs (or resumes) a `delete` job.
pub async fn run(e: &Provisioner, job: &Attempt) -> Result<Outcome, JobFailure> {
    let org = e.organization(job).await?;
    match org.status {
        OrgStatus::Deleting => {}
        OrgStatus::Deleted => {
            return Ok(Outcome::Skipped(
                "the organization is already deleted".to_owned(),
            ));
        }
        other => {
            return Ok(Outcome::Skipped(format!(
                "the organization is {other}, not deleting"
            )));
        }
    }
    if org.stripe_subscription_id.is_some() {
        let step = JobStep::CancelSubscription;
        e.step(
            job,
            step,
            e.billing.cancel(
                &super::provisioner::system_actor(job.kind),
                &org,
                "deleted",
                step,
            ),
        )
        .await?;
    }
    if let Some(vps) = current_vps(&e.db, org.id)
        .await
        .map_err(|err| JobFailure::database(None, &err))?
    {
        e.step(job, JobStep::HetznerDelete, async {
            let hz = |err: HetznerError| JobFailure::hetzner(JobStep::HetznerDelete, &err);
            let server = match vps.hetzner_server_id {
                Some(id) => e.hetzner.get_server(id).await.map_err(hz)?,
                None => e.hetzner.find_server_by_name(&vps.name).await.map_err(hz)?,
            };
            if let Some(server) = server
                && let Some(action) = e.hetzner.delete_server(server.id).await.map_err(hz)?
            {
                e.hetzner
                    .wait_for(action, e.config.action_timeout)
                    .await
                    .map_err(hz)?;
            }
            let now = e.clock.now();
            let mut active: vpses::ActiveModel = vps.clone().into();
            active.status = Set(VpsStatus::Deleted);
            active.deleted_at = Set(Some(now));
            active.updated_at = Set(now);
            active
                .update(&e.db)
                .await
                .map_err(|err| JobFailure::database(Some(JobStep::HetznerDelete), &err.into()))?;
            e.events.publish(crate::events::Change::Vps(vps.id));
            Ok(())
        })
        .await?;
    }
    e.step(
        job,
        JobStep::RouteRemoved,
        e.transition(job, OrgEvent::DeletionCompleted, JobStep::RouteRemoved),
    )
    .await?;
    Ok(Outcome::Done)
}
