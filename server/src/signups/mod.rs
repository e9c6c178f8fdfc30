//! Self-service signups (`/signup`, `/pending`): the `pending` organization, its Stripe customer
//! and subscription, the unguessable `/pending` token, the stand-in payment form of simulator
//! mode, and the status page. Provisioning itself starts from the Stripe webhook
//! (`billing::webhook`) when the first invoice is paid — never from the browser.

pub mod expiry;

use app::backend::RequestInfo;
use app::error::AppError;
use app::models::{
    JobKind, OrgStatus, PaymentForm, PaymentOutcome, RegionOffer, SignupInput, SignupOffer,
    SignupPayment, SignupStarted, SignupStatus, TierOffer,
};
use chrono::{DateTime, Duration, Utc};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, DatabaseConnection, EntityTrait,
    PaginatorTrait, QueryFilter, QueryOrder, TransactionTrait,
};
use sha2::{Digest, Sha256};

use crate::audit::Actor;
use crate::billing::stripe::{StripeFailure, StripeGateway, TestCard};
use crate::clock::Clock;
use crate::entities::{jobs, organizations, regions, signups, tiers};
use crate::error::{Error, Result};
use crate::events::Change;
use crate::organizations::{NewOrganization, OrganizationService};

/// Signups one client may start per hour.
pub const SIGNUPS_PER_CLIENT_PER_HOUR: u64 = 5;

/// The actor of audit rows written for a customer signing up.
pub fn signup_actor(req: Option<&RequestInfo>, email: &str) -> Actor {
    Actor {
        user_id: None,
        email: format!("signup:{email}"),
        ip: req.and_then(|r| r.ip.clone()),
        user_agent: req.and_then(|r| r.user_agent.clone()),
    }
}

/// The refusal of a signup over the per-client limit.
fn too_many_signups() -> Error {
    Error::RateLimited("too many signups from this address; try again in an hour".to_owned())
}

/// The hash a token is stored and looked up by.
pub fn token_hash(token: &str) -> String {
    crate::clock::hex(&Sha256::digest(token.as_bytes()))
}

/// Signups.
#[derive(Clone)]
pub struct SignupService {
    /// Database pool.
    pub db: DatabaseConnection,
    /// Time source.
    pub clock: Clock,
    /// Creates the organization and applies its events.
    pub organizations: OrganizationService,
    /// Stripe (or its simulator).
    pub stripe: StripeGateway,
    /// How the browser takes the card.
    pub payment_form: PaymentForm,
    /// How long an unpaid signup is kept.
    pub expiry: Duration,
    /// `https` or `http`: the scheme of the instance URL `/pending` sends the customer to.
    pub instance_scheme: String,
    /// The configured price per tier, for tiers whose row has none.
    pub prices: crate::config::StripePrices,
}

fn stripe_unavailable(e: &StripeFailure) -> Error {
    tracing::warn!(error.detail = %e, "signup: Stripe call failed");
    Error::Unavailable("the payment provider could not be reached; please try again".to_owned())
}

