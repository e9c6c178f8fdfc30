//! Admin access end to end over HTTP, on SQLite and PostgreSQL: setup, login limits, session
//! rotation and expiry, logout, admin management rules, and the audit trail.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use app::error::AppError;
use chrono::Duration;
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, PaginatorTrait, QueryFilter,
};
use server::entities::{audit_log, platform_admins, sessions};
use support::{PASSWORD, TestServer, login, setup_superadmin};

async fn audit_count(db: &DatabaseConnection, action: &str) -> u64 {
    audit_log::Entity::find()
        .filter(audit_log::Column::Action.eq(action))
        .count(db)
        .await
        .unwrap()
}

async fn setup_race_creates_exactly_one_admin(db: &DatabaseConnection) {
    let server = TestServer::start(db).await;
    let (mut a, mut b) = (server.client(), server.client());
    let (ra, rb) = tokio::join!(
        a.call(
            "setup",
            &[
                ("email", "first@nest.test"),
                ("password", PASSWORD),
                ("confirm", PASSWORD)
            ]
        ),
        b.call(
            "setup",
            &[
                ("email", "second@nest.test"),
                ("password", PASSWORD),
                ("confirm", PASSWORD)
            ]
        ),
    );
    let ok = [&ra, &rb].iter().filter(|r| r.status == 200).count();
    assert_eq!(ok, 1, "exactly one setup wins: {ra:?} {rb:?}");
    let loser = if ra.status == 200 { &rb } else { &ra };
    assert!(
        matches!(loser.error(), Some(AppError::Conflict(_))),
        "{loser:?}"
    );
    assert_eq!(platform_admins::Entity::find().count(db).await.unwrap(), 1);
    assert_eq!(audit_count(db, "setup.completed").await, 1);

    // Once done, setup is closed: the page redirects and the function refuses.
    let mut c = server.client();
    assert_eq!(c.get("/setup").await, (303, Some("/login".to_owned())));
    let again = c
        .call(
            "setup",
            &[
                ("email", "third@nest.test"),
                ("password", PASSWORD),
                ("confirm", PASSWORD),
            ],
        )
        .await;
    assert!(matches!(again.error(), Some(AppError::Conflict(_))));
}

async fn before_setup_every_page_leads_to_setup(db: &DatabaseConnection) {
    let server = TestServer::start(db).await;
    let mut c = server.client();
    assert_eq!(c.get("/").await, (303, Some("/setup".to_owned())));
    assert_eq!(c.get("/audit").await, (303, Some("/setup".to_owned())));
    assert_eq!(c.get("/setup").await.0, 200);
}

async fn setup_validates_its_input_and_writes_nothing_on_error(db: &DatabaseConnection) {
    let server = TestServer::start(db).await;
    let mut c = server.client();
    let cases = [
        (("not-an-email", PASSWORD, PASSWORD), "email"),
        (("ops@nest.test", "short", "short"), "password"),
        (("ops@nest.test", PASSWORD, "something else 42"), "confirm"),
    ];
    for ((email, password, confirm), field) in cases {
        let reply = c
            .call(
                "setup",
                &[
                    ("email", email),
                    ("password", password),
                    ("confirm", confirm),
                ],
            )
            .await;
        assert_eq!(
            reply
                .error()
                .and_then(|e| e.for_field(field).map(|_| field)),
            Some(field),
            "{reply:?}"
        );
    }
    assert_eq!(platform_admins::Entity::find().count(db).await.unwrap(), 0);
    assert_eq!(audit_log::Entity::find().count(db).await.unwrap(), 0);
}

async fn wrong_passwords_lock_the_account_and_the_lock_survives_a_restart(db: &DatabaseConnection) {
    let server = TestServer::start(db).await;
    setup_superadmin(&server, "ops@nest.test").await;

    let (_, unknown) = login(&server, "nobody@nest.test", PASSWORD).await;
    let (_, wrong) = login(&server, "ops@nest.test", "wrong password 1").await;
    assert_eq!(
        unknown.error(),
        wrong.error(),
        "one message for unknown email and wrong password"
    );
    assert_eq!(
        wrong.error().unwrap().for_field("form").unwrap(),
        "Email or password is incorrect."
    );

    for _ in 0..4 {
        login(&server, "ops@nest.test", "wrong password 1").await;
    }
    let (_, locked) = login(&server, "ops@nest.test", PASSWORD).await;
    match locked.error() {
        Some(AppError::RateLimited(m)) => {
            assert!(m.contains("Try again in 15 minutes"), "{m}");
            assert_eq!(locked.status, 429);
        }
        other => panic!("expected a lockout, got {other:?}"),
    }
    assert_eq!(audit_count(db, "auth.login_failed").await, 6);

    // A new process on the same database (and clock) still refuses.
    let restarted = TestServer::start_with_clock(db, server.clock.clone()).await;
    let (_, still) = login(&restarted, "ops@nest.test", PASSWORD).await;
    assert!(matches!(still.error(), Some(AppError::RateLimited(_))));

    restarted.clock.advance(Duration::minutes(16));
    let (_, ok) = login(&restarted, "ops@nest.test", PASSWORD).await;
    assert_eq!(ok.status, 200, "{ok:?}");
}

