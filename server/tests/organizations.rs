//! The organization lifecycle on SQLite and PostgreSQL: every (state, event) pair either makes
//! the table's transition with its effects or is refused with nothing written; concurrent
//! admins leave one consistent state; bad input creates nothing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use app::models::{
    Effect, JobKind, JobState, OrgEvent, OrgStatus, Region, RouteChange, VpsStatus, transition,
};
use chrono::Utc;
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, DatabaseConnection, EntityTrait,
    PaginatorTrait, QueryFilter,
};
use server::audit::Actor;
use server::clock::Clock;
use server::entities::{audit_log, jobs, organizations, routes, tiers, vpses};
use server::error::Error;
use server::organizations::{EventArgs, NewOrganization, OrganizationService};

fn actor() -> Actor {
    Actor {
        user_id: None,
        email: "ops@nest.test".into(),
        ip: Some("127.0.0.1".into()),
        user_agent: None,
    }
}

async fn tier(db: &DatabaseConnection, code: &str) -> tiers::Model {
    tiers::Entity::find()
        .filter(tiers::Column::Code.eq(code))
        .one(db)
        .await
        .unwrap()
        .unwrap()
}

fn service(db: &DatabaseConnection) -> OrganizationService {
    OrganizationService {
        db: db.clone(),
        clock: Clock::system(),
        base_domain: "localhost".into(),
        events: Default::default(),
        routing: server::routing::RoutingService {
            db: db.clone(),
            clock: Clock::system(),
            caddy: None,
            base_domain: "localhost".into(),
        },
        billing: None,
    }
}

async fn new_org(db: &DatabaseConnection, slug: &str) -> organizations::Model {
    let starter = tier(db, "starter").await;
    service(db)
        .create(
            &actor(),
            NewOrganization {
                name: format!("Org {slug}"),
                slug: slug.into(),
                owner_email: "owner@acme.test".into(),
                tier_id: starter.id,
                region: "nbg1".into(),
            },
            false,
        )
        .await
        .unwrap()
}

/// Puts an organization in `status` with a running VPS and an enabled route, as a test fixture.
async fn fixture(db: &DatabaseConnection, slug: &str, status: OrgStatus) -> organizations::Model {
    let org = new_org(db, slug).await;
    organizations::Entity::update_many()
        .col_expr(organizations::Column::Status, Expr::value(status))
        .filter(organizations::Column::Id.eq(org.id))
        .exec(db)
        .await
        .unwrap();
    let now = Utc::now();
    vpses::ActiveModel {
        organization_id: Set(org.id),
        name: Set(format!("nest-{slug}")),
        hetzner_server_id: Set(None),
        server_type: Set("cx22".parse().unwrap()),
        region: Set(Region::Nbg1),
        ipv4: Set(Some("127.0.0.2".into())),
        status: Set(VpsStatus::Running),
        secrets_ciphertext: Set(None),
        secrets_nonce: Set(None),
        secrets_key_id: Set(None),
        created_at: Set(now),
        updated_at: Set(now),
        deleted_at: Set(None),
        ..Default::default()
    }
    .insert(db)
    .await
    .unwrap();
    organizations::Entity::find_by_id(org.id)
        .one(db)
        .await
        .unwrap()
        .unwrap()
}

async fn failed_job(
    db: &DatabaseConnection,
    org: &organizations::Model,
    kind: JobKind,
) -> jobs::Model {
    let now = Utc::now();
    let payload = match kind {
        JobKind::Resize => app::models::JobPayload::Resize {
            organization_id: org.id,
            server_type: "cx32".parse().unwrap(),
        },
        other => app::models::JobPayload::for_organization(other, org.id).unwrap(),
    };
    let job = server::jobs::enqueue(db, server::jobs::NewJob::now(payload, now), now)
        .await
        .unwrap()
        .unwrap();
    let mut active: jobs::ActiveModel = job.into();
    active.state = Set(JobState::Failed);
    active.attempts = Set(5);
    active.last_error = Set(Some("boom".into()));
    active.started_at = Set(Some(now));
    active.finished_at = Set(Some(now));
    active.update(db).await.unwrap()
}

#[derive(Debug, PartialEq)]
struct Snapshot {
    org: organizations::Model,
    queued: Vec<(JobKind, JobState)>,
    route: Option<bool>,
    audit: u64,
}

