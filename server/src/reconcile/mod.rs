//! Reconciliation (the `reconcile` periodic task, once per slot across replicas): Nest's
//! database compared with what Hetzner and Stripe hold, so money that leaks is seen.
//!
//! - [`Reconciler::gather`] reads the outside world: every server carrying Nest's label (paged,
//!   within the rate budget), every subscription of the Stripe account (paged, all statuses),
//!   and, for a running VPS whose server is not in the list, that server alone (a 404 makes it
//!   missing).
//! - [`plan`] is pure: facts in, findings out (tested without a database or a network).
//! - [`Reconciler::record`] writes them in one transaction: a finding seen again moves its
//!   `last_seen_at`, a new one is inserted, and an open one no longer seen is resolved.
//!
//! Nothing is ever repaired automatically: an orphan server may hold a customer's data, and a
//! subscription may be one an admin is settling by hand. Findings are for people to act on.

pub mod service;

use std::collections::{HashMap, HashSet};

use app::models::{FindingKind, JobPayload, JobState, JobStep, OrgStatus, VpsStatus};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, QuerySelect,
    TransactionTrait,
};
use serde_json::json;

use crate::billing::stripe::{StripeFailure, SubscriptionBilling, SubscriptionSummary};
use crate::clock::Clock;
use crate::entities::{jobs, organizations, reconcile_findings, tiers, vpses};
use crate::error::{Error, Result};
use crate::events::{Change, Events};
use crate::health::alerts::Channels;
use crate::hetzner::{HetznerClient, HetznerError, MANAGED_LABEL, ORG_LABEL, Server};
use crate::jobs::{Attempt, Handler, JobFailure, Outcome};

/// The label selector of every server Nest manages.
pub fn managed_selector() -> String {
    format!("{MANAGED_LABEL}=nest")
}

/// A live VPS row as reconciliation sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KnownVps {
    /// Its organization.
    pub organization_id: i64,
    /// Its server's name (a create in flight has no id yet).
    pub name: String,
    /// Hetzner's id.
    pub hetzner_server_id: Option<i64>,
    /// Nest's view of it.
    pub status: VpsStatus,
    /// The address Nest routes to.
    pub ipv4: Option<String>,
    /// The server type of the organization's tier.
    pub tier_server_type: String,
    /// The organization's status.
    pub org_status: OrgStatus,
    /// The organization has a job queued or running (a resize or delete in flight): drift is
    /// expected until it ends.
    pub busy: bool,
}

/// An organization billed through Stripe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BilledOrg {
    /// Its id.
    pub id: i64,
    /// Its status.
    pub status: OrgStatus,
    /// `sub_…`.
    pub subscription: String,
    /// Its tier's Stripe price, when one is set.
    pub price: Option<String>,
    /// Its Stripe customer.
    pub customer: Option<String>,
}

/// Everything [`plan`] compares.
#[derive(Debug, Clone, Default)]
pub struct Facts {
    /// Servers at Hetzner carrying Nest's label.
    pub servers: Vec<Server>,
    /// Hetzner ids of running VPS rows that Hetzner answered 404 for.
    pub gone: HashSet<i64>,
    /// Every subscription of the Stripe account.
    pub subscriptions: Vec<SubscriptionSummary>,
    /// Live (not deleted) VPS rows.
    pub vpses: Vec<KnownVps>,
    /// Organizations with a Stripe subscription.
    pub billed: Vec<BilledOrg>,
    /// Stripe customers of this Nest's organizations: a subscription of any other customer
    /// (another deployment sharing the Stripe account) is none of its business.
    pub customers: HashSet<String>,
    /// Organizations with a job queued or running: their servers and subscriptions are on
    /// the move (a create, a delete, a cancellation), so they are left for the next run.
    pub busy: HashSet<i64>,
}

/// One thing that does not match.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// What kind.
    pub kind: FindingKind,
    /// What it is about: `server:<id>`, `subscription:<id>` or `organization:<id>`.
    pub subject: String,
    /// The organization it belongs to, when one does.
    pub organization_id: Option<i64>,
    /// What was expected and what was found.
    pub detail: serde_json::Value,
}

