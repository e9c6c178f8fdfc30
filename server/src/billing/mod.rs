//! Billing: pricing tiers, Stripe (client, simulator, webhook) and the invoice ledger (the daily
//! invoice run, Stripe's invoices, manual invoices, dunning) with `/billing`'s queries.

pub mod cancellation;
pub mod stripe;
pub mod tiers;
pub mod webhook;

// Invoice ledger.
pub mod ledger;
pub mod queries;
