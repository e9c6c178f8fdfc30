//! A job's progress steps as a list: state, label, when, and the detail of a failed step
//! (the org page and `/jobs` show the same list).

use leptos::prelude::*;

use crate::models::{JobProgress, StepState};

/// The steps of `progress`, or "not started".
pub fn progress_view(progress: &JobProgress) -> impl IntoView + use<> {
    if progress.steps().is_empty() {
        return view! { <span class="muted">"not started"</span> }.into_any();
    }
    let steps = progress.steps().to_vec();
    view! {
        <ol class="steps">
            {steps.into_iter().map(|s| {
                let mark = match s.state {
                    StepState::Done => "✓",
                    StepState::Failed => "✗",
                    StepState::Running => "…",
                };
                let state = s.state.as_str();
                let at = crate::components::time::hms(&s.finished_at.unwrap_or(s.started_at));
                view! {
                    <li class=format!("step step-{state}") data-state=state>
                        <span aria-hidden="true">{mark}" "</span>
                        {s.step.label()}
                        <span class="visually-hidden">{format!(" ({state})")}</span>
                        <span class="muted">{format!(" {at}")}</span>
                        {s.detail.map(|d| view! { <div class="step-detail">{d}</div> })}
                    </li>
                }
            }).collect_view()}
        </ol>
    }
    .into_any()
}
