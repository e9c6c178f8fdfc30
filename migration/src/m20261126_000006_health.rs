//! Health monitoring: each server's current health (`vps_health`, one row per VPS, upserted by
//! every sweep), per-service latencies on the raw checks, hourly roll-ups kept long after the
//! raw checks are pruned, incidents (one per failure episode) that group a server's alerts, and
//! fleet alerts (the breaker).

use sea_orm_migration::{prelude::*, schema::*};

use crate::m20261125_000001_initial_schema::{
    HealthAlerts, HealthChecks, Organizations, Users, Vpses, fk, index, ts, ts_null,
};

#[derive(DeriveMigrationName)]
pub struct Migration;

/// `vps_health`: the latest sweep's verdict per server, and what the rules remember.
#[derive(DeriveIden)]
pub enum VpsHealth {
    Table,
    VpsId,
    OrganizationId,
    Status,
    CheckedAt,
    Failures,
    ConvexUp,
    WebUp,
    MtaUp,
    ConvexMs,
    WebMs,
    MtaMs,
    IncidentId,
    LastRebootAt,
}

/// Per-service latency columns added to `health_checks` (named as the columns).
#[allow(clippy::enum_variant_names)]
#[derive(DeriveIden)]
pub enum CheckLatency {
    ConvexMs,
    WebMs,
    MtaMs,
}

/// `health_rollups`: one row per server and hour.
#[derive(DeriveIden)]
pub enum HealthRollups {
    Table,
    Id,
    VpsId,
    OrganizationId,
    Hour,
    Checks,
    Failures,
    ConvexFailures,
    WebFailures,
    MtaFailures,
    ConvexP50Ms,
    ConvexP95Ms,
    WebP50Ms,
    WebP95Ms,
    MtaP50Ms,
    MtaP95Ms,
}

/// `health_incidents`: a server's failure episode that reached the alert threshold.
#[derive(DeriveIden)]
pub enum HealthIncidents {
    Table,
    Id,
    VpsId,
    OrganizationId,
    OpenedAt,
    ClosedAt,
    LastStatus,
    Reboots,
    AcknowledgedAt,
    AcknowledgedByUserId,
    AckNote,
    SilencedUntil,
    SilencedByUserId,
    SilenceNote,
}

/// The incident an alert belongs to (added to `health_alerts`).
#[derive(DeriveIden)]
pub enum AlertIncident {
    IncidentId,
}

