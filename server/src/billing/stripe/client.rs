//! `StripeGateway`: the one client Nest talks to Stripe through (async-stripe), pointed at
//! Stripe or, without `STRIPE_SECRET_KEY`, at the simulator's base URL. Every POST carries an
//! idempotency key derived from Nest's own ids, so a retried call never makes a second
//! customer, subscription or charge.

use std::collections::HashMap;

use ::stripe::{
    Client, ClientBuilder, IdempotencyKey, RequestStrategy, StripeError, StripeRequest,
};
use stripe_billing::invoice::{
    CreatePreviewInvoice, CreatePreviewInvoiceSubscriptionDetails,
    CreatePreviewInvoiceSubscriptionDetailsItems,
    CreatePreviewInvoiceSubscriptionDetailsProrationBehavior,
};
use stripe_billing::subscription::{
    CancelSubscription, CreateSubscription, CreateSubscriptionItems,
    CreateSubscriptionPaymentBehavior, CreateSubscriptionPaymentSettings,
    CreateSubscriptionPaymentSettingsSaveDefaultPaymentMethod, ListSubscription,
    ListSubscriptionStatus, RetrieveSubscription, UpdateSubscription, UpdateSubscriptionItems,
    UpdateSubscriptionProrationBehavior,
};
use stripe_core::customer::CreateCustomer;
use stripe_core::payment_intent::ConfirmPaymentIntent;
use stripe_types::Expandable;

/// A failed call to Stripe, with one meaning per variant.
#[derive(Debug, thiserror::Error)]
pub enum StripeFailure {
    /// The card was declined (Stripe's `card_error`); the message is the issuer's, safe to show.
    #[error("{0}")]
    Declined(String),
    /// Stripe refused the request (an `invalid_request_error` and the like).
    #[error("Stripe refused the request: {0}")]
    Refused(String),
    /// Stripe could not be reached or answered something unreadable.
    #[error("Stripe is unreachable: {0}")]
    Unreachable(String),
    /// Stripe's answer lacks something Nest needs (e.g. the client secret).
    #[error("Stripe's answer lacks {0}")]
    Incomplete(&'static str),
}

impl From<StripeError> for StripeFailure {
    fn from(e: StripeError) -> Self {
        match e {
            StripeError::Stripe(api, _status)
                if matches!(api.type_, stripe_shared::ApiErrorsType::CardError) =>
            {
                Self::Declined(
                    api.message
                        .unwrap_or_else(|| "Your card was declined.".to_owned()),
                )
            }
            // Rate-limited or failing on Stripe's side: another attempt may succeed.
            StripeError::Stripe(api, status) if status == 429 || status >= 500 => {
                Self::Unreachable(format!(
                    "{} (HTTP {status})",
                    api.message.unwrap_or_else(|| "no message".to_owned())
                ))
            }
            StripeError::Stripe(api, status) => Self::Refused(format!(
                "{} (HTTP {status})",
                api.message.unwrap_or_else(|| "no message".to_owned())
            )),
            other => Self::Unreachable(other.to_string()),
        }
    }
}

/// The subscription of a new signup, waiting for its first payment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewSubscription {
    /// `sub_…`.
    pub subscription_id: String,
    /// The first invoice, `in_…`.
    pub invoice_id: String,
    /// What Stripe.js confirms the payment with (`latest_invoice.confirmation_secret`).
    pub client_secret: String,
}

/// What Nest needs of a subscription's current state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SubscriptionState {
    /// It will end at the end of the current period.
    pub cancel_at_period_end: bool,
    /// It has ended (`canceled`, or `incomplete_expired`).
    pub ended: bool,
}

/// A subscription as reconciliation compares it with the database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscriptionSummary {
    /// `sub_…`.
    pub id: String,
    /// `cus_…`.
    pub customer: String,
    /// Stripe's status: `active`, `past_due`, `canceled`, `incomplete`, …
    pub status: String,
    /// Its first item's price (Nest's subscriptions have one item: the tier's).
    pub price: Option<String>,
    /// `metadata.nest_organization_id`, set by Nest when it created the subscription.
    pub organization_id: Option<i64>,
}

impl SubscriptionSummary {
    /// Whether it can still charge its customer.
    pub fn is_live(&self) -> bool {
        matches!(
            self.status.as_str(),
            "active" | "past_due" | "trialing" | "unpaid" | "paused"
        )
    }
}

/// Subscriptions asked for per page of `GET /v1/subscriptions` (Stripe's largest).
const LIST_PAGE: i64 = 100;

/// Stripe's upcoming-invoice preview of a price change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PricePreview {
    /// What the next invoice will ask for, in minor units.
    pub amount_due: i64,
    /// Lower-case ISO currency.
    pub currency: String,
    /// Its lines (proration credit and charge, the next period), with their amounts.
    pub lines: Vec<(String, i64)>,
}

/// A test card of the stand-in form, as the payment method Stripe's test mode knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TestCard {
    /// `pm_card_visa`: succeeds.
    Visa,
    /// `pm_card_chargeDeclined`: declined.
    Declined,
}

