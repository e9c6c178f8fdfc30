//! The Hetzner Cloud simulator: an HTTP server on loopback with the paths, payloads, action
//! lifecycle, error codes, name uniqueness and rate-limit headers of the real API, for what
//! Nest uses. Nest starts it when `HETZNER_API_TOKEN` is unset; the tests start their own.
//!
//! [`api`] answers as Hetzner does (complete objects, Hetzner's error shape for every
//! rejection), checked with Hetzner's official Python client (`server/tests/hcloud/`). Each
//! simulated server gets its own loopback IPv4 (`127.0.0.2`, `127.0.0.3`, … by default) where
//! fake Convex, Web and MTA endpoints ([`hosts`], shared listeners for the whole fleet) come up
//! after a boot delay. A control API under `/_sim` ([`control`]) scripts faults: HTTP errors,
//! hanging requests, failing actions, and services that fail, hang or answer slowly on one
//! server, a list of them or a share of the fleet.

pub mod api;
pub mod catalog;
pub mod control;
pub mod hosts;
pub mod selector;

use std::collections::{BTreeMap, VecDeque};
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, SecondsFormat, Utc};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::time::Instant;
use url::Url;

use self::catalog::{Image, Location, ServerType};
use self::hosts::{FakeHost, ServiceFault};
use super::{ApiErrorBody, Ipv4Info, PublicNet, Server, ServerTypeRef};
use app::models::Service;

/// Names of the server types the simulator knows (a subset of Hetzner's).
pub const SERVER_TYPES: &[&str] = &[
    "cx22", "cx32", "cx42", "cx52", "cpx11", "cpx21", "cpx31", "cpx41", "cpx51", "ccx13", "ccx23",
    "ccx33",
];
/// Locations the simulator knows (the six regions of the spec).
pub const LOCATIONS: &[&str] = &["fsn1", "nbg1", "hel1", "ash", "hil", "sin"];
/// Hetzner's user-data limit.
pub const USER_DATA_LIMIT: usize = 32 * 1024;
const RATE_LIMIT: f64 = 3600.0;
/// How many loopback addresses a new server may try before the simulator gives up.
const ADDRESS_ATTEMPTS: u32 = 1024;

/// How the simulated cloud behaves.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// Time from "server running" to its services answering.
    pub boot_delay: Duration,
    /// How long each action runs.
    pub action_delay: Duration,
    /// The first loopback address handed to a server.
    pub first_ip: Ipv4Addr,
    /// Where the API listens (port 0: any free port).
    pub addr: SocketAddr,
    /// The token the control API requires (`X-Sim-Token`); `None`: a random one.
    pub control_token: Option<String>,
}

impl Default for SimConfig {
    fn default() -> Self {
        Self {
            boot_delay: Duration::from_secs(3),
            action_delay: Duration::from_secs(1),
            first_ip: Ipv4Addr::new(127, 0, 0, 2),
            addr: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            control_token: None,
        }
    }
}

/// Why the simulator could not do what it was asked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SimError {
    /// Another server has this name.
    #[error("server name {0} is already used")]
    NameTaken(String),
    /// No loopback address could be given to a new server.
    #[error("the simulator found no free loopback address for a new server: {0}")]
    NoAddress(String),
    /// No server has this id.
    #[error("server {0} not found")]
    UnknownServer(i64),
}

/// A scripted HTTP fault: the next `times` API requests matching `method` and `path` (a
/// substring of the path) hang for `hang_ms` and/or answer `status` with `code`.
#[derive(Debug, Clone, Deserialize)]
pub struct Fault {
    /// HTTP method to match (any when absent).
    pub method: Option<String>,
    /// Substring of the request path to match (any when absent).
    pub path: Option<String>,
    /// HTTP status to answer; absent with `hang_ms` means "hang, then answer normally".
    pub status: Option<u16>,
    /// Hetzner error code.
    #[serde(default)]
    pub code: String,
    /// How many requests it applies to.
    #[serde(default = "one")]
    pub times: u32,
    /// Wait this long before answering.
    pub hang_ms: Option<u64>,
    /// For 429: seconds until `RateLimit-Reset`.
    pub reset_in_secs: Option<i64>,
    /// The answer is lost: the request is carried out, then `status` is answered instead of
    /// its result (a create whose response never reached the client).
    #[serde(default)]
    pub lost: bool,
}

