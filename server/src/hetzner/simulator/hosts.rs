//! The fake services of the simulated servers — Convex (`:3210/version`), Web (`:3000/` plus
//! the self-update endpoint) and MTA (`:3100/health`), ports and paths from
//! [`app::models::Service`] — for a whole fleet at once.
//!
//! Every `127.x.y.z` reaches the loopback interface, so one listener per service port on the
//! wildcard address receives the connections of every simulated server; each accepted
//! connection is dispatched by its *local* address (the address it was reached on) through a
//! process-wide registry, and refused (closed) when that address is not loopback or no server
//! has it. 10,000 servers cost three listening sockets, not 30,000. Several simulators in one
//! process (parallel tests) share the registry, each on its own loopback range; the listeners
//! and their connections run on a runtime of their own, so they outlive any one test's runtime.
//!
//! Between processes, a lock file (`nest-sim-fleet.lock` in the temporary directory) elects
//! the one that holds the wildcard ports; the others (and any process when the ports are taken
//! by something else) bind each server's three ports on its own address, as before. Both kinds
//! of socket set `SO_REUSEPORT`, so per-server sockets of another Nest process coexist with the
//! wildcard ones (the kernel prefers the more specific address).
//!
//! A service answers 503 while its server is off or booting, and can be told to fail (500),
//! hang (accept and never answer until the fault is cleared) or answer slowly.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, RwLock};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use serde::{Deserialize, Serialize};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::Notify;
use tokio::task::JoinHandle;

use app::models::Service;
use app::models::health::{SELF_UPDATE_PATH, UPSTREAM};

/// What a service of a simulated server does instead of answering normally.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "fault", rename_all = "snake_case")]
pub enum ServiceFault {
    /// Answers HTTP 500.
    Fail,
    /// Accepts the connection and never answers (until the fault is cleared).
    Hang,
    /// Answers normally after a delay.
    Slow {
        /// The delay, in milliseconds.
        delay_ms: u64,
    },
}

struct HostState {
    /// When the services answer; `None` while powered off.
    up_at: Option<Instant>,
    faults: BTreeMap<Service, ServiceFault>,
    boot_delay: Duration,
    self_updates: u32,
    /// Signatures already accepted (a replay within the window is refused).
    seen_signatures: BTreeSet<String>,
}

/// One simulated server as its services see it.
pub struct Host {
    name: String,
    instance_secret: Option<String>,
    state: Mutex<HostState>,
    /// Woken when a fault changes or the host goes away (releases hanging requests).
    changed: Notify,
    removed: AtomicBool,
}

impl Host {
    fn lock(&self) -> MutexGuard<'_, HostState> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn fault(&self, service: Service) -> Option<ServiceFault> {
        self.lock().faults.get(&service).copied()
    }

    /// Applies the service's fault, then says whether it answers: 503 while off or booting,
    /// 500 when failing.
    async fn status(&self, service: Service) -> Result<(), StatusCode> {
        loop {
            let notified = self.changed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            match self.fault(service) {
                Some(ServiceFault::Hang) if !self.removed.load(Ordering::Acquire) => {
                    notified.await;
                    continue;
                }
                Some(ServiceFault::Slow { delay_ms }) => {
                    tokio::time::sleep(Duration::from_millis(delay_ms)).await;
                }
                _ => {}
            }
            break;
        }
        let state = self.lock();
        if self.removed.load(Ordering::Acquire) {
            return Err(StatusCode::SERVICE_UNAVAILABLE);
        }
        match state.up_at {
            Some(at) if Instant::now() >= at => {}
            _ => return Err(StatusCode::SERVICE_UNAVAILABLE),
        }
        if state.faults.get(&service) == Some(&ServiceFault::Fail) {
            return Err(StatusCode::INTERNAL_SERVER_ERROR);
        }
        Ok(())
    }
}

/// The process-wide registry of simulated servers' addresses, and the listeners serving them.
struct Fleet {
    runtime: tokio::runtime::Runtime,
    hosts: RwLock<HashMap<Ipv4Addr, Arc<Host>>>,
    /// Decided at the first registration.
    mode: Mutex<Option<Mode>>,
}

