//! `/signup` (public): tier and region, organization name and slug (checked as you type), the
//! owner's e-mail, then the payment — Stripe's Payment Element, or in simulator mode Nest's
//! clearly labelled stand-in form with its test cards. `/signup?token=…` (from `/pending` after
//! a decline) goes straight to the payment. Provisioning starts when Stripe reports the first
//! invoice paid; the customer then follows it on `/pending`.

use leptos::prelude::*;
use leptos::server_fn::ServerFn;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;

use crate::components::form::{Field, FormError};
use crate::error::AppError;
use crate::models::{OrgSlug, PaymentForm, SignupInput, SignupOffer, SignupStarted, test_cards};

/// What the form offers.
#[server(prefix = "/api", endpoint = "get_signup_offer", input = crate::codec::Form, output = crate::codec::Json)]
pub async fn get_signup_offer() -> Result<SignupOffer, AppError> {
    crate::backend::use_backend()?.signups.offer().await
}

/// Whether a slug is free (public: subdomains are public anyway).
#[server(prefix = "/api", endpoint = "signup_slug_available", input = crate::codec::Form, output = crate::codec::Json)]
pub async fn signup_slug_available(slug: String) -> Result<bool, AppError> {
    crate::backend::use_backend()?
        .organizations
        .slug_available(slug)
        .await
}

/// Creates the pending organization and its subscription.
#[server(prefix = "/api", endpoint = "start_signup", input = crate::codec::Form, output = crate::codec::Json)]
pub async fn start_signup(input: SignupInput) -> Result<SignupStarted, AppError> {
    let req = crate::backend::request_info().await?;
    let started = crate::backend::use_backend()?
        .signups
        .start(&req, input)
        .await?;
    // Posted before the page hydrated (or without JavaScript): on to the payment step.
    crate::auth::redirect_plain_form(&format!("/signup?token={}", started.token));
    Ok(started)
}

/// The client secret to retry a declined payment with.
#[server(prefix = "/api", endpoint = "signup_payment_secret", input = crate::codec::Form, output = crate::codec::Json)]
pub async fn signup_payment_secret(token: String) -> Result<String, AppError> {
    crate::backend::use_backend()?
        .signups
        .payment_secret(token)
        .await
}

/// Simulator mode: pays with a stand-in test card.
#[server(prefix = "/api", endpoint = "pay_with_test_card", input = crate::codec::Form, output = crate::codec::Json)]
pub async fn pay_with_test_card(token: String, card: String) -> Result<(), AppError> {
    let pending = format!("/pending?token={token}");
    crate::backend::use_backend()?
        .signups
        .pay_with_test_card(token, card)
        .await?;
    crate::auth::redirect_plain_form(&pending);
    Ok(())
}

/// The payment step: where the card goes.
#[derive(Clone, PartialEq, Eq)]
struct PaymentStep {
    token: String,
    client_secret: String,
    form: PaymentForm,
}

/// The page.
#[component]
pub fn SignupPage() -> impl IntoView {
    let query = use_query_map();
    let step = RwSignal::new(None::<PaymentStep>);
    // Coming back from `/pending` to retry a declined payment: the payment step's secret too.
    let retry_token = move || query.with(|q| q.get("token")).filter(|t| !t.is_empty());
    let page = crate::codec::resource(retry_token, |token| async move {
        let offer = get_signup_offer().await?;
        let retry = match token {
            Some(token) => Some(
                signup_payment_secret(token.clone())
                    .await
                    .map(|secret| (token, secret)),
            ),
            None => None,
        };
        Ok::<_, AppError>((offer, retry))
    });
    view! {
        <Title text="Sign up"/>
        <h1>{format!("Get your own {} instance", crate::brand_name())}</h1>
        <Transition fallback=|| view! { <p role="status">"Loading the offer…"</p> }>
            {move || {
                let (offer, retry) = match page.get() {
                    None => return ().into_any(),
                    Some(Err(e)) => return view! { <p class="error" role="alert">{e.to_string()}</p> }.into_any(),
                    Some(Ok(page)) => page,
                };
                match retry {
                    Some(Err(e)) => return view! { <p class="error" role="alert">{e.to_string()}</p> }.into_any(),
                    Some(Ok((token, client_secret))) if step.get_untracked().is_none() => {
                        step.set(Some(PaymentStep { token, client_secret, form: offer.payment.clone() }));
                    }
                    _ => {}
                }
                match step.get() {
                    Some(s) => payment(s),
                    None => view! { <SignupForm offer step/> }.into_any(),
                }
            }}
        </Transition>
    }
}

