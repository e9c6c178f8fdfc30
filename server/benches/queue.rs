//! Job-queue throughput: jobs claimed, run and completed by 8 workers at once (each its own
//! worker name, one job at a time, as 8 processes would), on SQLite and PostgreSQL.
//!
//! - **no-op**: periodic-kind jobs whose handler does nothing — the queue itself: the claim
//!   (with its lease token), the run, the completing update.
//! - **skipped redeploys**: one `redeploy` job for each of 500 `pending` organizations (each
//!   with its own queue key); the provisioning handler reads the organization and skips. This
//!   workload ran unchanged on the engine before the queue (commit 4d6e8ae), for comparison.
//!
//! `cargo bench -p server --bench queue` (release profile).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use app::models::{JobKind, JobPayload, JobState};
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};
use server::audit::Actor;
use server::clock::Clock;
use server::entities::jobs;
use server::jobs::{Attempt, Handler, JobFailure, NewJob, Outcome, QueueConfig, Registry, Worker};
use server::organizations::NewOrganization;

const JOBS: usize = 2_000;
const ORGS: usize = 500;
const WORKERS: usize = 8;

/// Does nothing.
struct Noop;

#[async_trait::async_trait]
impl Handler for Noop {
    async fn run(&self, _attempt: &Attempt) -> Result<Outcome, JobFailure> {
        Ok(Outcome::Done)
    }
}

#[tokio::main]
async fn main() {
    common::on_both("queue", |engine, url| async move {
        let db = common::database(&url).await;
        let clock = Clock::system();
        let now = clock.now();
        for _ in 0..JOBS {
            server::jobs::enqueue(&db, NewJob::now(JobPayload::JobPrune, now), now)
                .await
                .unwrap();
        }
        let registry = Arc::new(Registry::default().with(&[JobKind::JobPrune], Arc::new(Noop)));
        let workers: Vec<Worker> = (0..WORKERS)
            .map(|_| Worker {
                db: db.clone(),
                clock: clock.clone(),
                events: server::events::Events::default(),
                config: Arc::new(QueueConfig {
                    parallel: 1,
                    ..QueueConfig::default()
                }),
                registry: registry.clone(),
                name: Worker::new_name(),
            })
            .collect();
        let started = Instant::now();
        let runs = futures::future::join_all(workers.iter().map(Worker::run_until_idle)).await;
        let took = started.elapsed();
        let ran: usize = runs.into_iter().map(Result::unwrap).sum();
        let succeeded = jobs::Entity::find()
            .filter(jobs::Column::State.eq(JobState::Succeeded))
            .count(&db)
            .await
            .unwrap();
        assert_eq!(ran, JOBS, "every job ran once");
        assert_eq!(succeeded as usize, JOBS);
        println!(
            "{engine}: {JOBS} no-op jobs by {WORKERS} workers in {:.2} s: {:.0} jobs/s (claim + run + complete)",
            took.as_secs_f64(),
            JOBS as f64 / took.as_secs_f64().max(Duration::from_micros(1).as_secs_f64())
        );
        skipped_redeploys(engine, &url, &db).await;
        db.close().await.unwrap();
    })
    .await;
}

/// 500 `redeploy` jobs of `pending` organizations, run by 8 provisioning workers.
async fn skipped_redeploys(
    engine: &str,
    url: &server::config::DatabaseUrl,
    db: &sea_orm::DatabaseConnection,
) {
    let _ = url;
    let config = server::config::Config::from_lookup(|n| match n {
        "NEST_SECRETS_KEY" => Some("00".repeat(32)),
        "NEST_SIM_FIRST_IP" => Some("127.202.0.2".to_owned()),
        _ => None,
    })
    .unwrap();
    let app = server::state::App::start(config, db.clone()).await.unwrap();
    let starter = server::entities::tiers::Entity::find()
        .filter(server::entities::tiers::Column::Code.eq("starter"))
        .one(db)
        .await
        .unwrap()
        .unwrap();
    let actor = Actor {
        user_id: None,
        email: "bench@nest.test".into(),
        ip: None,
        user_agent: None,
    };
    let now = app.clock.now();
    for i in 0..ORGS {
        let org = app
            .organizations()
            .create(
                &actor,
                NewOrganization {
                    name: format!("Bench {i}"),
                    slug: format!("bench-{i}"),
                    owner_email: format!("o@bench-{i}.test"),
                    tier_id: starter.id,
                    region: "nbg1".into(),
                },
                false,
            )
            .await
            .unwrap();
        server::jobs::enqueue(
            db,
            NewJob::now(
                JobPayload::Redeploy {
                    organization_id: org.id,
                },
                now,
            ),
            now,
        )
        .await
        .unwrap();
    }
    let mut queue = app.queue_config();
    queue.parallel = 1;
    let first = app.worker_with(
        queue,
        app.registry(app.provisioner(app.provisioning_config())),
    );
    let workers: Vec<Worker> = (0..WORKERS).map(|_| first.another()).collect();
    let started = Instant::now();
    let runs = futures::future::join_all(workers.iter().map(Worker::run_until_idle)).await;
    let took = started.elapsed();
    let ran: usize = runs.into_iter().map(Result::unwrap).sum();
    assert_eq!(ran, ORGS);
    println!(
        "{engine}: {ORGS} skipped redeploys by {WORKERS} workers in {:.2} s: {:.0} jobs/s",
        took.as_secs_f64(),
        ORGS as f64 / took.as_secs_f64()
    );
}
