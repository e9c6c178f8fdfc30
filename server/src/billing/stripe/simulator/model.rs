//! The simulator's state and Stripe's billing rules over it: customers, prices, subscriptions,
//! invoices, payment intents and the events each change emits. No HTTP here: [`super::api`]
//! parses requests into these operations and [`super::render`] turns the state into Stripe's
//! JSON objects.

use std::collections::BTreeMap;

use chrono::{DateTime, Months, TimeZone, Utc};
use serde_json::Value;

use super::render;
use super::webhooks::Outbox;
use crate::clock::random_hex;

/// Why the simulator refused an operation; [`super::api`] turns each into Stripe's error object.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SimError {
    /// No object of this kind has this id (`resource_missing`; 404 on the object's own path).
    #[error("No such {kind}: '{id}'")]
    NoSuch {
        /// Stripe's name for the kind (`customer`, `price`, `subscription`, …).
        kind: &'static str,
        /// The id asked for.
        id: String,
        /// The parameter that named it (`id` when it was the path).
        param: String,
    },
    /// A required parameter is absent (`parameter_missing`, 400).
    #[error("Missing required param: {0}.")]
    Missing(String),
    /// A parameter's value is not acceptable (400, with Stripe's code when it has one).
    #[error("{message}")]
    Invalid {
        /// The parameter, in Stripe's bracket notation.
        param: String,
        /// Stripe's error code (`parameter_invalid_integer`, …), if any.
        code: Option<&'static str>,
        /// What is wrong.
        message: String,
    },
    /// The object is in a state that does not allow this (400, with Stripe's code if any).
    #[error("{message}")]
    State {
        /// Stripe's error code (`payment_intent_unexpected_state`, …), if any.
        code: Option<&'static str>,
        /// What is wrong.
        message: String,
    },
    /// The card was declined (402 `card_error`); the payment intent is in the error.
    #[error("{message}")]
    Declined {
        /// Stripe's `decline_code` (`generic_decline`, `insufficient_funds`).
        decline_code: &'static str,
        /// What the customer is told.
        message: String,
        /// The charge that failed.
        charge: String,
        /// The payment intent, rendered after the failure.
        payment_intent: Box<Value>,
    },
}

impl SimError {
    fn no_such(kind: &'static str, id: &str, param: &str) -> Self {
        Self::NoSuch {
            kind,
            id: id.to_owned(),
            param: param.to_owned(),
        }
    }

    fn state(message: impl Into<String>) -> Self {
        Self::State {
            code: None,
            message: message.into(),
        }
    }
}

/// A Stripe object id with its prefix: `cus_…`, `sub_…`, `in_…`.
pub(super) fn new_id(prefix: &str) -> String {
    format!("{prefix}_{}", random_hex(12))
}

/// What started a change: the API request (its id and idempotency key), or the simulator itself
/// (a renewal, a control API call), which Stripe shows as a request without id.
#[derive(Debug, Clone, Default)]
pub struct Origin {
    /// `req_…` for API requests.
    pub request_id: Option<String>,
    /// The `Idempotency-Key` the request carried.
    pub idempotency_key: Option<String>,
}

/// A seeded or created product.
#[derive(Debug, Clone)]
pub(super) struct Product {
    pub id: String,
    pub created: i64,
    pub name: String,
}

/// A recurring price.
#[derive(Debug, Clone)]
pub(super) struct Price {
    pub id: String,
    pub created: i64,
    pub product: String,
    pub unit_amount: i64,
    pub currency: String,
    pub interval: String,
    pub interval_count: u32,
    pub nickname: Option<String>,
    pub lookup_key: Option<String>,
    pub metadata: BTreeMap<String, String>,
}

/// A customer.
#[derive(Debug, Clone)]
pub(super) struct Customer {
    pub id: String,
    pub seq: u64,
    pub created: i64,
    pub email: Option<String>,
    pub name: Option<String>,
    pub description: Option<String>,
    pub phone: Option<String>,
    pub metadata: BTreeMap<String, String>,
    pub invoice_prefix: String,
    pub next_invoice_sequence: u32,
    pub default_payment_method: Option<String>,
}

/// A subscription item (one price, a quantity).
#[derive(Debug, Clone)]
pub(super) struct Item {
    pub id: String,
    pub created: i64,
    pub price: String,
    pub quantity: u64,
    pub metadata: BTreeMap<String, String>,
}

/// Stripe's subscription statuses (those the simulator reaches).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubscriptionStatus {
    /// Created, first invoice not paid yet.
    Incomplete,
    /// The first invoice was never paid (Stripe's 23 h timer; only through the control API here).
    IncompleteExpired,
    /// Paid up.
    Active,
    /// A renewal charge failed.
    PastDue,
    /// Ended.
    Canceled,
}

impl SubscriptionStatus {
    /// Stripe's name for it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Incomplete => "incomplete",
            Self::IncompleteExpired => "incomplete_expired",
            Self::Active => "active",
            Self::PastDue => "past_due",
            Self::Canceled => "canceled",
        }
    }
}

/// A subscription.
#[derive(Debug, Clone)]
pub(super) struct Subscription {
    pub id: String,
    pub seq: u64,
    pub created: i64,
    pub customer: String,
    pub items: Vec<Item>,
    pub status: SubscriptionStatus,
    pub anchor: i64,
    /// Periods since the anchor: the current period is `[anchor + (n-1) months, anchor + n months)`.
    pub periods: u32,
    pub period_start: i64,
    pub period_end: i64,
    pub cancel_at_period_end: bool,
    pub cancel_at: Option<i64>,
    pub canceled_at: Option<i64>,
    pub ended_at: Option<i64>,
    pub latest_invoice: Option<String>,
    pub metadata: BTreeMap<String, String>,
    pub currency: String,
    pub default_payment_method: Option<String>,
    pub save_default_payment_method: bool,
    /// Proration lines waiting for the next invoice (`create_prorations`).
    pub pending: Vec<Line>,
}

/// One invoice line.
#[derive(Debug, Clone)]
pub(super) struct Line {
    pub id: String,
    pub amount: i64,
    pub description: String,
    pub period_start: i64,
    pub period_end: i64,
    pub price: String,
    pub quantity: u64,
    pub proration: bool,
    pub subscription: Option<String>,
    pub subscription_item: Option<String>,
    /// `ii_…` for proration lines (they come from invoice items).
    pub invoice_item: Option<String>,
}

/// Stripe's invoice statuses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InvoiceStatus {
    /// Not finalized (previews; the `invoice.created` snapshot).
    Draft,
    /// Finalized, awaiting payment.
    Open,
    /// Paid.
    Paid,
    /// Voided (the open invoice of a canceled incomplete subscription).
    Void,
}

impl InvoiceStatus {
    /// Stripe's name for it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Draft => "draft",
            Self::Open => "open",
            Self::Paid => "paid",
            Self::Void => "void",
        }
    }
}

