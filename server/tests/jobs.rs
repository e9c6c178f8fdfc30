//! The domain-free job queue, its scheduler and the `/jobs` surface, on SQLite and PostgreSQL:
//! lease tokens (a stale or missing token renews nothing, records nothing, completes nothing),
//! takeovers counting as attempts, panics and overlong attempts as failed attempts, the
//! failure hook, a scheduled task once per slot across three replicas, `/healthz`, and retry
//! from `/jobs` with its audit row.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[macro_use]
mod support;

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use app::models::{JobKind, JobPayload, JobState, JobStep, StepState};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ColumnTrait, DatabaseConnection, DatabaseTransaction, EntityTrait, PaginatorTrait, QueryFilter,
};
use server::clock::Clock;
use server::entities::{audit_log, jobs};
use server::jobs::scheduler::{Periodic, Scheduler, SchedulerHealth};
use server::jobs::{Attempt, Handler, JobFailure, NewJob, Outcome, QueueConfig, Registry, Worker};

/// Every log line of this test binary, for the assertions on what the queue logs.
fn logs() -> &'static Arc<Mutex<Vec<u8>>> {
    static LOGS: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    LOGS.get_or_init(|| {
        let buffer = Arc::new(Mutex::new(Vec::new()));
        let sink = buffer.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_ansi(false)
            .with_writer(move || Sink(sink.clone()))
            .finish();
        let _ = tracing::subscriber::set_global_default(subscriber);
        buffer
    })
}

