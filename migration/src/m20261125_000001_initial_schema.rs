//! The whole data model of Nest, created at once so later features add behaviour, not tables.
//!
//! Every table the dashboard lists has an index for the column it filters or sorts by; every
//! natural key (email, slug, invoice number, VPS name, Hetzner id) has a unique constraint.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
pub enum Users {
    Table,
    Id,
    Email,
    PasswordHash,
    CreatedAt,
    UpdatedAt,
    LastLoginAt,
}

#[derive(DeriveIden)]
pub enum PlatformAdmins {
    Table,
    Id,
    UserId,
    Role,
    CreatedByUserId,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
pub enum Sessions {
    Table,
    Id,
    UserId,
    Data,
    ExpiresAt,
    CreatedAt,
}

#[derive(DeriveIden)]
pub enum LoginAttempts {
    Table,
    Id,
    Email,
    Ip,
    Succeeded,
    AttemptedAt,
}

#[derive(DeriveIden)]
pub enum UserTokens {
    Table,
    Id,
    UserId,
    TokenHash,
    Purpose,
    ExpiresAt,
    UsedAt,
    CreatedAt,
}

#[derive(DeriveIden)]
pub enum Regions {
    Table,
    Code,
    Location,
    Country,
    Continent,
    IsDefault,
    SortOrder,
}

#[derive(DeriveIden)]
pub enum Tiers {
    Table,
    Id,
    Code,
    Name,
    ServerType,
    Vcpus,
    MemoryGb,
    DiskGb,
    MonthlyPriceCents,
    Currency,
    StripePriceId,
    Active,
    SortOrder,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
pub enum Organizations {
    Table,
    Id,
    Name,
    Slug,
    OwnerEmail,
    TierId,
    Region,
    Status,
    StatusReason,
    StatusChangedAt,
    StripeCustomerId,
    StripeSubscriptionId,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
pub enum Vpses {
    Table,
    Id,
    OrganizationId,
    Name,
    HetznerServerId,
    ServerType,
    Region,
    Ipv4,
    Status,
    SecretsCiphertext,
    SecretsNonce,
    SecretsKeyId,
    CreatedAt,
    UpdatedAt,
    DeletedAt,
}

#[derive(DeriveIden)]
pub enum ProvisioningJobs {
    Table,
    Id,
    OrganizationId,
    VpsId,
    Kind,
    State,
    Attempts,
    MaxAttempts,
    RunAfter,
    LeaseOwner,
    LeaseExpiresAt,
    Progress,
    Payload,
    LastError,
    CreatedAt,
    StartedAt,
    FinishedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
pub enum HealthChecks {
    Table,
    Id,
    VpsId,
    OrganizationId,
    CheckedAt,
    Status,
    ConvexUp,
    WebUp,
    MtaUp,
    ConsecutiveFailures,
    DurationMs,
    Error,
}

#[derive(DeriveIden)]
pub enum HealthAlerts {
    Table,
    Id,
    VpsId,
    OrganizationId,
    Kind,
    Message,
    CreatedAt,
    ResolvedAt,
    AcknowledgedByUserId,
}

#[derive(DeriveIden)]
pub enum Invoices {
    Table,
    Id,
    OrganizationId,
    Number,
    PeriodStart,
    PeriodEnd,
    AmountCents,
    Currency,
    Status,
    DueDate,
    PaidAt,
    StripeInvoiceId,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
pub enum Routes {
    Table,
    Id,
    OrganizationId,
    Slug,
    UpstreamIpv4,
    UpstreamPort,
    Enabled,
    AppliedAt,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
pub enum AuditLog {
    Table,
    Id,
    ActorUserId,
    ActorEmail,
    Action,
    TargetType,
    TargetId,
    Detail,
    Ip,
    UserAgent,
    CreatedAt,
}

#[derive(DeriveIden)]
pub enum StripeEvents {
    Table,
    Id,
    EventType,
    ReceivedAt,
    ProcessedAt,
}

#[derive(DeriveIden)]
pub enum Settings {
    Table,
    Key,
    Value,
    UpdatedAt,
}

/// A foreign key from `table.column` to `to_table.to_column`.
pub(crate) fn fk(
    name: &str,
    table: impl IntoIden,
    column: impl IntoIden,
    to_table: impl IntoIden,
    to_column: impl IntoIden,
    on_delete: ForeignKeyAction,
) -> ForeignKeyCreateStatement {
    ForeignKey::create()
        .name(name)
        .from(table, column)
        .to(to_table, to_column)
        .on_delete(on_delete)
        .on_update(ForeignKeyAction::Cascade)
        .to_owned()
}

/// A (possibly unique) index over `columns` of `table`.
pub(crate) fn index(
    name: &str,
    table: impl IntoIden,
    columns: &[&'static str],
    unique: bool,
) -> IndexCreateStatement {
    let mut stmt = Index::create();
    stmt.name(name).table(table);
    for column in columns {
        stmt.col(Alias::new(*column));
    }
    if unique {
        stmt.unique();
    }
    stmt.to_owned()
}

pub(crate) fn ts(col: impl IntoIden) -> ColumnDef {
    timestamp_with_time_zone(col)
}

pub(crate) fn ts_null(col: impl IntoIden) -> ColumnDef {
    timestamp_with_time_zone_null(col)
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Users::Table)
                    .col(big_pk_auto(Users::Id))
                    .col(string_len_uniq(Users::Email, 254))
                    .col(string_len_null(Users::PasswordHash, 255))
                    .col(ts(Users::CreatedAt))
                    .col(ts(Users::UpdatedAt))
                    .col(ts_null(Users::LastLoginAt))
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(PlatformAdmins::Table)
                    .col(big_pk_auto(PlatformAdmins::Id))
                    .col(big_integer_uniq(PlatformAdmins::UserId))
                    .col(string_len(PlatformAdmins::Role, 16))
                    .col(big_integer_null(PlatformAdmins::CreatedByUserId))
                    .col(ts(PlatformAdmins::CreatedAt))
                    .col(ts(PlatformAdmins::UpdatedAt))
                    .foreign_key(&mut fk(
                        "fk_platform_admins_user",
                        PlatformAdmins::Table,
                        PlatformAdmins::UserId,
                        Users::Table,
                        Users::Id,
                        ForeignKeyAction::Cascade,
                    ))
                    .foreign_key(&mut fk(
                        "fk_platform_admins_created_by",
                        PlatformAdmins::Table,
                        PlatformAdmins::CreatedByUserId,
                        Users::Table,
                        Users::Id,
                        ForeignKeyAction::SetNull,
                    ))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(index(
                "idx_platform_admins_role",
                PlatformAdmins::Table,
                &["role"],
                false,
            ))
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Sessions::Table)
                    .col(string_len(Sessions::Id, 64).primary_key())
                    .col(big_integer_null(Sessions::UserId))
                    .col(text(Sessions::Data))
                    .col(ts(Sessions::ExpiresAt))
                    .col(ts(Sessions::CreatedAt))
                    .foreign_key(&mut fk(
                        "fk_sessions_user",
                        Sessions::Table,
                        Sessions::UserId,
                        Users::Table,
                        Users::Id,
                        ForeignKeyAction::Cascade,
                    ))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(index(
                "idx_sessions_expires_at",
                Sessions::Table,
                &["expires_at"],
                false,
            ))
            .await?;
        manager
            .create_index(index(
                "idx_sessions_user_id",
                Sessions::Table,
                &["user_id"],
                false,
            ))
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(LoginAttempts::Table)
                    .col(big_pk_auto(LoginAttempts::Id))
                    .col(string_len(LoginAttempts::Email, 254))
                    .col(string_len_null(LoginAttempts::Ip, 64))
                    .col(boolean(LoginAttempts::Succeeded))
                    .col(ts(LoginAttempts::AttemptedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(index(
                "idx_login_attempts_email",
                LoginAttempts::Table,
                &["email", "attempted_at"],
                false,
            ))
            .await?;
        manager
            .create_index(index(
                "idx_login_attempts_ip",
                LoginAttempts::Table,
                &["ip", "attempted_at"],
                false,
            ))
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(UserTokens::Table)
                    .col(big_pk_auto(UserTokens::Id))
                    .col(big_integer(UserTokens::UserId))
                    .col(string_len_uniq(UserTokens::TokenHash, 64))
                    .col(string_len(UserTokens::Purpose, 32))
                    .col(ts(UserTokens::ExpiresAt))
                    .col(ts_null(UserTokens::UsedAt))
                    .col(ts(UserTokens::CreatedAt))
                    .foreign_key(&mut fk(
                        "fk_user_tokens_user",
                        UserTokens::Table,
                        UserTokens::UserId,
                        Users::Table,
                        Users::Id,
                        ForeignKeyAction::Cascade,
                    ))
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Regions::Table)
                    .col(string_len(Regions::Code, 8).primary_key())
                    .col(string_len(Regions::Location, 64))
                    .col(string_len(Regions::Country, 64))
                    .col(string_len(Regions::Continent, 16))
                    .col(boolean(Regions::IsDefault).default(false))
                    .col(integer(Regions::SortOrder).default(0))
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Tiers::Table)
                    .col(big_pk_auto(Tiers::Id))
                    .col(string_len_uniq(Tiers::Code, 32))
                    .col(string_len_uniq(Tiers::Name, 64))
                    .col(string_len(Tiers::ServerType, 32))
                    .col(integer(Tiers::Vcpus))
                    .col(integer(Tiers::MemoryGb))
                    .col(integer(Tiers::DiskGb))
                    .col(big_integer(Tiers::MonthlyPriceCents))
                    .col(string_len(Tiers::Currency, 3))
                    .col(string_len_null(Tiers::StripePriceId, 255))
                    .col(boolean(Tiers::Active).default(true))
                    .col(integer(Tiers::SortOrder).default(0))
                    .col(ts(Tiers::CreatedAt))
                    .col(ts(Tiers::UpdatedAt))
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Organizations::Table)
                    .col(big_pk_auto(Organizations::Id))
                    .col(string_len(Organizations::Name, 100))
                    .col(string_len_uniq(Organizations::Slug, 40))
                    .col(string_len(Organizations::OwnerEmail, 254))
                    .col(big_integer(Organizations::TierId))
                    .col(string_len(Organizations::Region, 8))
                    .col(string_len(Organizations::Status, 16))
                    .col(text_null(Organizations::StatusReason))
                    .col(ts(Organizations::StatusChangedAt))
                    .col(string_len_null(Organizations::StripeCustomerId, 255).unique_key())
                    .col(string_len_null(Organizations::StripeSubscriptionId, 255).unique_key())
                    .col(ts(Organizations::CreatedAt))
                    .col(ts(Organizations::UpdatedAt))
                    .foreign_key(&mut fk(
                        "fk_organizations_tier",
                        Organizations::Table,
                        Organizations::TierId,
                        Tiers::Table,
                        Tiers::Id,
                        ForeignKeyAction::Restrict,
                    ))
                    .foreign_key(&mut fk(
                        "fk_organizations_region",
                        Organizations::Table,
                        Organizations::Region,
                        Regions::Table,
                        Regions::Code,
                        ForeignKeyAction::Restrict,
                    ))
                    .to_owned(),
            )
            .await?;
        for (name, cols) in [
            (
                "idx_organizations_status_created",
                &["status", "created_at", "id"][..],
            ),
            ("idx_organizations_tier", &["tier_id", "created_at"][..]),
            ("idx_organizations_region", &["region", "created_at"][..]),
            ("idx_organizations_created", &["created_at", "id"][..]),
            ("idx_organizations_name", &["name"][..]),
            ("idx_organizations_owner_email", &["owner_email"][..]),
        ] {
            manager
                .create_index(index(name, Organizations::Table, cols, false))
                .await?;
        }