async fn the_session_id_rotates_at_login_and_the_old_one_is_dead(db: &DatabaseConnection) {
    let server = TestServer::start(db).await;
    setup_superadmin(&server, "ops@nest.test").await;
    let (mut client, _) = login(&server, "ops@nest.test", PASSWORD).await;
    let first = client.cookie.clone().unwrap();
    assert_eq!(client.call("current_caller", &[]).await.status, 200);

    let relogin = client
        .call(
            "login",
            &[("email", "ops@nest.test"), ("password", PASSWORD)],
        )
        .await;
    assert_eq!(relogin.status, 200);
    let second = client.cookie.clone().unwrap();
    assert_ne!(first, second, "a new session id at login");

    let mut old = server.client();
    old.cookie = Some(first);
    assert_eq!(
        old.call("current_caller", &[]).await.error(),
        Some(AppError::Unauthenticated)
    );
    assert_eq!(client.call("current_caller", &[]).await.status, 200);
}

async fn sessions_expire_when_idle_and_absolutely(db: &DatabaseConnection) {
    let server = TestServer::start(db).await;
    setup_superadmin(&server, "ops@nest.test").await;

    // Idle: 29 minutes between requests keeps the session; 31 ends it.
    let (mut client, _) = login(&server, "ops@nest.test", PASSWORD).await;
    server.clock.advance(Duration::minutes(29));
    assert_eq!(client.call("current_caller", &[]).await.status, 200);
    server.clock.advance(Duration::minutes(29));
    assert_eq!(client.call("current_caller", &[]).await.status, 200);
    server.clock.advance(Duration::minutes(31));
    assert_eq!(
        client.call("current_caller", &[]).await.error(),
        Some(AppError::Unauthenticated)
    );

    // Absolute: active every 25 minutes, the session still ends 12 hours after login.
    let (mut client, _) = login(&server, "ops@nest.test", PASSWORD).await;
    for _ in 0..28 {
        server.clock.advance(Duration::minutes(25));
        assert_eq!(
            client.call("current_caller", &[]).await.status,
            200,
            "within 12 hours"
        );
    }
    server.clock.advance(Duration::minutes(25)); // 12 h 5 min after login
    assert_eq!(
        client.call("current_caller", &[]).await.error(),
        Some(AppError::Unauthenticated)
    );
}

async fn logout_deletes_the_session_server_side(db: &DatabaseConnection) {
    let server = TestServer::start(db).await;
    setup_superadmin(&server, "ops@nest.test").await;
    let (mut client, _) = login(&server, "ops@nest.test", PASSWORD).await;
    let cookie = client.cookie.clone().unwrap();
    let id = cookie.split_once('=').unwrap().1.to_owned();
    assert!(
        sessions::Entity::find_by_id(id.clone())
            .one(db)
            .await
            .unwrap()
            .is_some()
    );

    assert_eq!(client.call("logout", &[]).await.status, 200);
    assert!(
        sessions::Entity::find_by_id(id)
            .one(db)
            .await
            .unwrap()
            .is_none(),
        "row deleted"
    );
    let mut replay = server.client();
    replay.cookie = Some(cookie);
    assert_eq!(
        replay.call("current_caller", &[]).await.error(),
        Some(AppError::Unauthenticated)
    );
    assert_eq!(audit_count(db, "auth.logout").await, 1);
}

