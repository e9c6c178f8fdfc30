//! What a person typed before the page hydrated survives its hydration, on every form.
//!
//! The server renders each page whole, so its fields can be filled while the page's WASM and
//! route code are still on their way. Hydrating a bound field (`bind:value`, `prop:value`) then
//! writes the field's signal, still empty, over what was typed. Rather than each field guarding
//! against that, the bundle notes every field changed by hand when it starts ([`remember`]: a
//! field whose value differs from the one the server sent, and every later `input` or `change`
//! until the page is hydrated), and once the page is hydrated ([`restore`]) puts each value back
//! and fires the events a person's typing would, so the field's signal learns it too. Client-side
//! navigations render fresh fields and are not concerned.

#[cfg(feature = "hydrate")]
mod browser {
    use std::cell::RefCell;

    use wasm_bindgen::JsCast;
    use wasm_bindgen::closure::Closure;
    use web_sys::{
        Element, Event, EventInit, HtmlInputElement, HtmlOptionElement, HtmlSelectElement,
        HtmlTextAreaElement,
    };

    /// A field changed by hand, and what it held.
    struct Typed {
        field: Element,
        value: String,
        checked: bool,
    }

    thread_local! {
        /// Fields changed by hand since the bundle started; `None` once restored.
        static TYPED: RefCell<Option<Vec<Typed>>> = const { RefCell::new(None) };
    }

    /// What `field` holds, and whether a person changed it from what the server sent.
    fn read(field: &Element) -> Option<(String, bool, bool)> {
        if let Some(input) = field.dyn_ref::<HtmlInputElement>() {
            let checked = input.checked();
            let changed =
                input.value() != input.default_value() || checked != input.default_checked();
            Some((input.value(), checked, changed))
        } else if let Some(area) = field.dyn_ref::<HtmlTextAreaElement>() {
            let changed = area.default_value().is_ok_and(|d| d != area.value());
            Some((area.value(), false, changed))
        } else if let Some(select) = field.dyn_ref::<HtmlSelectElement>() {
            let options = select.options();
            let changed = (0..options.length())
                .filter_map(|i| options.item(i))
                .filter_map(|o| o.dyn_into::<HtmlOptionElement>().ok())
                .any(|o| o.selected() != o.default_selected());
            Some((select.value(), false, changed))
        } else {
            None
        }
    }

    fn note(field: Element) {
        let Some((value, checked, changed)) = read(&field) else {
            return;
        };
        TYPED.with_borrow_mut(|typed| {
            let Some(typed) = typed else { return };
            match typed.iter_mut().find(|t| t.field == field) {
                Some(t) => (t.value, t.checked) = (value, checked),
                None if changed => typed.push(Typed {
                    field,
                    value,
                    checked,
                }),
                None => {}
            }
        });
    }

    pub fn remember() {
        TYPED.with_borrow_mut(|typed| *typed = Some(Vec::new()));
        let document = leptos::prelude::document();
        if let Ok(fields) = document.query_selector_all("input,textarea,select") {
            for i in 0..fields.length() {
                if let Some(field) = fields.item(i).and_then(|f| f.dyn_into::<Element>().ok()) {
                    note(field);
                }
            }
        }
        let listener = Closure::<dyn Fn(Event)>::new(|ev: Event| {
            if let Some(field) = ev.target().and_then(|t| t.dyn_into::<Element>().ok()) {
                note(field);
            }
        });
        for kind in ["input", "change"] {
            let _ = document.add_event_listener_with_callback_and_bool(
                kind,
                listener.as_ref().unchecked_ref(),
                true,
            );
        }
        // Listens for the page's life; it does nothing once the fields are restored.
        listener.forget();
    }

    pub fn restore() {
        let Some(typed) = TYPED.with_borrow_mut(Option::take) else {
            return;
        };
        let init = EventInit::new();
        init.set_bubbles(true);
        for t in typed {
            if let Some(input) = t.field.dyn_ref::<HtmlInputElement>() {
                if matches!(input.type_().as_str(), "checkbox" | "radio") {
                    if input.checked() == t.checked {
                        continue;
                    }
                    input.set_checked(t.checked);
                } else if input.value() != t.value {
                    input.set_value(&t.value);
                } else {
                    continue;
                }
            } else if let Some(area) = t.field.dyn_ref::<HtmlTextAreaElement>() {
                if area.value() == t.value {
                    continue;
                }
                area.set_value(&t.value);
            } else if let Some(select) = t.field.dyn_ref::<HtmlSelectElement>() {
                if select.value() == t.value {
                    continue;
                }
                select.set_value(&t.value);
            }
            for kind in ["input", "change"] {
                if let Ok(ev) = Event::new_with_event_init_dict(kind, &init) {
                    let _ = t.field.dispatch_event(&ev);
                }
            }
        }
    }
}

/// Starts noting the fields changed by hand (the bundle's first step, before it hydrates).
pub fn remember() {
    #[cfg(feature = "hydrate")]
    browser::remember();
}

/// Puts back what was typed before the page hydrated (once the page's route is hydrated).
pub fn restore() {
    #[cfg(feature = "hydrate")]
    browser::restore();
}
