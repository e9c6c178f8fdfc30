//! Cost against revenue: what each tenant costs at Hetzner (its server type and primary IPv4 in
//! its region, net of VAT) against its tier's price. [`Margins`] is `/billing`'s margin tables
//! (by tier, by region, the ten least profitable organizations), [`OrgCostCard`] the
//! organization page's card, and [`get_margins`] also feeds `/tiers`' warnings. Live.

use leptos::prelude::*;

use crate::auth::handle_auth_error;
use crate::error::AppError;
use crate::models::{Currency, Margin, MarginReport, MarginRow, Money, OrgCost};

/// Margins by tier and by region, the least profitable organizations, each tier's margin per
/// region.
#[server(prefix = "/api", endpoint = "get_margins", input = crate::codec::Form, output = crate::codec::Json)]
pub async fn get_margins() -> Result<MarginReport, AppError> {
    let (backend, _req, _admin) = crate::backend::require_admin().await?;
    backend.costs.report().await
}

/// One organization's month at Hetzner against its tier's price.
#[server(prefix = "/api", endpoint = "get_org_cost", input = crate::codec::Form, output = crate::codec::Json)]
pub async fn get_org_cost(id: i64) -> Result<OrgCost, AppError> {
    let (backend, _req, _admin) = crate::backend::require_admin().await?;
    backend.costs.organization(id).await
}

fn money(cents: i64, currency: &Currency) -> String {
    Money {
        cents,
        currency: currency.clone(),
    }
    .to_string()
}

/// When the prices were read, for the line under a table.
fn fetched(report: &MarginReport) -> String {
    report.prices_fetched_at.map_or_else(
        || "Hetzner's prices have not been read yet: the daily price_refresh task reads them (see /jobs).".to_owned(),
        |at| {
            format!(
                "Costs are Hetzner's monthly prices net of VAT (server type and primary IPv4 in the region), read {}; revenue is the tiers' prices of the active organizations.",
                crate::components::time::minute(&at)
            )
        },
    )
}

/// A margin's four cells: revenue, cost, margin and share (flagged under `warn` percent).
fn margin_cells(m: Margin, currency: &Currency, warn: u32) -> impl IntoView {
    let (revenue, cost, margin) = m.money(currency);
    view! {
        <td class="num">{revenue.to_string()}</td>
        <td class="num">{cost.to_string()}</td>
        <td class="num">{margin.to_string()}</td>
        <td class="num">{m.percent_text()}{m.below(warn).then_some(" ⚠")}</td>
    }
}

#[component]
fn MarginTable(
    caption: &'static str,
    first: &'static str,
    rows: Vec<MarginRow>,
    currency: Currency,
    warn: u32,
    testid: &'static str,
) -> impl IntoView {
    view! {
        <table data-testid=testid>
            <caption>{caption}</caption>
            <thead><tr>
                <th scope="col">{first}</th>
                <th scope="col" class="num">"Organizations"</th>
                <th scope="col" class="num">"Revenue"</th>
                <th scope="col" class="num">"Cost"</th>
                <th scope="col" class="num">"Margin"</th>
                <th scope="col" class="num">"Share"</th>
            </tr></thead>
            <tbody>
                {rows.into_iter().map(|r| {
                    view! {
                        <tr class:warn=r.margin.below(warn)>
                            <th scope="row">{r.label}</th>
                            <td class="num">{r.organizations}</td>
                            {margin_cells(r.margin, &currency, warn)}
                        </tr>
                    }
                }).collect_view()}
            </tbody>
        </table>
    }
}

/// A card that reads the margins, live and again whenever `version` moves, and shows them
/// with `body`.
#[component]
fn MarginsCard(
    heading: &'static str,
    heading_id: &'static str,
    #[prop(optional)] version: Option<RwSignal<u32>>,
    body: fn(MarginReport) -> AnyView,
) -> impl IntoView {
    let live = crate::components::live::use_live();
    let report = crate::codec::resource(
        move || (live.tick.get(), version.map(|v| v.get())),
        |_| get_margins(),
    );
    view! {
        <section class="card" aria-labelledby=heading_id>
            <h2 id=heading_id>{heading}</h2>
            <Transition fallback=|| view! { <p role="status">"Loading the margins…"</p> }>
                {move || report.get().map(|r| match r {
                    Err(err) => {
                        handle_auth_error(&err);
                        view! { <p class="error" role="alert">{err.to_string()}</p> }.into_any()
                    }
                    Ok(report) => body(report),
                })}
            </Transition>
        </section>
    }
}

