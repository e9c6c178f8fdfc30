//! `health_alerts`: alerts raised for admins (unhealthy, auto reboot, reboot failed, recovered).

use app::models::AlertKind;
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "health_alerts")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub vps_id: i64,
    pub organization_id: i64,
    pub kind: AlertKind,
    #[sea_orm(column_type = "Text")]
    pub message: String,
    pub created_at: DateTimeUtc,
    pub resolved_at: Option<DateTimeUtc>,
    pub acknowledged_by_user_id: Option<i64>,
    /// The incident it belongs to.
    pub incident_id: Option<i64>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
