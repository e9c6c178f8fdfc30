//! Platform-wide status: database health, integrations in use, seeded data, organization counts.

use std::sync::Arc;

use app::backend::SystemBackend;
use app::error::AppError;
use app::models::{IntegrationMode, OrgStatus, PlatformStatus};
use sea_orm::{
    ColumnTrait, DatabaseConnection, EntityTrait, FromQueryResult, PaginatorTrait, QueryFilter,
    QuerySelect,
    sea_query::{Expr, Func},
};

use crate::config::Config;
use crate::entities::{organizations, regions, tiers};
use crate::error::Error;

/// Implements [`SystemBackend`] over the database and configuration.
pub struct SystemService {
    /// Database pool.
    pub db: DatabaseConnection,
    /// Configuration (which integrations are real).
    pub config: Arc<Config>,
    /// Live-update signals (their change count).
    pub events: crate::events::Events,
}

#[derive(Debug, FromQueryResult)]
struct StatusCount {
    status: OrgStatus,
    count: i64,
}

impl SystemService {
    async fn status(&self) -> Result<PlatformStatus, Error> {
        let database_ok = crate::db::ping(&self.db).await.is_ok();
        let counts = organizations::Entity::find()
            .select_only()
            .column(organizations::Column::Status)
            .column_as(
                Expr::from(Func::count(Expr::col(organizations::Column::Id))),
                "count",
            )
            .group_by(organizations::Column::Status)
            .into_model::<StatusCount>()
            .all(&self.db)
            .await?;
        let mut organizations_by_status: Vec<(OrgStatus, u64)> = counts
            .into_iter()
            .map(|c| (c.status, u64::try_from(c.count).unwrap_or(0)))
            .collect();
        organizations_by_status
            .sort_by_key(|(status, _)| OrgStatus::ALL.iter().position(|s| s == status));

        // MRR: the monthly price of each active organization's tier.
        let tier_prices: std::collections::HashMap<i64, (i64, String)> = tiers::Entity::find()
            .all(&self.db)
            .await?
            .into_iter()
            .map(|t| (t.id, (t.monthly_price_cents, t.currency.to_string())))
            .collect();
        let active_by_tier: Vec<(i64, i64)> = organizations::Entity::find()
            .select_only()
            .column(organizations::Column::TierId)
            .column_as(
                Expr::from(Func::count(Expr::col(organizations::Column::Id))),
                "count",
            )
            .filter(organizations::Column::Status.eq(OrgStatus::Active))
            .group_by(organizations::Column::TierId)
            .into_tuple()
            .all(&self.db)
            .await?;
        let mrr_cents = active_by_tier
            .iter()
            .map(|(tier, n)| tier_prices.get(tier).map_or(0, |(price, _)| price * n))
            .sum();
        let currency = tier_prices
            .values()
            .next()
            .map_or_else(|| "EUR".to_owned(), |(_, c)| c.clone());

        let open_findings = crate::reconcile::open_counts(&self.db).await?;
        Ok(PlatformStatus {
            open_findings,
            mrr_cents,
            currency,
            version: env!("CARGO_PKG_VERSION").to_owned(),
            database: crate::db::kind(&self.db),
            database_ok,
            hetzner: if self.config.hetzner.api_token.is_some() {
                IntegrationMode::Real
            } else {
                IntegrationMode::Simulated
            },
            stripe: match &self.config.stripe.secret_key {
                Some(key) if key.expose().starts_with("sk_live_") => IntegrationMode::Real,
                Some(_) => IntegrationMode::Test,
                None => IntegrationMode::Simulated,
            },
            caddy: if self.config.caddy.admin_url.is_some() {
                IntegrationMode::Real
            } else {
                IntegrationMode::NotConnected
            },
            organizations_by_status,
            tiers: tiers::Entity::find().count(&self.db).await?,
            regions: regions::Entity::find().count(&self.db).await?,
        })
    }
}

#[async_trait::async_trait]
impl SystemBackend for SystemService {
    async fn platform_status(&self) -> Result<PlatformStatus, AppError> {
        Ok(self.status().await?)
    }

    fn change_seq(&self) -> u64 {
        self.events.seq()
    }
}
