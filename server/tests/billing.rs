//! The invoice ledger on SQLite and PostgreSQL: the daily run (one invoice per billed
//! organization and month, gap-free numbers, idempotent, two concurrent runs), overdue
//! detection and dunning as the clock moves, admins settling manual invoices (audited, conflicts
//! on a stale state), Stripe's invoices recorded idempotently in any order, and `/billing`'s
//! figures and filters.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[macro_use]
mod support;

use app::models::{
    Currency, InvoiceEvent, InvoiceQuery, InvoiceStatus, JobPayload, OrgEvent, OrgStatus, Region,
};
use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, DatabaseConnection, EntityTrait,
    PaginatorTrait, QueryFilter, QueryOrder, TransactionTrait,
};
use server::billing::ledger::{Ledger, StripeInvoiceFacts, StripeOutcome, record_stripe_invoice};
use server::billing::queries::BillingService;
use server::clock::Clock;
use server::entities::{audit_log, invoice_totals, invoices, organizations, tiers};
use server::error::Error;
use server::organizations::EventArgs;
use server::state::App;

struct Rig {
    app: App,
    clock: Clock,
    ledger: Ledger,
}

async fn rig(db: &DatabaseConnection) -> Rig {
    server::install_tls_provider();
    let clock = Clock::system();
    let app = App::start_with_clock(support::test_config(&[]), db.clone(), clock.clone())
        .await
        .unwrap();
    let ledger = app.ledger();
    Rig { app, clock, ledger }
}

fn at(y: i32, m: u32, d: u32, h: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, m, d, h, 0, 0).unwrap()
}

fn day(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).unwrap()
}

impl Rig {
    /// Sets the clock to `to` or up to a second after (the clock moves in whole seconds).
    fn set(&self, to: DateTime<Utc>) {
        let by = to - self.clock.now();
        self.clock
            .advance(chrono::Duration::seconds(by.num_seconds() + 1));
    }

    fn billing(&self) -> BillingService {
        BillingService {
            db: self.app.db.clone(),
            clock: self.clock.clone(),
            ledger: self.ledger.clone(),
        }
    }

    async fn tier(&self, code: &str) -> tiers::Model {
        tiers::Entity::find()
            .filter(tiers::Column::Code.eq(code))
            .one(&self.app.db)
            .await
            .unwrap()
            .unwrap()
    }

    /// An organization in `status` on the tier `tier` (written directly: billing only reads it).
    async fn org(&self, slug: &str, status: OrgStatus, tier: &str) -> organizations::Model {
        let tier = self.tier(tier).await;
        let now = self.clock.now();
        organizations::ActiveModel {
            name: Set(format!("Org {slug}")),
            slug: Set(slug.parse().unwrap()),
            owner_email: Set(format!("owner@{slug}.test").parse().unwrap()),
            tier_id: Set(tier.id),
            region: Set(Region::Nbg1),
            status: Set(status),
            status_reason: Set(None),
            status_changed_at: Set(now),
            stripe_customer_id: Set(None),
            stripe_subscription_id: Set(None),
            created_at: Set(now),
            updated_at: Set(now),
            ..Default::default()
        }
        .insert(&self.app.db)
        .await
        .unwrap()
    }

    async fn reload(&self, org: &organizations::Model) -> organizations::Model {
        organizations::Entity::find_by_id(org.id)
            .one(&self.app.db)
            .await
            .unwrap()
            .unwrap()
    }

    /// The totals the database's triggers keep (`invoice_totals`, what `/billing` reads) equal
    /// a count of the invoices themselves.
    async fn totals_match(&self) {
        use std::collections::BTreeMap;
        let mut counted: BTreeMap<(String, String), (i64, i64)> = BTreeMap::new();
        for i in self.invoices().await {
            let e = counted
                .entry((i.status.to_string(), i.currency.as_str().to_owned()))
                .or_default();
            e.0 += 1;
            e.1 += i.amount_cents;
        }
        let kept: BTreeMap<(String, String), (i64, i64)> = invoice_totals::Entity::find()
            .all(&self.app.db)
            .await
            .unwrap()
            .into_iter()
            .filter(|t| t.invoices != 0 || t.amount_cents != 0)
            .map(|t| ((t.status, t.currency), (t.invoices, t.amount_cents)))
            .collect();
        assert_eq!(kept, counted, "invoice_totals drifted from the invoices");
    }

