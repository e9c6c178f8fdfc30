//! The invoice ledger: numbering, invoices Stripe reports, admins settling manual invoices, and
//! dunning's way back (a paid invoice resumes the organization it suspended). The daily run that
//! creates the month's invoices is in [`run`].
//!
//! **Rules** are pure functions in `app::models::invoice` (the transition table
//! `invoice_transition`, payment terms, overdue and dunning days); this module only applies
//! them. Every change is one transaction with its audit row (target: the invoice's
//! organization, so invoice events show in the organization's timeline).
//!
//! **Numbers** (`INV-YYYYMM-XXXX`) are gap-free and unique per month: the month's row in
//! `invoice_counters` is upserted as the first write of the transaction that inserts invoices
//! (the row lock on PostgreSQL, the single writer on SQLite), so concurrent runs and webhooks
//! take numbers one after the other and a rolled-back transaction gives its numbers back.
//!
//! **Stripe** (the webhook, written elsewhere, calls this on its own transaction):
//!
//! ```ignore
//! let txn = db.begin().await?;
//! // … record the Stripe event id …
//! let recorded = ledger::record_stripe_invoice(&txn, now, facts).await?;
//! let resumed = if recorded.newly_paid {
//!     ledger.after_invoice_paid(&txn, recorded.organization_id).await?
//! } else {
//!     None
//! };
//! txn.commit().await?;
//! ledger.after_commit(recorded.organization_id, resumed.as_ref()).await;
//! ```
//!
//! `after_invoice_paid` is separate from `record_stripe_invoice` because resuming an
//! organization goes through `OrganizationService::write` (its routing change, audit row), which
//! needs the transaction itself, and its effects (Caddy, live pages) follow the commit.

pub mod run;

pub use app::models::{StripeInvoiceFacts, StripeOutcome};

use app::models::{
    DUNNING_REASON, InvoiceEvent, InvoiceNumber, InvoiceStatus, OrgEvent, OrgStatus, billing_month,
    due_date, dunning_suspends, invoice_transition, period_end,
};
use chrono::{DateTime, NaiveDate, Utc};
use sea_orm::sea_query::{Expr, OnConflict};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseConnection,
    DatabaseTransaction, EntityTrait, QueryFilter, TransactionTrait,
};
use serde_json::json;

use crate::audit::{self, Actor};
use crate::clock::Clock;
use crate::entities::{invoice_counters, invoices, organizations};
use crate::error::{Error, Result};
use crate::events::{Change, Events};
use crate::organizations::{EventArgs, OrganizationService, Written};

/// The actor of the daily run's audit rows and dunning transitions.
pub fn run_actor() -> Actor {
    crate::provisioning::provisioner::system_actor(app::models::JobKind::InvoiceRun)
}

/// The actor of changes Stripe reports.
pub fn stripe_actor() -> Actor {
    Actor::system("stripe")
}

/// The counter key of a billing month: `YYYYMM`.
pub fn month_key(month: NaiveDate) -> String {
    month.format("%Y%m").to_string()
}

/// Takes the month's counter row for the rest of `txn` and returns the last sequence given.
/// It is the transaction's first write (an upsert): PostgreSQL locks the row until the
/// commit, SQLite makes the transaction the single writer, so whoever numbers invoices of the
/// month next waits, and then reads what this transaction committed.
pub async fn lock_counter<C: ConnectionTrait>(
    txn: &C,
    month: NaiveDate,
    now: DateTime<Utc>,
) -> Result<u32> {
    let key = month_key(month);
    invoice_counters::Entity::insert(invoice_counters::ActiveModel {
        month: Set(key.clone()),
        last_sequence: Set(0),
        updated_at: Set(now),
    })
    .on_conflict(
        OnConflict::column(invoice_counters::Column::Month)
            .update_column(invoice_counters::Column::UpdatedAt)
            .to_owned(),
    )
    .exec_without_returning(txn)
    .await?;
    let row = invoice_counters::Entity::find_by_id(key)
        .one(txn)
        .await?
        .ok_or_else(|| Error::Internal("the invoice counter row vanished".to_owned()))?;
    u32::try_from(row.last_sequence)
        .map_err(|_| Error::Internal("the invoice counter is out of range".to_owned()))
}

