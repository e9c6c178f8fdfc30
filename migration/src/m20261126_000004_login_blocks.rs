//! `login_blocks`: refused (rate-limited) sign-in attempts counted per account, address and
//! lockout window, so a flood of them writes a bounded number of rows to the append-only audit
//! log (one when a window's first attempt is refused, one with the count when it closes).

use sea_orm_migration::{prelude::*, schema::*};

use crate::m20261125_000001_initial_schema::{index, ts};

#[derive(DeriveMigrationName)]
pub struct Migration;

/// The `login_blocks` table.
#[derive(DeriveIden)]
pub enum LoginBlocks {
    Table,
    Id,
    Email,
    Address,
    WindowStart,
    BlockedCount,
    LastUserAgent,
    FirstAt,
    LastAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(LoginBlocks::Table)
                    .col(big_pk_auto(LoginBlocks::Id))
                    .col(string_len(LoginBlocks::Email, 254))
                    // Empty when the address is unknown (a unique key cannot hold NULLs alike
                    // on both engines).
                    .col(string_len(LoginBlocks::Address, 64))
                    .col(ts(LoginBlocks::WindowStart))
                    .col(big_integer(LoginBlocks::BlockedCount))
                    .col(string_len_null(LoginBlocks::LastUserAgent, 512))
                    .col(ts(LoginBlocks::FirstAt))
                    .col(ts(LoginBlocks::LastAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(index(
                "idx_login_blocks_key",
                LoginBlocks::Table,
                &["email", "address", "window_start"],
                true,
            ))
            .await?;
        manager
            .create_index(index(
                "idx_login_blocks_window",
                LoginBlocks::Table,
                &["window_start"],
                false,
            ))
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(LoginBlocks::Table).to_owned())
            .await
    }
}