fn one() -> u32 {
    1
}

/// A scripted action failure: the next action with this command ends in `error`.
#[derive(Debug, Clone, Deserialize)]
pub struct ActionFault {
    /// e.g. `change_server_type`.
    pub command: String,
    /// Error code of the failed action.
    #[serde(default = "action_failed")]
    pub code: String,
}

fn action_failed() -> String {
    "action_failed".to_owned()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Effect {
    Created { start: bool },
    PowerOff,
    PowerOn,
    Reboot,
    ChangeType,
    Delete,
}

struct SimAction {
    id: i64,
    command: &'static str,
    status: &'static str,
    progress: i32,
    started: DateTime<Utc>,
    finished: Option<DateTime<Utc>>,
    error: Option<ApiErrorBody>,
    server_id: i64,
    finish_at: Instant,
    effect: Effect,
    target_type: Option<&'static ServerType>,
    fail: Option<String>,
    /// An action that must succeed first (a create's `start_server` follows the create).
    after: Option<i64>,
}

fn timestamp(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, false)
}

impl SimAction {
    fn json(&self) -> Value {
        json!({
            "id": self.id,
            "command": self.command,
            "status": self.status,
            "progress": self.progress,
            "started": timestamp(self.started),
            "finished": self.finished.map(timestamp),
            "resources": [{"id": self.server_id, "type": "server"}],
            "error": self.error.as_ref().map(|e| json!({"code": e.code, "message": e.message})),
        })
    }
}

struct SimServer {
    id: i64,
    name: String,
    status: &'static str,
    server_type: &'static ServerType,
    location: &'static Location,
    image: &'static Image,
    labels: BTreeMap<String, String>,
    created: DateTime<Utc>,
    ipv6: bool,
    host: FakeHost,
}

impl SimServer {
    /// The complete object the API returns.
    fn json(&self, locked: bool) -> Value {
        let ip = self.host.ip();
        let [a, b, c, d] = ip.octets();
        let ipv6 = self.ipv6.then(|| {
            json!({"id": self.id * 10 + 2, "ip": format!("2001:db8:{:x}::/64", self.id), "blocked": false, "dns_ptr": []})
        });
        json!({
            "id": self.id,
            "name": self.name,
            "status": self.status,
            "created": timestamp(self.created),
            "public_net": {
                "ipv4": {"id": self.id * 10 + 1, "ip": ip.to_string(), "blocked": false,
                         "dns_ptr": format!("static.{d}.{c}.{b}.{a}.clients.your-server.de")},
                "ipv6": ipv6,
                "floating_ips": [],
                "firewalls": [],
            },
            "private_net": [],
            "server_type": self.server_type.json(),
            "location": self.location.json(),
            "datacenter": self.location.datacenter_json(),
            "image": self.image.json(),
            "iso": null,
            "rescue_enabled": false,
            "locked": locked,
            "backup_window": null,
            "outgoing_traffic": 0,
            "ingoing_traffic": 0,
            "included_traffic": catalog::INCLUDED_TRAFFIC,
            "protection": {"delete": false, "rebuild": false},
            "labels": self.labels,
            "volumes": [],
            "load_balancers": [],
            "primary_disk_size": self.server_type.disk_gb,
            "placement_group": null,
        })
    }

    /// The subset Nest's client reads.
    fn view(&self) -> Server {
        Server {
            id: self.id,
            name: self.name.clone(),
            status: self.status.to_owned(),
            public_net: PublicNet {
                ipv4: Some(Ipv4Info {
                    ip: self.host.ip().to_string(),
                }),
            },
            server_type: ServerTypeRef {
                name: self.server_type.name.to_owned(),
            },
            labels: self.labels.clone(),
            created: self.created,
        }
    }
}

