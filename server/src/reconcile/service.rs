//! `/reconcile`'s backend: the findings as people read them, and the actions an admin takes on
//! one (adopt or delete an orphan server, cancel a subscription, resize a drifted server back,
//! route to a server's new address), each confirmed by typing the name it asks for and
//! audited.

use std::collections::HashMap;

use app::backend::RequestInfo;
use app::error::AppError;
use app::models::{
    AdminIdentity, FindingAction, FindingKind, FindingPage, FindingView, JobPayload, JobState,
};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ColumnTrait, Condition, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
    TransactionTrait,
};
use serde_json::json;

use super::{detail_text, summary};
use crate::audit::Actor;
use crate::billing::stripe::{StripeFailure, SubscriptionBilling};
use crate::clock::Clock;
use crate::entities::{jobs, organizations, reconcile_findings, tiers, vpses};
use crate::error::{Error, Result};
use crate::events::{Change, Events};
use crate::hetzner::HetznerClient;

/// Open findings listed at most (newest first); resolved ones listed at most.
const OPEN_LIMIT: u64 = 500;
const RESOLVED_LIMIT: u64 = 100;

/// Serves `/reconcile`.
#[derive(Clone)]
pub struct ReconcileService {
    /// Database pool.
    pub db: DatabaseConnection,
    /// Time source.
    pub clock: Clock,
    /// Deletes orphan servers.
    pub hetzner: HetznerClient,
    /// Cancels subscriptions.
    pub billing: SubscriptionBilling,
    /// Wakes the queue (a resize) and tells open pages.
    pub events: Events,
    /// Queues the failed create again when an orphan is adopted.
    pub organizations: crate::organizations::OrganizationService,
}

/// What an admin types to confirm `kind`'s action: the server's name, the subscription's id,
/// or the organization's slug.
fn confirmation(kind: FindingKind, detail: &serde_json::Value, slug: Option<&str>) -> String {
    match kind {
        FindingKind::OrphanServer => detail_text(detail, "name"),
        FindingKind::LiveSubscription => detail_text(detail, "subscription"),
        _ => slug.unwrap_or_default().to_owned(),
    }
}

/// The actions `/reconcile` offers for a finding of `kind`: adopting only where the run found
/// the server adoptable (see [`super::adoptable`]).
fn offered(kind: FindingKind, detail: &serde_json::Value) -> Vec<FindingAction> {
    kind.actions()
        .iter()
        .copied()
        .filter(|a| *a != FindingAction::AdoptServer || detail["adoptable"] == true)
        .collect()
}

