//! Every entity round-trips on SQLite and PostgreSQL; constraints reject bad writes with typed
//! errors; the reference data is seeded idempotently.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use app::models::*;
use chrono::{DateTime, NaiveDate, SubsecRound, Utc};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, DatabaseConnection, EntityTrait,
    PaginatorTrait, QueryFilter,
};
use serde_json::json;
use server::entities::*;
use server::error::Error;

/// Now, at the precision both databases keep (microseconds).
fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(6)
}

async fn starter_tier(db: &DatabaseConnection) -> tiers::Model {
    tiers::Entity::find()
        .filter(tiers::Column::Code.eq("starter"))
        .one(db)
        .await
        .unwrap()
        .unwrap()
}

async fn new_user(db: &DatabaseConnection, email: &str) -> users::Model {
    users::ActiveModel {
        email: Set(email.parse().unwrap()),
        password_hash: Set(Some(
            "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".to_owned(),
        )),
        created_at: Set(now()),
        updated_at: Set(now()),
        last_login_at: Set(None),
        ..Default::default()
    }
    .insert(db)
    .await
    .unwrap()
}

fn org_model(tier_id: i64, slug: &str) -> organizations::ActiveModel {
    organizations::ActiveModel {
        name: Set("Acme Inc.".to_owned()),
        slug: Set(slug.parse().unwrap()),
        owner_email: Set("owner@acme.test".parse().unwrap()),
        tier_id: Set(tier_id),
        region: Set(Region::Hel1),
        status: Set(OrgStatus::Pending),
        status_reason: Set(None),
        status_changed_at: Set(now()),
        stripe_customer_id: Set(None),
        stripe_subscription_id: Set(None),
        created_at: Set(now()),
        updated_at: Set(now()),
        ..Default::default()
    }
}

