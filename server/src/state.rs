//! `App`: the one piece of shared state every request handler, server function and job sees.

use std::sync::Arc;

use app::backend::Backend;
use axum::extract::FromRef;
use leptos::config::LeptosOptions;
use sea_orm::DatabaseConnection;

use crate::config::Config;
use crate::system::SystemService;

/// Shared state: configuration, database pool, Leptos options and the backend services.
#[derive(Clone)]
pub struct App {
    /// The configuration read at start-up.
    pub config: Arc<Config>,
    /// The database pool.
    pub db: DatabaseConnection,
    /// Where the browser bundle lives and what it is called.
    pub leptos: LeptosOptions,
}

impl App {
    /// Builds the state from a configuration and an open, migrated database.
    pub fn new(config: Config, db: DatabaseConnection) -> Self {
        let leptos = LeptosOptions::builder()
            .output_name("nest")
            .site_root(config.site_root.to_string_lossy().into_owned())
            .site_pkg_dir("pkg")
            .site_addr(config.addr)
            .build();
        Self {
            config: Arc::new(config),
            db,
            leptos,
        }
    }

    /// The services the `#[server]` functions call, provided to Leptos as context.
    pub fn backend(&self) -> Backend {
        Backend {
            system: Arc::new(SystemService {
                db: self.db.clone(),
                config: self.config.clone(),
            }),
        }
    }
}

impl FromRef<App> for LeptosOptions {
    fn from_ref(app: &App) -> Self {
        app.leptos.clone()
    }
}
