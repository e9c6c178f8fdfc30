//! `POST /webhooks/stripe`: Stripe's events, verified on the raw body (HMAC-SHA256 with the
//! webhook secret, 300 s tolerance, checked against Nest's clock) and applied once.
//!
//! - The event id is written in the same transaction as its effect (`stripe_events`), so a
//!   replayed or twice-delivered event is a no-op, even when the copies arrive at the same
//!   moment.
//! - Effects follow the objects' state, not arrival order: a signup's first payment goes
//!   through `SignupPayment::after` (paid is final), the organization through the lifecycle
//!   table (an event its state does not allow changes nothing), and subscription updates act
//!   on the subscription as Stripe holds it now (fetched), not on the event's snapshot.
//! - Invoice events ([`invoices`], applied in batches): first `invoice.paid` →
//!   `FirstInvoicePaid` (the `create` job); first `invoice.payment_failed` → `PaymentFailed`
//!   (`error`, retry on `/pending`); every paid invoice, and the failures of later ones, → the
//!   ledger, through a `record_invoice` job queued in the same transaction
//!   (`Ledger::record_from_stripe`, whose `paid` resumes an organization dunning suspended).
//! - Subscription events, one at a time (read by async-stripe; the types Nest does not act on
//!   are recorded unread, see `delivery`): `customer.subscription.updated` with
//!   `cancel_at_period_end` → `cancelling` (back → `active`); `customer.subscription.deleted` →
//!   `cancelled`. Anything else → 200, logged, nothing changed.

pub mod delivery;
pub mod invoices;

use app::models::{OrgEvent, OrgStatus, PaymentOutcome};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, TransactionTrait,
};
use stripe_webhook::{EventObject, Webhook};

use crate::billing::ledger::{StripeInvoiceFacts, StripeOutcome, stripe_actor};
use crate::billing::stripe::StripeGateway;
use crate::billing::stripe::signature;
use crate::clock::Clock;
use crate::config::Secret;
use crate::entities::{organizations, stripe_events};
use crate::error::{Error, Result};
use crate::organizations::{EventArgs, OrganizationService, Prepared};
use crate::state::App;
use delivery::{Delivery, StripeInvoice};

/// What became of a delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Receipt {
    /// Applied (possibly with nothing to change, e.g. an event the state made moot).
    Applied,
    /// This event id was processed before: nothing done.
    Replay,
    /// An event type Nest does not act on, or about an object it does not know: recorded.
    Ignored,
}

/// Why a delivery was refused.
#[derive(Debug, thiserror::Error)]
pub enum Rejection {
    /// The signature, its timestamp or the payload is wrong: 400, nothing changed.
    #[error("invalid webhook: {0}")]
    Invalid(String),
    /// Applying it failed (database, Stripe unreachable): 500, so Stripe delivers it again.
    #[error(transparent)]
    Failed(#[from] Error),
}

/// The webhook's service.
#[derive(Clone)]
pub struct WebhookService {
    /// Database pool.
    pub db: DatabaseConnection,
    /// Time source (the signature's tolerance is measured against it).
    pub clock: Clock,
    /// Applies organization events.
    pub organizations: OrganizationService,
    /// Reads the subscriptions' current state.
    pub stripe: StripeGateway,
    /// `STRIPE_WEBHOOK_SECRET` (or the simulator's).
    pub secret: Secret,
    /// Where invoice events wait for their batch (one per process: `App` keeps it).
    pub inbox: invoices::Inbox,
}

/// The work a subscription event asks for, read before the transaction.
#[derive(Default)]
struct Plan {
    /// The organization event, checked against its current state.
    org: Option<Prepared>,
    /// Nothing in Nest is concerned.
    ignored: bool,
}

impl WebhookService {
    /// Verifies and applies one delivery.
    pub async fn receive(
        &self,
        payload: &str,
        header: &str,
    ) -> std::result::Result<Receipt, Rejection> {
        signature::verify(
            header,
            self.secret.expose(),
            payload,
            self.clock.now().timestamp(),
        )
        .map_err(|e| Rejection::Invalid(e.to_string()))?;
        let receipt = match delivery::read(payload).map_err(Rejection::Invalid)? {
            Delivery::Invoice(event) => self.inbox.submit(self, *event).await?,
            Delivery::Subscription => {
                // async-stripe checks the signature again (one HMAC): only its checked
                // constructor reads without a warning.
                let event = Webhook::construct_event_with_timestamp(
                    payload,
                    header,
                    self.secret.expose(),
                    self.clock.now().timestamp(),
                )
                .map_err(|e| Rejection::Invalid(format!("the event could not be read: {e}")))?;
                self.receive_one(&event.id, event.type_.as_str(), Some(&event.data.object))
                    .await?
            }
            Delivery::Ignored { id, kind } => self.receive_one(&id, &kind, None).await?,
        };
        Ok(receipt)
    }