impl Finding {
    /// One line for the alert channels.
    pub fn message(&self) -> String {
        summary(self.kind, &self.detail)
    }
}

/// A field of a finding's detail as text (empty when absent).
pub fn detail_text(detail: &serde_json::Value, key: &str) -> String {
    match &detail[key] {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// One sentence about a finding, for `/reconcile` and the alert channels.
pub fn summary(kind: FindingKind, detail: &serde_json::Value) -> String {
    let field = |k: &str| {
        Some(detail_text(detail, k))
            .filter(|t| !t.is_empty())
            .unwrap_or_else(|| "-".to_owned())
    };
    match kind {
        FindingKind::OrphanServer => format!(
            "orphan server {} (#{}, {}) at Hetzner: no organization of Nest owns it, and it is billed until deleted",
            field("name"),
            field("server_id"),
            field("server_type"),
        ),
        FindingKind::MissingServer => format!(
            "server {} (#{}) runs for Nest, but Hetzner no longer has it",
            field("name"),
            field("server_id"),
        ),
        FindingKind::TypeDrift => format!(
            "the server is a {}, its tier's type is {}",
            field("found"),
            field("expected"),
        ),
        FindingKind::AddressDrift => format!(
            "the server's IPv4 is {}, Nest routes to {}",
            field("found"),
            field("expected"),
        ),
        FindingKind::PowerDrift => format!(
            "the server is {} while its organization is active",
            field("found"),
        ),
        FindingKind::LiveSubscription => format!(
            "Stripe subscription {} ({}) still charges customer {} although its organization is {}",
            field("subscription"),
            field("status"),
            field("customer"),
            match field("organization_status").as_str() {
                "-" => "gone".to_owned(),
                status => status.to_owned(),
            },
        ),
        FindingKind::MissingSubscription => format!(
            "the organization is active, but its subscription {} is {}",
            field("subscription"),
            field("found"),
        ),
        FindingKind::PriceDrift => format!(
            "the subscription is on price {}, its tier's is {}",
            field("found"),
            field("expected"),
        ),
    }
}

/// New findings that cost money, one alert each, beyond this many one alert for them all (a
/// first run against a large, neglected account must not send thousands of messages).
pub const ALERTS_PER_RUN: usize = 5;

/// The alert messages for `costly` new findings.
pub fn alert_messages(costly: &[&Finding]) -> Vec<String> {
    if costly.len() <= ALERTS_PER_RUN {
        return costly.iter().map(|f| f.message()).collect();
    }
    let first: Vec<&str> = costly
        .iter()
        .take(ALERTS_PER_RUN)
        .map(|f| f.subject.as_str())
        .collect();
    vec![format!(
        "{} new findings that cost money (orphan servers, subscriptions charging customers without service), among them {}: see /reconcile",
        costly.len(),
        first.join(", ")
    )]
}

fn server_subject(id: i64) -> String {
    format!("server:{id}")
}

/// Whether an orphan server carrying `label_org` and the name of `vps` (a VPS row with no
/// server recorded) can be adopted by it: only when the label names the same organization and
/// that organization's create failed (`error`). Its name and label say the organization's own
/// create made it, so it booted with the secrets Nest sealed for that VPS; a server made any
/// other way holds secrets Nest does not know, and is deleted instead.
pub fn adoptable(vps: &KnownVps, label_org: Option<i64>) -> bool {
    label_org == Some(vps.organization_id) && vps.org_status == OrgStatus::Error
}

/// The findings `facts` hold. Pure.
pub fn plan(facts: &Facts) -> Vec<Finding> {
    let mut findings = servers(facts);
    findings.extend(subscriptions(facts));
    findings
}

fn servers(facts: &Facts) -> Vec<Finding> {
    let by_id: HashMap<i64, &KnownVps> = facts
        .vpses
        .iter()
        .filter_map(|v| v.hetzner_server_id.map(|id| (id, v)))
        .collect();
    // VPS rows whose server is not recorded yet: a create in flight (its organization busy), or
    // one that failed before it recorded the server it made.
    let unrecorded: HashMap<&str, &KnownVps> = facts
        .vpses
        .iter()
        .filter(|v| v.hetzner_server_id.is_none())
        .map(|v| (v.name.as_str(), v))
        .collect();
    let mut findings = Vec::new();
    for server in &facts.servers {
        let ipv4 = server.public_net.ipv4.as_ref().map(|a| a.ip.clone());
        let Some(vps) = by_id.get(&server.id) else {
            let label_org: Option<i64> = server.labels.get(ORG_LABEL).and_then(|v| v.parse().ok());
            let moving = label_org.is_some_and(|org| facts.busy.contains(&org));
            let waiting = unrecorded.get(server.name.as_str());
            if moving || waiting.is_some_and(|v| v.busy) {
                continue;
            }
            findings.push(Finding {
                kind: FindingKind::OrphanServer,
                subject: server_subject(server.id),
                organization_id: label_org,
                detail: json!({
                    "server_id": server.id,
                    "name": server.name,
                    "server_type": server.server_type.name,
                    "ipv4": ipv4,
                    "status": server.status,
                    "created": server.created,
                    "adoptable": waiting.is_some_and(|v| adoptable(v, label_org)),
                }),
            });
            continue;
        };
        if vps.busy || vps.status != VpsStatus::Running {
            continue;
        }
        let org = Some(vps.organization_id);
        if server.server_type.name != vps.tier_server_type {
            findings.push(Finding {
                kind: FindingKind::TypeDrift,
                subject: server_subject(server.id),
                organization_id: org,
                detail: json!({"expected": vps.tier_server_type, "found": server.server_type.name}),
            });
        }
        if ipv4 != vps.ipv4 {
            findings.push(Finding {
                kind: FindingKind::AddressDrift,
                subject: server_subject(server.id),
                organization_id: org,
                detail: json!({"expected": vps.ipv4, "found": ipv4}),
            });
        }
        if server.status == "off" && vps.org_status == OrgStatus::Active {
            findings.push(Finding {
                kind: FindingKind::PowerDrift,
                subject: server_subject(server.id),
                organization_id: org,
                detail: json!({"expected": "running", "found": server.status}),
            });
        }
    }
    for vps in &facts.vpses {
        if let Some(id) = vps.hetzner_server_id
            && vps.status == VpsStatus::Running
            && facts.gone.contains(&id)
        {
            findings.push(Finding {
                kind: FindingKind::MissingServer,
                subject: server_subject(id),
                organization_id: Some(vps.organization_id),
                detail: json!({"server_id": id, "name": vps.name, "ipv4": vps.ipv4}),
            });
        }
    }
    findings
}

fn subscriptions(facts: &Facts) -> Vec<Finding> {
    let by_id: HashMap<&str, &SubscriptionSummary> = facts
        .subscriptions
        .iter()
        .map(|s| (s.id.as_str(), s))
        .collect();
    let billed: HashMap<&str, &BilledOrg> = facts
        .billed
        .iter()
        .map(|o| (o.subscription.as_str(), o))
        .collect();
    let mut findings = Vec::new();
    for sub in facts.subscriptions.iter().filter(|s| s.is_live()) {
        let org = billed.get(sub.id.as_str());
        if org.is_some_and(|o| facts.busy.contains(&o.id)) {
            continue;
        }
        let ended =
            org.is_none_or(|o| matches!(o.status, OrgStatus::Deleted | OrgStatus::Cancelled));
        // Only this Nest's subscriptions: an organization's, or one of its customers'.
        if ended && (org.is_some() || facts.customers.contains(&sub.customer)) {
            findings.push(Finding {
                kind: FindingKind::LiveSubscription,
                subject: format!("subscription:{}", sub.id),
                organization_id: org.map(|o| o.id).or(sub.organization_id),
                detail: json!({
                    "subscription": sub.id,
                    "customer": sub.customer,
                    "status": sub.status,
                    "organization_status": org.map(|o| o.status),
                }),
            });
        }
        if let Some(org) = org
            && matches!(
                org.status,
                OrgStatus::Active | OrgStatus::Suspended | OrgStatus::Cancelling
            )
            && let Some(expected) = &org.price
            && sub.price.as_ref() != Some(expected)
        {
            findings.push(Finding {
                kind: FindingKind::PriceDrift,
                subject: format!("subscription:{}", sub.id),
                organization_id: Some(org.id),
                detail: json!({"expected": expected, "found": sub.price}),
            });
        }
    }
    for org in facts
        .billed
        .iter()
        .filter(|o| o.status == OrgStatus::Active && !facts.busy.contains(&o.id))
    {
        let sub = by_id.get(org.subscription.as_str());
        if !sub.is_some_and(|s| s.is_live()) {
            findings.push(Finding {
                kind: FindingKind::MissingSubscription,
                subject: format!("organization:{}", org.id),
                organization_id: Some(org.id),
                detail: json!({
                    "subscription": org.subscription,
                    "found": sub.map_or("absent", |s| s.status.as_str()),
                }),
            });
        }
    }
    findings
}

/// How many findings are open, and how many of those cost money (the overview's figures).
pub async fn open_counts(db: &DatabaseConnection) -> Result<(u64, u64)> {
    let kinds: Vec<FindingKind> = reconcile_findings::Entity::find()
        .select_only()
        .column(reconcile_findings::Column::Kind)
        .filter(reconcile_findings::Column::ResolvedAt.is_null())
        .into_tuple()
        .all(db)
        .await?;
    let costly = kinds.iter().filter(|k| k.costs_money()).count();
    Ok((kinds.len() as u64, costly as u64))
}

/// What one run changed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Report {
    /// Findings seen for the first time.
    pub opened: usize,
    /// Findings seen again.
    pub seen_again: usize,
    /// Open findings no longer seen.
    pub resolved: usize,
    /// New findings that cost money, sent to the alert channels.
    pub alerted: usize,
}

/// Why a run could not finish.
#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    /// Hetzner failed (a retry may succeed).
    #[error("Hetzner: {0}")]
    Hetzner(#[from] HetznerError),
    /// Stripe failed.
    #[error("Stripe: {0}")]
    Stripe(#[from] StripeFailure),
    /// The database failed.
    #[error("{0}")]
    Database(#[from] Error),
}

/// Runs `reconcile` jobs.
#[derive(Clone)]
pub struct Reconciler {
    /// Database pool.
    pub db: DatabaseConnection,
    /// Time source.
    pub clock: Clock,
    /// Hetzner (or the simulator).
    pub hetzner: HetznerClient,
    /// Stripe (or the simulator), and each tier's price.
    pub billing: SubscriptionBilling,
    /// Where a new finding that costs money is sent.
    pub channels: Channels,
    /// Tells open pages (the overview's count).
    pub events: Events,
}

impl Reconciler {
    /// One run: gather, plan, record.
    pub async fn run_once(&self) -> std::result::Result<Report, ReconcileError> {
        let facts = self.gather().await?;
        Ok(self.record(&plan(&facts)).await?)
    }

    /// Reads Hetzner and Stripe, then the database: a server or a subscription made while
    /// this runs already has its row when the database is read, and an organization whose job
    /// is moving things meanwhile is busy by then.
    pub async fn gather(&self) -> std::result::Result<Facts, ReconcileError> {
        let servers = self.hetzner.list_servers(&managed_selector()).await?;
        let subscriptions = self.billing.gateway.list_subscriptions().await?;
        let tiers: HashMap<i64, tiers::Model> = tiers::Entity::find()
            .all(&self.db)
            .await
            .map_err(Error::from)?
            .into_iter()
            .map(|t| (t.id, t))
            .collect();
        let busy: HashSet<i64> = jobs::Entity::find()
            .select_only()
            .column(jobs::Column::OrganizationId)
            .filter(jobs::Column::State.is_in([JobState::Queued, JobState::Running]))
            .filter(jobs::Column::OrganizationId.is_not_null())
            .into_tuple::<Option<i64>>()
            .all(&self.db)
            .await
            .map_err(Error::from)?
            .into_iter()
            .flatten()
            .collect();
        let orgs: HashMap<i64, organizations::Model> = organizations::Entity::find()
            .all(&self.db)
            .await
            .map_err(Error::from)?
            .into_iter()
            .map(|o| (o.id, o))
            .collect();
        let tier_type = |org: &organizations::Model| {
            tiers
                .get(&org.tier_id)
                .map(|t| t.server_type.to_string())
                .unwrap_or_default()
        };
        let vpses: Vec<KnownVps> = vpses::Entity::find()
            .filter(vpses::Column::DeletedAt.is_null())
            .all(&self.db)
            .await
            .map_err(Error::from)?
            .into_iter()
            .filter_map(|v| {
                let org = orgs.get(&v.organization_id)?;
                Some(KnownVps {
                    organization_id: v.organization_id,
                    name: v.name,
                    hetzner_server_id: v.hetzner_server_id,
                    status: v.status,
                    ipv4: v.ipv4,
                    tier_server_type: tier_type(org),
                    org_status: org.status,
                    busy: busy.contains(&v.organization_id),
                })
            })
            .collect();
        let billed = orgs
            .values()
            .filter_map(|o| {
                Some(BilledOrg {
                    id: o.id,
                    status: o.status,
                    subscription: o.stripe_subscription_id.clone()?,
                    price: tiers.get(&o.tier_id).and_then(|t| self.billing.price_of(t)),
                    customer: o.stripe_customer_id.clone(),
                })
            })
            .collect();
        let customers = orgs
            .values()
            .filter_map(|o| o.stripe_customer_id.clone())
            .collect();
        let listed: HashSet<i64> = servers.iter().map(|s| s.id).collect();
        let mut gone = HashSet::new();
        for vps in &vpses {
            if let Some(id) = vps.hetzner_server_id
                && vps.status == VpsStatus::Running
                && !vps.busy
                && !listed.contains(&id)
                && self.hetzner.get_server(id).await?.is_none()
            {
                gone.insert(id);
            }
        }
        Ok(Facts {
            servers,
            gone,
            subscriptions,
            vpses,
            billed,
            customers,
            busy,
        })
    }

    /// Writes `findings` in one transaction: new ones inserted, known ones seen again, open
    /// ones no longer found resolved.
    pub async fn record(&self, findings: &[Finding]) -> Result<Report> {
        let now = self.clock.now();
        // Read before the transaction, so that its first statement is a write (SQLite: a
        // transaction that read first fails if another writer committed meanwhile). One run
        // at a time: the task runs once per slot, its runs share a serialization key.
        let open = reconcile_findings::Entity::find()
            .filter(reconcile_findings::Column::ResolvedAt.is_null())
            .all(&self.db)
            .await?;
        let txn = self.db.begin().await?;
        let mut open_by_key: HashMap<(FindingKind, &str), &reconcile_findings::Model> = open
            .iter()
            .map(|f| ((f.kind, f.subject.as_str()), f))
            .collect();
        let mut report = Report::default();
        let mut costly = Vec::new();
        for finding in findings {
            match open_by_key.remove(&(finding.kind, finding.subject.as_str())) {
                Some(known) => {
                    reconcile_findings::Entity::update_many()
                        .col_expr(reconcile_findings::Column::LastSeenAt, Expr::value(now))
                        .col_expr(
                            reconcile_findings::Column::Detail,
                            Expr::value(finding.detail.clone()),
                        )
                        .filter(reconcile_findings::Column::Id.eq(known.id))
                        .exec(&txn)
                        .await?;
                    report.seen_again += 1;
                }
                None => {
                    reconcile_findings::Entity::insert(reconcile_findings::ActiveModel {
                        kind: Set(finding.kind),
                        subject: Set(finding.subject.clone()),
                        organization_id: Set(finding.organization_id),
                        detail: Set(finding.detail.clone()),
                        first_seen_at: Set(now),
                        last_seen_at: Set(now),
                        resolved_at: Set(None),
                        ..Default::default()
                    })
                    .exec(&txn)
                    .await?;
                    if finding.kind.costs_money() {
                        costly.push(finding);
                    }
                    report.opened += 1;
                }
            }
        }
        for message in alert_messages(&costly) {
            crate::health::alerts::raise_finding(&txn, self.channels, message, now).await?;
            report.alerted += 1;
        }
        let gone: Vec<i64> = open_by_key.values().map(|f| f.id).collect();
        if !gone.is_empty() {
            report.resolved = gone.len();
            reconcile_findings::Entity::update_many()
                .col_expr(reconcile_findings::Column::ResolvedAt, Expr::value(now))
                .filter(reconcile_findings::Column::Id.is_in(gone))
                .exec(&txn)
                .await?;
        }
        txn.commit().await?;
        if report.opened + report.resolved > 0 {
            self.events.publish(Change::Billing(None));
        }
        if report.alerted > 0 {
            self.events.wake_jobs();
        }
        Ok(report)
    }
}

#[async_trait::async_trait]
impl Handler for Reconciler {
    async fn run(&self, attempt: &Attempt) -> std::result::Result<Outcome, JobFailure> {
        if !matches!(attempt.payload(), JobPayload::Reconcile) {
            return Err(JobFailure::fatal(
                None,
                "the reconciler runs only reconcile",
            ));
        }
        let step = JobStep::Reconcile;
        let report = attempt
            .step(step, async {
                self.run_once()
                    .await
                    .map_err(|e| JobFailure::transient(Some(step), e.to_string()))
            })
            .await?;
        tracing::info!(
            findings.opened = report.opened,
            findings.seen_again = report.seen_again,
            findings.resolved = report.resolved,
            "reconciled the database with Hetzner and Stripe"
        );
        Ok(Outcome::Done)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::collections::BTreeMap;

    use super::*;
    use crate::hetzner::{Ipv4Info, PublicNet, ServerTypeRef};

    fn server(id: i64, name: &str, server_type: &str, ip: &str, status: &str) -> Server {
        Server {
            id,
            name: name.to_owned(),
            status: status.to_owned(),
            public_net: PublicNet {
                ipv4: Some(Ipv4Info { ip: ip.to_owned() }),
            },
            server_type: ServerTypeRef {
                name: server_type.to_owned(),
            },
            labels: BTreeMap::from([(ORG_LABEL.to_owned(), "7".to_owned())]),
            created: chrono::DateTime::UNIX_EPOCH,
        }
    }

    fn vps(org: i64, name: &str, id: Option<i64>, ip: &str) -> KnownVps {
        KnownVps {
            organization_id: org,
            name: name.to_owned(),
            hetzner_server_id: id,
            status: VpsStatus::Running,
            ipv4: Some(ip.to_owned()),
            tier_server_type: "cx22".to_owned(),
            org_status: OrgStatus::Active,
            busy: false,
        }
    }

    fn sub(id: &str, status: &str, price: &str, org: Option<i64>) -> SubscriptionSummary {
        SubscriptionSummary {
            id: id.to_owned(),
            customer: "cus_1".to_owned(),
            status: status.to_owned(),
            price: Some(price.to_owned()),
            organization_id: org,
        }
    }

    fn billed(id: i64, status: OrgStatus, subscription: &str) -> BilledOrg {
        BilledOrg {
            id,
            status,
            subscription: subscription.to_owned(),
            price: Some("price_growth".to_owned()),
            customer: Some("cus_1".to_owned()),
        }
    }

    fn kinds(facts: &Facts) -> Vec<(FindingKind, String)> {
        let mut found: Vec<_> = plan(facts)
            .into_iter()
            .map(|f| (f.kind, f.subject))
            .collect();
        found.sort();
        found
    }

    #[test]
    fn costly_findings_are_alerted_one_by_one_then_summed_up() {
        let facts = Facts {
            servers: (1..=7)
                .map(|i| server(i, &format!("stray-{i}"), "cx22", "10.0.0.1", "running"))
                .collect(),
            ..Facts::default()
        };
        let found = plan(&facts);
        let costly: Vec<&Finding> = found.iter().collect();
        let few = alert_messages(&costly[..2]);
        assert_eq!(few.len(), 2);
        assert!(
            few[0].starts_with("orphan server stray-1 (#1, cx22) at Hetzner"),
            "{few:?}"
        );
        let many = alert_messages(&costly);
        assert_eq!(many.len(), 1, "{many:?}");
        assert!(
            many[0].starts_with("7 new findings that cost money"),
            "{many:?}"
        );
        let live = Finding {
            kind: FindingKind::LiveSubscription,
            subject: "subscription:sub_1".to_owned(),
            organization_id: Some(1),
            detail: json!({"subscription": "sub_1", "status": "active", "customer": "cus_1", "organization_status": "deleted"}),
        };
        assert_eq!(
            live.message(),
            "Stripe subscription sub_1 (active) still charges customer cus_1 although its organization is deleted"
        );
    }

    #[test]
    fn a_fleet_that_matches_its_database_has_no_findings() {
        let facts = Facts {
            servers: vec![server(1, "nest-a", "cx22", "10.0.0.1", "running")],
            vpses: vec![vps(1, "nest-a", Some(1), "10.0.0.1")],
            subscriptions: vec![sub("sub_a", "active", "price_growth", Some(1))],
            billed: vec![billed(1, OrgStatus::Active, "sub_a")],
            ..Facts::default()
        };
        assert_eq!(kinds(&facts), vec![]);
    }

    #[test]
    fn a_labelled_server_no_vps_owns_is_an_orphan_unless_its_create_is_in_flight() {
        let facts = Facts {
            servers: vec![
                server(1, "nest-a", "cx22", "10.0.0.1", "running"),
                server(2, "nest-by-hand", "cx22", "10.0.0.2", "running"),
                server(3, "nest-creating", "cx22", "10.0.0.3", "initializing"),
            ],
            vpses: vec![
                vps(1, "nest-a", Some(1), "10.0.0.1"),
                KnownVps {
                    busy: true,
                    ..vps(2, "nest-creating", None, "10.0.0.3")
                },
            ],
            ..Facts::default()
        };
        let found = plan(&facts);
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].kind, FindingKind::OrphanServer);
        assert_eq!(found[0].subject, "server:2");
        assert_eq!(found[0].organization_id, Some(7), "read from its label");
        assert_eq!(
            found[0].detail["adoptable"], false,
            "no VPS of Nest waits for it"
        );
        assert!(FindingKind::OrphanServer.costs_money());
    }

    #[test]
    fn a_server_whose_create_failed_before_recording_it_is_an_orphan_its_organization_can_adopt() {
        let mut waiting = vps(3, "nest-lost", None, "");
        waiting.org_status = OrgStatus::Error;
        let mut labelled = server(4, "nest-lost", "cx22", "10.0.0.4", "running");
        labelled
            .labels
            .insert(ORG_LABEL.to_owned(), waiting.organization_id.to_string());
        let facts = Facts {
            servers: vec![labelled.clone()],
            vpses: vec![waiting.clone()],
            ..Facts::default()
        };
        let found = plan(&facts);
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].detail["adoptable"], true);
        // Not while its create still runs, nor under another organization's label.
        let busy = Facts {
            vpses: vec![KnownVps {
                busy: true,
                ..waiting.clone()
            }],
            ..facts.clone()
        };
        assert_eq!(plan(&busy), vec![]);
        labelled
            .labels
            .insert(ORG_LABEL.to_owned(), "999".to_owned());
        let foreign = Facts {
            servers: vec![labelled],
            ..facts
        };
        assert_eq!(plan(&foreign)[0].detail["adoptable"], false);
        assert!(
            !adoptable(&vps(3, "nest-lost", None, ""), Some(3)),
            "an active organization adopts nothing"
        );
    }

    #[test]
    fn a_running_vps_whose_server_hetzner_lost_is_missing() {
        let facts = Facts {
            vpses: vec![vps(1, "nest-a", Some(1), "10.0.0.1")],
            gone: HashSet::from([1]),
            ..Facts::default()
        };
        assert_eq!(
            kinds(&facts),
            vec![(FindingKind::MissingServer, "server:1".to_owned())]
        );
    }

    #[test]
    fn type_address_and_power_drift_are_found_but_not_while_a_job_is_in_flight() {
        let mut facts = Facts {
            servers: vec![server(1, "nest-a", "cx32", "10.0.0.9", "off")],
            vpses: vec![vps(1, "nest-a", Some(1), "10.0.0.1")],
            ..Facts::default()
        };
        assert_eq!(
            kinds(&facts),
            vec![
                (FindingKind::TypeDrift, "server:1".to_owned()),
                (FindingKind::AddressDrift, "server:1".to_owned()),
                (FindingKind::PowerDrift, "server:1".to_owned()),
            ]
        );
        facts.vpses[0].busy = true;
        assert_eq!(kinds(&facts), vec![]);
        // Off is expected of a suspended organization's server.
        facts.vpses[0].busy = false;
        facts.vpses[0].org_status = OrgStatus::Suspended;
        assert!(!kinds(&facts).contains(&(FindingKind::PowerDrift, "server:1".to_owned())));
    }

    #[test]
    fn a_live_subscription_of_a_deleted_cancelled_or_vanished_organization_is_found() {
        let facts = Facts {
            subscriptions: vec![
                sub("sub_deleted", "active", "price_growth", Some(1)),
                sub("sub_cancelled", "past_due", "price_growth", Some(2)),
                sub("sub_vanished", "active", "price_growth", Some(3)),
                SubscriptionSummary {
                    customer: "cus_elsewhere".to_owned(),
                    ..sub("sub_not_nests", "active", "price_other", None)
                },
                sub("sub_ended", "canceled", "price_growth", Some(4)),
            ],
            billed: vec![
                billed(1, OrgStatus::Deleted, "sub_deleted"),
                billed(2, OrgStatus::Cancelled, "sub_cancelled"),
                billed(4, OrgStatus::Deleted, "sub_ended"),
            ],
            customers: HashSet::from(["cus_1".to_owned()]),
            ..Facts::default()
        };
        assert_eq!(
            kinds(&facts),
            vec![
                (
                    FindingKind::LiveSubscription,
                    "subscription:sub_cancelled".to_owned()
                ),
                (
                    FindingKind::LiveSubscription,
                    "subscription:sub_deleted".to_owned()
                ),
                (
                    FindingKind::LiveSubscription,
                    "subscription:sub_vanished".to_owned()
                ),
            ]
        );
    }

    #[test]
    fn what_is_on_the_move_or_not_this_nest_s_is_left_alone() {
        let mut not_ours = sub("sub_other_deployment", "active", "price_growth", Some(5));
        not_ours.customer = "cus_staging".to_owned();
        let facts = Facts {
            // A delete job is deleting org 7's server; org 2's rejection is cancelling its
            // subscription.
            servers: vec![server(1, "nest-going", "cx22", "10.0.0.1", "running")],
            subscriptions: vec![
                sub("sub_cancelling", "active", "price_growth", Some(2)),
                not_ours,
            ],
            billed: vec![billed(2, OrgStatus::Cancelled, "sub_cancelling")],
            customers: HashSet::from(["cus_1".to_owned()]),
            busy: HashSet::from([7, 2]),
            ..Facts::default()
        };
        assert_eq!(kinds(&facts), vec![]);
    }

    #[test]
    fn an_active_organization_without_a_live_subscription_or_on_another_price_is_found() {
        let facts = Facts {
            subscriptions: vec![
                sub("sub_ended", "canceled", "price_growth", Some(1)),
                sub("sub_cheap", "active", "price_starter", Some(2)),
            ],
            billed: vec![
                billed(1, OrgStatus::Active, "sub_ended"),
                billed(2, OrgStatus::Active, "sub_cheap"),
                billed(3, OrgStatus::Active, "sub_absent"),
            ],
            ..Facts::default()
        };
        assert_eq!(
            kinds(&facts),
            vec![
                (
                    FindingKind::MissingSubscription,
                    "organization:1".to_owned()
                ),
                (
                    FindingKind::MissingSubscription,
                    "organization:3".to_owned()
                ),
                (FindingKind::PriceDrift, "subscription:sub_cheap".to_owned()),
            ]
        );
    }
}