/// Records that the month's numbers up to `last` are given (same transaction as the inserts).
pub async fn advance_counter<C: ConnectionTrait>(
    txn: &C,
    month: NaiveDate,
    last: u32,
    now: DateTime<Utc>,
) -> Result<()> {
    invoice_counters::Entity::update_many()
        .col_expr(
            invoice_counters::Column::LastSequence,
            Expr::value(i64::from(last)),
        )
        .col_expr(invoice_counters::Column::UpdatedAt, Expr::value(now))
        .filter(invoice_counters::Column::Month.eq(month_key(month)))
        .exec(txn)
        .await?;
    Ok(())
}

/// The number of the `sequence`th invoice of `month`, or a conflict past 99,999.
pub fn number(month: NaiveDate, sequence: u32) -> Result<InvoiceNumber> {
    InvoiceNumber::new(month, sequence).ok_or_else(|| {
        Error::Conflict(format!(
            "month {} has no invoice numbers left",
            month_key(month)
        ))
    })
}

/// What [`record_stripe_invoice`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedInvoice {
    /// The invoice row.
    pub invoice_id: i64,
    /// Its number.
    pub number: InvoiceNumber,
    /// Its organization.
    pub organization_id: i64,
    /// Whether the row was created by this call (no run had created the month's row yet).
    pub created: bool,
    /// Its status before (`None`: created by this call).
    pub from: Option<InvoiceStatus>,
    /// Its status now.
    pub status: InvoiceStatus,
    /// Whether this call moved it to `paid` (the caller then calls
    /// [`Ledger::after_invoice_paid`] on the same transaction).
    pub newly_paid: bool,
}

