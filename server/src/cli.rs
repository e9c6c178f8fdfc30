//! The `nest` command line: `serve` (the default), `migrate up|down|status` and the admin tools.

use anyhow::{Context, bail};
use tokio::net::TcpListener;

use crate::config::Config;
use crate::state::App;
use crate::{db, http, seed};

/// Usage text for `nest help`.
pub const USAGE: &str = "\
nest — the Nest control plane

USAGE:
    nest [serve]                 run the dashboard and background jobs (migrates first)
    nest migrate up              apply pending database migrations
    nest migrate down [STEPS]    revert the last STEPS migrations (default 1; `all` for every one)
    nest migrate status          list applied and pending migrations
    nest create-admin --email EMAIL [--role superadmin|admin]
                                 create a platform admin; the password is read from standard
                                 input (prompted, without echo, on a terminal); never an argument
    nest add-signup --name NAME --slug SLUG --email EMAIL [--tier CODE] [--region REGION]
                                 record a signup awaiting approval on /waitlist (tier code
                                 default starter, region default nbg1)
    nest reseal-secrets          re-encrypt every VPS's secrets and every admin's two-factor
                                 secret with NEST_SECRETS_KEY (after a
                                 rotation, with the old key in NEST_SECRETS_PREVIOUS_KEYS)
    nest jobs list [--state STATE] [--kind KIND]
                                 list the newest jobs (all replicas), failed ones with their
                                 step and error
    nest jobs retry ID           queue failed job ID again (audited as system:cli)
    nest billing run-invoices    run the daily invoice run now: this month's invoices, overdue
                                 detection, dunning (idempotent; `nest serve` runs it daily)
    nest simulate-hetzner        run only the Hetzner simulator (NEST_SIM_* settings), so a
                                 separate `nest serve` can use it through HETZNER_API_URL and
                                 survive its own restarts (any HETZNER_API_TOKEN value works)
    nest simulate-stripe         run only the Stripe simulator (NEST_STRIPE_SIM_ADDR, webhooks
                                 signed with STRIPE_WEBHOOK_SECRET to NEST_STRIPE_SIM_WEBHOOK_URL),
                                 for a `nest serve` or a browser test pointed at it
    nest help | --help           show this text
    nest --version               show the version

Configuration comes from environment variables (and ./.env); see README.md.";

/// A parsed command line.
#[derive(Debug, PartialEq, Eq)]
pub enum Command {
    /// Serve HTTP.
    Serve,
    /// Apply migrations.
    MigrateUp,
    /// Revert migrations (`None`: all).
    MigrateDown(Option<u32>),
    /// Show migrations.
    MigrateStatus,
    /// Create a platform admin.
    CreateAdmin {
        /// Their email.
        email: String,
        /// Their role (default superadmin).
        role: app::models::AdminRole,
    },
    /// Record a pending signup (for the waitlist).
    AddSignup {
        /// Organization name.
        name: String,
        /// Slug.
        slug: String,
        /// Owner email.
        email: String,
        /// Tier code.
        tier: String,
        /// Region code.
        region: String,
    },
    /// List jobs.
    JobsList {
        /// Only this state.
        state: Option<app::models::JobState>,
        /// Only this kind.
        kind: Option<app::models::JobKind>,
    },
    /// Retry a failed job.
    JobsRetry(i64),
    /// Run the daily invoice run now.
    BillingRunInvoices,
    /// Run the Hetzner simulator alone.
    SimulateHetzner,
    /// Run the Stripe simulator alone.
    SimulateStripe,
    /// Re-encrypt VPS secrets with the current key.
    ResealSecrets,
    /// Print usage.
    Help,
    /// Print the version.
    Version,
}

