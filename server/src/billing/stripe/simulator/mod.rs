//! The Stripe simulator: an HTTP server on loopback with Stripe's paths, form encoding, objects,
//! errors, idempotency and signed webhooks, for what Nest uses (customers, recurring prices,
//! subscriptions with their invoices and payment intents, previews with prorations, events).
//! Nest starts it when `STRIPE_SECRET_KEY` is unset and points the same `async-stripe` client
//! at [`Simulator::api_url`]; `nest simulate-stripe` runs it alone; the tests start their own.
//!
//! [`model`] holds the state and Stripe's billing rules, [`render`] the JSON objects, [`api`]
//! the `/v1` routes, [`idempotency`] the `Idempotency-Key` store, [`webhooks`] the signed,
//! retried deliveries and [`control`] the `/_sim` API (declines, renewals, cancellations,
//! replays, delivery modes, inspection) that the methods of [`Simulator`] mirror. Time comes
//! from the [`Clock`] it is given, so tests move it to renew and check period dates.

pub mod api;
pub mod control;
pub mod idempotency;
pub mod model;
pub mod render;
pub mod webhooks;

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard};

use axum::Router;
use serde::Serialize;
use serde_json::Value;
use url::Url;

use self::model::{Inner, PriceSpec, ProductRef};
pub use self::model::{Origin, Renewal, SimError, SubscriptionStatus};
pub use self::webhooks::{Delivery, DeliveryMode, WebhookRetry, signature};
use crate::clock::{Clock, random_hex};

/// The header carrying the control API's token.
pub use crate::sim_control::CONTROL_TOKEN_HEADER;

/// A price created at start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeedPrice {
    /// Its id (`price_sim_starter`).
    pub id: String,
    /// Minor units per month.
    pub unit_amount: i64,
    /// Lower-case ISO code.
    pub currency: String,
    /// The product's name.
    pub product_name: String,
}

impl SeedPrice {
    fn new(id: &str, unit_amount: i64, product_name: &str) -> Self {
        Self {
            id: id.to_owned(),
            unit_amount,
            currency: "eur".to_owned(),
            product_name: product_name.to_owned(),
        }
    }

    /// Nest's three tiers: starter €28, growth €60, enterprise €120 a month.
    pub fn defaults() -> Vec<Self> {
        vec![
            Self::new("price_sim_starter", 2800, "Nest Starter"),
            Self::new("price_sim_growth", 6000, "Nest Growth"),
            Self::new("price_sim_enterprise", 12000, "Nest Enterprise"),
        ]
    }
}

/// How the simulator is set up.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// Where it listens (port 0: any free port).
    pub addr: SocketAddr,
    /// The control API's token (`X-Sim-Token`); `None`: a random one, logged.
    pub control_token: Option<String>,
    /// The monthly prices that exist from the start.
    pub prices: Vec<SeedPrice>,
    /// Where events are POSTed; `None`: kept (`GET /v1/events`), not delivered.
    pub webhook_url: Option<Url>,
    /// The endpoint's signing secret (`whsec_…`).
    pub webhook_secret: String,
    /// How failed deliveries are retried.
    pub webhook_retry: WebhookRetry,
    /// "Now" for every date, period and signature.
    pub clock: Clock,
}

impl Default for SimConfig {
    fn default() -> Self {
        Self {
            addr: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            control_token: None,
            prices: SeedPrice::defaults(),
            webhook_url: None,
            webhook_secret: format!("whsec_{}", random_hex(24)),
            webhook_retry: WebhookRetry::default(),
            clock: Clock::system(),
        }
    }
}

/// A customer, as the control API lists them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CustomerView {
    /// `cus_…`.
    pub id: String,
    /// Email.
    pub email: Option<String>,
    /// Name.
    pub name: Option<String>,
    /// Metadata.
    pub metadata: BTreeMap<String, String>,
    /// The card saved by a first payment.
    pub default_payment_method: Option<String>,
    /// Unix seconds.
    pub created: i64,
}

