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
    let added = root
        .call(
            "add_admin",
            &[
                ("email", "bee@nest.test"),
                ("role", "admin"),
                ("initial", "Typed"),
                ("password", PASSWORD),
            ],
        )
        .await;
    assert_eq!(added.status, 200, "{added:?}");
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