    /// Applies a subscription event (or records one Nest does not act on: `object` is `None`)
    /// in its own transaction.
    async fn receive_one(
        &self,
        event_id: &str,
        event_type: &str,
        object: Option<&EventObject>,
    ) -> Result<Receipt> {
        if self.seen(event_id).await? {
            return Ok(Receipt::Replay);
        }
        let plan = self.plan(object).await?;
        let now = self.clock.now();
        let txn = self.db.begin().await?;
        // The first write: a second copy of this event blocks here until the first commits,
        // then fails on the primary key and changes nothing.
        let inserted = stripe_events::Entity::insert(stripe_events::ActiveModel {
            id: Set(event_id.to_owned()),
            event_type: Set(event_type.chars().take(128).collect()),
            received_at: Set(now),
            processed_at: Set(Some(now)),
        })
        .exec_without_returning(&txn)
        .await;
        match inserted.map_err(Error::from) {
            Ok(_) => {}
            Err(Error::Duplicate(_)) => return Ok(Receipt::Replay),
            Err(e) => return Err(e),
        }
        let written = match plan.org {
            Some(prepared) => Some(
                self.organizations
                    .write(&txn, &stripe_actor(), prepared)
                    .await?,
            ),
            None => None,
        };
        txn.commit().await?;
        if let Some(written) = &written {
            self.organizations.after_commit(written).await;
        }
        tracing::info!(stripe.event = %event_id, stripe.event_type = %event_type, ignored = plan.ignored, "stripe event applied");
        Ok(if plan.ignored {
            Receipt::Ignored
        } else {
            Receipt::Applied
        })
    }

    async fn seen(&self, event_id: &str) -> Result<bool> {
        Ok(stripe_events::Entity::find_by_id(event_id.to_owned())
            .one(&self.db)
            .await?
            .is_some())
    }

    /// Reads what a subscription event asks for (nothing is written).
    async fn plan(&self, object: Option<&EventObject>) -> Result<Plan> {
        match object {
            Some(
                EventObject::CustomerSubscriptionUpdated(subscription)
                | EventObject::CustomerSubscriptionDeleted(subscription),
            ) => {
                self.plan_subscription(
                    subscription.id.as_str(),
                    subscription.customer.id().as_str(),
                )
                .await
            }
            _ => Ok(Plan {
                ignored: true,
                ..Plan::default()
            }),
        }
    }

    async fn org_by_customer(&self, customer: &str) -> Result<Option<organizations::Model>> {
        Ok(organizations::Entity::find()
            .filter(organizations::Column::StripeCustomerId.eq(customer))
            .one(&self.db)
            .await?)
    }