/// An invoice (or a preview, whose id starts `upcoming_`).
#[derive(Debug, Clone)]
pub(super) struct Invoice {
    pub id: String,
    pub seq: u64,
    pub created: i64,
    pub customer: String,
    pub subscription: Option<String>,
    pub status: InvoiceStatus,
    pub billing_reason: &'static str,
    pub number: Option<String>,
    pub lines: Vec<Line>,
    pub currency: String,
    pub period_start: i64,
    pub period_end: i64,
    pub amount_paid: i64,
    pub attempt_count: u64,
    pub attempted: bool,
    pub finalized_at: Option<i64>,
    pub paid_at: Option<i64>,
    pub voided_at: Option<i64>,
    pub payment_intent: Option<String>,
    pub proration_date: Option<i64>,
    pub preview: bool,
}

impl Invoice {
    /// The sum of the lines.
    pub fn total(&self) -> i64 {
        self.lines.iter().map(|l| l.amount).sum()
    }

    /// What the customer owes (a negative total is a credit, not a refund).
    pub fn amount_due(&self) -> i64 {
        self.total().max(0)
    }

    /// What is left to pay.
    pub fn amount_remaining(&self) -> i64 {
        match self.status {
            InvoiceStatus::Open | InvoiceStatus::Draft => self.amount_due() - self.amount_paid,
            _ => 0,
        }
    }
}

/// Stripe's payment intent statuses (those the simulator reaches).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PaymentIntentStatus {
    /// Waiting for a card (new, or after a decline).
    RequiresPaymentMethod,
    /// Paid.
    Succeeded,
    /// Canceled (its invoice was voided).
    Canceled,
}

impl PaymentIntentStatus {
    /// Stripe's name for it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::RequiresPaymentMethod => "requires_payment_method",
            Self::Succeeded => "succeeded",
            Self::Canceled => "canceled",
        }
    }
}

/// The last decline of a payment intent.
#[derive(Debug, Clone)]
pub(super) struct Decline {
    pub decline_code: &'static str,
    pub message: String,
    pub charge: String,
}

/// A payment intent.
#[derive(Debug, Clone)]
pub(super) struct PaymentIntent {
    pub id: String,
    pub created: i64,
    pub amount: i64,
    pub amount_received: i64,
    pub currency: String,
    pub customer: String,
    pub invoice: Option<String>,
    pub status: PaymentIntentStatus,
    pub client_secret: String,
    pub payment_method: Option<String>,
    pub last_error: Option<Decline>,
    pub latest_charge: Option<String>,
    pub canceled_at: Option<i64>,
}

/// What a saved card does when charged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Card {
    Succeeds,
    Declines(&'static str),
}

/// An event as stored (and delivered).
#[derive(Debug, Clone)]
pub(super) struct StoredEvent {
    pub id: String,
    pub created: i64,
    pub type_: String,
    pub object: Value,
    pub previous_attributes: Option<Value>,
    pub origin: Origin,
    pub pending_webhooks: i64,
}

/// A pending scripted decline: for one customer, or for whoever pays next.
#[derive(Debug, Clone)]
struct ScriptedDecline {
    customer: Option<String>,
}

/// The first invoice of a new subscription: how it is to be paid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PaymentBehavior {
    /// `default_incomplete`: wait for the client to confirm the payment intent.
    DefaultIncomplete,
    /// `allow_incomplete`: charge the customer's default payment method if any.
    AllowIncomplete,
    /// `error_if_incomplete`: charge it, and refuse the subscription if that fails.
    ErrorIfIncomplete,
}

/// How a price change is billed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProrationBehavior {
    /// Proration lines wait for the next invoice.
    CreateProrations,
    /// Proration lines are invoiced and charged at once.
    AlwaysInvoice,
    /// No prorations.
    None,
}

/// A change of one subscription item's price.
#[derive(Debug, Clone)]
pub struct ItemChange {
    /// `si_…`; absent adds an item.
    pub id: Option<String>,
    /// The new price.
    pub price: Option<String>,
    /// The new quantity.
    pub quantity: Option<u64>,
}

/// What a renewal did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Renewal {
    /// A new period began; its invoice was paid (or is open after a decline).
    Renewed {
        /// The period's invoice.
        invoice: String,
        /// Whether the charge succeeded.
        paid: bool,
    },
    /// The subscription was set to cancel at the period end, and has ended.
    Ended,
}

/// All the simulator's objects.
pub(super) struct Inner {
    pub products: BTreeMap<String, Product>,
    pub prices: BTreeMap<String, Price>,
    pub customers: BTreeMap<String, Customer>,
    pub subscriptions: BTreeMap<String, Subscription>,
    pub invoices: BTreeMap<String, Invoice>,
    pub payment_intents: BTreeMap<String, PaymentIntent>,
    pub events: Vec<StoredEvent>,
    payment_methods: BTreeMap<String, Card>,
    declines: Vec<ScriptedDecline>,
    seq: u64,
    pub outbox: Outbox,
}

/// `t + n` calendar months (the day clamped to the month's length), as Stripe's billing cycles.
pub(super) fn add_months(t: i64, n: u32) -> i64 {
    let Some(start) = Utc.timestamp_opt(t, 0).single() else {
        return t;
    };
    start
        .checked_add_months(Months::new(n))
        .map_or(t, |d: DateTime<Utc>| d.timestamp())
}

/// `amount × part / whole`, rounded half away from zero (Stripe prorates to the second).
pub(super) fn prorate(amount: i64, part: i64, whole: i64) -> i64 {
    if whole <= 0 {
        return 0;
    }
    let (a, p, w) = (i128::from(amount), i128::from(part), i128::from(whole));
    let twice = 2 * a * p;
    let rounded = if twice >= 0 {
        (twice + w) / (2 * w)
    } else {
        (twice - w) / (2 * w)
    };
    i64::try_from(rounded).unwrap_or(0)
}

impl Inner {
    pub fn new(outbox: Outbox) -> Self {
        Self {
            products: BTreeMap::new(),
            prices: BTreeMap::new(),
            customers: BTreeMap::new(),
            subscriptions: BTreeMap::new(),
            invoices: BTreeMap::new(),
            payment_intents: BTreeMap::new(),
            events: Vec::new(),
            payment_methods: BTreeMap::new(),
            declines: Vec::new(),
            seq: 0,
            outbox,
        }
    }

    fn next_seq(&mut self) -> u64 {
        self.seq += 1;
        self.seq
    }

    // ----- events -----

    /// Records an event and hands it to the webhook queue.
    fn emit(
        &mut self,
        now: i64,
        origin: &Origin,
        type_: &str,
        object: Value,
        previous_attributes: Option<Value>,
    ) {
        let event = StoredEvent {
            id: new_id("evt"),
            created: now,
            type_: type_.to_owned(),
            object,
            previous_attributes,
            origin: origin.clone(),
            pending_webhooks: i64::from(self.outbox.has_endpoint()),
        };
        self.outbox.send(&event);
        self.events.push(event);
    }

