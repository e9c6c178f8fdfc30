//! `/organizations/:id`: everything about one organization (details, state with when and why,
//! its VPS, route, jobs and audit history) and the admin actions its state allows, each behind
//! a confirmation step (typing the slug, for delete).

use leptos::prelude::*;
use leptos::server_fn::ServerFn;
use leptos_meta::Title;
use leptos_router::hooks::use_params_map;

use crate::auth::handle_auth_error;
use crate::components::job_progress::progress_view;
use crate::error::AppError;
use crate::models::{JobKind, JobState, OrgDetail, OrgEvent};

/// Everything about one organization.
#[server(prefix = "/api", endpoint = "get_organization", input = crate::codec::Form, output = crate::codec::Json)]
pub async fn get_organization(id: i64) -> Result<OrgDetail, AppError> {
    let (backend, _req, _admin) = crate::backend::require_admin().await?;
    backend.organizations.detail(id).await
}

/// The URL/form name of an admin action.
pub fn action_name(event: OrgEvent) -> String {
    match event {
        OrgEvent::Retry(kind) => format!("retry:{kind}"),
        other => other
            .action()
            .trim_start_matches("organization.")
            .to_owned(),
    }
}

/// Parses [`action_name`] back (admin actions only).
pub fn parse_action(name: &str) -> Option<OrgEvent> {
    if let Some(kind) = name.strip_prefix("retry:") {
        return kind.parse::<JobKind>().ok().map(OrgEvent::Retry);
    }
    OrgEvent::all()
        .into_iter()
        .find(|e| e.is_admin_action() && action_name(*e) == name)
}

/// Applies an admin action (`approved`, `suspended`, `delete_requested`, `retry:create`, …).
#[server(prefix = "/api", endpoint = "organization_action", input = crate::codec::Form, output = crate::codec::Json)]
pub async fn organization_action(
    id: i64,
    action: String,
    tier_id: Option<i64>,
    reason: Option<String>,
    confirm: Option<String>,
) -> Result<(), AppError> {
    let (backend, req, admin) = crate::backend::require_admin().await?;
    let event =
        parse_action(&action).ok_or_else(|| AppError::validation("action", "unknown action"))?;
    // Deleting is confirmed by typing the slug, checked here (not only by the button's state),
    // so a form posted without JavaScript is held to it too.
    if event == OrgEvent::Delete {
        let slug = backend.organizations.detail(id).await?.org.slug;
        if confirm.as_deref().map(str::trim) != Some(slug.as_str()) {
            return Err(AppError::validation(
                "confirm",
                format!("type {slug} to confirm the deletion"),
            ));
        }
    }
    let reason = reason.filter(|r| !r.trim().is_empty());
    backend
        .organizations
        .act(&admin, &req, id, event, tier_id, reason)
        .await
}

/// What a tier change will invoice a Stripe-billed organization now (`None`: not billed through
/// Stripe).
#[server(prefix = "/api", endpoint = "preview_tier_change", input = crate::codec::Form, output = crate::codec::Json)]
pub async fn preview_tier_change(
    id: i64,
    tier_id: i64,
) -> Result<Option<crate::models::TierChangePreview>, AppError> {
    let (backend, _req, _admin) = crate::backend::require_admin().await?;
    backend.organizations.tier_change_preview(id, tier_id).await
}

fn label(event: OrgEvent) -> String {
    match event {
        OrgEvent::Approve => "Approve".into(),
        OrgEvent::Reject => "Reject".into(),
        OrgEvent::Suspend => "Suspend".into(),
        OrgEvent::Resume => "Resume".into(),
        OrgEvent::ChangeTier => "Change tier".into(),
        OrgEvent::Redeploy => "Redeploy".into(),
        OrgEvent::Delete => "Delete".into(),
        OrgEvent::Retry(kind) => format!("Retry the failed {kind} job"),
        // Events of the system, never offered as a button: their audit name.
        other => other
            .action()
            .trim_start_matches("organization.")
            .replace('_', " "),
    }
}

fn consequence(event: OrgEvent) -> &'static str {
    match event {
        OrgEvent::Approve => "Queues the create job: a server will be provisioned.",
        OrgEvent::Reject => "Cancels the signup. The reason is kept and shown here.",
        OrgEvent::Suspend => {
            "Turns routing off: the instance becomes unreachable. The server keeps running."
        }
        OrgEvent::Resume => "Turns routing back on.",
        OrgEvent::ChangeTier => {
            "Updates the tier; a resize job is queued when the server type differs."
        }
        OrgEvent::Redeploy => "Queues a redeploy of the services.",
        OrgEvent::Delete => {
            "Turns routing off now and queues the deletion of the server. This cannot be undone."
        }
        OrgEvent::Retry(_) => "Queues the failed job again.",
        _ => "",
    }
}

