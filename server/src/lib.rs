//! The Nest control plane's server: the axum binary `nest`, its SeaORM entities, domain
//! services, background jobs and the Hetzner, Stripe and Caddy integrations.
//!
//! See ARCHITECTURE.md at the repository root for the map.

pub mod cli;
pub mod config;
pub mod db;
pub mod entities;
pub mod error;
pub mod http;
pub mod seed;
pub mod state;
pub mod system;
pub mod telemetry;