    fn emit_subscription(
        &mut self,
        now: i64,
        origin: &Origin,
        type_: &str,
        id: &str,
        previous: Option<Value>,
    ) {
        if let Some(sub) = self.subscriptions.get(id) {
            let object = render::subscription(self, sub, &render::Expand::none());
            self.emit(now, origin, type_, object, previous);
        }
    }

    fn emit_invoice(&mut self, now: i64, origin: &Origin, type_: &str, id: &str) {
        if let Some(invoice) = self.invoices.get(id) {
            let object = render::invoice(self, invoice, &render::Expand::none());
            self.emit(now, origin, type_, object, None);
        }
    }

    fn emit_payment_intent(&mut self, now: i64, origin: &Origin, type_: &str, id: &str) {
        if let Some(pi) = self.payment_intents.get(id) {
            let object = render::payment_intent(self, pi, &render::Expand::none());
            self.emit(now, origin, type_, object, None);
        }
    }

    /// An event by id.
    pub fn event(&self, id: &str) -> Result<&StoredEvent, SimError> {
        self.events
            .iter()
            .find(|e| e.id == id)
            .ok_or_else(|| SimError::no_such("event", id, "id"))
    }

    // ----- lookups -----

    pub fn customer(&self, id: &str, param: &str) -> Result<&Customer, SimError> {
        self.customers
            .get(id)
            .ok_or_else(|| SimError::no_such("customer", id, param))
    }

    pub fn price(&self, id: &str, param: &str) -> Result<&Price, SimError> {
        self.prices
            .get(id)
            .ok_or_else(|| SimError::no_such("price", id, param))
    }

    pub fn subscription(&self, id: &str, param: &str) -> Result<&Subscription, SimError> {
        self.subscriptions
            .get(id)
            .ok_or_else(|| SimError::no_such("subscription", id, param))
    }

    pub fn invoice(&self, id: &str, param: &str) -> Result<&Invoice, SimError> {
        self.invoices
            .get(id)
            .ok_or_else(|| SimError::no_such("invoice", id, param))
    }

    pub fn payment_intent(&self, id: &str, param: &str) -> Result<&PaymentIntent, SimError> {
        self.payment_intents
            .get(id)
            .ok_or_else(|| SimError::no_such("payment_intent", id, param))
    }

    pub fn product_name(&self, price: &str) -> String {
        self.prices
            .get(price)
            .and_then(|p| self.products.get(&p.product))
            .map_or_else(|| price.to_owned(), |p| p.name.clone())
    }

    // ----- catalog -----

    /// Adds a product and a monthly (or other) price for it; answers the price id.
    pub fn add_price(&mut self, now: i64, spec: PriceSpec) -> Result<String, SimError> {
        if spec.unit_amount < 0 {
            return Err(SimError::Invalid {
                param: "unit_amount".to_owned(),
                code: Some("parameter_invalid_integer"),
                message: "This value must be greater than or equal to 0.".to_owned(),
            });
        }
        let product = match spec.product {
            ProductRef::Existing(id) => {
                if !self.products.contains_key(&id) {
                    return Err(SimError::no_such("product", &id, "product"));
                }
                id
            }
            ProductRef::New(name) => {
                let id = new_id("prod");
                self.products.insert(
                    id.clone(),
                    Product {
                        id: id.clone(),
                        created: now,
                        name,
                    },
                );
                id
            }
        };
        let id = spec.id.unwrap_or_else(|| new_id("price"));
        if self.prices.contains_key(&id) {
            return Err(SimError::state(format!(
                "A price with id {id} already exists."
            )));
        }
        self.prices.insert(
            id.clone(),
            Price {
                id: id.clone(),
                created: now,
                product,
                unit_amount: spec.unit_amount,
                currency: spec.currency.to_ascii_lowercase(),
                interval: spec.interval,
                interval_count: spec.interval_count.max(1),
                nickname: spec.nickname,
                lookup_key: spec.lookup_key,
                metadata: spec.metadata,
            },
        );
        Ok(id)
    }

    // ----- customers -----

    pub fn create_customer(&mut self, now: i64, origin: &Origin, new: NewCustomer) -> String {
        let id = new_id("cus");
        let seq = self.next_seq();
        let customer = Customer {
            id: id.clone(),
            seq,
            created: now,
            email: new.email,
            name: new.name,
            description: new.description,
            phone: new.phone,
            metadata: new.metadata,
            invoice_prefix: random_hex(4).to_ascii_uppercase(),
            next_invoice_sequence: 1,
            default_payment_method: None,
        };
        let object = render::customer(&customer);
        self.customers.insert(id.clone(), customer);
        self.emit(now, origin, "customer.created", object, None);
        id
    }

    // ----- payments -----

    /// Turns a test payment method (`pm_card_visa`, `pm_card_chargeDeclined`, …) into a saved
    /// one, or finds a saved one.
    fn payment_method(&mut self, given: &str) -> Result<String, SimError> {
        if self.payment_methods.contains_key(given) {
            return Ok(given.to_owned());
        }
        let card = match given {
            "pm_card_chargeDeclined" | "pm_card_visa_chargeDeclined" => {
                Card::Declines("generic_decline")
            }
            "pm_card_chargeDeclinedInsufficientFunds" => Card::Declines("insufficient_funds"),
            "pm_card_chargeDeclinedExpiredCard" => Card::Declines("expired_card"),
            other if other.starts_with("pm_card_") => Card::Succeeds,
            other => {
                return Err(SimError::no_such("PaymentMethod", other, "payment_method"));
            }
        };
        let id = new_id("pm");
        self.payment_methods.insert(id.clone(), card);
        Ok(id)
    }

    /// Scripts a decline of the next charge (of this customer, or anyone's).
    pub fn decline_next(&mut self, customer: Option<String>) {
        self.declines.push(ScriptedDecline { customer });
    }

    fn take_scripted_decline(&mut self, customer: &str) -> bool {
        let position = self
            .declines
            .iter()
            .position(|d| d.customer.as_deref().is_none_or(|c| c == customer));
        position.map(|i| self.declines.remove(i)).is_some()
    }

