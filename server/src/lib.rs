//! The Nest control plane's server: the axum binary `nest`, its SeaORM entities, domain
//! services, background jobs and the Hetzner, Stripe and Caddy integrations.
//!
//! See ARCHITECTURE.md at the repository root for the map.

pub mod admins;
pub mod audit;
pub mod billing;
pub mod cli;
pub mod clock;
pub mod config;
pub mod costs;
pub mod db;
pub mod entities;
pub mod error;
pub mod events;
pub mod health;
pub mod hetzner;
pub mod http;
pub mod jobs;
pub mod metrics;
pub mod organizations;
pub mod provisioning;
pub mod reconcile;
pub mod routing;
pub mod seed;
pub mod signups;
pub mod sim_control;
pub mod state;
pub mod system;
pub mod telemetry;
pub mod vpses;

/// Installs ring as the process-wide TLS provider for outgoing HTTPS (reqwest). Idempotent.
pub fn install_tls_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}
