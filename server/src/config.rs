//! Nest's configuration: read once from the environment (and an optional `.env`) at start-up.
//!
//! Every variable is documented in the README and `.env.example`. A missing or malformed value
//! stops start-up with one line naming the variable and what is wrong. Secrets are wrapped in
//! [`Secret`], whose `Debug` never shows the value.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

use url::Url;

/// A configuration value that was missing or malformed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("configuration error: {var}: {message}")]
pub struct ConfigError {
    /// The environment variable at fault.
    pub var: &'static str,
    /// What is wrong with it, and what would be right.
    pub message: String,
}

fn err(var: &'static str, message: impl Into<String>) -> ConfigError {
    ConfigError {
        var,
        message: message.into(),
    }
}

/// A secret value (API token, signing secret). Its `Debug` and `Display` never reveal it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// The secret itself; use only where it is sent to the service it belongs to.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl From<String> for Secret {
    fn from(value: String) -> Self {
        Self(value)
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret([redacted])")
    }
}

/// Which database to use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DatabaseUrl {
    /// A SQLite file; the parent directory is created if needed.
    Sqlite {
        /// The full `sqlite:` URL handed to the driver.
        url: String,
        /// The database file, when the URL names one (not for `:memory:`).
        path: Option<PathBuf>,
    },
    /// A PostgreSQL server (`postgres://` or `postgresql://`).
    Postgres(Secret),
}

impl DatabaseUrl {
    /// Parses `DATABASE_URL`.
    pub fn parse(raw: &str) -> Result<Self, ConfigError> {
        const VAR: &str = "DATABASE_URL";
        if raw.starts_with("postgres://") || raw.starts_with("postgresql://") {
            Url::parse(raw)
                .map_err(|e| err(VAR, format!("is not a valid PostgreSQL URL ({e})")))?;
            return Ok(Self::Postgres(Secret(raw.to_owned())));
        }
        if let Some(rest) = raw.strip_prefix("sqlite:") {
            let rest = rest.trim_start_matches("//");
            let (file, query) = rest.split_once('?').unwrap_or((rest, ""));
            if file.is_empty() {
                return Err(err(
                    VAR,
                    "names no SQLite file (expected e.g. sqlite://./data/nest.db)",
                ));
            }
            let path = (file != ":memory:").then(|| PathBuf::from(file));
            // Create the file if it does not exist, unless the URL chose a mode itself.
            let url = if query.contains("mode=") {
                format!("sqlite://{rest}")
            } else if query.is_empty() {
                format!("sqlite://{file}?mode=rwc")
            } else {
                format!("sqlite://{file}?{query}&mode=rwc")
            };
            return Ok(Self::Sqlite { url, path });
        }
        Err(err(
            VAR,
            "must start with sqlite:// or postgres:// (the value is not shown: it may hold a password)",
        ))
    }

    /// The URL to hand to the driver.
    pub fn expose(&self) -> &str {
        match self {
            Self::Sqlite { url, .. } => url,
            Self::Postgres(secret) => secret.expose(),
        }
    }
}

/// Hetzner Cloud settings. Without a token, Nest uses its built-in simulator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HetznerConfig {
    /// `HETZNER_API_TOKEN`: absent means "use the simulator".
    pub api_token: Option<Secret>,
    /// `HETZNER_SSH_KEY_IDS`: SSH keys installed on every server.
    pub ssh_key_ids: Vec<u64>,
    /// `HETZNER_API_URL`: the API's base URL.
    pub api_url: Url,
}

/// The three tiers' Stripe price ids, by tier.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StripePrices {
    /// `STRIPE_PRICE_STARTER`.
    pub starter: Option<String>,
    /// `STRIPE_PRICE_GROWTH`.
    pub growth: Option<String>,
    /// `STRIPE_PRICE_ENTERPRISE`.
    pub enterprise: Option<String>,
}

/// Stripe settings. Without a secret key, Nest uses its built-in simulator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StripeConfig {
    /// `STRIPE_SECRET_KEY` (`sk_…`).
    pub secret_key: Option<Secret>,
    /// `STRIPE_PUBLISHABLE_KEY` (`pk_…`), for Stripe.js on `/signup`.
    pub publishable_key: Option<String>,
    /// `STRIPE_WEBHOOK_SECRET` (`whsec_…`).
    pub webhook_secret: Option<Secret>,
    /// Per-tier price ids (in simulator mode, the simulator's own unless set).
    pub prices: StripePrices,
    /// `NEST_SIGNUP_EXPIRY_HOURS` (24): an unpaid signup is cancelled and its slug freed after this.
    pub signup_expiry_hours: u32,
    /// `NEST_STRIPE_SIM_ADDR`: where the built-in Stripe simulator listens (port 0: any free port).
    pub sim_addr: SocketAddr,
}

/// A loopback socket address from `var`, or `default`.
fn loopback_addr(
    get: &dyn Fn(&str) -> Option<String>,
    var: &'static str,
    default: SocketAddr,
) -> Result<SocketAddr, ConfigError> {
    match get(var) {
        None => Ok(default),
        Some(v) => v
            .parse::<SocketAddr>()
            .ok()
            .filter(|a| a.ip().is_loopback())
            .ok_or_else(|| {
                err(
                    var,
                    format!("`{v}` must be a loopback socket address such as 127.0.0.1:12111"),
                )
            }),
    }
}

/// The price ids the Stripe simulator creates at start, used when Stripe is simulated and no
/// `STRIPE_PRICE_*` is set.
pub const SIMULATED_PRICES: [(&str, &str); 3] = [
    ("starter", "price_sim_starter"),
    ("growth", "price_sim_growth"),
    ("enterprise", "price_sim_enterprise"),
];

impl StripePrices {
    /// The price id of the tier with `code`, if any.
    pub fn for_tier(&self, code: &str) -> Option<&str> {
        match code {
            "starter" => self.starter.as_deref(),
            "growth" => self.growth.as_deref(),
            "enterprise" => self.enterprise.as_deref(),
            _ => None,
        }
    }
}

impl StripeConfig {
    /// Whether Nest talks to its own simulator (no `STRIPE_SECRET_KEY`).
    pub fn is_simulated(&self) -> bool {
        self.secret_key.is_none()
    }

