//! Organizations: creation, and every status change through the lifecycle state machine
//! (`app::models::transition`). A change commits the organization row, its routing change, the
//! job it queues and its audit row in one transaction, or nothing at all.
//!
//! Concurrency: the status update is conditional on the status that was read (`WHERE status =
//! from`) and is the transaction's first write, so of two admins acting at once exactly one
//! wins on both engines; the other gets a `Conflict` and nothing of theirs is written.

pub mod queries;

use app::models::{
    Effect, Email, JobKind, JobPayload, JobState, OrgEvent, OrgSlug, OrgStatus, Region,
    RouteChange, transition,
};
use chrono::{DateTime, Utc};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseConnection,
    DatabaseTransaction, EntityTrait, QueryFilter, QueryOrder, TransactionTrait,
};
use serde_json::json;

use crate::audit::{self, Actor};
use crate::clock::Clock;
use crate::entities::{jobs, organizations, routes, tiers, vpses};
use crate::error::{Error, Result};
use crate::events::{Change, Events};
use crate::jobs::NewJob;
use crate::routing::RoutingService;

/// The port Caddy proxies to on each VPS (the web service).
pub const UPSTREAM_PORT: i32 = app::models::health::UPSTREAM.port() as i32;

/// The input of `/organizations/new` (and of signups).
#[derive(Debug, Clone)]
pub struct NewOrganization {
    /// Display name.
    pub name: String,
    /// Subdomain.
    pub slug: String,
    /// Owner's email.
    pub owner_email: String,
    /// Tier id.
    pub tier_id: i64,
    /// Region code.
    pub region: String,
}

/// A [`NewOrganization`] that passed [`OrganizationService::validate`], with its tier.
#[derive(Debug, Clone)]
pub struct ValidOrganization {
    name: String,
    slug: OrgSlug,
    owner_email: Email,
    region: Region,
    tier: tiers::Model,
}

/// Extra arguments of some events.
#[derive(Debug, Clone, Default)]
pub struct EventArgs {
    /// The new tier, for `ChangeTier` (and an optional one for `Approve`).
    pub tier_id: Option<i64>,
    /// Why, for `Reject` (shown on the org page) and failures.
    pub reason: Option<String>,
}

/// Organization service.
#[derive(Clone)]
pub struct OrganizationService {
    /// Database pool.
    pub db: DatabaseConnection,
    /// Time source.
    pub clock: Clock,
    /// Organizations are served at `<slug>.<base_domain>`.
    pub base_domain: String,
    /// Wakes the job engine and tells open pages what changed.
    pub events: Events,
    /// Pushes route changes to Caddy.
    pub routing: RoutingService,
    /// Stripe, for the subscriptions of Stripe-billed organizations (a tier change moves the
    /// subscription's price); `None` in tools that never change a tier.
    pub billing: Option<crate::billing::stripe::SubscriptionBilling>,
}

/// An event checked against the current state, ready to be written.
#[derive(Debug, Clone)]
pub struct Prepared {
    org: organizations::Model,
    event: OrgEvent,
    step: app::models::Transition,
    new_tier: Option<tiers::Model>,
    failed_job: Option<jobs::Model>,
    reason: Option<String>,
}

impl Prepared {
    /// Stripe's payment `event` (`FirstInvoicePaid`, `PaymentFailed`) for the organization as
    /// read, `has_create_job` read with it (see [`has_create_job`]): the checks of
    /// [`OrganizationService::prepare`] on what the caller read for a whole batch.
    pub fn payment(
        org: organizations::Model,
        event: OrgEvent,
        has_create_job: bool,
    ) -> Result<Self> {
        let step = allowed(&org, event)?;
        if decides_signup(event) {
            not_yet_approved(has_create_job)?;
        }
        Ok(Self {
            org,
            event,
            step,
            new_tier: None,
            failed_job: None,
            reason: None,
        })
    }
}

/// The transition `event` makes from `org`'s status, or a `Conflict` saying it is not allowed.
fn allowed(org: &organizations::Model, event: OrgEvent) -> Result<app::models::Transition> {
    transition(org.status, event).ok_or_else(|| {
        Error::Conflict(format!(
            "cannot {} an organization that is {}",
            verb(event),
            org.status
        ))
    })
}

