//! The organization lifecycle as one explicit state machine: a single transition table
//! (state × event → next state + effects). Every status change in Nest goes through
//! [`transition`]; a pair missing from the table is an illegal transition.
//!
//! Shared with the browser so the UI offers exactly the actions the current state allows.

use serde::{Deserialize, Serialize};

use super::{JobKind, OrgStatus};

/// Something that happens to an organization: an admin action, a job's progress, or a
/// billing event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum OrgEvent {
    /// Admin approves a pending signup: the `create` job is queued.
    Approve,
    /// Admin rejects a pending signup.
    Reject,
    /// The `create` job started.
    ProvisioningStarted,
    /// Hetzner created the server; waiting for the services (smoke test).
    ServerCreated,
    /// All services answered the smoke test.
    SmokeTestPassed,
    /// A job failed for good (after its retries).
    OperationFailed,
    /// Admin suspends: routing off, VPS untouched.
    Suspend,
    /// Admin resumes a suspended org: routing back on.
    Resume,
    /// Admin changes the tier (a `resize` job when the server type differs).
    ChangeTier,
    /// Admin asks for a redeploy of the services.
    Redeploy,
    /// Admin deletes: routing off now, `delete` job queued.
    Delete,
    /// The `delete` job finished: server gone.
    DeletionCompleted,
    /// Admin retries the failed job of an org in `error`; the kind of that job decides where
    /// the org goes back to.
    Retry(JobKind),
    /// Stripe: the first invoice of a signup's subscription was paid: provisioning starts (the
    /// `create` job), from `pending` or from the `error` a declined first payment left.
    FirstInvoicePaid,
    /// Stripe: the first payment failed.
    PaymentFailed,
    /// Stripe: an invoice is overdue.
    PaymentOverdue,
    /// Stripe: the subscription was cancelled (runs to the end of the period).
    SubscriptionCancelled,
    /// Stripe: a subscription set to cancel at the period's end was renewed after all.
    SubscriptionRenewed,
    /// Stripe: the subscription ended (at the end of a cancelled period, cancelled at once, or
    /// a signup's subscription cancelled because it was never paid).
    SubscriptionEnded,
    /// The invoice whose dunning suspended the organization was paid (Stripe or an admin):
    /// routing back on. Only for an organization suspended with `invoice::DUNNING_REASON`.
    PaymentReceived,
}

impl OrgEvent {
    /// Every event (with each job kind for `Retry`), for exhaustive checks.
    pub fn all() -> Vec<Self> {
        let mut all = vec![
            Self::Approve,
            Self::Reject,
            Self::ProvisioningStarted,
            Self::ServerCreated,
            Self::SmokeTestPassed,
            Self::OperationFailed,
            Self::Suspend,
            Self::Resume,
            Self::ChangeTier,
            Self::Redeploy,
            Self::Delete,
            Self::DeletionCompleted,
            Self::FirstInvoicePaid,
            Self::PaymentFailed,
            Self::PaymentOverdue,
            Self::SubscriptionCancelled,
            Self::SubscriptionRenewed,
            Self::SubscriptionEnded,
            Self::PaymentReceived,
        ];
        all.extend(
            JobKind::ALL
                .iter()
                .filter(|k| k.is_provisioning())
                .map(|k| Self::Retry(*k)),
        );
        all
    }

    /// The audit action name of this event.
    pub fn action(self) -> &'static str {
        match self {
            Self::Approve => "organization.approved",
            Self::Reject => "organization.rejected",
            Self::ProvisioningStarted => "organization.provisioning_started",
            Self::ServerCreated => "organization.server_created",
            Self::SmokeTestPassed => "organization.activated",
            Self::OperationFailed => "organization.failed",
            Self::Suspend => "organization.suspended",
            Self::Resume => "organization.resumed",
            Self::ChangeTier => "organization.tier_changed",
            Self::Redeploy => "organization.redeploy_requested",
            Self::Delete => "organization.delete_requested",
            Self::DeletionCompleted => "organization.deleted",
            Self::Retry(_) => "organization.retried",
            Self::FirstInvoicePaid => "organization.first_invoice_paid",
            Self::PaymentFailed => "organization.payment_failed",
            Self::PaymentOverdue => "organization.payment_overdue",
            Self::SubscriptionCancelled => "organization.subscription_cancelled",
            Self::SubscriptionRenewed => "organization.subscription_renewed",
            Self::SubscriptionEnded => "organization.subscription_ended",
            Self::PaymentReceived => "organization.payment_received",
        }
    }

    /// Whether an admin triggers this event from the dashboard (the others come from jobs
    /// and Stripe).
    pub fn is_admin_action(self) -> bool {
        matches!(
            self,
            Self::Approve
                | Self::Reject
                | Self::Suspend
                | Self::Resume
                | Self::ChangeTier
                | Self::Redeploy
                | Self::Delete
                | Self::Retry(_)
        )
    }
}

