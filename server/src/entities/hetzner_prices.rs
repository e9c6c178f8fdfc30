//! `hetzner_prices`: Hetzner's monthly price of each server type and of the primary IPv4 per
//! location, as last read from `GET /pricing`.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "hetzner_prices")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    /// A server type (`cx22`) or `primary_ipv4`.
    pub resource: String,
    /// A location (`fsn1`).
    pub location: String,
    /// A month's price net of VAT, in cents.
    pub monthly_net_cents: i64,
    /// ISO code (`EUR`).
    pub currency: String,
    pub fetched_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
