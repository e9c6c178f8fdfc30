//! Jobs as both sides see them: the typed payload a job is queued with, the typed progress its
//! worker writes step by step, and the rows of the `/jobs` page.
//!
//! The server stores [`JobPayload`] and [`JobProgress`] as JSON columns and reads them back as
//! these types (never by hand); the org page and `/jobs` render them without string matching.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{JobKind, JobState, JobStep, ServerType, StepState};

/// What a job is asked to do, with its arguments. The variant decides the job's kind, its
/// serialization key and its organization, so the queue's columns are derived from it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(sea_orm::FromJsonQueryResult))]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum JobPayload {
    /// Provision the organization's VPS.
    Create {
        /// The organization.
        organization_id: i64,
    },
    /// Change the organization's server type.
    Resize {
        /// The organization.
        organization_id: i64,
        /// The Hetzner server type to move to.
        server_type: ServerType,
    },
    /// Delete the organization's VPS and route.
    Delete {
        /// The organization.
        organization_id: i64,
    },
    /// Update the organization's services.
    Redeploy {
        /// The organization.
        organization_id: i64,
    },
    /// Purge expired sessions and old login attempts.
    SessionPurge,
    /// Make Caddy's routes equal to the routes table.
    CaddyReconcile,
    /// Delete finished periodic jobs past their retention.
    JobPrune,
    /// Probe every running server (one sweep).
    HealthSweep,
    /// Roll health checks up per hour; prune raw checks and roll-ups past their retention.
    HealthRollup,
    /// Reboot an organization's server (automatic recovery).
    Reboot {
        /// The organization.
        organization_id: i64,
        /// Its server.
        vps_id: i64,
    },
    /// Cancel unpaid signups past their expiry.
    SignupExpiry,
    /// Send one alert to one channel.
    NotifyAlert {
        /// Which alert.
        alert: AlertRef,
        /// Where to.
        channel: crate::models::NotifyChannel,
    },
    /// The daily invoice run: the month's invoices, overdue detection, dunning.
    InvoiceRun,
    /// Record what Stripe reported of an invoice in the ledger (queued by the webhook, in the
    /// transaction that records the event).
    RecordInvoice {
        /// What the event said.
        invoice: super::StripeInvoiceFacts,
    },
    /// Compare the database with Hetzner and Stripe; record what differs.
    Reconcile,
    /// Cancel the organization's Stripe subscription (queued with a rejection).
    CancelSubscription {
        /// The organization.
        organization_id: i64,
    },
    /// Read Hetzner's prices and keep them (daily).
    PriceRefresh,
}

/// An alert, of a server (in `health_alerts`) or of the fleet (in `health_fleet_alerts`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum AlertRef {
    /// A server's alert.
    Server {
        /// `health_alerts.id`.
        id: i64,
    },
    /// A fleet alert.
    Fleet {
        /// `health_fleet_alerts.id`.
        id: i64,
    },
}

impl JobPayload {
    /// The job's kind.
    pub const fn kind(&self) -> JobKind {
        match self {
            Self::Create { .. } => JobKind::Create,
            Self::Resize { .. } => JobKind::Resize,
            Self::Delete { .. } => JobKind::Delete,
            Self::Redeploy { .. } => JobKind::Redeploy,
            Self::SessionPurge => JobKind::SessionPurge,
            Self::CaddyReconcile => JobKind::CaddyReconcile,
            Self::JobPrune => JobKind::JobPrune,
            Self::HealthSweep => JobKind::HealthSweep,
            Self::HealthRollup => JobKind::HealthRollup,
            Self::Reboot { .. } => JobKind::Reboot,
            Self::NotifyAlert { .. } => JobKind::NotifyAlert,
            Self::SignupExpiry => JobKind::SignupExpiry,
            Self::InvoiceRun => JobKind::InvoiceRun,
            Self::RecordInvoice { .. } => JobKind::RecordInvoice,
            Self::CancelSubscription { .. } => JobKind::CancelSubscription,
            Self::Reconcile => JobKind::Reconcile,
            Self::PriceRefresh => JobKind::PriceRefresh,
        }
    }

