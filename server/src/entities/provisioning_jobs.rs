//! `provisioning_jobs`: the durable job queue (create, resize, delete, redeploy).

use app::models::{JobKind, JobState};
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "provisioning_jobs")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub organization_id: i64,
    pub vps_id: Option<i64>,
    pub kind: JobKind,
    pub state: JobState,
    pub attempts: i32,
    pub max_attempts: i32,
    /// Not claimed before this time (backoff between retries).
    pub run_after: DateTimeUtc,
    /// The worker holding the job while `running`.
    pub lease_owner: Option<String>,
    /// When the lease lapses and another worker may take the job over.
    pub lease_expires_at: Option<DateTimeUtc>,
    /// Progress steps: `[{"step": "...", "at": "...", ...}]`.
    pub progress: Json,
    /// Kind-specific arguments (e.g. the target server type of a resize).
    pub payload: Option<Json>,
    pub last_error: Option<String>,
    pub created_at: DateTimeUtc,
    pub started_at: Option<DateTimeUtc>,
    pub finished_at: Option<DateTimeUtc>,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(
        belongs_to = "super::organizations::Entity",
        from = "Column::OrganizationId",
        to = "super::organizations::Column::Id"
    )]
    Organization,
}

impl Related<super::organizations::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Organization.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
