//! Stripe's JSON objects built from the simulator's state: complete objects (every field
//! Stripe always sends, `null` when empty), references as ids unless `expand[]` asks for the
//! object, and includable fields (`invoice.confirmation_secret`, `invoice.payments`) only when
//! expanded, as Stripe does.

use chrono::{TimeZone, Utc};
use serde_json::{Value, json};

use super::model::SimError;
use super::model::{
    Customer, Inner, Invoice, InvoiceStatus, Line, PaymentIntent, Price, Product, StoredEvent,
    Subscription,
};

/// What a response expands, relative to the object being rendered.
#[derive(Debug, Clone, Default)]
pub struct Expand {
    paths: Vec<String>,
}

/// The kinds of objects whose fields can be expanded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A customer.
    Customer,
    /// A price.
    Price,
    /// A product.
    Product,
    /// A subscription.
    Subscription,
    /// An invoice.
    Invoice,
    /// A payment intent.
    PaymentIntent,
    /// An invoice payment.
    InvoicePayment,
    /// A list of invoice payments.
    InvoicePayments,
    /// An event.
    Event,
    /// Something that expands no further (`confirmation_secret`).
    Leaf,
}

fn fields(kind: Kind) -> &'static [(&'static str, Kind)] {
    match kind {
        Kind::Subscription => &[
            ("customer", Kind::Customer),
            ("latest_invoice", Kind::Invoice),
        ],
        Kind::Invoice => &[
            ("customer", Kind::Customer),
            ("confirmation_secret", Kind::Leaf),
            ("payments", Kind::InvoicePayments),
        ],
        Kind::PaymentIntent => &[("customer", Kind::Customer)],
        Kind::InvoicePayment => &[
            ("payment.payment_intent", Kind::PaymentIntent),
            ("invoice", Kind::Invoice),
        ],
        Kind::InvoicePayments => &[("data", Kind::InvoicePayment)],
        Kind::Price => &[("product", Kind::Product)],
        Kind::Customer | Kind::Product | Kind::Event | Kind::Leaf => &[],
    }
}

fn valid(kind: Kind, path: &str) -> bool {
    fields(kind).iter().any(|(name, child)| {
        path == *name
            || path
                .strip_prefix(name)
                .and_then(|rest| rest.strip_prefix('.'))
                .is_some_and(|rest| valid(*child, rest))
    })
}

impl Expand {
    /// Expands nothing.
    pub fn none() -> Self {
        Self::default()
    }

    /// Checks `expand[]` against what `kind` can expand (`list`: paths start with `data.`).
    pub fn parse(kind: Kind, paths: Vec<String>, list: bool) -> Result<Self, SimError> {
        let mut relative = Vec::with_capacity(paths.len());
        for path in paths {
            let inner = if list {
                path.strip_prefix("data.").map(str::to_owned)
            } else {
                Some(path.clone())
            };
            match inner {
                Some(inner) if valid(kind, &inner) => relative.push(inner),
                _ => {
                    return Err(SimError::Invalid {
                        param: "expand".to_owned(),
                        code: None,
                        message: format!("This property cannot be expanded ({path})."),
                    });
                }
            }
        }
        Ok(Self { paths: relative })
    }

    /// Whether `field` is expanded.
    pub fn has(&self, field: &str) -> bool {
        self.paths.iter().any(|p| {
            p == field
                || p.strip_prefix(field)
                    .is_some_and(|rest| rest.starts_with('.'))
        })
    }

    /// The expansions below `field`.
    pub fn child(&self, field: &str) -> Self {
        Self {
            paths: self
                .paths
                .iter()
                .filter_map(|p| p.strip_prefix(field)?.strip_prefix('.').map(str::to_owned))
                .collect(),
        }
    }
}

