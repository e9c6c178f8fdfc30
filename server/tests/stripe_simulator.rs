//! The Stripe simulator over real sockets, driven by async-stripe's own client and checked with
//! async-stripe's webhook verification: subscriptions paid by card, declines, renewals,
//! cancellations, previews with prorations, idempotency, Stripe's errors, webhook delivery modes
//! and the control API's guard.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::Duration;

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use server::billing::stripe::simulator::{
    CONTROL_TOKEN_HEADER, DeliveryMode, Renewal, SimConfig, Simulator, WebhookRetry,
};
use server::clock::Clock;
use stripe::{Client, ClientBuilder, StripeError};
use stripe_billing::invoice::{
    CreatePreviewInvoice, CreatePreviewInvoiceSubscriptionDetails,
    CreatePreviewInvoiceSubscriptionDetailsItems,
    CreatePreviewInvoiceSubscriptionDetailsProrationBehavior, ListInvoice,
};
use stripe_billing::subscription::{
    CancelSubscription, CreateSubscription, CreateSubscriptionItems,
    CreateSubscriptionPaymentBehavior, CreateSubscriptionPaymentSettings,
    CreateSubscriptionPaymentSettingsSaveDefaultPaymentMethod, RetrieveSubscription,
    UpdateSubscription,
};
use stripe_core::customer::{CreateCustomer, RetrieveCustomer};
use stripe_core::payment_intent::{ConfirmPaymentIntent, RetrievePaymentIntent};
use stripe_shared::{Invoice, Subscription, SubscriptionStatus};
use stripe_webhook::{Event, EventObject, Webhook};
use tokio::sync::mpsc::{UnboundedReceiver, unbounded_channel};

/// A webhook endpoint on loopback that hands every request to the test; it answers `status`.
struct Receiver {
    url: url::Url,
    rx: UnboundedReceiver<(String, String)>,
    status: Arc<AtomicU16>,
    _task: tokio::task::JoinHandle<()>,
}

