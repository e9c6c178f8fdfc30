//! The Hetzner Cloud API client (reqwest): the endpoints the provisioning flows use, typed
//! errors from Hetzner's error codes, the rate-limit headers read on every response, and a
//! count of every call made.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use reqwest::{Method, StatusCode};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::json;
use url::Url;

use super::{Action, ApiErrorBody, CreateServer, HetznerError, RateLimit, Server};
use crate::config::Secret;

/// A client for one Hetzner project (or the simulator).
#[derive(Clone)]
pub struct HetznerClient {
    http: reqwest::Client,
    base: Url,
    token: Secret,
    calls: Arc<AtomicU64>,
    rate_limit: Arc<Mutex<Option<RateLimit>>>,
}

#[derive(Deserialize)]
struct ErrorEnvelope {
    error: ApiErrorBody,
}
#[derive(Deserialize)]
struct ServerEnvelope {
    server: Server,
}
#[derive(Deserialize)]
struct ServersEnvelope {
    servers: Vec<Server>,
}
#[derive(Deserialize)]
struct ServersPage {
    servers: Vec<Server>,
    meta: Option<PageMeta>,
}
#[derive(Deserialize)]
struct PageMeta {
    pagination: Pagination,
}
#[derive(Deserialize)]
struct Pagination {
    next_page: Option<u32>,
}
#[derive(Deserialize)]
struct ActionEnvelope {
    action: Action,
}
/// What `POST /servers` answers.
#[derive(Debug, Deserialize)]
pub struct CreatedServer {
    /// The new server.
    pub server: Server,
    /// Its `create_server` action.
    pub action: Action,
}

