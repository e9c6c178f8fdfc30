//! Two-factor sign-in in the browser: `/login/code` (the second step), `/login/enrol` (setting
//! up an authenticator when the policy requires one), and the setup steps shared with
//! `/account`. The server functions decide who may call them (a signed-in admin, or a session
//! whose password was just verified).

use leptos::prelude::*;
use leptos::server_fn::ServerFn;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;

use crate::auth::go;
use crate::components::form::{Field, FormError};
use crate::error::AppError;
use crate::models::TotpEnrolment;

/// The second sign-in step: a code from the authenticator or a recovery code. Returns where
/// the browser should go next.
#[server(prefix = "/api", endpoint = "login_code", input = crate::codec::Form, output = crate::codec::Json)]
pub async fn login_code(code: String, redirect: Option<String>) -> Result<String, AppError> {
    use crate::backend::{request_info, use_backend};
    let backend = use_backend()?;
    let req = request_info().await?;
    let caller = backend.two_factor.sign_in(&req, code).await?;
    let to = if caller.role.is_some() {
        crate::auth::safe_redirect(redirect.as_deref())
    } else {
        "/unauthorized".to_owned()
    };
    crate::auth::redirect_plain_form(&to);
    Ok(to)
}

/// Starts setting up an authenticator: a new secret and its QR code.
#[server(prefix = "/api", endpoint = "two_factor_begin", input = crate::codec::Form, output = crate::codec::Json)]
pub async fn two_factor_begin() -> Result<TotpEnrolment, AppError> {
    use crate::backend::{request_info, use_backend};
    let backend = use_backend()?;
    let req = request_info().await?;
    let enrolment = backend.two_factor.begin(&req).await?;
    // Posted without JavaScript: the secret is shown on the page it comes back to.
    crate::posted::keep::<TwoFactorBegin>(&enrolment).await?;
    Ok(enrolment)
}

/// Confirms the authenticator with a code; returns the recovery codes (shown once).
#[server(prefix = "/api", endpoint = "two_factor_confirm", input = crate::codec::Form, output = crate::codec::Json)]
pub async fn two_factor_confirm(code: String) -> Result<Vec<String>, AppError> {
    use crate::backend::{request_info, use_backend};
    let backend = use_backend()?;
    let req = request_info().await?;
    let codes = backend.two_factor.confirm(&req, code).await?;
    crate::posted::keep::<TwoFactorConfirm>(&codes).await?;
    Ok(codes)
}

/// The second sign-in step.
#[component]
pub fn LoginCodePage() -> impl IntoView {
    let query = use_query_map();
    let code = RwSignal::new(String::new());
    let action = ServerAction::<LoginCode>::new();
    let error = Signal::derive(move || action.value().get().and_then(Result::err));
    Effect::new(move |_| {
        if let Some(Ok(to)) = action.value().get() {
            go(&to);
        }
    });
    let redirect = move || query.with(|q| q.get("redirect")).unwrap_or_default();
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        action.dispatch(LoginCode {
            code: code.get_untracked(),
            redirect: query.with_untracked(|q| q.get("redirect")),
        });
    };
    view! {
        <Title text="Two-factor sign-in"/>
        <div class="auth-card card">
            <h1>"Two-factor sign-in"</h1>
            <p>"Open your authenticator app and type the code it shows for Nest."</p>
            <form method="post" action=LoginCode::url() on:submit=submit novalidate>
                <FormError error fields=&["code"]/>
                <input type="hidden" name="redirect" prop:value=redirect value=redirect/>
                <Field
                    name="code"
                    label="Authentication code"
                    autocomplete="one-time-code"
                    hint="6 digits, or one of your recovery codes (xxxxx-xxxxx)."
                    value=code
                    error
                />
                <button type="submit" class="button" disabled=move || action.pending().get()>
                    {move || if action.pending().get() { "Checking…" } else { "Verify and sign in" }}
                </button>
            </form>
            <p><a href="/login">"Start again"</a></p>
        </div>
    }
}

/// Setting up an authenticator when the policy requires it, right after the password.
#[component]
pub fn LoginEnrolPage() -> impl IntoView {
    let query = use_query_map();
    let next = move || crate::auth::safe_redirect(query.with(|q| q.get("redirect")).as_deref());
    let kept = kept_setup();
    view! {
        <Title text="Set up two-factor sign-in"/>
        <div class="auth-card card wide">
            <h1>"Set up two-factor sign-in"</h1>
            <p>"Two-factor sign-in is required for every admin of this platform. Set up an authenticator app to finish signing in."</p>
            <TotpSetup kept on_done=move || go(&next()) done_href=Signal::derive(next)/>
            <p><a href="/login">"Start again"</a></p>
        </div>
    }
}

