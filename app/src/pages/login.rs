//! `/login`: email + password. One message for unknown email and wrong password; a clear
//! "try again in N minutes" when the account or address is locked out. An account with an
//! authenticator continues at `/login/code`; while two-factor sign-in is required, an admin
//! without one continues at `/login/enrol`.

use leptos::prelude::*;
use leptos::server_fn::ServerFn;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;

use crate::auth::go;
use crate::components::form::{Field, FormError};
use crate::error::AppError;

/// Logs in; returns where the browser should go next.
#[server(prefix = "/api", endpoint = "login", input = crate::codec::Form, output = crate::codec::Json)]
pub async fn login(
    email: String,
    password: String,
    redirect: Option<String>,
) -> Result<String, AppError> {
    use crate::backend::{request_info, use_backend};
    let backend = use_backend()?;
    let req = request_info().await?;
    let next = crate::auth::safe_redirect(redirect.as_deref());
    let to = match backend.admins.login(&req, email, password).await? {
        crate::models::LoginOutcome::SignedIn(caller) if caller.role.is_some() => next,
        crate::models::LoginOutcome::SignedIn(_) => "/unauthorized".to_owned(),
        crate::models::LoginOutcome::CodeRequired => {
            format!(
                "/login/code?redirect={}",
                crate::auth::encode_component(&next)
            )
        }
        crate::models::LoginOutcome::EnrolmentRequired => {
            format!(
                "/login/enrol?redirect={}",
                crate::auth::encode_component(&next)
            )
        }
    };
    crate::auth::redirect_plain_form(&to);
    Ok(to)
}

/// The login page. The form posts to the server function itself, so it works before the WASM
/// has hydrated (or without JavaScript): never a GET with the password in the URL.
#[component]
pub fn LoginPage() -> impl IntoView {
    let query = use_query_map();
    let email = RwSignal::new(String::new());
    let password = RwSignal::new(String::new());
    let action = ServerAction::<Login>::new();
    let error = Signal::derive(move || action.value().get().and_then(Result::err));
    Effect::new(move |_| {
        if let Some(Ok(to)) = action.value().get() {
            go(&to);
        }
    });
    let redirect = move || query.with(|q| q.get("redirect")).unwrap_or_default();
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        action.dispatch(Login {
            email: email.get_untracked(),
            password: password.get_untracked(),
            redirect: query.with_untracked(|q| q.get("redirect")),
        });
    };

    view! {
        <Title text="Sign in"/>
        <div class="auth-card card">
            <h1>{format!("Sign in to {}", crate::brand_name())}</h1>
            <form method="post" action=Login::url() on:submit=submit novalidate>
                <FormError error fields=&["email", "password"]/>
                <input type="hidden" name="redirect" prop:value=redirect value=redirect/>
                <Field name="email" label="Email" kind="email" autocomplete="username" value=email error/>
                <Field name="password" label="Password" kind="password" autocomplete="current-password" value=password error/>
                <button type="submit" class="button" disabled=move || action.pending().get()>
                    {move || if action.pending().get() { "Signing in…" } else { "Sign in" }}
                </button>
            </form>
        </div>
    }
}
