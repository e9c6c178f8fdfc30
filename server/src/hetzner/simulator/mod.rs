//! The Hetzner Cloud simulator: an HTTP server on loopback with the paths, payloads, action
//! lifecycle, error codes, name uniqueness and rate-limit headers of the real API, for what
//! Nest uses. Nest starts it when `HETZNER_API_TOKEN` is unset; the tests start their own.
//!
//! Each simulated server gets its own loopback IPv4 (`127.0.0.2`, `127.0.0.3`, … by default)
//! where fake Convex, Web and MTA endpoints ([`hosts`]) come up after a boot delay. A control
//! API under `/_sim` scripts faults: HTTP errors, hanging requests, failing actions, failing
//! services.

pub mod hosts;

use std::collections::{BTreeMap, VecDeque};
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::Json;
use axum::Router;
use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use chrono::Utc;
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::time::Instant;
use url::Url;

use self::hosts::FakeHost;
use super::{Action, ApiErrorBody, CreateServer, Ipv4Info, PublicNet, Server, ServerTypeRef};

/// Server types the simulator knows (a subset of Hetzner's).
pub const SERVER_TYPES: &[&str] = &[
    "cx22", "cx32", "cx42", "cx52", "cpx11", "cpx21", "cpx31", "cpx41", "cpx51", "ccx13", "ccx23",
    "ccx33",
];
/// Locations the simulator knows (the six regions of the spec).
pub const LOCATIONS: &[&str] = &["fsn1", "nbg1", "hel1", "ash", "hil", "sin"];
/// Hetzner's user-data limit.
pub const USER_DATA_LIMIT: usize = 32 * 1024;
const RATE_LIMIT: f64 = 3600.0;

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

#[derive(Debug, Clone, Copy)]
enum Effect {
    Created,
    PowerOff,
    PowerOn,
    Reboot,
    ChangeType,
    Delete,
}

struct SimAction {
    action: Action,
    server_id: i64,
    finish_at: Instant,
    effect: Effect,
    target_type: Option<String>,
    fail: Option<String>,
}

struct SimServer {
    server: Server,
    host: Arc<FakeHost>,
}

struct Inner {
    servers: BTreeMap<i64, SimServer>,
    actions: BTreeMap<i64, SimAction>,
    next_id: i64,
    next_ip: u32,
    faults: VecDeque<Fault>,
    action_faults: Vec<ActionFault>,
    /// Services to fail on the next server created (with this name, when one is given).
    failing_on_create: Vec<(Option<String>, String)>,
    calls: u64,
    servers_created: u64,
    tokens: f64,
    tokens_at: Instant,
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
}

/// A running simulator.
pub struct Simulator {
    addr: SocketAddr,
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
    control_token: Arc<str>,
}

/// The header carrying the control API's token.
pub const CONTROL_TOKEN_HEADER: &str = "x-sim-token";

/// Guards the control API: a request carrying an `Origin` comes from a web page (any site can
/// POST to loopback) and is refused; others need the token.
async fn control_gate(State(token): State<Arc<str>>, req: Request, next: Next) -> Response {
    if req.headers().contains_key(axum::http::header::ORIGIN) {
        return (
            StatusCode::FORBIDDEN,
            "the simulator's control API does not answer web pages",
        )
            .into_response();
    }
    let given = req
        .headers()
        .get(CONTROL_TOKEN_HEADER)
        .map(HeaderValue::as_bytes)
        .unwrap_or_default();
    if !constant_time_eq(given, token.as_bytes()) {
        return (
            StatusCode::UNAUTHORIZED,
            "the simulator's control API needs its token in an X-Sim-Token header",
        )
            .into_response();
    }
    next.run(req).await
}

/// Compares without an early exit on the first differing byte.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