/// `€28.00`, `$5.00`, `CHF 12.50`.
pub fn money(minor: i64, currency: &str) -> String {
    let symbol = match currency {
        "eur" => "€".to_owned(),
        "usd" => "$".to_owned(),
        "gbp" => "£".to_owned(),
        other => format!("{} ", other.to_ascii_uppercase()),
    };
    let sign = if minor < 0 { "-" } else { "" };
    let abs = minor.unsigned_abs();
    format!("{sign}{symbol}{}.{:02}", abs / 100, abs % 100)
}

/// `15 Jan 2026`, as Stripe writes dates in proration descriptions.
pub fn date(t: i64) -> String {
    Utc.timestamp_opt(t, 0)
        .single()
        .map_or_else(|| t.to_string(), |d| d.format("%-d %b %Y").to_string())
}

/// The fields of `b` added to the object `a` (objects too large for one `json!`).
fn merge(mut a: Value, b: Value) -> Value {
    if let (Some(a), Value::Object(b)) = (a.as_object_mut(), b) {
        a.extend(b);
    }
    a
}

/// A Stripe list object.
pub fn list(data: Vec<Value>, has_more: bool, url: &str) -> Value {
    json!({"object": "list", "data": data, "has_more": has_more, "url": url})
}

/// A customer.
pub(super) fn customer(c: &Customer) -> Value {
    json!({
        "id": c.id,
        "object": "customer",
        "address": null,
        "balance": 0,
        "created": c.created,
        "currency": null,
        "default_source": null,
        "delinquent": false,
        "description": c.description,
        "discount": null,
        "email": c.email,
        "invoice_prefix": c.invoice_prefix,
        "invoice_settings": {
            "custom_fields": null,
            "default_payment_method": c.default_payment_method,
            "footer": null,
            "rendering_options": null,
        },
        "livemode": false,
        "metadata": c.metadata,
        "name": c.name,
        "next_invoice_sequence": c.next_invoice_sequence,
        "phone": c.phone,
        "preferred_locales": [],
        "shipping": null,
        "tax_exempt": "none",
        "test_clock": null,
    })
}

fn customer_ref(inner: &Inner, id: &str, expand: &Expand) -> Value {
    match inner.customers.get(id) {
        Some(c) if expand.has("customer") => customer(c),
        _ => Value::String(id.to_owned()),
    }
}

/// A product.
pub(super) fn product(p: &Product) -> Value {
    json!({
        "id": p.id,
        "object": "product",
        "active": true,
        "created": p.created,
        "default_price": null,
        "description": null,
        "images": [],
        "livemode": false,
        "marketing_features": [],
        "metadata": {},
        "name": p.name,
        "package_dimensions": null,
        "shippable": null,
        "statement_descriptor": null,
        "tax_code": null,
        "type": "service",
        "unit_label": null,
        "updated": p.created,
        "url": null,
    })
}

/// A price.
pub(super) fn price(inner: &Inner, p: &Price, expand: &Expand) -> Value {
    let product_value = match inner.products.get(&p.product) {
        Some(prod) if expand.has("product") => product(prod),
        _ => Value::String(p.product.clone()),
    };
    json!({
        "id": p.id,
        "object": "price",
        "active": true,
        "billing_scheme": "per_unit",
        "created": p.created,
        "currency": p.currency,
        "custom_unit_amount": null,
        "livemode": false,
        "lookup_key": p.lookup_key,
        "metadata": p.metadata,
        "nickname": p.nickname,
        "product": product_value,
        "recurring": {
            "interval": p.interval,
            "interval_count": p.interval_count,
            "meter": null,
            "trial_period_days": null,
            "usage_type": "licensed",
        },
        "tax_behavior": "unspecified",
        "tiers_mode": null,
        "transform_quantity": null,
        "type": "recurring",
        "unit_amount": p.unit_amount,
        "unit_amount_decimal": p.unit_amount.to_string(),
    })
}

