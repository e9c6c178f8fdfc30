//! Billing: pricing tiers, Stripe (client and simulator) and its webhook.

pub mod stripe;
pub mod tiers;
pub mod webhook;
