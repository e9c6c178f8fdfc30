//! `organizations`: customers, each with one lifecycle state (see `app::models::OrgStatus`).

use app::models::{Email, OrgSlug, OrgStatus, Region};
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "organizations")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub name: String,
    #[sea_orm(unique)]
    pub slug: OrgSlug,
    pub owner_email: Email,
    pub tier_id: i64,
    pub region: Region,
    pub status: OrgStatus,
    /// Why the org got to its current state (e.g. a rejection reason), when known.
    pub status_reason: Option<String>,
    pub status_changed_at: DateTimeUtc,
    #[sea_orm(unique)]
    pub stripe_customer_id: Option<String>,
    #[sea_orm(unique)]
    pub stripe_subscription_id: Option<String>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(
        belongs_to = "super::tiers::Entity",
        from = "Column::TierId",
        to = "super::tiers::Column::Id"
    )]
    Tier,
    #[sea_orm(has_many = "super::vpses::Entity")]
    Vpses,
    #[sea_orm(has_many = "super::jobs::Entity")]
    Jobs,
}

impl Related<super::tiers::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Tier.def()
    }
}

impl Related<super::vpses::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Vpses.def()
    }
}

impl Related<super::jobs::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Jobs.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