/// The legacy `plan` view of a price, still on subscription items.
fn plan(p: &Price) -> Value {
    json!({
        "id": p.id,
        "object": "plan",
        "active": true,
        "amount": p.unit_amount,
        "amount_decimal": p.unit_amount.to_string(),
        "billing_scheme": "per_unit",
        "created": p.created,
        "currency": p.currency,
        "interval": p.interval,
        "interval_count": p.interval_count,
        "livemode": false,
        "metadata": p.metadata,
        "meter": null,
        "nickname": p.nickname,
        "product": p.product,
        "tiers_mode": null,
        "transform_usage": null,
        "trial_period_days": null,
        "usage_type": "licensed",
    })
}

/// A subscription.
pub(super) fn subscription(inner: &Inner, s: &Subscription, expand: &Expand) -> Value {
    let items: Vec<Value> = s
        .items
        .iter()
        .map(|item| {
            let (price_value, plan_value) = match inner.prices.get(&item.price) {
                Some(p) => (price(inner, p, &Expand::none()), plan(p)),
                None => (Value::Null, Value::Null),
            };
            json!({
                "id": item.id,
                "object": "subscription_item",
                "billing_thresholds": null,
                "created": item.created,
                "current_period_end": s.period_end,
                "current_period_start": s.period_start,
                "discounts": [],
                "metadata": item.metadata,
                "plan": plan_value,
                "price": price_value,
                "quantity": item.quantity,
                "subscription": s.id,
                "tax_rates": [],
            })
        })
        .collect();
    let first_plan = s
        .items
        .first()
        .and_then(|i| inner.prices.get(&i.price))
        .map_or(Value::Null, plan);
    let latest_invoice = match &s.latest_invoice {
        Some(id) => match inner.invoices.get(id) {
            Some(inv) if expand.has("latest_invoice") => {
                invoice(inner, inv, &expand.child("latest_invoice"))
            }
            _ => Value::String(id.clone()),
        },
        None => Value::Null,
    };
    let cancellation_details = if s.status.as_str() == "canceled" || s.cancel_at_period_end {
        json!({"comment": null, "feedback": null, "reason": "cancellation_requested"})
    } else {
        json!({"comment": null, "feedback": null, "reason": null})
    };
    merge(
        json!({
            "id": s.id,
            "object": "subscription",
            "application": null,
            "application_fee_percent": null,
            "automatic_tax": {"disabled_reason": null, "enabled": false, "liability": null},
            "billing_cycle_anchor": s.anchor,
            "billing_cycle_anchor_config": null,
            "billing_mode": {"flexible": null, "type": "classic"},
            "billing_schedules": [],
            "billing_thresholds": null,
            "cancel_at": s.cancel_at,
            "cancel_at_period_end": s.cancel_at_period_end,
            "canceled_at": s.canceled_at,
            "cancellation_details": cancellation_details,
            "collection_method": "charge_automatically",
            "created": s.created,
            "currency": s.currency,
            "customer": customer_ref(inner, &s.customer, expand),
            "days_until_due": null,
            "default_payment_method": s.default_payment_method,
            "default_source": null,
            "default_tax_rates": [],
            "description": null,
            "discounts": [],
        }),
        json!({
            "ended_at": s.ended_at,
            "invoice_settings": {"account_tax_ids": null, "issuer": {"type": "self"}},
            "items": list(items, false, &format!("/v1/subscription_items?subscription={}", s.id)),
            "latest_invoice": latest_invoice,
            "livemode": false,
            "metadata": s.metadata,
            "next_pending_invoice_item_invoice": null,
            "on_behalf_of": null,
            "pause_collection": null,
            "payment_settings": {
                "payment_method_options": null,
                "payment_method_types": null,
                "save_default_payment_method": if s.save_default_payment_method { "on_subscription" } else { "off" },
            },
            "pending_invoice_item_interval": null,
            "pending_setup_intent": null,
            "pending_update": null,
            "plan": first_plan,
            "quantity": s.items.first().map(|i| i.quantity),
            "schedule": null,
            "start_date": s.created,
            "status": s.status.as_str(),
            "test_clock": null,
            "transfer_data": null,
            "trial_end": null,
            "trial_settings": {"end_behavior": {"missing_payment_method": "create_invoice"}},
            "trial_start": null,
        }),
    )
}

