//! In-process signals: "a job was queued" for the job engine, and "this changed" for the
//! live-update channel that open dashboard pages listen to (`/api/events`).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

pub use app::models::Change;
use tokio::sync::{Notify, broadcast};

/// The signals of one Nest process. Cloning shares them.
#[derive(Clone, Debug)]
pub struct Events {
    jobs: Arc<Notify>,
    changes: broadcast::Sender<Change>,
    /// How many changes were published; a page rendered at `seq` N that connects when the
    /// count is still N missed nothing.
    seq: Arc<AtomicU64>,
}

impl Default for Events {
    fn default() -> Self {
        Self {
            jobs: Arc::new(Notify::new()),
            changes: broadcast::channel(1024).0,
            seq: Arc::new(AtomicU64::new(0)),
        }
    }
}

impl Events {
    /// Wakes the job engine: a job was queued.
    pub fn wake_jobs(&self) {
        self.jobs.notify_one();
    }

    /// Resolves when [`Events::wake_jobs`] was called (or had been, since the last wait).
    pub async fn jobs_queued(&self) {
        self.jobs.notified().await;
    }

    /// Tells open pages that something changed (dropped when no page listens).
    pub fn publish(&self, change: Change) {
        self.seq.fetch_add(1, Ordering::SeqCst);
        let _ = self.changes.send(change);
    }

    /// How many changes were published so far.
    pub fn seq(&self) -> u64 {
        self.seq.load(Ordering::SeqCst)
    }

    /// A receiver of every change published from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Change> {
        self.changes.subscribe()
    }
}
