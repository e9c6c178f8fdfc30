//! `nest`: parse the command line and the environment, then run.

use std::process::ExitCode;

use server::{cli, config::Config, telemetry};

#[tokio::main]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let command = match cli::parse(&args) {
        Ok(command) => command,
        Err(e) => {
            eprintln!("nest: {e}");
            return ExitCode::from(2);
        }
    };
    if matches!(command, cli::Command::Help | cli::Command::Version) {
        // Help and version need no configuration.
        let _ = cli::run(command, placeholder_config()).await;
        return ExitCode::SUCCESS;
    }
    let config = match Config::from_env() {
        Ok(config) => config,
        Err(e) => {
            eprintln!("nest: {e}");
            return ExitCode::from(2);
        }
    };
    telemetry::init(&config);
    server::install_tls_provider();
    match cli::run(command, config).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error.detail = format!("{e:#}"), "nest failed");
            eprintln!("nest: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Defaults, for the commands that read no configuration.
fn placeholder_config() -> Config {
    // The defaults are always valid: `from_lookup` with no variables cannot fail.
    Config::from_lookup(|_| None).unwrap_or_else(|e| unreachable!("defaults are valid: {e}"))
}
