//! `health_incidents`: one per failure episode of a server that reached the alert threshold;
//! groups its alerts, and is acknowledged or silenced by admins.

use app::models::HealthStatus;
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "health_incidents")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub vps_id: i64,
    pub organization_id: i64,
    pub opened_at: DateTimeUtc,
    /// When the server was healthy again.
    pub closed_at: Option<DateTimeUtc>,
    /// The status of the latest sweep while open.
    pub last_status: HealthStatus,
    /// Automatic reboots queued during the incident.
    pub reboots: i32,
    pub acknowledged_at: Option<DateTimeUtc>,
    pub acknowledged_by_user_id: Option<i64>,
    pub ack_note: Option<String>,
    /// No notifications for its alerts before this time.
    pub silenced_until: Option<DateTimeUtc>,
    pub silenced_by_user_id: Option<i64>,
    pub silence_note: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
