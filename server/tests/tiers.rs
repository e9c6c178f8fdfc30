//! Pricing tiers over HTTP on SQLite and PostgreSQL: create, edit, validation, activation, and
//! deletion only when unused.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use app::error::AppError;
use sea_orm::DatabaseConnection;
use support::{PASSWORD, TestServer, login, setup_superadmin};

fn tier_args<'a>(name: &'a str, code: &'a str, price: &'a str) -> Vec<(&'static str, &'a str)> {
    vec![
        ("input[name]", name),
        ("input[code]", code),
        ("input[server_type]", "cx52"),
        ("input[vcpus]", "16"),
        ("input[memory_gb]", "32"),
        ("input[disk_gb]", "320"),
        ("input[monthly_price]", price),
        ("input[currency]", "eur"),
        ("input[stripe_price_id]", ""),
    ]
}

async fn tiers_are_created_edited_deactivated_and_deleted_only_when_unused(
    db: &DatabaseConnection,
) {
    let server = TestServer::start(db).await;
    let mut root = setup_superadmin(&server, "root@nest.test").await;

    let created = root
        .call("save_tier", &tier_args("Scale", "scale", "240"))
        .await;
    assert_eq!(created.status, 200, "{created:?}");
    let id = created.body.as_i64().unwrap().to_string();

    for (args, field) in [
        (tier_args("Scale", "scale-2", "240"), "name"),
        (tier_args("Other", "other", "12.345"), "monthly_price"),
        (tier_args("Other", "Bad Code", "10"), "code"),
    ] {
        let reply = root.call("save_tier", &args).await;
        assert_eq!(reply.status, 422, "{reply:?}");
        assert!(
            reply.error().unwrap().for_field(field).is_some(),
            "{field}: {reply:?}"
        );
    }

    let mut edit = tier_args("Scale", "", "199.50");
    edit.push(("id", &id));
    assert_eq!(root.call("save_tier", &edit).await.status, 200);
    let list = root.call("list_tier_details", &[]).await;
    let scale = list
        .body
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r[0]["code"] == "scale")
        .unwrap()
        .clone();
    assert_eq!(scale[0]["monthly_price_cents"], 19_950);
    assert_eq!(scale[0]["currency"], "EUR");

    // An organization on the tier: it cannot be deleted, only deactivated; new orgs cannot pick it then.
    let org = root
        .call(
            "create_organization",
            &[
                ("name", "Big"),
                ("slug", "big"),
                ("owner_email", "o@big.test"),
                ("tier_id", &id),
                ("region", "ash"),
            ],
        )
        .await;
    assert_eq!(org.status, 200, "{org:?}");
    let delete = root.call("delete_tier", &[("id", &id)]).await;
    assert!(
        matches!(delete.error(), Some(AppError::Conflict(m)) if m.contains("deactivate")),
        "{delete:?}"
    );
    assert_eq!(
        root.call("set_tier_active", &[("id", &id), ("active", "false")])
            .await
            .status,
        200
    );
    let refused = root
        .call(
            "create_organization",
            &[
                ("name", "Big 2"),
                ("slug", "big-two"),
                ("owner_email", "o@big.test"),
                ("tier_id", &id),
                ("region", "ash"),
            ],
        )
        .await;
    assert!(
        refused
            .error()
            .unwrap()
            .for_field("tier")
            .unwrap()
            .contains("no longer offered")
    );

    let unused = root
        .call("save_tier", &tier_args("Tiny", "tiny", "5"))
        .await
        .body
        .as_i64()
        .unwrap()
        .to_string();
    assert_eq!(
        root.call("delete_tier", &[("id", &unused)]).await.status,
        200
    );

    // An admin who is not a superadmin can read pricing but not change it.
    root.call(
        "add_admin",
        &[
            ("email", "bee@nest.test"),
            ("role", "admin"),
            ("initial", "Typed"),
            ("password", PASSWORD),
        ],
    )
    .await;
    let (mut bee, _) = login(&server, "bee@nest.test", PASSWORD).await;
    assert_eq!(bee.call("list_tier_details", &[]).await.status, 200);
    assert!(matches!(
        bee.call("save_tier", &tier_args("Nope", "nope", "1"))
            .await
            .error(),
        Some(AppError::Forbidden(_))
    ));
}

on_both_databases!(tiers_are_created_edited_deactivated_and_deleted_only_when_unused);