    async fn invoices(&self) -> Vec<invoices::Model> {
        invoices::Entity::find()
            .order_by_asc(invoices::Column::Id)
            .all(&self.app.db)
            .await
            .unwrap()
    }

    async fn invoice_of(&self, org: &organizations::Model) -> invoices::Model {
        invoices::Entity::find()
            .filter(invoices::Column::OrganizationId.eq(org.id))
            .order_by_desc(invoices::Column::Id)
            .one(&self.app.db)
            .await
            .unwrap()
            .unwrap()
    }

    async fn audit(&self, action: &str) -> Vec<audit_log::Model> {
        audit_log::Entity::find()
            .filter(audit_log::Column::Action.eq(action))
            .order_by_asc(audit_log::Column::Id)
            .all(&self.app.db)
            .await
            .unwrap()
    }
}

async fn the_run_makes_one_invoice_per_billed_organization_and_twice_changes_nothing(
    db: &DatabaseConnection,
) {
    let r = rig(db).await;
    r.set(at(2027, 3, 1, 10));
    let billed = vec![
        r.org("acme", OrgStatus::Active, "starter").await,
        r.org("globex", OrgStatus::Active, "growth").await,
        r.org("initech", OrgStatus::Suspended, "enterprise").await,
        r.org("umbrella", OrgStatus::Cancelling, "starter").await,
    ];
    for (slug, status) in [
        ("pending-co", OrgStatus::Pending),
        ("broken-co", OrgStatus::Error),
        ("gone-co", OrgStatus::Cancelled),
        ("deleted-co", OrgStatus::Deleted),
    ] {
        r.org(slug, status, "starter").await;
    }

    let report = r.ledger.run_now().await.unwrap();
    assert_eq!(report.created, 4);
    let rows = r.invoices().await;
    assert_eq!(rows.len(), 4);
    for (n, (inv, org)) in rows.iter().zip(&billed).enumerate() {
        let tier = tiers::Entity::find_by_id(org.tier_id)
            .one(db)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(inv.organization_id, org.id);
        assert_eq!(inv.number.to_string(), format!("INV-202703-{:04}", n + 1));
        assert_eq!(inv.period_start, day(2027, 3, 1));
        assert_eq!(inv.period_end, day(2027, 3, 31));
        assert_eq!(inv.due_date, day(2027, 3, 15));
        assert_eq!(inv.status, InvoiceStatus::Open);
        assert_eq!(inv.amount_cents, tier.monthly_price_cents);
        assert_eq!(inv.currency, tier.currency);
        assert!(inv.description.as_deref().unwrap().contains(&tier.name));
    }
    assert_eq!(r.audit("invoice.issued").await.len(), 4);

    // Twice (and after a price change): nothing changes; the invoices keep their amounts.
    let starter = r.tier("starter").await;
    let mut edit: tiers::ActiveModel = starter.clone().into();
    edit.monthly_price_cents = Set(9_999);
    edit.update(db).await.unwrap();
    r.set(at(2027, 3, 3, 10));
    let again = r.ledger.run_now().await.unwrap();
    assert_eq!(again.created, 0);
    assert_eq!(r.invoices().await, rows);
    assert_eq!(r.audit("invoice.issued").await.len(), 4);

    // A new month: its own numbering from 0001, the new price.
    r.set(at(2027, 4, 1, 0));
    let april = r.ledger.run_now().await.unwrap();
    assert_eq!(april.created, 4);
    assert_eq!(april.overdue, 4, "March's invoices are past due");
    let acme_april = r.invoice_of(&billed[0]).await;
    assert_eq!(acme_april.number.to_string(), "INV-202704-0001");
    assert_eq!(acme_april.amount_cents, 9_999);
    assert_eq!(acme_april.due_date, day(2027, 4, 15));
    // An organization activated later in the month gets its invoice with the next number.
    let late = r.org("late-co", OrgStatus::Active, "growth").await;
    r.set(at(2027, 4, 20, 6));
    assert_eq!(r.ledger.run_now().await.unwrap().created, 1);
    assert_eq!(
        r.invoice_of(&late).await.number.to_string(),
        "INV-202704-0005"
    );
    r.totals_match().await;
}