    fn parse(get: &dyn Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let prefixed = |var: &'static str, prefix: &str| -> Result<Option<String>, ConfigError> {
            match get(var) {
                Some(v) if !v.starts_with(prefix) => Err(err(
                    var,
                    format!("must start with `{prefix}` (the value is not shown)"),
                )),
                other => Ok(other),
            }
        };
        let secret_key = prefixed("STRIPE_SECRET_KEY", "sk_")?.map(Secret);
        let simulated = |code: &str| {
            secret_key
                .is_none()
                .then(|| {
                    SIMULATED_PRICES
                        .iter()
                        .find(|(c, _)| *c == code)
                        .map(|(_, id)| (*id).to_owned())
                })
                .flatten()
        };
        let price = |var: &'static str, code: &str| -> Result<Option<String>, ConfigError> {
            let value = prefixed(var, "price_")?.or_else(|| simulated(code));
            if value.is_none() && secret_key.is_some() {
                return Err(err(
                    var,
                    "is required when STRIPE_SECRET_KEY is set (signups on that tier could not be billed)",
                ));
            }
            Ok(value)
        };
        let webhook_secret = prefixed("STRIPE_WEBHOOK_SECRET", "whsec_")?.map(Secret);
        if secret_key.is_some() && webhook_secret.is_none() {
            return Err(err(
                "STRIPE_WEBHOOK_SECRET",
                "is required when STRIPE_SECRET_KEY is set (webhooks could not be verified)",
            ));
        }
        let publishable_key = prefixed("STRIPE_PUBLISHABLE_KEY", "pk_")?;
        if secret_key.is_some() && publishable_key.is_none() {
            return Err(err(
                "STRIPE_PUBLISHABLE_KEY",
                "is required when STRIPE_SECRET_KEY is set (/signup could not take a card)",
            ));
        }
        Ok(Self {
            publishable_key,
            webhook_secret,
            prices: StripePrices {
                starter: price("STRIPE_PRICE_STARTER", "starter")?,
                growth: price("STRIPE_PRICE_GROWTH", "growth")?,
                enterprise: price("STRIPE_PRICE_ENTERPRISE", "enterprise")?,
            },
            signup_expiry_hours: bounded_u32(
                get,
                "NEST_SIGNUP_EXPIRY_HOURS",
                24,
                (1, 720),
                "hours",
            )?,
            sim_addr: loopback_addr(
                get,
                "NEST_STRIPE_SIM_ADDR",
                SocketAddr::from(([127, 0, 0, 1], 0)),
            )?,
            secret_key,
        })
    }
}

/// Caddy settings. Without an admin URL, routes live only in the database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaddyConfig {
    /// `CADDY_ADMIN_URL`, e.g. `http://localhost:2019`.
    pub admin_url: Option<Url>,
    /// `NEST_BASE_DOMAIN`: organizations are served at `<slug>.<base domain>`.
    pub base_domain: String,
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// Nest's whole configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// `NEST_ADDR`: where the HTTP server listens.
    pub addr: SocketAddr,
    /// `NEST_DATA_DIR`: where the SQLite file and generated keys live.
    pub data_dir: PathBuf,
    /// `DATABASE_URL`.
    pub database: DatabaseUrl,
    /// `SITE_URL`: the dashboard's public URL (decides secure cookies and HSTS).
    pub site_url: Url,
    /// Whether `SITE_URL` was set (otherwise it is derived from `NEST_ADDR`: local mode).
    pub site_url_set: bool,
    /// `LEPTOS_SITE_ROOT`: the directory holding the built browser bundle (`pkg/`).
    pub site_root: PathBuf,
    /// `NEST_LOG`: a tracing filter such as `info` or `nest=debug,info`.
    pub log_filter: String,
    /// `NEST_LOG_FORMAT`: `text` or `json`.
    pub log_format: LogFormat,
    /// Hetzner Cloud.
    pub hetzner: HetznerConfig,
    /// Stripe.
    pub stripe: StripeConfig,
    /// Caddy.
    pub caddy: CaddyConfig,
    /// `NEST_SESSION_IDLE_MINUTES`: a session ends after this many minutes without a request.
    pub session_idle_minutes: u32,
    /// `NEST_SESSION_ABSOLUTE_HOURS`: a session ends this many hours after login.
    pub session_absolute_hours: u32,
    /// Provisioning: job engine, secrets and the Hetzner simulator.
    pub provisioning: ProvisioningConfig,
    /// `NEST_METRICS_ADDR`: where Prometheus metrics are served (`GET /metrics`); `None`: off.
    pub metrics_addr: Option<SocketAddr>,
    /// `NEST_TRUSTED_PROXIES`: the reverse proxies whose `X-Forwarded-For` is believed.
    pub trusted_proxies: Vec<IpNetwork>,
    /// Health monitoring.
    pub health: HealthConfig,
    /// Where alerts are sent.
    pub alerts: AlertChannels,
    /// Invoices and dunning.
    pub billing: BillingConfig,
    /// `NEST_BRAND_NAME` ("Nest"): the platform's name, as customers and admins see it.
    pub brand_name: String,
}

/// `NEST_BRAND_NAME`: 1 to 40 printable characters, trimmed; "Nest" when unset.
fn brand_name(get: &dyn Fn(&str) -> Option<String>) -> Result<String, ConfigError> {
    let Some(value) = get("NEST_BRAND_NAME") else {
        return Ok("Nest".to_owned());
    };
    let name = value.trim().to_owned();
    if name.is_empty() || name.chars().count() > 40 || name.chars().any(char::is_control) {
        return Err(err(
            "NEST_BRAND_NAME",
            "must be 1 to 40 printable characters, such as Acme Hosting".to_owned(),
        ));
    }
    Ok(name)
}

/// Invoices and dunning (`NEST_DUNNING_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BillingConfig {
    /// `NEST_DUNNING_SUSPEND_DAYS` (7): whole days an invoice stays overdue before the daily run
    /// suspends its organization ("payment overdue").
    pub dunning_suspend_days: u32,
    /// `NEST_MARGIN_WARN_PERCENT` (30): `/tiers` warns about a tier whose margin over Hetzner's
    /// cost is below this share of its price in any region.
    pub margin_warn_percent: u32,
}

