//! `/unauthorized`: shown to a signed-in user who is not a platform admin.

use leptos::prelude::*;
use leptos_meta::Title;

use crate::components::layout::SignOutButton;

/// The page.
#[component]
pub fn UnauthorizedPage() -> impl IntoView {
    view! {
        <Title text="Not authorized"/>
        <div class="auth-card card">
            <h1>"Not authorized"</h1>
            <p>
                "Your account is signed in but is not a platform admin, so the dashboard is closed to it. "
                "Ask a superadmin to add you, or sign in with another account."
            </p>
            <SignOutButton/>
        </div>
    }
}