async fn two_concurrent_runs_leave_no_duplicate_and_no_gap(db: &DatabaseConnection) {
    let r = rig(db).await;
    r.set(at(2027, 5, 3, 1));
    let tier = r.tier("starter").await;
    let now = r.clock.now();
    let n = 2_500usize;
    let rows: Vec<organizations::ActiveModel> = (0..n)
        .map(|i| organizations::ActiveModel {
            name: Set(format!("Bulk {i}")),
            slug: Set(format!("bulk-{i}").parse().unwrap()),
            owner_email: Set(format!("o{i}@bulk.test").parse().unwrap()),
            tier_id: Set(tier.id),
            region: Set(Region::Fsn1),
            status: Set(OrgStatus::Active),
            status_reason: Set(None),
            status_changed_at: Set(now),
            stripe_customer_id: Set(None),
            stripe_subscription_id: Set(None),
            created_at: Set(now),
            updated_at: Set(now),
            ..Default::default()
        })
        .collect();
    for chunk in rows.chunks(500) {
        organizations::Entity::insert_many(chunk.to_vec())
            .exec_without_returning(db)
            .await
            .unwrap();
    }
    // Two runs at once, each on its own connections (a second pool, like a second replica).
    let other = r.app.clone();
    let second = Ledger {
        db: other.db.clone(),
        ..r.ledger.clone()
    };
    let (a, b) = tokio::join!(
        tokio::spawn({
            let l = r.ledger.clone();
            async move { l.run_now().await }
        }),
        tokio::spawn(async move { second.run_now().await }),
    );
    let (a, b) = (a.unwrap().unwrap(), b.unwrap().unwrap());
    assert_eq!(a.created + b.created, n as u64);
    let mut sequences: Vec<u32> = r
        .invoices()
        .await
        .into_iter()
        .map(|i| i.number.sequence())
        .collect();
    assert_eq!(sequences.len(), n);
    sequences.sort_unstable();
    assert_eq!(sequences, (1..=n as u32).collect::<Vec<_>>());
    r.totals_match().await;
}

/// The same race with a second pool of connections on PostgreSQL (two replicas).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_concurrent_runs_on_two_postgres_pools_leave_no_duplicate_and_no_gap() {
    let Some(t) = support::TestDb::migrated(support::Engine::Postgres).await else {
        return;
    };
    let r = rig(&t.db).await;
    r.set(at(2027, 6, 2, 1));
    for i in 0..300 {
        r.org(&format!("race-{i}"), OrgStatus::Active, "growth")
            .await;
    }
    let second_pool = server::db::connect(&t.url).await.unwrap();
    let second = Ledger {
        db: second_pool.clone(),
        ..r.ledger.clone()
    };
    let first = r.ledger.clone();
    let (a, b) = tokio::join!(
        tokio::spawn(async move { first.run_now().await }),
        tokio::spawn(async move { second.run_now().await }),
    );
    let (a, b) = (a.unwrap().unwrap(), b.unwrap().unwrap());
    assert_eq!(a.created + b.created, 300);
    let mut numbers: Vec<String> = r
        .invoices()
        .await
        .iter()
        .map(|i| i.number.to_string())
        .collect();
    numbers.sort();
    let expected: Vec<String> = (1..=300).map(|n| format!("INV-202706-{n:04}")).collect();
    assert_eq!(numbers, expected);
    r.totals_match().await;
    second_pool.close().await.unwrap();
    t.cleanup().await;
}

async fn an_open_invoice_is_overdue_from_the_day_after_its_due_date(db: &DatabaseConnection) {
    let r = rig(db).await;
    r.set(at(2027, 3, 1, 0));
    let org = r.org("acme", OrgStatus::Active, "starter").await;
    r.ledger.run_now().await.unwrap();
    r.set(at(2027, 3, 15, 23));
    assert_eq!(r.ledger.run_now().await.unwrap().overdue, 0);
    assert_eq!(r.invoice_of(&org).await.status, InvoiceStatus::Open);
    // The 15th day after the period start.
    r.set(at(2027, 3, 16, 0));
    assert_eq!(r.ledger.run_now().await.unwrap().overdue, 1);
    assert_eq!(r.invoice_of(&org).await.status, InvoiceStatus::Overdue);
    assert_eq!(r.ledger.run_now().await.unwrap().overdue, 0, "idempotent");
    let overview = r.billing().overview().await.unwrap();
    assert_eq!(overview.overdue.count, 1);
    assert_eq!(overview.open.count, 0);
    r.totals_match().await;
}

