//! Alerts and incidents, the writing side: an incident per failure episode of a server, its
//! alerts, fleet alerts, the audit row of each (so the org page's history shows them), and the
//! notification jobs of each new alert (skipped while its incident is silenced).

use app::models::{AlertKind, AlertRef, HealthStatus, JobPayload, NotifyChannel};
use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter};
use serde_json::json;

use super::health_actor;
use crate::audit;
use crate::config::AlertChannels;
use crate::entities::{health_alerts, health_fleet_alerts, health_incidents};
use crate::error::Result;
use crate::jobs::{NewJob, enqueue};

/// Attempts of one notification (a dead receiver is retried with backoff, then given up).
pub const NOTIFY_ATTEMPTS: i32 = 6;

/// Which notification channels are configured.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Channels {
    /// `NEST_ALERT_WEBHOOK_URL` is set.
    pub webhook: bool,
    /// `NEST_SMTP_URL` is set.
    pub email: bool,
}

impl Channels {
    /// The channels `config` turns on.
    pub fn of(config: &AlertChannels) -> Self {
        Self {
            webhook: config.webhook_url.is_some(),
            email: config.smtp_url.is_some(),
        }
    }

    fn enabled(self) -> impl Iterator<Item = NotifyChannel> {
        [
            (self.webhook, NotifyChannel::Webhook),
            (self.email, NotifyChannel::Email),
        ]
        .into_iter()
        .filter_map(|(on, c)| on.then_some(c))
    }
}

/// Queues one notification job per configured channel for `alert`.
async fn notify<C: ConnectionTrait>(
    conn: &C,
    channels: Channels,
    alert: AlertRef,
    now: DateTime<Utc>,
) -> Result<()> {
    for channel in channels.enabled() {
        let key = match alert {
            AlertRef::Server { id } => format!("notify:server:{id}:{channel}"),
            AlertRef::Fleet { id } => format!("notify:fleet:{id}:{channel}"),
        };
        enqueue(
            conn,
            NewJob {
                payload: JobPayload::NotifyAlert { alert, channel },
                unique_key: Some(key),
                max_attempts: NOTIFY_ATTEMPTS,
                run_after: now,
            },
            now,
        )
        .await?;
    }
    Ok(())
}

/// A server alert about to be raised.
#[derive(Debug, Clone)]
pub struct NewAlert {
    /// The server.
    pub vps_id: i64,
    /// Its organization.
    pub organization_id: i64,
    /// The incident it belongs to.
    pub incident_id: Option<i64>,
    /// Which alert.
    pub kind: AlertKind,
    /// For people (and the notification's text).
    pub message: String,
}

/// Opens an incident for `vps_id`; returns its id.
pub async fn open_incident<C: ConnectionTrait>(
    conn: &C,
    vps_id: i64,
    organization_id: i64,
    status: HealthStatus,
    now: DateTime<Utc>,
) -> Result<i64> {
    Ok(
        health_incidents::Entity::insert(health_incidents::ActiveModel {
            vps_id: Set(vps_id),
            organization_id: Set(organization_id),
            opened_at: Set(now),
            closed_at: Set(None),
            last_status: Set(status),
            reboots: Set(0),
            ..Default::default()
        })
        .exec(conn)
        .await?
        .last_insert_id,
    )
}

/// Closes an incident (the server is healthy again) and resolves its alerts.
pub async fn close_incident<C: ConnectionTrait>(
    conn: &C,
    incident_id: i64,
    now: DateTime<Utc>,
) -> Result<()> {
    health_incidents::Entity::update_many()
        .col_expr(health_incidents::Column::ClosedAt, Expr::value(now))
        .col_expr(
            health_incidents::Column::LastStatus,
            Expr::value(HealthStatus::Healthy),
        )
        .filter(health_incidents::Column::Id.eq(incident_id))
        .filter(health_incidents::Column::ClosedAt.is_null())
        .exec(conn)
        .await?;
    health_alerts::Entity::update_many()
        .col_expr(health_alerts::Column::ResolvedAt, Expr::value(now))
        .filter(health_alerts::Column::IncidentId.eq(incident_id))
        .filter(health_alerts::Column::ResolvedAt.is_null())
        .exec(conn)
        .await?;
    Ok(())
}

/// Counts an automatic reboot on its incident.
pub async fn count_reboot<C: ConnectionTrait>(conn: &C, incident_id: i64) -> Result<()> {
    health_incidents::Entity::update_many()
        .col_expr(
            health_incidents::Column::Reboots,
            Expr::col(health_incidents::Column::Reboots).add(1),
        )
        .filter(health_incidents::Column::Id.eq(incident_id))
        .exec(conn)
        .await?;
    Ok(())
}