struct Inner {
    servers: BTreeMap<i64, SimServer>,
    actions: BTreeMap<i64, SimAction>,
    next_id: i64,
    next_ip: u32,
    faults: VecDeque<Fault>,
    action_faults: Vec<ActionFault>,
    /// Services to fail on the next server created (with this name, when one is given).
    failing_on_create: Vec<(Option<String>, Service)>,
    calls: u64,
    servers_created: u64,
    tokens: f64,
    tokens_at: Instant,
}

/// What a new server is made of (validated by the API, or given by a test).
struct NewServer {
    name: String,
    server_type: &'static ServerType,
    location: &'static Location,
    image: &'static Image,
    labels: BTreeMap<String, String>,
    user_data: String,
    ipv6: bool,
}

impl Inner {
    fn next_id(&mut self) -> i64 {
        self.next_id += 1;
        self.next_id
    }

    fn locked(&self, server_id: i64) -> bool {
        self.actions
            .values()
            .any(|a| a.server_id == server_id && a.status == "running")
    }

    /// A fake host on the next free loopback address.
    fn register_host(&mut self, name: &str, secret: Option<String>) -> Result<FakeHost, SimError> {
        let mut last_error = String::from("none tried");
        let mut host = None;
        for _ in 0..ADDRESS_ATTEMPTS {
            let candidate = Ipv4Addr::from(self.next_ip);
            self.next_ip = self.next_ip.wrapping_add(1);
            let octets = candidate.octets();
            if octets[0] != 127 {
                return Err(SimError::NoAddress(
                    "the loopback range is exhausted".to_owned(),
                ));
            }
            if octets[3] == 0 || octets[3] == 255 {
                continue;
            }
            match FakeHost::register(candidate, name, secret.clone()) {
                Ok(h) => {
                    host = Some(h);
                    break;
                }
                Err(e) => last_error = format!("{candidate}: {e}"),
            }
        }
        host.ok_or(SimError::NoAddress(last_error))
    }

    /// Moves server `id` to a new address, as when its primary IPv4 is swapped in Hetzner's
    /// console: the old address stops answering, the new one answers as the server did.
    fn readdress(&mut self, id: i64) -> Result<Ipv4Addr, SimError> {
        let (name, secret, up) = {
            let server = self.servers.get(&id).ok_or(SimError::UnknownServer(id))?;
            (
                server.name.clone(),
                server.host.instance_secret(),
                server.host.is_up(),
            )
        };
        let host = self.register_host(&name, secret)?;
        if up {
            host.boot(Duration::ZERO);
        }
        let ip = host.ip();
        if let Some(server) = self.servers.get_mut(&id) {
            server.host = host;
        }
        Ok(ip)
    }

    /// Puts a new server on its own loopback address; `initializing` until its actions end.
    fn add_server(&mut self, new: NewServer) -> Result<i64, SimError> {
        if self.servers.values().any(|s| s.name == new.name) {
            return Err(SimError::NameTaken(new.name));
        }
        let host = self.register_host(&new.name, instance_secret(&new.user_data))?;
        let (now, later): (Vec<_>, Vec<_>) = std::mem::take(&mut self.failing_on_create)
            .into_iter()
            .partition(|(name, _)| name.as_ref().is_none_or(|n| *n == new.name));
        self.failing_on_create = later;
        for (_, service) in now {
            host.set_fault(service, Some(ServiceFault::Fail));
        }
        let id = self.next_id();
        self.servers_created += 1;
        self.servers.insert(
            id,
            SimServer {
                id,
                name: new.name,
                status: "initializing",
                server_type: new.server_type,
                location: new.location,
                image: new.image,
                labels: new.labels,
                created: Utc::now(),
                ipv6: new.ipv6,
                host,
            },
        );
        Ok(id)
    }

    fn new_action(
        &mut self,
        config: &SimConfig,
        server_id: i64,
        command: &'static str,
        effect: Effect,
        target_type: Option<&'static ServerType>,
        after: Option<i64>,
    ) -> i64 {
        let id = self.next_id();
        let fail = self
            .action_faults
            .iter()
            .position(|f| f.command == command)
            .map(|i| self.action_faults.remove(i).code);
        self.actions.insert(
            id,
            SimAction {
                id,
                command,
                status: "running",
                progress: 0,
                started: Utc::now(),
                finished: None,
                error: None,
                server_id,
                finish_at: Instant::now() + config.action_delay,
                effect,
                target_type,
                fail,
                after,
            },
        );
        id
    }
}

