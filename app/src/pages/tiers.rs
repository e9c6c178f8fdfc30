//! `/tiers`: pricing tiers — list, create, edit, activate/deactivate, delete when unused.
//! Prices are typed as amounts and stored as integer cents.

use leptos::prelude::*;
use leptos::server_fn::ServerFn;
use leptos_meta::Title;

use crate::auth::handle_auth_error;
use crate::components::form::{Field, FormError};
use crate::error::AppError;
use crate::models::{TierDetail, TierInput, TierOption};

/// Every tier with its details and usage.
#[server(prefix = "/api", endpoint = "list_tier_details", input = crate::codec::Form, output = crate::codec::Json)]
pub async fn list_tier_details() -> Result<Vec<(TierOption, TierDetail)>, AppError> {
    let (backend, _req, _admin) = crate::backend::require_admin().await?;
    backend.tiers.list().await
}

/// Creates (`id` empty) or updates a tier.
#[server(prefix = "/api", endpoint = "save_tier", input = crate::codec::Form, output = crate::codec::Json)]
pub async fn save_tier(id: Option<i64>, input: TierInput) -> Result<i64, AppError> {
    let (backend, req, admin) = crate::backend::require_superadmin().await?;
    let id = backend.tiers.save(&admin, &req, id, input).await?;
    crate::auth::redirect_plain_form("/tiers");
    Ok(id)
}

/// Activates or deactivates a tier.
#[server(prefix = "/api", endpoint = "set_tier_active", input = crate::codec::Form, output = crate::codec::Json)]
pub async fn set_tier_active(id: i64, active: bool) -> Result<(), AppError> {
    let (backend, req, admin) = crate::backend::require_superadmin().await?;
    backend.tiers.set_active(&admin, &req, id, active).await
}

/// Deletes an unused tier.
#[server(prefix = "/api", endpoint = "delete_tier", input = crate::codec::Form, output = crate::codec::Json)]
pub async fn delete_tier(id: i64) -> Result<(), AppError> {
    let (backend, req, admin) = crate::backend::require_superadmin().await?;
    backend.tiers.delete(&admin, &req, id).await
}

/// Which tier form the page shows: `/tiers?new` for a new tier, `/tiers?edit=<id>` to edit one.
/// Links, so they work before hydration and without JavaScript.
fn open_form(query: &leptos_router::params::ParamsMap) -> Option<Option<i64>> {
    if query.get_str("new").is_some() {
        Some(None)
    } else {
        query
            .get_str("edit")
            .and_then(|id| id.parse().ok())
            .map(Some)
    }
}

/// The page.
#[component]
pub fn TiersPage() -> impl IntoView {
    let version = RwSignal::new(0u32);
    // Live: another admin's change shows without a reload.
    let live = crate::components::live::use_live();
    let list = crate::codec::resource(
        move || (version.get(), live.tick.get()),
        |_| list_tier_details(),
    );
    let query = leptos_router::hooks::use_query_map();
    let editing = Memo::new(move |_| query.with(open_form));
    // The open form: which tier (none: a new one), and what it starts with (none: it is gone).
    let form = crate::codec::resource(
        move || editing.get(),
        |open| async move {
            Ok::<_, AppError>(match open {
                None => None,
                Some(None) => Some((
                    None,
                    Some(TierInput {
                        currency: "EUR".into(),
                        ..Default::default()
                    }),
                )),
                Some(Some(id)) => Some((
                    Some(id),
                    list_tier_details()
                        .await?
                        .iter()
                        .find(|(t, _)| t.id == id)
                        .map(|(t, d)| input_of(t, d)),
                )),
            })
        },
    );
    let navigate = leptos_router::hooks::use_navigate();
    let close = move || navigate("/tiers", Default::default());
    let row_error = RwSignal::new(None::<String>);
    let toggle = Action::new(|(id, active): &(i64, bool)| set_tier_active(*id, *active));
    let remove = Action::new(|id: &i64| delete_tier(*id));
    Effect::new(move |_| {
        for result in [toggle.value().get(), remove.value().get()]
            .into_iter()
            .flatten()
        {
            match result {
                Ok(()) => {
                    row_error.set(None);
                    version.update(|v| *v += 1);
                }
                Err(e) => row_error.set(Some(e.to_string())),
            }
        }
    });

    view! {
        <Title text="Tiers"/>
        <div class="page-head">
            <h1>"Pricing tiers"</h1>
            <a class="button" href="/tiers?new">"New tier"</a>
        </div>
        {move || row_error.get().map(|e| view! { <p class="form-error" role="alert">{e}</p> })}
        // The form has its own data, read when it opens: the live list below may refetch while
        // someone types in it.
        <Transition fallback=|| ()>
            {move || form.get().map(|result| match result {
                Ok(None) => ().into_any(),
                Ok(Some((id, Some(initial)))) => {
                    let close = close.clone();
                    view! { <TierForm id initial on_done=move || { version.update(|v| *v += 1); close(); }/> }.into_any()
                }
                Ok(Some((_, None))) => view! { <p class="form-error" role="alert">"That tier no longer exists."</p> }.into_any(),
                Err(err) => view! { <p class="form-error" role="alert">{err.to_string()}</p> }.into_any(),
            })}
        </Transition>
        <Transition fallback=|| view! { <p role="status">"Loading tiers…"</p> }>
            {move || list.get().map(|result| match result {
                Err(err) => {
                    handle_auth_error(&err);
                    view! { <p class="error" role="alert">{err.to_string()}</p> }.into_any()
                }
                Ok(rows) => view! { <TierTable rows toggle remove/> }.into_any(),
            })}
        </Transition>
        <p class="muted">"Changing a price applies to future invoices; issued invoices keep their amounts."</p>
        <super::margins::TierMarginsCard version/>
    }
}

