//! The live-update channel `/api/events` over a real socket: refused without a session, and a
//! signed-in admin's stream carries a change as soon as an organization changes.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[macro_use]
mod support;

use std::time::Duration;

use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter};
use server::audit::Actor;
use server::entities::tiers;
use server::organizations::NewOrganization;

async fn the_event_stream_needs_an_admin_and_carries_changes(db: &DatabaseConnection) {
    let server = support::TestServer::start(db).await;
    let anon = reqwest::get(format!("{}/api/events", server.base))
        .await
        .unwrap();
    assert_eq!(anon.status(), 401);

    let admin = support::setup_superadmin(&server, "root@nest.test").await;
    let mut stream = admin
        .http
        .get(format!("{}/api/events", server.base))
        .header("cookie", admin.cookie.clone().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status(), 200);
    assert_eq!(
        stream.headers()["content-type"].to_str().unwrap(),
        "text/event-stream"
    );

    let starter = tiers::Entity::find()
        .filter(tiers::Column::Code.eq("starter"))
        .one(db)
        .await
        .unwrap()
        .unwrap();
    let org = server
        .app
        .organizations()
        .create(
            &Actor {
                user_id: None,
                email: "ops@nest.test".into(),
                ip: None,
                user_agent: None,
            },
            NewOrganization {
                name: "Live".into(),
                slug: "live".into(),
                owner_email: "o@live.test".into(),
                tier_id: starter.id,
                region: "nbg1".into(),
            },
            false,
        )
        .await
        .unwrap();

    let expected = format!(
        "event: change\ndata: {{\"kind\":\"organization\",\"id\":{}}}",
        org.id
    );
    let mut seen = String::new();
    let found = tokio::time::timeout(Duration::from_secs(5), async {
        while let Some(chunk) = stream.chunk().await.unwrap() {
            seen.push_str(&String::from_utf8_lossy(&chunk));
            if seen.contains(&expected) {
                return true;
            }
        }
        false
    })
    .await;
    assert_eq!(found, Ok(true), "stream so far: {seen:?}");

    // A page rendered before that change (at count 0) connects with `since=0`: the stream
    // starts with a resync. A page rendered after it (at the current count) gets none.
    let current = server.app.events.seq();
    assert!(current >= 1);
    for (since, expect_resync) in [(0, true), (current, false)] {
        let mut stream = admin
            .http
            .get(format!("{}/api/events?since={since}", server.base))
            .header("cookie", admin.cookie.clone().unwrap())
            .send()
            .await
            .unwrap();
        let first = tokio::time::timeout(Duration::from_millis(500), stream.chunk()).await;
        let resynced = matches!(&first, Ok(Ok(Some(chunk))) if String::from_utf8_lossy(chunk).contains("resync"));
        assert_eq!(resynced, expect_resync, "since={since}: {first:?}");
    }
}

on_both_databases!(the_event_stream_needs_an_admin_and_carries_changes);

/// Opens `/api/events` (with `?since=` when given) as `admin` on `server`.
async fn open_stream(
    server: &support::TestServer,
    admin: &support::Client,
    since: Option<u64>,
) -> reqwest::Response {
    let query = since.map_or_else(String::new, |n| format!("?since={n}"));
    let stream = admin
        .http
        .get(format!("{}/api/events{query}", server.base))
        .header("cookie", admin.cookie.clone().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status(), 200);
    stream
}

/// Reads `stream` until it carries `expected`; panics with what it saw after 10 s.
async fn expect_on(stream: &mut reqwest::Response, expected: &str) {
    let mut seen = String::new();
    let found = tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(chunk) = stream.chunk().await.unwrap() {
            seen.push_str(&String::from_utf8_lossy(&chunk));
            if seen.contains(expected) {
                return true;
            }
        }
        false
    })
    .await;
    assert_eq!(
        found,
        Ok(true),
        "waited for {expected:?}; stream so far: {seen:?}"
    );
}

/// Whether the stream's first event (within half a second) is a resync.
async fn starts_with_resync(stream: &mut reqwest::Response) -> bool {
    let first = tokio::time::timeout(Duration::from_millis(500), stream.chunk()).await;
    matches!(&first, Ok(Ok(Some(chunk))) if String::from_utf8_lossy(chunk).contains("resync"))
}

