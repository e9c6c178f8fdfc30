//! `/billing`: MRR, revenue, open and overdue invoices, the MRR chart of the last 12 months
//! (SVG from the server), and the invoice table with filters (status, month, organization) and
//! paging in the URL, live; an admin marks a manual invoice paid, or voids one, with a reason,
//! behind a confirmation. `/billing/invoices/:id` is one invoice, printable. The organization
//! page lists its invoices with [`OrgInvoices`].

use leptos::prelude::*;
use leptos::server_fn::ServerFn;
use leptos_meta::Title;
use leptos_router::components::Form;
use leptos_router::hooks::{use_params_map, use_query_map};

use crate::auth::handle_auth_error;
use crate::components::pager::{is_filtered, page_link};
use crate::error::AppError;
use crate::models::{
    BillingOverview, InvoiceDetail, InvoiceEvent, InvoicePage, InvoiceQuery, InvoiceStatus,
    InvoiceTotals, InvoiceView, Money,
};

/// MRR, revenue, open and overdue totals, the MRR chart.
#[server(prefix = "/api", endpoint = "billing_overview", input = crate::codec::Form, output = crate::codec::Json)]
pub async fn get_billing_overview() -> Result<BillingOverview, AppError> {
    let (backend, _req, _admin) = crate::backend::require_admin().await?;
    backend.billing.overview().await
}

/// A page of invoices, newest first.
#[server(prefix = "/api", endpoint = "list_invoices", input = crate::codec::Form, output = crate::codec::Json)]
pub async fn list_invoices(
    #[server(default)] query: InvoiceQuery,
) -> Result<InvoicePage, AppError> {
    let (backend, _req, _admin) = crate::backend::require_admin().await?;
    backend.billing.invoices(query, 50).await
}

/// One invoice.
#[server(prefix = "/api", endpoint = "get_invoice", input = crate::codec::Form, output = crate::codec::Json)]
pub async fn get_invoice(id: i64) -> Result<InvoiceDetail, AppError> {
    let (backend, _req, _admin) = crate::backend::require_admin().await?;
    backend.billing.invoice(id).await
}

/// Marks an invoice paid (`pay`) or void (`void`) with a reason; `seen` is the status shown.
#[server(prefix = "/api", endpoint = "settle_invoice", input = crate::codec::Form, output = crate::codec::Json)]
pub async fn settle_invoice(
    id: i64,
    action: InvoiceEvent,
    seen: InvoiceStatus,
    reason: String,
) -> Result<(), AppError> {
    let (backend, req, admin) = crate::backend::require_admin().await?;
    if !action.is_admin_action() {
        return Err(AppError::validation("action", "only pay or void"));
    }
    backend
        .billing
        .settle(&admin, &req, id, action, seen, reason)
        .await
}

fn amounts(list: &[Money]) -> String {
    if list.is_empty() {
        "€0.00".to_owned()
    } else {
        list.iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(" + ")
    }
}

fn totals(t: &InvoiceTotals) -> String {
    format!(
        "{} invoice{} · {}",
        t.count,
        if t.count == 1 { "" } else { "s" },
        amounts(&t.amounts)
    )
}

fn query_from(map: &leptos_router::params::ParamsMap) -> InvoiceQuery {
    let non_empty = |k: &str| {
        map.get(k)
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    };
    InvoiceQuery {
        status: non_empty("status").and_then(|s| s.parse().ok()),
        month: non_empty("month"),
        search: non_empty("q"),
        organization_id: None,
        after: non_empty("after").and_then(|s| s.parse().ok()),
    }
}

const FILTERS: &[&str] = &["status", "month", "q"];

/// Which invoice's confirmation is open (live refetches wait while one is).
#[derive(Clone, Copy)]
struct Editing(RwSignal<Option<(i64, InvoiceEvent)>>);

