//! DTOs of admin access: who is calling, the admins list, and the audit log.

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use super::AdminRole;

/// The logged-in user, and their platform role if they have one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Caller {
    /// The user's id.
    pub user_id: i64,
    /// The user's email.
    pub email: String,
    /// `None` for a user who is not (or no longer) a platform admin.
    pub role: Option<AdminRole>,
}

/// A platform admin with the role they act under.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AdminIdentity {
    /// The user's id.
    pub user_id: i64,
    /// The user's email.
    pub email: String,
    /// Their role.
    pub role: AdminRole,
}

/// One row of `/admins`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AdminSummary {
    /// The user's id.
    pub user_id: i64,
    /// Email.
    pub email: String,
    /// Role.
    pub role: AdminRole,
    /// When they were made an admin.
    #[serde(deserialize_with = "super::rfc3339::utc")]
    pub created_at: DateTime<Utc>,
    /// Their last successful login, if any.
    #[serde(default, deserialize_with = "super::rfc3339::option_utc")]
    pub last_login_at: Option<DateTime<Utc>>,
    /// Whether they still have to set a password through their one-time link.
    pub password_pending: bool,
    /// Whether they sign in with a TOTP authenticator.
    pub two_factor: bool,
}

/// Where a correct password leads.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum LoginOutcome {
    /// Signed in: the session is started.
    SignedIn(Caller),
    /// The account has an authenticator: its code comes next (`/login/code`).
    CodeRequired,
    /// Two-factor sign-in is required and the account has none yet: enrolment comes next
    /// (`/login/enrol`); the session starts once it is confirmed.
    EnrolmentRequired,
}

/// An admin's two-factor sign-in, as `/account` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TwoFactorStatus {
    /// When their authenticator was confirmed; `None` when they have none.
    #[serde(default, deserialize_with = "super::rfc3339::option_utc")]
    pub enabled_at: Option<DateTime<Utc>>,
    /// Recovery codes not used yet.
    pub recovery_codes_left: u32,
    /// Whether a superadmin requires two-factor sign-in of every admin.
    pub required: bool,
}

/// A TOTP authenticator being enrolled: shown once, confirmed with a code.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TotpEnrolment {
    /// The secret in base32, for typing into an authenticator app.
    pub secret: String,
    /// The `otpauth://totp/…` URI the QR code holds.
    pub uri: String,
    /// The QR code as an SVG document (rendered on the server).
    pub qr_svg: String,
}

/// How a new admin gets their first password.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum InitialPassword {
    /// The superadmin types it now.
    Typed,
    /// A one-time set-password link is generated and shown once.
    Link,
}

/// The result of adding an admin.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AddedAdmin {
    /// The new admin.
    pub admin: AdminSummary,
    /// The one-time set-password path (`/set-password?token=…`), shown once; `None` when a
    /// password was typed.
    pub set_password_path: Option<String>,
}

/// One audit log row, as shown on `/audit`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditEntry {
    /// Row id (also the pagination cursor).
    pub id: i64,
    /// When it happened.
    #[serde(deserialize_with = "super::rfc3339::utc")]
    pub created_at: DateTime<Utc>,
    /// Who did it (email at the time; empty for the system).
    pub actor_email: String,
    /// The actor's user id, when a user did it.
    pub actor_user_id: Option<i64>,
    /// What was done, e.g. `admin.added`.
    pub action: String,
    /// The kind of thing acted on, e.g. `user`, `organization`.
    pub target_type: String,
    /// Its id.
    pub target_id: Option<String>,
    /// What changed.
    pub detail: serde_json::Value,
    /// Client IP.
    pub ip: Option<String>,
    /// Client user agent.
    pub user_agent: Option<String>,
}

/// Filters for `/audit`; every field is optional.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditFilter {
    /// Actor email contains this (case-insensitive).
    pub actor: Option<String>,
    /// Exact action.
    pub action: Option<String>,
    /// Target type, optionally `type:id`.
    pub target: Option<String>,
    /// From this day (inclusive, UTC).
    pub from: Option<NaiveDate>,
    /// To this day (inclusive, UTC).
    pub to: Option<NaiveDate>,
}

/// One page of audit rows, newest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditPage {
    /// The rows.
    pub entries: Vec<AuditEntry>,
    /// Cursor for the next (older) page, if there is one.
    pub next_cursor: Option<i64>,
    /// The distinct actions that exist, for the filter's choices.
    pub actions: Vec<String>,
}
