//! Cloud-init generation, a pure function: the user data that installs Docker, writes the
//! stack's `.env` and `docker-compose.yml` (templates in `server/templates/`) and starts the
//! six services. Secrets come only from the VPS's decrypted [`VpsSecrets`].

use super::secrets::VpsSecrets;
use crate::hetzner::simulator::USER_DATA_LIMIT;

const CLOUD_INIT: &str = include_str!("../../templates/cloud-init.yaml");
const ENV_FILE: &str = include_str!("../../templates/env.vps.template");
const COMPOSE_FILE: &str = include_str!("../../templates/docker-compose.vps.yml");

/// What the user data is rendered from.
#[derive(Debug, Clone)]
pub struct CloudInitInput<'a> {
    /// The organization's slug.
    pub slug: &'a str,
    /// `<slug>.<base domain>`.
    pub domain: &'a str,
    /// Nest's own URL (`SITE_URL`), for the stack to call back.
    pub nest_url: &'a str,
    /// The VPS's secrets.
    pub secrets: &'a VpsSecrets,
}

/// Why user data could not be generated.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CloudInitError {
    /// A template names a placeholder the generator does not fill (a bug in a template).
    #[error("template placeholder `{0}` was not filled")]
    Unfilled(String),
    /// The rendered user data exceeds Hetzner's limit.
    #[error("user data is {0} bytes; Hetzner accepts at most 32 KiB")]
    TooLarge(usize),
    /// A value would break the file it is written into.
    #[error("value for `{0}` contains a line break or control character")]
    BadValue(&'static str),
}

fn fill(template: &str, values: &[(&'static str, &str)]) -> Result<String, CloudInitError> {
    let mut out = template.to_owned();
    for (key, value) in values {
        out = out.replace(&format!("{{{{{key}}}}}"), value);
    }
    if let Some(start) = out.find("{{") {
        let rest = &out[start + 2..];
        let name = rest.split("}}").next().unwrap_or(rest);
        return Err(CloudInitError::Unfilled(name.to_owned()));
    }
    Ok(out)
}

fn indent(text: &str, by: usize) -> String {
    let pad = " ".repeat(by);
    text.lines()
        .map(|line| {
            if line.is_empty() {
                String::new()
            } else {
                format!("{pad}{line}")
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Renders the user data for one VPS.
pub fn render(input: &CloudInitInput<'_>) -> Result<String, CloudInitError> {
    let values: [(&'static str, &str); 7] = [
        ("ORG_SLUG", input.slug),
        ("DOMAIN", input.domain),
        ("NEST_URL", input.nest_url),
        ("INSTANCE_SECRET", &input.secrets.instance_secret),
        ("CONVEX_ADMIN_KEY", &input.secrets.convex_admin_key),
        ("MTA_API_KEY", &input.secrets.mta_api_key),
        ("MTA_WEBHOOK_SECRET", &input.secrets.mta_webhook_secret),
    ];
    for (key, value) in &values {
        if value.chars().any(char::is_control) {
            return Err(CloudInitError::BadValue(key));
        }
    }
    let env = fill(ENV_FILE, &values)?;
    let compose = fill(COMPOSE_FILE, &[])?;
    let mut all = values.to_vec();
    let env = indent(&env, 6);
    let compose = indent(&compose, 6);
    all.push(("ENV_FILE", &env));
    all.push(("COMPOSE_FILE", &compose));
    let user_data = fill(CLOUD_INIT, &all)?;
    if user_data.len() > USER_DATA_LIMIT {
        return Err(CloudInitError::TooLarge(user_data.len()));
    }
    Ok(user_data)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secrets() -> VpsSecrets {
        VpsSecrets {
            instance_secret: "i".repeat(64),
            convex_admin_key: "c".repeat(70),
            mta_api_key: "m".repeat(64),
            mta_webhook_secret: "w".repeat(64),
        }
    }

    #[test]
    fn the_compose_file_defines_the_six_services_of_the_spec() {
        for service in ["convex", "web", "mta", "redis", "clamav", "convex-deploy"] {
            assert!(
                COMPOSE_FILE.contains(&format!("\n  {service}:\n")),
                "{service}"
            );
        }
    }

    #[test]
    fn a_value_with_a_line_break_is_refused() {
        let secrets = secrets();
        let input = CloudInitInput {
            slug: "acme",
            domain: "acme.example.com\nEVIL=1",
            nest_url: "http://localhost:3001",
            secrets: &secrets,
        };
        assert_eq!(render(&input), Err(CloudInitError::BadValue("DOMAIN")));
    }

    #[test]
    fn an_unfilled_placeholder_is_an_error_not_silent_output() {
        assert_eq!(
            fill("a {{MISSING}} b", &[]),
            Err(CloudInitError::Unfilled("MISSING".to_owned()))
        );
    }

    #[test]
    fn the_largest_possible_user_data_stays_under_hetzners_limit() {
        let secrets = secrets();
        let slug = "a".repeat(40);
        let domain = format!("{slug}.{}", "d".repeat(200));
        let input = CloudInitInput {
            slug: &slug,
            domain: &domain,
            nest_url: &format!("https://{}", "n".repeat(200)),
            secrets: &secrets,
        };
        let rendered = render(&input).unwrap();
        assert!(
            rendered.len() < USER_DATA_LIMIT / 4,
            "{} bytes",
            rendered.len()
        );
    }
}
