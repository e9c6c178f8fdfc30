//! Self-service signups: one row per organization created from `/signup`, found by the hash of
//! its unguessable token (the `/pending` link), with the Stripe invoice its payment settles, the
//! last payment error shown to the customer, the client it came from (rate limit) and when an
//! unpaid signup expires.

use sea_orm_migration::{prelude::*, schema::*};

use crate::m20261125_000001_initial_schema::{Organizations, fk, index, ts, ts_null};

#[derive(DeriveMigrationName)]
pub struct Migration;

/// The `signups` table.
#[derive(DeriveIden)]
pub enum Signups {
    Table,
    Id,
    OrganizationId,
    /// SHA-256 of the token, hex.
    TokenHash,
    /// The address (IPv6: its /64) the signup came from.
    ClientKey,
    /// Stripe's first invoice of the subscription.
    StripeInvoiceId,
    /// `awaiting_payment`, `declined`, `paid`.
    PaymentState,
    /// The last decline message, for `/pending`.
    PaymentError,
    ExpiresAt,
    PaidAt,
    CreatedAt,
    UpdatedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Signups::Table)
                    .col(big_pk_auto(Signups::Id))
                    .col(big_integer_uniq(Signups::OrganizationId))
                    .col(string_len_uniq(Signups::TokenHash, 64))
                    .col(string_len(Signups::ClientKey, 64))
                    .col(string_len_null(Signups::StripeInvoiceId, 255))
                    .col(string_len(Signups::PaymentState, 24))
                    .col(string_len_null(Signups::PaymentError, 500))
                    .col(ts(Signups::ExpiresAt))
                    .col(ts_null(Signups::PaidAt))
                    .col(ts(Signups::CreatedAt))
                    .col(ts(Signups::UpdatedAt))
                    .foreign_key(&mut fk(
                        "fk_signups_organization",
                        Signups::Table,
                        Signups::OrganizationId,
                        Organizations::Table,
                        Organizations::Id,
                        ForeignKeyAction::Cascade,
                    ))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(index(
                "idx_signups_client_created",
                Signups::Table,
                &["client_key", "created_at"],
                false,
            ))
            .await?;
        manager
            .create_index(index(
                "idx_signups_state_expires",
                Signups::Table,
                &["payment_state", "expires_at"],
                false,
            ))
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(Signups::Table).to_owned())
            .await
    }
}
