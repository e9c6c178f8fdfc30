//! What a form posted without JavaScript (or before hydration) must show once, kept for the page
//! it comes back to.
//!
//! server_fn answers a plain form post with a redirect (back to the page, or where the function
//! says), so a result the page shows only once — a one-time set-password link, recovery codes,
//! a new authenticator's secret — would be lost on the way. The server function keeps it in the
//! caller's session ([`keep`], only for a plain form post), and the page takes it, once, when it
//! renders ([`taken`], through the server function `take_posted`).

use leptos::prelude::*;
use leptos::server_fn::ServerFn;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::AppError;

/// The session key of `path`'s kept result.
#[cfg(feature = "ssr")]
fn key(path: &str) -> String {
    format!("posted:{path}")
}

/// Keeps `output`, the result of the server function `S`, for the next page, when this request
/// is a plain form post; a call from the hydrated page gets the result in its answer instead.
#[cfg(feature = "ssr")]
pub async fn keep<S: ServerFn>(output: &S::Output) -> Result<(), AppError>
where
    S::Output: Serialize,
{
    if !crate::auth::is_plain_form() {
        return Ok(());
    }
    let json = serde_json::to_string(output).map_err(crate::backend::session_failed)?;
    let req = crate::backend::request_info().await?;
    req.session
        .insert(&key(S::PATH), json)
        .await
        .map_err(crate::backend::session_failed)
}

/// Takes (and forgets) the kept result of the server function at `path`, as JSON.
#[server(prefix = "/api", endpoint = "take_posted", input = crate::codec::Form, output = crate::codec::Json)]
pub async fn take_posted(path: String) -> Result<Option<String>, AppError> {
    let req = crate::backend::request_info().await?;
    req.session
        .remove::<String>(&key(&path))
        .await
        .map_err(crate::backend::session_failed)
}

/// The kept result of `S`, if the page was reached by posting its form without JavaScript. Read
/// it inside a `Suspense`/`Transition`, so the server renders it.
pub fn taken<S>() -> crate::codec::Resource<Option<S::Output>>
where
    S: ServerFn,
    S::Output: Serialize + DeserializeOwned + Send + Sync + 'static,
{
    crate::codec::resource(
        || (),
        |()| async move {
            take_posted(S::PATH.to_owned())
                .await
                .ok()
                .flatten()
                .and_then(|json| crate::json::from_slice(json.as_bytes()).ok())
        },
    )
}