async fn snapshot(db: &DatabaseConnection, org_id: i64) -> Snapshot {
    let mut queued: Vec<(JobKind, JobState)> = jobs::Entity::find()
        .filter(jobs::Column::OrganizationId.eq(org_id))
        .all(db)
        .await
        .unwrap()
        .into_iter()
        .map(|j| (j.kind, j.state))
        .collect();
    queued.sort();
    Snapshot {
        org: organizations::Entity::find_by_id(org_id)
            .one(db)
            .await
            .unwrap()
            .unwrap(),
        queued,
        route: routes::Entity::find()
            .filter(routes::Column::OrganizationId.eq(org_id))
            .one(db)
            .await
            .unwrap()
            .map(|r| r.enabled),
        audit: audit_log::Entity::find()
            .filter(audit_log::Column::TargetId.eq(org_id.to_string()))
            .count(db)
            .await
            .unwrap(),
    }
}

async fn every_state_and_event_pair_follows_the_table(db: &DatabaseConnection) {
    let growth = tier(db, "growth").await;
    let mut n = 0;
    for status in OrgStatus::ALL {
        for event in OrgEvent::all() {
            n += 1;
            let org = fixture(db, &format!("pair-{n}"), *status).await;
            if let OrgEvent::Retry(kind) = event {
                failed_job(db, &org, kind).await;
            }
            let before = snapshot(db, org.id).await;
            let args = EventArgs {
                tier_id: Some(growth.id),
                reason: Some("because".into()),
            };
            let result = service(db).apply(&actor(), org.id, event, args).await;
            let after = snapshot(db, org.id).await;
            match transition(*status, event) {
                None => {
                    assert!(
                        matches!(result, Err(Error::Conflict(_))),
                        "{status} × {event:?}: {result:?}"
                    );
                    assert_eq!(
                        before, after,
                        "{status} × {event:?}: refused, so nothing written"
                    );
                }
                Some(step) => {
                    let org_after =
                        result.unwrap_or_else(|e| panic!("{status} × {event:?}: {e:?}"));
                    assert_eq!(org_after.status, step.to, "{status} × {event:?}");
                    assert_eq!(
                        after.audit,
                        before.audit + 1,
                        "{status} × {event:?}: one audit row"
                    );
                    let mut expected_jobs = before.queued.clone();
                    let mut expected_route = before.route;
                    for effect in step.effects {
                        match effect {
                            Effect::Enqueue(kind) => expected_jobs.push((*kind, JobState::Queued)),
                            Effect::ResizeIfServerTypeChanges => {
                                expected_jobs.push((JobKind::Resize, JobState::Queued))
                            }
                            Effect::RequeueFailedJob => {
                                let OrgEvent::Retry(kind) = event else {
                                    unreachable!()
                                };
                                expected_jobs.retain(|j| *j != (kind, JobState::Failed));
                                expected_jobs.push((kind, JobState::Queued));
                            }
                            Effect::Route(RouteChange::Enable) => expected_route = Some(true),
                            Effect::Route(RouteChange::Disable) => {
                                expected_route = expected_route.map(|_| false)
                            }
                            Effect::Route(RouteChange::Remove) => expected_route = None,
                            // The fixtures are not billed through Stripe: nothing to cancel,
                            // so no job (the Stripe case is in signups.rs).
                            Effect::CancelSubscription => {}
                        }
                    }
                    expected_jobs.sort();
                    assert_eq!(after.queued, expected_jobs, "{status} × {event:?}: jobs");
                    assert_eq!(after.route, expected_route, "{status} × {event:?}: route");
                    if event == OrgEvent::ChangeTier {
                        assert_eq!(org_after.tier_id, growth.id);
                    }
                }
            }
        }
    }
}

async fn two_admins_acting_at_once_leave_one_consistent_state(db: &DatabaseConnection) {
    for round in 0..5 {
        let org = fixture(db, &format!("race-{round}"), OrgStatus::Active).await;
        let (a, b) = (service(db), service(db));
        let (alice, bob) = (actor(), actor());
        let (suspend, delete) = tokio::join!(
            a.apply(&alice, org.id, OrgEvent::Suspend, EventArgs::default()),
            b.apply(&bob, org.id, OrgEvent::Delete, EventArgs::default()),
        );
        let applied = usize::from(suspend.is_ok()) + usize::from(delete.is_ok());
        assert!(applied >= 1, "{suspend:?} {delete:?}");
        for r in [&suspend, &delete] {
            if let Err(e) = r {
                assert!(
                    matches!(e, Error::Conflict(_)),
                    "the loser gets a conflict: {e:?}"
                );
            }
        }
        let after = snapshot(db, org.id).await;
        assert_eq!(
            after.audit,
            applied as u64 + 1,
            "one audit row per applied action (+ creation)"
        );
        let expected = match (suspend.is_ok(), delete.is_ok()) {
            (true, false) => OrgStatus::Suspended,
            (_, true) => OrgStatus::Deleting,
            _ => unreachable!(),
        };
        assert_eq!(after.org.status, expected);
        let delete_jobs = after
            .queued
            .iter()
            .filter(|j| j.0 == JobKind::Delete)
            .count();
        assert_eq!(delete_jobs, usize::from(delete.is_ok()));
    }
}

