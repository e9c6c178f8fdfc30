//! Read side of organizations: the paginated list, the detail view, tier choices.

use app::models::{
    JobOrganization, OrgDetail, OrgPage, OrgQuery, OrgSort, OrgSummary, TierOption, VpsView,
    admin_actions,
};
use chrono::{DateTime, Utc};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ColumnTrait, Condition, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
};

use crate::entities::{audit_log, jobs, organizations, routes, tiers, vpses};
use crate::error::{Error, Result};

/// Every tier, active first, then in their display order.
pub async fn tier_options(db: &DatabaseConnection) -> Result<Vec<TierOption>> {
    let rows = tiers::Entity::find()
        .order_by_desc(tiers::Column::Active)
        .order_by_asc(tiers::Column::SortOrder)
        .order_by_asc(tiers::Column::Id)
        .all(db)
        .await?;
    Ok(rows
        .into_iter()
        .map(|t| TierOption {
            id: t.id,
            code: t.code,
            name: t.name,
            server_type: t.server_type.to_string(),
            monthly_price_cents: t.monthly_price_cents,
            currency: t.currency.to_string(),
            active: t.active,
        })
        .collect())
}

fn summary(org: organizations::Model, tiers: &[TierOption]) -> OrgSummary {
    let tier = tiers
        .iter()
        .find(|t| t.id == org.tier_id)
        .map_or_else(|| org.tier_id.to_string(), |t| t.name.clone());
    OrgSummary {
        id: org.id,
        name: org.name,
        slug: org.slug.to_string(),
        owner_email: org.owner_email.to_string(),
        status: org.status,
        tier,
        region: org.region,
        created_at: org.created_at,
        health: None,
    }
}

/// A page of organizations matching `query`.
pub async fn list(db: &DatabaseConnection, query: OrgQuery, limit: u64) -> Result<OrgPage> {
    let limit = limit.clamp(1, 200);
    let mut select = organizations::Entity::find();
    if let Some(status) = query.status {
        select = select.filter(organizations::Column::Status.eq(status));
    }
    if let Some(tier) = query.tier_id {
        select = select.filter(organizations::Column::TierId.eq(tier));
    }
    if let Some(region) = query.region {
        select = select.filter(organizations::Column::Region.eq(region));
    }
    if let Some(health) = query.health {
        select = select.filter(crate::health::queries::org_has_status(health));
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
                Expr::col(organizations::Column::Name),
                Expr::col(organizations::Column::Slug),
                Expr::col(organizations::Column::OwnerEmail),
            ],
        ));
    }
    let bad_cursor = || Error::Validation {
        field: "after",
        message: "is not a valid page cursor".to_owned(),
    };
    let cursor = query
        .after
        .as_deref()
        .map(|c| c.rsplit_once('|').ok_or_else(bad_cursor))
        .transpose()?;
    select = match query.sort {
        OrgSort::Newest | OrgSort::Oldest => {
            let newest = query.sort == OrgSort::Newest;
            if let Some((at, id)) = cursor {
                let at: DateTime<Utc> = at.parse().map_err(|_| bad_cursor())?;
                let id: i64 = id.parse().map_err(|_| bad_cursor())?;
                let (created, same) = if newest {
                    (
                        organizations::Column::CreatedAt.lt(at),
                        organizations::Column::Id.lt(id),
                    )
                } else {
                    (
                        organizations::Column::CreatedAt.gt(at),
                        organizations::Column::Id.gt(id),
                    )
                };
                select = select.filter(
                    Condition::any().add(created).add(
                        Condition::all()
                            .add(organizations::Column::CreatedAt.eq(at))
                            .add(same),
                    ),
                );
            }
            if newest {
                select
                    .order_by_desc(organizations::Column::CreatedAt)
                    .order_by_desc(organizations::Column::Id)
            } else {
                select
                    .order_by_asc(organizations::Column::CreatedAt)
                    .order_by_asc(organizations::Column::Id)
            }
        }
        OrgSort::Name => {
            if let Some((name, id)) = cursor {
                let id: i64 = id.parse().map_err(|_| bad_cursor())?;
                select = select.filter(
                    Condition::any()
                        .add(organizations::Column::Name.gt(name))
                        .add(
                            Condition::all()
                                .add(organizations::Column::Name.eq(name))
                                .add(organizations::Column::Id.gt(id)),
                        ),
                );
            }
            select
                .order_by_asc(organizations::Column::Name)
                .order_by_asc(organizations::Column::Id)
        }
    };
    let mut rows = select.limit(limit + 1).all(db).await?;
    let next = if rows.len() as u64 > limit {
        rows.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
        rows.last().map(|last| match query.sort {
            OrgSort::Name => format!("{}|{}", last.name, last.id),
            _ => format!("{}|{}", last.created_at.to_rfc3339(), last.id),
        })
    } else {
        None
    };
    let tiers = tier_options(db).await?;
    let badges =
        crate::health::queries::badges_by_org(db, rows.iter().map(|o| o.id).collect()).await?;
    Ok(OrgPage {
        rows: rows
            .into_iter()
            .map(|o| {
                let health = badges.get(&o.id).copied();
                OrgSummary {
                    health,
                    ..summary(o, &tiers)
                }
            })
            .collect(),
        next,
        tiers,
        now: Utc::now(),
    })
}

