//! `GET /api/events`: the live-update channel. A Server-Sent Events stream of [`Change`]s
//! (`event: change`, JSON data) for signed-in platform admins; open pages refetch what they
//! show when one arrives, so job progress, the org list and `/vpses` update without reload.

use std::convert::Infallible;
use std::time::Duration;

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
        session,
        ip: None,
        user_agent: None,
    };
    match app.admins().caller_inner(&info).await {
        Ok(Some(caller)) if caller.role.is_some() => {}
        Ok(Some(_)) => return (StatusCode::FORBIDDEN, "not a platform admin").into_response(),
        Ok(None) => return (StatusCode::UNAUTHORIZED, "sign in first").into_response(),
        Err(e) => {
            tracing::error!(error.detail = %e, "live updates: could not read the session");
            return StatusCode::INTERNAL_SERVER_ERROR.into_response();
        }
    }
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
    let stream = futures::stream::unfold(changes, |mut changes| async move {
        let event = match changes.recv().await {
            Ok(Signal::Change(change)) => Event::default()
                .event("change")
                .json_data(change)
                .unwrap_or_else(|_| Event::default().event("change").data("{}")),
            // Too slow to keep up, or the replica may have missed changes: refetch everything.
            Ok(Signal::Resync) | Err(RecvError::Lagged(_)) => Event::default()
                .event("change")
                .data("{\"kind\":\"resync\"}"),
            Err(RecvError::Closed) => return None,
        };
        Some((Ok::<_, Infallible>(event), changes))
    });
    Sse::new(futures::StreamExt::chain(resync, stream))
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response()
}