/// Whether `event` decides a signup (only once: its `create` job is the decision).
fn decides_signup(event: OrgEvent) -> bool {
    matches!(
        event,
        OrgEvent::Approve | OrgEvent::Reject | OrgEvent::FirstInvoicePaid
    )
}

fn not_yet_approved(has_create_job: bool) -> Result<()> {
    if has_create_job {
        return Err(Error::Conflict(
            "this signup is already approved: its create job is queued".to_owned(),
        ));
    }
    Ok(())
}

/// What a written transition did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Written {
    /// The organization.
    pub org_id: i64,
    /// Jobs queued (or re-queued).
    pub jobs: Vec<i64>,
    /// Whether its routing entry changed.
    pub route_changed: bool,
}

async fn active_tier<C: ConnectionTrait>(conn: &C, tier_id: i64) -> Result<tiers::Model> {
    match tiers::Entity::find_by_id(tier_id).one(conn).await? {
        Some(tier) if tier.active => Ok(tier),
        Some(_) => Err(Error::invalid("tier", "this tier is no longer offered")),
        None => Err(Error::invalid("tier", "no such tier")),
    }
}

/// Queues `payload` (a job of `org`) inside `txn`.
pub async fn enqueue(
    txn: &DatabaseTransaction,
    payload: JobPayload,
    now: DateTime<Utc>,
) -> Result<jobs::Model> {
    crate::jobs::enqueue(txn, NewJob::now(payload, now), now)
        .await?
        .ok_or_else(|| Error::Conflict("the job is already queued".to_owned()))
}

/// Queues the provisioning job of `kind` for `org`.
async fn enqueue_kind(
    txn: &DatabaseTransaction,
    org: &organizations::Model,
    kind: JobKind,
    now: DateTime<Utc>,
) -> Result<jobs::Model> {
    crate::jobs::enqueue(txn, job_for(org.id, kind, now)?, now)
        .await?
        .ok_or_else(|| Error::Conflict("the job is already queued".to_owned()))
}

/// The provisioning job of `kind` for organization `org_id`, due now.
fn job_for(org_id: i64, kind: JobKind, now: DateTime<Utc>) -> Result<NewJob> {
    let payload = JobPayload::for_organization(kind, org_id)
        .ok_or_else(|| Error::Conflict(format!("a `{kind}` job cannot be queued this way")))?;
    Ok(NewJob::now(payload, now))
}

/// Whether the organization has a `create` job that is not failed (i.e. it was approved).
pub async fn has_create_job<C: ConnectionTrait>(conn: &C, org_id: i64) -> Result<bool> {
    Ok(jobs::Entity::find()
        .filter(jobs::Column::OrganizationId.eq(org_id))
        .filter(jobs::Column::Kind.eq(JobKind::Create))
        .filter(jobs::Column::State.ne(JobState::Failed))
        .one(conn)
        .await?
        .is_some())
}

pub async fn current_vps<C: ConnectionTrait>(
    conn: &C,
    org_id: i64,
) -> Result<Option<vpses::Model>> {
    Ok(vpses::Entity::find()
        .filter(vpses::Column::OrganizationId.eq(org_id))
        .filter(vpses::Column::DeletedAt.is_null())
        .order_by_desc(vpses::Column::Id)
        .one(conn)
        .await?)
}

impl OrganizationService {
    /// Creates an organization in `pending`; with `queue_create` (an admin creating it
    /// directly) its `create` job is queued in the same transaction.
    pub async fn create(
        &self,
        actor: &Actor,
        input: NewOrganization,
        queue_create: bool,
    ) -> Result<organizations::Model> {
        let valid = self.validate(input).await?;
        let txn = self.db.begin().await?;
        let (org, queued) = self.create_in(&txn, actor, valid, queue_create).await?;
        txn.commit().await?;
        if queued {
            self.events.wake_jobs();
        }
        self.events.publish(Change::Organization(org.id));
        Ok(org)
    }

