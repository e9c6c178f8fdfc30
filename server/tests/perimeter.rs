//! The security perimeter: no server function or route works without a session (except the
//! public ones, which do nothing useful without valid input); every response carries the
//! security headers; cross-origin state-changing requests are refused.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use app::error::AppError;
use sea_orm::DatabaseConnection;
use support::{TestServer, setup_superadmin};

/// Server functions anyone may call, with the plausible-but-wrong arguments a stranger would send.
const PUBLIC: &[(&str, &[(&str, &str)])] = &[
    (
        "/api/login",
        &[
            ("email", "root@nest.test"),
            ("password", "guessed password 1"),
        ],
    ),
    (
        "/api/setup",
        &[
            ("email", "intruder@nest.test"),
            ("password", "correct horse battery 9"),
            ("confirm", "correct horse battery 9"),
        ],
    ),
    ("/api/login_code", &[("code", "123456")]),
    (
        "/api/set_password",
        &[
            ("token", "0000"),
            ("password", "correct horse battery 9"),
            ("confirm", "correct horse battery 9"),
        ],
    ),
    // Signups are public; without a valid token (or with an invalid form) they refuse.
    (
        "/api/get_signup_status",
        &[(
            "token",
            "00000000000000000000000000000000000000000000000000000000000000ff",
        )],
    ),
    (
        "/api/signup_payment_secret",
        &[(
            "token",
            "00000000000000000000000000000000000000000000000000000000000000ff",
        )],
    ),
    (
        "/api/pay_with_test_card",
        &[
            (
                "token",
                "00000000000000000000000000000000000000000000000000000000000000ff",
            ),
            ("card", "4242 4242 4242 4242"),
        ],
    ),
    (
        "/api/start_signup",
        &[
            ("input[name]", ""),
            ("input[slug]", "x"),
            ("input[owner_email]", "not an email"),
            ("input[tier_id]", "1"),
            ("input[region]", "fsn1"),
        ],
    ),
];

/// Public server functions that answer anyone by design (what `/signup` shows before anything
/// is typed). They must not need a session, and must not fail.
const OPEN: &[(&str, &[(&str, &str)])] = &[
    ("/api/get_signup_offer", &[]),
    ("/api/signup_slug_available", &[("slug", "free-slug")]),
];

/// Arguments that would make each protected server function succeed for a superadmin, so the
/// only reason it fails here is the missing session. A new server function without an entry
/// fails `every_server_function_refuses_a_caller_without_a_session` until one is added.
const PROTECTED: &[(&str, &[(&str, &str)])] = &[
    ("/api/preview_tier_change", &[("id", "1"), ("tier_id", "2")]),
    ("/api/platform_status", &[]),
    ("/api/list_findings", &[("resolved", "false")]),
    (
        "/api/act_on_finding",
        &[("id", "1"), ("action", "delete_server"), ("confirm", "x")],
    ),
    ("/api/current_caller", &[]),
    ("/api/cloud_mode", &[]),
    ("/api/live_seq", &[]),
    ("/api/list_vpses", &[("query[include_deleted]", "false")]),
    ("/api/vps_health", &[("id", "1")]),
    ("/api/list_incidents", &[("query[search]", "")]),
    (
        "/api/acknowledge_incident",
        &[("id", "1"), ("reason", "on it")],
    ),
    (
        "/api/silence_incident",
        &[("id", "1"), ("minutes", "60"), ("reason", "maintenance")],
    ),
    ("/api/list_jobs", &[("query[organization]", "")]),
    ("/api/retry_job", &[("id", "1")]),
    ("/api/logout", &[]),
    ("/api/list_admins", &[]),
    (
        "/api/add_admin",
        &[
            ("email", "new@nest.test"),
            ("role", "admin"),
            ("initial", "Link"),
        ],
    ),
    (
        "/api/change_admin_role",
        &[("user_id", "1"), ("role", "admin")],
    ),
    ("/api/remove_admin", &[("user_id", "2")]),
    ("/api/two_factor_begin", &[]),
    ("/api/two_factor_confirm", &[("code", "123456")]),
    ("/api/two_factor_status", &[]),
    ("/api/two_factor_disable", &[("code", "123456")]),
    ("/api/recovery_codes_regenerate", &[("code", "123456")]),
    ("/api/set_two_factor_required", &[("required", "true")]),
    ("/api/reset_two_factor", &[("user_id", "2")]),
    ("/api/list_audit", &[("filter[action]", "")]),
    ("/api/list_tiers", &[]),
    ("/api/list_waitlist", &[]),
    ("/api/list_tier_details", &[]),
    (
        "/api/save_tier",
        &[
            ("input[name]", "Scale"),
            ("input[code]", "scale"),
            ("input[server_type]", "cx52"),
            ("input[vcpus]", "16"),
            ("input[memory_gb]", "32"),
            ("input[disk_gb]", "320"),
            ("input[monthly_price]", "240"),
            ("input[currency]", "EUR"),
            ("input[stripe_price_id]", ""),
        ],
    ),
    ("/api/set_tier_active", &[("id", "1"), ("active", "false")]),
    ("/api/delete_tier", &[("id", "3")]),
    ("/api/slug_available", &[("slug", "acme")]),
    (
        "/api/create_organization",
        &[
            ("name", "Acme"),
            ("slug", "acme"),
            ("owner_email", "o@acme.test"),
            ("tier_id", "1"),
            ("region", "nbg1"),
        ],
    ),
    ("/api/list_organizations", &[("query[sort]", "Newest")]),
    ("/api/get_organization", &[("id", "1")]),
    // Billing (invoice ledger).
    ("/api/billing_overview", &[]),
    ("/api/list_invoices", &[("query[search]", "")]),
    ("/api/get_invoice", &[("id", "1")]),
    // Cost against revenue.
    ("/api/get_margins", &[]),
    ("/api/get_org_cost", &[("id", "1")]),
    (
        "/api/settle_invoice",
        &[
            ("id", "1"),
            ("action", "void"),
            ("seen", "open"),
            ("reason", "duplicate"),
        ],
    ),
    (
        "/api/organization_action",
        &[("id", "1"), ("action", "suspended")],
    ),
];

