//! The simulated Hetzner API (`/v1`): servers (list with label selectors, status filters and
//! pagination; create; get; update; delete), their power and resize actions, and actions.
//! Every rejection is in Hetzner's shape, `{"error": {"code", "message", "details"}}`, with
//! Hetzner's status — malformed JSON, wrong types, unknown paths and methods included (the
//! body and query are read by this module's own extractors, so axum's plain-text rejections
//! never reach a client).

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{FromRequest, Path, RawQuery, Request, State};
use axum::http::StatusCode;
use axum::middleware;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Map, Value, json};

use super::catalog::{self, Ref};
use super::selector::Selector;
use super::{Effect, Inner, NewServer, Shared, SimError, USER_DATA_LIMIT};

type Shd = State<Arc<Shared>>;

/// A rejection in Hetzner's error shape.
#[derive(Debug, Clone)]
pub struct ApiError {
    status: StatusCode,
    code: String,
    message: String,
    details: Value,
}

impl ApiError {
    /// An error without details.
    pub fn new(status: StatusCode, code: &str, message: &str) -> Self {
        Self {
            status,
            code: code.to_owned(),
            message: message.to_owned(),
            details: json!({}),
        }
    }

    fn not_found(what: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "not_found",
            &format!("{what} not found"),
        )
    }

    /// Hetzner's `invalid_input` (400) naming each field and what is wrong with it.
    fn fields(fields: Vec<(String, String)>) -> Self {
        let names: Vec<String> = fields.iter().map(|(n, _)| format!("'{n}'")).collect();
        let message = match names.as_slice() {
            [one] => format!("invalid input in field {one}"),
            _ => format!("invalid input in fields {}", names.join(", ")),
        };
        let mut grouped: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (name, text) in fields {
            grouped.entry(name).or_default().push(text);
        }
        let fields: Vec<Value> = grouped
            .into_iter()
            .map(|(name, messages)| json!({"name": name, "messages": messages}))
            .collect();
        Self {
            status: StatusCode::BAD_REQUEST,
            code: "invalid_input".to_owned(),
            message,
            details: json!({"fields": fields}),
        }
    }

    fn field(name: &str, message: &str) -> Self {
        Self::fields(vec![(name.to_owned(), message.to_owned())])
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (
            self.status,
            axum::Json(json!({"error": {
                "code": self.code, "message": self.message, "details": self.details,
            }})),
        )
            .into_response()
    }
}

impl From<SimError> for ApiError {
    fn from(e: SimError) -> Self {
        match e {
            SimError::NameTaken(_) => Self {
                details: json!({"fields": [{"name": "name", "messages": ["is already used"]}]}),
                ..Self::new(
                    StatusCode::CONFLICT,
                    "uniqueness_error",
                    "SSH key or server name is already used",
                )
            },
            SimError::NoAddress(_) => Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "resource_unavailable",
                &e.to_string(),
            ),
            SimError::UnknownServer(_) => Self::not_found("server"),
        }
    }
}

/// A request body: empty means `{}`; anything but a JSON object is refused as Hetzner does.
pub struct Body(Map<String, Value>);

impl<S: Send + Sync> FromRequest<S> for Body {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = Bytes::from_request(req, state).await.map_err(|e| {
            ApiError::new(
                e.status(),
                "invalid_input",
                "the request body could not be read",
            )
        })?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(Self(Map::new()));
        }
        match serde_json::from_slice::<Value>(&bytes) {
            Ok(Value::Object(map)) => Ok(Self(map)),
            Ok(_) => Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_input",
                "the request body must be a JSON object",
            )),
            Err(e) => Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "json_error",
                &format!("the request body is not valid JSON: {e}"),
            )),
        }
    }
}

/// Reads the fields of a body, collecting every problem before answering.
struct Fields<'a> {
    body: &'a Map<String, Value>,
    problems: Vec<(String, String)>,
}

const MISSING: &str = "Missing data for required field.";

impl<'a> Fields<'a> {
    fn new(body: &'a Map<String, Value>) -> Self {
        Self {
            body,
            problems: Vec::new(),
        }
    }

