//! Signals: "a job was queued" for the job engine, and "this changed" for the live-update
//! channel that open dashboard pages listen to (`/api/events`) — within one process, and, on
//! PostgreSQL, between replicas through `LISTEN/NOTIFY`.
//!
//! **The change count (`seq`).** Every change has a number. On SQLite (one process) it is a
//! counter in memory. On PostgreSQL it is global: the sequence `nest_change_seq` numbers each
//! change as it is sent (`nextval` in the same statement as `pg_notify`), and each replica's
//! count is the highest number it has heard (read from the sequence at start and after a
//! reconnection, then raised by every notification). A page is stamped with the count of the
//! replica that rendered it and passes it back as `?since=N`; whichever replica it connects to
//! sends a `resync` first when its own count differs. Because changes are published after their
//! transaction commits, a change the render could not see has a number above N: the replica
//! connected to has either heard it (its count is above N: resync) or not yet (it arrives on the
//! stream). So nothing is lost; a replica that lags behind another may cause a needless resync.
//!
//! On PostgreSQL, changes reach this replica's own pages through its listener too (once, in
//! the order PostgreSQL delivers them), so every replica sees the same numbers.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

pub use app::models::Change;
use sea_orm::{DatabaseConnection, DbBackend};
use sqlx::postgres::{PgListener, PgPool};
use tokio::sync::{Notify, broadcast, mpsc};

/// The PostgreSQL channel carrying changes: `{"seq": N, "change": {...}}`.
pub const CHANGES_CHANNEL: &str = "nest_changes";
/// The PostgreSQL channel carrying job wake-ups; the payload is the sending replica's id.
pub const JOBS_CHANNEL: &str = "nest_jobs";
/// The PostgreSQL sequence numbering changes across replicas.
pub const CHANGE_SEQUENCE: &str = "nest_change_seq";

const CREATE_SEQUENCE_SQL: &str = "CREATE SEQUENCE IF NOT EXISTS nest_change_seq";
const READ_SEQUENCE_SQL: &str =
    "SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM nest_change_seq";
/// Numbers and sends changes in one statement (each number is taken as it is sent, in the
/// array's order, which is the order PostgreSQL delivers them in).
const NOTIFY_CHANGE_SQL: &str = "SELECT pg_notify('nest_changes', json_build_object('seq', nextval('nest_change_seq'), 'change', c::json)::text) FROM unnest($1::text[]) AS c";
const NOTIFY_JOBS_SQL: &str = "SELECT pg_notify('nest_jobs', $1)";

/// How many signals may wait for the notifier before new ones are dropped (with a resync).
const OUTBOX: usize = 4096;
/// At most this many waiting signals are sent in one statement.
const NOTIFY_BATCH: usize = 256;
/// The longest pause between two attempts to reconnect the listener.
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// What an open page is told.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    /// Something changed.
    Change(Change),
    /// Changes may have been missed (the replica lost its listener for a while): refetch all.
    Resync,
}