async fn a_removed_admin_is_signed_out_and_then_unauthorized(db: &DatabaseConnection) {
    let server = TestServer::start(db).await;
    let mut root = setup_superadmin(&server, "root@nest.test").await;
    let added = support::add_admin(&mut root, "bee@nest.test").await;
    let bee_id = added.body["admin"]["user_id"].as_i64().unwrap().to_string();

    let (mut bee, reply) = login(&server, "bee@nest.test", PASSWORD).await;
    assert_eq!(reply.body, serde_json::json!("/"));
    assert_eq!(bee.get("/").await.0, 200);
    // An admin (not superadmin) cannot manage admins.
    assert!(matches!(
        bee.call("list_admins", &[]).await.error(),
        Some(AppError::Forbidden(_))
    ));

    assert_eq!(
        root.call("remove_admin", &[("user_id", &bee_id)])
            .await
            .status,
        200
    );
    assert_eq!(
        bee.call("current_caller", &[]).await.error(),
        Some(AppError::Unauthenticated),
        "session ended"
    );

    let (mut bee, reply) = login(&server, "bee@nest.test", PASSWORD).await;
    assert_eq!(reply.body, serde_json::json!("/unauthorized"));
    assert_eq!(bee.get("/").await, (303, Some("/unauthorized".to_owned())));
    let status = bee.call("platform_status", &[]).await;
    assert!(
        matches!(status.error(), Some(AppError::Forbidden(_))),
        "{status:?}"
    );
}

async fn the_last_superadmin_stays_and_nobody_removes_themselves(db: &DatabaseConnection) {
    let server = TestServer::start(db).await;
    let mut root = setup_superadmin(&server, "root@nest.test").await;
    let root_id = root.call("current_caller", &[]).await.body["user_id"]
        .as_i64()
        .unwrap()
        .to_string();

    let demote_self = root
        .call(
            "change_admin_role",
            &[("user_id", &root_id), ("role", "admin")],
        )
        .await;
    assert!(
        matches!(demote_self.error(), Some(AppError::Conflict(m)) if m.contains("last superadmin"))
    );
    let remove_self = root.call("remove_admin", &[("user_id", &root_id)]).await;
    assert!(matches!(remove_self.error(), Some(AppError::Conflict(m)) if m.contains("yourself")));
    assert_eq!(
        audit_count(db, "admin.role_changed").await,
        0,
        "no audit row for a refused action"
    );
    assert_eq!(audit_count(db, "admin.removed").await, 0);

    let second = root
        .call(
            "add_admin",
            &[
                ("email", "two@nest.test"),
                ("role", "superadmin"),
                ("initial", "Typed"),
                ("password", PASSWORD),
            ],
        )
        .await;
    let two_id = second.body["admin"]["user_id"]
        .as_i64()
        .unwrap()
        .to_string();
    let (mut two, _) = login(&server, "two@nest.test", PASSWORD).await;
    assert_eq!(
        two.call(
            "change_admin_role",
            &[("user_id", &root_id), ("role", "admin")]
        )
        .await
        .status,
        200
    );
    assert_eq!(
        root.call("current_caller", &[]).await.error(),
        Some(AppError::Unauthenticated),
        "role change ends sessions"
    );
    let last = two
        .call(
            "change_admin_role",
            &[("user_id", &two_id), ("role", "admin")],
        )
        .await;
    assert!(matches!(last.error(), Some(AppError::Conflict(_))));
    assert_eq!(audit_count(db, "admin.role_changed").await, 1);

    // A duplicate add fails and leaves no audit row.
    let before = audit_count(db, "admin.added").await;
    let dup = two
        .call(
            "add_admin",
            &[
                ("email", "two@nest.test"),
                ("role", "admin"),
                ("initial", "Link"),
            ],
        )
        .await;
    assert!(
        matches!(dup.error(), Some(AppError::Conflict(_))),
        "{dup:?}"
    );
    assert_eq!(audit_count(db, "admin.added").await, before);
}

async fn a_one_time_link_sets_a_password_once(db: &DatabaseConnection) {
    let server = TestServer::start(db).await;
    let mut root = setup_superadmin(&server, "root@nest.test").await;
    let added = root
        .call(
            "add_admin",
            &[
                ("email", "new@nest.test"),
                ("role", "admin"),
                ("initial", "Link"),
            ],
        )
        .await;
    let path = added.body["set_password_path"].as_str().unwrap().to_owned();
    let token = path.split_once("token=").unwrap().1.to_owned();
    let (_, before) = login(&server, "new@nest.test", PASSWORD).await;
    assert!(before.error().is_some(), "no password yet");

    let mut anon = server.client();
    let set = anon
        .call(
            "set_password",
            &[
                ("token", &token),
                ("password", PASSWORD),
                ("confirm", PASSWORD),
            ],
        )
        .await;
    assert_eq!(set.status, 200, "{set:?}");
    let reuse = anon
        .call(
            "set_password",
            &[
                ("token", &token),
                ("password", PASSWORD),
                ("confirm", PASSWORD),
            ],
        )
        .await;
    assert!(reuse.error().unwrap().for_field("token").is_some());
    let (_, after) = login(&server, "new@nest.test", PASSWORD).await;
    assert_eq!(after.status, 200);
}