        manager
            .create_table(
                Table::create()
                    .table(Vpses::Table)
                    .col(big_pk_auto(Vpses::Id))
                    .col(big_integer(Vpses::OrganizationId))
                    .col(string_len_uniq(Vpses::Name, 63))
                    .col(big_integer_null(Vpses::HetznerServerId).unique_key())
                    .col(string_len(Vpses::ServerType, 32))
                    .col(string_len(Vpses::Region, 8))
                    .col(string_len_null(Vpses::Ipv4, 45))
                    .col(string_len(Vpses::Status, 16))
                    .col(blob_null(Vpses::SecretsCiphertext))
                    .col(blob_null(Vpses::SecretsNonce))
                    .col(string_len_null(Vpses::SecretsKeyId, 32))
                    .col(ts(Vpses::CreatedAt))
                    .col(ts(Vpses::UpdatedAt))
                    .col(ts_null(Vpses::DeletedAt))
                    .foreign_key(&mut fk(
                        "fk_vpses_organization",
                        Vpses::Table,
                        Vpses::OrganizationId,
                        Organizations::Table,
                        Organizations::Id,
                        ForeignKeyAction::Restrict,
                    ))
                    .to_owned(),
            )
            .await?;
        for (name, cols) in [
            ("idx_vpses_organization", &["organization_id"][..]),
            (
                "idx_vpses_status_created",
                &["status", "created_at", "id"][..],
            ),
            (
                "idx_vpses_region_created",
                &["region", "created_at", "id"][..],
            ),
            ("idx_vpses_created", &["created_at", "id"][..]),
        ] {
            manager
                .create_index(index(name, Vpses::Table, cols, false))
                .await?;
        }

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

