//! `App`: the one piece of shared state every request handler, server function and job sees.

use std::sync::Arc;

use app::backend::Backend;
use axum::extract::FromRef;
use leptos::config::LeptosOptions;
use sea_orm::DatabaseConnection;

use anyhow::Context;

use crate::admins::{AdminService, SessionPolicy};
use crate::audit::AuditService;
use crate::billing::stripe::StripeGateway;
use crate::billing::stripe::simulator::{
    SimConfig as StripeSimConfig, Simulator as StripeSimulator,
};
use crate::clock::Clock;
use crate::config::Config;
use crate::config::Secret;
use crate::events::Events;
use crate::hetzner::HetznerClient;
use crate::hetzner::simulator::{SimConfig, Simulator};
use crate::jobs::scheduler::{SchedulePeriods, Scheduler, SchedulerHealth, schedule};
use crate::jobs::{QueueConfig, Registry, Worker};
use crate::organizations::OrganizationService;
use crate::provisioning::secrets::SecretBox;
use crate::provisioning::{Provisioner, ProvisioningConfig};
use crate::routing::{CaddyClient, RoutingService};
use crate::system::SystemService;
use app::models::PaymentForm;
use url::Url;

/// The outside world as Nest sees it: Hetzner (real or simulated), the key that seals VPS
/// secrets, and Caddy (if configured).
#[derive(Clone)]
pub struct Integrations {
    /// The Hetzner client (pointed at the simulator when no token is set).
    pub hetzner: HetznerClient,
    /// The running simulator, when the cloud is simulated.
    pub simulator: Option<Arc<Simulator>>,
    /// Seals and opens VPS secrets.
    pub secrets: SecretBox,
    /// Caddy's admin API, when `CADDY_ADMIN_URL` is set.
    pub caddy: Option<CaddyClient>,
    /// Stripe (or its simulator).
    pub stripe: StripeIntegration,
}

/// Stripe as Nest sees it: the client, the webhook secret, how `/signup` takes cards, and the
/// running simulator when no `STRIPE_SECRET_KEY` is set.
#[derive(Clone)]
pub struct StripeIntegration {
    /// The client (pointed at the simulator in simulator mode).
    pub gateway: StripeGateway,
    /// Verifies webhook signatures (`STRIPE_WEBHOOK_SECRET`, or generated for the simulator).
    pub webhook_secret: Secret,
    /// Stripe's Payment Element, or the stand-in form.
    pub payment_form: PaymentForm,
    /// The running simulator, when Stripe is simulated.
    pub simulator: Option<Arc<StripeSimulator>>,
}

impl StripeIntegration {
    /// Connects to Stripe, or starts the simulator (delivering its events to `webhook_url`).
    pub async fn start(config: &Config, webhook_url: Url, clock: &Clock) -> anyhow::Result<Self> {
        let stripe = &config.stripe;
        match (&stripe.secret_key, &stripe.webhook_secret) {
            (Some(key), Some(secret)) => Ok(Self {
                gateway: StripeGateway::new(key.expose(), "https://api.stripe.com/")?,
                webhook_secret: secret.clone(),
                payment_form: PaymentForm::Stripe {
                    publishable_key: stripe.publishable_key.clone().unwrap_or_default(),
                },
                simulator: None,
            }),
            _ => {
                let secret = stripe.webhook_secret.clone().unwrap_or_else(|| {
                    Secret::from(format!("whsec_{}", crate::clock::random_hex(24)))
                });
                let simulator = StripeSimulator::start(StripeSimConfig {
                    addr: config.stripe.sim_addr,
                    control_token: config
                        .provisioning
                        .sim_control_token
                        .as_ref()
                        .map(|t| t.expose().to_owned()),
                    webhook_url: Some(webhook_url),
                    webhook_secret: secret.expose().to_owned(),
                    clock: clock.clone(),
                    ..StripeSimConfig::default()
                })
                .await
                .context("could not start the Stripe simulator")?;
                Ok(Self {
                    gateway: StripeGateway::new("sk_test_simulator", simulator.api_url().as_str())?,
                    webhook_secret: secret,
                    payment_form: PaymentForm::Simulated,
                    simulator: Some(Arc::new(simulator)),
                })
            }
        }
    }
}

