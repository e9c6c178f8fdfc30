//! The smoke test: polls the services of `app::models::health::SMOKE_TESTED` (Convex
//! `:3210/version`, Web `:3000/`) on a server until each answers 2xx, or gives up after the
//! configured time with what each service last said.

use std::time::Duration;

use app::models::health::SMOKE_TESTED;

async fn probe(http: &reqwest::Client, ip: &str, port: u16, path: &str) -> Result<(), String> {
    match http
        .get(format!("http://{ip}:{port}{path}"))
        .timeout(Duration::from_secs(5))
        .send()
        .await
    {
        Ok(r) if r.status().is_success() => Ok(()),
        Ok(r) => Err(format!("answered HTTP {}", r.status().as_u16())),
        Err(e) if e.is_timeout() => Err("did not answer within 5 s".to_owned()),
        Err(e) if e.is_connect() => Err("refused the connection".to_owned()),
        Err(e) => Err(e.to_string()),
    }
}

/// Polls until every check passes at least once, for at most `timeout`.
pub async fn run(
    http: &reqwest::Client,
    ip: &str,
    timeout: Duration,
    interval: Duration,
) -> Result<(), String> {
    let deadline = tokio::time::Instant::now() + timeout;
    let mut passed = [false; SMOKE_TESTED.len()];
    let mut last: Vec<String> = vec![String::new(); SMOKE_TESTED.len()];
    loop {
        for (i, service) in SMOKE_TESTED.iter().enumerate() {
            if passed[i] {
                continue;
            }
            match probe(http, ip, service.port(), service.path()).await {
                Ok(()) => passed[i] = true,
                Err(e) => last[i] = format!("{} {e}", service.endpoint()),
            }
        }
        if passed.iter().all(|p| *p) {
            return Ok(());
        }
        if tokio::time::Instant::now() + interval > deadline {
            let failing: Vec<&str> = passed
                .iter()
                .zip(&last)
                .filter(|(p, _)| !**p)
                .map(|(_, l)| l.as_str())
                .collect();
            return Err(format!(
                "not healthy after {} s: {}",
                timeout.as_secs(),
                failing.join("; ")
            ));
        }
        tokio::time::sleep(interval).await;
    }
}