struct Shared {
    config: SimConfig,
    inner: Mutex<Inner>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock leaves plain data behind; keep serving it.
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The state with every due action completed.
    fn settled(&self) -> MutexGuard<'_, Inner> {
        let mut inner = self.lock();
        settle(&mut inner, &self.config);
        inner
    }
}

/// A running simulator.
pub struct Simulator {
    addr: SocketAddr,
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
    control_token: Arc<str>,
}

/// The header carrying the control API's token.
pub use crate::sim_control::CONTROL_TOKEN_HEADER;

impl Drop for Simulator {
    fn drop(&mut self) {
        self.task.abort();
        // Dropping the servers takes their addresses off the network.
        let servers = std::mem::take(&mut self.shared.lock().servers);
        drop(servers);
    }
}

impl Simulator {
    /// Starts the simulator on an ephemeral loopback port.
    pub async fn start(config: SimConfig) -> std::io::Result<Self> {
        let listener = tokio::net::TcpListener::bind(config.addr).await?;
        let addr = listener.local_addr()?;
        let generated = config.control_token.is_none();
        let control_token: Arc<str> = config
            .control_token
            .clone()
            .unwrap_or_else(|| crate::clock::random_hex(16))
            .into();
        let shared = Arc::new(Shared {
            inner: Mutex::new(Inner {
                servers: BTreeMap::new(),
                actions: BTreeMap::new(),
                next_id: 1000,
                next_ip: u32::from(config.first_ip),
                faults: VecDeque::new(),
                action_faults: Vec::new(),
                failing_on_create: Vec::new(),
                calls: 0,
                servers_created: 0,
                tokens: RATE_LIMIT,
                tokens_at: Instant::now(),
            }),
            config,
        });
        let router = Router::new()
            .nest("/v1", api::router(shared.clone()))
            .nest("/_sim", control::router(control_token.clone()))
            .fallback(api::unknown_path)
            .with_state(shared.clone());
        let task = tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, router).await {
                tracing::error!(error.detail = %e, "the Hetzner simulator stopped");
            }
        });
        tracing::info!(sim.addr = %addr, "Hetzner simulator listening (simulated cloud)");
        if generated {
            // A local development tool's key, shown so a person can script faults.
            tracing::info!(
                sim.control_url = %format!("http://{addr}/_sim"),
                sim.control_token = %control_token,
                "the simulator's control API needs this token in an X-Sim-Token header"
            );
        }
        Ok(Self {
            addr,
            shared,
            task,
            control_token,
        })
    }

    /// The API base URL to give the client (`http://127.0.0.1:PORT/v1`).
    pub fn api_url(&self) -> Url {
        #[allow(clippy::expect_used)] // a formatted loopback socket address always parses
        Url::parse(&format!("http://{}/v1", self.addr)).expect("loopback URL")
    }

    /// The token the control API requires (header [`CONTROL_TOKEN_HEADER`]).
    pub fn control_token(&self) -> &str {
        &self.control_token
    }

    /// The control API's base URL (`http://127.0.0.1:PORT/_sim`).
    pub fn control_url(&self) -> Url {
        #[allow(clippy::expect_used)] // a formatted loopback socket address always parses
        Url::parse(&format!("http://{}/_sim", self.addr)).expect("loopback URL")
    }

    /// Scripts an HTTP fault.
    pub fn add_fault(&self, fault: Fault) {
        self.shared.lock().faults.push_back(fault);
    }

    /// Drops every scripted HTTP fault not yet used up.
    pub fn clear_faults(&self) {
        self.shared.lock().faults.clear();
    }

    /// Scripts an action failure.
    pub fn fail_next_action(&self, command: &str) {
        self.shared.lock().action_faults.push(ActionFault {
            command: command.to_owned(),
            code: action_failed(),
        });
    }

    /// Makes `service` fail on the next server created (until told otherwise).
    pub fn fail_service_on_next_server(&self, service: &str) {
        if let Ok(service) = service.parse() {
            self.shared.lock().failing_on_create.push((None, service));
        }
    }

    /// Moves server `id` to a new IPv4 address (see the control API's `readdress`).
    pub fn readdress(&self, id: i64) -> Result<Ipv4Addr, SimError> {
        self.shared.lock().readdress(id)
    }

    /// Makes one service of one server fail (or recover).
    pub fn set_service_failing(&self, server_id: i64, service: &str, failing: bool) -> bool {
        let inner = self.shared.lock();
        match inner.servers.get(&server_id) {
            Some(server) => server.host.set_failing(service, failing),
            None => false,
        }
    }

    /// Sets (or clears) the fault of one service of one server; false for an unknown server.
    pub fn set_service_fault(
        &self,
        server_id: i64,
        service: Service,
        fault: Option<ServiceFault>,
    ) -> bool {
        let inner = self.shared.lock();
        match inner.servers.get(&server_id) {
            Some(server) => {
                server.host.set_fault(service, fault);
                true
            }
            None => false,
        }
    }

    /// Creates a server at once, running with its services up (no API call, no rate limit):
    /// how tests and benchmarks build a fleet of thousands.
    pub fn add_running_server(
        &self,
        name: &str,
        labels: BTreeMap<String, String>,
    ) -> Result<Server, SimError> {
        let mut inner = self.shared.lock();
        let (Some(server_type), Some(location), Some(image)) = (
            catalog::SERVER_TYPES.first(),
            catalog::LOCATIONS.first(),
            catalog::IMAGES.first(),
        ) else {
            return Err(SimError::NoAddress("empty catalog".to_owned()));
        };
        let id = inner.add_server(NewServer {
            name: name.to_owned(),
            server_type,
            location,
            image,
            labels,
            user_data: String::new(),
            ipv6: true,
        })?;
        let server = inner
            .servers
            .get_mut(&id)
            .ok_or(SimError::UnknownServer(id))?;
        server.status = "running";
        server.host.boot(Duration::ZERO);
        Ok(server.view())
    }

    /// API calls received so far.
    pub fn calls(&self) -> u64 {
        self.shared.lock().calls
    }

    /// Servers created so far (deleted ones included).
    pub fn servers_created(&self) -> u64 {
        self.shared.lock().servers_created
    }

    /// The servers that exist now.
    pub fn servers(&self) -> Vec<Server> {
        self.shared
            .settled()
            .servers
            .values()
            .map(SimServer::view)
            .collect()
    }

    /// How many self-updates the server's web endpoint accepted.
    pub fn self_updates(&self, server_id: i64) -> u32 {
        self.shared
            .lock()
            .servers
            .get(&server_id)
            .map_or(0, |s| s.host.self_updates())
    }
}

