//! VPS instance queries: the `/vpses` list (filters, search, cursor pagination).

use app::backend::VpsesBackend;
use app::error::AppError;
use app::models::{VpsPage, VpsQuery, VpsRow};
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder, QuerySelect};

use crate::entities::{organizations, vpses};
use crate::error::Result;

/// Implements [`VpsesBackend`].
#[derive(Clone)]
pub struct VpsService {
    /// Database pool.
    pub db: DatabaseConnection,
}

fn row(v: vpses::Model, org: Option<organizations::Model>) -> VpsRow {
    VpsRow {
        id: v.id,
        organization_id: v.organization_id,
        organization: org.as_ref().map(|o| o.name.clone()).unwrap_or_default(),
        slug: org.map(|o| o.slug.to_string()).unwrap_or_default(),
        name: v.name,
        hetzner_server_id: v.hetzner_server_id,
        server_type: v.server_type.to_string(),
        region: v.region,
        ipv4: v.ipv4,
        status: v.status,
        created_at: v.created_at,
        deleted_at: v.deleted_at,
        health: None,
    }
}

impl VpsService {
    /// One VPS with its organization and health badge.
    pub async fn one(&self, id: i64) -> Result<Option<VpsRow>> {
        let Some((v, org)) = vpses::Entity::find_by_id(id)
            .find_also_related(organizations::Entity)
            .one(&self.db)
            .await?
        else {
            return Ok(None);
        };
        let mut found = row(v, org);
        found.health = crate::health::queries::badges_by_vps(&self.db, vec![id])
            .await?
            .remove(&id);
        Ok(Some(found))
    }

    /// A page of VPSes, newest first; `limit` rows at most.
    pub async fn page(&self, query: VpsQuery, limit: u64) -> Result<VpsPage> {
        let mut select = vpses::Entity::find()
            .find_also_related(organizations::Entity)
            .order_by_desc(vpses::Column::Id)
            .limit(limit + 1);
        if let Some(status) = query.status {
            select = select.filter(vpses::Column::Status.eq(status));
        }
        if let Some(region) = query.region {
            select = select.filter(vpses::Column::Region.eq(region));
        }
        if let Some(health) = query.health {
            select = select.filter(crate::health::queries::vps_has_status(health));
        }
        if !query.include_deleted {
            select = select.filter(vpses::Column::DeletedAt.is_null());
        }
        if let Some(after) = query.after {
            select = select.filter(vpses::Column::Id.lt(after));
        }
        if let Some(search) = query
            .search
            .as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
        {
            select = select.filter(crate::db::contains_any(
                search,
                [
                    Expr::col((vpses::Entity, vpses::Column::Name)),
                    Expr::col((vpses::Entity, vpses::Column::Ipv4)),
                    Expr::col((organizations::Entity, organizations::Column::Name)),
                    Expr::col((organizations::Entity, organizations::Column::Slug)),
                ],
            ));
        }
        let mut rows: Vec<VpsRow> = select
            .all(&self.db)
            .await?
            .into_iter()
            .map(|(v, org)| row(v, org))
            .collect();
        let badges =
            crate::health::queries::badges_by_vps(&self.db, rows.iter().map(|r| r.id).collect())
                .await?;
        for row in &mut rows {
            row.health = badges.get(&row.id).copied();
        }
        let next = if rows.len() as u64 > limit {
            rows.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
            rows.last().map(|r| r.id)
        } else {
            None
        };
        Ok(VpsPage {
            rows,
            next,
            now: chrono::Utc::now(),
        })
    }
}

#[async_trait::async_trait]
impl VpsesBackend for VpsService {
    async fn list(&self, query: VpsQuery, limit: u64) -> std::result::Result<VpsPage, AppError> {
        Ok(self.page(query, limit).await?)
    }
}