async fn the_audit_log_is_append_only_and_filterable(db: &DatabaseConnection) {
    let server = TestServer::start(db).await;
    let mut root = setup_superadmin(&server, "root@nest.test").await;
    login(&server, "root@nest.test", "wrong password 1").await;
    let page = root
        .call("list_audit", &[("filter[action]", "auth.login_failed")])
        .await;
    assert_eq!(page.status, 200, "{page:?}");
    let entries = page.body["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0]["actor_email"], "root@nest.test");
    assert!(
        page.body["actions"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a == "setup.completed")
    );

    let update = db
        .execute_unprepared("UPDATE audit_log SET action = 'x'")
        .await;
    assert!(update.is_err(), "UPDATE refused");
    let delete = db.execute_unprepared("DELETE FROM audit_log").await;
    assert!(delete.is_err(), "DELETE refused");
}

async fn many_failures_from_one_address_block_it_for_every_account(db: &DatabaseConnection) {
    let server = TestServer::start(db).await;
    setup_superadmin(&server, "ops@nest.test").await;
    for i in 0..20 {
        let (_, reply) = login(&server, &format!("guess{i}@nest.test"), "wrong password 1").await;
        assert_eq!(reply.status, 422, "attempt {i}: {reply:?}");
    }
    let (_, blocked) = login(&server, "ops@nest.test", PASSWORD).await;
    assert!(
        matches!(blocked.error(), Some(AppError::RateLimited(_))),
        "{blocked:?}"
    );
}

async fn expired_sessions_are_purged(db: &DatabaseConnection) {
    use tower_sessions::ExpiredDeletion;
    let server = TestServer::start(db).await;
    setup_superadmin(&server, "ops@nest.test").await;
    login(&server, "ops@nest.test", PASSWORD).await;
    assert_eq!(sessions::Entity::find().count(db).await.unwrap(), 2);
    let store = server::admins::session_store::DbSessionStore::new(
        db.clone(),
        server.clock.clone(),
        Duration::minutes(30),
    );
    store.delete_expired().await.unwrap();
    assert_eq!(
        sessions::Entity::find().count(db).await.unwrap(),
        2,
        "live sessions stay"
    );
    server.clock.advance(Duration::minutes(31));
    store.delete_expired().await.unwrap();
    assert_eq!(
        sessions::Entity::find().count(db).await.unwrap(),
        0,
        "expired sessions are gone"
    );
}

async fn the_audit_log_pages_by_cursor_newest_first(db: &DatabaseConnection) {
    let server = TestServer::start(db).await;
    let mut root = setup_superadmin(&server, "root@nest.test").await;
    let actor = server::audit::Actor {
        user_id: None,
        email: "seed@nest.test".into(),
        ip: None,
        user_agent: None,
    };
    for i in 0..120 {
        server::audit::record(
            db,
            &actor,
            "test.seeded",
            ("thing", Some(i.to_string())),
            serde_json::json!({"i": i}),
            server.clock.now(),
        )
        .await
        .unwrap();
    }
    let mut seen = Vec::new();
    let mut before: Option<String> = None;
    loop {
        let mut args = vec![("filter[action]", "test.seeded".to_owned())];
        if let Some(b) = &before {
            args.push(("before", b.clone()));
        }
        let args: Vec<(&str, &str)> = args.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let page = root.call("list_audit", &args).await;
        assert_eq!(page.status, 200, "{page:?}");
        let ids: Vec<i64> = page.body["entries"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["id"].as_i64().unwrap())
            .collect();
        assert!(ids.len() <= 50);
        seen.extend(ids);
        match page.body["next_cursor"].as_i64() {
            Some(c) => before = Some(c.to_string()),
            None => break,
        }
    }
    assert_eq!(seen.len(), 120, "every row exactly once");
    assert!(
        seen.windows(2).all(|w| w[0] > w[1]),
        "newest first, no overlap"
    );
}

async fn over_https_the_cookie_is_host_prefixed_and_secure_and_hsts_is_sent(
    db: &DatabaseConnection,
) {
    server::install_tls_provider();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let config = server::config::Config::from_lookup(|name| match name {
        "NEST_ADDR" => Some(addr.to_string()),
        "SITE_URL" => Some("https://nest.example.com".to_owned()),
        "NEST_SECRETS_KEY" => Some(support::TEST_SECRETS_KEY.to_owned()),
        _ => None,
    })
    .unwrap();
    let app = server::state::App::start(config, db.clone()).await.unwrap();
    let router = server::http::router(app);
    tokio::spawn(async move {
        axum::serve(
            listener,
            router.into_make_service_with_connect_info::<std::net::SocketAddr>(),
        )
        .await
        .unwrap();
    });
    let response = reqwest::Client::new()
        .post(format!("http://{addr}/api/setup"))
        .header("host", "nest.example.com")
        .header("content-type", "application/x-www-form-urlencoded")
        .body("email=ops%40nest.test&password=correct+horse+battery+9&confirm=correct+horse+battery+9")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let cookie = response.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(cookie.starts_with("__Host-nest_session="), "{cookie}");
    for attribute in ["HttpOnly", "SameSite=Strict", "Secure", "Path=/"] {
        assert!(cookie.contains(attribute), "{cookie} lacks {attribute}");
    }
    assert!(!cookie.contains("Domain="), "host-only");
    assert!(
        response.headers()["strict-transport-security"]
            .to_str()
            .unwrap()
            .contains("max-age=63072000")
    );
}

on_both_databases!(
    many_failures_from_one_address_block_it_for_every_account,
    expired_sessions_are_purged,
    the_audit_log_pages_by_cursor_newest_first,
    over_https_the_cookie_is_host_prefixed_and_secure_and_hsts_is_sent,
    setup_race_creates_exactly_one_admin,
    before_setup_every_page_leads_to_setup,
    setup_validates_its_input_and_writes_nothing_on_error,
    wrong_passwords_lock_the_account_and_the_lock_survives_a_restart,
    the_session_id_rotates_at_login_and_the_old_one_is_dead,
    sessions_expire_when_idle_and_absolutely,
    logout_deletes_the_session_server_side,
    a_removed_admin_is_signed_out_and_then_unauthorized,
    the_last_superadmin_stays_and_nobody_removes_themselves,
    a_one_time_link_sets_a_password_once,
    the_audit_log_is_append_only_and_filterable,
);

// ---- Two-factor sign-in (TOTP) ----

/// The current code of a base32 TOTP secret at `at` (what an authenticator app shows).
fn code_at(secret: &str, at: chrono::DateTime<chrono::Utc>) -> String {
    let secret = totp_rs::Secret::try_from_base32(secret).unwrap();
    let totp = totp_rs::Builder::new()
        .with_secret(secret)
        .with_account_name("test")
        .build()
        .unwrap();
    totp.generate(u64::try_from(at.timestamp()).unwrap())
        .to_string()
}

/// Enrols an authenticator for the signed-in `client`; returns its secret and recovery codes.
/// The confirming code's step is used up: the next code is usable 30 s later.
async fn enrol(server: &TestServer, client: &mut support::Client) -> (String, Vec<String>) {
    let begun = client.call("two_factor_begin", &[]).await;
    assert_eq!(begun.status, 200, "{begun:?}");
    let secret = begun.body["secret"].as_str().unwrap().to_owned();
    assert!(
        begun.body["uri"]
            .as_str()
            .unwrap()
            .starts_with("otpauth://totp/Nest:")
    );
    assert!(begun.body["qr_svg"].as_str().unwrap().starts_with("<svg"));
    let code = code_at(&secret, server.clock.now());
    let confirmed = client.call("two_factor_confirm", &[("code", &code)]).await;
    assert_eq!(confirmed.status, 200, "{confirmed:?}");
    let codes: Vec<String> = serde_json::from_value(confirmed.body).unwrap();
    assert_eq!(codes.len(), 10);
    server.clock.advance(Duration::seconds(30));
    (secret, codes)
}

async fn signed_in(client: &mut support::Client) -> bool {
    client.call("current_caller", &[]).await.status == 200
}

async fn an_admin_enrols_an_authenticator_and_signs_in_with_a_code_once(db: &DatabaseConnection) {
    use server::entities::{recovery_codes, totp_factors};
    let server = TestServer::start(db).await;
    let mut root = setup_superadmin(&server, "ops@nest.test").await;

    // A wrong code does not turn it on.
    let begun = root.call("two_factor_begin", &[]).await;
    let secret = begun.body["secret"].as_str().unwrap().to_owned();
    let wrong = root.call("two_factor_confirm", &[("code", "000000")]).await;
    assert!(
        wrong.error().unwrap().for_field("code").is_some(),
        "{wrong:?}"
    );
    let status = root.call("two_factor_status", &[]).await;
    assert!(status.body["enabled_at"].is_null(), "{status:?}");
    let confirmed = root
        .call(
            "two_factor_confirm",
            &[("code", &code_at(&secret, server.clock.now()))],
        )
        .await;
    assert_eq!(confirmed.status, 200, "{confirmed:?}");
    let codes: Vec<String> = serde_json::from_value(confirmed.body).unwrap();
    assert_eq!(audit_count(db, "auth.two_factor_enabled").await, 1);

    // At rest: the secret is sealed, the recovery codes are hashes.
    let factor = totp_factors::Entity::find().one(db).await.unwrap().unwrap();
    let raw = totp_rs::Secret::try_from_base32(&secret).unwrap();
    assert!(
        !factor
            .secret_ciphertext
            .windows(raw.len())
            .any(|w| w == raw.as_ref()),
        "the secret is stored in clear"
    );
    assert!(factor.confirmed_at.is_some());
    let stored: Vec<String> = recovery_codes::Entity::find()
        .all(db)
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.code_hash)
        .collect();
    assert_eq!(stored.len(), 10);
    for code in &codes {
        assert!(!stored.iter().any(|h| h.contains(&code.replace('-', ""))));
    }

    // The confirming code was used: the same code does not sign in.
    let used = code_at(&secret, server.clock.now());
    let (mut replay, outcome) = login(&server, "ops@nest.test", PASSWORD).await;
    assert_eq!(outcome.body, "/login/code?redirect=%2F", "{outcome:?}");
    assert!(
        !signed_in(&mut replay).await,
        "a password alone signs nobody in"
    );
    let refused = replay.call("login_code", &[("code", &used)]).await;
    assert_eq!(
        refused.error().unwrap().for_field("code"),
        Some("That code is not valid (or was already used).".to_owned()),
    );
    assert!(!signed_in(&mut replay).await);

    // The next step's code signs in, once.
    server.clock.advance(Duration::seconds(30));
    let next = code_at(&secret, server.clock.now());
    let ok = replay
        .call("login_code", &[("code", &next), ("redirect", "/audit")])
        .await;
    assert_eq!(ok.status, 200, "{ok:?}");
    assert_eq!(ok.body, "/audit");
    assert!(signed_in(&mut replay).await);
    let (mut again, _) = login(&server, "ops@nest.test", PASSWORD).await;
    let twice = again.call("login_code", &[("code", &next)]).await;
    assert!(
        twice.error().unwrap().for_field("code").is_some(),
        "{twice:?}"
    );

    // A code one step old is still accepted (clock drift), two steps old is not.
    server.clock.advance(Duration::seconds(30));
    let (mut late, _) = login(&server, "ops@nest.test", PASSWORD).await;
    let stale = code_at(&secret, server.clock.now() - Duration::seconds(60));
    assert!(late.call("login_code", &[("code", &stale)]).await.status >= 400);
    let drifted = code_at(&secret, server.clock.now() + Duration::seconds(30));
    assert_eq!(
        late.call("login_code", &[("code", &drifted)]).await.status,
        200
    );
    let logins = audit_log::Entity::find()
        .filter(audit_log::Column::Action.eq("auth.login"))
        .all(db)
        .await
        .unwrap();
    assert!(
        logins.iter().any(|r| r.detail["second_factor"] == "totp"),
        "{logins:?}"
    );
}