    /// Checks `input` (and reads its tier) before any transaction is open, so a caller never
    /// holds a transaction's connection while waiting for a second one from the pool.
    pub async fn validate(&self, input: NewOrganization) -> Result<ValidOrganization> {
        let name = input.name.trim().to_owned();
        if name.is_empty() {
            return Err(Error::invalid("name", "is required"));
        }
        if name.chars().count() > 100 {
            return Err(Error::invalid("name", "must be at most 100 characters"));
        }
        let slug: OrgSlug = input
            .slug
            .trim()
            .parse()
            .map_err(|e: app::models::ParseError| Error::invalid("slug", e.to_string()))?;
        let owner_email: Email = input
            .owner_email
            .parse()
            .map_err(|e: app::models::ParseError| Error::invalid("owner_email", e.to_string()))?;
        let region: Region = input
            .region
            .parse()
            .map_err(|e: app::models::ParseEnumError| Error::invalid("region", e.to_string()))?;
        let tier = active_tier(&self.db, input.tier_id).await?;
        Ok(ValidOrganization {
            name,
            slug,
            owner_email,
            region,
            tier,
        })
    }

    /// The write of [`create`](Self::create) on the caller's transaction (a signup adds its own
    /// row to it): inserts the org (the transaction's first write), queues its `create` job
    /// when asked and writes the audit row. Returns the org and whether a job was queued; the
    /// caller commits, then wakes the engine and publishes the change.
    pub async fn create_in(
        &self,
        txn: &DatabaseTransaction,
        actor: &Actor,
        valid: ValidOrganization,
        queue_create: bool,
    ) -> Result<(organizations::Model, bool)> {
        let ValidOrganization {
            name,
            slug,
            owner_email,
            region,
            tier,
        } = valid;
        let now = self.clock.now();
        let org = organizations::ActiveModel {
            name: Set(name),
            slug: Set(slug.clone()),
            owner_email: Set(owner_email.clone()),
            tier_id: Set(tier.id),
            region: Set(region),
            status: Set(OrgStatus::Pending),
            status_reason: Set(None),
            status_changed_at: Set(now),
            stripe_customer_id: Set(None),
            stripe_subscription_id: Set(None),
            created_at: Set(now),
            updated_at: Set(now),
            ..Default::default()
        }
        .insert(txn)
        .await
        .map_err(|e| match Error::from(e) {
            Error::Duplicate(_) => Error::invalid("slug", format!("`{slug}` is already taken")),
            other => other,
        })?;
        let job = if queue_create {
            Some(enqueue_kind(txn, &org, JobKind::Create, now).await?.id)
        } else {
            None
        };
        audit::record(
            txn,
            actor,
            "organization.created",
            ("organization", Some(org.id.to_string())),
            json!({"name": org.name, "slug": slug, "owner_email": owner_email, "tier": tier.code, "region": region, "job_id": job}),
            now,
        )
        .await?;
        Ok((org, job.is_some()))
    }

    /// Applies `event` to organization `org_id`: the status change and every effect, with the
    /// audit row, in one transaction. An event the current state does not allow is refused
    /// with nothing written. Then wakes the job engine, pushes a routing change to Caddy and
    /// tells open pages.
    pub async fn apply(
        &self,
        actor: &Actor,
        org_id: i64,
        event: OrgEvent,
        args: EventArgs,
    ) -> Result<organizations::Model> {
        let prepared = self.prepare(org_id, event, args).await?;
        let txn = self.db.begin().await?;
        let written = self.write(&txn, actor, prepared).await?;
        txn.commit().await?;
        self.after_commit(&written).await;
        organizations::Entity::find_by_id(org_id)
            .one(&self.db)
            .await?
            .ok_or_else(|| Error::NotFound("organization".to_owned()))
    }

    /// Tells the rest of Nest about a committed change: wakes the engine for queued jobs,
    /// pushes the org's route to Caddy when it changed, and notifies open pages.
    pub async fn after_commit(&self, written: &Written) {
        if !written.jobs.is_empty() {
            self.events.wake_jobs();
        }
        if written.route_changed {
            self.routing.push(written.org_id).await;
        }
        self.events.publish(Change::Organization(written.org_id));
    }

