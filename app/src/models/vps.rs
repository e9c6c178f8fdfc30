//! DTOs of `/vpses`: every VPS with its organization, type, region, address, Hetzner status.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{Region, VpsStatus};

/// Filters and cursor of the VPS list.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct VpsQuery {
    /// Only this Hetzner status.
    pub status: Option<VpsStatus>,
    /// Only this region.
    pub region: Option<Region>,
    /// Substring of the server name, IPv4, organization name or slug.
    pub search: Option<String>,
    /// Include deleted servers.
    pub include_deleted: bool,
    /// Only servers whose latest health check had this status.
    pub health: Option<super::HealthStatus>,
    /// Rows after this VPS id (newest first).
    pub after: Option<i64>,
}

/// One row of the VPS list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VpsRow {
    /// VPS id.
    pub id: i64,
    /// Organization id.
    pub organization_id: i64,
    /// Organization name.
    pub organization: String,
    /// Organization slug.
    pub slug: String,
    /// Server name at Hetzner.
    pub name: String,
    /// Hetzner's server id.
    pub hetzner_server_id: Option<i64>,
    /// Server type.
    pub server_type: String,
    /// Region.
    pub region: Region,
    /// Public IPv4.
    pub ipv4: Option<String>,
    /// Hetzner status as last seen.
    pub status: VpsStatus,
    /// When the row was created.
    #[serde(deserialize_with = "super::rfc3339::utc")]
    pub created_at: DateTime<Utc>,
    /// When the server was deleted.
    #[serde(default, deserialize_with = "super::rfc3339::option_utc")]
    pub deleted_at: Option<DateTime<Utc>>,
    /// Its latest health check (`None`: not checked yet).
    pub health: Option<super::health::HealthBadge>,
}

/// A page of VPSes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VpsPage {
    /// The rows, newest first.
    pub rows: Vec<VpsRow>,
    /// The cursor of the next page.
    pub next: Option<i64>,
    /// The server's time when the page was read (ages are relative to it; the browser's clock
    /// is neither needed nor trusted).
    #[serde(deserialize_with = "super::rfc3339::utc")]
    pub now: DateTime<Utc>,
}