impl BillingConfig {
    fn parse(get: &dyn Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        Ok(Self {
            dunning_suspend_days: bounded_u32(
                get,
                "NEST_DUNNING_SUSPEND_DAYS",
                7,
                (0, 365),
                "days",
            )?,
            margin_warn_percent: bounded_u32(
                get,
                "NEST_MARGIN_WARN_PERCENT",
                30,
                (0, 100),
                "percent",
            )?,
        })
    }
}

/// Health monitoring (`NEST_HEALTH_*`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthConfig {
    /// `NEST_HEALTH_INTERVAL_SECS` (300): one sweep per period, across replicas.
    pub interval_secs: u32,
    /// `NEST_HEALTH_PROBE_TIMEOUT_MS` (5000): one probe's limit; at most a third of the interval.
    pub probe_timeout_ms: u32,
    /// `NEST_HEALTH_CONCURRENCY` (512): probes in flight at once.
    pub concurrency: u32,
    /// `NEST_HEALTH_GRACE_SECS` (600): a server is not checked this long after it was
    /// created, rebooted, resized or redeployed.
    pub grace_secs: u32,
    /// `NEST_HEALTH_REBOOT_COOLDOWN_MINS` (60): at most one automatic reboot per server within.
    pub reboot_cooldown_mins: u32,
    /// `NEST_HEALTH_BREAKER_PERCENT` (30): above this share of failing servers in one sweep, no
    /// reboots.
    pub breaker_percent: u32,
    /// `NEST_HEALTH_RAW_RETENTION_HOURS` (48): raw checks kept.
    pub raw_retention_hours: u32,
    /// `NEST_HEALTH_ROLLUP_RETENTION_DAYS` (400): hourly roll-ups kept.
    pub rollup_retention_days: u32,
}

/// Alert notification channels; each is off until configured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlertChannels {
    /// `NEST_ALERT_WEBHOOK_URL`: receives each new alert as JSON (Slack-compatible `text`).
    pub webhook_url: Option<Url>,
    /// `NEST_ALERT_WEBHOOK_SECRET`: signs the webhook body (HMAC-SHA256); required with the URL.
    pub webhook_secret: Option<Secret>,
    /// `NEST_SMTP_URL`: e.g. `smtp://user:pass@mail.example.com:587` (`smtps://` for TLS on
    /// connect, `smtp://…?tls=required` for STARTTLS).
    pub smtp_url: Option<Secret>,
    /// `NEST_ALERT_EMAIL_TO`: comma-separated recipients; required with the SMTP URL.
    pub email_to: Vec<String>,
    /// `NEST_ALERT_EMAIL_FROM` (`nest@<base domain>`).
    pub email_from: String,
}

/// A whole number of `unit` between `min` and `max`, or `default` when unset.
fn bounded_u32(
    get: &dyn Fn(&str) -> Option<String>,
    var: &'static str,
    default: u32,
    (min, max): (u32, u32),
    unit: &str,
) -> Result<u32, ConfigError> {
    match get(var) {
        None => Ok(default),
        Some(v) => v
            .parse::<u32>()
            .ok()
            .filter(|n| (min..=max).contains(n))
            .ok_or_else(|| {
                err(
                    var,
                    format!("`{v}` must be a whole number of {unit} between {min} and {max}"),
                )
            }),
    }
}

impl HealthConfig {
    fn parse(get: &dyn Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let interval_secs = bounded_u32(
            get,
            "NEST_HEALTH_INTERVAL_SECS",
            300,
            (5, 86_400),
            "seconds",
        )?;
        let probe_timeout_ms = bounded_u32(
            get,
            "NEST_HEALTH_PROBE_TIMEOUT_MS",
            5000.min(interval_secs * 1000 / 3),
            (50, 60_000),
            "milliseconds",
        )?;
        if probe_timeout_ms > interval_secs * 1000 / 3 {
            return Err(err(
                "NEST_HEALTH_PROBE_TIMEOUT_MS",
                format!(
                    "{probe_timeout_ms} ms is more than a third of NEST_HEALTH_INTERVAL_SECS ({interval_secs} s)"
                ),
            ));
        }
        Ok(Self {
            interval_secs,
            probe_timeout_ms,
            concurrency: bounded_u32(get, "NEST_HEALTH_CONCURRENCY", 512, (1, 4096), "probes")?,
            grace_secs: bounded_u32(get, "NEST_HEALTH_GRACE_SECS", 600, (0, 86_400), "seconds")?,
            reboot_cooldown_mins: bounded_u32(
                get,
                "NEST_HEALTH_REBOOT_COOLDOWN_MINS",
                60,
                (1, 10_080),
                "minutes",
            )?,
            breaker_percent: bounded_u32(
                get,
                "NEST_HEALTH_BREAKER_PERCENT",
                30,
                (1, 100),
                "percent",
            )?,
            raw_retention_hours: bounded_u32(
                get,
                "NEST_HEALTH_RAW_RETENTION_HOURS",
                48,
                (1, 24 * 90),
                "hours",
            )?,
            rollup_retention_days: bounded_u32(
                get,
                "NEST_HEALTH_ROLLUP_RETENTION_DAYS",
                400,
                (1, 3650),
                "days",
            )?,
        })
    }
}