    /// The read half of [`apply`](Self::apply): loads the org and checks that `event` is allowed
    /// and its arguments valid. Nothing is written.
    pub async fn prepare(&self, org_id: i64, event: OrgEvent, args: EventArgs) -> Result<Prepared> {
        let org = organizations::Entity::find_by_id(org_id)
            .one(&self.db)
            .await?
            .ok_or_else(|| Error::NotFound("organization".to_owned()))?;
        let step = allowed(&org, event)?;
        let new_tier = match (event, args.tier_id) {
            (OrgEvent::ChangeTier, None) => {
                return Err(Error::invalid("tier", "choose the new tier"));
            }
            (OrgEvent::ChangeTier, Some(id)) if id == org.tier_id => {
                return Err(Error::invalid(
                    "tier",
                    "this is already the organization's tier",
                ));
            }
            (OrgEvent::ChangeTier | OrgEvent::Approve, Some(id)) => {
                Some(active_tier(&self.db, id).await?)
            }
            _ => None,
        };
        let failed_job = if step.effects.contains(&Effect::RequeueFailedJob) {
            let job = jobs::Entity::find()
                .filter(jobs::Column::OrganizationId.eq(org.id))
                .order_by_desc(jobs::Column::Id)
                .one(&self.db)
                .await?
                .filter(|j| j.state == JobState::Failed);
            match (job, event) {
                (Some(job), OrgEvent::Retry(kind)) if job.kind == kind => Some(job),
                _ => {
                    return Err(Error::Conflict(
                        "there is no failed job of that kind to retry".to_owned(),
                    ));
                }
            }
        } else {
            None
        };
        if decides_signup(event) {
            not_yet_approved(has_create_job(&self.db, org.id).await?)?;
        }
        let reason = args
            .reason
            .map(|r| r.trim().chars().take(1000).collect::<String>())
            .filter(|r| !r.is_empty());
        Ok(Prepared {
            org,
            event,
            step,
            new_tier,
            failed_job,
            reason,
        })
    }

    /// The write half of [`apply`](Self::apply), inside the caller's transaction (the job engine
    /// adds its own job update to it): [`write_many`](Self::write_many) of one event.
    pub async fn write(
        &self,
        txn: &DatabaseTransaction,
        actor: &Actor,
        prepared: Prepared,
    ) -> Result<Written> {
        self.write_many(txn, actor, vec![prepared])
            .await?
            .pop()
            .ok_or_else(|| Error::Conflict("nothing was written".to_owned()))
    }

    /// Writes several prepared events, each of a different organization, inside the caller's
    /// transaction (a batch of Stripe's events): the status updates, conditional on the status
    /// that was read, grouped by transition (one statement per group); then every effect, the
    /// jobs queued by all of them in one statement, and their audit rows in one statement. An
    /// organization that changed since it was read fails the whole call with a `Conflict`.
    pub async fn write_many(
        &self,
        txn: &DatabaseTransaction,
        actor: &Actor,
        batch: Vec<Prepared>,
    ) -> Result<Vec<Written>> {
        let now = self.clock.now();
        for group in StatusUpdate::groups(&batch) {
            group.exec(txn, now).await?;
        }
        let mut details = Vec::with_capacity(batch.len());
        let mut jobs = vec![Vec::new(); batch.len()];
        let mut queued = Vec::new();
        for (i, p) in batch.iter().enumerate() {
            let org = &p.org;
            let mut detail = json!({"from": org.status, "to": p.step.to});
            if let Some(reason) = &p.reason {
                detail["reason"] = json!(reason);
            }
            if let Some(tier) = &p.new_tier {
                detail["tier"] = json!({"from": org.tier_id, "to": tier.id, "code": tier.code});
            }
            for effect in p.step.effects {
                match effect {
                    Effect::Route(change) => {
                        detail["route"] = json!(route_change(txn, org, *change, now).await?);
                    }
                    Effect::Enqueue(kind) => queued.push(job_for(org.id, *kind, now)?),
                    Effect::CancelSubscription => {
                        if org.stripe_subscription_id.is_some() {
                            queued.push(job_for(org.id, JobKind::CancelSubscription, now)?);
                        }
                    }
                    Effect::ResizeIfServerTypeChanges => {
                        if let (Some(tier), Some(vps)) =
                            (&p.new_tier, current_vps(txn, org.id).await?)
                            && vps.server_type != tier.server_type
                        {
                            let payload = JobPayload::Resize {
                                organization_id: org.id,
                                server_type: tier.server_type.clone(),
                            };
                            jobs[i].push(enqueue(txn, payload, now).await?.id);
                        }
                    }
                    Effect::RequeueFailedJob => {
                        if let Some(job) = &p.failed_job {
                            let mut active: jobs::ActiveModel = job.clone().into();
                            active.state = Set(JobState::Queued);
                            active.attempts = Set(0);
                            active.run_after = Set(now);
                            active.lease_owner = Set(None);
                            active.lease_token = Set(None);
                            active.lease_expires_at = Set(None);
                            active.finished_at = Set(None);
                            active.updated_at = Set(now);
                            active.update(txn).await?;
                            jobs[i].push(job.id);
                        }
                    }
                }
            }
            details.push(detail);
        }
        // Every organization appears once, so a queued job is its organization's.
        for job in crate::jobs::enqueue_many(txn, queued, now).await? {
            if let Some(i) = batch
                .iter()
                .position(|p| Some(p.org.id) == job.organization_id)
            {
                jobs[i].push(job.id);
            }
        }
        let mut records = Vec::with_capacity(batch.len());
        let mut written = Vec::with_capacity(batch.len());
        for ((p, mut detail), jobs) in batch.iter().zip(details).zip(jobs) {
            if !jobs.is_empty() {
                detail["jobs"] = json!(jobs);
            }
            written.push(Written {
                org_id: p.org.id,
                route_changed: detail.get("route").is_some(),
                jobs,
            });
            records.push(audit::Record {
                action: p.event.action().to_owned(),
                target_type: "organization".to_owned(),
                target_id: Some(p.org.id.to_string()),
                detail,
            });
        }
        audit::record_many(txn, actor, records, now).await?;
        Ok(written)
    }
}

