//! What the browser does about authentication: where to go after login, and what to do when a
//! server function says the session is gone.

use crate::error::AppError;

/// Only same-origin paths are honoured as a post-login destination; anything else goes to `/`.
///
/// The value is judged the way a browser would resolve it: URL parsers drop TAB/CR/LF anywhere
/// and trim control characters and spaces, treat `\` as `/`, and read a leading `//` as
/// another host — so `/<TAB>/evil.example` and `/\evil.example` lead off-site. Anything holding a
/// control character or a backslash, not starting with exactly one `/`, or doing so only once
/// percent-decoded (`/%2F/evil.example` behind a second decoding), is refused outright.
pub fn safe_redirect(target: Option<&str>) -> String {
    match target {
        Some(t) if is_same_origin_path(t) && !t.starts_with("/login") => t.to_owned(),
        _ => "/".to_owned(),
    }
}

fn is_same_origin_path(t: &str) -> bool {
    let mut value = t.to_owned();
    // Each decoding round must still be a plain local path (three rounds cover double and
    // triple encodings; anything still encoded after that is refused).
    for _ in 0..3 {
        if value.chars().any(|c| c.is_control() || c == '\\')
            || !value.starts_with('/')
            || value.starts_with("//")
        {
            return false;
        }
        match percent_decode(&value) {
            Some(decoded) if decoded == value => return true,
            Some(decoded) => value = decoded,
            None => return false,
        }
    }
    false
}

/// Decodes `%XX` escapes; `None` when the result is not UTF-8.
fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| char::from(b).to_digit(16);
        match (bytes[i], bytes.get(i + 1), bytes.get(i + 2)) {
            (b'%', Some(&h), Some(&l)) if hex(h).is_some() && hex(l).is_some() => {
                let value = hex(h).unwrap_or_default() * 16 + hex(l).unwrap_or_default();
                out.push(u8::try_from(value).ok()?);
                i += 3;
            }
            (b, _, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

/// In a server function: when the call is a plain HTML form post (no JavaScript yet, or none
/// at all: the browser asks for `text/html`), answers with a redirect to `to`. Calls from the
/// hydrated page get their value instead and navigate themselves.
#[cfg(feature = "ssr")]
pub fn redirect_plain_form(to: &str) {
    if is_plain_form() {
        leptos_axum::redirect(to);
    }
}

/// Whether this request is a form posted by the browser itself (before hydration, or without
/// JavaScript), which accepts HTML, rather than a call from the hydrated page.
#[cfg(feature = "ssr")]
pub fn is_plain_form() -> bool {
    leptos::prelude::use_context::<http::request::Parts>().is_some_and(|req| {
        req.headers
            .get(http::header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.contains("text/html"))
    })
}

/// `path` with its query string as the router keeps it (without the `?`), for a full-page load.
pub fn with_query(path: &str, search: &str) -> String {
    if search.is_empty() {
        path.to_owned()
    } else {
        format!("{path}?{search}")
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
    fn a_path_gets_its_query_back_with_the_question_mark_the_router_strips() {
        assert_eq!(with_query("/organizations", ""), "/organizations");
        assert_eq!(
            with_query("/organizations", "status=active&q=a%20b"),
            "/organizations?status=active&q=a%20b"
        );
    }

    #[test]
    fn only_paths_a_browser_keeps_on_this_origin_are_honoured_after_login() {
        let table: &[(&str, &str)] = &[
            ("/audit?action=auth.login", "/audit?action=auth.login"),
            ("/organizations/7#jobs", "/organizations/7#jobs"),
            ("/search?q=a%20b", "/search?q=a%20b"),
            ("/", "/"),
            ("https://evil.example", "/"),
            ("//evil.example", "/"),
            ("///evil.example", "/"),
            ("/\\evil.example", "/"),
            ("\\/evil.example", "/"),
            ("/\t/evil.example", "/"),
            ("/\n/evil.example", "/"),
            ("/\r/evil.example", "/"),
            ("\t//evil.example", "/"),
            (" //evil.example", "/"),
            ("/\u{0}/evil.example", "/"),
            ("/\u{7f}/evil.example", "/"),
            ("/%2F/evil.example", "/"),
            ("/%2f%2fevil.example", "/"),
            ("/%5Cevil.example", "/"),
            ("/%09/evil.example", "/"),
            ("/%252F/evil.example", "/"),
            ("/%25252F/evil.example", "/"),
            ("/%ff", "/"),
            ("evil", "/"),
            ("javascript:alert(1)", "/"),
            ("", "/"),
            ("/login?redirect=/x", "/"),
        ];
        for (input, expected) in table {
            assert_eq!(safe_redirect(Some(input)), *expected, "{input:?}");
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
#[server(prefix = "/api", endpoint = "current_caller", input = crate::codec::Form, output = crate::codec::Json)]
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
#[server(prefix = "/api", endpoint = "logout", input = crate::codec::Form, output = crate::codec::Json)]
pub async fn logout() -> Result<(), AppError> {
    use crate::backend::{request_info, use_backend};
    let backend = use_backend()?;
    let req = request_info().await?;
    if backend.admins.caller(&req).await?.is_none() {
        return Err(AppError::Unauthenticated);
    }
    backend.admins.logout(&req).await?;
    redirect_plain_form("/login");
    Ok(())
}