#[component]
fn SignupForm(offer: SignupOffer, step: RwSignal<Option<PaymentStep>>) -> impl IntoView {
    let name = RwSignal::new(String::new());
    let slug = RwSignal::new(String::new());
    let owner = RwSignal::new(String::new());
    let tier = RwSignal::new(offer.tiers.first().map(|t| t.id).unwrap_or_default());
    // Nuremberg (`Region::default`) when it is offered, else the first region.
    let default_region = crate::models::Region::default().as_str();
    let region = RwSignal::new(
        offer
            .regions
            .iter()
            .find(|r| r.code == default_region)
            .or(offer.regions.first())
            .map(|r| r.code.clone())
            .unwrap_or_default(),
    );
    let action = ServerAction::<StartSignup>::new();
    let error = Signal::derive(move || action.value().get().and_then(Result::err));
    let payment = offer.payment.clone();
    Effect::new(move |_| {
        if let Some(Ok(started)) = action.value().get() {
            step.set(Some(PaymentStep {
                token: started.token,
                client_secret: started.client_secret,
                form: payment.clone(),
            }));
        }
    });
    // The address as it is typed: `acme.<base domain>`.
    let base_domain = offer.base_domain.clone();
    let address = move || {
        let typed = slug.get();
        let shown = if typed.is_empty() {
            "your-name"
        } else {
            typed.as_str()
        };
        format!("{shown}.{base_domain}")
    };
    // The slug checked as it is typed: its format here, then whether it is free. An answer
    // about a slug that has changed since is dropped.
    let availability = RwSignal::new(None::<(String, bool)>);
    Effect::new(move |_| {
        let typed = slug.get();
        if typed.parse::<OrgSlug>().is_ok() {
            leptos::task::spawn_local(async move {
                if let Ok(free) = signup_slug_available(typed.clone()).await
                    && slug.get_untracked() == typed
                {
                    availability.set(Some((typed, free)));
                }
            });
        }
    });
    let slug_check = move || {
        let typed = slug.get();
        if typed.is_empty() {
            return None;
        }
        if let Err(problem) = typed.parse::<OrgSlug>() {
            return Some(("field-error", problem.to_string()));
        }
        availability
            .get()
            .filter(|(checked, _)| *checked == typed)
            .map(|(_, free)| match free {
                true => ("ok", "Available".to_owned()),
                false => ("field-error", "Already taken".to_owned()),
            })
    };
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        action.dispatch(StartSignup {
            input: SignupInput {
                name: name.get_untracked(),
                slug: slug.get_untracked(),
                owner_email: owner.get_untracked(),
                tier_id: tier.get_untracked(),
                region: region.get_untracked(),
            },
        });
    };
    let tiers = offer.tiers.clone();
    view! {
        <section class="card">
            // Posts to the server function itself, so it works before the page hydrated.
            <form method="post" action=StartSignup::url() on:submit=submit novalidate aria-label="Sign up">
                <FormError error fields=&["name", "slug", "owner_email", "tier", "region"]/>
                <fieldset class="tiers">
                    <legend>"Plan"</legend>
                    {if tiers.is_empty() {
                        view! { <p class="muted">"No plan is on sale right now."</p> }.into_any()
                    } else {
                        view! {
                            <div class="tier-cards">
                                {tiers.into_iter().map(|t| view! {
                                    // The whole card is the radio's label: a tap anywhere on it picks the plan.
                                    <label class="tier-card">
                                        <input type="radio" name="input[tier_id]" value=t.id.to_string()
                                            checked=move || tier.get() == t.id
                                            on:change=move |_| tier.set(t.id)/>
                                        <strong class="tier-name">{t.name}</strong>
                                        <span class="tier-price">{t.price}</span>
                                        <span class="muted">{t.specs}</span>
                                    </label>
                                }).collect_view()}
                            </div>
                        }.into_any()
                    }}
                    {move || error.get().and_then(|e| e.for_field("tier")).map(|m| view! { <div class="field-error">{m}</div> })}
                </fieldset>
                <div class="field">
                    <label for="field-region">"Region"</label>
                    <select id="field-region" name="input[region]" on:change=move |ev| region.set(event_target_value(&ev))>
                        {offer.regions.iter().map(|r| {
                            let code = r.code.clone();
                            view! { <option value=code.clone() selected=move || region.get() == code>{format!("{} ({})", r.name, r.code)}</option> }
                        }).collect_view()}
                    </select>
                    {move || error.get().and_then(|e| e.for_field("region")).map(|m| view! { <div class="field-error">{m}</div> })}
                </div>
                <Field name="name" input_name="input[name]" label="Organization name" value=name error/>
                <Field name="slug" input_name="input[slug]" label="Slug" hint="3–40 lowercase letters, digits and hyphens." value=slug error/>
                <p class="address">"Your address: "<strong data-testid="slug-address">{address}</strong></p>
                <div class="slug-check" aria-live="polite" data-testid="slug-check">
                    {move || slug_check().map(|(class, text)| view! { <span class=class>{text}</span> })}
                </div>
                <Field name="owner_email" input_name="input[owner_email]" label="Owner email" kind="email" autocomplete="email" value=owner error/>
                <p class="muted">{format!("Unpaid signups are removed after {} hours.", offer.expiry_hours)}</p>
                <button type="submit" class="button" disabled=move || action.pending().get()>
                    {move || if action.pending().get() { "Creating your subscription…" } else { "Continue to payment" }}
                </button>
            </form>
        </section>
    }
}

