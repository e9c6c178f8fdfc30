//! The admin perimeter under attack, over HTTP on SQLite and PostgreSQL (issue 12): concurrent
//! password guessing, foreign `Host` headers, open redirects, proxies and audit floods.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use app::error::AppError;
use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, PaginatorTrait, QueryFilter};
use server::entities::audit_log;
use support::{PASSWORD, TestServer, login, setup_superadmin};

async fn audit_count(db: &DatabaseConnection, action: &str) -> u64 {
    audit_log::Entity::find()
        .filter(audit_log::Column::Action.eq(action))
        .count(db)
        .await
        .unwrap()
}

async fn concurrent_wrong_passwords_get_at_most_the_allowed_verdicts(db: &DatabaseConnection) {
    let server = TestServer::start(db).await;
    setup_superadmin(&server, "ops@nest.test").await;
    let attempts = (0..60).map(|i| {
        let server = &server;
        async move {
            let (_, reply) = login(server, "ops@nest.test", &format!("wrong password {i}")).await;
            reply
        }
    });
    let replies = futures::future::join_all(attempts).await;
    let count = |status: u16| replies.iter().filter(|r| r.status == status).count();
    let (verdicts, limited, busy) = (count(422), count(429), count(503));
    eprintln!("60 concurrent wrong passwords: {verdicts} verdicts, {limited} × 429, {busy} × 503");
    assert_eq!(
        verdicts + limited + busy,
        60,
        "only verdicts, 429 and 503: {replies:?}"
    );
    assert!(verdicts <= 5, "{verdicts} verdicts for a limit of 5");
    assert!(limited >= 55 - busy, "{limited} refusals");
    // The account is now locked, even for the right password.
    let (_, locked) = login(&server, "ops@nest.test", PASSWORD).await;
    assert!(
        matches!(locked.error(), Some(AppError::RateLimited(_))),
        "{locked:?}"
    );
    assert_eq!(
        audit_count(db, "auth.login_failed").await,
        u64::try_from(verdicts).unwrap()
    );
}

async fn a_success_does_not_reset_other_accounts_failures_on_the_address(db: &DatabaseConnection) {
    let server = TestServer::start(db).await;
    setup_superadmin(&server, "ops@nest.test").await;
    for i in 0..19 {
        let (_, reply) = login(&server, &format!("guess{i}@nest.test"), "wrong password 1").await;
        assert_eq!(reply.status, 422, "attempt {i}: {reply:?}");
    }
    // The attacker's own account signs in from the same address…
    let (_, ok) = login(&server, "ops@nest.test", PASSWORD).await;
    assert_eq!(ok.status, 200, "{ok:?}");
    // …and the address's count goes on from 19, not from zero.
    let (_, twentieth) = login(&server, "guess19@nest.test", "wrong password 1").await;
    assert_eq!(twentieth.status, 422, "{twentieth:?}");
    let (_, blocked) = login(&server, "guess20@nest.test", "wrong password 1").await;
    assert!(
        matches!(blocked.error(), Some(AppError::RateLimited(_))),
        "{blocked:?}"
    );
}

async fn a_correct_login_never_redirects_off_site(db: &DatabaseConnection) {
    let server = TestServer::start(db).await;
    setup_superadmin(&server, "ops@nest.test").await;
    for (redirect, expected) in [
        (
            "/organizations?status=active",
            "/organizations?status=active",
        ),
        ("/\t/evil.example", "/"),
        ("/\\evil.example", "/"),
        ("//evil.example", "/"),
        ("/%2F/evil.example", "/"),
        ("https://evil.example/", "/"),
    ] {
        let mut client = server.client();
        let reply = client
            .call(
                "login",
                &[
                    ("email", "ops@nest.test"),
                    ("password", PASSWORD),
                    ("redirect", redirect),
                ],
            )
            .await;
        assert_eq!(reply.status, 200, "{reply:?}");
        assert_eq!(reply.body, serde_json::json!(expected), "{redirect:?}");
    }
}