    /// Charges `payment_method` for the payment intent: success pays its invoice (and activates
    /// its subscription); a decline records the error. Emits the events either way.
    fn charge(
        &mut self,
        now: i64,
        origin: &Origin,
        pi_id: &str,
        payment_method: &str,
    ) -> Result<(), SimError> {
        let card = self
            .payment_methods
            .get(payment_method)
            .copied()
            .unwrap_or(Card::Succeeds);
        let customer = self
            .payment_intents
            .get(pi_id)
            .map(|pi| pi.customer.clone())
            .unwrap_or_default();
        let declined = match card {
            Card::Declines(code) => Some(code),
            Card::Succeeds => self
                .take_scripted_decline(&customer)
                .then_some("generic_decline"),
        };
        let charge = new_id("ch");
        let Some(pi) = self.payment_intents.get_mut(pi_id) else {
            return Err(SimError::no_such("payment_intent", pi_id, "intent"));
        };
        pi.payment_method = Some(payment_method.to_owned());
        pi.latest_charge = Some(charge.clone());
        let invoice_id = pi.invoice.clone();
        if let Some(decline_code) = declined {
            let message = match decline_code {
                "insufficient_funds" => "Your card has insufficient funds.",
                "expired_card" => "Your card has expired.",
                _ => "Your card was declined.",
            }
            .to_owned();
            pi.status = PaymentIntentStatus::RequiresPaymentMethod;
            pi.last_error = Some(Decline {
                decline_code,
                message: message.clone(),
                charge: charge.clone(),
            });
            if let Some(invoice) = invoice_id.as_ref().and_then(|i| self.invoices.get_mut(i)) {
                invoice.attempt_count += 1;
                invoice.attempted = true;
            }
            self.emit_payment_intent(now, origin, "payment_intent.payment_failed", pi_id);
            if let Some(invoice) = &invoice_id {
                self.emit_invoice(now, origin, "invoice.payment_failed", invoice);
            }
            let rendered = self
                .payment_intents
                .get(pi_id)
                .map(|pi| render::payment_intent(self, pi, &render::Expand::none()))
                .unwrap_or(Value::Null);
            return Err(SimError::Declined {
                decline_code,
                message,
                charge,
                payment_intent: Box::new(rendered),
            });
        }
        pi.status = PaymentIntentStatus::Succeeded;
        pi.amount_received = pi.amount;
        pi.last_error = None;
        let amount = pi.amount;
        self.emit_payment_intent(now, origin, "payment_intent.succeeded", pi_id);
        if let Some(invoice_id) = invoice_id {
            self.mark_paid(now, origin, &invoice_id, amount, Some(payment_method));
        }
        Ok(())
    }

    /// An invoice is paid: its events, and its subscription becomes active.
    fn mark_paid(
        &mut self,
        now: i64,
        origin: &Origin,
        invoice_id: &str,
        amount: i64,
        payment_method: Option<&str>,
    ) {
        let Some(invoice) = self.invoices.get_mut(invoice_id) else {
            return;
        };
        invoice.status = InvoiceStatus::Paid;
        invoice.amount_paid = amount;
        invoice.paid_at = Some(now);
        if amount > 0 {
            invoice.attempt_count += 1;
            invoice.attempted = true;
        }
        let subscription = invoice.subscription.clone();
        self.emit_invoice(now, origin, "invoice.paid", invoice_id);
        self.emit_invoice(now, origin, "invoice.payment_succeeded", invoice_id);
        let Some(sub_id) = subscription else {
            return;
        };
        let Some(sub) = self.subscriptions.get_mut(&sub_id) else {
            return;
        };
        if sub.latest_invoice.as_deref() != Some(invoice_id) {
            return;
        }
        let previous_status = sub.status;
        let mut previous = serde_json::Map::new();
        if matches!(
            sub.status,
            SubscriptionStatus::Incomplete | SubscriptionStatus::PastDue
        ) {
            sub.status = SubscriptionStatus::Active;
            previous.insert("status".into(), previous_status.as_str().into());
        }
        if let Some(pm) = payment_method
            && sub.save_default_payment_method
            && sub.default_payment_method.is_none()
        {
            sub.default_payment_method = Some(pm.to_owned());
            previous.insert("default_payment_method".into(), Value::Null);
        }
        let customer = sub.customer.clone();
        if let Some(pm) = payment_method
            && let Some(c) = self.customers.get_mut(&customer)
            && c.default_payment_method.is_none()
        {
            c.default_payment_method = Some(pm.to_owned());
        }
        if !previous.is_empty() {
            self.emit_subscription(
                now,
                origin,
                "customer.subscription.updated",
                &sub_id,
                Some(Value::Object(previous)),
            );
        }
    }

    /// `POST /v1/payment_intents/{id}/confirm`.
    pub fn confirm(
        &mut self,
        now: i64,
        origin: &Origin,
        pi_id: &str,
        payment_method: Option<&str>,
    ) -> Result<(), SimError> {
        let pi = self.payment_intent(pi_id, "intent")?;
        match pi.status {
            PaymentIntentStatus::Succeeded => {
                return Err(SimError::State {
                    code: Some("payment_intent_unexpected_state"),
                    message: "You cannot confirm this PaymentIntent because it has already succeeded after being previously confirmed.".to_owned(),
                });
            }
            PaymentIntentStatus::Canceled => {
                return Err(SimError::State {
                    code: Some("payment_intent_unexpected_state"),
                    message: "You cannot confirm this PaymentIntent because it has a status of canceled. Only a PaymentIntent with one of the following statuses may be confirmed: requires_confirmation, requires_action, requires_payment_method.".to_owned(),
                });
            }
            PaymentIntentStatus::RequiresPaymentMethod => {}
        }
        let Some(given) = payment_method.map(str::to_owned) else {
            return Err(SimError::State {
                code: Some("payment_intent_unexpected_state"),
                message: "You cannot confirm this PaymentIntent because it's missing a payment method. To confirm the PaymentIntent with cus, pass a payment_method in the confirm call.".to_owned(),
            });
        };
        let pm = self.payment_method(&given)?;
        self.charge(now, origin, pi_id, &pm)
    }

    // ----- subscriptions -----

    fn invoice_number(&mut self, customer: &str) -> Option<String> {
        let c = self.customers.get_mut(customer)?;
        let number = format!("{}-{:04}", c.invoice_prefix, c.next_invoice_sequence);
        c.next_invoice_sequence += 1;
        Some(number)
    }

    /// The line billing one item for one period.
    fn period_line(&self, sub: &str, item: &Item, start: i64, end: i64) -> Result<Line, SimError> {
        let price = self.price(&item.price, "price")?;
        let quantity = item.quantity;
        let amount = price
            .unit_amount
            .saturating_mul(i64::try_from(quantity).unwrap_or(1));
        Ok(Line {
            id: new_id("il"),
            amount,
            description: format!(
                "{quantity} × {} (at {} / {})",
                self.product_name(&price.id),
                render::money(price.unit_amount, &price.currency),
                price.interval
            ),
            period_start: start,
            period_end: end,
            price: price.id.clone(),
            quantity,
            proration: false,
            subscription: Some(sub.to_owned()),
            subscription_item: Some(item.id.clone()),
            invoice_item: None,
        })
    }