/// Parses the arguments after the program name.
pub fn parse(args: &[String]) -> anyhow::Result<Command> {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    Ok(match args.as_slice() {
        [] | ["serve"] => Command::Serve,
        ["help" | "--help" | "-h"] => Command::Help,
        ["--version" | "-V" | "version"] => Command::Version,
        ["migrate"] | ["migrate", "up"] => Command::MigrateUp,
        ["migrate", "status"] => Command::MigrateStatus,
        ["migrate", "down"] => Command::MigrateDown(Some(1)),
        ["migrate", "down", "all"] => Command::MigrateDown(None),
        ["migrate", "down", n] => Command::MigrateDown(Some(
            n.parse()
                .with_context(|| format!("`{n}` is not a number of steps (or `all`)"))?,
        )),
        ["create-admin", rest @ ..] => parse_create_admin(rest)?,
        ["jobs", "list", rest @ ..] => parse_jobs_list(rest)?,
        ["jobs", "retry", id] => Command::JobsRetry(
            id.parse()
                .with_context(|| format!("`{id}` is not a job id"))?,
        ),
        ["simulate-hetzner"] => Command::SimulateHetzner,
        ["simulate-stripe"] => Command::SimulateStripe,
        ["billing", "run-invoices"] => Command::BillingRunInvoices,
        ["reseal-secrets"] => Command::ResealSecrets,
        ["add-signup", rest @ ..] => parse_add_signup(rest)?,
        other => bail!("unknown command `{}`; run `nest help`", other.join(" ")),
    })
}

fn parse_create_admin(args: &[&str]) -> anyhow::Result<Command> {
    let (mut email, mut role) = (None, app::models::AdminRole::Superadmin);
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        match *arg {
            "--email" => email = Some(it.next().context("--email needs a value")?.to_string()),
            "--role" => {
                let value = it.next().context("--role needs a value")?;
                role = value.parse().map_err(|e| anyhow::anyhow!("--role: {e}"))?;
            }
            "--password" => bail!(
                "passwords are never taken as arguments (they would end up in shell history); pipe it to standard input"
            ),
            other => bail!("create-admin: unknown argument `{other}`"),
        }
    }
    Ok(Command::CreateAdmin {
        email: email.context("create-admin needs --email")?,
        role,
    })
}

fn parse_jobs_list(args: &[&str]) -> anyhow::Result<Command> {
    let (mut state, mut kind) = (None, None);
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let value = it.next().with_context(|| format!("{arg} needs a value"))?;
        match *arg {
            "--state" => state = Some(value.parse().map_err(|e| anyhow::anyhow!("--state: {e}"))?),
            "--kind" => kind = Some(value.parse().map_err(|e| anyhow::anyhow!("--kind: {e}"))?),
            other => bail!("jobs list: unknown argument `{other}`"),
        }
    }
    Ok(Command::JobsList { state, kind })
}

fn parse_add_signup(args: &[&str]) -> anyhow::Result<Command> {
    let (mut name, mut slug, mut email) = (None, None, None);
    let (mut tier, mut region) = ("starter".to_owned(), "nbg1".to_owned());
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let mut value = || -> anyhow::Result<String> {
            Ok(it
                .next()
                .with_context(|| format!("{arg} needs a value"))?
                .to_string())
        };
        match *arg {
            "--name" => name = Some(value()?),
            "--slug" => slug = Some(value()?),
            "--email" => email = Some(value()?),
            "--tier" => tier = value()?,
            "--region" => region = value()?,
            other => bail!("add-signup: unknown argument `{other}`"),
        }
    }
    Ok(Command::AddSignup {
        name: name.context("add-signup needs --name")?,
        slug: slug.context("add-signup needs --slug")?,
        email: email.context("add-signup needs --email")?,
        tier,
        region,
    })
}

/// The actor of audit rows written from the command line.
/// `nest jobs list` output: one line per job, failed ones with their step and error.
pub fn jobs_table(page: &app::models::JobPage) -> String {
    use std::fmt::Write;
    let mut out = format!(
        "{:>8}  {:<16} {:<10} {:<20} {:>8}  {}\n",
        "ID", "KIND", "STATE", "ORGANIZATION", "ATTEMPTS", "QUEUED"
    );
    for j in &page.rows {
        let org = j.organization.as_ref().map_or("-", |o| o.slug.as_str());
        let _ = writeln!(
            out,
            "{:>8}  {:<16} {:<10} {:<20} {:>8}  {}",
            j.id,
            j.kind.as_str(),
            j.state.as_str(),
            org,
            format!("{}/{}", j.attempts, j.max_attempts),
            j.created_at.format("%Y-%m-%d %H:%M:%S")
        );
        if j.state == app::models::JobState::Failed {
            // The error starts with the label of the step that failed.
            let _ = writeln!(
                out,
                "          failed: {}",
                j.last_error.as_deref().unwrap_or("no error recorded")
            );
        }
    }
    if page.rows.is_empty() {
        out.push_str("no jobs\n");
    }
    out
}