async fn recovery_codes_sign_in_once_each(db: &DatabaseConnection) {
    let server = TestServer::start(db).await;
    let mut root = setup_superadmin(&server, "ops@nest.test").await;
    let (_, codes) = enrol(&server, &mut root).await;

    let (mut first, _) = login(&server, "ops@nest.test", PASSWORD).await;
    // Typed with capitals and spaces, as people do.
    let typed = format!(" {} ", codes[3].to_uppercase());
    let ok = first.call("login_code", &[("code", &typed)]).await;
    assert_eq!(ok.status, 200, "{ok:?}");
    let status = first.call("two_factor_status", &[]).await;
    assert_eq!(status.body["recovery_codes_left"], 9);

    let (mut second, _) = login(&server, "ops@nest.test", PASSWORD).await;
    let reused = second.call("login_code", &[("code", &codes[3])]).await;
    assert!(
        reused.error().unwrap().for_field("code").is_some(),
        "{reused:?}"
    );
    assert!(!signed_in(&mut second).await);

    // New codes replace the old ones (confirmed with a current code; a recovery code is one).
    let refused = first
        .call("recovery_codes_regenerate", &[("code", "000000")])
        .await;
    assert!(
        refused.error().unwrap().for_field("code").is_some(),
        "{refused:?}"
    );
    let unused_old = codes[4].clone();
    let regenerated = first
        .call("recovery_codes_regenerate", &[("code", &codes[5])])
        .await;
    assert_eq!(regenerated.status, 200, "{regenerated:?}");
    let new_codes: Vec<String> = serde_json::from_value(regenerated.body).unwrap();
    assert_eq!(new_codes.len(), 10);
    let (mut third, _) = login(&server, "ops@nest.test", PASSWORD).await;
    let old = third.call("login_code", &[("code", &unused_old)]).await;
    assert!(old.status >= 400, "old codes stop working: {old:?}");
    assert_eq!(
        third
            .call("login_code", &[("code", &new_codes[0])])
            .await
            .status,
        200
    );
    assert_eq!(audit_count(db, "auth.recovery_codes_regenerated").await, 1);
}