/// The status update of the organizations making the same transition: one statement,
/// conditional on the status (and tier) that was read.
struct StatusUpdate<'a> {
    first: &'a Prepared,
    ids: Vec<i64>,
}

impl<'a> StatusUpdate<'a> {
    fn same(a: &Prepared, b: &Prepared) -> bool {
        a.org.status == b.org.status
            && a.step.to == b.step.to
            && a.reason == b.reason
            && a.new_tier.as_ref().map(|t| (t.id, a.org.tier_id))
                == b.new_tier.as_ref().map(|t| (t.id, b.org.tier_id))
    }

    fn groups(batch: &'a [Prepared]) -> Vec<Self> {
        let mut groups: Vec<Self> = Vec::new();
        for p in batch {
            match groups.iter_mut().find(|g| Self::same(g.first, p)) {
                Some(group) => group.ids.push(p.org.id),
                None => groups.push(Self {
                    first: p,
                    ids: vec![p.org.id],
                }),
            }
        }
        groups
    }

    async fn exec(&self, txn: &DatabaseTransaction, now: DateTime<Utc>) -> Result<()> {
        let Prepared {
            org,
            step,
            new_tier,
            reason,
            ..
        } = self.first;
        let from = org.status;
        let mut update = organizations::Entity::update_many()
            .col_expr(organizations::Column::Status, Expr::value(step.to))
            .col_expr(organizations::Column::UpdatedAt, Expr::value(now))
            .filter(organizations::Column::Id.is_in(self.ids.iter().copied()))
            .filter(organizations::Column::Status.eq(from));
        if step.to != from || reason.is_some() {
            update = update
                .col_expr(organizations::Column::StatusChangedAt, Expr::value(now))
                .col_expr(
                    organizations::Column::StatusReason,
                    Expr::value(reason.clone()),
                );
        }
        if let Some(tier) = new_tier {
            update = update
                .col_expr(organizations::Column::TierId, Expr::value(tier.id))
                .filter(organizations::Column::TierId.eq(org.tier_id));
        }
        if update.exec(txn).await?.rows_affected != self.ids.len() as u64 {
            return Err(Error::Conflict(
                "the organization changed meanwhile: reload and try again".to_owned(),
            ));
        }
        Ok(())
    }
}

