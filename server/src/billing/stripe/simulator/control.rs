//! The Stripe simulator's control API (`/_sim`, token-protected; refused to web pages): decline
//! the next payment, renew or cancel a subscription, replay an event, choose how webhooks are
//! delivered, and inspect deliveries, customers, subscriptions and events. Documented in the
//! README ("Simulated payments"); [`super::Simulator`]'s methods do the same in-process.

use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::middleware;
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::{Value, json};

use super::model::{Origin, Renewal, SimError};
use super::{CustomerView, Delivery, DeliveryMode, EventView, Shared, SubscriptionView};
use crate::sim_control::{ControlError, Input, control_gate};

type Shd = State<Arc<Shared>>;

impl From<SimError> for ControlError {
    fn from(e: SimError) -> Self {
        let status = match e {
            SimError::NoSuch { .. } => StatusCode::NOT_FOUND,
            SimError::State { .. } => StatusCode::CONFLICT,
            _ => StatusCode::BAD_REQUEST,
        };
        Self(status, e.to_string())
    }
}

/// The `/_sim` router.
pub(super) fn router(token: Arc<str>) -> Router<Arc<Shared>> {
    Router::new()
        .route("/decline-next", post(decline_next))
        .route("/subscriptions", get(list_subscriptions))
        .route("/subscriptions/{id}/renew", post(renew))
        .route("/subscriptions/{id}/cancel", post(cancel_route))
        .route("/subscriptions/{id}/expire", post(expire))
        .route("/customers", get(list_customers))
        .route("/events", get(list_events))
        .route("/events/{id}/replay", post(replay))
        .route("/deliveries", get(list_deliveries))
        .route("/delivery-mode", get(get_mode).post(set_mode))
        .fallback(|| async { ControlError(StatusCode::NOT_FOUND, "no such path".to_owned()) })
        .layer(middleware::from_fn_with_state(token, control_gate))
}

/// Cancels now or at the period end.
pub(super) fn cancel(
    shared: &Shared,
    subscription: &str,
    at_period_end: bool,
) -> Result<(), SimError> {
    let now = shared.now();
    let mut inner = shared.lock();
    if at_period_end {
        inner.update_subscription(
            now,
            &Origin::default(),
            subscription,
            super::model::SubscriptionUpdate {
                cancel_at_period_end: Some(true),
                items: Vec::new(),
                proration_behavior: super::model::ProrationBehavior::None,
                proration_date: None,
                metadata: Default::default(),
            },
        )
    } else {
        inner.cancel(now, &Origin::default(), subscription)
    }
}

pub(super) fn deliveries(shared: &Shared) -> Vec<Delivery> {
    shared
        .deliveries
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone()
}

pub(super) fn customers(shared: &Shared) -> Vec<CustomerView> {
    let inner = shared.lock();
    let mut list: Vec<_> = inner.customers.values().collect();
    list.sort_by_key(|c| c.seq);
    list.into_iter()
        .map(|c| CustomerView {
            id: c.id.clone(),
            email: c.email.clone(),
            name: c.name.clone(),
            metadata: c.metadata.clone(),
            default_payment_method: c.default_payment_method.clone(),
            created: c.created,
        })
        .collect()
}

pub(super) fn subscriptions(shared: &Shared) -> Vec<SubscriptionView> {
    let inner = shared.lock();
    let mut list: Vec<_> = inner.subscriptions.values().collect();
    list.sort_by_key(|s| s.seq);
    list.into_iter()
        .map(|s| SubscriptionView {
            id: s.id.clone(),
            customer: s.customer.clone(),
            status: s.status.as_str().to_owned(),
            price: s.items.first().map(|i| i.price.clone()),
            current_period_start: s.period_start,
            current_period_end: s.period_end,
            cancel_at_period_end: s.cancel_at_period_end,
            latest_invoice: s.latest_invoice.clone(),
            metadata: s.metadata.clone(),
        })
        .collect()
}