/// Why the bridge between replicas could not start.
#[derive(Debug, thiserror::Error)]
pub enum EventsError {
    /// The change sequence could not be created or read.
    #[error("could not prepare the change sequence {CHANGE_SEQUENCE}: {0}")]
    Sequence(#[source] sqlx::Error),
    /// `LISTEN` on the channels failed.
    #[error("could not listen for other replicas' changes: {0}")]
    Listen(#[source] sqlx::Error),
}

/// What the notifier sends to PostgreSQL.
#[derive(Debug)]
enum Outgoing {
    Change(Change),
    JobsQueued,
}

/// This process's side of the signals: the engine's wake-up, the pages' broadcast, the count.
#[derive(Debug)]
struct Local {
    jobs: Notify,
    changes: broadcast::Sender<Signal>,
    /// The highest change number heard (PostgreSQL) or published (SQLite).
    seq: AtomicU64,
    /// This replica's id, so it ignores its own job wake-ups coming back.
    origin: String,
}

impl Local {
    fn new() -> Self {
        let mut id = [0u8; 8];
        // A random id only tells replicas apart; without one, a replica wakes itself twice.
        let _ = getrandom::fill(&mut id);
        Self {
            jobs: Notify::new(),
            changes: broadcast::channel(1024).0,
            seq: AtomicU64::new(0),
            origin: id.iter().map(|b| format!("{b:02x}")).collect(),
        }
    }

    fn resync(&self) {
        let _ = self.changes.send(Signal::Resync);
    }

    /// A notification from PostgreSQL (any replica, this one included).
    fn receive(&self, channel: &str, payload: &str) {
        if channel == JOBS_CHANNEL {
            if payload != self.origin {
                self.jobs.notify_one();
            }
            return;
        }
        #[derive(serde::Deserialize)]
        struct Numbered {
            seq: u64,
            change: Change,
        }
        match serde_json::from_str::<Numbered>(payload) {
            Ok(n) => {
                // The count first: a page subscribing now either receives the change or sees a
                // count that says it missed it.
                self.seq.fetch_max(n.seq, Ordering::SeqCst);
                let _ = self.changes.send(Signal::Change(n.change));
            }
            Err(e) => {
                tracing::warn!(error.detail = %e, "live updates: an unreadable notification; resyncing open pages");
                self.resync();
            }
        }
    }
}

/// The signals of one Nest process. Cloning shares them.
#[derive(Clone, Debug)]
pub struct Events {
    local: Arc<Local>,
    /// On PostgreSQL: the notifier's queue. `None`: this process is the only one.
    outbox: Option<mpsc::Sender<Outgoing>>,
}

impl Default for Events {
    /// In-process only (SQLite, and tools that run beside no dashboard).
    fn default() -> Self {
        Self {
            local: Arc::new(Local::new()),
            outbox: None,
        }
    }
}

impl Events {
    /// The signals for a process serving `db`: in-process on SQLite; on PostgreSQL, bridged to
    /// the other replicas. The bridge creates the change sequence if needed, listens on both
    /// channels before returning (so nothing sent after this returns is missed), and spawns
    /// the notifier and the listener; the listener reconnects with backoff when the database
    /// goes away, then resyncs open pages.
    pub async fn connect(db: &DatabaseConnection) -> Result<Self, EventsError> {
        if db.get_database_backend() != DbBackend::Postgres {
            return Ok(Self::default());
        }
        let pool = db.get_postgres_connection_pool().clone();
        create_sequence(&pool).await?;
        let listener = listen(&pool).await.map_err(EventsError::Listen)?;
        let local = Arc::new(Local::new());
        // After LISTEN: a change numbered before is counted here, one after is heard.
        catch_up(&pool, &local)
            .await
            .map_err(EventsError::Sequence)?;
        let (outbox, queue) = mpsc::channel(OUTBOX);
        tokio::spawn(notify_loop(pool.clone(), queue, local.clone()));
        tokio::spawn(listen_loop(pool, Some(listener), local.clone()));
        Ok(Self {
            local,
            outbox: Some(outbox),
        })
    }

    /// Wakes the job engine: a job was queued. On PostgreSQL, every replica's engine wakes.
    pub fn wake_jobs(&self) {
        self.local.jobs.notify_one();
        self.send(Outgoing::JobsQueued);
    }

    /// Resolves when [`Events::wake_jobs`] was called (or had been, since the last wait), here
    /// or on another replica.
    pub async fn jobs_queued(&self) {
        self.local.jobs.notified().await;
    }

    /// Tells open pages that something changed (dropped when no page listens). Never waits: on
    /// PostgreSQL it queues the change for the notifier, and pages hear it from the listener.
    pub fn publish(&self, change: Change) {
        if self.outbox.is_some() {
            self.send(Outgoing::Change(change));
        } else {
            self.local.seq.fetch_add(1, Ordering::SeqCst);
            let _ = self.local.changes.send(Signal::Change(change));
        }
    }

    /// The change count: how many changes were published (SQLite), or the highest change
    /// number this replica has heard (PostgreSQL). See the module's documentation.
    pub fn seq(&self) -> u64 {
        self.local.seq.load(Ordering::SeqCst)
    }

    /// A receiver of every signal from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Signal> {
        self.local.changes.subscribe()
    }

    /// Whether signals travel between replicas (PostgreSQL).
    pub fn is_shared(&self) -> bool {
        self.outbox.is_some()
    }

    fn send(&self, outgoing: Outgoing) {
        let Some(outbox) = &self.outbox else {
            return;
        };
        if let Err(e) = outbox.try_send(outgoing) {
            tracing::warn!(error.detail = %e, "live updates: the notifier is behind; a signal was dropped and open pages resync");
            self.local.resync();
        }
    }
}

/// `CREATE SEQUENCE IF NOT EXISTS`, retried: two replicas starting at once may race on it.
async fn create_sequence(pool: &PgPool) -> Result<(), EventsError> {
    let mut attempt = 0;
    loop {
        match sqlx::query(CREATE_SEQUENCE_SQL).execute(pool).await {
            Ok(_) => return Ok(()),
            Err(e) if attempt < 3 => {
                attempt += 1;
                tracing::debug!(error.detail = %e, "creating the change sequence: retrying");
                tokio::time::sleep(Duration::from_millis(50 * attempt)).await;
            }
            Err(e) => return Err(EventsError::Sequence(e)),
        }
    }
}

/// A listener on both channels, on a connection of its own from the pool.
async fn listen(pool: &PgPool) -> Result<PgListener, sqlx::Error> {
    let mut listener = PgListener::connect_with(pool).await?;
    // Reconnection is ours (with backoff, logged, and followed by a resync).
    listener.eager_reconnect(false);
    listener.listen_all([CHANGES_CHANNEL, JOBS_CHANNEL]).await?;
    Ok(listener)
}

/// Raises the count to the sequence's current value (changes numbered while not listening).
async fn catch_up(pool: &PgPool, local: &Local) -> Result<(), sqlx::Error> {
    let last: i64 = sqlx::query_scalar(READ_SEQUENCE_SQL)
        .fetch_one(pool)
        .await?;
    local
        .seq
        .fetch_max(u64::try_from(last).unwrap_or(0), Ordering::SeqCst);
    Ok(())
}

/// Sends queued signals to PostgreSQL, in order, until every [`Events`] is gone.
async fn notify_loop(pool: PgPool, mut queue: mpsc::Receiver<Outgoing>, local: Arc<Local>) {
    let mut waiting = Vec::with_capacity(NOTIFY_BATCH);
    // Whatever queued up while the last statement ran goes out together: a burst of changes
    // costs PostgreSQL one statement, not one commit each.
    while queue.recv_many(&mut waiting, NOTIFY_BATCH).await > 0 {
        let mut changes = Vec::with_capacity(waiting.len());
        let mut jobs_queued = false;
        for outgoing in waiting.drain(..) {
            match outgoing {
                Outgoing::Change(change) => match serde_json::to_string(&change) {
                    Ok(json) => changes.push(json),
                    Err(e) => {
                        tracing::warn!(error.detail = %e, "live updates: could not encode a change");
                    }
                },
                Outgoing::JobsQueued => jobs_queued = true,
            }
        }
        if !changes.is_empty()
            && !send(&pool, &local, || {
                sqlx::query(NOTIFY_CHANGE_SQL).bind(changes.as_slice())
            })
            .await
        {
            return;
        }
        if jobs_queued
            && !send(&pool, &local, || {
                sqlx::query(NOTIFY_JOBS_SQL).bind(local.origin.as_str())
            })
            .await
        {
            return;
        }
    }
}

/// Runs a notification statement, retrying (4 attempts, from 100 ms, doubling); when it
/// cannot be sent, open pages resync. `false` once the pool is closed.
async fn send<'q>(
    pool: &PgPool,
    local: &Local,
    query: impl Fn() -> sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments>,
) -> bool {
    let mut delay = Duration::from_millis(100);
    for attempt in 1..=4 {
        match query().execute(pool).await {
            Ok(_) => return true,
            Err(sqlx::Error::PoolClosed) => return false,
            Err(e) if attempt < 4 => {
                tracing::warn!(error.detail = %e, retry.in_ms = delay.as_millis(), "live updates: could not notify the other replicas; retrying");
                tokio::time::sleep(delay).await;
                delay *= 2;
            }
            Err(e) => {
                tracing::warn!(error.detail = %e, "live updates: could not notify the other replicas; open pages resync");
                local.resync();
            }
        }
    }
    true
}