impl AlertChannels {
    fn parse(get: &dyn Fn(&str) -> Option<String>, base_domain: &str) -> Result<Self, ConfigError> {
        let webhook_url = get("NEST_ALERT_WEBHOOK_URL")
            .map(|v| parse_http_url("NEST_ALERT_WEBHOOK_URL", &v))
            .transpose()?;
        let webhook_secret = get("NEST_ALERT_WEBHOOK_SECRET").map(Secret::from);
        if webhook_url.is_some()
            && webhook_secret
                .as_ref()
                .is_none_or(|s| s.expose().len() < 16)
        {
            return Err(err(
                "NEST_ALERT_WEBHOOK_SECRET",
                "is required with NEST_ALERT_WEBHOOK_URL: at least 16 characters, to sign each alert",
            ));
        }
        let smtp_url = get("NEST_SMTP_URL");
        if let Some(v) = &smtp_url {
            let scheme = v.split("://").next().unwrap_or_default();
            if !matches!(scheme, "smtp" | "smtps") || !v.contains("://") {
                return Err(err(
                    "NEST_SMTP_URL",
                    "must be smtp://[user:password@]host[:port] or smtps://…",
                ));
            }
        }
        let email_to: Vec<String> = get("NEST_ALERT_EMAIL_TO")
            .map(|v| {
                v.split(',')
                    .map(str::trim)
                    .filter(|a| !a.is_empty())
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default();
        for address in &email_to {
            if !address.contains('@') || address.contains(char::is_whitespace) {
                return Err(err(
                    "NEST_ALERT_EMAIL_TO",
                    format!("`{address}` is not an e-mail address"),
                ));
            }
        }
        if smtp_url.is_some() && email_to.is_empty() {
            return Err(err(
                "NEST_ALERT_EMAIL_TO",
                "is required with NEST_SMTP_URL: the comma-separated recipients of alerts",
            ));
        }
        Ok(Self {
            webhook_url,
            webhook_secret,
            smtp_url: smtp_url.map(Secret::from),
            email_to,
            email_from: get("NEST_ALERT_EMAIL_FROM")
                .unwrap_or_else(|| format!("nest@{base_domain}")),
        })
    }
}

/// An address range (`10.0.0.0/8`, `2001:db8::/32`) or a single address (a full-length prefix).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpNetwork {
    network: IpAddr,
    prefix: u8,
}

impl IpNetwork {
    /// Whether `ip` is in this range (IPv4-mapped IPv6 addresses count as IPv4).
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        match (self.network, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

impl std::str::FromStr for IpNetwork {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (addr, prefix) = match s.split_once('/') {
            Some((addr, prefix)) => (addr, Some(prefix)),
            None => (s, None),
        };
        let network: IpAddr = addr
            .parse()
            .map_err(|_| format!("`{addr}` is not an IP address"))?;
        let max = if network.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) => p
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(|| format!("`/{p}` is not a prefix length from 0 to {max}"))?,
        };
        Ok(Self { network, prefix })
    }
}

/// Job engine, secrets-at-rest and simulator settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProvisioningConfig {
    /// `NEST_JOB_INTERVAL_SECS`: how often due jobs are looked for (besides wake-ups).
    pub job_interval_secs: u32,
    /// `NEST_JOB_LEASE_SECS`: how long a job's claim lasts without renewal.
    pub job_lease_secs: u32,
    /// `NEST_JOB_WORKERS`: how many jobs one process runs at once.
    pub job_workers: u32,
    /// `NEST_JOB_ATTEMPT_TIMEOUT_SECS`: the longest one job attempt may run.
    pub job_attempt_timeout_secs: u32,
    /// `NEST_SMOKE_TIMEOUT_SECS`: how long the smoke test waits for a server's services.
    pub smoke_timeout_secs: u32,
    /// `NEST_RECONCILE_INTERVAL_SECS`: how often the database is compared with Hetzner and
    /// Stripe.
    pub reconcile_interval_secs: u32,
    /// `NEST_SECRETS_KEY`: 64 hex characters sealing VPS secrets; absent means the key file
    /// `<data dir>/secrets.key` (generated on first run).
    pub secrets_key: Option<Secret>,
    /// `NEST_SECRETS_PREVIOUS_KEYS`: comma-separated older keys, still accepted for reading.
    pub previous_secrets_keys: Vec<Secret>,
    /// `NEST_SIM_BOOT_DELAY_MS`: simulated servers' boot time.
    pub sim_boot_delay_ms: u32,
    /// `NEST_SIM_ACTION_DELAY_MS`: simulated actions' duration.
    pub sim_action_delay_ms: u32,
    /// `NEST_SIM_FIRST_IP`: the first loopback address given to a simulated server.
    pub sim_first_ip: std::net::Ipv4Addr,
    /// `NEST_SIM_ADDR`: where the simulator's API and control API listen (port 0: any free port).
    pub sim_addr: SocketAddr,
    /// `NEST_SIM_CONTROL_TOKEN`: the token the simulator's control API requires; absent: a
    /// random one, generated at start and printed in the log.
    pub sim_control_token: Option<Secret>,
}

/// Names of every variable Nest reads, for documentation checks.
pub const VARIABLES: &[&str] = &[
    "NEST_ADDR",
    "NEST_DATA_DIR",
    "DATABASE_URL",
    "SITE_URL",
    "LEPTOS_SITE_ROOT",
    "NEST_LOG",
    "NEST_LOG_FORMAT",
    "HETZNER_API_TOKEN",
    "HETZNER_SSH_KEY_IDS",
    "HETZNER_API_URL",
    "STRIPE_SECRET_KEY",
    "STRIPE_PUBLISHABLE_KEY",
    "STRIPE_WEBHOOK_SECRET",
    "STRIPE_PRICE_STARTER",
    "STRIPE_PRICE_GROWTH",
    "STRIPE_PRICE_ENTERPRISE",
    "NEST_SIGNUP_EXPIRY_HOURS",
    "CADDY_ADMIN_URL",
    "NEST_BASE_DOMAIN",
    "NEST_BRAND_NAME",
    "NEST_SESSION_IDLE_MINUTES",
    "NEST_SESSION_ABSOLUTE_HOURS",
    "NEST_JOB_INTERVAL_SECS",
    "NEST_JOB_LEASE_SECS",
    "NEST_JOB_WORKERS",
    "NEST_JOB_ATTEMPT_TIMEOUT_SECS",
    "NEST_SMOKE_TIMEOUT_SECS",
    "NEST_RECONCILE_INTERVAL_SECS",
    "NEST_SECRETS_KEY",
    "NEST_SECRETS_PREVIOUS_KEYS",
    "NEST_SIM_BOOT_DELAY_MS",
    "NEST_SIM_ACTION_DELAY_MS",
    "NEST_SIM_FIRST_IP",
    "NEST_SIM_ADDR",
    "NEST_SIM_CONTROL_TOKEN",
    "NEST_STRIPE_SIM_ADDR",
    "NEST_STRIPE_SIM_WEBHOOK_URL",
    "NEST_METRICS_ADDR",
    "NEST_TRUSTED_PROXIES",
    "NEST_DUNNING_SUSPEND_DAYS",
    "NEST_MARGIN_WARN_PERCENT",
];