/// Records a Stripe invoice event on the caller's transaction `txn` (the webhook stores the
/// Stripe event id in the same one). Finds the organization's invoice by `stripe_invoice_id`,
/// else by organization and the month of `period_start` (the row the daily run created), else
/// creates it with the month's next number; stores Stripe's id, amount and currency; applies the
/// outcome through the transition table. A repeated or late event (a payment failure after the
/// payment, anything after `void`) changes nothing, so delivery order and retries do not matter.
///
/// A second Stripe invoice for the same organization and month (a proration) is refused with
/// `Conflict`: Nest keeps one invoice per organization and month.
///
/// Call it after the transaction's first write (the Stripe event id): on SQLite a transaction
/// that only read before its first write fails when another writer committed meanwhile.
pub async fn record_stripe_invoice<C: ConnectionTrait>(
    txn: &C,
    now: DateTime<Utc>,
    facts: StripeInvoiceFacts,
) -> Result<RecordedInvoice> {
    let stripe_id = facts.stripe_invoice_id.trim().to_owned();
    if stripe_id.is_empty() || stripe_id.len() > 255 {
        return Err(Error::invalid(
            "stripe_invoice_id",
            "must be 1–255 characters",
        ));
    }
    if facts.amount_cents < 0 {
        return Err(Error::invalid("amount_cents", "must not be negative"));
    }
    let month = billing_month(facts.period_start.date_naive());
    let by_stripe = invoices::Entity::find()
        .filter(invoices::Column::StripeInvoiceId.eq(stripe_id.as_str()))
        .one(txn)
        .await?;
    let by_month = || {
        invoices::Entity::find()
            .filter(invoices::Column::OrganizationId.eq(facts.organization_id))
            .filter(invoices::Column::PeriodStart.eq(month))
            .one(txn)
    };
    let mut existing = match by_stripe {
        Some(inv) => Some(inv),
        None => by_month().await?,
    };
    let mut last = None;
    if existing.is_none() {
        // Take the month's counter before creating the row: a run creating this month's
        // invoices holds it, so once we have it, that run's rows are visible — look again.
        last = Some(lock_counter(txn, month, now).await?);
        existing = by_month().await?;
    }
    let event = facts.outcome.event();
    let paid_at = match facts.outcome {
        StripeOutcome::Paid { at } => Some(at),
        _ => None,
    };
    let Some(invoice) = existing else {
        // No row yet: create it with the month's next number, already in the outcome's state.
        organizations::Entity::find_by_id(facts.organization_id)
            .one(txn)
            .await?
            .ok_or_else(|| Error::NotFound("organization".to_owned()))?;
        let last = match last {
            Some(last) => last,
            None => lock_counter(txn, month, now).await?,
        };
        let sequence = last + 1;
        let number = number(month, sequence)?;
        let status = invoice_transition(InvoiceStatus::Draft, event).unwrap_or(InvoiceStatus::Open);
        let row = invoices::ActiveModel {
            organization_id: Set(facts.organization_id),
            number: Set(number),
            period_start: Set(month),
            period_end: Set(period_end(month)),
            amount_cents: Set(facts.amount_cents),
            currency: Set(facts.currency.clone()),
            status: Set(status),
            due_date: Set(due_date(month)),
            paid_at: Set(paid_at.filter(|_| status == InvoiceStatus::Paid)),
            stripe_invoice_id: Set(Some(stripe_id.clone())),
            description: Set(Some("Subscription (billed by Stripe)".to_owned())),
            created_at: Set(now),
            updated_at: Set(now),
            ..Default::default()
        }
        .insert(txn)
        .await?;
        advance_counter(txn, month, sequence, now).await?;
        audit::record(
            txn,
            &stripe_actor(),
            "invoice.recorded",
            ("organization", Some(facts.organization_id.to_string())),
            json!({
                "invoice_id": row.id, "number": number, "stripe_invoice_id": stripe_id,
                "status": status, "amount_cents": facts.amount_cents, "currency": facts.currency,
                "message": format!("{number} recorded from Stripe ({status})"),
            }),
            now,
        )
        .await?;
        return Ok(RecordedInvoice {
            invoice_id: row.id,
            number,
            organization_id: facts.organization_id,
            created: true,
            from: None,
            status,
            newly_paid: status == InvoiceStatus::Paid,
        });
    };
    if invoice.organization_id != facts.organization_id {
        return Err(Error::Conflict(format!(
            "Stripe invoice {stripe_id} belongs to another organization"
        )));
    }
    if let Some(other) = invoice
        .stripe_invoice_id
        .as_deref()
        .filter(|other| *other != stripe_id)
    {
        return Err(Error::Conflict(format!(
            "{} is already Stripe invoice {other}; one invoice per organization and month",
            invoice.number
        )));
    }
    let from = invoice.status;
    let to = invoice_transition(from, event);
    let facts_changed = invoice.stripe_invoice_id.as_deref() != Some(stripe_id.as_str())
        || invoice.amount_cents != facts.amount_cents
        || invoice.currency != facts.currency;
    // A final invoice keeps its amounts; otherwise Stripe's are the truth.
    let final_state = matches!(from, InvoiceStatus::Paid | InvoiceStatus::Void);
    if to.is_none() && (!facts_changed || final_state) {
        if facts_changed && invoice.stripe_invoice_id.is_none() {
            // Link the id at least, so later events find the row directly.
            invoices::Entity::update_many()
                .col_expr(
                    invoices::Column::StripeInvoiceId,
                    Expr::value(Some(stripe_id.clone())),
                )
                .filter(invoices::Column::Id.eq(invoice.id))
                .exec(txn)
                .await?;
        }
        return Ok(RecordedInvoice {
            invoice_id: invoice.id,
            number: invoice.number,
            organization_id: invoice.organization_id,
            created: false,
            from: Some(from),
            status: from,
            newly_paid: false,
        });
    }
    let status = to.unwrap_or(from);
    let mut update = invoices::Entity::update_many()
        .col_expr(invoices::Column::Status, Expr::value(status))
        .col_expr(invoices::Column::UpdatedAt, Expr::value(now))
        .col_expr(
            invoices::Column::StripeInvoiceId,
            Expr::value(Some(stripe_id.clone())),
        )
        .col_expr(
            invoices::Column::AmountCents,
            Expr::value(facts.amount_cents),
        )
        .col_expr(
            invoices::Column::Currency,
            Expr::value(facts.currency.clone()),
        )
        .filter(invoices::Column::Id.eq(invoice.id))
        .filter(invoices::Column::Status.eq(from));
    if status == InvoiceStatus::Paid {
        update = update.col_expr(invoices::Column::PaidAt, Expr::value(paid_at.or(Some(now))));
    }
    if update.exec(txn).await?.rows_affected != 1 {
        return Err(Error::Conflict(
            "the invoice changed meanwhile: retry the event".to_owned(),
        ));
    }
    let action = if to.is_some() {
        event.action()
    } else {
        "invoice.recorded"
    };
    audit::record(
        txn,
        &stripe_actor(),
        action,
        ("organization", Some(invoice.organization_id.to_string())),
        json!({
            "invoice_id": invoice.id, "number": invoice.number, "stripe_invoice_id": stripe_id,
            "from": from, "to": status,
            "amount_cents": facts.amount_cents, "currency": facts.currency,
            "message": format!("{}: {from} → {status} (Stripe)", invoice.number),
        }),
        now,
    )
    .await?;
    Ok(RecordedInvoice {
        invoice_id: invoice.id,
        number: invoice.number,
        organization_id: invoice.organization_id,
        created: false,
        from: Some(from),
        status,
        newly_paid: status == InvoiceStatus::Paid && from != InvoiceStatus::Paid,
    })
}