async fn bad_input_is_refused_with_a_clear_error_and_no_row(db: &DatabaseConnection) {
    new_org(db, "taken").await;
    let starter = tier(db, "starter").await;
    let base = NewOrganization {
        name: "Acme".into(),
        slug: "acme".into(),
        owner_email: "owner@acme.test".into(),
        tier_id: starter.id,
        region: "nbg1".into(),
    };
    let cases: Vec<(NewOrganization, &str)> = vec![
        (
            NewOrganization {
                slug: "Bad Slug".into(),
                ..base.clone()
            },
            "slug",
        ),
        (
            NewOrganization {
                slug: "ab".into(),
                ..base.clone()
            },
            "slug",
        ),
        (
            NewOrganization {
                slug: "admin".into(),
                ..base.clone()
            },
            "slug",
        ),
        (
            NewOrganization {
                slug: "taken".into(),
                ..base.clone()
            },
            "slug",
        ),
        (
            NewOrganization {
                tier_id: 999_999,
                ..base.clone()
            },
            "tier",
        ),
        (
            NewOrganization {
                region: "mars1".into(),
                ..base.clone()
            },
            "region",
        ),
        (
            NewOrganization {
                name: "x".repeat(101),
                ..base.clone()
            },
            "name",
        ),
        (
            NewOrganization {
                name: "  ".into(),
                ..base.clone()
            },
            "name",
        ),
        (
            NewOrganization {
                owner_email: "nobody".into(),
                ..base.clone()
            },
            "owner_email",
        ),
    ];
    let before = organizations::Entity::find().count(db).await.unwrap();
    for (input, field) in cases {
        let shown = format!("{input:?}");
        match service(db).create(&actor(), input, true).await {
            Err(Error::Validation { field: f, message }) => {
                assert_eq!(f, field, "{shown}: {message}");
                assert!(!message.is_empty());
            }
            other => panic!("{shown}: expected a validation error, got {other:?}"),
        }
    }
    assert_eq!(
        organizations::Entity::find().count(db).await.unwrap(),
        before,
        "no row"
    );
    assert_eq!(jobs::Entity::find().count(db).await.unwrap(), 0, "no job");
}

async fn an_admin_created_org_has_its_create_job_queued(db: &DatabaseConnection) {
    let starter = tier(db, "starter").await;
    let org = service(db)
        .create(
            &actor(),
            NewOrganization {
                name: "Direct".into(),
                slug: "direct".into(),
                owner_email: "owner@direct.test".into(),
                tier_id: starter.id,
                region: "hel1".into(),
            },
            true,
        )
        .await
        .unwrap();
    assert_eq!(org.status, OrgStatus::Pending);
    let snap = snapshot(db, org.id).await;
    assert_eq!(snap.queued, vec![(JobKind::Create, JobState::Queued)]);
    assert_eq!(snap.audit, 1);
}