/// Refetch key that follows live ticks only while no confirmation is open.
fn paused_tick(editing: RwSignal<Option<(i64, InvoiceEvent)>>) -> RwSignal<u64> {
    let live = crate::components::live::use_live();
    let seen = RwSignal::new(0u64);
    Effect::new(move |_| {
        let tick = live.tick.get();
        if editing.get().is_none() {
            seen.set(tick);
        }
    });
    seen
}

/// The page.
#[component]
pub fn BillingPage() -> impl IntoView {
    let params = use_query_map();
    let editing = RwSignal::new(None::<(i64, InvoiceEvent)>);
    provide_context(Editing(editing));
    let seen = paused_tick(editing);
    let version = RwSignal::new(0u32);
    let overview = crate::codec::resource(
        move || (seen.get(), version.get()),
        |_| get_billing_overview(),
    );
    let page = crate::codec::resource(
        move || (query_from(&params.get()), seen.get(), version.get()),
        |(query, ..)| list_invoices(query),
    );
    let on_changed = move || version.update(|v| *v += 1);
    let value = move |k: &'static str| move || params.get().get(k).unwrap_or_default();
    let selected =
        move |v: &'static str| move || params.get().get("status").unwrap_or_default() == v;
    view! {
        <Title text="Billing"/>
        <div class="page-head"><h1>"Billing"</h1></div>
        <Transition fallback=|| view! { <p role="status">"Loading the figures…"</p> }>
            {move || overview.get().map(|r| match r {
                Err(err) => {
                    handle_auth_error(&err);
                    view! { <p class="error" role="alert">{err.to_string()}</p> }.into_any()
                }
                Ok(o) => view! { <Figures overview=o/> }.into_any(),
            })}
        </Transition>
        <super::margins::Margins/>
        <section class="card" aria-labelledby="invoice-filters">
            <h2 id="invoice-filters">"Invoices"</h2>
            <Form method="GET" action="/billing">
                <div class="filters">
                    <div class="field">
                        <label for="b-status">"Status"</label>
                        <select id="b-status" name="status">
                            <option value="">"Any status"</option>
                            {InvoiceStatus::ALL.iter().map(|s| view! {
                                <option value=s.as_str() selected=selected(s.as_str())>{s.as_str()}</option>
                            }).collect_view()}
                        </select>
                    </div>
                    <div class="field">
                        <label for="b-month">"Month"</label>
                        <input id="b-month" name="month" type="month" placeholder="2026-03" prop:value=value("month")/>
                    </div>
                    <div class="field">
                        <label for="b-q">"Organization or number"</label>
                        <input id="b-q" name="q" type="search" prop:value=value("q")/>
                    </div>
                </div>
                <button type="submit" class="button">"Apply"</button>
                " "
                <a class="button secondary" href="/billing">"Clear"</a>
            </Form>
        </section>
        <Transition fallback=|| view! { <p role="status">"Loading invoices…"</p> }>
            {move || page.get().map(|result| match result {
                Err(err) => {
                    handle_auth_error(&err);
                    view! { <p class="error" role="alert">{err.to_string()}</p> }.into_any()
                }
                Ok(p) => view! { <InvoiceTable page=p params=params.get() on_changed/> }.into_any(),
            })}
        </Transition>
    }
}

#[component]
fn Figures(overview: BillingOverview) -> impl IntoView {
    view! {
        <div class="figures">
            <section class="card" aria-labelledby="mrr-heading">
                <h2 id="mrr-heading">"MRR"</h2>
                <p class="figure" data-testid="billing-mrr">{amounts(&overview.mrr)}</p>
                <p class="muted">{format!("Monthly tier prices of the {} active organizations", overview.active_organizations)}</p>
            </section>
            <section class="card" aria-labelledby="revenue-heading">
                <h2 id="revenue-heading">"Total revenue"</h2>
                <p class="figure" data-testid="billing-revenue">{amounts(&overview.revenue)}</p>
                <p class="muted">"Sum of paid invoices"</p>
            </section>
            <section class="card" aria-labelledby="open-heading">
                <h2 id="open-heading">"Open invoices"</h2>
                <p class="figure" data-testid="billing-open">{totals(&overview.open)}</p>
            </section>
            <section class="card" aria-labelledby="overdue-heading">
                <h2 id="overdue-heading">"Overdue invoices"</h2>
                <p class="figure" data-testid="billing-overdue">{totals(&overview.overdue)}</p>
            </section>
        </div>
        <section class="card" aria-labelledby="chart-heading">
            <h2 id="chart-heading">"MRR over the last 12 months"</h2>
            {if overview.charts.is_empty() {
                view! { <p class="empty">"No MRR recorded yet: the daily invoice run records each month's."</p> }.into_any()
            } else {
                overview.charts.into_iter().map(|(currency, _, svg)| view! {
                    <figure class="chart-figure">
                        <figcaption>{currency.as_str().to_owned()}</figcaption>
                        <div inner_html=svg></div>
                    </figure>
                }).collect_view().into_any()
            }}
        </section>
    }
}

