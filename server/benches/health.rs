//! Health monitoring at fleet scale, on SQLite and PostgreSQL:
//!
//! - **sweep**: one sweep of 10,000 simulated servers × 3 probes (the simulator's shared
//!   listeners, real sockets), database writes included; its wall time, its probes per second,
//!   and the process's peak RSS;
//! - **wrk**: Debian's `wrk` with a new connection per request (`Connection: close`) against one
//!   of the same fake endpoints, in the same run, for the ratio;
//! - **pages**: with 48 h of raw checks and 30 days of hourly roll-ups for every server, the
//!   p95 of the `/vpses`, `/vpses/:id` and `/alerts` server functions over HTTP.
//!
//! `cargo bench -p server --bench health` (release profile; `wrk` from Debian's package).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use app::models::{OrgStatus, Region, ServerType, VpsStatus};
use sea_orm::{ActiveValue::Set, ConnectionTrait, DbBackend, EntityTrait, Statement};
use server::clock::Clock;
use server::entities::{organizations, tiers, vpses};
use server::state::App;

const SERVERS: usize = 10_000;
const FIRST_IP: &str = "127.90.0.2";

fn peak_rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

/// `wrk` against `url` for 5 s with a new connection per request; its requests per second.
fn wrk(url: &str) -> Option<f64> {
    let out = std::process::Command::new("wrk")
        .args(["-t2", "-c64", "-d5s", "-H", "Connection: close", url])
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines()
        .find(|l| l.starts_with("Requests/sec:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
}

async fn fleet(app: &App) {
    let db = &app.db;
    let sim = app.integrations.simulator.as_deref().unwrap();
    let tier = tiers::Entity::find().one(db).await.unwrap().unwrap();
    let now = chrono::Utc::now();
    let mut orgs = Vec::new();
    let mut servers = Vec::new();
    for i in 0..SERVERS {
        let server = sim
            .add_running_server(&format!("bench-{i}"), Default::default())
            .unwrap();
        servers.push(server);
        orgs.push(organizations::ActiveModel {
            name: Set(format!("Bench {i}")),
            slug: Set(format!("bench-{i}").parse().unwrap()),
            owner_email: Set(format!("owner{i}@bench.test").parse().unwrap()),
            tier_id: Set(tier.id),
            region: Set(Region::Nbg1),
            status: Set(OrgStatus::Active),
            status_reason: Set(None),
            status_changed_at: Set(now),
            stripe_customer_id: Set(None),
            stripe_subscription_id: Set(None),
            created_at: Set(now),
            updated_at: Set(now),
            ..Default::default()
        });
    }
    for chunk in orgs.chunks(500) {
        organizations::Entity::insert_many(chunk.to_vec())
            .exec_without_returning(db)
            .await
            .unwrap();
    }
    let ids: Vec<(i64, String)> = organizations::Entity::find()
        .all(db)
        .await
        .unwrap()
        .into_iter()
        .map(|o| (o.id, o.slug.to_string()))
        .collect();
    let by_slug: std::collections::HashMap<String, i64> =
        ids.into_iter().map(|(id, slug)| (slug, id)).collect();
    let rows: Vec<vpses::ActiveModel> = servers
        .iter()
        .enumerate()
        .map(|(i, s)| vpses::ActiveModel {
            organization_id: Set(by_slug[&format!("bench-{i}")]),
            name: Set(s.name.clone()),
            hetzner_server_id: Set(Some(s.id)),
            server_type: Set("cx22".parse::<ServerType>().unwrap()),
            region: Set(Region::Nbg1),
            ipv4: Set(s.public_net.ipv4.as_ref().map(|a| a.ip.clone())),
            status: Set(VpsStatus::Running),
            created_at: Set(now),
            updated_at: Set(now),
            ..Default::default()
        })
        .collect();
    for chunk in rows.chunks(500) {
        vpses::Entity::insert_many(chunk.to_vec())
            .exec_without_returning(db)
            .await
            .unwrap();
    }
}

/// 48 h of raw checks (every 5 min) and 30 days of hourly roll-ups for every server, generated
/// in the database.
async fn history(app: &App) {
    let db = &app.db;
    let sql = match db.get_database_backend() {
        DbBackend::Postgres => vec![
            "INSERT INTO health_checks (vps_id, organization_id, checked_at, status, convex_up, web_up, mta_up, consecutive_failures, duration_ms, convex_ms, web_ms, mta_ms) \
             SELECT v.id, v.organization_id, now() - s.n * interval '5 minutes', 'healthy', true, true, true, 0, 12, 3 + s.n % 7, 4 + s.n % 5, 2 + s.n % 3 \
             FROM vpses v CROSS JOIN generate_series(1, 576) AS s(n)".to_owned(),
            "INSERT INTO health_rollups (vps_id, organization_id, hour, checks, failures, convex_failures, web_failures, mta_failures, convex_p50_ms, convex_p95_ms, web_p50_ms, web_p95_ms, mta_p50_ms, mta_p95_ms) \
             SELECT v.id, v.organization_id, date_trunc('hour', now()) - s.n * interval '1 hour', 12, 0, 0, 0, 0, 5, 9, 6, 8, 3, 4 \
             FROM vpses v CROSS JOIN generate_series(49, 720) AS s(n)".to_owned(),
        ],
        _ => vec![
            "INSERT INTO health_checks (vps_id, organization_id, checked_at, status, convex_up, web_up, mta_up, consecutive_failures, duration_ms, convex_ms, web_ms, mta_ms) \
             WITH RECURSIVE s(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM s WHERE n < 576) \
             SELECT v.id, v.organization_id, strftime('%Y-%m-%d %H:%M:%S+00:00', 'now', '-' || (s.n * 5) || ' minutes'), 'healthy', 1, 1, 1, 0, 12, 3 + s.n % 7, 4 + s.n % 5, 2 + s.n % 3 \
             FROM vpses v CROSS JOIN s".to_owned(),
            "INSERT INTO health_rollups (vps_id, organization_id, hour, checks, failures, convex_failures, web_failures, mta_failures, convex_p50_ms, convex_p95_ms, web_p50_ms, web_p95_ms, mta_p50_ms, mta_p95_ms) \
             WITH RECURSIVE s(n) AS (SELECT 49 UNION ALL SELECT n + 1 FROM s WHERE n < 720) \
             SELECT v.id, v.organization_id, strftime('%Y-%m-%d %H:00:00+00:00', 'now', '-' || s.n || ' hours'), 12, 0, 0, 0, 0, 5, 9, 6, 8, 3, 4 \
             FROM vpses v CROSS JOIN s".to_owned(),
        ],
    };
    for statement in sql {
        db.execute_raw(Statement::from_string(db.get_database_backend(), statement))
            .await
            .unwrap();
    }
    // Fresh statistics, as a running database has them (autovacuum's analyze): the planner
    // needs them after millions of rows arrived at once.
    db.execute_unprepared("ANALYZE").await.unwrap();
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
    common::on_both("health", |engine, url| async move {
        let db = common::database(&url).await;
        let config = server::config::Config::from_lookup(|n| match n {
            "NEST_SECRETS_KEY" => Some("00".repeat(32)),
            "NEST_SIM_FIRST_IP" => Some(FIRST_IP.to_owned()),
            "NEST_SIM_BOOT_DELAY_MS" => Some("0".to_owned()),
            "NEST_HEALTH_GRACE_SECS" => Some("0".to_owned()),
            _ => None,
        })
        .unwrap();
        let app = App::start_with_clock(config, db.clone(), Clock::system())
            .await
            .unwrap();
        let setup = Instant::now();
        fleet(&app).await;
        println!("{engine}: {SERVERS} servers set up in {:.1} s", setup.elapsed().as_secs_f64());
        let sweeper = app.sweeper(Arc::new(app.health_settings()));
        let rss_before = peak_rss_mb();
        let mut runs = Vec::new();
        for _ in 0..3 {
            let started = Instant::now();
            let report = sweeper.sweep().await.unwrap();
            let took = started.elapsed();
            assert_eq!(report.checked, SERVERS);
            assert_eq!(report.failing, 0, "{report:?}");
            runs.push((took, report));
        }
        for (took, r) in &runs {
            println!(
                "{engine}: sweep of {} servers ({} probes): {:.2} s (probing {} ms, writing {} ms) = {:.0} probes/s",
                r.checked,
                r.checked * 3,
                took.as_secs_f64(),
                r.probe_ms,
                r.write_ms,
                (r.checked * 3) as f64 / took.as_secs_f64()
            );
        }
        println!(
            "{engine}: peak RSS {:.0} MB before the sweeps, {:.0} MB after",
            rss_before,
            peak_rss_mb()
        );
        let best = runs.iter().map(|(t, _)| *t).min().unwrap_or(Duration::MAX);
        match wrk(&format!("http://{FIRST_IP}:3000/")) {
            Some(rps) => {
                let sweep_rps = (SERVERS * 3) as f64 / best.as_secs_f64();
                println!(
                    "{engine}: wrk (new connection per request) {rps:.0} requests/s; best sweep {sweep_rps:.0} probes/s = {:.2} × wrk",
                    sweep_rps / rps
                );
            }
            None => println!("{engine}: wrk not found (apt-get install wrk)"),
        }

        let filled = Instant::now();
        history(&app).await;
        println!(
            "{engine}: 48 h of raw checks and 30 d of roll-ups for {SERVERS} servers written in {:.1} s",
            filled.elapsed().as_secs_f64()
        );
        let addr = common::serve(&db).await;
        let client = reqwest::Client::new();
        let cookie = common::session_cookie(&client, addr).await;
        let base = format!("http://{addr}/api");
        let vps_id = vpses::Entity::find().one(&db).await.unwrap().unwrap().id.to_string();
        let list = p95(&client, &cookie, &format!("{base}/list_vpses"), &[("query[include_deleted]", "false")], 50).await;
        let filtered = p95(
            &client,
            &cookie,
            &format!("{base}/list_vpses"),
            &[("query[include_deleted]", "false"), ("query[health]", "healthy")],
            50,
        )
        .await;
        let detail = p95(&client, &cookie, &format!("{base}/vps_health"), &[("id", vps_id.as_str())], 50).await;
        let alerts = p95(&client, &cookie, &format!("{base}/list_incidents"), &[("query[search]", "")], 50).await;
        println!(
            "{engine}: p95 over HTTP: /vpses {list:.1} ms, /vpses?health=healthy {filtered:.1} ms, /vpses/:id {detail:.1} ms, /alerts {alerts:.1} ms"
        );
    })
    .await;
}