async fn the_organization_server_functions_work_end_to_end(db: &DatabaseConnection) {
    let server = support::TestServer::start(db).await;
    let mut admin = support::setup_superadmin(&server, "ops@nest.test").await;
    let starter = tier(db, "starter").await.id.to_string();
    let args = |slug: &'static str| {
        vec![
            ("name", "Acme Inc."),
            ("slug", slug),
            ("owner_email", "owner@acme.test"),
            ("region", "hel1"),
        ]
    };
    let mut create = args("acme");
    create.push(("tier_id", &starter));
    let created = admin.call("create_organization", &create).await;
    assert_eq!(created.status, 200, "{created:?}");
    let id = created.body.as_i64().unwrap().to_string();

    let mut dup = args("acme");
    dup.push(("tier_id", &starter));
    let dup = admin.call("create_organization", &dup).await;
    assert_eq!(dup.status, 422);
    assert!(
        dup.error()
            .unwrap()
            .for_field("slug")
            .unwrap()
            .contains("already taken")
    );
    assert_eq!(
        admin.call("slug_available", &[("slug", "acme")]).await.body,
        serde_json::json!(false)
    );
    assert_eq!(
        admin
            .call("slug_available", &[("slug", "fresh-one")])
            .await
            .body,
        serde_json::json!(true)
    );

    let list = admin
        .call(
            "list_organizations",
            &[("query[sort]", "Newest"), ("query[search]", "ACME")],
        )
        .await;
    assert_eq!(list.status, 200, "{list:?}");
    assert_eq!(list.body["rows"][0]["slug"], "acme");

    let detail = admin.call("get_organization", &[("id", &id)]).await;
    assert_eq!(detail.body["org"]["status"], "pending");
    assert_eq!(detail.body["jobs"][0]["kind"], "create");
    assert_eq!(detail.body["jobs"][0]["state"], "queued");
    let actions = detail.body["actions"].as_array().unwrap();
    assert!(
        !actions.contains(&serde_json::json!("Approve")),
        "already approved: {actions:?}"
    );

    let refused = admin
        .call(
            "organization_action",
            &[("id", &id), ("action", "suspended")],
        )
        .await;
    assert_eq!(refused.status, 409, "{refused:?}");
    // Deleting is confirmed by typing the slug: the server checks it, whatever the form did.
    for typed in [None, Some("acm")] {
        let mut args = vec![("id", id.as_str()), ("action", "delete_requested")];
        args.extend(typed.map(|t| ("confirm", t)));
        let unconfirmed = admin.call("organization_action", &args).await;
        assert_eq!(
            unconfirmed.error(),
            Some(app::error::AppError::validation(
                "confirm",
                "type acme to confirm the deletion"
            )),
            "{typed:?}"
        );
    }
    let deleted = admin
        .call(
            "organization_action",
            &[
                ("id", &id),
                ("action", "delete_requested"),
                ("confirm", "acme"),
            ],
        )
        .await;
    assert_eq!(deleted.status, 200, "{deleted:?}");
    let detail = admin.call("get_organization", &[("id", &id)]).await;
    assert_eq!(detail.body["org"]["status"], "deleting");
    let system = admin
        .call("organization_action", &[("id", &id), ("action", "deleted")])
        .await;
    assert_eq!(
        system.status, 422,
        "system events are not admin actions: {system:?}"
    );
}

async fn the_list_pages_by_cursor_in_every_sort_order(db: &DatabaseConnection) {
    for i in 0..23 {
        new_org(db, &format!("page-{i:02}")).await;
    }
    let svc = service(db);
    for sort in [
        app::models::OrgSort::Newest,
        app::models::OrgSort::Oldest,
        app::models::OrgSort::Name,
    ] {
        let mut seen = Vec::new();
        let mut after = None;
        loop {
            let page = server::organizations::queries::list(
                db,
                app::models::OrgQuery {
                    sort,
                    after: after.clone(),
                    ..Default::default()
                },
                10,
            )
            .await
            .unwrap();
            seen.extend(page.rows.iter().map(|r| r.id));
            match page.next {
                Some(n) => after = Some(n),
                None => break,
            }
        }
        assert_eq!(seen.len(), 23, "{sort:?}: every row once");
        let mut unique = seen.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), 23, "{sort:?}: no duplicates");
    }
    let _ = svc;
    let filtered = server::organizations::queries::list(
        db,
        app::models::OrgQuery {
            status: Some(OrgStatus::Active),
            ..Default::default()
        },
        10,
    )
    .await
    .unwrap();
    assert!(filtered.rows.is_empty());
}

async fn the_waitlist_holds_unapproved_signups_until_approved_or_rejected(db: &DatabaseConnection) {
    let server = support::TestServer::start(db).await;
    let mut admin = support::setup_superadmin(&server, "ops@nest.test").await;
    let first = new_org(db, "signup-one").await;
    let second = new_org(db, "signup-two").await;
    let growth = tier(db, "growth").await.id.to_string();
    let list = admin.call("list_waitlist", &[]).await;
    let slugs: Vec<&str> = list
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["slug"].as_str().unwrap())
        .collect();
    assert_eq!(slugs, ["signup-one", "signup-two"], "oldest first");

    let approve = admin
        .call(
            "organization_action",
            &[
                ("id", &first.id.to_string()),
                ("action", "approved"),
                ("tier_id", &growth),
            ],
        )
        .await;
    assert_eq!(approve.status, 200, "{approve:?}");
    let again = admin
        .call(
            "organization_action",
            &[("id", &first.id.to_string()), ("action", "approved")],
        )
        .await;
    assert_eq!(again.status, 409, "approving twice is refused");
    let reject = admin
        .call(
            "organization_action",
            &[
                ("id", &second.id.to_string()),
                ("action", "rejected"),
                ("reason", "Duplicate signup"),
            ],
        )
        .await;
    assert_eq!(reject.status, 200);

    assert_eq!(
        admin.call("list_waitlist", &[]).await.body,
        serde_json::json!([])
    );
    let approved = snapshot(db, first.id).await;
    assert_eq!(approved.queued, vec![(JobKind::Create, JobState::Queued)]);
    assert_eq!(
        approved.org.tier_id,
        tier(db, "growth").await.id,
        "approved on another tier"
    );
    let rejected = snapshot(db, second.id).await;
    assert_eq!(rejected.org.status, OrgStatus::Cancelled);
    assert_eq!(
        rejected.org.status_reason.as_deref(),
        Some("Duplicate signup")
    );
}