async fn a_request_for_a_foreign_host_is_refused_before_anything_else(db: &DatabaseConnection) {
    let server = TestServer::start(db).await;
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    // DNS rebinding: evil.test now resolves to this server; its page posts to its own origin.
    for host in [
        "evil.test",
        "evil.test:80",
        "127.0.0.1.evil.test",
        "localhost:1",
    ] {
        let response = http
            .post(format!("{}/api/setup", server.base))
            .header("host", host)
            .header("origin", format!("http://{host}"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body("email=ops%40nest.test&password=correct+horse+battery+9&confirm=correct+horse+battery+9")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 421, "{host}");
        let page = http
            .get(format!("{}/setup", server.base))
            .header("host", host)
            .send()
            .await
            .unwrap();
        assert_eq!(page.status(), 421, "{host}");
    }
    assert_eq!(
        server::entities::platform_admins::Entity::find()
            .count(db)
            .await
            .unwrap(),
        0
    );
    // The addresses the dashboard is served on still work, in any case; probes need no host.
    let port = server.base.rsplit(':').next().unwrap();
    for host in [format!("127.0.0.1:{port}"), format!("LOCALHOST:{port}")] {
        let page = http
            .get(format!("{}/setup", server.base))
            .header("host", host.as_str())
            .send()
            .await
            .unwrap();
        assert_eq!(page.status(), 200, "{host}");
    }
    let health = http
        .get(format!("{}/healthz", server.base))
        .header("host", "10.0.0.7:3001")
        .send()
        .await
        .unwrap();
    assert_ne!(health.status(), 421);
}

async fn login_from(server: &TestServer, forwarded_for: &str, email: &str) -> u16 {
    reqwest::Client::new()
        .post(format!("{}/api/login", server.base))
        .header("x-forwarded-for", forwarded_for)
        .header("content-type", "application/x-www-form-urlencoded")
        .header("accept", "application/json")
        .body(format!("email={email}&password=wrong+password+1"))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

async fn last_audit_ip(db: &DatabaseConnection) -> Option<String> {
    use sea_orm::QueryOrder;
    audit_log::Entity::find()
        .order_by_desc(audit_log::Column::Id)
        .one(db)
        .await
        .unwrap()
        .unwrap()
        .ip
}

async fn behind_a_trusted_proxy_clients_are_told_apart_and_ipv6_counts_per_64(
    db: &DatabaseConnection,
) {
    let server = TestServer::start_with(
        db,
        server::clock::Clock::system(),
        &[("NEST_TRUSTED_PROXIES", "127.0.0.1")],
    )
    .await;
    setup_superadmin(&server, "ops@nest.test").await;
    // The client is the rightmost untrusted hop; what it wrote itself to the left is ignored.
    assert_eq!(
        login_from(&server, "6.6.6.6, 203.0.113.5, 127.0.0.1", "a%40nest.test").await,
        422
    );
    assert_eq!(last_audit_ip(db).await.as_deref(), Some("203.0.113.5"));
    // Twenty addresses of one IPv6 /64 are one client: blocked together…
    for i in 1..=20 {
        let status = login_from(
            &server,
            &format!("2001:db8:1:2::{i:x}"),
            &format!("u{i}%40nest.test"),
        )
        .await;
        assert_eq!(status, 422, "attempt {i}");
    }
    assert_eq!(
        login_from(&server, "2001:db8:1:2:ffff::1", "other%40nest.test").await,
        429
    );
    // …while the next /64 and other clients behind the same proxy are not.
    assert_eq!(
        login_from(&server, "2001:db8:1:3::1", "other%40nest.test").await,
        422
    );
    assert_eq!(
        login_from(&server, "198.51.100.1", "other%40nest.test").await,
        422
    );
}

async fn without_trusted_proxies_forwarded_for_is_ignored(db: &DatabaseConnection) {
    let server = TestServer::start(db).await;
    setup_superadmin(&server, "ops@nest.test").await;
    assert_eq!(
        login_from(&server, "203.0.113.5", "a%40nest.test").await,
        422
    );
    assert_eq!(last_audit_ip(db).await.as_deref(), Some("127.0.0.1"));
}

async fn a_flood_of_blocked_logins_writes_a_bounded_number_of_audit_rows(db: &DatabaseConnection) {
    let server = TestServer::start(db).await;
    // Start early in a window (windows are fixed 15-minute slots), so the flood stays in one.
    let into_slot = server.clock.now().timestamp().rem_euclid(900);
    server
        .clock
        .advance(chrono::Duration::seconds(900 - into_slot + 1));
    setup_superadmin(&server, "ops@nest.test").await;
    for _ in 0..5 {
        login(&server, "ops@nest.test", "wrong password 1").await;
    }
    for _ in 0..40 {
        let (_, reply) = login(&server, "ops@nest.test", "wrong password 1").await;
        assert_eq!(reply.status, 429, "{reply:?}");
    }
    assert_eq!(audit_count(db, "auth.login_blocked").await, 1);
    // Once the window is over, its count is written in one more row.
    server.clock.advance(chrono::Duration::minutes(31));
    let closed = server::admins::rate_limit::close_windows(db, server.clock.now())
        .await
        .unwrap();
    assert_eq!(closed, 1);
    assert_eq!(audit_count(db, "auth.login_blocked").await, 2);
    let summary = audit_log::Entity::find()
        .filter(audit_log::Column::Action.eq("auth.login_blocked"))
        .all(db)
        .await
        .unwrap()
        .into_iter()
        .find(|row| row.detail.get("count").is_some())
        .unwrap();
    assert_eq!(summary.detail["count"], 40, "{:?}", summary.detail);
    assert_eq!(summary.actor_email, "ops@nest.test");
    // Nothing is written twice.
    let again = server::admins::rate_limit::close_windows(db, server.clock.now())
        .await
        .unwrap();
    assert_eq!(again, 0);
    assert_eq!(audit_count(db, "auth.login_blocked").await, 2);

    // A blocked address trying ever new emails is one key too.
    let into_slot = server.clock.now().timestamp().rem_euclid(900);
    server
        .clock
        .advance(chrono::Duration::seconds(900 - into_slot + 1));
    for i in 0..20 {
        let (_, reply) = login(&server, &format!("guess{i}@nest.test"), "wrong password 1").await;
        assert_eq!(reply.status, 422, "attempt {i}: {reply:?}");
    }
    for i in 0..30 {
        let (_, reply) = login(&server, &format!("new{i}@nest.test"), "wrong password 1").await;
        assert_eq!(reply.status, 429, "{reply:?}");
    }
    assert_eq!(audit_count(db, "auth.login_blocked").await, 3);
}

async fn a_request_in_flight_cannot_undo_a_logout(db: &DatabaseConnection) {
    use tower_sessions::SessionStore;
    let server = TestServer::start(db).await;
    setup_superadmin(&server, "ops@nest.test").await;
    let (mut client, _) = login(&server, "ops@nest.test", PASSWORD).await;
    let cookie = client.cookie.clone().unwrap();
    let id: tower_sessions::session::Id = cookie.split_once('=').unwrap().1.parse().unwrap();
    let store = server::admins::session_store::DbSessionStore::new(
        db.clone(),
        server.clock.clone(),
        chrono::Duration::minutes(30),
    );
    // A slow request loaded the session…
    let loaded = store.load(&id).await.unwrap().unwrap();
    // …the admin signs out meanwhile…
    assert_eq!(client.call("logout", &[]).await.status, 200);
    // …and the slow request ends by saving what it loaded: the session stays gone.
    store.save(&loaded).await.unwrap();
    assert!(store.load(&id).await.unwrap().is_none());
    let mut replay = server.client();
    replay.cookie = Some(cookie);
    assert_eq!(
        replay.call("current_caller", &[]).await.error(),
        Some(AppError::Unauthenticated)
    );
}

async fn reading_a_session_extends_it_without_saving_it(db: &DatabaseConnection) {
    let server = TestServer::start(db).await;
    setup_superadmin(&server, "ops@nest.test").await;
    let (mut client, _) = login(&server, "ops@nest.test", PASSWORD).await;
    let response = client
        .http
        .post(format!("{}/api/current_caller", server.base))
        .header("cookie", client.cookie.clone().unwrap())
        .header("content-type", "application/x-www-form-urlencoded")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(
        response.headers().get("set-cookie").is_none(),
        "an unmodified session is not saved"
    );
    // Activity every 20 minutes keeps a 30-minute idle session alive for hours.
    for _ in 0..6 {
        server.clock.advance(chrono::Duration::minutes(20));
        assert_eq!(client.call("current_caller", &[]).await.status, 200);
    }
    server.clock.advance(chrono::Duration::minutes(31));
    assert_eq!(
        client.call("current_caller", &[]).await.error(),
        Some(AppError::Unauthenticated)
    );
}

async fn open_stream(server: &TestServer, cookie: &str) -> reqwest::Response {
    reqwest::Client::new()
        .get(format!("{}/api/events", server.base))
        .header("cookie", cookie)
        .send()
        .await
        .unwrap()
}

/// Reads the stream until it ends; `false` if it is still open after `secs` (a functional bound).
async fn ends_within(mut stream: reqwest::Response, secs: u64) -> bool {
    tokio::time::timeout(std::time::Duration::from_secs(secs), async {
        while let Ok(Some(_)) = stream.chunk().await {}
    })
    .await
    .is_ok()
}

async fn a_live_stream_closes_when_its_session_ends(db: &DatabaseConnection) {
    let server = TestServer::start(db).await;
    let mut root = setup_superadmin(&server, "root@nest.test").await;
    let stream = open_stream(&server, root.cookie.as_deref().unwrap()).await;
    assert_eq!(stream.status(), 200);
    assert_eq!(root.call("logout", &[]).await.status, 200);
    assert!(
        ends_within(stream, 20).await,
        "the stream outlived its session"
    );

    // A removed admin's streams end too.
    let mut root = setup_login(&server, "root@nest.test").await;
    let added = support::add_admin(&mut root, "ops@nest.test").await;
    let (ops, _) = login(&server, "ops@nest.test", PASSWORD).await;
    let stream = open_stream(&server, ops.cookie.as_deref().unwrap()).await;
    assert_eq!(stream.status(), 200);
    let ops_id = added.body["admin"]["user_id"].as_i64().unwrap().to_string();
    let removed = root
        .call("remove_admin", &[("user_id", ops_id.as_str())])
        .await;
    assert_eq!(removed.status, 200, "{removed:?}");
    assert!(
        ends_within(stream, 20).await,
        "the stream outlived its admin"
    );
}

async fn setup_login(server: &TestServer, email: &str) -> support::Client {
    let (client, reply) = login(server, email, PASSWORD).await;
    assert_eq!(reply.status, 200, "{reply:?}");
    client
}

async fn live_streams_are_capped_per_session(db: &DatabaseConnection) {
    let server = TestServer::start(db).await;
    let root = setup_superadmin(&server, "root@nest.test").await;
    let cookie = root.cookie.clone().unwrap();
    let mut open = Vec::new();
    for _ in 0..server::http::MAX_STREAMS_PER_SESSION {
        let stream = open_stream(&server, &cookie).await;
        assert_eq!(stream.status(), 200);
        open.push(stream);
    }
    assert_eq!(open_stream(&server, &cookie).await.status(), 429);
    // Another session is not affected, and a closed stream frees its place.
    let other = setup_login(&server, "root@nest.test").await;
    assert_eq!(
        open_stream(&server, other.cookie.as_deref().unwrap())
            .await
            .status(),
        200
    );
    drop(open.pop());
    let mut reopened = None;
    for _ in 0..50 {
        let stream = open_stream(&server, &cookie).await;
        if stream.status() == 200 {
            reopened = Some(stream);
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(reopened.is_some(), "a closed stream's place is given back");
}

async fn a_30_mb_body_is_refused(db: &DatabaseConnection) {
    let server = TestServer::start(db).await;
    let response = reqwest::Client::new()
        .post(format!("{}/api/login", server.base))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(vec![b'a'; 30 * 1024 * 1024])
        .send()
        .await;
    match response {
        Ok(response) => {
            assert_eq!(response.status(), 413);
            let err: AppError = response.json().await.unwrap();
            assert!(matches!(err, AppError::Transport(_)), "{err:?}");
        }
        // The server may answer and close before the client has finished sending.
        Err(e) => assert!(
            e.is_request() || e.is_body(),
            "neither a 413 nor a refused upload: {e:?}"
        ),
    }
}

/// What a browser without JavaScript sends when it submits a form.
async fn plain_form_post(
    server: &TestServer,
    path: &str,
    referer: &str,
    cookie: Option<&str>,
    body: &str,
) -> reqwest::Response {
    let mut request = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .post(format!("{}{path}", server.base))
        .header("accept", "text/html,application/xhtml+xml,*/*;q=0.8")
        .header("content-type", "application/x-www-form-urlencoded")
        .header("sec-fetch-site", "same-origin")
        .header("referer", format!("{}{referer}", server.base))
        .body(body.to_owned());
    if let Some(cookie) = cookie {
        request = request.header("cookie", cookie);
    }
    request.send().await.unwrap()
}

fn location(response: &reqwest::Response) -> String {
    response.headers()["location"].to_str().unwrap().to_owned()
}

async fn page_html(server: &TestServer, path: &str) -> String {
    reqwest::get(format!("{}{path}", server.base))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

async fn the_sign_in_forms_work_without_javascript(db: &DatabaseConnection) {
    let server = TestServer::start(db).await;
    // The forms post to their server functions: never a GET carrying the password.
    let setup_page = page_html(&server, "/setup").await;
    assert!(
        setup_page.contains("action=\"/api/setup\"") && setup_page.contains("method=\"post\""),
        "{setup_page}"
    );
    let created = plain_form_post(
        &server,
        "/api/setup",
        "/setup",
        None,
        "email=ops%40nest.test&password=correct+horse+battery+9&confirm=correct+horse+battery+9",
    )
    .await;
    assert_eq!(created.status(), 302);
    assert_eq!(location(&created), "/");

    let login_page = page_html(&server, "/login?redirect=%2Faudit").await;
    assert!(
        login_page.contains("action=\"/api/login\"") && login_page.contains("method=\"post\""),
        "{login_page}"
    );
    // A wrong password comes back to the form, with the message on the page.
    let wrong = plain_form_post(
        &server,
        "/api/login",
        "/login?redirect=%2Faudit",
        None,
        "email=ops%40nest.test&password=wrong+password+1&redirect=%2Faudit",
    )
    .await;
    assert_eq!(wrong.status(), 302);
    let back = location(&wrong);
    assert!(
        back.contains("/login?") && back.contains("__err="),
        "{back}"
    );
    assert!(!back.contains("wrong+password"), "{back}");
    let shown = reqwest::get(&back).await.unwrap().text().await.unwrap();
    assert!(shown.contains("Email or password is incorrect."), "{shown}");
    // The right one signs in and goes where the page asked (same-origin only).
    let right = plain_form_post(
        &server,
        "/api/login",
        "/login?redirect=%2Faudit",
        None,
        "email=ops%40nest.test&password=correct+horse+battery+9&redirect=%2Faudit",
    )
    .await;
    assert_eq!(right.status(), 302);
    assert_eq!(location(&right), "/audit");
    assert!(right.headers().get("set-cookie").is_some());

    // A one-time link sets a password without JavaScript too.
    let (mut root, _) = login(&server, "ops@nest.test", PASSWORD).await;
    let added = root
        .call(
            "add_admin",
            &[
                ("email", "bee@nest.test"),
                ("role", "admin"),
                ("initial", "Link"),
            ],
        )
        .await;
    assert_eq!(added.status, 200, "{added:?}");
    let link = added.body["set_password_path"].as_str().unwrap().to_owned();
    let token = link.split_once("token=").unwrap().1.to_owned();
    let page = page_html(&server, &link).await;
    assert!(page.contains("action=\"/api/set_password\""), "{page}");
    let set = plain_form_post(
        &server,
        "/api/set_password",
        &link,
        None,
        &format!("token={token}&password=another+horse+battery+7&confirm=another+horse+battery+7"),
    )
    .await;
    assert_eq!(set.status(), 302);
    assert_eq!(location(&set), "/login");
    let (_, bee) = login(&server, "bee@nest.test", "another horse battery 7").await;
    assert_eq!(bee.status, 200, "{bee:?}");
}

async fn a_broken_session_store_shows_a_reference_not_its_error(db: &DatabaseConnection) {
    use sea_orm::{ConnectionTrait, Statement};
    let server = TestServer::start(db).await;
    let mut client = setup_superadmin(&server, "ops@nest.test").await;
    db.execute_raw(Statement::from_string(
        db.get_database_backend(),
        "UPDATE sessions SET data = 'not json at all'",
    ))
    .await
    .unwrap();
    let reply = client.call("current_caller", &[]).await;
    assert_eq!(reply.status, 500, "{reply:?}");
    match reply.error() {
        Some(AppError::Internal(reference)) => {
            assert!(reference.len() <= 16, "a short reference: {reference}");
            let body = reply.body.to_string().to_lowercase();
            for leak in ["json", "decode", "session", "expected"] {
                assert!(!body.contains(leak), "{leak} in {body}");
            }
        }
        other => panic!("expected an internal error with a reference, got {other:?}"),
    }
}

on_both_databases!(
    a_broken_session_store_shows_a_reference_not_its_error,
    the_sign_in_forms_work_without_javascript,
    a_30_mb_body_is_refused,
    a_live_stream_closes_when_its_session_ends,
    live_streams_are_capped_per_session,
    a_request_in_flight_cannot_undo_a_logout,
    reading_a_session_extends_it_without_saving_it,
    a_flood_of_blocked_logins_writes_a_bounded_number_of_audit_rows,
    behind_a_trusted_proxy_clients_are_told_apart_and_ipv6_counts_per_64,
    without_trusted_proxies_forwarded_for_is_ignored,
    a_request_for_a_foreign_host_is_refused_before_anything_else,
    a_correct_login_never_redirects_off_site,
    concurrent_wrong_passwords_get_at_most_the_allowed_verdicts,
    a_success_does_not_reset_other_accounts_failures_on_the_address,
);

#[tokio::test]
async fn the_simulator_s_control_api_needs_its_token_and_refuses_web_pages() {
    use server::hetzner::simulator::{SimConfig, Simulator};
    let sim = Simulator::start(SimConfig {
        first_ip: support::random_first_ip().parse().unwrap(),
        ..SimConfig::default()
    })
    .await
    .unwrap();
    let token = sim.control_token().to_owned();
    assert!(token.len() >= 32, "a random token: {token}");
    let stats = format!("{}/stats", sim.control_url());
    let faults = format!("{}/faults", sim.control_url());
    let http = reqwest::Client::new();
    let fault = serde_json::json!({"path": "/servers", "status": 500, "times": 1});

    let anonymous = http.post(&faults).json(&fault).send().await.unwrap();
    assert_eq!(anonymous.status(), 401);
    let wrong = http
        .post(&faults)
        .header("x-sim-token", "0".repeat(token.len()))
        .json(&fault)
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 401);
    // A web page can send a simple POST to loopback, and even guess nothing else: refused.
    let from_page = http
        .post(&faults)
        .header("x-sim-token", &token)
        .header("origin", "https://evil.example")
        .json(&fault)
        .send()
        .await
        .unwrap();
    assert_eq!(from_page.status(), 403);
    assert_eq!(http.get(&stats).send().await.unwrap().status(), 401);

    let scripted = http
        .post(&faults)
        .header("x-sim-token", &token)
        .json(&fault)
        .send()
        .await
        .unwrap();
    assert!(scripted.status().is_success(), "{scripted:?}");
    let stats = http
        .get(&stats)
        .header("x-sim-token", &token)
        .send()
        .await
        .unwrap();
    assert_eq!(stats.status(), 200);

    // A token set in the configuration is the one required.
    let fixed = Simulator::start(SimConfig {
        first_ip: support::random_first_ip().parse().unwrap(),
        control_token: Some("a-fixed-token-for-tests".to_owned()),
        ..SimConfig::default()
    })
    .await
    .unwrap();
    assert_eq!(fixed.control_token(), "a-fixed-token-for-tests");
    let ok = http
        .get(format!("{}/stats", fixed.control_url()))
        .header("x-sim-token", "a-fixed-token-for-tests")
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
}