/// Whether an action's confirmation form is open on the page.
#[derive(Clone, Copy)]
struct Editing(RwSignal<Option<OrgEvent>>);

/// The page.
#[component]
pub fn OrganizationPage() -> impl IntoView {
    let params = use_params_map();
    let version = RwSignal::new(0u32);
    let id = move || {
        params
            .get()
            .get("id")
            .and_then(|v| v.parse::<i64>().ok())
            .unwrap_or_default()
    };
    // Live updates refetch the page, except while an action's confirmation is open (it would
    // lose what the admin typed); it catches up when the confirmation closes. Which confirmation
    // is open lives here, above the refetched view, so a refetch already in flight when the admin
    // opens one (after the previous action, say) re-renders it still open.
    let live = crate::components::live::use_live();
    let editing = RwSignal::new(None::<OrgEvent>);
    provide_context(Editing(editing));
    let seen = RwSignal::new(0u64);
    Effect::new(move |_| {
        let tick = live.tick.get();
        if editing.get().is_none() {
            seen.set(tick);
        }
    });
    let detail = crate::codec::resource(
        move || (id(), version.get(), seen.get()),
        |(id, _, _)| get_organization(id),
    );
    view! {
        <Transition fallback=|| view! { <p role="status">"Loading the organization…"</p> }>
            {move || detail.get().map(|result| match result {
                Err(err) => {
                    handle_auth_error(&err);
                    view! { <Title text="Organization"/><h1>"Organization"</h1><p class="error" role="alert">{err.to_string()}</p> }.into_any()
                }
                Ok(d) => view! { <Detail detail=d on_changed=move || version.update(|v| *v += 1)/> }.into_any(),
            })}
        </Transition>
    }
}

