//! The daily invoice run (`invoice_run`, scheduled once a day across replicas; `nest billing
//! run-invoices` runs it by hand). Idempotent: a second run the same day changes nothing.
//!
//! 1. **Invoices**: one per billed organization and calendar month. Billed: the organization is
//!    `active`, `suspended` or `cancelling` when a run sees it (`app::models::BILLED_STATES`);
//!    since a run happens every day, an organization billable on any day of the month gets
//!    that month's invoice, even if it is cancelled later. No proration: the invoice is the
//!    tier's full monthly price and currency at the time (the invoice keeps its own amounts;
//!    a later price change does not touch it), `open`, due 14 days after the 1st. Organizations
//!    billed by Stripe (`stripe_subscription_id`) get the row too — Stripe's webhook then finds
//!    it by organization and month and stores Stripe's amounts, id and outcome.
//!    Organizations are taken in chunks of [`CHUNK`] by id; each chunk is one transaction that
//!    first takes the month's counter row, then reads which organizations still lack an invoice
//!    (so a concurrent run, waiting on that row, sees this one's invoices), inserts the chunk's
//!    invoices and their audit rows in batches and advances the counter.
//! 2. **Overdue**: `open` invoices past their due date become `overdue` (one conditional
//!    update, with an audit row counting them).
//! 3. **Dunning**: an `active` organization with an invoice overdue for
//!    `NEST_DUNNING_SUSPEND_DAYS` whole days is suspended ("payment overdue") through
//!    `OrganizationService::apply` (`OrgEvent::PaymentOverdue`, actor `system:invoice_run`).
//! 4. **MRR history**: this month's MRR per currency is upserted into `billing_mrr_months`
//!    (the month's last run is what the chart shows for it).

use std::collections::{BTreeMap, HashMap};

use app::models::{
    BILLED_STATES, Currency, DUNNING_REASON, InvoiceEvent, InvoiceStatus, JobPayload, OrgEvent,
    OrgStatus, billing_month, due_date_for, invoice_transition, period_end, suspends_on,
};
use chrono::{DateTime, NaiveDate, Utc};
use sea_orm::sea_query::{Expr, OnConflict, Query};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
    TransactionTrait,
};
use serde_json::json;

use super::{Ledger, advance_counter, lock_counter, number, run_actor};
use crate::entities::{audit_log, billing_mrr_months, invoices, organizations, tiers};
use crate::error::{Error, Result};
use crate::events::Change;
use crate::jobs::{Attempt, Handler, JobFailure, Outcome};
use crate::organizations::EventArgs;

/// Organizations per transaction of the invoice step.
pub const CHUNK: u64 = 1000;
/// Rows per INSERT statement.
const BATCH: usize = 500;

/// What one run did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunReport {
    /// The billing month.
    pub month: Option<NaiveDate>,
    /// Invoices created.
    pub created: u64,
    /// Invoices that became overdue.
    pub overdue: u64,
    /// Organizations dunning suspended.
    pub suspended: Vec<i64>,
}

/// A billed organization without its invoice yet.
type Candidate = (i64, i64, OrgStatus, DateTime<Utc>);

/// MRR per currency: (currency, cents, active organizations).
pub async fn mrr<C: sea_orm::ConnectionTrait>(db: &C) -> Result<Vec<(Currency, i64, i64)>> {
    let prices: HashMap<i64, (i64, Currency)> = tiers::Entity::find()
        .all(db)
        .await?
        .into_iter()
        .map(|t| (t.id, (t.monthly_price_cents, t.currency)))
        .collect();
    let by_tier: Vec<(i64, i64)> = organizations::Entity::find()
        .select_only()
        .column(organizations::Column::TierId)
        .column_as(organizations::Column::Id.count(), "count")
        .filter(organizations::Column::Status.eq(OrgStatus::Active))
        .group_by(organizations::Column::TierId)
        .into_tuple()
        .all(db)
        .await?;
    let mut sums: BTreeMap<String, (Currency, i64, i64)> = BTreeMap::new();
    for (tier, n) in by_tier {
        if let Some((price, currency)) = prices.get(&tier) {
            let e = sums
                .entry(currency.as_str().to_owned())
                .or_insert_with(|| (currency.clone(), 0, 0));
            e.1 += price * n;
            e.2 += n;
        }
    }
    Ok(sums.into_values().collect())
}

impl Ledger {
    /// One run at the clock's now.
    pub async fn run_now(&self) -> Result<RunReport> {
        self.run_at(self.clock.now()).await
    }