async fn dunning_suspends_after_seven_overdue_days_and_paying_resumes(db: &DatabaseConnection) {
    let r = rig(db).await;
    r.set(at(2027, 3, 1, 0));
    let org = r.org("acme", OrgStatus::Active, "starter").await;
    let other = r.org("globex", OrgStatus::Active, "starter").await;
    r.ledger.run_now().await.unwrap();
    // Globex pays on time.
    let paid = r.invoice_of(&other).await;
    r.ledger
        .settle(
            &support::test_actor(),
            paid.id,
            InvoiceEvent::Pay,
            InvoiceStatus::Open,
            "bank transfer",
        )
        .await
        .unwrap();

    r.set(at(2027, 3, 22, 12));
    assert!(r.ledger.run_now().await.unwrap().suspended.is_empty());
    assert_eq!(r.reload(&org).await.status, OrgStatus::Active);

    r.set(at(2027, 3, 23, 0));
    let report = r.ledger.run_now().await.unwrap();
    assert_eq!(report.suspended, vec![org.id]);
    let suspended = r.reload(&org).await;
    assert_eq!(suspended.status, OrgStatus::Suspended);
    assert_eq!(suspended.status_reason.as_deref(), Some("payment overdue"));
    assert_eq!(r.reload(&other).await.status, OrgStatus::Active);
    let overdue_rows = r.audit("organization.payment_overdue").await;
    assert_eq!(overdue_rows.len(), 1);
    assert_eq!(overdue_rows[0].actor_email, "system:invoice_run");
    assert!(
        r.ledger.run_now().await.unwrap().suspended.is_empty(),
        "once"
    );

    let invoice = r.invoice_of(&org).await;
    r.ledger
        .settle(
            &support::test_actor(),
            invoice.id,
            InvoiceEvent::Pay,
            InvoiceStatus::Overdue,
            "paid by wire",
        )
        .await
        .unwrap();
    let resumed = r.reload(&org).await;
    assert_eq!(resumed.status, OrgStatus::Active);
    assert_eq!(resumed.status_reason, None);
    assert_eq!(r.audit("organization.payment_received").await.len(), 1);
    let paid = r.invoice_of(&org).await;
    assert_eq!(paid.status, InvoiceStatus::Paid);
    assert!(paid.paid_at.is_some());
    r.totals_match().await;
}

async fn an_organization_an_admin_suspended_stays_suspended_after_paying(db: &DatabaseConnection) {
    let r = rig(db).await;
    r.set(at(2027, 3, 2, 0));
    let org = r.org("acme", OrgStatus::Active, "starter").await;
    r.ledger.run_now().await.unwrap();
    r.app
        .organizations()
        .apply(
            &support::test_actor(),
            org.id,
            OrgEvent::Suspend,
            EventArgs {
                reason: Some("abuse report".into()),
                ..EventArgs::default()
            },
        )
        .await
        .unwrap();
    r.set(at(2027, 3, 25, 0));
    assert!(r.ledger.run_now().await.unwrap().suspended.is_empty());
    let invoice = r.invoice_of(&org).await;
    assert_eq!(invoice.status, InvoiceStatus::Overdue);
    r.ledger
        .settle(
            &support::test_actor(),
            invoice.id,
            InvoiceEvent::Pay,
            InvoiceStatus::Overdue,
            "paid",
        )
        .await
        .unwrap();
    let still = r.reload(&org).await;
    assert_eq!(still.status, OrgStatus::Suspended);
    assert_eq!(still.status_reason.as_deref(), Some("abuse report"));
    r.totals_match().await;
}