#[component]
fn Detail(
    detail: OrgDetail,
    on_changed: impl Fn() + Copy + Send + Sync + 'static,
) -> impl IntoView {
    let org = detail.org.clone();
    let latest_failed = detail
        .jobs
        .iter()
        .find(|j| j.state == JobState::Failed)
        .map(|j| j.kind);
    let actions: Vec<OrgEvent> = detail
        .actions
        .iter()
        .copied()
        .filter(|a| match a {
            OrgEvent::Retry(kind) => Some(*kind) == latest_failed,
            _ => true,
        })
        .collect();
    view! {
        <Title text=org.name.clone()/>
        <div class="page-head">
            <h1>{org.name.clone()}</h1>
            <span class=format!("badge status-{}", org.status) data-testid="org-status">{org.status.as_str()}</span>
        </div>
        <section class="card" aria-labelledby="details-heading">
            <h2 id="details-heading">"Details"</h2>
            <dl class="facts">
                <dt>"Slug"</dt><dd><code>{org.slug.clone()}</code></dd>
                <dt>"Owner"</dt><dd>{org.owner_email.clone()}</dd>
                <dt>"Tier"</dt><dd data-testid="org-tier">{org.tier.clone()}</dd>
                <dt>"Region"</dt><dd>{format!("{} ({})", org.region.as_str(), org.region.location())}</dd>
                <dt>"Status"</dt>
                <dd>
                    {format!("{} since {}", org.status, crate::components::time::minute(&detail.status_changed_at))}
                    {detail.status_reason.clone().map(|r| view! { <div data-testid="status-reason">"Reason: "{r}</div> })}
                </dd>
                <dt>"Created"</dt><dd>{crate::components::time::minute(&org.created_at)}</dd>
                <dt>"Route"</dt>
                <dd>{match detail.route.clone() {
                    Some((host, upstream, enabled)) => format!("{host} → {upstream} ({})", if enabled { "enabled" } else { "disabled" }),
                    None => "none yet".to_owned(),
                }}</dd>
            </dl>
        </section>
        <section class="card" aria-labelledby="actions-heading">
            <h2 id="actions-heading">"Actions"</h2>
            {if actions.is_empty() {
                view! { <p class="muted">{format!("No admin action is possible while the organization is {}.", org.status)}</p> }.into_any()
            } else {
                let slug = org.slug.clone();
                let tiers = detail.tiers.clone();
                let tier_id = detail.tier_id;
                let id = org.id;
                view! {
                    <div class="actions-list">
                        {actions.into_iter().map(|a| view! {
                            <ActionPanel id event=a slug=slug.clone() tiers=tiers.clone() tier_id on_changed/>
                        }).collect_view()}
                    </div>
                }.into_any()
            }}
        </section>
        <section class="card" aria-labelledby="vps-heading">
            <h2 id="vps-heading">"Server"</h2>
            {match detail.vps.clone() {
                None => view! { <p class="empty">"No server yet."</p> }.into_any(),
                Some(v) => view! {
                    <dl class="facts">
                        <dt>"Name"</dt><dd><a href=format!("/vpses/{}", v.id)>{v.name}</a>" (health, uptime, incidents)"</dd>
                        <dt>"Hetzner id"</dt><dd>{v.hetzner_server_id.map(|i| i.to_string()).unwrap_or_else(|| "—".into())}</dd>
                        <dt>"Type"</dt><dd>{v.server_type}</dd>
                        <dt>"IPv4"</dt><dd>{v.ipv4.unwrap_or_else(|| "—".into())}</dd>
                        <dt>"Status"</dt><dd>{v.status.as_str()}</dd>
                    </dl>
                }.into_any(),
            }}
        </section>
        <crate::pages::margins::OrgCostCard organization_id=org.id/>
        <crate::pages::billing::OrgInvoices organization_id=org.id/>
        <section class="card" aria-labelledby="jobs-heading">
            <h2 id="jobs-heading">"Jobs"</h2>
            {if detail.jobs.is_empty() {
                view! { <p class="empty">"No jobs."</p> }.into_any()
            } else {
                view! {
                    <table data-testid="jobs">
                        <thead><tr>
                            <th scope="col">"Job"</th><th scope="col">"Kind"</th><th scope="col">"State"</th>
                            <th scope="col">"Attempts"</th><th scope="col">"Queued"</th><th scope="col">"Progress"</th><th scope="col">"Last error"</th>
                        </tr></thead>
                        <tbody>
                            {detail.jobs.iter().map(|j| view! {
                                <tr>
                                    <td>{format!("#{}", j.id)}</td>
                                    <td>{j.kind.as_str()}</td>
                                    <td><span class=format!("badge status-{}", j.state)>{j.state.as_str()}</span></td>
                                    <td>{format!("{}/{}", j.attempts, j.max_attempts)}</td>
                                    <td>{crate::components::time::minute(&j.created_at)}</td>
                                    <td data-testid=format!("progress-{}", j.id)>{progress_view(&j.progress)}</td>
                                    <td>{j.last_error.clone().unwrap_or_default()}</td>
                                </tr>
                            }).collect_view()}
                        </tbody>
                    </table>
                }.into_any()
            }}
        </section>
        <section class="card" aria-labelledby="history-heading">
            <h2 id="history-heading">"History"</h2>
            <table>
                <thead><tr><th scope="col">"Time (UTC)"</th><th scope="col">"Who"</th><th scope="col">"What"</th></tr></thead>
                <tbody>
                    {detail.history.iter().map(|e| view! {
                        <tr>
                            <td>{crate::components::time::second(&e.created_at)}</td>
                            <td>{e.actor_email.clone()}</td>
                            <td>
                                <code>{e.action.clone()}</code>
                                {e.detail.get("message").and_then(|m| m.as_str()).map(|m| view! { <div class="muted">{m.to_owned()}</div> })}
                            </td>
                        </tr>
                    }).collect_view()}
                </tbody>
            </table>
        </section>
    }
}

/// The proration preview of a tier change (Stripe-billed organizations only), refreshed as the
/// admin picks another tier.
#[component]
fn TierChangeCost(id: i64, new_tier: RwSignal<String>) -> impl IntoView {
    let preview = crate::codec::resource(
        move || new_tier.get(),
        move |tier| async move {
            match tier.parse::<i64>() {
                Ok(tier_id) => preview_tier_change(id, tier_id).await,
                Err(_) => Ok(None),
            }
        },
    );
    view! {
        <Transition fallback=|| view! { <p class="muted" role="status">"Asking Stripe for the proration…"</p> }>
            {move || preview.get().map(|result| match result {
                Ok(None) => ().into_any(),
                Ok(Some(p)) => view! {
                    <div class="proration" data-testid="proration">
                        <p>"Stripe will prorate the subscription. Its next invoice:"</p>
                        <table>
                            <caption class="visually-hidden">"Proration preview"</caption>
                            <thead><tr><th scope="col">"Line"</th><th scope="col">"Amount"</th></tr></thead>
                            <tbody>
                                {p.lines.into_iter().map(|(line, amount)| view! { <tr><td>{line}</td><td>{amount}</td></tr> }).collect_view()}
                            </tbody>
                            <tfoot><tr><th scope="row">"Amount due"</th><td>{p.amount_due}</td></tr></tfoot>
                        </table>
                    </div>
                }.into_any(),
                Err(e) => view! { <p class="field-error" role="alert">{e.to_string()}</p> }.into_any(),
            })}
        </Transition>
    }
}

