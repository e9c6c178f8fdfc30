//! `signups`: one per organization created from `/signup` (token hash, first payment, expiry).

use app::models::SignupPayment;
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "signups")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    #[sea_orm(unique)]
    pub organization_id: i64,
    /// SHA-256 of the `/pending` token, hex: the token itself is never stored.
    #[sea_orm(unique)]
    pub token_hash: String,
    /// The client address (IPv6: its /64), for the per-client limit.
    pub client_key: String,
    /// Stripe's first invoice of the subscription.
    pub stripe_invoice_id: Option<String>,
    pub payment_state: SignupPayment,
    /// The last decline message.
    pub payment_error: Option<String>,
    pub expires_at: DateTimeUtc,
    pub paid_at: Option<DateTimeUtc>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
