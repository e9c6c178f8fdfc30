//! Alert notifications: one `notify_alert` job per alert and channel, retried with backoff, so
//! a slow or dead receiver never delays a sweep.
//!
//! - **Webhook** (`NEST_ALERT_WEBHOOK_URL`): `POST` of a JSON body with a Slack-compatible
//!   `text` and the alert's fields under `alert`, signed like Nest's other outgoing requests
//!   (`provisioning::signing`: `X-Nest-Timestamp`, `X-Nest-Signature: v1=<hex HMAC-SHA256>`
//!   over method, path, timestamp and the body's SHA-256, keyed with
//!   `NEST_ALERT_WEBHOOK_SECRET`). Any 2xx is delivered; anything else is retried.
//! - **E-mail** (`NEST_SMTP_URL`, `NEST_ALERT_EMAIL_TO`, `NEST_ALERT_EMAIL_FROM`) with `lettre`.

use std::time::Duration;

use app::models::{AlertRef, JobPayload, JobStep, NotifyChannel};
use lettre::message::Mailbox;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use sea_orm::{DatabaseConnection, EntityTrait};
use serde_json::{Value, json};

use crate::config::AlertChannels;
use crate::entities::{health_alerts, health_fleet_alerts, organizations, vpses};
use crate::jobs::{Attempt, Handler, JobFailure, Outcome};
use crate::provisioning::signing;

/// What is sent: a one-line summary and the alert's fields.
#[derive(Debug, Clone, PartialEq)]
pub struct Notification {
    /// Subject line and Slack `text`.
    pub text: String,
    /// The alert as JSON.
    pub alert: Value,
}

/// Runs `notify_alert` jobs.
#[derive(Clone)]
pub struct Notifier {
    /// Database pool.
    pub db: DatabaseConnection,
    /// Where to send.
    pub channels: AlertChannels,
    /// For the webhook.
    pub http: reqwest::Client,
}

fn db_failure(e: sea_orm::DbErr) -> JobFailure {
    JobFailure::database(Some(JobStep::Deliver), &e.into())
}

impl Notifier {
    /// The notification of `alert`, or `None` when the alert no longer exists.
    pub async fn compose(
        &self,
        alert: AlertRef,
    ) -> std::result::Result<Option<Notification>, JobFailure> {
        match alert {
            AlertRef::Server { id } => {
                let Some(a) = health_alerts::Entity::find_by_id(id)
                    .one(&self.db)
                    .await
                    .map_err(db_failure)?
                else {
                    return Ok(None);
                };
                let org = organizations::Entity::find_by_id(a.organization_id)
                    .one(&self.db)
                    .await
                    .map_err(db_failure)?;
                let vps = vpses::Entity::find_by_id(a.vps_id)
                    .one(&self.db)
                    .await
                    .map_err(db_failure)?;
                let (org_name, slug) = org
                    .as_ref()
                    .map(|o| (o.name.clone(), o.slug.to_string()))
                    .unwrap_or_default();
                let server = vps.as_ref().map(|v| v.name.clone()).unwrap_or_default();
                Ok(Some(Notification {
                    text: format!(
                        "[Nest] {}: {org_name} ({slug}), server {server}: {}",
                        a.kind, a.message
                    ),
                    alert: json!({
                        "id": a.id,
                        "kind": a.kind,
                        "message": a.message,
                        "created_at": a.created_at,
                        "incident_id": a.incident_id,
                        "organization": {"id": a.organization_id, "name": org_name, "slug": slug},
                        "vps": {
                            "id": a.vps_id,
                            "name": server,
                            "ipv4": vps.as_ref().and_then(|v| v.ipv4.clone()),
                        },
                    }),
                }))
            }
            AlertRef::Fleet { id } => {
                let Some(a) = health_fleet_alerts::Entity::find_by_id(id)
                    .one(&self.db)
                    .await
                    .map_err(db_failure)?
                else {
                    return Ok(None);
                };
                let (prefix, kind) = if a.reason == super::alerts::RECONCILE_REASON {
                    ("reconcile", "reconcile_finding")
                } else {
                    ("fleet", "fleet_breaker")
                };
                Ok(Some(Notification {
                    text: format!("[Nest] {prefix}: {}", a.message),
                    alert: json!({
                        "id": a.id,
                        "kind": kind,
                        "reason": a.reason,
                        "checked": a.checked,
                        "failing": a.failing,
                        "message": a.message,
                        "created_at": a.created_at,
                    }),
                }))
            }
        }
    }

