//! The job engine and the four flows, with the real Hetzner client against the simulator over
//! real sockets, on SQLite and PostgreSQL: end-to-end create, leases, crash recovery, retries
//! and backoff, scripted faults, per-org serialization, concurrent engines, resize, delete,
//! redeploy, and secrets kept out of everything an admin can see.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[macro_use]
mod support;

use std::time::Duration;

use app::models::{JobKind, JobState, OrgEvent, OrgStatus, VpsStatus};
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder};
use server::audit::Actor;
use server::clock::Clock;
use server::entities::{audit_log, jobs, organizations, routes, tiers, vpses};
use server::hetzner::simulator::{Fault, Simulator};
use server::jobs::{QueueConfig, Worker};
use server::organizations::EventArgs;
use server::provisioning::ProvisioningConfig;
use server::provisioning::secrets::Sealed;
use server::state::App;

struct Rig {
    app: App,
    engine: Worker,
    clock: Clock,
}

fn actor() -> Actor {
    support::test_actor()
}

async fn rig_with(
    db: &DatabaseConnection,
    vars: &[(&str, &str)],
    tweak: impl FnOnce(&mut QueueConfig, &mut ProvisioningConfig),
) -> Rig {
    server::install_tls_provider();
    let clock = Clock::system();
    let config = support::test_config(vars);
    let app = App::start_with_clock(config, db.clone(), clock.clone())
        .await
        .unwrap();
    let mut queue = app.queue_config();
    queue.lease = Duration::from_secs(30);
    let mut flows = app.provisioning_config();
    flows.smoke_timeout = Duration::from_secs(3);
    flows.smoke_interval = Duration::from_millis(50);
    flows.action_timeout = Duration::from_secs(10);
    tweak(&mut queue, &mut flows);
    let engine = app.worker_with(queue, app.registry(app.provisioner(flows)));
    Rig { app, engine, clock }
}

async fn rig(db: &DatabaseConnection) -> Rig {
    rig_with(db, &[], |_, _| {}).await
}

impl Rig {
    fn sim(&self) -> &Simulator {
        self.app.integrations.simulator.as_deref().unwrap()
    }

    async fn new_org(&self, slug: &str) -> organizations::Model {
        support::create_org(&self.app, slug).await
    }

    async fn org(&self, id: i64) -> organizations::Model {
        organizations::Entity::find_by_id(id)
            .one(&self.app.db)
            .await
            .unwrap()
            .unwrap()
    }

    async fn jobs(&self, org_id: i64) -> Vec<jobs::Model> {
        jobs::Entity::find()
            .filter(jobs::Column::OrganizationId.eq(org_id))
            .order_by_asc(jobs::Column::Id)
            .all(&self.app.db)
            .await
            .unwrap()
    }

    async fn last_job(&self, org_id: i64) -> jobs::Model {
        self.jobs(org_id).await.pop().unwrap()
    }

    async fn vps(&self, org_id: i64) -> vpses::Model {
        vpses::Entity::find()
            .filter(vpses::Column::OrganizationId.eq(org_id))
            .one(&self.app.db)
            .await
            .unwrap()
            .unwrap()
    }

    async fn act(&self, org_id: i64, event: OrgEvent, tier: Option<&str>) {
        let tier_id = match tier {
            Some(code) => Some(
                tiers::Entity::find()
                    .filter(tiers::Column::Code.eq(code))
                    .one(&self.app.db)
                    .await
                    .unwrap()
                    .unwrap()
                    .id,
            ),
            None => None,
        };
        self.app
            .organizations()
            .apply(
                &actor(),
                org_id,
                event,
                EventArgs {
                    tier_id,
                    reason: None,
                },
            )
            .await
            .unwrap();
    }

    async fn active_org(&self, slug: &str) -> organizations::Model {
        let org = self.new_org(slug).await;
        self.engine.run_until_idle().await.unwrap();
        let org = self.org(org.id).await;
        assert_eq!(
            org.status,
            OrgStatus::Active,
            "{:?}",
            self.last_job(org.id).await
        );
        org
    }

    /// Moves the clock past every queued job's `run_after` and runs the engine.
    async fn later(&self, by_secs: i64) -> usize {
        self.clock.advance(chrono::Duration::seconds(by_secs));
        self.engine.run_until_idle().await.unwrap()
    }
}

fn steps(job: &jobs::Model) -> Vec<(String, String)> {
    job.progress
        .steps()
        .iter()
        .map(|s| (s.step.as_str().to_owned(), s.state.as_str().to_owned()))
        .collect()
}

