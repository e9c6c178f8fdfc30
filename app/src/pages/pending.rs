//! `/pending?token=…` (public): a signup's own progress — payment, then provisioning step by
//! step, refreshed every two seconds — and, once `active`, a redirect to the instance. After a
//! declined payment it says so and offers to pay again. The token is the only key: it reveals
//! nothing about any other organization.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;

use crate::components::job_progress::steps_view;
use crate::error::AppError;
use crate::models::{OrgStatus, PaymentForm, SignupPayment, SignupStatus};

/// What `/pending` shows.
#[server(prefix = "/api", endpoint = "get_signup_status", input = crate::codec::Form, output = crate::codec::Json)]
pub async fn get_signup_status(token: String) -> Result<SignupStatus, AppError> {
    crate::backend::use_backend()?.signups.status(token).await
}

/// The page.
#[component]
pub fn PendingPage() -> impl IntoView {
    let query = use_query_map();
    let token = move || query.with(|q| q.get("token")).unwrap_or_default();
    let tick = RwSignal::new(0u32);
    // Live: the page asks again every two seconds until the instance is ready.
    let done = RwSignal::new(false);
    Effect::new(move |_| {
        if let Ok(handle) = set_interval_with_handle(
            move || {
                if !done.get_untracked() {
                    tick.update(|t| *t += 1);
                }
            },
            std::time::Duration::from_secs(2),
        ) {
            on_cleanup(move || handle.clear());
        }
    });
    let status = crate::codec::resource(
        move || (token(), tick.get()),
        |(token, _)| get_signup_status(token),
    );
    view! {
        <Title text="Your signup"/>
        <h1>"Your Nest instance"</h1>
        <Transition fallback=|| view! { <p role="status">"Loading your signup…"</p> }>
            {move || status.get().map(|result| match result {
                Err(AppError::NotFound(_)) => view! {
                    <p class="error" role="alert">"This link is not valid, or the signup expired."</p>
                    <p><a href="/signup">"Sign up again"</a></p>
                }.into_any(),
                Err(e) => view! { <p class="error" role="alert">{e.to_string()}</p> }.into_any(),
                Ok(s) => {
                    if s.instance_url.is_some() || s.status == OrgStatus::Cancelled {
                        done.set(true);
                    }
                    view! { <Progress status=s/> }.into_any()
                }
            })}
        </Transition>
        <Transition fallback=|| ()>
            <PayAgainSlot status token=Signal::derive(token)/>
        </Transition>
    }
}

/// After a decline, the payment form. Its memo changes only when the payment state does, so
/// the refreshes every two seconds do not rebuild the form (a card number being typed stays).
/// Created inside a `<Transition>`, so the server awaits the status before sending the page.
#[component]
fn PayAgainSlot(
    status: crate::codec::Resource<Result<SignupStatus, AppError>>,
    token: Signal<String>,
) -> impl IntoView {
    let payment = Memo::new(move |_| {
        status
            .get()
            .and_then(Result::ok)
            .filter(|s| s.payment == SignupPayment::Declined)
            .map(|s| s.payment_form)
    });
    move || {
        payment
            .get()
            .map(|form| view! { <PayAgain form token=token.get_untracked()/> })
    }
}

fn headline(s: &SignupStatus) -> &'static str {
    match (s.payment, s.status) {
        (_, OrgStatus::Active) => "Your instance is ready.",
        (SignupPayment::Declined, _) => "Your payment was declined.",
        (SignupPayment::AwaitingPayment, _) => "Waiting for your payment…",
        (SignupPayment::Paid, OrgStatus::Error) => {
            "Something went wrong while setting up your server. We have been told and will fix it."
        }
        (SignupPayment::Paid, OrgStatus::Cancelled | OrgStatus::Deleted | OrgStatus::Deleting) => {
            "This signup was cancelled."
        }
        (SignupPayment::Paid, _) => "Payment received. Your server is being set up…",
    }
}

#[component]
fn Progress(status: SignupStatus) -> impl IntoView {
    let url = status.instance_url.clone();
    if let Some(url) = url.clone() {
        // Give the message a moment on screen, then go.
        set_timeout(
            move || crate::auth::go(&url),
            std::time::Duration::from_millis(1500),
        );
    }
    view! {
        <section class="card" aria-live="polite">
            <h2 data-testid="pending-headline">{headline(&status)}</h2>
            <dl class="facts">
                <dt>"Organization"</dt><dd>{status.organization.clone()}</dd>
                <dt>"Status"</dt><dd data-testid="pending-status">{status.status.to_string()}</dd>
                <dt>"Payment"</dt><dd data-testid="pending-payment">{status.payment.to_string().replace('_', " ")}</dd>
            </dl>
            {status.payment_error.clone().filter(|_| status.payment == SignupPayment::Declined).map(|e| view! {
                <p class="error" role="alert" data-testid="payment-error">{e}</p>
            })}
            {status.progress.clone().map(|p| view! { <h3>"Setting up"</h3>{steps_view(p)} })}
            {url.map(|u| view! {
                <p>"Taking you to " <a href=u.clone() data-testid="instance-link">{u.clone()}</a> "…"</p>
            })}
            {status.expires_in_secs.filter(|_| status.payment != SignupPayment::Paid).map(|s| view! {
                <p class="muted">{format!("Unpaid signups are removed in {} h {} min.", s / 3600, (s % 3600) / 60)}</p>
            })}
        </section>
    }
}

/// After a decline: the payment form again, here or on `/signup`. Rendered apart from the
/// refreshed progress, so a card number being typed survives the refreshes.
#[component]
fn PayAgain(form: PaymentForm, token: String) -> impl IntoView {
    match form {
        PaymentForm::Simulated => view! {
            <crate::pages::signup::StandInPayment token=token.clone() pending_url=format!("/pending?token={token}")/>
        }.into_any(),
        PaymentForm::Stripe { .. } => view! {
            <p><a class="button" href=format!("/signup?token={token}")>"Try another card"</a></p>
        }.into_any(),
    }
}
