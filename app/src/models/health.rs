//! Health monitoring's rules, shared by the server and the browser: the instance contract
//! (which services a tenant server runs, on which port and path), the status table, and the
//! decision each sweep takes for one server (alert, reboot, recovery).

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use super::{HealthStatus, Service};

impl Service {
    /// The TCP port it listens on, on the server's public IPv4 address.
    pub const fn port(self) -> u16 {
        match self {
            Self::Convex => 3210,
            Self::Web => 3000,
            Self::Mta => 3100,
        }
    }

    /// The path a health probe (and the smoke test) GETs; 2xx means up.
    pub const fn path(self) -> &'static str {
        match self {
            Self::Convex => "/version",
            Self::Web => "/",
            Self::Mta => "/health",
        }
    }

    /// How people name it.
    pub const fn label(self) -> &'static str {
        match self {
            Self::Convex => "Convex",
            Self::Web => "Web",
            Self::Mta => "MTA",
        }
    }

    /// `Convex :3210/version`, for messages.
    pub fn endpoint(self) -> String {
        format!("{} :{}{}", self.label(), self.port(), self.path())
    }
}

/// The service Caddy routes an organization's domain to.
pub const UPSTREAM: Service = Service::Web;
/// The self-update endpoint, on [`UPSTREAM`]'s port (signed `POST`; see redeploy).
pub const SELF_UPDATE_PATH: &str = "/api/self-update";
/// What the smoke test after create, resize and redeploy waits for.
pub const SMOKE_TESTED: [Service; 2] = [Service::Convex, Service::Web];

/// Which services answered one probe.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServicesUp {
    /// Convex answered 2xx.
    pub convex: bool,
    /// Web answered 2xx.
    pub web: bool,
    /// MTA answered 2xx.
    pub mta: bool,
}

impl ServicesUp {
    /// Whether `service` answered.
    pub const fn get(self, service: Service) -> bool {
        match service {
            Service::Convex => self.convex,
            Service::Web => self.web,
            Service::Mta => self.mta,
        }
    }

    /// Records whether `service` answered.
    pub fn set(&mut self, service: Service, up: bool) {
        match service {
            Service::Convex => self.convex = up,
            Service::Web => self.web = up,
            Service::Mta => self.mta = up,
        }
    }
}

/// The spec's status table, with its open case decided: **Convex down while Web and MTA answer
/// is `unhealthy`**. Convex is the tenant's database and API; without it the web front end
/// serves an application that cannot load or save anything, so the instance is as good as down
/// for its users, even though two of three processes answer. (`degraded` means the core works
/// and a peripheral service does not.)
pub const fn status(up: ServicesUp) -> HealthStatus {
    match (up.convex, up.web, up.mta) {
        (true, true, true) => HealthStatus::Healthy,
        (true, true, false) | (true, false, true) => HealthStatus::Degraded,
        (false, true, true) => HealthStatus::Unhealthy,
        (true, false, false) | (false, true, false) | (false, false, true) => {
            HealthStatus::Unhealthy
        }
        (false, false, false) => HealthStatus::Unreachable,
    }
}

/// The alerting and auto-recovery thresholds (spec: "Alerting and auto-recovery").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Thresholds {
    /// Failed sweeps in a row before the `unhealthy` alert (3).
    pub alert_after: u32,
    /// Failed sweeps in a row before an automatic reboot (6).
    pub reboot_after: u32,
    /// At most one automatic reboot per server within this time.
    pub reboot_cooldown: Duration,
}

impl Default for Thresholds {
    fn default() -> Self {
        Self {
            alert_after: 3,
            reboot_after: 6,
            reboot_cooldown: Duration::minutes(60),
        }
    }
}

/// What Nest remembers about one server between sweeps.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tracker {
    /// Failed sweeps in a row (any status but `healthy` is a failure).
    pub failures: u32,
    /// Whether an incident (a failure episode that reached the alert threshold) is open.
    pub incident_open: bool,
    /// The last automatic reboot.
    #[serde(default, deserialize_with = "super::rfc3339::option_utc")]
    pub last_reboot_at: Option<DateTime<Utc>>,
}

