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
    // What a form posted without JavaScript kept for the next page, in this caller's own session.
    ("/api/take_posted", &[("path", "/api/add_admin")]),
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
    (
        "/api/decide_waitlist",
        &[("decision", "approved"), ("ids[]", "1")],
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

/// Server functions the pages call themselves (to read, or to check as you type): no form posts
/// to them. Every other server function must be the action of a form on some page.
const READS: &[&str] = &[
    "/api/billing_overview",
    "/api/cloud_mode",
    "/api/current_caller",
    "/api/get_billing_overview",
    "/api/get_invoice",
    "/api/get_margins",
    "/api/get_org_cost",
    "/api/get_organization",
    "/api/get_signup_offer",
    "/api/get_signup_status",
    "/api/list_admins",
    "/api/list_audit",
    "/api/list_findings",
    "/api/list_incidents",
    "/api/list_invoices",
    "/api/list_jobs",
    "/api/list_organizations",
    "/api/list_tier_details",
    "/api/list_tiers",
    "/api/list_vpses",
    "/api/list_waitlist",
    "/api/live_seq",
    "/api/platform_status",
    "/api/preview_tier_change",
    "/api/signup_payment_secret",
    "/api/signup_slug_available",
    "/api/slug_available",
    "/api/take_posted",
    "/api/two_factor_status",
    "/api/vps_health",
];

/// What a page's forms may be: each posts to a server function (so it works before hydration
/// and without JavaScript, and never puts its fields in a URL), or is a GET filter of its own
/// page holding no secret. Every field of a posting form has a name (or it would not be sent),
/// and no named field lives outside a form.
fn check_forms(
    page: &str,
    html: &str,
    server_fns: &std::collections::HashSet<String>,
    posted_to: &mut std::collections::HashSet<String>,
) -> usize {
    use scraper::{Html, Selector};
    let doc = Html::parse_document(html);
    let forms = Selector::parse("form").unwrap();
    let fields = Selector::parse("input, select, textarea").unwrap();
    let own_path = page.split('?').next().unwrap();
    let mut count = 0;
    for form in doc.select(&forms) {
        count += 1;
        let method = form.attr("method").unwrap_or("get").to_ascii_lowercase();
        let action = form.attr("action").unwrap_or("");
        let id = form.attr("id");
        // The form's fields: inside it, or tied to it by `form="<id>"`.
        let mut own: Vec<_> = form.select(&fields).collect();
        if let Some(id) = id {
            let tied = Selector::parse(&format!("[form=\"{id}\"]")).unwrap();
            own.extend(doc.select(&tied));
        }
        let shown = || form.html().chars().take(300).collect::<String>();
        match method.as_str() {
            "post" => {
                assert!(
                    server_fns.contains(action),
                    "{page}: a form posts to {action:?}, which is no server function: {}",
                    shown()
                );
                posted_to.insert(action.to_owned());
                for field in &own {
                    let kind = field.attr("type").unwrap_or("text");
                    if matches!(kind, "submit" | "button" | "reset") {
                        continue;
                    }
                    assert!(
                        field.attr("name").is_some_and(|n| !n.is_empty()),
                        "{page}: a field of the form posting to {action} has no name, so it is never sent: {}",
                        field.html()
                    );
                }
            }
            "get" => {
                assert!(
                    action.is_empty() || action == own_path,
                    "{page}: a GET form leads elsewhere ({action:?}): a form that changes something posts: {}",
                    shown()
                );
                for field in &own {
                    let kind = field.attr("type").unwrap_or("text").to_ascii_lowercase();
                    let name = field.attr("name").unwrap_or("").to_ascii_lowercase();
                    assert!(
                        !matches!(kind.as_str(), "password" | "email")
                            && !["password", "code", "email", "token", "secret", "confirm"]
                                .iter()
                                .any(|word| name.contains(word)),
                        "{page}: a GET form would put {name:?} ({kind}) in the URL: {}",
                        shown()
                    );
                }
            }
            other => panic!("{page}: a form with method {other:?}: {}", shown()),
        }
    }
    // A named field outside every form is sent by nothing without JavaScript.
    let loose = Selector::parse(
        "input[name]:not([form]), select[name]:not([form]), textarea[name]:not([form])",
    )
    .unwrap();
    for field in doc.select(&loose) {
        let inside = field
            .ancestors()
            .filter_map(scraper::ElementRef::wrap)
            .any(|e| e.value().name() == "form");
        assert!(
            inside,
            "{page}: a named field outside any form: {}",
            field.html()
        );
    }
    count
}

/// The pages to render for a route: its path, with each parameter replaced by the fixtures that
/// make its conditional forms show. A new route with a parameter fails here until it has some.
fn pages_of(route: &str, fixtures: &std::collections::HashMap<&str, Vec<String>>) -> Vec<String> {
    if !route.contains(':') && !route.contains('*') {
        return vec![route.to_owned()];
    }
    let values = fixtures
        .get(route)
        .unwrap_or_else(|| panic!("{route} is a new route with a parameter: give it fixtures in every_form_on_every_page_posts_or_filters_its_own_page"));
    let param = route.split('/').find(|s| s.starts_with(':')).unwrap();
    values.iter().map(|v| route.replace(param, v)).collect()
}

/// Every page, rendered on the server for a superadmin, with data that makes every conditional
/// form show (an organization in each state, a failed job, an open incident, an open invoice,
/// a finding, another admin with two-factor sign-in, a tier no one uses, a waiting signup).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_form_on_every_page_posts_or_filters_its_own_page() {
    use app::models::{FindingKind, HealthStatus, InvoiceStatus, JobState, OrgStatus, VpsStatus};
    use sea_orm::{ActiveModelTrait, ActiveValue::Set, EntityTrait, IntoActiveModel};
    use server::entities::{
        health_incidents, invoices, jobs, reconcile_findings, totp_factors, vpses,
    };

    let t = support::TestDb::migrated(support::Engine::Sqlite)
        .await
        .unwrap();
    let db = &t.db;
    let server = TestServer::start(db).await;
    let server_fns: std::collections::HashSet<String> = leptos::server_fn::axum::server_fn_paths()
        .map(|(path, _)| path.to_owned())
        .collect();
    let mut forms = 0;
    let mut pages = 0;
    let mut posted_to = std::collections::HashSet::new();
    // The first-run page, before there is an admin.
    let (status, html) = server.client().page("/setup").await;
    assert_eq!(status, 200);
    forms += check_forms("/setup", &html, &server_fns, &mut posted_to);
    let mut root = setup_superadmin(&server, "root@nest.test").await;
    let now = chrono::Utc::now();

    // Another admin with an authenticator (its reset form), and one added with a link (the
    // set-password page).
    support::add_admin(&mut root, "ops@nest.test").await;
    let ops = server::entities::users::Entity::find()
        .all(db)
        .await
        .unwrap()
        .into_iter()
        .find(|u| u.email.as_str() == "ops@nest.test")
        .unwrap();
    totp_factors::ActiveModel {
        user_id: Set(ops.id),
        secret_ciphertext: Set(vec![0; 32]),
        secret_nonce: Set(vec![0; 12]),
        secret_key_id: Set("test".into()),
        confirmed_at: Set(Some(now)),
        last_step: Set(None),
        created_at: Set(now),
    }
    .insert(db)
    .await
    .unwrap();
    let linked = root
        .call(
            "add_admin",
            &[
                ("email", "link@nest.test"),
                ("role", "admin"),
                ("initial", "Link"),
            ],
        )
        .await;
    let set_password = linked.body["set_password_path"]
        .as_str()
        .unwrap()
        .to_owned();

    // A tier no one uses (its delete form).
    let tier = root
        .call(
            "save_tier",
            &[
                ("input[name]", "Spare"),
                ("input[code]", "spare"),
                ("input[server_type]", "cx52"),
                ("input[vcpus]", "16"),
                ("input[memory_gb]", "32"),
                ("input[disk_gb]", "320"),
                ("input[monthly_price]", "240"),
                ("input[currency]", "EUR"),
                ("input[stripe_price_id]", ""),
            ],
        )
        .await;
    assert_eq!(tier.status, 200, "{tier:?}");

    // An organization in each state that offers actions.
    let mut orgs = Vec::new();
    for (slug, status) in [
        ("form-active", OrgStatus::Active),
        ("form-suspended", OrgStatus::Suspended),
        ("form-error", OrgStatus::Error),
    ] {
        let org = support::create_org(&server.app, slug).await;
        let mut row = org.clone().into_active_model();
        row.status = Set(status);
        row.update(db).await.unwrap();
        orgs.push(org.id);
    }
    let waiting = server
        .app
        .organizations()
        .create(
            &support::test_actor(),
            server::organizations::NewOrganization {
                name: "Waiting Co".into(),
                slug: "form-waiting".into(),
                owner_email: "owner@waiting.test".into(),
                tier_id: 1,
                region: "nbg1".into(),
            },
            false,
        )
        .await
        .unwrap();
    orgs.push(waiting.id);
    let _ = OrgStatus::Pending;
    // The failed organization's create job failed (its retry forms, on its page and /jobs).
    for job in jobs::Entity::find().all(db).await.unwrap() {
        if job.organization_id == Some(orgs[2]) {
            let mut row = job.into_active_model();
            row.state = Set(JobState::Failed);
            row.last_error = Set(Some("create server: the answer was lost".into()));
            row.update(db).await.unwrap();
        }
    }
    // The active organization's server, with an open incident (acknowledge, silence).
    let vps = vpses::ActiveModel {
        organization_id: Set(orgs[0]),
        name: Set("nest-form-active".into()),
        hetzner_server_id: Set(Some(4242)),
        server_type: Set("cx22".parse().unwrap()),
        region: Set("nbg1".parse().unwrap()),
        ipv4: Set(Some("127.9.9.9".into())),
        status: Set(VpsStatus::Running),
        created_at: Set(now),
        updated_at: Set(now),
        ..Default::default()
    }
    .insert(db)
    .await
    .unwrap();
    health_incidents::ActiveModel {
        vps_id: Set(vps.id),
        organization_id: Set(orgs[0]),
        opened_at: Set(now),
        last_status: Set(HealthStatus::Unhealthy),
        reboots: Set(0),
        ..Default::default()
    }
    .insert(db)
    .await
    .unwrap();
    // An open invoice (mark paid, void).
    let period = now.date_naive();
    let invoice = invoices::ActiveModel {
        organization_id: Set(orgs[0]),
        number: Set(app::models::InvoiceNumber::new(period, 1).unwrap()),
        period_start: Set(period),
        period_end: Set(period),
        amount_cents: Set(730),
        currency: Set("EUR".parse().unwrap()),
        status: Set(InvoiceStatus::Open),
        due_date: Set(period),
        created_at: Set(now),
        updated_at: Set(now),
        ..Default::default()
    }
    .insert(db)
    .await
    .unwrap();
    // A finding with both of its actions (adopt, delete).
    reconcile_findings::ActiveModel {
        kind: Set(FindingKind::OrphanServer),
        subject: Set("server 999".into()),
        organization_id: Set(Some(orgs[2])),
        detail: Set(serde_json::json!({"name": "nest-form-error", "adoptable": true})),
        first_seen_at: Set(now),
        last_seen_at: Set(now),
        ..Default::default()
    }
    .insert(db)
    .await
    .unwrap();

    let fixtures: std::collections::HashMap<&str, Vec<String>> = [
        (
            "/organizations/:id",
            orgs.iter().map(i64::to_string).collect(),
        ),
        ("/vpses/:id", vec![vps.id.to_string()]),
        ("/billing/invoices/:id", vec![invoice.id.to_string()]),
    ]
    .into_iter()
    .collect();

    // The dashboard, signed in as the superadmin, and its pages' other states.
    let admin_routes = leptos_axum::generate_route_list(app::AdminApp);
    let mut admin_pages: Vec<String> = admin_routes
        .iter()
        .flat_map(|r| pages_of(r.path(), &fixtures))
        .collect();
    admin_pages.extend(["/tiers?new".to_owned(), "/tiers?edit=1".to_owned()]);
    for page in &admin_pages {
        let (status, html) = root.page(page).await;
        assert_eq!(status, 200, "{page}");
        forms += check_forms(page, &html, &server_fns, &mut posted_to);
        pages += 1;
    }
    // The public pages, to a visitor.
    let public_routes = leptos_axum::generate_route_list(app::PublicApp);
    let mut public_pages: Vec<String> = public_routes
        .iter()
        .flat_map(|r| pages_of(r.path(), &fixtures))
        .collect();
    public_pages.push(set_password);
    // The signup's payment step: a customer started a signup without JavaScript.
    let mut customer = server.client();
    let (status, location) = customer
        .post_form(
            "/signup",
            "start_signup",
            &[
                ("input[name]", "Form Customer"),
                ("input[slug]", "form-customer"),
                ("input[owner_email]", "owner@form-customer.test"),
                ("input[tier_id]", "1"),
                ("input[region]", "nbg1"),
            ],
        )
        .await;
    assert_eq!(status, 302, "{location:?}");
    let payment = location.unwrap();
    assert!(payment.starts_with("/signup?token="), "{payment}");
    public_pages.push(payment);
    for page in &public_pages {
        let mut visitor = server.client();
        let (status, html) = visitor.page(page).await;
        if (300..400).contains(&status) {
            continue;
        }
        forms += check_forms(page, &html, &server_fns, &mut posted_to);
        pages += 1;
    }
    // Setting up an authenticator without JavaScript: the first step posts, and the page it
    // comes back to shows the secret (kept for it in the session) and the confirmation form.
    let (status, location) = root.post_form("/account", "two_factor_begin", &[]).await;
    assert_eq!(status, 302, "{location:?}");
    let location = location.unwrap();
    assert!(
        location.trim_end_matches('?').ends_with("/account"),
        "{location}"
    );
    let (_, html) = root.page("/account").await;
    assert!(html.contains("data-testid=\"totp-secret\""), "{html}");
    forms += check_forms("/account", &html, &server_fns, &mut posted_to);
    let secret = {
        let doc = scraper::Html::parse_document(&html);
        let code = scraper::Selector::parse("[data-testid=totp-secret]").unwrap();
        doc.select(&code).next().unwrap().text().collect::<String>()
    };
    // Confirming it the same way: the page shows the recovery codes once, then the forms of
    // an account with two-factor sign-in on (new recovery codes, turn it off).
    let code = {
        let totp = totp_rs::Builder::new()
            .with_secret(totp_rs::Secret::try_from_base32(&secret).unwrap())
            .with_account_name("test")
            .build()
            .unwrap();
        totp.generate(u64::try_from(chrono::Utc::now().timestamp()).unwrap())
            .to_string()
    };
    let (status, _) = root
        .post_form("/account", "two_factor_confirm", &[("code", &code)])
        .await;
    assert_eq!(status, 302);
    let (_, html) = root.page("/account").await;
    assert!(html.contains("data-testid=\"recovery-codes\""), "{html}");
    let (_, again) = root.page("/account").await;
    assert!(
        !again.contains("data-testid=\"recovery-codes\""),
        "the codes are shown once"
    );
    forms += check_forms("/account", &again, &server_fns, &mut posted_to);
    eprintln!("form audit: {forms} forms on {pages} pages");
    // Every server function that changes something is the action of a form the fixtures made
    // show; the others are read by the pages themselves.
    for path in &server_fns {
        if READS.contains(&path.as_str()) {
            continue;
        }
        assert!(
            posted_to.contains(path),
            "no form posts to {path}: give it a form (and the fixtures that show it), or list it in READS"
        );
    }
    t.cleanup().await;
}

on_both_databases!(
    every_server_function_refuses_a_caller_without_a_session,
    every_response_carries_the_security_headers,
    a_cross_origin_post_is_refused,
);