/// The payment step (a function, not a component: one view type less in the bundle).
fn payment(step: PaymentStep) -> AnyView {
    let pending_url = format!("/pending?token={}", step.token);
    match step.form {
        PaymentForm::Simulated => view! { <StandInPayment token=step.token pending_url/> }.into_any(),
        PaymentForm::Stripe { publishable_key } => view! {
            <section class="card">
                <h2>"Payment"</h2>
                <form id="stripe-payment-form" aria-label="Payment">
                    <div id="payment-element"
                        data-publishable-key=publishable_key
                        data-client-secret=step.client_secret
                        data-return-url=pending_url></div>
                    <div id="payment-error" class="field-error" role="alert"></div>
                    <button type="submit" class="button" id="payment-submit">"Pay and start my instance"</button>
                </form>
                // Loads Stripe.js and mounts the Payment Element on the element above.
                <script src="/stripe-payment.js"></script>
            </section>
        }.into_any(),
    }
}

/// Simulator mode: the stand-in for Stripe's Payment Element.
#[component]
pub fn StandInPayment(token: String, pending_url: String) -> impl IntoView {
    let card = RwSignal::new(String::new());
    let token = StoredValue::new(token);
    let pay = ServerAction::<PayWithTestCard>::new();
    let error = Signal::derive(move || pay.value().get().and_then(Result::err));
    let target = pending_url.clone();
    Effect::new(move |_| {
        if let Some(Ok(())) = pay.value().get() {
            crate::auth::go(&target);
        }
    });
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        pay.dispatch(PayWithTestCard {
            token: token.get_value(),
            card: card.get_untracked(),
        });
    };
    view! {
        <section class="card simulated-payment" aria-labelledby="payment-heading">
            <h2 id="payment-heading">"Payment (simulated)"</h2>
            <p class="badge simulated">"Simulated Stripe — no real card is charged"</p>
            <p class="muted">
                "Test cards: " <code>{test_cards::SUCCEEDS}</code> " succeeds, "
                <code>{test_cards::DECLINED}</code> " is declined."
            </p>
            <form method="post" action=PayWithTestCard::url() on:submit=submit novalidate aria-label="Payment">
                <FormError error fields=&["card"]/>
                <input type="hidden" name="token" value=token.get_value()/>
                <Field name="card" label="Card number" autocomplete="cc-number" value=card error/>
                <button type="submit" class="button" disabled=move || pay.pending().get()>
                    {move || if pay.pending().get() { "Paying…" } else { "Pay and start my instance" }}
                </button>
            </form>
            <p><a href=pending_url>"Follow my signup"</a></p>
        </section>
    }
}
