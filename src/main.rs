//! The `hookgate` binary: CLI → config → telemetry → runtime → `hookgate::run` → exit code.
//!
//! Only dispatch lives here; every command's body is in `hookgate::cli`, which also decides
//! exit codes (64 for bad arguments or config, 1 for runtime failure).

use std::path::PathBuf;

use clap::Parser;
use hookgate::cli::{self, AccountsCommand, Cli, Command, Failure};

// glibc malloc showed up as ~15% of worker CPU under ingest load (1 KiB bodies allocated on
// request workers and freed on the journal thread fragment its arenas); mimalloc handles
// cross-thread frees and short-lived buffers far better.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => std::process::exit(cli::argument_error(e)),
    };
    let result = match cli.command {
        Command::Version => {
            println!("hookgate {}", env!("CARGO_PKG_VERSION"));
            Ok(())
        }
        Command::CheckConfig { config } => cli::check_config(&config),
        Command::Init(args) => cli::init(&args),
        Command::Accounts(AccountsCommand::Create { name, config }) => {
            cli::accounts_create(config.as_deref(), name)
        }
        Command::Compact { config } => cli::compact(config.as_deref()),
        Command::Serve { config } => serve(config),
    };
    std::process::exit(cli::exit_code(result));
}

fn serve(config: Option<PathBuf>) -> Result<(), Failure> {
    let config = cli::load_config(config.as_deref()).map_err(Failure::usage)?;
    hookgate::telemetry::init(&config.log);
    cli::serve(config).map_err(|e| {
        tracing::error!(error = format!("{e:#}"), "hookgate failed.");
        Failure::Runtime(e)
    })
}