impl Config {
    /// Reads the process environment, after loading `.env` from the working directory if present.
    pub fn from_env() -> Result<Self, ConfigError> {
        match dotenvy::dotenv() {
            Ok(_) => {}
            Err(e) if e.not_found() => {}
            Err(e) => return Err(err(".env", format!("could not be read: {e}"))),
        }
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Builds the configuration from any variable lookup (the tests pass a map).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        // Empty values count as unset, as in most shells' `VAR=` idiom.
        let get = |name: &str| {
            lookup(name)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };

        let addr = match get("NEST_ADDR") {
            None => SocketAddr::from(([127, 0, 0, 1], 3001)),
            Some(v) => v.parse().map_err(|_| {
                err(
                    "NEST_ADDR",
                    format!("`{v}` is not a socket address such as 127.0.0.1:3001"),
                )
            })?,
        };

        let data_dir = PathBuf::from(get("NEST_DATA_DIR").unwrap_or_else(|| "./data".to_owned()));

        let database = match get("DATABASE_URL") {
            Some(v) => DatabaseUrl::parse(&v)?,
            None => {
                let file = data_dir.join("nest.db");
                DatabaseUrl::Sqlite {
                    url: format!("sqlite://{}?mode=rwc", file.display()),
                    path: Some(file),
                }
            }
        };

        let site_url_set = get("SITE_URL").is_some();
        let site_url = match get("SITE_URL") {
            None => {
                let host = if addr.ip().is_unspecified() {
                    "localhost".to_owned()
                } else {
                    addr.ip().to_string()
                };
                let shown = if addr.is_ipv6() && !addr.ip().is_unspecified() {
                    format!("[{host}]")
                } else {
                    host
                };
                Url::parse(&format!("http://{shown}:{}", addr.port())).map_err(|e| {
                    err(
                        "SITE_URL",
                        format!("could not be derived from NEST_ADDR ({e})"),
                    )
                })?
            }
            Some(v) => {
                let url = Url::parse(&v).map_err(|e| {
                    err(
                        "SITE_URL",
                        format!("`{v}` is not a URL ({e}); expected e.g. https://nest.example.com"),
                    )
                })?;
                if !matches!(url.scheme(), "http" | "https") {
                    return Err(err("SITE_URL", format!("`{v}` must use http or https")));
                }
                if url.path() != "/" || url.query().is_some() {
                    return Err(err(
                        "SITE_URL",
                        format!(
                            "`{v}` must be an origin without a path, e.g. https://nest.example.com"
                        ),
                    ));
                }
                url
            }
        };

        let site_root =
            PathBuf::from(get("LEPTOS_SITE_ROOT").unwrap_or_else(|| "target/site".to_owned()));

        let log_filter = get("NEST_LOG").unwrap_or_else(|| "info".to_owned());
        if let Err(e) = tracing_subscriber::EnvFilter::try_new(&log_filter) {
            return Err(err(
                "NEST_LOG",
                format!("`{log_filter}` is not a valid log filter ({e})"),
            ));
        }
        let log_format = match get("NEST_LOG_FORMAT").as_deref() {
            None | Some("text") => LogFormat::Text,
            Some("json") => LogFormat::Json,
            Some(v) => {
                return Err(err(
                    "NEST_LOG_FORMAT",
                    format!("`{v}` must be `text` or `json`"),
                ));
            }
        };

        let ssh_key_ids = match get("HETZNER_SSH_KEY_IDS") {
            None => Vec::new(),
            Some(v) => v
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(|s| {
                    s.parse::<u64>().map_err(|_| {
                        err(
                            "HETZNER_SSH_KEY_IDS",
                            format!("`{s}` is not a numeric SSH key id; expected e.g. 123,456"),
                        )
                    })
                })
                .collect::<Result<_, _>>()?,
        };
        let hetzner = HetznerConfig {
            api_token: get("HETZNER_API_TOKEN").map(Secret),
            ssh_key_ids,
            api_url: parse_http_url(
                "HETZNER_API_URL",
                get("HETZNER_API_URL")
                    .as_deref()
                    .unwrap_or("https://api.hetzner.cloud/v1"),
            )?,
        };

        let stripe = StripeConfig::parse(&get)?;

        let base_domain = get("NEST_BASE_DOMAIN").unwrap_or_else(|| "localhost".to_owned());
        let domain_ok = base_domain.len() <= 200
            && base_domain.split('.').all(|label| {
                !label.is_empty()
                    && label.len() <= 63
                    && label
                        .bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                    && !label.starts_with('-')
                    && !label.ends_with('-')
            });
        if !domain_ok {
            return Err(err(
                "NEST_BASE_DOMAIN",
                format!("`{base_domain}` is not a lowercase domain name such as apps.example.com"),
            ));
        }
        let caddy = CaddyConfig {
            admin_url: get("CADDY_ADMIN_URL")
                .map(|v| parse_http_url("CADDY_ADMIN_URL", &v))
                .transpose()?,
            base_domain,
        };

        let bounded =
            |var: &'static str, default: u32, max: u32, unit: &str| -> Result<u32, ConfigError> {
                match get(var) {
                    None => Ok(default),
                    Some(v) => v
                        .parse::<u32>()
                        .ok()
                        .filter(|n| (1..=max).contains(n))
                        .ok_or_else(|| {
                            err(
                                var,
                                format!(
                                    "`{v}` must be a whole number of {unit} between 1 and {max}"
                                ),
                            )
                        }),
                }
            };
        let session_idle_minutes = bounded("NEST_SESSION_IDLE_MINUTES", 30, 24 * 60, "minutes")?;
        let session_absolute_hours = bounded("NEST_SESSION_ABSOLUTE_HOURS", 12, 24 * 30, "hours")?;

