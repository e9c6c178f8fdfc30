//! The security perimeter on every response: CSP with a per-response nonce, HSTS over https,
//! framing, referrer and sniffing headers; and refusal of cross-origin state-changing requests.

use app::backend::{ChangeSeq, ClientIp, CspNonce};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::clock::random_hex;
use crate::state::App;

/// Paths whose POSTs come from other servers (signed webhooks), not from browsers.
const CROSS_ORIGIN_EXEMPT: &[&str] = &["/webhooks/"];

/// Stripe.js needs these on `/signup` only.
const STRIPE_SCRIPT: &str = "https://js.stripe.com";
const STRIPE_FRAMES: &str = "https://js.stripe.com https://hooks.stripe.com";
const STRIPE_CONNECT: &str = "https://api.stripe.com";

/// The Content-Security-Policy for a response to `path`.
pub fn content_security_policy(path: &str, nonce: &str) -> String {
    let signup = path == "/signup";
    let (script_extra, frame, connect_extra) = if signup {
        (
            format!(" {STRIPE_SCRIPT}"),
            STRIPE_FRAMES,
            format!(" {STRIPE_CONNECT}"),
        )
    } else {
        (String::new(), "'none'", String::new())
    };
    format!(
        "default-src 'self'; script-src 'self' 'nonce-{nonce}' 'wasm-unsafe-eval'{script_extra}; \
         style-src 'self'; img-src 'self' data:; font-src 'self'; connect-src 'self'{connect_extra}; \
         frame-src {frame}; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
    )
}

/// Whether a state-changing request comes from another site, judged by `Sec-Fetch-Site` when
/// the browser sends it and by `Origin` against `Host` otherwise. Requests with neither header
/// (command-line clients) are not browser-driven and pass.
pub fn is_cross_origin(headers: &HeaderMap) -> bool {
    if let Some(site) = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok()) {
        return site != "same-origin";
    }
    let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let origin_host = origin.split_once("://").map_or("", |(_, rest)| rest);
    origin == "null" || origin_host != host
}

/// What [`allowed_host`] accepts, computed once from the configuration.
#[derive(Debug, Clone)]
pub struct AllowedHosts {
    /// Lower-cased `host:port` values.
    pub hosts: std::sync::Arc<[String]>,
    /// Whether the site is served over https (the default port of a bare `Host`).
    pub https: bool,
}

impl AllowedHosts {
    /// From the configuration.
    pub fn from_config(config: &crate::config::Config) -> Self {
        Self {
            hosts: config.allowed_hosts().into(),
            https: config.is_https(),
        }
    }
}

/// The request's `host:port` as the client addressed it (`Host`, or the URI's authority under
/// HTTP/2), lower-cased, the port filled in from the scheme when absent; `None` when missing
/// or malformed.
pub fn requested_host(req: &Request, https: bool) -> Option<String> {
    let raw = match req.headers().get(header::HOST) {
        Some(value) => value.to_str().ok()?.to_owned(),
        None => req.uri().authority()?.as_str().to_owned(),
    };
    let authority: axum::http::uri::Authority = raw.parse().ok()?;
    if authority.as_str().contains('@') {
        return None;
    }
    let host = authority.host().trim_end_matches('.').to_ascii_lowercase();
    let port = authority.port_u16().unwrap_or(if https { 443 } else { 80 });
    Some(format!("{host}:{port}"))
}

/// Refuses, before anything else, a request addressed to a host that is not this dashboard's
/// (see [`crate::config::Config::allowed_hosts`]): a page of another site whose name was
/// re-pointed at this address (DNS rebinding) cannot reach `/setup` or the login. `/healthz`
/// stays open to probes that address the server by its IP.
pub async fn allowed_host(State(hosts): State<AllowedHosts>, req: Request, next: Next) -> Response {
    if req.uri().path() == "/healthz" {
        return next.run(req).await;
    }
    let host = requested_host(&req, hosts.https);
    if host
        .as_ref()
        .is_some_and(|h| hosts.hosts.iter().any(|allowed| allowed == h))
    {
        return next.run(req).await;
    }
    tracing::warn!(
        http.host = host.as_deref().unwrap_or("-"),
        "refused a request for a host this dashboard does not serve"
    );
    (StatusCode::MISDIRECTED_REQUEST, "Unknown host.").into_response()
}

/// The client's address: the peer itself, unless the peer is a trusted proxy; then the
/// rightmost hop of `X-Forwarded-For` that is not a trusted proxy (hops to its left were
/// written by the client and prove nothing). A malformed hop ends the walk at the last
/// trusted one.
pub fn client_ip(
    peer: std::net::IpAddr,
    headers: &HeaderMap,
    trusted: &[crate::config::IpNetwork],
) -> std::net::IpAddr {
    let is_trusted = |ip: std::net::IpAddr| trusted.iter().any(|n| n.contains(ip));
    if !is_trusted(peer) {
        return peer;
    }
    let hops: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .collect();
    let mut client = peer;
    for hop in hops.iter().rev() {
        let Ok(ip) = hop.parse::<std::net::IpAddr>() else {
            break;
        };
        client = ip;
        if !is_trusted(ip) {
            break;
        }
    }
    client
}

