//! One domain-free job queue: `jobs` replaces `provisioning_jobs`.
//!
//! A job's organization becomes optional (Nest's own periodic tasks have none); the typed
//! payload (`{"kind": …, …}`) carries the arguments; `queue_key` serializes jobs that must not
//! overlap (an organization's provisioning jobs share `org:<id>`); `unique_key` makes an enqueue
//! idempotent (the scheduler's `session_purge:<slot>`); `lease_token` is written by each claim,
//! and renewal and completion are conditional on it. Existing rows are copied over with their
//! ids, and `down` copies the provisioning jobs back.

use sea_orm_migration::sea_orm::DbBackend;
use sea_orm_migration::{prelude::*, schema::*};

use crate::m20261125_000001_initial_schema::{
    Organizations, ProvisioningJobs, Vpses, fk, index, ts, ts_null,
};

#[derive(DeriveMigrationName)]
pub struct Migration;

/// The `jobs` table.
#[derive(DeriveIden)]
pub enum Jobs {
    Table,
    Id,
    Kind,
    QueueKey,
    UniqueKey,
    OrganizationId,
    State,
    Attempts,
    MaxAttempts,
    RunAfter,
    LeaseOwner,
    LeaseToken,
    LeaseExpiresAt,
    Progress,
    Payload,
    LastError,
    CreatedAt,
    StartedAt,
    FinishedAt,
    UpdatedAt,
}

/// Columns both tables share, in copy order.
const SHARED: &str = "id, organization_id, kind, state, attempts, max_attempts, run_after, \
    lease_owner, lease_expires_at, progress, last_error, created_at, started_at, finished_at, \
    updated_at";