impl Integrations {
    /// The key box alone: `NEST_SECRETS_KEY` (with `NEST_SECRETS_PREVIOUS_KEYS`), or the key file
    /// in the data directory (generated on first use, with a warning).
    pub fn secrets_only(config: &Config) -> anyhow::Result<SecretBox> {
        let previous: Vec<String> = config
            .provisioning
            .previous_secrets_keys
            .iter()
            .map(|k| k.expose().to_owned())
            .collect();
        let secrets = match &config.provisioning.secrets_key {
            Some(key) => SecretBox::new(key.expose(), &previous)
                .context("NEST_SECRETS_KEY is not a valid key")?,
            None => {
                let path = config.data_dir.join("secrets.key");
                let (secrets, generated) = SecretBox::from_key_file(&path, &previous)?;
                if generated {
                    tracing::warn!(
                        key.file = %path.display(),
                        "generated a key for VPS secrets; back it up, or set NEST_SECRETS_KEY in production"
                    );
                }
                secrets
            }
        };
        Ok(secrets)
    }

    /// Connects what the configuration names: starts the Hetzner simulator when no token is
    /// set, and loads (or, in local mode, generates) the secrets key.
    pub async fn start(config: &Config, clock: &Clock) -> anyhow::Result<Self> {
        let secrets = Self::secrets_only(config)?;
        let timeout = std::time::Duration::from_secs(30);
        let (hetzner, simulator) = match &config.hetzner.api_token {
            Some(token) => (
                HetznerClient::new(config.hetzner.api_url.clone(), token.clone(), timeout)?,
                None,
            ),
            None => {
                let p = &config.provisioning;
                let simulator = Simulator::start(SimConfig {
                    boot_delay: std::time::Duration::from_millis(u64::from(p.sim_boot_delay_ms)),
                    action_delay: std::time::Duration::from_millis(u64::from(
                        p.sim_action_delay_ms,
                    )),
                    first_ip: p.sim_first_ip,
                    addr: p.sim_addr,
                    control_token: p.sim_control_token.as_ref().map(|t| t.expose().to_owned()),
                })
                .await
                .context("could not start the Hetzner simulator")?;
                let client = HetznerClient::new(
                    simulator.api_url(),
                    crate::config::Secret::from("simulator".to_owned()),
                    timeout,
                )?;
                (client, Some(Arc::new(simulator)))
            }
        };
        let caddy = config
            .caddy
            .admin_url
            .clone()
            .map(CaddyClient::new)
            .transpose()?;
        let webhook_url = config
            .site_url
            .join("/webhooks/stripe")
            .context("SITE_URL cannot hold the webhook path")?;
        let stripe = StripeIntegration::start(config, webhook_url, clock).await?;
        Ok(Self {
            hetzner,
            simulator,
            secrets,
            caddy,
            stripe,
        })
    }
}

/// Shared state: configuration, database pool, clock, Leptos options, integrations, events.
#[derive(Clone)]
pub struct App {
    /// The configuration read at start-up.
    pub config: Arc<Config>,
    /// The database pool.
    pub db: DatabaseConnection,
    /// The time source (tests move it forward).
    pub clock: Clock,
    /// Where the browser bundle lives and what it is called.
    pub leptos: LeptosOptions,
    /// Hetzner, secrets, Caddy.
    pub integrations: Integrations,
    /// Job wake-ups and live updates.
    pub events: Events,
    /// When this process's scheduler last ticked (for `/healthz`).
    pub scheduler_health: SchedulerHealth,
    /// Open live-update streams (capped per session, ended at shutdown).
    pub live: crate::http::LiveStreams,
    /// Stripe's invoice events waiting to be applied (one applier per process).
    pub webhook_inbox: crate::billing::webhook::invoices::Inbox,
}

impl App {
    /// Builds the state from a configuration and an open, migrated database, starting the
    /// integrations (the Hetzner simulator among them).
    pub async fn start(config: Config, db: DatabaseConnection) -> anyhow::Result<Self> {
        Self::start_with_clock(config, db, Clock::system()).await
    }

    /// Like [`App::start`], with a given clock (tests).
    pub async fn start_with_clock(
        config: Config,
        db: DatabaseConnection,
        clock: Clock,
    ) -> anyhow::Result<Self> {
        let integrations = Integrations::start(&config, &clock).await?;
        let events = Events::connect(&db).await?;
        let mut app = Self::with(config, db, clock, integrations);
        app.events = events;
        app.webhook_inbox.start(&app.webhooks());
        Ok(app)
    }

