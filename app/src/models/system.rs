//! DTOs about Nest itself: which database and integrations are in use, and their health.

use serde::{Deserialize, Serialize};

/// Which database engine Nest is connected to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DatabaseKind {
    /// A SQLite file (the zero-configuration default).
    Sqlite,
    /// PostgreSQL (production and CI).
    Postgres,
}

impl DatabaseKind {
    /// Display name.
    pub const fn label(self) -> &'static str {
        match self {
            Self::Sqlite => "SQLite",
            Self::Postgres => "PostgreSQL",
        }
    }
}

/// Whether an outside service is the real one or Nest's local simulator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum IntegrationMode {
    /// Credentials are configured: the real service is used.
    Real,
    /// The real service in its test mode (Stripe's `sk_test_` keys: no real money moves).
    Test,
    /// No credentials: the built-in simulator stands in.
    Simulated,
    /// Not configured at all (e.g. Caddy without an admin URL).
    NotConnected,
}

/// What the dashboard shows about the platform as a whole.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlatformStatus {
    /// Nest's version.
    pub version: String,
    /// The database engine.
    pub database: DatabaseKind,
    /// Whether the database answered just now.
    pub database_ok: bool,
    /// Hetzner: real API or simulator.
    pub hetzner: IntegrationMode,
    /// Stripe: real API or simulator.
    pub stripe: IntegrationMode,
    /// Caddy: connected or not.
    pub caddy: IntegrationMode,
    /// Number of organizations in each lifecycle state that has any.
    pub organizations_by_status: Vec<(super::OrgStatus, u64)>,
    /// Seeded reference data: how many tiers and regions exist.
    pub tiers: u64,
    /// Number of regions.
    pub regions: u64,
    /// Monthly recurring revenue: the monthly tier prices of all active organizations, in cents.
    pub mrr_cents: i64,
    /// The currency of `mrr_cents`.
    pub currency: String,
    /// Open reconciliation findings (the database against Hetzner and Stripe), and how many
    /// of them cost money while they last.
    pub open_findings: (u64, u64),
}

/// What changed, as told to open pages over the live-update channel (`/api/events`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "id", rename_all = "snake_case")]
pub enum Change {
    /// An organization's row (status, tier, …) or its jobs changed.
    Organization(i64),
    /// A VPS row changed.
    Vps(i64),
    /// A job changed (queued, claimed, a step, its end); `/jobs` listens to these.
    Job(i64),
    /// Health changed: a sweep recorded its checks, or an alert or incident changed.
    Health,
    /// A user's sessions were ended or their role changed (logout, admin removed, role
    /// changed): open live streams re-check their session. Never sent to browsers.
    Sessions(i64),
    /// Invoices changed (the daily run, a payment, an admin marking one paid or void): `/billing`
    /// and the organization pages refetch. Carries the organization when only one changed.
    Billing(Option<i64>),
    /// The platform admins changed (added, removed, another role, two-factor reset or policy):
    /// `/admins` refetches.
    Admins,
    /// Pricing tiers changed (created, edited, activated or deactivated, deleted): `/tiers`
    /// and the forms offering tiers refetch.
    Tiers,
}
