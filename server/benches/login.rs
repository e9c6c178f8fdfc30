//! Login latency: the `login` server function over HTTP on loopback, argon2id included.
//!
//! `cargo bench -p server --bench login` (release profile). Prints p50/p95/max over 50 logins
//! on SQLite, and on PostgreSQL when `NEST_TEST_POSTGRES_URL` (default
//! postgres://postgres@127.0.0.1:5432/postgres) is reachable.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Instant;

use common::{ms, percentile};
use server::config::DatabaseUrl;

const LOGINS: usize = 50;

async fn run(label: &'static str, url: DatabaseUrl) {
    let db = common::database(&url).await;
    let addr = common::serve(&db).await;
    let client = reqwest::Client::new();
    let mut times = Vec::with_capacity(LOGINS);
    for i in 0..LOGINS + 3 {
        let started = Instant::now();
        let response = common::login(&client, addr).await;
        let _ = response.bytes().await.unwrap();
        if i >= 3 {
            times.push(started.elapsed()); // the first three warm the pool and caches
        }
    }
    times.sort();
    println!(
        "login latency on {label}: p50 {:.1} ms, p95 {:.1} ms, max {:.1} ms ({LOGINS} sequential logins)",
        ms(percentile(&times, 0.50)),
        ms(percentile(&times, 0.95)),
        ms(times[times.len() - 1]),
    );
    db.close().await.unwrap();
}

#[tokio::main]
async fn main() {
    common::on_both("login", run).await;
}
