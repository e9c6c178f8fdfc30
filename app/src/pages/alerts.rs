//! `/alerts`: health incidents (one per failure episode of a server) with their alerts, open
//! and closed, filtered in the URL, live; an admin acknowledges one or silences its
//! notifications for a while, each with a reason (audited). Fleet alerts (the breaker held
//! reboots) are listed above.

use leptos::prelude::*;
use leptos::server_fn::ServerFn;
use leptos_meta::Title;
use leptos_router::components::Form;
use leptos_router::hooks::use_query_map;

use crate::auth::handle_auth_error;
use crate::components::form::FormError;
use crate::components::pager::{is_filtered, page_link};
use crate::error::AppError;
use crate::models::health::{IncidentPage, IncidentQuery, IncidentView};

/// Incidents per page.
pub const PAGE_SIZE: u64 = 20;

/// A page of incidents.
#[server(prefix = "/api", endpoint = "list_incidents", input = crate::codec::Form, output = crate::codec::Json)]
pub async fn list_incidents(
    #[server(default)] query: IncidentQuery,
) -> Result<IncidentPage, AppError> {
    let (backend, _req, _admin) = crate::backend::require_admin().await?;
    backend.health.incidents(query, PAGE_SIZE).await
}

/// Acknowledges an incident.
#[server(prefix = "/api", endpoint = "acknowledge_incident", input = crate::codec::Form, output = crate::codec::Json)]
pub async fn acknowledge_incident(id: i64, reason: String) -> Result<(), AppError> {
    let (backend, req, admin) = crate::backend::require_admin().await?;
    backend.health.acknowledge(&admin, &req, id, reason).await
}

/// Silences an incident's notifications for `minutes`.
#[server(prefix = "/api", endpoint = "silence_incident", input = crate::codec::Form, output = crate::codec::Json)]
pub async fn silence_incident(id: i64, minutes: u32, reason: String) -> Result<(), AppError> {
    let (backend, req, admin) = crate::backend::require_admin().await?;
    backend
        .health
        .silence(&admin, &req, id, minutes, reason)
        .await
}

fn query_from(map: &leptos_router::params::ParamsMap) -> IncidentQuery {
    let non_empty = |k: &str| {
        map.get(k)
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    };
    IncidentQuery {
        open: match non_empty("state").as_deref() {
            Some("open") => Some(true),
            Some("closed") => Some(false),
            _ => None,
        },
        search: non_empty("q"),
        vps_id: None,
        after: non_empty("after").and_then(|s| s.parse().ok()),
    }
}

/// The page.
#[component]
pub fn AlertsPage() -> impl IntoView {
    let params = use_query_map();
    let live = crate::components::live::use_live();
    let version = RwSignal::new(0u32);
    let page = crate::codec::resource(
        move || {
            (
                query_from(&params.get()),
                live.health_tick.get(),
                version.get(),
            )
        },
        |(query, _, _)| list_incidents(query),
    );
    let value = move |k: &'static str| move || params.get().get(k).unwrap_or_default();
    let selected = move |k: &'static str, v: &'static str| {
        move || params.get().get(k).unwrap_or_default() == v
    };
    view! {
        <Title text="Alerts"/>
        <div class="page-head"><h1>"Alerts"</h1></div>
        <section class="card" aria-labelledby="alert-filters">
            <h2 id="alert-filters">"Filter"</h2>
            <Form method="GET" action="/alerts">
                <div class="filters">
                    <div class="field">
                        <label for="a-q">"Organization or server"</label>
                        <input id="a-q" name="q" type="search" prop:value=value("q")/>
                    </div>
                    <div class="field">
                        <label for="a-state">"Incidents"</label>
                        <select id="a-state" name="state">
                            <option value="" selected=selected("state", "")>"Open and closed"</option>
                            <option value="open" selected=selected("state", "open")>"Open"</option>
                            <option value="closed" selected=selected("state", "closed")>"Closed"</option>
                        </select>
                    </div>
                </div>
                <button type="submit" class="button">"Apply"</button>
                " "
                <a class="button secondary" href="/alerts">"Clear"</a>
            </Form>
        </section>
        <Transition fallback=|| view! { <p role="status">"Loading alerts…"</p> }>
            {move || page.get().map(|result| match result {
                Err(err) => {
                    handle_auth_error(&err);
                    view! { <p class="error" role="alert">{err.to_string()}</p> }.into_any()
                }
                Ok(p) => view! {
                    <IncidentList page=p params=params.get() on_changed=move || version.update(|v| *v += 1)/>
                }.into_any(),
            })}
        </Transition>
    }
}

