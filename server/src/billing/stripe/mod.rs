//! Stripe: the client (`client::StripeGateway`, async-stripe) and, with no `STRIPE_SECRET_KEY`,
//! the simulator it talks to instead (`simulator`).

pub mod client;
pub mod simulator;

pub use client::{
    NewSubscription, PricePreview, StripeFailure, StripeGateway, SubscriptionState, TestCard,
};