/// A tier as its form shows it.
fn input_of(t: &TierOption, d: &TierDetail) -> TierInput {
    TierInput {
        name: t.name.clone(),
        code: t.code.clone(),
        server_type: t.server_type.clone(),
        vcpus: d.vcpus.to_string(),
        memory_gb: d.memory_gb.to_string(),
        disk_gb: d.disk_gb.to_string(),
        monthly_price: format!(
            "{}.{:02}",
            t.monthly_price_cents / 100,
            t.monthly_price_cents % 100
        ),
        currency: t.currency.clone(),
        stripe_price_id: d.stripe_price_id.clone().unwrap_or_default(),
    }
}

/// The tiers, each with its actions: edit (a link), activate or deactivate, and delete (confirmed,
/// and only while no organization uses it). Each action is a form that posts.
#[component]
fn TierTable(
    rows: Vec<(TierOption, TierDetail)>,
    toggle: Action<(i64, bool), Result<(), AppError>>,
    remove: Action<i64, Result<(), AppError>>,
) -> impl IntoView {
    view! {
        <table data-testid="tiers">
            <thead><tr>
                <th scope="col">"Name"</th><th scope="col">"Server type"</th><th scope="col">"Specs"</th>
                <th scope="col" class="num">"Monthly price"</th><th scope="col">"Stripe price"</th>
                <th scope="col" class="num">"Organizations"</th><th scope="col">"Status"</th><th scope="col">"Actions"</th>
            </tr></thead>
            <tbody>
                {rows.into_iter().map(|(t, d)| {
                    let id = t.id;
                    let active = t.active;
                    let in_use = d.organizations;
                    let name = t.name.clone();
                    let on_toggle = move |ev: leptos::ev::SubmitEvent| {
                        ev.prevent_default();
                        toggle.dispatch((id, !active));
                    };
                    let on_remove = move |ev: leptos::ev::SubmitEvent| {
                        ev.prevent_default();
                        remove.dispatch(id);
                    };
                    view! {
                        <tr>
                            <td>{t.name.clone()}</td>
                            <td><code>{t.server_type.clone()}</code></td>
                            <td>{format!("{} vCPU, {} GB RAM, {} GB disk", d.vcpus, d.memory_gb, d.disk_gb)}</td>
                            <td class="num">{super::organizations::price(t.monthly_price_cents, &t.currency)}</td>
                            <td>{d.stripe_price_id.clone().unwrap_or_else(|| "—".into())}</td>
                            <td class="num">{in_use}</td>
                            <td><span class=if active { "badge status-active" } else { "badge" }>{if active { "active" } else { "inactive" }}</span></td>
                            <td class="actions">
                                <a class="button secondary" aria-label=format!("Edit {name}") href=format!("/tiers?edit={id}")>"Edit"</a>
                                <form class="inline-form" method="post" action=SetTierActive::url() on:submit=on_toggle>
                                    <input type="hidden" name="id" value=id.to_string()/>
                                    <input type="hidden" name="active" value=(!active).to_string()/>
                                    <button type="submit" class="button secondary" aria-label=format!("{} {name}", if active { "Deactivate" } else { "Activate" })>
                                        {if active { "Deactivate" } else { "Activate" }}
                                    </button>
                                </form>
                                {if in_use > 0 {
                                    view! {
                                        <button type="button" class="button danger" disabled=true
                                            title="Organizations use this tier: deactivate it instead">"Delete"</button>
                                    }.into_any()
                                } else {
                                    view! {
                                        <details class="act">
                                            <summary class="button danger" aria-label=format!("Delete {name}")>"Delete"</summary>
                                            <form class="confirm" method="post" action=DeleteTier::url() on:submit=on_remove>
                                                <input type="hidden" name="id" value=id.to_string()/>
                                                <p>{format!("Delete the tier {name}? No organization uses it. This cannot be undone.")}</p>
                                                <button type="submit" class="button danger">{format!("Yes, delete {name}")}</button>
                                            </form>
                                        </details>
                                    }.into_any()
                                }}
                            </td>
                        </tr>
                    }
                }).collect_view()}
            </tbody>
        </table>
    }
}