async fn create_takes_an_org_from_pending_to_active_through_the_simulator(db: &DatabaseConnection) {
    let r = rig(db).await;
    let calls_before = r.app.integrations.hetzner.calls();
    let org = r.new_org("acme").await;
    assert_eq!(r.last_job(org.id).await.state, JobState::Queued);

    assert_eq!(r.engine.run_until_idle().await.unwrap(), 1);

    let org = r.org(org.id).await;
    assert_eq!(org.status, OrgStatus::Active);
    let job = r.last_job(org.id).await;
    assert_eq!(job.state, JobState::Succeeded);
    assert_eq!(job.attempts, 1);
    assert!(job.finished_at.is_some() && job.lease_owner.is_none());
    let expected: Vec<(String, String)> = [
        "secrets",
        "vps_record",
        "hetzner_create",
        "cloud_init",
        "smoke_test",
        "routing",
        "active",
    ]
    .iter()
    .map(|s| ((*s).to_owned(), "done".to_owned()))
    .collect();
    assert_eq!(steps(&job), expected);
    for step in job.progress.steps() {
        assert!(step.finished_at.is_some(), "{step:?}");
    }

    let vps = r.vps(org.id).await;
    assert_eq!(vps.name, "nest-acme");
    assert_eq!(vps.status, VpsStatus::Running);
    assert_eq!(vps.server_type.as_str(), "cx22");
    let ip = vps.ipv4.clone().unwrap();
    let servers = r.sim().servers();
    assert_eq!(servers.len(), 1);
    assert_eq!(Some(servers[0].id), vps.hetzner_server_id);
    assert_eq!(servers[0].labels["nest-org-id"], org.id.to_string());

    let route = routes::Entity::find()
        .filter(routes::Column::OrganizationId.eq(org.id))
        .one(db)
        .await
        .unwrap()
        .unwrap();
    assert!(route.enabled);
    assert_eq!(route.upstream_ipv4, ip);
    assert_eq!(route.upstream_port, 3000);

    // The web service of the org's server answers on its own loopback address.
    let page = reqwest::get(format!("http://{ip}:3000/")).await.unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains("nest-acme"));

    let calls = r.app.integrations.hetzner.calls() - calls_before;
    assert!(calls <= 12, "{calls} Hetzner calls for one create");

    let actions: Vec<String> = audit_log::Entity::find()
        .filter(audit_log::Column::TargetId.eq(org.id.to_string()))
        .order_by_asc(audit_log::Column::Id)
        .all(db)
        .await
        .unwrap()
        .into_iter()
        .map(|a| a.action)
        .collect();
    assert_eq!(
        actions,
        [
            "organization.created",
            "organization.provisioning_started",
            "organization.server_created",
            "organization.activated"
        ]
    );
}

async fn secrets_are_sealed_and_never_shown_in_audit_rows_or_job_progress(db: &DatabaseConnection) {
    let r = rig(db).await;
    let org = r.active_org("vault").await;
    let vps = r.vps(org.id).await;
    let sealed = Sealed {
        ciphertext: vps.secrets_ciphertext.clone().unwrap(),
        nonce: vps.secrets_nonce.clone().unwrap(),
        key_id: vps.secrets_key_id.clone().unwrap(),
    };
    let secrets = r.app.integrations.secrets.open(vps.id, &sealed).unwrap();
    let all = [
        &secrets.instance_secret,
        &secrets.convex_admin_key,
        &secrets.mta_api_key,
        &secrets.mta_webhook_secret,
    ];
    assert!(
        !String::from_utf8_lossy(&sealed.ciphertext).contains(secrets.instance_secret.as_str())
    );
    let audit = serde_json::to_string(
        &audit_log::Entity::find()
            .all(db)
            .await
            .unwrap()
            .iter()
            .map(|a| a.detail.clone())
            .collect::<Vec<_>>(),
    )
    .unwrap();
    let job = r.last_job(org.id).await;
    let progress = serde_json::to_string(&job.progress).unwrap();
    for secret in all {
        assert!(!audit.contains(secret.as_str()));
        assert!(!progress.contains(secret.as_str()));
    }
    // The org page's data does not carry them either.
    let detail = server::organizations::queries::detail(db, org.id, "localhost")
        .await
        .unwrap();
    let shown = serde_json::to_string(&detail).unwrap();
    for secret in all {
        assert!(!shown.contains(secret.as_str()));
    }
}

async fn a_job_whose_lease_lapsed_is_taken_over_by_another_worker(db: &DatabaseConnection) {
    let r = rig(db).await;
    let org = r.new_org("lapsed").await;
    // A worker claims the job and dies without a word.
    let dead = r.engine.another();
    let claimed = dead.claim().await.unwrap().unwrap();
    assert_eq!(claimed.state, JobState::Running);
    assert_eq!(claimed.lease_owner.as_deref(), Some(dead.name.as_str()));
    // While the lease holds, nobody else may take it.
    assert!(r.engine.claim().await.unwrap().is_none());
    // Backdate the lease instead of sleeping.
    jobs::Entity::update_many()
        .col_expr(
            jobs::Column::LeaseExpiresAt,
            Expr::value(r.clock.now() - chrono::Duration::seconds(1)),
        )
        .filter(jobs::Column::Id.eq(claimed.id))
        .exec(db)
        .await
        .unwrap();
    assert_eq!(r.engine.run_until_idle().await.unwrap(), 1);
    let job = r.last_job(org.id).await;
    assert_eq!(job.state, JobState::Succeeded);
    assert_eq!(job.attempts, 2);
    assert_eq!(r.org(org.id).await.status, OrgStatus::Active);
}