impl Drop for Simulator {
    fn drop(&mut self) {
        self.task.abort();
        for server in self.shared.lock().servers.values() {
            server.host.shut_down();
        }
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
        let api = Router::new()
            .route("/servers", get(list_servers).post(create_server))
            .route("/servers/{id}", get(get_server).delete(delete_server))
            .route("/servers/{id}/actions/{command}", post(server_action))
            .route("/actions/{id}", get(get_action))
            .layer(middleware::from_fn_with_state(shared.clone(), api_gate));
        let control = Router::new()
            .route("/faults", post(add_fault))
            .route("/action-faults", post(add_action_fault))
            .route("/next-server/services/{service}", post(fail_on_next_server))
            .route("/servers/{id}/services/{service}", post(set_service))
            .route("/stats", get(stats))
            .layer(middleware::from_fn_with_state(
                control_token.clone(),
                control_gate,
            ));
        let router = Router::new()
            .nest("/v1", api)
            .nest("/_sim", control)
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

    /// Scripts an action failure.
    pub fn fail_next_action(&self, command: &str) {
        self.shared.lock().action_faults.push(ActionFault {
            command: command.to_owned(),
            code: action_failed(),
        });
    }

    /// Makes `service` fail on the next server created (until told otherwise).
    pub fn fail_service_on_next_server(&self, service: &str) {
        self.shared
            .lock()
            .failing_on_create
            .push((None, service.to_owned()));
    }

    /// Makes one service of one server fail (or recover).
    pub fn set_service_failing(&self, server_id: i64, service: &str, failing: bool) -> bool {
        let inner = self.shared.lock();
        match inner.servers.get(&server_id) {
            Some(server) => server.host.set_failing(service, failing),
            None => false,
        }
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
        let mut inner = self.shared.lock();
        settle(&mut inner, &self.shared.config);
        inner.servers.values().map(|s| s.server.clone()).collect()
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

type Shd = State<Arc<Shared>>;

fn error(status: StatusCode, code: &str, message: &str) -> Response {
    (
        status,
        Json(json!({"error": {"code": code, "message": message, "details": {}}})),
    )
        .into_response()
}

/// Authentication, call counting, the rate-limit bucket and scripted faults, for every API call.
async fn api_gate(State(shared): Shd, request: Request, next: Next) -> Response {
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
            })
        });
        let reset = Utc::now().timestamp() + (RATE_LIMIT - remaining).ceil() as i64;
        (fault, remaining as i64, reset)
    };
    let mut headers = HeaderMap::new();
    let mut remaining = remaining;
    let mut reset = reset;
    let response = if !authorized {
        error(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "request was not authenticated",
        )
    } else {
        if let Some(ms) = fault.as_ref().and_then(|f| f.hang_ms) {
            tokio::time::sleep(Duration::from_millis(ms)).await;
        }
        match fault.and_then(|f| f.status.map(|s| (s, f))) {
            Some((status, fault)) => {
                if status == 429 {
                    remaining = 0;
                    reset = Utc::now().timestamp() + fault.reset_in_secs.unwrap_or(1);
                }
                let status =
                    StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
                error(
                    status,
                    &fault.code,
                    "scripted by the simulator's control API",
                )
            }
            None => next.run(request).await,
        }
    };
    for (name, value) in [
        ("ratelimit-limit", RATE_LIMIT as i64),
        ("ratelimit-remaining", remaining),
        ("ratelimit-reset", reset),
    ] {
        if let Ok(value) = HeaderValue::from_str(&value.to_string()) {
            headers.insert(name, value);
        }
    }
    (headers, response).into_response()
}