    /// The organization the job works on, if any.
    pub const fn organization_id(&self) -> Option<i64> {
        match self {
            Self::Create { organization_id }
            | Self::Resize {
                organization_id, ..
            }
            | Self::Delete { organization_id }
            | Self::Redeploy { organization_id }
            | Self::CancelSubscription { organization_id }
            | Self::Reboot {
                organization_id, ..
            } => Some(*organization_id),
            Self::SessionPurge
            | Self::CaddyReconcile
            | Self::JobPrune
            | Self::HealthSweep
            | Self::HealthRollup
            | Self::SignupExpiry
            | Self::NotifyAlert { .. }
            | Self::InvoiceRun
            | Self::Reconcile
            | Self::PriceRefresh
            | Self::RecordInvoice { .. } => None,
        }
    }

    /// The serialization key: at most one unfinished job per key runs, in enqueue order.
    /// An organization's jobs share one key, so a resize never races a delete. Ledger records
    /// share one too: they number invoices one after the other anyway, and in the order Stripe's
    /// events arrived.
    pub fn queue_key(&self) -> Option<String> {
        match self {
            Self::RecordInvoice { .. } => Some("ledger".to_owned()),
            // One reconciliation at a time: a slow run never overlaps the next slot's.
            Self::Reconcile => Some("reconcile".to_owned()),
            _ => self.organization_id().map(|id| format!("org:{id}")),
        }
    }

    /// The payload of an organization's job of `kind` that takes no other argument; `None` for
    /// a kind that needs more (resize, reboot) or is not an organization's.
    pub const fn for_organization(kind: JobKind, organization_id: i64) -> Option<Self> {
        match kind {
            JobKind::Create => Some(Self::Create { organization_id }),
            JobKind::Delete => Some(Self::Delete { organization_id }),
            JobKind::Redeploy => Some(Self::Redeploy { organization_id }),
            JobKind::CancelSubscription => Some(Self::CancelSubscription { organization_id }),
            JobKind::Resize
            | JobKind::SessionPurge
            | JobKind::CaddyReconcile
            | JobKind::JobPrune
            | JobKind::HealthSweep
            | JobKind::HealthRollup
            | JobKind::Reboot
            | JobKind::SignupExpiry
            | JobKind::NotifyAlert
            | JobKind::InvoiceRun
            | JobKind::Reconcile
            | JobKind::PriceRefresh
            | JobKind::RecordInvoice => None,
        }
    }
}

/// One step of a job, as its worker recorded it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepProgress {
    /// Which step.
    pub step: JobStep,
    /// Where it is.
    pub state: StepState,
    /// When it (last) started.
    #[serde(deserialize_with = "super::rfc3339::utc")]
    pub started_at: DateTime<Utc>,
    /// When it ended, if it did.
    #[serde(default, deserialize_with = "super::rfc3339::option_utc")]
    pub finished_at: Option<DateTime<Utc>>,
    /// The job attempt that last touched it.
    #[serde(default)]
    pub attempt: i32,
    /// What happened (the error of a failed step; never a secret), at most 500 characters.
    #[serde(default)]
    pub detail: Option<String>,
}

/// One step as a page lists it, written out (its label, and its time as `21:05:09` UTC): what
/// `/pending` receives, so the public bundle carries neither the job's types nor time parsing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepLine {
    /// Where it is.
    pub state: StepState,
    /// What it does, in words.
    pub label: String,
    /// When it ended, or started if it has not ended.
    pub at: String,
    /// What happened (a failed step's error).
    pub detail: Option<String>,
}

/// The steps of a job in the order they first ran.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(sea_orm::FromJsonQueryResult))]
#[serde(transparent)]
pub struct JobProgress(pub Vec<StepProgress>);

/// The longest step detail kept.
pub const STEP_DETAIL_MAX: usize = 500;

impl JobProgress {
    /// Records `step` as `state` at `now` during `attempt`: a step already present is updated
    /// in place (a restarted step keeps its position), a new one is appended.
    pub fn record(
        &mut self,
        step: JobStep,
        state: StepState,
        now: DateTime<Utc>,
        attempt: i32,
        detail: Option<&str>,
    ) {
        let detail = detail.map(|d| d.chars().take(STEP_DETAIL_MAX).collect::<String>());
        let finished_at = (state != StepState::Running).then_some(now);
        match self.0.iter_mut().find(|s| s.step == step) {
            Some(entry) => {
                if state == StepState::Running {
                    entry.started_at = now;
                }
                entry.state = state;
                entry.finished_at = finished_at;
                entry.attempt = attempt;
                entry.detail = detail;
            }
            None => self.0.push(StepProgress {
                step,
                state,
                started_at: now,
                finished_at,
                attempt,
                detail,
            }),
        }
    }

