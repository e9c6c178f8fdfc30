//! Self-service signup (`/signup` → payment → `/pending`): the first payment's rules and the
//! types the two public pages exchange with the server.
//!
//! The payment state follows Stripe's objects, not the order events arrive in: once the first
//! invoice is paid, nothing moves it back (a `payment_failed` delivered late changes nothing).

use serde::{Deserialize, Serialize};

use super::{OrgStatus, SignupPayment, StepLine};

/// What Stripe said about a signup's first invoice.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum PaymentOutcome {
    /// `invoice.paid`.
    Paid,
    /// `invoice.payment_failed` (a declined card).
    Failed,
}

impl SignupPayment {
    /// The state after `outcome`, or `None` when it changes nothing (a replay, or a failure
    /// reported after the invoice was paid).
    pub fn after(self, outcome: PaymentOutcome) -> Option<SignupPayment> {
        use PaymentOutcome as O;
        use SignupPayment as P;
        match (self, outcome) {
            (P::AwaitingPayment | P::Declined, O::Paid) => Some(P::Paid),
            (P::AwaitingPayment, O::Failed) => Some(P::Declined),
            // Another declined attempt: still declined (its message may be newer).
            (P::Declined, O::Failed) => Some(P::Declined),
            (P::Paid, _) => None,
        }
    }
}

/// A tier as `/signup` offers it (active tiers only, with a Stripe price).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TierOffer {
    /// Tier id.
    pub id: i64,
    /// Display name.
    pub name: String,
    /// The monthly price, formatted (`€28.00 / month`).
    pub price: String,
    /// vCPUs, memory and disk, formatted.
    pub specs: String,
}

/// A region as `/signup` offers it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegionOffer {
    /// Region code (`fsn1`).
    pub code: String,
    /// Display name (`Falkenstein, Germany`).
    pub name: String,
}

/// How the browser takes the card.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum PaymentForm {
    /// Stripe's Payment Element, mounted with the publishable key.
    Stripe {
        /// `STRIPE_PUBLISHABLE_KEY`.
        publishable_key: String,
    },
    /// No Stripe account: Nest's stand-in form, with its test cards.
    Simulated,
}

/// What `/signup` shows before anything is typed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignupOffer {
    /// Tiers on sale.
    pub tiers: Vec<TierOffer>,
    /// Regions.
    pub regions: Vec<RegionOffer>,
    /// How the payment is taken.
    pub payment: PaymentForm,
    /// Hours an unpaid signup is kept.
    pub expiry_hours: u32,
    /// `NEST_BASE_DOMAIN`: an instance is served at `<slug>.<base domain>`.
    pub base_domain: String,
}

/// The form of `/signup`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignupInput {
    /// Organization name.
    pub name: String,
    /// Subdomain.
    pub slug: String,
    /// Owner's e-mail.
    pub owner_email: String,
    /// Tier id.
    pub tier_id: i64,
    /// Region code.
    pub region: String,
}

/// A signup just created: the `/pending` token and what the payment form needs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignupStarted {
    /// The unguessable token of `/pending?token=…`.
    pub token: String,
    /// The client secret of the first invoice's payment (Stripe.js confirms with it).
    pub client_secret: String,
}

/// The card of the stand-in payment form (simulator mode only).
pub mod test_cards {
    /// A card that is accepted.
    pub const SUCCEEDS: &str = "4242 4242 4242 4242";
    /// A card that is declined.
    pub const DECLINED: &str = "4000 0000 0000 0002";
}

/// What `/pending` shows: only this signup's own organization.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SignupStatus {
    /// Organization name.
    pub organization: String,
    /// Its lifecycle state.
    pub status: OrgStatus,
    /// The first payment.
    pub payment: SignupPayment,
    /// Why the last payment attempt failed, in the card issuer's words.
    pub payment_error: Option<String>,
    /// The provisioning job's steps, once it exists.
    pub progress: Option<Vec<StepLine>>,
    /// Where the instance is served, once `active`.
    pub instance_url: Option<String>,
    /// How a retried payment is taken (after a decline).
    pub payment_form: PaymentForm,
    /// Seconds until an unpaid signup expires (`None` once paid).
    pub expires_in_secs: Option<i64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_payment_state_and_outcome_has_a_rule() {
        use PaymentOutcome as O;
        use SignupPayment as P;
        let table = [
            (P::AwaitingPayment, O::Paid, Some(P::Paid)),
            (P::AwaitingPayment, O::Failed, Some(P::Declined)),
            (P::Declined, O::Paid, Some(P::Paid)),
            (P::Declined, O::Failed, Some(P::Declined)),
            (P::Paid, O::Paid, None),
            (P::Paid, O::Failed, None),
        ];
        assert_eq!(table.len(), P::ALL.len() * 2);
        for (from, outcome, to) in table {
            assert_eq!(from.after(outcome), to, "{from} + {outcome:?}");
        }
    }

    #[test]
    fn a_failure_reported_after_the_payment_changes_nothing() {
        let paid = SignupPayment::AwaitingPayment
            .after(PaymentOutcome::Paid)
            .unwrap();
        assert_eq!(paid.after(PaymentOutcome::Failed), None);
    }
}