async fn every_server_function_refuses_a_caller_without_a_session(db: &DatabaseConnection) {
    let server = TestServer::start(db).await;
    setup_superadmin(&server, "root@nest.test").await;
    let registered: Vec<String> = leptos::server_fn::axum::server_fn_paths()
        .map(|(path, _)| path.to_owned())
        .collect();
    assert!(
        registered.len() >= PUBLIC.len() + PROTECTED.len() + OPEN.len(),
        "{registered:?}"
    );
    for path in &registered {
        let name = path.trim_start_matches("/api/");
        let mut anon = server.client();
        if let Some((_, args)) = OPEN.iter().find(|(p, _)| p == path) {
            let reply = anon.call(name, args).await;
            assert_eq!(reply.status, 200, "{path} is open to anyone: {reply:?}");
        } else if let Some((_, args)) = PUBLIC.iter().find(|(p, _)| p == path) {
            let reply = anon.call(name, args).await;
            assert!(
                reply.status >= 400,
                "{path} succeeded without a session: {reply:?}"
            );
        } else {
            let (_, args) = PROTECTED
                .iter()
                .find(|(p, _)| p == path)
                .unwrap_or_else(|| {
                    panic!("{path} is a new server function: add it to PROTECTED or PUBLIC")
                });
            let reply = anon.call(name, args).await;
            assert_eq!(
                reply.error(),
                Some(AppError::Unauthenticated),
                "{path} without a session: {reply:?}"
            );
        }
    }
    // The admin pages redirect to the login page, remembering where the visitor was going.
    let mut anon = server.client();
    for page in ["/", "/admins", "/audit?action=auth.login"] {
        let (status, location) = anon.get(page).await;
        assert_eq!(status, 303, "{page}");
        let location = location.unwrap();
        assert!(
            location.starts_with("/login?redirect="),
            "{page} → {location}"
        );
    }
}

async fn every_response_carries_the_security_headers(db: &DatabaseConnection) {
    let server = TestServer::start(db).await;
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    for (method, path) in [
        ("GET", "/login"),
        ("GET", "/setup"),
        ("GET", "/"),
        ("GET", "/healthz"),
        ("GET", "/favicon.svg"),
        ("GET", "/no-such-file.png"),
        ("GET", "/no-such-page"),
        ("POST", "/api/current_caller"),
    ] {
        let response = client
            .request(method.parse().unwrap(), format!("{}{path}", server.base))
            .header("content-type", "application/x-www-form-urlencoded")
            .send()
            .await
            .unwrap();
        let h = response.headers();
        let csp = h
            .get("content-security-policy")
            .unwrap_or_else(|| panic!("{path}: no CSP"))
            .to_str()
            .unwrap();
        for directive in [
            "default-src 'self'",
            "object-src 'none'",
            "base-uri 'none'",
            "frame-ancestors 'none'",
            "'wasm-unsafe-eval'",
        ] {
            assert!(
                csp.contains(directive),
                "{path}: CSP lacks {directive}: {csp}"
            );
        }
        assert!(!csp.contains("unsafe-inline"), "{path}");
        assert_eq!(h["x-frame-options"], "DENY", "{path}");
        assert_eq!(
            h["referrer-policy"], "strict-origin-when-cross-origin",
            "{path}"
        );
        assert_eq!(h["x-content-type-options"], "nosniff", "{path}");
        assert!(
            h.get("strict-transport-security").is_none(),
            "{path}: no HSTS over plain http"
        );
    }
}

async fn a_cross_origin_post_is_refused(db: &DatabaseConnection) {
    let server = TestServer::start(db).await;
    let client = reqwest::Client::new();
    for (header, value) in [
        ("origin", "https://evil.example"),
        ("sec-fetch-site", "cross-site"),
    ] {
        let response = client
            .post(format!("{}/api/setup", server.base))
            .header("content-type", "application/x-www-form-urlencoded")
            .header(header, value)
            .body("email=evil%40evil.example&password=correct+horse+battery+9&confirm=correct+horse+battery+9")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 403, "{header}: {value}");
        assert!(response.headers().get("content-security-policy").is_some());
    }
    use sea_orm::{EntityTrait, PaginatorTrait};
    let admins = server::entities::platform_admins::Entity::find()
        .count(db)
        .await
        .unwrap();
    assert_eq!(admins, 0, "nothing was created");
}

on_both_databases!(
    every_server_function_refuses_a_caller_without_a_session,
    every_response_carries_the_security_headers,
    a_cross_origin_post_is_refused,
);