async fn settling_is_audited_and_refused_on_a_stale_state(db: &DatabaseConnection) {
    let r = rig(db).await;
    r.set(at(2027, 3, 2, 0));
    let org = r.org("acme", OrgStatus::Active, "starter").await;
    r.ledger.run_now().await.unwrap();
    let invoice = r.invoice_of(&org).await;
    let actor = support::test_actor();
    let audits = audit_log::Entity::find().count(db).await.unwrap();

    // The admin saw it overdue; it is open: nothing is written.
    let stale = r
        .ledger
        .settle(
            &actor,
            invoice.id,
            InvoiceEvent::Pay,
            InvoiceStatus::Overdue,
            "paid",
        )
        .await;
    assert!(matches!(stale, Err(Error::Conflict(_))), "{stale:?}");
    let no_reason = r
        .ledger
        .settle(
            &actor,
            invoice.id,
            InvoiceEvent::Void,
            InvoiceStatus::Open,
            "  ",
        )
        .await;
    assert!(matches!(
        no_reason,
        Err(Error::Validation {
            field: "reason",
            ..
        })
    ));
    let system_only = r
        .ledger
        .settle(
            &actor,
            invoice.id,
            InvoiceEvent::PastDue,
            InvoiceStatus::Open,
            "x",
        )
        .await;
    assert!(matches!(system_only, Err(Error::Forbidden(_))));
    assert_eq!(audit_log::Entity::find().count(db).await.unwrap(), audits);
    assert_eq!(r.invoice_of(&org).await, invoice);

    r.ledger
        .settle(
            &actor,
            invoice.id,
            InvoiceEvent::Void,
            InvoiceStatus::Open,
            "duplicate customer",
        )
        .await
        .unwrap();
    let voided = r.audit("invoice.voided").await;
    assert_eq!(voided.len(), 1);
    assert_eq!(voided[0].actor_email, actor.email);
    assert_eq!(voided[0].target_type, "organization");
    assert_eq!(voided[0].detail["reason"], "duplicate customer");
    assert_eq!(voided[0].detail["number"], invoice.number.to_string());
    // Void is final.
    let again = r
        .ledger
        .settle(
            &actor,
            invoice.id,
            InvoiceEvent::Pay,
            InvoiceStatus::Void,
            "late payment",
        )
        .await;
    assert!(matches!(again, Err(Error::Conflict(_))));
    // The invoice page shows its own history.
    let detail = r.billing().detail(invoice.id).await.unwrap();
    assert_eq!(detail.invoice.status, InvoiceStatus::Void);
    assert!(detail.actions.is_empty());
    let actions: Vec<&str> = detail.history.iter().map(|e| e.action.as_str()).collect();
    assert_eq!(actions, vec!["invoice.voided", "invoice.issued"]);
    r.totals_match().await;
}

fn facts(org: i64, id: &str, cents: i64, outcome: StripeOutcome) -> StripeInvoiceFacts {
    StripeInvoiceFacts {
        organization_id: org,
        stripe_invoice_id: id.to_owned(),
        period_start: at(2027, 3, 1, 0),
        period_end: at(2027, 4, 1, 0),
        amount_cents: cents,
        currency: Currency::eur(),
        outcome,
    }
}

async fn record(
    db: &DatabaseConnection,
    f: StripeInvoiceFacts,
) -> server::error::Result<server::billing::ledger::RecordedInvoice> {
    let txn = db.begin().await.unwrap();
    let recorded = record_stripe_invoice(&txn, at(2027, 3, 3, 0), f).await;
    if recorded.is_ok() {
        txn.commit().await.unwrap();
    }
    recorded
}