        manager
            .create_table(
                Table::create()
                    .table(HealthChecks::Table)
                    .col(big_pk_auto(HealthChecks::Id))
                    .col(big_integer(HealthChecks::VpsId))
                    .col(big_integer(HealthChecks::OrganizationId))
                    .col(ts(HealthChecks::CheckedAt))
                    .col(string_len(HealthChecks::Status, 16))
                    .col(boolean(HealthChecks::ConvexUp))
                    .col(boolean(HealthChecks::WebUp))
                    .col(boolean(HealthChecks::MtaUp))
                    .col(integer(HealthChecks::ConsecutiveFailures))
                    .col(integer(HealthChecks::DurationMs))
                    .col(text_null(HealthChecks::Error))
                    .foreign_key(&mut fk(
                        "fk_health_checks_vps",
                        HealthChecks::Table,
                        HealthChecks::VpsId,
                        Vpses::Table,
                        Vpses::Id,
                        ForeignKeyAction::Cascade,
                    ))
                    .foreign_key(&mut fk(
                        "fk_health_checks_organization",
                        HealthChecks::Table,
                        HealthChecks::OrganizationId,
                        Organizations::Table,
                        Organizations::Id,
                        ForeignKeyAction::Cascade,
                    ))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(index(
                "idx_health_checks_vps_checked",
                HealthChecks::Table,
                &["vps_id", "checked_at"],
                false,
            ))
            .await?;
        manager
            .create_index(index(
                "idx_health_checks_checked",
                HealthChecks::Table,
                &["checked_at"],
                false,
            ))
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(HealthAlerts::Table)
                    .col(big_pk_auto(HealthAlerts::Id))
                    .col(big_integer(HealthAlerts::VpsId))
                    .col(big_integer(HealthAlerts::OrganizationId))
                    .col(string_len(HealthAlerts::Kind, 16))
                    .col(text(HealthAlerts::Message))
                    .col(ts(HealthAlerts::CreatedAt))
                    .col(ts_null(HealthAlerts::ResolvedAt))
                    .col(big_integer_null(HealthAlerts::AcknowledgedByUserId))
                    .foreign_key(&mut fk(
                        "fk_health_alerts_vps",
                        HealthAlerts::Table,
                        HealthAlerts::VpsId,
                        Vpses::Table,
                        Vpses::Id,
                        ForeignKeyAction::Cascade,
                    ))
                    .foreign_key(&mut fk(
                        "fk_health_alerts_organization",
                        HealthAlerts::Table,
                        HealthAlerts::OrganizationId,
                        Organizations::Table,
                        Organizations::Id,
                        ForeignKeyAction::Cascade,
                    ))
                    .foreign_key(&mut fk(
                        "fk_health_alerts_ack_by",
                        HealthAlerts::Table,
                        HealthAlerts::AcknowledgedByUserId,
                        Users::Table,
                        Users::Id,
                        ForeignKeyAction::SetNull,
                    ))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(index(
                "idx_health_alerts_open",
                HealthAlerts::Table,
                &["resolved_at", "created_at"],
                false,
            ))
            .await?;
        manager
            .create_index(index(
                "idx_health_alerts_vps",
                HealthAlerts::Table,
                &["vps_id", "created_at"],
                false,
            ))
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Invoices::Table)
                    .col(big_pk_auto(Invoices::Id))
                    .col(big_integer(Invoices::OrganizationId))
                    .col(string_len_uniq(Invoices::Number, 16))
                    .col(date(Invoices::PeriodStart))
                    .col(date(Invoices::PeriodEnd))
                    .col(big_integer(Invoices::AmountCents))
                    .col(string_len(Invoices::Currency, 3))
                    .col(string_len(Invoices::Status, 16))
                    .col(date(Invoices::DueDate))
                    .col(ts_null(Invoices::PaidAt))
                    .col(string_len_null(Invoices::StripeInvoiceId, 255).unique_key())
                    .col(ts(Invoices::CreatedAt))
                    .col(ts(Invoices::UpdatedAt))
                    .foreign_key(&mut fk(
                        "fk_invoices_organization",
                        Invoices::Table,
                        Invoices::OrganizationId,
                        Organizations::Table,
                        Organizations::Id,
                        ForeignKeyAction::Restrict,
                    ))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(index(
                "uq_invoices_org_period",
                Invoices::Table,
                &["organization_id", "period_start"],
                true,
            ))
            .await?;
        manager
            .create_index(index(
                "idx_invoices_status_due",
                Invoices::Table,
                &["status", "due_date"],
                false,
            ))
            .await?;
        manager
            .create_index(index(
                "idx_invoices_created",
                Invoices::Table,
                &["created_at", "id"],
                false,
            ))
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Routes::Table)
                    .col(big_pk_auto(Routes::Id))
                    .col(big_integer_uniq(Routes::OrganizationId))
                    .col(string_len_uniq(Routes::Slug, 40))
                    .col(string_len(Routes::UpstreamIpv4, 45))
                    .col(integer(Routes::UpstreamPort))
                    .col(boolean(Routes::Enabled))
                    .col(ts_null(Routes::AppliedAt))
                    .col(ts(Routes::CreatedAt))
                    .col(ts(Routes::UpdatedAt))
                    .foreign_key(&mut fk(
                        "fk_routes_organization",
                        Routes::Table,
                        Routes::OrganizationId,
                        Organizations::Table,
                        Organizations::Id,
                        ForeignKeyAction::Cascade,
                    ))
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(AuditLog::Table)
                    .col(big_pk_auto(AuditLog::Id))
                    .col(big_integer_null(AuditLog::ActorUserId))
                    .col(string_len(AuditLog::ActorEmail, 254))
                    .col(string_len(AuditLog::Action, 64))
                    .col(string_len(AuditLog::TargetType, 32))
                    .col(string_len_null(AuditLog::TargetId, 64))
                    .col(json(AuditLog::Detail))
                    .col(string_len_null(AuditLog::Ip, 64))
                    .col(string_len_null(AuditLog::UserAgent, 512))
                    .col(ts(AuditLog::CreatedAt))
                    .foreign_key(&mut fk(
                        "fk_audit_log_actor",
                        AuditLog::Table,
                        AuditLog::ActorUserId,
                        Users::Table,
                        Users::Id,
                        ForeignKeyAction::SetNull,
                    ))
                    .to_owned(),
            )
            .await?;
        for (name, cols) in [
            ("idx_audit_log_created", &["created_at", "id"][..]),
            ("idx_audit_log_actor", &["actor_user_id", "id"][..]),
            ("idx_audit_log_action", &["action", "id"][..]),
            (
                "idx_audit_log_target",
                &["target_type", "target_id", "id"][..],
            ),
        ] {
            manager
                .create_index(index(name, AuditLog::Table, cols, false))
                .await?;
        }