async fn mrr_sums_the_tier_prices_of_active_organizations(db: &DatabaseConnection) {
    fixture(db, "paying-a", OrgStatus::Active).await;
    fixture(db, "paying-b", OrgStatus::Active).await;
    fixture(db, "not-paying", OrgStatus::Suspended).await;
    let server = support::TestServer::start(db).await;
    let mut admin = support::setup_superadmin(&server, "ops@nest.test").await;
    let status = admin.call("platform_status", &[]).await;
    assert_eq!(status.body["mrr_cents"], 5_600, "two Starter orgs at €28");
    assert_eq!(status.body["currency"], "EUR");
}

async fn a_batch_of_transitions_is_written_whole_or_not_at_all(db: &DatabaseConnection) {
    use sea_orm::TransactionTrait;
    use server::organizations::Prepared;
    let svc = service(db);
    let mut orgs = Vec::new();
    for slug in ["batch-a", "batch-b", "batch-c"] {
        orgs.push(new_org(db, slug).await);
    }
    let paid = |org: &organizations::Model| {
        Prepared::payment(org.clone(), OrgEvent::FirstInvoicePaid, false).unwrap()
    };
    // An organization approved by an admin meanwhile has a create job: refused before writing.
    assert!(matches!(
        Prepared::payment(orgs[0].clone(), OrgEvent::FirstInvoicePaid, true),
        Err(Error::Conflict(_))
    ));
    // One of three changed since it was read: the whole batch is refused, nothing is written.
    let stale = orgs.iter().map(paid).collect::<Vec<_>>();
    svc.apply(&actor(), orgs[1].id, OrgEvent::Reject, EventArgs::default())
        .await
        .unwrap();
    let mut unchanged = Vec::new();
    for id in [orgs[0].id, orgs[2].id] {
        unchanged.push(snapshot(db, id).await);
    }
    let txn = db.begin().await.unwrap();
    let refused = svc.write_many(&txn, &actor(), stale).await;
    assert!(matches!(refused, Err(Error::Conflict(_))), "{refused:?}");
    txn.rollback().await.unwrap();
    for (id, was) in [orgs[0].id, orgs[2].id].into_iter().zip(&unchanged) {
        assert_eq!(&snapshot(db, id).await, was);
    }
    // The two unchanged ones, together: each gets its own create job and its own audit row.
    let txn = db.begin().await.unwrap();
    let written = svc
        .write_many(&txn, &actor(), vec![paid(&orgs[0]), paid(&orgs[2])])
        .await
        .unwrap();
    txn.commit().await.unwrap();
    assert_eq!(written.len(), 2);
    for (w, org) in written.iter().zip([&orgs[0], &orgs[2]]) {
        assert_eq!(w.org_id, org.id);
        let job = jobs::Entity::find()
            .filter(jobs::Column::OrganizationId.eq(org.id))
            .all(db)
            .await
            .unwrap();
        assert_eq!(job.len(), 1);
        assert_eq!(
            (job[0].kind, job[0].state),
            (JobKind::Create, JobState::Queued)
        );
        assert_eq!(w.jobs, vec![job[0].id]);
        let audit = audit_log::Entity::find()
            .filter(audit_log::Column::TargetId.eq(org.id.to_string()))
            .filter(audit_log::Column::Action.eq("organization.first_invoice_paid"))
            .all(db)
            .await
            .unwrap();
        assert_eq!(audit.len(), 1);
        assert_eq!(audit[0].detail["jobs"], serde_json::json!([job[0].id]));
        assert_eq!(audit[0].actor_email, "ops@nest.test");
    }
}

on_both_databases!(
    a_batch_of_transitions_is_written_whole_or_not_at_all,
    the_waitlist_holds_unapproved_signups_until_approved_or_rejected,
    mrr_sums_the_tier_prices_of_active_organizations,
    the_organization_server_functions_work_end_to_end,
    the_list_pages_by_cursor_in_every_sort_order,
    every_state_and_event_pair_follows_the_table,
    two_admins_acting_at_once_leave_one_consistent_state,
    bad_input_is_refused_with_a_clear_error_and_no_row,
    an_admin_created_org_has_its_create_job_queued,
);
