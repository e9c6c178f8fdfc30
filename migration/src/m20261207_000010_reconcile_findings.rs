//! `reconcile_findings`: what the `reconcile` task found when it compared Nest's database with
//! Hetzner and Stripe (an orphan server, a missing one, drift, a subscription that outlived its
//! organization, …). One row per finding and subject while it lasts: each run that sees it again
//! moves `last_seen_at`, and the first run that no longer sees it sets `resolved_at`.

use sea_orm_migration::{prelude::*, schema::*};

use crate::m20261125_000001_initial_schema::{index, ts, ts_null};

#[derive(DeriveMigrationName)]
pub struct Migration;

/// The `reconcile_findings` table.
#[derive(DeriveIden)]
pub enum ReconcileFindings {
    Table,
    Id,
    /// `app::models::FindingKind`.
    Kind,
    /// What it is about: `server:<hetzner id>`, `subscription:<sub_…>`, `organization:<id>`.
    Subject,
    /// The organization it belongs to, when one does (no foreign key: a finding outlives it).
    OrganizationId,
    /// What was expected and what was found (JSON).
    Detail,
    FirstSeenAt,
    LastSeenAt,
    /// Set when a run no longer sees it.
    ResolvedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(ReconcileFindings::Table)
                    .col(big_pk_auto(ReconcileFindings::Id))
                    .col(string_len(ReconcileFindings::Kind, 32))
                    .col(string_len(ReconcileFindings::Subject, 128))
                    .col(big_integer_null(ReconcileFindings::OrganizationId))
                    .col(json(ReconcileFindings::Detail))
                    .col(ts(ReconcileFindings::FirstSeenAt))
                    .col(ts(ReconcileFindings::LastSeenAt))
                    .col(ts_null(ReconcileFindings::ResolvedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(index(
                "idx_reconcile_findings_open",
                ReconcileFindings::Table,
                &["resolved_at", "kind", "subject"],
                false,
            ))
            .await?;
        manager
            .create_index(index(
                "idx_reconcile_findings_organization",
                ReconcileFindings::Table,
                &["organization_id"],
                false,
            ))
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(ReconcileFindings::Table).to_owned())
            .await
    }
}
