//! Hetzner Cloud: the API types Nest uses, a typed error taxonomy over Hetzner's error codes,
//! the reqwest [`client`], and the local [`simulator`] that stands in when no token is set.
//!
//! The seam between real and simulated cloud is the base URL: the same client talks to
//! `https://api.hetzner.cloud/v1` or to the simulator on loopback.

pub mod client;
pub mod simulator;

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

pub use client::HetznerClient;

/// The label every server Nest creates carries, with the organization id as its value.
pub const ORG_LABEL: &str = "nest-org-id";
/// The label marking servers managed by Nest.
pub const MANAGED_LABEL: &str = "managed-by";

/// A server as the API describes it (the fields Nest reads).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Server {
    /// Hetzner's id.
    pub id: i64,
    /// Unique (per project) name.
    pub name: String,
    /// `initializing`, `starting`, `running`, `stopping`, `off`, `deleting`, …
    pub status: String,
    /// Public addresses.
    pub public_net: PublicNet,
    /// The server type.
    pub server_type: ServerTypeRef,
    /// Labels.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Creation time.
    pub created: DateTime<Utc>,
}

/// `public_net` of a server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublicNet {
    /// The primary IPv4, if any.
    pub ipv4: Option<Ipv4Info>,
}

/// `public_net.ipv4`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ipv4Info {
    /// The address.
    pub ip: String,
}

/// `server_type` of a server (Nest reads only the name).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerTypeRef {
    /// e.g. `cx22`.
    pub name: String,
}

/// An asynchronous action (create, power off, resize, delete, …).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Action {
    /// Hetzner's id.
    pub id: i64,
    /// e.g. `create_server`, `change_server_type`.
    pub command: String,
    /// `running`, `success` or `error`.
    pub status: String,
    /// 0–100.
    pub progress: i32,
    /// Set when the action ended in `error`.
    pub error: Option<ApiErrorBody>,
}

/// The `error` object of an error response or a failed action.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiErrorBody {
    /// Machine-readable code such as `rate_limit_exceeded`.
    pub code: String,
    /// Human-readable message.
    pub message: String,
}

/// What `POST /servers` takes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreateServer {
    /// Unique name.
    pub name: String,
    /// Server type name.
    pub server_type: String,
    /// Image name.
    pub image: String,
    /// Location (the org's region).
    pub location: String,
    /// Cloud-init user data (at most 32 KiB).
    pub user_data: String,
    /// SSH key ids.
    pub ssh_keys: Vec<u64>,
    /// Labels.
    pub labels: BTreeMap<String, String>,
}

/// `GET /pricing`'s answer: what Nest reads of it (the rest of Hetzner's keys are ignored).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Pricing {
    /// ISO code of every price (`EUR`).
    pub currency: String,
    /// Each server type's price per location.
    pub server_types: Vec<ResourcePricing>,
    /// Each primary IP kind's (`ipv4`, `ipv6`) price per location.
    pub primary_ips: Vec<PrimaryIpPricing>,
}

/// A server type's prices.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ResourcePricing {
    /// e.g. `cx22`.
    pub name: String,
    /// One per location that sells it.
    pub prices: Vec<LocationPrice>,
}

/// A primary IP kind's prices.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct PrimaryIpPricing {
    /// `ipv4` or `ipv6`.
    #[serde(rename = "type")]
    pub kind: String,
    /// One per location.
    pub prices: Vec<LocationPrice>,
}

/// A price in one location.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct LocationPrice {
    /// e.g. `fsn1`.
    pub location: String,
    /// A month's price.
    pub price_monthly: Amount,
}

/// An amount as Hetzner writes it: decimal strings, net of VAT and gross.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Amount {
    /// Net (`"3.7900"`).
    pub net: String,
    /// Gross.
    pub gross: String,
}

#[derive(Deserialize)]
pub(crate) struct PricingEnvelope {
    pub(crate) pricing: Pricing,
}

