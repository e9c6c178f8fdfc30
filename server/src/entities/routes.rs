//! `routes`: the routing table pushed to Caddy (`<slug>.<base domain>` → `IPv4:port`).

use app::models::OrgSlug;
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "routes")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    #[sea_orm(unique)]
    pub organization_id: i64,
    #[sea_orm(unique)]
    pub slug: OrgSlug,
    pub upstream_ipv4: String,
    pub upstream_port: i32,
    pub enabled: bool,
    /// When Caddy last confirmed this route (None: not yet pushed).
    pub applied_at: Option<DateTimeUtc>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
