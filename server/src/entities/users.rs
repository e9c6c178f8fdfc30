//! `users`: people who can log in (platform admins are users with a `platform_admins` row).

use app::models::Email;
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "users")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    #[sea_orm(unique)]
    pub email: Email,
    /// argon2id PHC string; `None` until the user sets a password through a one-time link.
    pub password_hash: Option<String>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
    pub last_login_at: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(has_one = "super::platform_admins::Entity")]
    PlatformAdmin,
}

impl Related<super::platform_admins::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::PlatformAdmin.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
