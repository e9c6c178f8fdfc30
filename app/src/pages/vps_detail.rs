//! `/vpses/:id`: one server — its details, latest health per service, uptime over 24 h, 7 d and
//! 30 d, a response-time chart per service (SVG rendered on the server), a strip of its recent
//! checks, its incidents and automatic reboots; live.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_params_map;

use crate::auth::handle_auth_error;
use crate::error::AppError;
use crate::models::health::VpsHealthDetail;

/// One server's health.
#[server(prefix = "/api", endpoint = "vps_health", input = crate::codec::Form, output = crate::codec::Json)]
pub async fn vps_health(id: i64) -> Result<VpsHealthDetail, AppError> {
    let (backend, _req, _admin) = crate::backend::require_admin().await?;
    backend.health.server(id).await
}

/// The page.
#[component]
pub fn VpsDetailPage() -> impl IntoView {
    let params = use_params_map();
    let live = crate::components::live::use_live();
    let id = move || params.with(|p| p.get("id").and_then(|v| v.parse::<i64>().ok()));
    let detail = crate::codec::resource(
        move || (id(), live.health_tick.get(), live.vps_tick.get()),
        |(id, _, _)| async move {
            match id {
                Some(id) => vps_health(id).await,
                None => Err(AppError::NotFound("server".to_owned())),
            }
        },
    );
    view! {
        <Title text="Server"/>
        <Transition fallback=|| view! { <p role="status">"Loading the server…"</p> }>
            {move || detail.get().map(|result| match result {
                Err(err) => {
                    handle_auth_error(&err);
                    view! {
                        <h1>"Server"</h1>
                        <p class="error" role="alert">{err.to_string()}</p>
                        <p><a href="/vpses">"All servers"</a></p>
                    }.into_any()
                }
                Ok(d) => view! { <Detail detail=d/> }.into_any(),
            })}
        </Transition>
    }
}

#[component]
fn Detail(detail: VpsHealthDetail) -> impl IntoView {
    let v = detail.vps;
    let now = detail.now;
    view! {
        <div class="page-head">
            <h1>"Server " <code>{v.name.clone()}</code></h1>
            <p>
                <a href=format!("/organizations/{}", v.organization_id)>{v.organization.clone()}</a>
                " · "<a href="/vpses">"All servers"</a>
            </p>
        </div>
        <section class="card" aria-labelledby="server-heading">
            <h2 id="server-heading">"Details"</h2>
            <dl class="facts">
                <dt>"Hetzner id"</dt><dd>{v.hetzner_server_id.map_or_else(|| "—".to_owned(), |i| i.to_string())}</dd>
                <dt>"Type"</dt><dd>{v.server_type.clone()}</dd>
                <dt>"Region"</dt><dd>{v.region.as_str()}</dd>
                <dt>"IPv4"</dt><dd>{v.ipv4.clone().unwrap_or_else(|| "—".into())}</dd>
                <dt>"Hetzner status"</dt><dd><span class=format!("badge status-{}", v.status)>{v.status.as_str()}</span></dd>
                <dt>"Health"</dt><dd data-testid="server-health"><crate::components::health::HealthCell badge=detail.latest now/></dd>
                <dt>"Created"</dt><dd>{crate::components::time::minute(&v.created_at)}</dd>
            </dl>
            {(!detail.services.is_empty()).then(|| view! {
                <table class="services">
                    <thead><tr><th scope="col">"Service"</th><th scope="col">"Endpoint"</th><th scope="col">"Latest check"</th></tr></thead>
                    <tbody>
                        {detail.services.iter().map(|(s, up, ms)| view! {
                            <tr>
                                <td>{s.label()}</td>
                                <td><code>{format!(":{}{}", s.port(), s.path())}</code></td>
                                <td>
                                    <span class=if *up { "badge health-healthy" } else { "badge health-unreachable" }>{if *up { "up" } else { "down" }}</span>
                                    {ms.map(|ms| format!(" {ms} ms"))}
                                </td>
                            </tr>
                        }).collect_view()}
                    </tbody>
                </table>
            })}
        </section>
        <section class="card" aria-labelledby="uptime-heading">
            <h2 id="uptime-heading">"Uptime"</h2>
            <dl class="facts uptime" data-testid="uptime">
                {detail.uptime.iter().map(|u| view! {
                    <dt>{u.window.clone()}</dt>
                    <dd>{u.percent()}<span class="muted">{format!(" ({} checks)", u.checks)}</span></dd>
                }).collect_view()}
            </dl>
            <h3>"Recent checks"</h3>
            {if detail.strip.is_empty() {
                view! { <p class="empty">"Not checked yet."</p> }.into_any()
            } else {
                view! {
                    <ol class="strip" aria-label="Recent checks, oldest first">
                        {detail.strip.iter().map(|c| {
                            let label = format!("{} {}", crate::components::time::hm(&c.at), c.status);
                            let title = label.clone();
                            view! { <li class=format!("dot health-{}", c.status) title=title><span class="visually-hidden">{label}</span></li> }
                        }).collect_view()}
                    </ol>
                }.into_any()
            }}
        </section>
        <section class="card" aria-labelledby="latency-heading">
            <h2 id="latency-heading">"Response time, last 24 hours"</h2>
            {detail.charts.into_iter().map(|(service, svg)| view! {
                <figure class="chart-figure">
                    <figcaption>{service.label()}</figcaption>
                    <div inner_html=svg></div>
                </figure>
            }).collect_view()}
        </section>
        <section class="card" aria-labelledby="incidents-heading">
            <h2 id="incidents-heading">"Incidents"</h2>
            {if detail.incidents.is_empty() {
                view! { <p class="empty">"No incidents."</p> }.into_any()
            } else {
                view! {
                    <ul class="incident-list">
                        {detail.incidents.into_iter().map(|i| view! {
                            <li>
                                <strong>{if i.closed_at.is_some() { "closed" } else { "open" }}</strong>
                                {format!(" · opened {}", crate::components::time::minute(&i.opened_at))}
                                <ul class="alert-list">
                                    {i.alerts.into_iter().map(|a| view! {
                                        <li><span class=format!("badge alert-{}", a.kind)>{a.kind.as_str()}</span>" "{a.message}" "<span class="muted">{crate::components::time::minute(&a.created_at)}</span></li>
                                    }).collect_view()}
                                </ul>
                            </li>
                        }).collect_view()}
                    </ul>
                    <p><a href="/alerts">"All alerts"</a></p>
                }.into_any()
            }}
        </section>
        <section class="card" aria-labelledby="reboots-heading">
            <h2 id="reboots-heading">"Automatic reboots"</h2>
            {if detail.reboots.is_empty() {
                view! { <p class="empty">"None."</p> }.into_any()
            } else {
                view! {
                    <table>
                        <thead><tr><th scope="col">"Queued"</th><th scope="col">"Job"</th><th scope="col">"State"</th></tr></thead>
                        <tbody>
                            {detail.reboots.into_iter().map(|r| view! {
                                <tr>
                                    <td>{crate::components::time::minute(&r.at)}</td>
                                    <td><a href=format!("/jobs?kind=reboot#job-{}", r.job_id)>{format!("#{}", r.job_id)}</a></td>
                                    <td>{r.state.as_str()}{r.error.map(|e| format!(": {e}"))}</td>
                                </tr>
                            }).collect_view()}
                        </tbody>
                    </table>
                }.into_any()
            }}
        </section>
    }
    .into_any()
}