    /// Builds, stores and finalizes an invoice of these lines; answers its id. Emits
    /// `invoice.created` (as a draft) and `invoice.finalized`.
    fn open_invoice(&mut self, now: i64, origin: &Origin, new: NewInvoice) -> String {
        let id = new_id("in");
        let seq = self.next_seq();
        let invoice = Invoice {
            id: id.clone(),
            seq,
            created: now,
            customer: new.customer.clone(),
            subscription: Some(new.subscription),
            status: InvoiceStatus::Draft,
            billing_reason: new.billing_reason,
            number: None,
            lines: new.lines,
            currency: new.currency,
            period_start: new.period_start,
            period_end: new.period_end,
            amount_paid: 0,
            attempt_count: 0,
            attempted: false,
            finalized_at: None,
            paid_at: None,
            voided_at: None,
            payment_intent: None,
            proration_date: None,
            preview: false,
        };
        self.invoices.insert(id.clone(), invoice);
        self.emit_invoice(now, origin, "invoice.created", &id);
        let number = self.invoice_number(&new.customer);
        if let Some(invoice) = self.invoices.get_mut(&id) {
            invoice.status = InvoiceStatus::Open;
            invoice.number = number;
            invoice.finalized_at = Some(now);
        }
        self.emit_invoice(now, origin, "invoice.finalized", &id);
        id
    }

    /// Creates the payment intent of an open invoice (none when nothing is due).
    fn invoice_payment_intent(
        &mut self,
        now: i64,
        origin: &Origin,
        invoice_id: &str,
    ) -> Option<String> {
        let invoice = self.invoices.get(invoice_id)?;
        let amount = invoice.amount_due();
        if amount == 0 {
            return None;
        }
        let (currency, customer) = (invoice.currency.clone(), invoice.customer.clone());
        let id = new_id("pi");
        let pi = PaymentIntent {
            id: id.clone(),
            created: now,
            amount,
            amount_received: 0,
            currency,
            customer,
            invoice: Some(invoice_id.to_owned()),
            status: PaymentIntentStatus::RequiresPaymentMethod,
            client_secret: format!("{id}_secret_{}", random_hex(12)),
            payment_method: None,
            last_error: None,
            latest_charge: None,
            canceled_at: None,
        };
        self.payment_intents.insert(id.clone(), pi);
        if let Some(invoice) = self.invoices.get_mut(invoice_id) {
            invoice.payment_intent = Some(id.clone());
        }
        self.emit_payment_intent(now, origin, "payment_intent.created", &id);
        Some(id)
    }

    /// Charges an open invoice with the subscription's (or customer's) default payment method,
    /// as Stripe's automatic collection does. Answers whether it is paid.
    fn collect(&mut self, now: i64, origin: &Origin, invoice_id: &str) -> bool {
        let Some(invoice) = self.invoices.get(invoice_id) else {
            return false;
        };
        if invoice.amount_due() == 0 {
            self.mark_paid(now, origin, invoice_id, 0, None);
            return true;
        }
        let customer = invoice.customer.clone();
        let pm = invoice
            .subscription
            .as_ref()
            .and_then(|s| self.subscriptions.get(s))
            .and_then(|s| s.default_payment_method.clone())
            .or_else(|| {
                self.customers
                    .get(&customer)
                    .and_then(|c| c.default_payment_method.clone())
            });
        let Some(pi) = self.invoice_payment_intent(now, origin, invoice_id) else {
            return false;
        };
        match pm {
            Some(pm) => self.charge(now, origin, &pi, &pm).is_ok(),
            None => {
                if let Some(invoice) = self.invoices.get_mut(invoice_id) {
                    invoice.attempt_count += 1;
                    invoice.attempted = true;
                }
                self.emit_invoice(now, origin, "invoice.payment_failed", invoice_id);
                false
            }
        }
    }

    /// `POST /v1/subscriptions`.
    pub fn create_subscription(
        &mut self,
        now: i64,
        origin: &Origin,
        new: NewSubscription,
    ) -> Result<String, SimError> {
        self.customer(&new.customer, "customer")?;
        if new.items.is_empty() {
            return Err(SimError::Missing("items".to_owned()));
        }
        let mut currency = None;
        for (i, (price, _)) in new.items.iter().enumerate() {
            let price = self.price(price, &format!("items[{i}][price]"))?;
            if currency.as_ref().is_some_and(|c| *c != price.currency) {
                return Err(SimError::Invalid {
                    param: format!("items[{i}][price]"),
                    code: None,
                    message: "All prices on a subscription must have the same `currency`."
                        .to_owned(),
                });
            }
            currency = Some(price.currency.clone());
        }
        let has_payment_method = self
            .customers
            .get(&new.customer)
            .is_some_and(|c| c.default_payment_method.is_some());
        if new.payment_behavior == PaymentBehavior::ErrorIfIncomplete && !has_payment_method {
            return Err(SimError::Invalid {
                param: "customer".to_owned(),
                code: Some("resource_missing"),
                message: "This customer has no attached payment source or default payment method. Please consider adding a default payment method."
                    .to_owned(),
            });
        }
        let id = new_id("sub");
        let seq = self.next_seq();
        let end = add_months(now, 1);
        let items: Vec<Item> = new
            .items
            .into_iter()
            .map(|(price, quantity)| Item {
                id: new_id("si"),
                created: now,
                price,
                quantity,
                metadata: BTreeMap::new(),
            })
            .collect();
        let mut lines = Vec::new();
        for item in &items {
            lines.push(self.period_line(&id, item, now, end)?);
        }
        let currency = currency.unwrap_or_else(|| "eur".to_owned());
        self.subscriptions.insert(
            id.clone(),
            Subscription {
                id: id.clone(),
                seq,
                created: now,
                customer: new.customer.clone(),
                items,
                status: SubscriptionStatus::Incomplete,
                anchor: now,
                periods: 1,
                period_start: now,
                period_end: end,
                cancel_at_period_end: false,
                cancel_at: None,
                canceled_at: None,
                ended_at: None,
                latest_invoice: None,
                metadata: new.metadata,
                currency: currency.clone(),
                default_payment_method: None,
                save_default_payment_method: new.save_default_payment_method,
                pending: Vec::new(),
            },
        );
        let invoice = self.open_invoice(
            now,
            origin,
            NewInvoice {
                customer: new.customer,
                subscription: id.clone(),
                billing_reason: "subscription_create",
                lines,
                currency,
                period_start: now,
                period_end: now,
            },
        );
        if let Some(sub) = self.subscriptions.get_mut(&id) {
            sub.latest_invoice = Some(invoice.clone());
        }
        self.emit_subscription(now, origin, "customer.subscription.created", &id, None);
        let due = self
            .invoices
            .get(&invoice)
            .is_some_and(|i| i.amount_due() > 0);
        if !due {
            self.mark_paid(now, origin, &invoice, 0, None);
        } else if new.payment_behavior == PaymentBehavior::DefaultIncomplete || !has_payment_method
        {
            self.invoice_payment_intent(now, origin, &invoice);
        } else {
            let paid = self.collect(now, origin, &invoice);
            if !paid && new.payment_behavior == PaymentBehavior::ErrorIfIncomplete {
                self.cancel(now, origin, &id)?;
                return Err(SimError::Declined {
                    decline_code: "generic_decline",
                    message: "Your card was declined.".to_owned(),
                    charge: new_id("ch"),
                    payment_intent: Box::new(Value::Null),
                });
            }
        }
        Ok(id)
    }