fn line(inner: &Inner, invoice_id: Option<&str>, l: &Line, currency: &str) -> Value {
    let product = inner
        .prices
        .get(&l.price)
        .map(|p| p.product.clone())
        .unwrap_or_default();
    let unit = if l.quantity == 0 {
        0
    } else {
        l.amount / i64::try_from(l.quantity).unwrap_or(1)
    };
    json!({
        "id": l.id,
        "object": "line_item",
        "amount": l.amount,
        "currency": currency,
        "description": l.description,
        "discount_amounts": [],
        "discountable": !l.proration,
        "discounts": [],
        "invoice": invoice_id,
        "livemode": false,
        "metadata": {},
        "parent": {
            "invoice_item_details": null,
            "subscription_item_details": {
                "invoice_item": l.invoice_item,
                "proration": l.proration,
                "proration_details": {"credited_items": null},
                "subscription": l.subscription,
                "subscription_item": l.subscription_item,
            },
            "type": "subscription_item_details",
        },
        "period": {"end": l.period_end, "start": l.period_start},
        "pretax_credit_amounts": [],
        "pricing": {
            "price_details": {"price": l.price, "product": product},
            "type": "price_details",
            "unit_amount_decimal": unit.to_string(),
        },
        "quantity": l.quantity,
        "subtotal": l.amount,
        "taxes": [],
    })
}

fn invoice_payment(inner: &Inner, inv: &Invoice, pi_id: &str, expand: &Expand) -> Value {
    let pi = inner.payment_intents.get(pi_id);
    let paid = inv.status == InvoiceStatus::Paid;
    let pi_value = match pi {
        Some(pi) if expand.has("payment.payment_intent") => {
            payment_intent(inner, pi, &expand.child("payment.payment_intent"))
        }
        _ => Value::String(pi_id.to_owned()),
    };
    json!({
        "id": format!("inpay_{}", pi_id.trim_start_matches("pi_")),
        "object": "invoice_payment",
        "amount_paid": if paid { Some(inv.amount_paid) } else { None },
        "amount_requested": pi.map_or(inv.amount_due(), |p| p.amount),
        "created": pi.map_or(inv.created, |p| p.created),
        "currency": inv.currency,
        "invoice": inv.id,
        "is_default": true,
        "livemode": false,
        "payment": {"payment_intent": pi_value, "type": "payment_intent"},
        "status": if paid { "paid" } else if inv.status == InvoiceStatus::Void { "canceled" } else { "open" },
        "status_transitions": {"canceled_at": inv.voided_at, "paid_at": inv.paid_at},
    })
}

