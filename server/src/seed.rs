//! Reference data from the spec (three tiers, six regions), inserted idempotently at start-up.
//!
//! Existing rows are never overwritten: an admin's edit to a tier survives restarts. A Stripe
//! price id from the environment fills a tier's empty `stripe_price_id`.

use app::models::{Currency, Region, ServerType};
use chrono::Utc;
use sea_orm::sea_query::OnConflict;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, TransactionTrait,
};

use crate::config::StripePrices;
use crate::entities::{regions, tiers};
use crate::error::Result;

/// A tier as the spec defines it.
pub struct TierSeed {
    /// Stable code (`starter`, `growth`, `enterprise`).
    pub code: &'static str,
    /// Display name.
    pub name: &'static str,
    /// Hetzner server type.
    pub server_type: &'static str,
    /// vCPUs, memory (GB), disk (GB).
    pub specs: (i32, i32, i32),
    /// Monthly price in euro cents.
    pub monthly_price_cents: i64,
}

/// The spec's three tiers.
pub const TIERS: [TierSeed; 3] = [
    TierSeed {
        code: "starter",
        name: "Starter",
        server_type: "cx22",
        specs: (2, 4, 40),
        monthly_price_cents: 2_800,
    },
    TierSeed {
        code: "growth",
        name: "Growth",
        server_type: "cx32",
        specs: (4, 8, 80),
        monthly_price_cents: 6_000,
    },
    TierSeed {
        code: "enterprise",
        name: "Enterprise",
        server_type: "cx42",
        specs: (8, 16, 160),
        monthly_price_cents: 12_000,
    },
];

/// Inserts the tiers and regions that are missing, in one transaction.
pub async fn ensure_reference_data(db: &DatabaseConnection, prices: &StripePrices) -> Result<()> {
    let now = Utc::now();
    let txn = db.begin().await?;

    let region_rows = Region::ALL
        .iter()
        .enumerate()
        .map(|(i, region)| regions::ActiveModel {
            code: Set(*region),
            location: Set(region.location().to_owned()),
            country: Set(region.country().to_owned()),
            continent: Set(region.continent()),
            is_default: Set(*region == Region::default()),
            sort_order: Set(i32::try_from(i).unwrap_or(i32::MAX)),
        });
    regions::Entity::insert_many(region_rows)
        .on_conflict(
            OnConflict::column(regions::Column::Code)
                .do_nothing()
                .to_owned(),
        )
        .exec_without_returning(&txn)
        .await?;

    let mut tier_rows = Vec::with_capacity(TIERS.len());
    for (i, tier) in TIERS.iter().enumerate() {
        let server_type: ServerType =
            tier.server_type
                .parse()
                .map_err(|e| crate::error::Error::Validation {
                    field: "server_type",
                    message: format!("seed tier {}: {e}", tier.code),
                })?;
        tier_rows.push(tiers::ActiveModel {
            code: Set(tier.code.to_owned()),
            name: Set(tier.name.to_owned()),
            server_type: Set(server_type),
            vcpus: Set(tier.specs.0),
            memory_gb: Set(tier.specs.1),
            disk_gb: Set(tier.specs.2),
            monthly_price_cents: Set(tier.monthly_price_cents),
            currency: Set(Currency::eur()),
            stripe_price_id: Set(None),
            active: Set(true),
            sort_order: Set(i32::try_from(i).unwrap_or(i32::MAX)),
            created_at: Set(now),
            updated_at: Set(now),
            ..Default::default()
        });
    }
    tiers::Entity::insert_many(tier_rows)
        .on_conflict(
            OnConflict::column(tiers::Column::Code)
                .do_nothing()
                .to_owned(),
        )
        .exec_without_returning(&txn)
        .await?;

    for (code, price) in [
        ("starter", &prices.starter),
        ("growth", &prices.growth),
        ("enterprise", &prices.enterprise),
    ] {
        if let Some(price) = price {
            tiers::Entity::update_many()
                .col_expr(
                    tiers::Column::StripePriceId,
                    sea_orm::sea_query::Expr::value(price.clone()),
                )
                .filter(tiers::Column::Code.eq(code))
                .filter(tiers::Column::StripePriceId.is_null())
                .exec(&txn)
                .await?;
        }
    }

    txn.commit().await?;
    Ok(())
}
