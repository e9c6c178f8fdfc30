//! `/waitlist`: pending signups, oldest first, to approve (optionally on another tier) or reject
//! (with an optional reason), one by one or in bulk.

use leptos::prelude::*;
use leptos_meta::Title;

use crate::auth::handle_auth_error;
use crate::error::AppError;
use crate::models::{OrgSummary, TierOption};
use crate::pages::organizations::detail::organization_action;
use crate::pages::organizations::new::list_tiers;

/// Pending signups awaiting approval.
#[server(prefix = "/api", endpoint = "list_waitlist", input = crate::codec::Form, output = crate::codec::Json)]
pub async fn list_waitlist() -> Result<Vec<OrgSummary>, AppError> {
    let (backend, _req, _admin) = crate::backend::require_admin().await?;
    backend.organizations.waitlist().await
}

/// The page.
#[component]
pub fn WaitlistPage() -> impl IntoView {
    let version = RwSignal::new(0u32);
    let list = crate::codec::resource(move || version.get(), |_| list_waitlist());
    let tiers = crate::codec::resource(|| (), |_| list_tiers());
    let selected = RwSignal::new(Vec::<i64>::new());
    let reason = RwSignal::new(String::new());
    let confirming = RwSignal::new(None::<&'static str>);
    let outcome = RwSignal::new(None::<String>);
    let bulk = Action::new(
        move |(action, ids, reason): &(&'static str, Vec<i64>, Option<String>)| {
            let (action, ids, reason) = (*action, ids.clone(), reason.clone());
            async move {
                let mut failures = Vec::new();
                for id in &ids {
                    if let Err(e) =
                        organization_action(*id, action.to_owned(), None, reason.clone()).await
                    {
                        failures.push(format!("#{id}: {e}"));
                    }
                }
                (ids.len(), failures)
            }
        },
    );
    Effect::new(move |_| {
        if let Some((n, failures)) = bulk.value().get() {
            let done = n - failures.len();
            outcome.set(Some(if failures.is_empty() {
                format!("{done} organization(s) updated.")
            } else {
                format!(
                    "{done} updated; {} failed: {}",
                    failures.len(),
                    failures.join("; ")
                )
            }));
            selected.set(Vec::new());
            confirming.set(None);
            version.update(|v| *v += 1);
        }
    });
    let toggle = move |id: i64| {
        selected.update(|s| {
            if let Some(i) = s.iter().position(|x| *x == id) {
                s.remove(i);
            } else {
                s.push(id);
            }
        })
    };

    view! {
        <Title text="Waitlist"/>
        <h1>"Waitlist"</h1>
        {move || outcome.get().map(|o| view! { <p class="notice" role="status">{o}</p> })}
        <Transition fallback=|| view! { <p role="status">"Loading the waitlist…"</p> }>
            {move || list.get().map(|result| match result {
                Err(err) => {
                    handle_auth_error(&err);
                    view! { <p class="error" role="alert">{err.to_string()}</p> }.into_any()
                }
                Ok(rows) if rows.is_empty() => view! { <p class="empty">"No signups are waiting for approval."</p> }.into_any(),
                Ok(rows) => {
                    let tier_list = tiers.get().and_then(Result::ok).unwrap_or_default();
                    view! {
                        <div class="bulk-bar" role="group" aria-label="Bulk actions">
                            <span>{move || format!("{} selected", selected.get().len())}</span>
                            " "
                            <button type="button" class="button" disabled=move || selected.get().is_empty() on:click=move |_| confirming.set(Some("approved"))>
                                "Approve selected"
                            </button>
                            " "
                            <button type="button" class="button danger" disabled=move || selected.get().is_empty() on:click=move |_| confirming.set(Some("rejected"))>
                                "Reject selected"
                            </button>
                            {move || confirming.get().map(|action| view! {
                                <div class="confirm">
                                    <p>{format!("{} {} organization(s)?", if action == "approved" { "Approve" } else { "Reject" }, selected.get().len())}</p>
                                    {(action == "rejected").then(|| view! {
                                        <div class="field">
                                            <label for="bulk-reason">"Reason (optional)"</label>
                                            <textarea id="bulk-reason" rows="2" bind:value=reason></textarea>
                                        </div>
                                    })}
                                    <button type="button" class="button" disabled=move || bulk.pending().get() on:click=move |_| {
                                        let why = (action == "rejected").then(|| reason.get_untracked()).filter(|r| !r.trim().is_empty());
                                        bulk.dispatch((action, selected.get_untracked(), why));
                                    }>
                                        {if action == "approved" { "Yes, approve" } else { "Yes, reject" }}
                                    </button>
                                    " "
                                    <button type="button" class="button secondary" on:click=move |_| confirming.set(None)>"Cancel"</button>
                                </div>
                            })}
                        </div>
                        <table>
                            <thead>
                                <tr>
                                    <th scope="col"><span class="visually-hidden">"Select"</span></th>
                                    <th scope="col">"Organization"</th>
                                    <th scope="col">"Owner"</th>
                                    <th scope="col">"Tier"</th>
                                    <th scope="col">"Region"</th>
                                    <th scope="col">"Signed up"</th>
                                    <th scope="col">"Approve on tier"</th>
                                </tr>
                            </thead>
                            <tbody>
                                {rows.into_iter().map(|o| {
                                    let id = o.id;
                                    view! {
                                        <tr>
                                            <td>
                                                <input
                                                    type="checkbox"
                                                    aria-label=format!("Select {}", o.name)
                                                    prop:checked=move || selected.get().contains(&id)
                                                    on:change=move |_| toggle(id)
                                                />
                                            </td>
                                            <td><a href=format!("/organizations/{id}")>{o.name.clone()}</a>" "<code>{o.slug.clone()}</code></td>
                                            <td>{o.owner_email.clone()}</td>
                                            <td>{o.tier.clone()}</td>
                                            <td>{o.region.as_str()}</td>
                                            <td>{crate::components::time::stamp(&o.created_at)}</td>
                                            <td><ApproveOnTier id name=o.name.clone() tiers=tier_list.clone() on_done=move || version.update(|v| *v += 1)/></td>
                                        </tr>
                                    }
                                }).collect_view()}
                            </tbody>
                        </table>
                    }.into_any()
                }
            })}
        </Transition>
    }
}

#[component]
fn ApproveOnTier(
    id: i64,
    name: String,
    tiers: Vec<TierOption>,
    on_done: impl Fn() + Copy + Send + Sync + 'static,
) -> impl IntoView {
    let tier = RwSignal::new(String::new());
    let run = Action::new(move |t: &Option<i64>| {
        organization_action(id, "approved".to_owned(), *t, None)
    });
    Effect::new(move |_| {
        if let Some(Ok(())) = run.value().get() {
            on_done();
        }
    });
    let select_id = format!("tier-{id}");
    view! {
        <label class="visually-hidden" for=select_id.clone()>{format!("Tier for {name}")}</label>
        <select id=select_id on:change=move |ev| tier.set(event_target_value(&ev))>
            <option value="">"Keep its tier"</option>
            {tiers.into_iter().filter(|t| t.active).map(|t| view! { <option value=t.id.to_string()>{t.name}</option> }).collect_view()}
        </select>
        " "
        <button type="button" class="button" aria-label=format!("Approve {name}") on:click=move |_| { run.dispatch(tier.get_untracked().parse().ok()); }>
            "Approve"
        </button>
        {move || run.value().get().and_then(Result::err).map(|e| view! { <div class="field-error" role="alert">{e.to_string()}</div> })}
    }
}