#[component]
fn IncidentList(
    page: IncidentPage,
    params: leptos_router::params::ParamsMap,
    on_changed: impl Fn() + Copy + Send + Sync + 'static,
) -> impl IntoView {
    let first_page = params.get("after").is_none();
    let filtered = is_filtered(&params, &["q", "state"]);
    let link = move |after: Option<i64>| {
        page_link(
            "/alerts",
            &params,
            &["q", "state"],
            after.map(|a| a.to_string()).as_deref(),
        )
    };
    let now = page.now;
    view! {
        {(!page.fleet.is_empty()).then(|| view! {
            <section class="card" aria-labelledby="fleet-heading">
                <h2 id="fleet-heading">"Fleet alerts"</h2>
                <ul class="fleet-alerts">
                    {page.fleet.into_iter().map(|f| view! {
                        <li><span class="muted">{crate::components::time::minute(&f.created_at)}</span>" · "{f.message}</li>
                    }).collect_view()}
                </ul>
            </section>
        })}
        {if page.incidents.is_empty() {
            view! {
                <p class="empty">
                    {if filtered { "No incident matches these filters." } else { "No incidents: every checked server has been healthy." }}
                </p>
            }.into_any()
        } else {
            view! {
                <table class="incidents" data-testid="incidents">
                    <thead>
                        <tr>
                            <th scope="col">"Server"</th>
                            <th scope="col">"Opened"</th>
                            <th scope="col">"Status"</th>
                            <th scope="col">"Alerts"</th>
                            <th scope="col">"Handling"</th>
                        </tr>
                    </thead>
                    <tbody>
                        {page.incidents.into_iter().map(|i| view! { <IncidentRow incident=i now on_changed/> }).collect_view()}
                    </tbody>
                </table>
            }.into_any()
        }}
        <nav class="pager" aria-label="Incident pages">
            {(!first_page).then(|| view! { <a href=link(None)>"First page"</a> })}
            {page.next.map(|n| view! { <a href=link(Some(n))>"Next page"</a> })}
        </nav>
    }
}