impl TestCard {
    fn payment_method(self) -> &'static str {
        match self {
            Self::Visa => "pm_card_visa",
            Self::Declined => "pm_card_chargeDeclined",
        }
    }
}

/// The client. Cheap to clone.
#[derive(Clone)]
pub struct StripeGateway {
    client: Client,
}

impl std::fmt::Debug for StripeGateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StripeGateway")
    }
}

fn key(parts: &[&str]) -> RequestStrategy {
    let joined = format!("nest-{}", parts.join("-"));
    match IdempotencyKey::new(&joined) {
        Ok(key) => RequestStrategy::Idempotent(key),
        // Keys are short ids joined; an impossible empty or over-long key falls back to once.
        Err(_) => RequestStrategy::Once,
    }
}

impl StripeGateway {
    /// A client for `secret_key`, talking to `base_url` (Stripe's, or the simulator's, with a
    /// trailing slash).
    pub fn new(secret_key: &str, base_url: &str) -> Result<Self, StripeFailure> {
        let mut url = base_url.to_owned();
        if !url.ends_with('/') {
            url.push('/');
        }
        let client = ClientBuilder::new(secret_key)
            .url(url)
            .timeout(std::time::Duration::from_secs(20))
            .build()
            .map_err(|e| StripeFailure::Unreachable(e.to_string()))?;
        Ok(Self { client })
    }

    /// Creates the customer of organization `org_id` (idempotent per organization).
    pub async fn create_customer(
        &self,
        org_id: i64,
        email: &str,
        name: &str,
    ) -> Result<String, StripeFailure> {
        let metadata = HashMap::from([("nest_organization_id".to_owned(), org_id.to_string())]);
        let customer = CreateCustomer::new()
            .email(email)
            .name(name)
            .metadata(metadata)
            .customize()
            .request_strategy(key(&["org", &org_id.to_string(), "customer"]))
            .send(&self.client)
            .await?;
        Ok(customer.id.to_string())
    }

    /// Creates the subscription (`default_incomplete`: the first invoice waits for the card)
    /// and returns its client secret (idempotent per organization).
    pub async fn create_subscription(
        &self,
        org_id: i64,
        customer_id: &str,
        price_id: &str,
    ) -> Result<NewSubscription, StripeFailure> {
        let mut item = CreateSubscriptionItems::new();
        item.price = Some(price_id.to_owned());
        let mut settings = CreateSubscriptionPaymentSettings::new();
        settings.save_default_payment_method =
            Some(CreateSubscriptionPaymentSettingsSaveDefaultPaymentMethod::OnSubscription);
        let metadata = HashMap::from([("nest_organization_id".to_owned(), org_id.to_string())]);
        let subscription = CreateSubscription::new()
            .customer(customer_id)
            .items(vec![item])
            .payment_behavior(CreateSubscriptionPaymentBehavior::DefaultIncomplete)
            .payment_settings(settings)
            .metadata(metadata)
            .expand(vec!["latest_invoice.confirmation_secret".to_owned()])
            .customize()
            .request_strategy(key(&["org", &org_id.to_string(), "subscription"]))
            .send(&self.client)
            .await?;
        let (invoice_id, client_secret) = first_invoice_secret(subscription.latest_invoice)?;
        Ok(NewSubscription {
            subscription_id: subscription.id.to_string(),
            invoice_id,
            client_secret,
        })
    }

    /// The client secret of the subscription's latest invoice (to retry a declined payment).
    pub async fn payment_secret(
        &self,
        subscription_id: &str,
    ) -> Result<(String, String), StripeFailure> {
        let subscription = RetrieveSubscription::new(subscription_id)
            .expand(vec!["latest_invoice.confirmation_secret".to_owned()])
            .send(&self.client)
            .await?;
        first_invoice_secret(subscription.latest_invoice)
    }

    /// The subscription's current state (webhooks act on this, not on an event's snapshot).
    pub async fn subscription_state(
        &self,
        subscription_id: &str,
    ) -> Result<SubscriptionState, StripeFailure> {
        self.subscription_state_if_any(subscription_id)
            .await?
            .ok_or_else(|| {
                StripeFailure::Refused(format!("no such subscription: {subscription_id}"))
            })
    }