async fn a_create_interrupted_after_the_server_exists_does_not_create_a_second(
    db: &DatabaseConnection,
) {
    // Actions take a while, so the first worker is still waiting when it is killed.
    let r = rig_with(db, &[("NEST_SIM_ACTION_DELAY_MS", "1500")], |_, _| {}).await;
    let org = r.new_org("crash").await;
    let dead = r.engine.another();
    let job = dead.claim().await.unwrap().unwrap();
    let task = tokio::spawn(async move { dead.execute(job).await });
    // Kill it as soon as the server exists at Hetzner.
    for _ in 0..200 {
        if r.sim().servers_created() == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    task.abort();
    let _ = task.await;
    assert_eq!(r.sim().servers_created(), 1);
    let job = r.last_job(org.id).await;
    assert_eq!(
        job.state,
        JobState::Running,
        "the dead worker left it running"
    );

    jobs::Entity::update_many()
        .col_expr(
            jobs::Column::LeaseExpiresAt,
            Expr::value(r.clock.now() - chrono::Duration::seconds(1)),
        )
        .filter(jobs::Column::Id.eq(job.id))
        .exec(db)
        .await
        .unwrap();
    r.engine.run_until_idle().await.unwrap();
    assert_eq!(r.org(org.id).await.status, OrgStatus::Active);
    assert_eq!(r.sim().servers_created(), 1, "no second server");
    assert_eq!(r.sim().servers().len(), 1);
}

async fn retryable_failures_back_off_exponentially_then_succeed(db: &DatabaseConnection) {
    let r = rig(db).await;
    r.sim().add_fault(Fault {
        method: Some("POST".into()),
        path: Some("/servers".into()),
        status: Some(503),
        code: "unavailable".into(),
        times: 2,
        hang_ms: None,
        reset_in_secs: None,
        lost: false,
    });
    let org = r.new_org("backoff").await;
    let t0 = r.clock.now();
    r.engine.run_until_idle().await.unwrap();
    let job = r.last_job(org.id).await;
    assert_eq!(job.state, JobState::Queued);
    assert_eq!(job.attempts, 1);
    assert!(job.last_error.as_deref().unwrap().contains("unavailable"));
    let wait = (job.run_after - t0).num_milliseconds();
    assert!(
        (8_000..=12_500).contains(&wait),
        "first retry after {wait} ms"
    );
    assert_eq!(r.org(org.id).await.status, OrgStatus::Provisioning);
    // Not due yet: nothing runs.
    assert_eq!(r.engine.run_until_idle().await.unwrap(), 0);

    let t1 = r.clock.now() + chrono::Duration::seconds(13);
    assert_eq!(r.later(13).await, 1);
    let job = r.last_job(org.id).await;
    assert_eq!(job.attempts, 2);
    let wait = (job.run_after - t1).num_milliseconds();
    assert!(
        (15_000..=25_000).contains(&wait),
        "second retry after {wait} ms"
    );

    r.later(26).await;
    let job = r.last_job(org.id).await;
    assert_eq!(job.state, JobState::Succeeded);
    assert_eq!(job.attempts, 3);
    assert_eq!(r.org(org.id).await.status, OrgStatus::Active);
    assert_eq!(r.sim().servers_created(), 1);
}

async fn a_rate_limit_waits_for_its_reset(db: &DatabaseConnection) {
    let r = rig(db).await;
    r.sim().add_fault(Fault {
        method: Some("POST".into()),
        path: Some("/servers".into()),
        status: Some(429),
        code: "rate_limit_exceeded".into(),
        times: 1,
        hang_ms: None,
        reset_in_secs: Some(120),
        lost: false,
    });
    let org = r.new_org("limited").await;
    let t0 = chrono::Utc::now();
    r.engine.run_until_idle().await.unwrap();
    let job = r.last_job(org.id).await;
    assert_eq!(job.state, JobState::Queued);
    let wait = (job.run_after - t0).num_seconds();
    assert!(
        (115..=125).contains(&wait),
        "retry after {wait} s, not at RateLimit-Reset"
    );
    assert_eq!(r.later(60).await, 0, "still before the reset");
    r.later(65).await;
    assert_eq!(r.org(org.id).await.status, OrgStatus::Active);
}

async fn after_the_last_attempt_the_job_fails_and_the_org_shows_the_error(db: &DatabaseConnection) {
    let r = rig(db).await;
    r.sim().add_fault(Fault {
        method: Some("POST".into()),
        path: Some("/servers".into()),
        status: Some(500),
        code: "server_error".into(),
        times: 50,
        hang_ms: None,
        reset_in_secs: None,
        lost: false,
    });
    let org = r.new_org("doomed").await;
    r.engine.run_until_idle().await.unwrap();
    for _ in 0..10 {
        r.later(700).await;
    }
    let job = r.last_job(org.id).await;
    assert_eq!(job.state, JobState::Failed);
    assert_eq!(job.attempts, job.max_attempts);
    assert!(
        job.last_error
            .as_deref()
            .unwrap()
            .contains("Create the server at Hetzner")
    );
    let org = r.org(org.id).await;
    assert_eq!(org.status, OrgStatus::Error);
    assert!(
        org.status_reason
            .as_deref()
            .unwrap()
            .contains("server_error"),
        "{:?}",
        org.status_reason
    );
    assert_eq!(r.sim().servers_created(), 0);
}

async fn invalid_input_fails_at_once_without_retries(db: &DatabaseConnection) {
    let r = rig(db).await;
    r.sim().add_fault(Fault {
        method: Some("POST".into()),
        path: Some("/servers".into()),
        status: Some(400),
        code: "invalid_input".into(),
        times: 1,
        hang_ms: None,
        reset_in_secs: None,
        lost: false,
    });
    let org = r.new_org("invalid").await;
    r.engine.run_until_idle().await.unwrap();
    let job = r.last_job(org.id).await;
    assert_eq!(job.state, JobState::Failed);
    assert_eq!(job.attempts, 1);
    assert_eq!(r.org(org.id).await.status, OrgStatus::Error);
}

async fn scripted_faults_are_retried_without_a_duplicate_server(db: &DatabaseConnection) {
    // A short client timeout, so a hanging request times out quickly.
    let r = rig(db).await;
    let mut flows = r.app.provisioning_config();
    flows.smoke_timeout = Duration::from_secs(3);
    flows.smoke_interval = Duration::from_millis(50);
    flows.action_timeout = Duration::from_secs(10);
    let mut provisioner = r.app.provisioner(flows);
    provisioner.hetzner = server::hetzner::HetznerClient::new(
        r.sim().api_url(),
        server::config::Secret::from("t".to_owned()),
        Duration::from_millis(500),
    )
    .unwrap();
    let engine = r.app.worker_with(
        r.engine.config.as_ref().clone(),
        r.app.registry(provisioner),
    );
    for (status, code) in [
        (409, "conflict"),
        (423, "locked"),
        (412, "resource_unavailable"),
    ] {
        r.sim().add_fault(Fault {
            method: Some("POST".into()),
            path: Some("/servers".into()),
            status: Some(status),
            code: code.into(),
            times: 1,
            hang_ms: None,
            reset_in_secs: None,
            lost: false,
        });
    }
    // Then the create request hangs past the timeout — but Hetzner creates the server anyway.
    r.sim().add_fault(Fault {
        method: Some("POST".into()),
        path: Some("/servers".into()),
        status: None,
        code: String::new(),
        times: 1,
        hang_ms: Some(1_500),
        reset_in_secs: None,
        lost: false,
    });
    let org = r.new_org("faulty").await;
    engine.run_until_idle().await.unwrap();
    let mut errors = vec![r.last_job(org.id).await.last_error.unwrap_or_default()];
    for _ in 0..6 {
        r.clock.advance(chrono::Duration::seconds(700));
        engine.run_until_idle().await.unwrap();
        tokio::time::sleep(Duration::from_millis(1_200)).await;
        errors.push(r.last_job(org.id).await.last_error.unwrap_or_default());
        if r.org(org.id).await.status == OrgStatus::Active {
            break;
        }
    }
    let job = r.last_job(org.id).await;
    assert_eq!(r.org(org.id).await.status, OrgStatus::Active, "{errors:?}");
    assert_eq!(job.state, JobState::Succeeded);
    assert_eq!(job.attempts, 5, "{errors:?}");
    let all = errors.join("\n");
    for expected in ["conflict", "locked", "resource_unavailable", "timed out"] {
        assert!(all.contains(expected), "{expected} missing from {all}");
    }
    assert_eq!(
        r.sim().servers_created(),
        1,
        "the hung request's server was adopted"
    );
}

async fn an_action_ending_in_error_is_retried(db: &DatabaseConnection) {
    let r = rig(db).await;
    r.sim().fail_next_action("create_server");
    let org = r.new_org("actionerr").await;
    r.engine.run_until_idle().await.unwrap();
    let job = r.last_job(org.id).await;
    assert_eq!(job.state, JobState::Queued);
    assert!(job.last_error.as_deref().unwrap().contains("action_failed"));
    r.later(15).await;
    assert_eq!(r.org(org.id).await.status, OrgStatus::Active);
    assert_eq!(r.sim().servers_created(), 1);
}

async fn a_failing_smoke_test_shows_the_step_and_retry_recovers(db: &DatabaseConnection) {
    let r = rig(db).await;
    r.sim().fail_service_on_next_server("web");
    let org = r.new_org("smoky").await;
    r.engine.run_until_idle().await.unwrap();
    let job = r.last_job(org.id).await;
    assert_eq!(job.state, JobState::Failed);
    assert!(steps(&job).contains(&("smoke_test".to_owned(), "failed".to_owned())));
    let error = job.last_error.unwrap();
    assert!(
        error.contains("Smoke test") && error.contains("Web :3000/ answered HTTP 500"),
        "{error}"
    );
    let org = r.org(org.id).await;
    assert_eq!(org.status, OrgStatus::Error);
    assert!(org.status_reason.unwrap().contains("Web :3000/"));

    let vps = r.vps(org.id).await;
    assert!(
        r.sim()
            .set_service_failing(vps.hetzner_server_id.unwrap(), "web", false)
    );
    r.act(org.id, OrgEvent::Retry(JobKind::Create), None).await;
    r.engine.run_until_idle().await.unwrap();
    assert_eq!(r.org(org.id).await.status, OrgStatus::Active);
    assert_eq!(r.sim().servers_created(), 1);
}

async fn jobs_of_one_organization_run_one_at_a_time_in_order(db: &DatabaseConnection) {
    let r = rig(db).await;
    let a = r.new_org("serial-a").await;
    let b = r.new_org("serial-b").await;
    // Deleting the pending org queues a delete job behind its create job.
    r.act(a.id, OrgEvent::Delete, None).await;
    let first = r.engine.claim().await.unwrap().unwrap();
    let second = r.engine.claim().await.unwrap().unwrap();
    assert_eq!(
        (first.organization_id, first.kind),
        (Some(a.id), JobKind::Create)
    );
    assert_eq!(
        (second.organization_id, second.kind),
        (Some(b.id), JobKind::Create)
    );
    assert!(
        r.engine.claim().await.unwrap().is_none(),
        "a's delete waits for a's create"
    );
}

async fn two_engines_never_run_the_same_job(db: &DatabaseConnection) {
    let r = rig(db).await;
    let mut orgs = Vec::new();
    for i in 0..6 {
        orgs.push(r.new_org(&format!("pair-{i}")).await);
    }
    let other = r.engine.another();
    let (x, y) = tokio::join!(r.engine.run_until_idle(), other.run_until_idle());
    assert_eq!(x.unwrap() + y.unwrap(), 6);
    for org in &orgs {
        let job = r.last_job(org.id).await;
        assert_eq!(job.attempts, 1, "job {} ran twice", job.id);
        assert_eq!(r.org(org.id).await.status, OrgStatus::Active, "{job:?}");
    }
    assert_eq!(r.sim().servers_created(), 6);
}

async fn resize_powers_off_changes_the_type_and_comes_back(db: &DatabaseConnection) {
    let r = rig(db).await;
    let org = r.active_org("grow").await;
    r.act(org.id, OrgEvent::ChangeTier, Some("growth")).await;
    let job = r.last_job(org.id).await;
    assert_eq!((job.kind, job.state), (JobKind::Resize, JobState::Queued));
    // The first change_type fails at Hetzner; the retry finishes the job.
    r.sim().fail_next_action("change_server_type");
    r.engine.run_until_idle().await.unwrap();
    assert_eq!(r.last_job(org.id).await.state, JobState::Queued);
    r.later(15).await;
    let job = r.last_job(org.id).await;
    assert_eq!(job.state, JobState::Succeeded, "{:?}", job.last_error);
    let names: Vec<String> = steps(&job).into_iter().map(|(s, _)| s).collect();
    assert_eq!(
        names,
        ["power_off", "change_type", "power_on", "smoke_test"]
    );
    let vps = r.vps(org.id).await;
    assert_eq!(vps.server_type.as_str(), "cx32");
    assert_eq!(vps.status, VpsStatus::Running);
    assert_eq!(r.sim().servers()[0].server_type.name, "cx32");
    assert_eq!(r.org(org.id).await.status, OrgStatus::Active);
}

async fn delete_removes_the_server_and_the_route(db: &DatabaseConnection) {
    let r = rig(db).await;
    let org = r.active_org("gone").await;
    r.act(org.id, OrgEvent::Delete, None).await;
    r.engine.run_until_idle().await.unwrap();
    assert_eq!(r.org(org.id).await.status, OrgStatus::Deleted);
    let vps = r.vps(org.id).await;
    assert_eq!(vps.status, VpsStatus::Deleted);
    assert!(vps.deleted_at.is_some());
    assert!(r.sim().servers().is_empty());
    let route = routes::Entity::find()
        .filter(routes::Column::OrganizationId.eq(org.id))
        .one(db)
        .await
        .unwrap();
    assert!(route.is_none());
    // Running the engine again does nothing more.
    assert_eq!(r.engine.run_until_idle().await.unwrap(), 0);
}

async fn redeploy_uses_the_self_update_endpoint_with_the_instance_secret(db: &DatabaseConnection) {
    let r = rig(db).await;
    let org = r.active_org("fresh").await;
    r.act(org.id, OrgEvent::Redeploy, None).await;
    r.engine.run_until_idle().await.unwrap();
    let job = r.last_job(org.id).await;
    assert_eq!(job.state, JobState::Succeeded, "{:?}", job.last_error);
    let vps = r.vps(org.id).await;
    assert_eq!(r.sim().self_updates(vps.hetzner_server_id.unwrap()), 1);
    let names: Vec<String> = steps(&job).into_iter().map(|(s, _)| s).collect();
    assert_eq!(names, ["self_update", "smoke_test"]);

    // The secret never travels: the VPS refuses it as a bearer token, and accepts a signature
    // once, only for its own request.
    let sealed = Sealed {
        ciphertext: vps.secrets_ciphertext.clone().unwrap(),
        nonce: vps.secrets_nonce.clone().unwrap(),
        key_id: vps.secrets_key_id.clone().unwrap(),
    };
    let secret = r
        .app
        .integrations
        .secrets
        .open(vps.id, &sealed)
        .unwrap()
        .instance_secret;
    let url = format!("http://{}:3000/api/self-update", vps.ipv4.clone().unwrap());
    let http = reqwest::Client::new();
    let bearer = http.post(&url).bearer_auth(&secret).send().await.unwrap();
    assert_eq!(bearer.status(), 401);
    use server::provisioning::signing::{SIGNATURE_HEADER, TIMESTAMP_HEADER, sign};
    let now = chrono::Utc::now().timestamp();
    let signed = |timestamp: i64, signature: String| {
        http.post(&url)
            .header(TIMESTAMP_HEADER, timestamp.to_string())
            .header(SIGNATURE_HEADER, signature)
            .send()
    };
    let old = now - 3600;
    let stale = signed(old, sign(&secret, "POST", "/api/self-update", old, b""));
    assert_eq!(stale.await.unwrap().status(), 401);
    let other_key = signed(
        now,
        sign("not the secret", "POST", "/api/self-update", now, b""),
    );
    assert_eq!(other_key.await.unwrap().status(), 401);
    // (A few seconds ahead, so not the very signature the redeploy itself sent.)
    let later = now + 5;
    let signature = sign(&secret, "POST", "/api/self-update", later, b"");
    let good = signed(later, signature.clone()).await.unwrap();
    assert_eq!(good.status(), 202);
    let replayed = signed(later, signature).await.unwrap();
    assert_eq!(replayed.status(), 401);
}

async fn redeploy_falls_back_to_a_reboot_when_self_update_is_refused(db: &DatabaseConnection) {
    let r = rig(db).await;
    let org = r.active_org("stale").await;
    // Reseal different secrets: the VPS will refuse Nest's instance secret.
    let vps = r.vps(org.id).await;
    let sealed = r
        .app
        .integrations
        .secrets
        .seal(
            vps.id,
            &server::provisioning::secrets::VpsSecrets::generate(),
        )
        .unwrap();
    vpses::Entity::update_many()
        .col_expr(
            vpses::Column::SecretsCiphertext,
            Expr::value(Some(sealed.ciphertext)),
        )
        .col_expr(vpses::Column::SecretsNonce, Expr::value(Some(sealed.nonce)))
        .filter(vpses::Column::Id.eq(vps.id))
        .exec(db)
        .await
        .unwrap();
    r.act(org.id, OrgEvent::Redeploy, None).await;
    r.engine.run_until_idle().await.unwrap();
    let job = r.last_job(org.id).await;
    assert_eq!(job.state, JobState::Succeeded, "{:?}", job.last_error);
    assert_eq!(
        steps(&job),
        [
            ("self_update".to_owned(), "failed".to_owned()),
            ("reboot".to_owned(), "done".to_owned()),
            ("smoke_test".to_owned(), "done".to_owned())
        ]
    );
}

async fn a_request_without_a_token_is_refused_as_unauthorized_and_not_retried(
    db: &DatabaseConnection,
) {
    let r = rig(db).await;
    let anonymous = server::hetzner::HetznerClient::new(
        r.sim().api_url(),
        server::config::Secret::from(String::new()),
        Duration::from_secs(5),
    )
    .unwrap();
    let e = anonymous.find_server_by_name("nest-x").await.unwrap_err();
    assert!(
        matches!(&e, server::hetzner::HetznerError::Api { status: 401, code, .. } if code == "unauthorized"),
        "{e:?}"
    );
    assert!(!e.is_retryable());
}

async fn the_client_reads_hetzners_rate_limit_headers(db: &DatabaseConnection) {
    let r = rig(db).await;
    assert!(r.app.integrations.hetzner.rate_limit().is_none());
    r.active_org("limits").await;
    let limit = r.app.integrations.hetzner.rate_limit().unwrap();
    assert_eq!(limit.limit, 3600);
    assert!(
        limit.remaining < 3600 && limit.remaining > 3500,
        "{limit:?}"
    );
    assert!(limit.reset > chrono::Utc::now() - chrono::Duration::seconds(1));
}

async fn old_secrets_stay_readable_after_a_key_rotation_and_reseal_moves_them(
    db: &DatabaseConnection,
) {
    let r = rig(db).await;
    let org = r.active_org("rotate").await;
    let old_key_id = r.vps(org.id).await.secrets_key_id.unwrap();
    let new_key = "ab".repeat(32);
    let rotated = server::provisioning::secrets::SecretBox::new(
        &new_key,
        &[support::TEST_SECRETS_KEY.to_owned()],
    )
    .unwrap();
    let resealed = server::provisioning::secrets::reseal_all(db, &rotated)
        .await
        .unwrap();
    assert_eq!(resealed, 1);
    let vps = r.vps(org.id).await;
    assert_ne!(vps.secrets_key_id.as_deref(), Some(old_key_id.as_str()));
    // Readable with the new key alone.
    let only_new = server::provisioning::secrets::SecretBox::new(&new_key, &[]).unwrap();
    let sealed = Sealed {
        ciphertext: vps.secrets_ciphertext.unwrap(),
        nonce: vps.secrets_nonce.unwrap(),
        key_id: vps.secrets_key_id.unwrap(),
    };
    assert!(only_new.open(vps.id, &sealed).is_ok());
    // Running it again changes nothing.
    assert_eq!(
        server::provisioning::secrets::reseal_all(db, &rotated)
            .await
            .unwrap(),
        0
    );
}

async fn an_orphan_left_by_a_create_whose_answer_was_lost_is_adopted_and_the_create_finishes(
    db: &DatabaseConnection,
) {
    use app::models::{FindingAction, FindingKind};
    use server::entities::reconcile_findings;
    let r = rig(db).await;
    // Hetzner makes the server, but its answer never arrives ...
    r.sim().add_fault(Fault {
        method: Some("POST".into()),
        path: Some("/servers".into()),
        status: Some(502),
        code: "bad_gateway".into(),
        times: 1,
        hang_ms: None,
        reset_in_secs: None,
        lost: true,
    });
    let org = r.new_org("lost-answer").await;
    r.engine.run_until_idle().await.unwrap();
    assert_eq!(r.sim().servers_created(), 1, "the server exists at Hetzner");
    // ... and Hetzner stays unreachable until the create gives up.
    r.sim().add_fault(Fault {
        method: None,
        path: Some("/servers".into()),
        status: Some(503),
        code: "unavailable".into(),
        times: 10_000,
        hang_ms: None,
        reset_in_secs: None,
        lost: false,
    });
    for _ in 0..10 {
        r.later(700).await;
    }
    r.sim().clear_faults();
    assert_eq!(r.org(org.id).await.status, OrgStatus::Error);
    assert_eq!(
        r.vps(org.id).await.hetzner_server_id,
        None,
        "never recorded"
    );

    // Reconciliation finds it, and sees whose it is.
    let reconciler = r.app.reconciler();
    reconciler.run_once().await.unwrap();
    let finding = reconcile_findings::Entity::find()
        .filter(reconcile_findings::Column::ResolvedAt.is_null())
        .one(&r.app.db)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(finding.kind, FindingKind::OrphanServer);
    assert_eq!(finding.organization_id, Some(org.id));
    assert_eq!(finding.detail["adoptable"], true, "{:?}", finding.detail);
    let server_id = finding.detail["server_id"].as_i64().unwrap();
    let service = r.app.reconcile_service();
    let page = service.list(false).await.unwrap();
    assert_eq!(
        page.findings[0].actions,
        vec![FindingAction::AdoptServer, FindingAction::DeleteServer]
    );

    // Adopted after typing its name: the failed create resumes from the recorded server.
    let wrong = service
        .act(
            &actor(),
            finding.id,
            FindingAction::AdoptServer,
            "nest-lost",
        )
        .await;
    assert!(
        matches!(
            wrong,
            Err(server::error::Error::Validation {
                field: "confirm",
                ..
            })
        ),
        "{wrong:?}"
    );
    service
        .act(
            &actor(),
            finding.id,
            FindingAction::AdoptServer,
            "nest-lost-answer",
        )
        .await
        .unwrap();
    assert_eq!(r.vps(org.id).await.hetzner_server_id, Some(server_id));
    r.engine.run_until_idle().await.unwrap();
    assert_eq!(r.org(org.id).await.status, OrgStatus::Active);
    assert_eq!(r.sim().servers_created(), 1, "no second server");
    let adopted = audit_log::Entity::find()
        .filter(audit_log::Column::Action.eq("reconcile.server_adopted"))
        .all(&r.app.db)
        .await
        .unwrap();
    assert_eq!(adopted.len(), 1);
    assert_eq!(
        adopted[0].target_id.as_deref(),
        Some(org.id.to_string().as_str())
    );
    let report = reconciler.run_once().await.unwrap();
    assert_eq!((report.opened, report.resolved), (0, 0), "{report:?}");

    // A server made by hand under the organization's label is never adopted: it holds secrets
    // Nest does not know. It can only be deleted.
    let by_hand = r
        .app
        .integrations
        .hetzner
        .create_server(&server::hetzner::CreateServer {
            name: "by-hand".to_owned(),
            server_type: "cx22".to_owned(),
            image: "ubuntu-24.04".to_owned(),
            location: "fsn1".to_owned(),
            user_data: String::new(),
            ssh_keys: Vec::new(),
            labels: std::collections::BTreeMap::from([
                (server::hetzner::MANAGED_LABEL.to_owned(), "nest".to_owned()),
                (server::hetzner::ORG_LABEL.to_owned(), org.id.to_string()),
            ]),
        })
        .await
        .unwrap()
        .server;
    reconciler.run_once().await.unwrap();
    let page = service.list(false).await.unwrap();
    assert_eq!(page.findings.len(), 1, "{page:?}");
    assert_eq!(page.findings[0].subject, format!("server:{}", by_hand.id));
    assert_eq!(page.findings[0].actions, vec![FindingAction::DeleteServer]);
    let refused = service
        .act(
            &actor(),
            page.findings[0].id,
            FindingAction::AdoptServer,
            "by-hand",
        )
        .await;
    assert!(
        matches!(
            refused,
            Err(server::error::Error::Validation {
                field: "action",
                ..
            })
        ),
        "{refused:?}"
    );
    assert_eq!(
        r.vps(org.id).await.hetzner_server_id,
        Some(server_id),
        "unchanged"
    );
}

on_both_databases!(
    an_orphan_left_by_a_create_whose_answer_was_lost_is_adopted_and_the_create_finishes,
    a_request_without_a_token_is_refused_as_unauthorized_and_not_retried,
    the_client_reads_hetzners_rate_limit_headers,
    old_secrets_stay_readable_after_a_key_rotation_and_reseal_moves_them,
    create_takes_an_org_from_pending_to_active_through_the_simulator,
    secrets_are_sealed_and_never_shown_in_audit_rows_or_job_progress,
    a_job_whose_lease_lapsed_is_taken_over_by_another_worker,
    a_create_interrupted_after_the_server_exists_does_not_create_a_second,
    retryable_failures_back_off_exponentially_then_succeed,
    a_rate_limit_waits_for_its_reset,
    after_the_last_attempt_the_job_fails_and_the_org_shows_the_error,
    invalid_input_fails_at_once_without_retries,
    scripted_faults_are_retried_without_a_duplicate_server,
    an_action_ending_in_error_is_retried,
    a_failing_smoke_test_shows_the_step_and_retry_recovers,
    jobs_of_one_organization_run_one_at_a_time_in_order,
    two_engines_never_run_the_same_job,
    resize_powers_off_changes_the_type_and_comes_back,
    delete_removes_the_server_and_the_route,
    redeploy_uses_the_self_update_endpoint_with_the_instance_secret,
    redeploy_falls_back_to_a_reboot_when_self_update_is_refused,
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hetzners_official_python_client_accepts_everything_the_simulator_answers() {
    use server::hetzner::simulator::SimConfig;
    let Some(python) = support::python::interpreter(
        "import sys, hcloud, requests; sys.exit(hcloud.__version__ != '2.27.0')",
        "hcloud 2.27.0",
    ) else {
        return;
    };
    server::install_tls_provider();
    let sim = Simulator::start(SimConfig {
        boot_delay: Duration::ZERO,
        action_delay: Duration::from_millis(50),
        first_ip: support::random_first_ip().parse().unwrap(),
        ..SimConfig::default()
    })
    .await
    .unwrap();
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/hcloud/hcloud_sim_test.py"
    );
    support::python::run_checks(
        &python,
        script,
        &[
            ("HCLOUD_SIM_URL", sim.api_url().as_str().to_owned()),
            ("HCLOUD_TOKEN", "nest-test-token".to_owned()),
            ("HCLOUD_SIM_DEADLINE", "50".to_owned()),
        ],
        Duration::from_secs(60),
    )
    .await;
    assert!(
        sim.servers().is_empty(),
        "the script deletes what it creates"
    );
}

/// Descriptors this process has open.
fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_simulated_servers_share_three_listening_sockets_and_take_scripted_faults() {
    use app::models::Service;
    use server::hetzner::simulator::SimConfig;
    use server::hetzner::simulator::hosts::{FakeHost, Listening};

    server::install_tls_provider();
    if FakeHost::listening().unwrap() != Listening::Shared {
        let why = "the shared service ports (3000, 3210, 3100) are held by another process";
        assert!(!support::ci(), "CI=true but {why}");
        eprintln!("SKIPPED: {why}");
        return;
    }
    let sim = Simulator::start(SimConfig {
        first_ip: support::random_first_ip().parse().unwrap(),
        ..SimConfig::default()
    })
    .await
    .unwrap();
    let fds_before = open_fds();
    let started = std::time::Instant::now();
    let servers: Vec<_> = (0..10_000)
        .map(|i| {
            sim.add_running_server(&format!("fleet-{i}"), Default::default())
                .unwrap()
        })
        .collect();
    let registered = started.elapsed();
    let fds_after = open_fds();
    println!(
        "10,000 simulated servers registered in {registered:?}; open descriptors {fds_before} -> {fds_after}"
    );
    // Per-server sockets would be 30,000 more; parallel tests open a few of their own.
    assert!(fds_after < fds_before + 500, "{fds_before} -> {fds_after}");

    let http = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let url = |server: &server::hetzner::Server, service: Service| {
        format!(
            "http://{}:{}{}",
            server.public_net.ipv4.as_ref().unwrap().ip,
            service.port(),
            service.path()
        )
    };
    let status = |u: String| {
        let http = http.clone();
        async move { http.get(u).send().await.map(|r| r.status().as_u16()) }
    };
    // A sample of the fleet, every service, all at once.
    let sample: Vec<_> = servers.iter().step_by(97).collect();
    let started = std::time::Instant::now();
    let answers = futures::future::join_all(
        sample
            .iter()
            .flat_map(|s| Service::ALL.iter().map(|svc| status(url(s, *svc)))),
    )
    .await;
    println!(
        "{} probes of {} servers answered in {:?}",
        answers.len(),
        sample.len(),
        started.elapsed()
    );
    assert!(answers.iter().all(|a| matches!(a, Ok(200))), "{answers:?}");

    let control = |method: reqwest::Method, body: serde_json::Value| {
        http.request(method, format!("{}/service-faults", sim.control_url()))
            .header("x-sim-token", sim.control_token())
            .json(&body)
            .send()
    };
    let ids = |v: &serde_json::Value| -> Vec<i64> {
        v["servers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_i64().unwrap())
            .collect()
    };
    // 10 % of the fleet, the first by id: web fails.
    let failing = control(
        reqwest::Method::POST,
        serde_json::json!({"percent": 10, "services": ["web"], "fault": "fail"}),
    )
    .await
    .unwrap();
    assert_eq!(failing.status(), 200);
    let failing = ids(&failing.json().await.unwrap());
    assert_eq!(
        failing,
        servers[..1000].iter().map(|s| s.id).collect::<Vec<_>>()
    );
    // 1 % chosen by a seed (the same seed, the same servers): MTA answers slowly.
    let slow_body = serde_json::json!({"percent": 1, "seed": 7, "services": ["mta"], "fault": "slow", "delay_ms": 300});
    let slow = ids(&control(reqwest::Method::POST, slow_body.clone())
        .await
        .unwrap()
        .json()
        .await
        .unwrap());
    let again = ids(&control(reqwest::Method::POST, slow_body)
        .await
        .unwrap()
        .json()
        .await
        .unwrap());
    assert_eq!((slow.len(), &slow), (100, &again));
    assert_ne!(
        slow,
        servers[..100].iter().map(|s| s.id).collect::<Vec<_>>(),
        "seeded, not the first by id"
    );
    // A list of servers: Convex hangs.
    let hung = [&servers[5000], &servers[5001]];
    let hanging = control(
        reqwest::Method::POST,
        serde_json::json!({"servers": [hung[0].id, hung[1].id], "services": ["convex"], "fault": "hang"}),
    )
    .await
    .unwrap();
    assert_eq!(hanging.status(), 200);
    // An unknown server changes nothing.
    let unknown = control(
        reqwest::Method::POST,
        serde_json::json!({"servers": [servers[0].id, 1], "fault": "hang"}),
    )
    .await
    .unwrap();
    assert_eq!(unknown.status(), 404);

    assert_eq!(status(url(&servers[0], Service::Web)).await.unwrap(), 500);
    assert_eq!(
        status(url(&servers[0], Service::Convex)).await.unwrap(),
        200
    );
    assert_eq!(
        status(url(&servers[1000], Service::Web)).await.unwrap(),
        200
    );
    let slow_server = servers.iter().find(|s| s.id == slow[0]).unwrap();
    let started = std::time::Instant::now();
    assert_eq!(status(url(slow_server, Service::Mta)).await.unwrap(), 200);
    assert!(started.elapsed() >= Duration::from_millis(300));
    let short = http
        .get(url(hung[0], Service::Convex))
        .timeout(Duration::from_millis(400))
        .send()
        .await;
    assert!(
        short.as_ref().is_err_and(reqwest::Error::is_timeout),
        "{short:?}"
    );
    // A hanging request is released when its fault is cleared.
    let waiting = tokio::spawn(status(url(hung[1], Service::Convex)));
    tokio::time::sleep(Duration::from_millis(200)).await;
    let listed: serde_json::Value = http
        .get(format!("{}/service-faults", sim.control_url()))
        .header("x-sim-token", sim.control_token())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(listed["faults"].as_array().unwrap().len(), 1000 + 100 + 2);
    let cleared: serde_json::Value = control(reqwest::Method::DELETE, serde_json::json!({}))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(cleared["cleared"], 1000 + 100 + 2);
    assert_eq!(waiting.await.unwrap().unwrap(), 200);
    assert_eq!(status(url(&servers[0], Service::Web)).await.unwrap(), 200);

    // No simulated server at this loopback address: the connection is closed unanswered.
    let nobody = format!("http://127.0.0.1:{}/", Service::Web.port());
    assert!(http.get(nobody).send().await.is_err());
}