/// `/billing`'s margin section, live.
#[component]
pub fn Margins() -> impl IntoView {
    view! {
        <MarginsCard
            heading="Cost against revenue"
            heading_id="margins-heading"
            body=|report| view! { <MarginBody report/> }.into_any()
        />
    }
}

#[component]
fn MarginBody(report: MarginReport) -> impl IntoView {
    let note = fetched(&report);
    let Some(currency) = report.currency.clone() else {
        return view! { <p class="empty" data-testid="margins-empty">{note}</p> }.into_any();
    };
    let warn = report.warn_percent;
    let left_out = (report.left_out > 0).then(|| {
        view! {
            <p class="muted">{format!(
                "{} active organization{} left out: billed in another currency than Hetzner's, or on a server type or region Hetzner's prices do not list.",
                report.left_out,
                if report.left_out == 1 { " is" } else { "s are" }
            )}</p>
        }
    });
    if report.by_tier.is_empty() {
        return view! {
            <p class="muted">{note}</p>
            <p class="empty" data-testid="margins-empty">"No active organization yet: margins appear with the first."</p>
            {left_out}
        }
        .into_any();
    }
    view! {
        <p class="muted">{note}</p>
        <div class="table-scroll">
            <MarginTable caption="By tier" first="Tier" rows=report.by_tier currency=currency.clone() warn testid="margins-by-tier"/>
        </div>
        <div class="table-scroll">
            <MarginTable caption="By region" first="Region" rows=report.by_region currency=currency.clone() warn testid="margins-by-region"/>
        </div>
        <div class="table-scroll">
            <table data-testid="least-profitable">
                <caption>"The ten least profitable organizations"</caption>
                <thead><tr>
                    <th scope="col">"Organization"</th>
                    <th scope="col">"Tier"</th>
                    <th scope="col">"Region"</th>
                    <th scope="col">"Server"</th>
                    <th scope="col" class="num">"Revenue"</th>
                    <th scope="col" class="num">"Cost"</th>
                    <th scope="col" class="num">"Margin"</th>
                    <th scope="col" class="num">"Share"</th>
                </tr></thead>
                <tbody>
                    {report.least_profitable.into_iter().map(|o| {
                        view! {
                            <tr class:warn=o.margin.below(warn)>
                                <th scope="row"><a href=format!("/organizations/{}", o.id)>{o.slug}</a></th>
                                <td>{o.tier}</td>
                                <td>{o.region.as_str()}</td>
                                <td>{o.server_type}</td>
                                {margin_cells(o.margin, &currency, warn)}
                            </tr>
                        }
                    }).collect_view()}
                </tbody>
            </table>
        </div>
        {left_out}
    }
    .into_any()
}

/// The organization page's "Cost and margin" card, live.
#[component]
pub fn OrgCostCard(organization_id: i64) -> impl IntoView {
    let live = crate::components::live::use_live();
    let cost = crate::codec::resource(
        move || live.tick.get(),
        move |_| get_org_cost(organization_id),
    );
    view! {
        <section class="card" aria-labelledby="cost-heading">
            <h2 id="cost-heading">"Cost and margin"</h2>
            <Transition fallback=|| view! { <p role="status">"Loading the cost…"</p> }>
                {move || cost.get().map(|r| match r {
                    Err(err) => {
                        handle_auth_error(&err);
                        view! { <p class="error" role="alert">{err.to_string()}</p> }.into_any()
                    }
                    Ok(c) => view! { <OrgCostFacts cost=c/> }.into_any(),
                })}
            </Transition>
        </section>
    }
}

