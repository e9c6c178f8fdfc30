//! The interface the `#[server]` functions need from the backend (server-side only).
//!
//! `app` cannot depend on `server` (the dependency goes the other way), so it declares what it
//! needs here and `server` implements it and provides it to Leptos as context. The WASM build
//! never sees this module, so entities and integrations never reach the browser.

use std::sync::Arc;

use crate::error::AppError;
use crate::models::PlatformStatus;

/// Platform-wide queries (the overview's status panel, `/healthz`).
#[async_trait::async_trait]
pub trait SystemBackend: Send + Sync {
    /// The platform's status: database, integrations, seeded data, organization counts.
    async fn platform_status(&self) -> Result<PlatformStatus, AppError>;
}

/// Everything the server functions can reach, provided as Leptos context.
#[derive(Clone)]
pub struct Backend {
    /// Platform-wide queries.
    pub system: Arc<dyn SystemBackend>,
}

/// The backend provided by the server to this render or server-function call.
pub fn use_backend() -> Result<Backend, AppError> {
    leptos::prelude::use_context::<Backend>()
        .ok_or_else(|| AppError::Internal("backend-missing".to_owned()))
}
