//! The invoice ledger at scale, on SQLite and PostgreSQL (`NEST_BENCH_ENGINE=sqlite|postgres`
//! for one):
//!
//! - **run**: the daily invoice run over 10,000 billed organizations (10,000 invoices and their
//!   audit rows, overdue detection, dunning, MRR), then the same run again (nothing to do);
//!   goal < 10 s;
//! - **pages**: with 12 months of invoices (120,000), the p95 of `/billing`'s server functions
//!   over HTTP (overview, the invoice list unfiltered and filtered, one invoice); goal < 20 ms.
//!
//! `cargo bench -p server --bench billing` (release profile).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Instant;

use app::models::{InvoiceNumber, InvoiceStatus, OrgStatus, Region};
use chrono::{Datelike, Months, NaiveDate, Utc};
use sea_orm::{ActiveValue::Set, ConnectionTrait, EntityTrait, QueryOrder, QuerySelect};
use server::clock::Clock;
use server::entities::{invoices, organizations, tiers};
use server::state::App;

const ORGS: usize = 10_000;
const MONTHS: u32 = 12;

async fn organizations(app: &App) {
    let tiers = tiers::Entity::find().all(&app.db).await.unwrap();
    let now = Utc::now();
    let rows: Vec<organizations::ActiveModel> = (0..ORGS)
        .map(|i| organizations::ActiveModel {
            name: Set(format!("Customer {i}")),
            slug: Set(format!("customer-{i}").parse().unwrap()),
            owner_email: Set(format!("owner{i}@bench.test").parse().unwrap()),
            tier_id: Set(tiers[i % tiers.len()].id),
            region: Set(Region::Fsn1),
            status: Set(if i % 20 == 0 {
                OrgStatus::Suspended
            } else {
                OrgStatus::Active
            }),
            status_reason: Set(None),
            status_changed_at: Set(now),
            stripe_customer_id: Set(None),
            stripe_subscription_id: Set(None),
            created_at: Set(now),
            updated_at: Set(now),
            ..Default::default()
        })
        .collect();
    for chunk in rows.chunks(1000) {
        organizations::Entity::insert_many(chunk.to_vec())
            .exec_without_returning(&app.db)
            .await
            .unwrap();
    }
}

/// The 11 months before the current one, paid (a few void), so 120,000 invoices in all.
async fn history(app: &App, current: NaiveDate) {
    let orgs: Vec<i64> = organizations::Entity::find()
        .select_only()
        .column(organizations::Column::Id)
        .order_by_asc(organizations::Column::Id)
        .into_tuple()
        .all(&app.db)
        .await
        .unwrap();
    let now = Utc::now();
    for back in 1..MONTHS {
        let month = current.checked_sub_months(Months::new(back)).unwrap();
        let rows: Vec<invoices::ActiveModel> = orgs
            .iter()
            .enumerate()
            .map(|(n, org)| invoices::ActiveModel {
                organization_id: Set(*org),
                number: Set(InvoiceNumber::new(month, n as u32 + 1).unwrap()),
                period_start: Set(month),
                period_end: Set(app::models::period_end(month)),
                amount_cents: Set(2800),
                currency: Set(app::models::Currency::eur()),
                status: Set(if n % 50 == 0 {
                    InvoiceStatus::Void
                } else {
                    InvoiceStatus::Paid
                }),
                due_date: Set(app::models::due_date(month)),
                paid_at: Set(Some(now)),
                stripe_invoice_id: Set(None),
                description: Set(Some("Starter (cx22)".into())),
                created_at: Set(now),
                updated_at: Set(now),
                ..Default::default()
            })
            .collect();
        for chunk in rows.chunks(500) {
            invoices::Entity::insert_many(chunk.to_vec())
                .exec_without_returning(&app.db)
                .await
                .unwrap();
        }
    }
    app.db.execute_unprepared("ANALYZE").await.unwrap();
}

/// p95 of `calls` POSTs of a server function.
async fn p95(
    client: &reqwest::Client,
    cookie: &str,
    url: &str,
    form: &[(&str, &str)],
    calls: usize,
) -> f64 {
    let mut times = Vec::with_capacity(calls);
    for _ in 0..calls {
        let started = Instant::now();
        let response = client
            .post(url)
            .header("cookie", cookie)
            .header("accept", "application/json")
            .header("content-type", "application/x-www-form-urlencoded")
            .body(
                url::form_urlencoded::Serializer::new(String::new())
                    .extend_pairs(form)
                    .finish(),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(
            response.status(),
            200,
            "{url}: {}",
            response.text().await.unwrap()
        );
        response.bytes().await.unwrap();
        times.push(started.elapsed());
    }
    times.sort();
    common::ms(common::percentile(&times, 0.95))
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    common::on_both("billing", |engine, url| async move {
        let db = common::database(&url).await;
        let config = server::config::Config::from_lookup(|n| match n {
            "NEST_SECRETS_KEY" => Some("00".repeat(32)),
            _ => None,
        })
        .unwrap();
        let app = App::start_with_clock(config, db.clone(), Clock::system())
            .await
            .unwrap();
        organizations(&app).await;
        let ledger = app.ledger();
        let started = Instant::now();
        let report = ledger.run_now().await.unwrap();
        let first = started.elapsed();
        assert_eq!(report.created, ORGS as u64);
        let started = Instant::now();
        let again = ledger.run_now().await.unwrap();
        let second = started.elapsed();
        assert_eq!(again.created, 0);
        println!(
            "{engine}: invoice run over {ORGS} organizations: {:.2} s ({} invoices); again (nothing to do): {:.2} s",
            first.as_secs_f64(),
            report.created,
            second.as_secs_f64()
        );

        let today = Utc::now().date_naive();
        let current = today.with_day(1).unwrap();
        let filled = Instant::now();
        history(&app, current).await;
        println!(
            "{engine}: {} invoices in all, written in {:.1} s",
            ORGS as u32 * MONTHS,
            filled.elapsed().as_secs_f64()
        );

        let addr = common::serve(&db).await;
        let client = reqwest::Client::new();
        let cookie = common::session_cookie(&client, addr).await;
        let base = format!("http://{addr}/api");
        let month = current.format("%Y-%m").to_string();
        let invoice_id = invoices::Entity::find()
            .one(&db)
            .await
            .unwrap()
            .unwrap()
            .id
            .to_string();
        let overview = p95(&client, &cookie, &format!("{base}/billing_overview"), &[], 50).await;
        let list = p95(&client, &cookie, &format!("{base}/list_invoices"), &[("query[search]", "")], 50).await;
        let by_status = p95(&client, &cookie, &format!("{base}/list_invoices"), &[("query[status]", "open")], 50).await;
        let by_month = p95(&client, &cookie, &format!("{base}/list_invoices"), &[("query[month]", month.as_str())], 50).await;
        let search = p95(&client, &cookie, &format!("{base}/list_invoices"), &[("query[search]", "customer-9999")], 50).await;
        let detail = p95(&client, &cookie, &format!("{base}/get_invoice"), &[("id", invoice_id.as_str())], 50).await;
        println!(
            "{engine}: p95 over HTTP: overview {overview:.1} ms, list {list:.1} ms, ?status=open {by_status:.1} ms, ?month {by_month:.1} ms, search {search:.1} ms, one invoice {detail:.1} ms"
        );
    })
    .await;
}
