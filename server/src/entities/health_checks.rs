//! `health_checks`: one row per check of one VPS (Convex, Web, MTA).

use app::models::HealthStatus;
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "health_checks")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub vps_id: i64,
    pub organization_id: i64,
    pub checked_at: DateTimeUtc,
    pub status: HealthStatus,
    pub convex_up: bool,
    pub web_up: bool,
    pub mta_up: bool,
    /// Failed checks in a row, this one included (0 when healthy).
    pub consecutive_failures: i32,
    /// How long the whole probe of this server took.
    pub duration_ms: i32,
    /// Response time per service (`None` when it did not answer).
    pub convex_ms: Option<i32>,
    pub web_ms: Option<i32>,
    pub mta_ms: Option<i32>,
    pub error: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
