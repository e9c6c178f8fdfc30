//! The simulator's control API (`/_sim`, token-protected; refused to web pages): scripted API
//! faults and action failures, and the behaviour of the simulated servers' services — fail
//! (HTTP 500), hang (never answer) or answer slowly — for one server, a list of servers or a
//! deterministic share of the fleet. Documented in the README ("Simulated cloud").

use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::middleware;
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::{Value, json};

use super::hosts::{self, ServiceFault};
use super::{ActionFault, Fault, Shared, SimError, Simulator};
use crate::sim_control::{ControlError, Input, control_gate, invalid};
use app::models::Service;

type Shd = State<Arc<Shared>>;

/// Which servers a fleet fault applies to.
#[derive(Debug, Clone, PartialEq)]
pub enum Target {
    /// These servers (by Hetzner id).
    Servers(Vec<i64>),
    /// A share of the servers that exist now: the first `percent` % by id, or, with a seed,
    /// by a seeded shuffle of the ids (the same seed picks the same servers).
    Percent {
        /// 0–100 (rounded up to whole servers).
        percent: f64,
        /// Shuffles the choice.
        seed: Option<u64>,
    },
}

impl From<SimError> for ControlError {
    fn from(e: SimError) -> Self {
        let status = match e {
            SimError::UnknownServer(_) => StatusCode::NOT_FOUND,
            SimError::NameTaken(_) => StatusCode::CONFLICT,
            SimError::NoAddress(_) => StatusCode::SERVICE_UNAVAILABLE,
        };
        Self(status, e.to_string())
    }
}

/// The `/_sim` router.
pub(super) fn router(token: Arc<str>) -> Router<Arc<Shared>> {
    Router::new()
        .route("/faults", post(add_fault).delete(clear_faults))
        .route("/action-faults", post(add_action_fault))
        .route("/next-server/services/{service}", post(fail_on_next_server))
        .route("/servers/{id}/services/{service}", post(set_service))
        .route("/servers/{id}/readdress", post(readdress))
        .route(
            "/service-faults",
            get(list_service_faults)
                .post(add_service_faults)
                .delete(clear_service_faults),
        )
        .route("/stats", get(stats))
        .fallback(|| async { ControlError(StatusCode::NOT_FOUND, "no such path".to_owned()) })
        .layer(middleware::from_fn_with_state(token, control_gate))
}