async fn wrong_codes_count_toward_the_lockout_and_a_pending_password_expires(
    db: &DatabaseConnection,
) {
    let server = TestServer::start(db).await;
    let mut root = setup_superadmin(&server, "ops@nest.test").await;
    let (secret, _) = enrol(&server, &mut root).await;

    // The password step counts until its code succeeds: with 4 wrong codes, 5 failures.
    let (mut guesser, _) = login(&server, "ops@nest.test", PASSWORD).await;
    for _ in 0..4 {
        let reply = guesser.call("login_code", &[("code", "123456")]).await;
        assert_eq!(reply.status, 422, "{reply:?}");
    }
    let right = code_at(&secret, server.clock.now());
    let locked = guesser.call("login_code", &[("code", &right)]).await;
    assert_eq!(locked.status, 429, "{locked:?}");
    assert!(!signed_in(&mut guesser).await);
    assert_eq!(audit_count(db, "auth.second_factor_failed").await, 4);
    let (_, password_too) = login(&server, "ops@nest.test", PASSWORD).await;
    assert_eq!(
        password_too.status, 429,
        "the account is locked for passwords too"
    );

    // After the window, a verified password waits 5 minutes for its code, no longer.
    server.clock.advance(Duration::minutes(16));
    let (mut slow, outcome) = login(&server, "ops@nest.test", PASSWORD).await;
    assert_eq!(outcome.status, 200, "{outcome:?}");
    server.clock.advance(Duration::minutes(6));
    let late = slow
        .call(
            "login_code",
            &[("code", &code_at(&secret, server.clock.now()))],
        )
        .await;
    assert!(
        late.error()
            .unwrap()
            .for_field("form")
            .unwrap()
            .contains("expired"),
        "{late:?}"
    );
    assert!(!signed_in(&mut slow).await);
}

