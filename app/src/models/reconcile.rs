//! Reconciliation's findings as `/reconcile` shows them.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{FindingAction, FindingKind};

/// One finding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FindingView {
    /// Its id.
    pub id: i64,
    /// What kind.
    pub kind: FindingKind,
    /// `server:<id>`, `subscription:<id>` or `organization:<id>`.
    pub subject: String,
    /// The organization it belongs to (id, slug), when Nest knows it.
    pub organization: Option<(i64, String)>,
    /// One sentence for people.
    pub summary: String,
    /// When a run first saw it.
    #[serde(deserialize_with = "super::rfc3339::utc")]
    pub first_seen_at: DateTime<Utc>,
    /// When a run last saw it.
    #[serde(deserialize_with = "super::rfc3339::utc")]
    pub last_seen_at: DateTime<Utc>,
    /// When a run no longer saw it (or an admin's action settled it).
    #[serde(default, deserialize_with = "super::rfc3339::option_utc")]
    pub resolved_at: Option<DateTime<Utc>>,
    /// What an admin can do about it (open findings only).
    pub actions: Vec<FindingAction>,
    /// What the admin types to confirm the action.
    pub confirm: String,
}

/// `/reconcile`'s list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FindingPage {
    /// Open findings (or the latest resolved ones), newest first.
    pub findings: Vec<FindingView>,
    /// Whether these are the resolved ones.
    pub resolved: bool,
}
