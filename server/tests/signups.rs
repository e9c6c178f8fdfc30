//! Self-service signup and Stripe's webhook, end to end on SQLite and PostgreSQL: the public
//! server functions over HTTP, the Stripe simulator over real sockets (its events signed and
//! delivered to Nest's `/webhooks/stripe`), and the job engine provisioning on the simulated
//! cloud. Signatures (tampered, stale, wrong secret), replays (50 concurrent copies), out-of-
//! order delivery, unknown events, batches (and a failed batch applied again event by event),
//! subscription cancellation, the per-client limit and expiry.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[macro_use]
mod support;

use std::time::Duration;

use app::models::{JobKind, OrgStatus, SignupPayment};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, DbBackend, EntityTrait, PaginatorTrait,
    QueryFilter,
};
use server::billing::stripe::simulator::{DeliveryMode, Simulator, signature};
use server::clock::Clock;
use server::entities::{audit_log, invoices, jobs, organizations, routes, signups, stripe_events};
use support::{Client, TestServer};

struct Rig {
    server: TestServer,
    client: Client,
}

async fn rig(db: &DatabaseConnection) -> Rig {
    let server = TestServer::start_with(db, Clock::system(), &[]).await;
    let client = server.client();
    Rig { server, client }
}

impl Rig {
    fn sim(&self) -> &Simulator {
        self.server
            .app
            .integrations
            .stripe
            .simulator
            .as_deref()
            .unwrap()
    }

    fn db(&self) -> &DatabaseConnection {
        &self.server.app.db
    }

    async fn growth_id(&self) -> String {
        use server::entities::tiers;
        tiers::Entity::find()
            .filter(tiers::Column::Code.eq("growth"))
            .one(self.db())
            .await
            .unwrap()
            .unwrap()
            .id
            .to_string()
    }

    /// Starts a signup through the public server function; returns the `/pending` token.
    async fn start(&mut self, slug: &str) -> String {
        let tier = self.growth_id().await;
        let email = format!("owner@{slug}.test");
        let reply = self
            .client
            .call(
                "start_signup",
                &[
                    ("input[name]", &format!("Org {slug}")),
                    ("input[slug]", slug),
                    ("input[owner_email]", &email),
                    ("input[tier_id]", &tier),
                    ("input[region]", "fsn1"),
                ],
            )
            .await;
        assert_eq!(reply.status, 200, "{reply:?}");
        assert!(
            reply.body["client_secret"]
                .as_str()
                .unwrap()
                .contains("_secret_")
        );
        reply.body["token"].as_str().unwrap().to_owned()
    }

    async fn pay(&mut self, token: &str, card: &str) -> support::Reply {
        self.client
            .call("pay_with_test_card", &[("token", token), ("card", card)])
            .await
    }

    async fn org(&self, slug: &str) -> organizations::Model {
        organizations::Entity::find()
            .filter(organizations::Column::Slug.eq(slug))
            .one(self.db())
            .await
            .unwrap()
            .unwrap()
    }

    async fn signup(&self, org_id: i64) -> signups::Model {
        signups::Entity::find()
            .filter(signups::Column::OrganizationId.eq(org_id))
            .one(self.db())
            .await
            .unwrap()
            .unwrap()
    }

    async fn create_jobs(&self, org_id: i64) -> u64 {
        jobs::Entity::find()
            .filter(jobs::Column::OrganizationId.eq(org_id))
            .filter(jobs::Column::Kind.eq(JobKind::Create))
            .count(self.db())
            .await
            .unwrap()
    }