/// Reads the new admin's password: prompted twice without echo on a terminal, else one line.
fn read_password() -> anyhow::Result<String> {
    use std::io::IsTerminal;
    if std::io::stdin().is_terminal() {
        let first = rpassword::prompt_password("Password: ")?;
        let second = rpassword::prompt_password("Confirm password: ")?;
        if first != second {
            bail!("the passwords do not match");
        }
        Ok(first)
    } else {
        let mut line = String::new();
        std::io::stdin().read_line(&mut line)?;
        Ok(line.trim_end_matches(['\r', '\n']).to_owned())
    }
}

/// Runs a command to completion.
pub async fn run(command: Command, config: Config) -> anyhow::Result<()> {
    match command {
        Command::Help => println!("{USAGE}"),
        Command::Version => println!("nest {}", env!("CARGO_PKG_VERSION")),
        Command::Serve => serve(config).await?,
        Command::MigrateUp => {
            let db = db::connect(&config.database).await?;
            db::migrate_up(&db).await?;
            seed::ensure_reference_data(&db, &config.stripe.prices).await?;
            println!("migrations applied");
        }
        Command::MigrateDown(steps) => {
            let db = db::connect(&config.database).await?;
            db::migrate_down(&db, steps).await?;
            println!(
                "migrations reverted ({})",
                steps.map_or("all".to_owned(), |n| n.to_string())
            );
        }
        Command::CreateAdmin { email, role } => {
            let password = read_password()?;
            let db = db::connect(&config.database).await?;
            db::migrate_up(&db).await?;
            seed::ensure_reference_data(&db, &config.stripe.prices).await?;
            let admins = crate::admins::AdminService {
                db,
                clock: crate::clock::Clock::system(),
                policy: crate::admins::SessionPolicy::from_config(&config),
                events: None,
            };
            let user = admins
                .create_from_cli(&email, role, password)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            println!("created {role} {} (user {})", user.email, user.id);
        }
        Command::AddSignup {
            name,
            slug,
            email,
            tier,
            region,
        } => {
            use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
            let db = db::connect(&config.database).await?;
            db::migrate_up(&db).await?;
            seed::ensure_reference_data(&db, &config.stripe.prices).await?;
            let tier_id = crate::entities::tiers::Entity::find()
                .filter(crate::entities::tiers::Column::Code.eq(tier.as_str()))
                .one(&db)
                .await?
                .with_context(|| format!("no tier with code `{tier}`"))?
                .id;
            let clock = crate::clock::Clock::system();
            let organizations = crate::organizations::OrganizationService {
                db: db.clone(),
                clock: clock.clone(),
                base_domain: config.caddy.base_domain.clone(),
                events: crate::events::Events::default(),
                routing: crate::routing::RoutingService {
                    db: db.clone(),
                    clock,
                    caddy: None,
                    base_domain: config.caddy.base_domain.clone(),
                },
                billing: None,
            };
            let actor = crate::audit::Actor::system("cli");
            let org = organizations
                .create(
                    &actor,
                    crate::organizations::NewOrganization {
                        name,
                        slug,
                        owner_email: email,
                        tier_id,
                        region,
                    },
                    false,
                )
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            println!(
                "signup {} ({}) is waiting for approval on /waitlist",
                org.id, org.slug
            );
        }
        Command::JobsList { state, kind } => {
            let db = db::connect(&config.database).await?;
            db::migrate_up(&db).await?;
            let page = crate::jobs::queries::list(
                &db,
                &app::models::JobQuery {
                    kind,
                    state,
                    ..Default::default()
                },
            )
            .await?;
            print!("{}", jobs_table(&page));
        }
        Command::JobsRetry(id) => {
            let db = db::connect(&config.database).await?;
            db::migrate_up(&db).await?;
            let clock = crate::clock::Clock::system();
            let events = crate::events::Events::default();
            let routing = crate::routing::RoutingService {
                db: db.clone(),
                clock: clock.clone(),
                caddy: None,
                base_domain: config.caddy.base_domain.clone(),
            };
            let service = crate::jobs::service::JobService {
                db: db.clone(),
                clock: clock.clone(),
                events: events.clone(),
                organizations: crate::organizations::OrganizationService {
                    db,
                    clock,
                    base_domain: config.caddy.base_domain.clone(),
                    events,
                    routing,
                    billing: None,
                },
            };
            service
                .retry(&crate::audit::Actor::system("cli"), id)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            println!(
                "job {id} is queued again; a running `nest serve` picks it up within NEST_JOB_INTERVAL_SECS"
            );
        }
        Command::BillingRunInvoices => {
            let db = db::connect(&config.database).await?;
            db::migrate_up(&db).await?;
            let clock = crate::clock::Clock::system();
            let events = crate::events::Events::default();
            let routing = crate::routing::RoutingService {
                db: db.clone(),
                clock: clock.clone(),
                caddy: config
                    .caddy
                    .admin_url
                    .clone()
                    .map(crate::routing::CaddyClient::new)
                    .transpose()?,
                base_domain: config.caddy.base_domain.clone(),
            };
            let ledger = crate::billing::ledger::Ledger {
                db: db.clone(),
                clock: clock.clone(),
                events: events.clone(),
                organizations: crate::organizations::OrganizationService {
                    db,
                    clock,
                    base_domain: config.caddy.base_domain.clone(),
                    events,
                    routing,
                    billing: None,
                },
                dunning_suspend_days: config.billing.dunning_suspend_days,
            };
            let report = ledger.run_now().await.map_err(|e| anyhow::anyhow!("{e}"))?;
            println!(
                "invoice run for {}: {} invoices created, {} overdue, {} organizations suspended",
                report
                    .month
                    .map_or_else(String::new, |m| m.format("%Y-%m").to_string()),
                report.created,
                report.overdue,
                report.suspended.len()
            );
        }
        Command::ResealSecrets => {
            let db = db::connect(&config.database).await?;
            db::migrate_up(&db).await?;
            let keys = crate::state::Integrations::secrets_only(&config)?;
            let moved = crate::provisioning::secrets::reseal_all(&db, &keys).await?;
            let factors = crate::admins::two_factor::reseal_all(&db, &keys).await?;
            println!(
                "re-sealed the secrets of {moved} VPS(es) and {factors} two-factor authenticator(s) with key {}",
                keys.current_key_id()
            );
        }
        Command::SimulateHetzner => {
            let p = &config.provisioning;
            let simulator =
                crate::hetzner::simulator::Simulator::start(crate::hetzner::simulator::SimConfig {
                    boot_delay: std::time::Duration::from_millis(u64::from(p.sim_boot_delay_ms)),
                    action_delay: std::time::Duration::from_millis(u64::from(
                        p.sim_action_delay_ms,
                    )),
                    first_ip: p.sim_first_ip,
                    addr: p.sim_addr,
                    control_token: p.sim_control_token.as_ref().map(|t| t.expose().to_owned()),
                })
                .await?;
            println!("Hetzner simulator: HETZNER_API_URL={}", simulator.api_url());
            println!("control API: {}", simulator.control_url());
            println!(
                "control API token (header X-Sim-Token): {}",
                simulator.control_token()
            );
            shutdown_signal().await;
        }
        Command::SimulateStripe => {
            simulate_stripe(&config).await?;
        }
        Command::MigrateStatus => {
            let db = db::connect(&config.database).await?;
            let (applied, pending) = db::migration_status(&db).await?;
            for name in applied {
                println!("applied  {name}");
            }
            for name in pending {
                println!("pending  {name}");
            }
        }
    }
    Ok(())
}