impl SignupService {
    async fn find(&self, token: &str) -> Result<(signups::Model, organizations::Model)> {
        let not_found = || Error::NotFound("signup".to_owned());
        if token.len() != 64 || !token.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(not_found());
        }
        let signup = signups::Entity::find()
            .filter(signups::Column::TokenHash.eq(token_hash(token)))
            .one(&self.db)
            .await?
            .ok_or_else(not_found)?;
        let org = organizations::Entity::find_by_id(signup.organization_id)
            .one(&self.db)
            .await?
            .ok_or_else(not_found)?;
        Ok((signup, org))
    }

    /// The Stripe price of `tier`: its own, or the one configured for its code.
    fn price_of(&self, tier: &tiers::Model) -> Option<String> {
        tier.stripe_price_id
            .clone()
            .or_else(|| self.prices.for_tier(&tier.code).map(str::to_owned))
    }

    /// Tiers on sale (active, with a Stripe price), regions, and how the card is taken.
    pub async fn offer(&self) -> Result<SignupOffer> {
        let tiers = tiers::Entity::find()
            .filter(tiers::Column::Active.eq(true))
            .order_by_asc(tiers::Column::SortOrder)
            .all(&self.db)
            .await?
            .into_iter()
            .filter(|t| self.price_of(t).is_some())
            .map(|t| TierOffer {
                id: t.id,
                name: t.name,
                price: format!(
                    "{} / month",
                    app::models::Money {
                        cents: t.monthly_price_cents,
                        currency: t.currency,
                    }
                ),
                specs: format!(
                    "{} vCPU, {} GB RAM, {} GB disk",
                    t.vcpus, t.memory_gb, t.disk_gb
                ),
            })
            .collect();
        let regions = regions::Entity::find()
            .order_by_asc(regions::Column::SortOrder)
            .all(&self.db)
            .await?
            .into_iter()
            .map(|r| RegionOffer {
                code: r.code.to_string(),
                name: format!("{}, {}", r.location, r.country),
            })
            .collect();
        Ok(SignupOffer {
            tiers,
            regions,
            payment: self.payment_form.clone(),
            expiry_hours: u32::try_from(self.expiry.num_hours()).unwrap_or(24),
            base_domain: self.organizations.base_domain.clone(),
        })
    }

    /// Starts a signup: the `pending` organization and its signup row in one transaction, then
    /// the Stripe customer and subscription (idempotent by organization). If Stripe cannot be
    /// reached the organization is removed again, so the slug is not held by a dead signup.
    pub async fn start(&self, req: &RequestInfo, input: SignupInput) -> Result<SignupStarted> {
        let client_key =
            crate::admins::rate_limit::request_address(req).unwrap_or_else(|| "unknown".to_owned());
        let now = self.clock.now();
        // A cheap refusal before any work; the count that decides is taken again below, under
        // the lock, so a burst from one address cannot get past it.
        if self.recent_signups(&self.db, &client_key, now).await? >= SIGNUPS_PER_CLIENT_PER_HOUR {
            return Err(too_many_signups());
        }
        let tier = tiers::Entity::find_by_id(input.tier_id)
            .one(&self.db)
            .await?
            .filter(|t| t.active)
            .ok_or_else(|| Error::Validation {
                field: "tier",
                message: "choose one of the tiers on offer".to_owned(),
            })?;
        let price = self.price_of(&tier).ok_or_else(|| Error::Validation {
            field: "tier",
            message: "this tier cannot be bought online; contact us".to_owned(),
        })?;
        let actor = signup_actor(Some(req), input.owner_email.trim());
        let valid = self
            .organizations
            .validate(NewOrganization {
                name: input.name,
                slug: input.slug,
                owner_email: input.owner_email,
                tier_id: tier.id,
                region: input.region,
            })
            .await?;
        // 256 bits from the OS RNG: the token is the only key to a signup's page.
        let token = crate::clock::random_hex(32);
        let txn = self.db.begin().await?;
        // The first write: signups are created one at a time (the row lock on PostgreSQL, the
        // single writer on SQLite), so the count below sees every signup committed before.
        crate::db::lock_row(&txn, "lock.signups", now).await?;
        if self.recent_signups(&txn, &client_key, now).await? >= SIGNUPS_PER_CLIENT_PER_HOUR {
            return Err(too_many_signups());
        }
        let (org, _) = self
            .organizations
            .create_in(&txn, &actor, valid, false)
            .await?;
        signups::ActiveModel {
            organization_id: Set(org.id),
            token_hash: Set(token_hash(&token)),
            client_key: Set(client_key),
            stripe_invoice_id: Set(None),
            payment_state: Set(SignupPayment::AwaitingPayment),
            payment_error: Set(None),
            expires_at: Set(now + self.expiry),
            paid_at: Set(None),
            created_at: Set(now),
            updated_at: Set(now),
            ..Default::default()
        }
        .insert(&txn)
        .await?;
        txn.commit().await?;

        match self.subscribe(&org, &price).await {
            Ok(client_secret) => {
                self.organizations
                    .events
                    .publish(Change::Organization(org.id));
                Ok(SignupStarted {
                    token,
                    client_secret,
                })
            }
            Err(e) => {
                // Nothing was charged: take the signup back so its slug is free again.
                organizations::Entity::delete_by_id(org.id)
                    .exec(&self.db)
                    .await?;
                Err(stripe_unavailable(&e))
            }
        }
    }

    /// Signups started from `client_key` in the hour before `now`.
    async fn recent_signups<C: sea_orm::ConnectionTrait>(
        &self,
        conn: &C,
        client_key: &str,
        now: DateTime<Utc>,
    ) -> Result<u64> {
        Ok(signups::Entity::find()
            .filter(signups::Column::ClientKey.eq(client_key))
            .filter(signups::Column::CreatedAt.gt(now - Duration::hours(1)))
            .count(conn)
            .await?)
    }

    /// Creates the customer and subscription of `org` and stores their ids.
    async fn subscribe(
        &self,
        org: &organizations::Model,
        price: &str,
    ) -> std::result::Result<String, StripeFailure> {
        let customer = self
            .stripe
            .create_customer(org.id, org.owner_email.as_str(), &org.name)
            .await?;
        let subscription = self
            .stripe
            .create_subscription(org.id, &customer, price)
            .await?;
        let now = self.clock.now();
        let stored = async {
            let txn = self.db.begin().await?;
            organizations::Entity::update_many()
                .col_expr(
                    organizations::Column::StripeCustomerId,
                    Expr::value(customer.clone()),
                )
                .col_expr(
                    organizations::Column::StripeSubscriptionId,
                    Expr::value(subscription.subscription_id.clone()),
                )
                .col_expr(organizations::Column::UpdatedAt, Expr::value(now))
                .filter(organizations::Column::Id.eq(org.id))
                .exec(&txn)
                .await?;
            signups::Entity::update_many()
                .col_expr(
                    signups::Column::StripeInvoiceId,
                    Expr::value(subscription.invoice_id.clone()),
                )
                .col_expr(signups::Column::UpdatedAt, Expr::value(now))
                .filter(signups::Column::OrganizationId.eq(org.id))
                .exec(&txn)
                .await?;
            txn.commit().await?;
            Ok::<(), Error>(())
        }
        .await;
        stored.map_err(|e| StripeFailure::Unreachable(format!("could not store the ids: {e}")))?;
        Ok(subscription.client_secret)
    }

    /// What `/pending` shows for `token`.
    pub async fn status(&self, token: &str) -> Result<SignupStatus> {
        let (signup, org) = self.find(token).await?;
        let progress = jobs::Entity::find()
            .filter(jobs::Column::OrganizationId.eq(org.id))
            .filter(jobs::Column::Kind.eq(JobKind::Create))
            .order_by_desc(jobs::Column::Id)
            .one(&self.db)
            .await?
            .map(|j| app::components::job_progress::step_lines(&j.progress));
        let now = self.clock.now();
        Ok(SignupStatus {
            organization: org.name,
            status: org.status,
            payment: signup.payment_state,
            payment_error: signup.payment_error,
            progress,
            instance_url: (org.status == OrgStatus::Active).then(|| {
                format!(
                    "{}://{}.{}",
                    self.instance_scheme, org.slug, self.organizations.base_domain
                )
            }),
            payment_form: self.payment_form.clone(),
            expires_in_secs: (signup.payment_state != SignupPayment::Paid)
                .then(|| (signup.expires_at - now).num_seconds().max(0)),
        })
    }

    /// The client secret to retry the first payment with (after a decline).
    pub async fn payment_secret(&self, token: &str) -> Result<String> {
        let (signup, org) = self.find(token).await?;
        if signup.payment_state == SignupPayment::Paid {
            return Err(Error::Conflict("this signup is already paid".to_owned()));
        }
        let subscription = org
            .stripe_subscription_id
            .ok_or_else(|| Error::Conflict("this signup has no subscription".to_owned()))?;
        let (_, secret) = self
            .stripe
            .payment_secret(&subscription)
            .await
            .map_err(|e| stripe_unavailable(&e))?;
        Ok(secret)
    }

    /// Simulator mode only: pays the first invoice with one of the stand-in form's test cards.
    /// A decline is recorded and returned as the card field's error; a success changes nothing
    /// here — Stripe's `invoice.paid` webhook starts the provisioning.
    pub async fn pay_with_test_card(&self, token: &str, card: &str) -> Result<()> {
        if self.payment_form != PaymentForm::Simulated {
            return Err(Error::NotFound("test payments".to_owned()));
        }
        let digits: String = card.chars().filter(|c| !c.is_whitespace()).collect();
        let card = match digits.as_str() {
            "4242424242424242" => TestCard::Visa,
            "4000000000000002" => TestCard::Declined,
            _ => {
                return Err(Error::Validation {
                    field: "card",
                    message: format!(
                        "use a test card: {} (succeeds) or {} (declined)",
                        app::models::test_cards::SUCCEEDS,
                        app::models::test_cards::DECLINED
                    ),
                });
            }
        };
        let secret = self.payment_secret(token).await?;
        let attempt = crate::clock::random_hex(8);
        match self
            .stripe
            .confirm_with_test_card(&secret, card, &attempt)
            .await
        {
            Ok(()) => Ok(()),
            Err(StripeFailure::Declined(message)) => {
                let (signup, _) = self.find(token).await?;
                self.record_decline(&signup, &message).await?;
                Err(Error::Validation {
                    field: "card",
                    message,
                })
            }
            Err(e) => Err(stripe_unavailable(&e)),
        }
    }

    /// Stores a decline's message on the signup (the webhook moves the organization).
    async fn record_decline(&self, signup: &signups::Model, message: &str) -> Result<()> {
        if let Some(next) = signup.payment_state.after(PaymentOutcome::Failed) {
            signups::Entity::update_many()
                .col_expr(signups::Column::PaymentState, Expr::value(next))
                .col_expr(
                    signups::Column::PaymentError,
                    Expr::value(message.chars().take(500).collect::<String>()),
                )
                .col_expr(signups::Column::UpdatedAt, Expr::value(self.clock.now()))
                .filter(signups::Column::Id.eq(signup.id))
                .filter(signups::Column::PaymentState.eq(signup.payment_state))
                .exec(&self.db)
                .await?;
            self.organizations
                .events
                .publish(Change::Organization(signup.organization_id));
        }
        Ok(())
    }
}

#[async_trait::async_trait]
impl app::backend::SignupBackend for SignupService {
    async fn offer(&self) -> std::result::Result<SignupOffer, AppError> {
        Ok(SignupService::offer(self).await?)
    }

    async fn start(
        &self,
        req: &RequestInfo,
        input: SignupInput,
    ) -> std::result::Result<SignupStarted, AppError> {
        Ok(SignupService::start(self, req, input).await?)
    }

    async fn status(&self, token: String) -> std::result::Result<SignupStatus, AppError> {
        Ok(SignupService::status(self, &token).await?)
    }

    async fn payment_secret(&self, token: String) -> std::result::Result<String, AppError> {
        Ok(SignupService::payment_secret(self, &token).await?)
    }

    async fn pay_with_test_card(
        &self,
        token: String,
        card: String,
    ) -> std::result::Result<(), AppError> {
        Ok(SignupService::pay_with_test_card(self, &token, &card).await?)
    }
}
