//! Snapshot of the generated cloud-init user data. A change to the templates or the generator
//! shows up here as a diff; after reviewing it, refresh with
//! `UPDATE_SNAPSHOTS=1 cargo test -p server --test cloud_init`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use server::hetzner::simulator::USER_DATA_LIMIT;
use server::provisioning::cloud_init::{CloudInitInput, render};
use server::provisioning::secrets::VpsSecrets;

fn snapshot(name: &str, actual: &str) {
    let path = format!("{}/tests/snapshots/{name}", env!("CARGO_MANIFEST_DIR"));
    if std::env::var("UPDATE_SNAPSHOTS").is_ok() {
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path)
        .unwrap_or_else(|_| panic!("{path} is missing: run with UPDATE_SNAPSHOTS=1 to create it"));
    if expected != actual {
        let first = expected
            .lines()
            .zip(actual.lines())
            .position(|(a, b)| a != b)
            .unwrap_or(expected.lines().count().min(actual.lines().count()));
        panic!(
            "{name} changed at line {}:\n  expected: {:?}\n  actual:   {:?}\nreview, then refresh with UPDATE_SNAPSHOTS=1",
            first + 1,
            expected.lines().nth(first),
            actual.lines().nth(first)
        );
    }
}

fn fixed_secrets() -> VpsSecrets {
    VpsSecrets {
        instance_secret: "instance-secret-0123456789abcdef".into(),
        convex_admin_key: "nest|convex-admin-key-0123456789".into(),
        mta_api_key: "mta-api-key-0123456789abcdef".into(),
        mta_webhook_secret: "mta-webhook-secret-0123456789".into(),
    }
}

/// The user data of organization `acme` on `apps.example.com`.
fn render_acme(secrets: &VpsSecrets) -> String {
    render(&CloudInitInput {
        slug: "acme",
        domain: "acme.apps.example.com",
        nest_url: "https://nest.example.com",
        secrets,
    })
    .unwrap()
}

#[test]
fn the_user_data_of_an_organization_matches_its_snapshot() {
    let secrets = fixed_secrets();
    let rendered = render_acme(&secrets);
    snapshot("cloud-init-acme.yaml", &rendered);
}

#[test]
fn the_user_data_writes_every_secret_once_into_the_env_file_and_nowhere_else() {
    let secrets = fixed_secrets();
    let rendered = render_acme(&secrets);
    for (name, value) in [
        ("INSTANCE_SECRET", &secrets.instance_secret),
        ("CONVEX_ADMIN_KEY", &secrets.convex_admin_key),
        ("MTA_API_KEY", &secrets.mta_api_key),
        ("MTA_WEBHOOK_SECRET", &secrets.mta_webhook_secret),
    ] {
        assert_eq!(rendered.matches(value.as_str()).count(), 1, "{name}");
        assert!(
            rendered.contains(&format!("      {name}={value}\n")),
            "{name}"
        );
    }
    assert!(rendered.starts_with("#cloud-config\n"));
    assert!(rendered.len() < USER_DATA_LIMIT);
}