/// Authentication, call counting, the rate-limit bucket and scripted faults, for every API call.
async fn api_gate(State(shared): State<Arc<Shared>>, request: Request, next: Next) -> Response {
    let authorized = request
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .is_some_and(|t| !t.trim().is_empty());
    let method = request.method().as_str().to_owned();
    let path = request.uri().path().to_owned();
    let (fault, remaining, reset) = {
        let mut inner = shared.lock();
        inner.calls += 1;
        let now = Instant::now();
        let refill = now.duration_since(inner.tokens_at).as_secs_f64();
        inner.tokens = (inner.tokens + refill).min(RATE_LIMIT);
        inner.tokens_at = now;
        let limited = inner.tokens < 1.0;
        if !limited {
            inner.tokens -= 1.0;
        }
        let position = inner.faults.iter().position(|f| {
            f.method
                .as_ref()
                .is_none_or(|m| m.eq_ignore_ascii_case(&method))
                && f.path.as_ref().is_none_or(|p| path.contains(p.as_str()))
        });
        let fault = position.and_then(|i| {
            let fault = inner.faults.get_mut(i)?;
            fault.times = fault.times.saturating_sub(1);
            let copy = fault.clone();
            if fault.times == 0 {
                inner.faults.remove(i);
            }
            Some(copy)
        });
        let remaining = inner.tokens.floor();
        let fault = fault.or_else(|| {
            limited.then(|| Fault {
                method: None,
                path: None,
                status: Some(429),
                code: "rate_limit_exceeded".to_owned(),
                times: 1,
                hang_ms: None,
                reset_in_secs: Some(1),
                lost: false,
            })
        });
        let reset = Utc::now().timestamp() + (RATE_LIMIT - remaining).ceil() as i64;
        (fault, remaining as i64, reset)
    };
    let mut remaining = remaining;
    let mut reset = reset;
    let response = if !authorized {
        api::ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "request was not authenticated",
        )
        .into_response()
    } else {
        if let Some(ms) = fault.as_ref().and_then(|f| f.hang_ms) {
            tokio::time::sleep(Duration::from_millis(ms)).await;
        }
        match fault.and_then(|f| f.status.map(|s| (s, f))) {
            Some((status, fault)) => {
                if fault.lost {
                    drop(next.run(request).await);
                }
                if status == 429 {
                    remaining = 0;
                    reset = Utc::now().timestamp() + fault.reset_in_secs.unwrap_or(1);
                }
                let status =
                    StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
                api::ApiError::new(
                    status,
                    &fault.code,
                    "scripted by the simulator's control API",
                )
                .into_response()
            }
            None => next.run(request).await,
        }
    };
    let mut response = response;
    for (name, value) in [
        ("ratelimit-limit", RATE_LIMIT as i64),
        ("ratelimit-remaining", remaining),
        ("ratelimit-reset", reset),
    ] {
        if let Ok(value) = HeaderValue::from_str(&value.to_string()) {
            response.headers_mut().insert(name, value);
        }
    }
    response
}