/// The invoice ledger's service: the daily run, admins settling invoices, dunning.
#[derive(Clone)]
pub struct Ledger {
    /// Database pool.
    pub db: DatabaseConnection,
    /// Time source.
    pub clock: Clock,
    /// Tells open pages.
    pub events: Events,
    /// Status changes of organizations (dunning suspends and resumes through it).
    pub organizations: OrganizationService,
    /// `NEST_DUNNING_SUSPEND_DAYS`.
    pub dunning_suspend_days: u32,
}

impl Ledger {
    /// After an invoice of `org_id` was paid on `txn`: resumes the organization if the daily
    /// run's dunning suspended it ("payment overdue") and no other invoice of it is still
    /// overdue past the dunning delay. An organization an admin suspended (any other reason),
    /// or in another state, stays as it is. Returns the written transition, for
    /// [`after_commit`](Self::after_commit).
    pub async fn after_invoice_paid(
        &self,
        txn: &DatabaseTransaction,
        org_id: i64,
    ) -> Result<Option<Written>> {
        let Some(org) = organizations::Entity::find_by_id(org_id).one(txn).await? else {
            return Ok(None);
        };
        if org.status != OrgStatus::Suspended
            || org.status_reason.as_deref() != Some(DUNNING_REASON)
        {
            return Ok(None);
        }
        let today = self.clock.now().date_naive();
        let still_overdue = invoices::Entity::find()
            .filter(invoices::Column::OrganizationId.eq(org_id))
            .filter(invoices::Column::Status.eq(InvoiceStatus::Overdue))
            .all(txn)
            .await?
            .into_iter()
            .any(|i| dunning_suspends(i.due_date, today, self.dunning_suspend_days));
        if still_overdue {
            return Ok(None);
        }
        let prepared = self
            .organizations
            .prepare(org_id, OrgEvent::PaymentReceived, EventArgs::default())
            .await?;
        Ok(Some(
            self.organizations
                .write(txn, &run_actor(), prepared)
                .await?,
        ))
    }

    /// Records what Stripe reported of an invoice (the `record_invoice` job the webhook
    /// queues), in one transaction: the invoice, its audit row and, when it is newly paid, the
    /// resumption of an organization dunning suspended. A second Stripe invoice of one
    /// organization and month (a proration) is logged and left out: the ledger keeps one.
    pub async fn record_from_stripe(&self, facts: StripeInvoiceFacts) -> Result<()> {
        let org_id = facts.organization_id;
        let stripe_invoice = facts.stripe_invoice_id.clone();
        let now = self.clock.now();
        let txn = self.db.begin().await?;
        // The first write (SQLite: a transaction that read first fails if another writer
        // committed meanwhile); `record_stripe_invoice` takes the same row again if it numbers.
        lock_counter(&txn, billing_month(facts.period_start.date_naive()), now).await?;
        let recorded = match record_stripe_invoice(&txn, now, facts).await {
            Ok(recorded) => recorded,
            Err(Error::Conflict(why)) => {
                tracing::warn!(
                    org.id = org_id,
                    why,
                    "stripe invoice not recorded in the ledger"
                );
                return Ok(());
            }
            Err(e) => return Err(e),
        };
        let resumed = if recorded.newly_paid {
            self.after_invoice_paid(&txn, org_id).await?
        } else {
            None
        };
        let after_end = recorded.newly_paid
            && self
                .paid_after_end(&txn, org_id, &stripe_invoice, now)
                .await?;
        txn.commit().await?;
        if after_end {
            self.events.wake_jobs();
        }
        self.after_commit(org_id, resumed.as_ref()).await;
        Ok(())
    }

