//! Pricing tiers: create, edit, activate/deactivate, delete when unused. Prices are integer
//! cents with a currency; changing a price never rewrites existing invoices (they store their
//! own amount).

use app::backend::{RequestInfo, TiersBackend};
use app::error::AppError;
use app::models::{
    AdminIdentity, Change, Currency, OrgStatus, ServerType, TierDetail, TierInput, TierOption,
    parse_price_cents,
};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, DatabaseConnection, EntityTrait,
    PaginatorTrait, QueryFilter, TransactionTrait,
};
use serde_json::json;

use crate::audit::{self, Actor};
use crate::clock::Clock;
use crate::entities::{organizations, tiers};
use crate::error::{Error, Result};

/// Tier service.
#[derive(Clone)]
pub struct TierService {
    /// Database pool.
    pub db: DatabaseConnection,
    /// Time source.
    pub clock: Clock,
    /// Where open pages hear that the tiers changed.
    pub events: crate::events::Events,
}

fn small_number(field: &'static str, text: &str, max: i32) -> Result<i32> {
    text.trim()
        .parse::<i32>()
        .ok()
        .filter(|n| (1..=max).contains(n))
        .ok_or_else(|| Error::invalid(field, format!("must be a whole number from 1 to {max}")))
}

/// A validated tier input.
struct Valid {
    name: String,
    server_type: ServerType,
    vcpus: i32,
    memory_gb: i32,
    disk_gb: i32,
    cents: i64,
    currency: Currency,
    stripe_price_id: Option<String>,
}

fn validate(input: &TierInput) -> Result<Valid> {
    let name = input.name.trim().to_owned();
    if name.is_empty() || name.chars().count() > 64 {
        return Err(Error::invalid("name", "must be 1 to 64 characters"));
    }
    let server_type = input
        .server_type
        .trim()
        .parse()
        .map_err(|e: app::models::ParseError| Error::invalid("server_type", e.to_string()))?;
    let cents =
        parse_price_cents(&input.monthly_price).map_err(|m| Error::invalid("monthly_price", m))?;
    let currency = input
        .currency
        .trim()
        .to_uppercase()
        .parse()
        .map_err(|e: app::models::ParseError| Error::invalid("currency", e.to_string()))?;
    let stripe = input.stripe_price_id.trim();
    let stripe_price_id = if stripe.is_empty() {
        None
    } else if stripe.starts_with("price_") && stripe.len() <= 255 {
        Some(stripe.to_owned())
    } else {
        return Err(Error::invalid("stripe_price_id", "must start with price_"));
    };
    Ok(Valid {
        name,
        server_type,
        vcpus: small_number("vcpus", &input.vcpus, 256)?,
        memory_gb: small_number("memory_gb", &input.memory_gb, 4096)?,
        disk_gb: small_number("disk_gb", &input.disk_gb, 100_000)?,
        cents,
        currency,
        stripe_price_id,
    })
}

fn duplicate_name(e: sea_orm::DbErr) -> Error {
    match Error::from(e) {
        Error::Duplicate(_) => Error::invalid("name", "another tier already has this name or code"),
        other => other,
    }
}

impl TierService {
    async fn in_use(&self, id: i64) -> Result<u64> {
        Ok(organizations::Entity::find()
            .filter(organizations::Column::TierId.eq(id))
            .filter(organizations::Column::Status.ne(OrgStatus::Deleted))
            .count(&self.db)
            .await?)
    }

    async fn save_inner(&self, actor: &Actor, id: Option<i64>, input: TierInput) -> Result<i64> {
        let v = validate(&input)?;
        let now = self.clock.now();
        let txn = self.db.begin().await?;
        let (model, action, before) = match id {
            None => {
                let code = input.code.trim().to_lowercase();
                let ok = (2..=32).contains(&code.len())
                    && code
                        .bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
                if !ok {
                    return Err(Error::invalid(
                        "code",
                        "must be 2 to 32 lowercase letters, digits or hyphens",
                    ));
                }
                let max_order = tiers::Entity::find().count(&txn).await?;
                let model = tiers::ActiveModel {
                    code: Set(code),
                    name: Set(v.name),
                    server_type: Set(v.server_type),
                    vcpus: Set(v.vcpus),
                    memory_gb: Set(v.memory_gb),
                    disk_gb: Set(v.disk_gb),
                    monthly_price_cents: Set(v.cents),
                    currency: Set(v.currency),
                    stripe_price_id: Set(v.stripe_price_id),
                    active: Set(true),
                    sort_order: Set(i32::try_from(max_order).unwrap_or(i32::MAX)),
                    created_at: Set(now),
                    updated_at: Set(now),
                    ..Default::default()
                }
                .insert(&txn)
                .await
                .map_err(duplicate_name)?;
                (model, "tier.created", None)
            }
            Some(id) => {
                let existing = tiers::Entity::find_by_id(id)
                    .one(&txn)
                    .await?
                    .ok_or_else(|| Error::NotFound("tier".to_owned()))?;
                let before = json!({"name": existing.name, "server_type": existing.server_type, "monthly_price_cents": existing.monthly_price_cents, "currency": existing.currency});
                let mut active: tiers::ActiveModel = existing.into();
                active.name = Set(v.name);
                active.server_type = Set(v.server_type);
                active.vcpus = Set(v.vcpus);
                active.memory_gb = Set(v.memory_gb);
                active.disk_gb = Set(v.disk_gb);
                active.monthly_price_cents = Set(v.cents);
                active.currency = Set(v.currency);
                active.stripe_price_id = Set(v.stripe_price_id);
                active.updated_at = Set(now);
                (
                    active.update(&txn).await.map_err(duplicate_name)?,
                    "tier.updated",
                    Some(before),
                )
            }
        };
        let after = json!({"name": model.name, "server_type": model.server_type, "monthly_price_cents": model.monthly_price_cents, "currency": model.currency});
        audit::record(
            &txn,
            actor,
            action,
            ("tier", Some(model.id.to_string())),
            json!({"before": before, "after": after}),
            now,
        )
        .await?;
        txn.commit().await?;
        Ok(model.id)
    }

