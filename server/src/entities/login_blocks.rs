//! `login_blocks`: refused sign-in attempts counted per account, address and lockout window.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "login_blocks")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    /// The email as typed (lower-cased).
    pub email: String,
    /// The client's rate-limit address (an IPv6 client's /64); empty when unknown.
    pub address: String,
    /// Start of the window (windows are consecutive slots of the lockout length).
    pub window_start: DateTimeUtc,
    /// Attempts refused in the window.
    pub blocked_count: i64,
    pub last_user_agent: Option<String>,
    pub first_at: DateTimeUtc,
    pub last_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
