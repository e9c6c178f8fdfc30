//! The interface the `#[server]` functions need from the backend (server-side only).
//!
//! `app` cannot depend on `server` (the dependency goes the other way), so it declares what it
//! needs here and `server` implements it and provides it to Leptos as context. The WASM build
//! never sees this module, so entities and integrations never reach the browser.

use std::sync::Arc;

use crate::error::AppError;
use crate::models::{
    AddedAdmin, AdminIdentity, AdminRole, AdminSummary, AuditFilter, AuditPage, Caller,
    InitialPassword, PlatformStatus,
};
use crate::models::{OrgDetail, OrgEvent, OrgPage, OrgQuery, TierOption};

/// What a server function knows about the HTTP request that called it.
#[derive(Clone, Debug)]
pub struct RequestInfo {
    /// The caller's session (server-side, in the database).
    pub session: tower_sessions::Session,
    /// The client's IP address.
    pub ip: Option<String>,
    /// The client's user agent.
    pub user_agent: Option<String>,
}

/// The live-update change count when this request began, put in the request's extensions by
/// the security layer.
#[derive(Clone, Copy, Debug)]
pub struct ChangeSeq(pub u64);

/// The client's address, put in the request's extensions by the security layer: the peer, or
/// behind a trusted reverse proxy the rightmost untrusted hop of `X-Forwarded-For`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClientIp(pub std::net::IpAddr);

/// The CSP nonce of this response, put in the request's extensions by the security layer.
#[derive(Clone, Debug)]
pub struct CspNonce(pub String);

/// Platform-wide queries (the overview's status panel).
#[async_trait::async_trait]
pub trait SystemBackend: Send + Sync {
    /// The platform's status: database, integrations, seeded data, organization counts.
    async fn platform_status(&self) -> Result<PlatformStatus, AppError>;
    /// How many live-update changes were published so far (see `/api/events?since=`).
    fn change_seq(&self) -> u64;
}

/// Admin access: setup, login, sessions, the admins list.
#[async_trait::async_trait]
pub trait AdminsBackend: Send + Sync {
    /// Whether no platform admin exists yet (so `/setup` is open).
    async fn needs_setup(&self) -> Result<bool, AppError>;
    /// Creates the first superadmin and logs them in; refused once any admin exists.
    async fn setup(
        &self,
        req: &RequestInfo,
        email: String,
        password: String,
        confirm: String,
    ) -> Result<AdminIdentity, AppError>;
    /// Checks credentials (with brute-force limits) and starts a new session, or, when the
    /// account signs in with two factors, remembers the verified password in the session for
    /// the second step.
    async fn login(
        &self,
        req: &RequestInfo,
        email: String,
        password: String,
    ) -> Result<crate::models::LoginOutcome, AppError>;
    /// Ends the caller's session.
    async fn logout(&self, req: &RequestInfo) -> Result<(), AppError>;
    /// The logged-in user behind this request, if any (expired sessions are ended here).
    async fn caller(&self, req: &RequestInfo) -> Result<Option<Caller>, AppError>;
    /// Every platform admin.
    async fn list(&self, actor: &AdminIdentity) -> Result<Vec<AdminSummary>, AppError>;
    /// Adds an admin (superadmin only).
    async fn add(
        &self,
        actor: &AdminIdentity,
        req: &RequestInfo,
        email: String,
        role: AdminRole,
        initial: InitialPassword,
        password: Option<String>,
    ) -> Result<AddedAdmin, AppError>;
    /// Changes an admin's role (superadmin only); ends their sessions.
    async fn change_role(
        &self,
        actor: &AdminIdentity,
        req: &RequestInfo,
        user_id: i64,
        role: AdminRole,
    ) -> Result<(), AppError>;
    /// Removes an admin (superadmin only); ends their sessions.
    async fn remove(
        &self,
        actor: &AdminIdentity,
        req: &RequestInfo,
        user_id: i64,
    ) -> Result<(), AppError>;
    /// Sets a password through a one-time link.
    async fn set_password(
        &self,
        req: &RequestInfo,
        token: String,
        password: String,
        confirm: String,
    ) -> Result<(), AppError>;
}

