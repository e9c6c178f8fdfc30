//! `App`: the one piece of shared state every request handler, server function and job sees.

use std::sync::Arc;

use app::backend::Backend;
use axum::extract::FromRef;
use chrono::Duration;
use leptos::config::LeptosOptions;
use sea_orm::DatabaseConnection;

use crate::admins::{AdminService, SessionPolicy};
use crate::audit::AuditService;
use crate::clock::Clock;
use crate::config::Config;
use crate::organizations::OrganizationService;
use crate::system::SystemService;

/// Shared state: configuration, database pool, clock, Leptos options.
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
}

impl App {
    /// Builds the state from a configuration and an open, migrated database.
    pub fn new(config: Config, db: DatabaseConnection) -> Self {
        Self::with_clock(config, db, Clock::system())
    }

    /// Like [`App::new`], with a given clock (tests).
    pub fn with_clock(config: Config, db: DatabaseConnection, clock: Clock) -> Self {
        let leptos = LeptosOptions::builder()
            .output_name("nest")
            .site_root(config.site_root.to_string_lossy().into_owned())
            .site_pkg_dir("pkg")
            .site_addr(config.addr)
            .reload_port(u32::from(config.live_reload_port.unwrap_or(3011)))
            .build();
        Self {
            config: Arc::new(config),
            db,
            clock,
            leptos,
        }
    }

    /// Session lifetimes from the configuration.
    pub fn session_policy(&self) -> SessionPolicy {
        SessionPolicy {
            idle: Duration::minutes(i64::from(self.config.session_idle_minutes)),
            absolute: Duration::hours(i64::from(self.config.session_absolute_hours)),
        }
    }

    /// The admin-access service.
    pub fn admins(&self) -> AdminService {
        AdminService {
            db: self.db.clone(),
            clock: self.clock.clone(),
            policy: self.session_policy(),
        }
    }

    /// The organization service.
    pub fn organizations(&self) -> OrganizationService {
        OrganizationService {
            db: self.db.clone(),
            clock: self.clock.clone(),
            base_domain: self.config.caddy.base_domain.clone(),
        }
    }

    /// The services the `#[server]` functions call, provided to Leptos as context.
    pub fn backend(&self) -> Backend {
        Backend {
            system: Arc::new(SystemService {
                db: self.db.clone(),
                config: self.config.clone(),
            }),
            admins: Arc::new(self.admins()),
            audit: Arc::new(AuditService {
                db: self.db.clone(),
            }),
            organizations: Arc::new(self.organizations()),
            tiers: Arc::new(crate::billing::tiers::TierService {
                db: self.db.clone(),
                clock: self.clock.clone(),
            }),
        }
    }
}

impl FromRef<App> for LeptosOptions {
    fn from_ref(app: &App) -> Self {
        app.leptos.clone()
    }
}
