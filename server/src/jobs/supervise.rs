//! Supervision of background tasks: each runs in its own task and is restarted with backoff
//! (1 s doubling to 60 s, back to 1 s after a minute of good health) when it returns an error,
//! ends, or panics — and the log says so.

use std::future::Future;
use std::time::Duration;

use tokio::task::JoinHandle;

/// The longest pause between restarts.
const MAX_BACKOFF: Duration = Duration::from_secs(60);

/// Aborts a task when dropped.
pub(crate) struct AbortOnDrop(pub(crate) tokio::task::AbortHandle);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Runs `make()` forever under supervision; `name` is logged as `task.name`.
pub fn supervise<F, Fut>(name: &'static str, make: F) -> JoinHandle<()>
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: Future<Output = anyhow::Result<()>> + Send + 'static,
{
    tokio::spawn(async move {
        let mut backoff = Duration::from_secs(1);
        loop {
            let started = tokio::time::Instant::now();
            let task = tokio::spawn(make());
            // Aborting the supervisor (at shutdown) aborts the task it runs.
            let _guard = AbortOnDrop(task.abort_handle());
            let outcome = task.await;
            if started.elapsed() >= MAX_BACKOFF {
                backoff = Duration::from_secs(1);
            }
            match outcome {
                Ok(Ok(())) => {
                    tracing::warn!(
                        task.name = name,
                        restart.in_ms = backoff.as_millis() as u64,
                        "a background task ended; restarting it"
                    );
                }
                Ok(Err(e)) => {
                    tracing::error!(task.name = name, error.detail = %format!("{e:#}"), restart.in_ms = backoff.as_millis() as u64, "a background task failed; restarting it");
                }
                Err(e) if e.is_panic() => {
                    tracing::error!(
                        task.name = name,
                        restart.in_ms = backoff.as_millis() as u64,
                        "a background task panicked; restarting it"
                    );
                }
                Err(_) => return,
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU32, Ordering};

    #[tokio::test(start_paused = true)]
    async fn a_task_that_panics_or_fails_is_restarted() {
        let runs = Arc::new(AtomicU32::new(0));
        let counter = runs.clone();
        let handle = supervise("flaky", move || {
            let counter = counter.clone();
            async move {
                let n = counter.fetch_add(1, Ordering::SeqCst);
                if n == 0 {
                    panic!("first run panics");
                }
                if n == 1 {
                    anyhow::bail!("second run fails");
                }
                std::future::pending::<()>().await;
                Ok(())
            }
        });
        for _ in 0..50 {
            if runs.load(Ordering::SeqCst) >= 3 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        assert_eq!(runs.load(Ordering::SeqCst), 3);
        handle.abort();
    }
}
