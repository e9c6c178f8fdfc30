//! `health_rollups`: one row per server and hour — checks, failures per service, latency
//! percentiles — kept long after the raw checks are pruned.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "health_rollups")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub vps_id: i64,
    pub organization_id: i64,
    /// The start of the hour.
    pub hour: DateTimeUtc,
    pub checks: i32,
    /// Checks whose status was not `healthy`.
    pub failures: i32,
    pub convex_failures: i32,
    pub web_failures: i32,
    pub mta_failures: i32,
    pub convex_p50_ms: Option<i32>,
    pub convex_p95_ms: Option<i32>,
    pub web_p50_ms: Option<i32>,
    pub web_p95_ms: Option<i32>,
    pub mta_p50_ms: Option<i32>,
    pub mta_p95_ms: Option<i32>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