    /// Assembles the state from its parts, with in-process events (see [`Events::connect`] for
    /// events shared between replicas, which [`App::start`] sets up).
    pub fn with(
        config: Config,
        db: DatabaseConnection,
        clock: Clock,
        integrations: Integrations,
    ) -> Self {
        let leptos = LeptosOptions::builder()
            .output_name("nest")
            .site_root(config.site_root.to_string_lossy().into_owned())
            .site_pkg_dir("pkg")
            .site_addr(config.addr)
            .build();
        Self {
            config: Arc::new(config),
            db,
            clock,
            leptos,
            integrations,
            events: Events::default(),
            scheduler_health: SchedulerHealth::default(),
            live: crate::http::LiveStreams::default(),
            webhook_inbox: crate::billing::webhook::invoices::Inbox::default(),
        }
    }

    /// Routing (Caddy) over the routes table.
    pub fn routing(&self) -> RoutingService {
        RoutingService {
            db: self.db.clone(),
            clock: self.clock.clone(),
            caddy: self.integrations.caddy.clone(),
            base_domain: self.config.caddy.base_domain.clone(),
        }
    }

    /// The queue's settings, from the configuration.
    pub fn queue_config(&self) -> QueueConfig {
        let p = &self.config.provisioning;
        let secs = |n: u32| std::time::Duration::from_secs(u64::from(n));
        QueueConfig {
            interval: secs(p.job_interval_secs),
            lease: secs(p.job_lease_secs),
            parallel: usize::try_from(p.job_workers).unwrap_or(8),
            attempt_timeout: secs(p.job_attempt_timeout_secs),
            ..QueueConfig::default()
        }
    }

    /// The provisioning flows' settings, from the configuration.
    pub fn provisioning_config(&self) -> ProvisioningConfig {
        ProvisioningConfig {
            smoke_timeout: std::time::Duration::from_secs(u64::from(
                self.config.provisioning.smoke_timeout_secs,
            )),
            ssh_key_ids: self.config.hetzner.ssh_key_ids.clone(),
            site_url: self
                .config
                .site_url
                .as_str()
                .trim_end_matches('/')
                .to_owned(),
            base_domain: self.config.caddy.base_domain.clone(),
            ..ProvisioningConfig::default()
        }
    }

    /// The provisioning handler with the given settings.
    pub fn provisioner(&self, config: ProvisioningConfig) -> Provisioner {
        Provisioner {
            db: self.db.clone(),
            clock: self.clock.clone(),
            hetzner: self.integrations.hetzner.clone(),
            secrets: self.integrations.secrets.clone(),
            organizations: self.organizations(),
            routing: self.routing(),
            events: self.events.clone(),
            config: Arc::new(config),
            http: reqwest::Client::new(),
            billing: self.cancellation(),
        }
    }

    /// Compares the database with Hetzner and Stripe.
    pub fn reconciler(&self) -> crate::reconcile::Reconciler {
        crate::reconcile::Reconciler {
            db: self.db.clone(),
            clock: self.clock.clone(),
            hetzner: self.integrations.hetzner.clone(),
            billing: self.subscription_billing(),
            channels: crate::health::alerts::Channels::of(&self.config.alerts),
            events: self.events.clone(),
        }
    }

    /// `/reconcile`'s findings and the actions on them.
    pub fn reconcile_service(&self) -> crate::reconcile::service::ReconcileService {
        crate::reconcile::service::ReconcileService {
            db: self.db.clone(),
            clock: self.clock.clone(),
            hetzner: self.integrations.hetzner.clone(),
            billing: self.subscription_billing(),
            events: self.events.clone(),
            organizations: self.organizations(),
        }
    }

    /// Margins of Hetzner's cost against the tiers' prices.
    pub fn costs(&self) -> crate::costs::CostService {
        crate::costs::CostService {
            db: self.db.clone(),
            warn_percent: self.config.billing.margin_warn_percent,
        }
    }

    /// Reads and keeps Hetzner's prices (the daily `price_refresh` task).
    pub fn price_refresh(&self) -> crate::costs::PriceRefresh {
        crate::costs::PriceRefresh {
            db: self.db.clone(),
            clock: self.clock.clone(),
            hetzner: self.integrations.hetzner.clone(),
        }
    }

    /// Cancels the subscriptions of organizations whose service ended.
    pub fn cancellation(&self) -> crate::billing::cancellation::Cancellation {
        crate::billing::cancellation::Cancellation {
            db: self.db.clone(),
            clock: self.clock.clone(),
            stripe: self.integrations.stripe.gateway.clone(),
            events: self.events.clone(),
        }
    }

