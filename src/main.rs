//! The `hookgate` binary: CLI → config → telemetry → runtime → `hookgate::run` → exit code.

use clap::Parser;
use hookgate::cli::{self, Cli, Command};

// glibc malloc showed up as ~15% of worker CPU under ingest load (1 KiB bodies allocated on
// request workers and freed on the journal thread fragment its arenas); mimalloc handles
// cross-thread frees and short-lived buffers far better.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    let cli = Cli::parse();
    let code = match cli.command {
        Command::Version => {
            println!("hookgate {}", env!("CARGO_PKG_VERSION"));
            0
        }
        Command::CheckConfig { config } => cli::check_config(&config),
        Command::Serve { config } => match cli::load_config(config.as_ref()) {
            Err(e) => {
                eprintln!("{e}");
                cli::EXIT_USAGE
            }
            Ok(config) => {
                hookgate::telemetry::init(&config.log);
                match cli::serve(config) {
                    Ok(()) => 0,
                    Err(e) => {
                        tracing::error!(error = format!("{e:#}"), "hookgate failed.");
                        eprintln!("error: {e:#}");
                        cli::EXIT_FAILURE
                    }
                }
            }
        },
    };
    std::process::exit(code);
}
