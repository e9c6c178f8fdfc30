//! Routing: the `routes` table (`<slug>.<base domain>` → `IPv4:3000`) is the source of truth,
//! and [`RoutingService`] makes Caddy match it — one push per change, and a full
//! re-application when Nest starts or finds Caddy out of sync (e.g. after a Caddy restart).
//! Without `CADDY_ADMIN_URL` routes live only in the database and the UI says so.

pub mod caddy;

use std::collections::BTreeMap;

use app::models::IntegrationMode;
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter,
};

pub use self::caddy::{CaddyClient, CaddyError, RouteSpec};
use crate::clock::Clock;
use crate::entities::routes;

/// Why the routing table could not be pushed to Caddy.
#[derive(Debug, thiserror::Error)]
pub enum RoutingError {
    /// Caddy's admin API failed or refused.
    #[error(transparent)]
    Caddy(#[from] CaddyError),
    /// The routes table could not be read or updated.
    #[error("routes table: {0}")]
    Database(#[from] crate::error::Error),
}

impl From<sea_orm::DbErr> for RoutingError {
    fn from(e: sea_orm::DbErr) -> Self {
        Self::Database(e.into())
    }
}

/// What a reconciliation found and did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Reconciled {
    /// Caddy already matched the table.
    pub in_sync: bool,
    /// Routes (re)added.
    pub added: usize,
    /// Routes removed.
    pub removed: usize,
}

/// Keeps Caddy in line with the routes table.
#[derive(Clone, Debug)]
pub struct RoutingService {
    /// Database pool.
    pub db: DatabaseConnection,
    /// Time source.
    pub clock: Clock,
    /// Caddy's admin API, when configured.
    pub caddy: Option<CaddyClient>,
    /// Organizations are served at `<slug>.<base_domain>`.
    pub base_domain: String,
}

/// The `@id` of an organization's route.
pub fn route_id(org_id: i64) -> String {
    format!("{}{org_id}", caddy::ID_PREFIX)
}

impl RoutingService {
    /// Whether Caddy is configured.
    pub fn mode(&self) -> IntegrationMode {
        if self.caddy.is_some() {
            IntegrationMode::Real
        } else {
            IntegrationMode::NotConnected
        }
    }

    fn spec(&self, route: &routes::Model) -> RouteSpec {
        RouteSpec {
            id: route_id(route.organization_id),
            host: format!("{}.{}", route.slug, self.base_domain),
            dial: format!("{}:{}", route.upstream_ipv4, route.upstream_port),
        }
    }

    /// Pushes one organization's route (or its absence) to Caddy. Failures are logged, not
    /// returned: the table stays the truth and the next reconciliation repairs Caddy.
    pub async fn push(&self, org_id: i64) {
        if let Err(e) = self.try_push(org_id).await {
            tracing::warn!(org.id = org_id, error.detail = %e, "could not update Caddy; the next reconciliation will retry");
        }
    }

    /// Like [`RoutingService::push`], returning the error.
    pub async fn try_push(&self, org_id: i64) -> Result<(), RoutingError> {
        let Some(caddy) = &self.caddy else {
            return Ok(());
        };
        let route = routes::Entity::find()
            .filter(routes::Column::OrganizationId.eq(org_id))
            .one(&self.db)
            .await?;
        match route {
            Some(route) if route.enabled => {
                caddy.upsert(&self.spec(&route)).await?;
                let mut active: routes::ActiveModel = route.into();
                active.applied_at = Set(Some(self.clock.now()));
                active.update(&self.db).await?;
            }
            _ => caddy.remove(&route_id(org_id)).await?,
        }
        Ok(())
    }

    /// Compares Caddy with the table and re-applies what differs.
    pub async fn reconcile(&self) -> Result<Reconciled, RoutingError> {
        let Some(caddy) = &self.caddy else {
            return Ok(Reconciled {
                in_sync: true,
                ..Default::default()
            });
        };
        let wanted: BTreeMap<String, RouteSpec> = routes::Entity::find()
            .filter(routes::Column::Enabled.eq(true))
            .all(&self.db)
            .await?
            .iter()
            .map(|r| {
                let spec = self.spec(r);
                (spec.id.clone(), spec)
            })
            .collect();
        let present = caddy.routes().await?;
        if present == wanted {
            return Ok(Reconciled {
                in_sync: true,
                ..Default::default()
            });
        }
        let mut outcome = Reconciled::default();
        for (id, spec) in &present {
            if wanted.get(id) != Some(spec) {
                caddy.remove(id).await?;
                outcome.removed += 1;
            }
        }
        for (id, spec) in &wanted {
            if present.get(id) != Some(spec) {
                caddy.upsert(spec).await?;
                outcome.added += 1;
            }
        }
        let now = self.clock.now();
        routes::Entity::update_many()
            .col_expr(
                routes::Column::AppliedAt,
                sea_orm::sea_query::Expr::value(now),
            )
            .filter(routes::Column::Enabled.eq(true))
            .exec(&self.db)
            .await?;
        tracing::info!(
            routes.added = outcome.added,
            routes.removed = outcome.removed,
            "Caddy was out of sync; routes re-applied"
        );
        Ok(outcome)
    }
}