#[component]
fn InvoiceTable(
    page: InvoicePage,
    params: leptos_router::params::ParamsMap,
    on_changed: impl Fn() + Copy + Send + Sync + 'static,
) -> impl IntoView {
    if page.rows.is_empty() {
        return if is_filtered(&params, FILTERS) {
            view! { <p class="empty">"No invoice matches these filters."</p> }.into_any()
        } else {
            view! { <p class="empty">"No invoices yet: the daily invoice run creates each month's."</p> }.into_any()
        };
    }
    let first_page = params.get("after").is_none();
    let link = move |after: Option<i64>| {
        page_link(
            "/billing",
            &params,
            FILTERS,
            after.map(|a| a.to_string()).as_deref(),
        )
    };
    view! {
        <table data-testid="invoices">
            <thead>
                <tr>
                    <th scope="col">"Number"</th>
                    <th scope="col">"Organization"</th>
                    <th scope="col">"Period"</th>
                    <th scope="col" class="num">"Amount"</th>
                    <th scope="col">"Status"</th>
                    <th scope="col">"Due"</th>
                    <th scope="col">"Action"</th>
                </tr>
            </thead>
            <tbody>
                {page.rows.into_iter().map(|i| view! { <InvoiceRow invoice=i on_changed show_org=true/> }).collect_view()}
            </tbody>
        </table>
        <nav class="pager" aria-label="Invoice pages">
            {(!first_page).then(|| view! { <a href=link(None)>"Newest invoices"</a> })}
            {page.next.map(|n| view! { <a href=link(Some(n))>"Older invoices"</a> })}
        </nav>
    }
    .into_any()
}

#[component]
fn InvoiceRow(
    invoice: InvoiceView,
    on_changed: impl Fn() + Copy + Send + Sync + 'static,
    show_org: bool,
) -> impl IntoView {
    let actions: Vec<InvoiceEvent> = crate::models::invoice_actions(invoice.status)
        .into_iter()
        .filter(|a| !(invoice.stripe && *a == InvoiceEvent::Pay))
        .collect();
    let number = invoice.number.to_string();
    view! {
        <tr data-testid=format!("invoice-{number}") data-status=invoice.status.as_str()>
            <td><a href=format!("/billing/invoices/{}", invoice.id)>{number.clone()}</a></td>
            {show_org.then(|| view! {
                <td><a href=format!("/organizations/{}", invoice.organization_id)>{invoice.organization.clone()}</a></td>
            })}
            <td>{crate::components::time::month(&invoice.period_start)}</td>
            <td class="num">{invoice.amount.to_string()}</td>
            <td>
                <span class=format!("badge invoice-{}", invoice.status)>{invoice.status.as_str()}</span>
                {invoice.stripe.then(|| view! { <span class="muted">" · Stripe"</span> })}
            </td>
            <td>{invoice.due_date.to_string()}</td>
            <td>
                {actions.into_iter().map(|a| view! {
                    <SettlePanel id=invoice.id number=number.clone() seen=invoice.status event=a on_changed/>
                }).collect_view()}
            </td>
        </tr>
    }
}

