//! Billing: pricing tiers today; invoices, MRR history and Stripe arrive with the billing work.

pub mod stripe;
pub mod tiers;
