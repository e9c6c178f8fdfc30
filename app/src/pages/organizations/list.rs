//! `/organizations`: every organization with status, tier, region, VPS health and age; filters,
//! search, sort and cursor pagination, all kept in the URL so a view can be shared and reloaded.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::components::{A, Form};
use leptos_router::hooks::use_query_map;

use crate::auth::handle_auth_error;
use crate::components::pager::{is_filtered, page_link};
use crate::error::AppError;
use crate::models::{OrgPage, OrgQuery, OrgSort, OrgStatus, Region};

/// Rows per page.
pub const PAGE_SIZE: u64 = 25;

/// A page of organizations.
#[server(prefix = "/api", endpoint = "list_organizations", input = crate::codec::Form, output = crate::codec::Json)]
pub async fn list_organizations(#[server(default)] query: OrgQuery) -> Result<OrgPage, AppError> {
    let (backend, _req, _admin) = crate::backend::require_admin().await?;
    backend.organizations.list(query, PAGE_SIZE).await
}

fn query_from(map: &leptos_router::params::ParamsMap) -> OrgQuery {
    let non_empty = |k: &str| {
        map.get(k)
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    };
    OrgQuery {
        status: non_empty("status").and_then(|s| s.parse().ok()),
        tier_id: non_empty("tier").and_then(|s| s.parse().ok()),
        region: non_empty("region").and_then(|s| s.parse().ok()),
        search: non_empty("q"),
        health: non_empty("health").and_then(|s| s.parse().ok()),
        sort: OrgSort::parse(&non_empty("sort").unwrap_or_default()),
        after: non_empty("after"),
    }
}

/// The page.
#[component]
pub fn OrganizationsPage() -> impl IntoView {
    let params = use_query_map();
    let live = crate::components::live::use_live();
    let page = crate::codec::resource(
        move || (query_from(&params.get()), live.tick.get()),
        |(query, _)| list_organizations(query),
    );
    let value = move |k: &'static str| move || params.get().get(k).unwrap_or_default();
    let selected = move |k: &'static str, v: &'static str| {
        move || params.get().get(k).unwrap_or_default() == v
    };

    view! {
        <Title text="Organizations"/>
        <div class="page-head">
            <h1>"Organizations"</h1>
            <A href="/organizations/new" attr:class="button">"New organization"</A>
        </div>
        <section class="card" aria-labelledby="org-filters">
            <h2 id="org-filters">"Filter"</h2>
            <Form method="GET" action="/organizations">
                <div class="filters">
                    <div class="field">
                        <label for="f-q">"Search name, slug or owner"</label>
                        <input id="f-q" name="q" type="search" prop:value=value("q")/>
                    </div>
                    <div class="field">
                        <label for="f-status">"Status"</label>
                        <select id="f-status" name="status">
                            <option value="">"Any status"</option>
                            {OrgStatus::ALL.iter().map(|s| view! {
                                <option value=s.as_str() selected=selected("status", s.as_str())>{s.as_str()}</option>
                            }).collect_view()}
                        </select>
                    </div>
                    <div class="field">
                        <label for="f-tier">"Tier"</label>
                        <select id="f-tier" name="tier">
                            <option value="">"Any tier"</option>
                            <Transition fallback=|| ()>
                                {move || page.get().and_then(Result::ok).map(|p| p.tiers).unwrap_or_default().into_iter().map(|t| {
                                    let id = t.id.to_string();
                                    let current = params.get().get("tier").unwrap_or_default() == id;
                                    view! { <option value=id selected=current>{t.name}</option> }
                                }).collect_view()}
                            </Transition>
                        </select>
                    </div>
                    <div class="field">
                        <label for="f-region">"Region"</label>
                        <select id="f-region" name="region">
                            <option value="">"Any region"</option>
                            {Region::ALL.iter().map(|r| view! {
                                <option value=r.as_str() selected=selected("region", r.as_str())>{format!("{} ({})", r.as_str(), r.location())}</option>
                            }).collect_view()}
                        </select>
                    </div>
                    <crate::components::health::HealthFilter
                        id="f-health"
                        selected=Signal::derive(move || params.get().get("health").unwrap_or_default())
                    />
                    <div class="field">
                        <label for="f-sort">"Sort by"</label>
                        <select id="f-sort" name="sort">
                            <option value="newest" selected=selected("sort", "newest")>"Newest first"</option>
                            <option value="oldest" selected=selected("sort", "oldest")>"Oldest first"</option>
                            <option value="name" selected=selected("sort", "name")>"Name"</option>
                        </select>
                    </div>
                </div>
                <button type="submit" class="button">"Apply"</button>
                " "
                <a class="button secondary" href="/organizations">"Clear"</a>
            </Form>
        </section>
        <Transition fallback=|| view! { <p role="status">"Loading organizations…"</p> }>
            {move || page.get().map(|result| match result {
                Err(err) => {
                    handle_auth_error(&err);
                    view! { <p class="error" role="alert">{err.to_string()}</p> }.into_any()
                }
                Ok(p) => view! { <OrgTable page=p params=params.get()/> }.into_any(),
            })}
        </Transition>
    }
}

#[component]
fn OrgTable(page: OrgPage, params: leptos_router::params::ParamsMap) -> impl IntoView {
    if page.rows.is_empty() {
        let filtered = is_filtered(&params, &["q", "status", "tier", "region", "health"]);
        return if filtered {
            view! { <p class="empty">"No organization matches these filters."</p> }.into_any()
        } else {
            view! { <p class="empty">"No organizations yet. " <a href="/organizations/new">"Create the first one"</a>"."</p> }.into_any()
        };
    }
    let first_page = params.get("after").is_none();
    let now = page.now;
    let link = move |after: Option<&str>| {
        page_link(
            "/organizations",
            &params,
            &["q", "status", "tier", "region", "health", "sort"],
            after,
        )
    };
    view! {
        <table class="orgs">
            <thead>
                <tr>
                    <th scope="col">"Name"</th>
                    <th scope="col">"Slug"</th>
                    <th scope="col">"Status"</th>
                    <th scope="col">"Tier"</th>
                    <th scope="col">"Region"</th>
                    <th scope="col">"VPS health"</th>
                    <th scope="col">"Created"</th>
                </tr>
            </thead>
            <tbody>
                {page.rows.into_iter().map(|o| view! {
                    <tr>
                        <td><a href=format!("/organizations/{}", o.id)>{o.name}</a></td>
                        <td><code>{o.slug}</code></td>
                        <td><span class=format!("badge status-{}", o.status)>{o.status.as_str()}</span></td>
                        <td>{o.tier}</td>
                        <td>{o.region.as_str()}</td>
                        <td><crate::components::health::HealthCell badge=o.health now/></td>
                        <td>{crate::components::time::stamp(&o.created_at)}</td>
                    </tr>
                }).collect_view()}
            </tbody>
        </table>
        <nav class="pager" aria-label="Organization pages">
            {(!first_page).then(|| view! { <a href=link(None)>"First page"</a> })}
            {page.next.map(|n| view! { <a href=link(Some(&n))>"Next page"</a> })}
        </nav>
    }
    .into_any()
}
