//! One probe of one server: its three services (the instance contract,
//! `app::models::Service`) requested at once, each within the same time limit.
//!
//! A probe is a plain HTTP/1.1 `GET` with `Connection: close` over a new TCP connection, read
//! only as far as the status line: a sweep reaches each server once per period, so there is no
//! connection to reuse, and nothing but the status matters. (Measured: a general HTTP client per
//! request probed at about half this rate at 10,000 servers.)

use std::time::{Duration, Instant};

use app::models::Service;
use app::models::health::ServicesUp;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

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

/// Probes servers, each request within `timeout`.
#[derive(Debug, Clone, Copy)]
pub struct Prober {
    /// One request's limit, connecting included.
    pub timeout: Duration,
}

fn millis(d: Duration) -> i32 {
    i32::try_from(d.as_millis()).unwrap_or(i32::MAX)
}

/// Why a request got no status.
enum Failure {
    Refused,
    Closed,
    Garbled,
}

/// The status code of `GET path` on `ip:port`.
async fn status(ip: &str, port: u16, path: &str) -> Result<u16, Failure> {
    let mut stream = TcpStream::connect((ip, port))
        .await
        .map_err(|_| Failure::Refused)?;
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {ip}:{port}\r\nUser-Agent: nest-health\r\nAccept: */*\r\nConnection: close\r\n\r\n"
    );
    stream
        .write_all(request.as_bytes())
        .await
        .map_err(|_| Failure::Closed)?;
    // "HTTP/1.1 200 OK\r\n": the status is in the first 12 bytes.
    let mut head = [0u8; 32];
    let mut read = 0;
    while read < 12 {
        match stream.read(&mut head[read..]).await {
            Ok(0) | Err(_) => return Err(Failure::Closed),
            Ok(n) => read += n,
        }
    }
    let line = std::str::from_utf8(&head[..read]).map_err(|_| Failure::Garbled)?;
    if !line.starts_with("HTTP/1.") {
        return Err(Failure::Garbled);
    }
    line.get(9..12)
        .and_then(|code| code.parse().ok())
        .ok_or(Failure::Garbled)
}

impl Prober {
    async fn one(self, ip: &str, service: Service) -> (bool, Option<i32>, Option<String>) {
        let started = Instant::now();
        let answer =
            tokio::time::timeout(self.timeout, status(ip, service.port(), service.path())).await;
        let ms = Some(millis(started.elapsed()));
        let endpoint = service.endpoint();
        match answer {
            Ok(Ok(code)) if (200..300).contains(&code) => (true, ms, None),
            Ok(Ok(code)) => (false, ms, Some(format!("{endpoint} answered HTTP {code}"))),
            Ok(Err(Failure::Refused)) => (
                false,
                None,
                Some(format!("{endpoint} refused the connection")),
            ),
            Ok(Err(Failure::Closed)) => (
                false,
                None,
                Some(format!(
                    "{endpoint} closed the connection without an answer"
                )),
            ),
            Ok(Err(Failure::Garbled)) => {
                (false, None, Some(format!("{endpoint} did not answer HTTP")))
            }
            Err(_) => (
                false,
                None,
                Some(format!("{endpoint} did not answer in time")),
            ),
        }
    }

    /// Probes the three services of the server at `ip` concurrently.
    pub async fn probe(self, ip: &str) -> ProbeResult {
        let started = Instant::now();
        let (c, w, m) = tokio::join!(
            self.one(ip, Service::Convex),
            self.one(ip, Service::Web),
            self.one(ip, Service::Mta)
        );
        let mut result = ProbeResult::default();
        let mut errors = Vec::new();
        for (i, (service, (up, ms, error))) in
            [(Service::Convex, c), (Service::Web, w), (Service::Mta, m)]
                .into_iter()
                .enumerate()
        {
            result.up.set(service, up);
            result.ms[i] = ms;
            result.answered |= ms.is_some();
            errors.extend(error);
        }
        result.duration_ms = millis(started.elapsed());
        result.error = (!errors.is_empty()).then(|| errors.join("; "));
        result
    }
}