    /// A payment for an organization whose service has ended (deleted or cancelled) is a
    /// subscription that outlived it: recorded like any payment, audited, and a `reconcile`
    /// run is queued at once (in this transaction), which raises the finding and its alert.
    async fn paid_after_end(
        &self,
        txn: &DatabaseTransaction,
        org_id: i64,
        stripe_invoice: &str,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<bool> {
        let Some(org) = organizations::Entity::find_by_id(org_id).one(txn).await? else {
            return Ok(false);
        };
        if !matches!(org.status, OrgStatus::Deleted | OrgStatus::Cancelled) {
            return Ok(false);
        }
        crate::audit::record(
            txn,
            &stripe_actor(),
            "billing.paid_after_service_ended",
            ("organization", Some(org_id.to_string())),
            serde_json::json!({
                "invoice": stripe_invoice,
                "subscription": org.stripe_subscription_id,
                "status": org.status,
            }),
            now,
        )
        .await?;
        crate::jobs::enqueue(
            txn,
            crate::jobs::NewJob {
                unique_key: Some(format!("reconcile:paid-after-end:{stripe_invoice}")),
                ..crate::jobs::NewJob::now(app::models::JobPayload::Reconcile, now)
            },
            now,
        )
        .await?;
        Ok(true)
    }

    /// After the transaction committed: tells open pages, and pushes a resumed organization's
    /// route to Caddy.
    pub async fn after_commit(&self, org_id: i64, resumed: Option<&Written>) {
        if let Some(written) = resumed {
            self.organizations.after_commit(written).await;
        }
        self.events.publish(Change::Billing(Some(org_id)));
    }

    /// An admin marks invoice `id` paid or void, with a reason. `seen` is the status the admin
    /// saw: if the invoice moved on meanwhile, nothing is written (`Conflict`). The update is
    /// the first write, conditional on the status read, so concurrent admins serialize. Paying
    /// resumes an organization dunning suspended. An invoice Stripe collects (it has a Stripe
    /// id) is marked paid by Stripe only; it can still be voided.
    pub async fn settle(
        &self,
        actor: &Actor,
        id: i64,
        event: InvoiceEvent,
        seen: InvoiceStatus,
        reason: &str,
    ) -> Result<invoices::Model> {
        if !event.is_admin_action() {
            return Err(Error::Forbidden(
                "only the invoice run and Stripe do this".to_owned(),
            ));
        }
        let reason: String = reason.trim().chars().take(500).collect();
        if reason.is_empty() {
            return Err(Error::invalid("reason", "say why (kept in the audit log)"));
        }
        let invoice = invoices::Entity::find_by_id(id)
            .one(&self.db)
            .await?
            .ok_or_else(|| Error::NotFound("invoice".to_owned()))?;
        if invoice.status != seen {
            return Err(Error::Conflict(format!(
                "the invoice changed meanwhile: it is {} now; reload and try again",
                invoice.status
            )));
        }
        if event == InvoiceEvent::Pay && invoice.stripe_invoice_id.is_some() {
            return Err(Error::Conflict(
                "Stripe collects this invoice: it is marked paid when Stripe reports the payment"
                    .to_owned(),
            ));
        }
        let Some(to) = invoice_transition(seen, event) else {
            return Err(Error::Conflict(format!(
                "a {seen} invoice cannot be {}",
                if event == InvoiceEvent::Pay {
                    "marked paid"
                } else {
                    "voided"
                }
            )));
        };
        let now = self.clock.now();
        let txn = self.db.begin().await?;
        let mut update = invoices::Entity::update_many()
            .col_expr(invoices::Column::Status, Expr::value(to))
            .col_expr(invoices::Column::UpdatedAt, Expr::value(now))
            .filter(invoices::Column::Id.eq(id))
            .filter(invoices::Column::Status.eq(seen));
        if to == InvoiceStatus::Paid {
            update = update.col_expr(invoices::Column::PaidAt, Expr::value(Some(now)));
        }
        if update.exec(&txn).await?.rows_affected != 1 {
            return Err(Error::Conflict(
                "the invoice changed meanwhile: reload and try again".to_owned(),
            ));
        }
        audit::record(
            &txn,
            actor,
            event.action(),
            ("organization", Some(invoice.organization_id.to_string())),
            json!({
                "invoice_id": id, "number": invoice.number, "from": seen, "to": to,
                "reason": reason, "amount_cents": invoice.amount_cents, "currency": invoice.currency,
                "message": format!("{} {}: {reason}", invoice.number, if to == InvoiceStatus::Paid { "marked paid" } else { "voided" }),
            }),
            now,
        )
        .await?;
        let resumed = if to == InvoiceStatus::Paid {
            self.after_invoice_paid(&txn, invoice.organization_id)
                .await?
        } else {
            None
        };
        txn.commit().await?;
        self.after_commit(invoice.organization_id, resumed.as_ref())
            .await;
        invoices::Entity::find_by_id(id)
            .one(&self.db)
            .await?
            .ok_or_else(|| Error::NotFound("invoice".to_owned()))
    }
}
