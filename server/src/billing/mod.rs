//! Billing: pricing tiers, the invoice ledger (the daily invoice run, Stripe's invoices, manual
//! invoices, dunning) and `/billing`'s queries; Stripe arrives with the billing work.

pub mod tiers;

// Invoice ledger.
pub mod ledger;
pub mod queries;
