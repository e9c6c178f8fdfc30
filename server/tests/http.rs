//! The HTTP surface over real sockets: `/healthz`, server-rendered pages, a server function.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::net::SocketAddr;

use sea_orm::DatabaseConnection;
use server::state::App;

/// Serves Nest on an ephemeral loopback port; returns its base URL.
async fn serve(db: &DatabaseConnection) -> String {
    server::install_tls_provider();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr: SocketAddr = listener.local_addr().unwrap();
    let config = support::test_config(&[("NEST_ADDR", &addr.to_string())]);
    let router = server::http::router(App::start(config, db.clone()).await.unwrap());
    tokio::spawn(async move {
        axum::serve(
            listener,
            router.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
        .unwrap();
    });
    format!("http://{addr}")
}

async fn healthz_reports_the_database(db: &DatabaseConnection) {
    let base = serve(db).await;
    let response = reqwest::get(format!("{base}/healthz")).await.unwrap();
    assert_eq!(response.status(), 200);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["status"], "ok");
    assert_eq!(body["database"]["ok"], true);
    let expected = match server::db::kind(db) {
        app::models::DatabaseKind::Sqlite => "sqlite",
        app::models::DatabaseKind::Postgres => "postgres",
    };
    assert_eq!(body["database"]["kind"], expected);
}

async fn the_overview_is_rendered_on_the_server_with_its_hydration_script(db: &DatabaseConnection) {
    let server = support::TestServer::start(db).await;
    let client = support::setup_superadmin(&server, "ops@nest.test").await;
    let response = client
        .http
        .get(format!("{}/", server.base))
        .header("cookie", client.cookie.clone().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let csp = response.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    let html = response.text().await.unwrap();
    let nonce = csp
        .split("'nonce-")
        .nth(1)
        .unwrap()
        .split('\'')
        .next()
        .unwrap();
    assert!(
        html.contains(&format!("nonce=\"{nonce}\"")),
        "hydration scripts carry the CSP nonce"
    );
    assert!(html.contains("<h1>Overview</h1>"), "{html}");
    assert!(html.contains("/pkg/nest.js"), "hydration script is linked");
    assert!(html.contains("/pkg/nest.css"), "stylesheet is linked");
    assert!(
        html.contains("aria-label=\"Main\""),
        "sidebar navigation is present"
    );
}

async fn an_unknown_page_is_a_404_with_a_way_back(db: &DatabaseConnection) {
    let server = support::TestServer::start(db).await;
    let client = support::setup_superadmin(&server, "ops@nest.test").await;
    let response = client
        .http
        .get(format!("{}/no/such/page", server.base))
        .header("cookie", client.cookie.clone().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
    let html = response.text().await.unwrap();
    assert!(html.contains("Page not found"));
    assert!(html.contains("href=\"/\""));
}

async fn the_platform_status_server_function_reports_seeded_data(db: &DatabaseConnection) {
    let server = support::TestServer::start(db).await;
    let mut client = support::setup_superadmin(&server, "ops@nest.test").await;
    let reply = client.call("platform_status", &[]).await;
    assert_eq!(reply.status, 200);
    let status: app::models::PlatformStatus = serde_json::from_value(reply.body).unwrap();
    assert!(status.database_ok);
    assert_eq!((status.tiers, status.regions), (3, 6));
    assert_eq!(status.hetzner, app::models::IntegrationMode::Simulated);
    assert!(status.organizations_by_status.is_empty());
}

on_both_databases!(
    healthz_reports_the_database,
    the_overview_is_rendered_on_the_server_with_its_hydration_script,
    an_unknown_page_is_a_404_with_a_way_back,
    the_platform_status_server_function_reports_seeded_data,
);