async fn stripe_invoices_are_recorded_idempotently_and_in_any_order(db: &DatabaseConnection) {
    let r = rig(db).await;
    r.set(at(2027, 3, 2, 0));
    let billed = r.org("stripe-co", OrgStatus::Active, "starter").await;
    let mut with_sub: organizations::ActiveModel = billed.clone().into();
    with_sub.stripe_subscription_id = Set(Some("sub_1".into()));
    with_sub.update(db).await.unwrap();
    r.ledger.run_now().await.unwrap();
    let row = r.invoice_of(&billed).await;
    assert_eq!(row.status, InvoiceStatus::Open);

    // Matched by organization and month; Stripe's amount and id are stored.
    let paid_at = at(2027, 3, 2, 9);
    let opened = record(db, facts(billed.id, "in_1", 2_950, StripeOutcome::Open))
        .await
        .unwrap();
    assert_eq!(
        (opened.invoice_id, opened.created, opened.newly_paid),
        (row.id, false, false)
    );
    let stored = r.invoice_of(&billed).await;
    assert_eq!(stored.amount_cents, 2_950);
    assert_eq!(stored.stripe_invoice_id.as_deref(), Some("in_1"));
    let paid = record(
        db,
        facts(
            billed.id,
            "in_1",
            2_950,
            StripeOutcome::Paid { at: paid_at },
        ),
    )
    .await
    .unwrap();
    assert!(paid.newly_paid);
    assert_eq!(paid.status, InvoiceStatus::Paid);
    let after_paid = r.invoice_of(&billed).await;
    assert_eq!(after_paid.paid_at, Some(paid_at));
    // Repeated, and a failure after the payment: nothing changes.
    let audits = audit_log::Entity::find().count(db).await.unwrap();
    for outcome in [
        StripeOutcome::Paid { at: paid_at },
        StripeOutcome::PaymentFailed,
        StripeOutcome::Open,
    ] {
        let again = record(db, facts(billed.id, "in_1", 2_950, outcome))
            .await
            .unwrap();
        assert!(!again.newly_paid);
        assert_eq!(again.status, InvoiceStatus::Paid);
    }
    assert_eq!(r.invoice_of(&billed).await, after_paid);
    assert_eq!(audit_log::Entity::find().count(db).await.unwrap(), audits);
    // An admin cannot mark a Stripe invoice paid.

    // No row yet, events out of order: created with the month's next number.
    let late = r.org("late-co", OrgStatus::Active, "growth").await;
    let failed = record(
        db,
        facts(late.id, "in_2", 6_000, StripeOutcome::PaymentFailed),
    )
    .await
    .unwrap();
    assert!(failed.created);
    assert_eq!(failed.status, InvoiceStatus::Open);
    assert_eq!(failed.number.to_string(), "INV-202703-0002");
    let paid_late = record(
        db,
        facts(late.id, "in_2", 6_000, StripeOutcome::Paid { at: paid_at }),
    )
    .await
    .unwrap();
    assert!(paid_late.newly_paid);
    let failed_again = record(
        db,
        facts(late.id, "in_2", 6_000, StripeOutcome::PaymentFailed),
    )
    .await
    .unwrap();
    assert_eq!(failed_again.status, InvoiceStatus::Paid);
    // Paid first, straight away.
    let third = r.org("third-co", OrgStatus::Active, "growth").await;
    let direct = record(
        db,
        facts(third.id, "in_3", 6_000, StripeOutcome::Paid { at: paid_at }),
    )
    .await
    .unwrap();
    assert!(direct.created && direct.newly_paid);
    assert_eq!(direct.number.to_string(), "INV-202703-0003");
    // The daily run then finds every org of the month invoiced.
    assert_eq!(r.ledger.run_now().await.unwrap().created, 0);
    // A second Stripe invoice for the same organization and month is refused.
    let second = record(db, facts(billed.id, "in_9", 100, StripeOutcome::Open)).await;
    assert!(matches!(second, Err(Error::Conflict(_))), "{second:?}");
    let admin = r
        .ledger
        .settle(
            &support::test_actor(),
            failed.invoice_id,
            InvoiceEvent::Pay,
            InvoiceStatus::Paid,
            "x",
        )
        .await;
    assert!(matches!(admin, Err(Error::Conflict(_))));
    let overview = r.billing().overview().await.unwrap();
    assert_eq!(overview.revenue.len(), 1);
    assert_eq!(overview.revenue[0].cents, 2_950 + 6_000 + 6_000);
    r.totals_match().await;
}

async fn a_stripe_payment_resumes_an_organization_dunning_suspended(db: &DatabaseConnection) {
    let r = rig(db).await;
    r.set(at(2027, 3, 2, 0));
    let org = r.org("acme", OrgStatus::Active, "starter").await;
    r.ledger.run_now().await.unwrap();
    r.set(at(2027, 3, 24, 0));
    r.ledger.run_now().await.unwrap();
    assert_eq!(r.reload(&org).await.status, OrgStatus::Suspended);
    let txn = db.begin().await.unwrap();
    let recorded = record_stripe_invoice(
        &txn,
        r.clock.now(),
        facts(
            org.id,
            "in_7",
            2_800,
            StripeOutcome::Paid { at: r.clock.now() },
        ),
    )
    .await
    .unwrap();
    assert!(recorded.newly_paid);
    let resumed = r
        .ledger
        .after_invoice_paid(&txn, recorded.organization_id)
        .await
        .unwrap();
    txn.commit().await.unwrap();
    r.ledger
        .after_commit(recorded.organization_id, resumed.as_ref())
        .await;
    assert!(resumed.is_some());
    assert_eq!(r.reload(&org).await.status, OrgStatus::Active);
    r.totals_match().await;
}

