//! What the browser does about authentication: where to go after login, and what to do when a
//! server function says the session is gone.

use crate::error::AppError;

/// Only same-site paths are honoured as a post-login destination; anything else goes to `/`.
pub fn safe_redirect(target: Option<&str>) -> String {
    match target {
        Some(t)
            if t.starts_with('/')
                && !t.starts_with("//")
                && !t.contains('\\')
                && !t.starts_with("/login") =>
        {
            t.to_owned()
        }
        _ => "/".to_owned(),
    }
}

/// Full-page navigation (so the server renders the next page with the new session cookie).
pub fn go(to: &str) {
    #[cfg(feature = "hydrate")]
    {
        let _ = leptos::prelude::window().location().set_href(to);
    }
    #[cfg(not(feature = "hydrate"))]
    let _ = to;
}

/// If `err` means "not logged in", sends the browser to the login page, coming back here after.
pub fn handle_auth_error(err: &AppError) {
    #[cfg(feature = "hydrate")]
    {
        let location = leptos::prelude::window().location();
        let here = format!(
            "{}{}",
            location.pathname().unwrap_or_default(),
            location.search().unwrap_or_default()
        );
        if matches!(err, AppError::Unauthenticated) {
            go(&format!("/login?redirect={}", encode_component(&here)));
        }
    }
    #[cfg(not(feature = "hydrate"))]
    let _ = err;
}

/// Percent-encodes everything but RFC 3986's unreserved characters.
pub fn encode_component(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_same_site_paths_are_honoured_after_login() {
        assert_eq!(
            safe_redirect(Some("/audit?action=auth.login")),
            "/audit?action=auth.login"
        );
        for bad in [
            "https://evil.example",
            "//evil.example",
            "/\\evil.example",
            "evil",
            "/login?redirect=/x",
        ] {
            assert_eq!(safe_redirect(Some(bad)), "/", "{bad}");
        }
        assert_eq!(safe_redirect(None), "/");
    }

    #[test]
    fn a_path_with_a_query_is_encoded_as_one_component() {
        assert_eq!(encode_component("/audit?a=b&c"), "%2Faudit%3Fa%3Db%26c");
    }
}

use leptos::prelude::*;

use crate::models::Caller;

/// The signed-in user (any user; `role` says whether they are a platform admin).
#[server(prefix = "/api", endpoint = "current_caller", input = crate::codec::Form)]
pub async fn current_caller() -> Result<Caller, AppError> {
    use crate::backend::{request_info, use_backend};
    let backend = use_backend()?;
    let req = request_info().await?;
    backend
        .admins
        .caller(&req)
        .await?
        .ok_or(AppError::Unauthenticated)
}

/// Ends the caller's session; refused without one.
#[server(prefix = "/api", endpoint = "logout", input = crate::codec::Form)]
pub async fn logout() -> Result<(), AppError> {
    use crate::backend::{request_info, use_backend};
    let backend = use_backend()?;
    let req = request_info().await?;
    if backend.admins.caller(&req).await?.is_none() {
        return Err(AppError::Unauthenticated);
    }
    backend.admins.logout(&req).await
}
