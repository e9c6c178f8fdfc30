//! Health in the lists and pages: a server's latest status with the time of its check, and the
//! filter choice for it.

use chrono::{DateTime, Utc};
use leptos::prelude::*;

use crate::models::HealthStatus;
use crate::models::health::HealthBadge;

/// "healthy · 3 min ago", coloured by status; "not checked yet" without a check.
#[component]
pub fn HealthCell(badge: Option<HealthBadge>, now: DateTime<Utc>) -> impl IntoView {
    match badge {
        None => view! { <span class="muted">"not checked yet"</span> }.into_any(),
        Some(b) => {
            let ago = crate::pages::vpses::age(b.checked_at, now);
            let title = format!(
                "Last checked {} UTC{}",
                crate::components::time::second(&b.checked_at),
                if b.failures > 0 {
                    format!("; {} failed checks in a row", b.failures)
                } else {
                    String::new()
                }
            );
            view! {
                <span class=format!("badge health-{}", b.status) title=title>{b.status.as_str()}</span>
                <span class="muted">{format!(" · {ago} ago")}</span>
            }
            .into_any()
        }
    }
}

/// The `<select>` of a health filter (`name="health"`).
#[component]
pub fn HealthFilter(id: &'static str, selected: Signal<String>) -> impl IntoView {
    view! {
        <div class="field">
            <label for=id>"Health"</label>
            <select id=id name="health">
                <option value="">"Any health"</option>
                {HealthStatus::ALL.iter().map(|s| view! {
                    <option value=s.as_str() selected=move || selected.get() == s.as_str()>{s.as_str()}</option>
                }).collect_view()}
            </select>
        </div>
    }
}
