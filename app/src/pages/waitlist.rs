//! `/waitlist`: pending signups, oldest first, to approve (optionally on another tier) or reject
//! (with an optional reason), one by one or in bulk.

use leptos::prelude::*;
use leptos::server_fn::ServerFn;
use leptos_meta::Title;

use crate::auth::handle_auth_error;
use crate::error::AppError;
use crate::models::{OrgSummary, TierOption};
use crate::pages::organizations::detail::{OrganizationAction, organization_action};
use crate::pages::organizations::new::list_tiers;

/// Pending signups awaiting approval.
#[server(prefix = "/api", endpoint = "list_waitlist", input = crate::codec::Form, output = crate::codec::Json)]
pub async fn list_waitlist() -> Result<Vec<OrgSummary>, AppError> {
    let (backend, _req, _admin) = crate::backend::require_admin().await?;
    backend.organizations.waitlist().await
}

/// Approves or rejects the chosen pending signups (`decision`: `approved` or `rejected`), each
/// in its own transaction; says how many were updated and which failed, and why.
#[server(prefix = "/api", endpoint = "decide_waitlist", input = crate::codec::Form, output = crate::codec::Json)]
pub async fn decide_waitlist(
    decision: String,
    ids: Option<Vec<i64>>,
    reason: Option<String>,
) -> Result<String, AppError> {
    let (backend, req, admin) = crate::backend::require_admin().await?;
    let event = match decision.as_str() {
        "approved" => crate::models::OrgEvent::Approve,
        "rejected" => crate::models::OrgEvent::Reject,
        _ => return Err(AppError::validation("decision", "approve or reject")),
    };
    let ids = ids.unwrap_or_default();
    if ids.is_empty() {
        return Err(AppError::validation(
            "ids",
            "select at least one organization",
        ));
    }
    let reason = reason.filter(|r| !r.trim().is_empty());
    let mut failures = Vec::new();
    for id in &ids {
        if let Err(e) = backend
            .organizations
            .act(&admin, &req, *id, event, None, reason.clone())
            .await
        {
            failures.push(format!("#{id}: {e}"));
        }
    }
    let done = ids.len() - failures.len();
    Ok(if failures.is_empty() {
        format!("{done} organization(s) updated.")
    } else {
        format!(
            "{done} updated; {} failed: {}",
            failures.len(),
            failures.join("; ")
        )
    })
}

/// The page.
#[component]
pub fn WaitlistPage() -> impl IntoView {
    let version = RwSignal::new(0u32);
    // Live: another admin's decision, or a new signup, shows without a reload.
    let live = crate::components::live::use_live();
    let list = crate::codec::resource(
        move || (version.get(), live.tick.get()),
        |_| list_waitlist(),
    );
    let tiers = crate::codec::resource(|| (), |_| list_tiers());
    let selected = RwSignal::new(Vec::<i64>::new());
    let reason = RwSignal::new(String::new());
    let outcome = RwSignal::new(None::<String>);
    let decision = RwSignal::new("approved");
    let bulk = Action::new(
        move |(decision, ids, reason): &(&'static str, Vec<i64>, Option<String>)| {
            decide_waitlist((*decision).to_owned(), Some(ids.clone()), reason.clone())
        },
    );
    Effect::new(move |_| {
        if let Some(result) = bulk.value().get() {
            outcome.set(Some(result.unwrap_or_else(|e| e.to_string())));
            selected.set(Vec::new());
            version.update(|v| *v += 1);
        }
    });
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let action = decision.get_untracked();
        let why = (action == "rejected")
            .then(|| reason.get_untracked())
            .filter(|r| !r.trim().is_empty());
        bulk.dispatch((action, selected.get_untracked(), why));
    };
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
                        // The row checkboxes belong to this form (`form="waitlist-bulk"`): a form
                        // cannot hold the rows' own approve forms.
                        <form id="waitlist-bulk" class="bulk-bar" method="post" action=DecideWaitlist::url() on:submit=submit aria-label="Bulk actions">
                            <span aria-live="polite">{move || format!("{} selected", selected.get().len())}</span>
                            " "
                            <details class="act">
                                <summary class="button">"Approve selected"</summary>
                                <div class="confirm">
                                    <p>{move || format!("Approve {} organization(s)? Each gets its server now.", selected.get().len())}</p>
                                    <button type="submit" name="decision" value="approved" class="button" disabled=move || bulk.pending().get()
                                        on:click=move |_| decision.set("approved")>
                                        "Yes, approve"
                                    </button>
                                </div>
                            </details>
                            " "
                            <details class="act">
                                <summary class="button danger">"Reject selected"</summary>
                                <div class="confirm">
                                    <p>{move || format!("Reject {} organization(s)?", selected.get().len())}</p>
                                    <div class="field">
                                        <label for="bulk-reason">"Reason (optional)"</label>
                                        <textarea id="bulk-reason" name="reason" rows="2" bind:value=reason></textarea>
                                    </div>
                                    <button type="submit" name="decision" value="rejected" class="button danger" disabled=move || bulk.pending().get()
                                        on:click=move |_| decision.set("rejected")>
                                        "Yes, reject"
                                    </button>
                                </div>
                            </details>
                        </form>
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
                                                    form="waitlist-bulk"
                                                    name="ids[]"
                                                    value=id.to_string()
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
        organization_action(id, "approved".to_owned(), *t, None, None)
    });
    Effect::new(move |_| {
        if let Some(Ok(())) = run.value().get() {
            on_done();
        }
    });
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        run.dispatch(tier.get_untracked().parse().ok());
    };
    let select_id = format!("tier-{id}");
    view! {
        <form class="inline-form" method="post" action=OrganizationAction::url() on:submit=submit>
            <input type="hidden" name="id" value=id.to_string()/>
            <input type="hidden" name="action" value="approved"/>
            <label class="visually-hidden" for=select_id.clone()>{format!("Tier for {name}")}</label>
            <select id=select_id name="tier_id" on:change=move |ev| tier.set(event_target_value(&ev))>
                <option value="">"Keep its tier"</option>
                {tiers.into_iter().filter(|t| t.active).map(|t| view! { <option value=t.id.to_string()>{t.name}</option> }).collect_view()}
            </select>
            " "
            <button type="submit" class="button" aria-label=format!("Approve {name}")>"Approve"</button>
            {move || run.value().get().and_then(Result::err).map(|e| view! { <div class="field-error" role="alert">{e.to_string()}</div> })}
        </form>
    }
}
