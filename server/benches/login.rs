//! Login latency: the `login` server function over HTTP on loopback, argon2id included.
//!
//! `cargo bench -p server --bench login` (release profile). Prints p50/p95/max over 50 logins
//! on SQLite, and on PostgreSQL when `NEST_TEST_POSTGRES_URL` (default
//! postgres://postgres@127.0.0.1:5432/postgres) is reachable.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use sea_orm::{ConnectionTrait, Database};
use server::config::{Config, DatabaseUrl};
use server::state::App;

const LOGINS: usize = 50;
const PASSWORD: &str = "correct horse battery 9";

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

async fn run(label: &str, url: DatabaseUrl) {
    let db = server::db::connect(&url).await.unwrap();
    server::db::migrate_up(&db).await.unwrap();
    server::seed::ensure_reference_data(&db, &Default::default())
        .await
        .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let config = Config::from_lookup(|n| match n {
        "NEST_ADDR" => Some(addr.to_string()),
        // A throw-away key: the bench never stores VPS secrets.
        "NEST_SECRETS_KEY" => Some("00".repeat(32)),
        _ => None,
    })
    .unwrap();
    let app = App::start(config, db.clone()).await.unwrap();
    app.admins()
        .create_from_cli(
            "bench@nest.test",
            app::models::AdminRole::Superadmin,
            PASSWORD.to_owned(),
        )
        .await
        .unwrap();
    let router = server::http::router(app);
    tokio::spawn(async move {
        axum::serve(
            listener,
            router.into_make_service_with_connect_info::<std::net::SocketAddr>(),
        )
        .await
        .unwrap();
    });
    let client = reqwest::Client::new();
    let body = format!(
        "email=bench%40nest.test&password={}",
        PASSWORD.replace(' ', "+")
    );
    let mut times = Vec::with_capacity(LOGINS);
    for i in 0..LOGINS + 3 {
        let started = Instant::now();
        let response = client
            .post(format!("http://{addr}/api/login"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        let _ = response.bytes().await.unwrap();
        if i >= 3 {
            times.push(started.elapsed()); // the first three warm the pool and caches
        }
    }
    times.sort();
    println!(
        "login latency on {label}: p50 {:.1} ms, p95 {:.1} ms, max {:.1} ms ({LOGINS} sequential logins)",
        percentile(&times, 0.50).as_secs_f64() * 1e3,
        percentile(&times, 0.95).as_secs_f64() * 1e3,
        times[times.len() - 1].as_secs_f64() * 1e3,
    );
    db.close().await.unwrap();
}

#[tokio::main]
async fn main() {
    server::install_tls_provider();
    let dir = std::env::temp_dir().join(format!("nest-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    run(
        "SQLite",
        DatabaseUrl::parse(&format!("sqlite://{}/nest.db", dir.display())).unwrap(),
    )
    .await;
    let _ = std::fs::remove_dir_all(&dir);

    let admin_url = std::env::var("NEST_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned());
    match Database::connect(admin_url.as_str()).await {
        Ok(admin) => {
            let name = format!("nest_bench_{}", std::process::id());
            admin
                .execute_unprepared(&format!("CREATE DATABASE {name}"))
                .await
                .unwrap();
            let mut url = url::Url::parse(&admin_url).unwrap();
            url.set_path(&name);
            run("PostgreSQL", DatabaseUrl::parse(url.as_str()).unwrap()).await;
            admin
                .execute_unprepared(&format!("DROP DATABASE {name} WITH (FORCE)"))
                .await
                .unwrap();
        }
        Err(e) => println!("PostgreSQL skipped: {e}"),
    }
}