/// A mark-paid or void button that opens its confirmation (with a required reason).
#[component]
fn SettlePanel(
    id: i64,
    number: String,
    seen: InvoiceStatus,
    event: InvoiceEvent,
    on_changed: impl Fn() + Copy + Send + Sync + 'static,
) -> impl IntoView {
    let editing = use_context::<Editing>()
        .map(|Editing(e)| e)
        .unwrap_or_else(|| RwSignal::new(None));
    let open = Signal::derive(move || editing.get() == Some((id, event)));
    let reason = RwSignal::new(String::new());
    let run = Action::new(move |why: &String| settle_invoice(id, event, seen, why.clone()));
    Effect::new(move |_| {
        if let Some(Ok(())) = run.value().get() {
            editing.set(None);
            on_changed();
        }
    });
    let error = move || {
        run.value().get().and_then(Result::err).map(|e| {
            handle_auth_error(&e);
            e.to_string()
        })
    };
    let number = StoredValue::new(number);
    let label = event.label();
    let danger = event == InvoiceEvent::Void;
    let field = format!("reason-{id}-{}", event.as_str());
    let field = StoredValue::new(field);
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        run.dispatch(reason.get_untracked());
    };
    let interactive = crate::components::form::interactive();
    // A disclosure whose form posts: it opens, and submits, without JavaScript too.
    view! {
        <details class="action-panel" open=move || open.get()>
            <summary class=if danger { "button danger" } else { "button secondary" }
                aria-label=format!("{label} {}", number.get_value())
                on:click=move |ev| {
                    ev.prevent_default();
                    editing.set(if open.get_untracked() { None } else { Some((id, event)) });
                }>{label}</summary>
            <form class="confirm" method="post" action=SettleInvoice::url() aria-label=format!("Confirm: {label} {}", number.get_value())
                on:submit=submit>
                <input type="hidden" name="id" value=id.to_string()/>
                <input type="hidden" name="action" value=event.as_str()/>
                <input type="hidden" name="seen" value=seen.as_str()/>
                <p>{if event == InvoiceEvent::Pay {
                    "Records the payment (today). An organization suspended for this unpaid invoice is resumed."
                } else {
                    "Cancels the invoice: it is no longer owed. This cannot be undone."
                }}</p>
                <div class="field">
                    <label for=field.get_value()>"Reason (kept in the audit log)"</label>
                    <textarea id=field.get_value() name="reason" rows="2" required bind:value=reason></textarea>
                </div>
                <button type="submit" class=if danger { "button danger" } else { "button" }
                    disabled=move || run.pending().get() || (interactive.get() && reason.get().trim().is_empty())>
                    {format!("Confirm: {label}")}
                </button>
                " "
                <button type="button" class="button secondary" on:click=move |_| editing.set(None)>"Cancel"</button>
                {move || error().map(|e| view! { <div class="field-error" role="alert">{e}</div> })}
            </form>
        </details>
    }
}

/// `/billing/invoices/:id`: one invoice, laid out to print (the sidebar and buttons are hidden
/// when printed).
#[component]
pub fn InvoicePrintPage() -> impl IntoView {
    let params = use_params_map();
    let live = crate::components::live::use_live();
    let id = move || {
        params
            .get()
            .get("id")
            .and_then(|v| v.parse::<i64>().ok())
            .unwrap_or_default()
    };
    let detail = crate::codec::resource(move || (id(), live.tick.get()), |(id, _)| get_invoice(id));
    view! {
        <Transition fallback=|| view! { <p role="status">"Loading the invoice…"</p> }>
            {move || detail.get().map(|r| match r {
                Err(err) => {
                    handle_auth_error(&err);
                    view! { <Title text="Invoice"/><h1>"Invoice"</h1><p class="error" role="alert">{err.to_string()}</p> }.into_any()
                }
                Ok(d) => view! { <InvoiceSheet detail=d/> }.into_any(),
            })}
        </Transition>
    }
}