/// TOTP two-factor sign-in: enrolment, the second sign-in step, recovery codes, the policy.
///
/// Enrolment works for a signed-in admin (`/account`) and for one whose password was just
/// verified while two-factor sign-in is required (`/login/enrol`); confirming it then starts
/// the session.
#[async_trait::async_trait]
pub trait TwoFactorBackend: Send + Sync {
    /// The signed-in admin's two-factor status.
    async fn status(
        &self,
        actor: &AdminIdentity,
    ) -> Result<crate::models::TwoFactorStatus, AppError>;
    /// Starts (or restarts) enrolling an authenticator: a new secret, its QR code.
    async fn begin(&self, req: &RequestInfo) -> Result<crate::models::TotpEnrolment, AppError>;
    /// Confirms the enrolment with a code from the authenticator; returns the ten recovery
    /// codes, shown once. Completes the sign-in when enrolling at login.
    async fn confirm(&self, req: &RequestInfo, code: String) -> Result<Vec<String>, AppError>;
    /// The second sign-in step: a code from the authenticator or a recovery code.
    async fn sign_in(&self, req: &RequestInfo, code: String) -> Result<Caller, AppError>;
    /// Removes the caller's authenticator (confirmed with a current code); refused while the
    /// policy requires one.
    async fn disable(
        &self,
        actor: &AdminIdentity,
        req: &RequestInfo,
        code: String,
    ) -> Result<(), AppError>;
    /// Replaces the caller's recovery codes (confirmed with a current code).
    async fn regenerate_codes(
        &self,
        actor: &AdminIdentity,
        req: &RequestInfo,
        code: String,
    ) -> Result<Vec<String>, AppError>;
    /// Requires (or stops requiring) two-factor sign-in of every admin (superadmin only).
    async fn set_required(
        &self,
        actor: &AdminIdentity,
        req: &RequestInfo,
        required: bool,
    ) -> Result<(), AppError>;
    /// Removes another admin's authenticator and recovery codes, ending their sessions
    /// (superadmin only; for a lost device).
    async fn reset(
        &self,
        actor: &AdminIdentity,
        req: &RequestInfo,
        user_id: i64,
    ) -> Result<(), AppError>;
}

/// Health monitoring as admins see it: incidents and their alerts (`/alerts`, the overview),
/// one server's health (`/vpses/:id`).
#[async_trait::async_trait]
pub trait HealthBackend: Send + Sync {
    /// A page of incidents, newest first, and the latest fleet alerts.
    async fn incidents(
        &self,
        query: crate::models::health::IncidentQuery,
        limit: u64,
    ) -> Result<crate::models::health::IncidentPage, AppError>;
    /// Acknowledges an incident (someone is on it), with a reason; audited.
    async fn acknowledge(
        &self,
        actor: &AdminIdentity,
        req: &RequestInfo,
        incident_id: i64,
        reason: String,
    ) -> Result<(), AppError>;
    /// Silences an incident's notifications for `minutes`, with a reason; audited.
    async fn silence(
        &self,
        actor: &AdminIdentity,
        req: &RequestInfo,
        incident_id: i64,
        minutes: u32,
        reason: String,
    ) -> Result<(), AppError>;
    /// One server's health: uptime, charts, recent checks, incidents, reboots.
    async fn server(&self, vps_id: i64)
    -> Result<crate::models::health::VpsHealthDetail, AppError>;
}

/// The audit log.
#[async_trait::async_trait]
pub trait AuditBackend: Send + Sync {
    /// A page of entries, newest first, older than `before` when given.
    async fn list(
        &self,
        filter: AuditFilter,
        before: Option<i64>,
        limit: u64,
    ) -> Result<AuditPage, AppError>;
}

/// Organizations: creation, lists, details, lifecycle actions.
#[async_trait::async_trait]
pub trait OrganizationsBackend: Send + Sync {
    /// Every tier (active ones first).
    async fn tiers(&self) -> Result<Vec<TierOption>, AppError>;
    /// Whether `slug` is free (it may still be malformed: that is checked in the browser too).
    async fn slug_available(&self, slug: String) -> Result<bool, AppError>;
    /// Creates an organization and queues its `create` job; returns its id.
    #[allow(clippy::too_many_arguments)]
    async fn create(
        &self,
        actor: &AdminIdentity,
        req: &RequestInfo,
        name: String,
        slug: String,
        owner_email: String,
        tier_id: i64,
        region: String,
    ) -> Result<i64, AppError>;
    /// A page of organizations.
    async fn list(&self, query: OrgQuery, limit: u64) -> Result<OrgPage, AppError>;
    /// Pending signups awaiting approval, oldest first.
    async fn waitlist(&self) -> Result<Vec<crate::models::OrgSummary>, AppError>;
    /// Everything about one organization.
    async fn detail(&self, id: i64) -> Result<OrgDetail, AppError>;
    /// What moving a Stripe-billed organization to `tier_id` will invoice now (`None` when it
    /// is not billed through Stripe).
    async fn tier_change_preview(
        &self,
        id: i64,
        tier_id: i64,
    ) -> Result<Option<crate::models::TierChangePreview>, AppError>;
    /// Applies an admin action.
    async fn act(
        &self,
        actor: &AdminIdentity,
        req: &RequestInfo,
        id: i64,
        event: OrgEvent,
        tier_id: Option<i64>,
        reason: Option<String>,
    ) -> Result<(), AppError>;
}