struct Sink(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Sink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn logged(needle: &str) -> Vec<String> {
    let text = String::from_utf8_lossy(&logs().lock().unwrap()).into_owned();
    text.lines()
        .filter(|l| l.contains(needle))
        .map(str::to_owned)
        .collect()
}

/// What the test handler does on each run.
#[derive(Clone, Copy)]
enum Behaviour {
    Succeed,
    Panic,
    FailRetryable,
    Hang,
}

/// A handler tests control; it counts runs and failure hooks.
struct TestHandler {
    behaviour: Mutex<Behaviour>,
    runs: AtomicU32,
    failed_hooks: AtomicU32,
}

impl TestHandler {
    fn new(behaviour: Behaviour) -> Arc<Self> {
        Arc::new(Self {
            behaviour: Mutex::new(behaviour),
            runs: AtomicU32::new(0),
            failed_hooks: AtomicU32::new(0),
        })
    }
}

#[async_trait::async_trait]
impl Handler for TestHandler {
    async fn run(&self, attempt: &Attempt) -> Result<Outcome, JobFailure> {
        self.runs.fetch_add(1, Ordering::SeqCst);
        let behaviour = *self.behaviour.lock().unwrap();
        attempt
            .step(JobStep::Secrets, async move {
                match behaviour {
                    Behaviour::Succeed => Ok(()),
                    Behaviour::Panic => panic!("boom in a test job"),
                    Behaviour::FailRetryable => Err(JobFailure::transient(None, "try again later")),
                    Behaviour::Hang => {
                        tokio::time::sleep(Duration::from_secs(3600)).await;
                        Ok(())
                    }
                }
            })
            .await?;
        Ok(Outcome::Done)
    }

    async fn failed(
        &self,
        _txn: &DatabaseTransaction,
        _job: &jobs::Model,
        _message: &str,
    ) -> server::error::Result<()> {
        self.failed_hooks.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
}

fn config() -> QueueConfig {
    QueueConfig {
        interval: Duration::from_secs(60),
        lease: Duration::from_secs(30),
        parallel: 4,
        backoff_base: Duration::from_secs(10),
        backoff_max: Duration::from_secs(600),
        attempt_timeout: Duration::from_secs(60),
    }
}

fn worker(
    db: &DatabaseConnection,
    clock: &Clock,
    config: QueueConfig,
    handler: Arc<TestHandler>,
) -> Worker {
    Worker {
        db: db.clone(),
        clock: clock.clone(),
        events: server::events::Events::default(),
        config: Arc::new(config),
        registry: Arc::new(Registry::default().with(&[JobKind::JobPrune], handler)),
        name: Worker::new_name(),
    }
}

async fn queue(db: &DatabaseConnection, clock: &Clock, max_attempts: i32) -> jobs::Model {
    let now = clock.now();
    server::jobs::enqueue(
        db,
        NewJob {
            payload: JobPayload::JobPrune,
            unique_key: None,
            max_attempts,
            run_after: now,
        },
        now,
    )
    .await
    .unwrap()
    .unwrap()
}

async fn reload(db: &DatabaseConnection, id: i64) -> jobs::Model {
    jobs::Entity::find_by_id(id).one(db).await.unwrap().unwrap()
}

async fn backdate_lease(db: &DatabaseConnection, clock: &Clock, id: i64) {
    jobs::Entity::update_many()
        .col_expr(
            jobs::Column::LeaseExpiresAt,
            Expr::value(clock.now() - chrono::Duration::seconds(1)),
        )
        .filter(jobs::Column::Id.eq(id))
        .exec(db)
        .await
        .unwrap();
}

async fn a_stale_or_missing_lease_token_renews_records_and_completes_nothing(
    db: &DatabaseConnection,
) {
    let clock = Clock::system();
    let handler = TestHandler::new(Behaviour::Succeed);
    let first = worker(db, &clock, config(), handler.clone());
    let job = queue(db, &clock, 5).await;
    let stale = first.claim().await.unwrap().unwrap();
    let stale_token = reload(db, job.id).await.lease_token.unwrap();
    assert!(first.renew(job.id, &stale_token).await.unwrap());
    assert!(
        !first.renew(job.id, "").await.unwrap(),
        "an empty token renews nothing"
    );
    assert!(!first.renew(job.id, "0123456789abcdef").await.unwrap());

    // The lease lapses; a second worker (in the same process) takes the job over.
    backdate_lease(db, &clock, job.id).await;
    let second = first.another();
    let current = second.claim().await.unwrap().unwrap();
    let token = reload(db, job.id).await.lease_token.unwrap();
    assert_ne!(token, stale_token);
    assert_eq!(current.attempts, 2, "a takeover counts as an attempt");

    // The first worker can neither renew nor record progress any more…
    assert!(!first.renew(job.id, &stale_token).await.unwrap());
    stale
        .mark(JobStep::Secrets, StepState::Failed, Some("from the past"))
        .await
        .unwrap();
    assert!(reload(db, job.id).await.progress.steps().is_empty());
    // …nor complete the job: its attempt runs and its result is discarded.
    first.execute(stale).await;
    let after = reload(db, job.id).await;
    assert_eq!(after.state, JobState::Running);
    assert_eq!(after.lease_token.as_deref(), Some(token.as_str()));

    // The holder completes it.
    second.execute(current).await;
    let done = reload(db, job.id).await;
    assert_eq!(done.state, JobState::Succeeded);
    assert_eq!(done.lease_token, None);
}

async fn a_panic_inside_a_job_is_a_failed_attempt_with_its_log_line(db: &DatabaseConnection) {
    logs();
    let clock = Clock::system();
    let handler = TestHandler::new(Behaviour::Panic);
    let w = worker(db, &clock, config(), handler.clone());
    let job = queue(db, &clock, 2).await;
    assert_eq!(w.run_until_idle().await.unwrap(), 1);
    let after = reload(db, job.id).await;
    assert_eq!(after.state, JobState::Queued, "retried after backoff");
    assert_eq!(after.attempts, 1);
    assert!(
        after
            .last_error
            .as_deref()
            .unwrap()
            .contains("panicked: boom in a test job"),
        "{after:?}"
    );
    let lines = logged(&format!("job.id={}", job.id));
    assert!(
        lines
            .iter()
            .any(|l| l.contains("a job panicked") && l.contains("job.kind=job_prune")),
        "{lines:#?}"
    );
    // The last attempt's panic ends the job failed, with the domain's hook.
    clock.advance(chrono::Duration::seconds(60));
    assert_eq!(w.run_until_idle().await.unwrap(), 1);
    let after = reload(db, job.id).await;
    assert_eq!(after.state, JobState::Failed);
    assert_eq!(after.attempts, 2);
    assert_eq!(handler.failed_hooks.load(Ordering::SeqCst), 1);
    assert_eq!(handler.runs.load(Ordering::SeqCst), 2);
}

async fn lapsed_takeovers_count_as_attempts_and_end_failed_at_the_maximum(db: &DatabaseConnection) {
    let clock = Clock::system();
    let handler = TestHandler::new(Behaviour::Succeed);
    let w = worker(db, &clock, config(), handler.clone());
    let job = queue(db, &clock, 2).await;
    // Two workers claim the job in turn and die.
    for attempt in 1..=2 {
        let dead = w.another();
        let claimed = dead.claim().await.unwrap().unwrap();
        assert_eq!(claimed.attempts, attempt);
        backdate_lease(db, &clock, job.id).await;
    }
    // No third run: the job has used its attempts, so the next claim ends it.
    assert!(w.claim().await.unwrap().is_none());
    let after = reload(db, job.id).await;
    assert_eq!(after.state, JobState::Failed);
    assert!(
        after
            .last_error
            .unwrap()
            .contains("all 2 attempts are used")
    );
    assert_eq!(handler.runs.load(Ordering::SeqCst), 0);
    assert_eq!(handler.failed_hooks.load(Ordering::SeqCst), 1);
}

async fn an_attempt_that_runs_too_long_is_stopped_and_counted(db: &DatabaseConnection) {
    let clock = Clock::system();
    let handler = TestHandler::new(Behaviour::Hang);
    let mut c = config();
    c.attempt_timeout = Duration::from_millis(300);
    let w = worker(db, &clock, c, handler.clone());
    let job = queue(db, &clock, 1).await;
    w.run_until_idle().await.unwrap();
    let after = reload(db, job.id).await;
    assert_eq!(after.state, JobState::Failed);
    assert!(after.last_error.unwrap().contains("did not finish within"));
}

async fn a_job_without_a_handler_fails_at_once(db: &DatabaseConnection) {
    let clock = Clock::system();
    let w = worker(db, &clock, config(), TestHandler::new(Behaviour::Succeed));
    let now = clock.now();
    let job = server::jobs::enqueue(db, NewJob::now(JobPayload::SessionPurge, now), now)
        .await
        .unwrap()
        .unwrap();
    w.run_until_idle().await.unwrap();
    let after = reload(db, job.id).await;
    assert_eq!(after.state, JobState::Failed);
    assert!(after.last_error.unwrap().contains("no handler"));
}

async fn retryable_failures_wait_for_their_backoff(db: &DatabaseConnection) {
    let clock = Clock::system();
    let handler = TestHandler::new(Behaviour::FailRetryable);
    let w = worker(db, &clock, config(), handler.clone());
    let job = queue(db, &clock, 3).await;
    w.run_until_idle().await.unwrap();
    let after = reload(db, job.id).await;
    assert_eq!(after.state, JobState::Queued);
    let wait = after.run_after - clock.now();
    assert!((7..=13).contains(&wait.num_seconds()), "{wait}");
    assert_eq!(
        after.progress.failed_step().map(|s| s.step),
        Some(JobStep::Secrets)
    );
    assert_eq!(
        w.run_until_idle().await.unwrap(),
        0,
        "not before its backoff"
    );
    *handler.behaviour.lock().unwrap() = Behaviour::Succeed;
    clock.advance(chrono::Duration::seconds(15));
    assert_eq!(w.run_until_idle().await.unwrap(), 1);
    assert_eq!(reload(db, job.id).await.state, JobState::Succeeded);
}

async fn a_scheduled_task_runs_once_per_slot_across_three_replicas(db: &DatabaseConnection) {
    let clock = Clock::system();
    let handler = TestHandler::new(Behaviour::Succeed);
    let tasks = Arc::new(vec![Periodic {
        name: "test_prune",
        period: Duration::from_secs(300),
        payload: JobPayload::JobPrune,
        max_attempts: 1,
    }]);
    let replicas: Vec<Scheduler> = (0..3)
        .map(|_| Scheduler {
            db: db.clone(),
            clock: clock.clone(),
            events: server::events::Events::default(),
            tasks: tasks.clone(),
            health: SchedulerHealth::default(),
        })
        .collect();
    let workers: Vec<Worker> = (0..3)
        .map(|_| worker(db, &clock, config(), handler.clone()))
        .collect();
    // Start well inside a slot, so that both rounds below fall in the same one.
    let into_slot = clock.now().timestamp().rem_euclid(300);
    if into_slot > 200 {
        clock.advance(chrono::Duration::seconds(300 - into_slot + 1));
    }
    // The three replicas tick at once, twice, within one slot: one job in all.
    for expected in [1, 0] {
        let (a, b, c) = tokio::join!(replicas[0].tick(), replicas[1].tick(), replicas[2].tick());
        assert_eq!(a.unwrap() + b.unwrap() + c.unwrap(), expected);
    }
    let (x, y, z) = tokio::join!(
        workers[0].run_until_idle(),
        workers[1].run_until_idle(),
        workers[2].run_until_idle()
    );
    assert_eq!(x.unwrap() + y.unwrap() + z.unwrap(), 1);
    assert_eq!(handler.runs.load(Ordering::SeqCst), 1);
    // Every replica was down for five periods: the missed task runs once, not five times.
    clock.advance(chrono::Duration::seconds(5 * 300));
    for replica in &replicas {
        replica.tick().await.unwrap();
    }
    workers[0].run_until_idle().await.unwrap();
    assert_eq!(handler.runs.load(Ordering::SeqCst), 2);
    let count = jobs::Entity::find()
        .filter(jobs::Column::Kind.eq(JobKind::JobPrune))
        .count(db)
        .await
        .unwrap();
    assert_eq!(count, 2);
}

async fn healthz_reports_the_scheduler_and_the_queue(db: &DatabaseConnection) {
    let server = support::TestServer::start(db).await;
    let scheduler = server.app.scheduler();
    let running = tokio::spawn(scheduler.run());
    tokio::time::sleep(Duration::from_millis(200)).await;
    let body: serde_json::Value = reqwest::get(format!("{}/healthz", server.base))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(body["status"], "ok", "{body}");
    assert_eq!(body["scheduler"]["running"], true, "{body}");
    assert!(
        body["queue"]["due"].as_u64().unwrap() >= 1,
        "the first tick queued its tasks: {body}"
    );
    running.abort();
    // Three periods without a tick: the process is unhealthy.
    server.clock.advance(chrono::Duration::seconds(16));
    let reply = reqwest::get(format!("{}/healthz", server.base))
        .await
        .unwrap();
    assert_eq!(reply.status(), 503);
    let body: serde_json::Value = reply.json().await.unwrap();
    assert_eq!(body["scheduler"]["stale"], true, "{body}");
}

async fn a_failed_job_is_listed_and_retried_from_jobs_with_an_audit_row(db: &DatabaseConnection) {
    let server = support::TestServer::start(db).await;
    let mut admin = support::setup_superadmin(&server, "root@nest.test").await;
    let clock = server.clock.clone();
    let handler = TestHandler::new(Behaviour::FailRetryable);
    let w = worker(db, &clock, config(), handler.clone());
    let job = queue(db, &clock, 1).await;
    w.run_until_idle().await.unwrap();
    assert_eq!(reload(db, job.id).await.state, JobState::Failed);

    let listed = admin.call("list_jobs", &[("query[state]", "failed")]).await;
    assert_eq!(listed.status, 200, "{listed:?}");
    let page: app::models::JobPage = serde_json::from_value(listed.body.clone()).unwrap();
    assert_eq!(page.rows.len(), 1);
    assert_eq!(page.rows[0].id, job.id);
    assert_eq!(
        page.rows[0].last_error.as_deref(),
        Some("Generate secrets: try again later")
    );
    // No filter at all (the page's first call): the form body is empty, and the query is the
    // default one, not a missing argument.
    for (function, argument) in [
        ("list_jobs", "query"),
        ("list_organizations", "query"),
        ("list_vpses", "query"),
        ("list_incidents", "query"),
        ("list_invoices", "query"),
        ("list_audit", "filter"),
    ] {
        let unfiltered = admin.call(function, &[]).await;
        assert_eq!(
            unfiltered.status, 200,
            "{function}({argument}): {unfiltered:?}"
        );
    }

    let id = job.id.to_string();
    let retried = admin.call("retry_job", &[("id", &id)]).await;
    assert_eq!(retried.status, 200, "{retried:?}");
    let after = reload(db, job.id).await;
    assert_eq!((after.state, after.attempts), (JobState::Queued, 0));
    let audit = audit_log::Entity::find()
        .filter(audit_log::Column::Action.eq("job.retried"))
        .one(db)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(audit.target_id.as_deref(), Some(id.as_str()));

    // Only a failed job can be retried.
    let again = admin.call("retry_job", &[("id", &id)]).await;
    assert_eq!(again.status, 409, "{again:?}");
    let missing = admin.call("retry_job", &[("id", "999999")]).await;
    assert_eq!(missing.status, 404, "{missing:?}");

    *handler.behaviour.lock().unwrap() = Behaviour::Succeed;
    w.run_until_idle().await.unwrap();
    assert_eq!(reload(db, job.id).await.state, JobState::Succeeded);
}

on_both_databases!(
    a_stale_or_missing_lease_token_renews_records_and_completes_nothing,
    a_panic_inside_a_job_is_a_failed_attempt_with_its_log_line,
    lapsed_takeovers_count_as_attempts_and_end_failed_at_the_maximum,
    an_attempt_that_runs_too_long_is_stopped_and_counted,
    a_job_without_a_handler_fails_at_once,
    retryable_failures_wait_for_their_backoff,
    a_scheduled_task_runs_once_per_slot_across_three_replicas,
    healthz_reports_the_scheduler_and_the_queue,
    a_failed_job_is_listed_and_retried_from_jobs_with_an_audit_row,
);

/// A worker whose database stops answering stops its job once renewals have failed for a
/// whole lease period (SQLite: its own pool on the test's file, closed mid-job).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_that_cannot_renew_for_a_whole_lease_period_stops_its_job() {
    logs();
    let t = support::TestDb::migrated(support::Engine::Sqlite)
        .await
        .unwrap();
    let clock = Clock::system();
    let own = server::db::connect(&t.url).await.unwrap();
    let handler = TestHandler::new(Behaviour::Hang);
    let mut c = config();
    c.lease = Duration::from_millis(600);
    let w = worker(&own, &clock, c, handler.clone());
    let job = queue(&t.db, &clock, 3).await;
    let attempt = w.claim().await.unwrap().unwrap();
    let running = tokio::spawn({
        let w = w.clone();
        async move { w.execute(attempt).await }
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    own.close_by_ref().await.unwrap();
    // Without the stop, the handler would hang for an hour.
    tokio::time::timeout(Duration::from_secs(20), running)
        .await
        .expect("the worker stopped the job")
        .unwrap();
    let lines = logged(&format!("job.id={}", job.id));
    assert!(
        lines
            .iter()
            .any(|l| l.contains("could not renew the lease for a whole lease period")),
        "{lines:#?}"
    );
    t.cleanup().await;
}
