//! Routing against a real Caddy (Debian's `caddy`, started here on loopback ports with the base
//! config from `caddy/caddy.json`): after `create` a request with the org's host reaches that
//! org's simulated web service; suspend stops it, resume restores it, a Caddy restart loses the
//! routes and Nest's reconciliation re-applies them; delete removes the route.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[macro_use]
mod support;

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use app::models::{OrgEvent, OrgStatus};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use server::audit::Actor;
use server::entities::{organizations, tiers};
use server::organizations::{EventArgs, NewOrganization};
use server::state::App;

const CADDY: &str = "/usr/bin/caddy";

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

struct Caddy {
    child: Child,
    dir: std::path::PathBuf,
    http: u16,
}

impl Caddy {
    async fn start(dir: &std::path::Path, admin: u16, http: u16) -> Self {
        let base: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../caddy/caddy.json"))
                .unwrap(),
        )
        .unwrap();
        let mut config = base;
        config["admin"]["listen"] = format!("127.0.0.1:{admin}").into();
        config["apps"]["http"]["servers"]["nest"]["listen"] =
            serde_json::json!([format!("127.0.0.1:{http}")]);
        let file = dir.join("caddy.json");
        std::fs::write(&file, config.to_string()).unwrap();
        let child = Command::new(CADDY)
            .args(["run", "--config"])
            .arg(&file)
            .env("HOME", dir)
            .env("XDG_DATA_HOME", dir.join("data"))
            .env("XDG_CONFIG_HOME", dir.join("config"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let caddy = Self {
            child,
            dir: dir.to_owned(),
            http,
        };
        for _ in 0..100 {
            if reqwest::get(format!("http://127.0.0.1:{admin}/config/"))
                .await
                .is_ok()
            {
                return caddy;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("caddy did not start");
    }

    fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// GET / through Caddy with the given Host; returns the status and body.
    async fn get(&self, host: &str) -> (u16, String) {
        let response = reqwest::Client::new()
            .get(format!("http://127.0.0.1:{}/", self.http))
            .header("host", host)
            .send()
            .await
            .unwrap();
        (response.status().as_u16(), response.text().await.unwrap())
    }
}

impl Drop for Caddy {
    fn drop(&mut self) {
        self.stop();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn caddy_follows_create_suspend_resume_restart_and_delete() {
    if !std::path::Path::new(CADDY).exists() {
        assert!(
            std::env::var("CI").is_err(),
            "{CADDY} is missing: .ci/run installs Debian's caddy"
        );
        eprintln!("SKIPPED: {CADDY} is not installed");
        return;
    }
    server::install_tls_provider();
    let t = support::TestDb::migrated(support::Engine::Sqlite)
        .await
        .unwrap();
    let dir = std::env::temp_dir().join(format!("nest-caddy-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (admin, http) = (free_port(), free_port());
    let mut caddy = Caddy::start(&dir, admin, http).await;

    let admin_url = format!("http://127.0.0.1:{admin}");
    let config = support::test_config(&[
        ("CADDY_ADMIN_URL", &admin_url),
        ("NEST_BASE_DOMAIN", "nest.test"),
    ]);
    let app = App::start(config, t.db.clone()).await.unwrap();
    let mut flows = app.provisioning_config();
    flows.smoke_interval = Duration::from_millis(50);
    let engine = app.worker_with(app.queue_config(), app.registry(app.provisioner(flows)));
    let actor = Actor {
        user_id: None,
        email: "ops@nest.test".into(),
        ip: None,
        user_agent: None,
    };
    let starter = tiers::Entity::find()
        .filter(tiers::Column::Code.eq("starter"))
        .one(&t.db)
        .await
        .unwrap()
        .unwrap();
    let org = app
        .organizations()
        .create(
            &actor,
            NewOrganization {
                name: "Routed".into(),
                slug: "routed".into(),
                owner_email: "o@routed.test".into(),
                tier_id: starter.id,
                region: "fsn1".into(),
            },
            true,
        )
        .await
        .unwrap();
    let host = "routed.nest.test";
    assert_eq!(
        caddy.get(host).await.0,
        404,
        "no route before the org is active"
    );

    engine.run_until_idle().await.unwrap();
    let status = organizations::Entity::find_by_id(org.id)
        .one(&t.db)
        .await
        .unwrap()
        .unwrap()
        .status;
    assert_eq!(status, OrgStatus::Active);
    let (code, body) = caddy.get(host).await;
    assert_eq!(code, 200, "{body}");
    assert!(body.contains("nest-routed"), "{body}");
    assert_eq!(caddy.get("other.nest.test").await.0, 404);

    let act = |event| {
        let app = app.clone();
        let actor = actor.clone();
        async move {
            app.organizations()
                .apply(&actor, org.id, event, EventArgs::default())
                .await
                .unwrap();
        }
    };
    act(OrgEvent::Suspend).await;
    assert_eq!(caddy.get(host).await.0, 404, "suspended: not served");
    act(OrgEvent::Resume).await;
    assert_eq!(caddy.get(host).await.0, 200, "resumed: served again");

    // A Caddy restart without --resume forgets routes added through the API.
    caddy.stop();
    let mut caddy = Caddy::start(&dir, admin, http).await;
    assert_eq!(caddy.get(host).await.0, 404);
    let outcome = app.routing().reconcile().await.unwrap();
    assert!(!outcome.in_sync);
    assert_eq!(outcome.added, 1);
    assert_eq!(caddy.get(host).await.0, 200, "re-applied after the restart");
    assert!(app.routing().reconcile().await.unwrap().in_sync);

    act(OrgEvent::Delete).await;
    assert_eq!(
        caddy.get(host).await.0,
        404,
        "deleting: routing off at once"
    );
    engine.run_until_idle().await.unwrap();
    assert!(app.routing().reconcile().await.unwrap().in_sync);

    caddy.stop();
    let _ = std::fs::remove_dir_all(&caddy.dir);
    t.cleanup().await;
}