/// Whether `incident_id` is silenced at `now`.
async fn silenced<C: ConnectionTrait>(
    conn: &C,
    incident_id: Option<i64>,
    now: DateTime<Utc>,
) -> Result<bool> {
    let Some(id) = incident_id else {
        return Ok(false);
    };
    Ok(health_incidents::Entity::find_by_id(id)
        .one(conn)
        .await?
        .and_then(|i| i.silenced_until)
        .is_some_and(|until| until > now))
}

/// Raises a server alert: its row, its audit row (target: the organization) and, unless its
/// incident is silenced, its notifications. Returns its id.
pub async fn raise<C: ConnectionTrait>(
    conn: &C,
    channels: Channels,
    alert: NewAlert,
    now: DateTime<Utc>,
) -> Result<i64> {
    let id = health_alerts::Entity::insert(health_alerts::ActiveModel {
        vps_id: Set(alert.vps_id),
        organization_id: Set(alert.organization_id),
        kind: Set(alert.kind),
        message: Set(alert.message.clone()),
        created_at: Set(now),
        // A recovery resolves itself (and closed its incident's other alerts).
        resolved_at: Set((alert.kind == AlertKind::Recovered).then_some(now)),
        acknowledged_by_user_id: Set(None),
        incident_id: Set(alert.incident_id),
        ..Default::default()
    })
    .exec(conn)
    .await?
    .last_insert_id;
    audit::record(
        conn,
        &health_actor(),
        &format!("health.{}", alert.kind),
        ("organization", Some(alert.organization_id.to_string())),
        json!({
            "alert_id": id,
            "vps_id": alert.vps_id,
            "incident_id": alert.incident_id,
            "message": alert.message,
        }),
        now,
    )
    .await?;
    if !silenced(conn, alert.incident_id, now).await? {
        notify(conn, channels, AlertRef::Server { id }, now).await?;
    }
    Ok(id)
}

/// Why the fleet breaker held the reboots of a sweep.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BreakerReason {
    /// More than the configured share of the checked servers failed.
    TooManyFailing,
    /// Nothing answered at all: the checker's own network is probably down.
    CheckerOffline,
}

impl BreakerReason {
    /// As stored.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::TooManyFailing => "breaker",
            Self::CheckerOffline => "checker_offline",
        }
    }
}

/// The `reason` of a fleet alert raised by reconciliation (a finding that costs money), not by
/// the health breaker.
pub const RECONCILE_REASON: &str = "reconcile";

/// Raises a fleet alert for a reconciliation finding that costs money (an orphan server, a
/// subscription charging a customer without service), with its notifications, on `conn` (the
/// transaction that records the finding). Returns its id.
pub async fn raise_finding<C: ConnectionTrait>(
    conn: &C,
    channels: Channels,
    message: String,
    now: DateTime<Utc>,
) -> Result<i64> {
    let id = health_fleet_alerts::Entity::insert(health_fleet_alerts::ActiveModel {
        created_at: Set(now),
        reason: Set(RECONCILE_REASON.to_owned()),
        checked: Set(0),
        failing: Set(0),
        message: Set(message),
        ..Default::default()
    })
    .exec(conn)
    .await?
    .last_insert_id;
    notify(conn, channels, AlertRef::Fleet { id }, now).await?;
    Ok(id)
}

/// Raises a fleet alert (and its notifications). Returns its id.
pub async fn raise_fleet<C: ConnectionTrait>(
    conn: &C,
    channels: Channels,
    reason: BreakerReason,
    (checked, failing): (usize, usize),
    message: String,
    now: DateTime<Utc>,
) -> Result<i64> {
    let id = health_fleet_alerts::Entity::insert(health_fleet_alerts::ActiveModel {
        created_at: Set(now),
        reason: Set(reason.as_str().to_owned()),
        checked: Set(i32::try_from(checked).unwrap_or(i32::MAX)),
        failing: Set(i32::try_from(failing).unwrap_or(i32::MAX)),
        message: Set(message.clone()),
        ..Default::default()
    })
    .exec(conn)
    .await?
    .last_insert_id;
    audit::record(
        conn,
        &health_actor(),
        "health.fleet_breaker",
        ("fleet", None),
        json!({"alert_id": id, "reason": reason.as_str(), "checked": checked, "failing": failing, "message": message}),
        now,
    )
    .await?;
    notify(conn, channels, AlertRef::Fleet { id }, now).await?;
    Ok(id)
}