        manager
            .create_table(
                Table::create()
                    .table(StripeEvents::Table)
                    .col(string_len(StripeEvents::Id, 255).primary_key())
                    .col(string_len(StripeEvents::EventType, 128))
                    .col(ts(StripeEvents::ReceivedAt))
                    .col(ts_null(StripeEvents::ProcessedAt))
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Settings::Table)
                    .col(string_len(Settings::Key, 64).primary_key())
                    .col(text(Settings::Value))
                    .col(ts(Settings::UpdatedAt))
                    .to_owned(),
            )
            .await?;

        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // Children before parents, so foreign keys never block a drop.
        let tables: [DynIden; 17] = [
            Settings::Table.into_iden(),
            StripeEvents::Table.into_iden(),
            AuditLog::Table.into_iden(),
            Routes::Table.into_iden(),
            Invoices::Table.into_iden(),
            HealthAlerts::Table.into_iden(),
            HealthChecks::Table.into_iden(),
            ProvisioningJobs::Table.into_iden(),
            Vpses::Table.into_iden(),
            Organizations::Table.into_iden(),
            Tiers::Table.into_iden(),
            Regions::Table.into_iden(),
            UserTokens::Table.into_iden(),
            LoginAttempts::Table.into_iden(),
            Sessions::Table.into_iden(),
            PlatformAdmins::Table.into_iden(),
            Users::Table.into_iden(),
        ];
        for table in tables {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}