/// Hetzner's rate-limit headers, as last seen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    /// `RateLimit-Limit`.
    pub limit: u32,
    /// `RateLimit-Remaining`.
    pub remaining: u32,
    /// `RateLimit-Reset`: when the bucket is full again.
    pub reset: DateTime<Utc>,
}

/// Why a Hetzner call failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HetznerError {
    /// The API answered with an error object (`code` is Hetzner's, e.g. `locked`).
    #[error("Hetzner API error `{code}` (HTTP {status}): {message}")]
    Api {
        /// HTTP status.
        status: u16,
        /// Hetzner's error code.
        code: String,
        /// Hetzner's message.
        message: String,
        /// For `rate_limit_exceeded`: when the limit resets (`RateLimit-Reset`).
        retry_at: Option<DateTime<Utc>>,
    },
    /// The API could not be reached (connection refused, reset, DNS).
    #[error("Hetzner API unreachable: {0}")]
    Network(String),
    /// The request did not complete within the client's timeout.
    #[error("Hetzner API request timed out")]
    Timeout,
    /// The response was not what the API documents.
    #[error("unexpected Hetzner API response: {0}")]
    Decode(String),
    /// An action finished with status `error`.
    #[error("Hetzner action `{command}` failed: {code}: {message}")]
    ActionFailed {
        /// The action's command.
        command: String,
        /// Hetzner's error code.
        code: String,
        /// Hetzner's message.
        message: String,
    },
    /// An action was still running when Nest stopped waiting.
    #[error("Hetzner action `{0}` did not finish in time")]
    ActionTimeout(String),
}

impl HetznerError {
    /// Whether trying again later may succeed (network trouble, 5xx, rate limits, conflicts,
    /// locks, capacity, failed actions). Invalid input, auth and not-found errors are final.
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Api { status, code, .. } => {
                *status >= 500
                    || matches!(
                        code.as_str(),
                        "rate_limit_exceeded"
                            | "conflict"
                            | "locked"
                            | "timeout"
                            | "bad_gateway"
                            | "unavailable"
                            | "server_error"
                            | "resource_unavailable"
                    )
            }
            Self::Network(_)
            | Self::Timeout
            | Self::ActionFailed { .. }
            | Self::ActionTimeout(_) => true,
            Self::Decode(_) => false,
        }
    }

    /// Whether this is Hetzner's `not_found`.
    pub fn is_not_found(&self) -> bool {
        matches!(self, Self::Api { code, .. } if code == "not_found")
    }

    /// The earliest time a retry makes sense (`RateLimit-Reset` of a 429).
    pub fn retry_at(&self) -> Option<DateTime<Utc>> {
        match self {
            Self::Api { retry_at, .. } => *retry_at,
            _ => None,
        }
    }

    /// A short code for logs and the job's error: Hetzner's code or the kind of failure.
    pub fn code(&self) -> &str {
        match self {
            Self::Api { code, .. } | Self::ActionFailed { code, .. } => code,
            Self::Network(_) => "network",
            Self::Timeout => "timeout",
            Self::Decode(_) => "decode",
            Self::ActionTimeout(_) => "action_timeout",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api(status: u16, code: &str) -> HetznerError {
        HetznerError::Api {
            status,
            code: code.to_owned(),
            message: String::new(),
            retry_at: None,
        }
    }

    #[test]
    fn rate_limits_conflicts_locks_and_server_errors_are_retried() {
        for (status, code) in [
            (429, "rate_limit_exceeded"),
            (409, "conflict"),
            (423, "locked"),
            (412, "resource_unavailable"),
            (500, "server_error"),
            (503, "unavailable"),
        ] {
            assert!(api(status, code).is_retryable(), "{code}");
        }
        assert!(HetznerError::Timeout.is_retryable());
        assert!(HetznerError::Network("refused".into()).is_retryable());
    }

    #[test]
    fn invalid_input_auth_and_uniqueness_errors_are_final() {
        for (status, code) in [
            (400, "invalid_input"),
            (401, "unauthorized"),
            (403, "forbidden"),
            (404, "not_found"),
            (409, "uniqueness_error"),
        ] {
            assert!(!api(status, code).is_retryable(), "{code}");
        }
    }
}