/// Completes the actions whose time has come (in id order), applying their effects.
fn settle(inner: &mut Inner, config: &SimConfig) {
    let now = Instant::now();
    let due: Vec<i64> = inner
        .actions
        .values()
        .filter(|a| a.status == "running" && a.finish_at <= now)
        .map(|a| a.id)
        .collect();
    for id in due {
        let prior_error = inner
            .actions
            .get(&id)
            .and_then(|a| a.after)
            .and_then(|after| inner.actions.get(&after))
            .and_then(|a| a.error.clone());
        let Some(action) = inner.actions.get_mut(&id) else {
            continue;
        };
        action.progress = 100;
        action.finished = Some(Utc::now());
        let failure = action
            .fail
            .clone()
            .map(|code| ApiErrorBody {
                code,
                message: "scripted by the simulator's control API".to_owned(),
            })
            .or(prior_error);
        if let Some(error) = failure {
            action.status = "error";
            action.error = Some(error);
            let server_id = action.server_id;
            if let Some(server) = inner.servers.get_mut(&server_id)
                && matches!(server.status, "initializing" | "starting")
            {
                server.status = "off";
            }
            continue;
        }
        action.status = "success";
        let (server_id, effect, target) = (action.server_id, action.effect, action.target_type);
        let Some(server) = inner.servers.get_mut(&server_id) else {
            continue;
        };
        match effect {
            Effect::Created { start: true } => server.status = "starting",
            Effect::Created { start: false } => server.status = "off",
            Effect::PowerOn | Effect::Reboot => {
                server.status = "running";
                server.host.boot(config.boot_delay);
            }
            Effect::PowerOff => {
                server.status = "off";
                server.host.power_off();
            }
            Effect::ChangeType => {
                if let Some(target) = target {
                    server.server_type = target;
                }
            }
            Effect::Delete => {
                inner.servers.remove(&server_id);
            }
        }
    }
}

/// The instance secret the cloud-init writes into `.env`, which the fake web endpoint checks.
fn instance_secret(user_data: &str) -> Option<String> {
    user_data.lines().find_map(|line| {
        line.trim()
            .strip_prefix("INSTANCE_SECRET=")
            .map(|s| s.trim().to_owned())
    })
}