async fn the_billing_page_sums_and_filters(db: &DatabaseConnection) {
    let r = rig(db).await;
    r.set(at(2027, 2, 3, 0));
    let a = r.org("acme", OrgStatus::Active, "starter").await;
    r.org("globex", OrgStatus::Active, "growth").await;
    r.org("initech", OrgStatus::Suspended, "growth").await;
    r.ledger.run_now().await.unwrap();
    r.set(at(2027, 3, 3, 0));
    r.ledger.run_now().await.unwrap();
    let feb = r.invoices().await[0].clone();
    assert_eq!(feb.organization_id, a.id);
    r.ledger
        .settle(
            &support::test_actor(),
            feb.id,
            InvoiceEvent::Pay,
            InvoiceStatus::Overdue,
            "cash",
        )
        .await
        .unwrap();

    // March's run suspended both active organizations (February unpaid for more than 7
    // days); paying acme's resumed it.
    assert_eq!(r.audit("organization.payment_overdue").await.len(), 2);
    assert_eq!(r.audit("organization.payment_received").await.len(), 1);
    let billing = r.billing();
    let o = billing.overview().await.unwrap();
    let (starter, growth) = (r.tier("starter").await, r.tier("growth").await);
    assert_eq!(o.mrr.len(), 1);
    assert_eq!(o.mrr[0].cents, starter.monthly_price_cents);
    assert_eq!(o.active_organizations, 1);
    assert_eq!(o.revenue[0].cents, starter.monthly_price_cents);
    assert_eq!(o.open.count, 3);
    assert_eq!(o.overdue.count, 2);
    let (_, points, svg) = &o.charts[0];
    assert_eq!(points.len(), 12);
    assert_eq!(
        points.iter().filter(|p| p.cents.is_some()).count(),
        2,
        "February and March"
    );
    assert_eq!(
        points[10].cents,
        Some(starter.monthly_price_cents + growth.monthly_price_cents),
        "February as its run saw it"
    );
    assert!(svg.starts_with("<svg"));

    let all = billing.page(InvoiceQuery::default(), 50).await.unwrap();
    assert_eq!(all.rows.len(), 6);
    assert!(
        all.rows.windows(2).all(|w| w[0].id > w[1].id),
        "newest first"
    );
    let overdue = billing
        .page(
            InvoiceQuery {
                status: Some(InvoiceStatus::Overdue),
                ..Default::default()
            },
            50,
        )
        .await
        .unwrap();
    assert_eq!(overdue.rows.len(), 2);
    let march = billing
        .page(
            InvoiceQuery {
                month: Some("2027-03".into()),
                ..Default::default()
            },
            50,
        )
        .await
        .unwrap();
    assert_eq!(march.rows.len(), 3);
    let search = billing
        .page(
            InvoiceQuery {
                search: Some("GLOB".into()),
                ..Default::default()
            },
            50,
        )
        .await
        .unwrap();
    assert_eq!(search.rows.len(), 2);
    assert!(search.rows.iter().all(|i| i.slug == "globex"));
    let by_number = billing
        .page(
            InvoiceQuery {
                search: Some("202702-0001".into()),
                ..Default::default()
            },
            50,
        )
        .await
        .unwrap();
    assert_eq!(by_number.rows.len(), 1);
    let first = billing.page(InvoiceQuery::default(), 4).await.unwrap();
    assert_eq!(first.rows.len(), 4);
    let rest = billing
        .page(
            InvoiceQuery {
                after: first.next,
                ..Default::default()
            },
            4,
        )
        .await
        .unwrap();
    assert_eq!(rest.rows.len(), 2);
    assert_eq!(rest.next, None);
    let bad = billing
        .page(
            InvoiceQuery {
                month: Some("March".into()),
                ..Default::default()
            },
            4,
        )
        .await;
    assert!(matches!(bad, Err(Error::Validation { field: "month", .. })));
    r.totals_match().await;
}

async fn the_scheduled_invoice_run_is_a_job_of_the_queue(db: &DatabaseConnection) {
    let r = rig(db).await;
    r.set(at(2027, 3, 2, 0));
    r.org("acme", OrgStatus::Active, "starter").await;
    server::jobs::enqueue(
        db,
        server::jobs::NewJob::now(JobPayload::InvoiceRun, r.clock.now()),
        r.clock.now(),
    )
    .await
    .unwrap();
    r.app.worker().run_until_idle().await.unwrap();
    assert_eq!(r.invoices().await.len(), 1);
    let periodic = server::jobs::scheduler::schedule(&server::jobs::scheduler::SchedulePeriods {
        caddy_reconcile: std::time::Duration::from_secs(60),
        health_sweep: std::time::Duration::from_secs(300),
        reconcile: std::time::Duration::from_secs(3600),
    });
    let run = periodic.iter().find(|p| p.name == "invoice_run").unwrap();
    assert_eq!(run.period, std::time::Duration::from_secs(86_400));
    assert_eq!(run.payload, JobPayload::InvoiceRun);
}

