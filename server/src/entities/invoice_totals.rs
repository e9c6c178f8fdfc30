//! `invoice_totals`: count and sum of invoices per status and currency, kept by database
//! triggers on `invoices` (migration `m20261126_000009`); read-only for the code.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "invoice_totals")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    /// `InvoiceStatus`, as stored in `invoices.status`.
    pub status: String,
    #[sea_orm(primary_key, auto_increment = false)]
    /// ISO 4217, as in `invoices.currency`.
    pub currency: String,
    pub invoices: i64,
    pub amount_cents: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
