//! Stripe: the client (`client::StripeGateway`, async-stripe) and, with no `STRIPE_SECRET_KEY`,
//! the simulator it talks to instead (`simulator`).

pub mod client;
pub mod signature;
pub mod simulator;

pub use client::{
    NewSubscription, PricePreview, StripeFailure, StripeGateway, SubscriptionState,
    SubscriptionSummary, TestCard,
};

/// Stripe as the organizations' subscriptions see it: the client and the price of each tier.
#[derive(Clone, Debug)]
pub struct SubscriptionBilling {
    /// The client.
    pub gateway: StripeGateway,
    /// Prices configured per tier code, for tiers whose row has none.
    pub prices: crate::config::StripePrices,
}

impl SubscriptionBilling {
    /// The Stripe price of `tier`: its own, or the one configured for its code.
    pub fn price_of(&self, tier: &crate::entities::tiers::Model) -> Option<String> {
        tier.stripe_price_id
            .clone()
            .or_else(|| self.prices.for_tier(&tier.code).map(str::to_owned))
    }
}
