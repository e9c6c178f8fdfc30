//! `/organizations` at scale: 10,000 organizations (each with a job and an audit row), then the
//! server time of the list's first page, a filtered page, a search, and the detail page —
//! the server functions over HTTP on loopback, with a signed-in session.
//!
//! `cargo bench -p server --bench organizations` (release profile). Prints p50/p95/max per
//! server function on SQLite, and on PostgreSQL when `NEST_TEST_POSTGRES_URL` (default
//! postgres://postgres@127.0.0.1:5432/postgres) is reachable. Target: p95 under 20 ms.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Instant;

use common::percentile;

use app::models::{JobKind, JobPayload, JobProgress, JobState, OrgStatus, Region};
use sea_orm::{ActiveValue::Set, DatabaseConnection, EntityTrait, QueryOrder};
use serde_json::json;
use server::config::DatabaseUrl;
use server::entities::{audit_log, jobs, organizations, tiers};

const ORGS: usize = 10_000;
const RUNS: usize = 100;

/// A measured request: its name, the server function, and the form body of request `i`.
type Case = (&'static str, &'static str, Box<dyn Fn(usize) -> String>);

async fn seed(db: &DatabaseConnection) -> Vec<i64> {
    let tier_ids: Vec<i64> = tiers::Entity::find()
        .all(db)
        .await
        .unwrap()
        .iter()
        .map(|t| t.id)
        .collect();
    let now = chrono::Utc::now();
    let statuses = [
        OrgStatus::Active,
        OrgStatus::Active,
        OrgStatus::Active,
        OrgStatus::Active,
        OrgStatus::Active,
        OrgStatus::Active,
        OrgStatus::Active,
        OrgStatus::Suspended,
        OrgStatus::Pending,
        OrgStatus::Error,
    ];
    for chunk in (0..ORGS).collect::<Vec<_>>().chunks(500) {
        let rows = chunk.iter().map(|i| organizations::ActiveModel {
            name: Set(format!("Org {i:05}")),
            slug: Set(format!("org-{i}").parse().unwrap()),
            owner_email: Set(format!("owner{i}@bench.test").parse().unwrap()),
            tier_id: Set(tier_ids[i % tier_ids.len()]),
            region: Set(Region::ALL[i % Region::ALL.len()]),
            status: Set(statuses[i % statuses.len()]),
            status_reason: Set(None),
            status_changed_at: Set(now),
            stripe_customer_id: Set(None),
            stripe_subscription_id: Set(None),
            created_at: Set(now - chrono::Duration::seconds((ORGS - i) as i64)),
            updated_at: Set(now),
            ..Default::default()
        });
        organizations::Entity::insert_many(rows)
            .exec(db)
            .await
            .unwrap();
    }
    let ids: Vec<i64> = organizations::Entity::find()
        .order_by_asc(organizations::Column::Id)
        .all(db)
        .await
        .unwrap()
        .iter()
        .map(|o| o.id)
        .collect();
    for chunk in ids.chunks(500) {
        let jobs = chunk.iter().map(|id| jobs::ActiveModel {
            kind: Set(JobKind::Create),
            queue_key: Set(Some(format!("org:{id}"))),
            unique_key: Set(None),
            organization_id: Set(Some(*id)),
            state: Set(JobState::Succeeded),
            attempts: Set(1),
            max_attempts: Set(5),
            run_after: Set(now),
            lease_owner: Set(None),
            lease_token: Set(None),
            lease_expires_at: Set(None),
            progress: Set(JobProgress::default()),
            payload: Set(JobPayload::Create {
                organization_id: *id,
            }),
            last_error: Set(None),
            created_at: Set(now),
            started_at: Set(Some(now)),
            finished_at: Set(Some(now)),
            updated_at: Set(now),
            ..Default::default()
        });
        jobs::Entity::insert_many(jobs).exec(db).await.unwrap();
        let audits = chunk.iter().map(|id| audit_log::ActiveModel {
            actor_user_id: Set(None),
            actor_email: Set("bench@nest.test".into()),
            action: Set("organization.created".into()),
            target_type: Set("organization".into()),
            target_id: Set(Some(id.to_string())),
            detail: Set(json!({})),
            ip: Set(None),
            user_agent: Set(None),
            created_at: Set(now),
            ..Default::default()
        });
        audit_log::Entity::insert_many(audits)
            .exec_without_returning(db)
            .await
            .unwrap();
    }
    ids
}

async fn run(label: &'static str, url: DatabaseUrl) {
    let db = common::database(&url).await;
    let started = Instant::now();
    let ids = seed(&db).await;
    println!(
        "{label}: seeded {ORGS} organizations with jobs and audit rows in {:.1} s",
        started.elapsed().as_secs_f64()
    );

    let addr = common::serve(&db).await;
    let client = reqwest::Client::new();
    let cookie = common::session_cookie(&client, addr).await;

    let cases: Vec<Case> = vec![
        (
            "list: first page",
            "list_organizations",
            Box::new(|_| "query[sort]=Newest".to_owned()),
        ),
        (
            "list: status + region filter",
            "list_organizations",
            Box::new(|_| "query[status]=active&query[region]=fsn1&query[sort]=Newest".to_owned()),
        ),
        (
            "list: search",
            "list_organizations",
            Box::new(|i| {
                format!(
                    "query[search]=owner{}%40bench&query[sort]=Newest",
                    (i * 97) % ORGS
                )
            }),
        ),
        (
            "detail",
            "get_organization",
            Box::new(move |i| format!("id={}", ids[(i * 7919) % ids.len()])),
        ),
    ];
    for (name, endpoint, body) in &cases {
        let mut times = Vec::with_capacity(RUNS);
        for i in 0..RUNS + 5 {
            let started = Instant::now();
            let response = client
                .post(format!("http://{addr}/api/{endpoint}"))
                .header("content-type", "application/x-www-form-urlencoded")
                .header("cookie", &cookie)
                .body(body(i))
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 200, "{name}");
            let _ = response.bytes().await.unwrap();
            if i >= 5 {
                times.push(started.elapsed());
            }
        }
        times.sort();
        println!(
            "{label}: {name:<30} p50 {:>6.2} ms  p95 {:>6.2} ms  max {:>6.2} ms  ({RUNS} requests)",
            percentile(&times, 0.50).as_secs_f64() * 1e3,
            percentile(&times, 0.95).as_secs_f64() * 1e3,
            times[times.len() - 1].as_secs_f64() * 1e3,
        );
    }
    db.close().await.unwrap();
}

#[tokio::main]
async fn main() {
    common::on_both("orgs", run).await;
}
