//! `GET /api/events`: the live-update channel. A Server-Sent Events stream of [`Change`]s
//! (`event: change`, JSON data) for signed-in platform admins; open pages refetch what they
//! show when one arrives, so job progress, the org list and `/vpses` update without reload.
//! A stream ends when its session does (re-checked every [`SESSION_RECHECK`] and whenever a
//! user's sessions end), when the process shuts down, and at most
//! [`MAX_STREAMS_PER_SESSION`] are open per session.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use app::models::Change;

use app::backend::RequestInfo;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use tokio::sync::broadcast::error::RecvError;
use tower_sessions::Session;

use crate::events::Signal;
use crate::state::App;

/// `?since=N`: the change count the page was rendered at.
#[derive(Debug, serde::Deserialize)]
pub struct Since {
    since: Option<u64>,
}

/// How often an open stream re-checks its session (besides on `Change::Sessions`, which
/// covers this replica's and — through the shared events — other replicas' logouts at once).
pub const SESSION_RECHECK: Duration = Duration::from_secs(10);
/// Open streams allowed per session (one per tab; more is a leak or an attack).
pub const MAX_STREAMS_PER_SESSION: usize = 8;

/// This process's open live streams: a count per session (for the cap) and the shutdown
/// signal that ends them all, so a graceful shutdown is not held open by a stream.
#[derive(Clone, Debug)]
pub struct LiveStreams {
    per_session: Arc<Mutex<HashMap<String, usize>>>,
    shutdown: Arc<tokio::sync::watch::Sender<bool>>,
}

impl Default for LiveStreams {
    fn default() -> Self {
        Self {
            per_session: Arc::default(),
            shutdown: Arc::new(tokio::sync::watch::channel(false).0),
        }
    }
}

impl LiveStreams {
    /// Ends every open stream, now and from now on (at shutdown).
    pub fn shut_down(&self) {
        self.shutdown.send_replace(true);
    }

    /// How many streams are open.
    pub fn open(&self) -> usize {
        self.per_session
            .lock()
            .map(|m| m.values().sum())
            .unwrap_or_default()
    }

    fn acquire(&self, session: &str) -> Option<StreamSlot> {
        let mut map = self.per_session.lock().ok()?;
        let count = map.entry(session.to_owned()).or_default();
        if *count >= MAX_STREAMS_PER_SESSION {
            return None;
        }
        *count += 1;
        Some(StreamSlot {
            streams: self.clone(),
            session: session.to_owned(),
        })
    }
}

/// One open stream's place in the count; given back when the stream ends.
#[derive(Debug)]
struct StreamSlot {
    streams: LiveStreams,
    session: String,
}

impl Drop for StreamSlot {
    fn drop(&mut self) {
        if let Ok(mut map) = self.streams.per_session.lock()
            && let Some(count) = map.get_mut(&self.session)
        {
            *count = count.saturating_sub(1);
            if *count == 0 {
                map.remove(&self.session);
            }
        }
    }
}

/// What a stream carries between events.
struct StreamState {
    app: App,
    session_id: String,
    user_id: Option<i64>,
    changes: tokio::sync::broadcast::Receiver<Signal>,
    shutdown: tokio::sync::watch::Receiver<bool>,
    recheck: tokio::time::Interval,
    _slot: StreamSlot,
}

impl StreamState {
    async fn alive(&self) -> bool {
        match self.app.admins().session_is_admin(&self.session_id).await {
            Ok(alive) => alive,
            Err(e) => {
                tracing::warn!(error.detail = %e, "live updates: could not re-check a session");
                true
            }
        }
    }

    /// The next event to send; `None` ends the stream (session over, or shutting down).
    async fn next(&mut self) -> Option<Event> {
        enum Woken {
            ShuttingDown,
            Recheck,
            Signal(Result<Signal, RecvError>),
        }
        loop {
            let woken = tokio::select! {
                _ = self.shutdown.wait_for(|down| *down) => Woken::ShuttingDown,
                _ = self.recheck.tick() => Woken::Recheck,
                signal = self.changes.recv() => Woken::Signal(signal),
            };
            match woken {
                Woken::ShuttingDown => return None,
                Woken::Recheck => {
                    if !self.alive().await {
                        return None;
                    }
                }
                Woken::Signal(Ok(Signal::Change(Change::Sessions(user)))) => {
                    if self.user_id.is_none_or(|u| u == user) && !self.alive().await {
                        return None;
                    }
                }
                Woken::Signal(Ok(Signal::Change(change))) => {
                    return Some(
                        Event::default()
                            .event("change")
                            .json_data(change)
                            .unwrap_or_else(|_| Event::default().event("change").data("{}")),
                    );
                }
                // Too slow to keep up, or the replica may have missed changes: refetch
                // everything.
                Woken::Signal(Ok(Signal::Resync) | Err(RecvError::Lagged(_))) => {
                    return Some(
                        Event::default()
                            .event("change")
                            .data("{\"kind\":\"resync\"}"),
                    );
                }
                Woken::Signal(Err(RecvError::Closed)) => return None,
            }
        }
    }
}

/// The handler. 401 without a session, 403 for a user who is not a platform admin. When this
/// replica's change count differs from `since` (changes were published after the page's render,
/// on any replica), the stream starts with a `resync` so the page refetches what it missed; see
/// [`crate::events`] for why that holds across replicas.
pub async fn events(
    State(app): State<App>,
    Query(since): Query<Since>,
    session: Session,
) -> Response {
    let info = RequestInfo {
        session: session.clone(),
        ip: None,
        user_agent: None,
    };
    let user_id = match app.admins().caller_inner(&info).await {
        Ok(Some(caller)) if caller.role.is_some() => caller.user_id,
        Ok(Some(_)) => return (StatusCode::FORBIDDEN, "not a platform admin").into_response(),
        Ok(None) => return (StatusCode::UNAUTHORIZED, "sign in first").into_response(),
        Err(e) => {
            tracing::error!(error.detail = %e, "live updates: could not read the session");
            return StatusCode::INTERNAL_SERVER_ERROR.into_response();
        }
    };
    let Some(session_id) = session.id().map(|id| id.to_string()) else {
        return (StatusCode::UNAUTHORIZED, "sign in first").into_response();
    };
    let Some(slot) = app.live.acquire(&session_id) else {
        return (
            StatusCode::TOO_MANY_REQUESTS,
            "too many live-update streams for this session",
        )
            .into_response();
    };
    let changes = app.events.subscribe();
    // Read after subscribing: a change in between is both counted and received.
    let missed = since.since.is_some_and(|n| n != app.events.seq());
    let resync = futures::stream::iter(missed.then(|| {
        Ok::<_, Infallible>(
            Event::default()
                .event("change")
                .data("{\"kind\":\"resync\"}"),
        )
    }));
    let mut recheck = tokio::time::interval(SESSION_RECHECK);
    recheck.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    recheck.reset();
    let state = StreamState {
        shutdown: app.live.shutdown.subscribe(),
        app,
        session_id,
        user_id: Some(user_id),
        changes,
        recheck,
        _slot: slot,
    };
    let stream = futures::stream::unfold(state, |mut state| async move {
        let event = state.next().await?;
        Some((Ok::<_, Infallible>(event), state))
    });
    Sse::new(futures::StreamExt::chain(resync, stream))
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response()
}