/// What one sweep does about one server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Open an incident with an `unhealthy` alert.
    Alert,
    /// Queue a reboot, with an `auto_reboot` alert.
    Reboot,
    /// The reboot is due but the fleet breaker holds it (no reboot in this sweep).
    RebootHeld,
    /// Close the incident with a `recovered` alert.
    Recovered,
}

/// One sweep's rule for one server: the next tracker and what to do. Pure, so it is tested
/// exhaustively and shared with the browser. `breaker` is true when the fleet breaker tripped
/// in this sweep.
///
/// - Every status but `healthy` counts as a failure (a degraded server is failing its users
///   too); `healthy` resets the count, so flapping (fail, pass, fail) never gets far.
/// - At `alert_after` failures in a row: an incident opens with an `unhealthy` alert.
/// - From `reboot_after` failures in a row: a reboot, unless one was made within the cooldown
///   or the breaker tripped.
/// - Back to `healthy` with an incident open: `recovered`, and the incident closes.
pub fn decide(
    prev: Tracker,
    status: HealthStatus,
    now: DateTime<Utc>,
    t: Thresholds,
    breaker: bool,
) -> (Tracker, Option<Decision>) {
    if status == HealthStatus::Healthy {
        let next = Tracker {
            failures: 0,
            incident_open: false,
            last_reboot_at: prev.last_reboot_at,
        };
        return (next, prev.incident_open.then_some(Decision::Recovered));
    }
    let mut next = Tracker {
        failures: prev.failures.saturating_add(1),
        ..prev
    };
    if next.failures >= t.alert_after && !prev.incident_open {
        next.incident_open = true;
        return (next, Some(Decision::Alert));
    }
    let cooled = prev
        .last_reboot_at
        .is_none_or(|at| now - at >= t.reboot_cooldown);
    if next.failures >= t.reboot_after && cooled {
        if breaker {
            return (next, Some(Decision::RebootHeld));
        }
        next.last_reboot_at = Some(now);
        return (next, Some(Decision::Reboot));
    }
    (next, None)
}

/// A server's latest health, as the lists show it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct HealthBadge {
    /// The latest sweep's verdict.
    pub status: HealthStatus,
    /// When.
    #[serde(deserialize_with = "super::rfc3339::utc")]
    pub checked_at: DateTime<Utc>,
    /// Failed sweeps in a row.
    pub failures: i32,
}

/// One alert of an incident.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlertView {
    /// Id.
    pub id: i64,
    /// Which alert.
    pub kind: super::AlertKind,
    /// What happened.
    pub message: String,
    /// When.
    #[serde(deserialize_with = "super::rfc3339::utc")]
    pub created_at: DateTime<Utc>,
}

/// An incident: one failure episode of one server, with its alerts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IncidentView {
    /// Id.
    pub id: i64,
    /// The server.
    pub vps_id: i64,
    /// Its name at Hetzner.
    pub vps_name: String,
    /// The organization.
    pub organization_id: i64,
    /// Its name.
    pub organization: String,
    /// When the alert threshold was reached.
    #[serde(deserialize_with = "super::rfc3339::utc")]
    pub opened_at: DateTime<Utc>,
    /// When the server was healthy again.
    #[serde(default, deserialize_with = "super::rfc3339::option_utc")]
    pub closed_at: Option<DateTime<Utc>>,
    /// The latest status while open.
    pub last_status: HealthStatus,
    /// Automatic reboots during the incident.
    pub reboots: i32,
    /// Who acknowledged it, when, and why.
    pub acknowledged: Option<Note>,
    /// Who silenced its notifications, until when, and why.
    pub silenced: Option<Silence>,
    /// Its alerts, oldest first.
    pub alerts: Vec<AlertView>,
}

/// An admin's acknowledgement.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Note {
    /// Who (email).
    pub by: String,
    /// When.
    #[serde(deserialize_with = "super::rfc3339::utc")]
    pub at: DateTime<Utc>,
    /// Why.
    pub reason: String,
}

