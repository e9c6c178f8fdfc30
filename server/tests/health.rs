//! Health monitoring end to end, on SQLite and PostgreSQL: real organizations provisioned on
//! the simulator, sweeps probing its fake services over real sockets, the threshold sequence
//! (3 → alert, 6 → reboot through the queue and the Hetzner API, cooldown, recovery), a reboot
//! Hetzner refuses, the fleet breaker, which servers are checked, notifications reaching a
//! webhook receiver and an SMTP receiver started here, and the history roll-up and prune.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[macro_use]
mod support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use app::models::{AlertKind, HealthStatus, JobKind, JobState, OrgEvent, OrgStatus};
use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, PaginatorTrait, QueryFilter};
use server::audit::Actor;
use server::clock::Clock;
use server::entities::{
    audit_log, health_alerts, health_checks, health_fleet_alerts, health_incidents, health_rollups,
    jobs, organizations, vps_health, vpses,
};
use server::health::sweep::{SweepReport, Sweeper};
use server::hetzner::simulator::{Fault, Simulator};
use server::jobs::Worker;
use server::organizations::EventArgs;
use server::state::App;

struct Rig {
    app: App,
    engine: Worker,
    clock: Clock,
    sweeper: Sweeper,
}

fn actor() -> Actor {
    support::test_actor()
}

/// A Nest on the simulator whose health checks start right after a job ends (no grace) and
/// whose probes give up after 500 ms.
async fn rig(db: &DatabaseConnection, vars: &[(&str, &str)]) -> Rig {
    server::install_tls_provider();
    let clock = Clock::system();
    let mut all = vec![
        ("NEST_HEALTH_GRACE_SECS", "0"),
        ("NEST_HEALTH_PROBE_TIMEOUT_MS", "500"),
    ];
    all.extend_from_slice(vars);
    let config = support::test_config(&all);
    let app = App::start_with_clock(config, db.clone(), clock.clone())
        .await
        .unwrap();
    let mut flows = app.provisioning_config();
    flows.smoke_timeout = Duration::from_secs(3);
    flows.smoke_interval = Duration::from_millis(50);
    flows.action_timeout = Duration::from_secs(10);
    let engine = app.worker_with(app.queue_config(), app.registry(app.provisioner(flows)));
    let sweeper = app.sweeper(Arc::new(app.health_settings()));
    Rig {
        app,
        engine,
        clock,
        sweeper,
    }
}

impl Rig {
    fn sim(&self) -> &Simulator {
        self.app.integrations.simulator.as_deref().unwrap()
    }

    async fn active_org(&self, slug: &str) -> (organizations::Model, vpses::Model) {
        let org = support::create_org(&self.app, slug).await;
        self.engine.run_until_idle().await.unwrap();
        let org = organizations::Entity::find_by_id(org.id)
            .one(&self.app.db)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(org.status, OrgStatus::Active);
        let vps = vpses::Entity::find()
            .filter(vpses::Column::OrganizationId.eq(org.id))
            .one(&self.app.db)
            .await
            .unwrap()
            .unwrap();
        (org, vps)
    }

    fn fail(&self, vps: &vpses::Model, service: &str, failing: bool) {
        assert!(
            self.sim()
                .set_service_failing(vps.hetzner_server_id.unwrap(), service, failing)
        );
    }

    /// One sweep, five minutes after the previous one.
    async fn sweep(&self) -> SweepReport {
        self.clock.advance(chrono::Duration::minutes(5));
        self.sweeper.sweep().await.unwrap()
    }

    async fn health(&self, vps: &vpses::Model) -> vps_health::Model {
        vps_health::Entity::find_by_id(vps.id)
            .one(&self.app.db)
            .await
            .unwrap()
            .unwrap()
    }

    async fn alerts(&self) -> Vec<AlertKind> {
        let mut rows = health_alerts::Entity::find()
            .all(&self.app.db)
            .await
            .unwrap();
        rows.sort_by_key(|a| a.id);
        rows.into_iter().map(|a| a.kind).collect()
    }