    /// The organization event, if its current state allows it (`None` otherwise: e.g. a
    /// signup an admin approved before it was paid).
    async fn prepare(&self, org_id: i64, event: OrgEvent) -> Result<Option<Prepared>> {
        match self
            .organizations
            .prepare(org_id, event, EventArgs::default())
            .await
        {
            Ok(prepared) => Ok(Some(prepared)),
            Err(Error::Conflict(why)) => {
                tracing::info!(org.id = org_id, event = ?event, why, "stripe event: nothing to change");
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    async fn plan_subscription(&self, subscription_id: &str, customer: &str) -> Result<Plan> {
        let Some(org) = self.org_by_customer(customer).await? else {
            return Ok(Plan {
                ignored: true,
                ..Plan::default()
            });
        };
        // The subscription as Stripe holds it now: an older event delivered late must not undo
        // a newer one.
        let current = self
            .stripe
            .subscription_state(subscription_id)
            .await
            .map_err(|e| Error::Unavailable(e.to_string()))?;
        let event = if current.ended {
            Some(OrgEvent::SubscriptionEnded)
        } else if current.cancel_at_period_end && org.status != OrgStatus::Cancelling {
            Some(OrgEvent::SubscriptionCancelled)
        } else if !current.cancel_at_period_end && org.status == OrgStatus::Cancelling {
            Some(OrgEvent::SubscriptionRenewed)
        } else {
            None
        };
        let org_change = match event {
            Some(event) => self.prepare(org.id, event).await?,
            None => None,
        };
        Ok(Plan {
            org: org_change,
            ..Plan::default()
        })
    }
}

/// What the ledger needs of a Stripe invoice: the service period (its first line's: Stripe's
/// `period_start` of a subscription's first invoice is its creation instant), Stripe's amount
/// and currency. `None` when the invoice lacks an id or a currency Nest knows.
fn invoice_facts(
    org_id: i64,
    invoice: &StripeInvoice,
    outcome: PaymentOutcome,
    now: chrono::DateTime<chrono::Utc>,
) -> Option<StripeInvoiceFacts> {
    let id = invoice.id.clone()?;
    let (start, end) = invoice
        .lines
        .data
        .first()
        .map(|line| (line.period.start, line.period.end))
        .unwrap_or((invoice.period_start, invoice.period_end));
    let at = |t: i64| chrono::DateTime::from_timestamp(t, 0);
    Some(StripeInvoiceFacts {
        organization_id: org_id,
        stripe_invoice_id: id,
        period_start: at(start)?,
        period_end: at(end)?,
        amount_cents: match outcome {
            PaymentOutcome::Paid => invoice.amount_paid,
            PaymentOutcome::Failed => invoice.amount_due,
        },
        currency: invoice.currency.to_uppercase().parse().ok()?,
        outcome: match outcome {
            PaymentOutcome::Paid => StripeOutcome::Paid { at: now },
            PaymentOutcome::Failed => StripeOutcome::PaymentFailed,
        },
    })
}

/// The axum handler.
pub async fn stripe_webhook(State(app): State<App>, headers: HeaderMap, body: Bytes) -> Response {
    let Ok(payload) = std::str::from_utf8(&body) else {
        return (StatusCode::BAD_REQUEST, "the body is not UTF-8").into_response();
    };
    let Some(signature) = headers
        .get("stripe-signature")
        .and_then(|v| v.to_str().ok())
    else {
        return (
            StatusCode::BAD_REQUEST,
            "the Stripe-Signature header is missing",
        )
            .into_response();
    };
    match app.webhooks().receive(payload, signature).await {
        Ok(receipt) => (
            StatusCode::OK,
            axum::Json(serde_json::json!({"received": true, "replay": receipt == Receipt::Replay})),
        )
            .into_response(),
        Err(Rejection::Invalid(why)) => {
            tracing::warn!(why, "stripe webhook refused");
            (StatusCode::BAD_REQUEST, why).into_response()
        }
        Err(Rejection::Failed(e)) => {
            let reference = crate::error::error_reference();
            tracing::error!(error.reference = %reference, error.detail = %e, "stripe webhook failed; Stripe will deliver it again");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("failed (reference {reference})"),
            )
                .into_response()
        }
    }
}