#[component]
fn OrgCostFacts(cost: OrgCost) -> impl IntoView {
    let hetzner = cost.cost_currency.clone().unwrap_or_else(Currency::eur);
    let part =
        |cents: Option<i64>| cents.map_or_else(|| "unknown".to_owned(), |c| money(c, &hetzner));
    let total = cost
        .server_cents
        .zip(cost.ipv4_cents)
        .map(|(s, i)| money(s + i, &hetzner));
    let margin = cost.margin.map(|m: Margin| {
        let (_, _, amount) = m.money(&cost.revenue.currency);
        format!("{amount} ({})", m.percent_text())
    });
    view! {
        <dl class="facts" data-testid="org-cost">
            <dt>"Server at Hetzner"</dt>
            <dd>{format!("{} in {}: {} a month", cost.server_type, cost.region.as_str(), part(cost.server_cents))}</dd>
            <dt>"Primary IPv4"</dt><dd>{format!("{} a month", part(cost.ipv4_cents))}</dd>
            <dt>"Monthly cost"</dt><dd data-testid="org-cost-total">{total.unwrap_or_else(|| "unknown".to_owned())}</dd>
            <dt>"Monthly revenue"</dt><dd>{format!("{} (its tier's price)", cost.revenue)}</dd>
            <dt>"Margin"</dt><dd data-testid="org-margin">{margin.unwrap_or_else(|| "—".to_owned())}</dd>
        </dl>
        {cost.note.map(|n| view! { <p class="muted">{n}</p> })}
    }
}

/// `/tiers`' margins: each tier's share per region, with a warning for every tier below
/// `NEST_MARGIN_WARN_PERCENT` in any region. Live, and read again whenever `version` moves (a
/// tier saved, deleted or toggled on the page).
#[component]
pub fn TierMarginsCard(version: RwSignal<u32>) -> impl IntoView {
    view! {
        <MarginsCard
            heading="Margin per region"
            heading_id="tier-margins-heading"
            version
            body=|report| view! { <TierMarginBody report/> }.into_any()
        />
    }
}

#[component]
fn TierMarginBody(report: MarginReport) -> impl IntoView {
    let warn = report.warn_percent;
    let warnings: Vec<String> = report
        .tiers
        .iter()
        .filter_map(|t| {
            let low = t.below(warn);
            (!low.is_empty()).then(|| {
                let places: Vec<String> = low
                    .iter()
                    .map(|(r, m)| format!("{} ({})", r.as_str(), m.percent_text()))
                    .collect();
                format!("{}: {}", t.name, places.join(", "))
            })
        })
        .collect();
    let regions = crate::models::Region::ALL;
    view! {
        <p class="muted">{fetched(&report)}{format!(" Shares under {warn} % (NEST_MARGIN_WARN_PERCENT) are flagged.")}</p>
        {(!warnings.is_empty()).then(|| view! {
            <div class="warning" role="status" data-testid="margin-warning">
                <p>{format!("Margin below {warn} % of the price:")}</p>
                <ul>{warnings.into_iter().map(|w| view! { <li>{w}</li> }).collect_view()}</ul>
            </div>
        })}
        <div class="table-scroll">
            <table data-testid="tier-margins">
                <thead><tr>
                    <th scope="col">"Tier"</th>
                    {regions.iter().map(|r| view! { <th scope="col" class="num">{r.as_str()}</th> }).collect_view()}
                </tr></thead>
                <tbody>
                    {report.tiers.into_iter().map(|t| {
                        let cells = regions.iter().map(|r| {
                            let found = t.regions.iter().find(|(at, _)| at == r).map(|(_, m)| *m);
                            let low = found.is_some_and(|m| m.below(warn));
                            let text = found.map_or_else(|| "—".to_owned(), |m| {
                                let (_, cost, _) = m.money(&t.price.currency);
                                format!("{} (cost {cost})", m.percent_text())
                            });
                            view! { <td class="num" class:warn=low>{text}{low.then_some(" ⚠")}</td> }
                        }).collect_view();
                        view! {
                            <tr>
                                <th scope="row">{format!("{} ({})", t.name, t.price)}</th>
                                {cells}
                            </tr>
                            {t.note.map(|n| view! { <tr><td colspan="7" class="muted">{format!("{}: {n}", t.name)}</td></tr> })}
                        }
                    }).collect_view()}
                </tbody>
            </table>
        </div>
    }
}