/// A silence: no notifications for the incident's new alerts until `until`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Silence {
    /// Who (email).
    pub by: String,
    /// Until when.
    #[serde(deserialize_with = "super::rfc3339::utc")]
    pub until: DateTime<Utc>,
    /// Why.
    pub reason: String,
}

/// A fleet alert (the breaker held reboots).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FleetAlertView {
    /// Id.
    pub id: i64,
    /// When.
    #[serde(deserialize_with = "super::rfc3339::utc")]
    pub created_at: DateTime<Utc>,
    /// `breaker` or `checker_offline`.
    pub reason: String,
    /// What happened.
    pub message: String,
}

/// Filters and cursor of `/alerts`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct IncidentQuery {
    /// `Some(true)`: open only; `Some(false)`: closed only; `None`: both.
    pub open: Option<bool>,
    /// Organization name or slug, or server name, contains this.
    pub search: Option<String>,
    /// Only incidents of this server.
    pub vps_id: Option<i64>,
    /// Incidents older than this id (newest first).
    pub after: Option<i64>,
}

/// A page of incidents, and the latest fleet alerts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IncidentPage {
    /// Newest first.
    pub incidents: Vec<IncidentView>,
    /// Cursor of the next page.
    pub next: Option<i64>,
    /// The five latest fleet alerts.
    pub fleet: Vec<FleetAlertView>,
    /// The server's time of the read.
    #[serde(deserialize_with = "super::rfc3339::utc")]
    pub now: DateTime<Utc>,
}

/// Uptime over a window: the share of checks that were `healthy`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Uptime {
    /// "24 h", "7 d", "30 d".
    pub window: String,
    /// Checks in the window.
    pub checks: i64,
    /// Healthy checks, in hundredths of a percent (`None` without checks).
    pub basis_points: Option<u32>,
}

impl Uptime {
    /// "99.93 %", or "no checks".
    pub fn percent(&self) -> String {
        self.basis_points.map_or_else(
            || "no checks".to_owned(),
            |bp| format!("{}.{:02} %", bp / 100, bp % 100),
        )
    }
}

/// One check of the status strip.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckDot {
    /// When.
    #[serde(deserialize_with = "super::rfc3339::utc")]
    pub at: DateTime<Utc>,
    /// Its verdict.
    pub status: HealthStatus,
}

/// A reboot of the server (automatic recovery).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RebootView {
    /// The job.
    pub job_id: i64,
    /// When it was queued.
    #[serde(deserialize_with = "super::rfc3339::utc")]
    pub at: DateTime<Utc>,
    /// Its state.
    pub state: super::JobState,
    /// Why it failed.
    pub error: Option<String>,
}

