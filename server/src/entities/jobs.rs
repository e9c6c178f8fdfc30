//! `jobs`: the durable, domain-free job queue (see `crate::jobs`).

use app::models::{JobKind, JobPayload, JobProgress, JobState};
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "jobs")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    /// Derived from the payload, for filters.
    pub kind: JobKind,
    /// At most one unfinished job per key runs, in id order (`org:<id>` for provisioning).
    pub queue_key: Option<String>,
    /// Makes an enqueue idempotent (`session_purge:<slot>`); unique when set.
    pub unique_key: Option<String>,
    /// The organization of a provisioning job (derived from the payload).
    pub organization_id: Option<i64>,
    pub state: JobState,
    pub attempts: i32,
    pub max_attempts: i32,
    /// Not claimed before this time (backoff between retries).
    pub run_after: DateTimeUtc,
    /// The worker holding the job while `running`.
    pub lease_owner: Option<String>,
    /// Random per claim; renewal and completion are conditional on it.
    pub lease_token: Option<String>,
    /// When the lease lapses and another worker may take the job over.
    pub lease_expires_at: Option<DateTimeUtc>,
    /// The steps as the worker recorded them.
    #[sea_orm(column_type = "Json")]
    pub progress: JobProgress,
    /// What to do, with its arguments.
    #[sea_orm(column_type = "Json")]
    pub payload: JobPayload,
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