impl HetznerClient {
    /// A client for the API at `base` (e.g. `https://api.hetzner.cloud/v1`), with a per-request
    /// timeout.
    pub fn new(base: Url, token: Secret, timeout: Duration) -> Result<Self, HetznerError> {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(Duration::from_secs(10))
            .user_agent(concat!("nest/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| HetznerError::Network(e.to_string()))?;
        let mut base = base;
        if !base.path().ends_with('/') {
            base.set_path(&format!("{}/", base.path()));
        }
        Ok(Self {
            http,
            base,
            token,
            calls: Arc::new(AtomicU64::new(0)),
            rate_limit: Arc::new(Mutex::new(None)),
        })
    }

    /// How many API calls this client (and its clones) made.
    pub fn calls(&self) -> u64 {
        self.calls.load(Ordering::Relaxed)
    }

    /// The rate-limit headers of the last response.
    pub fn rate_limit(&self) -> Option<RateLimit> {
        self.rate_limit.lock().ok().and_then(|g| *g)
    }

    /// One API call. `endpoint` is `path` as a template (`/servers/{id}`), the metrics label.
    async fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        endpoint: &'static str,
        path: &str,
        query: &[(&str, String)],
        body: Option<serde_json::Value>,
    ) -> Result<T, HetznerError> {
        let url = self
            .base
            .join(path)
            .map_err(|e| HetznerError::Decode(format!("bad path {path}: {e}")))?;
        let method_label = crate::metrics::method_label(&method);
        let mut request = self
            .http
            .request(method, url)
            .bearer_auth(self.token.expose())
            .query(query);
        if let Some(body) = body {
            request = request.json(&body);
        }
        // Waiting for the rate limit to refill is cheaper than a 429.
        if let Some(limit) = self.rate_limit()
            && limit.remaining == 0
        {
            let wait = (limit.reset - Utc::now())
                .num_milliseconds()
                .clamp(0, 5_000);
            tokio::time::sleep(Duration::from_millis(wait.unsigned_abs())).await;
        }
        self.calls.fetch_add(1, Ordering::Relaxed);
        let response = request.send().await.map_err(|e| {
            if e.is_timeout() {
                crate::metrics::hetzner_request(endpoint, method_label, "timeout");
                HetznerError::Timeout
            } else {
                crate::metrics::hetzner_request(endpoint, method_label, "network");
                HetznerError::Network(e.to_string())
            }
        })?;
        let limit = read_rate_limit(response.headers());
        if let (Some(limit), Ok(mut slot)) = (limit, self.rate_limit.lock()) {
            *slot = Some(limit);
        }
        let status = response.status();
        crate::metrics::hetzner_request(endpoint, method_label, status.as_str());
        let bytes = response.bytes().await.map_err(|e| {
            if e.is_timeout() {
                HetznerError::Timeout
            } else {
                HetznerError::Network(e.to_string())
            }
        })?;
        if status.is_success() {
            let bytes = if bytes.is_empty() {
                &b"null"[..]
            } else {
                &bytes
            };
            return serde_json::from_slice(bytes)
                .map_err(|e| HetznerError::Decode(format!("{path}: {e}")));
        }
        let (code, message) = match serde_json::from_slice::<ErrorEnvelope>(&bytes) {
            Ok(envelope) => (envelope.error.code, envelope.error.message),
            Err(_) => (
                fallback_code(status).to_owned(),
                String::from_utf8_lossy(&bytes).chars().take(200).collect(),
            ),
        };
        let retry_at = (code == "rate_limit_exceeded")
            .then(|| limit.map(|l| l.reset))
            .flatten();
        Err(HetznerError::Api {
            status: status.as_u16(),
            code,
            message,
            retry_at,
        })
    }

    /// `GET /servers?name=…`: the server with this name, if any.
    pub async fn find_server_by_name(&self, name: &str) -> Result<Option<Server>, HetznerError> {
        let found: ServersEnvelope = self
            .call(
                Method::GET,
                "/servers",
                "servers",
                &[("name", name.to_owned())],
                None,
            )
            .await?;
        Ok(found.servers.into_iter().find(|s| s.name == name))
    }

    /// `GET /servers?label_selector=…`: every server matching the selector, page by page (50 a
    /// page, Hetzner's largest; each call waits for the rate limit when it is spent).
    pub async fn list_servers(&self, label_selector: &str) -> Result<Vec<Server>, HetznerError> {
        let mut all = Vec::new();
        let mut page = 1_u32;
        loop {
            let found: ServersPage = self
                .call(
                    Method::GET,
                    "/servers",
                    "servers",
                    &[
                        ("label_selector", label_selector.to_owned()),
                        ("per_page", "50".to_owned()),
                        ("page", page.to_string()),
                    ],
                    None,
                )
                .await?;
            all.extend(found.servers);
            match found.meta.and_then(|m| m.pagination.next_page) {
                Some(next) if next > page => page = next,
                _ => return Ok(all),
            }
        }
    }

    /// `GET /pricing`: every resource's price per location (one call).
    pub async fn pricing(&self) -> Result<super::Pricing, HetznerError> {
        let found: super::PricingEnvelope = self
            .call(Method::GET, "/pricing", "pricing", &[], None)
            .await?;
        Ok(found.pricing)
    }

    /// `GET /servers/{id}`; `None` when Hetzner says `not_found`.
    pub async fn get_server(&self, id: i64) -> Result<Option<Server>, HetznerError> {
        match self
            .call::<ServerEnvelope>(
                Method::GET,
                "/servers/{id}",
                &format!("servers/{id}"),
                &[],
                None,
            )
            .await
        {
            Ok(found) => Ok(Some(found.server)),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// `POST /servers`.
    pub async fn create_server(&self, req: &CreateServer) -> Result<CreatedServer, HetznerError> {
        let body = serde_json::to_value(req).map_err(|e| HetznerError::Decode(e.to_string()))?;
        self.call(Method::POST, "/servers", "servers", &[], Some(body))
            .await
    }

    /// `DELETE /servers/{id}`; `None` when the server is already gone.
    pub async fn delete_server(&self, id: i64) -> Result<Option<Action>, HetznerError> {
        match self
            .call::<ActionEnvelope>(
                Method::DELETE,
                "/servers/{id}",
                &format!("servers/{id}"),
                &[],
                None,
            )
            .await
        {
            Ok(found) => Ok(Some(found.action)),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// `POST /servers/{id}/actions/{poweroff|poweron|reboot|shutdown|reset}`.
    pub async fn power(&self, id: i64, command: &str) -> Result<Action, HetznerError> {
        let found: ActionEnvelope = self
            .call(
                Method::POST,
                "/servers/{id}/actions/{action}",
                &format!("servers/{id}/actions/{command}"),
                &[],
                None,
            )
            .await?;
        Ok(found.action)
    }

    /// `POST /servers/{id}/actions/change_type` (the server must be off).
    pub async fn change_type(&self, id: i64, server_type: &str) -> Result<Action, HetznerError> {
        let found: ActionEnvelope = self
            .call(
                Method::POST,
                "/servers/{id}/actions/{action}",
                &format!("servers/{id}/actions/change_type"),
                &[],
                Some(json!({"server_type": server_type, "upgrade_disk": false})),
            )
            .await?;
        Ok(found.action)
    }

    /// `GET /actions/{id}`.
    pub async fn get_action(&self, id: i64) -> Result<Action, HetznerError> {
        let found: ActionEnvelope = self
            .call(
                Method::GET,
                "/actions/{id}",
                &format!("actions/{id}"),
                &[],
                None,
            )
            .await?;
        Ok(found.action)
    }

    /// Polls an action with backoff (250 ms doubling to 5 s) until it ends; an `error` ending
    /// becomes [`HetznerError::ActionFailed`].
    pub async fn wait_for(&self, action: Action, within: Duration) -> Result<Action, HetznerError> {
        let deadline = tokio::time::Instant::now() + within;
        let mut delay = Duration::from_millis(250);
        let mut action = action;
        loop {
            match action.status.as_str() {
                "success" => return Ok(action),
                "error" => {
                    let error = action.error.unwrap_or(ApiErrorBody {
                        code: "unknown".to_owned(),
                        message: "no error given".to_owned(),
                    });
                    return Err(HetznerError::ActionFailed {
                        command: action.command,
                        code: error.code,
                        message: error.message,
                    });
                }
                _ => {}
            }
            if tokio::time::Instant::now() + delay > deadline {
                return Err(HetznerError::ActionTimeout(action.command));
            }
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(Duration::from_secs(5));
            action = self.get_action(action.id).await?;
        }
    }
}

fn fallback_code(status: StatusCode) -> &'static str {
    match status.as_u16() {
        401 => "unauthorized",
        403 => "forbidden",
        404 => "not_found",
        409 => "conflict",
        412 => "resource_unavailable",
        423 => "locked",
        429 => "rate_limit_exceeded",
        502 => "bad_gateway",
        503 => "unavailable",
        504 => "timeout",
        s if s >= 500 => "server_error",
        _ => "invalid_input",
    }
}

fn read_rate_limit(headers: &reqwest::header::HeaderMap) -> Option<RateLimit> {
    let number =
        |name: &str| -> Option<i64> { headers.get(name)?.to_str().ok()?.trim().parse().ok() };
    let reset: DateTime<Utc> = Utc.timestamp_opt(number("ratelimit-reset")?, 0).single()?;
    Some(RateLimit {
        limit: u32::try_from(number("ratelimit-limit")?).ok()?,
        remaining: u32::try_from(number("ratelimit-remaining")?).ok()?,
        reset,
    })
}