enum Mode {
    /// This process holds the wildcard ports (and the lock file saying so).
    Shared {
        _lock: std::fs::File,
        _tasks: Vec<JoinHandle<()>>,
    },
    /// Each server binds its own three ports.
    PerHost,
}

/// How the fake services are reached, for messages and measurements.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Listening {
    /// One listener per service port on the wildcard address, for every server.
    Shared,
    /// Three listeners per server, on its own address.
    PerHost,
}

static FLEET: OnceLock<Result<Fleet, String>> = OnceLock::new();

fn fleet() -> std::io::Result<&'static Fleet> {
    FLEET
        .get_or_init(|| {
            let threads = std::thread::available_parallelism().map_or(2, |n| n.get().clamp(2, 8));
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(threads)
                .thread_name("nest-sim-hosts")
                .enable_all()
                .build()
                .map(|runtime| Fleet {
                    runtime,
                    hosts: RwLock::new(HashMap::new()),
                    mode: Mutex::new(None),
                })
                .map_err(|e| e.to_string())
        })
        .as_ref()
        .map_err(|e| std::io::Error::other(e.clone()))
}

impl Fleet {
    fn host(&self, ip: Ipv4Addr) -> Option<Arc<Host>> {
        self.hosts
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(&ip)
            .cloned()
    }

    fn hosts_mut(&self) -> std::sync::RwLockWriteGuard<'_, HashMap<Ipv4Addr, Arc<Host>>> {
        self.hosts
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The listening mode, binding the wildcard ports on first use when this process can.
    fn listening(&'static self) -> Listening {
        let mut mode = self
            .mode
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match &*mode {
            Some(Mode::Shared { .. }) => Listening::Shared,
            Some(Mode::PerHost) => Listening::PerHost,
            None => match self.bind_shared() {
                Ok(shared) => {
                    tracing::info!(
                        sim.ports = ?Service::ALL.iter().map(|s| s.port()).collect::<Vec<_>>(),
                        "simulated servers: one listener per service port for the whole fleet"
                    );
                    *mode = Some(shared);
                    Listening::Shared
                }
                Err(e) => {
                    tracing::info!(
                        error.detail = %e,
                        "simulated servers: each binds its own ports (the shared ones are held elsewhere)"
                    );
                    *mode = Some(Mode::PerHost);
                    Listening::PerHost
                }
            },
        }
    }

    fn bind_shared(&'static self) -> std::io::Result<Mode> {
        let path = std::env::temp_dir().join("nest-sim-fleet.lock");
        let lock = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)?;
        lock.try_lock().map_err(|e| {
            std::io::Error::other(format!(
                "{} is held by another process ({e})",
                path.display()
            ))
        })?;
        let mut listeners = Vec::new();
        for service in Service::ALL {
            listeners.push((
                *service,
                self.listen(SocketAddr::from((Ipv4Addr::UNSPECIFIED, service.port())))?,
            ));
        }
        let tasks = listeners
            .into_iter()
            .map(|(service, listener)| self.serve(service, listener))
            .collect();
        Ok(Mode::Shared {
            _lock: lock,
            _tasks: tasks,
        })
    }

    fn listen(&self, addr: SocketAddr) -> std::io::Result<TcpListener> {
        let _runtime = self.runtime.enter();
        let socket = TcpSocket::new_v4()?;
        socket.set_reuseaddr(true)?;
        socket.set_reuseport(true)?;
        socket.bind(addr)?;
        socket.listen(4096)
    }

    fn serve(&'static self, service: Service, listener: TcpListener) -> JoinHandle<()> {
        let router = match service {
            Service::Convex => Router::new().route(service.path(), get(convex_version)),
            Service::Web => Router::new().route(service.path(), get(web_home)),
            Service::Mta => Router::new().route(service.path(), get(mta_health)),
        };
        let router = if service == UPSTREAM {
            router.route(SELF_UPDATE_PATH, post(self_update))
        } else {
            router
        }
        .with_state(service);
        let listener = Dispatch {
            fleet: self,
            listener,
        };
        self.runtime.spawn(async move {
            let app = router.into_make_service_with_connect_info::<Reached>();
            if let Err(e) = axum::serve(listener, app).await {
                tracing::error!(error.detail = %e, "a simulated service port stopped");
            }
        })
    }
}

