//! Provisioning overhead: time from approving a signup to the organization being `active`, with
//! the simulated cloud's boot and action delays at zero (so what is measured is Nest's own
//! engine: claiming, database writes, Hetzner calls over loopback, action polling, smoke test),
//! and the number of Hetzner API calls per successful `create`.
//!
//! `cargo bench -p server --bench provisioning` (release profile, SQLite).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use app::models::{OrgEvent, OrgStatus};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use server::audit::Actor;
use server::config::{Config, DatabaseUrl};
use server::entities::{organizations, tiers};
use server::organizations::{EventArgs, NewOrganization};
use server::state::App;

const ORGS: usize = 20;

#[tokio::main]
async fn main() {
    server::install_tls_provider();
    let dir = std::env::temp_dir().join(format!("nest-bench-prov-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let url = DatabaseUrl::parse(&format!("sqlite://{}/nest.db", dir.display())).unwrap();
    let db = server::db::connect(&url).await.unwrap();
    server::db::migrate_up(&db).await.unwrap();
    server::seed::ensure_reference_data(&db, &Default::default())
        .await
        .unwrap();
    let config = Config::from_lookup(|n| match n {
        "NEST_SECRETS_KEY" => Some("00".repeat(32)),
        "NEST_SIM_BOOT_DELAY_MS" | "NEST_SIM_ACTION_DELAY_MS" => Some("0".to_owned()),
        "NEST_SIM_FIRST_IP" => Some("127.201.0.2".to_owned()),
        _ => None,
    })
    .unwrap();
    let app = App::start(config, db.clone()).await.unwrap();
    let engine = app.worker();
    let starter = tiers::Entity::find()
        .filter(tiers::Column::Code.eq("starter"))
        .one(&db)
        .await
        .unwrap()
        .unwrap();
    let actor = Actor {
        user_id: None,
        email: "bench@nest.test".into(),
        ip: None,
        user_agent: None,
    };
    let mut times: Vec<Duration> = Vec::new();
    let calls_before = app.integrations.hetzner.calls();
    for i in 0..ORGS {
        let org = app
            .organizations()
            .create(
                &actor,
                NewOrganization {
                    name: format!("Bench {i}"),
                    slug: format!("bench-{i}"),
                    owner_email: format!("o{i}@bench.test"),
                    tier_id: starter.id,
                    region: "nbg1".into(),
                },
                false,
            )
            .await
            .unwrap();
        let started = Instant::now();
        app.organizations()
            .apply(&actor, org.id, OrgEvent::Approve, EventArgs::default())
            .await
            .unwrap();
        engine.run_until_idle().await.unwrap();
        times.push(started.elapsed());
        let status = organizations::Entity::find_by_id(org.id)
            .one(&db)
            .await
            .unwrap()
            .unwrap()
            .status;
        assert_eq!(status, OrgStatus::Active);
    }
    let calls = app.integrations.hetzner.calls() - calls_before;
    times.sort();
    println!(
        "approve → active (simulated delays 0): p50 {:.0} ms, p95 {:.0} ms, max {:.0} ms over {ORGS} creates",
        times[ORGS / 2].as_secs_f64() * 1e3,
        times[(ORGS * 95) / 100 - 1].as_secs_f64() * 1e3,
        times[ORGS - 1].as_secs_f64() * 1e3,
    );
    println!(
        "Hetzner API calls per successful create: {:.1} ({calls} calls for {ORGS} creates)",
        calls as f64 / ORGS as f64
    );
    db.close().await.unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}
