//! The closed sets of the domain (lifecycle states, job kinds, roles, …), stored as strings.

use std::fmt;
use std::str::FromStr;

/// The text given for an enum was not one of its values.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{value}` is not a valid {kind}; expected one of: {expected}")]
pub struct ParseEnumError {
    /// What was being parsed (e.g. "organization status").
    pub kind: &'static str,
    /// The text that did not match.
    pub value: String,
    /// The accepted values, comma separated.
    pub expected: String,
}

/// Declares a string-backed enum: `as_str`, `Display`, `FromStr`, serde and (with `ssr`) SeaORM.
macro_rules! string_enum {
    (
        $(#[$meta:meta])*
        $kind:literal,
        pub enum $name:ident {
            $( $(#[$vmeta:meta])* $variant:ident => $text:literal ),+ $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
        #[cfg_attr(feature = "ssr", derive(sea_orm::DeriveValueType), sea_orm(value_type = "String"))]
        pub enum $name {
            $( $(#[$vmeta])* #[serde(rename = $text)] $variant ),+
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [Self] = &[$(Self::$variant),+];

            /// The value as stored in the database and shown in URLs.
            pub const fn as_str(self) -> &'static str {
                match self { $(Self::$variant => $text),+ }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        // Lets the enum be a primary key column; it is never generated from an integer.
        #[cfg(feature = "ssr")]
        impl sea_orm::TryFromU64 for $name {
            fn try_from_u64(_: u64) -> Result<Self, sea_orm::DbErr> {
                Err(sea_orm::DbErr::ConvertFromU64(stringify!($name)))
            }
        }

        impl FromStr for $name {
            type Err = ParseEnumError;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $($text => Ok(Self::$variant),)+
                    _ => Err(ParseEnumError {
                        kind: $kind,
                        value: s.to_owned(),
                        expected: [$($text),+].join(", "),
                    }),
                }
            }
        }
    };
}

string_enum! {
    /// Where an organization is in its lifecycle (spec: "Organization lifecycle").
    "organization status",
    pub enum OrgStatus {
        /// Created via signup or admin; awaiting payment confirmation or approval.
        Pending => "pending",
        /// VPS being created on Hetzner Cloud.
        Provisioning => "provisioning",
        /// Server created; waiting for the Docker Compose services (smoke test).
        Deploying => "deploying",
        /// All services running; routing entry active.
        Active => "active",
        /// Admin-suspended or payment overdue; routing disabled, VPS still running.
        Suspended => "suspended",
        /// Stripe subscription cancelled; instance remains until the period ends.
        Cancelling => "cancelling",
        /// Subscription ended; routing disabled.
        Cancelled => "cancelled",
        /// VPS deletion in progress.
        Deleting => "deleting",
        /// VPS destroyed; routing entry removed.
        Deleted => "deleted",
        /// Provisioning or an operation failed; an admin can retry.
        Error => "error",
    }
}

string_enum! {
    /// The role of a platform admin.
    "admin role",
    pub enum AdminRole {
        /// Manages organizations, infrastructure and billing.
        Admin => "admin",
        /// Everything an admin can do, plus managing admins.
        Superadmin => "superadmin",
    }
}

string_enum! {
    /// What a job does. The first four are an organization's provisioning jobs (spec: "Job
    /// types"); the rest are Nest's own periodic tasks, queued by the scheduler.
    "job kind",
    pub enum JobKind {
        /// Provision a new VPS and bring the org to `active`.
        Create => "create",
        /// Change the server type: power off, resize, power on.
        Resize => "resize",
        /// Destroy the VPS and remove its routing entry.
        Delete => "delete",
        /// Update running services (self-update endpoint, reboot as fallback).
        Redeploy => "redeploy",
        /// Delete expired sessions and login attempts too old to matter.
        SessionPurge => "session_purge",
        /// Re-apply the routes table to Caddy when the two differ.
        CaddyReconcile => "caddy_reconcile",
        /// Delete finished periodic jobs past their retention.
        JobPrune => "job_prune",
        /// Probe every running server's services (one job per sweep).
        HealthSweep => "health_sweep",
        /// Roll raw health checks up per hour and prune both past their retention.
        HealthRollup => "health_rollup",
        /// Reboot an organization's server after it failed too many health checks.
        Reboot => "reboot",
        /// Send one alert to one notification channel.
        NotifyAlert => "notify_alert",
        /// Cancel the subscriptions of signups left unpaid past their expiry, freeing their slugs.
        SignupExpiry => "signup_expiry",
        /// The daily invoice run: the month's invoices, overdue detection, dunning.
        InvoiceRun => "invoice_run",
        /// Record a Stripe invoice's payment (or failure) in the ledger.
        RecordInvoice => "record_invoice",
        /// Cancel the Stripe subscription of an organization whose service ended (a rejected
        /// signup); a deletion cancels it as a step of its `delete` job instead.
        CancelSubscription => "cancel_subscription",
        /// Compare the database with Hetzner's servers and Stripe's subscriptions.
        Reconcile => "reconcile",
        /// Read Hetzner's prices (`GET /pricing`) and keep them, once a day.
        PriceRefresh => "price_refresh",
    }
}

impl JobKind {
    /// Whether jobs of this kind belong to one organization (its provisioning jobs).
    pub const fn is_provisioning(self) -> bool {
        matches!(
            self,
            Self::Create | Self::Resize | Self::Delete | Self::Redeploy
        )
    }
}

string_enum! {
    /// Where one step of a job is.
    "step state",
    pub enum StepState {
        /// Started, not finished.
        Running => "running",
        /// Finished successfully.
        Done => "done",
        /// Ended with an error (the step's detail says which).
        Failed => "failed",
    }
}

string_enum! {
    /// Where a provisioning job is (spec: `queued → running → succeeded / failed`).
    "job state",
    pub enum JobState {
        /// Waiting to be claimed (possibly until `run_after`, for retries).
        Queued => "queued",
        /// Claimed by a worker holding a lease.
        Running => "running",
        /// Finished successfully.
        Succeeded => "succeeded",
        /// Gave up after its last attempt; the error is kept.
        Failed => "failed",
    }
}

string_enum! {
    /// What Hetzner reports about a server, as last seen by Nest.
    "VPS status",
    pub enum VpsStatus {
        /// Row exists; the server is not created yet.
        Planned => "planned",
        /// Hetzner is creating the server.
        Initializing => "initializing",
        /// Booting.
        Starting => "starting",
        /// Powered on.
        Running => "running",
        /// Shutting down.
        Stopping => "stopping",
        /// Powered off.
        Off => "off",
        /// Being deleted.
        Deleting => "deleting",
        /// Gone at Hetzner.
        Deleted => "deleted",
        /// Being migrated or rebuilt.
        Migrating => "migrating",
        /// Anything Hetzner reports that Nest does not know.
        Unknown => "unknown",
    }
}

string_enum! {
    /// A service every tenant server runs (the instance contract; see `models::health`).
    "service",
    pub enum Service {
        /// The self-hosted Convex backend (database and API).
        Convex => "convex",
        /// The web front end (what Caddy routes the org's domain to).
        Web => "web",
        /// The mail transfer agent.
        Mta => "mta",
    }
}

string_enum! {
    /// Where alerts are sent.
    "notification channel",
    pub enum NotifyChannel {
        /// `NEST_ALERT_WEBHOOK_URL` (signed JSON, Slack-compatible `text`).
        Webhook => "webhook",
        /// SMTP to `NEST_ALERT_EMAIL_TO`.
        Email => "email",
    }
}

string_enum! {
    /// The result of one health check (spec: "Status determination").
    "health status",
    pub enum HealthStatus {
        /// All three services respond.
        Healthy => "healthy",
        /// Convex up and at least one other service up.
        Degraded => "degraded",
        /// Only one service responds, or Convex is down (see `models::health::status`).
        Unhealthy => "unhealthy",
        /// No service responds.
        Unreachable => "unreachable",
    }
}

string_enum! {
    /// Why a health alert was raised (spec: "Health alert types").
    "alert kind",
    pub enum AlertKind {
        /// Failing beyond the alert threshold.
        Unhealthy => "unhealthy",
        /// Automatic reboot triggered.
        AutoReboot => "auto_reboot",
        /// Automatic reboot failed at Hetzner.
        RebootFailed => "reboot_failed",
        /// Back to healthy.
        Recovered => "recovered",
    }
}

string_enum! {
    /// Where an invoice is (spec: `draft → open → paid / overdue / void`).
    "invoice status",
    pub enum InvoiceStatus {
        /// Being prepared.
        Draft => "draft",
        /// Issued and awaiting payment.
        Open => "open",
        /// Paid.
        Paid => "paid",
        /// Past its due date and unpaid.
        Overdue => "overdue",
        /// Cancelled.
        Void => "void",
    }
}

string_enum! {
    /// A continent of a Hetzner location.
    "continent",
    pub enum Continent {
        /// Europe.
        Eu => "EU",
        /// North America.
        Us => "US",
        /// Asia.
        Asia => "Asia",
    }
}

string_enum! {
    /// A Hetzner Cloud location Nest provisions into (spec: "Available regions").
    "region",
    pub enum Region {
        /// Falkenstein, Germany.
        Fsn1 => "fsn1",
        /// Nuremberg, Germany (the default).
        Nbg1 => "nbg1",
        /// Helsinki, Finland.
        Hel1 => "hel1",
        /// Ashburn, VA, USA.
        Ash => "ash",
        /// Hillsboro, OR, USA.
        Hil => "hil",
        /// Singapore.
        Sin => "sin",
    }
}

// Not derived: `string_enum!` fixes the derive list for every enum it declares.
#[allow(clippy::derivable_impls)]
impl Default for Region {
    fn default() -> Self {
        Self::Nbg1
    }
}

impl Region {
    /// Human name of the location.
    pub const fn location(self) -> &'static str {
        match self {
            Self::Fsn1 => "Falkenstein",
            Self::Nbg1 => "Nuremberg",
            Self::Hel1 => "Helsinki",
            Self::Ash => "Ashburn, VA",
            Self::Hil => "Hillsboro, OR",
            Self::Sin => "Singapore",
        }
    }

    /// Country of the location.
    pub const fn country(self) -> &'static str {
        match self {
            Self::Fsn1 | Self::Nbg1 => "Germany",
            Self::Hel1 => "Finland",
            Self::Ash | Self::Hil => "USA",
            Self::Sin => "Singapore",
        }
    }

    /// Continent of the location.
    pub const fn continent(self) -> Continent {
        match self {
            Self::Fsn1 | Self::Nbg1 | Self::Hel1 => Continent::Eu,
            Self::Ash | Self::Hil => Continent::Us,
            Self::Sin => Continent::Asia,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_status_round_trips_through_its_text() {
        for status in OrgStatus::ALL {
            assert_eq!(status.as_str().parse::<OrgStatus>(), Ok(*status));
        }
        assert_eq!(
            OrgStatus::ALL.len(),
            10,
            "the spec names ten lifecycle states"
        );
    }

    #[test]
    fn an_unknown_status_names_the_accepted_values() {
        let err = "paused".parse::<OrgStatus>().unwrap_err();
        assert_eq!(err.value, "paused");
        assert!(err.to_string().contains("pending, provisioning"));
    }

    #[test]
    fn the_default_region_is_nuremberg() {
        assert_eq!(Region::default(), Region::Nbg1);
        assert_eq!(Region::ALL.len(), 6);
    }

    #[test]
    fn serde_uses_the_stored_text() {
        assert_eq!(
            serde_json::to_string(&AlertKind::AutoReboot).unwrap(),
            "\"auto_reboot\""
        );
        assert_eq!(
            serde_json::from_str::<Region>("\"hel1\"").unwrap(),
            Region::Hel1
        );
    }
}

string_enum! {
    /// A step of a provisioning job, recorded with timestamps in the job's progress.
    "job step",
    pub enum JobStep {
        /// Create 3: the four secrets generated (CSPRNG) and sealed.
        Secrets => "secrets",
        /// Create 4: the VPS row written.
        VpsRecord => "vps_record",
        /// Create 5: Hetzner asked to create the server with its cloud-init.
        HetznerCreate => "hetzner_create",
        /// Create 6: the server booted and cloud-init started the stack.
        CloudInit => "cloud_init",
        /// Create 7 (and resize, redeploy): Convex `:3210` and Web `:3000` answer.
        SmokeTest => "smoke_test",
        /// Create 8: the routing entry created and pushed to Caddy.
        Routing => "routing",
        /// Create 9: the organization marked active.
        Active => "active",
        /// Resize / redeploy: server powered off.
        PowerOff => "power_off",
        /// Resize: server type changed.
        ChangeType => "change_type",
        /// Resize: server powered on.
        PowerOn => "power_on",
        /// Redeploy: the VPS's self-update endpoint called.
        SelfUpdate => "self_update",
        /// Redeploy fallback: Hetzner reboot.
        Reboot => "reboot",
        /// Delete (first), and a rejected signup's `cancel_subscription` job: the Stripe
        /// subscription cancelled now, so billing stops with the service.
        CancelSubscription => "cancel_subscription",
        /// Delete: the server deleted at Hetzner.
        HetznerDelete => "hetzner_delete",
        /// Delete: the routing entry removed.
        RouteRemoved => "route_removed",
        /// Health sweep: every running server probed.
        Probe => "probe",
        /// Health sweep: checks, alerts and reboots written.
        RecordChecks => "record_checks",
        /// Automatic recovery: Hetzner reboot.
        AutoReboot => "auto_reboot",
        /// Notification: the alert sent.
        Deliver => "deliver",
        /// Health history: hours rolled up, old rows pruned.
        Rollup => "rollup",
        /// Signups: unpaid ones past their expiry cancelled and removed.
        ExpireSignups => "expire_signups",
        /// Reconciliation: the database compared with Hetzner and Stripe, findings written.
        Reconcile => "reconcile",
        /// Costs: Hetzner's prices read and kept.
        FetchPrices => "fetch_prices",
    }
}

impl JobStep {
    /// What the step does, for people.
    pub const fn label(self) -> &'static str {
        match self {
            Self::Secrets => "Generate secrets",
            Self::VpsRecord => "Record the VPS",
            Self::HetznerCreate => "Create the server at Hetzner",
            Self::CloudInit => "Boot and run cloud-init",
            Self::SmokeTest => "Smoke test (Convex :3210, Web :3000)",
            Self::Routing => "Create the routing entry",
            Self::Active => "Mark the organization active",
            Self::PowerOff => "Power off",
            Self::ChangeType => "Change the server type",
            Self::PowerOn => "Power on",
            Self::SelfUpdate => "Call the self-update endpoint",
            Self::Reboot => "Reboot (fallback)",
            Self::CancelSubscription => "Cancel the Stripe subscription",
            Self::HetznerDelete => "Delete the server at Hetzner",
            Self::RouteRemoved => "Remove the routing entry",
            Self::Probe => "Probe every running server",
            Self::RecordChecks => "Record checks, alerts and reboots",
            Self::AutoReboot => "Reboot the server at Hetzner",
            Self::Deliver => "Send the alert",
            Self::Rollup => "Roll up and prune health history",
            Self::ExpireSignups => "Cancel unpaid signups past their expiry",
            Self::Reconcile => "Compare the database with Hetzner and Stripe",
            Self::FetchPrices => "Read Hetzner's prices",
        }
    }
}

string_enum! {
    /// Where a self-service signup's first payment is (see `models::signup`).
    "signup payment state",
    pub enum SignupPayment {
        /// The subscription exists; its first invoice waits for the card.
        AwaitingPayment => "awaiting_payment",
        /// The last attempt was declined; the customer may try another card.
        Declined => "declined",
        /// The first invoice is paid: provisioning is on its way.
        Paid => "paid",
    }
}

string_enum! {
    /// What reconciliation found between Nest's database, Hetzner and Stripe.
    "finding kind",
    pub enum FindingKind {
        /// A server at Hetzner carrying Nest's label that no live VPS row owns: it bills Nest
        /// for ever.
        OrphanServer => "orphan_server",
        /// A running VPS row whose server Hetzner no longer has.
        MissingServer => "missing_server",
        /// A server whose type differs from its organization's tier's.
        TypeDrift => "type_drift",
        /// A server whose IPv4 differs from the one Nest routes to.
        AddressDrift => "address_drift",
        /// A server that is off while its organization is `active`.
        PowerDrift => "power_drift",
        /// A live Stripe subscription of an organization that is deleted, cancelled or unknown:
        /// it charges a customer who has no service.
        LiveSubscription => "live_subscription",
        /// An `active` Stripe-billed organization whose subscription is not live.
        MissingSubscription => "missing_subscription",
        /// A subscription whose price is not its organization's tier's.
        PriceDrift => "price_drift",
    }
}

impl FindingKind {
    /// Whether it costs money while it lasts (sent to the alert channels).
    pub const fn costs_money(self) -> bool {
        matches!(self, Self::OrphanServer | Self::LiveSubscription)
    }
}

string_enum! {
    /// What an admin can do about a finding on `/reconcile` (each confirmed by typing a name).
    "finding action",
    pub enum FindingAction {
        /// Adopt an orphan server into the organization whose create made it (confirmed by
        /// typing its name): offered only when the server carries that organization's label and
        /// name and its create failed before recording it.
        AdoptServer => "adopt_server",
        /// Delete an orphan server at Hetzner (confirmed by typing its name).
        DeleteServer => "delete_server",
        /// Cancel a subscription that charges a customer without service (confirmed by typing
        /// its id).
        CancelSubscription => "cancel_subscription",
        /// Resize a drifted server back to its tier's type (confirmed by typing the
        /// organization's slug).
        ResizeBack => "resize_back",
        /// Route to the address a server has now, when its IPv4 changed behind Nest's back
        /// (confirmed by typing the organization's slug).
        FollowAddress => "follow_address",
    }
}

impl FindingKind {
    /// The actions `/reconcile` may offer for this kind (adopting only where the finding says
    /// the server can be).
    pub const fn actions(self) -> &'static [FindingAction] {
        match self {
            Self::OrphanServer => &[FindingAction::AdoptServer, FindingAction::DeleteServer],
            Self::LiveSubscription => &[FindingAction::CancelSubscription],
            Self::TypeDrift => &[FindingAction::ResizeBack],
            Self::AddressDrift => &[FindingAction::FollowAddress],
            Self::MissingServer
            | Self::PowerDrift
            | Self::MissingSubscription
            | Self::PriceDrift => &[],
        }
    }
}

impl FindingAction {
    /// The button's words.
    pub const fn label(self) -> &'static str {
        match self {
            Self::AdoptServer => "Adopt it into its organization",
            Self::DeleteServer => "Delete the server at Hetzner",
            Self::CancelSubscription => "Cancel the subscription",
            Self::ResizeBack => "Resize back to the tier's type",
            Self::FollowAddress => "Route to the server's new address",
        }
    }
}
