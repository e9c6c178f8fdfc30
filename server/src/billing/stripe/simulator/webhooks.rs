//! Webhook delivery: every event POSTed to the configured endpoint, signed as Stripe signs
//! (`Stripe-Signature: t=<unix>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`, the time from the
//! simulator's clock), asynchronously (one task drains the endpoint's queue; retries run in
//! tasks of their own, with backoff), in the delivery mode the control API chose.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender};
use url::Url;

use super::model::StoredEvent;
use super::render;
use crate::clock::Clock;

/// How retries are spaced: `first_delay`, doubled after each failure, `attempts` in all.
#[derive(Debug, Clone, Copy)]
pub struct WebhookRetry {
    /// Attempts per delivery, the first included (at least 1).
    pub attempts: u32,
    /// Wait before the second attempt; doubled for each one after.
    pub first_delay: Duration,
}

impl Default for WebhookRetry {
    fn default() -> Self {
        Self {
            attempts: 5,
            first_delay: Duration::from_secs(2),
        }
    }
}

/// How the next events are delivered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "mode", rename_all = "snake_case")]
pub enum DeliveryMode {
    /// At once, in order.
    Normal,
    /// Each event after a delay.
    Late {
        /// The delay in milliseconds.
        delay_ms: u64,
    },
    /// Each event twice (same id, each freshly signed).
    Twice,
    /// The next `count` events are held, then delivered newest first; then back to normal.
    OutOfOrder {
        /// How many events to hold.
        count: usize,
    },
}

/// One delivery attempt, as the simulator saw it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Delivery {
    /// `evt_…`.
    pub event_id: String,
    /// `invoice.paid`, …
    pub event_type: String,
    /// 1 for the first attempt of a copy.
    pub attempt: u32,
    /// The endpoint's HTTP status; `None` when it could not be reached.
    pub status: Option<u16>,
    /// Why the attempt failed, if it did.
    pub error: Option<String>,
    /// When (the simulator's clock, Unix seconds).
    pub at: i64,
}

impl Delivery {
    /// Whether the endpoint answered 2xx.
    pub fn succeeded(&self) -> bool {
        self.status.is_some_and(|s| (200..300).contains(&s))
    }
}

/// One event on its way to the endpoint.
#[derive(Debug, Clone)]
struct Outgoing {
    event_id: String,
    event_type: String,
    payload: Arc<str>,
    delay: Option<Duration>,
    copies: u8,
}

/// The sending side, kept with the simulator's state so events leave in the order they happen.
pub(super) struct Outbox {
    tx: Option<UnboundedSender<Outgoing>>,
    mode: DeliveryMode,
    held: Vec<Outgoing>,
}

impl Outbox {
    /// An outbox that delivers nowhere (no endpoint configured).
    pub fn disconnected() -> Self {
        Self {
            tx: None,
            mode: DeliveryMode::Normal,
            held: Vec::new(),
        }
    }

    pub fn has_endpoint(&self) -> bool {
        self.tx.is_some()
    }

    pub fn mode(&self) -> DeliveryMode {
        self.mode
    }

    /// Changes the mode for the events to come; events held by `out_of_order` leave first.
    pub fn set_mode(&mut self, mode: DeliveryMode) {
        self.release_held();
        self.mode = match mode {
            DeliveryMode::OutOfOrder { count: 0 } => DeliveryMode::Normal,
            other => other,
        };
    }

    fn release_held(&mut self) {
        let held: Vec<Outgoing> = self.held.drain(..).rev().collect();
        for out in held {
            self.push(out);
        }
    }

    fn push(&self, out: Outgoing) {
        if let Some(tx) = &self.tx {
            // The receiver lives as long as the simulator; a send after it stopped is moot.
            let _ = tx.send(out);
        }
    }

    fn outgoing(event: &StoredEvent) -> Outgoing {
        Outgoing {
            event_id: event.id.clone(),
            event_type: event.type_.clone(),
            payload: render::event(event).to_string().into(),
            delay: None,
            copies: 1,
        }
    }

    /// Delivers a new event according to the mode.
    pub fn send(&mut self, event: &StoredEvent) {
        if self.tx.is_none() {
            return;
        }
        let mut out = Self::outgoing(event);
        match self.mode {
            DeliveryMode::Normal => self.push(out),
            DeliveryMode::Late { delay_ms } => {
                out.delay = Some(Duration::from_millis(delay_ms));
                self.push(out);
            }
            DeliveryMode::Twice => {
                out.copies = 2;
                self.push(out);
            }
            DeliveryMode::OutOfOrder { count } => {
                self.held.push(out);
                if self.held.len() >= count {
                    self.mode = DeliveryMode::Normal;
                    self.release_held();
                }
            }
        }
    }

