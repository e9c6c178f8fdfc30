//! `/reconcile`: what the `reconcile` task found between the database, Hetzner and Stripe,
//! live. An admin acts on a finding (adopt or delete an orphan server, cancel a subscription, resize a
//! drifted server back) by typing the name it asks for; each action is audited. The action
//! forms post to their server function, so they work before hydration and without JavaScript.

use leptos::prelude::*;
use leptos::server_fn::ServerFn;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;

use crate::auth::handle_auth_error;
use crate::components::form::FormError;
use crate::error::AppError;
use crate::models::{FindingAction, FindingPage, FindingView};

/// Open findings, or the latest resolved ones.
#[server(prefix = "/api", endpoint = "list_findings", input = crate::codec::Form, output = crate::codec::Json)]
pub async fn list_findings(#[server(default)] resolved: bool) -> Result<FindingPage, AppError> {
    let (backend, _req, _admin) = crate::backend::require_admin().await?;
    backend.reconcile.findings(resolved).await
}

/// Acts on an open finding, once `confirm` matches what it asks for.
#[server(prefix = "/api", endpoint = "act_on_finding", input = crate::codec::Form, output = crate::codec::Json)]
pub async fn act_on_finding(
    id: i64,
    action: FindingAction,
    confirm: String,
) -> Result<(), AppError> {
    let (backend, req, admin) = crate::backend::require_admin().await?;
    backend
        .reconcile
        .act(&admin, &req, id, action, confirm)
        .await?;
    crate::auth::redirect_plain_form("/reconcile");
    Ok(())
}

/// The page.
#[component]
pub fn ReconcilePage() -> impl IntoView {
    let params = use_query_map();
    let live = crate::components::live::use_live();
    let version = RwSignal::new(0u32);
    let resolved = move || params.with(|p| p.get("state").as_deref() == Some("resolved"));
    let page = crate::codec::resource(
        move || (resolved(), live.tick.get(), version.get()),
        |(resolved, _, _)| list_findings(resolved),
    );
    view! {
        <Title text="Reconciliation"/>
        <div class="page-head"><h1>"Reconciliation"</h1></div>
        <p class="muted">
            "What differs between Nest's database, Hetzner's servers and Stripe's subscriptions, as the last run of the "
            <code>"reconcile"</code>" task saw it. Nothing is repaired automatically."
        </p>
        <nav class="tabs" aria-label="Findings">
            <a href="/reconcile" aria-current=move || (!resolved()).then_some("page")>"Open"</a>
            " · "
            <a href="/reconcile?state=resolved" aria-current=move || resolved().then_some("page")>"Resolved"</a>
        </nav>
        <Transition fallback=|| view! { <p role="status">"Loading findings…"</p> }>
            {move || page.get().map(|result| match result {
                Err(err) => {
                    handle_auth_error(&err);
                    view! { <p class="error" role="alert">{err.to_string()}</p> }.into_any()
                }
                Ok(p) if p.findings.is_empty() => view! {
                    <p class="empty" data-testid="no-findings">
                        {if p.resolved { "No finding has been resolved yet." } else { "No open findings: the database, Hetzner and Stripe agree." }}
                    </p>
                }.into_any(),
                Ok(p) => view! {
                    <table class="findings" data-testid="findings">
                        <thead>
                            <tr>
                                <th scope="col">"Finding"</th>
                                <th scope="col">"Organization"</th>
                                <th scope="col">"Seen"</th>
                                <th scope="col">"Action"</th>
                            </tr>
                        </thead>
                        <tbody>
                            {p.findings.into_iter().map(|f| view! {
                                <FindingRow finding=f on_changed=move || version.update(|v| *v += 1)/>
                            }).collect_view()}
                        </tbody>
                    </table>
                }.into_any(),
            })}
        </Transition>
    }
}

#[component]
fn FindingRow(
    finding: FindingView,
    on_changed: impl Fn() + Copy + Send + Sync + 'static,
) -> impl IntoView {
    let seen = match finding.resolved_at {
        Some(at) => format!(
            "{} – resolved {}",
            crate::components::time::minute(&finding.first_seen_at),
            crate::components::time::minute(&at)
        ),
        None => format!(
            "since {}, last {}",
            crate::components::time::minute(&finding.first_seen_at),
            crate::components::time::minute(&finding.last_seen_at)
        ),
    };
    let costly = finding.kind.costs_money();
    view! {
        <tr data-testid=format!("finding-{}", finding.id)>
            <td>
                <span class=if costly { "badge status-error" } else { "badge" }>{finding.kind.as_str()}</span>
                <div>{finding.summary.clone()}</div>
                <div class="muted"><code>{finding.subject.clone()}</code></div>
            </td>
            <td>
                {match finding.organization.clone() {
                    Some((id, slug)) => view! { <a href=format!("/organizations/{id}")>{slug}</a> }.into_any(),
                    None => view! { <span class="muted">"none known"</span> }.into_any(),
                }}
            </td>
            <td>{seen}</td>
            <td>
                {finding.resolved_at.is_none().then(|| finding.actions.iter().map(|action| view! {
                    <ActForm id=finding.id action=*action confirm=finding.confirm.clone() on_changed/>
                }).collect_view())}
            </td>
        </tr>
    }
    .into_any()
}

/// The action in a `<details>` that opens a form asking to type the name: it opens, posts and
/// redirects back without JavaScript too.
#[component]
fn ActForm(
    id: i64,
    action: FindingAction,
    confirm: String,
    on_changed: impl Fn() + Copy + Send + Sync + 'static,
) -> impl IntoView {
    let typed = RwSignal::new(String::new());
    let act = ServerAction::<ActOnFinding>::new();
    let error = Signal::derive(move || act.value().get().and_then(Result::err));
    Effect::new(move |_| {
        if let Some(Ok(())) = act.value().get() {
            on_changed();
        }
    });
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        act.dispatch(ActOnFinding {
            id,
            action,
            confirm: typed.get_untracked(),
        });
    };
    let field = format!("confirm-{id}-{action}");
    // Adopting keeps a server; every other action removes or changes something.
    let class = if action == FindingAction::AdoptServer {
        "button"
    } else {
        "button danger"
    };
    view! {
        <details class="act">
            <summary class=class>{action.label()}</summary>
            <form class="note-form" method="post" action=ActOnFinding::url() on:submit=submit novalidate>
                <FormError error fields=&["confirm"]/>
                <input type="hidden" name="id" value=id.to_string()/>
                <input type="hidden" name="action" value=action.as_str()/>
                <div class="field">
                    <label for=field.clone()>"Type "<code>{confirm}</code>" to confirm"</label>
                    <input id=field.clone() name="confirm" type="text" autocomplete="off" bind:value=typed required
                        aria-invalid=move || error.get().and_then(|e| e.for_field("confirm")).is_some().then_some("true")/>
                    {move || error.get().and_then(|e| e.for_field("confirm")).map(|m| view! { <div class="field-error">{m}</div> })}
                </div>
                <button type="submit" class=class disabled=move || act.pending().get()>{action.label()}</button>
            </form>
        </details>
    }
    .into_any()
}
