//! The job engine: claiming with leases, per-org serialization, lease renewal, retries with
//! backoff, and the transaction that ends a job (with the organization's transition).

use std::sync::Arc;
use std::time::Duration;

use app::models::{JobKind, JobState, JobStep, OrgEvent, OrgStatus};
use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Alias, Expr, ExprTrait, LockBehavior, LockType, Query};
use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, DatabaseConnection, DbBackend, EntityTrait,
    QueryFilter, QueryOrder, QuerySelect, TransactionTrait,
};
use serde_json::{Value, json};
use tokio::task::JoinSet;

use super::secrets::SecretBox;
use super::{JobFailure, Outcome};
use crate::audit::Actor;
use crate::clock::{Clock, random_hex};
use crate::entities::{organizations, provisioning_jobs as jobs};
use crate::error::{Error, Result};
use crate::events::{Change, Events};
use crate::hetzner::HetznerClient;
use crate::organizations::{EventArgs, OrganizationService};
use crate::routing::RoutingService;

/// The engine's tunables (from the configuration; tests shorten them).
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// How often the engine looks for due jobs when nothing wakes it (`NEST_JOB_INTERVAL_SECS`).
    pub interval: Duration,
    /// How long a claim lasts without renewal.
    pub lease: Duration,
    /// Jobs run at once by one process.
    pub parallel: usize,
    /// How long the smoke test waits for the services (`NEST_SMOKE_TIMEOUT_SECS`).
    pub smoke_timeout: Duration,
    /// Pause between smoke-test probes.
    pub smoke_interval: Duration,
    /// How long to wait for one Hetzner action.
    pub action_timeout: Duration,
    /// First retry delay; doubles per attempt.
    pub backoff_base: Duration,
    /// Longest retry delay.
    pub backoff_max: Duration,
    /// The image servers are created from.
    pub image: String,
    /// SSH keys installed on every server.
    pub ssh_key_ids: Vec<u64>,
    /// Nest's own URL, written into each stack's `.env`.
    pub site_url: String,
    /// Organizations are served at `<slug>.<base domain>`.
    pub base_domain: String,
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            interval: Duration::from_secs(60),
            lease: Duration::from_secs(60),
            parallel: 8,
            smoke_timeout: Duration::from_secs(300),
            smoke_interval: Duration::from_secs(1),
            action_timeout: Duration::from_secs(600),
            backoff_base: Duration::from_secs(10),
            backoff_max: Duration::from_secs(600),
            image: "ubuntu-24.04".to_owned(),
            ssh_key_ids: Vec::new(),
            site_url: "http://127.0.0.1:3001".to_owned(),
            base_domain: "localhost".to_owned(),
        }
    }
}

/// One worker of the job engine. Cloning shares everything but nothing is lost: several
/// engines (in one process or many, on one database) cooperate through the table.
#[derive(Clone)]
pub struct Engine {
    /// Database pool.
    pub db: DatabaseConnection,
    /// Time source.
    pub clock: Clock,
    /// Hetzner (or the simulator).
    pub hetzner: HetznerClient,
    /// Seals and opens VPS secrets.
    pub secrets: SecretBox,
    /// Organization transitions.
    pub organizations: OrganizationService,
    /// Caddy.
    pub routing: RoutingService,
    /// Wake-ups and live updates.
    pub events: Events,
    /// Tunables.
    pub config: Arc<EngineConfig>,
    /// This worker's lease-owner name.
    pub worker: String,
    /// For smoke tests and the self-update endpoint.
    pub http: reqwest::Client,
}

/// The actor of audit rows written by jobs.
pub fn system_actor(kind: JobKind) -> Actor {
    Actor {
        user_id: None,
        email: format!("system:{kind}"),
        ip: None,
        user_agent: None,
    }
}

fn std_to_chrono(d: Duration) -> chrono::Duration {
    chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX)
}