    /// Delivers a stored event again, at once (whatever the mode).
    pub fn replay(&self, event: &StoredEvent) {
        self.push(Self::outgoing(event));
    }
}

/// Where events go and how they are signed.
#[derive(Clone)]
struct Endpoint {
    url: Url,
    secret: Arc<str>,
    clock: Clock,
    retry: WebhookRetry,
    http: reqwest::Client,
    log: Arc<Mutex<Vec<Delivery>>>,
}

/// The `Stripe-Signature` header for `payload` at `t` (for tests and benches that deliver
/// events themselves).
pub use crate::billing::stripe::signature::header as signature;

impl Endpoint {
    /// One attempt; answers whether the endpoint took it (2xx).
    async fn attempt(&self, out: &Outgoing, attempt: u32) -> bool {
        let t = self.clock.now().timestamp();
        let result = self
            .http
            .post(self.url.clone())
            .header("content-type", "application/json; charset=utf-8")
            .header("stripe-signature", signature(&self.secret, t, &out.payload))
            .body(out.payload.to_string())
            .send()
            .await;
        let (status, error) = match result {
            Ok(response) => {
                let status = response.status();
                let error = (!status.is_success()).then(|| format!("HTTP {status}"));
                (Some(status.as_u16()), error)
            }
            Err(e) => (None, Some(e.to_string())),
        };
        let delivery = Delivery {
            event_id: out.event_id.clone(),
            event_type: out.event_type.clone(),
            attempt,
            status,
            error,
            at: t,
        };
        let ok = delivery.succeeded();
        if !ok {
            tracing::debug!(
                stripe.event = %out.event_id,
                attempt,
                error.detail = delivery.error.as_deref().unwrap_or(""),
                "the simulated Stripe webhook was not accepted"
            );
        }
        self.log
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(delivery);
        ok
    }

    /// The remaining attempts after a failed first one, with backoff.
    async fn retry(self, out: Outgoing) {
        let mut delay = self.retry.first_delay;
        for attempt in 2..=self.retry.attempts.max(1) {
            tokio::time::sleep(delay).await;
            if self.attempt(&out, attempt).await {
                return;
            }
            delay = delay.saturating_mul(2);
        }
    }

    /// Each copy: a first attempt now, the retries in a task of their own.
    async fn deliver(&self, out: Outgoing) {
        for _ in 0..out.copies.max(1) {
            if !self.attempt(&out, 1).await {
                tokio::spawn(self.clone().retry(out.clone()));
            }
        }
    }
}

/// Starts the endpoint's queue; answers the outbox feeding it.
pub(super) fn start(
    url: Option<Url>,
    secret: Arc<str>,
    clock: Clock,
    retry: WebhookRetry,
    log: Arc<Mutex<Vec<Delivery>>>,
) -> (Outbox, Option<tokio::task::JoinHandle<()>>) {
    let Some(url) = url else {
        return (Outbox::disconnected(), None);
    };
    crate::install_tls_provider();
    let http = match reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .user_agent("Stripe/1.0 (+https://stripe.com/docs/webhooks)")
        .build()
    {
        Ok(http) => http,
        Err(e) => {
            tracing::error!(error.detail = %e, "the Stripe simulator cannot deliver webhooks");
            return (Outbox::disconnected(), None);
        }
    };
    let endpoint = Endpoint {
        url,
        secret,
        clock,
        retry,
        http,
        log,
    };
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let task = tokio::spawn(run(endpoint, rx));
    let outbox = Outbox {
        tx: Some(tx),
        mode: DeliveryMode::Normal,
        held: Vec::new(),
    };
    (outbox, Some(task))
}

async fn run(endpoint: Endpoint, mut rx: UnboundedReceiver<Outgoing>) {
    while let Some(out) = rx.recv().await {
        match out.delay {
            Some(delay) => {
                let endpoint = endpoint.clone();
                tokio::spawn(async move {
                    tokio::time::sleep(delay).await;
                    endpoint.deliver(out).await;
                });
            }
            None => endpoint.deliver(out).await,
        }
    }
}