/// The simulated server a connection reached.
#[derive(Clone)]
struct Reached(Option<Arc<Host>>);

impl std::fmt::Debug for Reached {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.0 {
            Some(host) => write!(f, "simulated server {}", host.name),
            None => f.write_str("no simulated server"),
        }
    }
}

/// Accepts connections and keeps only those reaching a registered loopback address.
struct Dispatch {
    fleet: &'static Fleet,
    listener: TcpListener,
}

impl axum::serve::Listener for Dispatch {
    type Io = TcpStream;
    type Addr = Reached;

    async fn accept(&mut self) -> (TcpStream, Reached) {
        loop {
            let stream = match self.listener.accept().await {
                Ok((stream, _peer)) => stream,
                Err(e) => {
                    // Out of descriptors or a connection reset before accept: wait, go on.
                    tracing::debug!(error.detail = %e, "a simulated service could not accept");
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    continue;
                }
            };
            let host = match stream.local_addr() {
                Ok(SocketAddr::V4(local)) if local.ip().is_loopback() => {
                    self.fleet.host(*local.ip())
                }
                _ => None,
            };
            // Unknown or not loopback: dropping the stream closes the connection.
            if let Some(host) = host {
                let _ = stream.set_nodelay(true);
                return (stream, Reached(Some(host)));
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<Reached> {
        Ok(Reached(None))
    }
}

impl axum::extract::connect_info::Connected<axum::serve::IncomingStream<'_, Dispatch>> for Reached {
    fn connect_info(stream: axum::serve::IncomingStream<'_, Dispatch>) -> Self {
        stream.remote_addr().clone()
    }
}

/// One simulated server's network presence; dropping it takes the server off the network.
pub struct FakeHost {
    ip: Ipv4Addr,
    host: Arc<Host>,
    /// Its own listeners, when it has any (per-host mode).
    tasks: Vec<JoinHandle<()>>,
}

impl FakeHost {
    /// Puts a server on the network at `ip`, powered off until [`FakeHost::boot`]. Fails when
    /// another simulator of this process has `ip`, or (per-host mode) a port is taken.
    pub fn register(
        ip: Ipv4Addr,
        name: &str,
        instance_secret: Option<String>,
    ) -> std::io::Result<Self> {
        let fleet = fleet()?;
        let mode = fleet.listening();
        let host = Arc::new(Host {
            name: name.to_owned(),
            instance_secret,
            state: Mutex::new(HostState {
                up_at: None,
                faults: BTreeMap::new(),
                boot_delay: Duration::ZERO,
                self_updates: 0,
                seen_signatures: BTreeSet::new(),
            }),
            changed: Notify::new(),
            removed: AtomicBool::new(false),
        });
        {
            let mut hosts = fleet.hosts_mut();
            if hosts.contains_key(&ip) {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::AddrInUse,
                    format!("{ip} is another simulated server's"),
                ));
            }
            hosts.insert(ip, host.clone());
        }
        let mut tasks = Vec::new();
        if mode == Listening::PerHost {
            let mut listeners = Vec::new();
            for service in Service::ALL {
                match fleet.listen(SocketAddr::from((ip, service.port()))) {
                    Ok(listener) => listeners.push((*service, listener)),
                    Err(e) => {
                        fleet.hosts_mut().remove(&ip);
                        return Err(e);
                    }
                }
            }
            tasks = listeners
                .into_iter()
                .map(|(service, listener)| fleet.serve(service, listener))
                .collect();
        }
        Ok(Self { ip, host, tasks })
    }

    /// How this process serves the fake services (binding the shared ports if not yet done).
    /// See also [`mode`].
    pub fn listening() -> std::io::Result<Listening> {
        Ok(fleet()?.listening())
    }

