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
    /// The last change received (to let a page ignore changes about other things).
    pub last: RwSignal<Option<Change>>,
    /// Whether the channel is open.
    pub connected: RwSignal<bool>,
}

impl Live {
    fn new() -> Self {
        Self {
            tick: RwSignal::new(0),
            last: RwSignal::new(None),
            connected: RwSignal::new(false),
        }
    }
}

/// Provides [`Live`] and, in the browser, opens the channel once `enabled` is true (signed-in
/// pages only).
pub fn provide_live(enabled: impl Fn() -> bool + Send + Sync + 'static) {
    let live = Live::new();
    provide_context(live);
    let started = StoredValue::new(false);
    Effect::new(move |_| {
        if enabled() && !started.get_value() {
            started.set_value(true);
            #[cfg(feature = "hydrate")]
            connect(live);
        }
    });
}

/// The live-update state (a detached one outside the layout, e.g. in tests).
pub fn use_live() -> Live {
    use_context::<Live>().unwrap_or_else(Live::new)
}

#[cfg(feature = "hydrate")]
fn connect(live: Live) {
    use wasm_bindgen::JsCast;
    use wasm_bindgen::closure::Closure;

    let Ok(source) = web_sys::EventSource::new("/api/events") else {
        return;
    };
    // Plain shared state, not a reactive value: this outlives the effect that opened the
    // channel (a reactive value would be disposed when that effect re-runs).
    let pending = std::rc::Rc::new(std::cell::Cell::new(false));
    let on_change =
        Closure::<dyn FnMut(web_sys::MessageEvent)>::new(move |ev: web_sys::MessageEvent| {
            let change = ev
                .data()
                .as_string()
                .and_then(|text| serde_json::from_str::<Change>(&text).ok());
            live.last.set(change);
            if !pending.get() {
                pending.set(true);
                let pending = pending.clone();
                set_timeout(
                    move || {
                        pending.set(false);
                        live.tick.update(|t| *t += 1);
                    },
                    std::time::Duration::from_millis(250),
                );
            }
        });
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