/// A subscription, as the control API lists them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SubscriptionView {
    /// `sub_…`.
    pub id: String,
    /// `cus_…`.
    pub customer: String,
    /// `incomplete`, `active`, `past_due`, `canceled`, …
    pub status: String,
    /// The first item's price.
    pub price: Option<String>,
    /// The current period (Unix seconds).
    pub current_period_start: i64,
    /// Its end.
    pub current_period_end: i64,
    /// Ends at the period end.
    pub cancel_at_period_end: bool,
    /// `in_…`.
    pub latest_invoice: Option<String>,
    /// Metadata.
    pub metadata: BTreeMap<String, String>,
}

/// An event, as the control API lists them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EventView {
    /// `evt_…`.
    pub id: String,
    /// `invoice.paid`, …
    #[serde(rename = "type")]
    pub type_: String,
    /// Unix seconds.
    pub created: i64,
}

/// The state every route shares.
pub(super) struct Shared {
    clock: Clock,
    inner: Mutex<Inner>,
    deliveries: Arc<Mutex<Vec<Delivery>>>,
    keys: Mutex<idempotency::Keys>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock leaves plain data behind; keep serving it.
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn idempotency(&self) -> MutexGuard<'_, idempotency::Keys> {
        self.keys
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn now(&self) -> i64 {
        self.clock.now().timestamp()
    }
}

/// A `req_…` id.
fn new_request_id() -> String {
    format!("req_{}", random_hex(7))
}

/// A running simulator; dropping it stops the server and the webhook queue.
pub struct Simulator {
    addr: SocketAddr,
    shared: Arc<Shared>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    control_token: Arc<str>,
    webhook_secret: String,
}