#[component]
fn IncidentRow(
    incident: IncidentView,
    now: chrono::DateTime<chrono::Utc>,
    on_changed: impl Fn() + Copy + Send + Sync + 'static,
) -> impl IntoView {
    let id = incident.id;
    let open = incident.closed_at.is_none();
    let state = if open {
        format!("open · {}", incident.last_status)
    } else {
        "closed (recovered)".to_owned()
    };
    let silenced_now = incident.silenced.as_ref().is_some_and(|s| s.until > now);
    view! {
        <tr data-testid=format!("incident-{id}")>
            <td>
                <a href=format!("/vpses/{}", incident.vps_id)><code>{incident.vps_name.clone()}</code></a>
                <div class="muted">
                    <a href=format!("/organizations/{}", incident.organization_id)>{incident.organization.clone()}</a>
                </div>
            </td>
            <td>
                {crate::components::time::minute(&incident.opened_at)}
                {incident.closed_at.map(|c| view! { <div class="muted">{format!("closed {}", crate::components::time::minute(&c))}</div> })}
            </td>
            <td>
                <span class=format!("badge health-{}", if open { incident.last_status.as_str() } else { "healthy" })>{state}</span>
                {(incident.reboots > 0).then(|| view! { <div class="muted">{format!("{} automatic reboot(s)", incident.reboots)}</div> })}
            </td>
            <td>
                <ul class="alert-list">
                    {incident.alerts.iter().map(|a| view! {
                        <li>
                            <span class=format!("badge alert-{}", a.kind)>{a.kind.as_str()}</span>
                            " "<span class="muted">{crate::components::time::minute(&a.created_at)}</span>
                            <div>{a.message.clone()}</div>
                        </li>
                    }).collect_view()}
                </ul>
            </td>
            <td>
                {incident.acknowledged.clone().map(|n| view! {
                    <p data-testid="acknowledged">{format!("Acknowledged by {} at {}: {}", n.by, crate::components::time::minute(&n.at), n.reason)}</p>
                })}
                {incident.silenced.clone().filter(|_| silenced_now).map(|s| view! {
                    <p>{format!("Silenced by {} until {}: {}", s.by, crate::components::time::minute(&s.until), s.reason)}</p>
                })}
                {(incident.acknowledged.is_none()).then(|| view! { <NoteForm id kind=NoteKind::Acknowledge on_changed/> })}
                {(open && !silenced_now).then(|| view! { <NoteForm id kind=NoteKind::Silence on_changed/> })}
            </td>
        </tr>
    }
    .into_any()
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum NoteKind {
    Acknowledge,
    Silence,
}

/// Acknowledge or silence, behind a button that opens a small form asking for the reason.
#[component]
fn NoteForm(
    id: i64,
    kind: NoteKind,
    on_changed: impl Fn() + Copy + Send + Sync + 'static,
) -> impl IntoView {
    let opened = RwSignal::new(false);
    let reason = RwSignal::new(String::new());
    let minutes = RwSignal::new(60u32);
    let action = Action::new(move |(reason, minutes): &(String, u32)| {
        let (reason, minutes) = (reason.clone(), *minutes);
        async move {
            match kind {
                NoteKind::Acknowledge => acknowledge_incident(id, reason).await,
                NoteKind::Silence => silence_incident(id, minutes, reason).await,
            }
        }
    });
    let error = Signal::derive(move || action.value().get().and_then(Result::err));
    Effect::new(move |_| {
        if let Some(Ok(())) = action.value().get() {
            opened.set(false);
            on_changed();
        }
    });
    let (open_label, submit_label) = match kind {
        NoteKind::Acknowledge => ("Acknowledge", "Acknowledge incident"),
        NoteKind::Silence => ("Silence", "Silence notifications"),
    };
    let field_id = format!(
        "{}-{id}",
        if kind == NoteKind::Acknowledge {
            "ack"
        } else {
            "silence"
        }
    );
    let minutes_id = format!("silence-minutes-{id}");
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        action.dispatch((reason.get_untracked(), minutes.get_untracked()));
    };
    let url = match kind {
        NoteKind::Acknowledge => AcknowledgeIncident::url(),
        NoteKind::Silence => SilenceIncident::url(),
    };
    // A disclosure whose form posts: it opens, and submits, without JavaScript too.
    view! {
        <details class="act" open=move || opened.get()>
            <summary class="button secondary" on:click=move |ev| { ev.prevent_default(); opened.update(|o| *o = !*o); }>{open_label}</summary>
            <form class="note-form" method="post" action=url on:submit=submit novalidate>
                <input type="hidden" name="id" value=id.to_string()/>
                <FormError error fields=&["reason", "minutes"]/>
                {(kind == NoteKind::Silence).then(|| {
                    let minutes_id = minutes_id.clone();
                    view! {
                        <div class="field">
                            <label for=minutes_id.clone()>"Silence for"</label>
                            <select id=minutes_id name="minutes" on:change=move |ev| minutes.set(event_target_value(&ev).parse().unwrap_or(60))>
                                <option value="60">"1 hour"</option>
                                <option value="240">"4 hours"</option>
                                <option value="1440">"24 hours"</option>
                            </select>
                        </div>
                    }
                })}
                <div class="field">
                    <label for=field_id.clone()>"Reason"</label>
                    <input id=field_id.clone() name="reason" type="text" bind:value=reason required
                        aria-invalid=move || error.get().and_then(|e| e.for_field("reason")).is_some().then_some("true")/>
                    {move || error.get().and_then(|e| e.for_field("reason")).map(|m| view! { <div class="field-error">{m}</div> })}
                </div>
                <button type="submit" class="button" disabled=move || action.pending().get()>{submit_label}</button>
                " "
                <button type="button" class="button secondary" on:click=move |_| opened.set(false)>"Cancel"</button>
            </form>
        </details>
    }
    .into_any()
}