/// The delay before attempt `attempt + 1`: `base · 2^(attempt-1)`, capped, with ±20 % jitter.
pub fn backoff(config: &EngineConfig, attempt: i32, jitter: f64) -> Duration {
    let exp = Ord::min(u32::try_from(attempt.saturating_sub(1)).unwrap_or(0), 20);
    let raw = config.backoff_base.saturating_mul(2u32.saturating_pow(exp));
    let capped = raw.min(config.backoff_max);
    capped.mul_f64(0.8 + 0.4 * jitter.clamp(0.0, 1.0))
}

fn jitter() -> f64 {
    let mut byte = [0u8; 1];
    if getrandom::fill(&mut byte).is_err() {
        return 0.5;
    }
    f64::from(byte[0]) / 255.0
}

impl Engine {
    /// A worker name unique to this process and engine.
    pub fn worker_name() -> String {
        format!(
            "{}-{}-{}",
            std::env::var("HOSTNAME").unwrap_or_else(|_| "nest".to_owned()),
            std::process::id(),
            random_hex(3)
        )
    }

    /// Runs forever: claims due jobs every `interval`, immediately when a job is queued, and
    /// when a retry falls due; reconciles Caddy on each tick.
    pub async fn run(self) {
        if let Err(e) = self.routing.reconcile().await {
            tracing::warn!(error.detail = %e, "could not re-apply routes to Caddy at start-up");
        }
        let mut running: JoinSet<()> = JoinSet::new();
        let mut last_tick = tokio::time::Instant::now();
        loop {
            while running.len() < self.config.parallel {
                match self.claim().await {
                    Ok(Some(job)) => {
                        let engine = self.clone();
                        running.spawn(async move { engine.execute(job).await });
                    }
                    Ok(None) => break,
                    Err(e) => {
                        tracing::warn!(job.kind = "claim", error.detail = %e, "could not claim jobs");
                        break;
                    }
                }
            }
            let mut wait = self.config.interval;
            if let Ok(Some(due)) = self.next_due().await {
                let until = (due - self.clock.now()).to_std().unwrap_or(Duration::ZERO);
                wait = wait.min(until.max(Duration::from_millis(200)));
            }
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                () = self.events.jobs_queued() => {}
                Some(_) = running.join_next(), if !running.is_empty() => {}
            }
            if last_tick.elapsed() >= self.config.interval {
                last_tick = tokio::time::Instant::now();
                if let Err(e) = self.routing.reconcile().await {
                    tracing::warn!(error.detail = %e, "could not reconcile Caddy");
                }
            }
        }
    }

    /// Claims and runs every job that is due now, in parallel batches, until none is left.
    /// Returns how many attempts ran. (Tests and the CLI use this; [`Engine::run`] is the
    /// long-running form.)
    pub async fn run_until_idle(&self) -> Result<usize> {
        let mut total = 0;
        loop {
            let mut batch = JoinSet::new();
            while batch.len() < self.config.parallel {
                match self.claim().await? {
                    Some(job) => {
                        let engine = self.clone();
                        batch.spawn(async move { engine.execute(job).await });
                    }
                    None => break,
                }
            }
            if batch.is_empty() {
                return Ok(total);
            }
            total += batch.len();
            while batch.join_next().await.is_some() {}
        }
    }

    /// When the next job falls due: a queued job's `run_after`, or a running job's lease expiry
    /// (its worker may have died).
    async fn next_due(&self) -> Result<Option<DateTime<Utc>>> {
        let queued = jobs::Entity::find()
            .filter(jobs::Column::State.eq(JobState::Queued))
            .order_by_asc(jobs::Column::RunAfter)
            .one(&self.db)
            .await?
            .map(|j| j.run_after);
        let lease = jobs::Entity::find()
            .filter(jobs::Column::State.eq(JobState::Running))
            .filter(jobs::Column::LeaseExpiresAt.is_not_null())
            .order_by_asc(jobs::Column::LeaseExpiresAt)
            .one(&self.db)
            .await?
            .and_then(|j| j.lease_expires_at);
        Ok(match (queued, lease) {
            (Some(a), Some(b)) => Some(Ord::min(a, b)),
            (a, b) => a.or(b),
        })
    }

    /// Claims one due job, or `None`.
    ///
    /// PostgreSQL: in a transaction, the candidate row is locked `FOR UPDATE SKIP LOCKED`, so
    /// concurrent engines pass over each other's candidates. SQLite has one writer and no row
    /// locks: the candidate is read outside a transaction (a read-then-write transaction would
    /// fail with `SQLITE_BUSY` under concurrent writers). On both, the claim itself is an
    /// update conditional on the state and attempt count that were read, so at most one
    /// engine wins a job.
    pub async fn claim(&self) -> Result<Option<jobs::Model>> {
        let job = if self.db.get_database_backend() == DbBackend::Postgres {
            let txn = self.db.begin().await?;
            let job = self.claim_on(&txn).await?;
            txn.commit().await?;
            job
        } else {
            self.claim_on(&self.db).await?
        };
        let Some(job) = job else {
            return Ok(None);
        };
        if job.state == JobState::Running {
            tracing::warn!(job.id = job.id, job.kind = %job.kind, org.id = job.organization_id, lease.owner = ?job.lease_owner, "taking over a job whose lease lapsed");
        }
        Ok(jobs::Entity::find_by_id(job.id).one(&self.db).await?)
    }

    /// Finds and claims a candidate on `conn`; returns the job as it was before the claim.
    async fn claim_on<C: ConnectionTrait>(&self, conn: &C) -> Result<Option<jobs::Model>> {
        let now = self.clock.now();
        let earlier = Alias::new("earlier");
        let blocker = Query::select()
            .expr(Expr::val(1))
            .from_as(jobs::Entity, earlier.clone())
            .and_where(
                Expr::col((earlier.clone(), jobs::Column::OrganizationId))
                    .equals((jobs::Entity, jobs::Column::OrganizationId)),
            )
            .and_where(
                Expr::col((earlier.clone(), jobs::Column::State))
                    .is_in([JobState::Queued.as_str(), JobState::Running.as_str()]),
            )
            .and_where(
                Expr::col((earlier, jobs::Column::Id))
                    .lt(Expr::col((jobs::Entity, jobs::Column::Id))),
            )
            .to_owned();
        let candidate = jobs::Entity::find()
            .filter(
                Condition::any()
                    .add(
                        Condition::all()
                            .add(jobs::Column::State.eq(JobState::Queued))
                            .add(jobs::Column::RunAfter.lte(now)),
                    )
                    .add(
                        Condition::all()
                            .add(jobs::Column::State.eq(JobState::Running))
                            .add(jobs::Column::LeaseExpiresAt.lt(now)),
                    ),
            )
            .filter(Expr::exists(blocker).not())
            .order_by_asc(jobs::Column::RunAfter)
            .order_by_asc(jobs::Column::Id)
            .lock_with_behavior(LockType::Update, LockBehavior::SkipLocked)
            .one(conn)
            .await?;
        let Some(job) = candidate else {
            return Ok(None);
        };
        let lease_until = now + std_to_chrono(self.config.lease);
        let claimed = jobs::Entity::update_many()
            .col_expr(jobs::Column::State, Expr::value(JobState::Running))
            .col_expr(jobs::Column::LeaseOwner, Expr::value(self.worker.clone()))
            .col_expr(jobs::Column::LeaseExpiresAt, Expr::value(lease_until))
            .col_expr(jobs::Column::Attempts, Expr::value(job.attempts + 1))
            .col_expr(
                jobs::Column::StartedAt,
                Expr::value(job.started_at.unwrap_or(now)),
            )
            .col_expr(jobs::Column::UpdatedAt, Expr::value(now))
            .filter(jobs::Column::Id.eq(job.id))
            .filter(jobs::Column::State.eq(job.state))
            .filter(jobs::Column::Attempts.eq(job.attempts))
            .exec(conn)
            .await?;
        Ok((claimed.rows_affected == 1).then_some(job))
    }

    /// Renews the lease until it is lost (returns) — run beside the job.
    async fn keep_lease(&self, job_id: i64) {
        let every = (self.config.lease / 3).max(Duration::from_millis(100));
        loop {
            tokio::time::sleep(every).await;
            let now = self.clock.now();
            let renewed = jobs::Entity::update_many()
                .col_expr(
                    jobs::Column::LeaseExpiresAt,
                    Expr::value(now + std_to_chrono(self.config.lease)),
                )
                .filter(jobs::Column::Id.eq(job_id))
                .filter(jobs::Column::State.eq(JobState::Running))
                .filter(jobs::Column::LeaseOwner.eq(self.worker.clone()))
                .exec(&self.db)
                .await;
            match renewed {
                Ok(r) if r.rows_affected == 1 => {}
                Ok(_) => return,
                Err(e) => {
                    tracing::warn!(job.id = job_id, error.detail = %e, "could not renew a job lease");
                }
            }
        }
    }

    /// Runs one claimed job to its end (success, retry or failure).
    pub async fn execute(&self, job: jobs::Model) {
        tracing::info!(job.id = job.id, job.kind = %job.kind, org.id = job.organization_id, job.attempt = job.attempts, "job started");
        self.events
            .publish(Change::Organization(job.organization_id));
        let result = tokio::select! {
            r = self.perform(&job) => Some(r),
            () = self.keep_lease(job.id) => None,
        };
        let finished = match result {
            None => {
                tracing::warn!(job.id = job.id, job.kind = %job.kind, "lease lost; another worker will resume the job");
                Ok(())
            }
            Some(Ok(outcome)) => self.succeed(&job, outcome).await,
            Some(Err(failure)) => self.fail(&job, failure).await,
        };
        if let Err(e) = finished {
            tracing::error!(job.id = job.id, job.kind = %job.kind, error.detail = %e, "could not record the end of a job; its lease will lapse and it will run again");
        }
        self.events
            .publish(Change::Organization(job.organization_id));
    }

    async fn perform(&self, job: &jobs::Model) -> std::result::Result<Outcome, JobFailure> {
        match job.kind {
            JobKind::Create => super::create::run(self, job).await,
            JobKind::Resize => super::resize::run(self, job).await,
            JobKind::Delete => super::delete::run(self, job).await,
            JobKind::Redeploy => super::redeploy::run(self, job).await,
        }
    }

    async fn succeed(&self, job: &jobs::Model, outcome: Outcome) -> Result<()> {
        let now = self.clock.now();
        let mut update = jobs::Entity::update_many()
            .col_expr(jobs::Column::State, Expr::value(JobState::Succeeded))
            .col_expr(jobs::Column::FinishedAt, Expr::value(Some(now)))
            .col_expr(
                jobs::Column::LeaseOwner,
                Expr::value(Option::<String>::None),
            )
            .col_expr(
                jobs::Column::LeaseExpiresAt,
                Expr::value(Option::<DateTime<Utc>>::None),
            )
            .col_expr(jobs::Column::UpdatedAt, Expr::value(now));
        if let Outcome::Skipped(reason) = &outcome {
            update = update.col_expr(
                jobs::Column::LastError,
                Expr::value(Some(format!("skipped: {reason}"))),
            );
        } else {
            update = update.col_expr(jobs::Column::LastError, Expr::value(Option::<String>::None));
        }
        update
            .filter(jobs::Column::Id.eq(job.id))
            .filter(jobs::Column::LeaseOwner.eq(self.worker.clone()))
            .exec(&self.db)
            .await?;
        tracing::info!(job.id = job.id, job.kind = %job.kind, org.id = job.organization_id, job.outcome = ?outcome, "job succeeded");
        Ok(())
    }

    async fn fail(&self, job: &jobs::Model, failure: JobFailure) -> Result<()> {
        let now = self.clock.now();
        let message: String = failure.to_string().chars().take(2000).collect();
        if let Some(step) = failure.step {
            let _ = self
                .mark(job.id, step, "failed", Some(&failure.message))
                .await;
        }
        let txn = self.db.begin().await?;
        let base = jobs::Entity::update_many()
            .col_expr(jobs::Column::LastError, Expr::value(Some(message.clone())))
            .col_expr(
                jobs::Column::LeaseOwner,
                Expr::value(Option::<String>::None),
            )
            .col_expr(
                jobs::Column::LeaseExpiresAt,
                Expr::value(Option::<DateTime<Utc>>::None),
            )
            .col_expr(jobs::Column::UpdatedAt, Expr::value(now))
            .filter(jobs::Column::Id.eq(job.id))
            .filter(jobs::Column::LeaseOwner.eq(self.worker.clone()));
        if failure.retryable && job.attempts < job.max_attempts {
            let delay = std_to_chrono(backoff(&self.config, job.attempts, jitter()));
            let run_after = failure
                .retry_at
                .map_or(now + delay, |at| Ord::max(at, now + delay));
            base.col_expr(jobs::Column::State, Expr::value(JobState::Queued))
                .col_expr(jobs::Column::RunAfter, Expr::value(run_after))
                .exec(&txn)
                .await?;
            txn.commit().await?;
            tracing::warn!(job.id = job.id, job.kind = %job.kind, org.id = job.organization_id, job.attempt = job.attempts, job.retry_at = %run_after, error.detail = %message, "job attempt failed; will retry");
            return Ok(());
        }
        let updated = base
            .col_expr(jobs::Column::State, Expr::value(JobState::Failed))
            .col_expr(jobs::Column::FinishedAt, Expr::value(Some(now)))
            .exec(&txn)
            .await?;
        if updated.rows_affected == 1 {
            // The organization moves to `error` with the reason, when its state allows it.
            match self
                .organizations
                .prepare(
                    job.organization_id,
                    OrgEvent::OperationFailed,
                    EventArgs {
                        tier_id: None,
                        reason: Some(format!("{} job failed: {message}", job.kind)),
                    },
                )
                .await
            {
                Ok(prepared) => {
                    self.organizations
                        .write(&txn, &system_actor(job.kind), prepared)
                        .await?;
                }
                Err(Error::Conflict(_)) => {}
                Err(e) => return Err(e),
            }
        }
        txn.commit().await?;
        tracing::error!(job.id = job.id, job.kind = %job.kind, org.id = job.organization_id, job.attempt = job.attempts, error.detail = %message, "job failed for good");
        Ok(())
    }

    /// Records a step's state (`running`, `done`, `failed`, `skipped`) in the job's progress.
    pub async fn mark(
        &self,
        job_id: i64,
        step: JobStep,
        state: &str,
        detail: Option<&str>,
    ) -> Result<()> {
        let Some(job) = jobs::Entity::find_by_id(job_id).one(&self.db).await? else {
            return Ok(());
        };
        let now = self.clock.now();
        let mut steps: Vec<Value> = job.progress.as_array().cloned().unwrap_or_default();
        let position = steps
            .iter()
            .position(|s| s.get("step").and_then(Value::as_str) == Some(step.as_str()));
        let mut entry = position
            .and_then(|i| steps.get(i).cloned())
            .unwrap_or_else(|| json!({"step": step.as_str(), "started_at": now}));
        if state == "running" {
            entry["started_at"] = json!(now);
            entry["finished_at"] = Value::Null;
        } else {
            entry["finished_at"] = json!(now);
        }
        entry["state"] = json!(state);
        entry["attempt"] = json!(job.attempts);
        entry["detail"] = detail.map_or(Value::Null, |d| {
            json!(d.chars().take(500).collect::<String>())
        });
        match position.and_then(|i| steps.get_mut(i)) {
            Some(slot) => *slot = entry,
            None => steps.push(entry),
        }
        jobs::Entity::update_many()
            .col_expr(jobs::Column::Progress, Expr::value(Value::Array(steps)))
            .col_expr(jobs::Column::UpdatedAt, Expr::value(now))
            .filter(jobs::Column::Id.eq(job_id))
            .exec(&self.db)
            .await?;
        self.events
            .publish(Change::Organization(job.organization_id));
        Ok(())
    }

    /// Runs `work` as `step`: marks it running, then done or failed.
    pub async fn step<T, F>(
        &self,
        job: &jobs::Model,
        step: JobStep,
        work: F,
    ) -> std::result::Result<T, JobFailure>
    where
        F: std::future::Future<Output = std::result::Result<T, JobFailure>>,
    {
        self.mark(job.id, step, "running", None)
            .await
            .map_err(|e| JobFailure::database(Some(step), &e))?;
        let result = work.await.map_err(|mut f| {
            f.step = f.step.or(Some(step));
            f
        });
        if result.is_ok() {
            self.mark(job.id, step, "done", None)
                .await
                .map_err(|e| JobFailure::database(Some(step), &e))?;
        }
        result
    }

    /// Runs a Hetzner power action (`poweroff`, `poweron`, `reboot`) as `step` and waits for it.
    pub async fn power_step(
        &self,
        job: &jobs::Model,
        step: JobStep,
        server_id: i64,
        command: &str,
    ) -> std::result::Result<(), JobFailure> {
        self.step(job, step, async {
            let hz = |err: crate::hetzner::HetznerError| JobFailure::hetzner(step, &err);
            let action = self.hetzner.power(server_id, command).await.map_err(hz)?;
            self.hetzner
                .wait_for(action, self.config.action_timeout)
                .await
                .map_err(hz)?;
            Ok(())
        })
        .await
    }

    /// The smoke test of the server at `ip` as a step; its failure is final (it already waited
    /// `smoke_timeout`).
    pub async fn smoke_step(
        &self,
        job: &jobs::Model,
        ip: &str,
    ) -> std::result::Result<(), JobFailure> {
        self.step(job, JobStep::SmokeTest, async {
            super::smoke::run(
                &self.http,
                ip,
                self.config.smoke_timeout,
                self.config.smoke_interval,
            )
            .await
            .map_err(|m| JobFailure::fatal(Some(JobStep::SmokeTest), m))
        })
        .await
    }

    /// Loads the job's organization.
    pub async fn organization(
        &self,
        job: &jobs::Model,
    ) -> std::result::Result<organizations::Model, JobFailure> {
        organizations::Entity::find_by_id(job.organization_id)
            .one(&self.db)
            .await
            .map_err(|e| JobFailure::database(None, &Error::from(e)))?
            .ok_or_else(|| JobFailure::fatal(None, "the organization no longer exists"))
    }

    /// Applies a system event to the job's organization (its own transaction), then pushes
    /// routes and notifies pages.
    pub async fn transition(
        &self,
        job: &jobs::Model,
        event: OrgEvent,
        step: JobStep,
    ) -> std::result::Result<(), JobFailure> {
        self.organizations
            .apply(
                &system_actor(job.kind),
                job.organization_id,
                event,
                EventArgs::default(),
            )
            .await
            .map(|_| ())
            .map_err(|e| match e {
                Error::Conflict(m) => JobFailure::fatal(Some(step), m),
                other => JobFailure::database(Some(step), &other),
            })
    }
}

/// Whether an organization in `status` still wants its server created.
pub fn wants_server(status: OrgStatus) -> bool {
    matches!(
        status,
        OrgStatus::Pending | OrgStatus::Provisioning | OrgStatus::Deploying
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_per_attempt_and_stops_at_the_cap() {
        let config = EngineConfig::default();
        assert_eq!(backoff(&config, 1, 0.5), Duration::from_secs(10));
        assert_eq!(backoff(&config, 2, 0.5), Duration::from_secs(20));
        assert_eq!(backoff(&config, 3, 0.5), Duration::from_secs(40));
        assert_eq!(backoff(&config, 30, 0.5), Duration::from_secs(600));
    }

    #[test]
    fn jitter_spreads_a_delay_by_at_most_twenty_percent() {
        let config = EngineConfig::default();
        assert_eq!(backoff(&config, 1, 0.0), Duration::from_secs(8));
        assert_eq!(backoff(&config, 1, 1.0), Duration::from_secs(12));
    }
}
