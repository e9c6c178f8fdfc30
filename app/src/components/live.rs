//! Live updates in the browser: one `EventSource` on `/api/events` for the whole session. Each
//! change the server pushes bumps [`Live::tick`] (at most every 250 ms); pages key their
//! resources on it, so what they show refreshes without a reload.

use leptos::prelude::*;

use crate::models::Change;

/// The live-update state, provided by the layout.
#[derive(Debug, Clone, Copy)]
pub struct Live {
    /// Bumped when something changed on the server.
    pub tick: RwSignal<u64>,
    /// Bumped only when a VPS changed (the `/vpses` list keys on this, so it is not redrawn
    /// for unrelated changes while someone clicks in it).
    pub vps_tick: RwSignal<u64>,
    /// Bumped when a job changed (`/jobs` keys on this, and on `tick`); job changes alone do
    /// not bump `tick`, so Nest's periodic tasks never make other pages refetch.
    pub job_tick: RwSignal<u64>,
    /// Bumped when health changed (a sweep, an alert, an incident); health changes also bump
    /// `tick` and `vps_tick`, since the lists show each server's health.
    pub health_tick: RwSignal<u64>,
    /// The last change received (to let a page ignore changes about other things).
    pub last: RwSignal<Option<Change>>,
    /// Whether the channel is open.
    pub connected: RwSignal<bool>,
}

impl Live {
    fn new() -> Self {
        Self {
            tick: RwSignal::new(0),
            vps_tick: RwSignal::new(0),
            job_tick: RwSignal::new(0),
            health_tick: RwSignal::new(0),
            last: RwSignal::new(None),
            connected: RwSignal::new(false),
        }
    }
}

/// The live-update change count when the current request began (so when this page's data was
/// read): the browser connects with `?since=` it and refetches only if it missed something.
#[server(prefix = "/api", endpoint = "live_seq", input = crate::codec::Form, output = crate::codec::Json)]
pub async fn live_seq() -> Result<u64, crate::error::AppError> {
    let (backend, _req, _admin) = crate::backend::require_admin().await?;
    Ok(use_context::<http::request::Parts>()
        .and_then(|parts| parts.extensions.get::<crate::backend::ChangeSeq>().copied())
        .map_or_else(|| backend.system.change_seq(), |seq| seq.0))
}

/// Provides [`Live`] and, in the browser, opens the channel once `since` gives the change count
/// the page was rendered at (signed-in pages only) and the page is hydrated (`hydrated`). Not
/// before: a change heard while the page's route is still hydrating would refetch its data
/// under the hydration; what changes meanwhile arrives as the first `resync`.
pub fn provide_live(
    since: impl Fn() -> Option<u64> + Send + Sync + 'static,
    hydrated: RwSignal<bool>,
) {
    let live = Live::new();
    provide_context(live);
    let started = StoredValue::new(false);
    Effect::new(move |_| {
        if let Some(_seq) = since()
            && hydrated.get()
            && !started.get_value()
        {
            started.set_value(true);
            #[cfg(feature = "hydrate")]
            connect(live, _seq);
        }
    });
}

/// The live-update state (a detached one outside the layout, e.g. in tests).
pub fn use_live() -> Live {
    use_context::<Live>().unwrap_or_else(Live::new)
}

#[cfg(feature = "hydrate")]
fn connect(live: Live, since: u64) {
    use wasm_bindgen::JsCast;
    use wasm_bindgen::closure::Closure;

    let Ok(source) = web_sys::EventSource::new(&format!("/api/events?since={since}")) else {
        return;
    };
    // Plain shared state, not a reactive value: this outlives the effect that opened the
    // channel (a reactive value would be disposed when that effect re-runs).
    let pending = std::rc::Rc::new(std::cell::Cell::new(false));
    let vps_changed = std::rc::Rc::new(std::cell::Cell::new(false));
    let job_changed = std::rc::Rc::new(std::cell::Cell::new(false));
    let other_changed = std::rc::Rc::new(std::cell::Cell::new(false));
    let health_changed = std::rc::Rc::new(std::cell::Cell::new(false));
    let on_change =
        Closure::<dyn FnMut(web_sys::MessageEvent)>::new(move |ev: web_sys::MessageEvent| {
            let change = ev
                .data()
                .as_string()
                .and_then(|text| crate::json::from_slice::<Change>(text.as_bytes()).ok());
            match change {
                Some(Change::Job(_)) => job_changed.set(true),
                Some(
                    Change::Organization(_) | Change::Billing(_) | Change::Admins | Change::Tiers,
                ) => other_changed.set(true),
                Some(Change::Sessions(_)) => {}
                Some(Change::Health) => {
                    health_changed.set(true);
                    vps_changed.set(true);
                    other_changed.set(true);
                }
                // A VPS, or a change Nest could not describe (e.g. "resync"): everything.
                Some(Change::Vps(_)) | None => {
                    vps_changed.set(true);
                    other_changed.set(true);
                    if change.is_none() {
                        job_changed.set(true);
                    }
                }
            }
            live.last.set(change);
            if !pending.get() {
                pending.set(true);
                let pending = pending.clone();
                let vps_changed = vps_changed.clone();
                let job_changed = job_changed.clone();
                let other_changed = other_changed.clone();
                let health_changed = health_changed.clone();
                set_timeout(
                    move || {
                        pending.set(false);
                        if vps_changed.replace(false) {
                            live.vps_tick.update(|t| *t += 1);
                        }
                        if job_changed.replace(false) {
                            live.job_tick.update(|t| *t += 1);
                        }
                        if health_changed.replace(false) {
                            live.health_tick.update(|t| *t += 1);
                        }
                        if other_changed.replace(false) {
                            live.tick.update(|t| *t += 1);
                        }
                    },
                    std::time::Duration::from_millis(250),
                );
            }
        });
    // Changes between the server render and this connection arrive as a first `resync` event
    // (the server compares `since` with its count).
    let on_open = Closure::<dyn FnMut()>::new(move || live.connected.set(true));
    let on_error = Closure::<dyn FnMut()>::new(move || live.connected.set(false));
    let _ = source.add_event_listener_with_callback("change", on_change.as_ref().unchecked_ref());
    source.set_onopen(Some(on_open.as_ref().unchecked_ref()));
    source.set_onerror(Some(on_error.as_ref().unchecked_ref()));
    // The channel lives as long as the page: the closures must too.
    on_change.forget();
    on_open.forget();
    on_error.forget();
}