    /// The step that failed, if one did.
    pub fn failed_step(&self) -> Option<&StepProgress> {
        self.0.iter().find(|s| s.state == StepState::Failed)
    }

    /// The steps.
    pub fn steps(&self) -> &[StepProgress] {
        &self.0
    }
}

/// A job as shown on the organization page and `/jobs`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobView {
    /// Id.
    pub id: i64,
    /// Kind.
    pub kind: JobKind,
    /// State.
    pub state: JobState,
    /// The organization, for provisioning jobs.
    pub organization: Option<JobOrganization>,
    /// Attempts so far.
    pub attempts: i32,
    /// Maximum attempts.
    pub max_attempts: i32,
    /// Last error, if any.
    pub last_error: Option<String>,
    /// Progress steps.
    pub progress: JobProgress,
    /// Queued at.
    #[serde(deserialize_with = "super::rfc3339::utc")]
    pub created_at: DateTime<Utc>,
    /// Not run before (retry backoff).
    #[serde(deserialize_with = "super::rfc3339::utc")]
    pub run_after: DateTime<Utc>,
    /// Finished at.
    #[serde(default, deserialize_with = "super::rfc3339::option_utc")]
    pub finished_at: Option<DateTime<Utc>>,
}

/// The organization a job belongs to, as a link.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobOrganization {
    /// Id.
    pub id: i64,
    /// Slug.
    pub slug: String,
}

/// Filters of the `/jobs` list.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobQuery {
    /// Only this kind.
    #[serde(default)]
    pub kind: Option<JobKind>,
    /// Only this state.
    #[serde(default)]
    pub state: Option<JobState>,
    /// Only jobs of the organization with this slug.
    #[serde(default)]
    pub organization: Option<String>,
    /// Cursor: only jobs older than this id (the page after it).
    #[serde(default)]
    pub after: Option<i64>,
}