    /// The subscription's current state; `None` when Stripe has no such subscription.
    pub async fn subscription_state_if_any(
        &self,
        subscription_id: &str,
    ) -> Result<Option<SubscriptionState>, StripeFailure> {
        use stripe_shared::SubscriptionStatus as S;
        let subscription = match RetrieveSubscription::new(subscription_id)
            .send(&self.client)
            .await
        {
            Ok(subscription) => subscription,
            Err(StripeError::Stripe(_, 404)) => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        Ok(Some(SubscriptionState {
            cancel_at_period_end: subscription.cancel_at_period_end,
            ended: matches!(subscription.status, S::Canceled | S::IncompleteExpired),
        }))
    }

    /// The first item of a subscription (Nest's subscriptions have one: the tier's price).
    async fn first_item(&self, subscription_id: &str) -> Result<String, StripeFailure> {
        let subscription = RetrieveSubscription::new(subscription_id)
            .send(&self.client)
            .await?;
        subscription
            .items
            .data
            .first()
            .map(|item| item.id.to_string())
            .ok_or(StripeFailure::Incomplete("a subscription item"))
    }

    /// What moving the subscription to `new_price` now would invoice (prorated).
    pub async fn preview_price_change(
        &self,
        subscription_id: &str,
        new_price: &str,
    ) -> Result<PricePreview, StripeFailure> {
        let item_id = self.first_item(subscription_id).await?;
        let mut item = CreatePreviewInvoiceSubscriptionDetailsItems::new();
        item.id = Some(item_id);
        item.price = Some(new_price.to_owned());
        let mut details = CreatePreviewInvoiceSubscriptionDetails::new();
        details.items = Some(vec![item]);
        details.proration_behavior =
            Some(CreatePreviewInvoiceSubscriptionDetailsProrationBehavior::CreateProrations);
        let preview = CreatePreviewInvoice::new()
            .subscription(subscription_id)
            .subscription_details(details)
            .send(&self.client)
            .await?;
        Ok(PricePreview {
            amount_due: preview.amount_due,
            currency: preview.currency.to_string(),
            lines: preview
                .lines
                .data
                .into_iter()
                .map(|line| (line.description.unwrap_or_default(), line.amount))
                .collect(),
        })
    }

    /// Moves the subscription to `new_price` with prorations (idempotent per organization and
    /// change: `change` names it, e.g. `tier-2-to-3`).
    pub async fn change_price(
        &self,
        org_id: i64,
        subscription_id: &str,
        new_price: &str,
        change: &str,
    ) -> Result<(), StripeFailure> {
        let item_id = self.first_item(subscription_id).await?;
        let mut item = UpdateSubscriptionItems::new();
        item.id = Some(item_id);
        item.price = Some(new_price.to_owned());
        UpdateSubscription::new(subscription_id)
            .items(vec![item])
            .proration_behavior(UpdateSubscriptionProrationBehavior::CreateProrations)
            .customize()
            .request_strategy(key(&["org", &org_id.to_string(), change]))
            .send(&self.client)
            .await?;
        Ok(())
    }

    /// Confirms a payment with one of Stripe's test cards (the stand-in form; Stripe.js does
    /// this in the browser with real cards). `attempt` makes each try its own idempotent call.
    pub async fn confirm_with_test_card(
        &self,
        client_secret: &str,
        card: TestCard,
        attempt: &str,
    ) -> Result<(), StripeFailure> {
        let intent = client_secret
            .split_once("_secret_")
            .map(|(id, _)| id)
            .ok_or(StripeFailure::Incomplete(
                "a payment intent in the client secret",
            ))?;
        ConfirmPaymentIntent::new(intent)
            .payment_method(card.payment_method())
            .customize()
            .request_strategy(key(&["confirm", intent, attempt]))
            .send(&self.client)
            .await?;
        Ok(())
    }

    /// Every subscription of the account, whatever its status, page by page (newest first).
    pub async fn list_subscriptions(&self) -> Result<Vec<SubscriptionSummary>, StripeFailure> {
        let mut all = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let mut request = ListSubscription::new()
                .status(ListSubscriptionStatus::All)
                .limit(LIST_PAGE);
            if let Some(last) = &after {
                request = request.starting_after(last.clone());
            }
            let page = request.send(&self.client).await?;
            after = page.data.last().map(|s| s.id.to_string());
            all.extend(page.data.into_iter().map(|s| {
                SubscriptionSummary {
                    id: s.id.to_string(),
                    customer: s.customer.id().to_string(),
                    status: s.status.as_str().to_owned(),
                    price: s.items.data.first().map(|item| item.price.id.to_string()),
                    organization_id: s
                        .metadata
                        .get("nest_organization_id")
                        .and_then(|id| id.parse().ok()),
                }
            }));
            if !page.has_more || after.is_none() {
                return Ok(all);
            }
        }
    }

    /// Cancels a subscription now (an unpaid signup that expired). Cancelling one Stripe has
    /// already ended is not an error.
    pub async fn cancel_subscription(&self, subscription_id: &str) -> Result<(), StripeFailure> {
        match CancelSubscription::new(subscription_id)
            .send(&self.client)
            .await
        {
            Ok(_) => Ok(()),
            Err(StripeError::Stripe(api, 404)) => {
                tracing::info!(stripe.subscription = subscription_id, detail = ?api.message, "subscription already gone");
                Ok(())
            }
            Err(e) => Err(e.into()),
        }
    }
}

fn first_invoice_secret(
    latest: Option<Expandable<stripe_shared::Invoice>>,
) -> Result<(String, String), StripeFailure> {
    let Some(Expandable::Object(invoice)) = latest else {
        return Err(StripeFailure::Incomplete("the latest invoice"));
    };
    let invoice_id = invoice
        .id
        .as_ref()
        .map(|id| id.to_string())
        .ok_or(StripeFailure::Incomplete("the invoice id"))?;
    let secret =
        invoice
            .confirmation_secret
            .map(|s| s.client_secret)
            .ok_or(StripeFailure::Incomplete(
                "latest_invoice.confirmation_secret",
            ))?;
    Ok((invoice_id, secret))
}
