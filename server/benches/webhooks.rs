//! Stripe webhook latency: 100 signups paid at the simulator with their `invoice.paid` events
//! held back, then the 100 deliveries POSTed to `/webhooks/stripe` at once (each signed as
//! Stripe signs), then 50 more one at a time. Each request's time is "webhook received → provisioning job committed": Nest
//! answers only after the transaction holding the event id, the signup's payment and the
//! `create` job commits. Then the same 100 again (replays: nothing changes). Goal: p99 < 50 ms.
//!
//! `cargo bench -p server --bench webhooks` (release profile; `NEST_BENCH_ENGINE` picks one).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use app::backend::RequestInfo;
use app::models::{JobKind, SignupInput};
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};
use server::billing::stripe::simulator::{DeliveryMode, signature};
use server::config::Config;
use server::entities::{jobs, tiers};
use server::state::App;

const SIGNUPS: usize = 100;
/// Deliveries made one at a time after the burst (each signup's own `invoice.paid`).
const SEQUENTIAL: usize = 50;

async fn fire(addr: SocketAddr, payloads: &[String], secret: &str) -> Vec<Duration> {
    let http = reqwest::Client::new();
    let now = chrono::Utc::now().timestamp();
    let mut tasks = Vec::new();
    for payload in payloads {
        let (http, payload) = (http.clone(), payload.clone());
        let header = signature(secret, now, &payload);
        tasks.push(tokio::spawn(async move {
            let start = Instant::now();
            let response = http
                .post(format!("http://{addr}/webhooks/stripe"))
                .header("stripe-signature", header)
                .header("content-type", "application/json")
                .body(payload)
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 200, "{}", response.text().await.unwrap());
            start.elapsed()
        }));
    }
    let mut times = Vec::new();
    for task in tasks {
        times.push(task.await.unwrap());
    }
    times.sort();
    times
}

/// CPU per delivery before any database work: the signature and the event read by async-stripe
/// (`Webhook::construct_event`, the full `Invoice`), and by Nest (`signature::verify` +
/// `delivery::read`, the fields it uses).
fn reading(engine: &str, payloads: &[String], secret: &str) {
    const ROUNDS: usize = 20;
    let now = chrono::Utc::now().timestamp();
    let signed: Vec<(String, &String)> = payloads
        .iter()
        .map(|p| (signature(secret, now, p), p))
        .collect();
    let per_delivery = |f: &dyn Fn(&str, &str)| {
        let start = Instant::now();
        for _ in 0..ROUNDS {
            for (header, payload) in &signed {
                f(payload, header);
            }
        }
        start.elapsed().as_secs_f64() * 1e6 / (ROUNDS * signed.len()) as f64
    };
    let library = per_delivery(&|payload, header| {
        stripe_webhook::Webhook::construct_event_with_timestamp(payload, header, secret, now)
            .unwrap();
    });
    let nest = per_delivery(&|payload, header| {
        server::billing::stripe::signature::verify(header, secret, payload, now).unwrap();
        server::billing::webhook::delivery::read(payload).unwrap();
    });
    println!(
        "webhooks {engine:<10} reading one invoice.paid ({} bytes): async-stripe {library:.1} µs, Nest {nest:.1} µs",
        payloads[0].len()
    );
}

fn report(engine: &str, what: &str, times: &[Duration]) {
    println!(
        "webhooks {engine:<10} {what:<28} n={} p50 {:>6.1} ms  p99 {:>6.1} ms  max {:>6.1} ms",
        times.len(),
        common::ms(common::percentile(times, 0.50)),
        common::ms(common::percentile(times, 0.99)),
        common::ms(*times.last().unwrap()),
    );
}

#[tokio::main]
async fn main() {
    common::on_both("webhooks", |engine, url| async move {
        let db = common::database(&url).await;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let config = Config::from_lookup(|n| match n {
            "NEST_ADDR" => Some(addr.to_string()),
            "NEST_SECRETS_KEY" => Some("00".repeat(32)),
            _ => None,
        })
        .unwrap();
        let app = App::start(config, db.clone()).await.unwrap();
        let router = server::http::router(app.clone());
        tokio::spawn(async move {
            axum::serve(
                listener,
                router.into_make_service_with_connect_info::<SocketAddr>(),
            )
            .await
            .unwrap();
        });
        let sim = app.integrations.stripe.simulator.clone().unwrap();
        // Hold every event: the bench delivers them itself, all at once.
        sim.set_delivery_mode(DeliveryMode::OutOfOrder { count: 1_000_000 });
        let growth = tiers::Entity::find()
            .filter(tiers::Column::Code.eq("growth"))
            .one(&db)
            .await
            .unwrap()
            .unwrap();
        let signups = app.signups();
        let store = Arc::new(server::admins::session_store::DbSessionStore::new(
            db.clone(),
            app.clock.clone(),
            chrono::Duration::minutes(30),
        ));
        for i in 0..SIGNUPS + SEQUENTIAL {
            let req = RequestInfo {
                session: tower_sessions::Session::new(None, store.clone(), None),
                ip: Some(format!("10.9.{}.{}", i / 200, i % 200 + 1)),
                user_agent: None,
            };
            let started = signups
                .start(
                    &req,
                    SignupInput {
                        name: format!("Bench {i}"),
                        slug: format!("hook-{i}"),
                        owner_email: format!("owner{i}@hook.test"),
                        tier_id: growth.id,
                        region: "fsn1".to_owned(),
                    },
                )
                .await
                .unwrap();
            signups
                .pay_with_test_card(&started.token, "4242 4242 4242 4242")
                .await
                .unwrap();
        }
        let payloads: Vec<String> = sim
            .events()
            .into_iter()
            .filter(|e| e.type_ == "invoice.paid")
            .map(|e| sim.event(&e.id).unwrap().to_string())
            .collect();
        assert_eq!(payloads.len(), SIGNUPS + SEQUENTIAL);
        let (payloads, later) = payloads.split_at(SIGNUPS);
        let secret = app.integrations.stripe.webhook_secret.expose().to_owned();

        reading(engine, payloads, &secret);
        let first = fire(addr, payloads, &secret).await;
        report(engine, "invoice.paid → create job", &first);
        let created = jobs::Entity::find()
            .filter(jobs::Column::Kind.eq(JobKind::Create))
            .count(&db)
            .await
            .unwrap();
        assert_eq!(created, SIGNUPS as u64);
        let replays = fire(addr, payloads, &secret).await;
        report(engine, "the same 100 again (replays)", &replays);
        // One delivery at a time: the latency of one, without queueing behind the others.
        let mut alone = Vec::new();
        for payload in later {
            alone.extend(fire(addr, std::slice::from_ref(payload), &secret).await);
        }
        alone.sort();
        report(engine, "one at a time", &alone);
    })
    .await;
}
