//! The fake services of one simulated server, on its own loopback address: Convex
//! (`:3210/version`), Web (`:3000/`, plus the self-update endpoint) and MTA (`:3100/health`).
//! They answer 503 while the server is off or booting and 500 when told to fail.

use std::collections::BTreeSet;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use app::models::Service;
use app::models::health::SELF_UPDATE_PATH;

struct HostState {
    /// When the services answer; `None` while powered off.
    up_at: Option<Instant>,
    failing: BTreeSet<String>,
    boot_delay: Duration,
    self_updates: u32,
    /// Signatures already accepted (a replay within the window is refused).
    seen_signatures: BTreeSet<String>,
}

struct Host {
    name: String,
    instance_secret: Option<String>,
    state: Mutex<HostState>,
}

impl Host {
    fn lock(&self) -> MutexGuard<'_, HostState> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn status(&self, service: &str) -> Result<(), StatusCode> {
        let state = self.lock();
        match state.up_at {
            Some(at) if Instant::now() >= at => {}
            _ => return Err(StatusCode::SERVICE_UNAVAILABLE),
        }
        if state.failing.contains(service) {
            return Err(StatusCode::INTERNAL_SERVER_ERROR);
        }
        Ok(())
    }
}

/// One simulated server's network presence.
pub struct FakeHost {
    ip: Ipv4Addr,
    host: Arc<Host>,
    tasks: Vec<JoinHandle<()>>,
}

impl FakeHost {
    /// Binds the three service ports on `ip` (fails if any is taken). Powered off until
    /// [`FakeHost::boot`].
    pub fn bind(
        ip: Ipv4Addr,
        name: &str,
        instance_secret: Option<String>,
    ) -> std::io::Result<Self> {
        let mut listeners = Vec::new();
        for service in Service::ALL {
            let listener = std::net::TcpListener::bind(SocketAddr::from((ip, service.port())))?;
            listener.set_nonblocking(true)?;
            listeners.push((*service, listener));
        }
        let host = Arc::new(Host {
            name: name.to_owned(),
            instance_secret,
            state: Mutex::new(HostState {
                up_at: None,
                failing: BTreeSet::new(),
                boot_delay: Duration::ZERO,
                self_updates: 0,
                seen_signatures: BTreeSet::new(),
            }),
        });
        let mut tasks = Vec::new();
        for (service, listener) in listeners {
            let listener = tokio::net::TcpListener::from_std(listener)?;
            let router = match service {
                Service::Convex => Router::new().route(service.path(), get(convex_version)),
                Service::Web => Router::new()
                    .route(service.path(), get(web_home))
                    .route(SELF_UPDATE_PATH, post(self_update)),
                Service::Mta => Router::new().route(service.path(), get(mta_health)),
            }
            .with_state(host.clone());
            tasks.push(tokio::spawn(async move {
                let _ = axum::serve(listener, router).await;
            }));
        }
        Ok(Self { ip, host, tasks })
    }

    /// The server's address.
    pub fn ip(&self) -> Ipv4Addr {
        self.ip
    }

    /// Powers on: the services answer after `delay`.
    pub fn boot(&self, delay: Duration) {
        let mut state = self.host.lock();
        state.boot_delay = delay;
        state.up_at = Some(Instant::now() + delay);
    }

    /// Powers off: the services stop answering.
    pub fn power_off(&self) {
        self.host.lock().up_at = None;
    }

    /// Stops listening altogether (the server was deleted).
    pub fn shut_down(&self) {
        self.power_off();
        for task in &self.tasks {
            task.abort();
        }
    }

    /// Makes `service` fail (or recover); false for an unknown service.
    pub fn set_failing(&self, service: &str, failing: bool) -> bool {
        if service.parse::<Service>().is_err() {
            return false;
        }
        let mut state = self.host.lock();
        if failing {
            state.failing.insert(service.to_owned());
        } else {
            state.failing.remove(service);
        }
        true
    }

    /// Self-updates accepted so far.
    pub fn self_updates(&self) -> u32 {
        self.host.lock().self_updates
    }
}

impl Drop for FakeHost {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

type St = State<Arc<Host>>;

async fn convex_version(State(host): St) -> Response {
    match host.status("convex") {
        Ok(()) => "convex-backend simulated 1.0\n".into_response(),
        Err(code) => code.into_response(),
    }
}

async fn web_home(State(host): St) -> Response {
    match host.status("web") {
        Ok(()) => Html(format!(
            "<!doctype html><title>{0}</title><h1>Simulated web service of {0}</h1>\n",
            host.name
        ))
        .into_response(),
        Err(code) => code.into_response(),
    }
}

async fn mta_health(State(host): St) -> Response {
    match host.status("mta") {
        Ok(()) => axum::Json(serde_json::json!({"status": "ok"})).into_response(),
        Err(code) => code.into_response(),
    }
}

/// `POST /api/self-update`, signed with the instance secret (see
/// [`crate::provisioning::signing`]; a bearer token is refused): pulls new images and
/// restarts, i.e. the services are down for one boot delay. A signature is accepted once.
async fn self_update(State(host): St, headers: HeaderMap, body: axum::body::Bytes) -> Response {
    use crate::provisioning::signing::{SIGNATURE_HEADER, TIMESTAMP_HEADER, verify};
    if let Err(code) = host.status("web") {
        return code.into_response();
    }
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let Some(secret) = &host.instance_secret else {
        return StatusCode::UNAUTHORIZED.into_response();
    };
    let signature = header(SIGNATURE_HEADER);
    let checked = verify(
        secret,
        "POST",
        SELF_UPDATE_PATH,
        header(TIMESTAMP_HEADER),
        signature,
        &body,
        chrono::Utc::now().timestamp(),
    );
    if checked.is_err() {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    let mut state = host.lock();
    if !state
        .seen_signatures
        .insert(signature.unwrap_or_default().to_owned())
    {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    state.self_updates += 1;
    state.up_at = Some(Instant::now() + state.boot_delay);
    StatusCode::ACCEPTED.into_response()
}