        let hex_key = |var: &'static str, v: &str| -> Result<Secret, ConfigError> {
            if v.len() == 64 && v.bytes().all(|b| b.is_ascii_hexdigit()) {
                Ok(Secret(v.to_owned()))
            } else {
                Err(err(
                    var,
                    "must be 64 hexadecimal characters (32 bytes), e.g. from `openssl rand -hex 32` (the value is not shown)",
                ))
            }
        };
        let millis = |var: &'static str, default: u32| -> Result<u32, ConfigError> {
            match get(var) {
                None => Ok(default),
                Some(v) => v
                    .parse::<u32>()
                    .ok()
                    .filter(|n| *n <= 600_000)
                    .ok_or_else(|| {
                        err(
                            var,
                            format!(
                                "`{v}` must be a whole number of milliseconds between 0 and 600000"
                            ),
                        )
                    }),
            }
        };
        let sim_first_ip = match get("NEST_SIM_FIRST_IP") {
            None => std::net::Ipv4Addr::new(127, 0, 0, 2),
            Some(v) => v
                .parse::<std::net::Ipv4Addr>()
                .ok()
                .filter(|ip| ip.is_loopback() && ip.octets()[3] != 0 && ip.octets()[3] != 255)
                .ok_or_else(|| {
                    err(
                        "NEST_SIM_FIRST_IP",
                        format!("`{v}` must be a loopback IPv4 address such as 127.0.0.2"),
                    )
                })?,
        };
        let sim_addr = match get("NEST_SIM_ADDR") {
            None => SocketAddr::from(([127, 0, 0, 1], 0)),
            Some(v) => v
                .parse::<SocketAddr>()
                .ok()
                .filter(|a| a.ip().is_loopback())
                .ok_or_else(|| {
                    err(
                        "NEST_SIM_ADDR",
                        format!("`{v}` must be a loopback socket address such as 127.0.0.1:3199"),
                    )
                })?,
        };
        let sim_control_token = match get("NEST_SIM_CONTROL_TOKEN") {
            Some(v) if v.len() < 16 => {
                return Err(err(
                    "NEST_SIM_CONTROL_TOKEN",
                    "must be at least 16 characters (e.g. `openssl rand -hex 16`)",
                ));
            }
            v => v.map(Secret::from),
        };
        let provisioning = ProvisioningConfig {
            sim_addr,
            sim_control_token,
            job_interval_secs: bounded("NEST_JOB_INTERVAL_SECS", 60, 3600, "seconds")?,
            job_lease_secs: bounded("NEST_JOB_LEASE_SECS", 60, 3600, "seconds")?,
            reconcile_interval_secs: bounded_u32(
                &get,
                "NEST_RECONCILE_INTERVAL_SECS",
                3600,
                (5, 86_400),
                "seconds",
            )?,
            job_workers: bounded("NEST_JOB_WORKERS", 8, 64, "jobs")?,
            job_attempt_timeout_secs: bounded(
                "NEST_JOB_ATTEMPT_TIMEOUT_SECS",
                1800,
                86_400,
                "seconds",
            )?,
            smoke_timeout_secs: bounded("NEST_SMOKE_TIMEOUT_SECS", 300, 3600, "seconds")?,
            secrets_key: get("NEST_SECRETS_KEY")
                .map(|v| hex_key("NEST_SECRETS_KEY", &v))
                .transpose()?,
            previous_secrets_keys: get("NEST_SECRETS_PREVIOUS_KEYS")
                .map(|v| {
                    v.split(',')
                        .map(str::trim)
                        .filter(|k| !k.is_empty())
                        .map(|k| hex_key("NEST_SECRETS_PREVIOUS_KEYS", k))
                        .collect::<Result<Vec<_>, _>>()
                })
                .transpose()?
                .unwrap_or_default(),
            sim_boot_delay_ms: millis("NEST_SIM_BOOT_DELAY_MS", 3000)?,
            sim_action_delay_ms: millis("NEST_SIM_ACTION_DELAY_MS", 1000)?,
            sim_first_ip,
        };

        let metrics_addr = parse_metrics_addr(get("NEST_METRICS_ADDR"), addr)?;
        let trusted_proxies = get("NEST_TRUSTED_PROXIES")
            .map(|v| {
                v.split(',')
                    .map(str::trim)
                    .filter(|p| !p.is_empty())
                    .map(|p| {
                        p.parse::<IpNetwork>().map_err(|e| {
                            err(
                                "NEST_TRUSTED_PROXIES",
                                format!("{e}; expected addresses or CIDR ranges, comma-separated"),
                            )
                        })
                    })
                    .collect::<Result<Vec<_>, _>>()
            })
            .transpose()?
            .unwrap_or_default();

        let health = HealthConfig::parse(&get)?;
        let alerts = AlertChannels::parse(&get, &caddy.base_domain)?;
        let billing = BillingConfig::parse(&get)?;
        let brand_name = brand_name(&get)?;

        Ok(Self {
            brand_name,
            health,
            alerts,
            billing,
            provisioning,
            metrics_addr,
            trusted_proxies,
            addr,
            data_dir,
            database,
            site_url,
            site_url_set,
            site_root,
            log_filter,
            log_format,
            hetzner,
            stripe,
            caddy,
            session_idle_minutes,
            session_absolute_hours,
        })
    }

    /// The `Host` values (lower-cased `host:port`, the port always written) the dashboard
    /// answers to: `SITE_URL`'s; in local mode (no `SITE_URL`) also `NEST_ADDR` itself, and
    /// `localhost` when it listens on loopback or on every interface.
    pub fn allowed_hosts(&self) -> Vec<String> {
        let mut hosts = Vec::new();
        if let (Some(host), Some(port)) = (
            self.site_url.host_str(),
            self.site_url.port_or_known_default(),
        ) {
            hosts.push(format!("{}:{port}", host.to_ascii_lowercase()));
        }
        if !self.site_url_set {
            let port = self.addr.port();
            if !self.addr.ip().is_unspecified() {
                hosts.push(SocketAddr::new(self.addr.ip(), port).to_string());
            }
            if self.addr.ip().is_loopback() || self.addr.ip().is_unspecified() {
                hosts.push(format!("localhost:{port}"));
            }
        }
        hosts.sort();
        hosts.dedup();
        hosts
    }

    /// Whether the dashboard is served over https (secure cookies, HSTS).
    pub fn is_https(&self) -> bool {
        self.site_url.scheme() == "https"
    }
}