/// One page of `/jobs`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobPage {
    /// Newest first.
    pub rows: Vec<JobView>,
    /// Cursor of the next (older) page.
    pub next: Option<i64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + secs, 0).unwrap_or_default()
    }

    #[test]
    fn a_payload_is_stored_with_its_kind_as_the_tag() {
        let p = JobPayload::Resize {
            organization_id: 7,
            server_type: "cx32".parse().unwrap(),
        };
        let json = serde_json::to_value(&p).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"kind": "resize", "organization_id": 7, "server_type": "cx32"})
        );
        assert_eq!(serde_json::from_value::<JobPayload>(json).unwrap(), p);
        assert_eq!(p.kind(), JobKind::Resize);
        assert_eq!(p.queue_key().as_deref(), Some("org:7"));
    }

    #[test]
    fn every_kind_has_exactly_one_payload_variant() {
        for kind in JobKind::ALL {
            let json = match kind {
                JobKind::Resize => {
                    serde_json::json!({"kind": kind.as_str(), "organization_id": 1, "server_type": "cx22"})
                }
                JobKind::Reboot => {
                    serde_json::json!({"kind": kind.as_str(), "organization_id": 1, "vps_id": 2})
                }
                JobKind::NotifyAlert => serde_json::json!({
                    "kind": kind.as_str(),
                    "alert": {"type": "server", "id": 3},
                    "channel": "webhook",
                }),
                JobKind::RecordInvoice => serde_json::json!({
                    "kind": kind.as_str(),
                    "invoice": {
                        "organization_id": 1,
                        "stripe_invoice_id": "in_1",
                        "period_start": "2026-11-01T00:00:00Z",
                        "period_end": "2026-12-01T00:00:00Z",
                        "amount_cents": 6000,
                        "currency": "EUR",
                        "outcome": {"type": "paid", "at": "2026-11-02T10:00:00Z"},
                    },
                }),
                k if k.is_provisioning() || *k == JobKind::CancelSubscription => {
                    serde_json::json!({"kind": kind.as_str(), "organization_id": 1})
                }
                _ => serde_json::json!({"kind": kind.as_str()}),
            };
            let payload: JobPayload = serde_json::from_value(json).unwrap();
            assert_eq!(payload.kind(), *kind);
            assert_eq!(
                payload.organization_id().is_some(),
                kind.is_provisioning()
                    || matches!(kind, JobKind::Reboot | JobKind::CancelSubscription)
            );
        }
    }

    #[test]
    fn ledger_records_share_one_serialization_key_and_belong_to_no_organization() {
        let json = serde_json::json!({
            "kind": "record_invoice",
            "invoice": {
                "organization_id": 9,
                "stripe_invoice_id": "in_9",
                "period_start": "2026-11-01T00:00:00Z",
                "period_end": "2026-12-01T00:00:00Z",
                "amount_cents": 2800,
                "currency": "EUR",
                "outcome": {"type": "payment_failed"},
            },
        });
        let payload: JobPayload = serde_json::from_value(json).unwrap();
        assert_eq!(payload.kind(), JobKind::RecordInvoice);
        assert_eq!(payload.queue_key().as_deref(), Some("ledger"));
        assert_eq!(payload.organization_id(), None);
        let back = serde_json::to_value(&payload).unwrap();
        assert_eq!(serde_json::from_value::<JobPayload>(back).unwrap(), payload);
    }

    #[test]
    fn a_payload_with_an_invalid_server_type_or_unknown_field_is_refused() {
        let bad =
            serde_json::json!({"kind": "resize", "organization_id": 1, "server_type": "CX 32"});
        assert!(serde_json::from_value::<JobPayload>(bad).is_err());
        let extra = serde_json::json!({"kind": "create", "organization_id": 1, "org": 1});
        assert!(serde_json::from_value::<JobPayload>(extra).is_err());
    }

    #[test]
    fn periodic_tasks_have_no_organization_and_no_serialization_key() {
        assert_eq!(JobPayload::SessionPurge.organization_id(), None);
        assert_eq!(JobPayload::CaddyReconcile.queue_key(), None);
        assert_eq!(JobPayload::Reconcile.organization_id(), None);
        assert_eq!(
            JobPayload::Reconcile.queue_key().as_deref(),
            Some("reconcile")
        );
    }

    #[test]
    fn a_restarted_step_keeps_its_place_and_takes_the_new_attempt() {
        let mut p = JobProgress::default();
        p.record(JobStep::Secrets, StepState::Running, at(0), 1, None);
        p.record(JobStep::Secrets, StepState::Done, at(1), 1, None);
        p.record(JobStep::HetznerCreate, StepState::Running, at(2), 1, None);
        p.record(
            JobStep::HetznerCreate,
            StepState::Failed,
            at(3),
            1,
            Some("boom"),
        );
        assert_eq!(
            p.failed_step().map(|s| s.step),
            Some(JobStep::HetznerCreate)
        );
        p.record(JobStep::HetznerCreate, StepState::Running, at(9), 2, None);
        let steps = p.steps();
        assert_eq!(steps.len(), 2);
        assert_eq!(steps[1].step, JobStep::HetznerCreate);
        assert_eq!(steps[1].state, StepState::Running);
        assert_eq!(steps[1].attempt, 2);
        assert_eq!(steps[1].started_at, at(9));
        assert_eq!(steps[1].finished_at, None);
        assert_eq!(steps[1].detail, None);
        assert!(p.failed_step().is_none());
    }

    #[test]
    fn a_long_detail_is_cut_to_500_characters() {
        let mut p = JobProgress::default();
        let long = "é".repeat(2000);
        p.record(JobStep::SmokeTest, StepState::Failed, at(0), 1, Some(&long));
        assert_eq!(
            p.steps()[0].detail.as_ref().map(|d| d.chars().count()),
            Some(STEP_DETAIL_MAX)
        );
    }

    #[test]
    fn progress_written_before_the_typed_model_still_reads() {
        let old = serde_json::json!([
            {"step": "secrets", "state": "done", "started_at": "2026-11-25T10:00:00Z",
             "finished_at": "2026-11-25T10:00:01Z", "attempt": 1, "detail": null}
        ]);
        let p: JobProgress = serde_json::from_value(old).unwrap();
        assert_eq!(p.steps()[0].step, JobStep::Secrets);
        assert_eq!(p.steps()[0].state, StepState::Done);
    }
}