    /// Proration lines for moving `item` from its price to `new_price` at `at`.
    fn proration_lines(
        &self,
        sub: &Subscription,
        item: &Item,
        new_price: &str,
        new_quantity: u64,
        at: i64,
    ) -> Result<Vec<Line>, SimError> {
        let old = self.price(&item.price, "price")?;
        let new = self.price(new_price, "price")?;
        let whole = sub.period_end - sub.period_start;
        let at = at.clamp(sub.period_start, sub.period_end);
        let part = sub.period_end - at;
        let old_amount = old
            .unit_amount
            .saturating_mul(i64::try_from(item.quantity).unwrap_or(1));
        let new_amount = new
            .unit_amount
            .saturating_mul(i64::try_from(new_quantity).unwrap_or(1));
        let date = render::date(at);
        let line = |amount: i64, description: String, price: &str, quantity: u64| Line {
            id: new_id("il"),
            amount,
            description,
            period_start: at,
            period_end: sub.period_end,
            price: price.to_owned(),
            quantity,
            proration: true,
            subscription: Some(sub.id.clone()),
            subscription_item: Some(item.id.clone()),
            invoice_item: Some(new_id("ii")),
        };
        Ok(vec![
            line(
                -prorate(old_amount, part, whole),
                format!("Unused time on {} after {date}", self.product_name(&old.id)),
                &old.id,
                item.quantity,
            ),
            line(
                prorate(new_amount, part, whole),
                format!(
                    "Remaining time on {} after {date}",
                    self.product_name(&new.id)
                ),
                &new.id,
                new_quantity,
            ),
        ])
    }

    /// The items after `changes`, and the proration lines they cause at `at`.
    fn apply_changes(
        &self,
        sub: &Subscription,
        changes: &[ItemChange],
        at: i64,
        param_prefix: &str,
    ) -> Result<(Vec<Item>, Vec<Line>), SimError> {
        let mut items = sub.items.clone();
        let mut lines = Vec::new();
        for (i, change) in changes.iter().enumerate() {
            if let Some(price) = &change.price {
                self.price(price, &format!("{param_prefix}[{i}][price]"))?;
            }
            match &change.id {
                Some(id) => {
                    let Some(item) = items.iter_mut().find(|it| it.id == *id) else {
                        return Err(SimError::Invalid {
                            param: format!("{param_prefix}[{i}][id]"),
                            code: Some("resource_missing"),
                            message: format!(
                                "Subscription item {id} does not belong to subscription {}.",
                                sub.id
                            ),
                        });
                    };
                    let price = change.price.clone().unwrap_or_else(|| item.price.clone());
                    let quantity = change.quantity.unwrap_or(item.quantity);
                    if price != item.price || quantity != item.quantity {
                        lines.extend(self.proration_lines(sub, item, &price, quantity, at)?);
                        item.price = price;
                        item.quantity = quantity;
                    }
                }
                None => {
                    let Some(price) = change.price.clone() else {
                        return Err(SimError::Missing(format!("{param_prefix}[{i}][price]")));
                    };
                    items.push(Item {
                        id: new_id("si"),
                        created: at,
                        price,
                        quantity: change.quantity.unwrap_or(1),
                        metadata: BTreeMap::new(),
                    });
                }
            }
        }
        Ok((items, lines))
    }

    /// `POST /v1/subscriptions/{id}`.
    pub fn update_subscription(
        &mut self,
        now: i64,
        origin: &Origin,
        id: &str,
        update: SubscriptionUpdate,
    ) -> Result<(), SimError> {
        let sub = self.subscription(id, "id")?.clone();
        let changes_items = !update.items.is_empty();
        if matches!(
            sub.status,
            SubscriptionStatus::Canceled | SubscriptionStatus::IncompleteExpired
        ) && (changes_items || update.cancel_at_period_end.is_some())
        {
            return Err(SimError::state(
                "A canceled subscription can only update its cancellation_details and metadata.",
            ));
        }
        if sub.status == SubscriptionStatus::Incomplete && changes_items {
            return Err(SimError::state(
                "You cannot update a subscription in `incomplete` status in a way that results in a new invoice or invoice items. Only metadata and default_source can be updated until the first invoice is paid.",
            ));
        }
        let at = update.proration_date.unwrap_or(now);
        let (items, lines) = self.apply_changes(&sub, &update.items, at, "items")?;
        let mut previous = serde_json::Map::new();
        let old_rendered = render::subscription(self, &sub, &render::Expand::none());
        let mut invoice_now = None;
        {
            let Some(stored) = self.subscriptions.get_mut(id) else {
                return Err(SimError::no_such("subscription", id, "id"));
            };
            if let Some(flag) = update.cancel_at_period_end
                && flag != stored.cancel_at_period_end
            {
                previous.insert(
                    "cancel_at_period_end".into(),
                    stored.cancel_at_period_end.into(),
                );
                previous.insert("cancel_at".into(), stored.cancel_at.into());
                previous.insert("canceled_at".into(), stored.canceled_at.into());
                stored.cancel_at_period_end = flag;
                stored.cancel_at = flag.then_some(stored.period_end);
                stored.canceled_at = flag.then_some(now);
            }
            if !update.metadata.is_empty() {
                previous.insert(
                    "metadata".into(),
                    serde_json::to_value(&stored.metadata).unwrap_or(Value::Null),
                );
                for (k, v) in update.metadata {
                    if v.is_empty() {
                        stored.metadata.remove(&k);
                    } else {
                        stored.metadata.insert(k, v);
                    }
                }
            }
            let items_changed = items
                .iter()
                .map(|i| (&i.price, i.quantity))
                .ne(stored.items.iter().map(|i| (&i.price, i.quantity)));
            if items_changed {
                for key in ["items", "plan"] {
                    if let Some(v) = old_rendered.get(key) {
                        previous.insert(key.into(), v.clone());
                    }
                }
                stored.items = items;
                match update.proration_behavior {
                    ProrationBehavior::CreateProrations => stored.pending.extend(lines),
                    ProrationBehavior::AlwaysInvoice => {
                        let mut all = std::mem::take(&mut stored.pending);
                        all.extend(lines);
                        invoice_now = Some(all);
                    }
                    ProrationBehavior::None => {}
                }
            }
        }
        if let Some(lines) = invoice_now {
            let invoice = self.open_invoice(
                now,
                origin,
                NewInvoice {
                    customer: sub.customer.clone(),
                    subscription: id.to_owned(),
                    billing_reason: "subscription_update",
                    lines,
                    currency: sub.currency.clone(),
                    period_start: now,
                    period_end: now,
                },
            );
            if let Some(stored) = self.subscriptions.get_mut(id) {
                previous.insert(
                    "latest_invoice".into(),
                    stored.latest_invoice.clone().into(),
                );
                stored.latest_invoice = Some(invoice.clone());
            }
            if !self.collect(now, origin, &invoice) {
                self.past_due(now, origin, id);
            }
        }
        if !previous.is_empty() {
            self.emit_subscription(
                now,
                origin,
                "customer.subscription.updated",
                id,
                Some(Value::Object(previous)),
            );
        }
        Ok(())
    }

