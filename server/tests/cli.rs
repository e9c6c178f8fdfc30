//! The `nest` binary's command line: `create-admin` reads the password from standard input,
//! creates a superadmin, and closes `/setup`; `migrate` goes down and up; `nest serve` serves
//! Prometheus metrics on their own listener only, and refuses a second process on one SQLite
//! file.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Write;
use std::process::{Command, Stdio};

fn nest(data_dir: &std::path::Path, args: &[&str], stdin: &str) -> std::process::Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_nest"))
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("NEST_DATA_DIR", data_dir)
        .env("NEST_LOG", "warn")
        .current_dir(data_dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

#[test]
fn create_admin_reads_the_password_from_stdin_and_closes_setup() {
    let dir = std::env::temp_dir().join(format!("nest-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();

    let weak = nest(
        &dir,
        &["create-admin", "--email", "ops@nest.test"],
        "short\n",
    );
    assert!(!weak.status.success(), "a weak password is refused");
    assert!(
        String::from_utf8_lossy(&weak.stderr).contains("password"),
        "{weak:?}"
    );

    let ok = nest(
        &dir,
        &["create-admin", "--email", "ops@nest.test"],
        "correct horse battery 9\n",
    );
    assert!(ok.status.success(), "{ok:?}");
    assert!(String::from_utf8_lossy(&ok.stdout).contains("created superadmin ops@nest.test"));

    let again = nest(
        &dir,
        &["create-admin", "--email", "ops@nest.test"],
        "correct horse battery 9\n",
    );
    assert!(!again.status.success(), "the same admin twice is refused");
    assert!(
        String::from_utf8_lossy(&again.stderr).contains("already a platform admin"),
        "{again:?}"
    );

    let argument = nest(
        &dir,
        &["create-admin", "--email", "x@nest.test", "--password", "p"],
        "",
    );
    assert_eq!(argument.status.code(), Some(2));

    let status = nest(&dir, &["migrate", "status"], "");
    assert!(
        String::from_utf8_lossy(&status.stdout)
            .contains("applied  m20261125_000002_audit_append_only")
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_malformed_variable_stops_start_up_with_one_clear_line() {
    let output = Command::new(env!("CARGO_BIN_EXE_nest"))
        .env_clear()
        .env("NEST_ADDR", "localhost")
        .current_dir(std::env::temp_dir())
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(
        stderr.trim(),
        "nest: configuration error: NEST_ADDR: `localhost` is not a socket address such as 127.0.0.1:3001"
    );
}

/// A free loopback port (bound, read, released; the binary binds it right after).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A running `nest serve`, killed when dropped.
struct Serving {
    child: std::process::Child,
    base: String,
}

impl Drop for Serving {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn serve_command(data_dir: &std::path::Path, port: u16, extra: &[(&str, String)]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_nest"));
    command
        .arg("serve")
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("NEST_DATA_DIR", data_dir)
        .env("NEST_ADDR", format!("127.0.0.1:{port}"))
        .env("NEST_LOG", "warn")
        .env(
            "NEST_SECRETS_KEY",
            "5e1f0c2a9b8d7e6f5a4b3c2d1e0f9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c4d3e2f",
        )
        .current_dir(data_dir)
        .stdin(Stdio::null());
    for (k, v) in extra {
        command.env(k, v);
    }
    command
}

/// Starts `nest serve` and waits until `/healthz` answers.
async fn start_serving(data_dir: &std::path::Path, extra: &[(&str, String)]) -> Serving {
    server::install_tls_provider();
    let port = free_port();
    let child = serve_command(data_dir, port, extra)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let serving = Serving {
        child,
        base: format!("http://127.0.0.1:{port}"),
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        if let Ok(r) = reqwest::get(format!("{}/healthz", serving.base)).await
            && r.status().is_success()
        {
            return serving;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "nest serve did not answer on {}",
            serving.base
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

fn temp_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("nest-cli-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[tokio::test]
async fn metrics_are_served_on_their_own_listener_and_never_on_the_dashboard_s_port() {
    let dir = temp_dir("metrics");
    let metrics = format!("127.0.0.1:{}", free_port());
    let serving = start_serving(&dir, &[("NEST_METRICS_ADDR", metrics.clone())]).await;

    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let health = client
        .get(format!("{}/healthz", serving.base))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    // A page with an id in its path (sent to /setup: no admin yet).
    let page = client
        .get(format!("{}/organizations/4242", serving.base))
        .send()
        .await
        .unwrap();
    assert!(page.status().is_redirection(), "{page:?}");

    let scraped = reqwest::get(format!("http://{metrics}/metrics"))
        .await
        .unwrap();
    assert_eq!(scraped.status(), 200);
    let text = scraped.text().await.unwrap();
    assert!(
        text.contains("# TYPE nest_http_request_duration_seconds histogram"),
        "{text}"
    );
    assert!(
        text.contains(
            "nest_http_request_duration_seconds_bucket{route=\"/healthz\",method=\"GET\",status=\"200\","
        ),
        "{text}"
    );
    // Routes are labelled by their template, never by the raw path.
    assert!(
        text.contains("route=\"/organizations/{id}\",method=\"GET\",status=\"303\""),
        "{text}"
    );
    assert!(!text.contains("4242"), "{text}");

    let on_dashboard = client
        .get(format!("{}/metrics", serving.base))
        .send()
        .await
        .unwrap();
    assert_ne!(on_dashboard.status(), 200);
    assert!(
        !on_dashboard
            .text()
            .await
            .unwrap()
            .contains("nest_http_request_duration_seconds")
    );
    drop(serving);
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn a_second_nest_serve_on_the_same_sqlite_file_is_refused_with_one_line() {
    let dir = temp_dir("lock");
    let first = start_serving(&dir, &[]).await;

    let second = serve_command(&dir, free_port(), &[]).output().unwrap();
    assert!(!second.status.success(), "{second:?}");
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("another `nest serve` is already using the SQLite database"),
        "{stderr}"
    );

    // The first one still serves; once it stops, the file is free again.
    let health = reqwest::get(format!("{}/healthz", first.base))
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    drop(first);
    let again = start_serving(&dir, &[]).await;
    drop(again);
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn nest_jobs_lists_failed_jobs_with_their_error_and_retries_them() {
    use sea_orm::{ActiveModelTrait, ActiveValue::Set};
    let dir = temp_dir("jobs");
    let empty = nest(&dir, &["jobs", "list"], "");
    assert!(empty.status.success(), "{empty:?}");
    let text = String::from_utf8_lossy(&empty.stdout);
    assert!(text.contains("KIND") && text.contains("no jobs"), "{text}");

    // A failed periodic job, as the queue would have left it.
    let url =
        server::config::DatabaseUrl::parse(&format!("sqlite://{}/nest.db", dir.display())).unwrap();
    let db = server::db::connect(&url).await.unwrap();
    let now = chrono::Utc::now();
    let job = server::jobs::enqueue(
        &db,
        server::jobs::NewJob::now(app::models::JobPayload::JobPrune, now),
        now,
    )
    .await
    .unwrap()
    .unwrap();
    let mut failed: server::entities::jobs::ActiveModel = job.clone().into();
    failed.state = Set(app::models::JobState::Failed);
    failed.attempts = Set(5);
    failed.last_error = Set(Some("database: gone away".into()));
    failed.finished_at = Set(Some(now));
    failed.update(&db).await.unwrap();
    db.close().await.unwrap();

    let listed = nest(&dir, &["jobs", "list", "--state", "failed"], "");
    let text = String::from_utf8_lossy(&listed.stdout);
    assert!(
        text.contains("job_prune") && text.contains("database: gone away"),
        "{text}"
    );

    let id = job.id.to_string();
    let retried = nest(&dir, &["jobs", "retry", &id], "");
    assert!(retried.status.success(), "{retried:?}");
    let queued = nest(&dir, &["jobs", "list", "--state", "queued"], "");
    assert!(String::from_utf8_lossy(&queued.stdout).contains("job_prune"));

    let again = nest(&dir, &["jobs", "retry", &id], "");
    assert!(!again.status.success());
    let err = String::from_utf8_lossy(&again.stderr);
    assert!(err.contains("only a failed job can be retried"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn sigterm_with_an_open_live_stream_shuts_down_promptly() {
    let dir = temp_dir("sigterm");
    let mut serving = start_serving(&dir, &[]).await;
    let client = reqwest::Client::new();
    let setup = client
        .post(format!("{}/api/setup", serving.base))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("email=ops%40nest.test&password=correct+horse+battery+9&confirm=correct+horse+battery+9")
        .send()
        .await
        .unwrap();
    assert_eq!(setup.status(), 200);
    let cookie = setup.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let mut stream = client
        .get(format!("{}/api/events", serving.base))
        .header("cookie", cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status(), 200);

    let status = Command::new("kill")
        .arg("-TERM")
        .arg(serving.child.id().to_string())
        .status()
        .unwrap();
    assert!(status.success());
    // A functional bound: the process must end on its own, not be killed by the test.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    let exit = loop {
        if let Some(exit) = serving.child.try_wait().unwrap() {
            break Some(exit);
        }
        if std::time::Instant::now() > deadline {
            break None;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    let exit = exit.expect("nest serve was still running 5 s after SIGTERM");
    assert!(exit.success(), "{exit:?}");
    // The stream ended rather than being cut.
    while let Ok(Some(_)) = stream.chunk().await {}
    drop(serving);
    let _ = std::fs::remove_dir_all(&dir);
}
