//! `/tiers`: pricing tiers — list, create, edit, activate/deactivate, delete when unused.
//! Prices are typed as amounts and stored as integer cents.

use leptos::prelude::*;
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
    backend.tiers.save(&admin, &req, id, input).await
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

/// The page.
#[component]
pub fn TiersPage() -> impl IntoView {
    let version = RwSignal::new(0u32);
    let list = crate::codec::resource(move || version.get(), |_| list_tier_details());
    let editing = RwSignal::new(None::<Option<i64>>); // Some(None): new tier; Some(Some(id)): edit
    let form = RwSignal::new(TierInput::default());
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
            <button type="button" class="button" on:click=move |_| { form.set(TierInput { currency: "EUR".into(), ..Default::default() }); editing.set(Some(None)); }>
                "New tier"
            </button>
        </div>
        {move || row_error.get().map(|e| view! { <p class="form-error" role="alert">{e}</p> })}
        {move || editing.get().map(|id| view! { <TierForm id form on_done=move || { editing.set(None); version.update(|v| *v += 1); } on_cancel=move || editing.set(None)/> })}
        <Transition fallback=|| view! { <p role="status">"Loading tiers…"</p> }>
            {move || list.get().map(|result| match result {
                Err(err) => {
                    handle_auth_error(&err);
                    view! { <p class="error" role="alert">{err.to_string()}</p> }.into_any()
                }
                Ok(rows) => view! {
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
                                let input = TierInput {
                                    name: t.name.clone(),
                                    code: t.code.clone(),
                                    server_type: t.server_type.clone(),
                                    vcpus: d.vcpus.to_string(),
                                    memory_gb: d.memory_gb.to_string(),
                                    disk_gb: d.disk_gb.to_string(),
                                    monthly_price: format!("{}.{:02}", t.monthly_price_cents / 100, t.monthly_price_cents % 100),
                                    currency: t.currency.clone(),
                                    stripe_price_id: d.stripe_price_id.clone().unwrap_or_default(),
                                };
                                let name = t.name.clone();
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
                                            <button type="button" class="button secondary" aria-label=format!("Edit {name}") on:click=move |_| { form.set(input.clone()); editing.set(Some(Some(id))); }>"Edit"</button>
                                            <button type="button" class="button secondary" on:click=move |_| { toggle.dispatch((id, !active)); }>
                                                {if active { "Deactivate" } else { "Activate" }}
                                            </button>
                                            <button
                                                type="button"
                                                class="button danger"
                                                disabled={in_use > 0}
                                                title={(in_use > 0).then_some("Organizations use this tier: deactivate it instead")}
                                                on:click=move |_| { remove.dispatch(id); }
                                            >"Delete"</button>
                                        </td>
                                    </tr>
                                }
                            }).collect_view()}
                        </tbody>
                    </table>
                }.into_any(),
            })}
        </Transition>
        <p class="muted">"Changing a price applies to future invoices; issued invoices keep their amounts."</p>
        <super::margins::TierMarginsCard version/>
    }
}

#[component]
fn TierForm(
    id: Option<i64>,
    form: RwSignal<TierInput>,
    on_done: impl Fn() + Copy + Send + Sync + 'static,
    on_cancel: impl Fn() + Copy + Send + Sync + 'static,
) -> impl IntoView {
    let initial = form.get_untracked();
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
            <form on:submit=submit novalidate>
                <FormError error fields=&["name", "code", "server_type", "vcpus", "memory_gb", "disk_gb", "monthly_price", "currency", "stripe_price_id"]/>
                <Field name="name" label="Name" value=name error/>
                {id.is_none().then(|| view! { <Field name="code" label="Code" hint="Stable identifier, e.g. starter." value=code error/> })}
                <Field name="server_type" label="Hetzner server type" hint="e.g. cx22" value=server_type error/>
                <Field name="vcpus" label="vCPUs" kind="number" value=vcpus error/>
                <Field name="memory_gb" label="Memory (GB)" kind="number" value=memory error/>
                <Field name="disk_gb" label="Disk (GB)" kind="number" value=disk error/>
                <Field name="monthly_price" label="Monthly price" hint="An amount such as 28.00" value=price error/>
                <Field name="currency" label="Currency" value=currency error/>
                <Field name="stripe_price_id" label="Stripe price id" hint="Optional, price_…" required=false value=stripe error/>
                <button type="submit" class="button" disabled=move || save.pending().get()>"Save tier"</button>
                " "
                <button type="button" class="button secondary" on:click=move |_| on_cancel()>"Cancel"</button>
            </form>
        </section>
    }
}
