//! The invoice ledger: per-month invoice counters (gap-free numbering under concurrent runs),
//! the monthly MRR history of `/billing`'s chart, and what an invoice says it bills
//! (`invoices.description`), with the indexes `/billing` filters and pages on.

use sea_orm_migration::{prelude::*, schema::*};

use crate::m20261125_000001_initial_schema::{Invoices, index, ts};

#[derive(DeriveMigrationName)]
pub struct Migration;

/// `invoice_counters`: the last sequence number given in each billing month. The row is
/// updated in the transaction that inserts the invoices, so numbers are gap-free and unique.
#[derive(DeriveIden)]
pub enum InvoiceCounters {
    Table,
    /// `YYYYMM`.
    Month,
    LastSequence,
    UpdatedAt,
}

/// `billing_mrr_months`: MRR per month and currency, as the daily run last saw it.
#[derive(DeriveIden)]
pub enum BillingMrrMonths {
    Table,
    Id,
    Month,
    Currency,
    MrrCents,
    Organizations,
    UpdatedAt,
}

/// Columns added to `invoices`.
#[derive(DeriveIden)]
pub enum InvoiceLedger {
    Description,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(InvoiceCounters::Table)
                    .col(string_len(InvoiceCounters::Month, 6).primary_key())
                    .col(big_integer(InvoiceCounters::LastSequence))
                    .col(ts(InvoiceCounters::UpdatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(BillingMrrMonths::Table)
                    .col(big_pk_auto(BillingMrrMonths::Id))
                    .col(date(BillingMrrMonths::Month))
                    .col(string_len(BillingMrrMonths::Currency, 3))
                    .col(big_integer(BillingMrrMonths::MrrCents))
                    .col(big_integer(BillingMrrMonths::Organizations))
                    .col(ts(BillingMrrMonths::UpdatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(index(
                "uq_billing_mrr_months_month_currency",
                BillingMrrMonths::Table,
                &["month", "currency"],
                true,
            ))
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Invoices::Table)
                    .add_column(string_len_null(InvoiceLedger::Description, 200))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(index(
                "idx_invoices_period_id",
                Invoices::Table,
                &["period_start", "id"],
                false,
            ))
            .await?;
        manager
            .create_index(index(
                "idx_invoices_status_id",
                Invoices::Table,
                &["status", "id"],
                false,
            ))
            .await?;
        manager
            .create_index(index(
                "idx_invoices_org_id",
                Invoices::Table,
                &["organization_id", "id"],
                false,
            ))
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for name in [
            "idx_invoices_org_id",
            "idx_invoices_status_id",
            "idx_invoices_period_id",
        ] {
            manager
                .drop_index(Index::drop().name(name).table(Invoices::Table).to_owned())
                .await?;
        }
        manager
            .alter_table(
                Table::alter()
                    .table(Invoices::Table)
                    .drop_column(InvoiceLedger::Description)
                    .to_owned(),
            )
            .await?;
        manager
            .drop_table(Table::drop().table(BillingMrrMonths::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(InvoiceCounters::Table).to_owned())
            .await?;
        Ok(())
    }
}