    async fn jobs_of(&self, kind: JobKind) -> Vec<jobs::Model> {
        jobs::Entity::find()
            .filter(jobs::Column::Kind.eq(kind))
            .all(&self.app.db)
            .await
            .unwrap()
    }
}

async fn three_failed_sweeps_alert_six_reboot_and_recovery_closes_the_incident(
    db: &DatabaseConnection,
) {
    let r = rig(db, &[]).await;
    let (org, vps) = r.active_org("acme").await;

    let first = r.sweep().await;
    assert_eq!((first.checked, first.failing, first.alerts), (1, 0, 0));
    let h = r.health(&vps).await;
    assert_eq!(h.status, HealthStatus::Healthy);
    assert!(h.convex_ms.is_some() && h.web_ms.is_some() && h.mta_ms.is_some());

    // Web fails: degraded, counted as a failure.
    r.fail(&vps, "web", true);
    assert_eq!(r.sweep().await.alerts, 0);
    assert_eq!(r.sweep().await.alerts, 0);
    let third = r.sweep().await;
    assert_eq!((third.failing, third.alerts), (1, 1));
    assert_eq!(r.alerts().await, [AlertKind::Unhealthy]);
    let h = r.health(&vps).await;
    assert_eq!(
        (h.status, h.failures, h.web_up),
        (HealthStatus::Degraded, 3, false)
    );
    let incident = health_incidents::Entity::find_by_id(h.incident_id.unwrap())
        .one(db)
        .await
        .unwrap()
        .unwrap();
    assert!(incident.closed_at.is_none());

    assert_eq!(r.sweep().await.reboots, 0);
    assert_eq!(r.sweep().await.reboots, 0);
    let sixth = r.sweep().await;
    assert_eq!(sixth.reboots, 1);
    assert_eq!(
        r.alerts().await,
        [AlertKind::Unhealthy, AlertKind::AutoReboot]
    );
    // The reboot is the organization's own job: while it waits, the server is not checked.
    let reboot = r.jobs_of(JobKind::Reboot).await;
    assert_eq!(reboot.len(), 1);
    assert_eq!(
        reboot[0].queue_key.as_deref(),
        Some(format!("org:{}", org.id).as_str())
    );
    assert_eq!(r.sweep().await.checked, 0, "busy with its reboot job");
    r.engine.run_until_idle().await.unwrap();
    let reboot = r.jobs_of(JobKind::Reboot).await.pop().unwrap();
    assert_eq!(reboot.state, JobState::Succeeded, "{:?}", reboot.last_error);

    // Still failing, but within the cooldown: no second reboot.
    for _ in 0..6 {
        assert_eq!(r.sweep().await.reboots, 0);
    }
    // An hour after the reboot, the next one.
    for _ in 0..6 {
        r.sweep().await;
    }
    assert_eq!(r.jobs_of(JobKind::Reboot).await.len(), 2);
    r.engine.run_until_idle().await.unwrap();
    let incident = health_incidents::Entity::find_by_id(incident.id)
        .one(db)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(incident.reboots, 2);

    // Recovery closes the incident and resolves its alerts.
    r.fail(&vps, "web", false);
    let back = r.sweep().await;
    assert_eq!((back.failing, back.alerts), (0, 1));
    assert_eq!(*r.alerts().await.last().unwrap(), AlertKind::Recovered);
    let h = r.health(&vps).await;
    assert_eq!(
        (h.status, h.failures, h.incident_id),
        (HealthStatus::Healthy, 0, None)
    );
    let incident = health_incidents::Entity::find_by_id(incident.id)
        .one(db)
        .await
        .unwrap()
        .unwrap();
    assert!(incident.closed_at.is_some());
    assert_eq!(
        health_alerts::Entity::find()
            .filter(health_alerts::Column::ResolvedAt.is_null())
            .count(db)
            .await
            .unwrap(),
        0
    );
    // Every alert is on the organization's history.
    let history = audit_log::Entity::find()
        .filter(audit_log::Column::TargetId.eq(org.id.to_string()))
        .filter(audit_log::Column::Action.starts_with("health."))
        .count(db)
        .await
        .unwrap();
    assert_eq!(
        history, 4,
        "unhealthy, two auto_reboot, recovered… and no more"
    );
}