async fn create_org(server: &support::TestServer, db: &DatabaseConnection, slug: &str) -> i64 {
    let starter = tiers::Entity::find()
        .filter(tiers::Column::Code.eq("starter"))
        .one(db)
        .await
        .unwrap()
        .unwrap();
    server
        .app
        .organizations()
        .create(
            &Actor {
                user_id: None,
                email: "ops@nest.test".into(),
                ip: None,
                user_agent: None,
            },
            NewOrganization {
                name: slug.to_uppercase(),
                slug: slug.into(),
                owner_email: format!("o@{slug}.test"),
                tier_id: starter.id,
                region: "nbg1".into(),
            },
            false,
        )
        .await
        .unwrap()
        .id
}

/// Two replicas (two `App`s, each with its own pool) on one PostgreSQL database: a change made
/// through A reaches a page connected to B; `since` from A's count means the same on B; a
/// session started on A is valid on B; B's listener survives losing its connection; a job
/// queued through A wakes B's engine.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_on_one_postgres_database_share_live_updates_and_sessions() {
    let Some(t) = support::TestDb::migrated(support::Engine::Postgres).await else {
        return;
    };
    let db_b = server::db::connect(&t.url).await.unwrap();
    let a = support::TestServer::start(&t.db).await;
    let b = support::TestServer::start(&db_b).await;
    assert!(a.app.events.is_shared() && b.app.events.is_shared());

    // Signed in on A, the same cookie works on B (sessions live in the database).
    let admin = support::setup_superadmin(&a, "root@nest.test").await;
    let mut on_b = b.client();
    on_b.cookie = admin.cookie.clone();
    let caller = on_b.call("current_caller", &[]).await;
    assert_eq!(caller.status, 200, "{caller:?}");
    assert!(
        caller.body.to_string().contains("root@nest.test"),
        "{caller:?}"
    );

    let before = a.app.events.seq();
    assert_eq!(before, b.app.events.seq(), "replicas agree at rest");
    let mut stream = open_stream(&b, &admin, None).await;
    let org = create_org(&a, &t.db, "replicated").await;
    expect_on(
        &mut stream,
        &format!("event: change\ndata: {{\"kind\":\"organization\",\"id\":{org}}}"),
    )
    .await;

    // A hears its own change through its listener too; then both count the same.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while a.app.events.seq() != b.app.events.seq() && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let now = a.app.events.seq();
    assert!(now > before);
    assert_eq!(now, b.app.events.seq());

    // A page rendered on A before the change resyncs on B; one rendered after does not.
    assert!(starts_with_resync(&mut open_stream(&b, &admin, Some(before)).await).await);
    assert!(!starts_with_resync(&mut open_stream(&b, &admin, Some(now)).await).await);

    // The database drops the listeners' connections: B reconnects, tells its pages to
    // resync (they may have missed changes), and carries A's next change.
    let admin_db = sea_orm::Database::connect(t.url.expose()).await.unwrap();
    sea_orm::ConnectionTrait::execute_unprepared(
        &admin_db,
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE datname = current_database() AND pid <> pg_backend_pid() AND query LIKE 'LISTEN%'",
    )
    .await
    .unwrap();
    admin_db.close().await.unwrap();
    expect_on(&mut stream, "{\"kind\":\"resync\"}").await;
    let second = create_org(&a, &t.db, "after-reconnect").await;
    expect_on(
        &mut stream,
        &format!("{{\"kind\":\"organization\",\"id\":{second}}}"),
    )
    .await;

    // A job queued through A wakes B's engine at once.
    use futures::FutureExt;
    let _ = b.app.events.jobs_queued().now_or_never(); // a wake-up left from the reconnection
    a.app.events.wake_jobs();
    let woke = tokio::time::timeout(Duration::from_secs(10), b.app.events.jobs_queued()).await;
    assert!(woke.is_ok(), "B's engine was not woken");

    drop(stream);
    db_b.close().await.unwrap();
    t.cleanup().await;
}
