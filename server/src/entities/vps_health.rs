//! `vps_health`: each server's latest health verdict and what the alert rules remember
//! (upserted by every sweep; see `health::sweep`).

use app::models::HealthStatus;
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "vps_health")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub vps_id: i64,
    pub organization_id: i64,
    pub status: HealthStatus,
    pub checked_at: DateTimeUtc,
    /// Failed sweeps in a row (0 when healthy).
    pub failures: i32,
    pub convex_up: bool,
    pub web_up: bool,
    pub mta_up: bool,
    /// Response times of the latest probe (`None` when the service did not answer).
    pub convex_ms: Option<i32>,
    pub web_ms: Option<i32>,
    pub mta_ms: Option<i32>,
    /// The open incident, if any.
    pub incident_id: Option<i64>,
    /// The last automatic reboot (for the cooldown).
    pub last_reboot_at: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
