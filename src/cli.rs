//! Command-line interface: `serve`, `check-config`, `version`.
//!
//! Subcommand bodies live here so `main.rs` stays a thin shell. Errors are `anyhow` with
//! context: this is the edge where they become exit codes and messages for an operator.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context as _;
use clap::{Parser, Subcommand};

use crate::config::Config;

#[derive(Debug, Parser)]
#[command(
    name = "hookgate",
    version,
    about = "Self-hosted webhook reliability gateway"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the gateway (the embedded default config when --config is absent).
    Serve {
        /// Path to a TOML config file.
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
    /// Validate a config file without binding ports or opening storage.
    CheckConfig {
        #[arg(long, short)]
        config: PathBuf,
    },
    /// Print the version.
    Version,
}

/// Exit status for bad arguments or configuration (sysexits EX_USAGE).
pub const EXIT_USAGE: i32 = 64;
/// Exit status for a runtime failure.
pub const EXIT_FAILURE: i32 = 1;

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

/// Loads the config a `serve` or `check-config` names, or the embedded default.
pub fn load_config(path: Option<&PathBuf>) -> Result<Config, crate::config::ConfigError> {
    match path {
        Some(p) => Config::load(p, &env),
        None => Config::default_with_env(&env),
    }
}

pub fn check_config(path: &PathBuf) -> i32 {
    match load_config(Some(path)) {
        Ok(_) => {
            println!("{}: configuration is valid", path.display());
            0
        }
        Err(e) => {
            eprintln!("{e}");
            EXIT_USAGE
        }
    }
}

/// Binds, runs until a signal, drains. Prints one readiness line on stdout once bound and
/// with storage open: `hookgate ready listen=ADDR`.
pub fn serve(config: Config) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("hookgate-worker")
        .build()
        .context("building the async runtime")?;
    runtime.block_on(async move {
        let config = Arc::new(config);
        let main = tokio::net::TcpListener::bind(config.server.listen)
            .await
            .with_context(|| format!("binding {}", config.server.listen))?;
        let shutdown = crate::Shutdown::new();
        shutdown
            .on_signals()
            .context("installing signal handlers")?;
        crate::run(config, crate::Listeners { main }, shutdown, |info| {
            use std::io::Write as _;
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "hookgate ready listen={}", info.listen);
            let _ = out.flush();
        })
        .await
        .context("running the gateway")
    })
}