    fn problem(&mut self, name: &str, message: impl Into<String>) {
        self.problems.push((name.to_owned(), message.into()));
    }

    fn present(&self, name: &str) -> Option<&'a Value> {
        self.body.get(name).filter(|v| !v.is_null())
    }

    fn string(&mut self, name: &str, required: bool) -> Option<String> {
        match self.present(name) {
            Some(Value::String(s)) => Some(s.clone()),
            Some(_) => {
                self.problem(name, "Not a valid string.");
                None
            }
            None => {
                if required {
                    self.problem(name, MISSING);
                }
                None
            }
        }
    }

    fn boolean(&mut self, name: &str, required: bool) -> Option<bool> {
        match self.present(name) {
            Some(Value::Bool(b)) => Some(*b),
            Some(_) => {
                self.problem(name, "Not a valid boolean.");
                None
            }
            None => {
                if required {
                    self.problem(name, MISSING);
                }
                None
            }
        }
    }

    /// A catalog reference: a name or an id.
    fn reference(&mut self, name: &str, required: bool) -> Option<Ref> {
        match self.present(name) {
            Some(v) => {
                let r = Ref::from_json(v);
                if r.is_none() {
                    self.problem(name, "Not a valid name or ID.");
                }
                r
            }
            None => {
                if required {
                    self.problem(name, MISSING);
                }
                None
            }
        }
    }

    fn labels(&mut self, name: &str) -> BTreeMap<String, String> {
        let mut labels = BTreeMap::new();
        match self.present(name) {
            None => {}
            Some(Value::Object(map)) => {
                for (k, v) in map {
                    match v {
                        Value::String(v) if valid_label(k, v) => {
                            labels.insert(k.clone(), v.clone());
                        }
                        _ => self.problem(name, format!("invalid label `{k}`")),
                    }
                }
            }
            Some(_) => self.problem(name, "Not a valid mapping type."),
        }
        labels
    }

    fn done(self) -> Result<(), ApiError> {
        if self.problems.is_empty() {
            Ok(())
        } else {
            Err(ApiError::fields(self.problems))
        }
    }
}

fn valid_label(key: &str, value: &str) -> bool {
    let name = key.rsplit('/').next().unwrap_or_default();
    let ok = |s: &str| {
        s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
    };
    !name.is_empty() && name.len() <= 63 && ok(name) && value.len() <= 63 && ok(value)
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

fn parse_id(text: &str, name: &str) -> Result<i64, ApiError> {
    text.parse::<i64>()
        .ok()
        .filter(|id| *id > 0)
        .ok_or_else(|| ApiError::field(name, "Not a valid integer."))
}

/// The `/v1` router, with authentication, rate limiting and scripted faults in front.
pub(super) fn router(shared: Arc<Shared>) -> Router<Arc<Shared>> {
    Router::new()
        .route("/servers", get(list_servers).post(create_server))
        .route(
            "/servers/{id}",
            get(get_server).put(update_server).delete(delete_server),
        )
        .route(
            "/servers/{id}/actions/{command}",
            get(get_server_action).post(server_action),
        )
        .route("/servers/actions/{id}", get(get_action))
        .route("/actions/{id}", get(get_action))
        .route("/pricing", get(pricing))
        .fallback(unknown_path)
        .method_not_allowed_fallback(wrong_method)
        .layer(middleware::from_fn_with_state(shared, super::api_gate))
}

/// `GET /pricing`: every resource's price per location.
async fn pricing() -> axum::Json<serde_json::Value> {
    axum::Json(catalog::pricing_json())
}

/// Any path the API does not have.
pub async fn unknown_path() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such API path")
}

async fn wrong_method() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "this method is not allowed on this path",
    )
}

const STATUSES: &[&str] = &[
    "initializing",
    "starting",
    "running",
    "stopping",
    "off",
    "deleting",
    "migrating",
    "rebuilding",
    "unknown",
];