    /// Waits (bounded) until the simulator has delivered every event it made so far.
    async fn delivered(&self) {
        for _ in 0..200 {
            let events = self.sim().events().len();
            let deliveries = self.sim().deliveries();
            let done = deliveries
                .iter()
                .filter(|d| d.status == Some(200))
                .map(|d| d.event_id.clone())
                .collect::<std::collections::HashSet<_>>()
                .len();
            if done >= events {
                return;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!(
            "the simulator did not deliver its events: {:?}",
            self.sim().deliveries()
        );
    }

    /// POSTs `payload` to the webhook with the given signature header.
    async fn post_webhook(&self, payload: &str, sig: &str) -> (u16, String) {
        let response = reqwest::Client::new()
            .post(format!("{}/webhooks/stripe", self.server.base))
            .header("stripe-signature", sig)
            .header("content-type", "application/json")
            .body(payload.to_owned())
            .send()
            .await
            .unwrap();
        (response.status().as_u16(), response.text().await.unwrap())
    }

    /// POSTs every `(payload, signature)` at once; each must be answered 200. Returns how many
    /// answers were replays.
    async fn post_all_at_once(
        self: &std::sync::Arc<Self>,
        deliveries: Vec<(String, String)>,
    ) -> usize {
        let mut tasks = Vec::new();
        for (payload, header) in deliveries {
            let r = self.clone();
            tasks.push(tokio::spawn(async move {
                r.post_webhook(&payload, &header).await
            }));
        }
        let mut replays = 0;
        for task in tasks {
            let (status, text) = task.await.unwrap();
            assert_eq!(status, 200, "{text}");
            replays += usize::from(text.contains("\"replay\":true"));
        }
        replays
    }

    /// Starts one signup per card (`<prefix>-<i>`, each from its own address) and pays it with
    /// that card, Stripe's events held; returns the first invoices' events (paid or failed).
    async fn held_first_payments(&self, prefix: &str, cards: &[&str]) -> Vec<String> {
        self.sim()
            .set_delivery_mode(DeliveryMode::OutOfOrder { count: 1000 });
        let tier: i64 = self.growth_id().await.parse().unwrap();
        let signups_service = self.server.app.signups();
        let store = std::sync::Arc::new(server::admins::session_store::DbSessionStore::new(
            self.db().clone(),
            self.server.clock.clone(),
            chrono::Duration::minutes(30),
        ));
        for (i, card) in cards.iter().enumerate() {
            // Each from its own address: the per-client limit is not what these tests are about.
            let req = app::backend::RequestInfo {
                session: tower_sessions::Session::new(None, store.clone(), None),
                ip: Some(format!("10.77.{}.{}", i / 200, i % 200 + 1)),
                user_agent: None,
            };
            let started = signups_service
                .start(
                    &req,
                    app::models::SignupInput {
                        name: format!("Batch {i}"),
                        slug: format!("{prefix}-{i}"),
                        owner_email: format!("owner@{prefix}-{i}.test"),
                        tier_id: tier,
                        region: "fsn1".to_owned(),
                    },
                )
                .await
                .unwrap();
            let _ = signups_service
                .pay_with_test_card(&started.token, card)
                .await;
        }
        self.sim()
            .events()
            .into_iter()
            .filter(|e| e.type_ == "invoice.paid" || e.type_ == "invoice.payment_failed")
            .map(|e| self.sim().event(&e.id).unwrap().to_string())
            .collect()
    }

    fn secret(&self) -> String {
        self.server
            .app
            .integrations
            .stripe
            .webhook_secret
            .expose()
            .to_owned()
    }

    /// The JSON of the simulator's latest event of `type_`.
    fn event_of(&self, type_: &str) -> String {
        let view = self
            .sim()
            .events()
            .into_iter()
            .filter(|e| e.type_ == type_)
            .max_by_key(|e| e.created)
            .unwrap_or_else(|| panic!("no {type_} event"));
        self.sim().event(&view.id).unwrap().to_string()
    }
}

async fn a_paid_signup_is_provisioned_and_its_page_follows_it(db: &DatabaseConnection) {
    let mut r = rig(db).await;
    let token = r.start("paid-co").await;
    let org = r.org("paid-co").await;
    assert_eq!(org.status, OrgStatus::Pending);
    assert!(org.stripe_customer_id.is_some() && org.stripe_subscription_id.is_some());
    // Nothing is provisioned before the payment.
    assert_eq!(r.create_jobs(org.id).await, 0);
    let status = r
        .client
        .call("get_signup_status", &[("token", &token)])
        .await;
    assert_eq!(status.body["payment"], "awaiting_payment");

    let paid = r.pay(&token, "4242 4242 4242 4242").await;
    assert_eq!(paid.status, 200, "{paid:?}");
    r.delivered().await;
    assert_eq!(r.signup(org.id).await.payment_state, SignupPayment::Paid);
    assert_eq!(r.create_jobs(org.id).await, 1);

    let engine = r.server.app.worker_with(
        r.server.app.queue_config(),
        r.server
            .app
            .registry(r.server.app.provisioner(r.server.app.provisioning_config())),
    );
    engine.run_until_idle().await.unwrap();
    assert_eq!(r.org("paid-co").await.status, OrgStatus::Active);
    // The payment is in the ledger, recorded by the job the webhook queued.
    let invoice = invoices::Entity::find()
        .filter(invoices::Column::OrganizationId.eq(org.id))
        .all(r.db())
        .await
        .unwrap();
    assert_eq!(invoice.len(), 1, "{invoice:?}");
    assert_eq!(invoice[0].status, app::models::InvoiceStatus::Paid);
    assert!(invoice[0].stripe_invoice_id.is_some());
    assert_eq!(
        invoice[0].amount_cents, 6_000,
        "Growth's price, as Stripe charged it"
    );
    let status = r
        .client
        .call("get_signup_status", &[("token", &token)])
        .await;
    assert_eq!(status.body["status"], "active");
    assert_eq!(status.body["instance_url"], "http://paid-co.localhost");
    // Another signup's token is not this one's, and a made-up one reveals nothing.
    let other = r
        .client
        .call("get_signup_status", &[("token", &"a".repeat(64))])
        .await;
    assert_eq!(other.status, 404, "{other:?}");
}

async fn a_declined_card_is_reported_and_a_retry_provisions(db: &DatabaseConnection) {
    let mut r = rig(db).await;
    let token = r.start("declined-co").await;
    let org = r.org("declined-co").await;
    let declined = r.pay(&token, "4000 0000 0000 0002").await;
    assert_eq!(declined.status, 422, "{declined:?}");
    assert!(
        declined.body.to_string().contains("declined"),
        "{declined:?}"
    );
    r.delivered().await;
    assert_eq!(r.org("declined-co").await.status, OrgStatus::Error);
    let signup = r.signup(org.id).await;
    assert_eq!(signup.payment_state, SignupPayment::Declined);
    assert!(signup.payment_error.unwrap().contains("declined"));
    assert_eq!(r.create_jobs(org.id).await, 0);

    let paid = r.pay(&token, "4242424242424242").await;
    assert_eq!(paid.status, 200, "{paid:?}");
    r.delivered().await;
    assert_eq!(r.org("declined-co").await.status, OrgStatus::Pending);
    assert_eq!(r.signup(org.id).await.payment_state, SignupPayment::Paid);
    assert_eq!(r.create_jobs(org.id).await, 1);
    // A card that is not a test card is refused beside the card field, changing nothing.
    let token2 = r.start("odd-card-co").await;
    let odd = r.pay(&token2, "1234").await;
    assert_eq!(odd.status, 422);
    assert!(odd.body.to_string().contains("card"));
}

async fn bad_signatures_are_refused_and_change_nothing(db: &DatabaseConnection) {
    let mut r = rig(db).await;
    // Events are kept, not delivered, so this test posts them itself.
    let token = r.start("sig-co").await;
    r.delivered().await;
    let before = stripe_events::Entity::find().count(r.db()).await.unwrap();
    let sim_deliveries = r.sim().deliveries().len();
    r.sim()
        .set_delivery_mode(DeliveryMode::OutOfOrder { count: 1000 });
    assert_eq!(r.pay(&token, "4242 4242 4242 4242").await.status, 200);
    let payload = r.event_of("invoice.paid");
    let org = r.org("sig-co").await;
    let now = r.server.clock.now().timestamp();
    let secret = r.secret();

    let tampered = payload.replace("\"livemode\":false", "\"livemode\":true");
    assert_ne!(tampered, payload);
    for (body, sig, why) in [
        (
            tampered.as_str(),
            signature(&secret, now, &payload),
            "tampered body",
        ),
        (
            payload.as_str(),
            signature(&secret, now - 301, &payload),
            "301 s old",
        ),
        (
            payload.as_str(),
            signature("whsec_wrong", now, &payload),
            "wrong secret",
        ),
        (
            payload.as_str(),
            "t=abc,v1=00".to_owned(),
            "malformed header",
        ),
    ] {
        let (status, text) = r.post_webhook(body, &sig).await;
        assert_eq!(status, 400, "{why}: {text}");
    }
    assert_eq!(
        stripe_events::Entity::find().count(r.db()).await.unwrap(),
        before
    );
    assert_eq!(r.create_jobs(org.id).await, 0);
    assert_eq!(
        r.signup(org.id).await.payment_state,
        SignupPayment::AwaitingPayment
    );
    // Within the tolerance, the same event is accepted.
    let (status, _) = r
        .post_webhook(&payload, &signature(&secret, now - 299, &payload))
        .await;
    assert_eq!(status, 200);
    assert_eq!(r.create_jobs(org.id).await, 1);
    assert!(r.sim().deliveries().len() >= sim_deliveries);
}

async fn fifty_concurrent_copies_of_invoice_paid_make_one_job(db: &DatabaseConnection) {
    let mut r = rig(db).await;
    let token = r.start("replay-co").await;
    r.delivered().await;
    r.sim()
        .set_delivery_mode(DeliveryMode::OutOfOrder { count: 1000 });
    assert_eq!(r.pay(&token, "4242 4242 4242 4242").await.status, 200);
    let payload = r.event_of("invoice.paid");
    let secret = r.secret();
    let now = r.server.clock.now().timestamp();
    let header = signature(&secret, now, &payload);
    let r = std::sync::Arc::new(r);
    let replays = r.post_all_at_once(vec![(payload, header); 50]).await;
    assert_eq!(replays, 49);
    let org = r.org("replay-co").await;
    assert_eq!(r.create_jobs(org.id).await, 1);
    let records = jobs::Entity::find()
        .filter(jobs::Column::Kind.eq(JobKind::RecordInvoice))
        .count(r.db())
        .await
        .unwrap();
    assert_eq!(records, 1, "one ledger record for the one payment");
}

async fn a_failure_delivered_after_the_payment_changes_nothing(db: &DatabaseConnection) {
    let mut r = rig(db).await;
    let token = r.start("order-co").await;
    r.delivered().await;
    // Hold every event: the decline and then the payment, delivered by hand newest first.
    r.sim()
        .set_delivery_mode(DeliveryMode::OutOfOrder { count: 1000 });
    assert_eq!(r.pay(&token, "4000 0000 0000 0002").await.status, 422);
    let failed = r.event_of("invoice.payment_failed");
    assert_eq!(r.pay(&token, "4242 4242 4242 4242").await.status, 200);
    let paid = r.event_of("invoice.paid");
    let secret = r.secret();
    let now = r.server.clock.now().timestamp();
    for payload in [&paid, &failed] {
        let (status, text) = r
            .post_webhook(payload, &signature(&secret, now, payload))
            .await;
        assert_eq!(status, 200, "{text}");
    }
    let org = r.org("order-co").await;
    assert_eq!(
        org.status,
        OrgStatus::Pending,
        "the late failure moved the org"
    );
    assert_eq!(r.signup(org.id).await.payment_state, SignupPayment::Paid);
    assert_eq!(r.create_jobs(org.id).await, 1);
    // An event type Nest does not act on: 200, recorded, nothing else.
    let unknown = r.event_of("invoice.finalized");
    let (status, _) = r
        .post_webhook(&unknown, &signature(&secret, now, &unknown))
        .await;
    assert_eq!(status, 200);
    let id = serde_json::from_str::<serde_json::Value>(&unknown).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        stripe_events::Entity::find_by_id(id)
            .one(r.db())
            .await
            .unwrap()
            .is_some()
    );
    // One whose object async-stripe could not read (a newer API version's, or a type it does
    // not know): still 200 and recorded, so Stripe does not retry it for days.
    let unreadable = serde_json::json!({
        "id": "evt_unreadable", "object": "event", "type": "charge.refunded",
        "data": {"object": {"id": "ch_1", "object": "charge"}},
    })
    .to_string();
    let (status, text) = r
        .post_webhook(&unreadable, &signature(&secret, now, &unreadable))
        .await;
    assert_eq!(status, 200, "{text}");
    assert!(
        stripe_events::Entity::find_by_id("evt_unreadable".to_owned())
            .one(r.db())
            .await
            .unwrap()
            .is_some()
    );
}

async fn cancelling_follows_the_subscription(db: &DatabaseConnection) {
    let mut r = rig(db).await;
    let token = r.start("cancel-co").await;
    assert_eq!(r.pay(&token, "4242 4242 4242 4242").await.status, 200);
    r.delivered().await;
    let engine = r.server.app.worker_with(
        r.server.app.queue_config(),
        r.server
            .app
            .registry(r.server.app.provisioner(r.server.app.provisioning_config())),
    );
    engine.run_until_idle().await.unwrap();
    let org = r.org("cancel-co").await;
    assert_eq!(org.status, OrgStatus::Active);
    let subscription = org.stripe_subscription_id.clone().unwrap();

    r.sim().cancel_at_period_end(&subscription).unwrap();
    r.delivered().await;
    assert_eq!(r.org("cancel-co").await.status, OrgStatus::Cancelling);

    r.sim().cancel_now(&subscription).unwrap();
    r.delivered().await;
    assert_eq!(r.org("cancel-co").await.status, OrgStatus::Cancelled);
    let route = routes::Entity::find()
        .filter(routes::Column::OrganizationId.eq(org.id))
        .one(r.db())
        .await
        .unwrap()
        .unwrap();
    assert!(!route.enabled);
}

impl Rig {
    /// A job engine with every handler, as `nest serve` runs it.
    fn engine(&self) -> server::jobs::worker::Worker {
        let app = &self.server.app;
        app.worker_with(
            app.queue_config(),
            app.registry(app.provisioner(app.provisioning_config())),
        )
    }