async fn every_entity_round_trips(db: &DatabaseConnection) {
    let t = now();
    let user = new_user(db, "ops@nest.test").await;
    assert_eq!(
        users::Entity::find_by_id(user.id).one(db).await.unwrap(),
        Some(user.clone())
    );

    let admin = platform_admins::ActiveModel {
        user_id: Set(user.id),
        role: Set(AdminRole::Superadmin),
        created_by_user_id: Set(None),
        created_at: Set(t),
        updated_at: Set(t),
        ..Default::default()
    }
    .insert(db)
    .await
    .unwrap();
    assert_eq!(
        platform_admins::Entity::find_by_id(admin.id)
            .one(db)
            .await
            .unwrap(),
        Some(admin)
    );

    let session = sessions::ActiveModel {
        id: Set("c2Vzc2lvbi1pZA".to_owned()),
        user_id: Set(Some(user.id)),
        data: Set(r#"{"user_id":1}"#.to_owned()),
        expires_at: Set(t),
        created_at: Set(t),
    }
    .insert(db)
    .await
    .unwrap();
    assert_eq!(
        sessions::Entity::find_by_id(session.id.clone())
            .one(db)
            .await
            .unwrap(),
        Some(session)
    );

    let attempt = login_attempts::ActiveModel {
        email: Set("ops@nest.test".to_owned()),
        ip: Set(Some("127.0.0.1".to_owned())),
        succeeded: Set(false),
        attempted_at: Set(t),
        ..Default::default()
    }
    .insert(db)
    .await
    .unwrap();
    assert_eq!(
        login_attempts::Entity::find_by_id(attempt.id)
            .one(db)
            .await
            .unwrap(),
        Some(attempt)
    );

    let token = user_tokens::ActiveModel {
        user_id: Set(user.id),
        token_hash: Set("ab".repeat(32)),
        purpose: Set("set_password".to_owned()),
        expires_at: Set(t),
        used_at: Set(None),
        created_at: Set(t),
        ..Default::default()
    }
    .insert(db)
    .await
    .unwrap();
    assert_eq!(
        user_tokens::Entity::find_by_id(token.id)
            .one(db)
            .await
            .unwrap(),
        Some(token)
    );

    let region = regions::Entity::find_by_id(Region::Nbg1)
        .one(db)
        .await
        .unwrap()
        .unwrap();
    assert!(region.is_default);
    assert_eq!(region.continent, Continent::Eu);

    let tier = starter_tier(db).await;
    assert_eq!(tier.server_type.as_str(), "cx22");
    assert_eq!(tier.monthly_price_cents, 2_800);
    assert_eq!(tier.currency, Currency::eur());

    let org = org_model(tier.id, "acme").insert(db).await.unwrap();
    assert_eq!(
        organizations::Entity::find_by_id(org.id)
            .one(db)
            .await
            .unwrap(),
        Some(org.clone())
    );

    let vps = vpses::ActiveModel {
        organization_id: Set(org.id),
        name: Set("nest-acme-1".to_owned()),
        hetzner_server_id: Set(Some(4_711)),
        server_type: Set("cx22".parse().unwrap()),
        region: Set(Region::Hel1),
        ipv4: Set(Some("127.0.0.2".to_owned())),
        status: Set(VpsStatus::Running),
        secrets_ciphertext: Set(Some(vec![0, 1, 2, 255])),
        secrets_nonce: Set(Some(vec![9; 12])),
        secrets_key_id: Set(Some("k1".to_owned())),
        created_at: Set(t),
        updated_at: Set(t),
        deleted_at: Set(None),
        ..Default::default()
    }
    .insert(db)
    .await
    .unwrap();
    assert_eq!(
        vpses::Entity::find_by_id(vps.id).one(db).await.unwrap(),
        Some(vps.clone())
    );

    let job = jobs::ActiveModel {
        kind: Set(JobKind::Resize),
        queue_key: Set(Some(format!("org:{}", org.id))),
        unique_key: Set(None),
        organization_id: Set(Some(org.id)),
        state: Set(JobState::Queued),
        attempts: Set(0),
        max_attempts: Set(5),
        run_after: Set(t),
        lease_owner: Set(None),
        lease_token: Set(None),
        lease_expires_at: Set(None),
        progress: Set(JobProgress::default()),
        payload: Set(JobPayload::Resize {
            organization_id: org.id,
            server_type: "cx32".parse().unwrap(),
        }),
        last_error: Set(None),
        created_at: Set(t),
        started_at: Set(None),
        finished_at: Set(None),
        updated_at: Set(t),
        ..Default::default()
    }
    .insert(db)
    .await
    .unwrap();
    assert_eq!(
        jobs::Entity::find_by_id(job.id).one(db).await.unwrap(),
        Some(job)
    );

    let check = health_checks::ActiveModel {
        vps_id: Set(vps.id),
        organization_id: Set(org.id),
        checked_at: Set(t),
        status: Set(HealthStatus::Degraded),
        convex_up: Set(true),
        web_up: Set(true),
        mta_up: Set(false),
        consecutive_failures: Set(1),
        duration_ms: Set(42),
        error: Set(Some("mta: connection refused".to_owned())),
        ..Default::default()
    }
    .insert(db)
    .await
    .unwrap();
    assert_eq!(
        health_checks::Entity::find_by_id(check.id)
            .one(db)
            .await
            .unwrap(),
        Some(check)
    );

    let alert = health_alerts::ActiveModel {
        vps_id: Set(vps.id),
        organization_id: Set(org.id),
        kind: Set(AlertKind::AutoReboot),
        message: Set("rebooted after 6 failed checks".to_owned()),
        created_at: Set(t),
        resolved_at: Set(None),
        acknowledged_by_user_id: Set(Some(user.id)),
        ..Default::default()
    }
    .insert(db)
    .await
    .unwrap();
    assert_eq!(
        health_alerts::Entity::find_by_id(alert.id)
            .one(db)
            .await
            .unwrap(),
        Some(alert)
    );

    let period = NaiveDate::from_ymd_opt(2026, 3, 1).unwrap();
    let invoice = invoices::ActiveModel {
        organization_id: Set(org.id),
        number: Set(InvoiceNumber::new(period, 1).unwrap()),
        period_start: Set(period),
        period_end: Set(NaiveDate::from_ymd_opt(2026, 3, 31).unwrap()),
        amount_cents: Set(2_800),
        currency: Set(Currency::eur()),
        status: Set(InvoiceStatus::Open),
        due_date: Set(NaiveDate::from_ymd_opt(2026, 3, 15).unwrap()),
        paid_at: Set(None),
        stripe_invoice_id: Set(Some("in_123".to_owned())),
        created_at: Set(t),
        updated_at: Set(t),
        ..Default::default()
    }
    .insert(db)
    .await
    .unwrap();
    let read = invoices::Entity::find_by_id(invoice.id)
        .one(db)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(read, invoice);
    assert_eq!(read.number.to_string(), "INV-202603-0001");

    let route = routes::ActiveModel {
        organization_id: Set(org.id),
        slug: Set("acme".parse().unwrap()),
        upstream_ipv4: Set("127.0.0.2".to_owned()),
        upstream_port: Set(3000),
        enabled: Set(true),
        applied_at: Set(None),
        created_at: Set(t),
        updated_at: Set(t),
        ..Default::default()
    }
    .insert(db)
    .await
    .unwrap();
    assert_eq!(
        routes::Entity::find_by_id(route.id).one(db).await.unwrap(),
        Some(route)
    );

    let audit = audit_log::ActiveModel {
        actor_user_id: Set(Some(user.id)),
        actor_email: Set("ops@nest.test".to_owned()),
        action: Set("organization.suspend".to_owned()),
        target_type: Set("organization".to_owned()),
        target_id: Set(Some(org.id.to_string())),
        detail: Set(json!({"from": "active", "to": "suspended"})),
        ip: Set(Some("::1".to_owned())),
        user_agent: Set(Some("test".to_owned())),
        created_at: Set(t),
        ..Default::default()
    }
    .insert(db)
    .await
    .unwrap();
    assert_eq!(
        audit_log::Entity::find_by_id(audit.id)
            .one(db)
            .await
            .unwrap(),
        Some(audit)
    );

    let event = stripe_events::ActiveModel {
        id: Set("evt_123".to_owned()),
        event_type: Set("invoice.paid".to_owned()),
        received_at: Set(t),
        processed_at: Set(Some(t)),
    }
    .insert(db)
    .await
    .unwrap();
    assert_eq!(
        stripe_events::Entity::find_by_id("evt_123".to_owned())
            .one(db)
            .await
            .unwrap(),
        Some(event)
    );

    let setting = settings::ActiveModel {
        key: Set("maintenance_banner".to_owned()),
        value: Set("".to_owned()),
        updated_at: Set(t),
    }
    .insert(db)
    .await
    .unwrap();
    assert_eq!(
        settings::Entity::find_by_id("maintenance_banner".to_owned())
            .one(db)
            .await
            .unwrap(),
        Some(setting)
    );
}

async fn unique_constraints_reject_duplicates_with_a_typed_error(db: &DatabaseConnection) {
    new_user(db, "dup@nest.test").await;
    let err = users::ActiveModel {
        email: Set("dup@nest.test".parse().unwrap()),
        password_hash: Set(None),
        created_at: Set(now()),
        updated_at: Set(now()),
        ..Default::default()
    }
    .insert(db)
    .await
    .unwrap_err();
    assert!(
        matches!(Error::from(err), Error::Duplicate(_)),
        "duplicate email"
    );

    let tier = starter_tier(db).await;
    org_model(tier.id, "dupe-co").insert(db).await.unwrap();
    let err = org_model(tier.id, "dupe-co").insert(db).await.unwrap_err();
    assert!(
        matches!(Error::from(err), Error::Duplicate(_)),
        "duplicate slug"
    );
    assert_eq!(
        organizations::Entity::find().count(db).await.unwrap(),
        1,
        "nothing half-written"
    );

    let err = tiers::ActiveModel {
        code: Set("starter".to_owned()),
        name: Set("Starter again".to_owned()),
        server_type: Set("cx22".parse().unwrap()),
        vcpus: Set(1),
        memory_gb: Set(1),
        disk_gb: Set(1),
        monthly_price_cents: Set(1),
        currency: Set(Currency::eur()),
        stripe_price_id: Set(None),
        active: Set(true),
        sort_order: Set(9),
        created_at: Set(now()),
        updated_at: Set(now()),
        ..Default::default()
    }
    .insert(db)
    .await
    .unwrap_err();
    assert!(
        matches!(Error::from(err), Error::Duplicate(_)),
        "duplicate tier code"
    );
}

async fn foreign_keys_reject_dangling_references_with_a_typed_error(db: &DatabaseConnection) {
    let err = org_model(987_654, "orphan").insert(db).await.unwrap_err();
    assert!(
        matches!(Error::from(err), Error::Reference(_)),
        "unknown tier"
    );

    let tier = starter_tier(db).await;
    org_model(tier.id, "uses-starter").insert(db).await.unwrap();
    let err = tiers::Entity::delete_by_id(tier.id)
        .exec(db)
        .await
        .unwrap_err();
    let err = Error::from(err);
    assert!(
        matches!(err, Error::Reference(_)),
        "a tier in use cannot be deleted: {err:?}"
    );
}

async fn reference_data_is_seeded_once_and_never_overwritten(db: &DatabaseConnection) {
    assert_eq!(tiers::Entity::find().count(db).await.unwrap(), 3);
    assert_eq!(regions::Entity::find().count(db).await.unwrap(), 6);

    // An admin edits a tier; seeding again (a restart) must keep the edit.
    let mut tier: tiers::ActiveModel = starter_tier(db).await.into();
    tier.monthly_price_cents = Set(3_000);
    tier.update(db).await.unwrap();

    let prices = server::config::StripePrices {
        starter: Some("price_starter".to_owned()),
        ..Default::default()
    };
    server::seed::ensure_reference_data(db, &prices)
        .await
        .unwrap();
    server::seed::ensure_reference_data(db, &prices)
        .await
        .unwrap();

    assert_eq!(tiers::Entity::find().count(db).await.unwrap(), 3);
    assert_eq!(regions::Entity::find().count(db).await.unwrap(), 6);
    let starter = starter_tier(db).await;
    assert_eq!(starter.monthly_price_cents, 3_000, "edit kept");
    assert_eq!(
        starter.stripe_price_id.as_deref(),
        Some("price_starter"),
        "empty price id filled"
    );
    let defaults = regions::Entity::find()
        .filter(regions::Column::IsDefault.eq(true))
        .all(db)
        .await
        .unwrap();
    assert_eq!(defaults.len(), 1);
    assert_eq!(defaults[0].code, Region::Nbg1);
}

on_both_databases!(
    every_entity_round_trips,
    unique_constraints_reject_duplicates_with_a_typed_error,
    foreign_keys_reject_dangling_references_with_a_typed_error,
    reference_data_is_seeded_once_and_never_overwritten,
);
