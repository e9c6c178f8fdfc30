//! A job's progress steps as a list: state, label, when, and the detail of a failed step
//! (the org page, `/jobs` and `/pending` show the same list).

use leptos::prelude::*;

use crate::models::{JobProgress, StepLine, StepState};

/// The steps of `progress`, written out.
pub fn step_lines(progress: &JobProgress) -> Vec<StepLine> {
    progress
        .steps()
        .iter()
        .map(|s| StepLine {
            state: s.state,
            label: s.step.label().to_owned(),
            at: crate::components::time::hms(&s.finished_at.unwrap_or(s.started_at)),
            detail: s.detail.clone(),
        })
        .collect()
}

/// The steps of `progress`, or "not started".
pub fn progress_view(progress: &JobProgress) -> impl IntoView + use<> {
    steps_view(step_lines(progress))
}

/// `steps`, or "not started".
pub fn steps_view(steps: Vec<StepLine>) -> impl IntoView + use<> {
    if steps.is_empty() {
        return view! { <span class="muted">"not started"</span> }.into_any();
    }
    view! {
        <ol class="steps">
            {steps.into_iter().map(|s| {
                let mark = match s.state {
                    StepState::Done => "✓",
                    StepState::Failed => "✗",
                    StepState::Running => "…",
                };
                let state = s.state.as_str();
                view! {
                    <li class=format!("step step-{state}") data-state=state>
                        <span aria-hidden="true">{mark}" "</span>
                        {s.label}
                        <span class="visually-hidden">{format!(" ({state})")}</span>
                        <span class="muted">{format!(" {}", s.at)}</span>
                        {s.detail.map(|d| view! { <div class="step-detail">{d}</div> })}
                    </li>
                }
            }).collect_view()}
        </ol>
    }
    .into_any()
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;
    use crate::models::JobStep;

    #[test]
    fn a_step_is_written_out_with_its_label_and_when_it_ended_or_started() {
        let at = |h, m, s| chrono::Utc.with_ymd_and_hms(2026, 11, 27, h, m, s).unwrap();
        let mut progress = JobProgress::default();
        progress.record(JobStep::Secrets, StepState::Running, at(9, 0, 0), 1, None);
        progress.record(JobStep::Secrets, StepState::Done, at(9, 0, 5), 1, None);
        progress.record(JobStep::VpsRecord, StepState::Running, at(9, 1, 2), 1, None);
        progress.record(
            JobStep::VpsRecord,
            StepState::Failed,
            at(9, 2, 3),
            1,
            Some("boom"),
        );
        progress.record(JobStep::VpsRecord, StepState::Running, at(9, 3, 4), 2, None);
        progress.record(
            JobStep::HetznerCreate,
            StepState::Running,
            at(9, 4, 0),
            2,
            None,
        );
        progress.record(
            JobStep::HetznerCreate,
            StepState::Failed,
            at(9, 5, 6),
            2,
            Some("boom"),
        );
        assert_eq!(
            step_lines(&progress),
            vec![
                StepLine {
                    state: StepState::Done,
                    label: JobStep::Secrets.label().to_owned(),
                    at: "09:00:05".to_owned(),
                    detail: None,
                },
                StepLine {
                    state: StepState::Running,
                    label: JobStep::VpsRecord.label().to_owned(),
                    at: "09:03:04".to_owned(),
                    detail: None,
                },
                StepLine {
                    state: StepState::Failed,
                    label: JobStep::HetznerCreate.label().to_owned(),
                    at: "09:05:06".to_owned(),
                    detail: Some("boom".to_owned()),
                },
            ]
        );
    }
}
