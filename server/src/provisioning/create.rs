//! The `create` flow (spec "Create flow", steps 3–9): secrets, VPS row, Hetzner server with
//! cloud-init, boot, smoke test, routing entry, organization active.
//!
//! Resumable at any point: the VPS row is reused, and the server is looked up by id and then by
//! its deterministic name before one is created, so a crash or a timed-out `POST /servers` never
//! leads to a second server.

use std::collections::BTreeMap;
use std::time::Duration;

use app::models::{JobStep, OrgEvent, OrgStatus, StepState, VpsStatus};
use sea_orm::{ActiveModelTrait, ActiveValue::Set, EntityTrait, TransactionTrait};

use super::cloud_init::{self, CloudInitInput};
use super::provisioner::Provisioner;
use super::secrets::{Sealed, VpsSecrets};
use super::{JobFailure, Outcome};
use crate::entities::{organizations, tiers, vpses};
use crate::error::Error;
use crate::hetzner::{Action, CreateServer, HetznerError, MANAGED_LABEL, ORG_LABEL, Server};
use crate::jobs::Attempt;
use crate::organizations::current_vps;

fn db(step: JobStep) -> impl Fn(sea_orm::DbErr) -> JobFailure {
    move |e| JobFailure::database(Some(step), &Error::from(e))
}

/// The deterministic server name of an organization.
pub fn server_name(org: &organizations::Model) -> String {
    format!("nest-{}", org.slug)
}

/// Runs (or resumes) a `create` job.
pub async fn run(e: &Provisioner, job: &Attempt) -> Result<Outcome, JobFailure> {
    let org = e.organization(job).await?;
    match org.status {
        OrgStatus::Pending => {
            e.transition(job, OrgEvent::ProvisioningStarted, JobStep::Secrets)
                .await?;
        }
        OrgStatus::Provisioning | OrgStatus::Deploying => {}
        OrgStatus::Active => {
            return Ok(Outcome::Skipped(
                "the organization is already active".to_owned(),
            ));
        }
        other => return Ok(Outcome::Skipped(format!("the organization is {other}"))),
    }
    let tier = tiers::Entity::find_by_id(org.tier_id)
        .one(&e.db)
        .await
        .map_err(db(JobStep::VpsRecord))?
        .ok_or_else(|| {
            JobFailure::fatal(
                Some(JobStep::VpsRecord),
                "the organization's tier no longer exists",
            )
        })?;

    let vps = e
        .step(job, JobStep::Secrets, ensure_vps(e, &org, &tier))
        .await?;
    job.mark(JobStep::VpsRecord, StepState::Done, Some(&vps.name))
        .await
        .map_err(|err| JobFailure::database(Some(JobStep::VpsRecord), &err))?;

    let (server, action) = e
        .step(job, JobStep::HetznerCreate, ensure_server(e, &org, &vps))
        .await?;
    let server = e
        .step(
            job,
            JobStep::CloudInit,
            wait_running(e, &vps, server, action),
        )
        .await?;
    if e.organization(job).await?.status == OrgStatus::Provisioning {
        e.transition(job, OrgEvent::ServerCreated, JobStep::CloudInit)
            .await?;
    }

    let ip = server
        .public_net
        .ipv4
        .as_ref()
        .map(|v| v.ip.clone())
        .ok_or_else(|| {
            JobFailure::fatal(Some(JobStep::SmokeTest), "the server has no IPv4 address")
        })?;
    e.smoke_step(job, &ip).await?;

    e.step(
        job,
        JobStep::Routing,
        e.transition(job, OrgEvent::SmokeTestPassed, JobStep::Routing),
    )
    .await?;
    job.mark(JobStep::Active, StepState::Done, None)
        .await
        .map_err(|err| JobFailure::database(Some(JobStep::Active), &err))?;
    Ok(Outcome::Done)
}

