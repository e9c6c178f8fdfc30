//! Test support: a fresh database per test, on SQLite and on PostgreSQL.
//!
//! PostgreSQL is at `NEST_TEST_POSTGRES_URL` (default `postgres://postgres@127.0.0.1:5432/postgres`).
//! Each test creates its own database there and drops it afterwards. With `CI=true` an
//! unreachable server fails the test; otherwise the PostgreSQL half is skipped, and says so.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

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

fn ci() -> bool {
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