/// An invoice (or preview).
pub(super) fn invoice(inner: &Inner, inv: &Invoice, expand: &Expand) -> Value {
    let id = (!inv.preview).then_some(inv.id.as_str());
    let lines: Vec<Value> = inv
        .lines
        .iter()
        .map(|l| line(inner, id, l, &inv.currency))
        .collect();
    let c = inner.customers.get(&inv.customer);
    let total = inv.total();
    let lines_url = match id {
        Some(id) => format!("/v1/invoices/{id}/lines"),
        None => "/v1/invoices/upcoming/lines".to_owned(),
    };
    let parent = inv.subscription.as_ref().map(|sub| {
        let metadata = inner
            .subscriptions
            .get(sub)
            .map(|s| json!(s.metadata))
            .unwrap_or(json!({}));
        json!({
            "quote_details": null,
            "subscription_details": {
                "metadata": metadata,
                "subscription": sub,
                "subscription_proration_date": inv.proration_date,
            },
            "type": "subscription_details",
        })
    });
    let mut value = merge(
        json!({
            "id": inv.id,
            "object": "invoice",
            "account_country": "DE",
            "account_name": "Nest (simulated Stripe)",
            "account_tax_ids": null,
            "amount_due": inv.amount_due(),
            "amount_overpaid": 0,
            "amount_paid": inv.amount_paid,
            "amount_remaining": inv.amount_remaining(),
            "amount_shipping": 0,
            "application": null,
            "attempt_count": inv.attempt_count,
            "attempted": inv.attempted,
            "auto_advance": !inv.preview && inv.status == InvoiceStatus::Open,
            "automatic_tax": {"disabled_reason": null, "enabled": false, "liability": null, "provider": null, "status": null},
            "automatically_finalizes_at": null,
            "billing_reason": inv.billing_reason,
            "collection_method": "charge_automatically",
            "created": inv.created,
            "currency": inv.currency,
            "custom_fields": null,
            "customer": customer_ref(inner, &inv.customer, expand),
            "customer_address": null,
            "customer_email": c.and_then(|c| c.email.clone()),
            "customer_name": c.and_then(|c| c.name.clone()),
            "customer_phone": c.and_then(|c| c.phone.clone()),
            "customer_shipping": null,
            "customer_tax_exempt": "none",
            "customer_tax_ids": [],
            "default_payment_method": null,
            "default_source": null,
            "default_tax_rates": [],
            "description": null,
            "discounts": [],
        }),
        json!({
            "due_date": null,
            "effective_at": inv.finalized_at,
            "ending_balance": if inv.status == InvoiceStatus::Draft { None } else { Some(0) },
            "footer": null,
            "from_invoice": null,
            "hosted_invoice_url": id.map(|id| format!("https://invoice.stripe.com/i/sim/{id}")),
            "invoice_pdf": id.map(|id| format!("https://pay.stripe.com/invoice/sim/{id}/pdf")),
            "issuer": {"type": "self"},
            "last_finalization_error": null,
            "latest_revision": null,
            "lines": list(lines, false, &lines_url),
            "livemode": false,
            "metadata": {},
            "next_payment_attempt": null,
            "number": inv.number,
            "on_behalf_of": null,
            "parent": parent,
            "payment_settings": {"default_mandate": null, "payment_method_options": null, "payment_method_types": null},
            "period_end": inv.period_end,
            "period_start": inv.period_start,
            "post_payment_credit_notes_amount": 0,
            "pre_payment_credit_notes_amount": 0,
            "receipt_number": null,
            "rendering": null,
            "shipping_cost": null,
            "shipping_details": null,
            "starting_balance": 0,
            "statement_descriptor": null,
            "status": inv.status.as_str(),
            "status_transitions": {
                "finalized_at": inv.finalized_at,
                "marked_uncollectible_at": null,
                "paid_at": inv.paid_at,
                "voided_at": inv.voided_at,
            },
            "subtotal": total,
            "subtotal_excluding_tax": total,
            "test_clock": null,
            "total": total,
            "total_discount_amounts": [],
            "total_excluding_tax": total,
            "total_pretax_credit_amounts": [],
            "total_taxes": [],
            "webhooks_delivered_at": if inv.preview { None } else { Some(inv.created) },
        }),
    );
    if let Some(map) = value.as_object_mut() {
        if expand.has("confirmation_secret") {
            let secret = inv
                .payment_intent
                .as_ref()
                .and_then(|p| inner.payment_intents.get(p))
                .filter(|_| inv.status == InvoiceStatus::Open)
                .map(|pi| json!({"client_secret": pi.client_secret, "type": "payment_intent"}))
                .unwrap_or(Value::Null);
            map.insert("confirmation_secret".into(), secret);
        }
        if expand.has("payments") {
            let child = expand.child("payments").child("data");
            let payments: Vec<Value> = inv
                .payment_intent
                .iter()
                .map(|pi| invoice_payment(inner, inv, pi, &child))
                .collect();
            let url = format!("/v1/invoices/{}/payments", inv.id);
            map.insert("payments".into(), list(payments, false, &url));
        }
    }
    value
}