/// Pricing tiers.
#[async_trait::async_trait]
pub trait TiersBackend: Send + Sync {
    /// Every tier with how many organizations use it.
    async fn list(&self) -> Result<Vec<(TierOption, crate::models::TierDetail)>, AppError>;
    /// Creates (`id: None`) or updates a tier; returns its id.
    async fn save(
        &self,
        actor: &AdminIdentity,
        req: &RequestInfo,
        id: Option<i64>,
        input: crate::models::TierInput,
    ) -> Result<i64, AppError>;
    /// Offers a tier to new organizations, or stops offering it.
    async fn set_active(
        &self,
        actor: &AdminIdentity,
        req: &RequestInfo,
        id: i64,
        active: bool,
    ) -> Result<(), AppError>;
    /// Deletes a tier no organization uses.
    async fn delete(
        &self,
        actor: &AdminIdentity,
        req: &RequestInfo,
        id: i64,
    ) -> Result<(), AppError>;
}

/// Self-service signup (`/signup`, `/pending`): public, so every call is validated and a
/// signup is reached only by its unguessable token.
#[async_trait::async_trait]
pub trait SignupBackend: Send + Sync {
    /// Tiers on sale, regions, and how the card is taken.
    async fn offer(&self) -> Result<crate::models::SignupOffer, AppError>;
    /// Creates the pending organization and its subscription; rate-limited per client.
    async fn start(
        &self,
        req: &RequestInfo,
        input: crate::models::SignupInput,
    ) -> Result<crate::models::SignupStarted, AppError>;
    /// What `/pending` shows.
    async fn status(&self, token: String) -> Result<crate::models::SignupStatus, AppError>;
    /// The client secret to retry a declined first payment with.
    async fn payment_secret(&self, token: String) -> Result<String, AppError>;
    /// Simulator mode: pays with a stand-in test card.
    async fn pay_with_test_card(&self, token: String, card: String) -> Result<(), AppError>;
}

/// Everything the server functions can reach, provided as Leptos context.
#[derive(Clone)]
pub struct Backend {
    /// The platform's name (`NEST_BRAND_NAME`), for the pages ([`crate::brand_name`]).
    pub brand: String,
    /// Platform-wide queries.
    pub system: Arc<dyn SystemBackend>,
    /// Admin access.
    pub admins: Arc<dyn AdminsBackend>,
    /// Two-factor sign-in.
    pub two_factor: Arc<dyn TwoFactorBackend>,
    /// Health monitoring.
    pub health: Arc<dyn HealthBackend>,
    /// The audit log.
    pub audit: Arc<dyn AuditBackend>,
    /// Organizations.
    pub organizations: Arc<dyn OrganizationsBackend>,
    /// Pricing tiers.
    pub tiers: Arc<dyn TiersBackend>,
    /// VPS instances.
    pub vpses: Arc<dyn VpsesBackend>,
    /// The job queue.
    pub jobs: Arc<dyn JobsBackend>,
    /// Self-service signups.
    pub signups: Arc<dyn SignupBackend>,
    /// Invoices and revenue.
    pub billing: Arc<dyn BillingBackend>,
    /// Reconciliation's findings.
    pub reconcile: Arc<dyn ReconcileBackend>,
    /// Cost against revenue.
    pub costs: Arc<dyn CostsBackend>,
}

/// Cost against revenue: Hetzner's prices against the tiers' (`/billing`, `/tiers`, the
/// organization page).
#[async_trait::async_trait]
pub trait CostsBackend: Send + Sync {
    /// Margins by tier and by region, the least profitable organizations, each tier's margin
    /// per region.
    async fn report(&self) -> Result<crate::models::MarginReport, AppError>;
    /// One organization's month at Hetzner against its tier's price.
    async fn organization(&self, id: i64) -> Result<crate::models::OrgCost, AppError>;
}

/// Reconciliation: what differs between the database, Hetzner and Stripe (`/reconcile`).
#[async_trait::async_trait]
pub trait ReconcileBackend: Send + Sync {
    /// Open findings (or, with `resolved`, the latest resolved ones), newest first.
    async fn findings(&self, resolved: bool) -> Result<crate::models::FindingPage, AppError>;
    /// Acts on open finding `id` once `confirm` matches what it asks for; audited.
    async fn act(
        &self,
        actor: &AdminIdentity,
        req: &RequestInfo,
        id: i64,
        action: crate::models::FindingAction,
        confirm: String,
    ) -> Result<(), AppError>;
}