/// Applies a routing change; returns what happened, for the audit detail.
async fn route_change(
    txn: &DatabaseTransaction,
    org: &organizations::Model,
    change: RouteChange,
    now: DateTime<Utc>,
) -> Result<&'static str> {
    let existing = routes::Entity::find()
        .filter(routes::Column::OrganizationId.eq(org.id))
        .one(txn)
        .await?;
    Ok(match (change, existing) {
        (RouteChange::Enable, Some(route)) => {
            let mut active: routes::ActiveModel = route.into();
            active.enabled = Set(true);
            active.updated_at = Set(now);
            active.update(txn).await?;
            "enabled"
        }
        (RouteChange::Enable, None) => match current_vps(txn, org.id).await?.and_then(|v| v.ipv4) {
            Some(ip) => {
                routes::ActiveModel {
                    organization_id: Set(org.id),
                    slug: Set(org.slug.clone()),
                    upstream_ipv4: Set(ip),
                    upstream_port: Set(UPSTREAM_PORT),
                    enabled: Set(true),
                    applied_at: Set(None),
                    created_at: Set(now),
                    updated_at: Set(now),
                    ..Default::default()
                }
                .insert(txn)
                .await?;
                "created"
            }
            None => "none (no server address yet)",
        },
        (RouteChange::Disable, Some(route)) => {
            let mut active: routes::ActiveModel = route.into();
            active.enabled = Set(false);
            active.updated_at = Set(now);
            active.update(txn).await?;
            "disabled"
        }
        (RouteChange::Disable, None) => "none",
        (RouteChange::Remove, Some(route)) => {
            routes::Entity::delete_by_id(route.id).exec(txn).await?;
            "removed"
        }
        (RouteChange::Remove, None) => "none",
    })
}

/// The verb of an event, for messages.
fn verb(event: OrgEvent) -> &'static str {
    match event {
        OrgEvent::Approve => "approve",
        OrgEvent::Reject => "reject",
        OrgEvent::Suspend => "suspend",
        OrgEvent::Resume => "resume",
        OrgEvent::ChangeTier => "change the tier of",
        OrgEvent::Redeploy => "redeploy",
        OrgEvent::Delete => "delete",
        OrgEvent::Retry(_) => "retry",
        OrgEvent::ProvisioningStarted => "start provisioning",
        OrgEvent::ServerCreated => "mark as server created",
        OrgEvent::SmokeTestPassed => "activate",
        OrgEvent::OperationFailed => "fail",
        OrgEvent::DeletionCompleted => "complete the deletion of",
        OrgEvent::FirstInvoicePaid => "record the first payment for",
        OrgEvent::SubscriptionRenewed => "renew the subscription of",
        OrgEvent::PaymentFailed => "record a failed payment for",
        OrgEvent::PaymentOverdue => "record an overdue payment for",
        OrgEvent::SubscriptionCancelled => "cancel the subscription of",
        OrgEvent::SubscriptionEnded => "end the subscription of",
        OrgEvent::PaymentReceived => "record a payment for",
    }
}

#[async_trait::async_trait]
impl app::backend::OrganizationsBackend for OrganizationService {
    async fn tiers(&self) -> Result<Vec<app::models::TierOption>, app::error::AppError> {
        Ok(queries::tier_options(&self.db).await?)
    }

    async fn slug_available(&self, slug: String) -> Result<bool, app::error::AppError> {
        let Ok(slug) = slug.trim().parse::<OrgSlug>() else {
            return Ok(false);
        };
        let taken = organizations::Entity::find()
            .filter(organizations::Column::Slug.eq(slug))
            .one(&self.db)
            .await
            .map_err(Error::from)?;
        Ok(taken.is_none())
    }

    async fn create(
        &self,
        actor: &app::models::AdminIdentity,
        req: &app::backend::RequestInfo,
        name: String,
        slug: String,
        owner_email: String,
        tier_id: i64,
        region: String,
    ) -> Result<i64, app::error::AppError> {
        let actor = Actor::new(req, Some(actor.user_id), &actor.email);
        let org = self
            .create(
                &actor,
                NewOrganization {
                    name,
                    slug,
                    owner_email,
                    tier_id,
                    region,
                },
                true,
            )
            .await?;
        Ok(org.id)
    }

    async fn list(
        &self,
        query: app::models::OrgQuery,
        limit: u64,
    ) -> Result<app::models::OrgPage, app::error::AppError> {
        Ok(queries::list(&self.db, query, limit).await?)
    }

