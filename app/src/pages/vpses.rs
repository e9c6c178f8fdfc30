//! `/vpses`: the VPS infrastructure dashboard — every instance with its organization, server
//! type, region, IPv4, Hetzner status, age and health; filters and pagination in the URL, live
//! updates from the server push channel.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::components::Form;
use leptos_router::hooks::use_query_map;

use crate::auth::handle_auth_error;
use crate::components::pager::{is_filtered, page_link};
use crate::error::AppError;
use crate::models::{Region, VpsPage, VpsQuery, VpsStatus};

/// Rows per page.
pub const PAGE_SIZE: u64 = 25;

/// A page of VPSes.
#[server(prefix = "/api", endpoint = "list_vpses", input = crate::codec::Form, output = crate::codec::Json)]
pub async fn list_vpses(#[server(default)] query: VpsQuery) -> Result<VpsPage, AppError> {
    let (backend, _req, _admin) = crate::backend::require_admin().await?;
    backend.vpses.list(query, PAGE_SIZE).await
}

fn query_from(map: &leptos_router::params::ParamsMap) -> VpsQuery {
    let non_empty = |k: &str| {
        map.get(k)
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    };
    VpsQuery {
        status: non_empty("status").and_then(|s| s.parse().ok()),
        region: non_empty("region").and_then(|s| s.parse().ok()),
        search: non_empty("q"),
        include_deleted: non_empty("deleted").is_some_and(|v| v == "1"),
        health: non_empty("health").and_then(|s| s.parse().ok()),
        after: non_empty("after").and_then(|s| s.parse().ok()),
    }
}

/// "3 d", "5 h", "12 min": how long ago `t` was.
pub fn age(t: chrono::DateTime<chrono::Utc>, now: chrono::DateTime<chrono::Utc>) -> String {
    let d = now - t;
    if d.num_days() >= 1 {
        format!("{} d", d.num_days())
    } else if d.num_hours() >= 1 {
        format!("{} h", d.num_hours())
    } else {
        format!("{} min", d.num_minutes().max(0))
    }
}

/// The page.
#[component]
pub fn VpsesPage() -> impl IntoView {
    let params = use_query_map();
    let live = crate::components::live::use_live();
    let page = crate::codec::resource(
        move || (query_from(&params.get()), live.vps_tick.get()),
        |(query, _)| list_vpses(query),
    );
    let value = move |k: &'static str| move || params.get().get(k).unwrap_or_default();
    let selected = move |k: &'static str, v: &'static str| {
        move || params.get().get(k).unwrap_or_default() == v
    };
    view! {
        <Title text="VPSes"/>
        <div class="page-head"><h1>"VPSes"</h1></div>
        <section class="card" aria-labelledby="vps-filters">
            <h2 id="vps-filters">"Filter"</h2>
            <Form method="GET" action="/vpses">
                <div class="filters">
                    <div class="field">
                        <label for="v-q">"Search server, IPv4 or organization"</label>
                        <input id="v-q" name="q" type="search" prop:value=value("q")/>
                    </div>
                    <div class="field">
                        <label for="v-status">"Hetzner status"</label>
                        <select id="v-status" name="status">
                            <option value="">"Any status"</option>
                            {VpsStatus::ALL.iter().map(|s| view! {
                                <option value=s.as_str() selected=selected("status", s.as_str())>{s.as_str()}</option>
                            }).collect_view()}
                        </select>
                    </div>
                    <div class="field">
                        <label for="v-region">"Region"</label>
                        <select id="v-region" name="region">
                            <option value="">"Any region"</option>
                            {Region::ALL.iter().map(|r| view! {
                                <option value=r.as_str() selected=selected("region", r.as_str())>{format!("{} ({})", r.as_str(), r.location())}</option>
                            }).collect_view()}
                        </select>
                    </div>
                    <crate::components::health::HealthFilter
                        id="v-health"
                        selected=Signal::derive(move || params.get().get("health").unwrap_or_default())
                    />
                    <div class="field checkbox">
                        <input id="v-deleted" name="deleted" type="checkbox" value="1" prop:checked=selected("deleted", "1")/>
                        <label for="v-deleted">"Include deleted servers"</label>
                    </div>
                </div>
                <button type="submit" class="button">"Apply"</button>
                " "
                <a class="button secondary" href="/vpses">"Clear"</a>
            </Form>
        </section>
        <Transition fallback=|| view! { <p role="status">"Loading servers…"</p> }>
            {move || page.get().map(|result| match result {
                Err(err) => {
                    handle_auth_error(&err);
                    view! { <p class="error" role="alert">{err.to_string()}</p> }.into_any()
                }
                Ok(p) => view! { <VpsTable page=p params=params.get()/> }.into_any(),
            })}
        </Transition>
    }
}

#[component]
fn VpsTable(page: VpsPage, params: leptos_router::params::ParamsMap) -> impl IntoView {
    if page.rows.is_empty() {
        let filtered = is_filtered(&params, &["q", "status", "region", "health"]);
        return if filtered {
            view! { <p class="empty">"No server matches these filters."</p> }.into_any()
        } else {
            view! { <p class="empty">"No servers yet: they appear here when an organization is provisioned."</p> }.into_any()
        };
    }
    let now = page.now;
    let first_page = params.get("after").is_none();
    let link = move |after: Option<i64>| {
        page_link(
            "/vpses",
            &params,
            &["q", "status", "region", "deleted", "health"],
            after.map(|a| a.to_string()).as_deref(),
        )
    };
    view! {
        <table class="vpses" data-testid="vpses">
            <thead>
                <tr>
                    <th scope="col">"Server"</th>
                    <th scope="col">"Organization"</th>
                    <th scope="col">"Type"</th>
                    <th scope="col">"Region"</th>
                    <th scope="col">"IPv4"</th>
                    <th scope="col">"Hetzner status"</th>
                    <th scope="col">"Age"</th>
                    <th scope="col">"Health"</th>
                </tr>
            </thead>
            <tbody>
                {page.rows.into_iter().map(|v| view! {
                    <tr>
                        <td><a href=format!("/vpses/{}", v.id)><code>{v.name}</code></a></td>
                        <td><a href=format!("/organizations/{}", v.organization_id)>{v.organization}</a></td>
                        <td>{v.server_type}</td>
                        <td>{v.region.as_str()}</td>
                        <td>{v.ipv4.unwrap_or_else(|| "—".into())}</td>
                        <td><span class=format!("badge status-{}", v.status)>{v.status.as_str()}</span></td>
                        <td title=crate::components::time::minute(&v.created_at)>{age(v.created_at, now)}</td>
                        <td><crate::components::health::HealthCell badge=v.health now/></td>
                    </tr>
                }).collect_view()}
            </tbody>
        </table>
        <nav class="pager" aria-label="VPS pages">
            {(!first_page).then(|| view! { <a href=link(None)>"First page"</a> })}
            {page.next.map(|n| view! { <a href=link(Some(n))>"Next page"</a> })}
        </nav>
    }
    .into_any()
}
