//! The page shown for a path that matches no route (HTTP 404).

use leptos::prelude::*;
use leptos_meta::Title;

/// "Page not found", with the right status code when rendered on the server.
#[component]
pub fn NotFound() -> impl IntoView {
    #[cfg(feature = "ssr")]
    {
        if let Some(response) = use_context::<leptos_axum::ResponseOptions>() {
            response.set_status(http::StatusCode::NOT_FOUND);
        }
    }
    view! {
        <Title text="Page not found"/>
        <h1>"Page not found"</h1>
        <p>"There is no page at this address. "<a href="/">"Go to the overview"</a>"."</p>
    }
}