async fn required_two_factor_sends_an_admin_to_enrolment_after_the_password(
    db: &DatabaseConnection,
) {
    let server = TestServer::start(db).await;
    let mut root = setup_superadmin(&server, "ops@nest.test").await;
    support::add_admin(&mut root, "ada@nest.test").await;
    support::add_admin(&mut root, "bob@nest.test").await;
    let (mut bob, _) = login(&server, "bob@nest.test", PASSWORD).await;
    assert!(signed_in(&mut bob).await);

    // Requiring it first needs the superadmin's own authenticator.
    let early = root
        .call("set_two_factor_required", &[("required", "true")])
        .await;
    assert!(
        matches!(early.error(), Some(AppError::Conflict(_))),
        "{early:?}"
    );
    let (root_secret, _) = enrol(&server, &mut root).await;
    let on = root
        .call("set_two_factor_required", &[("required", "true")])
        .await;
    assert_eq!(on.status, 200, "{on:?}");
    assert_eq!(audit_count(db, "settings.two_factor_required").await, 1);
    // Admins without an authenticator are signed out at once (not at their next sign-in);
    // the superadmin, who has one, stays.
    assert!(!signed_in(&mut bob).await, "signed out by the policy");
    assert!(signed_in(&mut root).await);
    // Admins cannot change the policy.
    let (mut ada, outcome) = login(&server, "ada@nest.test", PASSWORD).await;
    assert_eq!(outcome.body, "/login/enrol?redirect=%2F", "{outcome:?}");
    assert!(!signed_in(&mut ada).await, "not signed in before enrolment");
    assert_eq!(
        ada.call("list_vpses", &[("query[include_deleted]", "false")])
            .await
            .status,
        401
    );

    let begun = ada.call("two_factor_begin", &[]).await;
    assert_eq!(begun.status, 200, "{begun:?}");
    let secret = begun.body["secret"].as_str().unwrap().to_owned();
    let confirmed = ada
        .call(
            "two_factor_confirm",
            &[("code", &code_at(&secret, server.clock.now()))],
        )
        .await;
    assert_eq!(confirmed.status, 200, "{confirmed:?}");
    assert!(signed_in(&mut ada).await, "enrolling completes the sign-in");
    let policy = ada
        .call("set_two_factor_required", &[("required", "false")])
        .await;
    assert!(
        matches!(policy.error(), Some(AppError::Forbidden(_))),
        "{policy:?}"
    );

    // While required, nobody turns theirs off.
    server.clock.advance(Duration::seconds(30));
    let off = root
        .call(
            "two_factor_disable",
            &[("code", &code_at(&root_secret, server.clock.now()))],
        )
        .await;
    assert!(
        matches!(off.error(), Some(AppError::Conflict(_))),
        "{off:?}"
    );
}

