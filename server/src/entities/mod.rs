//! SeaORM entities: one module per table of `migration`'s schema.
//!
//! Columns holding a closed set or a parsed value use the shared types from `app::models`
//! (stored as strings), so a row read back is already valid.

pub mod audit_log;
pub mod billing_mrr_months;
pub mod health_alerts;
pub mod health_checks;
pub mod health_fleet_alerts;
pub mod health_incidents;
pub mod health_rollups;
pub mod hetzner_prices;
pub mod invoice_counters;
pub mod invoice_totals;
pub mod invoices;
pub mod jobs;
pub mod login_attempts;
pub mod login_blocks;
pub mod organizations;
pub mod platform_admins;
pub mod reconcile_findings;
pub mod recovery_codes;
pub mod regions;
pub mod routes;
pub mod sessions;
pub mod settings;
pub mod signups;
pub mod stripe_events;
pub mod tiers;
pub mod totp_factors;
pub mod user_tokens;
pub mod users;
pub mod vps_health;
pub mod vpses;
