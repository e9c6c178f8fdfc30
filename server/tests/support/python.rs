//! The official Python clients (Hetzner's `hcloud`, Stripe's `stripe`) that tests point at
//! the simulators: the interpreter of the venv `cargo make hcloud` installs, and a bounded run
//! of a script.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The venv's interpreter (`NEST_HCLOUD_PYTHON`, else `$HOME/.cache/nest-venv/bin/python3`) if
/// `check` (Python run with `-c`, exiting 0 when the pinned client is there) succeeds with it.
/// Otherwise: fatal in CI, skipped (and said so, naming `client`) elsewhere.
pub fn interpreter(check: &str, client: &str) -> Option<PathBuf> {
    let python = std::env::var_os("NEST_HCLOUD_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            let home = std::env::var_os("HOME").unwrap_or_default();
            Path::new(&home).join(".cache/nest-venv/bin/python3")
        });
    let ready = std::process::Command::new(&python)
        .args(["-c", check])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if ready {
        return Some(python);
    }
    let why = format!(
        "{} has no {client} (run `cargo make hcloud`, or set NEST_HCLOUD_PYTHON)",
        python.display()
    );
    assert!(!super::ci(), "CI=true but {why}");
    eprintln!("SKIPPED: {why}");
    None
}

/// Runs `script` with `python` and `env`, killed after `limit`; asserts it finished, exited 0
/// and printed `all checks passed`. Returns its standard output.
pub async fn run_checks(
    python: &Path,
    script: &str,
    env: &[(&str, String)],
    limit: Duration,
) -> String {
    let mut command = std::process::Command::new(python);
    command
        .arg(script)
        .env("NO_PROXY", "*")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    for (name, value) in env {
        command.env(name, value);
    }
    let mut child = command.spawn().unwrap();
    let deadline = Instant::now() + limit;
    let finished = loop {
        if child.try_wait().unwrap().is_some() {
            break true;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            break false;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let output = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr);
    println!("{stdout}");
    assert!(finished, "{script} ran over {limit:?}:\n{stdout}\n{stderr}");
    assert!(
        output.status.success() && stdout.contains("all checks passed"),
        "{script} failed ({}):\n{stdout}\n{stderr}",
        output.status
    );
    stdout
}