/// A payment intent.
pub(super) fn payment_intent(inner: &Inner, pi: &PaymentIntent, expand: &Expand) -> Value {
    let last_payment_error = pi.last_error.as_ref().map(|d| {
        json!({
            "charge": d.charge,
            "code": "card_declined",
            "decline_code": d.decline_code,
            "doc_url": "https://stripe.com/docs/error-codes/card-declined",
            "message": d.message,
            "payment_method_type": "card",
            "type": "card_error",
        })
    });
    let description = pi.invoice.as_ref().map(|_| "Subscription creation");
    merge(
        json!({
            "id": pi.id,
            "object": "payment_intent",
            "amount": pi.amount,
            "amount_capturable": 0,
            "amount_details": {"tip": {}},
            "amount_received": pi.amount_received,
            "application": null,
            "application_fee_amount": null,
            "automatic_payment_methods": null,
            "canceled_at": pi.canceled_at,
            "cancellation_reason": pi.canceled_at.map(|_| "void_invoice"),
            "capture_method": "automatic",
            "client_secret": pi.client_secret,
            "confirmation_method": "automatic",
            "created": pi.created,
            "currency": pi.currency,
            "customer": customer_ref(inner, &pi.customer, expand),
            "description": description,
            "last_payment_error": last_payment_error,
            "latest_charge": pi.latest_charge,
        }),
        json!({
            "livemode": false,
            "metadata": {},
            "next_action": null,
            "on_behalf_of": null,
            "payment_method": pi.payment_method,
            "payment_method_configuration_details": null,
            "payment_method_options": {"card": {"installments": null, "mandate_options": null, "network": null, "request_three_d_secure": "automatic"}},
            "payment_method_types": ["card"],
            "processing": null,
            "receipt_email": null,
            "review": null,
            "setup_future_usage": "off_session",
            "shipping": null,
            "source": null,
            "statement_descriptor": null,
            "statement_descriptor_suffix": null,
            "status": pi.status.as_str(),
            "transfer_data": null,
            "transfer_group": null,
        }),
    )
}

/// An event.
pub(super) fn event(e: &StoredEvent) -> Value {
    let mut data = json!({"object": e.object});
    if let (Some(previous), Some(map)) = (&e.previous_attributes, data.as_object_mut()) {
        map.insert("previous_attributes".into(), previous.clone());
    }
    json!({
        "id": e.id,
        "object": "event",
        "api_version": stripe_shared::version::VERSION.as_str(),
        "created": e.created,
        "data": data,
        "livemode": false,
        "pending_webhooks": e.pending_webhooks,
        "request": {"id": e.origin.request_id, "idempotency_key": e.origin.idempotency_key},
        "type": e.type_,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn money_is_written_with_the_currency_symbol() {
        assert_eq!(money(2800, "eur"), "€28.00");
        assert_eq!(money(-933, "usd"), "-$9.33");
        assert_eq!(money(1250, "chf"), "CHF 12.50");
    }

    #[test]
    fn expansions_are_checked_against_the_object() {
        assert!(
            Expand::parse(
                Kind::Subscription,
                vec!["latest_invoice.confirmation_secret".into()],
                false
            )
            .is_ok()
        );
        assert!(
            Expand::parse(
                Kind::Subscription,
                vec!["latest_invoice.payments.data.payment.payment_intent".into()],
                false
            )
            .is_ok()
        );
        assert!(Expand::parse(Kind::Subscription, vec!["nope".into()], false).is_err());
        assert!(Expand::parse(Kind::Invoice, vec!["data.customer".into()], true).is_ok());
        let e = Expand::parse(
            Kind::Subscription,
            vec!["latest_invoice.confirmation_secret".into()],
            false,
        )
        .unwrap_or_default();
        assert!(e.has("latest_invoice"));
        assert!(!e.has("latest"));
        assert!(e.child("latest_invoice").has("confirmation_secret"));
    }
}