/// Marks open finding `id` resolved at `now`, inside the caller's transaction (a no-op when a
/// run or another admin resolved it first).
async fn resolve(
    txn: &sea_orm::DatabaseTransaction,
    id: i64,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<()> {
    reconcile_findings::Entity::update_many()
        .col_expr(reconcile_findings::Column::ResolvedAt, Expr::value(now))
        .filter(reconcile_findings::Column::Id.eq(id))
        .filter(reconcile_findings::Column::ResolvedAt.is_null())
        .exec(txn)
        .await?;
    Ok(())
}

impl ReconcileService {
    async fn slugs(&self, ids: impl Iterator<Item = i64>) -> Result<HashMap<i64, String>> {
        let ids: Vec<i64> = ids.collect();
        if ids.is_empty() {
            return Ok(HashMap::new());
        }
        Ok(organizations::Entity::find()
            .select_only()
            .column(organizations::Column::Id)
            .column(organizations::Column::Slug)
            .filter(organizations::Column::Id.is_in(ids))
            .into_tuple::<(i64, String)>()
            .all(&self.db)
            .await?
            .into_iter()
            .collect())
    }

    /// Open findings, or the latest resolved ones.
    pub async fn list(&self, resolved: bool) -> Result<FindingPage> {
        let query = reconcile_findings::Entity::find();
        let rows = if resolved {
            query
                .filter(reconcile_findings::Column::ResolvedAt.is_not_null())
                .order_by_desc(reconcile_findings::Column::ResolvedAt)
                .limit(RESOLVED_LIMIT)
        } else {
            query
                .filter(reconcile_findings::Column::ResolvedAt.is_null())
                .order_by_desc(reconcile_findings::Column::Id)
                .limit(OPEN_LIMIT)
        }
        .all(&self.db)
        .await?;
        let slugs = self
            .slugs(rows.iter().filter_map(|f| f.organization_id))
            .await?;
        let findings = rows
            .into_iter()
            .map(|f| {
                let organization = f
                    .organization_id
                    .and_then(|id| slugs.get(&id).map(|slug| (id, slug.clone())));
                let slug = organization.as_ref().map(|(_, s)| s.as_str());
                let confirm = confirmation(f.kind, &f.detail, slug);
                FindingView {
                    id: f.id,
                    kind: f.kind,
                    summary: summary(f.kind, &f.detail),
                    subject: f.subject,
                    first_seen_at: f.first_seen_at,
                    last_seen_at: f.last_seen_at,
                    resolved_at: f.resolved_at,
                    actions: if f.resolved_at.is_none() && !confirm.is_empty() {
                        offered(f.kind, &f.detail)
                    } else {
                        Vec::new()
                    },
                    confirm,
                    organization,
                }
            })
            .collect();
        Ok(FindingPage { findings, resolved })
    }

    /// Acts on open finding `id`; see the module's doc.
    pub async fn act(
        &self,
        actor: &Actor,
        id: i64,
        action: FindingAction,
        confirm: &str,
    ) -> Result<()> {
        let finding = reconcile_findings::Entity::find_by_id(id)
            .one(&self.db)
            .await?
            .ok_or_else(|| Error::NotFound("finding".to_owned()))?;
        if finding.resolved_at.is_some() {
            return Err(Error::Conflict(
                "this finding is already resolved; reload the page".to_owned(),
            ));
        }
        if !offered(finding.kind, &finding.detail).contains(&action) {
            return Err(Error::invalid(
                "action",
                format!("a {} finding cannot be settled this way", finding.kind),
            ));
        }
        let slug = match finding.organization_id {
            Some(org) => self.slugs(std::iter::once(org)).await?.remove(&org),
            None => None,
        };
        let expected = confirmation(finding.kind, &finding.detail, slug.as_deref());
        if expected.is_empty() || confirm.trim() != expected {
            return Err(Error::invalid(
                "confirm",
                format!("type {expected} exactly to confirm"),
            ));
        }
        if let Some(org) = finding.organization_id
            && self.busy(org).await?
        {
            return Err(Error::Conflict(
                "a job of this organization is queued or running: wait for it, then look again"
                    .to_owned(),
            ));
        }
        match action {
            FindingAction::AdoptServer => return self.adopt(actor, &finding).await,
            FindingAction::FollowAddress => return self.follow_address(actor, &finding).await,
            _ => {}
        }
        let resize = match action {
            FindingAction::ResizeBack => Some(self.resize_target(&finding).await?),
            _ => None,
        };
        let (audit_action, resolves) = match action {
            FindingAction::DeleteServer => (self.delete_server(&finding).await?, true),
            FindingAction::CancelSubscription => (self.cancel_subscription(&finding).await?, true),
            FindingAction::ResizeBack => ("reconcile.resize_requested", false),
            FindingAction::AdoptServer | FindingAction::FollowAddress => {
                return Err(Error::Conflict("handled above".to_owned()));
            }
        };
        let now = self.clock.now();
        let txn = self.db.begin().await?;
        if resolves {
            resolve(&txn, id, now).await?;
        }
        let mut detail = json!({
            "finding": id,
            "kind": finding.kind,
            "subject": finding.subject,
            "detail": finding.detail,
        });
        if let Some(payload) = resize {
            // Once per finding: a second click, or a second admin, queues nothing more.
            let job = crate::jobs::enqueue(
                &txn,
                crate::jobs::NewJob {
                    unique_key: Some(format!("reconcile:resize:{id}")),
                    ..crate::jobs::NewJob::now(payload, now)
                },
                now,
            )
            .await?
            .ok_or_else(|| {
                Error::Conflict("a resize back was already queued for this finding".to_owned())
            })?;
            detail["job"] = json!(job.id);
        }
        crate::audit::record(
            &txn,
            actor,
            audit_action,
            match finding.organization_id {
                Some(org) => ("organization", Some(org.to_string())),
                None => ("reconcile_finding", Some(id.to_string())),
            },
            detail,
            now,
        )
        .await?;
        txn.commit().await?;
        if action == FindingAction::ResizeBack {
            self.events.wake_jobs();
        }
        self.events
            .publish(Change::Billing(finding.organization_id));
        Ok(())
    }

    /// Whether organization `org` has a job queued or running.
    async fn busy(&self, org: i64) -> Result<bool> {
        Ok(jobs::Entity::find()
            .filter(jobs::Column::OrganizationId.eq(org))
            .filter(jobs::Column::State.is_in([JobState::Queued, JobState::Running]))
            .one(&self.db)
            .await?
            .is_some())
    }

    /// The resize job that brings a drifted server back to its tier's type.
    async fn resize_target(&self, finding: &reconcile_findings::Model) -> Result<JobPayload> {
        let org_id = finding
            .organization_id
            .ok_or_else(|| Error::Conflict("the finding names no organization".to_owned()))?;
        let org = organizations::Entity::find_by_id(org_id)
            .one(&self.db)
            .await?
            .ok_or_else(|| Error::NotFound("organization".to_owned()))?;
        let tier = tiers::Entity::find_by_id(org.tier_id)
            .one(&self.db)
            .await?
            .ok_or_else(|| Error::NotFound("tier".to_owned()))?;
        Ok(JobPayload::Resize {
            organization_id: org_id,
            server_type: tier.server_type,
        })
    }

    /// Adopts an orphan server into the organization whose failed create made it: the server is
    /// recorded on the organization's VPS row and the failed create is queued again (it resumes
    /// from the recorded server: boot, smoke test, route), with the finding resolved and the
    /// audit row, in one transaction. Checked first against Hetzner (the server is still there,
    /// under the organization's label and the VPS's name) and the database (the VPS has no
    /// server recorded; the organization is in `error` after a failed create).
    async fn adopt(&self, actor: &Actor, finding: &reconcile_findings::Model) -> Result<()> {
        let server_id = finding.detail["server_id"]
            .as_i64()
            .ok_or_else(|| Error::Conflict("the finding names no server".to_owned()))?;
        let org_id = finding.organization_id.ok_or_else(|| {
            Error::Conflict("the server carries no organization's label".to_owned())
        })?;
        let server = self
            .hetzner
            .get_server(server_id)
            .await
            .map_err(|e| Error::Unavailable(format!("Hetzner: {e}")))?
            .ok_or_else(|| Error::Conflict("Hetzner no longer has this server".to_owned()))?;
        if server.labels.get(crate::hetzner::ORG_LABEL) != Some(&org_id.to_string()) {
            return Err(Error::Conflict(
                "the server's label no longer names this organization".to_owned(),
            ));
        }
        let vps = crate::organizations::current_vps(&self.db, org_id)
            .await?
            .filter(|v| v.name == server.name && v.hetzner_server_id.is_none())
            .ok_or_else(|| {
                Error::Conflict(
                    "only the server of the organization's own failed create (its name and label) can be adopted; delete this one"
                        .to_owned(),
                )
            })?;
        let prepared = self
            .organizations
            .prepare(
                org_id,
                app::models::OrgEvent::Retry(app::models::JobKind::Create),
                crate::organizations::EventArgs {
                    tier_id: None,
                    reason: Some(format!("adopting server {} (#{server_id})", server.name)),
                },
            )
            .await?;
        let now = self.clock.now();
        let txn = self.db.begin().await?;
        let recorded = vpses::Entity::update_many()
            .col_expr(vpses::Column::HetznerServerId, Expr::value(server_id))
            .col_expr(
                vpses::Column::Ipv4,
                Expr::value(server.public_net.ipv4.as_ref().map(|a| a.ip.clone())),
            )
            .col_expr(vpses::Column::UpdatedAt, Expr::value(now))
            .filter(vpses::Column::Id.eq(vps.id))
            .filter(vpses::Column::HetznerServerId.is_null())
            .exec(&txn)
            .await?;
        if recorded.rows_affected != 1 {
            return Err(Error::Conflict(
                "the VPS recorded a server meanwhile: reload the page".to_owned(),
            ));
        }
        let written = self.organizations.write(&txn, actor, prepared).await?;
        resolve(&txn, finding.id, now).await?;
        crate::audit::record(
            &txn,
            actor,
            "reconcile.server_adopted",
            ("organization", Some(org_id.to_string())),
            json!({
                "finding": finding.id,
                "server_id": server_id,
                "name": server.name,
                "vps": vps.id,
                "jobs": written.jobs,
            }),
            now,
        )
        .await?;
        txn.commit().await?;
        self.organizations.after_commit(&written).await;
        self.events.publish(Change::Vps(vps.id));
        self.events.publish(Change::Billing(Some(org_id)));
        Ok(())
    }

    /// Routes to the address a server has now: reads it from Hetzner, then, in one
    /// transaction, records it on the VPS row and the organization's route, resolves the
    /// finding and writes the audit row; then pushes the route to Caddy.
    async fn follow_address(
        &self,
        actor: &Actor,
        finding: &reconcile_findings::Model,
    ) -> Result<()> {
        let server_id: i64 = finding
            .subject
            .strip_prefix("server:")
            .and_then(|id| id.parse().ok())
            .ok_or_else(|| Error::Conflict("the finding names no server".to_owned()))?;
        let org_id = finding
            .organization_id
            .ok_or_else(|| Error::Conflict("the finding names no organization".to_owned()))?;
        let server = self
            .hetzner
            .get_server(server_id)
            .await
            .map_err(|e| Error::Unavailable(format!("Hetzner: {e}")))?
            .ok_or_else(|| Error::Conflict("Hetzner no longer has this server".to_owned()))?;
        let ip = server
            .public_net
            .ipv4
            .map(|a| a.ip)
            .ok_or_else(|| Error::Conflict("the server has no IPv4 address now".to_owned()))?;
        let vps = crate::organizations::current_vps(&self.db, org_id)
            .await?
            .filter(|v| v.hetzner_server_id == Some(server_id))
            .ok_or_else(|| {
                Error::Conflict("the organization's VPS is no longer this server".to_owned())
            })?;
        let now = self.clock.now();
        let txn = self.db.begin().await?;
        vpses::Entity::update_many()
            .col_expr(vpses::Column::Ipv4, Expr::value(ip.clone()))
            .col_expr(vpses::Column::UpdatedAt, Expr::value(now))
            .filter(vpses::Column::Id.eq(vps.id))
            .exec(&txn)
            .await?;
        crate::entities::routes::Entity::update_many()
            .col_expr(
                crate::entities::routes::Column::UpstreamIpv4,
                Expr::value(ip.clone()),
            )
            .col_expr(crate::entities::routes::Column::UpdatedAt, Expr::value(now))
            .filter(crate::entities::routes::Column::OrganizationId.eq(org_id))
            .exec(&txn)
            .await?;
        resolve(&txn, finding.id, now).await?;
        crate::audit::record(
            &txn,
            actor,
            "reconcile.address_followed",
            ("organization", Some(org_id.to_string())),
            json!({"finding": finding.id, "server_id": server_id, "from": vps.ipv4, "to": ip}),
            now,
        )
        .await?;
        txn.commit().await?;
        self.organizations.routing.push(org_id).await;
        self.events.publish(Change::Vps(vps.id));
        self.events.publish(Change::Organization(org_id));
        Ok(())
    }

    /// Deletes an orphan server at Hetzner, after checking that no live VPS row has claimed it
    /// (by id, or by name: a create about to adopt it) since the finding was made.
    async fn delete_server(&self, finding: &reconcile_findings::Model) -> Result<&'static str> {
        let server_id = finding.detail["server_id"]
            .as_i64()
            .ok_or_else(|| Error::Conflict("the finding names no server".to_owned()))?;
        let owned = vpses::Entity::find()
            .filter(
                Condition::any()
                    .add(vpses::Column::HetznerServerId.eq(server_id))
                    .add(vpses::Column::Name.eq(detail_text(&finding.detail, "name"))),
            )
            .filter(vpses::Column::DeletedAt.is_null())
            .one(&self.db)
            .await?;
        if owned.is_some() {
            return Err(Error::Conflict(
                "a VPS of Nest owns this server now: it is no orphan".to_owned(),
            ));
        }
        self.hetzner.delete_server(server_id).await.map_err(|e| {
            if e.is_retryable() {
                Error::Unavailable(format!("Hetzner: {e}"))
            } else {
                Error::Conflict(format!("Hetzner refused: {e}"))
            }
        })?;
        Ok("reconcile.server_deleted")
    }

    /// Cancels a subscription that charges a customer without service, after checking that it
    /// is one of this Nest's (a Stripe account may be shared with another deployment).
    async fn cancel_subscription(
        &self,
        finding: &reconcile_findings::Model,
    ) -> Result<&'static str> {
        let subscription = detail_text(&finding.detail, "subscription");
        let customer = detail_text(&finding.detail, "customer");
        let ours = organizations::Entity::find()
            .filter(
                Condition::any()
                    .add(organizations::Column::StripeSubscriptionId.eq(subscription.as_str()))
                    .add(organizations::Column::StripeCustomerId.eq(customer.as_str())),
            )
            .one(&self.db)
            .await?;
        if ours.is_none() {
            return Err(Error::Conflict(
                "this subscription belongs to no customer of this Nest".to_owned(),
            ));
        }
        self.billing
            .gateway
            .cancel_subscription(&subscription)
            .await
            .map_err(|e| match e {
                StripeFailure::Unreachable(_) => Error::Unavailable(format!("Stripe: {e}")),
                other => Error::Conflict(format!("Stripe refused: {other}")),
            })?;
        Ok("reconcile.subscription_cancelled")
    }
}

#[async_trait::async_trait]
impl app::backend::ReconcileBackend for ReconcileService {
    async fn findings(&self, resolved: bool) -> std::result::Result<FindingPage, AppError> {
        Ok(self.list(resolved).await?)
    }

    async fn act(
        &self,
        actor: &AdminIdentity,
        req: &RequestInfo,
        id: i64,
        action: FindingAction,
        confirm: String,
    ) -> std::result::Result<(), AppError> {
        let actor = Actor::new(req, Some(actor.user_id), &actor.email);
        Ok(ReconcileService::act(self, &actor, id, action, &confirm).await?)
    }
}
