//! Nest's database schema as SeaORM migrations; the same migrations serve SQLite and PostgreSQL.
//!
//! Migrations run at start-up (`nest serve`) and through `nest migrate up|down|status`.

pub use sea_orm_migration::prelude::*;

mod m20261125_000001_initial_schema;
mod m20261125_000002_audit_append_only;
mod m20261126_000003_job_queue;
mod m20261126_000004_login_blocks;
mod m20261126_000005_two_factor;
mod m20261126_000006_health;
mod m20261126_000007_invoice_ledger;
mod m20261126_000008_signups;
mod m20261126_000009_invoice_totals;
mod m20261207_000010_reconcile_findings;
mod m20261207_000011_hetzner_prices;

/// The ordered list of Nest's migrations.
pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261125_000001_initial_schema::Migration),
            Box::new(m20261125_000002_audit_append_only::Migration),
            Box::new(m20261126_000003_job_queue::Migration),
            Box::new(m20261126_000004_login_blocks::Migration),
            Box::new(m20261126_000005_two_factor::Migration),
            Box::new(m20261126_000006_health::Migration),
            Box::new(m20261126_000007_invoice_ledger::Migration),
            Box::new(m20261126_000008_signups::Migration),
            Box::new(m20261126_000009_invoice_totals::Migration),
            Box::new(m20261207_000010_reconcile_findings::Migration),
            Box::new(m20261207_000011_hetzner_prices::Migration),
        ]
    }
}