/// Completes the actions whose time has come, applying their effects.
fn settle(inner: &mut Inner, config: &SimConfig) {
    let now = Instant::now();
    let due: Vec<i64> = inner
        .actions
        .iter()
        .filter(|(_, a)| a.action.status == "running" && a.finish_at <= now)
        .map(|(id, _)| *id)
        .collect();
    for id in due {
        let Some(action) = inner.actions.get_mut(&id) else {
            continue;
        };
        action.action.progress = 100;
        if let Some(code) = action.fail.clone() {
            action.action.status = "error".to_owned();
            action.action.error = Some(ApiErrorBody {
                code,
                message: "scripted by the simulator's control API".to_owned(),
            });
            let server_id = action.server_id;
            if let Some(server) = inner.servers.get_mut(&server_id)
                && matches!(server.server.status.as_str(), "initializing" | "starting")
            {
                server.server.status = "off".to_owned();
            }
            continue;
        }
        action.action.status = "success".to_owned();
        let (server_id, effect, target) =
            (action.server_id, action.effect, action.target_type.clone());
        let Some(server) = inner.servers.get_mut(&server_id) else {
            continue;
        };
        match effect {
            Effect::Created | Effect::PowerOn | Effect::Reboot => {
                server.server.status = "running".to_owned();
                server.host.boot(config.boot_delay);
            }
            Effect::PowerOff => {
                server.server.status = "off".to_owned();
                server.host.power_off();
            }
            Effect::ChangeType => {
                if let Some(target) = target {
                    server.server.server_type.name = target;
                }
            }
            Effect::Delete => {
                server.host.shut_down();
                inner.servers.remove(&server_id);
            }
        }
    }
}

fn new_action(
    inner: &mut Inner,
    config: &SimConfig,
    server_id: i64,
    command: &str,
    effect: Effect,
    target_type: Option<String>,
) -> Action {
    inner.next_id += 1;
    let id = inner.next_id;
    let fail = inner
        .action_faults
        .iter()
        .position(|f| f.command == command)
        .map(|i| inner.action_faults.remove(i).code);
    let action = Action {
        id,
        command: command.to_owned(),
        status: "running".to_owned(),
        progress: 0,
        error: None,
    };
    inner.actions.insert(
        id,
        SimAction {
            action: action.clone(),
            server_id,
            finish_at: Instant::now() + config.action_delay,
            effect,
            target_type,
            fail,
        },
    );
    action
}

fn locked(inner: &Inner, server_id: i64) -> bool {
    inner
        .actions
        .values()
        .any(|a| a.server_id == server_id && a.action.status == "running")
}

#[derive(Deserialize)]
struct ListQuery {
    name: Option<String>,
    label_selector: Option<String>,
}

async fn list_servers(State(shared): Shd, Query(q): Query<ListQuery>) -> Response {
    let mut inner = shared.lock();
    settle(&mut inner, &shared.config);
    let servers: Vec<&Server> = inner
        .servers
        .values()
        .map(|s| &s.server)
        .filter(|s| q.name.as_ref().is_none_or(|n| &s.name == n))
        .filter(|s| {
            q.label_selector.as_ref().is_none_or(|sel| {
                sel.split(',').all(|term| match term.split_once('=') {
                    Some((k, v)) => s.labels.get(k).is_some_and(|x| x == v),
                    None => s.labels.contains_key(term),
                })
            })
        })
        .collect();
    let total = servers.len();
    Json(json!({
        "servers": servers,
        "meta": {"pagination": {"page": 1, "per_page": 50, "previous_page": null, "next_page": null, "last_page": 1, "total_entries": total}}
    }))
    .into_response()
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 63
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
        && !name.starts_with('-')
        && !name.ends_with('-')
}