    /// One run as of `now`: invoices of `now`'s month, overdue detection, dunning, MRR history.
    pub async fn run_at(&self, now: DateTime<Utc>) -> Result<RunReport> {
        let today = now.date_naive();
        let month = billing_month(today);
        let mut report = RunReport {
            month: Some(month),
            ..RunReport::default()
        };
        let started = std::time::Instant::now();
        report.created = self.create_invoices(month, now).await?;
        let invoiced = started.elapsed();
        report.overdue = self.mark_overdue(today, now).await?;
        let marked = started.elapsed();
        report.suspended = self.dun(today).await?;
        let dunned = started.elapsed();
        self.record_mrr(month, now).await?;
        if report.created > 0 || report.overdue > 0 {
            self.events.publish(Change::Billing(None));
        }
        tracing::info!(
            billing.month = %month,
            billing.created = report.created,
            billing.overdue = report.overdue,
            billing.suspended = report.suspended.len(),
            elapsed.invoices_ms = invoiced.as_millis(),
            elapsed.overdue_ms = (marked - invoiced).as_millis(),
            elapsed.dunning_ms = (dunned - marked).as_millis(),
            elapsed.total_ms = started.elapsed().as_millis(),
            "invoice run finished"
        );
        Ok(report)
    }

    async fn create_invoices(&self, month: NaiveDate, now: DateTime<Utc>) -> Result<u64> {
        let tiers: HashMap<i64, tiers::Model> = tiers::Entity::find()
            .all(&self.db)
            .await?
            .into_iter()
            .map(|t| (t.id, t))
            .collect();
        let actor = run_actor();
        let mut created = 0u64;
        let mut after = 0i64;
        loop {
            let txn = self.db.begin().await?;
            let last = lock_counter(&txn, month, now).await?;
            let invoiced = Query::select()
                .column(invoices::Column::OrganizationId)
                .from(invoices::Entity)
                .and_where(invoices::Column::PeriodStart.eq(month))
                .to_owned();
            let candidates: Vec<Candidate> = organizations::Entity::find()
                .select_only()
                .column(organizations::Column::Id)
                .column(organizations::Column::TierId)
                .column(organizations::Column::Status)
                .column(organizations::Column::CreatedAt)
                .filter(organizations::Column::Status.is_in(BILLED_STATES.iter().copied()))
                .filter(organizations::Column::Id.gt(after))
                .filter(organizations::Column::Id.not_in_subquery(invoiced))
                .order_by_asc(organizations::Column::Id)
                .limit(CHUNK)
                .into_tuple()
                .all(&txn)
                .await?;
            let Some(&(last_id, ..)) = candidates.last() else {
                txn.commit().await?;
                break;
            };
            after = last_id;
            let mut rows = Vec::with_capacity(candidates.len());
            let mut audits = Vec::with_capacity(candidates.len());
            let mut sequence = last;
            let status = invoice_transition(InvoiceStatus::Draft, InvoiceEvent::Issue)
                .unwrap_or(InvoiceStatus::Open);
            for (org_id, tier_id, _, created_at) in &candidates {
                let due = due_date_for(month, created_at.date_naive());
                let tier = tiers
                    .get(tier_id)
                    .ok_or_else(|| Error::Reference(format!("tier {tier_id}")))?;
                sequence += 1;
                let number = number(month, sequence)?;
                let description = format!(
                    "{} ({}), {}",
                    tier.name,
                    tier.server_type,
                    month.format("%B %Y")
                );
                rows.push(invoices::ActiveModel {
                    organization_id: Set(*org_id),
                    number: Set(number),
                    period_start: Set(month),
                    period_end: Set(period_end(month)),
                    amount_cents: Set(tier.monthly_price_cents),
                    currency: Set(tier.currency.clone()),
                    status: Set(status),
                    due_date: Set(due),
                    paid_at: Set(None),
                    stripe_invoice_id: Set(None),
                    description: Set(Some(description)),
                    created_at: Set(now),
                    updated_at: Set(now),
                    ..Default::default()
                });
                audits.push(audit_log::ActiveModel {
                    actor_user_id: Set(None),
                    actor_email: Set(actor.email.clone()),
                    action: Set(InvoiceEvent::Issue.action().to_owned()),
                    target_type: Set("organization".to_owned()),
                    target_id: Set(Some(org_id.to_string())),
                    detail: Set(json!({
                        "number": number, "amount_cents": tier.monthly_price_cents,
                        "currency": tier.currency, "period_start": month,
                        "message": format!("{number} issued: {} due {}", app::models::Money { cents: tier.monthly_price_cents, currency: tier.currency.clone() }, due),
                    })),
                    ip: Set(None),
                    user_agent: Set(None),
                    created_at: Set(now),
                    ..Default::default()
                });
            }
            while !rows.is_empty() {
                let batch: Vec<_> = rows.drain(..rows.len().min(BATCH)).collect();
                invoices::Entity::insert_many(batch)
                    .exec_without_returning(&txn)
                    .await?;
            }
            while !audits.is_empty() {
                let batch: Vec<_> = audits.drain(..audits.len().min(BATCH)).collect();
                audit_log::Entity::insert_many(batch)
                    .exec_without_returning(&txn)
                    .await?;
            }
            advance_counter(&txn, month, sequence, now).await?;
            txn.commit().await?;
            created += candidates.len() as u64;
        }
        Ok(created)
    }

