//! Test support: a fresh database per test, on SQLite and on PostgreSQL.
//!
//! PostgreSQL is at `NEST_TEST_POSTGRES_URL` (default `postgres://postgres@127.0.0.1:5432/postgres`).
//! Each test creates its own database there and drops it afterwards. With `CI=true` an
//! unreachable server fails the test; otherwise the PostgreSQL half is skipped, and says so.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

pub mod python;

use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};

use sea_orm::{ConnectionTrait, Database, DatabaseConnection};
use server::config::DatabaseUrl;

static COUNTER: AtomicU32 = AtomicU32::new(0);

fn unique_name(prefix: &str) -> String {
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("{prefix}_{}_{n}_{nanos}", std::process::id())
}

/// Which engine a test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    Sqlite,
    Postgres,
}

/// A fresh, empty database (no migrations applied) that is removed by [`TestDb::cleanup`].
pub struct TestDb {
    pub url: DatabaseUrl,
    pub db: DatabaseConnection,
    cleanup: Cleanup,
}

enum Cleanup {
    File(PathBuf),
    Postgres { admin_url: String, name: String },
}

fn postgres_admin_url() -> String {
    std::env::var("NEST_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

/// Whether this is CI (`CI=true` or `1`): missing services fail tests instead of skipping them.
pub fn ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

impl TestDb {
    /// A fresh database on `engine`, or `None` when PostgreSQL is unreachable outside CI.
    pub async fn new(engine: Engine) -> Option<Self> {
        match engine {
            Engine::Sqlite => Some(Self::sqlite().await),
            Engine::Postgres => Self::postgres().await,
        }
    }

    /// A SQLite file in the system's temporary directory.
    pub async fn sqlite() -> Self {
        let dir = std::env::temp_dir().join("nest-tests");
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(format!("{}.db", unique_name("nest")));
        let url = DatabaseUrl::parse(&format!("sqlite://{}", path.display())).unwrap();
        let db = server::db::connect(&url).await.unwrap();
        Self {
            url,
            db,
            cleanup: Cleanup::File(path),
        }
    }

    /// A new database on the PostgreSQL server.
    pub async fn postgres() -> Option<Self> {
        let admin_url = postgres_admin_url();
        let admin = match Database::connect(admin_url.as_str()).await {
            Ok(admin) => admin,
            Err(e) if !ci() => {
                eprintln!(
                    "SKIPPED: PostgreSQL is not reachable at {admin_url} ({e}); set CI=true to make this fatal"
                );
                return None;
            }
            Err(e) => panic!("CI=true but PostgreSQL is not reachable at {admin_url}: {e}"),
        };
        let name = unique_name("nest_test");
        admin
            .execute_unprepared(&format!("CREATE DATABASE {name}"))
            .await
            .unwrap();
        admin.close().await.unwrap();
        let mut url = url::Url::parse(&admin_url).unwrap();
        url.set_path(&name);
        let url = DatabaseUrl::parse(url.as_str()).unwrap();
        let db = server::db::connect(&url).await.unwrap();
        Some(Self {
            url,
            db,
            cleanup: Cleanup::Postgres { admin_url, name },
        })
    }

    /// A fresh database with every migration applied and the reference data seeded.
    pub async fn migrated(engine: Engine) -> Option<Self> {
        let t = Self::new(engine).await?;
        server::db::migrate_up(&t.db).await.unwrap();
        server::seed::ensure_reference_data(&t.db, &Default::default())
            .await
            .unwrap();
        Some(t)
    }

    /// Closes the connection and removes the database.
    pub async fn cleanup(self) {
        self.db.close().await.unwrap();
        match self.cleanup {
            Cleanup::File(path) => {
                for suffix in ["", "-wal", "-shm"] {
                    let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
                }
            }
            Cleanup::Postgres { admin_url, name } => {
                let admin = Database::connect(admin_url.as_str()).await.unwrap();
                admin
                    .execute_unprepared(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .await
                    .unwrap();
                admin.close().await.unwrap();
            }
        }
    }
}

/// Declares `#[tokio::test]`s named `<name>_on_sqlite` and `<name>_on_postgres` that run
/// `async fn name(db: &DatabaseConnection)` on a fresh, migrated database of each engine.
#[macro_export]
macro_rules! on_both_databases {
    ($($name:ident),+ $(,)?) => {
        $(
            ::paste::paste! {
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn [<$name _on_sqlite>]() {
                    let t = $crate::support::TestDb::migrated($crate::support::Engine::Sqlite).await.unwrap();
                    $name(&t.db).await;
                    t.cleanup().await;
                }

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn [<$name _on_postgres>]() {
                    let Some(t) = $crate::support::TestDb::migrated($crate::support::Engine::Postgres).await else {
                        return;
                    };
                    $name(&t.db).await;
                    t.cleanup().await;
                }
            }
        )+
    };
}

/// A running Nest on an ephemeral loopback port, with a clock the test controls.
pub struct TestServer {
    pub base: String,
    pub clock: server::clock::Clock,
    pub app: server::state::App,
}

impl TestServer {
    /// Serves `db` (already migrated) with the default configuration.
    pub async fn start(db: &DatabaseConnection) -> Self {
        Self::start_with_clock(db, server::clock::Clock::system()).await
    }

    /// Serves `db` with the given clock (share one clock to simulate a restart).
    pub async fn start_with_clock(db: &DatabaseConnection, clock: server::clock::Clock) -> Self {
        Self::start_with(db, clock, &[]).await
    }

    /// Serves `db` with the given clock and extra configuration variables.
    pub async fn start_with(
        db: &DatabaseConnection,
        clock: server::clock::Clock,
        vars: &[(&str, &str)],
    ) -> Self {
        server::install_tls_provider();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let addr_text = addr.to_string();
        let mut all = vec![("NEST_ADDR", addr_text.as_str())];
        all.extend_from_slice(vars);
        let config = test_config(&all);
        let app = server::state::App::start_with_clock(config, db.clone(), clock.clone())
            .await
            .unwrap();
        let router = server::http::router(app.clone());
        tokio::spawn(async move {
            axum::serve(
                listener,
                router.into_make_service_with_connect_info::<std::net::SocketAddr>(),
            )
            .await
            .unwrap();
        });
        Self {
            base: format!("http://{addr}"),
            clock,
            app,
        }
    }

    /// A browser-like client with its own cookie jar.
    pub fn client(&self) -> Client {
        Client {
            base: self.base.clone(),
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            cookie: None,
        }
    }
}

/// A client that keeps the session cookie (handled by hand, like a browser would).
pub struct Client {
    pub base: String,
    pub http: reqwest::Client,
    pub cookie: Option<String>,
}

/// What a server function answered.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub body: serde_json::Value,
}

impl Reply {
    /// The `AppError` the server function returned, if it failed.
    pub fn error(&self) -> Option<app::error::AppError> {
        (self.status >= 400).then(|| serde_json::from_value(self.body.clone()).unwrap())
    }
}

impl Client {
    fn remember(&mut self, response: &reqwest::Response) {
        for value in response.headers().get_all("set-cookie") {
            let pair = value
                .to_str()
                .unwrap()
                .split(';')
                .next()
                .unwrap()
                .to_owned();
            if pair.ends_with('=') || value.to_str().unwrap().contains("Max-Age=0") {
                self.cookie = None;
            } else {
                self.cookie = Some(pair);
            }
        }
    }

    /// Sends `request` with this client's session cookie, and keeps the one it gets back.
    async fn send(&mut self, mut request: reqwest::RequestBuilder) -> reqwest::Response {
        if let Some(cookie) = &self.cookie {
            request = request.header("cookie", cookie);
        }
        let response = request.send().await.unwrap();
        self.remember(&response);
        response
    }

    /// Calls the server function at `/api/<name>` with form-encoded arguments.
    pub async fn call(&mut self, name: &str, args: &[(&str, &str)]) -> Reply {
        let body: String = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(args)
            .finish();
        let request = self
            .http
            .post(format!("{}/api/{name}", self.base))
            .header("content-type", "application/x-www-form-urlencoded")
            .header("accept", "application/json")
            .body(body);
        let response = self.send(request).await;
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        let body = serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text));
        Reply { status, body }
    }

    /// Posts a form to `/api/<name>` as a browser does before hydration or without JavaScript
    /// (asking for HTML, from the page `from`); returns the status and where it redirects.
    pub async fn post_form(
        &mut self,
        from: &str,
        name: &str,
        args: &[(&str, &str)],
    ) -> (u16, Option<String>) {
        let body: String = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(args)
            .finish();
        let request = self
            .http
            .post(format!("{}/api/{name}", self.base))
            .header("content-type", "application/x-www-form-urlencoded")
            .header("accept", "text/html,application/xhtml+xml")
            .header("origin", &self.base)
            .header("referer", format!("{}{from}", self.base))
            .body(body);
        let response = self.send(request).await;
        let location = response
            .headers()
            .get("location")
            .map(|v| v.to_str().unwrap().to_owned());
        (response.status().as_u16(), location)
    }

    /// GETs a page as a browser would (asking for HTML); returns the status and the body.
    pub async fn page(&mut self, path: &str) -> (u16, String) {
        let request = self
            .http
            .get(format!("{}{path}", self.base))
            .header("accept", "text/html");
        let response = self.send(request).await;
        let status = response.status().as_u16();
        (status, response.text().await.unwrap())
    }

    /// GETs a page; returns the status and the `Location` header.
    pub async fn get(&mut self, path: &str) -> (u16, Option<String>) {
        let response = self
            .send(self.http.get(format!("{}{path}", self.base)))
            .await;
        let location = response
            .headers()
            .get("location")
            .map(|v| v.to_str().unwrap().to_owned());
        (response.status().as_u16(), location)
    }
}