/// Everything about one organization.
pub async fn detail(db: &DatabaseConnection, id: i64, base_domain: &str) -> Result<OrgDetail> {
    let org = organizations::Entity::find_by_id(id)
        .one(db)
        .await?
        .ok_or_else(|| Error::NotFound("organization".to_owned()))?;
    let tiers = tier_options(db).await?;
    let vps = vpses::Entity::find()
        .filter(vpses::Column::OrganizationId.eq(id))
        .order_by_desc(vpses::Column::Id)
        .one(db)
        .await?
        .map(|v| VpsView {
            id: v.id,
            name: v.name,
            hetzner_server_id: v.hetzner_server_id,
            server_type: v.server_type.to_string(),
            region: v.region,
            ipv4: v.ipv4,
            status: v.status,
        });
    let route = routes::Entity::find()
        .filter(routes::Column::OrganizationId.eq(id))
        .one(db)
        .await?
        .map(|r| {
            (
                format!("{}.{base_domain}", r.slug),
                format!("{}:{}", r.upstream_ipv4, r.upstream_port),
                r.enabled,
            )
        });
    let job_org = JobOrganization {
        id: org.id,
        slug: org.slug.to_string(),
    };
    let jobs = jobs::Entity::find()
        .filter(jobs::Column::OrganizationId.eq(id))
        .order_by_desc(jobs::Column::Id)
        .limit(50)
        .all(db)
        .await?
        .into_iter()
        .map(|j| crate::jobs::queries::view(j, Some(job_org.clone())))
        .collect();
    let history = audit_log::Entity::find()
        .filter(audit_log::Column::TargetType.eq("organization"))
        .filter(audit_log::Column::TargetId.eq(id.to_string()))
        .order_by_desc(audit_log::Column::Id)
        .limit(100)
        .all(db)
        .await?
        .into_iter()
        .map(crate::audit::entry)
        .collect();
    let approved = super::has_create_job(db, org.id).await?;
    let actions = admin_actions(org.status)
        .into_iter()
        .filter(|a| {
            !(approved
                && matches!(
                    a,
                    app::models::OrgEvent::Approve | app::models::OrgEvent::Reject
                ))
        })
        .collect();
    Ok(OrgDetail {
        tier_id: org.tier_id,
        status_reason: org.status_reason.clone(),
        status_changed_at: org.status_changed_at,
        actions,
        org: summary(org, &tiers),
        vps,
        route,
        jobs,
        history,
        tiers,
    })
}

/// Pending organizations not yet approved (no `create` job), oldest first.
pub async fn waitlist(db: &DatabaseConnection) -> Result<Vec<OrgSummary>> {
    use app::models::{JobKind, JobState, OrgStatus};
    let pending = organizations::Entity::find()
        .filter(organizations::Column::Status.eq(OrgStatus::Pending))
        .order_by_asc(organizations::Column::CreatedAt)
        .order_by_asc(organizations::Column::Id)
        .limit(500)
        .all(db)
        .await?;
    let ids: Vec<i64> = pending.iter().map(|o| o.id).collect();
    let approved: std::collections::HashSet<i64> = jobs::Entity::find()
        .select_only()
        .column(jobs::Column::OrganizationId)
        .filter(jobs::Column::OrganizationId.is_in(ids))
        .filter(jobs::Column::Kind.eq(JobKind::Create))
        .filter(jobs::Column::State.ne(JobState::Failed))
        .into_tuple::<i64>()
        .all(db)
        .await?
        .into_iter()
        .collect();
    let tiers = tier_options(db).await?;
    Ok(pending
        .into_iter()
        .filter(|o| !approved.contains(&o.id))
        .map(|o| summary(o, &tiers))
        .collect())
}
