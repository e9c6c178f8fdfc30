//! `/setup`: creates the first superadmin. Open only while no platform admin exists.

use leptos::prelude::*;
use leptos::server_fn::ServerFn;
use leptos_meta::Title;

use crate::auth::go;
use crate::components::form::{Field, FormError};
use crate::error::AppError;

/// Creates the first superadmin and logs them in; refused once any admin exists.
#[server(prefix = "/api", endpoint = "setup", input = crate::codec::Form, output = crate::codec::Json)]
pub async fn setup_first_admin(
    email: String,
    password: String,
    confirm: String,
) -> Result<(), AppError> {
    use crate::backend::{request_info, use_backend};
    let backend = use_backend()?;
    let req = request_info().await?;
    backend.admins.setup(&req, email, password, confirm).await?;
    crate::auth::redirect_plain_form("/");
    Ok(())
}

/// The setup wizard. The form posts to the server function itself, so it works before
/// hydration and without JavaScript.
#[component]
pub fn SetupPage() -> impl IntoView {
    let email = RwSignal::new(String::new());
    let password = RwSignal::new(String::new());
    let confirm = RwSignal::new(String::new());
    let action = ServerAction::<SetupFirstAdmin>::new();
    let error = Signal::derive(move || action.value().get().and_then(Result::err));
    Effect::new(move |_| {
        if let Some(Ok(())) = action.value().get() {
            go("/");
        }
    });
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        action.dispatch(SetupFirstAdmin {
            email: email.get_untracked(),
            password: password.get_untracked(),
            confirm: confirm.get_untracked(),
        });
    };
    view! {
        <Title text="Set up Nest"/>
        <div class="auth-card card">
            <h1>"Set up Nest"</h1>
            <p>"No platform admin exists yet. Create the first superadmin: you will be signed in right away."</p>
            <form method="post" action=SetupFirstAdmin::url() on:submit=submit novalidate>
                <FormError error fields=&["email", "password", "confirm"]/>
                <Field name="email" label="Email" kind="email" autocomplete="username" value=email error/>
                <Field
                    name="password"
                    label="Password"
                    kind="password"
                    autocomplete="new-password"
                    hint="At least 12 characters, mixing letters, digits or symbols."
                    value=password
                    error
                />
                <Field name="confirm" label="Confirm password" kind="password" autocomplete="new-password" value=confirm error/>
                <button type="submit" class="button" disabled=move || action.pending().get()>
                    "Create superadmin"
                </button>
            </form>
        </div>
    }
}