#[component]
fn ActionPanel(
    id: i64,
    event: OrgEvent,
    slug: String,
    tiers: Vec<crate::models::TierOption>,
    tier_id: i64,
    on_changed: impl Fn() + Copy + Send + Sync + 'static,
) -> impl IntoView {
    let editing = use_context::<Editing>()
        .map(|Editing(e)| e)
        .unwrap_or_else(|| RwSignal::new(None));
    let open = Signal::derive(move || editing.get() == Some(event));
    let typed = RwSignal::new(String::new());
    let reason = RwSignal::new(String::new());
    let new_tier = RwSignal::new(
        tiers
            .iter()
            .find(|t| t.active && t.id != tier_id)
            .map(|t| t.id.to_string())
            .unwrap_or_default(),
    );
    let run = Action::new(
        move |(tier, reason, typed): &(Option<i64>, Option<String>, Option<String>)| {
            organization_action(id, action_name(event), *tier, reason.clone(), typed.clone())
        },
    );
    Effect::new(move |_| {
        if let Some(Ok(())) = run.value().get() {
            editing.set(None);
            on_changed();
        }
    });
    let error = move || {
        run.value()
            .get()
            .and_then(Result::err)
            .map(|e| e.to_string())
    };
    let needs_slug = event == OrgEvent::Delete;
    let slug = StoredValue::new(slug);
    let tiers = StoredValue::new(tiers);
    let interactive = crate::components::form::interactive();
    let confirm_disabled = move || {
        run.pending().get() || (interactive.get() && needs_slug && typed.get() != slug.get_value())
    };
    let danger = matches!(
        event,
        OrgEvent::Delete | OrgEvent::Reject | OrgEvent::Suspend
    );
    let confirm = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let tier = (event == OrgEvent::ChangeTier)
            .then(|| new_tier.get_untracked().parse().ok())
            .flatten();
        let why = (event == OrgEvent::Reject)
            .then(|| reason.get_untracked())
            .filter(|r| !r.trim().is_empty());
        let typed = needs_slug.then(|| typed.get_untracked());
        run.dispatch((tier, why, typed));
    };
    let input_id = StoredValue::new(format!("confirm-{}", action_name(event).replace(':', "-")));
    // A disclosure: without JavaScript the summary opens the form natively; once hydrated the
    // page keeps which one is open (live updates wait while one is).
    view! {
        <details class="action-panel" open=move || open.get()>
            <summary
                class=if danger { "button danger" } else { "button secondary" }
                on:click=move |ev| {
                    ev.prevent_default();
                    editing.set(if open.get_untracked() { None } else { Some(event) });
                }
            >
                {label(event)}
            </summary>
            <form class="confirm" method="post" action=OrganizationAction::url() on:submit=confirm aria-label=format!("Confirm: {}", label(event))>
                <input type="hidden" name="id" value=id.to_string()/>
                <input type="hidden" name="action" value=action_name(event)/>
                <p>{consequence(event)}</p>
                {(event == OrgEvent::ChangeTier).then(|| view! {
                    <div class="field">
                        <label for="field-new-tier">"New tier"</label>
                        <select id="field-new-tier" name="tier_id" on:change=move |ev| new_tier.set(event_target_value(&ev))>
                            {tiers.get_value().into_iter().filter(|t| t.active && t.id != tier_id).map(|t| {
                                let v = t.id.to_string();
                                let selected = v == new_tier.get_untracked();
                                view! { <option value=v selected=selected>{format!("{} ({})", t.name, t.server_type)}</option> }
                            }).collect_view()}
                        </select>
                    </div>
                    <TierChangeCost id new_tier/>
                })}
                {(event == OrgEvent::Reject).then(|| view! {
                    <div class="field">
                        <label for="field-reason">"Reason (optional, shown on the organization)"</label>
                        <textarea id="field-reason" name="reason" rows="2" bind:value=reason></textarea>
                    </div>
                })}
                {needs_slug.then(|| view! {
                    <div class="field">
                        <label for=input_id.get_value()>{format!("Type {} to confirm", slug.get_value())}</label>
                        <input id=input_id.get_value() name="confirm" autocomplete="off" bind:value=typed/>
                    </div>
                })}
                <button type="submit" class=if danger { "button danger" } else { "button" } disabled=confirm_disabled>
                    {format!("Confirm: {}", label(event))}
                </button>
                " "
                <button type="button" class="button secondary" on:click=move |_| editing.set(None)>"Cancel"</button>
                {move || error().map(|e| view! { <div class="field-error" role="alert">{e}</div> })}
            </form>
        </details>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_admin_action_name_parses_back_to_its_event() {
        for event in OrgEvent::all().into_iter().filter(|e| e.is_admin_action()) {
            assert_eq!(parse_action(&action_name(event)), Some(event), "{event:?}");
        }
        assert_eq!(
            parse_action("server_created"),
            None,
            "system events are not admin actions"
        );
    }
}
