//! The `nest` binary's command line: `create-admin` reads the password from standard input,
//! creates a superadmin, and closes `/setup`; `migrate` goes down and up.
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