impl Drop for Simulator {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

impl Simulator {
    /// Starts the simulator on `config.addr` with the seeded prices.
    pub async fn start(config: SimConfig) -> std::io::Result<Self> {
        let listener = tokio::net::TcpListener::bind(config.addr).await?;
        let addr = listener.local_addr()?;
        let generated = config.control_token.is_none();
        let control_token: Arc<str> = config
            .control_token
            .clone()
            .unwrap_or_else(|| random_hex(16))
            .into();
        let deliveries = Arc::new(Mutex::new(Vec::new()));
        let (outbox, webhook_task) = webhooks::start(
            config.webhook_url.clone(),
            config.webhook_secret.clone().into(),
            config.clock.clone(),
            config.webhook_retry,
            deliveries.clone(),
        );
        let mut inner = Inner::new(outbox);
        let now = config.clock.now().timestamp();
        for seed in &config.prices {
            inner
                .add_price(
                    now,
                    PriceSpec {
                        id: Some(seed.id.clone()),
                        unit_amount: seed.unit_amount,
                        currency: seed.currency.clone(),
                        interval: "month".to_owned(),
                        interval_count: 1,
                        product: ProductRef::New(seed.product_name.clone()),
                        nickname: None,
                        lookup_key: None,
                        metadata: BTreeMap::new(),
                    },
                )
                .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
        }
        let shared = Arc::new(Shared {
            clock: config.clock.clone(),
            inner: Mutex::new(inner),
            deliveries,
            keys: Mutex::new(idempotency::Keys::new()),
        });
        let router = Router::new()
            .nest("/v1", api::router(shared.clone()))
            .nest("/_sim", control::router(control_token.clone()))
            .fallback(api::unknown_path)
            .with_state(shared.clone());
        let server = tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, router).await {
                tracing::error!(error.detail = %e, "the Stripe simulator stopped");
            }
        });
        tracing::info!(sim.addr = %addr, "Stripe simulator listening (simulated payments)");
        if generated {
            // A local development tool's key, shown so a person can script payments.
            tracing::info!(
                sim.control_url = %format!("http://{addr}/_sim"),
                sim.control_token = %control_token,
                "the Stripe simulator's control API needs this token in an X-Sim-Token header"
            );
        }
        let mut tasks = vec![server];
        tasks.extend(webhook_task);
        Ok(Self {
            addr,
            shared,
            tasks,
            control_token,
            webhook_secret: config.webhook_secret,
        })
    }

    /// The base URL to give `stripe::ClientBuilder::url` (`http://127.0.0.1:PORT/`, with the
    /// trailing slash: the client appends `v1/…`).
    pub fn api_url(&self) -> Url {
        #[allow(clippy::expect_used)] // a formatted loopback socket address always parses
        Url::parse(&format!("http://{}/", self.addr)).expect("loopback URL")
    }

    /// The control API's base URL (`http://127.0.0.1:PORT/_sim`).
    pub fn control_url(&self) -> Url {
        #[allow(clippy::expect_used)] // a formatted loopback socket address always parses
        Url::parse(&format!("http://{}/_sim", self.addr)).expect("loopback URL")
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The token the control API requires (header [`CONTROL_TOKEN_HEADER`]).
    pub fn control_token(&self) -> &str {
        &self.control_token
    }

    /// The webhook signing secret (`whsec_…`).
    pub fn webhook_secret(&self) -> &str {
        &self.webhook_secret
    }

    /// The clock the simulator reads.
    pub fn clock(&self) -> &Clock {
        &self.shared.clock
    }

    /// The next charge fails with `card_declined` / `generic_decline`: of this customer's, or
    /// anyone's (`None`). A confirm, a renewal or an `always_invoice` update.
    pub fn decline_next_payment(&self, customer: Option<&str>) {
        self.shared.lock().decline_next(customer.map(str::to_owned));
    }

    /// Starts the subscription's next period: its invoice, charged at once (`invoice.paid`, or
    /// `invoice.payment_failed` and `past_due`). One set to cancel at the period end ends.
    pub fn renew(&self, subscription: &str) -> Result<Renewal, SimError> {
        let now = self.shared.now();
        self.shared
            .lock()
            .renew(now, &Origin::default(), subscription)
    }

    /// Sets `cancel_at_period_end` (`customer.subscription.updated`).
    pub fn cancel_at_period_end(&self, subscription: &str) -> Result<(), SimError> {
        control::cancel(&self.shared, subscription, true)
    }

    /// Cancels now (`customer.subscription.deleted`).
    pub fn cancel_now(&self, subscription: &str) -> Result<(), SimError> {
        control::cancel(&self.shared, subscription, false)
    }

    /// Runs Stripe's 23-hour timer on an incomplete subscription now: `incomplete_expired`,
    /// its invoice voided.
    pub fn expire_incomplete(&self, subscription: &str) -> Result<(), SimError> {
        let now = self.shared.now();
        self.shared
            .lock()
            .expire_incomplete(now, &Origin::default(), subscription)
    }

    /// Delivers an event again (same id, freshly signed).
    pub fn replay_event(&self, id: &str) -> Result<(), SimError> {
        let inner = self.shared.lock();
        let event = inner.event(id)?;
        inner.outbox.replay(event);
        Ok(())
    }

    /// How the events to come are delivered.
    pub fn set_delivery_mode(&self, mode: DeliveryMode) {
        self.shared.lock().outbox.set_mode(mode);
    }

    /// The current delivery mode.
    pub fn delivery_mode(&self) -> DeliveryMode {
        self.shared.lock().outbox.mode()
    }

    /// Every delivery attempt so far, oldest first.
    pub fn deliveries(&self) -> Vec<Delivery> {
        control::deliveries(&self.shared)
    }

    /// Every customer, oldest first.
    pub fn customers(&self) -> Vec<CustomerView> {
        control::customers(&self.shared)
    }

    /// Every subscription, oldest first.
    pub fn subscriptions(&self) -> Vec<SubscriptionView> {
        control::subscriptions(&self.shared)
    }

    /// Every event, oldest first.
    pub fn events(&self) -> Vec<EventView> {
        control::events(&self.shared)
    }

    /// One event as delivered (`None`: unknown id).
    pub fn event(&self, id: &str) -> Option<Value> {
        let inner = self.shared.lock();
        inner.event(id).ok().map(render::event)
    }
}
