//! The audit trail: every admin action writes a row in the same transaction as the action.
//!
//! Rows are only ever inserted: no code path updates or deletes them, and database triggers
//! (migration `m20261125_000002_audit_append_only`) refuse it on both engines.

use app::backend::{AuditBackend, RequestInfo};
use app::error::AppError;
use app::models::{AuditEntry, AuditFilter, AuditPage};
use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveValue::Set,
    ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect,
    sea_query::{Expr, ExprTrait, LikeExpr},
};

use crate::entities::audit_log;
use crate::error::Result;

/// Who acted: a user, or an anonymous/failed attempt identified by the email typed.
#[derive(Debug, Clone)]
pub struct Actor {
    /// The user's id, when known.
    pub user_id: Option<i64>,
    /// The email (of the user, or as typed).
    pub email: String,
    /// Client IP.
    pub ip: Option<String>,
    /// Client user agent.
    pub user_agent: Option<String>,
}

impl Actor {
    /// Nest itself acting (`system:<what>`: a job, the health monitor, Stripe's events): no
    /// user, no address.
    pub fn system(what: impl std::fmt::Display) -> Self {
        Self {
            user_id: None,
            email: format!("system:{what}"),
            ip: None,
            user_agent: None,
        }
    }

    /// An actor from a request and the user behind it.
    pub fn new(req: &RequestInfo, user_id: Option<i64>, email: impl Into<String>) -> Self {
        Self {
            user_id,
            email: email.into(),
            ip: req.ip.clone(),
            user_agent: req.user_agent.clone(),
        }
    }
}

/// Writes one audit row on `conn` (pass the action's transaction).
pub async fn record<C: ConnectionTrait>(
    conn: &C,
    actor: &Actor,
    action: &str,
    target: (&str, Option<String>),
    detail: serde_json::Value,
    at: DateTime<Utc>,
) -> Result<()> {
    audit_log::Entity::insert(row(
        actor,
        Record {
            action: action.to_owned(),
            target_type: target.0.to_owned(),
            target_id: target.1,
            detail,
        },
        at,
    ))
    .exec_without_returning(conn)
    .await?;
    Ok(())
}

/// One row of [`record_many`]: what was done to what.
#[derive(Debug, Clone)]
pub struct Record {
    /// The action, e.g. `organization.approve`.
    pub action: String,
    /// What kind of thing it was done to.
    pub target_type: String,
    /// Which one.
    pub target_id: Option<String>,
    /// The action's details.
    pub detail: serde_json::Value,
}

/// Writes the rows of several actions by one actor in one statement (a batch of Stripe's
/// events): the same rows [`record`] writes one at a time.
pub async fn record_many<C: ConnectionTrait>(
    conn: &C,
    actor: &Actor,
    records: Vec<Record>,
    at: DateTime<Utc>,
) -> Result<()> {
    if records.is_empty() {
        return Ok(());
    }
    audit_log::Entity::insert_many(records.into_iter().map(|r| row(actor, r, at)))
        .exec_without_returning(conn)
        .await?;
    Ok(())
}

fn row(actor: &Actor, record: Record, at: DateTime<Utc>) -> audit_log::ActiveModel {
    audit_log::ActiveModel {
        actor_user_id: Set(actor.user_id),
        actor_email: Set(actor.email.chars().take(254).collect()),
        action: Set(record.action),
        target_type: Set(record.target_type),
        target_id: Set(record.target_id),
        detail: Set(record.detail),
        ip: Set(actor.ip.clone()),
        user_agent: Set(actor.user_agent.clone()),
        created_at: Set(at),
        ..Default::default()
    }
}

/// An audit row as the dashboard shows it.
pub fn entry(r: audit_log::Model) -> AuditEntry {
    AuditEntry {
        id: r.id,
        created_at: r.created_at,
        actor_email: r.actor_email,
        actor_user_id: r.actor_user_id,
        action: r.action,
        target_type: r.target_type,
        target_id: r.target_id,
        detail: r.detail,
        ip: r.ip,
        user_agent: r.user_agent,
    }
}

/// Reads the audit log.
pub struct AuditService {
    /// Database pool.
    pub db: DatabaseConnection,
}

impl AuditService {
    /// A page of rows, newest first.
    pub async fn page(
        &self,
        filter: AuditFilter,
        before: Option<i64>,
        limit: u64,
    ) -> Result<AuditPage> {
        let limit = limit.clamp(1, 200);
        let mut query = audit_log::Entity::find().order_by_desc(audit_log::Column::Id);
        if let Some(before) = before {
            query = query.filter(audit_log::Column::Id.lt(before));
        }
        if let Some(actor) = filter
            .actor
            .as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
        {
            query = query.filter(
                // Emails are stored lower-cased (see `Email`), so lower-casing the needle suffices.
                Expr::col(audit_log::Column::ActorEmail).like(
                    LikeExpr::new(format!(
                        "%{}%",
                        crate::db::escape_like(&actor.to_lowercase())
                    ))
                    .escape('\\'),
                ),
            );
        }
        if let Some(action) = filter.action.as_deref().filter(|s| !s.is_empty()) {
            query = query.filter(audit_log::Column::Action.eq(action));
        }
        if let Some(target) = filter
            .target
            .as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
        {
            match target.split_once(':') {
                Some((kind, id)) => {
                    query = query
                        .filter(audit_log::Column::TargetType.eq(kind))
                        .filter(audit_log::Column::TargetId.eq(id))
                }
                None => query = query.filter(audit_log::Column::TargetType.eq(target)),
            }
        }
        if let Some(from) = filter.from.and_then(|d| d.and_hms_opt(0, 0, 0)) {
            query = query.filter(audit_log::Column::CreatedAt.gte(from.and_utc()));
        }
        if let Some(to) = filter
            .to
            .and_then(|d| d.succ_opt())
            .and_then(|d| d.and_hms_opt(0, 0, 0))
        {
            query = query.filter(audit_log::Column::CreatedAt.lt(to.and_utc()));
        }
        let mut rows = query.limit(limit + 1).all(&self.db).await?;
        let next_cursor = if rows.len() as u64 > limit {
            rows.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
            rows.last().map(|r| r.id)
        } else {
            None
        };
        let actions: Vec<String> = audit_log::Entity::find()
            .select_only()
            .column(audit_log::Column::Action)
            .distinct()
            .order_by_asc(audit_log::Column::Action)
            .into_tuple()
            .all(&self.db)
            .await?;
        let entries = rows.into_iter().map(entry).collect();
        Ok(AuditPage {
            entries,
            next_cursor,
            actions,
        })
    }
}

#[async_trait::async_trait]
impl AuditBackend for AuditService {
    async fn list(
        &self,
        filter: AuditFilter,
        before: Option<i64>,
        limit: u64,
    ) -> Result<AuditPage, AppError> {
        Ok(self.page(filter, before, limit).await?)
    }
}