/// What a transition does to the routing table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum RouteChange {
    /// Create or enable the org's route.
    Enable,
    /// Keep the route but stop serving it.
    Disable,
    /// Delete the route.
    Remove,
}

/// A side effect of a transition, committed in the same transaction as the status change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Effect {
    /// Change the routing table.
    Route(RouteChange),
    /// Queue a job of this kind.
    Enqueue(JobKind),
    /// Queue a `resize` job if the new tier's server type differs from the VPS's.
    ResizeIfServerTypeChanges,
    /// Queue the failed job again.
    RequeueFailedJob,
    /// Cancel the organization's Stripe subscription now (a `cancel_subscription` job, queued
    /// only when it has one), so billing stops with the service. A deletion needs none: its
    /// `delete` job cancels the subscription as its first step.
    CancelSubscription,
}

/// The result of a legal transition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transition {
    /// The state after the event.
    pub to: OrgStatus,
    /// What else happens, in order.
    pub effects: &'static [Effect],
}

const fn to(to: OrgStatus, effects: &'static [Effect]) -> Option<Transition> {
    Some(Transition { to, effects })
}

/// The transition table. `None`: the event is not allowed in that state.
pub fn transition(from: OrgStatus, event: OrgEvent) -> Option<Transition> {
    use Effect::{CancelSubscription, Enqueue, RequeueFailedJob, ResizeIfServerTypeChanges, Route};
    use JobKind as J;
    use OrgEvent as E;
    use OrgStatus as S;
    use RouteChange::{Disable, Enable, Remove};

    match (from, event) {
        (S::Pending, E::Approve) => to(S::Pending, &[Enqueue(J::Create)]),
        (S::Pending, E::Reject) => to(S::Cancelled, &[CancelSubscription]),
        (S::Pending, E::ProvisioningStarted) => to(S::Provisioning, &[]),
        (S::Pending, E::ChangeTier) => to(S::Pending, &[]),
        (S::Pending, E::FirstInvoicePaid) => to(S::Pending, &[Enqueue(J::Create)]),
        (S::Pending, E::PaymentFailed) => to(S::Error, &[]),
        (S::Pending, E::SubscriptionEnded) => to(S::Cancelled, &[]),
        (S::Pending, E::Delete) => to(S::Deleting, &[Enqueue(J::Delete)]),

        (S::Provisioning, E::ServerCreated) => to(S::Deploying, &[]),
        (S::Provisioning, E::OperationFailed) => to(S::Error, &[]),

        (S::Deploying, E::SmokeTestPassed) => to(S::Active, &[Route(Enable)]),
        (S::Deploying, E::OperationFailed) => to(S::Error, &[]),

        (S::Active, E::Suspend) => to(S::Suspended, &[Route(Disable)]),
        (S::Active, E::ChangeTier) => to(S::Active, &[ResizeIfServerTypeChanges]),
        (S::Active, E::Redeploy) => to(S::Active, &[Enqueue(J::Redeploy)]),
        (S::Active, E::Delete) => to(S::Deleting, &[Route(Disable), Enqueue(J::Delete)]),
        (S::Active, E::OperationFailed) => to(S::Error, &[]),
        (S::Active, E::PaymentOverdue) => to(S::Suspended, &[Route(Disable)]),
        (S::Active, E::SubscriptionCancelled) => to(S::Cancelling, &[]),
        (S::Active, E::SubscriptionEnded) => to(S::Cancelled, &[Route(Disable)]),

        (S::Suspended, E::Resume) => to(S::Active, &[Route(Enable)]),
        (S::Suspended, E::PaymentReceived) => to(S::Active, &[Route(Enable)]),
        (S::Suspended, E::ChangeTier) => to(S::Suspended, &[ResizeIfServerTypeChanges]),
        (S::Suspended, E::Delete) => to(S::Deleting, &[Route(Disable), Enqueue(J::Delete)]),
        (S::Suspended, E::SubscriptionCancelled) => to(S::Cancelling, &[]),
        (S::Suspended, E::SubscriptionEnded) => to(S::Cancelled, &[Route(Disable)]),

        (S::Cancelling, E::SubscriptionEnded) => to(S::Cancelled, &[Route(Disable)]),
        (S::Cancelling, E::SubscriptionRenewed) => to(S::Active, &[]),
        (S::Cancelling, E::Delete) => to(S::Deleting, &[Route(Disable), Enqueue(J::Delete)]),

        (S::Cancelled, E::Delete) => to(S::Deleting, &[Route(Disable), Enqueue(J::Delete)]),

        (S::Deleting, E::DeletionCompleted) => to(S::Deleted, &[Route(Remove)]),
        (S::Deleting, E::OperationFailed) => to(S::Error, &[]),

        (S::Error, E::Retry(J::Create)) => to(S::Pending, &[RequeueFailedJob]),
        (S::Error, E::Retry(J::Resize | J::Redeploy)) => to(S::Active, &[RequeueFailedJob]),
        (S::Error, E::Retry(J::Delete)) => to(S::Deleting, &[RequeueFailedJob]),
        (S::Error, E::Delete) => to(S::Deleting, &[Route(Disable), Enqueue(J::Delete)]),
        (S::Error, E::FirstInvoicePaid) => to(S::Pending, &[Enqueue(J::Create)]),
        (S::Error, E::SubscriptionEnded) => to(S::Cancelled, &[Route(Disable)]),

        _ => None,
    }
}

