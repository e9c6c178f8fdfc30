//! A client for Caddy's admin API: one route per organization, identified by `@id`
//! `nest-org-<id>`, matching `<slug>.<base domain>` and proxying to `IPv4:3000`.

use std::collections::BTreeMap;
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use url::Url;

/// The Caddy HTTP server (in `apps.http.servers`) that holds Nest's routes; see `caddy/caddy.json`.
pub const SERVER_NAME: &str = "nest";
/// Prefix of the `@id` of every route Nest manages.
pub const ID_PREFIX: &str = "nest-org-";

/// One route as Nest wants it in Caddy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteSpec {
    /// `nest-org-<organization id>`.
    pub id: String,
    /// `<slug>.<base domain>`.
    pub host: String,
    /// `IPv4:port`.
    pub dial: String,
}

/// Why Caddy could not be changed or read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CaddyError {
    /// The admin API did not answer.
    #[error("Caddy's admin API is unreachable: {0}")]
    Unreachable(String),
    /// The admin API answered with an error.
    #[error("Caddy refused the change (HTTP {status}): {body}")]
    Refused {
        /// HTTP status.
        status: u16,
        /// Caddy's message.
        body: String,
    },
}

/// The admin-API client.
#[derive(Clone, Debug)]
pub struct CaddyClient {
    http: reqwest::Client,
    admin: Url,
}

impl CaddyClient {
    /// A client for the admin API at `admin` (e.g. `http://localhost:2019`).
    pub fn new(admin: Url) -> Result<Self, CaddyError> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| CaddyError::Unreachable(e.to_string()))?;
        Ok(Self { http, admin })
    }

    async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<(StatusCode, String), CaddyError> {
        let url = self
            .admin
            .join(path)
            .map_err(|e| CaddyError::Unreachable(format!("bad admin URL: {e}")))?;
        let mut request = self.http.request(method, url);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request
            .send()
            .await
            .map_err(|e| CaddyError::Unreachable(e.to_string()))?;
        let status = response.status();
        let text = response
            .text()
            .await
            .map_err(|e| CaddyError::Unreachable(e.to_string()))?;
        Ok((status, text))
    }

    fn refused(status: StatusCode, body: String) -> CaddyError {
        CaddyError::Refused {
            status: status.as_u16(),
            body: body.chars().take(300).collect(),
        }
    }

    /// Removes the route with this `@id`; absent is fine.
    pub async fn remove(&self, id: &str) -> Result<(), CaddyError> {
        let (status, body) = self.send(Method::DELETE, &format!("id/{id}"), None).await?;
        // Caddy answers 404 (or 500 "unknown object ID" on some versions) for an unknown id.
        if status.is_success()
            || status == StatusCode::NOT_FOUND
            || body.contains("unknown object ID")
        {
            Ok(())
        } else {
            Err(Self::refused(status, body))
        }
    }

    /// Adds or replaces a route, ahead of the catch-all. Caddy 2.6 accepts duplicate `@id`s,
    /// so the old one is removed first.
    pub async fn upsert(&self, route: &RouteSpec) -> Result<(), CaddyError> {
        self.remove(&route.id).await?;
        let body = json!({
            "@id": route.id,
            "match": [{"host": [route.host]}],
            "handle": [{"handler": "reverse_proxy", "upstreams": [{"dial": route.dial}]}],
            "terminal": true,
        });
        let (status, text) = self
            .send(
                Method::PUT,
                &format!("config/apps/http/servers/{SERVER_NAME}/routes/0"),
                Some(body),
            )
            .await?;
        if status.is_success() {
            Ok(())
        } else {
            Err(Self::refused(status, text))
        }
    }

    /// The Nest-managed routes Caddy has now, by `@id`.
    pub async fn routes(&self) -> Result<BTreeMap<String, RouteSpec>, CaddyError> {
        let (status, text) = self
            .send(
                Method::GET,
                &format!("config/apps/http/servers/{SERVER_NAME}/routes"),
                None,
            )
            .await?;
        if !status.is_success() {
            return Err(Self::refused(status, text));
        }
        let routes: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        let mut found = BTreeMap::new();
        for route in routes.as_array().into_iter().flatten() {
            let Some(id) = route.get("@id").and_then(Value::as_str) else {
                continue;
            };
            if !id.starts_with(ID_PREFIX) {
                continue;
            }
            let host = route
                .pointer("/match/0/host/0")
                .and_then(Value::as_str)
                .unwrap_or_default();
            let dial = route
                .pointer("/handle/0/upstreams/0/dial")
                .and_then(Value::as_str)
                .unwrap_or_default();
            found.insert(
                id.to_owned(),
                RouteSpec {
                    id: id.to_owned(),
                    host: host.to_owned(),
                    dial: dial.to_owned(),
                },
            );
        }
        Ok(found)
    }
}