    fn past_due(&mut self, now: i64, origin: &Origin, id: &str) {
        let Some(sub) = self.subscriptions.get_mut(id) else {
            return;
        };
        if sub.status == SubscriptionStatus::Active {
            sub.status = SubscriptionStatus::PastDue;
            self.emit_subscription(
                now,
                origin,
                "customer.subscription.updated",
                id,
                Some(serde_json::json!({"status": "active"})),
            );
        }
    }

    /// `DELETE /v1/subscriptions/{id}`: ends it now (an incomplete one's open invoice is voided).
    pub fn cancel(&mut self, now: i64, origin: &Origin, id: &str) -> Result<(), SimError> {
        let sub = self.subscription(id, "id")?;
        if sub.status == SubscriptionStatus::Canceled {
            return Err(SimError::NoSuch {
                kind: "subscription",
                id: id.to_owned(),
                param: "id".to_owned(),
            });
        }
        let void = matches!(
            sub.status,
            SubscriptionStatus::Incomplete | SubscriptionStatus::IncompleteExpired
        )
        .then(|| sub.latest_invoice.clone())
        .flatten();
        if let Some(sub) = self.subscriptions.get_mut(id) {
            sub.status = SubscriptionStatus::Canceled;
            sub.canceled_at = Some(now);
            sub.ended_at = Some(now);
            sub.cancel_at = None;
            sub.cancel_at_period_end = false;
            sub.pending.clear();
        }
        if let Some(invoice_id) = void {
            self.void_invoice(now, origin, &invoice_id);
        }
        self.emit_subscription(now, origin, "customer.subscription.deleted", id, None);
        Ok(())
    }

    fn void_invoice(&mut self, now: i64, origin: &Origin, invoice_id: &str) {
        let Some(invoice) = self.invoices.get_mut(invoice_id) else {
            return;
        };
        if invoice.status != InvoiceStatus::Open {
            return;
        }
        invoice.status = InvoiceStatus::Void;
        invoice.voided_at = Some(now);
        let pi = invoice.payment_intent.clone();
        if let Some(pi) = pi.as_ref().and_then(|p| self.payment_intents.get_mut(p)) {
            pi.status = PaymentIntentStatus::Canceled;
            pi.canceled_at = Some(now);
        }
        self.emit_invoice(now, origin, "invoice.voided", invoice_id);
        if let Some(pi) = pi {
            self.emit_payment_intent(now, origin, "payment_intent.canceled", &pi);
        }
    }

    /// Stripe's 23-hour timer on an unpaid first invoice, run now.
    pub fn expire_incomplete(
        &mut self,
        now: i64,
        origin: &Origin,
        id: &str,
    ) -> Result<(), SimError> {
        let sub = self.subscription(id, "id")?;
        if sub.status != SubscriptionStatus::Incomplete {
            return Err(SimError::state(format!(
                "The subscription is {}, not incomplete.",
                sub.status.as_str()
            )));
        }
        let invoice = sub.latest_invoice.clone();
        if let Some(sub) = self.subscriptions.get_mut(id) {
            sub.status = SubscriptionStatus::IncompleteExpired;
            sub.ended_at = Some(now);
        }
        if let Some(invoice) = invoice {
            self.void_invoice(now, origin, &invoice);
        }
        self.emit_subscription(
            now,
            origin,
            "customer.subscription.updated",
            id,
            Some(serde_json::json!({"status": "incomplete"})),
        );
        Ok(())
    }

    /// Starts the next period: a new invoice (pending prorations + the period), charged at once.
    /// A subscription set to cancel at the period end ends instead.
    pub fn renew(&mut self, now: i64, origin: &Origin, id: &str) -> Result<Renewal, SimError> {
        let sub = self.subscription(id, "id")?.clone();
        if !matches!(
            sub.status,
            SubscriptionStatus::Active | SubscriptionStatus::PastDue
        ) {
            return Err(SimError::state(format!(
                "Only an active or past_due subscription renews; {} is {}.",
                sub.id,
                sub.status.as_str()
            )));
        }
        if sub.cancel_at_period_end {
            if let Some(stored) = self.subscriptions.get_mut(id) {
                stored.status = SubscriptionStatus::Canceled;
                stored.ended_at = Some(sub.period_end);
                stored.pending.clear();
            }
            self.emit_subscription(now, origin, "customer.subscription.deleted", id, None);
            return Ok(Renewal::Ended);
        }
        let start = sub.period_end;
        let end = add_months(sub.anchor, sub.periods + 1);
        let mut lines = sub.pending.clone();
        for item in &sub.items {
            lines.push(self.period_line(id, item, start, end)?);
        }
        let old_rendered = render::subscription(self, &sub, &render::Expand::none());
        if let Some(stored) = self.subscriptions.get_mut(id) {
            stored.periods += 1;
            stored.period_start = start;
            stored.period_end = end;
            stored.pending.clear();
        }
        let invoice = self.open_invoice(
            now,
            origin,
            NewInvoice {
                customer: sub.customer.clone(),
                subscription: id.to_owned(),
                billing_reason: "subscription_cycle",
                lines,
                currency: sub.currency.clone(),
                period_start: sub.period_start,
                period_end: sub.period_end,
            },
        );
        if let Some(stored) = self.subscriptions.get_mut(id) {
            stored.latest_invoice = Some(invoice.clone());
        }
        let mut previous = serde_json::Map::new();
        for key in ["items", "latest_invoice"] {
            if let Some(v) = old_rendered.get(key) {
                previous.insert(key.into(), v.clone());
            }
        }
        self.emit_subscription(
            now,
            origin,
            "customer.subscription.updated",
            id,
            Some(Value::Object(previous)),
        );
        let paid = self.collect(now, origin, &invoice);
        if !paid {
            self.past_due(now, origin, id);
        }
        Ok(Renewal::Renewed { invoice, paid })
    }

