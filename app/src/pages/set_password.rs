//! `/set-password?token=…`: a new admin sets their password through a one-time link.

use leptos::prelude::*;
use leptos::server_fn::ServerFn;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;

use crate::components::form::{Field, FormError};
use crate::error::AppError;

/// Sets a password through a one-time link (valid 48 hours, once).
#[server(prefix = "/api", endpoint = "set_password", input = crate::codec::Form, output = crate::codec::Json)]
pub async fn set_password_with_token(
    token: String,
    password: String,
    confirm: String,
) -> Result<(), AppError> {
    use crate::backend::{request_info, use_backend};
    let backend = use_backend()?;
    let req = request_info().await?;
    backend
        .admins
        .set_password(&req, token, password, confirm)
        .await?;
    crate::auth::redirect_plain_form("/login");
    Ok(())
}

/// The page. The form posts to the server function itself, so it works before hydration and
/// without JavaScript (then a set password leads straight to `/login`).
#[component]
pub fn SetPasswordPage() -> impl IntoView {
    let query = use_query_map();
    let password = RwSignal::new(String::new());
    let confirm = RwSignal::new(String::new());
    let action = ServerAction::<SetPasswordWithToken>::new();
    let error = Signal::derive(move || action.value().get().and_then(Result::err));
    let done = move || matches!(action.value().get(), Some(Ok(())));
    let token = move || query.with(|q| q.get("token")).unwrap_or_default();
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        action.dispatch(SetPasswordWithToken {
            token: query.with_untracked(|q| q.get("token")).unwrap_or_default(),
            password: password.get_untracked(),
            confirm: confirm.get_untracked(),
        });
    };
    view! {
        <Title text="Set your password"/>
        <div class="auth-card card">
            <h1>"Set your password"</h1>
            <Show
                when=done
                fallback=move || {
                    view! {
                        <form method="post" action=SetPasswordWithToken::url() on:submit=submit novalidate>
                            <FormError error fields=&["password", "confirm"]/>
                            <input type="hidden" name="token" prop:value=token value=token/>
                            <Field
                                name="password"
                                label="New password"
                                kind="password"
                                autocomplete="new-password"
                                hint="At least 12 characters, mixing letters, digits or symbols."
                                value=password
                                error
                            />
                            <Field name="confirm" label="Confirm password" kind="password" autocomplete="new-password" value=confirm error/>
                            <button type="submit" class="button" disabled=move || action.pending().get()>"Set password"</button>
                        </form>
                    }
                }
            >
                <p role="status">"Your password is set. "</p>
                <a class="button" href="/login">"Go to sign in"</a>
            </Show>
        </div>
    }
}
