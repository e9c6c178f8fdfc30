//! `hetzner_prices`: Hetzner's monthly price of each server type and of the primary IPv4 in
//! each location, as the daily `price_refresh` task last read them from `GET /pricing`. One row
//! per resource and location; each refresh replaces them all in one transaction. And
//! `idx_organizations_margins` on `organizations (status, tier_id, region, id)`: `/billing`'s
//! margins count the `active` organizations per tier and region, and page the least profitable
//! of a group, from it alone.

use sea_orm_migration::{prelude::*, schema::*};

use crate::m20261125_000001_initial_schema::{index, ts};

#[derive(DeriveMigrationName)]
pub struct Migration;

/// The `hetzner_prices` table.
#[derive(DeriveIden)]
pub enum HetznerPrices {
    Table,
    Id,
    /// A server type (`cx22`) or `primary_ipv4`.
    Resource,
    /// A location (`fsn1`).
    Location,
    /// A month's price net of VAT, in cents (Hetzner's four decimals rounded to the cent).
    MonthlyNetCents,
    /// ISO code (`EUR`).
    Currency,
    /// When it was read from Hetzner.
    FetchedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(HetznerPrices::Table)
                    .col(big_pk_auto(HetznerPrices::Id))
                    .col(string_len(HetznerPrices::Resource, 64))
                    .col(string_len(HetznerPrices::Location, 32))
                    .col(big_integer(HetznerPrices::MonthlyNetCents))
                    .col(string_len(HetznerPrices::Currency, 3))
                    .col(ts(HetznerPrices::FetchedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(index(
                "idx_hetzner_prices_resource_location",
                HetznerPrices::Table,
                &["resource", "location"],
                true,
            ))
            .await?;
        manager
            .create_index(index(
                "idx_organizations_margins",
                Alias::new("organizations"),
                &["status", "tier_id", "region", "id"],
                false,
            ))
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_index(
                Index::drop()
                    .name("idx_organizations_margins")
                    .table(Alias::new("organizations"))
                    .to_owned(),
            )
            .await?;
        manager
            .drop_table(Table::drop().table(HetznerPrices::Table).to_owned())
            .await
    }
}