#[component]
fn TierForm(
    id: Option<i64>,
    initial: TierInput,
    on_done: impl Fn() + Clone + Send + Sync + 'static,
) -> impl IntoView {
    let name = RwSignal::new(initial.name);
    let code = RwSignal::new(initial.code);
    let server_type = RwSignal::new(initial.server_type);
    let vcpus = RwSignal::new(initial.vcpus);
    let memory = RwSignal::new(initial.memory_gb);
    let disk = RwSignal::new(initial.disk_gb);
    let price = RwSignal::new(initial.monthly_price);
    let currency = RwSignal::new(initial.currency);
    let stripe = RwSignal::new(initial.stripe_price_id);
    let save = Action::new(move |input: &TierInput| save_tier(id, input.clone()));
    let error = Signal::derive(move || save.value().get().and_then(Result::err));
    Effect::new(move |_| {
        if let Some(Ok(_)) = save.value().get() {
            on_done();
        }
    });
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        save.dispatch(TierInput {
            name: name.get_untracked(),
            code: code.get_untracked(),
            server_type: server_type.get_untracked(),
            vcpus: vcpus.get_untracked(),
            memory_gb: memory.get_untracked(),
            disk_gb: disk.get_untracked(),
            monthly_price: price.get_untracked(),
            currency: currency.get_untracked(),
            stripe_price_id: stripe.get_untracked(),
        });
    };
    view! {
        <section class="card" aria-labelledby="tier-form-heading">
            <h2 id="tier-form-heading">{if id.is_some() { "Edit tier" } else { "New tier" }}</h2>
            <form method="post" action=SaveTier::url() on:submit=submit novalidate>
                {id.map(|id| view! { <input type="hidden" name="id" value=id.to_string()/> })}
                <FormError error fields=&["name", "code", "server_type", "vcpus", "memory_gb", "disk_gb", "monthly_price", "currency", "stripe_price_id"]/>
                <Field name="name" input_name="input[name]" label="Name" value=name error/>
                {match id {
                    None => view! { <Field name="code" input_name="input[code]" label="Code" hint="Stable identifier, e.g. starter." value=code error/> }.into_any(),
                    Some(_) => view! { <input type="hidden" name="input[code]" value=code.get_untracked()/> }.into_any(),
                }}
                <Field name="server_type" input_name="input[server_type]" label="Hetzner server type" hint="e.g. cx22" value=server_type error/>
                <Field name="vcpus" input_name="input[vcpus]" label="vCPUs" kind="number" value=vcpus error/>
                <Field name="memory_gb" input_name="input[memory_gb]" label="Memory (GB)" kind="number" value=memory error/>
                <Field name="disk_gb" input_name="input[disk_gb]" label="Disk (GB)" kind="number" value=disk error/>
                <Field name="monthly_price" input_name="input[monthly_price]" label="Monthly price" hint="An amount such as 28.00" value=price error/>
                <Field name="currency" input_name="input[currency]" label="Currency" value=currency error/>
                <Field name="stripe_price_id" input_name="input[stripe_price_id]" label="Stripe price id" hint="Optional, price_…" required=false value=stripe error/>
                <button type="submit" class="button" disabled=move || save.pending().get()>"Save tier"</button>
                " "
                <a class="button secondary" href="/tiers">"Cancel"</a>
            </form>
        </section>
    }
}
