//! `billing_mrr_months`: MRR per month and currency as the daily invoice run last saw it (the
//! history behind `/billing`'s chart).

use app::models::Currency;
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "billing_mrr_months")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub month: Date,
    pub currency: Currency,
    pub mrr_cents: i64,
    pub organizations: i64,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