async fn list_servers(State(shared): Shd, RawQuery(query): RawQuery) -> Result<Response, ApiError> {
    let mut name = None;
    let mut selector: Option<Selector> = None;
    let mut statuses = Vec::new();
    let (mut page, mut per_page) = (1_usize, 25_usize);
    let mut sort = None;
    for (key, value) in url::form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
        match key.as_ref() {
            "name" => name = Some(value.into_owned()),
            "label_selector" => {
                selector = Some(value.parse().map_err(|e: super::selector::SelectorError| {
                    ApiError::field("label_selector", &e.to_string())
                })?);
            }
            "status" => {
                if !STATUSES.contains(&value.as_ref()) {
                    return Err(ApiError::field(
                        "status",
                        "Must be one of the server statuses.",
                    ));
                }
                statuses.push(value.into_owned());
            }
            "page" => {
                page = value
                    .parse()
                    .ok()
                    .filter(|p| *p >= 1)
                    .ok_or_else(|| ApiError::field("page", "Not a valid integer."))?;
            }
            "per_page" => {
                per_page = value
                    .parse()
                    .ok()
                    .filter(|p| (1..=50).contains(p))
                    .ok_or_else(|| ApiError::field("per_page", "Must be between 1 and 50."))?;
            }
            "sort" => sort = Some(value.into_owned()),
            _ => {}
        }
    }
    let inner = shared.settled();
    let mut servers: Vec<&super::SimServer> = inner
        .servers
        .values()
        .filter(|s| name.as_ref().is_none_or(|n| &s.name == n))
        .filter(|s| statuses.is_empty() || statuses.iter().any(|x| x == s.status))
        .filter(|s| selector.as_ref().is_none_or(|x| x.matches(&s.labels)))
        .collect();
    match sort.as_deref() {
        None | Some("id" | "id:asc") => {}
        Some("id:desc") => servers.reverse(),
        Some("name" | "name:asc") => servers.sort_by(|a, b| a.name.cmp(&b.name)),
        Some("name:desc") => servers.sort_by(|a, b| b.name.cmp(&a.name)),
        Some("created" | "created:asc") => servers.sort_by_key(|s| s.created),
        Some("created:desc") => servers.sort_by_key(|s| std::cmp::Reverse(s.created)),
        Some(_) => return Err(ApiError::field("sort", "Not a valid sort order.")),
    }
    let total = servers.len();
    let last_page = total.div_ceil(per_page).max(1);
    let page_of: Vec<Value> = servers
        .iter()
        .skip((page - 1).saturating_mul(per_page))
        .take(per_page)
        .map(|s| s.json(inner.locked(s.id)))
        .collect();
    Ok(axum::Json(json!({
        "servers": page_of,
        "meta": {"pagination": {
            "page": page,
            "per_page": per_page,
            "previous_page": (page > 1).then(|| (page - 1).min(last_page)),
            "next_page": (page < last_page).then_some(page + 1),
            "last_page": last_page,
            "total_entries": total,
        }},
    }))
    .into_response())
}