/// The password every test admin uses.
pub const PASSWORD: &str = "correct horse battery 9";

/// Creates the first superadmin through `/setup`; returns their logged-in client.
pub async fn setup_superadmin(server: &TestServer, email: &str) -> Client {
    let mut client = server.client();
    let reply = client
        .call(
            "setup",
            &[
                ("email", email),
                ("password", PASSWORD),
                ("confirm", PASSWORD),
            ],
        )
        .await;
    assert_eq!(reply.status, 200, "setup failed: {reply:?}");
    client
}

/// Adds `email` as an admin with the typed password [`PASSWORD`] (as `client`, a superadmin);
/// returns the reply, which must be a success.
pub async fn add_admin(client: &mut Client, email: &str) -> Reply {
    let added = client
        .call(
            "add_admin",
            &[
                ("email", email),
                ("role", "admin"),
                ("initial", "Typed"),
                ("password", PASSWORD),
            ],
        )
        .await;
    assert_eq!(added.status, 200, "{added:?}");
    added
}

/// Logs `email` in on a fresh client.
pub async fn login(server: &TestServer, email: &str, password: &str) -> (Client, Reply) {
    let mut client = server.client();
    let reply = client
        .call("login", &[("email", email), ("password", password)])
        .await;
    (client, reply)
}