/// Billing: the invoice ledger and the revenue figures (`/billing`, the overview's revenue
/// card, the organization page's invoices).
#[async_trait::async_trait]
pub trait BillingBackend: Send + Sync {
    /// MRR, revenue, open and overdue totals, the MRR chart.
    async fn overview(&self) -> Result<crate::models::BillingOverview, AppError>;
    /// A page of invoices, newest first.
    async fn invoices(
        &self,
        query: crate::models::InvoiceQuery,
        limit: u64,
    ) -> Result<crate::models::InvoicePage, AppError>;
    /// One invoice (the printable page).
    async fn invoice(&self, id: i64) -> Result<crate::models::InvoiceDetail, AppError>;
    /// Marks an invoice paid or void, with a reason; audited. `seen` is the status the admin
    /// saw: a conflict if it changed meanwhile.
    async fn settle(
        &self,
        actor: &AdminIdentity,
        req: &RequestInfo,
        id: i64,
        event: crate::models::InvoiceEvent,
        seen: crate::models::InvoiceStatus,
        reason: String,
    ) -> Result<(), AppError>;
}

/// The job queue as admins see it (`/jobs`).
#[async_trait::async_trait]
pub trait JobsBackend: Send + Sync {
    /// A page of jobs, newest first.
    async fn list(
        &self,
        query: crate::models::JobQuery,
    ) -> Result<crate::models::JobPage, AppError>;
    /// Queues a failed job again (an organization's job through its `Retry` transition),
    /// with an audit row.
    async fn retry(
        &self,
        actor: &AdminIdentity,
        req: &RequestInfo,
        id: i64,
    ) -> Result<(), AppError>;
}

/// VPS instance queries (`/vpses`).
#[async_trait::async_trait]
pub trait VpsesBackend: Send + Sync {
    /// A page of VPSes, newest first.
    async fn list(
        &self,
        query: crate::models::VpsQuery,
        limit: u64,
    ) -> Result<crate::models::VpsPage, AppError>;
}

/// The backend provided by the server to this render or server-function call.
pub fn use_backend() -> Result<Backend, AppError> {
    leptos::prelude::use_context::<Backend>()
        .ok_or_else(|| AppError::Internal("backend-missing".to_owned()))
}

/// The request behind this server-function call.
pub async fn request_info() -> Result<RequestInfo, AppError> {
    use axum::extract::ConnectInfo;
    let session: tower_sessions::Session = leptos_axum::extract()
        .await
        .map_err(|e| {
            // The detail (a store error) is for the log, never for the browser.
            let reference = session_error_reference();
            tracing::error!(error.reference = %reference, error.kind = "session", error.detail = %e, "request failed");
            AppError::Internal(reference)
        })?;
    let ip = match leptos_axum::extract::<axum::Extension<ClientIp>>().await {
        Ok(client) => Some(client.0.0.to_string()),
        Err(_) => leptos_axum::extract::<ConnectInfo<std::net::SocketAddr>>()
            .await
            .ok()
            .map(|c| c.0.ip().to_string()),
    };
    let headers: http::HeaderMap = leptos_axum::extract().await.unwrap_or_default();
    let user_agent = headers
        .get(http::header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .map(|s| s.chars().take(512).collect());
    Ok(RequestInfo {
        session,
        ip,
        user_agent,
    })
}

/// A failure of the session store, logged with a reference; the caller sees only the reference.
pub fn session_failed(detail: impl std::fmt::Display) -> AppError {
    let reference = session_error_reference();
    tracing::error!(error.reference = %reference, error.kind = "session", error.detail = %detail, "request failed");
    AppError::Internal(reference)
}

/// A short reference tying a session failure shown to the user to its log line.
fn session_error_reference() -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("S{:08X}", n ^ std::process::id().rotate_left(16))
}

/// The calling platform admin; `Unauthenticated` without a session, `Forbidden` for a user who
/// is not a platform admin. Every server function that is not public starts with this.
pub async fn require_admin() -> Result<(Backend, RequestInfo, AdminIdentity), AppError> {
    let backend = use_backend()?;
    let req = request_info().await?;
    let caller = backend
        .admins
        .caller(&req)
        .await?
        .ok_or(AppError::Unauthenticated)?;
    let role = caller
        .role
        .ok_or_else(|| AppError::Forbidden("this needs a platform admin".to_owned()))?;
    let admin = AdminIdentity {
        user_id: caller.user_id,
        email: caller.email,
        role,
    };
    Ok((backend, req, admin))
}

/// Like [`require_admin`], for superadmin-only actions.
pub async fn require_superadmin() -> Result<(Backend, RequestInfo, AdminIdentity), AppError> {
    let (backend, req, admin) = require_admin().await?;
    if admin.role != AdminRole::Superadmin {
        return Err(AppError::Forbidden(
            "only a superadmin can do this".to_owned(),
        ));
    }
    Ok((backend, req, admin))
}