    async fn waitlist(&self) -> Result<Vec<app::models::OrgSummary>, app::error::AppError> {
        Ok(queries::waitlist(&self.db).await?)
    }

    async fn detail(&self, id: i64) -> Result<app::models::OrgDetail, app::error::AppError> {
        Ok(queries::detail(&self.db, id, &self.base_domain).await?)
    }

    async fn act(
        &self,
        actor: &app::models::AdminIdentity,
        req: &app::backend::RequestInfo,
        id: i64,
        event: OrgEvent,
        tier_id: Option<i64>,
        reason: Option<String>,
    ) -> Result<(), app::error::AppError> {
        if !event.is_admin_action() {
            return Err(app::error::AppError::Forbidden(
                "only the system triggers this event".to_owned(),
            ));
        }
        let actor = Actor::new(req, Some(actor.user_id), &actor.email);
        let args = EventArgs { tier_id, reason };
        if event != OrgEvent::ChangeTier {
            self.apply(&actor, id, event, args).await?;
            return Ok(());
        }
        // A tier change checks the transition first, then moves a Stripe-billed subscription
        // to the new price (idempotent per change, so a retry after a failed write does not
        // bill twice), then writes.
        let prepared = self.prepare(id, event, args).await?;
        self.move_subscription(&prepared).await?;
        let txn = self.db.begin().await.map_err(Error::from)?;
        let written = self.write(&txn, &actor, prepared).await?;
        txn.commit().await.map_err(Error::from)?;
        self.after_commit(&written).await;
        Ok(())
    }

    async fn tier_change_preview(
        &self,
        id: i64,
        tier_id: i64,
    ) -> Result<Option<app::models::TierChangePreview>, app::error::AppError> {
        let Some((billing, subscription, price)) = self.subscription_target(id, tier_id).await?
        else {
            return Ok(None);
        };
        let preview = billing
            .gateway
            .preview_price_change(&subscription, &price)
            .await
            .map_err(|e| Error::Unavailable(format!("Stripe's preview failed: {e}")))?;
        let money = |cents: i64| match preview.currency.to_uppercase().parse() {
            Ok(currency) => app::models::Money { cents, currency }.to_string(),
            Err(_) => format!("{cents} {}", preview.currency),
        };
        Ok(Some(app::models::TierChangePreview {
            amount_due: money(preview.amount_due),
            lines: preview
                .lines
                .iter()
                .map(|(description, amount)| (description.clone(), money(*amount)))
                .collect(),
        }))
    }
}

impl OrganizationService {
    /// For a Stripe-billed organization: the billing client, its subscription and the Stripe
    /// price of `tier_id`. `None` when the organization is not billed through Stripe.
    async fn subscription_target(
        &self,
        org_id: i64,
        tier_id: i64,
    ) -> Result<Option<(&crate::billing::stripe::SubscriptionBilling, String, String)>> {
        let org = organizations::Entity::find_by_id(org_id)
            .one(&self.db)
            .await?
            .ok_or_else(|| Error::NotFound("organization".to_owned()))?;
        let (Some(billing), Some(subscription)) = (&self.billing, org.stripe_subscription_id)
        else {
            return Ok(None);
        };
        let tier = active_tier(&self.db, tier_id).await?;
        let price = billing.price_of(&tier).ok_or_else(|| {
            Error::invalid(
                "tier",
                format!("the {} tier has no Stripe price: set one before moving a paying customer to it", tier.name),
            )
        })?;
        Ok(Some((billing, subscription, price)))
    }

    /// Moves the subscription of a Stripe-billed organization to the prepared tier's price.
    async fn move_subscription(&self, prepared: &Prepared) -> Result<()> {
        let Some(tier) = &prepared.new_tier else {
            return Ok(());
        };
        let Some((billing, subscription, price)) =
            self.subscription_target(prepared.org.id, tier.id).await?
        else {
            return Ok(());
        };
        let change = format!("tier-{}-to-{}", prepared.org.tier_id, tier.id);
        billing
            .gateway
            .change_price(prepared.org.id, &subscription, &price, &change)
            .await
            .map_err(|e| match e {
                crate::billing::stripe::StripeFailure::Refused(why) => Error::invalid("tier", why),
                other => Error::Unavailable(format!("Stripe could not change the price: {other}")),
            })
    }
}
