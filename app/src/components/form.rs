//! Form pieces: a labelled field whose error is shown beside it, and the form-level error.

use leptos::prelude::*;

use crate::error::AppError;

/// A labelled input. `error` holds the last error of the form; the message shows under this
/// field when it names `name`.
#[component]
pub fn Field(
    /// The input's name (and the field name server errors use).
    name: &'static str,
    /// The visible label.
    label: &'static str,
    /// The value, two-way bound. What was typed before hydration survives it
    /// ([`crate::components::typed`]).
    value: RwSignal<String>,
    /// The form's last error.
    error: Signal<Option<AppError>>,
    /// `type` of the input.
    #[prop(default = "text")]
    kind: &'static str,
    /// `autocomplete` of the input.
    #[prop(default = "off")]
    autocomplete: &'static str,
    /// Help text under the label.
    #[prop(optional)]
    hint: Option<&'static str>,
    /// Whether the field is required.
    #[prop(default = true)]
    required: bool,
    /// The input's `name` when the form posts to a server function whose argument is named
    /// otherwise (e.g. `input[slug]`); `name` by default.
    #[prop(optional)]
    input_name: Option<&'static str>,
) -> impl IntoView {
    let id = format!("field-{name}");
    let error_id = format!("{id}-error");
    let hint_id = format!("{id}-hint");
    let message = move || error.get().and_then(|e| e.for_field(name));
    let describedby = {
        let (error_id, hint_id) = (error_id.clone(), hint_id.clone());
        move || {
            let mut ids = Vec::new();
            if hint.is_some() {
                ids.push(hint_id.clone());
            }
            if message().is_some() {
                ids.push(error_id.clone());
            }
            (!ids.is_empty()).then(|| ids.join(" "))
        }
    };
    view! {
        <div class="field">
            <label for=id.clone()>{label}</label>
            {hint.map(|h| view! { <div class="muted hint" id=hint_id.clone()>{h}</div> })}
            <input
                id=id.clone()
                name=input_name.unwrap_or(name)
                type=kind
                autocomplete=autocomplete
                required=required
                aria-invalid=move || message().is_some().then_some("true")
                aria-describedby=describedby
                // The value it starts with, in the HTML (bound values are not rendered): a form
                // shown before hydration or without JavaScript starts filled in too.
                value=value.get_untracked()
                bind:value=value
            />
            {move || message().map(|m| view! { <div class="field-error" id=error_id.clone()>{m}</div> })}
        </div>
    }
}

/// The form-level error: anything not tied to one field.
#[component]
pub fn FormError(
    /// The form's last error.
    error: Signal<Option<AppError>>,
    /// Field names shown beside their inputs (their errors are not repeated here).
    fields: &'static [&'static str],
) -> impl IntoView {
    let text = move || {
        error.get().and_then(|e| match &e {
            AppError::Validation { field, message } if fields.contains(&field.as_str()) => None,
            AppError::Validation { field, message } if field == "form" => Some(message.clone()),
            other => Some(other.to_string()),
        })
    };
    view! {
        {move || text().map(|t| view! { <div class="form-error" role="alert">{t}</div> })}
    }
}

/// Whether the page is interactive: `false` on the server and until hydration. A submit button
/// kept disabled until its form is complete is disabled only from then on, so the same form
/// posted before hydration or without JavaScript still submits (and the server checks it).
pub fn interactive() -> Signal<bool> {
    let on = RwSignal::new(false);
    Effect::new(move |_| on.set(true));
    on.into()
}