    /// The server's address.
    pub fn ip(&self) -> Ipv4Addr {
        self.ip
    }

    /// The instance secret its cloud-init carried, if any.
    pub fn instance_secret(&self) -> Option<String> {
        self.host.instance_secret.clone()
    }

    /// Whether its services are powered on.
    pub fn is_up(&self) -> bool {
        self.host.lock().up_at.is_some()
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

    /// Takes the server off the network (it was deleted); also done on drop.
    pub fn shut_down(&self) {
        self.power_off();
        if !self.host.removed.swap(true, Ordering::AcqRel) {
            if let Ok(fleet) = fleet() {
                let mut hosts = fleet.hosts_mut();
                if hosts
                    .get(&self.ip)
                    .is_some_and(|h| Arc::ptr_eq(h, &self.host))
                {
                    hosts.remove(&self.ip);
                }
            }
            self.host.changed.notify_waiters();
        }
        for task in &self.tasks {
            task.abort();
        }
    }

    /// Makes `service` fail (or recover); false for an unknown service.
    pub fn set_failing(&self, service: &str, failing: bool) -> bool {
        let Ok(service) = service.parse::<Service>() else {
            return false;
        };
        self.set_fault(service, failing.then_some(ServiceFault::Fail));
        true
    }

    /// Sets (or, with `None`, clears) the fault of one service.
    pub fn set_fault(&self, service: Service, fault: Option<ServiceFault>) {
        {
            let mut state = self.host.lock();
            match fault {
                Some(fault) => state.faults.insert(service, fault),
                None => state.faults.remove(&service),
            };
        }
        self.host.changed.notify_waiters();
    }

    /// The services' current faults.
    pub fn faults(&self) -> Vec<(Service, ServiceFault)> {
        self.host
            .lock()
            .faults
            .iter()
            .map(|(s, f)| (*s, *f))
            .collect()
    }

    /// Self-updates accepted so far.
    pub fn self_updates(&self) -> u32 {
        self.host.lock().self_updates
    }
}

impl Drop for FakeHost {
    fn drop(&mut self) {
        self.shut_down();
    }
}

/// How this process serves the fake services, once a server has been registered.
pub fn mode() -> Option<Listening> {
    let fleet = FLEET.get()?.as_ref().ok()?;
    let mode = fleet
        .mode
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    match &*mode {
        Some(Mode::Shared { .. }) => Some(Listening::Shared),
        Some(Mode::PerHost) => Some(Listening::PerHost),
        None => None,
    }
}

type Conn = ConnectInfo<Reached>;

async fn answer(
    service: Service,
    reached: Reached,
    ok: impl FnOnce(&Host) -> Response,
) -> Response {
    let Some(host) = reached.0 else {
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    };
    match host.status(service).await {
        Ok(()) => ok(&host),
        Err(code) => code.into_response(),
    }
}

async fn convex_version(State(service): State<Service>, ConnectInfo(r): Conn) -> Response {
    answer(service, r, |_| {
        "convex-backend simulated 1.0\n".into_response()
    })
    .await
}

async fn web_home(State(service): State<Service>, ConnectInfo(r): Conn) -> Response {
    answer(service, r, |host| {
        Html(format!(
            "<!doctype html><title>{0}</title><h1>Simulated web service of {0}</h1>\n",
            host.name
        ))
        .into_response()
    })
    .await
}

async fn mta_health(State(service): State<Service>, ConnectInfo(r): Conn) -> Response {
    answer(service, r, |_| {
        axum::Json(serde_json::json!({"status": "ok"})).into_response()
    })
    .await
}

/// `POST /api/self-update`, signed with the instance secret (see
/// [`crate::provisioning::signing`]; a bearer token is refused): pulls new images and
/// restarts, i.e. the services are down for one boot delay. A signature is accepted once.
async fn self_update(
    State(service): State<Service>,
    ConnectInfo(r): Conn,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    use crate::provisioning::signing::{SIGNATURE_HEADER, TIMESTAMP_HEADER, verify};
    answer(service, r, |host| {
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
    })
    .await
}