async fn a_superadmin_resets_another_admins_two_factor(db: &DatabaseConnection) {
    let server = TestServer::start(db).await;
    let mut root = setup_superadmin(&server, "ops@nest.test").await;
    root.call(
        "add_admin",
        &[
            ("email", "ada@nest.test"),
            ("role", "admin"),
            ("initial", "Typed"),
            ("password", PASSWORD),
        ],
    )
    .await;
    let (mut ada, _) = login(&server, "ada@nest.test", PASSWORD).await;
    let (_, _) = enrol(&server, &mut ada).await;
    let admins = root.call("list_admins", &[]).await;
    let ada_row = admins
        .body
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["email"] == "ada@nest.test")
        .unwrap()
        .clone();
    assert_eq!(ada_row["two_factor"], true);
    let ada_id = ada_row["user_id"].as_i64().unwrap().to_string();

    // Only superadmins, never on themselves.
    let by_admin = ada.call("reset_two_factor", &[("user_id", &ada_id)]).await;
    assert!(
        matches!(by_admin.error(), Some(AppError::Forbidden(_))),
        "{by_admin:?}"
    );
    let root_id = admins
        .body
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["email"] == "ops@nest.test")
        .unwrap()["user_id"]
        .as_i64()
        .unwrap()
        .to_string();
    let own = root
        .call("reset_two_factor", &[("user_id", &root_id)])
        .await;
    assert!(
        matches!(own.error(), Some(AppError::Conflict(_))),
        "{own:?}"
    );

    let reset = root.call("reset_two_factor", &[("user_id", &ada_id)]).await;
    assert_eq!(reset.status, 200, "{reset:?}");
    assert!(!signed_in(&mut ada).await, "the reset ends their sessions");
    let rows = audit_log::Entity::find()
        .filter(audit_log::Column::Action.eq("admin.two_factor_reset"))
        .all(db)
        .await
        .unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].target_id.as_deref(), Some(ada_id.as_str()));
    let again = root.call("reset_two_factor", &[("user_id", &ada_id)]).await;
    assert!(
        matches!(again.error(), Some(AppError::Conflict(_))),
        "{again:?}"
    );

    // Without the policy, the password alone signs them in again.
    let (mut back, outcome) = login(&server, "ada@nest.test", PASSWORD).await;
    assert_eq!(outcome.body, "/", "{outcome:?}");
    assert!(signed_in(&mut back).await);
}

on_both_databases!(
    an_admin_enrols_an_authenticator_and_signs_in_with_a_code_once,
    recovery_codes_sign_in_once_each,
    wrong_codes_count_toward_the_lockout_and_a_pending_password_expires,
    required_two_factor_sends_an_admin_to_enrolment_after_the_password,
    a_superadmin_resets_another_admins_two_factor,
);