/// `splitmix64`: a seeded, well-mixed order for the ids.
fn mix(seed: u64, id: i64) -> u64 {
    let mut z = seed ^ (id as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

impl Simulator {
    /// Clears every service fault of every server; answers how many there were.
    pub fn clear_service_faults(&self) -> usize {
        clear_all(&self.shared)
    }
}

fn fleet_fault(
    shared: &Shared,
    target: &Target,
    services: &[Service],
    fault: Option<ServiceFault>,
) -> Result<Vec<i64>, SimError> {
    let inner = shared.lock();
    let mut chosen: Vec<i64> = match target {
        Target::Servers(ids) => {
            if let Some(missing) = ids.iter().find(|id| !inner.servers.contains_key(id)) {
                return Err(SimError::UnknownServer(*missing));
            }
            ids.clone()
        }
        Target::Percent { percent, seed } => {
            let mut ids: Vec<i64> = inner.servers.keys().copied().collect();
            if let Some(seed) = seed {
                ids.sort_by_key(|id| mix(*seed, *id));
            }
            let share = percent.clamp(0.0, 100.0) / 100.0;
            let count = (ids.len() as f64 * share).ceil() as usize;
            ids.truncate(count);
            ids
        }
    };
    chosen.sort_unstable();
    chosen.dedup();
    for id in &chosen {
        if let Some(server) = inner.servers.get(id) {
            for service in services {
                server.host.set_fault(*service, fault);
            }
        }
    }
    Ok(chosen)
}

fn clear_all(shared: &Shared) -> usize {
    let inner = shared.lock();
    let mut cleared = 0;
    for server in inner.servers.values() {
        for (service, _) in server.host.faults() {
            server.host.set_fault(service, None);
            cleared += 1;
        }
    }
    cleared
}

/// What to do to a service: `{"fault": "fail" | "hang" | "slow" | "none", "delay_ms": …}`, or
/// the older `{"failing": true | false}`.
#[derive(Debug, Deserialize)]
struct FaultSpec {
    fault: Option<String>,
    delay_ms: Option<u64>,
    failing: Option<bool>,
}

impl FaultSpec {
    fn resolve(&self) -> Result<Option<ServiceFault>, ControlError> {
        match (self.fault.as_deref(), self.failing) {
            (Some("fail"), _) => Ok(Some(ServiceFault::Fail)),
            (Some("hang"), _) => Ok(Some(ServiceFault::Hang)),
            (Some("slow"), _) => match self.delay_ms {
                Some(delay_ms) if delay_ms <= 600_000 => Ok(Some(ServiceFault::Slow { delay_ms })),
                _ => Err(invalid("a slow service needs `delay_ms` (at most 600000)")),
            },
            (Some("none"), _) => Ok(None),
            (Some(other), _) => Err(invalid(format!(
                "unknown fault `{other}`: say fail, hang, slow or none"
            ))),
            (None, Some(failing)) => Ok(failing.then_some(ServiceFault::Fail)),
            (None, None) => Err(invalid("say `fault` (fail, hang, slow, none) or `failing`")),
        }
    }
}

fn service(name: &str) -> Result<Service, ControlError> {
    name.parse().map_err(|_| {
        ControlError(
            StatusCode::NOT_FOUND,
            format!("unknown service `{name}` (convex, web, mta)"),
        )
    })
}

async fn add_fault(State(shared): Shd, Input(fault): Input<Fault>) -> StatusCode {
    shared.lock().faults.push_back(fault);
    StatusCode::NO_CONTENT
}

async fn clear_faults(State(shared): Shd) -> StatusCode {
    shared.lock().faults.clear();
    StatusCode::NO_CONTENT
}

async fn add_action_fault(State(shared): Shd, Input(fault): Input<ActionFault>) -> StatusCode {
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
    Path(name): Path<String>,
    Query(q): Query<NextServer>,
) -> Result<StatusCode, ControlError> {
    let service = service(&name)?;
    shared.lock().failing_on_create.push((q.name, service));
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /_sim/servers/{id}/services/{service}`: one service of one server.
async fn set_service(
    State(shared): Shd,
    Path((id, name)): Path<(String, String)>,
    Input(spec): Input<FaultSpec>,
) -> Result<StatusCode, ControlError> {
    let service = service(&name)?;
    let fault = spec.resolve()?;
    let id: i64 = id
        .parse()
        .map_err(|_| ControlError(StatusCode::NOT_FOUND, format!("no server {id}")))?;
    let inner = shared.lock();
    let server = inner.servers.get(&id).ok_or(SimError::UnknownServer(id))?;
    server.host.set_fault(service, fault);
    Ok(StatusCode::NO_CONTENT)
}

/// Moves a server to a new IPv4 address (a primary IP swapped behind Nest's back).
async fn readdress(
    State(shared): Shd,
    Path(id): Path<String>,
) -> Result<axum::Json<Value>, ControlError> {
    let id: i64 = id
        .parse()
        .map_err(|_| ControlError(StatusCode::NOT_FOUND, format!("no server {id}")))?;
    let ip = shared.lock().readdress(id)?;
    Ok(axum::Json(json!({"ip": ip.to_string()})))
}

#[derive(Debug, Deserialize)]
struct FleetFault {
    #[serde(flatten)]
    spec: FaultSpec,
    services: Option<Vec<String>>,
    servers: Option<Vec<i64>>,
    server: Option<i64>,
    percent: Option<f64>,
    seed: Option<u64>,
}

/// `POST /_sim/service-faults`: a fault on some services of some servers.
async fn add_service_faults(
    State(shared): Shd,
    Input(req): Input<FleetFault>,
) -> Result<axum::Json<Value>, ControlError> {
    let fault = req.spec.resolve()?;
    let services = match &req.services {
        None => Service::ALL.to_vec(),
        Some(names) if names.is_empty() => return Err(invalid("`services` is empty")),
        Some(names) => names.iter().map(|n| service(n)).collect::<Result<_, _>>()?,
    };
    let target = match (req.server, &req.servers, req.percent) {
        (Some(id), None, None) => Target::Servers(vec![id]),
        (None, Some(ids), None) => Target::Servers(ids.clone()),
        (None, None, Some(percent)) if (0.0..=100.0).contains(&percent) => Target::Percent {
            percent,
            seed: req.seed,
        },
        (None, None, Some(_)) => return Err(invalid("`percent` is between 0 and 100")),
        _ => {
            return Err(invalid(
                "name the servers with exactly one of `server`, `servers` or `percent`",
            ));
        }
    };
    let chosen = fleet_fault(&shared, &target, &services, fault)?;
    Ok(axum::Json(json!({
        "servers": chosen,
        "services": services,
        "fault": fault,
    })))
}

/// `DELETE /_sim/service-faults`: every service of every server answers normally again.
async fn clear_service_faults(State(shared): Shd) -> axum::Json<Value> {
    axum::Json(json!({"cleared": clear_all(&shared)}))
}

/// `GET /_sim/service-faults`: the faults in force.
async fn list_service_faults(State(shared): Shd) -> axum::Json<Value> {
    let inner = shared.lock();
    let faults: Vec<Value> = inner
        .servers
        .values()
        .flat_map(|server| {
            server.host.faults().into_iter().map(|(service, fault)| {
                let mut entry = serde_json::to_value(fault).unwrap_or_else(|_| json!({}));
                if let Some(map) = entry.as_object_mut() {
                    map.insert("server".into(), json!(server.id));
                    map.insert("name".into(), json!(server.name));
                    map.insert("ip".into(), json!(server.host.ip().to_string()));
                    map.insert("service".into(), json!(service));
                }
                entry
            })
        })
        .collect();
    axum::Json(json!({"faults": faults}))
}

async fn stats(State(shared): Shd) -> axum::Json<Value> {
    let inner = shared.settled();
    axum::Json(json!({
        "calls": inner.calls,
        "servers": inner.servers.len(),
        "servers_created": inner.servers_created,
        "listening": hosts::mode(),
    }))
}