async fn flapping_never_alerts_and_a_refused_reboot_raises_reboot_failed(db: &DatabaseConnection) {
    let r = rig(db, &[]).await;
    let (_, vps) = r.active_org("flappy").await;
    for _ in 0..5 {
        r.fail(&vps, "convex", true);
        r.sweep().await;
        r.sweep().await;
        r.fail(&vps, "convex", false);
        r.sweep().await;
    }
    assert!(
        r.alerts().await.is_empty(),
        "fail, fail, pass never reaches 3"
    );

    r.fail(&vps, "convex", true);
    for _ in 0..5 {
        r.sweep().await;
    }
    let id = vps.hetzner_server_id.unwrap();
    r.sim().add_fault(Fault {
        method: Some("POST".into()),
        path: Some(format!("/servers/{id}/actions/reboot")),
        status: Some(500),
        code: "server_error".into(),
        times: 1,
        hang_ms: None,
        reset_in_secs: None,
        lost: false,
    });
    assert_eq!(r.sweep().await.reboots, 1);
    r.engine.run_until_idle().await.unwrap();
    let job = r.jobs_of(JobKind::Reboot).await.pop().unwrap();
    assert_eq!(job.state, JobState::Failed);
    assert_eq!(
        r.alerts().await,
        [
            AlertKind::Unhealthy,
            AlertKind::AutoReboot,
            AlertKind::RebootFailed
        ]
    );
    let failed = health_alerts::Entity::find()
        .filter(health_alerts::Column::Kind.eq(AlertKind::RebootFailed))
        .one(db)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(failed.incident_id, r.health(&vps).await.incident_id);
    // A failed reboot leaves the organization as it was (it is not a provisioning failure).
    let org = organizations::Entity::find_by_id(vps.organization_id)
        .one(db)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(org.status, OrgStatus::Active);
}

async fn the_breaker_holds_reboots_when_much_of_the_fleet_fails(db: &DatabaseConnection) {
    let r = rig(db, &[]).await;
    let mut fleet = Vec::new();
    for slug in ["bb1", "bb2", "bb3", "bb4"] {
        fleet.push(r.active_org(slug).await.1);
    }
    // Three of four fail (75 % > 30 %).
    for vps in &fleet[..3] {
        r.fail(vps, "mta", true);
    }
    for _ in 0..5 {
        r.sweep().await;
    }
    let sixth = r.sweep().await;
    assert_eq!(sixth.breaker.map(|b| b.as_str()), Some("breaker"));
    assert_eq!((sixth.reboots, sixth.held), (0, 3));
    assert!(r.jobs_of(JobKind::Reboot).await.is_empty());
    let fleet_alerts = health_fleet_alerts::Entity::find().all(db).await.unwrap();
    assert_eq!(fleet_alerts.len(), 1);
    assert!(
        fleet_alerts[0]
            .message
            .contains("3 of 4 checked servers are failing"),
        "{}",
        fleet_alerts[0].message
    );
    // The lists filter by the latest status, and show it with its time.
    let vpses_page = |health| async move {
        server::vpses::VpsService { db: db.clone() }
            .page(
                app::models::VpsQuery {
                    health: Some(health),
                    ..Default::default()
                },
                25,
            )
            .await
            .unwrap()
            .rows
    };
    let degraded = vpses_page(HealthStatus::Degraded).await;
    assert_eq!(degraded.len(), 3);
    assert!(
        degraded
            .iter()
            .all(|v| v.health.unwrap().status == HealthStatus::Degraded)
    );
    assert_eq!(vpses_page(HealthStatus::Healthy).await.len(), 1);
    assert!(vpses_page(HealthStatus::Unreachable).await.is_empty());
    let orgs = server::organizations::queries::list(
        db,
        app::models::OrgQuery {
            health: Some(HealthStatus::Healthy),
            ..Default::default()
        },
        25,
    )
    .await
    .unwrap()
    .rows;
    assert_eq!(orgs.len(), 1);
    assert_eq!(orgs[0].slug, "bb4");
    assert_eq!(orgs[0].health.unwrap().failures, 0);

    // Once only two fail, the breaker lets their reboots through.
    r.fail(&fleet[2], "mta", false);
    let next = r.sweep().await;
    assert_eq!((next.breaker, next.reboots), (None, 2));
}

