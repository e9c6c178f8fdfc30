//! `vpses`: Hetzner servers, one per organization at a time; secrets are stored encrypted.

use app::models::{Region, ServerType, VpsStatus};
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "vpses")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub organization_id: i64,
    /// Deterministic server name, unique at Hetzner (lets a retried `create` find its server).
    #[sea_orm(unique)]
    pub name: String,
    #[sea_orm(unique)]
    pub hetzner_server_id: Option<i64>,
    pub server_type: ServerType,
    pub region: Region,
    pub ipv4: Option<String>,
    pub status: VpsStatus,
    /// AES-256-GCM ciphertext of the four per-VPS secrets.
    pub secrets_ciphertext: Option<Vec<u8>>,
    pub secrets_nonce: Option<Vec<u8>>,
    /// Which key encrypted the secrets (for rotation).
    pub secrets_key_id: Option<String>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
    pub deleted_at: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(
        belongs_to = "super::organizations::Entity",
        from = "Column::OrganizationId",
        to = "super::organizations::Column::Id"
    )]
    Organization,
}

impl Related<super::organizations::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Organization.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
