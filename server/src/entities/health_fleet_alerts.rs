//! `health_fleet_alerts`: sweeps in which the fleet breaker held every reboot, and why.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "health_fleet_alerts")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub created_at: DateTimeUtc,
    /// `breaker` (too many servers failing) or `checker_offline` (nothing answered at all).
    pub reason: String,
    /// Servers checked in the sweep.
    pub checked: i32,
    /// Servers failing in the sweep.
    pub failing: i32,
    #[sea_orm(column_type = "Text")]
    pub message: String,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
