//! What a verified delivery says: its event id and type and, for the invoice events that come
//! in bursts, only the invoice fields Nest uses (the event read once, by serde, skipping the
//! rest). Subscription events are read whole by async-stripe; the types Nest does not act on
//! are not read further, so an object async-stripe cannot read (a newer API version, a type
//! it does not know) is still answered 200 and recorded, not retried by Stripe for days.
//!
//! Why not async-stripe for invoices too: it reads the payload into a JSON tree, then the tree
//! into the full `Invoice` (a few hundred fields): 19 µs per 3.5 KB event against 6.5 µs here,
//! signature included, spent in a burst on the cores that also write the batches
//! (`cargo bench -p server --bench webhooks` prints both). The Stripe simulator's tests check
//! that both readings agree on every event they receive.

use app::models::PaymentOutcome;
use serde::Deserialize;

use super::invoices::InvoiceEvent;

/// An invoice as Stripe's `invoice.*` events carry it: the fields Nest reads.
#[derive(Debug, Clone, Deserialize)]
pub struct StripeInvoice {
    /// `in_…` (Stripe omits it only on previews).
    #[serde(default)]
    pub id: Option<String>,
    /// The customer's id (an id, or the customer object when expanded).
    #[serde(default, deserialize_with = "expandable_id")]
    pub customer: Option<String>,
    /// `subscription_create` on a subscription's first invoice.
    #[serde(default)]
    pub billing_reason: Option<String>,
    /// Its lines; the first one's period is the service period.
    pub lines: Lines,
    /// Stripe's period (of the invoice, not of the service: see `invoice_facts`).
    pub period_start: i64,
    /// End of Stripe's period.
    pub period_end: i64,
    /// Cents paid.
    pub amount_paid: i64,
    /// Cents due.
    pub amount_due: i64,
    /// Lower-case ISO code, as Stripe writes it.
    pub currency: String,
}

impl StripeInvoice {
    /// A subscription's first invoice.
    pub fn is_subscription_create(&self) -> bool {
        self.billing_reason.as_deref() == Some("subscription_create")
    }
}

/// An invoice's line items (the first page, as the event carries them).
#[derive(Debug, Clone, Deserialize)]
pub struct Lines {
    /// The lines.
    pub data: Vec<Line>,
}

/// One invoice line.
#[derive(Debug, Clone, Deserialize)]
pub struct Line {
    /// The service period it bills.
    pub period: Period,
}

/// A period in unix seconds.
#[derive(Debug, Clone, Copy, Deserialize)]
pub struct Period {
    /// Start.
    pub start: i64,
    /// End.
    pub end: i64,
}

/// Stripe's expandable field: an id, or the object (with its id).
fn expandable_id<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Expandable {
        Id(String),
        Object { id: String },
    }
    Ok(Option::<Expandable>::deserialize(d)?.map(|e| match e {
        Expandable::Id(id) | Expandable::Object { id } => id,
    }))
}

/// What a delivery is.
pub enum Delivery {
    /// `invoice.paid` or `invoice.payment_failed`.
    Invoice(Box<InvoiceEvent>),
    /// `customer.subscription.updated` or `customer.subscription.deleted`: read by async-stripe.
    Subscription,
    /// A type Nest does not act on.
    Ignored {
        /// Stripe's event id.
        id: String,
        /// Its type.
        kind: String,
    },
}

#[derive(Deserialize)]
struct Head {
    id: String,
    #[serde(rename = "type")]
    kind: String,
}

#[derive(Deserialize)]
struct Body<T> {
    data: Data<T>,
}

#[derive(Deserialize)]
struct Data<T> {
    object: T,
}

/// Reads a (verified) payload; the error says what is wrong with it.
pub fn read(payload: &str) -> Result<Delivery, String> {
    let head: Head =
        serde_json::from_str(payload).map_err(|e| format!("the event could not be read: {e}"))?;
    let outcome = match head.kind.as_str() {
        "invoice.paid" => PaymentOutcome::Paid,
        "invoice.payment_failed" => PaymentOutcome::Failed,
        "customer.subscription.updated" | "customer.subscription.deleted" => {
            return Ok(Delivery::Subscription);
        }
        _ => {
            return Ok(Delivery::Ignored {
                id: head.id,
                kind: head.kind,
            });
        }
    };
    let body: Body<StripeInvoice> = serde_json::from_str(payload)
        .map_err(|e| format!("the event's invoice could not be read: {e}"))?;
    Ok(Delivery::Invoice(Box::new(InvoiceEvent {
        id: head.id,
        event_type: head.kind,
        invoice: body.data.object,
        outcome,
    })))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn invoice_event(customer: &str) -> String {
        format!(
            r#"{{"id":"evt_1","object":"event","type":"invoice.paid","api_version":"2025-01-01",
            "data":{{"object":{{"id":"in_1","object":"invoice","customer":{customer},
            "billing_reason":"subscription_create","amount_paid":1900,"amount_due":1900,
            "currency":"eur","period_start":10,"period_end":10,"status":"paid",
            "lines":{{"object":"list","has_more":false,"data":[{{"id":"il_1",
            "period":{{"start":10,"end":20}},"amount":1900}}]}}}}}}}}"#
        )
    }

    #[test]
    fn an_invoice_event_reads_the_fields_nest_uses_and_skips_the_rest() {
        let Ok(Delivery::Invoice(event)) = read(&invoice_event(r#""cus_1""#)) else {
            panic!("not read as an invoice event");
        };
        assert_eq!(event.id, "evt_1");
        assert_eq!(event.outcome, PaymentOutcome::Paid);
        let invoice = event.invoice;
        assert_eq!(invoice.id.as_deref(), Some("in_1"));
        assert_eq!(invoice.customer.as_deref(), Some("cus_1"));
        assert!(invoice.is_subscription_create());
        assert_eq!(
            (invoice.amount_paid, invoice.currency.as_str()),
            (1900, "eur")
        );
        assert_eq!(invoice.lines.data[0].period.end, 20);
    }

    #[test]
    fn an_expanded_customer_gives_its_id() {
        let Ok(Delivery::Invoice(event)) =
            read(&invoice_event(r#"{"id":"cus_2","object":"customer"}"#))
        else {
            panic!("not read as an invoice event");
        };
        assert_eq!(event.invoice.customer.as_deref(), Some("cus_2"));
    }

    #[test]
    fn subscription_events_are_left_to_async_stripe_and_other_types_are_not_read_further() {
        let payload =
            r#"{"id":"evt_2","type":"customer.subscription.updated","data":{"object":{}}}"#;
        assert!(matches!(read(payload), Ok(Delivery::Subscription)));
        let payload = r#"{"id":"evt_4","type":"charge.refunded","data":{"object":{"id":"ch_1"}}}"#;
        let Ok(Delivery::Ignored { id, kind }) = read(payload) else {
            panic!("not ignored");
        };
        assert_eq!((id.as_str(), kind.as_str()), ("evt_4", "charge.refunded"));
    }

    #[test]
    fn an_invoice_event_without_its_amounts_is_refused_with_the_field_named() {
        let payload = r#"{"id":"evt_3","type":"invoice.paid","data":{"object":{"id":"in_3"}}}"#;
        let Err(why) = read(payload) else {
            panic!("read an invoice without amounts");
        };
        assert!(why.contains("missing field"), "{why}");
    }
}
