//! Billing stops with the service: an organization's Stripe subscription is cancelled at once
//! when an admin deletes the organization (the first step of its `delete` job) or rejects its
//! signup (a `cancel_subscription` job, queued by the lifecycle's `CancelSubscription` effect
//! in the rejection's transaction).
//!
//! - Idempotent: a subscription Stripe has already ended (or no longer has) counts as
//!   cancelled, so a retried step or job never fails on it. Stripe unreachable, rate-limited or
//!   failing (429, 5xx) is retried with the queue's backoff; a refusal is final, on the job.
//! - No proration and no refund (Stripe's defaults for `DELETE /v1/subscriptions/{id}`): see
//!   the README's "Refunds" for why. Cancelling an unpaid subscription voids its open invoice.
//! - Each cancellation is audited on the organization (`billing.subscription_cancelled`).

use app::models::{JobPayload, JobStep};
use sea_orm::{DatabaseConnection, EntityTrait};
use serde_json::json;

use crate::audit::Actor;
use crate::billing::stripe::{StripeFailure, StripeGateway};
use crate::clock::Clock;
use crate::entities::organizations;
use crate::error::Error;
use crate::events::{Change, Events};
use crate::jobs::{Attempt, Handler, JobFailure, Outcome};

/// What became of an organization's subscription.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cancelled {
    /// The organization is not billed through Stripe.
    NoSubscription,
    /// Stripe had already ended it (a retry, or the customer cancelled first).
    AlreadyEnded,
    /// Cancelled now.
    Now,
}

/// Cancels the subscriptions of organizations whose service ended.
#[derive(Clone)]
pub struct Cancellation {
    /// Database pool (the audit rows).
    pub db: DatabaseConnection,
    /// Time source.
    pub clock: Clock,
    /// Stripe (or the simulator).
    pub stripe: StripeGateway,
    /// Tells open pages.
    pub events: Events,
}

impl Cancellation {
    /// Cancels `org`'s subscription now on behalf of `actor`, as `step` of a job; `why` (the
    /// organization was deleted, rejected) goes into the audit row.
    pub async fn cancel(
        &self,
        actor: &Actor,
        org: &organizations::Model,
        why: &str,
        step: JobStep,
    ) -> Result<Cancelled, JobFailure> {
        let Some(subscription) = org.stripe_subscription_id.as_deref() else {
            return Ok(Cancelled::NoSubscription);
        };
        let stripe = |e: StripeFailure| match e {
            StripeFailure::Unreachable(_) => JobFailure::transient(Some(step), e.to_string()),
            other => JobFailure::fatal(Some(step), other.to_string()),
        };
        // Stripe no longer having it counts as ended too.
        let ended = self
            .stripe
            .subscription_state_if_any(subscription)
            .await
            .map_err(stripe)?
            .is_none_or(|state| state.ended);
        let outcome = if ended {
            Cancelled::AlreadyEnded
        } else {
            self.stripe
                .cancel_subscription(subscription)
                .await
                .map_err(stripe)?;
            Cancelled::Now
        };
        crate::audit::record(
            &self.db,
            actor,
            "billing.subscription_cancelled",
            ("organization", Some(org.id.to_string())),
            json!({
                "subscription": subscription,
                "why": why,
                "already_ended": outcome == Cancelled::AlreadyEnded,
                "prorated": false,
            }),
            self.clock.now(),
        )
        .await
        .map_err(|e| JobFailure::database(Some(step), &e))?;
        self.events.publish(Change::Organization(org.id));
        Ok(outcome)
    }
}

#[async_trait::async_trait]
impl Handler for Cancellation {
    async fn run(&self, attempt: &Attempt) -> std::result::Result<Outcome, JobFailure> {
        let JobPayload::CancelSubscription { organization_id } = attempt.payload() else {
            return Err(JobFailure::fatal(
                None,
                "cancellation runs only cancel_subscription jobs",
            ));
        };
        let org = organizations::Entity::find_by_id(*organization_id)
            .one(&self.db)
            .await
            .map_err(|e| JobFailure::database(None, &Error::from(e)))?
            .ok_or_else(|| JobFailure::fatal(None, "the organization no longer exists"))?;
        let step = JobStep::CancelSubscription;
        let outcome = attempt
            .step(
                step,
                self.cancel(&Actor::system(attempt.kind), &org, "rejected", step),
            )
            .await?;
        Ok(match outcome {
            Cancelled::NoSubscription => {
                Outcome::Skipped("the organization has no Stripe subscription".to_owned())
            }
            Cancelled::AlreadyEnded | Cancelled::Now => Outcome::Done,
        })
    }
}