async fn create_server(State(shared): Shd, Body(body): Body) -> Result<Response, ApiError> {
    let mut f = Fields::new(&body);
    let name = f.string("name", true);
    let server_type = f.reference("server_type", true);
    let image = f.reference("image", true);
    let location = f.reference("location", false);
    let datacenter = f.reference("datacenter", false);
    let user_data = f.string("user_data", false).unwrap_or_default();
    let start = f.boolean("start_after_create", false).unwrap_or(true);
    let labels = f.labels("labels");
    let mut ssh_keys = 0;
    match f.present("ssh_keys") {
        None => {}
        Some(Value::Array(keys)) => {
            for key in keys {
                if Ref::from_json(key).is_none() {
                    f.problem("ssh_keys", "Not a valid SSH key name or ID.");
                }
                ssh_keys += 1;
            }
        }
        Some(_) => f.problem("ssh_keys", "Not a valid list."),
    }
    let mut ipv6 = true;
    match f.present("public_net") {
        None => {}
        Some(Value::Object(net)) => match net.get("enable_ipv6") {
            None | Some(Value::Null) => {}
            Some(Value::Bool(b)) => ipv6 = *b,
            Some(_) => f.problem("public_net", "enable_ipv6 is not a valid boolean."),
        },
        Some(_) => f.problem("public_net", "Not a valid mapping type."),
    }
    for list in ["volumes", "networks", "firewalls"] {
        if f.present(list).is_some_and(|v| !v.is_array()) {
            f.problem(list, "Not a valid list.");
        }
    }
    let name = name.filter(|n| {
        let ok = valid_name(n);
        if !ok {
            f.problem("name", "Not a valid hostname (RFC 1123).");
        }
        ok
    });
    let server_type = server_type.and_then(|r| {
        let found = catalog::server_type(&r);
        if found.is_none() {
            f.problem("server_type", "server type not found");
        }
        found
    });
    let image = image.and_then(|r| {
        let found = catalog::image(&r);
        if found.is_none() {
            f.problem("image", "image not found");
        }
        found
    });
    let location = match (location, datacenter) {
        (Some(r), _) => catalog::location(&r).or_else(|| {
            f.problem("location", "location not found");
            None
        }),
        (None, Some(Ref::Name(dc))) => dc
            .split('-')
            .next()
            .and_then(|l| catalog::location(&Ref::Name(l.to_owned())))
            .or_else(|| {
                f.problem("datacenter", "datacenter not found");
                None
            }),
        (None, Some(Ref::Id(_))) | (None, None) => catalog::LOCATIONS.first(),
    };
    if user_data.len() > USER_DATA_LIMIT {
        f.problem("user_data", "Longer than maximum length 32768.");
    }
    f.done()?;
    let (Some(name), Some(server_type), Some(image), Some(location)) =
        (name, server_type, image, location)
    else {
        return Err(ApiError::field("name", MISSING));
    };
    let config = &shared.config;
    let mut inner = shared.settled();
    let id = inner.add_server(NewServer {
        name,
        server_type,
        location,
        image,
        labels,
        user_data,
        ipv6,
    })?;
    let create = inner.new_action(
        config,
        id,
        "create_server",
        Effect::Created { start },
        None,
        None,
    );
    let next: Vec<i64> = if start {
        vec![inner.new_action(
            config,
            id,
            "start_server",
            Effect::PowerOn,
            None,
            Some(create),
        )]
    } else {
        Vec::new()
    };
    let root_password = (ssh_keys == 0).then(|| crate::clock::random_hex(12));
    let json_of = |inner: &Inner, id: i64| inner.actions.get(&id).map(super::SimAction::json);
    let server = inner
        .servers
        .get(&id)
        .map(|s| s.json(true))
        .ok_or(SimError::UnknownServer(id))?;
    Ok((
        StatusCode::CREATED,
        axum::Json(json!({
            "server": server,
            "action": json_of(&inner, create),
            "next_actions": next.iter().filter_map(|a| json_of(&inner, *a)).collect::<Vec<_>>(),
            "root_password": root_password,
        })),
    )
        .into_response())
}

async fn get_server(State(shared): Shd, Path(id): Path<String>) -> Result<Response, ApiError> {
    let id = parse_id(&id, "id")?;
    let inner = shared.settled();
    let server = inner
        .servers
        .get(&id)
        .ok_or_else(|| ApiError::not_found("server"))?;
    Ok(axum::Json(json!({"server": server.json(inner.locked(id))})).into_response())
}

async fn update_server(
    State(shared): Shd,
    Path(id): Path<String>,
    Body(body): Body,
) -> Result<Response, ApiError> {
    let id = parse_id(&id, "id")?;
    let mut f = Fields::new(&body);
    let name = f.string("name", false);
    let labels = f.present("labels").is_some().then(|| f.labels("labels"));
    if let Some(n) = &name
        && !valid_name(n)
    {
        f.problem("name", "Not a valid hostname (RFC 1123).");
    }
    f.done()?;
    let mut inner = shared.settled();
    if !inner.servers.contains_key(&id) {
        return Err(ApiError::not_found("server"));
    }
    if let Some(n) = &name
        && inner.servers.values().any(|s| s.id != id && &s.name == n)
    {
        return Err(SimError::NameTaken(n.clone()).into());
    }
    let locked = inner.locked(id);
    let server = inner
        .servers
        .get_mut(&id)
        .ok_or_else(|| ApiError::not_found("server"))?;
    if let Some(n) = name {
        server.name = n;
    }
    if let Some(l) = labels {
        server.labels = l;
    }
    Ok(axum::Json(json!({"server": server.json(locked)})).into_response())
}