/// Steps 3–4: the org's VPS row with its sealed secrets (reused if it exists).
async fn ensure_vps(
    e: &Provisioner,
    org: &organizations::Model,
    tier: &tiers::Model,
) -> Result<vpses::Model, JobFailure> {
    let step = JobStep::Secrets;
    // Read outside the transaction: on SQLite a transaction that reads before it writes can
    // fail with SQLITE_BUSY_SNAPSHOT. The job's lease keeps other workers off this org.
    let existing = current_vps(&e.db, org.id)
        .await
        .map_err(|err| JobFailure::database(Some(step), &err))?;
    if let Some(vps) = &existing
        && vps.secrets_ciphertext.is_some()
    {
        return Ok(vps.clone());
    }
    let now = e.clock.now();
    let txn = e.db.begin().await.map_err(db(step))?;
    let vps = match existing {
        Some(vps) => vps,
        None => vpses::ActiveModel {
            organization_id: Set(org.id),
            name: Set(server_name(org)),
            hetzner_server_id: Set(None),
            server_type: Set(tier.server_type.clone()),
            region: Set(org.region),
            ipv4: Set(None),
            status: Set(VpsStatus::Planned),
            secrets_ciphertext: Set(None),
            secrets_nonce: Set(None),
            secrets_key_id: Set(None),
            created_at: Set(now),
            updated_at: Set(now),
            deleted_at: Set(None),
            ..Default::default()
        }
        .insert(&txn)
        .await
        .map_err(db(JobStep::VpsRecord))?,
    };
    let sealed = e
        .secrets
        .seal(vps.id, &VpsSecrets::generate())
        .map_err(|err| JobFailure::fatal(Some(step), err.to_string()))?;
    let mut active: vpses::ActiveModel = vps.into();
    active.secrets_ciphertext = Set(Some(sealed.ciphertext));
    active.secrets_nonce = Set(Some(sealed.nonce));
    active.secrets_key_id = Set(Some(sealed.key_id));
    active.updated_at = Set(now);
    let vps = active.update(&txn).await.map_err(db(JobStep::VpsRecord))?;
    txn.commit().await.map_err(db(step))?;
    e.events.publish(crate::events::Change::Vps(vps.id));
    Ok(vps)
}

/// The VPS's decrypted secrets.
pub fn open_secrets(
    e: &Provisioner,
    vps: &vpses::Model,
    step: JobStep,
) -> Result<VpsSecrets, JobFailure> {
    let (Some(ciphertext), Some(nonce), Some(key_id)) = (
        vps.secrets_ciphertext.clone(),
        vps.secrets_nonce.clone(),
        vps.secrets_key_id.clone(),
    ) else {
        return Err(JobFailure::fatal(
            Some(step),
            "the VPS has no stored secrets",
        ));
    };
    e.secrets
        .open(
            vps.id,
            &Sealed {
                ciphertext,
                nonce,
                key_id,
            },
        )
        .map_err(|err| JobFailure::fatal(Some(step), err.to_string()))
}

/// Records what Hetzner says about the server on the VPS row.
pub async fn record_server(
    e: &Provisioner,
    vps: &vpses::Model,
    server: &Server,
) -> Result<vpses::Model, JobFailure> {
    let current = vpses::Entity::find_by_id(vps.id)
        .one(&e.db)
        .await
        .map_err(db(JobStep::HetznerCreate))?
        .ok_or_else(|| {
            JobFailure::fatal(Some(JobStep::HetznerCreate), "the VPS row disappeared")
        })?;
    let mut active: vpses::ActiveModel = current.into();
    active.hetzner_server_id = Set(Some(server.id));
    active.ipv4 = Set(server.public_net.ipv4.as_ref().map(|v| v.ip.clone()));
    active.status = Set(server.status.parse().unwrap_or(VpsStatus::Unknown));
    if let Ok(server_type) = server.server_type.name.parse() {
        active.server_type = Set(server_type);
    }
    active.updated_at = Set(e.clock.now());
    let vps = active
        .update(&e.db)
        .await
        .map_err(db(JobStep::HetznerCreate))?;
    e.events.publish(crate::events::Change::Vps(vps.id));
    Ok(vps)
}