    async fn set_active_inner(&self, actor: &Actor, id: i64, active_flag: bool) -> Result<()> {
        let now = self.clock.now();
        let txn = self.db.begin().await?;
        let tier = tiers::Entity::find_by_id(id)
            .one(&txn)
            .await?
            .ok_or_else(|| Error::NotFound("tier".to_owned()))?;
        if tier.active == active_flag {
            return Err(Error::Conflict(format!(
                "the tier is already {}",
                if active_flag { "active" } else { "inactive" }
            )));
        }
        let mut active: tiers::ActiveModel = tier.into();
        active.active = Set(active_flag);
        active.updated_at = Set(now);
        active.update(&txn).await?;
        let action = if active_flag {
            "tier.activated"
        } else {
            "tier.deactivated"
        };
        audit::record(
            &txn,
            actor,
            action,
            ("tier", Some(id.to_string())),
            json!({}),
            now,
        )
        .await?;
        txn.commit().await?;
        Ok(())
    }

    async fn delete_inner(&self, actor: &Actor, id: i64) -> Result<()> {
        let now = self.clock.now();
        let txn = self.db.begin().await?;
        let tier = tiers::Entity::find_by_id(id)
            .one(&txn)
            .await?
            .ok_or_else(|| Error::NotFound("tier".to_owned()))?;
        let used = organizations::Entity::find()
            .filter(organizations::Column::TierId.eq(id))
            .count(&txn)
            .await?;
        if used > 0 {
            return Err(Error::Conflict(format!(
                "{used} organization(s) use this tier: deactivate it instead"
            )));
        }
        tiers::Entity::delete_by_id(id)
            .exec(&txn)
            .await
            .map_err(|e| match Error::from(e) {
                Error::Reference(_) => {
                    Error::Conflict("organizations use this tier: deactivate it instead".to_owned())
                }
                other => other,
            })?;
        audit::record(
            &txn,
            actor,
            "tier.deleted",
            ("tier", Some(id.to_string())),
            json!({"name": tier.name, "code": tier.code}),
            now,
        )
        .await?;
        txn.commit().await?;
        Ok(())
    }
}

#[async_trait::async_trait]
impl TiersBackend for TierService {
    async fn list(&self) -> Result<Vec<(TierOption, TierDetail)>, AppError> {
        let options = crate::organizations::queries::tier_options(&self.db).await?;
        let mut out = Vec::with_capacity(options.len());
        for option in options {
            let tier = tiers::Entity::find_by_id(option.id)
                .one(&self.db)
                .await
                .map_err(Error::from)?;
            let Some(tier) = tier else { continue };
            let organizations = self.in_use(tier.id).await?;
            out.push((
                option,
                TierDetail {
                    vcpus: tier.vcpus,
                    memory_gb: tier.memory_gb,
                    disk_gb: tier.disk_gb,
                    stripe_price_id: tier.stripe_price_id,
                    organizations,
                },
            ));
        }
        Ok(out)
    }

    async fn save(
        &self,
        actor: &AdminIdentity,
        req: &RequestInfo,
        id: Option<i64>,
        input: TierInput,
    ) -> Result<i64, AppError> {
        crate::admins::require_superadmin(actor)?;
        let id = self
            .save_inner(
                &Actor::new(req, Some(actor.user_id), &actor.email),
                id,
                input,
            )
            .await?;
        self.events.publish(Change::Tiers);
        Ok(id)
    }

    async fn set_active(
        &self,
        actor: &AdminIdentity,
        req: &RequestInfo,
        id: i64,
        active: bool,
    ) -> Result<(), AppError> {
        crate::admins::require_superadmin(actor)?;
        self.set_active_inner(
            &Actor::new(req, Some(actor.user_id), &actor.email),
            id,
            active,
        )
        .await?;
        self.events.publish(Change::Tiers);
        Ok(())
    }

    async fn delete(
        &self,
        actor: &AdminIdentity,
        req: &RequestInfo,
        id: i64,
    ) -> Result<(), AppError> {
        crate::admins::require_superadmin(actor)?;
        self.delete_inner(&Actor::new(req, Some(actor.user_id), &actor.email), id)
            .await?;
        self.events.publish(Change::Tiers);
        Ok(())
    }
}