    /// `POST /v1/invoices/create_preview`: the next invoice, with `changes` applied at `at`.
    pub fn preview(&self, now: i64, request: PreviewRequest) -> Result<Invoice, SimError> {
        let sub = match (&request.subscription, &request.customer) {
            (Some(id), _) => self.subscription(id, "subscription")?,
            (None, Some(customer)) => {
                self.customer(customer, "customer")?;
                self.subscriptions
                    .values()
                    .filter(|s| s.customer == *customer && s.status != SubscriptionStatus::Canceled)
                    .max_by_key(|s| s.seq)
                    .ok_or_else(|| SimError::State {
                        code: Some("invoice_upcoming_none"),
                        message: format!("No upcoming invoices for customer: {customer}"),
                    })?
            }
            (None, None) => return Err(SimError::Missing("customer".to_owned())),
        };
        if let Some(customer) = &request.customer
            && *customer != sub.customer
        {
            return Err(SimError::Invalid {
                param: "subscription".to_owned(),
                code: None,
                message: format!(
                    "The subscription {} does not belong to customer {customer}.",
                    sub.id
                ),
            });
        }
        if sub.status == SubscriptionStatus::Canceled {
            return Err(SimError::State {
                code: Some("invoice_upcoming_none"),
                message: format!("No upcoming invoices for customer: {}", sub.customer),
            });
        }
        let at = request.proration_date.unwrap_or(now);
        let (items, prorations) =
            self.apply_changes(sub, &request.items, at, "subscription_details[items]")?;
        let mut lines = sub.pending.clone();
        let (period_start, period_end);
        match request.proration_behavior {
            ProrationBehavior::AlwaysInvoice => {
                lines.extend(prorations);
                period_start = at;
                period_end = at;
            }
            behavior => {
                if behavior == ProrationBehavior::CreateProrations {
                    lines.extend(prorations);
                }
                let end = add_months(sub.anchor, sub.periods + 1);
                for item in &items {
                    lines.push(self.period_line(&sub.id, item, sub.period_end, end)?);
                }
                period_start = sub.period_start;
                period_end = sub.period_end;
            }
        }
        Ok(Invoice {
            id: format!("upcoming_in_{}", random_hex(12)),
            seq: 0,
            created: now,
            customer: sub.customer.clone(),
            subscription: Some(sub.id.clone()),
            status: InvoiceStatus::Draft,
            billing_reason: if request.proration_behavior == ProrationBehavior::AlwaysInvoice {
                "subscription_update"
            } else {
                "upcoming"
            },
            number: None,
            lines,
            currency: sub.currency.clone(),
            period_start,
            period_end,
            amount_paid: 0,
            attempt_count: 0,
            attempted: false,
            finalized_at: None,
            paid_at: None,
            voided_at: None,
            payment_intent: None,
            proration_date: request
                .items
                .iter()
                .any(|c| c.price.is_some() || c.quantity.is_some())
                .then_some(at),
            preview: true,
        })
    }
}

/// Where a new price's product comes from.
#[derive(Debug, Clone)]
pub enum ProductRef {
    /// `product=prod_…`.
    Existing(String),
    /// `product_data[name]=…`.
    New(String),
}

/// A new price.
#[derive(Debug, Clone)]
pub struct PriceSpec {
    /// A chosen id (seeded prices); `None`: `price_…`.
    pub id: Option<String>,
    /// Minor units.
    pub unit_amount: i64,
    /// Lower-case ISO code.
    pub currency: String,
    /// `month`, `year`, …
    pub interval: String,
    /// Intervals per period.
    pub interval_count: u32,
    /// The product.
    pub product: ProductRef,
    /// Optional nickname.
    pub nickname: Option<String>,
    /// Optional lookup key.
    pub lookup_key: Option<String>,
    /// Metadata.
    pub metadata: BTreeMap<String, String>,
}

/// A new customer.
#[derive(Debug, Clone, Default)]
pub struct NewCustomer {
    /// Email.
    pub email: Option<String>,
    /// Name.
    pub name: Option<String>,
    /// Description.
    pub description: Option<String>,
    /// Phone.
    pub phone: Option<String>,
    /// Metadata.
    pub metadata: BTreeMap<String, String>,
}

/// A new subscription.
#[derive(Debug, Clone)]
pub struct NewSubscription {
    /// `cus_…`.
    pub customer: String,
    /// Prices and quantities.
    pub items: Vec<(String, u64)>,
    /// Metadata.
    pub metadata: BTreeMap<String, String>,
    /// How the first invoice is paid.
    pub payment_behavior: PaymentBehavior,
    /// `payment_settings[save_default_payment_method]=on_subscription`.
    pub save_default_payment_method: bool,
}

/// A subscription update.
#[derive(Debug, Clone)]
pub struct SubscriptionUpdate {
    /// `cancel_at_period_end`.
    pub cancel_at_period_end: Option<bool>,
    /// `items[i][…]`.
    pub items: Vec<ItemChange>,
    /// `proration_behavior`.
    pub proration_behavior: ProrationBehavior,
    /// `proration_date`.
    pub proration_date: Option<i64>,
    /// `metadata[k]=v` (an empty value removes the key).
    pub metadata: BTreeMap<String, String>,
}

/// A preview request.
#[derive(Debug, Clone)]
pub struct PreviewRequest {
    /// `customer`.
    pub customer: Option<String>,
    /// `subscription`.
    pub subscription: Option<String>,
    /// `subscription_details[items]`.
    pub items: Vec<ItemChange>,
    /// `subscription_details[proration_behavior]`.
    pub proration_behavior: ProrationBehavior,
    /// `subscription_details[proration_date]`.
    pub proration_date: Option<i64>,
}

/// A new invoice of a subscription.
struct NewInvoice {
    customer: String,
    subscription: String,
    billing_reason: &'static str,
    lines: Vec<Line>,
    currency: String,
    period_start: i64,
    period_end: i64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proration_rounds_half_away_from_zero() {
        assert_eq!(prorate(6000, 1, 2), 3000);
        assert_eq!(prorate(2800, 1, 3), 933);
        assert_eq!(prorate(-2800, 1, 3), -933);
        assert_eq!(prorate(5, 1, 2), 3);
        assert_eq!(prorate(-5, 1, 2), -3);
        assert_eq!(prorate(100, 0, 0), 0);
    }

    #[test]
    fn months_are_calendar_months_clamped_to_the_month_end() {
        let jan31 = Utc
            .with_ymd_and_hms(2026, 1, 31, 12, 0, 0)
            .single()
            .map(|d| d.timestamp())
            .unwrap_or_default();
        let feb28 = Utc
            .with_ymd_and_hms(2026, 2, 28, 12, 0, 0)
            .single()
            .map(|d| d.timestamp())
            .unwrap_or_default();
        let mar31 = Utc
            .with_ymd_and_hms(2026, 3, 31, 12, 0, 0)
            .single()
            .map(|d| d.timestamp())
            .unwrap_or_default();
        assert_eq!(add_months(jan31, 1), feb28);
        assert_eq!(add_months(jan31, 2), mar31);
    }
}
