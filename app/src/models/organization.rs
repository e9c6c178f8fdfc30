//! DTOs of the organization pages: list rows, list queries, the detail view, tier choices.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{AuditEntry, JobView, OrgEvent, OrgStatus, Region, VpsStatus};

/// A tier as offered in forms.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TierOption {
    /// Tier id.
    pub id: i64,
    /// Stable code (`starter`).
    pub code: String,
    /// Display name.
    pub name: String,
    /// Hetzner server type.
    pub server_type: String,
    /// Monthly price in cents.
    pub monthly_price_cents: i64,
    /// Currency code.
    pub currency: String,
    /// Whether new organizations may choose it.
    pub active: bool,
}

/// One row of `/organizations`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrgSummary {
    /// Id.
    pub id: i64,
    /// Name.
    pub name: String,
    /// Slug.
    pub slug: String,
    /// Owner email.
    pub owner_email: String,
    /// Lifecycle state.
    pub status: OrgStatus,
    /// Tier name.
    pub tier: String,
    /// Region.
    pub region: Region,
    /// Created.
    #[serde(deserialize_with = "super::rfc3339::utc")]
    pub created_at: DateTime<Utc>,
    /// The latest health check of its current server (`None`: not checked yet).
    #[serde(default)]
    pub health: Option<super::health::HealthBadge>,
}

/// How `/organizations` is sorted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum OrgSort {
    /// Newest first (default).
    #[default]
    Newest,
    /// Oldest first.
    Oldest,
    /// By name, A–Z.
    Name,
}

impl OrgSort {
    /// URL value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Newest => "newest",
            Self::Oldest => "oldest",
            Self::Name => "name",
        }
    }

    /// Parses a URL value (unknown values give the default).
    pub fn parse(s: &str) -> Self {
        match s {
            "oldest" => Self::Oldest,
            "name" => Self::Name,
            _ => Self::Newest,
        }
    }
}

/// Filters, search, sort and cursor of `/organizations`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrgQuery {
    /// Only this state.
    pub status: Option<OrgStatus>,
    /// Only this tier (id).
    pub tier_id: Option<i64>,
    /// Only this region.
    pub region: Option<Region>,
    /// Name, slug or owner email contains this.
    pub search: Option<String>,
    /// Only organizations whose current server's latest check had this status.
    pub health: Option<super::HealthStatus>,
    /// Order.
    pub sort: OrgSort,
    /// Opaque cursor from the previous page.
    pub after: Option<String>,
}

/// One page of organizations.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrgPage {
    /// The rows.
    pub rows: Vec<OrgSummary>,
    /// Cursor of the next page, if any.
    pub next: Option<String>,
    /// Tiers, for the filter.
    pub tiers: Vec<TierOption>,
    /// The server's time of the read (health ages are relative to it).
    #[serde(deserialize_with = "super::rfc3339::utc")]
    pub now: DateTime<Utc>,
}

/// The VPS as shown on the organization page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VpsView {
    /// Id.
    pub id: i64,
    /// Server name.
    pub name: String,
    /// Hetzner id.
    pub hetzner_server_id: Option<i64>,
    /// Server type.
    pub server_type: String,
    /// Region.
    pub region: Region,
    /// IPv4.
    pub ipv4: Option<String>,
    /// Hetzner status.
    pub status: VpsStatus,
}

/// What a tier change will invoice a Stripe-billed organization (Stripe's upcoming-invoice
/// preview with prorations), shown before the admin confirms.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TierChangePreview {
    /// The next invoice's total, formatted (`€32.00`).
    pub amount_due: String,
    /// Its lines: description and formatted amount (a credit is negative).
    pub lines: Vec<(String, String)>,
}

/// Everything about one organization.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OrgDetail {
    /// The summary fields.
    pub org: OrgSummary,
    /// Tier id.
    pub tier_id: i64,
    /// Why it is in its state, when known (e.g. a rejection reason).
    pub status_reason: Option<String>,
    /// When it got to its state.
    #[serde(deserialize_with = "super::rfc3339::utc")]
    pub status_changed_at: DateTime<Utc>,
    /// Its server, if any.
    pub vps: Option<VpsView>,
    /// Its routing entry: `(host, upstream, enabled)`.
    pub route: Option<(String, String, bool)>,
    /// Its jobs, newest first.
    pub jobs: Vec<JobView>,
    /// Its audit history, newest first.
    pub history: Vec<AuditEntry>,
    /// The admin actions its state allows.
    pub actions: Vec<OrgEvent>,
    /// Tiers, for "change tier".
    pub tiers: Vec<TierOption>,
}

/// The editable fields of a tier, as typed in the form.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TierInput {
    /// Display name.
    pub name: String,
    /// Stable code (only when creating; lowercase letters, digits, hyphens).
    pub code: String,
    /// Hetzner server type (`cx22`).
    pub server_type: String,
    /// vCPUs.
    pub vcpus: String,
    /// Memory in GB.
    pub memory_gb: String,
    /// Disk in GB.
    pub disk_gb: String,
    /// Monthly price as typed (`28.00`).
    pub monthly_price: String,
    /// Currency code (`EUR`).
    pub currency: String,
    /// Stripe price id (`price_…`), optional.
    pub stripe_price_id: String,
}

/// The rest of what `/tiers` shows about a tier.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TierDetail {
    /// vCPUs.
    pub vcpus: i32,
    /// Memory in GB.
    pub memory_gb: i32,
    /// Disk in GB.
    pub disk_gb: i32,
    /// Stripe price id.
    pub stripe_price_id: Option<String>,
    /// Organizations on this tier (any state but deleted).
    pub organizations: u64,
}