/// Connects, migrates, seeds, then serves until SIGTERM or Ctrl-C.
pub async fn serve(config: Config) -> anyhow::Result<()> {
    // Held until the process ends: a second `nest serve` on the same SQLite file is refused.
    let _sqlite_lock = db::lock_sqlite(&config.database)?;
    let db = db::connect(&config.database).await?;
    db::migrate_up(&db)
        .await
        .context("database migration failed")?;
    seed::ensure_reference_data(&db, &config.stripe.prices)
        .await
        .context("seeding reference data failed")?;

    let pkg = config.site_root.join("pkg");
    if !crate::http::assets::BUNDLE
        .iter()
        .all(|file| pkg.join(file).exists())
    {
        tracing::warn!(
            site.root = %config.site_root.display(),
            "the browser bundle is missing: pages will render but not hydrate (build it with `cargo make build-site`)"
        );
    }

    let listener = TcpListener::bind(config.addr)
        .await
        .with_context(|| format!("could not listen on {} (NEST_ADDR)", config.addr))?;
    if let Some(addr) = config.metrics_addr {
        let bound = crate::metrics::serve(addr).await?;
        tracing::info!(metrics.addr = %bound, "Prometheus metrics at /metrics");
    }
    let app = App::start(config, db.clone()).await?;
    if app.integrations.simulator.is_some() {
        tracing::warn!(
            "HETZNER_API_TOKEN is not set: using the built-in Hetzner simulator (simulated cloud)"
        );
    }
    if let Some(stripe) = &app.integrations.stripe.simulator {
        tracing::warn!(
            stripe.api = %stripe.api_url(),
            stripe.control_token = stripe.control_token(),
            "STRIPE_SECRET_KEY is not set: using the built-in Stripe simulator (no real payments; /signup shows a stand-in form)"
        );
    }
    if let Err(e) = app.routing().reconcile().await {
        tracing::warn!(error.detail = %e, "could not re-apply routes to Caddy at start-up");
    }
    let background = start_background(&app);
    tracing::info!(
        http.addr = %app.config.addr,
        site.url = %app.config.site_url,
        db.kind = db::kind(&db).label(),
        "Nest is listening"
    );
    let live = app.live.clone();
    axum::serve(
        listener,
        http::router(app).into_make_service_with_connect_info::<std::net::SocketAddr>(),
    )
    .with_graceful_shutdown(async move {
        shutdown_signal().await;
        // Open live-update streams would hold the graceful shutdown open forever.
        live.shut_down();
    })
    .await?;
    tracing::info!("shutting down: stopping background tasks and closing the database");
    for task in background {
        task.abort();
    }
    db.close().await?;
    Ok(())
}