#[component]
fn InvoiceSheet(detail: InvoiceDetail) -> impl IntoView {
    let i = detail.invoice.clone();
    let number = i.number.to_string();
    view! {
        <Title text=number.clone()/>
        <article class="card invoice-sheet" data-testid="invoice-sheet">
            <div class="page-head">
                <h1>{format!("Invoice {number}")}</h1>
                <span class=format!("badge invoice-{}", i.status) data-testid="invoice-status">{i.status.as_str()}</span>
            </div>
            <dl class="facts">
                <dt>"Billed to"</dt><dd>{format!("{} ({}) · {}", i.organization, i.slug, detail.owner_email)}</dd>
                <dt>"Period"</dt><dd>{format!("{} – {}", i.period_start, i.period_end)}</dd>
                <dt>"Issued"</dt><dd>{crate::components::time::day(&detail.created_at)}</dd>
                <dt>"Due"</dt><dd>{i.due_date.to_string()}</dd>
                {i.paid_at.map(|p| view! { <dt>"Paid"</dt><dd>{crate::components::time::day(&p)}</dd> })}
                {detail.stripe_invoice_id.clone().map(|s| view! { <dt>"Stripe invoice"</dt><dd><code>{s}</code></dd> })}
            </dl>
            <table>
                <thead><tr><th scope="col">"Description"</th><th scope="col" class="num">"Amount"</th></tr></thead>
                <tbody>
                    <tr>
                        <td>{i.description.clone().unwrap_or_else(|| "Managed hosting".to_owned())}</td>
                        <td class="num">{i.amount.to_string()}</td>
                    </tr>
                </tbody>
                <tfoot><tr><th scope="row">"Total"</th><td class="num amount" data-testid="invoice-total">{i.amount.to_string()}</td></tr></tfoot>
            </table>
            <p class="no-print">
                <a href="/billing">"Back to billing"</a>" · "
                <a href=format!("/organizations/{}", i.organization_id)>"Organization page"</a>
            </p>
        </article>
        <section class="card no-print" aria-labelledby="invoice-history">
            <h2 id="invoice-history">"History"</h2>
            <ul>
                {detail.history.iter().map(|e| view! {
                    <li>
                        {format!("{} · {} · ", crate::components::time::stamp(&e.created_at), e.actor_email)}
                        <code>{e.action.clone()}</code>
                        {e.detail.get("reason").and_then(|m| m.as_str()).map(|m| format!(" — {m}"))}
                    </li>
                }).collect_view()}
            </ul>
        </section>
    }
}

/// The organization page's billing section: its invoices with links, live.
#[component]
pub fn OrgInvoices(organization_id: i64) -> impl IntoView {
    let live = crate::components::live::use_live();
    let version = RwSignal::new(0u32);
    let page = crate::codec::resource(
        move || (live.tick.get(), version.get()),
        move |_| {
            list_invoices(InvoiceQuery {
                organization_id: Some(organization_id),
                ..InvoiceQuery::default()
            })
        },
    );
    view! {
        <section class="card" aria-labelledby="billing-heading">
            <h2 id="billing-heading">"Billing"</h2>
            <Transition fallback=|| view! { <p role="status">"Loading invoices…"</p> }>
                {move || page.get().map(|r| match r {
                    Err(e) => view! { <p class="error" role="alert">{e.to_string()}</p> }.into_any(),
                    Ok(p) if p.rows.is_empty() => view! { <p class="empty">"No invoices yet."</p> }.into_any(),
                    Ok(p) => view! {
                        <table data-testid="org-invoices">
                            <thead><tr>
                                <th scope="col">"Number"</th><th scope="col">"Period"</th><th scope="col" class="num">"Amount"</th>
                                <th scope="col">"Status"</th><th scope="col">"Due"</th><th scope="col">"Action"</th>
                            </tr></thead>
                            <tbody>
                                {p.rows.into_iter().map(|i| view! {
                                    <InvoiceRow invoice=i on_changed=move || version.update(|v| *v += 1) show_org=false/>
                                }).collect_view()}
                            </tbody>
                        </table>
                        <a href="/billing">"All invoices"</a>
                    }.into_any(),
                })}
            </Transition>
        </section>
    }
}
