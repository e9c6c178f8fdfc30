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