    /// Every job kind's handler: provisioning, and Nest's own periodic tasks.
    pub fn registry(&self, provisioner: Provisioner) -> Registry {
        let housekeeping = crate::jobs::housekeeping::Housekeeping {
            db: self.db.clone(),
            clock: self.clock.clone(),
            sessions: crate::admins::session_store::DbSessionStore::new(
                self.db.clone(),
                self.clock.clone(),
                self.session_policy().idle,
            ),
            routing: self.routing(),
        };
        let health = Arc::new(self.health_settings());
        let channels = crate::health::alerts::Channels::of(&self.config.alerts);
        Registry::default()
            .with(
                &[app::models::JobKind::HealthSweep],
                Arc::new(self.sweeper(health.clone())),
            )
            .with(
                &[app::models::JobKind::HealthRollup],
                Arc::new(crate::health::history::History {
                    db: self.db.clone(),
                    clock: self.clock.clone(),
                    settings: health,
                }),
            )
            .with(
                &[app::models::JobKind::Reboot],
                Arc::new(crate::health::reboot::Rebooter {
                    db: self.db.clone(),
                    clock: self.clock.clone(),
                    hetzner: self.integrations.hetzner.clone(),
                    action_timeout: provisioner.config.action_timeout,
                    channels,
                }),
            )
            .with(
                &[app::models::JobKind::NotifyAlert],
                Arc::new(crate::health::notify::Notifier {
                    db: self.db.clone(),
                    channels: self.config.alerts.clone(),
                    http: reqwest::Client::new(),
                }),
            )
            .with(
                &[app::models::JobKind::SignupExpiry],
                Arc::new(crate::signups::expiry::Expiry {
                    db: self.db.clone(),
                    clock: self.clock.clone(),
                    stripe: self.integrations.stripe.gateway.clone(),
                    events: self.events.clone(),
                }),
            )
            .with(
                &[
                    app::models::JobKind::InvoiceRun,
                    app::models::JobKind::RecordInvoice,
                ],
                Arc::new(self.ledger()),
            )
            .with(
                &[app::models::JobKind::CancelSubscription],
                Arc::new(self.cancellation()),
            )
            .with(
                &[app::models::JobKind::Reconcile],
                Arc::new(self.reconciler()),
            )
            .with(
                &[app::models::JobKind::PriceRefresh],
                Arc::new(self.price_refresh()),
            )
            .with(Provisioner::KINDS, Arc::new(provisioner))
            .with(
                &[
                    app::models::JobKind::SessionPurge,
                    app::models::JobKind::CaddyReconcile,
                    app::models::JobKind::JobPrune,
                ],
                Arc::new(housekeeping),
            )
    }

    /// A queue worker with the given settings and registry.
    pub fn worker_with(&self, config: QueueConfig, registry: Registry) -> Worker {
        Worker {
            db: self.db.clone(),
            clock: self.clock.clone(),
            events: self.events.clone(),
            config: Arc::new(config),
            registry: Arc::new(registry),
            name: Worker::new_name(),
        }
    }

    /// A queue worker configured from the environment, with every handler.
    pub fn worker(&self) -> Worker {
        let registry = self.registry(self.provisioner(self.provisioning_config()));
        self.worker_with(self.queue_config(), registry)
    }

    /// The health monitor's settings from the configuration.
    pub fn health_settings(&self) -> crate::health::HealthSettings {
        crate::health::HealthSettings::from_config(&self.config)
    }

    /// The health sweep's runner with `settings` (tests call `sweep()` on it directly).
    pub fn sweeper(
        &self,
        settings: Arc<crate::health::HealthSettings>,
    ) -> crate::health::sweep::Sweeper {
        crate::health::sweep::Sweeper {
            db: self.db.clone(),
            clock: self.clock.clone(),
            prober: crate::health::probe::Prober {
                timeout: settings.probe_timeout,
            },
            settings,
            channels: crate::health::alerts::Channels::of(&self.config.alerts),
            events: self.events.clone(),
        }
    }

    /// The scheduler of this process (its ticks are reported by `/healthz`).
    pub fn scheduler(&self) -> Scheduler {
        Scheduler {
            db: self.db.clone(),
            clock: self.clock.clone(),
            events: self.events.clone(),
            tasks: Arc::new(schedule(&SchedulePeriods {
                caddy_reconcile: self.queue_config().interval,
                health_sweep: self.health_settings().interval,
                reconcile: std::time::Duration::from_secs(u64::from(
                    self.config.provisioning.reconcile_interval_secs,
                )),
            })),
            health: self.scheduler_health.clone(),
        }
    }