/// `health_fleet_alerts`: sweeps in which the fleet breaker held the reboots.
#[derive(DeriveIden)]
pub enum HealthFleetAlerts {
    Table,
    Id,
    CreatedAt,
    Reason,
    Checked,
    Failing,
    Message,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(VpsHealth::Table)
                    .col(big_integer(VpsHealth::VpsId).primary_key())
                    .col(big_integer(VpsHealth::OrganizationId))
                    .col(string_len(VpsHealth::Status, 16))
                    .col(ts(VpsHealth::CheckedAt))
                    .col(integer(VpsHealth::Failures))
                    .col(boolean(VpsHealth::ConvexUp))
                    .col(boolean(VpsHealth::WebUp))
                    .col(boolean(VpsHealth::MtaUp))
                    .col(integer_null(VpsHealth::ConvexMs))
                    .col(integer_null(VpsHealth::WebMs))
                    .col(integer_null(VpsHealth::MtaMs))
                    .col(big_integer_null(VpsHealth::IncidentId))
                    .col(ts_null(VpsHealth::LastRebootAt))
                    .foreign_key(&mut fk(
                        "fk_vps_health_vps",
                        VpsHealth::Table,
                        VpsHealth::VpsId,
                        Vpses::Table,
                        Vpses::Id,
                        ForeignKeyAction::Cascade,
                    ))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(index(
                "idx_vps_health_status",
                VpsHealth::Table,
                &["status"],
                false,
            ))
            .await?;
        manager
            .create_index(index(
                "idx_vps_health_org",
                VpsHealth::Table,
                &["organization_id"],
                false,
            ))
            .await?;
        for column in [
            CheckLatency::ConvexMs,
            CheckLatency::WebMs,
            CheckLatency::MtaMs,
        ] {
            manager
                .alter_table(
                    Table::alter()
                        .table(HealthChecks::Table)
                        .add_column(integer_null(column))
                        .to_owned(),
                )
                .await?;
        }
        manager
            .create_table(
                Table::create()
                    .table(HealthRollups::Table)
                    .col(big_pk_auto(HealthRollups::Id))
                    .col(big_integer(HealthRollups::VpsId))
                    .col(big_integer(HealthRollups::OrganizationId))
                    .col(ts(HealthRollups::Hour))
                    .col(integer(HealthRollups::Checks))
                    .col(integer(HealthRollups::Failures))
                    .col(integer(HealthRollups::ConvexFailures))
                    .col(integer(HealthRollups::WebFailures))
                    .col(integer(HealthRollups::MtaFailures))
                    .col(integer_null(HealthRollups::ConvexP50Ms))
                    .col(integer_null(HealthRollups::ConvexP95Ms))
                    .col(integer_null(HealthRollups::WebP50Ms))
                    .col(integer_null(HealthRollups::WebP95Ms))
                    .col(integer_null(HealthRollups::MtaP50Ms))
                    .col(integer_null(HealthRollups::MtaP95Ms))
                    .foreign_key(&mut fk(
                        "fk_health_rollups_vps",
                        HealthRollups::Table,
                        HealthRollups::VpsId,
                        Vpses::Table,
                        Vpses::Id,
                        ForeignKeyAction::Cascade,
                    ))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(index(
                "idx_health_rollups_vps_hour",
                HealthRollups::Table,
                &["vps_id", "hour"],
                true,
            ))
            .await?;
        manager
            .create_index(index(
                "idx_health_rollups_hour",
                HealthRollups::Table,
                &["hour"],
                false,
            ))
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(HealthIncidents::Table)
                    .col(big_pk_auto(HealthIncidents::Id))
                    .col(big_integer(HealthIncidents::VpsId))
                    .col(big_integer(HealthIncidents::OrganizationId))
                    .col(ts(HealthIncidents::OpenedAt))
                    .col(ts_null(HealthIncidents::ClosedAt))
                    .col(string_len(HealthIncidents::LastStatus, 16))
                    .col(integer(HealthIncidents::Reboots))
                    .col(ts_null(HealthIncidents::AcknowledgedAt))
                    .col(big_integer_null(HealthIncidents::AcknowledgedByUserId))
                    .col(text_null(HealthIncidents::AckNote))
                    .col(ts_null(HealthIncidents::SilencedUntil))
                    .col(big_integer_null(HealthIncidents::SilencedByUserId))
                    .col(text_null(HealthIncidents::SilenceNote))
                    .foreign_key(&mut fk(
                        "fk_health_incidents_vps",
                        HealthIncidents::Table,
                        HealthIncidents::VpsId,
                        Vpses::Table,
                        Vpses::Id,
                        ForeignKeyAction::Cascade,
                    ))
                    .foreign_key(&mut fk(
                        "fk_health_incidents_organization",
                        HealthIncidents::Table,
                        HealthIncidents::OrganizationId,
                        Organizations::Table,
                        Organizations::Id,
                        ForeignKeyAction::Cascade,
                    ))
                    .foreign_key(&mut fk(
                        "fk_health_incidents_ack_by",
                        HealthIncidents::Table,
                        HealthIncidents::AcknowledgedByUserId,
                        Users::Table,
                        Users::Id,
                        ForeignKeyAction::SetNull,
                    ))
                    .foreign_key(&mut fk(
                        "fk_health_incidents_silenced_by",
                        HealthIncidents::Table,
                        HealthIncidents::SilencedByUserId,
                        Users::Table,
                        Users::Id,
                        ForeignKeyAction::SetNull,
                    ))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(index(
                "idx_health_incidents_open",
                HealthIncidents::Table,
                &["closed_at", "opened_at"],
                false,
            ))
            .await?;
        manager
            .create_index(index(
                "idx_health_incidents_vps",
                HealthIncidents::Table,
                &["vps_id", "opened_at"],
                false,
            ))
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(HealthAlerts::Table)
                    .add_column(big_integer_null(AlertIncident::IncidentId))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(index(
                "idx_health_alerts_incident",
                HealthAlerts::Table,
                &["incident_id"],
                false,
            ))
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(HealthFleetAlerts::Table)
                    .col(big_pk_auto(HealthFleetAlerts::Id))
                    .col(ts(HealthFleetAlerts::CreatedAt))
                    .col(string_len(HealthFleetAlerts::Reason, 32))
                    .col(integer(HealthFleetAlerts::Checked))
                    .col(integer(HealthFleetAlerts::Failing))
                    .col(text(HealthFleetAlerts::Message))
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(HealthFleetAlerts::Table).to_owned())
            .await?;
        manager
            .drop_index(
                Index::drop()
                    .name("idx_health_alerts_incident")
                    .table(HealthAlerts::Table)
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(HealthAlerts::Table)
                    .drop_column(AlertIncident::IncidentId)
                    .to_owned(),
            )
            .await?;
        manager
            .drop_table(Table::drop().table(HealthIncidents::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(HealthRollups::Table).to_owned())
            .await?;
        for column in [
            CheckLatency::ConvexMs,
            CheckLatency::WebMs,
            CheckLatency::MtaMs,
        ] {
            manager
                .alter_table(
                    Table::alter()
                        .table(HealthChecks::Table)
                        .drop_column(column)
                        .to_owned(),
                )
                .await?;
        }
        manager
            .drop_table(Table::drop().table(VpsHealth::Table).to_owned())
            .await
    }
}
