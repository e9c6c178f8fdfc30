//! The `signup_expiry` task: a signup left unpaid for `NEST_SIGNUP_EXPIRY_HOURS` has its Stripe
//! subscription cancelled and its organization removed (nothing was provisioned or charged),
//! so its slug is free again. A signup an admin approved meanwhile (its `create` job exists)
//! is left alone.

use app::models::{JobPayload, JobStep, OrgStatus, SignupPayment};
use sea_orm::{
    ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, QuerySelect, TransactionTrait,
};
use serde_json::json;

use crate::billing::stripe::StripeGateway;
use crate::clock::Clock;
use crate::entities::{organizations, signups};
use crate::error::{Error, Result};
use crate::events::{Change, Events};
use crate::jobs::{Attempt, Handler, JobFailure, Outcome};

/// Signups expired per run (the next run takes the rest).
const BATCH: u64 = 200;

/// Runs `signup_expiry` jobs.
#[derive(Clone)]
pub struct Expiry {
    /// Database pool.
    pub db: DatabaseConnection,
    /// Time source.
    pub clock: Clock,
    /// Cancels the subscriptions.
    pub stripe: StripeGateway,
    /// Tells open pages.
    pub events: Events,
}

/// What one run did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ExpiryReport {
    /// Signups removed.
    pub expired: usize,
    /// Signups skipped (approved by an admin, or paid meanwhile).
    pub kept: usize,
}

impl Expiry {
    /// Expires every unpaid signup past its time (up to a batch).
    pub async fn run_once(&self) -> Result<ExpiryReport> {
        let now = self.clock.now();
        let due = signups::Entity::find()
            .filter(signups::Column::PaymentState.ne(SignupPayment::Paid))
            .filter(signups::Column::ExpiresAt.lte(now))
            .limit(BATCH)
            .all(&self.db)
            .await?;
        let mut report = ExpiryReport::default();
        for signup in due {
            if self.expire(&signup).await? {
                report.expired += 1;
            } else {
                report.kept += 1;
            }
        }
        Ok(report)
    }

    /// Expires one signup; `false` when it is no longer an unpaid, unapproved signup.
    async fn expire(&self, signup: &signups::Model) -> Result<bool> {
        let Some(org) = organizations::Entity::find_by_id(signup.organization_id)
            .one(&self.db)
            .await?
        else {
            return Ok(false);
        };
        let unpaid = matches!(org.status, OrgStatus::Pending | OrgStatus::Error)
            && !crate::organizations::has_create_job(&self.db, org.id).await?;
        if !unpaid {
            return Ok(false);
        }
        if let Some(subscription) = &org.stripe_subscription_id {
            self.stripe
                .cancel_subscription(subscription)
                .await
                .map_err(|e| Error::Unavailable(e.to_string()))?;
        }
        let txn = self.db.begin().await?;
        // First write, conditional on the signup still being unpaid (a payment that raced the
        // expiry wins: the webhook marks it paid first, and this deletes nothing).
        let gone = signups::Entity::delete_many()
            .filter(signups::Column::Id.eq(signup.id))
            .filter(signups::Column::PaymentState.ne(SignupPayment::Paid))
            .exec(&txn)
            .await?;
        if gone.rows_affected != 1 {
            return Ok(false);
        }
        organizations::Entity::delete_many()
            .filter(organizations::Column::Id.eq(org.id))
            // `cancelled`: the subscription's deletion, delivered by Stripe meanwhile.
            .filter(organizations::Column::Status.is_in([
                OrgStatus::Pending,
                OrgStatus::Error,
                OrgStatus::Cancelled,
            ]))
            .exec(&txn)
            .await?;
        crate::audit::record(
            &txn,
            &crate::audit::Actor {
                user_id: None,
                email: "system:signup_expiry".to_owned(),
                ip: None,
                user_agent: None,
            },
            "signup.expired",
            ("organization", Some(org.id.to_string())),
            json!({"slug": org.slug, "name": org.name, "owner_email": org.owner_email, "subscription": org.stripe_subscription_id}),
            self.clock.now(),
        )
        .await?;
        txn.commit().await?;
        self.events.publish(Change::Organization(org.id));
        Ok(true)
    }
}

#[async_trait::async_trait]
impl Handler for Expiry {
    async fn run(&self, attempt: &Attempt) -> std::result::Result<Outcome, JobFailure> {
        if !matches!(attempt.payload(), JobPayload::SignupExpiry) {
            return Err(JobFailure::fatal(None, "expiry runs only signup expiry"));
        }
        let report = attempt
            .step(JobStep::ExpireSignups, async {
                self.run_once().await.map_err(|e| match e {
                    Error::Unavailable(m) => JobFailure::transient(Some(JobStep::ExpireSignups), m),
                    other => JobFailure::database(Some(JobStep::ExpireSignups), &other),
                })
            })
            .await?;
        tracing::info!(
            signups.expired = report.expired,
            signups.kept = report.kept,
            "unpaid signups expired"
        );
        Ok(Outcome::Done)
    }
}