/// Moves PostgreSQL's id sequence of `table` past the copied ids.
async fn bump_sequence(manager: &SchemaManager<'_>, table: &str) -> Result<(), DbErr> {
    if manager.get_database_backend() == DbBackend::Postgres {
        manager
            .get_connection()
            .execute_unprepared(&format!(
                "SELECT setval(pg_get_serial_sequence('{table}', 'id'), \
                 COALESCE((SELECT MAX(id) FROM {table}), 0) + 1, false)"
            ))
            .await?;
    }
    Ok(())
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Jobs::Table)
                    .col(big_pk_auto(Jobs::Id))
                    .col(string_len(Jobs::Kind, 32))
                    .col(string_len_null(Jobs::QueueKey, 64))
                    .col(string_len_null(Jobs::UniqueKey, 128))
                    .col(big_integer_null(Jobs::OrganizationId))
                    .col(string_len(Jobs::State, 16))
                    .col(integer(Jobs::Attempts).default(0))
                    .col(integer(Jobs::MaxAttempts))
                    .col(ts(Jobs::RunAfter))
                    .col(string_len_null(Jobs::LeaseOwner, 64))
                    .col(string_len_null(Jobs::LeaseToken, 64))
                    .col(ts_null(Jobs::LeaseExpiresAt))
                    .col(json(Jobs::Progress))
                    .col(json(Jobs::Payload))
                    .col(text_null(Jobs::LastError))
                    .col(ts(Jobs::CreatedAt))
                    .col(ts_null(Jobs::StartedAt))
                    .col(ts_null(Jobs::FinishedAt))
                    .col(ts(Jobs::UpdatedAt))
                    .foreign_key(&mut fk(
                        "fk_queue_jobs_organization",
                        Jobs::Table,
                        Jobs::OrganizationId,
                        Organizations::Table,
                        Organizations::Id,
                        ForeignKeyAction::Restrict,
                    ))
                    .to_owned(),
            )
            .await?;
        for (name, cols, unique) in [
            ("idx_queue_jobs_due", &["state", "run_after"][..], false),
            (
                "idx_queue_jobs_queue_key",
                &["queue_key", "state", "id"][..],
                false,
            ),
            (
                "idx_queue_jobs_organization",
                &["organization_id", "id"][..],
                false,
            ),
            (
                "idx_queue_jobs_kind_state",
                &["kind", "state", "id"][..],
                false,
            ),
            ("idx_queue_jobs_state_id", &["state", "id"][..], false),
            ("idx_queue_jobs_lease", &["lease_expires_at"][..], false),
            ("idx_queue_jobs_unique_key", &["unique_key"][..], true),
        ] {
            manager
                .create_index(index(name, Jobs::Table, cols, unique))
                .await?;
        }

        let payload = match manager.get_database_backend() {
            DbBackend::Postgres => {
                "CASE WHEN kind = 'resize' THEN json_build_object('kind', kind, \
                 'organization_id', organization_id, 'server_type', payload->>'server_type') \
                 ELSE json_build_object('kind', kind, 'organization_id', organization_id) END"
            }
            _ => {
                "CASE WHEN kind = 'resize' THEN json_object('kind', kind, \
                 'organization_id', organization_id, 'server_type', \
                 json_extract(payload, '$.server_type')) \
                 ELSE json_object('kind', kind, 'organization_id', organization_id) END"
            }
        };
        manager
            .get_connection()
            .execute_unprepared(&format!(
                "INSERT INTO jobs ({SHARED}, queue_key, payload) \
                 SELECT {SHARED}, 'org:' || organization_id, {payload} FROM provisioning_jobs"
            ))
            .await?;
        bump_sequence(manager, "jobs").await?;
        manager
            .drop_table(Table::drop().table(ProvisioningJobs::Table).to_owned())
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(ProvisioningJobs::Table)
                    .col(big_pk_auto(ProvisioningJobs::Id))
                    .col(big_integer(ProvisioningJobs::OrganizationId))
                    .col(big_integer_null(ProvisioningJobs::VpsId))
                    .col(string_len(ProvisioningJobs::Kind, 16))
                    .col(string_len(ProvisioningJobs::State, 16))
                    .col(integer(ProvisioningJobs::Attempts).default(0))
                    .col(integer(ProvisioningJobs::MaxAttempts))
                    .col(ts(ProvisioningJobs::RunAfter))
                    .col(string_len_null(ProvisioningJobs::LeaseOwner, 64))
                    .col(ts_null(ProvisioningJobs::LeaseExpiresAt))
                    .col(json(ProvisioningJobs::Progress))
                    .col(json_null(ProvisioningJobs::Payload))
                    .col(text_null(ProvisioningJobs::LastError))
                    .col(ts(ProvisioningJobs::CreatedAt))
                    .col(ts_null(ProvisioningJobs::StartedAt))
                    .col(ts_null(ProvisioningJobs::FinishedAt))
                    .col(ts(ProvisioningJobs::UpdatedAt))
                    .foreign_key(&mut fk(
                        "fk_jobs_organization",
                        ProvisioningJobs::Table,
                        ProvisioningJobs::OrganizationId,
                        Organizations::Table,
                        Organizations::Id,
                        ForeignKeyAction::Restrict,
                    ))
                    .foreign_key(&mut fk(
                        "fk_jobs_vps",
                        ProvisioningJobs::Table,
                        ProvisioningJobs::VpsId,
                        Vpses::Table,
                        Vpses::Id,
                        ForeignKeyAction::SetNull,
                    ))
                    .to_owned(),
            )
            .await?;
        for (name, cols) in [
            ("idx_jobs_state_run_after", &["state", "run_after"][..]),
            ("idx_jobs_organization", &["organization_id", "id"][..]),
            ("idx_jobs_lease_expires", &["lease_expires_at"][..]),
        ] {
            manager
                .create_index(index(name, ProvisioningJobs::Table, cols, false))
                .await?;
        }
        let payload = match manager.get_database_backend() {
            DbBackend::Postgres => {
                "CASE WHEN kind = 'resize' THEN \
                 json_build_object('server_type', payload->>'server_type') END"
            }
            _ => {
                "CASE WHEN kind = 'resize' THEN \
                 json_object('server_type', json_extract(payload, '$.server_type')) END"
            }
        };
        manager
            .get_connection()
            .execute_unprepared(&format!(
                "INSERT INTO provisioning_jobs ({SHARED}, payload) \
                 SELECT {SHARED}, {payload} FROM jobs WHERE organization_id IS NOT NULL \
                 AND kind IN ('create', 'resize', 'delete', 'redeploy')"
            ))
            .await?;
        bump_sequence(manager, "provisioning_jobs").await?;
        manager
            .drop_table(Table::drop().table(Jobs::Table).to_owned())
            .await
    }
}
