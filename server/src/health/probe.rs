//! One probe of one server: its three services (the instance contract,
//! `app::models::Service`) requested at once, each with the same time limit.

use std::time::{Duration, Instant};

use app::models::Service;
use app::models::health::ServicesUp;

/// What one probe of one server found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProbeResult {
    /// Which services answered 2xx.
    pub up: ServicesUp,
    /// Response time of each service that answered at all, in `Service::ALL` order.
    pub ms: [Option<i32>; 3],
    /// Whether any service gave any HTTP answer (even an error status): `false` for all three
    /// means nothing reached the server.
    pub answered: bool,
    /// How long the whole probe took.
    pub duration_ms: i32,
    /// What went wrong, per failing service (`Web :3000/ answered HTTP 500; …`).
    pub error: Option<String>,
}

/// The HTTP client the sweep probes with: no connection reuse (a sweep reaches each server
/// once per period; idle connections to thousands of servers would only hold sockets).
pub fn client(timeout: Duration) -> reqwest::Result<reqwest::Client> {
    reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .connect_timeout(timeout)
        .timeout(timeout)
        .redirect(reqwest::redirect::Policy::none())
        .build()
}

fn millis(d: Duration) -> i32 {
    i32::try_from(d.as_millis()).unwrap_or(i32::MAX)
}

async fn one(
    http: &reqwest::Client,
    ip: &str,
    service: Service,
) -> (bool, Option<i32>, Option<String>) {
    let started = Instant::now();
    let url = format!("http://{ip}:{}{}", service.port(), service.path());
    match http.get(url).send().await {
        Ok(r) if r.status().is_success() => (true, Some(millis(started.elapsed())), None),
        Ok(r) => (
            false,
            Some(millis(started.elapsed())),
            Some(format!(
                "{} answered HTTP {}",
                service.endpoint(),
                r.status().as_u16()
            )),
        ),
        Err(e) => {
            let why = if e.is_timeout() {
                "did not answer in time".to_owned()
            } else if e.is_connect() {
                "refused the connection".to_owned()
            } else {
                "failed".to_owned()
            };
            (false, None, Some(format!("{} {why}", service.endpoint())))
        }
    }
}

/// Probes the three services of the server at `ip` concurrently.
pub async fn probe(http: &reqwest::Client, ip: &str) -> ProbeResult {
    let started = Instant::now();
    let [convex, web, mta] = Service::ALL else {
        return ProbeResult::default();
    };
    let (c, w, m) = tokio::join!(
        one(http, ip, *convex),
        one(http, ip, *web),
        one(http, ip, *mta)
    );
    let mut result = ProbeResult {
        duration_ms: millis(started.elapsed()),
        ..ProbeResult::default()
    };
    let mut errors = Vec::new();
    for (i, (service, (up, ms, error))) in
        [(*convex, c), (*web, w), (*mta, m)].into_iter().enumerate()
    {
        result.up.set(service, up);
        result.ms[i] = ms;
        result.answered |= ms.is_some();
        errors.extend(error);
    }
    result.error = (!errors.is_empty()).then(|| errors.join("; "));
    result
}