async fn when_nothing_answers_at_all_no_server_is_rebooted(db: &DatabaseConnection) {
    use app::models::Service;
    use server::hetzner::simulator::hosts::ServiceFault;
    let r = rig(db, &[]).await;
    let mut fleet = Vec::new();
    for slug in ["off1", "off2", "off3"] {
        fleet.push(r.active_org(slug).await.1);
    }
    // Every service of every server hangs: from Nest, nothing answers (its own network looks down).
    for vps in &fleet {
        for service in Service::ALL {
            assert!(r.sim().set_service_fault(
                vps.hetzner_server_id.unwrap(),
                *service,
                Some(ServiceFault::Hang)
            ));
        }
    }
    let mut last = SweepReport::default();
    for _ in 0..6 {
        last = r.sweep().await;
    }
    assert_eq!(last.breaker.map(|b| b.as_str()), Some("checker_offline"));
    assert_eq!((last.reboots, last.held), (0, 3));
    assert!(r.jobs_of(JobKind::Reboot).await.is_empty());
    let fleet_alert = health_fleet_alerts::Entity::find()
        .one(db)
        .await
        .unwrap()
        .unwrap();
    assert!(
        fleet_alert
            .message
            .contains("Nest's own network looks down"),
        "{}",
        fleet_alert.message
    );
    for vps in &fleet {
        for service in Service::ALL {
            r.sim()
                .set_service_fault(vps.hetzner_server_id.unwrap(), *service, None);
        }
    }
}

async fn only_running_servers_of_live_organizations_are_checked(db: &DatabaseConnection) {
    let r = rig(db, &[("NEST_HEALTH_GRACE_SECS", "600")]).await;
    let (org, _) = r.active_org("graceful").await;
    // Its create job ended just now: within the grace period.
    assert_eq!(r.sweeper.sweep().await.unwrap().checked, 0);
    r.clock.advance(chrono::Duration::minutes(11));
    assert_eq!(r.sweeper.sweep().await.unwrap().checked, 1);
    // Suspended servers still run and are checked.
    r.app
        .organizations()
        .apply(&actor(), org.id, OrgEvent::Suspend, EventArgs::default())
        .await
        .unwrap();
    assert_eq!(r.sweep().await.checked, 1);
    // A queued job of the organization (a redeploy) pauses its checks.
    r.app
        .organizations()
        .apply(&actor(), org.id, OrgEvent::Resume, EventArgs::default())
        .await
        .unwrap();
    r.app
        .organizations()
        .apply(&actor(), org.id, OrgEvent::Redeploy, EventArgs::default())
        .await
        .unwrap();
    assert_eq!(r.sweep().await.checked, 0);
}