    async fn webhook(&self, n: &Notification) -> std::result::Result<(), String> {
        let (Some(url), Some(secret)) = (&self.channels.webhook_url, &self.channels.webhook_secret)
        else {
            return Err("the webhook is not configured".to_owned());
        };
        let body = serde_json::to_vec(&json!({"text": n.text, "alert": n.alert}))
            .map_err(|e| e.to_string())?;
        let timestamp = chrono::Utc::now().timestamp();
        let signature = signing::sign(secret.expose(), "POST", url.path(), timestamp, &body);
        let response = self
            .http
            .post(url.clone())
            .header("content-type", "application/json")
            .header(signing::TIMESTAMP_HEADER, timestamp.to_string())
            .header(signing::SIGNATURE_HEADER, signature)
            .body(body)
            .timeout(Duration::from_secs(10))
            .send()
            .await
            .map_err(|e| {
                if e.is_timeout() {
                    "the webhook did not answer within 10 s".to_owned()
                } else {
                    format!("the webhook could not be reached ({})", e.without_url())
                }
            })?;
        if response.status().is_success() {
            Ok(())
        } else {
            Err(format!(
                "the webhook answered HTTP {}",
                response.status().as_u16()
            ))
        }
    }

    async fn email(&self, n: &Notification) -> std::result::Result<(), String> {
        let Some(url) = &self.channels.smtp_url else {
            return Err("SMTP is not configured".to_owned());
        };
        let from: Mailbox = self
            .channels
            .email_from
            .parse()
            .map_err(|e| format!("NEST_ALERT_EMAIL_FROM: {e}"))?;
        let mut message = Message::builder()
            .from(from)
            .subject(n.text.chars().take(200).collect::<String>());
        for to in &self.channels.email_to {
            message = message.to(to
                .parse()
                .map_err(|e| format!("NEST_ALERT_EMAIL_TO: {e}"))?);
        }
        let body = format!(
            "{}\n\n{}\n",
            n.text,
            serde_json::to_string_pretty(&n.alert).unwrap_or_default()
        );
        let message = message.body(body).map_err(|e| e.to_string())?;
        // The URL carries the password: errors name the problem, never the URL.
        let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(url.expose())
            .map_err(|e| format!("NEST_SMTP_URL is not usable ({e})"))?
            .timeout(Some(Duration::from_secs(20)))
            .build();
        transport
            .send(message)
            .await
            .map(|_| ())
            .map_err(|e| format!("the SMTP server refused or failed ({e})"))
    }
}

#[async_trait::async_trait]
impl Handler for Notifier {
    async fn run(&self, attempt: &Attempt) -> std::result::Result<Outcome, JobFailure> {
        let JobPayload::NotifyAlert { alert, channel } = attempt.payload() else {
            return Err(JobFailure::fatal(
                None,
                "the notifier runs only notifications",
            ));
        };
        let Some(notification) = self.compose(*alert).await? else {
            return Ok(Outcome::Skipped("the alert no longer exists".to_owned()));
        };
        attempt
            .step(JobStep::Deliver, async {
                let sent = match channel {
                    NotifyChannel::Webhook => self.webhook(&notification).await,
                    NotifyChannel::Email => self.email(&notification).await,
                };
                sent.map_err(|m| JobFailure::transient(Some(JobStep::Deliver), m))
            })
            .await?;
        Ok(Outcome::Done)
    }
}
