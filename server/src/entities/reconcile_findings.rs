//! `reconcile_findings`: what reconciliation found between the database, Hetzner and Stripe,
//! open until a run no longer sees it.

use app::models::FindingKind;
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "reconcile_findings")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub kind: FindingKind,
    /// `server:<hetzner id>`, `subscription:<sub_…>` or `organization:<id>`.
    pub subject: String,
    pub organization_id: Option<i64>,
    /// What was expected and what was found.
    pub detail: Json,
    pub first_seen_at: DateTimeUtc,
    pub last_seen_at: DateTimeUtc,
    pub resolved_at: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
