//! `/organizations/new`: name, slug (checked as you type), owner email, tier and region. The
//! organization is created with its `create` job queued (no payment step).

use leptos::prelude::*;
use leptos::server_fn::ServerFn;
use leptos_meta::Title;
use leptos_router::hooks::use_navigate;

use crate::auth::handle_auth_error;
use crate::components::form::{Field, FormError};
use crate::error::AppError;
use crate::models::{OrgSlug, Region, TierOption};

/// Tiers for the form.
#[server(prefix = "/api", endpoint = "list_tiers", input = crate::codec::Form, output = crate::codec::Json)]
pub async fn list_tiers() -> Result<Vec<TierOption>, AppError> {
    let (backend, _req, _admin) = crate::backend::require_admin().await?;
    backend.organizations.tiers().await
}

/// Whether a slug is still free.
#[server(prefix = "/api", endpoint = "slug_available", input = crate::codec::Form, output = crate::codec::Json)]
pub async fn slug_available(slug: String) -> Result<bool, AppError> {
    let (backend, _req, _admin) = crate::backend::require_admin().await?;
    backend.organizations.slug_available(slug).await
}

/// Creates an organization and queues its `create` job; returns its id.
#[server(prefix = "/api", endpoint = "create_organization", input = crate::codec::Form, output = crate::codec::Json)]
pub async fn create_organization(
    name: String,
    slug: String,
    owner_email: String,
    tier_id: i64,
    region: String,
) -> Result<i64, AppError> {
    let (backend, req, admin) = crate::backend::require_admin().await?;
    let id = backend
        .organizations
        .create(&admin, &req, name, slug, owner_email, tier_id, region)
        .await?;
    crate::auth::redirect_plain_form(&format!("/organizations/{id}"));
    Ok(id)
}

/// The page.
#[component]
pub fn NewOrganizationPage() -> impl IntoView {
    let tiers = crate::codec::resource(|| (), |_| list_tiers());
    let name = RwSignal::new(String::new());
    let slug = RwSignal::new(String::new());
    let owner = RwSignal::new(String::new());
    let tier = RwSignal::new(String::new());
    let region = RwSignal::new(Region::default().as_str().to_owned());
    let action = Action::new(
        move |(n, s, o, t, r): &(String, String, String, i64, String)| {
            create_organization(n.clone(), s.clone(), o.clone(), *t, r.clone())
        },
    );
    let error = Signal::derive(move || action.value().get().and_then(Result::err));
    let navigate = use_navigate();
    Effect::new(move |_| {
        if let Some(Ok(id)) = action.value().get() {
            navigate(&format!("/organizations/{id}"), Default::default());
        }
    });
    // The slug's format is checked in the browser as you type; availability by the server.
    let slug_format = move || {
        let s = slug.get();
        if s.is_empty() {
            None
        } else {
            s.parse::<OrgSlug>().err().map(|e| e.to_string())
        }
    };
    let availability = crate::codec::resource(
        move || slug.get(),
        |s| async move {
            if s.parse::<OrgSlug>().is_ok() {
                slug_available(s).await.ok()
            } else {
                None
            }
        },
    );
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let tier_id = tier.get_untracked().parse().unwrap_or_default();
        action.dispatch((
            name.get_untracked(),
            slug.get_untracked(),
            owner.get_untracked(),
            tier_id,
            region.get_untracked(),
        ));
    };

    view! {
        <Title text="New organization"/>
        <h1>"New organization"</h1>
        <section class="card">
            <p class="muted">"The server is provisioned right away: its create job is queued when you submit (no payment step)."</p>
            <form method="post" action=CreateOrganization::url() on:submit=submit novalidate>
                <FormError error fields=&["name", "slug", "owner_email", "tier", "region"]/>
                <Field name="name" label="Organization name" value=name error/>
                <Field
                    name="slug"
                    label="Slug"
                    hint="Its subdomain: 3–40 lowercase letters, digits and hyphens."
                    value=slug
                    error
                />
                <div class="slug-check" aria-live="polite" data-testid="slug-check">
                    {move || match slug_format() {
                        Some(problem) => view! { <span class="field-error">{problem}</span> }.into_any(),
                        None => view! {
                            <Transition fallback=|| ()>
                                {move || availability.get().flatten().map(|free| if free {
                                    view! { <span class="ok">"Available"</span> }.into_any()
                                } else {
                                    view! { <span class="field-error">"Already taken"</span> }.into_any()
                                })}
                            </Transition>
                        }.into_any(),
                    }}
                </div>
                <Field name="owner_email" label="Owner email" kind="email" value=owner error/>
                <div class="field">
                    <label for="field-tier">"Tier"</label>
                    <Transition fallback=|| view! { <span>"Loading tiers…"</span> }>
                        {move || tiers.get().map(|result| match result {
                            Err(err) => {
                                handle_auth_error(&err);
                                view! { <p class="error" role="alert">{err.to_string()}</p> }.into_any()
                            }
                            Ok(list) => {
                                if tier.get_untracked().is_empty()
                                    && let Some(first) = list.iter().find(|t| t.active)
                                {
                                    tier.set(first.id.to_string());
                                }
                                view! {
                                    <select id="field-tier" name="tier_id" on:change=move |ev| tier.set(event_target_value(&ev))>
                                        {list.into_iter().filter(|t| t.active).map(|t| {
                                            let id = t.id.to_string();
                                            let selected = id == tier.get_untracked();
                                            view! {
                                                <option value=id selected=selected>
                                                    {format!("{} — {} — {}/month", t.name, t.server_type, super::price(t.monthly_price_cents, &t.currency))}
                                                </option>
                                            }
                                        }).collect_view()}
                                    </select>
                                }.into_any()
                            }
                        })}
                    </Transition>
                    {move || error.get().and_then(|e| e.for_field("tier")).map(|m| view! { <div class="field-error">{m}</div> })}
                </div>
                <div class="field">
                    <label for="field-region">"Region"</label>
                    <select id="field-region" name="region" on:change=move |ev| region.set(event_target_value(&ev))>
                        {Region::ALL.iter().map(|r| view! {
                            <option value=r.as_str() selected=*r == Region::default()>
                                {format!("{} — {}, {} ({})", r.as_str(), r.location(), r.country(), r.continent())}
                            </option>
                        }).collect_view()}
                    </select>
                    {move || error.get().and_then(|e| e.for_field("region")).map(|m| view! { <div class="field-error">{m}</div> })}
                </div>
                <button type="submit" class="button" disabled=move || action.pending().get()>
                    {move || if action.pending().get() { "Creating…" } else { "Create organization" }}
                </button>
            </form>
        </section>
    }
}
