//! The read side of the queue: a job as the pages show it, and the fleet-wide `/jobs` list
//! (filters by kind, state and organization; newest first, by id cursor).

use std::collections::HashMap;

use app::models::{JobOrganization, JobPage, JobQuery, JobView};
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};

use crate::entities::{jobs, organizations};
use crate::error::Result;

/// Rows per page of `/jobs`.
pub const PAGE_SIZE: u64 = 50;

/// A job row as shown, with its organization's slug (if it has one).
pub fn view(job: jobs::Model, organization: Option<JobOrganization>) -> JobView {
    JobView {
        id: job.id,
        kind: job.kind,
        state: job.state,
        organization,
        attempts: job.attempts,
        max_attempts: job.max_attempts,
        last_error: job.last_error,
        progress: job.progress,
        created_at: job.created_at,
        run_after: job.run_after,
        finished_at: job.finished_at,
    }
}

/// One page of jobs matching `query`.
pub async fn list<C: ConnectionTrait>(db: &C, query: &JobQuery) -> Result<JobPage> {
    let mut select = jobs::Entity::find();
    if let Some(kind) = query.kind {
        select = select.filter(jobs::Column::Kind.eq(kind));
    }
    if let Some(state) = query.state {
        select = select.filter(jobs::Column::State.eq(state));
    }
    if let Some(slug) = query
        .organization
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
        let org = organizations::Entity::find()
            .filter(organizations::Column::Slug.eq(slug.to_ascii_lowercase()))
            .one(db)
            .await?;
        match org {
            Some(org) => select = select.filter(jobs::Column::OrganizationId.eq(org.id)),
            None => {
                return Ok(JobPage {
                    rows: Vec::new(),
                    next: None,
                });
            }
        }
    }
    if let Some(after) = query.after {
        select = select.filter(jobs::Column::Id.lt(after));
    }
    let mut rows = select
        .order_by_desc(jobs::Column::Id)
        .limit(PAGE_SIZE + 1)
        .all(db)
        .await?;
    let next = if rows.len() as u64 > PAGE_SIZE {
        rows.truncate(usize::try_from(PAGE_SIZE).unwrap_or(usize::MAX));
        rows.last().map(|j| j.id)
    } else {
        None
    };
    let org_ids: Vec<i64> = rows.iter().filter_map(|j| j.organization_id).collect();
    let slugs: HashMap<i64, String> = if org_ids.is_empty() {
        HashMap::new()
    } else {
        organizations::Entity::find()
            .filter(organizations::Column::Id.is_in(org_ids))
            .all(db)
            .await?
            .into_iter()
            .map(|o| (o.id, o.slug.to_string()))
            .collect()
    };
    let rows = rows
        .into_iter()
        .map(|j| {
            let org = j.organization_id.and_then(|id| {
                slugs.get(&id).map(|slug| JobOrganization {
                    id,
                    slug: slug.clone(),
                })
            });
            view(j, org)
        })
        .collect();
    Ok(JobPage { rows, next })
}

/// How many jobs wait and run, fleet-wide (`/healthz`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct QueueDepth {
    /// Queued and due now.
    pub due: u64,
    /// Queued for later (retry backoff).
    pub scheduled: u64,
    /// Claimed by a worker.
    pub running: u64,
}

/// The queue's depth at `now`.
pub async fn depth<C: ConnectionTrait>(
    db: &C,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<QueueDepth> {
    use app::models::JobState;
    use sea_orm::PaginatorTrait;
    let due = jobs::Entity::find()
        .filter(jobs::Column::State.eq(JobState::Queued))
        .filter(jobs::Column::RunAfter.lte(now))
        .count(db)
        .await?;
    let queued = jobs::Entity::find()
        .filter(jobs::Column::State.eq(JobState::Queued))
        .count(db)
        .await?;
    let running = jobs::Entity::find()
        .filter(jobs::Column::State.eq(JobState::Running))
        .count(db)
        .await?;
    Ok(QueueDepth {
        due,
        scheduled: queued.saturating_sub(due),
        running,
    })
}

/// Sets the `nest_jobs{kind,state}` gauge from the table (every replica sees the whole fleet).
pub async fn record_counts<C: ConnectionTrait>(db: &C) -> Result<()> {
    use app::models::{JobKind, JobState};
    use sea_orm::FromQueryResult;
    #[derive(FromQueryResult)]
    struct Row {
        kind: JobKind,
        state: JobState,
        count: i64,
    }
    let rows = jobs::Entity::find()
        .select_only()
        .column(jobs::Column::Kind)
        .column(jobs::Column::State)
        .column_as(jobs::Column::Id.count(), "count")
        .group_by(jobs::Column::Kind)
        .group_by(jobs::Column::State)
        .into_model::<Row>()
        .all(db)
        .await?;
    for kind in JobKind::ALL {
        for state in JobState::ALL {
            let count = rows
                .iter()
                .find(|r| r.kind == *kind && r.state == *state)
                .map_or(0, |r| u64::try_from(r.count).unwrap_or(0));
            crate::metrics::jobs_by_state(kind.as_str(), state.as_str(), count);
        }
    }
    Ok(())
}