on_both_databases!(
    the_run_makes_one_invoice_per_billed_organization_and_twice_changes_nothing,
    two_concurrent_runs_leave_no_duplicate_and_no_gap,
    an_open_invoice_is_overdue_from_the_day_after_its_due_date,
    dunning_suspends_after_seven_overdue_days_and_paying_resumes,
    an_organization_an_admin_suspended_stays_suspended_after_paying,
    settling_is_audited_and_refused_on_a_stale_state,
    stripe_invoices_are_recorded_idempotently_and_in_any_order,
    a_stripe_payment_resumes_an_organization_dunning_suspended,
    the_billing_page_sums_and_filters,
    the_scheduled_invoice_run_is_a_job_of_the_queue,
);

/// The margins at scale: 100,000 `active` organizations with a server each, written straight
/// into the database, then `/billing`'s report and one organization's month read 20 times each.
/// Prints the figures; asserts only what it read. Run by hand:
/// `cargo test -p server --test billing -- --ignored margins_at_scale --nocapture`.
async fn margins_at_scale(db: &DatabaseConnection) {
    use sea_orm::ConnectionTrait;
    let r = rig(db).await;
    let starter = r.tier("starter").await.id;
    let started = std::time::Instant::now();
    db.execute_unprepared(&format!(
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 100000)
         INSERT INTO organizations (name, slug, owner_email, tier_id, region, status,
             status_changed_at, created_at, updated_at)
         SELECT 'Bench ' || i, 'bench-' || i, 'owner@bench-' || i || '.test', {starter},
             CASE i % 6 WHEN 0 THEN 'fsn1' WHEN 1 THEN 'nbg1' WHEN 2 THEN 'hel1'
                 WHEN 3 THEN 'ash' WHEN 4 THEN 'hil' ELSE 'sin' END,
             'active', '2026-12-01 00:00:00+00:00', '2026-12-01 00:00:00+00:00',
             '2026-12-01 00:00:00+00:00'
         FROM n"
    ))
    .await
    .unwrap();
    db.execute_unprepared(
        "INSERT INTO vpses (organization_id, name, server_type, region, status, created_at,
             updated_at)
         SELECT id, 'nest-' || slug, CASE WHEN id % 50 = 0 THEN 'cx32' ELSE 'cx22' END, region,
             'running', created_at, updated_at
         FROM organizations WHERE slug LIKE 'bench-%'",
    )
    .await
    .unwrap();
    // Statistics, as a database that grew to this size has them.
    db.execute_unprepared("ANALYZE").await.unwrap();
    println!(
        "seeded 100,000 organizations and servers in {:?}",
        started.elapsed()
    );
    r.app.price_refresh().run_once().await.unwrap();
    let costs = r.app.costs();
    let time = |mut samples: Vec<std::time::Duration>| {
        samples.sort();
        (
            samples[samples.len() / 2],
            samples[samples.len() * 95 / 100],
        )
    };
    let mut report_times = Vec::new();
    let mut report = None;
    for _ in 0..20 {
        let t = std::time::Instant::now();
        report = Some(costs.report().await.unwrap());
        report_times.push(t.elapsed());
    }
    let report = report.unwrap();
    assert_eq!(
        report.by_tier.iter().map(|r| r.organizations).sum::<u64>(),
        100_000
    );
    assert_eq!(report.least_profitable.len(), 10);
    let mut org_times = Vec::new();
    for i in 0..20_i64 {
        let t = std::time::Instant::now();
        costs.organization(1 + i * 4999).await.unwrap();
        org_times.push(t.elapsed());
    }
    let backend = db.get_database_backend();
    let (p50, p95) = time(report_times);
    println!("{backend:?}: margin report at 100k organizations: p50 {p50:?}, p95 {p95:?}");
    let (p50, p95) = time(org_times);
    println!("{backend:?}: one organization's month: p50 {p50:?}, p95 {p95:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement, run by hand"]
async fn margins_at_scale_on_sqlite() {
    let t = support::TestDb::migrated(support::Engine::Sqlite)
        .await
        .unwrap();
    margins_at_scale(&t.db).await;
    t.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement, run by hand"]
async fn margins_at_scale_on_postgres() {
    let Some(t) = support::TestDb::migrated(support::Engine::Postgres).await else {
        return;
    };
    margins_at_scale(&t.db).await;
    t.cleanup().await;
}
