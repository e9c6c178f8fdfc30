//! `invoice_totals`: the count and sum of invoices per status and currency, kept by triggers on
//! `invoices` (insert, delete, and updates of status, currency or amount) on both SQLite and
//! PostgreSQL, in the writing transaction itself, so `/billing`'s figures are one small read
//! whatever the ledger's size and whichever code path wrote the invoice.

use sea_orm_migration::sea_orm::DbBackend;
use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

/// The `invoice_totals` table.
#[derive(DeriveIden)]
pub enum InvoiceTotals {
    Table,
    /// `InvoiceStatus` as stored in `invoices.status`.
    Status,
    /// ISO 4217, as in `invoices.currency`.
    Currency,
    /// How many invoices.
    Invoices,
    /// Their amounts' sum, in minor units.
    AmountCents,
}

/// Subtracts the old row from its totals.
const SUBTRACT_OLD: &str = "UPDATE invoice_totals SET invoices = invoices - 1, \
     amount_cents = amount_cents - OLD.amount_cents \
     WHERE status = OLD.status AND currency = OLD.currency;";

/// Adds the new row to its totals.
const ADD_NEW: &str = "INSERT INTO invoice_totals (status, currency, invoices, amount_cents) \
     VALUES (NEW.status, NEW.currency, 1, NEW.amount_cents) \
     ON CONFLICT (status, currency) DO UPDATE SET invoices = invoice_totals.invoices + 1, \
     amount_cents = invoice_totals.amount_cents + excluded.amount_cents;";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(InvoiceTotals::Table)
                    .col(string_len(InvoiceTotals::Status, 16))
                    .col(string_len(InvoiceTotals::Currency, 3))
                    .col(big_integer(InvoiceTotals::Invoices))
                    .col(big_integer(InvoiceTotals::AmountCents))
                    .primary_key(
                        Index::create()
                            .col(InvoiceTotals::Status)
                            .col(InvoiceTotals::Currency),
                    )
                    .to_owned(),
            )
            .await?;
        let db = manager.get_connection();
        db.execute_unprepared(
            "INSERT INTO invoice_totals (status, currency, invoices, amount_cents) \
             SELECT status, currency, COUNT(*), CAST(SUM(amount_cents) AS BIGINT) \
             FROM invoices GROUP BY status, currency",
        )
        .await?;
        match manager.get_database_backend() {
            DbBackend::Postgres => {
                db.execute_unprepared(&format!(
                    "CREATE FUNCTION invoice_totals_track() RETURNS trigger LANGUAGE plpgsql AS $$ \
                     BEGIN \
                     IF TG_OP IN ('UPDATE', 'DELETE') THEN {SUBTRACT_OLD} END IF; \
                     IF TG_OP IN ('INSERT', 'UPDATE') THEN {ADD_NEW} END IF; \
                     RETURN NULL; \
                     END $$"
                ))
                .await?;
                db.execute_unprepared(
                    "CREATE TRIGGER invoice_totals_track \
                     AFTER INSERT OR DELETE OR UPDATE OF status, currency, amount_cents ON invoices \
                     FOR EACH ROW EXECUTE FUNCTION invoice_totals_track()",
                )
                .await?;
            }
            _ => {
                db.execute_unprepared(&format!(
                    "CREATE TRIGGER invoice_totals_insert AFTER INSERT ON invoices \
                     BEGIN {ADD_NEW} END"
                ))
                .await?;
                db.execute_unprepared(&format!(
                    "CREATE TRIGGER invoice_totals_delete AFTER DELETE ON invoices \
                     BEGIN {SUBTRACT_OLD} END"
                ))
                .await?;
                db.execute_unprepared(&format!(
                    "CREATE TRIGGER invoice_totals_update \
                     AFTER UPDATE OF status, currency, amount_cents ON invoices \
                     BEGIN {SUBTRACT_OLD} {ADD_NEW} END"
                ))
                .await?;
            }
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        match manager.get_database_backend() {
            DbBackend::Postgres => {
                db.execute_unprepared("DROP TRIGGER IF EXISTS invoice_totals_track ON invoices")
                    .await?;
                db.execute_unprepared("DROP FUNCTION IF EXISTS invoice_totals_track()")
                    .await?;
            }
            _ => {
                for name in ["insert", "delete", "update"] {
                    db.execute_unprepared(&format!("DROP TRIGGER IF EXISTS invoice_totals_{name}"))
                        .await?;
                }
            }
        }
        manager
            .drop_table(Table::drop().table(InvoiceTotals::Table).to_owned())
            .await?;
        Ok(())
    }
}