    /// Session lifetimes from the configuration.
    pub fn session_policy(&self) -> SessionPolicy {
        SessionPolicy::from_config(&self.config)
    }

    /// The admin-access service.
    pub fn admins(&self) -> AdminService {
        AdminService {
            db: self.db.clone(),
            clock: self.clock.clone(),
            policy: self.session_policy(),
            events: Some(self.events.clone()),
        }
    }

    /// The organization service.
    pub fn organizations(&self) -> OrganizationService {
        OrganizationService {
            db: self.db.clone(),
            clock: self.clock.clone(),
            base_domain: self.config.caddy.base_domain.clone(),
            events: self.events.clone(),
            routing: self.routing(),
            billing: Some(self.subscription_billing()),
        }
    }

    /// Stripe and each tier's price, for organizations' subscriptions.
    pub fn subscription_billing(&self) -> crate::billing::stripe::SubscriptionBilling {
        crate::billing::stripe::SubscriptionBilling {
            gateway: self.integrations.stripe.gateway.clone(),
            prices: self.config.stripe.prices.clone(),
        }
    }

    /// Self-service signups.
    pub fn signups(&self) -> crate::signups::SignupService {
        crate::signups::SignupService {
            db: self.db.clone(),
            clock: self.clock.clone(),
            organizations: self.organizations(),
            stripe: self.integrations.stripe.gateway.clone(),
            payment_form: self.integrations.stripe.payment_form.clone(),
            expiry: chrono::Duration::hours(i64::from(self.config.stripe.signup_expiry_hours)),
            instance_scheme: self.config.site_url.scheme().to_owned(),
            prices: self.config.stripe.prices.clone(),
        }
    }

    /// The Stripe webhook's service.
    pub fn webhooks(&self) -> crate::billing::webhook::WebhookService {
        crate::billing::webhook::WebhookService {
            db: self.db.clone(),
            clock: self.clock.clone(),
            organizations: self.organizations(),
            stripe: self.integrations.stripe.gateway.clone(),
            secret: self.integrations.stripe.webhook_secret.clone(),
            inbox: self.webhook_inbox.clone(),
        }
    }

    /// The invoice ledger: the daily run, Stripe's invoices, admins settling invoices, dunning.
    pub fn ledger(&self) -> crate::billing::ledger::Ledger {
        crate::billing::ledger::Ledger {
            db: self.db.clone(),
            clock: self.clock.clone(),
            events: self.events.clone(),
            organizations: self.organizations(),
            dunning_suspend_days: self.config.billing.dunning_suspend_days,
        }
    }

    /// The job queue's admin service (`/jobs`, `nest jobs`).
    pub fn jobs(&self) -> crate::jobs::service::JobService {
        crate::jobs::service::JobService {
            db: self.db.clone(),
            clock: self.clock.clone(),
            events: self.events.clone(),
            organizations: self.organizations(),
        }
    }

    /// The services the `#[server]` functions call, provided to Leptos as context.
    pub fn backend(&self) -> Backend {
        Backend {
            brand: self.config.brand_name.clone(),
            system: Arc::new(SystemService {
                db: self.db.clone(),
                config: self.config.clone(),
                events: self.events.clone(),
            }),
            admins: Arc::new(self.admins()),
            two_factor: Arc::new(crate::admins::two_factor::TwoFactorService {
                admins: self.admins(),
                secrets: self.integrations.secrets.clone(),
            }),
            health: Arc::new(crate::health::queries::HealthService {
                db: self.db.clone(),
                clock: self.clock.clone(),
                events: self.events.clone(),
            }),
            audit: Arc::new(AuditService {
                db: self.db.clone(),
            }),
            organizations: Arc::new(self.organizations()),
            tiers: Arc::new(crate::billing::tiers::TierService {
                db: self.db.clone(),
                clock: self.clock.clone(),
                events: self.events.clone(),
            }),
            vpses: Arc::new(crate::vpses::VpsService {
                db: self.db.clone(),
            }),
            jobs: Arc::new(self.jobs()),
            signups: Arc::new(self.signups()),
            billing: Arc::new(crate::billing::queries::BillingService {
                db: self.db.clone(),
                clock: self.clock.clone(),
                ledger: self.ledger(),
            }),
            reconcile: Arc::new(self.reconcile_service()),
            costs: Arc::new(self.costs()),
        }
    }
}

impl FromRef<App> for LeptosOptions {
    fn from_ref(app: &App) -> Self {
        app.leptos.clone()
    }
}