/// Hears every replica's notifications (this one's included) and passes them to local pages
/// and the engine; when the connection drops, reconnects with backoff (doubling to 30 s), then
/// catches the count up, resyncs open pages and wakes the engine (it may have missed
/// notifications meanwhile). Ends when the pool is closed.
async fn listen_loop(pool: PgPool, mut listener: Option<PgListener>, local: Arc<Local>) {
    let mut delay = Duration::from_millis(250);
    loop {
        let Some(current) = listener.as_mut() else {
            if pool.is_closed() {
                return;
            }
            tokio::time::sleep(delay).await;
            match listen(&pool).await {
                Ok(fresh) => {
                    listener = Some(fresh);
                    delay = Duration::from_millis(250);
                    if let Err(e) = catch_up(&pool, &local).await {
                        tracing::warn!(error.detail = %e, "live updates: could not read the change sequence");
                    }
                    tracing::info!(
                        "live updates: listening to the other replicas again; open pages resync"
                    );
                    local.resync();
                    local.jobs.notify_one();
                }
                Err(sqlx::Error::PoolClosed) => return,
                Err(e) => {
                    delay = (delay * 2).min(MAX_BACKOFF);
                    tracing::warn!(error.detail = %e, retry.in_ms = delay.as_millis(), "live updates: could not reconnect the listener");
                }
            }
            continue;
        };
        match current.try_recv().await {
            Ok(Some(notification)) => local.receive(notification.channel(), notification.payload()),
            Ok(None) => {
                tracing::warn!("live updates: the database connection was lost; reconnecting");
                listener = None;
            }
            Err(sqlx::Error::PoolClosed) => return,
            Err(e) => {
                tracing::warn!(error.detail = %e, "live updates: the listener failed; reconnecting");
                listener = None;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_statements_use_the_documented_channel_and_sequence_names() {
        assert!(NOTIFY_CHANGE_SQL.contains(&format!("pg_notify('{CHANGES_CHANNEL}'")));
        assert!(NOTIFY_CHANGE_SQL.contains(&format!("nextval('{CHANGE_SEQUENCE}')")));
        assert!(NOTIFY_JOBS_SQL.contains(&format!("pg_notify('{JOBS_CHANNEL}'")));
        assert!(CREATE_SEQUENCE_SQL.ends_with(CHANGE_SEQUENCE));
        assert!(READ_SEQUENCE_SQL.ends_with(CHANGE_SEQUENCE));
    }

    #[test]
    fn in_process_publishing_counts_and_delivers() {
        let events = Events::default();
        let mut rx = events.subscribe();
        events.publish(Change::Organization(7));
        assert_eq!(events.seq(), 1);
        assert_eq!(
            rx.try_recv().unwrap(),
            Signal::Change(Change::Organization(7))
        );
        assert!(!events.is_shared());
    }

    #[test]
    fn a_notification_raises_the_count_to_the_highest_number_heard() {
        let local = Local::new();
        let mut rx = local.changes.subscribe();
        local.receive(
            CHANGES_CHANNEL,
            r#"{"seq" : 5, "change" : {"kind":"vps","id":3}}"#,
        );
        local.receive(
            CHANGES_CHANNEL,
            r#"{"seq":4,"change":{"kind":"organization","id":1}}"#,
        );
        assert_eq!(local.seq.load(Ordering::SeqCst), 5);
        assert_eq!(rx.try_recv().unwrap(), Signal::Change(Change::Vps(3)));
        assert_eq!(
            rx.try_recv().unwrap(),
            Signal::Change(Change::Organization(1))
        );
        local.receive(CHANGES_CHANNEL, "not json");
        assert_eq!(rx.try_recv().unwrap(), Signal::Resync);
    }

    #[test]
    fn a_replica_ignores_its_own_job_wake_up_but_not_another_s() {
        let local = Local::new();
        use futures::FutureExt;
        local.receive(JOBS_CHANNEL, &local.origin.clone());
        assert!(
            local.jobs.notified().now_or_never().is_none(),
            "its own wake-up came back"
        );
        local.receive(JOBS_CHANNEL, "another-replica");
        assert!(local.jobs.notified().now_or_never().is_some());
    }
}