/// A test key for VPS secrets (never used outside tests).
pub const TEST_SECRETS_KEY: &str =
    "5e1f0c2a9b8d7e6f5a4b3c2d1e0f9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c4d3e2f";

/// A loopback address no other test is likely to use for its simulated servers.
pub fn random_first_ip() -> String {
    let mut b = [0u8; 2];
    getrandom::fill(&mut b).unwrap();
    format!("127.{}.{}.2", 1 + b[0] % 250, b[1])
}

/// The configuration tests run with: an explicit secrets key (no key file), a simulator with
/// no delays on its own loopback range, plus `vars`.
pub fn test_config(vars: &[(&str, &str)]) -> server::config::Config {
    let first_ip = random_first_ip();
    let mut all: std::collections::HashMap<String, String> = [
        ("NEST_SECRETS_KEY", TEST_SECRETS_KEY),
        ("NEST_SIM_BOOT_DELAY_MS", "0"),
        ("NEST_SIM_ACTION_DELAY_MS", "0"),
        ("NEST_SIM_FIRST_IP", first_ip.as_str()),
        ("NEST_SMOKE_TIMEOUT_SECS", "10"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    for (k, v) in vars {
        all.insert((*k).to_owned(), (*v).to_owned());
    }
    server::config::Config::from_lookup(|name| all.get(name).cloned()).unwrap()
}

/// An actor for audit rows written by tests acting as an admin.
pub fn test_actor() -> server::audit::Actor {
    server::audit::Actor {
        user_id: None,
        email: "ops@nest.test".into(),
        ip: Some("127.0.0.1".into()),
        user_agent: None,
    }
}

/// Creates a `pending` organization `slug` on the Starter tier in nbg1, with its `create` job.
pub async fn create_org(
    app: &server::state::App,
    slug: &str,
) -> server::entities::organizations::Model {
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
    use server::entities::tiers;
    let starter = tiers::Entity::find()
        .filter(tiers::Column::Code.eq("starter"))
        .one(&app.db)
        .await
        .unwrap()
        .unwrap();
    app.organizations()
        .create(
            &test_actor(),
            server::organizations::NewOrganization {
                name: format!("Org {slug}"),
                slug: slug.into(),
                owner_email: format!("owner@{slug}.test"),
                tier_id: starter.id,
                region: "nbg1".into(),
            },
            true,
        )
        .await
        .unwrap()
}