async fn create_server(State(shared): Shd, body: Option<Json<CreateServer>>) -> Response {
    let Some(Json(req)) = body else {
        return error(
            StatusCode::BAD_REQUEST,
            "invalid_input",
            "invalid JSON body",
        );
    };
    if !valid_name(&req.name) {
        return error(StatusCode::BAD_REQUEST, "invalid_input", "invalid name");
    }
    if !SERVER_TYPES.contains(&req.server_type.as_str()) {
        return error(
            StatusCode::BAD_REQUEST,
            "invalid_input",
            "server_type not found",
        );
    }
    if !LOCATIONS.contains(&req.location.as_str()) {
        return error(
            StatusCode::BAD_REQUEST,
            "invalid_input",
            "location not found",
        );
    }
    if req.image.trim().is_empty() {
        return error(
            StatusCode::BAD_REQUEST,
            "invalid_input",
            "image is required",
        );
    }
    if req.user_data.len() > USER_DATA_LIMIT {
        return error(
            StatusCode::BAD_REQUEST,
            "invalid_input",
            "user_data exceeds 32 KiB",
        );
    }
    let config = &shared.config;
    let mut inner = shared.lock();
    settle(&mut inner, config);
    if inner.servers.values().any(|s| s.server.name == req.name) {
        return error(
            StatusCode::CONFLICT,
            "uniqueness_error",
            "server name is already used",
        );
    }
    // Find a free loopback address whose three service ports can be bound.
    let host = loop {
        let candidate = Ipv4Addr::from(inner.next_ip);
        inner.next_ip = inner.next_ip.wrapping_add(1);
        let octets = candidate.octets();
        if octets[0] != 127 {
            return error(
                StatusCode::PRECONDITION_FAILED,
                "resource_unavailable",
                "the simulator ran out of loopback addresses",
            );
        }
        if octets[3] == 0 || octets[3] == 255 {
            continue;
        }
        if let Ok(host) = FakeHost::bind(candidate, &req.name, instance_secret(&req.user_data)) {
            break host;
        }
    };
    let (now, later): (Vec<_>, Vec<_>) = std::mem::take(&mut inner.failing_on_create)
        .into_iter()
        .partition(|(name, _)| name.as_ref().is_none_or(|n| *n == req.name));
    inner.failing_on_create = later;
    for (_, service) in now {
        host.set_failing(&service, true);
    }
    inner.next_id += 1;
    let id = inner.next_id;
    inner.servers_created += 1;
    let server = Server {
        id,
        name: req.name.clone(),
        status: "initializing".to_owned(),
        public_net: PublicNet {
            ipv4: Some(Ipv4Info {
                ip: host.ip().to_string(),
            }),
        },
        server_type: ServerTypeRef {
            name: req.server_type.clone(),
        },
        labels: req.labels.clone(),
        created: Utc::now(),
    };
    inner.servers.insert(
        id,
        SimServer {
            server: server.clone(),
            host: Arc::new(host),
        },
    );
    let action = new_action(
        &mut inner,
        config,
        id,
        "create_server",
        Effect::Created,
        None,
    );
    (
        StatusCode::CREATED,
        Json(
            json!({"server": server, "action": action, "next_actions": [], "root_password": null}),
        ),
    )
        .into_response()
}

/// The instance secret the cloud-init writes into `.env`, which the fake web endpoint checks.
fn instance_secret(user_data: &str) -> Option<String> {
    user_data.lines().find_map(|line| {
        line.trim()
            .strip_prefix("INSTANCE_SECRET=")
            .map(|s| s.trim().to_owned())
    })
}

async fn get_server(State(shared): Shd, Path(id): Path<i64>) -> Response {
    let mut inner = shared.lock();
    settle(&mut inner, &shared.config);
    match inner.servers.get(&id) {
        Some(s) => Json(json!({"server": s.server})).into_response(),
        None => error(StatusCode::NOT_FOUND, "not_found", "server not found"),
    }
}

async fn delete_server(State(shared): Shd, Path(id): Path<i64>) -> Response {
    let config = &shared.config;
    let mut inner = shared.lock();
    settle(&mut inner, config);
    let Some(server) = inner.servers.get_mut(&id) else {
        return error(StatusCode::NOT_FOUND, "not_found", "server not found");
    };
    server.server.status = "deleting".to_owned();
    server.host.power_off();
    let action = new_action(
        &mut inner,
        config,
        id,
        "delete_server",
        Effect::Delete,
        None,
    );
    Json(json!({"action": action})).into_response()
}

#[derive(Deserialize, Default)]
struct ChangeType {
    server_type: Option<String>,
}