/// The admin actions allowed in `status` (what the organization page offers).
pub fn admin_actions(status: OrgStatus) -> Vec<OrgEvent> {
    OrgEvent::all()
        .into_iter()
        .filter(|e| e.is_admin_action() && transition(status, *e).is_some())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deleted_is_final() {
        for event in OrgEvent::all() {
            assert_eq!(transition(OrgStatus::Deleted, event), None, "{event:?}");
        }
    }

    #[test]
    fn every_state_but_deleted_can_reach_deleted() {
        for status in OrgStatus::ALL {
            let mut state = *status;
            for _ in 0..3 {
                if state == OrgStatus::Deleted {
                    break;
                }
                state = transition(state, OrgEvent::Delete)
                    .or_else(|| transition(state, OrgEvent::DeletionCompleted))
                    .map_or(state, |t| t.to);
            }
            if !matches!(status, OrgStatus::Provisioning | OrgStatus::Deploying) {
                assert_eq!(state, OrgStatus::Deleted, "from {status}");
            }
        }
    }

    #[test]
    fn suspend_turns_routing_off_and_resume_turns_it_back_on() {
        let suspend = transition(OrgStatus::Active, OrgEvent::Suspend).unwrap();
        assert_eq!(
            (suspend.to, suspend.effects),
            (
                OrgStatus::Suspended,
                &[Effect::Route(RouteChange::Disable)][..]
            )
        );
        let resume = transition(OrgStatus::Suspended, OrgEvent::Resume).unwrap();
        assert_eq!(
            (resume.to, resume.effects),
            (OrgStatus::Active, &[Effect::Route(RouteChange::Enable)][..])
        );
    }

    #[test]
    fn a_payment_resumes_only_a_suspended_organization_and_turns_routing_back_on() {
        for status in OrgStatus::ALL {
            let t = transition(*status, OrgEvent::PaymentReceived);
            if *status == OrgStatus::Suspended {
                let t = t.unwrap();
                assert_eq!(
                    (t.to, t.effects),
                    (OrgStatus::Active, &[Effect::Route(RouteChange::Enable)][..])
                );
            } else {
                assert_eq!(t, None, "{status}");
            }
        }
        assert!(!OrgEvent::PaymentReceived.is_admin_action());
    }

    #[test]
    fn an_overdue_payment_suspends_only_an_active_organization() {
        for status in OrgStatus::ALL {
            let t = transition(*status, OrgEvent::PaymentOverdue);
            assert_eq!(
                t.map(|t| t.to),
                (*status == OrgStatus::Active).then_some(OrgStatus::Suspended),
                "{status}"
            );
        }
    }

    #[test]
    fn whatever_ends_an_organization_s_service_stops_its_billing() {
        // Stripe's own endings need nothing: the subscription has already ended there.
        let from_stripe = |e: OrgEvent| {
            matches!(
                e,
                OrgEvent::SubscriptionEnded | OrgEvent::SubscriptionCancelled
            )
        };
        for status in OrgStatus::ALL {
            for event in OrgEvent::all() {
                let Some(t) = transition(*status, event) else {
                    continue;
                };
                let ends = matches!(t.to, OrgStatus::Cancelled | OrgStatus::Deleting)
                    && !matches!(status, OrgStatus::Cancelled | OrgStatus::Deleting);
                if !ends || from_stripe(event) {
                    continue;
                }
                // A retried delete re-runs its job, whose first step cancels again.
                let reruns_delete = event == OrgEvent::Retry(JobKind::Delete)
                    && t.effects.contains(&Effect::RequeueFailedJob);
                let cancels = t.effects.contains(&Effect::CancelSubscription)
                    || t.effects.contains(&Effect::Enqueue(JobKind::Delete))
                    || reruns_delete;
                assert!(cancels, "{status} --{event:?}--> {} keeps billing", t.to);
            }
        }
    }

    #[test]
    fn delete_disables_routing_before_queuing_the_delete_job() {
        let t = transition(OrgStatus::Active, OrgEvent::Delete).unwrap();
        assert_eq!(
            t.effects,
            &[
                Effect::Route(RouteChange::Disable),
                Effect::Enqueue(JobKind::Delete)
            ]
        );
    }

    #[test]
    fn the_happy_path_runs_from_pending_to_active() {
        let mut state = OrgStatus::Pending;
        for event in [
            OrgEvent::Approve,
            OrgEvent::ProvisioningStarted,
            OrgEvent::ServerCreated,
            OrgEvent::SmokeTestPassed,
        ] {
            state = transition(state, event).unwrap().to;
        }
        assert_eq!(state, OrgStatus::Active);
    }

    #[test]
    fn an_error_offers_retry_and_delete() {
        let actions = admin_actions(OrgStatus::Error);
        assert!(actions.contains(&OrgEvent::Delete));
        assert!(actions.iter().any(|a| matches!(a, OrgEvent::Retry(_))));
        assert!(!actions.contains(&OrgEvent::Suspend));
    }

    #[test]
    fn a_paid_signup_is_provisioned_and_a_declined_one_can_still_be_paid() {
        let paid = transition(OrgStatus::Pending, OrgEvent::FirstInvoicePaid).unwrap();
        assert_eq!(
            (paid.to, paid.effects),
            (OrgStatus::Pending, &[Effect::Enqueue(JobKind::Create)][..])
        );
        let declined = transition(OrgStatus::Pending, OrgEvent::PaymentFailed).unwrap();
        assert_eq!(declined.to, OrgStatus::Error);
        let retried = transition(declined.to, OrgEvent::FirstInvoicePaid).unwrap();
        assert_eq!(
            (retried.to, retried.effects),
            (OrgStatus::Pending, &[Effect::Enqueue(JobKind::Create)][..])
        );
        for status in [
            OrgStatus::Active,
            OrgStatus::Provisioning,
            OrgStatus::Cancelled,
        ] {
            assert_eq!(
                transition(status, OrgEvent::FirstInvoicePaid),
                None,
                "{status}"
            );
        }
    }

    #[test]
    fn cancelling_runs_to_the_period_end_unless_renewed() {
        let cancel = transition(OrgStatus::Active, OrgEvent::SubscriptionCancelled).unwrap();
        assert_eq!(
            (cancel.to, cancel.effects),
            (OrgStatus::Cancelling, &[][..])
        );
        let renewed = transition(OrgStatus::Cancelling, OrgEvent::SubscriptionRenewed).unwrap();
        assert_eq!(renewed.to, OrgStatus::Active);
        let ended = transition(OrgStatus::Cancelling, OrgEvent::SubscriptionEnded).unwrap();
        assert_eq!(
            (ended.to, ended.effects),
            (
                OrgStatus::Cancelled,
                &[Effect::Route(RouteChange::Disable)][..]
            )
        );
    }

    #[test]
    fn a_subscription_ending_turns_routing_off_wherever_the_org_is_served() {
        for status in OrgStatus::ALL {
            if let Some(t) = transition(*status, OrgEvent::SubscriptionEnded) {
                assert_eq!(t.to, OrgStatus::Cancelled, "{status}");
                if matches!(
                    status,
                    OrgStatus::Active | OrgStatus::Suspended | OrgStatus::Cancelling
                ) {
                    assert_eq!(
                        t.effects,
                        &[Effect::Route(RouteChange::Disable)],
                        "{status}"
                    );
                }
            }
        }
        assert!(transition(OrgStatus::Deleting, OrgEvent::SubscriptionEnded).is_none());
    }

    #[test]
    fn a_deleting_org_offers_no_admin_action() {
        assert!(admin_actions(OrgStatus::Deleting).is_empty());
        assert!(admin_actions(OrgStatus::Deleted).is_empty());
    }
}