    /// The simulator's status of `subscription` (`active`, `canceled`, …).
    fn subscription_status(&self, subscription: &str) -> String {
        self.sim()
            .subscriptions()
            .into_iter()
            .find(|s| s.id == subscription)
            .unwrap()
            .status
    }

    /// Signs `slug` up and pays with a good card; returns the provisioned organization.
    async fn paying_customer(&mut self, slug: &str) -> organizations::Model {
        let token = self.start(slug).await;
        assert_eq!(self.pay(&token, "4242 4242 4242 4242").await.status, 200);
        self.delivered().await;
        self.engine().run_until_idle().await.unwrap();
        let org = self.org(slug).await;
        assert_eq!(org.status, OrgStatus::Active);
        assert_eq!(
            self.subscription_status(org.stripe_subscription_id.as_deref().unwrap()),
            "active"
        );
        org
    }

    async fn admin_does(&self, org_id: i64, event: app::models::OrgEvent) {
        self.server
            .app
            .organizations()
            .apply(
                &server::audit::Actor::system("test-admin"),
                org_id,
                event,
                server::organizations::EventArgs::default(),
            )
            .await
            .unwrap();
    }

    /// The audit rows of `action` about organization `org_id`.
    async fn audited(&self, org_id: i64, action: &str) -> Vec<audit_log::Model> {
        audit_log::Entity::find()
            .filter(audit_log::Column::Action.eq(action))
            .filter(audit_log::Column::TargetId.eq(org_id.to_string()))
            .all(self.db())
            .await
            .unwrap()
    }
}

async fn deleting_a_paying_organization_cancels_its_subscription_first(db: &DatabaseConnection) {
    let mut r = rig(db).await;
    let org = r.paying_customer("leaving-co").await;
    let subscription = org.stripe_subscription_id.clone().unwrap();

    r.admin_does(org.id, app::models::OrgEvent::Delete).await;
    r.engine().run_until_idle().await.unwrap();
    r.delivered().await;

    assert_eq!(r.org("leaving-co").await.status, OrgStatus::Deleted);
    assert_eq!(r.subscription_status(&subscription), "canceled");
    let delete = jobs::Entity::find()
        .filter(jobs::Column::OrganizationId.eq(org.id))
        .filter(jobs::Column::Kind.eq(JobKind::Delete))
        .one(r.db())
        .await
        .unwrap()
        .unwrap();
    let steps: Vec<_> = delete.progress.steps().iter().map(|s| s.step).collect();
    assert_eq!(
        steps.first(),
        Some(&app::models::JobStep::CancelSubscription),
        "billing stops before the server goes: {steps:?}"
    );
    let audited = r.audited(org.id, "billing.subscription_cancelled").await;
    assert_eq!(audited.len(), 1, "{audited:?}");
    assert_eq!(audited[0].detail["why"], "deleted");
    assert_eq!(audited[0].detail["prorated"], false);
    // Stripe's `customer.subscription.deleted` that follows changes nothing on a deleted org.
    assert_eq!(r.org("leaving-co").await.status, OrgStatus::Deleted);

    // The step is idempotent: run again (a retried job), it finds the subscription ended.
    let again = r
        .server
        .app
        .cancellation()
        .cancel(
            &server::audit::Actor::system("test"),
            &r.org("leaving-co").await,
            "deleted",
            app::models::JobStep::CancelSubscription,
        )
        .await
        .unwrap();
    assert_eq!(
        again,
        server::billing::cancellation::Cancelled::AlreadyEnded
    );
    assert_eq!(r.subscription_status(&subscription), "canceled");
}

async fn every_way_an_admin_ends_a_paying_organization_cancels_its_subscription(
    db: &DatabaseConnection,
) {
    use app::models::OrgEvent::{Delete, Suspend};
    let mut r = rig(db).await;
    // Suspended, then deleted.
    let suspended = r.paying_customer("paused-co").await;
    r.admin_does(suspended.id, Suspend).await;
    r.admin_does(suspended.id, Delete).await;
    // Cancelling at the period's end, then deleted before it.
    let cancelling = r.paying_customer("quitting-co").await;
    let quitting = cancelling.stripe_subscription_id.clone().unwrap();
    r.sim().cancel_at_period_end(&quitting).unwrap();
    r.delivered().await;
    assert_eq!(r.org("quitting-co").await.status, OrgStatus::Cancelling);
    r.admin_does(cancelling.id, Delete).await;
    r.engine().run_until_idle().await.unwrap();
    r.delivered().await;
    for (slug, org) in [("paused-co", &suspended), ("quitting-co", &cancelling)] {
        assert_eq!(r.org(slug).await.status, OrgStatus::Deleted, "{slug}");
        let subscription = org.stripe_subscription_id.as_deref().unwrap();
        assert_eq!(r.subscription_status(subscription), "canceled", "{slug}");
    }
}

async fn a_rejected_signup_s_subscription_is_cancelled_so_it_can_never_be_charged(
    db: &DatabaseConnection,
) {
    let mut r = rig(db).await;
    let token = r.start("turned-away").await;
    let org = r.org("turned-away").await;
    let subscription = org.stripe_subscription_id.clone().unwrap();
    r.admin_does(org.id, app::models::OrgEvent::Reject).await;
    assert_eq!(r.org("turned-away").await.status, OrgStatus::Cancelled);
    let queued = jobs::Entity::find()
        .filter(jobs::Column::OrganizationId.eq(org.id))
        .filter(jobs::Column::Kind.eq(JobKind::CancelSubscription))
        .count(r.db())
        .await
        .unwrap();
    assert_eq!(queued, 1, "queued in the rejection's transaction");
    r.engine().run_until_idle().await.unwrap();
    r.delivered().await;
    assert_eq!(r.subscription_status(&subscription), "canceled");
    // Paying after the rejection charges nothing: the invoice was voided with the subscription.
    let late = r.pay(&token, "4242 4242 4242 4242").await;
    assert_ne!(late.status, 200, "{late:?}");
    r.delivered().await;
    assert_eq!(r.create_jobs(org.id).await, 0);
    assert_eq!(r.org("turned-away").await.status, OrgStatus::Cancelled);
    let audited = r.audited(org.id, "billing.subscription_cancelled").await;
    assert_eq!(audited.len(), 1, "{audited:?}");
    assert_eq!(audited[0].detail["why"], "rejected");

    // An organization that Stripe does not bill (added by an admin) queues no such job.
    let admin_added = r
        .server
        .app
        .organizations()
        .create(
            &server::audit::Actor::system("test-admin"),
            server::organizations::NewOrganization {
                name: "Waitlisted".to_owned(),
                slug: "waitlisted".to_owned(),
                owner_email: "owner@waitlisted.test".to_owned(),
                tier_id: r.growth_id().await.parse().unwrap(),
                region: "fsn1".to_owned(),
            },
            false,
        )
        .await
        .unwrap();
    r.admin_does(admin_added.id, app::models::OrgEvent::Reject)
        .await;
    let none = jobs::Entity::find()
        .filter(jobs::Column::OrganizationId.eq(admin_added.id))
        .count(r.db())
        .await
        .unwrap();
    assert_eq!(none, 0);
}

async fn an_unreachable_stripe_fails_the_step_for_a_retry_and_audits_nothing(
    db: &DatabaseConnection,
) {
    let mut r = rig(db).await;
    let org = r.paying_customer("flaky-co").await;
    // A port nothing listens on: Stripe is unreachable.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/", closed.local_addr().unwrap());
    drop(closed);
    let cancellation = server::billing::cancellation::Cancellation {
        stripe: server::billing::stripe::StripeGateway::new("sk_test_unreachable", &url).unwrap(),
        ..r.server.app.cancellation()
    };
    let failure = cancellation
        .cancel(
            &server::audit::Actor::system("test"),
            &org,
            "deleted",
            app::models::JobStep::CancelSubscription,
        )
        .await
        .unwrap_err();
    assert!(failure.retryable, "{failure:?}");
    assert_eq!(failure.step, Some(app::models::JobStep::CancelSubscription));
    assert!(
        r.audited(org.id, "billing.subscription_cancelled")
            .await
            .is_empty()
    );
    let subscription = org.stripe_subscription_id.as_deref().unwrap();
    assert_eq!(r.subscription_status(subscription), "active");
}

/// The open findings, as `(kind, subject)`, sorted.
async fn open_findings(db: &DatabaseConnection) -> Vec<(app::models::FindingKind, String)> {
    use server::entities::reconcile_findings;
    let mut open: Vec<_> = reconcile_findings::Entity::find()
        .filter(reconcile_findings::Column::ResolvedAt.is_null())
        .all(db)
        .await
        .unwrap()
        .into_iter()
        .map(|f| (f.kind, f.subject))
        .collect();
    open.sort();
    open
}

async fn reconciliation_finds_each_leak_against_the_simulators_and_resolves_it_once_fixed(
    db: &DatabaseConnection,
) {
    use app::models::FindingKind as K;
    let mut r = rig(db).await;
    let steady = r.paying_customer("steady-co").await;
    let leaky = r.paying_customer("leaky-co").await;
    let reconciler = r.server.app.reconciler();
    let hetzner = r.server.app.integrations.hetzner.clone();
    let report = reconciler.run_once().await.unwrap();
    assert_eq!(report, server::reconcile::Report::default(), "all in order");

    // A server made straight through Hetzner's API with Nest's labels, and a subscription
    // left running by an organization that was deleted without cancelling it.
    let orphan = hetzner
        .create_server(&server::hetzner::CreateServer {
            name: "made-by-hand".to_owned(),
            server_type: "cx22".to_owned(),
            image: "ubuntu-24.04".to_owned(),
            location: "fsn1".to_owned(),
            user_data: String::new(),
            ssh_keys: Vec::new(),
            labels: std::collections::BTreeMap::from([
                (server::hetzner::MANAGED_LABEL.to_owned(), "nest".to_owned()),
                (server::hetzner::ORG_LABEL.to_owned(), "999".to_owned()),
            ]),
        })
        .await
        .unwrap()
        .server;
    let leaked = leaky.stripe_subscription_id.clone().unwrap();
    organizations::Entity::update_many()
        .col_expr(
            organizations::Column::Status,
            sea_orm::sea_query::Expr::value(OrgStatus::Deleted),
        )
        .filter(organizations::Column::Id.eq(leaky.id))
        .exec(r.db())
        .await
        .unwrap();
    let report = reconciler.run_once().await.unwrap();
    assert_eq!((report.opened, report.alerted), (2, 2), "{report:?}");
    let alerts = server::entities::health_fleet_alerts::Entity::find()
        .filter(server::entities::health_fleet_alerts::Column::Reason.eq("reconcile"))
        .all(r.db())
        .await
        .unwrap();
    assert_eq!(alerts.len(), 2, "{alerts:?}");
    assert!(
        alerts.iter().any(|a| a.message.contains("made-by-hand")),
        "{alerts:?}"
    );
    assert!(
        alerts.iter().any(|a| a.message.contains(&leaked)),
        "{alerts:?}"
    );
    assert_eq!(
        open_findings(r.db()).await,
        vec![
            (K::OrphanServer, format!("server:{}", orphan.id)),
            (K::LiveSubscription, format!("subscription:{leaked}")),
        ]
    );
    // Seen again, not duplicated.
    let again = reconciler.run_once().await.unwrap();
    assert_eq!(
        (again.opened, again.seen_again, again.alerted),
        (0, 2, 0),
        "seen again, alerted once: {again:?}"
    );

    // An admin settles both on /reconcile, each confirmed by typing its name.
    let mut admin = support::setup_superadmin(&r.server, "root@nest.test").await;
    let listed = admin.call("list_findings", &[("resolved", "false")]).await;
    assert_eq!(listed.status, 200, "{listed:?}");
    let findings = listed.body["findings"].as_array().unwrap().clone();
    let id_of = |kind: &str| {
        findings
            .iter()
            .find(|f| f["kind"] == kind)
            .unwrap_or_else(|| panic!("no {kind} in {findings:?}"))["id"]
            .to_string()
    };
    let (orphan_finding, leak_finding) = (id_of("orphan_server"), id_of("live_subscription"));
    let wrong = admin
        .call(
            "act_on_finding",
            &[
                ("id", &orphan_finding),
                ("action", "delete_server"),
                ("confirm", "made-by"),
            ],
        )
        .await;
    assert_eq!(wrong.status, 422, "{wrong:?}");
    assert_eq!(
        wrong.body["Validation"]["field"], "confirm",
        "beside its field"
    );
    assert!(wrong.body.to_string().contains("made-by-hand"), "{wrong:?}");
    assert!(
        hetzner.get_server(orphan.id).await.unwrap().is_some(),
        "nothing deleted"
    );
    let mismatched = admin
        .call(
            "act_on_finding",
            &[
                ("id", &orphan_finding),
                ("action", "cancel_subscription"),
                ("confirm", "made-by-hand"),
            ],
        )
        .await;
    assert_eq!(mismatched.status, 422, "{mismatched:?}");
    for (id, action, confirm) in [
        (&orphan_finding, "delete_server", "made-by-hand"),
        (&leak_finding, "cancel_subscription", leaked.as_str()),
    ] {
        let done = admin
            .call(
                "act_on_finding",
                &[("id", id), ("action", action), ("confirm", confirm)],
            )
            .await;
        assert_eq!(done.status, 200, "{action}: {done:?}");
    }
    r.delivered().await;
    assert_eq!(r.subscription_status(&leaked), "canceled");
    assert_eq!(open_findings(r.db()).await, vec![], "settled at once");
    for action in [
        "reconcile.server_deleted",
        "reconcile.subscription_cancelled",
    ] {
        let rows = audit_log::Entity::find()
            .filter(audit_log::Column::Action.eq(action))
            .count(r.db())
            .await
            .unwrap();
        assert_eq!(rows, 1, "{action}");
    }
    // The server goes (Hetzner's delete is an action); the next run agrees.
    for _ in 0..200 {
        if hetzner.get_server(orphan.id).await.unwrap().is_none() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let fixed = reconciler.run_once().await.unwrap();
    assert_eq!((fixed.opened, fixed.resolved), (0, 0), "{fixed:?}");
    assert_eq!(open_findings(r.db()).await, vec![]);

    // A server deleted behind Nest's back is missing; its organization still pays for it.
    let vps = server::entities::vpses::Entity::find()
        .filter(server::entities::vpses::Column::OrganizationId.eq(steady.id))
        .one(r.db())
        .await
        .unwrap()
        .unwrap();
    let server_id = vps.hetzner_server_id.unwrap();
    if let Some(action) = hetzner.delete_server(server_id).await.unwrap() {
        hetzner
            .wait_for(action, Duration::from_secs(30))
            .await
            .unwrap();
    }
    reconciler.run_once().await.unwrap();
    assert_eq!(
        open_findings(r.db()).await,
        vec![(K::MissingServer, format!("server:{server_id}"))]
    );
    // Settled on the organization's page: deleted, its subscription cancelled on the way (the
    // server being gone already is no failure), and the next run resolves the finding.
    r.admin_does(steady.id, app::models::OrgEvent::Delete).await;
    r.engine().run_until_idle().await.unwrap();
    r.delivered().await;
    assert_eq!(r.org("steady-co").await.status, OrgStatus::Deleted);
    let settled = reconciler.run_once().await.unwrap();
    assert_eq!((settled.opened, settled.resolved), (0, 1), "{settled:?}");
    assert_eq!(open_findings(r.db()).await, vec![]);
}

async fn a_server_resized_behind_nest_s_back_is_resized_back_after_the_typed_slug(
    db: &DatabaseConnection,
) {
    use app::models::FindingKind as K;
    let mut r = rig(db).await;
    let org = r.paying_customer("grown-co").await;
    let hetzner = r.server.app.integrations.hetzner.clone();
    let vps = server::entities::vpses::Entity::find()
        .filter(server::entities::vpses::Column::OrganizationId.eq(org.id))
        .one(r.db())
        .await
        .unwrap()
        .unwrap();
    let id = vps.hetzner_server_id.unwrap();
    let wait = Duration::from_secs(30);
    // Someone resizes the server in Hetzner's console.
    for step in ["poweroff", "change_type", "poweron"] {
        let action = match step {
            "change_type" => hetzner.change_type(id, "cx42").await.unwrap(),
            power => hetzner.power(id, power).await.unwrap(),
        };
        hetzner.wait_for(action, wait).await.unwrap();
    }
    let reconciler = r.server.app.reconciler();
    reconciler.run_once().await.unwrap();
    assert_eq!(
        open_findings(r.db()).await,
        vec![(K::TypeDrift, format!("server:{id}"))]
    );
    let mut admin = support::setup_superadmin(&r.server, "root@nest.test").await;
    let listed = admin.call("list_findings", &[("resolved", "false")]).await;
    let finding = &listed.body["findings"][0];
    assert_eq!(finding["confirm"], "grown-co", "{listed:?}");
    assert_eq!(
        finding["actions"],
        serde_json::json!(["resize_back"]),
        "{listed:?}"
    );
    let done = admin
        .call(
            "act_on_finding",
            &[
                ("id", &finding["id"].to_string()),
                ("action", "resize_back"),
                ("confirm", "grown-co"),
            ],
        )
        .await;
    assert_eq!(done.status, 200, "{done:?}");
    r.engine().run_until_idle().await.unwrap();
    let server = hetzner.get_server(id).await.unwrap().unwrap();
    assert_eq!(server.server_type.name, vps.server_type.to_string());
    let report = reconciler.run_once().await.unwrap();
    assert_eq!(report.resolved, 1, "{report:?}");
    assert_eq!(open_findings(r.db()).await, vec![]);
}

async fn a_renewal_paid_after_the_organization_ended_raises_a_finding_at_once(
    db: &DatabaseConnection,
) {
    use app::models::FindingKind as K;
    let mut r = rig(db).await;
    let org = r.paying_customer("lingering-co").await;
    let subscription = org.stripe_subscription_id.clone().unwrap();
    // Deleted without its subscription cancelled (what every deletion did before).
    organizations::Entity::update_many()
        .col_expr(
            organizations::Column::Status,
            sea_orm::sea_query::Expr::value(OrgStatus::Deleted),
        )
        .filter(organizations::Column::Id.eq(org.id))
        .exec(r.db())
        .await
        .unwrap();
    r.sim().renew(&subscription).unwrap();
    r.delivered().await;
    r.engine().run_until_idle().await.unwrap();

    let recorded = invoices::Entity::find()
        .filter(invoices::Column::OrganizationId.eq(org.id))
        .count(r.db())
        .await
        .unwrap();
    assert_eq!(recorded, 2, "the renewal is recorded like any payment");
    assert_eq!(
        r.audited(org.id, "billing.paid_after_service_ended")
            .await
            .len(),
        1
    );
    assert_eq!(
        open_findings(r.db()).await,
        vec![(K::LiveSubscription, format!("subscription:{subscription}"))],
        "found by the reconcile run the payment queued, not an hour later"
    );
    let alerts = server::entities::health_fleet_alerts::Entity::find()
        .filter(server::entities::health_fleet_alerts::Column::Reason.eq("reconcile"))
        .count(r.db())
        .await
        .unwrap();
    assert_eq!(alerts, 1);
}

async fn reconciling_ten_thousand_servers_stays_within_hetzner_s_rate_budget(
    db: &DatabaseConnection,
) {
    let r = rig(db).await;
    let sim = r.server.app.integrations.simulator.clone().unwrap();
    let labels = std::collections::BTreeMap::from([(
        server::hetzner::MANAGED_LABEL.to_owned(),
        "nest".to_owned(),
    )]);
    for i in 0..10_000 {
        sim.add_running_server(&format!("bulk-{i}"), labels.clone())
            .unwrap();
    }
    let reconciler = r.server.app.reconciler();
    let hetzner = &r.server.app.integrations.hetzner;
    let before = hetzner.calls();
    let facts = reconciler.gather().await.unwrap();
    let calls = hetzner.calls() - before;
    assert_eq!(facts.servers.len(), 10_000);
    assert_eq!(calls, 200, "50 servers a page, nothing else");
    let limit = hetzner.rate_limit().unwrap();
    assert!(
        limit.remaining >= limit.limit - 200,
        "within the hourly budget: {limit:?}"
    );
    let report = reconciler
        .record(&server::reconcile::plan(&facts))
        .await
        .unwrap();
    assert_eq!(report.opened, 10_000);
    assert_eq!(report.alerted, 1, "one alert for them all");
}

async fn a_burst_of_signups_from_one_address_gets_exactly_the_limit_through(
    db: &DatabaseConnection,
) {
    let r = rig(db).await;
    let tier = r.growth_id().await;
    let mut tasks = Vec::new();
    for i in 0..20 {
        let mut client = r.server.client();
        let tier = tier.clone();
        tasks.push(tokio::spawn(async move {
            let slug = format!("burst-{i}");
            let email = format!("owner@{slug}.test");
            client
                .call(
                    "start_signup",
                    &[
                        ("input[name]", &format!("Burst {i}")),
                        ("input[slug]", &slug),
                        ("input[owner_email]", &email),
                        ("input[tier_id]", &tier),
                        ("input[region]", "fsn1"),
                    ],
                )
                .await
                .status
        }));
    }
    let mut statuses = Vec::new();
    for task in tasks {
        statuses.push(task.await.unwrap());
    }
    statuses.sort_unstable();
    let accepted = statuses.iter().filter(|s| **s == 200).count();
    let refused = statuses.iter().filter(|s| **s == 429).count();
    assert_eq!((accepted, refused), (5, 15), "{statuses:?}");
    let orgs = organizations::Entity::find()
        .filter(organizations::Column::Slug.starts_with("burst-"))
        .count(r.db())
        .await
        .unwrap();
    assert_eq!(orgs, 5, "a refused signup leaves no organization behind");
}

async fn signups_are_limited_per_client_and_unpaid_ones_expire(db: &DatabaseConnection) {
    let mut r = rig(db).await;
    let first = r.start("expire-co").await;
    for i in 1..5 {
        r.start(&format!("limit-{i}")).await;
    }
    let tier = r.growth_id().await;
    let refused = r
        .client
        .call(
            "start_signup",
            &[
                ("input[name]", "One Too Many"),
                ("input[slug]", "one-too-many"),
                ("input[owner_email]", "x@many.test"),
                ("input[tier_id]", &tier),
                ("input[region]", "fsn1"),
            ],
        )
        .await;
    assert_eq!(refused.status, 429, "{refused:?}");
    assert!(
        organizations::Entity::find()
            .filter(organizations::Column::Slug.eq("one-too-many"))
            .one(r.db())
            .await
            .unwrap()
            .is_none()
    );
    r.delivered().await;
    let org = r.org("expire-co").await;
    let subscription = org.stripe_subscription_id.clone().unwrap();
    // A day later the unpaid signups are cancelled at Stripe and gone, their slugs free.
    r.server.clock.advance(chrono::Duration::hours(25));
    let expiry = server::signups::expiry::Expiry {
        db: r.db().clone(),
        clock: r.server.clock.clone(),
        stripe: r.server.app.integrations.stripe.gateway.clone(),
        events: r.server.app.events.clone(),
    };
    let report = expiry.run_once().await.unwrap();
    assert_eq!(report.expired, 5);
    assert!(
        organizations::Entity::find_by_id(org.id)
            .one(r.db())
            .await
            .unwrap()
            .is_none()
    );
    let sub = r
        .sim()
        .subscriptions()
        .into_iter()
        .find(|s| s.id == subscription)
        .unwrap();
    assert_eq!(sub.status, "canceled");
    let gone = r
        .client
        .call("get_signup_status", &[("token", &first)])
        .await;
    assert_eq!(gone.status, 404);
    let free = r
        .client
        .call("signup_slug_available", &[("slug", "expire-co")])
        .await;
    assert_eq!(free.body, serde_json::json!(true));
    // Running it again changes nothing.
    assert_eq!(expiry.run_once().await.unwrap().expired, 0);
}

async fn a_paying_customers_tier_change_shows_the_proration_and_moves_the_price(
    db: &DatabaseConnection,
) {
    let mut r = rig(db).await;
    let token = r.start("upgrade-co").await;
    assert_eq!(r.pay(&token, "4242 4242 4242 4242").await.status, 200);
    r.delivered().await;
    let engine = r.server.app.worker_with(
        r.server.app.queue_config(),
        r.server
            .app
            .registry(r.server.app.provisioner(r.server.app.provisioning_config())),
    );
    engine.run_until_idle().await.unwrap();
    let org = r.org("upgrade-co").await;
    assert_eq!(org.status, OrgStatus::Active);
    let enterprise = {
        use server::entities::tiers;
        tiers::Entity::find()
            .filter(tiers::Column::Code.eq("enterprise"))
            .one(r.db())
            .await
            .unwrap()
            .unwrap()
            .id
            .to_string()
    };
    let id = org.id.to_string();
    let mut admin = support::setup_superadmin(&r.server, "root@nest.test").await;
    let preview = admin
        .call(
            "preview_tier_change",
            &[("id", &id), ("tier_id", &enterprise)],
        )
        .await;
    assert_eq!(preview.status, 200, "{preview:?}");
    let lines = preview.body["lines"].as_array().unwrap();
    assert!(lines.len() >= 2, "{preview:?}");
    // Unused time on Growth is credited, the rest of the period on Enterprise is charged.
    assert!(
        lines
            .iter()
            .any(|l| l[1].as_str().unwrap().starts_with("-€")),
        "{preview:?}"
    );
    assert!(
        preview.body["amount_due"]
            .as_str()
            .unwrap()
            .starts_with('€')
    );

    let changed = admin
        .call(
            "organization_action",
            &[
                ("id", &id),
                ("action", "tier_changed"),
                ("tier_id", &enterprise),
            ],
        )
        .await;
    assert_eq!(changed.status, 200, "{changed:?}");
    let org = r.org("upgrade-co").await;
    assert_eq!(org.tier_id.to_string(), enterprise);
    let sub = r
        .sim()
        .subscriptions()
        .into_iter()
        .find(|s| Some(&s.id) == org.stripe_subscription_id.as_ref())
        .unwrap();
    assert_eq!(sub.price.as_deref(), Some("price_sim_enterprise"));
    // The server follows: a resize job to the Enterprise server type.
    let resize = jobs::Entity::find()
        .filter(jobs::Column::OrganizationId.eq(org.id))
        .filter(jobs::Column::Kind.eq(JobKind::Resize))
        .count(r.db())
        .await
        .unwrap();
    assert_eq!(resize, 1);
    // An organization created by an admin has no subscription: no preview.
    let manual = support::create_org(&r.server.app, "manual-co")
        .await
        .id
        .to_string();
    let none = admin
        .call(
            "preview_tier_change",
            &[("id", &manual), ("tier_id", &enterprise)],
        )
        .await;
    assert_eq!(none.body, serde_json::Value::Null, "{none:?}");
}

/// A burst of first payments and declines for many signups, each delivered twice at once:
/// applied in batches, every event exactly once, each customer's as its own delivery would be.
async fn a_burst_of_first_payments_is_applied_once_each(db: &DatabaseConnection) {
    const PAID: usize = 12;
    const DECLINED: usize = 3;
    let r = rig(db).await;
    // Every event held: the test delivers them itself, all at once.
    let cards: Vec<&str> = (0..PAID + DECLINED)
        .map(|i| {
            if i < PAID {
                "4242 4242 4242 4242"
            } else {
                "4000 0000 0000 0002"
            }
        })
        .collect();
    let payloads = r.held_first_payments("batch", &cards).await;
    assert_eq!(payloads.len(), PAID + DECLINED);
    let secret = r.secret();
    let now = r.server.clock.now().timestamp();
    let r = std::sync::Arc::new(r);
    let deliveries = payloads
        .iter()
        .chain(&payloads)
        .map(|p| (p.clone(), signature(&secret, now, p)))
        .collect();
    let replays = r.post_all_at_once(deliveries).await;
    assert_eq!(
        replays,
        PAID + DECLINED,
        "one copy of each event is a replay"
    );
    // The ledger's jobs, by the organization whose invoice each records.
    let recorded_for: Vec<i64> = jobs::Entity::find()
        .filter(jobs::Column::Kind.eq(JobKind::RecordInvoice))
        .all(r.db())
        .await
        .unwrap()
        .into_iter()
        .filter_map(|j| match j.payload {
            app::models::JobPayload::RecordInvoice { invoice } => Some(invoice.organization_id),
            _ => None,
        })
        .collect();
    for i in 0..PAID + DECLINED {
        let org = r.org(&format!("batch-{i}")).await;
        let signup = r.signup(org.id).await;
        let records = recorded_for.iter().filter(|id| **id == org.id).count();
        let audit = audit_log::Entity::find()
            .filter(audit_log::Column::TargetId.eq(org.id.to_string()))
            .filter(audit_log::Column::ActorEmail.eq("system:stripe"))
            .count(r.db())
            .await
            .unwrap();
        if i < PAID {
            assert_eq!(signup.payment_state, SignupPayment::Paid, "batch-{i}");
            assert_eq!(r.create_jobs(org.id).await, 1, "batch-{i}");
            assert_eq!(records, 1, "batch-{i}: its invoice goes to the ledger");
        } else {
            assert_eq!(org.status, OrgStatus::Error, "batch-{i}");
            assert_eq!(signup.payment_state, SignupPayment::Declined, "batch-{i}");
            assert_eq!(r.create_jobs(org.id).await, 0, "batch-{i}");
            assert_eq!(records, 0, "batch-{i}: a declined signup owes nothing");
        }
        assert_eq!(audit, 1, "batch-{i}: one audit row for its one transition");
    }
    let recorded = stripe_events::Entity::find().count(r.db()).await.unwrap();
    assert_eq!(recorded, (PAID + DECLINED) as u64);
}

/// A batch whose write fails is applied again one event at a time, so one event never fails
/// the others. Here an organization changes between the batch's read and its write (a trigger
/// moves it to `error` when its event is recorded): its event fails alone, with a 500 (Stripe
/// delivers it again) and nothing written; the others are applied.
async fn a_failed_batch_is_applied_again_one_event_at_a_time(db: &DatabaseConnection) {
    const OTHERS: usize = 6;
    let r = rig(db).await;
    let cards = vec!["4242 4242 4242 4242"; OTHERS + 1];
    let mut payloads = r.held_first_payments("fallback", &cards).await;
    let meddled = r.org(&format!("fallback-{OTHERS}")).await;
    let customer = |p: &String| {
        serde_json::from_str::<serde_json::Value>(p).unwrap()["data"]["object"]["customer"]
            .as_str()
            .map(str::to_owned)
    };
    let at = payloads
        .iter()
        .position(|p| customer(p) == meddled.stripe_customer_id)
        .unwrap();
    // Delivered last: the first delivery is applied alone, the next ones together.
    let last = payloads.remove(at);
    let meddled_event = serde_json::from_str::<serde_json::Value>(&last).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    payloads.push(last);
    let meddle: Vec<String> = match r.db().get_database_backend() {
        DbBackend::Postgres => vec![
            format!(
                "CREATE FUNCTION meddle() RETURNS trigger AS $$ BEGIN \
                 UPDATE organizations SET status = 'error' WHERE id = {}; RETURN NEW; END $$ \
                 LANGUAGE plpgsql",
                meddled.id
            ),
            format!(
                "CREATE TRIGGER meddle AFTER INSERT ON stripe_events FOR EACH ROW \
                 WHEN (NEW.id = '{meddled_event}') EXECUTE FUNCTION meddle()"
            ),
        ],
        _ => vec![format!(
            "CREATE TRIGGER meddle AFTER INSERT ON stripe_events FOR EACH ROW \
             WHEN NEW.id = '{meddled_event}' BEGIN \
             UPDATE organizations SET status = 'error' WHERE id = {}; END",
            meddled.id
        )],
    };
    for sql in meddle {
        r.db().execute_unprepared(&sql).await.unwrap();
    }

    let secret = r.secret();
    let now = r.server.clock.now().timestamp();
    let r = std::sync::Arc::new(r);
    let mut tasks = Vec::new();
    for payload in payloads {
        let (r, header) = (r.clone(), signature(&secret, now, &payload));
        tasks.push(tokio::spawn(async move {
            r.post_webhook(&payload, &header).await
        }));
        tokio::task::yield_now().await;
    }
    let mut answers = Vec::new();
    for task in tasks {
        answers.push(task.await.unwrap());
    }
    let (status, text) = answers.pop().unwrap();
    assert_eq!(status, 500, "the meddled event fails: {text}");
    for (status, text) in answers {
        assert_eq!(status, 200, "the others are applied: {text}");
    }
    for i in 0..OTHERS {
        let org = r.org(&format!("fallback-{i}")).await;
        assert_eq!(r.signup(org.id).await.payment_state, SignupPayment::Paid);
        assert_eq!(r.create_jobs(org.id).await, 1, "fallback-{i}");
    }
    let after = r.org(&format!("fallback-{OTHERS}")).await;
    assert_eq!(
        after.status,
        OrgStatus::Pending,
        "rolled back with its batch"
    );
    assert_ne!(
        r.signup(meddled.id).await.payment_state,
        SignupPayment::Paid
    );
    assert_eq!(r.create_jobs(meddled.id).await, 0);
    let recorded = stripe_events::Entity::find_by_id(meddled_event)
        .one(r.db())
        .await
        .unwrap();
    assert!(
        recorded.is_none(),
        "its event is not recorded, so Stripe's retry applies it"
    );
}

async fn each_tenant_s_cost_at_hetzner_is_set_against_its_price(db: &DatabaseConnection) {
    use app::models::{Margin, MarginReport, OrgCost, Region};
    use sea_orm::{ActiveModelTrait, ActiveValue::Set};
    use server::entities::{hetzner_prices, tiers};
    let mut r = rig(db).await;
    let costs = r.server.app.costs();
    let unread = costs.report().await.unwrap();
    assert_eq!(
        unread.currency, None,
        "no figures before Hetzner's prices are read"
    );
    assert!(
        unread.tiers.iter().all(|t| t
            .note
            .as_deref()
            .is_some_and(|n| n.contains("not been read"))),
        "{unread:?}"
    );

    let costly = r.paying_customer("costly-co").await;
    let thin = r.paying_customer("thin-co").await;
    // A tier priced under its server's cost in most regions, and an organization moved onto it.
    let now = chrono::Utc::now();
    let budget = tiers::ActiveModel {
        code: Set("budget".to_owned()),
        name: Set("Budget".to_owned()),
        server_type: Set("cx32".parse().unwrap()),
        vcpus: Set(4),
        memory_gb: Set(8),
        disk_gb: Set(80),
        monthly_price_cents: Set(800),
        currency: Set(app::models::Currency::eur()),
        stripe_price_id: Set(None),
        active: Set(true),
        sort_order: Set(9),
        created_at: Set(now),
        updated_at: Set(now),
        ..Default::default()
    }
    .insert(r.db())
    .await
    .unwrap();
    organizations::Entity::update_many()
        .col_expr(
            organizations::Column::TierId,
            sea_orm::sea_query::Expr::value(budget.id),
        )
        .filter(organizations::Column::Id.eq(thin.id))
        .exec(r.db())
        .await
        .unwrap();

    // The daily task, run as a job of the queue: one call to Hetzner's GET /pricing.
    let hetzner = r.server.app.integrations.hetzner.clone();
    let before = hetzner.calls();
    server::jobs::enqueue(
        r.db(),
        server::jobs::NewJob::now(app::models::JobPayload::PriceRefresh, now),
        now,
    )
    .await
    .unwrap();
    r.engine().run_until_idle().await.unwrap();
    assert_eq!(hetzner.calls() - before, 1, "one call reads every price");
    let kept = hetzner_prices::Entity::find().all(r.db()).await.unwrap();
    assert_eq!(
        kept.len(),
        12 * 6 + 6,
        "12 server types and the IPv4, in 6 locations"
    );
    let price = |resource: &str, location: &str| {
        kept.iter()
            .find(|p| p.resource == resource && p.location == location)
            .map(|p| p.monthly_net_cents)
    };
    assert_eq!(
        price("cx32", "fsn1"),
        Some(680),
        "Hetzner's published €6.80"
    );
    assert_eq!(price("primary_ipv4", "fsn1"), Some(50), "€0.50 an IPv4");
    assert_eq!(
        price("cx32", "sin"),
        Some(1088),
        "the simulator's Singapore factor"
    );
    assert!(kept.iter().all(|p| p.currency == "EUR"));

    // The organization page's figures, through the server function.
    let mut admin = support::setup_superadmin(&r.server, "root@nest.test").await;
    let reply = admin
        .call("get_org_cost", &[("id", &costly.id.to_string())])
        .await;
    assert_eq!(reply.status, 200, "{reply:?}");
    let cost: OrgCost = serde_json::from_value(reply.body).unwrap();
    assert_eq!(
        (cost.server_type.as_str(), cost.region),
        ("cx32", Region::Fsn1)
    );
    assert_eq!((cost.server_cents, cost.ipv4_cents), (Some(680), Some(50)));
    assert_eq!(cost.revenue.cents, 6000);
    let margin = cost.margin.unwrap();
    assert_eq!(margin.margin_cents(), 5270);
    assert_eq!(margin.percent_text(), "87.8 %");
    assert!(cost.prices_fetched_at.is_some());

    // /billing's tables and /tiers' warning, through the server function.
    let reply = admin.call("get_margins", &[]).await;
    assert_eq!(reply.status, 200, "{reply:?}");
    let report: MarginReport = serde_json::from_value(reply.body).unwrap();
    let rows = |rows: &[app::models::MarginRow]| {
        rows.iter()
            .map(|r| (r.label.clone(), r.organizations, r.margin))
            .collect::<Vec<_>>()
    };
    let each = |revenue_cents| Margin {
        revenue_cents,
        cost_cents: 730,
    };
    assert_eq!(
        rows(&report.by_tier),
        vec![
            ("Budget".to_owned(), 1, each(800)),
            ("Growth".to_owned(), 1, each(6000)),
        ]
    );
    assert_eq!(
        rows(&report.by_region),
        vec![("fsn1".to_owned(), 2, each(800).plus(each(6000)))]
    );
    let least: Vec<&str> = report
        .least_profitable
        .iter()
        .map(|o| o.slug.as_str())
        .collect();
    assert_eq!(least, vec!["thin-co", "costly-co"]);
    assert_eq!(report.warn_percent, 30);
    assert_eq!(report.left_out, 0);
    let warned: Vec<(&str, usize)> = report
        .tiers
        .iter()
        .map(|t| (t.name.as_str(), t.below(report.warn_percent).len()))
        .filter(|(_, n)| *n > 0)
        .collect();
    assert_eq!(warned, vec![("Budget", 6)], "below 30 % in every region");

    // The tables count the active organizations, as MRR does: a suspended one leaves them.
    r.admin_does(thin.id, app::models::OrgEvent::Suspend).await;
    let report = costs.report().await.unwrap();
    assert_eq!(
        rows(&report.by_tier),
        vec![("Growth".to_owned(), 1, each(6000))]
    );
}

async fn drift_made_in_hetzner_s_and_stripe_s_consoles_is_found_and_settled(
    db: &DatabaseConnection,
) {
    use app::models::FindingKind as K;
    let mut r = rig(db).await;
    let org = r.paying_customer("drifty-co").await;
    let subscription = org.stripe_subscription_id.clone().unwrap();
    let reconciler = r.server.app.reconciler();
    let hetzner = r.server.app.integrations.hetzner.clone();
    let stripe = r.server.app.integrations.stripe.gateway.clone();
    let id = server::entities::vpses::Entity::find()
        .filter(server::entities::vpses::Column::OrganizationId.eq(org.id))
        .one(r.db())
        .await
        .unwrap()
        .unwrap()
        .hetzner_server_id
        .unwrap();
    let wait = Duration::from_secs(30);

    // Switched off in Hetzner's console; moved to another price in Stripe's dashboard.
    let off = hetzner.power(id, "poweroff").await.unwrap();
    hetzner.wait_for(off, wait).await.unwrap();
    stripe
        .change_price(org.id, &subscription, "price_sim_starter", "by-hand")
        .await
        .unwrap();
    r.delivered().await;
    reconciler.run_once().await.unwrap();
    let mut expected = vec![
        (K::PowerDrift, format!("server:{id}")),
        (K::PriceDrift, format!("subscription:{subscription}")),
    ];
    expected.sort();
    assert_eq!(open_findings(r.db()).await, expected);
    let mut admin = support::setup_superadmin(&r.server, "root@nest.test").await;
    let listed = admin.call("list_findings", &[("resolved", "false")]).await;
    assert!(
        listed.body["findings"]
            .as_array()
            .unwrap()
            .iter()
            .all(|f| f["actions"] == serde_json::json!([])),
        "put right where it was made, not from /reconcile: {listed:?}"
    );

    // Put right where it was made: the next run resolves both.
    let on = hetzner.power(id, "poweron").await.unwrap();
    hetzner.wait_for(on, wait).await.unwrap();
    stripe
        .change_price(org.id, &subscription, "price_sim_growth", "back")
        .await
        .unwrap();
    r.delivered().await;
    let report = reconciler.run_once().await.unwrap();
    assert_eq!(report.resolved, 2, "{report:?}");
    assert_eq!(open_findings(r.db()).await, vec![]);

    // Its primary IPv4 swapped in Hetzner's console: Nest routes to an address that is gone.
    let sim = r.server.app.integrations.simulator.clone().unwrap();
    let moved = sim.readdress(id).unwrap().to_string();
    reconciler.run_once().await.unwrap();
    assert_eq!(
        open_findings(r.db()).await,
        vec![(K::AddressDrift, format!("server:{id}"))]
    );
    let listed = admin.call("list_findings", &[("resolved", "false")]).await;
    let finding = &listed.body["findings"][0];
    assert_eq!(finding["actions"], serde_json::json!(["follow_address"]));
    assert_eq!(finding["confirm"], "drifty-co");
    let followed = admin
        .call(
            "act_on_finding",
            &[
                ("id", &finding["id"].to_string()),
                ("action", "follow_address"),
                ("confirm", "drifty-co"),
            ],
        )
        .await;
    assert_eq!(followed.status, 200, "{followed:?}");
    let vps = server::entities::vpses::Entity::find()
        .filter(server::entities::vpses::Column::OrganizationId.eq(org.id))
        .one(r.db())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(vps.ipv4.as_deref(), Some(moved.as_str()));
    let route = routes::Entity::find()
        .filter(routes::Column::OrganizationId.eq(org.id))
        .one(r.db())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(route.upstream_ipv4, moved, "the route follows");
    assert_eq!(
        r.audited(org.id, "reconcile.address_followed").await.len(),
        1
    );
    assert_eq!(open_findings(r.db()).await, vec![], "settled at once");
    let report = reconciler.run_once().await.unwrap();
    assert_eq!(report.opened, 0, "{report:?}");

    // Cancelled at Stripe while its event is held back: an active organization without a live
    // subscription. Once the event arrives the organization is cancelled and the finding ends.
    r.sim()
        .set_delivery_mode(DeliveryMode::OutOfOrder { count: 100 });
    r.sim().cancel_now(&subscription).unwrap();
    reconciler.run_once().await.unwrap();
    assert_eq!(
        open_findings(r.db()).await,
        vec![(K::MissingSubscription, format!("organization:{}", org.id))]
    );
    r.sim().set_delivery_mode(DeliveryMode::Normal);
    r.delivered().await;
    r.engine().run_until_idle().await.unwrap();
    assert_eq!(r.org("drifty-co").await.status, OrgStatus::Cancelled);
    let report = reconciler.run_once().await.unwrap();
    assert_eq!(report.resolved, 1, "{report:?}");
    assert_eq!(open_findings(r.db()).await, vec![]);
}

on_both_databases!(
    a_burst_of_first_payments_is_applied_once_each,
    a_failed_batch_is_applied_again_one_event_at_a_time,
    a_paying_customers_tier_change_shows_the_proration_and_moves_the_price,
    a_paid_signup_is_provisioned_and_its_page_follows_it,
    a_declined_card_is_reported_and_a_retry_provisions,
    bad_signatures_are_refused_and_change_nothing,
    fifty_concurrent_copies_of_invoice_paid_make_one_job,
    a_failure_delivered_after_the_payment_changes_nothing,
    cancelling_follows_the_subscription,
    deleting_a_paying_organization_cancels_its_subscription_first,
    every_way_an_admin_ends_a_paying_organization_cancels_its_subscription,
    a_rejected_signup_s_subscription_is_cancelled_so_it_can_never_be_charged,
    an_unreachable_stripe_fails_the_step_for_a_retry_and_audits_nothing,
    reconciliation_finds_each_leak_against_the_simulators_and_resolves_it_once_fixed,
    reconciling_ten_thousand_servers_stays_within_hetzner_s_rate_budget,
    a_server_resized_behind_nest_s_back_is_resized_back_after_the_typed_slug,
    a_renewal_paid_after_the_organization_ended_raises_a_finding_at_once,
    signups_are_limited_per_client_and_unpaid_ones_expire,
    a_burst_of_signups_from_one_address_gets_exactly_the_limit_through,
    each_tenant_s_cost_at_hetzner_is_set_against_its_price,
    drift_made_in_hetzner_s_and_stripe_s_consoles_is_found_and_settled,
);
