//! `/`: the overview. For now, the platform's status: database, integrations, seeded data and
//! organization counts by lifecycle state.

use leptos::prelude::*;
use leptos_meta::Title;

use crate::error::AppError;
use crate::models::{IntegrationMode, PlatformStatus};

/// The platform's status for the overview.
#[server(prefix = "/api", endpoint = "platform_status", input = crate::codec::Form, output = crate::codec::Json)]
pub async fn get_platform_status() -> Result<PlatformStatus, AppError> {
    let (backend, _req, _admin) = crate::backend::require_admin().await?;
    backend.system.platform_status().await
}

fn mode_label(mode: IntegrationMode, real: &'static str) -> &'static str {
    match mode {
        IntegrationMode::Real => real,
        IntegrationMode::Test => "Test mode",
        IntegrationMode::Simulated => "Simulated (local)",
        IntegrationMode::NotConnected => "Not connected",
    }
}

/// The overview page.
#[component]
pub fn HomePage() -> impl IntoView {
    let live = crate::components::live::use_live();
    let status = crate::codec::resource(move || live.tick.get(), |_| get_platform_status());

    view! {
        <Title text="Overview"/>
        <div class="page-head">
            <h1>"Overview"</h1>
            <button type="button" class="button" on:click=move |_| status.refetch()>
                "Refresh status"
            </button>
        </div>
        <Transition fallback=|| view! { <p class="muted" role="status">"Loading platform status…"</p> }>
            {move || {
                status
                    .get()
                    .map(|result| match result {
                        Ok(status) => view! { <StatusPanel status/> }.into_any(),
                        Err(err) => {
                            crate::auth::handle_auth_error(&err);
                            view! { <p class="error" role="alert">{err.to_string()}</p> }.into_any()
                        }
                    })
            }}
        </Transition>
    }
}

#[component]
fn PendingQueue() -> impl IntoView {
    let live = crate::components::live::use_live();
    let pending = crate::codec::resource(
        move || live.tick.get(),
        |_| crate::pages::waitlist::list_waitlist(),
    );
    view! {
        <section aria-labelledby="pending-heading" class="card">
            <h2 id="pending-heading">"Pending approval"</h2>
            <Transition fallback=|| view! { <p role="status">"Loading…"</p> }>
                {move || pending.get().map(|r| match r {
                    Err(e) => view! { <p class="error" role="alert">{e.to_string()}</p> }.into_any(),
                    Ok(list) if list.is_empty() => view! { <p class="empty">"No signups are waiting for approval."</p> }.into_any(),
                    Ok(list) => {
                        let more = list.len().saturating_sub(5);
                        view! {
                            <ul class="pending-list">
                                {list.into_iter().take(5).map(|o| view! {
                                    <li><a href=format!("/organizations/{}", o.id)>{o.name}</a>{format!(" — {} · {} · {}", o.owner_email, o.tier, o.region)}</li>
                                }).collect_view()}
                            </ul>
                            <a href="/waitlist">{if more > 0 { format!("Review all on the waitlist ({more} more)") } else { "Review on the waitlist".to_owned() }}</a>
                        }.into_any()
                    }
                })}
            </Transition>
        </section>
    }
}

/// The overview's revenue card: MRR per currency and the open and overdue invoices, live; links
/// to `/billing`.
#[component]
fn RevenueCard() -> impl IntoView {
    let live = crate::components::live::use_live();
    let overview = crate::codec::resource(
        move || live.tick.get(),
        |_| crate::pages::billing::get_billing_overview(),
    );
    let sum = |list: &[crate::models::Money]| {
        if list.is_empty() {
            "€0.00".to_owned()
        } else {
            list.iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(" + ")
        }
    };
    view! {
        <section aria-labelledby="revenue-heading" class="card">
            <h2 id="revenue-heading"><a href="/billing">"Revenue"</a></h2>
            <Transition fallback=|| view! { <p role="status">"Loading…"</p> }>
                {move || overview.get().map(|r| match r {
                    Err(e) => view! { <p class="error" role="alert">{e.to_string()}</p> }.into_any(),
                    Ok(o) => view! {
                        <dl class="facts">
                            <dt>"MRR"</dt>
                            <dd data-testid="mrr">{sum(&o.mrr)}</dd>
                            <dt>"Open invoices"</dt>
                            <dd>{format!("{} · {}", o.open.count, sum(&o.open.amounts))}</dd>
                            <dt>"Overdue invoices"</dt>
                            <dd>{format!("{} · {}", o.overdue.count, sum(&o.overdue.amounts))}</dd>
                        </dl>
                    }.into_any(),
                })}
            </Transition>
            <p class="muted">"Monthly tier prices of all active organizations. "<a href="/billing">"Billing and invoices"</a></p>
        </section>
    }
}

/// The overview's alerts card: open incidents, live.
#[component]
fn OpenIncidents() -> impl IntoView {
    let live = crate::components::live::use_live();
    let open = crate::codec::resource(
        move || live.health_tick.get(),
        |_| {
            crate::pages::alerts::list_incidents(crate::models::health::IncidentQuery {
                open: Some(true),
                ..Default::default()
            })
        },
    );
    view! {
        <section aria-labelledby="alerts-heading" class="card" data-testid="open-incidents">
            <h2 id="alerts-heading">"Health alerts"</h2>
            <Transition fallback=|| view! { <p role="status">"Loading…"</p> }>
                {move || open.get().map(|r| match r {
                    Err(e) => view! { <p class="error" role="alert">{e.to_string()}</p> }.into_any(),
                    Ok(page) if page.incidents.is_empty() => view! {
                        <p class="empty">"No open incidents: every checked server is healthy or recovering."</p>
                        <a href="/alerts">"Alert history"</a>
                    }.into_any(),
                    Ok(page) => view! {
                        <ul class="incident-list">
                            {page.incidents.into_iter().take(5).map(|i| view! {
                                <li>
                                    <span class=format!("badge health-{}", i.last_status)>{i.last_status.as_str()}</span>
                                    " "<a href=format!("/vpses/{}", i.vps_id)>{i.organization.clone()}</a>
                                    <span class="muted">{format!(" · {} · since {} UTC", i.vps_name, crate::components::time::hm(&i.opened_at))}</span>
                                    {i.acknowledged.map(|n| view! { <span class="muted">{format!(" · acknowledged by {}", n.by)}</span> })}
                                </li>
                            }).collect_view()}
                        </ul>
                        <a href="/alerts?state=open">"All open incidents"</a>
                    }.into_any(),
                })}
            </Transition>
        </section>
    }
}

#[component]
fn StatusPanel(status: PlatformStatus) -> impl IntoView {
    let total: u64 = status.organizations_by_status.iter().map(|(_, n)| n).sum();
    view! {
        <RevenueCard/>
        <PendingQueue/>
        <OpenIncidents/>
        <section aria-labelledby="platform-heading" class="card">
            <h2 id="platform-heading">"Platform"</h2>
            <dl class="facts" data-testid="platform-status">
                <dt>"Database"</dt>
                <dd data-testid="database">
                    {status.database.label()}
                    {if status.database_ok { " · connected" } else { " · not reachable" }}
                </dd>
                <dt>"Hetzner Cloud"</dt>
                <dd>{mode_label(status.hetzner, "Hetzner API")}</dd>
                <dt>"Stripe"</dt>
                <dd>{mode_label(status.stripe, "Live")}</dd>
                <dt>"Caddy"</dt>
                <dd>{mode_label(status.caddy, "Connected")}</dd>
                <dt>"Reconciliation"</dt>
                <dd data-testid="open-findings">
                    {match status.open_findings {
                        (0, _) => "Database, Hetzner and Stripe agree".to_owned(),
                        (open, 0) => format!("{open} open finding(s)"),
                        (open, costly) => format!("{open} open finding(s), {costly} costing money"),
                    }}
                </dd>
                <dt>"Tiers / regions"</dt>
                <dd>{format!("{} tiers, {} regions", status.tiers, status.regions)}</dd>
                <dt>"Version"</dt>
                <dd>{status.version.clone()}</dd>
            </dl>
        </section>
        <section aria-labelledby="orgs-heading" class="card">
            <h2 id="orgs-heading">"Organizations by status"</h2>
            {if total == 0 {
                view! { <p class="empty">"No organizations yet."</p> }.into_any()
            } else {
                view! {
                    <table>
                        <thead>
                            <tr>
                                <th scope="col">"Status"</th>
                                <th scope="col" class="num">"Organizations"</th>
                            </tr>
                        </thead>
                        <tbody>
                            {status
                                .organizations_by_status
                                .iter()
                                .map(|(s, n)| {
                                    view! {
                                        <tr>
                                            <td><span class=format!("badge status-{s}")>{s.as_str()}</span></td>
                                            <td class="num">{*n}</td>
                                        </tr>
                                    }
                                })
                                .collect_view()}
                        </tbody>
                    </table>
                }
                    .into_any()
            }}
        </section>
    }
}
