//! Two-factor sign-in: an admin's TOTP authenticator (`totp_factors`, its secret sealed like
//! the VPS secrets) and their single-use recovery codes (`recovery_codes`, stored hashed).

use sea_orm_migration::{prelude::*, schema::*};

use crate::m20261125_000001_initial_schema::{Users, fk, index, ts, ts_null};

#[derive(DeriveMigrationName)]
pub struct Migration;

/// The `totp_factors` table: at most one authenticator per user.
#[derive(DeriveIden)]
pub enum TotpFactors {
    Table,
    UserId,
    SecretCiphertext,
    SecretNonce,
    SecretKeyId,
    /// Null while enrolment awaits its first code.
    ConfirmedAt,
    /// The last time step accepted: a code is accepted once.
    LastStep,
    CreatedAt,
}

/// The `recovery_codes` table.
#[derive(DeriveIden)]
pub enum RecoveryCodes {
    Table,
    Id,
    UserId,
    CodeHash,
    UsedAt,
    CreatedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(TotpFactors::Table)
                    .col(big_integer(TotpFactors::UserId).primary_key())
                    .col(blob(TotpFactors::SecretCiphertext))
                    .col(blob(TotpFactors::SecretNonce))
                    .col(string_len(TotpFactors::SecretKeyId, 16))
                    .col(ts_null(TotpFactors::ConfirmedAt))
                    .col(big_integer_null(TotpFactors::LastStep))
                    .col(ts(TotpFactors::CreatedAt))
                    .foreign_key(&mut fk(
                        "fk_totp_factors_user",
                        TotpFactors::Table,
                        TotpFactors::UserId,
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
                    .table(RecoveryCodes::Table)
                    .col(big_pk_auto(RecoveryCodes::Id))
                    .col(big_integer(RecoveryCodes::UserId))
                    .col(string_len(RecoveryCodes::CodeHash, 64))
                    .col(ts_null(RecoveryCodes::UsedAt))
                    .col(ts(RecoveryCodes::CreatedAt))
                    .foreign_key(&mut fk(
                        "fk_recovery_codes_user",
                        RecoveryCodes::Table,
                        RecoveryCodes::UserId,
                        Users::Table,
                        Users::Id,
                        ForeignKeyAction::Cascade,
                    ))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(index(
                "idx_recovery_codes_user_hash",
                RecoveryCodes::Table,
                &["user_id", "code_hash"],
                true,
            ))
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(RecoveryCodes::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(TotpFactors::Table).to_owned())
            .await
    }
}