async fn receiver() -> Receiver {
    let (tx, rx) = unbounded_channel();
    let status = Arc::new(AtomicU16::new(200));
    let answer = status.clone();
    let app = axum::Router::new().route(
        "/webhooks/stripe",
        axum::routing::post(move |headers: HeaderMap, body: Bytes| {
            let tx = tx.clone();
            let answer = answer.clone();
            async move {
                let signature = headers
                    .get("stripe-signature")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default()
                    .to_owned();
                let _ = tx.send((signature, String::from_utf8_lossy(&body).into_owned()));
                StatusCode::from_u16(answer.load(Ordering::SeqCst)).unwrap_or(StatusCode::OK)
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Receiver {
        url: format!("http://{addr}/webhooks/stripe").parse().unwrap(),
        rx,
        status,
        _task: task,
    }
}

struct Setup {
    sim: Simulator,
    client: Client,
    hooks: Receiver,
    clock: Clock,
}

const SECRET: &str = "whsec_simulator_test_secret";

async fn setup() -> Setup {
    let hooks = receiver().await;
    let clock = Clock::system();
    let sim = Simulator::start(SimConfig {
        webhook_url: Some(hooks.url.clone()),
        webhook_secret: SECRET.to_owned(),
        webhook_retry: WebhookRetry {
            attempts: 3,
            first_delay: Duration::from_millis(200),
        },
        clock: clock.clone(),
        ..SimConfig::default()
    })
    .await
    .unwrap();
    let client = ClientBuilder::new("sk_test_simulated")
        .url(sim.api_url().as_str())
        .build()
        .unwrap();
    Setup {
        sim,
        client,
        hooks,
        clock,
    }
}

/// Nest's own reading of a delivery (`stripe::signature`, `webhook::delivery`) agrees with
/// async-stripe's: the signature verifies, and an invoice event gives the same facts.
fn nest_reads_it_as_async_stripe_does(
    event: &Event,
    header: &str,
    body: &str,
    now: chrono::DateTime<chrono::Utc>,
) {
    use server::billing::webhook::delivery::{Delivery, read};
    server::billing::stripe::signature::verify(header, SECRET, body, now.timestamp())
        .unwrap_or_else(|e| panic!("Nest refuses a signature async-stripe accepts: {e}"));
    let (EventObject::InvoicePaid(full) | EventObject::InvoicePaymentFailed(full)) =
        &event.data.object
    else {
        let subscription = matches!(
            event.data.object,
            EventObject::CustomerSubscriptionUpdated(_)
                | EventObject::CustomerSubscriptionDeleted(_)
        );
        match read(body) {
            Ok(Delivery::Subscription) => assert!(subscription, "{body}"),
            Ok(Delivery::Ignored { id, .. }) => {
                assert!(!subscription, "{body}");
                assert_eq!(id, event.id.as_str());
            }
            _ => panic!("Nest reads this event otherwise than async-stripe:\n{body}"),
        }
        return;
    };
    let Ok(Delivery::Invoice(lean)) = read(body) else {
        panic!("Nest does not read an invoice event async-stripe reads:\n{body}");
    };
    let lean = lean.invoice;
    assert_eq!(lean.id.as_deref(), full.id.as_ref().map(|i| i.as_str()));
    assert_eq!(
        lean.customer.as_deref(),
        full.customer.as_ref().map(|c| c.id().as_str())
    );
    assert_eq!(
        (lean.amount_paid, lean.amount_due, lean.currency.as_str()),
        (
            full.amount_paid,
            full.amount_due,
            full.currency.to_string().as_str()
        )
    );
    assert_eq!(
        (lean.period_start, lean.period_end),
        (full.period_start, full.period_end)
    );
    assert_eq!(lean.lines.data.len(), full.lines.data.len());
    if let (Some(l), Some(f)) = (lean.lines.data.first(), full.lines.data.first()) {
        assert_eq!(
            (l.period.start, l.period.end),
            (f.period.start, f.period.end)
        );
    }
    assert_eq!(
        lean.is_subscription_create(),
        matches!(
            full.billing_reason,
            Some(stripe_shared::InvoiceBillingReason::SubscriptionCreate)
        )
    );
}

impl Setup {
    /// Waits for a delivered event of `type_` (verified as Nest will, at the simulator's time).
    async fn webhook(&mut self, type_: &str) -> Event {
        self.webhook_where(type_, |_| true).await
    }

    /// Waits for a delivered event of `type_` that `accept`s (others are skipped unverified:
    /// those signed before a test moved the clock would fail the 5-minute tolerance).
    async fn webhook_where(&mut self, type_: &str, accept: impl Fn(&Event) -> bool) -> Event {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let (signature, body) = tokio::time::timeout_at(deadline, self.hooks.rx.recv())
                .await
                .unwrap_or_else(|_| panic!("no {type_} webhook within 10 s"))
                .unwrap();
            let value: serde_json::Value = serde_json::from_str(&body).unwrap();
            if value["type"] != type_ {
                continue;
            }
            let event = Webhook::construct_event_with_timestamp(
                &body,
                &signature,
                SECRET,
                self.clock.now().timestamp(),
            )
            .unwrap_or_else(|e| panic!("the webhook does not verify: {e:?}\n{body}"));
            nest_reads_it_as_async_stripe_does(&event, &signature, &body, self.clock.now());
            if accept(&event) {
                return event;
            }
        }
    }

    /// Every delivery that arrives within `wait`: (event id, type).
    async fn drain(&mut self, wait: Duration) -> Vec<(String, String)> {
        let mut seen = Vec::new();
        while let Ok(Some((_, body))) = tokio::time::timeout(wait, self.hooks.rx.recv()).await {
            let value: serde_json::Value = serde_json::from_str(&body).unwrap();
            seen.push((
                value["id"].as_str().unwrap().to_owned(),
                value["type"].as_str().unwrap().to_owned(),
            ));
        }
        seen
    }

    async fn customer(&self, email: &str) -> String {
        CreateCustomer::new()
            .email(email)
            .name("Ada Lovelace")
            .send(&self.client)
            .await
            .unwrap()
            .id
            .to_string()
    }

    async fn subscribe(&self, customer: &str, price: &str) -> Subscription {
        CreateSubscription::new()
            .customer(customer)
            .items(vec![CreateSubscriptionItems {
                price: Some(price.to_owned()),
                ..CreateSubscriptionItems::new()
            }])
            .payment_behavior(CreateSubscriptionPaymentBehavior::DefaultIncomplete)
            .payment_settings(CreateSubscriptionPaymentSettings {
                save_default_payment_method: Some(
                    CreateSubscriptionPaymentSettingsSaveDefaultPaymentMethod::OnSubscription,
                ),
                ..CreateSubscriptionPaymentSettings::new()
            })
            .metadata([("org".to_owned(), "acme".to_owned())])
            .expand(vec!["latest_invoice.confirmation_secret".to_owned()])
            .send(&self.client)
            .await
            .unwrap()
    }

    /// A subscription on `price`, paid with a good card.
    async fn paid_subscription(&mut self, price: &str) -> Subscription {
        let customer = self.customer("paid@example.com").await;
        let sub = self.subscribe(&customer, price).await;
        let pi = payment_intent_of(&sub);
        ConfirmPaymentIntent::new(pi.as_str())
            .payment_method("pm_card_visa")
            .send(&self.client)
            .await
            .unwrap();
        self.webhook("invoice.paid").await;
        RetrieveSubscription::new(sub.id.clone())
            .send(&self.client)
            .await
            .unwrap()
    }
}

fn latest_invoice(sub: &Subscription) -> &Invoice {
    match &sub.latest_invoice {
        Some(stripe_types::Expandable::Object(invoice)) => invoice,
        other => panic!("latest_invoice is not expanded: {other:?}"),
    }
}

/// The payment intent id inside the client secret (`pi_…_secret_…`).
fn payment_intent_of(sub: &Subscription) -> String {
    let secret = latest_invoice(sub)
        .confirmation_secret
        .as_ref()
        .expect("the expanded invoice has its confirmation secret");
    assert_eq!(secret.type_, "payment_intent");
    secret
        .client_secret
        .split("_secret_")
        .next()
        .unwrap()
        .to_owned()
}

fn stripe_error(e: StripeError) -> (stripe::ApiErrors, u16) {
    match e {
        StripeError::Stripe(error, status) => (*error, status),
        other => panic!("not a Stripe error: {other:?}"),
    }
}

fn subscription_of(invoice: &Invoice) -> String {
    let parent = invoice
        .parent
        .as_ref()
        .expect("a subscription invoice has a parent");
    let details = parent.subscription_details.as_ref().unwrap();
    details.subscription.id().to_string()
}

#[tokio::test]
async fn a_subscription_paid_by_card_sends_a_verifiable_invoice_paid() {
    let mut s = setup().await;
    let customer = s.customer("ada@example.com").await;
    let sub = s.subscribe(&customer, "price_sim_starter").await;
    assert_eq!(sub.status, SubscriptionStatus::Incomplete);
    assert_eq!(sub.metadata.get("org").map(String::as_str), Some("acme"));
    let invoice = latest_invoice(&sub);
    assert_eq!(invoice.amount_due, 2800);
    assert_eq!(invoice.status.as_ref().map(|s| s.as_str()), Some("open"));
    let secret = invoice.confirmation_secret.as_ref().unwrap();
    assert!(secret.client_secret.starts_with("pi_"));
    assert!(secret.client_secret.contains("_secret_"));
    let line = &invoice.lines.data[0];
    let item = &sub.items.data[0];
    assert_eq!(line.period.start, item.current_period_start);
    assert_eq!(line.period.end, item.current_period_end);
    assert!(item.current_period_end - item.current_period_start >= 28 * 86_400);

    // Unexpanded, the invoice is an id and the secret is absent (an includable field).
    let plain = RetrieveSubscription::new(sub.id.clone())
        .send(&s.client)
        .await
        .unwrap();
    assert!(matches!(
        plain.latest_invoice,
        Some(stripe_types::Expandable::Id(_))
    ));

    // Stripe.js confirms with the publishable key and the client secret.
    let pi = payment_intent_of(&sub);
    let confirmed: serde_json::Value = reqwest::Client::new()
        .post(format!(
            "{}v1/payment_intents/{pi}/confirm",
            s.sim.api_url()
        ))
        .bearer_auth("pk_test_simulated")
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!(
            "payment_method=pm_card_visa&client_secret={}&expand[]=customer",
            secret.client_secret
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(confirmed["status"], "succeeded", "{confirmed}");
    assert_eq!(confirmed["amount_received"], 2800);
    let browser = ClientBuilder::new("pk_test_simulated")
        .url(s.sim.api_url().as_str())
        .build()
        .unwrap();
    // …but not anything else.
    let (error, status) = stripe_error(
        RetrieveCustomer::new(customer.as_str())
            .send(&browser)
            .await
            .unwrap_err(),
    );
    assert_eq!(status, 403);
    assert!(error.message.unwrap().contains("publishable API key"));

    let event = s.webhook("invoice.paid").await;
    let EventObject::InvoicePaid(paid) = event.data.object else {
        panic!("invoice.paid is not parsed as an invoice");
    };
    assert_eq!(subscription_of(&paid), sub.id.as_str());
    assert_eq!(paid.amount_paid, 2800);
    assert!(paid.status_transitions.paid_at.is_some());

    let active = RetrieveSubscription::new(sub.id.clone())
        .send(&s.client)
        .await
        .unwrap();
    assert_eq!(active.status, SubscriptionStatus::Active);
    assert!(active.default_payment_method.is_some());
    let invoices = ListInvoice::new()
        .subscription(sub.id.as_str())
        .customer(customer.as_str())
        .send(&s.client)
        .await
        .unwrap();
    assert_eq!(invoices.data.len(), 1);
    assert_eq!(invoices.data[0].amount_paid, 2800);

    let types: Vec<String> = s.sim.events().into_iter().map(|e| e.type_).collect();
    for expected in [
        "customer.subscription.created",
        "invoice.created",
        "invoice.finalized",
        "payment_intent.succeeded",
        "invoice.paid",
        "invoice.payment_succeeded",
        "customer.subscription.updated",
    ] {
        assert!(
            types.iter().any(|t| t == expected),
            "no {expected} in {types:?}"
        );
    }
}

#[tokio::test]
async fn a_declined_card_is_a_card_error_and_a_good_one_then_pays() {
    let mut s = setup().await;
    let customer = s.customer("decline@example.com").await;
    let sub = s.subscribe(&customer, "price_sim_growth").await;
    let pi = payment_intent_of(&sub);
    let (error, status) = stripe_error(
        ConfirmPaymentIntent::new(pi.as_str())
            .payment_method("pm_card_chargeDeclined")
            .send(&s.client)
            .await
            .unwrap_err(),
    );
    assert_eq!(status, 402);
    assert_eq!(error.type_.as_str(), "card_error");
    assert_eq!(
        error.code.map(|c| c.as_str().to_owned()).as_deref(),
        Some("card_declined")
    );
    assert_eq!(error.decline_code.as_deref(), Some("generic_decline"));
    let intent = RetrievePaymentIntent::new(pi.as_str())
        .send(&s.client)
        .await
        .unwrap();
    assert_eq!(intent.status.as_str(), "requires_payment_method");
    assert!(intent.last_payment_error.is_some());
    let failed = s.webhook("invoice.payment_failed").await;
    assert!(matches!(
        failed.data.object,
        EventObject::InvoicePaymentFailed(_)
    ));

    // A scripted decline of this customer's next payment, then a good card.
    s.sim.decline_next_payment(Some(&customer));
    let (_, status) = stripe_error(
        ConfirmPaymentIntent::new(pi.as_str())
            .payment_method("pm_card_visa")
            .send(&s.client)
            .await
            .unwrap_err(),
    );
    assert_eq!(status, 402);
    let ok = ConfirmPaymentIntent::new(pi.as_str())
        .payment_method("pm_card_visa")
        .send(&s.client)
        .await
        .unwrap();
    assert_eq!(ok.status.as_str(), "succeeded");
    assert!(ok.last_payment_error.is_none());
    s.webhook("invoice.paid").await;
    let (error, status) = stripe_error(
        ConfirmPaymentIntent::new(pi.as_str())
            .payment_method("pm_card_visa")
            .send(&s.client)
            .await
            .unwrap_err(),
    );
    assert_eq!(status, 400);
    assert_eq!(
        error.code.map(|c| c.as_str().to_owned()).as_deref(),
        Some("payment_intent_unexpected_state")
    );
}

#[tokio::test]
async fn an_idempotency_key_replays_the_first_answer() {
    let s = setup().await;
    let http = reqwest::Client::new();
    let url = format!("{}v1/customers", s.sim.api_url());
    let post = |body: &'static str| {
        http.post(&url)
            .bearer_auth("sk_test_simulated")
            .header("idempotency-key", "signup-42")
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
    };
    let first = post("email=idem%40example.com&metadata[org]=acme")
        .await
        .unwrap();
    assert_eq!(first.status(), 200);
    assert!(first.headers().get("idempotent-replayed").is_none());
    let first: serde_json::Value = first.json().await.unwrap();
    let second = post("email=idem%40example.com&metadata[org]=acme")
        .await
        .unwrap();
    assert_eq!(second.status(), 200);
    assert_eq!(second.headers()["idempotent-replayed"], "true");
    let second: serde_json::Value = second.json().await.unwrap();
    assert_eq!(first["id"], second["id"]);
    assert_eq!(s.sim.customers().len(), 1);

    let other = post("email=someone-else%40example.com").await.unwrap();
    assert_eq!(other.status(), 400);
    let other: serde_json::Value = other.json().await.unwrap();
    assert_eq!(other["error"]["type"], "idempotency_error");
    assert_eq!(s.sim.customers().len(), 1);
}

#[tokio::test]
async fn rejections_are_stripe_error_objects() {
    let s = setup().await;
    let (error, status) = stripe_error(
        RetrieveCustomer::new("cus_missing")
            .send(&s.client)
            .await
            .unwrap_err(),
    );
    assert_eq!(status, 404);
    assert_eq!(error.type_.as_str(), "invalid_request_error");
    assert_eq!(
        error.code.map(|c| c.as_str().to_owned()).as_deref(),
        Some("resource_missing")
    );
    assert_eq!(
        error.message.as_deref(),
        Some("No such customer: 'cus_missing'")
    );

    let (error, status) = stripe_error(
        CreateSubscription::new()
            .items(vec![CreateSubscriptionItems {
                price: Some("price_sim_starter".to_owned()),
                ..CreateSubscriptionItems::new()
            }])
            .send(&s.client)
            .await
            .unwrap_err(),
    );
    assert_eq!(status, 400);
    assert_eq!(
        error.code.map(|c| c.as_str().to_owned()).as_deref(),
        Some("parameter_missing")
    );
    assert_eq!(error.param.as_deref(), Some("customer"));

    let customer = s.customer("errors@example.com").await;
    let (error, _) = stripe_error(
        CreateSubscription::new()
            .customer(customer.as_str())
            .items(vec![CreateSubscriptionItems {
                price: Some("price_nope".to_owned()),
                ..CreateSubscriptionItems::new()
            }])
            .send(&s.client)
            .await
            .unwrap_err(),
    );
    assert_eq!(error.param.as_deref(), Some("items[0][price]"));

    let http = reqwest::Client::new();
    let base = s.sim.api_url();
    let unknown = http
        .get(format!("{base}v1/nothing_here"))
        .bearer_auth("sk_test_simulated")
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), 404);
    let unknown: serde_json::Value = unknown.json().await.unwrap();
    assert!(
        unknown["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("Unrecognized request URL")
    );
    let anonymous = http
        .get(format!("{base}v1/customers/{customer}"))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 401);
    let unknown_param = http
        .post(format!("{base}v1/customers"))
        .bearer_auth("sk_test_simulated")
        .header("content-type", "application/x-www-form-urlencoded")
        .body("colour=red")
        .send()
        .await
        .unwrap();
    assert_eq!(unknown_param.status(), 400);
    let unknown_param: serde_json::Value = unknown_param.json().await.unwrap();
    assert_eq!(unknown_param["error"]["code"], "parameter_unknown");
    assert_eq!(unknown_param["error"]["param"], "colour");
}

#[tokio::test]
async fn a_renewal_bills_the_next_period_and_a_decline_makes_it_past_due() {
    let mut s = setup().await;
    let sub = s.paid_subscription("price_sim_starter").await;
    let first_end = sub.items.data[0].current_period_end;
    s.clock.advance(chrono::Duration::days(31));

    let Renewal::Renewed { invoice, paid } = s.sim.renew(sub.id.as_str()).unwrap() else {
        panic!("the subscription ended instead of renewing");
    };
    assert!(paid);
    let event = s.webhook("invoice.paid").await;
    let EventObject::InvoicePaid(paid_invoice) = event.data.object else {
        panic!("invoice.paid is not an invoice");
    };
    assert_eq!(
        paid_invoice.id.as_ref().map(|i| i.as_str()),
        Some(invoice.as_str())
    );
    assert_eq!(subscription_of(&paid_invoice), sub.id.as_str());
    assert_eq!(
        paid_invoice.billing_reason.as_ref().map(|r| r.as_str()),
        Some("subscription_cycle")
    );
    assert_eq!(paid_invoice.lines.data[0].period.start, first_end);
    assert_eq!(paid_invoice.amount_paid, 2800);
    let renewed = RetrieveSubscription::new(sub.id.clone())
        .send(&s.client)
        .await
        .unwrap();
    assert_eq!(renewed.items.data[0].current_period_start, first_end);

    s.sim.decline_next_payment(None);
    let Renewal::Renewed { paid, .. } = s.sim.renew(sub.id.as_str()).unwrap() else {
        panic!("the subscription ended instead of renewing");
    };
    assert!(!paid);
    s.webhook("invoice.payment_failed").await;
    let past_due = RetrieveSubscription::new(sub.id.clone())
        .send(&s.client)
        .await
        .unwrap();
    assert_eq!(past_due.status, SubscriptionStatus::PastDue);
}

#[tokio::test]
async fn cancelling_at_the_period_end_and_now() {
    let mut s = setup().await;
    let sub = s.paid_subscription("price_sim_starter").await;
    let updated = UpdateSubscription::new(sub.id.clone())
        .cancel_at_period_end(true)
        .send(&s.client)
        .await
        .unwrap();
    assert!(updated.cancel_at_period_end);
    assert_eq!(updated.status, SubscriptionStatus::Active);
    s.webhook_where("customer.subscription.updated", |e| {
        format!("{:?}", e.data.previous_attributes).contains("cancel_at_period_end")
    })
    .await;
    assert_eq!(s.sim.renew(sub.id.as_str()).unwrap(), Renewal::Ended);
    let deleted = s.webhook("customer.subscription.deleted").await;
    let EventObject::CustomerSubscriptionDeleted(ended) = deleted.data.object else {
        panic!("customer.subscription.deleted is not a subscription");
    };
    assert_eq!(ended.status, SubscriptionStatus::Canceled);

    // An incomplete subscription can be deleted at once; its open invoice is voided.
    let customer = s.customer("never-paid@example.com").await;
    let incomplete = s.subscribe(&customer, "price_sim_growth").await;
    let canceled = CancelSubscription::new(incomplete.id.clone())
        .send(&s.client)
        .await
        .unwrap();
    assert_eq!(canceled.status, SubscriptionStatus::Canceled);
    assert!(canceled.ended_at.is_some());
    s.webhook("customer.subscription.deleted").await;

    // The control path.
    let other = s.paid_subscription("price_sim_enterprise").await;
    s.sim.cancel_now(other.id.as_str()).unwrap();
    let gone = RetrieveSubscription::new(other.id.clone())
        .send(&s.client)
        .await
        .unwrap();
    assert_eq!(gone.status, SubscriptionStatus::Canceled);
}

#[tokio::test]
async fn a_mid_period_upgrade_preview_prorates_to_the_second() {
    let mut s = setup().await;
    let sub = s.paid_subscription("price_sim_starter").await;
    let item = &sub.items.data[0];
    let (start, end) = (item.current_period_start, item.current_period_end);
    let half = start + (end - start) / 2;
    let preview = |behavior| {
        CreatePreviewInvoice::new()
            .customer(sub.customer.id().as_str())
            .subscription(sub.id.as_str())
            .subscription_details(CreatePreviewInvoiceSubscriptionDetails {
                items: Some(vec![CreatePreviewInvoiceSubscriptionDetailsItems {
                    id: Some(item.id.to_string()),
                    price: Some("price_sim_growth".to_owned()),
                    ..CreatePreviewInvoiceSubscriptionDetailsItems::new()
                }]),
                proration_behavior: Some(behavior),
                proration_date: Some(half),
                ..CreatePreviewInvoiceSubscriptionDetails::new()
            })
    };
    // Every month is a whole number of days, so half of it is exact: −€14.00 unused starter,
    // +€30.00 remaining growth, and the next month of growth at €60.00.
    let upcoming =
        preview(CreatePreviewInvoiceSubscriptionDetailsProrationBehavior::CreateProrations)
            .send(&s.client)
            .await
            .unwrap();
    let amounts: Vec<i64> = upcoming.lines.data.iter().map(|l| l.amount).collect();
    assert_eq!(amounts, vec![-1400, 3000, 6000]);
    assert_eq!(upcoming.amount_due, 7600);
    assert!(
        upcoming
            .id
            .as_ref()
            .is_some_and(|i| i.as_str().starts_with("upcoming_"))
    );
    assert_eq!(upcoming.lines.data[0].period.start, half);
    assert_eq!(upcoming.lines.data[2].period.start, end);
    let now = preview(CreatePreviewInvoiceSubscriptionDetailsProrationBehavior::AlwaysInvoice)
        .send(&s.client)
        .await
        .unwrap();
    assert_eq!(now.amount_due, 1600);

    // The update itself, invoiced at once, charges the saved card the same €16.00.
    let updated = UpdateSubscription::new(sub.id.clone())
        .items(vec![
            stripe_billing::subscription::UpdateSubscriptionItems {
                id: Some(item.id.to_string()),
                price: Some("price_sim_growth".to_owned()),
                ..stripe_billing::subscription::UpdateSubscriptionItems::new()
            },
        ])
        .proration_behavior(
            stripe_billing::subscription::UpdateSubscriptionProrationBehavior::AlwaysInvoice,
        )
        .proration_date(half)
        .send(&s.client)
        .await
        .unwrap();
    assert_eq!(updated.items.data[0].price.id.as_str(), "price_sim_growth");
    let event = s.webhook("invoice.paid").await;
    let EventObject::InvoicePaid(invoice) = event.data.object else {
        panic!("invoice.paid is not an invoice");
    };
    assert_eq!(invoice.amount_paid, 1600);
}

#[tokio::test]
async fn replays_and_twice_deliver_the_same_event_id_again() {
    let mut s = setup().await;
    s.sim.set_delivery_mode(DeliveryMode::Twice);
    let customer = s.customer("twice@example.com").await;
    let seen = s.drain(Duration::from_millis(500)).await;
    let created: Vec<&(String, String)> = seen
        .iter()
        .filter(|(_, t)| t == "customer.created")
        .collect();
    assert_eq!(created.len(), 2, "{seen:?}");
    assert_eq!(created[0].0, created[1].0);
    let id = created[0].0.clone();

    s.sim.set_delivery_mode(DeliveryMode::Normal);
    s.sim.replay_event(&id).unwrap();
    let again = s.drain(Duration::from_millis(500)).await;
    assert_eq!(again, vec![(id.clone(), "customer.created".to_owned())]);
    assert!(s.sim.replay_event("evt_missing").is_err());
    assert_eq!(s.sim.customers()[0].id, customer);

    // Out of order: the next three events arrive newest first.
    s.sim
        .set_delivery_mode(DeliveryMode::OutOfOrder { count: 3 });
    for n in 0..3 {
        s.customer(&format!("order{n}@example.com")).await;
    }
    let reversed = s.drain(Duration::from_millis(500)).await;
    let mut expected: Vec<String> = s
        .sim
        .events()
        .into_iter()
        .rev()
        .take(3)
        .map(|e| e.id)
        .collect();
    assert_eq!(
        reversed.iter().map(|(i, _)| i.clone()).collect::<Vec<_>>(),
        expected
    );
    expected.clear();
}

#[tokio::test]
async fn a_refused_delivery_is_retried_with_backoff() {
    let mut s = setup().await;
    s.hooks.status.store(500, Ordering::SeqCst);
    s.customer("retry@example.com").await;
    let first = tokio::time::timeout(Duration::from_secs(5), s.hooks.rx.recv()).await;
    assert!(matches!(first, Ok(Some(_))));
    s.hooks.status.store(200, Ordering::SeqCst);
    s.drain(Duration::from_millis(500)).await;
    let deliveries = s.sim.deliveries();
    assert_eq!(deliveries[0].status, Some(500));
    assert_eq!(deliveries[0].attempt, 1);
    assert!(
        deliveries
            .iter()
            .any(|d| d.event_id == deliveries[0].event_id && d.attempt > 1 && d.succeeded()),
        "{deliveries:?}"
    );
}

#[tokio::test]
async fn the_control_api_needs_its_token_and_refuses_web_pages() {
    let s = setup().await;
    s.customer("control@example.com").await;
    let http = reqwest::Client::new();
    let url = format!("{}/customers", s.sim.control_url());
    let anonymous = http.get(&url).send().await.unwrap();
    assert_eq!(anonymous.status(), 401);
    let from_a_page = http
        .get(&url)
        .header(CONTROL_TOKEN_HEADER, s.sim.control_token())
        .header("origin", "https://evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(from_a_page.status(), 403);
    let listed = http
        .get(&url)
        .header(CONTROL_TOKEN_HEADER, s.sim.control_token())
        .send()
        .await
        .unwrap();
    assert_eq!(listed.status(), 200);
    let listed: serde_json::Value = listed.json().await.unwrap();
    assert_eq!(listed["customers"][0]["email"], "control@example.com");
    let mode = http
        .post(format!("{}/delivery-mode", s.sim.control_url()))
        .header(CONTROL_TOKEN_HEADER, s.sim.control_token())
        .json(&serde_json::json!({"mode": "late", "delay_ms": 10}))
        .send()
        .await
        .unwrap();
    assert_eq!(mode.status(), 200);
    assert_eq!(s.sim.delivery_mode(), DeliveryMode::Late { delay_ms: 10 });
}

/// Stripe's official Python client (`stripe==16.1.0`, in the virtual environment `cargo make
/// hcloud` installs at `$HOME/.cache/nest-venv`, or `NEST_HCLOUD_PYTHON`) drives the simulator
/// through `server/tests/stripe/stripe_sim_test.py`: customers, prices, subscriptions with
/// `default_incomplete`, confirmations and declines, idempotency, `expand[]`, errors, previews,
/// cancellations, events, and a webhook it verifies with its own `construct_event`. Missing:
/// fatal in CI, skipped (and said so) elsewhere.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stripes_official_python_client_accepts_everything_the_simulator_answers() {
    let Some(python) = support::python::interpreter(
        "import sys, stripe; sys.exit(stripe.VERSION != '16.1.0')",
        "stripe 16.1.0",
    ) else {
        return;
    };
    // The script receives the webhooks itself, on a port picked here.
    let listen = {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        probe.local_addr().unwrap()
    };
    let secret = "whsec_python_client_check_0123".to_owned();
    let sim = Simulator::start(SimConfig {
        webhook_url: Some(format!("http://{listen}/webhooks/stripe").parse().unwrap()),
        webhook_secret: secret.clone(),
        webhook_retry: WebhookRetry {
            attempts: 5,
            first_delay: Duration::from_millis(200),
        },
        ..SimConfig::default()
    })
    .await
    .unwrap();
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/stripe/stripe_sim_test.py"
    );
    let base = sim
        .api_url()
        .as_str()
        .trim_end_matches('/')
        .trim_end_matches("/v1")
        .to_owned();
    support::python::run_checks(
        &python,
        script,
        &[
            ("STRIPE_SIM_URL", base),
            ("STRIPE_SECRET_KEY", "sk_test_nest_python_client".to_owned()),
            ("STRIPE_WEBHOOK_SECRET", secret.clone()),
            ("STRIPE_SIM_WEBHOOK_LISTEN", listen.to_string()),
            ("STRIPE_SIM_CONTROL_TOKEN", sim.control_token().to_owned()),
            ("STRIPE_SIM_DEADLINE", "50".to_owned()),
        ],
        Duration::from_secs(60),
    )
    .await;
}