/// Starts the background tasks of `nest serve`, each supervised (restarted with backoff after
/// an error or a panic): the scheduler and the job worker.
fn start_background(app: &App) -> Vec<tokio::task::JoinHandle<()>> {
    use crate::jobs::supervise::supervise;
    let scheduler = app.scheduler();
    let worker = app.worker();
    vec![
        supervise("scheduler", move || scheduler.clone().run()),
        supervise("job_worker", move || worker.clone().run()),
    ]
}

/// Resolves on Ctrl-C or SIGTERM.
/// `nest simulate-stripe`: the simulator's own settings are read here, not by `Config` (they
/// mean nothing to `nest serve`).
async fn simulate_stripe(config: &Config) -> anyhow::Result<()> {
    use crate::billing::stripe::simulator::{SimConfig, Simulator};
    let var = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
    let addr: std::net::SocketAddr = var("NEST_STRIPE_SIM_ADDR")
        .as_deref()
        .unwrap_or("127.0.0.1:12111")
        .parse()
        .context("NEST_STRIPE_SIM_ADDR is not an address such as 127.0.0.1:12111")?;
    let webhook_url: url::Url = var("NEST_STRIPE_SIM_WEBHOOK_URL")
        .as_deref()
        .unwrap_or("http://127.0.0.1:3001/webhooks/stripe")
        .parse()
        .context("NEST_STRIPE_SIM_WEBHOOK_URL is not a URL")?;
    let defaults = SimConfig::default();
    let webhook_secret = config
        .stripe
        .webhook_secret
        .as_ref()
        .map_or(defaults.webhook_secret.clone(), |s| s.expose().to_owned());
    let simulator = Simulator::start(SimConfig {
        addr,
        control_token: config
            .provisioning
            .sim_control_token
            .as_ref()
            .map(|t| t.expose().to_owned()),
        webhook_url: Some(webhook_url.clone()),
        webhook_secret: webhook_secret.clone(),
        ..defaults
    })
    .await
    .with_context(|| format!("could not listen on {addr} (NEST_STRIPE_SIM_ADDR)"))?;
    println!(
        "Stripe simulator: stripe::ClientBuilder::new(\"sk_test_…\").url(\"{}\")",
        simulator.api_url()
    );
    println!("webhooks: POST {webhook_url}, signed with STRIPE_WEBHOOK_SECRET={webhook_secret}");
    println!("control API: {}", simulator.control_url());
    println!(
        "control API token (header X-Sim-Token): {}",
        simulator.control_token()
    );
    shutdown_signal().await;
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!(error.detail = %e, "could not listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut sig) => {
                sig.recv().await;
            }
            Err(e) => {
                tracing::error!(error.detail = %e, "could not listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => tracing::info!("Ctrl-C received"),
        () = terminate => tracing::info!("SIGTERM received"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_owned).collect()
    }

    #[test]
    fn no_arguments_means_serve() {
        assert_eq!(parse(&[]).unwrap(), Command::Serve);
    }

    #[test]
    fn migrate_subcommands_parse() {
        assert_eq!(parse(&args("migrate")).unwrap(), Command::MigrateUp);
        assert_eq!(
            parse(&args("migrate down")).unwrap(),
            Command::MigrateDown(Some(1))
        );
        assert_eq!(
            parse(&args("migrate down 3")).unwrap(),
            Command::MigrateDown(Some(3))
        );
        assert_eq!(
            parse(&args("migrate down all")).unwrap(),
            Command::MigrateDown(None)
        );
        assert_eq!(
            parse(&args("migrate status")).unwrap(),
            Command::MigrateStatus
        );
    }

    #[test]
    fn add_signup_needs_name_slug_and_email_and_defaults_tier_and_region() {
        assert_eq!(
            parse(&args(
                "add-signup --name Acme --slug acme --email o@acme.test"
            ))
            .unwrap(),
            Command::AddSignup {
                name: "Acme".into(),
                slug: "acme".into(),
                email: "o@acme.test".into(),
                tier: "starter".into(),
                region: "nbg1".into(),
            }
        );
        let e = parse(&args("add-signup --name Acme --email o@acme.test"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("--slug"), "{e}");
        assert!(parse(&args("add-signup --name")).is_err());
    }

    #[test]
    fn the_jobs_commands_parse_and_refuse_bad_values() {
        assert_eq!(
            parse(&args("jobs list --state failed")).unwrap(),
            Command::JobsList {
                state: Some(app::models::JobState::Failed),
                kind: None
            }
        );
        assert_eq!(
            parse(&args("jobs retry 42")).unwrap(),
            Command::JobsRetry(42)
        );
        assert!(parse(&args("jobs retry x")).is_err());
        assert!(parse(&args("jobs list --state nope")).is_err());
        assert!(parse(&args("jobs list --state")).is_err());
    }

    #[test]
    fn the_provisioning_commands_parse() {
        assert_eq!(
            parse(&args("simulate-hetzner")).unwrap(),
            Command::SimulateHetzner
        );
        assert_eq!(
            parse(&args("simulate-stripe")).unwrap(),
            Command::SimulateStripe
        );
        assert_eq!(
            parse(&args("reseal-secrets")).unwrap(),
            Command::ResealSecrets
        );
    }

    #[test]
    fn an_unknown_command_is_refused_with_a_hint() {
        let e = parse(&args("launch rockets")).unwrap_err().to_string();
        assert!(
            e.contains("launch rockets") && e.contains("nest help"),
            "{e}"
        );
        assert!(parse(&args("migrate down x")).is_err());
    }

    #[test]
    fn create_admin_takes_an_email_and_a_role_but_never_a_password() {
        assert_eq!(
            parse(&args("create-admin --email ops@nest.test --role admin")).unwrap(),
            Command::CreateAdmin {
                email: "ops@nest.test".into(),
                role: app::models::AdminRole::Admin
            }
        );
        assert!(matches!(
            parse(&args("create-admin --email ops@nest.test")).unwrap(),
            Command::CreateAdmin {
                role: app::models::AdminRole::Superadmin,
                ..
            }
        ));
        let e = parse(&args("create-admin --email a@b.co --password hunter2"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("never taken as arguments"), "{e}");
        assert!(parse(&args("create-admin")).is_err());
    }
}