/// The middleware.
pub async fn perimeter(State(app): State<App>, mut req: Request, next: Next) -> Response {
    let path = req.uri().path().to_owned();
    if let Some(peer) = req
        .extensions()
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map(|c| c.0.ip())
    {
        let client = client_ip(peer, req.headers(), &app.config.trusted_proxies);
        req.extensions_mut().insert(ClientIp(client));
    }
    let changes_state = !matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS);
    if changes_state
        && !CROSS_ORIGIN_EXEMPT.iter().any(|p| path.starts_with(p))
        && is_cross_origin(req.headers())
    {
        tracing::warn!(http.path = %path, "refused a cross-origin state-changing request");
        let mut response = (
            StatusCode::FORBIDDEN,
            "Cross-origin requests that change state are refused.",
        )
            .into_response();
        set_headers(response.headers_mut(), &path, &random_hex(16), &app);
        return response;
    }
    let nonce = random_hex(16);
    req.extensions_mut().insert(CspNonce(nonce.clone()));
    // The live-update change count as this request began: a page rendered now and connecting
    // later with this number misses nothing (see `/api/events?since=`).
    req.extensions_mut().insert(ChangeSeq(app.events.seq()));
    let mut response = next.run(req).await;
    set_headers(response.headers_mut(), &path, &nonce, &app);
    response
}

fn set_headers(headers: &mut HeaderMap, path: &str, nonce: &str, app: &App) {
    let https = app.config.is_https();
    if let Ok(csp) = HeaderValue::from_str(&content_security_policy(path, nonce)) {
        headers.insert(header::CONTENT_SECURITY_POLICY, csp);
    }
    // Pages are never cached by intermediaries, and revalidated by the browser; the bundle at
    // its unversioned `/pkg/` URL is revalidated too (its versioned URL is immutable).
    let html = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/html"));
    if (html || path.starts_with("/pkg/")) && !headers.contains_key(header::CACHE_CONTROL) {
        headers.insert(
            header::CACHE_CONTROL,
            HeaderValue::from_static("private, no-cache"),
        );
    }
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("strict-origin-when-cross-origin"),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        "cross-origin-opener-policy",
        HeaderValue::from_static("same-origin"),
    );
    headers.insert(
        "permissions-policy",
        HeaderValue::from_static("camera=(), microphone=(), geolocation=()"),
    );
    if https {
        headers.insert(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static("max-age=63072000; includeSubDomains"),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn a_same_origin_fetch_is_not_cross_origin() {
        assert!(!is_cross_origin(&headers(&[(
            "sec-fetch-site",
            "same-origin"
        )])));
        assert!(!is_cross_origin(&headers(&[
            ("origin", "http://127.0.0.1:3001"),
            ("host", "127.0.0.1:3001")
        ])));
    }

    #[test]
    fn another_site_or_a_null_origin_is_cross_origin() {
        assert!(is_cross_origin(&headers(&[(
            "sec-fetch-site",
            "cross-site"
        )])));
        assert!(is_cross_origin(&headers(&[(
            "sec-fetch-site",
            "same-site"
        )])));
        assert!(is_cross_origin(&headers(&[
            ("origin", "https://evil.example"),
            ("host", "127.0.0.1:3001")
        ])));
        assert!(is_cross_origin(&headers(&[
            ("origin", "null"),
            ("host", "127.0.0.1:3001")
        ])));
    }

    #[test]
    fn the_client_is_the_rightmost_untrusted_hop_and_only_behind_a_trusted_proxy() {
        let trusted: Vec<crate::config::IpNetwork> =
            vec!["10.0.0.0/8".parse().unwrap(), "::1".parse().unwrap()];
        let ip = |s: &str| s.parse::<std::net::IpAddr>().unwrap();
        let xff = |v: &'static str| headers(&[("x-forwarded-for", v)]);
        // Untrusted peer: its header is ignored.
        assert_eq!(
            client_ip(ip("198.51.100.9"), &xff("203.0.113.5"), &trusted),
            ip("198.51.100.9")
        );
        // Trusted peer: the rightmost hop that is not a proxy; spoofed hops to its left ignored.
        assert_eq!(
            client_ip(
                ip("10.0.0.2"),
                &xff("1.2.3.4, 203.0.113.5, 10.0.0.3"),
                &trusted
            ),
            ip("203.0.113.5")
        );
        assert_eq!(
            client_ip(ip("::1"), &xff("2001:db8::7"), &trusted),
            ip("2001:db8::7")
        );
        // No header, or garbage: the proxy itself.
        assert_eq!(
            client_ip(ip("10.0.0.2"), &HeaderMap::new(), &trusted),
            ip("10.0.0.2")
        );
        assert_eq!(
            client_ip(ip("10.0.0.2"), &xff("1.2.3.4, not-an-ip"), &trusted),
            ip("10.0.0.2")
        );
    }

    #[test]
    fn stripe_is_allowed_only_on_signup() {
        assert!(content_security_policy("/signup", "n").contains("https://js.stripe.com"));
        let admin = content_security_policy("/organizations", "n");
        assert!(!admin.contains("stripe"));
        for directive in [
            "object-src 'none'",
            "base-uri 'none'",
            "frame-ancestors 'none'",
            "'nonce-n'",
            "'wasm-unsafe-eval'",
        ] {
            assert!(admin.contains(directive), "{directive}");
        }
        assert!(!admin.contains("unsafe-inline"));
    }
}