/// The setup steps: start, scan the QR code (or type the secret), confirm with a code, save
/// the recovery codes. `on_done` runs when the person says the codes are saved.
#[component]
pub fn TotpSetup(
    /// The results of its forms posted without JavaScript ([`kept_setup`], made by the page).
    kept: KeptSetup,
    on_done: impl Fn() + Copy + Send + Sync + 'static,
    /// Where "I have saved my recovery codes" leads (followed as a link without JavaScript).
    #[prop(into)]
    done_href: Signal<String>,
) -> impl IntoView {
    let begin = ServerAction::<TwoFactorBegin>::new();
    let confirm = ServerAction::<TwoFactorConfirm>::new();
    let KeptSetup { begun, confirmed } = kept;
    let code = RwSignal::new(String::new());
    let begin_error = Signal::derive(move || begin.value().get().and_then(Result::err));
    let confirm_error = Signal::derive(move || confirm.value().get().and_then(Result::err));
    let enrolment = move || {
        begin
            .value()
            .get()
            .and_then(Result::ok)
            .or_else(|| begun.get().flatten())
    };
    let codes = move || {
        confirm
            .value()
            .get()
            .and_then(Result::ok)
            .or_else(|| confirmed.get().flatten())
    };
    let start = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        confirm.value().set(None);
        code.set(String::new());
        begin.dispatch(TwoFactorBegin {});
    };
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        confirm.dispatch(TwoFactorConfirm {
            code: code.get_untracked(),
        });
    };
    let done = move |ev: leptos::ev::MouseEvent| {
        ev.prevent_default();
        on_done();
    };
    // Every step is a form that posts, so the setup works before hydration and without
    // JavaScript (the server keeps what the next step shows: `crate::posted`).
    view! {
        <Transition fallback=|| view! { <p role="status">"Loading…"</p> }>
        <div class="totp-setup">
            <Show
                when=move || codes().is_some()
                fallback=move || view! {
                    <FormError error=begin_error fields=&[]/>
                    <Show
                        when=move || enrolment().is_some()
                        fallback=move || view! {
                            <form method="post" action=TwoFactorBegin::url() on:submit=start>
                                <button type="submit" class="button" disabled=move || begin.pending().get()>
                                    "Set up an authenticator"
                                </button>
                            </form>
                        }
                    >
                        {move || enrolment().map(|e| view! { <EnrolmentSteps enrolment=e/> })}
                        <form method="post" action=TwoFactorConfirm::url() on:submit=submit novalidate>
                            <FormError error=confirm_error fields=&["code"]/>
                            <Field
                                name="code"
                                label="Code from your authenticator"
                                autocomplete="one-time-code"
                                hint="The 6 digits the app shows for Nest now."
                                value=code
                                error=confirm_error
                            />
                            <button type="submit" class="button" disabled=move || confirm.pending().get()>
                                "Confirm and turn on"
                            </button>
                        </form>
                        <form method="post" action=TwoFactorBegin::url() on:submit=start>
                            <button type="submit" class="button secondary">"Start again with a new secret"</button>
                        </form>
                    </Show>
                }
            >
                <RecoveryCodes codes=codes().unwrap_or_default()/>
                <a class="button" href=move || done_href.get() on:click=done>"I have saved my recovery codes"</a>
            </Show>
        </div>
        </Transition>
    }
}

/// What the setup's forms kept when posted without JavaScript: the secret of a setup just begun,
/// the recovery codes of one just confirmed.
#[derive(Clone, Copy)]
pub struct KeptSetup {
    /// The enrolment begun.
    pub begun: crate::codec::Resource<Option<TotpEnrolment>>,
    /// The recovery codes issued when it was confirmed.
    pub confirmed: crate::codec::Resource<Option<Vec<String>>>,
}

/// The page's [`KeptSetup`]: made at the top of the page's component, so the server awaits it
/// before rendering (a resource first read deep inside another's content would not be).
pub fn kept_setup() -> KeptSetup {
    KeptSetup {
        begun: crate::posted::taken::<TwoFactorBegin>(),
        confirmed: crate::posted::taken::<TwoFactorConfirm>(),
    }
}

#[component]
fn EnrolmentSteps(enrolment: TotpEnrolment) -> impl IntoView {
    view! {
        <ol class="steps">
            <li>
                "Scan this QR code with an authenticator app (any app for TOTP codes):"
                <div class="qr" inner_html=enrolment.qr_svg></div>
            </li>
            <li>
                "Or type this secret into the app: "
                <code data-testid="totp-secret" class="secret">{enrolment.secret}</code>
            </li>
            <li>"Type the code the app shows, to confirm."</li>
        </ol>
    }
}

/// Recovery codes, shown once after they are issued.
#[component]
pub fn RecoveryCodes(codes: Vec<String>) -> impl IntoView {
    view! {
        <div class="notice" role="status">
            <p>
                <strong>"Two-factor sign-in is on."</strong>
                " Save these recovery codes somewhere safe: each signs you in once if you lose your authenticator. They are shown only now."
            </p>
            <ul class="recovery-codes" data-testid="recovery-codes">
                {codes.into_iter().map(|c| view! { <li><code>{c}</code></li> }).collect_view()}
            </ul>
        </div>
    }
}