/// Everything `/vpses/:id` shows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VpsHealthDetail {
    /// The server.
    pub vps: super::VpsRow,
    /// Its latest health.
    pub latest: Option<HealthBadge>,
    /// Which services answered the latest check, with their response times.
    pub services: Vec<(super::Service, bool, Option<i32>)>,
    /// Uptime over 24 h, 7 d and 30 d.
    pub uptime: Vec<Uptime>,
    /// Response time over the last 24 h, one SVG per service (rendered on the server).
    pub charts: Vec<(super::Service, String)>,
    /// The latest checks, oldest first.
    pub strip: Vec<CheckDot>,
    /// Its incidents, newest first.
    pub incidents: Vec<IncidentView>,
    /// Its automatic reboots, newest first.
    pub reboots: Vec<RebootView>,
    /// The server's time of the read.
    #[serde(deserialize_with = "super::rfc3339::utc")]
    pub now: DateTime<Utc>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn up(convex: bool, web: bool, mta: bool) -> ServicesUp {
        ServicesUp { convex, web, mta }
    }

    #[test]
    fn the_status_table_covers_all_eight_combinations() {
        use HealthStatus::*;
        let table = [
            ((true, true, true), Healthy),
            ((true, true, false), Degraded),
            ((true, false, true), Degraded),
            // The spec's open case: Convex down, Web and MTA up.
            ((false, true, true), Unhealthy),
            ((true, false, false), Unhealthy),
            ((false, true, false), Unhealthy),
            ((false, false, true), Unhealthy),
            ((false, false, false), Unreachable),
        ];
        for ((c, w, m), expected) in table {
            assert_eq!(
                status(up(c, w, m)),
                expected,
                "convex {c}, web {w}, mta {m}"
            );
        }
    }

    #[test]
    fn the_instance_contract_names_the_specs_ports_and_paths() {
        let endpoints: Vec<String> = Service::ALL.iter().map(|s| s.endpoint()).collect();
        assert_eq!(
            endpoints,
            ["Convex :3210/version", "Web :3000/", "MTA :3100/health"]
        );
        assert_eq!(UPSTREAM.port(), 3000);
    }

    fn at(minutes: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000, 0).unwrap_or_default() + Duration::minutes(minutes)
    }

    /// Runs statuses through `decide`, one sweep every 5 minutes; returns each decision.
    fn run(statuses: &[HealthStatus], breaker_at: &[usize]) -> Vec<Option<Decision>> {
        let mut tracker = Tracker::default();
        statuses
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let (next, d) = decide(
                    tracker,
                    *s,
                    at(5 * i as i64),
                    Thresholds::default(),
                    breaker_at.contains(&i),
                );
                tracker = next;
                d
            })
            .collect()
    }

    use Decision::*;
    use HealthStatus::{Degraded, Healthy, Unhealthy, Unreachable};

    #[test]
    fn three_failures_alert_six_reboot_and_healthy_recovers() {
        let d = run(
            &[
                Unreachable,
                Unreachable,
                Degraded,
                Unhealthy,
                Unreachable,
                Unreachable,
                Healthy,
                Healthy,
            ],
            &[],
        );
        assert_eq!(
            d,
            [
                None,
                None,
                Some(Alert),
                None,
                None,
                Some(Reboot),
                Some(Recovered),
                None
            ]
        );
    }

    #[test]
    fn after_a_reboot_the_next_waits_for_the_cooldown() {
        // Failing for 20 sweeps (100 minutes): reboots at sweep 6 (25 min) and once the hour
        // has passed (sweep 18, 85 min), never in between.
        let d = run(&[Unreachable; 20], &[]);
        let reboots: Vec<usize> = d
            .iter()
            .enumerate()
            .filter(|(_, d)| **d == Some(Reboot))
            .map(|(i, _)| i)
            .collect();
        assert_eq!(reboots, [5, 17]);
        assert_eq!(
            d.iter().filter(|d| **d == Some(Alert)).count(),
            1,
            "one incident"
        );
    }

    #[test]
    fn flapping_never_reaches_a_reboot_or_an_alert() {
        let pattern: Vec<HealthStatus> = (0..30)
            .map(|i| if i % 3 == 2 { Healthy } else { Unreachable })
            .collect();
        assert!(run(&pattern, &[]).iter().all(Option::is_none));
    }

    #[test]
    fn the_breaker_holds_a_due_reboot_until_a_sweep_without_it() {
        let d = run(&[Unreachable; 8], &[5, 6]);
        assert_eq!(d[5], Some(RebootHeld));
        assert_eq!(d[6], Some(RebootHeld));
        assert_eq!(d[7], Some(Reboot));
    }

    #[test]
    fn recovery_before_the_alert_threshold_is_silent() {
        assert_eq!(
            run(&[Unreachable, Unreachable, Healthy], &[]),
            [None, None, None]
        );
    }

    #[test]
    fn a_reboot_remembered_from_an_earlier_episode_still_counts_for_the_cooldown() {
        let t = Thresholds::default();
        let prev = Tracker {
            failures: 5,
            incident_open: true,
            last_reboot_at: Some(at(0)),
        };
        assert_eq!(decide(prev, Unreachable, at(30), t, false).1, None);
        assert_eq!(decide(prev, Unreachable, at(60), t, false).1, Some(Reboot));
    }
}
