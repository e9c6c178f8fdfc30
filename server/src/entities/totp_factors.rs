//! `totp_factors`: an admin's TOTP authenticator; the secret is sealed (AES-256-GCM).

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "totp_factors")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub user_id: i64,
    /// The sealed secret (with its GCM tag).
    pub secret_ciphertext: Vec<u8>,
    pub secret_nonce: Vec<u8>,
    /// Which key sealed it.
    pub secret_key_id: String,
    /// `None` while enrolment awaits its first code.
    pub confirmed_at: Option<DateTimeUtc>,
    /// The last accepted time step (each code is accepted once).
    pub last_step: Option<i64>,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