async fn server_action(
    State(shared): Shd,
    Path((id, command)): Path<(i64, String)>,
    body: Option<Json<ChangeType>>,
) -> Response {
    let config = &shared.config;
    let mut inner = shared.lock();
    settle(&mut inner, config);
    let Some(status) = inner.servers.get(&id).map(|s| s.server.status.clone()) else {
        return error(StatusCode::NOT_FOUND, "not_found", "server not found");
    };
    if locked(&inner, id) {
        return error(
            StatusCode::LOCKED,
            "locked",
            "server is locked by another running action",
        );
    }
    let (name, effect, status_now, target) = match command.as_str() {
        "poweroff" | "shutdown" => ("stop_server", Effect::PowerOff, "stopping", None),
        "poweron" => ("start_server", Effect::PowerOn, "starting", None),
        "reboot" | "reset" => ("reboot_server", Effect::Reboot, "running", None),
        "change_type" => {
            let Some(target) = body.and_then(|Json(b)| b.server_type) else {
                return error(
                    StatusCode::BAD_REQUEST,
                    "invalid_input",
                    "server_type is required",
                );
            };
            if !SERVER_TYPES.contains(&target.as_str()) {
                return error(
                    StatusCode::BAD_REQUEST,
                    "invalid_input",
                    "server_type not found",
                );
            }
            if status != "off" {
                return error(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "server_not_stopped",
                    "the server must be powered off to change its type",
                );
            }
            (
                "change_server_type",
                Effect::ChangeType,
                "off",
                Some(target),
            )
        }
        _ => return error(StatusCode::NOT_FOUND, "not_found", "unknown action"),
    };
    if let Some(server) = inner.servers.get_mut(&id) {
        server.server.status = status_now.to_owned();
        if matches!(effect, Effect::Reboot | Effect::PowerOff) {
            server.host.power_off();
        }
    }
    let action = new_action(&mut inner, config, id, name, effect, target);
    (StatusCode::CREATED, Json(json!({"action": action}))).into_response()
}

async fn get_action(State(shared): Shd, Path(id): Path<i64>) -> Response {
    let mut inner = shared.lock();
    settle(&mut inner, &shared.config);
    match inner.actions.get(&id) {
        Some(a) => Json(json!({"action": a.action})).into_response(),
        None => error(StatusCode::NOT_FOUND, "not_found", "action not found"),
    }
}

async fn add_fault(State(shared): Shd, Json(fault): Json<Fault>) -> StatusCode {
    shared.lock().faults.push_back(fault);
    StatusCode::NO_CONTENT
}

async fn add_action_fault(State(shared): Shd, Json(fault): Json<ActionFault>) -> StatusCode {
    shared.lock().action_faults.push(fault);
    StatusCode::NO_CONTENT
}

#[derive(Deserialize)]
struct NextServer {
    name: Option<String>,
}

/// `POST /_sim/next-server/services/{service}[?name=…]`: the service fails on the next server
/// created (with that name).
async fn fail_on_next_server(
    State(shared): Shd,
    Path(service): Path<String>,
    Query(q): Query<NextServer>,
) -> StatusCode {
    if service.parse::<app::models::Service>().is_err() {
        return StatusCode::NOT_FOUND;
    }
    shared.lock().failing_on_create.push((q.name, service));
    StatusCode::NO_CONTENT
}

#[derive(Deserialize)]
struct ServiceState {
    failing: bool,
}

async fn set_service(
    State(shared): Shd,
    Path((id, service)): Path<(i64, String)>,
    Json(state): Json<ServiceState>,
) -> StatusCode {
    let inner = shared.lock();
    match inner.servers.get(&id) {
        Some(server) if server.host.set_failing(&service, state.failing) => StatusCode::NO_CONTENT,
        _ => StatusCode::NOT_FOUND,
    }
}

async fn stats(State(shared): Shd) -> Json<Value> {
    let mut inner = shared.lock();
    settle(&mut inner, &shared.config);
    Json(json!({
        "calls": inner.calls,
        "servers": inner.servers.len(),
        "servers_created": inner.servers_created,
    }))
}