/// `NEST_METRICS_ADDR`: a socket address of its own (not the dashboard's), or unset.
fn parse_metrics_addr(
    value: Option<String>,
    dashboard: SocketAddr,
) -> Result<Option<SocketAddr>, ConfigError> {
    const VAR: &str = "NEST_METRICS_ADDR";
    let Some(v) = value else {
        return Ok(None);
    };
    let addr: SocketAddr = v.parse().map_err(|_| {
        err(
            VAR,
            format!("`{v}` is not a socket address such as 127.0.0.1:9464"),
        )
    })?;
    if addr == dashboard {
        return Err(err(
            VAR,
            format!(
                "`{v}` is the dashboard's own address (NEST_ADDR); metrics need a listener of their own"
            ),
        ));
    }
    Ok(Some(addr))
}

fn parse_http_url(var: &'static str, value: &str) -> Result<Url, ConfigError> {
    let url = Url::parse(value).map_err(|e| err(var, format!("`{value}` is not a URL ({e})")))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(err(
            var,
            format!("`{value}` must be an http(s) URL with a host"),
        ));
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn config(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        Config::from_lookup(|name| map.get(name).cloned())
    }

    #[test]
    fn no_variables_at_all_gives_the_local_defaults() {
        let c = config(&[]).unwrap();
        assert_eq!(c.addr.to_string(), "127.0.0.1:3001");
        assert_eq!(c.data_dir, PathBuf::from("./data"));
        assert_eq!(c.database.expose(), "sqlite://./data/nest.db?mode=rwc");
        assert_eq!(c.site_url.as_str(), "http://127.0.0.1:3001/");
        assert!(c.hetzner.api_token.is_none());
        assert!(c.stripe.secret_key.is_none());
        assert!(c.caddy.admin_url.is_none());
        assert!(c.metrics_addr.is_none());
        assert!(!c.is_https());
    }

    #[test]
    fn the_metrics_address_is_a_socket_address_of_its_own() {
        let c = config(&[("NEST_METRICS_ADDR", "127.0.0.1:9464")]).unwrap();
        assert_eq!(
            c.metrics_addr,
            Some(SocketAddr::from(([127, 0, 0, 1], 9464)))
        );
        let e = config(&[
            ("NEST_ADDR", "127.0.0.1:3001"),
            ("NEST_METRICS_ADDR", "127.0.0.1:3001"),
        ])
        .unwrap_err();
        assert_eq!(e.var, "NEST_METRICS_ADDR");
        assert!(e.message.contains("the dashboard's own address"), "{e}");
    }

    #[test]
    fn each_malformed_variable_names_itself_and_the_problem() {
        let cases: &[(&str, &str, &str)] = &[
            ("NEST_ADDR", "localhost", "is not a socket address"),
            ("NEST_ADDR", "127.0.0.1:99999", "is not a socket address"),
            (
                "DATABASE_URL",
                "mysql://root@localhost/nest",
                "must start with sqlite:// or postgres://",
            ),
            ("DATABASE_URL", "sqlite://", "names no SQLite file"),
            (
                "DATABASE_URL",
                "postgres://user:pw@[::1",
                "is not a valid PostgreSQL URL",
            ),
            ("SITE_URL", "nest.example.com", "is not a URL"),
            (
                "SITE_URL",
                "ftp://nest.example.com",
                "must use http or https",
            ),
            (
                "SITE_URL",
                "https://nest.example.com/admin",
                "must be an origin without a path",
            ),
            ("NEST_LOG", "info,,=[", "is not a valid log filter"),
            ("NEST_LOG_FORMAT", "yaml", "must be `text` or `json`"),
            ("NEST_METRICS_ADDR", "9464", "is not a socket address"),
            (
                "HETZNER_SSH_KEY_IDS",
                "12,abc",
                "`abc` is not a numeric SSH key id",
            ),
            ("HETZNER_API_URL", "not a url", "is not a URL"),
            (
                "HETZNER_API_URL",
                "file:///tmp/x",
                "must be an http(s) URL with a host",
            ),
            ("STRIPE_SECRET_KEY", "pk_live_123", "must start with `sk_`"),
            (
                "STRIPE_PUBLISHABLE_KEY",
                "sk_test_1",
                "must start with `pk_`",
            ),
            (
                "STRIPE_WEBHOOK_SECRET",
                "secret",
                "must start with `whsec_`",
            ),
            (
                "STRIPE_PRICE_STARTER",
                "prod_123",
                "must start with `price_`",
            ),
            ("STRIPE_PRICE_GROWTH", "123", "must start with `price_`"),
            ("STRIPE_PRICE_ENTERPRISE", "x", "must start with `price_`"),
            (
                "CADDY_ADMIN_URL",
                "localhost:2019",
                "must be an http(s) URL with a host",
            ),
            (
                "NEST_BASE_DOMAIN",
                "Apps.Example.com",
                "is not a lowercase domain name",
            ),
            (
                "NEST_BASE_DOMAIN",
                "apps..example.com",
                "is not a lowercase domain name",
            ),
        ];
        for (var, value, expected) in cases {
            let e = config(&[(var, value)]).expect_err(&format!("{var}={value} should be refused"));
            assert_eq!(e.var, *var, "{var}={value}: wrong variable blamed: {e}");
            assert!(
                e.message.contains(expected),
                "{var}={value}: message `{}` lacks `{expected}`",
                e.message
            );
            assert!(
                e.to_string()
                    .starts_with(&format!("configuration error: {var}: "))
            );
        }
    }

    #[test]
    fn a_stripe_key_without_a_webhook_secret_is_refused() {
        let e = config(&[("STRIPE_SECRET_KEY", "sk_test_1")]).unwrap_err();
        assert_eq!(e.var, "STRIPE_WEBHOOK_SECRET");
    }

    #[test]
    fn a_stripe_key_without_a_price_per_tier_is_refused_by_name() {
        let e = config(&[
            ("STRIPE_SECRET_KEY", "sk_test_1"),
            ("STRIPE_WEBHOOK_SECRET", "whsec_1"),
            ("STRIPE_PUBLISHABLE_KEY", "pk_test_1"),
            ("STRIPE_PRICE_STARTER", "price_1"),
            ("STRIPE_PRICE_ENTERPRISE", "price_3"),
        ])
        .unwrap_err();
        assert_eq!(e.var, "STRIPE_PRICE_GROWTH");
    }

    #[test]
    fn simulated_stripe_uses_the_simulators_prices_and_a_day_to_pay() {
        let c = config(&[]).unwrap();
        assert!(c.stripe.is_simulated());
        assert_eq!(c.stripe.prices.for_tier("growth"), Some("price_sim_growth"));
        assert_eq!(c.stripe.signup_expiry_hours, 24);
        let e = config(&[("NEST_SIGNUP_EXPIRY_HOURS", "0")]).unwrap_err();
        assert_eq!(e.var, "NEST_SIGNUP_EXPIRY_HOURS");
    }

    #[test]
    fn secrets_never_appear_in_debug_output_or_errors() {
        let c = config(&[
            ("HETZNER_API_TOKEN", "hcloud-token-xyz"),
            ("STRIPE_SECRET_KEY", "sk_test_supersecret"),
            ("STRIPE_WEBHOOK_SECRET", "whsec_supersecret"),
            ("STRIPE_PUBLISHABLE_KEY", "pk_test_1"),
            ("STRIPE_PRICE_STARTER", "price_1"),
            ("STRIPE_PRICE_GROWTH", "price_2"),
            ("STRIPE_PRICE_ENTERPRISE", "price_3"),
            ("DATABASE_URL", "postgres://nest:hunter2@db/nest"),
        ])
        .unwrap();
        let shown = format!("{c:?}");
        for secret in ["hcloud-token-xyz", "supersecret", "hunter2"] {
            assert!(!shown.contains(secret), "{secret} leaked into {shown}");
        }
        let e = config(&[("STRIPE_SECRET_KEY", "rk_live_leaky")]).unwrap_err();
        assert!(!e.to_string().contains("leaky"));
    }

    #[test]
    fn empty_values_count_as_unset() {
        let c = config(&[("NEST_ADDR", ""), ("HETZNER_API_TOKEN", "  ")]).unwrap();
        assert_eq!(c.addr.port(), 3001);
        assert!(c.hetzner.api_token.is_none());
    }

    #[test]
    fn a_sqlite_url_gets_create_mode_unless_it_chose_one() {
        assert_eq!(
            DatabaseUrl::parse("sqlite:nest.db").unwrap().expose(),
            "sqlite://nest.db?mode=rwc"
        );
        assert_eq!(
            DatabaseUrl::parse("sqlite://x.db?mode=ro")
                .unwrap()
                .expose(),
            "sqlite://x.db?mode=ro"
        );
        assert_eq!(
            DatabaseUrl::parse("sqlite://x.db?cache=shared")
                .unwrap()
                .expose(),
            "sqlite://x.db?cache=shared&mode=rwc"
        );
    }

    #[test]
    fn the_data_dir_moves_the_default_sqlite_file() {
        let c = config(&[("NEST_DATA_DIR", "/var/lib/nest")]).unwrap();
        assert_eq!(
            c.database.expose(),
            "sqlite:///var/lib/nest/nest.db?mode=rwc"
        );
    }

    #[test]
    fn the_allowed_hosts_are_the_site_url_s_or_in_local_mode_the_listening_address() {
        let local = config(&[("NEST_ADDR", "127.0.0.1:3101")]).unwrap();
        assert_eq!(
            local.allowed_hosts(),
            vec!["127.0.0.1:3101".to_owned(), "localhost:3101".to_owned()]
        );
        let site = config(&[
            ("NEST_ADDR", "0.0.0.0:3001"),
            ("SITE_URL", "https://Nest.Example.com"),
        ])
        .unwrap();
        assert_eq!(
            site.allowed_hosts(),
            vec!["nest.example.com:443".to_owned()]
        );
        let v6 = config(&[("NEST_ADDR", "[::1]:3001")]).unwrap();
        assert!(v6.allowed_hosts().contains(&"[::1]:3001".to_owned()));
    }

    #[test]
    fn trusted_proxies_are_addresses_or_ranges_of_either_family() {
        let c = config(&[(
            "NEST_TRUSTED_PROXIES",
            "10.0.0.0/8, 192.0.2.7 ,2001:db8::/32,::1",
        )])
        .unwrap();
        let has = |ip: &str| {
            let ip: IpAddr = ip.parse().unwrap();
            c.trusted_proxies.iter().any(|n| n.contains(ip))
        };
        assert!(has("10.200.3.4"));
        assert!(has("::ffff:10.1.1.1"));
        assert!(has("192.0.2.7"));
        assert!(!has("192.0.2.8"));
        assert!(has("2001:db8:ffff::1"));
        assert!(has("::1"));
        assert!(!has("127.0.0.1"));
        assert!(config(&[]).unwrap().trusted_proxies.is_empty());
        assert!(
            "0.0.0.0/0"
                .parse::<IpNetwork>()
                .unwrap()
                .contains("8.8.8.8".parse().unwrap())
        );
        for bad in ["10.0.0.0/33", "proxy.local", "10.0.0.0/x"] {
            let e = config(&[("NEST_TRUSTED_PROXIES", bad)]).unwrap_err();
            assert_eq!(e.var, "NEST_TRUSTED_PROXIES", "{bad}");
            assert!(!e.to_string().contains('\n'));
        }
    }

    #[test]
    fn an_https_site_url_turns_on_secure_mode() {
        assert!(
            config(&[("SITE_URL", "https://nest.example.com")])
                .unwrap()
                .is_https()
        );
    }

    #[test]
    fn ssh_key_ids_are_a_comma_separated_list() {
        let c = config(&[("HETZNER_SSH_KEY_IDS", "1, 22 ,333")]).unwrap();
        assert_eq!(c.hetzner.ssh_key_ids, vec![1, 22, 333]);
    }
}