/// Step 5: finds the org's server (by id, then by name) or creates it.
async fn ensure_server(
    e: &Provisioner,
    org: &organizations::Model,
    vps: &vpses::Model,
) -> Result<(Server, Option<Action>), JobFailure> {
    let step = JobStep::HetznerCreate;
    let hz = |err: HetznerError| JobFailure::hetzner(step, &err);
    if let Some(id) = vps.hetzner_server_id
        && let Some(server) = e.hetzner.get_server(id).await.map_err(hz)?
    {
        return Ok((server, None));
    }
    if let Some(server) = e.hetzner.find_server_by_name(&vps.name).await.map_err(hz)? {
        adopt(org, &server)?;
        record_server(e, vps, &server).await?;
        return Ok((server, None));
    }
    let secrets = open_secrets(e, vps, step)?;
    let domain = format!("{}.{}", org.slug, e.config.base_domain);
    let user_data = cloud_init::render(&CloudInitInput {
        slug: org.slug.as_str(),
        domain: &domain,
        nest_url: &e.config.site_url,
        secrets: &secrets,
    })
    .map_err(|err| JobFailure::fatal(Some(step), err.to_string()))?;
    let request = CreateServer {
        name: vps.name.clone(),
        server_type: vps.server_type.to_string(),
        image: e.config.image.clone(),
        location: vps.region.to_string(),
        user_data,
        ssh_keys: e.config.ssh_key_ids.clone(),
        labels: BTreeMap::from([
            (ORG_LABEL.to_owned(), org.id.to_string()),
            (MANAGED_LABEL.to_owned(), "nest".to_owned()),
        ]),
    };
    match e.hetzner.create_server(&request).await {
        Ok(created) => {
            record_server(e, vps, &created.server).await?;
            Ok((created.server, Some(created.action)))
        }
        // An earlier attempt's request reached Hetzner after all: adopt that server.
        Err(HetznerError::Api { code, .. }) if code == "uniqueness_error" => {
            match e.hetzner.find_server_by_name(&vps.name).await.map_err(hz)? {
                Some(server) => {
                    adopt(org, &server)?;
                    record_server(e, vps, &server).await?;
                    Ok((server, None))
                }
                None => Err(JobFailure::transient(
                    Some(step),
                    "the server name is taken but the server was not found; retrying",
                )),
            }
        }
        Err(err) => Err(hz(err)),
    }
}

/// Refuses to adopt a server with Nest's name that belongs to another organization.
fn adopt(org: &organizations::Model, server: &Server) -> Result<(), JobFailure> {
    match server.labels.get(ORG_LABEL) {
        Some(id) if *id == org.id.to_string() => Ok(()),
        _ => Err(JobFailure::fatal(
            Some(JobStep::HetznerCreate),
            format!(
                "a server named {} exists but is not labelled as this organization's",
                server.name
            ),
        )),
    }
}

/// Step 6: waits for the create action, then for the server to report `running`.
async fn wait_running(
    e: &Provisioner,
    vps: &vpses::Model,
    server: Server,
    action: Option<Action>,
) -> Result<Server, JobFailure> {
    let step = JobStep::CloudInit;
    let hz = |err: HetznerError| JobFailure::hetzner(step, &err);
    let refresh =
        |id: i64| async move {
            e.hetzner.get_server(id).await.map_err(hz)?.ok_or_else(|| {
                JobFailure::transient(Some(step), "the server disappeared at Hetzner")
            })
        };
    let mut server = server;
    if let Some(action) = action {
        e.hetzner
            .wait_for(action, e.config.action_timeout)
            .await
            .map_err(hz)?;
        // The status in the create response is stale once the action is done.
        server = refresh(server.id).await?;
    }
    let deadline = tokio::time::Instant::now() + e.config.action_timeout;
    let mut delay = Duration::from_millis(250);
    loop {
        if server.status == "running" {
            break;
        }
        if tokio::time::Instant::now() > deadline {
            return Err(JobFailure::transient(
                Some(step),
                format!(
                    "the server is still {} after {} s",
                    server.status,
                    e.config.action_timeout.as_secs()
                ),
            ));
        }
        if server.status == "off" {
            let action = e.hetzner.power(server.id, "poweron").await.map_err(hz)?;
            e.hetzner
                .wait_for(action, e.config.action_timeout)
                .await
                .map_err(hz)?;
        } else {
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(Duration::from_secs(5));
        }
        server = refresh(server.id).await?;
    }
    record_server(e, vps, &server).await?;
    Ok(server)
}