pub(super) fn events(shared: &Shared) -> Vec<EventView> {
    shared
        .lock()
        .events
        .iter()
        .map(|e| EventView {
            id: e.id.clone(),
            type_: e.type_.clone(),
            created: e.created,
        })
        .collect()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DeclineNext {
    customer: Option<String>,
}

/// `POST /_sim/decline-next` `{"customer": "cus_…"}` (optional).
async fn decline_next(
    State(shared): Shd,
    Input(body): Input<DeclineNext>,
) -> Result<StatusCode, ControlError> {
    let mut inner = shared.lock();
    if let Some(customer) = &body.customer {
        inner.customer(customer, "customer")?;
    }
    inner.decline_next(body.customer);
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /_sim/subscriptions/{id}/renew`.
async fn renew(
    State(shared): Shd,
    Path(id): Path<String>,
) -> Result<axum::Json<Value>, ControlError> {
    let now = shared.now();
    let outcome = shared.lock().renew(now, &Origin::default(), &id)?;
    Ok(axum::Json(match outcome {
        Renewal::Renewed { invoice, paid } => {
            json!({"renewed": true, "invoice": invoice, "paid": paid})
        }
        Renewal::Ended => json!({"renewed": false, "ended": true}),
    }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CancelBody {
    #[serde(default)]
    at_period_end: bool,
}

/// `POST /_sim/subscriptions/{id}/cancel` `{"at_period_end": true}` (default: now).
async fn cancel_route(
    State(shared): Shd,
    Path(id): Path<String>,
    Input(body): Input<CancelBody>,
) -> Result<StatusCode, ControlError> {
    cancel(&shared, &id, body.at_period_end)?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /_sim/subscriptions/{id}/expire`: Stripe's 23-hour timer, now.
async fn expire(State(shared): Shd, Path(id): Path<String>) -> Result<StatusCode, ControlError> {
    let now = shared.now();
    shared
        .lock()
        .expire_incomplete(now, &Origin::default(), &id)?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /_sim/events/{id}/replay`.
async fn replay(State(shared): Shd, Path(id): Path<String>) -> Result<StatusCode, ControlError> {
    let inner = shared.lock();
    let event = inner.event(&id)?;
    inner.outbox.replay(event);
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /_sim/delivery-mode`.
async fn get_mode(State(shared): Shd) -> axum::Json<DeliveryMode> {
    axum::Json(shared.lock().outbox.mode())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ModeBody {
    mode: String,
    delay_ms: Option<u64>,
    count: Option<usize>,
}

/// `POST /_sim/delivery-mode` `{"mode": "normal" | "late" (+ "delay_ms") | "twice" |
/// "out_of_order" (+ "count")}`.
async fn set_mode(
    State(shared): Shd,
    Input(body): Input<ModeBody>,
) -> Result<axum::Json<DeliveryMode>, ControlError> {
    let invalid = |m: &str| ControlError(StatusCode::BAD_REQUEST, m.to_owned());
    let mode = match body.mode.as_str() {
        "normal" => DeliveryMode::Normal,
        "twice" => DeliveryMode::Twice,
        "late" => match body.delay_ms {
            Some(delay_ms) if delay_ms <= 600_000 => DeliveryMode::Late { delay_ms },
            _ => return Err(invalid("`late` needs `delay_ms` (at most 600000)")),
        },
        "out_of_order" => match body.count {
            Some(count) if (1..=1000).contains(&count) => DeliveryMode::OutOfOrder { count },
            _ => return Err(invalid("`out_of_order` needs `count` (1–1000)")),
        },
        _ => {
            return Err(invalid(
                "unknown mode: say normal, late, twice or out_of_order",
            ));
        }
    };
    let mut inner = shared.lock();
    inner.outbox.set_mode(mode);
    Ok(axum::Json(inner.outbox.mode()))
}

/// `GET /_sim/deliveries`.
async fn list_deliveries(State(shared): Shd) -> axum::Json<Value> {
    axum::Json(json!({"deliveries": deliveries(&shared)}))
}

/// `GET /_sim/customers`.
async fn list_customers(State(shared): Shd) -> axum::Json<Value> {
    axum::Json(json!({"customers": customers(&shared)}))
}

/// `GET /_sim/subscriptions`.
async fn list_subscriptions(State(shared): Shd) -> axum::Json<Value> {
    axum::Json(json!({"subscriptions": subscriptions(&shared)}))
}

/// `GET /_sim/events`.
async fn list_events(State(shared): Shd) -> axum::Json<Value> {
    axum::Json(json!({"events": events(&shared)}))
}