/// A webhook receiver on loopback: records each request's headers and body.
async fn webhook_receiver() -> (String, Arc<Mutex<Vec<(axum::http::HeaderMap, String)>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let store = seen.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |headers: axum::http::HeaderMap, body: String| {
            let store = store.clone();
            async move {
                store.lock().unwrap().push((headers, body));
                "ok"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, seen)
}

/// A minimal SMTP server on loopback: accepts every message and records its data.
async fn smtp_receiver() -> (String, Arc<Mutex<Vec<String>>>) {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    let seen = Arc::new(Mutex::new(Vec::new()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("smtp://{}", listener.local_addr().unwrap());
    let store = seen.clone();
    tokio::spawn(async move {
        loop {
            let Ok((socket, _)) = listener.accept().await else {
                return;
            };
            let store = store.clone();
            tokio::spawn(async move {
                let (read, mut write) = socket.into_split();
                let mut lines = BufReader::new(read).lines();
                write.write_all(b"220 test ESMTP\r\n").await.unwrap();
                let mut data: Option<String> = None;
                while let Ok(Some(line)) = lines.next_line().await {
                    if let Some(body) = data.as_mut() {
                        if line == "." {
                            store.lock().unwrap().push(data.take().unwrap());
                            write.write_all(b"250 queued\r\n").await.unwrap();
                        } else {
                            body.push_str(&line);
                            body.push('\n');
                        }
                        continue;
                    }
                    let verb = line.split_whitespace().next().unwrap_or("").to_uppercase();
                    let reply: &[u8] = match verb.as_str() {
                        "EHLO" | "HELO" => b"250 test\r\n",
                        "DATA" => {
                            data = Some(String::new());
                            b"354 go ahead\r\n"
                        }
                        "QUIT" => {
                            write.write_all(b"221 bye\r\n").await.unwrap();
                            return;
                        }
                        _ => b"250 ok\r\n",
                    };
                    write.write_all(reply).await.unwrap();
                }
            });
        }
    });
    (url, seen)
}

async fn alerts_reach_the_webhook_and_smtp_receivers_and_a_dead_one_never_blocks_a_sweep(
    db: &DatabaseConnection,
) {
    let (hook, hooked) = webhook_receiver().await;
    let (smtp, mailed) = smtp_receiver().await;
    let secret = "webhook-secret-0123456789";
    let r = rig(
        db,
        &[
            ("NEST_ALERT_WEBHOOK_URL", &hook),
            ("NEST_ALERT_WEBHOOK_SECRET", secret),
            ("NEST_SMTP_URL", &smtp),
            ("NEST_ALERT_EMAIL_TO", "ops@nest.test, oncall@nest.test"),
        ],
    )
    .await;
    let (org, vps) = r.active_org("notified").await;
    r.fail(&vps, "web", true);
    r.fail(&vps, "mta", true);
    for _ in 0..3 {
        r.sweep().await;
    }
    assert_eq!(r.jobs_of(JobKind::NotifyAlert).await.len(), 2);
    r.engine.run_until_idle().await.unwrap();

    let hooked = hooked.lock().unwrap().clone();
    assert_eq!(hooked.len(), 1);
    let (headers, body) = &hooked[0];
    let json: serde_json::Value = serde_json::from_str(body).unwrap();
    assert!(
        json["text"]
            .as_str()
            .unwrap()
            .contains("unhealthy: Org notified (notified)"),
        "{json}"
    );
    assert_eq!(json["alert"]["kind"], "unhealthy");
    assert_eq!(json["alert"]["organization"]["id"], org.id);
    let header = |name: &str| headers.get(name).map(|v| v.to_str().unwrap());
    server::provisioning::signing::verify(
        secret,
        "POST",
        "/hook",
        header("x-nest-timestamp"),
        header("x-nest-signature"),
        body.as_bytes(),
        chrono::Utc::now().timestamp(),
    )
    .expect("the webhook body is signed with the secret");

    let mailed = mailed.lock().unwrap().clone();
    assert_eq!(mailed.len(), 1);
    assert!(
        mailed[0].contains("Subject: [Nest] unhealthy: Org notified"),
        "{}",
        mailed[0]
    );
    assert!(
        mailed[0].contains("To: ops@nest.test, oncall@nest.test"),
        "{}",
        mailed[0]
    );

    // A receiver that is down: the delivery is retried later, the sweeps go on.
    let dead = rig(
        db,
        &[
            ("NEST_ALERT_WEBHOOK_URL", "http://127.0.0.1:9/hook"),
            ("NEST_ALERT_WEBHOOK_SECRET", secret),
        ],
    )
    .await;
    r.fail(&vps, "web", false);
    r.fail(&vps, "mta", false);
    let recovered = dead.sweep().await;
    assert_eq!(recovered.alerts, 1, "recovered");
    dead.engine.run_until_idle().await.unwrap();
    let delivery = dead
        .jobs_of(JobKind::NotifyAlert)
        .await
        .into_iter()
        .max_by_key(|j| j.id)
        .unwrap();
    assert_eq!(delivery.state, JobState::Queued, "waiting for its retry");
    assert_eq!(delivery.attempts, 1);
    assert!(
        delivery
            .last_error
            .unwrap()
            .contains("could not be reached")
    );
    assert_eq!(dead.sweep().await.checked, 1, "the sweep is not held up");
}

async fn an_admin_acknowledges_or_silences_an_incident_with_a_reason(db: &DatabaseConnection) {
    let (hook, hooked) = webhook_receiver().await;
    let r = rig(
        db,
        &[
            ("NEST_ALERT_WEBHOOK_URL", &hook),
            ("NEST_ALERT_WEBHOOK_SECRET", "webhook-secret-0123456789"),
        ],
    )
    .await;
    let (_, vps) = r.active_org("noted").await;
    r.fail(&vps, "convex", true);
    for _ in 0..3 {
        r.sweep().await;
    }
    let incident = r.health(&vps).await.incident_id.unwrap().to_string();
    // The dashboard, on the same database.
    let web = support::TestServer::start(db).await;
    let mut admin = support::setup_superadmin(&web, "ops@nest.test").await;

    // A reason is required; nothing changes without one.
    let empty = admin
        .call(
            "acknowledge_incident",
            &[("id", &incident), ("reason", "  ")],
        )
        .await;
    assert_eq!(empty.status, 422, "{empty:?}");
    assert!(empty.error().unwrap().for_field("reason").is_some());
    let too_long = admin
        .call(
            "silence_incident",
            &[("id", &incident), ("minutes", "100000"), ("reason", "x")],
        )
        .await;
    assert_eq!(too_long.status, 422, "{too_long:?}");
    let unknown = admin
        .call("acknowledge_incident", &[("id", "999999"), ("reason", "x")])
        .await;
    assert_eq!(unknown.status, 404, "{unknown:?}");

    let ack = admin
        .call(
            "acknowledge_incident",
            &[("id", &incident), ("reason", "on it")],
        )
        .await;
    assert_eq!(ack.status, 200, "{ack:?}");
    let again = admin
        .call(
            "acknowledge_incident",
            &[("id", &incident), ("reason", "me too")],
        )
        .await;
    assert_eq!(again.status, 409, "acknowledged once: {again:?}");
    let silence = admin
        .call(
            "silence_incident",
            &[
                ("id", &incident),
                ("minutes", "60"),
                ("reason", "maintenance window"),
            ],
        )
        .await;
    assert_eq!(silence.status, 200, "{silence:?}");
    let page = admin
        .call("list_incidents", &[("query[open]", "true")])
        .await;
    let shown = &page.body["incidents"][0];
    assert_eq!(shown["acknowledged"]["reason"], "on it");
    assert_eq!(shown["acknowledged"]["by"], "ops@nest.test");
    assert_eq!(shown["silenced"]["reason"], "maintenance window");
    for action in ["health.incident_acknowledged", "health.incident_silenced"] {
        let rows = audit_log::Entity::find()
            .filter(audit_log::Column::Action.eq(action))
            .all(db)
            .await
            .unwrap();
        assert_eq!(rows.len(), 1, "{action}");
        assert_eq!(rows[0].actor_email, "ops@nest.test");
    }

    // While silenced, new alerts of the incident (the reboot) send nothing.
    r.engine.run_until_idle().await.unwrap();
    let sent_before = hooked.lock().unwrap().len();
    for _ in 0..3 {
        r.sweep().await;
    }
    assert_eq!(*r.alerts().await.last().unwrap(), AlertKind::AutoReboot);
    r.engine.run_until_idle().await.unwrap();
    assert_eq!(hooked.lock().unwrap().len(), sent_before, "silenced");
    // After the silence, the recovery is sent again.
    r.clock.advance(chrono::Duration::minutes(61));
    r.fail(&vps, "convex", false);
    r.sweep().await;
    r.engine.run_until_idle().await.unwrap();
    let last = hooked.lock().unwrap().last().unwrap().1.clone();
    assert!(last.contains("\"recovered\""), "{last}");
}

async fn the_history_rolls_up_per_hour_and_stays_bounded(db: &DatabaseConnection) {
    let r = rig(
        db,
        &[
            ("NEST_HEALTH_RAW_RETENTION_HOURS", "2"),
            ("NEST_HEALTH_ROLLUP_RETENTION_DAYS", "1"),
        ],
    )
    .await;
    let (_, vps) = r.active_org("history").await;
    let history = server::health::history::History {
        db: db.clone(),
        clock: r.clock.clone(),
        settings: Arc::new(r.app.health_settings()),
    };
    // Three hours of sweeps (every 5 minutes), the MTA down for 20 minutes in the third hour.
    for i in 0..36 {
        r.fail(&vps, "mta", (26..30).contains(&i));
        r.sweep().await;
    }
    r.clock.advance(chrono::Duration::hours(1));
    let report = history.run_once().await.unwrap();
    assert!(report.rolled_up >= 2, "{report:?}");
    let rollups = health_rollups::Entity::find().all(db).await.unwrap();
    let checks: i32 = rollups.iter().map(|h| h.checks).sum();
    let mta: i32 = rollups.iter().map(|h| h.mta_failures).sum();
    assert!(rollups.iter().all(|h| h.checks <= 12));
    assert!((1..=4).contains(&mta), "{mta}");
    assert!(rollups.iter().any(|h| h.web_p95_ms.is_some()));
    // Raw checks older than 2 hours are gone; running again changes nothing.
    let oldest = health_checks::Entity::find()
        .all(db)
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.checked_at)
        .min()
        .unwrap();
    assert!(r.clock.now() - oldest <= chrono::Duration::hours(2));
    let again = history.run_once().await.unwrap();
    assert_eq!(again.raw_pruned, 0);
    let after: i32 = health_rollups::Entity::find()
        .all(db)
        .await
        .unwrap()
        .iter()
        .map(|h| h.checks)
        .sum();
    assert_eq!(after, checks, "idempotent");
    // A day later the roll-ups are pruned too.
    r.clock.advance(chrono::Duration::days(2));
    let late = history.run_once().await.unwrap();
    assert!(late.rollups_pruned > 0);
}

on_both_databases!(
    three_failed_sweeps_alert_six_reboot_and_recovery_closes_the_incident,
    flapping_never_alerts_and_a_refused_reboot_raises_reboot_failed,
    the_breaker_holds_reboots_when_much_of_the_fleet_fails,
    when_nothing_answers_at_all_no_server_is_rebooted,
    only_running_servers_of_live_organizations_are_checked,
    alerts_reach_the_webhook_and_smtp_receivers_and_a_dead_one_never_blocks_a_sweep,
    the_history_rolls_up_per_hour_and_stays_bounded,
    an_admin_acknowledges_or_silences_an_incident_with_a_reason,
);
