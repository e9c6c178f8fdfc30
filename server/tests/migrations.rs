//! Migrations go up, down and up again on a fresh SQLite and PostgreSQL database.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, Statement};
use support::{Engine, TestDb};

/// Every table of the data model.
const TABLES: &[&str] = &[
    "audit_log",
    "billing_mrr_months",
    "health_alerts",
    "health_checks",
    "health_fleet_alerts",
    "health_incidents",
    "health_rollups",
    "hetzner_prices",
    "invoice_counters",
    "invoice_totals",
    "invoices",
    "jobs",
    "login_attempts",
    "login_blocks",
    "organizations",
    "platform_admins",
    "reconcile_findings",
    "recovery_codes",
    "regions",
    "routes",
    "sessions",
    "settings",
    "signups",
    "stripe_events",
    "tiers",
    "totp_factors",
    "user_tokens",
    "users",
    "vps_health",
    "vpses",
];

async fn tables(db: &DatabaseConnection) -> Vec<String> {
    let sql = match db.get_database_backend() {
        DbBackend::Postgres => {
            "SELECT table_name AS name FROM information_schema.tables WHERE table_schema = 'public' ORDER BY 1"
        }
        _ => {
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY 1"
        }
    };
    let rows = db
        .query_all_raw(Statement::from_string(db.get_database_backend(), sql))
        .await
        .unwrap();
    rows.iter()
        .map(|r| r.try_get::<String>("", "name").unwrap())
        .filter(|n| n != "seaql_migrations")
        .collect()
}

async fn up_down_up(engine: Engine) {
    let Some(t) = TestDb::new(engine).await else {
        return;
    };
    assert!(
        tables(&t.db).await.is_empty(),
        "a fresh database has no tables"
    );

    server::db::migrate_up(&t.db).await.unwrap();
    assert_eq!(tables(&t.db).await, TABLES);
    let (applied, pending) = server::db::migration_status(&t.db).await.unwrap();
    assert!(!applied.is_empty() && pending.is_empty());

    server::db::migrate_down(&t.db, None).await.unwrap();
    assert!(tables(&t.db).await.is_empty(), "down removes every table");
    let (applied, pending) = server::db::migration_status(&t.db).await.unwrap();
    assert!(applied.is_empty() && !pending.is_empty());

    server::db::migrate_up(&t.db).await.unwrap();
    assert_eq!(tables(&t.db).await, TABLES);
    // Applying again is a no-op.
    server::db::migrate_up(&t.db).await.unwrap();
    t.cleanup().await;
}

#[tokio::test]
async fn migrations_go_up_down_and_up_again_on_sqlite() {
    up_down_up(Engine::Sqlite).await;
}

#[tokio::test]
async fn migrations_go_up_down_and_up_again_on_postgres() {
    up_down_up(Engine::Postgres).await;
}