async fn delete_server(State(shared): Shd, Path(id): Path<String>) -> Result<Response, ApiError> {
    let id = parse_id(&id, "id")?;
    let config = &shared.config;
    let mut inner = shared.settled();
    let server = inner
        .servers
        .get_mut(&id)
        .ok_or_else(|| ApiError::not_found("server"))?;
    server.status = "deleting";
    server.host.power_off();
    let action = inner.new_action(config, id, "delete_server", Effect::Delete, None, None);
    let action = inner.actions.get(&action).map(super::SimAction::json);
    Ok(axum::Json(json!({"action": action})).into_response())
}

async fn server_action(
    State(shared): Shd,
    Path((id, command)): Path<(String, String)>,
    Body(body): Body,
) -> Result<Response, ApiError> {
    let id = parse_id(&id, "id")?;
    let mut target = None;
    let (name, effect, status_now) = match command.as_str() {
        "poweroff" => ("stop_server", Effect::PowerOff, Some("stopping")),
        "shutdown" => ("shutdown_server", Effect::PowerOff, Some("stopping")),
        "poweron" => ("start_server", Effect::PowerOn, Some("starting")),
        "reboot" => ("reboot_server", Effect::Reboot, Some("running")),
        "reset" => ("reset_server", Effect::Reboot, Some("running")),
        "change_type" => {
            let mut f = Fields::new(&body);
            let r = f.reference("server_type", true);
            f.boolean("upgrade_disk", true);
            target = r.as_ref().and_then(catalog::server_type);
            if r.is_some() && target.is_none() {
                f.problem("server_type", "server type not found");
            }
            f.done()?;
            ("change_server_type", Effect::ChangeType, None)
        }
        _ => return Err(unknown_path().await),
    };
    let config = &shared.config;
    let mut inner = shared.settled();
    let status = inner
        .servers
        .get(&id)
        .map(|s| s.status)
        .ok_or_else(|| ApiError::not_found("server"))?;
    if inner.locked(id) {
        return Err(ApiError::new(
            StatusCode::LOCKED,
            "locked",
            "server is locked by another running action",
        ));
    }
    if effect == Effect::ChangeType && status != "off" {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "server_not_stopped",
            "the server must be powered off to change its type",
        ));
    }
    if let Some(server) = inner.servers.get_mut(&id) {
        if let Some(s) = status_now {
            server.status = s;
        }
        if matches!(effect, Effect::Reboot | Effect::PowerOff) {
            server.host.power_off();
        }
    }
    let action = inner.new_action(config, id, name, effect, target, None);
    let action = inner.actions.get(&action).map(super::SimAction::json);
    Ok((StatusCode::CREATED, axum::Json(json!({"action": action}))).into_response())
}

async fn get_server_action(
    State(shared): Shd,
    Path((id, action)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let id = parse_id(&id, "id")?;
    let action = parse_id(&action, "action_id")?;
    let inner = shared.settled();
    match inner.actions.get(&action) {
        Some(a) if a.server_id == id => Ok(axum::Json(json!({"action": a.json()})).into_response()),
        _ => Err(ApiError::not_found("action")),
    }
}

async fn get_action(State(shared): Shd, Path(id): Path<String>) -> Result<Response, ApiError> {
    let id = parse_id(&id, "id")?;
    let inner = shared.settled();
    let action = inner
        .actions
        .get(&id)
        .ok_or_else(|| ApiError::not_found("action"))?;
    Ok(axum::Json(json!({"action": action.json()})).into_response())
}