    async fn mark_overdue(&self, today: NaiveDate, now: DateTime<Utc>) -> Result<u64> {
        let Some(to) = invoice_transition(InvoiceStatus::Open, InvoiceEvent::PastDue) else {
            return Ok(0);
        };
        let txn = self.db.begin().await?;
        // Overdue from the day after the due date (`app::models::is_past_due`).
        let updated = invoices::Entity::update_many()
            .col_expr(invoices::Column::Status, Expr::value(to))
            .col_expr(invoices::Column::UpdatedAt, Expr::value(now))
            .filter(invoices::Column::Status.eq(InvoiceStatus::Open))
            .filter(invoices::Column::DueDate.lt(today))
            .exec(&txn)
            .await?
            .rows_affected;
        if updated > 0 {
            crate::audit::record(
                &txn,
                &run_actor(),
                InvoiceEvent::PastDue.action(),
                ("billing", None),
                json!({"count": updated, "today": today}),
                now,
            )
            .await?;
        }
        txn.commit().await?;
        Ok(updated)
    }

    /// Suspends the active organizations with an invoice overdue past the dunning delay.
    async fn dun(&self, today: NaiveDate) -> Result<Vec<i64>> {
        // `dunning_suspends(due, today, n)` ⇔ `due <= today - (1 + n) days`.
        let days = self.dunning_suspend_days;
        let overdue: Vec<(i64, NaiveDate)> = invoices::Entity::find()
            .select_only()
            .column(invoices::Column::OrganizationId)
            .column(invoices::Column::DueDate)
            .filter(invoices::Column::Status.eq(InvoiceStatus::Overdue))
            .filter(invoices::Column::DueDate.lt(today))
            .into_tuple()
            .all(&self.db)
            .await?;
        let mut orgs: Vec<i64> = overdue
            .into_iter()
            .filter(|(_, due)| today >= suspends_on(*due, days))
            .map(|(org, _)| org)
            .collect();
        orgs.sort_unstable();
        orgs.dedup();
        let mut suspended = Vec::new();
        for chunk in orgs.chunks(500) {
            let active: Vec<i64> = organizations::Entity::find()
                .select_only()
                .column(organizations::Column::Id)
                .filter(organizations::Column::Id.is_in(chunk.iter().copied()))
                .filter(organizations::Column::Status.eq(OrgStatus::Active))
                .into_tuple()
                .all(&self.db)
                .await?;
            for org_id in active {
                let args = EventArgs {
                    reason: Some(DUNNING_REASON.to_owned()),
                    ..EventArgs::default()
                };
                match self
                    .organizations
                    .apply(&run_actor(), org_id, OrgEvent::PaymentOverdue, args)
                    .await
                {
                    Ok(_) => suspended.push(org_id),
                    // Its state changed meanwhile (an admin acted): the next run looks again.
                    Err(Error::Conflict(message)) => {
                        tracing::info!(org.id = org_id, %message, "dunning skipped an organization");
                    }
                    Err(e) => return Err(e),
                }
            }
        }
        Ok(suspended)
    }

    async fn record_mrr(&self, month: NaiveDate, now: DateTime<Utc>) -> Result<()> {
        for (currency, cents, count) in mrr(&self.db).await? {
            billing_mrr_months::Entity::insert(billing_mrr_months::ActiveModel {
                month: Set(month),
                currency: Set(currency),
                mrr_cents: Set(cents),
                organizations: Set(count),
                updated_at: Set(now),
                ..Default::default()
            })
            .on_conflict(
                OnConflict::columns([
                    billing_mrr_months::Column::Month,
                    billing_mrr_months::Column::Currency,
                ])
                .update_columns([
                    billing_mrr_months::Column::MrrCents,
                    billing_mrr_months::Column::Organizations,
                    billing_mrr_months::Column::UpdatedAt,
                ])
                .to_owned(),
            )
            .exec_without_returning(&self.db)
            .await?;
        }
        Ok(())
    }
}

/// Runs `invoice_run` jobs.
#[async_trait::async_trait]
impl Handler for Ledger {
    async fn run(&self, attempt: &Attempt) -> std::result::Result<Outcome, JobFailure> {
        match attempt.payload() {
            JobPayload::InvoiceRun => {
                self.run_now()
                    .await
                    .map_err(|e| JobFailure::database(None, &e))?;
            }
            JobPayload::RecordInvoice { invoice } => {
                self.record_from_stripe(invoice.clone())
                    .await
                    .map_err(|e| JobFailure::database(None, &e))?;
            }
            _ => {
                return Err(JobFailure::fatal(
                    None,
                    "the ledger runs only invoice runs and records",
                ));
            }
        }
        Ok(Outcome::Done)
    }
}
