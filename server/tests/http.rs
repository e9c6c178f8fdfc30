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
    assert!(
        html.contains("/pkg/nest/nest.js"),
        "the dashboard's bundle is linked"
    );
    assert!(html.contains("/pkg/nest/nest_bg.wasm"), "{html}");
    assert!(!html.contains("nest-public"), "{html}");
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
    assert!(
        html.contains("/pkg/nest/nest.js"),
        "the dashboard hydrates it: {html}"
    );
}

/// The public pages link the public bundle, which holds only them; the dashboard's pages link
/// the dashboard's. Each bundle's routes are exactly its pages.
#[tokio::test]
async fn public_pages_load_the_public_bundle_and_each_bundle_routes_its_own_pages() {
    let t = support::TestDb::migrated(support::Engine::Sqlite)
        .await
        .unwrap();
    let server = support::TestServer::start(&t.db).await;
    for path in ["/setup", "/signup"] {
        let response = reqwest::get(format!("{}{path}", server.base))
            .await
            .unwrap();
        let status = response.status();
        let html = response.text().await.unwrap();
        assert_eq!(status, 200, "{path}: {html}");
        assert!(
            html.contains("/pkg/nest-public/nest-public.js"),
            "{path}: {html}"
        );
        assert!(
            html.contains("/pkg/nest-public/nest-public_bg.wasm"),
            "{path}: {html}"
        );
        assert!(!html.contains("/pkg/nest/"), "{path}: {html}");
        assert!(
            !html.contains("aria-label=\"Main\""),
            "no dashboard navigation: {html}"
        );
    }
    let paths = |routes: Vec<leptos_axum::AxumRouteListing>| {
        let mut paths: Vec<String> = routes.iter().map(|r| r.path().to_owned()).collect();
        paths.sort();
        paths
    };
    let public = paths(leptos_axum::generate_route_list(app::PublicApp));
    let mut expected: Vec<String> = app::bundle::PUBLIC_PAGES
        .iter()
        .map(|p| (*p).to_owned())
        .collect();
    expected.sort();
    assert_eq!(public, expected);
    for path in paths(leptos_axum::generate_route_list(app::AdminApp)) {
        assert_eq!(
            app::bundle::Bundle::of(&path),
            app::bundle::Bundle::Admin,
            "{path}"
        );
    }
    t.cleanup().await;
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

/// The bundle at its versioned URL is cached for a year and sent precompressed when the build
/// left a `.br`; pages and the unversioned `/pkg/` URLs are revalidated; an old version is a 404.
#[tokio::test]
async fn the_bundle_is_immutable_at_its_versioned_url_and_pages_are_never_cached() {
    let site = std::env::temp_dir().join(format!("nest-site-{}", server::clock::random_hex(6)));
    std::fs::create_dir_all(site.join("pkg")).unwrap();
    for file in server::http::assets::BUNDLE {
        let body = match file {
            "nest.css" => "body { margin: 0 }",
            f if f.ends_with(".wasm") => "\0asm",
            _ => "export default function init() {}",
        };
        let path = site.join("pkg").join(file);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, body).unwrap();
    }
    std::fs::write(site.join("pkg/nest/nest.js.br"), b"precompressed").unwrap();
    // The login page's lazy route: its pack, besides the main module.
    std::fs::write(
        site.join("pkg/nest-public/__wasm_split_manifest.json"),
        r#"{"login_page": ["login_page.pack"], "setup_page": ["setup_page.pack"]}"#,
    )
    .unwrap();
    for file in ["__wasm_split.js", "login_page.pack", "setup_page.pack"] {
        std::fs::write(site.join("pkg/nest-public").join(file), "lazy").unwrap();
    }
    let t = support::TestDb::migrated(support::Engine::Sqlite)
        .await
        .unwrap();
    let server = support::TestServer::start_with(
        &t.db,
        server::clock::Clock::system(),
        &[("LEPTOS_SITE_ROOT", site.to_str().unwrap())],
    )
    .await;
    // Built without reqwest's decompression: bodies arrive as sent.
    let http = reqwest::Client::new();
    let page = http
        .get(format!("{}/login", server.base))
        .send()
        .await
        .unwrap();
    assert_eq!(page.headers()["cache-control"], "private, no-cache");
    let html = page.text().await.unwrap();
    let version = server::http::assets::version(&site).unwrap();
    let root = server::http::assets::root(&version);
    assert!(
        html.contains(&format!("{root}/pkg/nest-public/nest-public.js")),
        "{html}"
    );
    assert!(html.contains(&format!("{root}/pkg/nest.css")), "{html}");
    // The page's lazy route: its files are preloaded, with the script that instantiates them,
    // and no other route's.
    let links: Vec<&str> = html
        .split("<link")
        .skip(1)
        .filter_map(|l| l.split('>').next())
        .collect();
    let linked = |rel: &str, href: &str| {
        links.iter().any(|l| {
            l.contains(&format!(r#"rel="{rel}""#)) && l.contains(&format!(r#"href="{href}""#))
        })
    };
    assert!(
        linked(
            "preload",
            &format!("{root}/pkg/nest-public/login_page.pack")
        ),
        "{html}"
    );
    assert!(
        linked(
            "modulepreload",
            &format!("{root}/pkg/nest-public/__wasm_split.js")
        ),
        "{html}"
    );
    assert!(!html.contains("setup_page.pack"), "{html}");
    let lazy = http
        .get(format!(
            "{}{root}/pkg/nest-public/login_page.pack",
            server.base
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(lazy.status(), 200);
    assert_eq!(
        lazy.headers()["cache-control"],
        server::http::assets::IMMUTABLE
    );

    let js = http
        .get(format!("{}{root}/pkg/nest/nest.js", server.base))
        .header("accept-encoding", "br, gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(js.status(), 200);
    assert_eq!(
        js.headers()["cache-control"],
        server::http::assets::IMMUTABLE
    );
    assert_eq!(js.headers()["content-encoding"], "br");
    assert_eq!(js.bytes().await.unwrap().as_ref(), b"precompressed");
    let css = http
        .get(format!("{}{root}/pkg/nest.css", server.base))
        .send()
        .await
        .unwrap();
    assert_eq!(
        css.headers()["cache-control"],
        server::http::assets::IMMUTABLE
    );
    assert_eq!(css.text().await.unwrap(), "body { margin: 0 }");

    let old = http
        .get(format!(
            "{}/assets/0123456789abcdef/pkg/nest/nest.js",
            server.base
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(old.status(), 404);
    let missing = http
        .get(format!("{}{root}/pkg/other.js", server.base))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
    assert!(
        missing
            .headers()
            .get("cache-control")
            .is_none_or(|v| v != server::http::assets::IMMUTABLE)
    );
    let plain = http
        .get(format!("{}/pkg/nest/nest.js", server.base))
        .send()
        .await
        .unwrap();
    assert_eq!(plain.status(), 200);
    assert_eq!(plain.headers()["cache-control"], "private, no-cache");
    t.cleanup().await;
    std::fs::remove_dir_all(&site).unwrap();
}

on_both_databases!(
    healthz_reports_the_database,
    the_overview_is_rendered_on_the_server_with_its_hydration_script,
    an_unknown_page_is_a_404_with_a_way_back,
    the_platform_status_server_function_reports_seeded_data,
);
