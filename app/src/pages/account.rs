//! `/account`: the signed-in admin's own security settings — two-factor sign-in (set up, turn
//! off, new recovery codes). Changes to an existing second factor ask for a current code.

use leptos::prelude::*;
use leptos::server_fn::ServerFn;
use leptos_meta::Title;

use crate::auth::handle_auth_error;
use crate::components::form::{Field, FormError};
use crate::error::AppError;
use crate::models::TwoFactorStatus;
use crate::pages::two_factor::{RecoveryCodes, TotpSetup};

/// The caller's two-factor status.
#[server(prefix = "/api", endpoint = "two_factor_status", input = crate::codec::Form, output = crate::codec::Json)]
pub async fn my_two_factor() -> Result<TwoFactorStatus, AppError> {
    let (backend, _req, admin) = crate::backend::require_admin().await?;
    backend.two_factor.status(&admin).await
}

/// Turns the caller's two-factor sign-in off (with a current code).
#[server(prefix = "/api", endpoint = "two_factor_disable", input = crate::codec::Form, output = crate::codec::Json)]
pub async fn two_factor_disable(code: String) -> Result<(), AppError> {
    let (backend, req, admin) = crate::backend::require_admin().await?;
    backend.two_factor.disable(&admin, &req, code).await
}

/// Replaces the caller's recovery codes (with a current code); returns the new ones.
#[server(prefix = "/api", endpoint = "recovery_codes_regenerate", input = crate::codec::Form, output = crate::codec::Json)]
pub async fn recovery_codes_regenerate(code: String) -> Result<Vec<String>, AppError> {
    let (backend, req, admin) = crate::backend::require_admin().await?;
    let codes = backend
        .two_factor
        .regenerate_codes(&admin, &req, code)
        .await?;
    // Posted without JavaScript: the new codes are shown on the page it comes back to.
    crate::posted::keep::<RecoveryCodesRegenerate>(&codes).await?;
    Ok(codes)
}

/// The page.
#[component]
pub fn AccountPage() -> impl IntoView {
    let version = RwSignal::new(0u32);
    let status = crate::codec::resource(move || version.get(), |_| my_two_factor());
    let me = crate::codec::resource(|| (), |_| crate::auth::current_caller());
    let refresh = move || version.update(|v| *v += 1);
    // What this page's forms kept when posted without JavaScript (read before the status).
    let kept = crate::pages::two_factor::kept_setup();
    let regenerated = crate::posted::taken::<RecoveryCodesRegenerate>();
    view! {
        <Title text="Your account"/>
        <h1>"Your account"</h1>
        <Transition fallback=|| view! { <p role="status">"Loading…"</p> }>
            {move || me.get().and_then(Result::ok).map(|c| view! {
                <p>"Signed in as " <strong>{c.email}</strong></p>
            })}
        </Transition>
        <section class="card" aria-labelledby="two-factor-heading">
            <h2 id="two-factor-heading">"Two-factor sign-in"</h2>
            <Transition fallback=|| view! { <p role="status">"Loading…"</p> }>
                {move || status.get().map(|result| match result {
                    Err(err) => {
                        handle_auth_error(&err);
                        view! { <p class="error" role="alert">{err.to_string()}</p> }.into_any()
                    }
                    Ok(s) => match s.enabled_at {
                        None => view! {
                            <p data-testid="two-factor-state">
                                "Off. With an authenticator app, signing in also asks for a code that changes every 30 seconds."
                                {s.required.then_some(" It is required for every admin of this platform.")}
                            </p>
                            <TotpSetup kept on_done=refresh done_href="/account"/>
                        }.into_any(),
                        Some(since) => view! {
                            <p data-testid="two-factor-state">
                                {format!("On since {}. ", crate::components::time::minute(&since))}
                                {format!("{} of 10 recovery codes left.", s.recovery_codes_left)}
                            </p>
                            // Just confirmed by a form posted without JavaScript: its codes, once.
                            {move || kept.confirmed.get().flatten().map(|codes| view! { <RecoveryCodes codes/> })}
                            <ChangeWithCode
                                heading="New recovery codes"
                                explain="Replaces every recovery code you have with ten new ones."
                                button="Get new recovery codes"
                                kind=Change::Regenerate
                                kept=regenerated
                                on_changed=refresh
                            />
                            {(!s.required).then(|| view! {
                                <ChangeWithCode
                                    heading="Turn off two-factor sign-in"
                                    explain="Signing in will ask only for your password again; your recovery codes stop working."
                                    button="Turn off two-factor sign-in"
                                    kind=Change::Disable
                                    kept=regenerated
                                    on_changed=refresh
                                />
                            })}
                            {s.required.then(|| view! {
                                <p class="muted">"Two-factor sign-in is required for every admin, so it cannot be turned off."</p>
                            })}
                        }.into_any(),
                    },
                })}
            </Transition>
        </section>
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Change {
    Regenerate,
    Disable,
}

/// A change to an existing second factor, confirmed with a current code.
#[component]
fn ChangeWithCode(
    heading: &'static str,
    explain: &'static str,
    button: &'static str,
    kind: Change,
    /// New recovery codes kept by a regeneration posted without JavaScript.
    kept: crate::codec::Resource<Option<Vec<String>>>,
    on_changed: impl Fn() + Copy + Send + Sync + 'static,
) -> impl IntoView {
    let code = RwSignal::new(String::new());
    let action = Action::new(move |code: &String| {
        let code = code.clone();
        async move {
            match kind {
                Change::Regenerate => recovery_codes_regenerate(code).await,
                Change::Disable => two_factor_disable(code).await.map(|()| Vec::new()),
            }
        }
    });
    let error = Signal::derive(move || action.value().get().and_then(Result::err));
    let codes = move || {
        action
            .value()
            .get()
            .and_then(Result::ok)
            .or_else(|| match kind {
                Change::Regenerate => kept.get().flatten(),
                Change::Disable => None,
            })
            .filter(|c| !c.is_empty())
    };
    Effect::new(move |_| {
        if kind == Change::Disable && matches!(action.value().get(), Some(Ok(_))) {
            on_changed();
        }
    });
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        action.dispatch(code.get_untracked());
        code.set(String::new());
    };
    let name = match kind {
        Change::Regenerate => "regenerate-code",
        Change::Disable => "disable-code",
    };
    let url = match kind {
        Change::Regenerate => RecoveryCodesRegenerate::url(),
        Change::Disable => TwoFactorDisable::url(),
    };
    view! {
        <form method="post" action=url on:submit=submit novalidate aria-label=heading>
            <h3>{heading}</h3>
            <p class="muted">{explain}</p>
            <FormError error fields=&["code"]/>
            <Field
                name=name
                input_name="code"
                label="Current code from your authenticator"
                autocomplete="one-time-code"
                value=code
                error=Signal::derive(move || error.get().map(|e| match e {
                    AppError::Validation { field, message } if field == "code" => {
                        AppError::Validation { field: name.to_owned(), message }
                    }
                    other => other,
                }))
            />
            <button type="submit" class=if kind == Change::Disable { "button danger" } else { "button" } disabled=move || action.pending().get()>
                {button}
            </button>
        </form>
        <Transition fallback=|| ()>
            {move || codes().map(|c| view! {
                <RecoveryCodes codes=c/>
                <a class="button" href="/account" on:click=move |ev| { ev.prevent_default(); on_changed(); }>"I have saved my recovery codes"</a>
            })}
        </Transition>
    }
}
