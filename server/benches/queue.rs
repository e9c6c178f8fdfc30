//! Job-queue throughput: no-op jobs claimed, run and completed by 8 workers at once (each its
//! own worker name, one job at a time, as 8 processes would), on SQLite and PostgreSQL.
//! What is measured is the queue itself: the claim (with its lease token), the progress-free
//! run, and the completing update.
//!
//! `cargo bench -p server --bench queue` (release profile).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use app::models::{JobKind, JobPayload, JobState};
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};
use server::clock::Clock;
use server::entities::jobs;
use server::jobs::{Attempt, Handler, JobFailure, NewJob, Outcome, QueueConfig, Registry, Worker};

const JOBS: usize = 2_000;
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
        db.close().await.unwrap();
    })
    .await;
}
