//! What the benches share: a migrated database on SQLite and (when reachable) PostgreSQL, a Nest
//! server on a loopback port with a superadmin, and percentiles.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use sea_orm::{ConnectionTrait, Database, DatabaseConnection};
use server::config::{Config, DatabaseUrl};
use server::state::App;

/// The benches' admin.
pub const EMAIL: &str = "bench@nest.test";
/// Its password.
pub const PASSWORD: &str = "correct horse battery 9";

/// The value at quantile `p` of sorted durations.
pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

/// Milliseconds, for printing.
pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// Connects, migrates and seeds the reference data.
pub async fn database(url: &DatabaseUrl) -> DatabaseConnection {
    let db = server::db::connect(url).await.unwrap();
    server::db::migrate_up(&db).await.unwrap();
    server::seed::ensure_reference_data(&db, &Default::default())
        .await
        .unwrap();
    db
}

/// Serves Nest over `db` on a loopback port with the superadmin [`EMAIL`]; returns its address.
pub async fn serve(db: &DatabaseConnection) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let config = Config::from_lookup(|n| match n {
        "NEST_ADDR" => Some(addr.to_string()),
        // A throw-away key: the benches never keep VPS secrets.
        "NEST_SECRETS_KEY" => Some("00".repeat(32)),
        _ => None,
    })
    .unwrap();
    let app = App::start(config, db.clone()).await.unwrap();
    app.admins()
        .create_from_cli(
            EMAIL,
            app::models::AdminRole::Superadmin,
            PASSWORD.to_owned(),
        )
        .await
        .unwrap();
    let router = server::http::router(app);
    tokio::spawn(async move {
        axum::serve(
            listener,
            router.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
        .unwrap();
    });
    addr
}

/// Signs [`EMAIL`] in through the `login` server function; returns the response.
pub async fn login(client: &reqwest::Client, addr: SocketAddr) -> reqwest::Response {
    let response = client
        .post(format!("http://{addr}/api/login"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!(
            "email=bench%40nest.test&password={}",
            PASSWORD.replace(' ', "+")
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    response
}

/// Signs [`EMAIL`] in; returns the `name=value` of the session cookie.
pub async fn session_cookie(client: &reqwest::Client, addr: SocketAddr) -> String {
    login(client, addr).await.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned()
}

/// Runs `bench` on a fresh SQLite file, then on a fresh PostgreSQL database when the server at
/// `NEST_TEST_POSTGRES_URL` (default postgres://postgres@127.0.0.1:5432/postgres) answers.
pub async fn on_both<F, Fut>(name: &str, bench: F)
where
    F: Fn(&'static str, DatabaseUrl) -> Fut,
    Fut: Future<Output = ()>,
{
    server::install_tls_provider();
    // `NEST_BENCH_ENGINE=postgres` (or `sqlite`) runs one engine only.
    let only = std::env::var("NEST_BENCH_ENGINE").unwrap_or_default();
    if only != "postgres" {
        let dir = std::env::temp_dir().join(format!("nest-bench-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        bench(
            "SQLite",
            DatabaseUrl::parse(&format!("sqlite://{}/nest.db", dir.display())).unwrap(),
        )
        .await;
        let _ = std::fs::remove_dir_all(&dir);
    }
    if only == "sqlite" {
        return;
    }

    let admin_url = std::env::var("NEST_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned());
    match Database::connect(admin_url.as_str()).await {
        Ok(admin) => {
            let db_name = format!("nest_bench_{name}_{}", std::process::id());
            admin
                .execute_unprepared(&format!("CREATE DATABASE {db_name}"))
                .await
                .unwrap();
            let mut url = url::Url::parse(&admin_url).unwrap();
            url.set_path(&db_name);
            bench("PostgreSQL", DatabaseUrl::parse(url.as_str()).unwrap()).await;
            admin
                .execute_unprepared(&format!("DROP DATABASE {db_name} WITH (FORCE)"))
                .await
                .unwrap();
        }
        Err(e) => println!("PostgreSQL skipped: {e}"),
    }
}
