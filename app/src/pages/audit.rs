//! `/audit`: the audit log, newest first, with filters (actor, action, target, date range) kept
//! in the URL and cursor pagination.

use chrono::NaiveDate;
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::components::Form;
use leptos_router::hooks::use_query_map;

use crate::auth::{encode_component, handle_auth_error};
use crate::error::AppError;
use crate::models::{AuditEntry, AuditFilter, AuditPage};

/// Rows per page.
pub const PAGE_SIZE: u64 = 50;

/// A page of the audit log.
#[server(prefix = "/api", endpoint = "list_audit", input = crate::codec::Form, output = crate::codec::Json)]
pub async fn list_audit(
    #[server(default)] filter: AuditFilter,
    before: Option<i64>,
) -> Result<AuditPage, AppError> {
    let (backend, _req, _admin) = crate::backend::require_admin().await?;
    if let (Some(from), Some(to)) = (filter.from, filter.to)
        && from > to
    {
        return Err(AppError::validation(
            "to",
            "must not be before the start date",
        ));
    }
    backend.audit.list(filter, before, PAGE_SIZE).await
}

fn non_empty(v: Option<String>) -> Option<String> {
    v.map(|s| s.trim().to_owned()).filter(|s| !s.is_empty())
}

/// The page.
#[component]
pub fn AuditPage() -> impl IntoView {
    let query = use_query_map();
    let params = move || {
        let q = query.get();
        let date = |k: &str| q.get(k).and_then(|v| v.parse::<NaiveDate>().ok());
        let filter = AuditFilter {
            actor: non_empty(q.get("actor")),
            action: non_empty(q.get("action")),
            target: non_empty(q.get("target")),
            from: date("from"),
            to: date("to"),
        };
        let before = q.get("before").and_then(|v| v.parse::<i64>().ok());
        (filter, before)
    };
    // Live: what another admin does shows without a reload (their changes to organizations,
    // billing, tiers and admins all reach this page).
    let live = crate::components::live::use_live();
    let page = crate::codec::resource(
        move || (params(), live.tick.get()),
        |((filter, before), _)| list_audit(filter, before),
    );
    let value = move |k: &'static str| move || query.get().get(k).unwrap_or_default();

    view! {
        <Title text="Audit log"/>
        <h1>"Audit log"</h1>
        <section class="card" aria-labelledby="audit-filters">
            <h2 id="audit-filters">"Filters"</h2>
            <Form method="GET" action="/audit">
                <div class="filters">
                    <div class="field">
                        <label for="f-actor">"Actor email contains"</label>
                        <input id="f-actor" name="actor" type="search" prop:value=value("actor")/>
                    </div>
                    <div class="field">
                        <label for="f-action">"Action"</label>
                        <select id="f-action" name="action">
                            <option value="">"Any action"</option>
                            <Transition fallback=|| ()>
                            {move || {
                                let current = query.get().get("action").unwrap_or_default();
                                page.get()
                                    .and_then(Result::ok)
                                    .map(|p| p.actions)
                                    .unwrap_or_default()
                                    .into_iter()
                                    .map(|a| {
                                        let selected = a == current;
                                        view! { <option value=a.clone() selected=selected>{a.clone()}</option> }
                                    })
                                    .collect_view()
                            }}
                            </Transition>
                        </select>
                    </div>
                    <div class="field">
                        <label for="f-target">"Target (type or type:id)"</label>
                        <input id="f-target" name="target" type="search" prop:value=value("target")/>
                    </div>
                    <div class="field">
                        <label for="f-from">"From"</label>
                        <input id="f-from" name="from" type="date" prop:value=value("from")/>
                    </div>
                    <div class="field">
                        <label for="f-to">"To"</label>
                        <input id="f-to" name="to" type="date" prop:value=value("to")/>
                    </div>
                </div>
                <button type="submit" class="button">"Apply filters"</button>
                " "
                <a class="button secondary" href="/audit">"Clear"</a>
            </Form>
        </section>
        <Transition fallback=|| view! { <p role="status">"Loading the audit log…"</p> }>
            {move || page.get().map(|result| match result {
                Err(err) => {
                    handle_auth_error(&err);
                    view! { <p class="error" role="alert">{err.to_string()}</p> }.into_any()
                }
                Ok(p) => view! { <AuditTable page=p query=query.get()/> }.into_any(),
            })}
        </Transition>
    }
}

fn detail_text(entry: &AuditEntry) -> String {
    match &entry.detail {
        serde_json::Value::Object(map) if map.is_empty() => String::new(),
        serde_json::Value::Object(map) => map
            .iter()
            .map(|(k, v)| match v {
                serde_json::Value::String(s) => format!("{k}: {s}"),
                other => format!("{k}: {other}"),
            })
            .collect::<Vec<_>>()
            .join(", "),
        other => other.to_string(),
    }
}

#[component]
fn AuditTable(page: AuditPage, query: leptos_router::params::ParamsMap) -> impl IntoView {
    let filters: Vec<(String, String)> = ["actor", "action", "target", "from", "to"]
        .iter()
        .filter_map(|k| {
            query
                .get(k)
                .filter(|v| !v.is_empty())
                .map(|v| ((*k).to_owned(), v))
        })
        .collect();
    let link = move |before: Option<i64>| {
        let mut parts: Vec<String> = filters
            .iter()
            .map(|(k, v)| format!("{k}={}", encode_component(v)))
            .collect();
        if let Some(b) = before {
            parts.push(format!("before={b}"));
        }
        if parts.is_empty() {
            "/audit".to_owned()
        } else {
            format!("/audit?{}", parts.join("&"))
        }
    };
    let first_page = query.get("before").is_none();
    if page.entries.is_empty() {
        return view! { <p class="empty">"No audit entries match these filters."</p> }.into_any();
    }
    view! {
        <table class="audit">
            <thead>
                <tr>
                    <th scope="col">"Time (UTC)"</th>
                    <th scope="col">"Actor"</th>
                    <th scope="col">"Action"</th>
                    <th scope="col">"Target"</th>
                    <th scope="col">"Detail"</th>
                    <th scope="col">"From"</th>
                </tr>
            </thead>
            <tbody>
                {page.entries.iter().map(|e| view! {
                    <tr>
                        <td>{crate::components::time::second(&e.created_at)}</td>
                        <td>{if e.actor_email.is_empty() { "system".to_owned() } else { e.actor_email.clone() }}</td>
                        <td><code>{e.action.clone()}</code></td>
                        <td>{match &e.target_id { Some(id) => format!("{} {id}", e.target_type), None => e.target_type.clone() }}</td>
                        <td>{detail_text(e)}</td>
                        <td title=e.user_agent.clone().unwrap_or_default()>{e.ip.clone().unwrap_or_default()}</td>
                    </tr>
                }).collect_view()}
            </tbody>
        </table>
        <nav class="pager" aria-label="Audit log pages">
            {(!first_page).then(|| view! { <a href=link(None)>"Newest entries"</a> })}
            " "
            {page.next_cursor.map(|c| view! { <a href=link(Some(c))>"Older entries"</a> })}
        </nav>
    }
    .into_any()
}
