//! `invoices`: monthly invoices, numbered `INV-YYYYMM-XXXX`, one per organization and period.

use app::models::{Currency, InvoiceNumber, InvoiceStatus};
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "invoices")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub organization_id: i64,
    #[sea_orm(unique)]
    pub number: InvoiceNumber,
    pub period_start: Date,
    pub period_end: Date,
    pub amount_cents: i64,
    pub currency: Currency,
    pub status: InvoiceStatus,
    pub due_date: Date,
    pub paid_at: Option<DateTimeUtc>,
    #[sea_orm(unique)]
    pub stripe_invoice_id: Option<String>,
    /// What is billed (the tier at the time), added by the invoice-ledger migration.
    pub description: Option<String>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(
        belongs_to = "super::organizations::Entity",
        from = "Column::OrganizationId",
        to = "super::organizations::Column::Id"
    )]
    Organization,
}

impl Related<super::organizations::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Organization.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
