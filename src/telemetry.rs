//! The tracing subscriber, installed once by `main.rs` (tests use their own writer).
//!
//! Logs go to stderr so stdout stays free for the readiness line. `RUST_LOG`, when set,
//! overrides `[log] level`.

use tracing_subscriber::EnvFilter;

use crate::config::{LogConfig, LogFormat};

pub fn init(config: &LogConfig) {
    let filter = std::env::var("RUST_LOG")
        .ok()
        .and_then(|v| EnvFilter::try_new(v).ok())
        .unwrap_or_else(|| EnvFilter::new(&config.level));
    use std::io::IsTerminal as _;
    // Colours only on a terminal: under systemd the journal would store the escape codes.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    // try_init: a second init (e.g. in-process tests) is harmless, not fatal.
    let _ = match config.format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
}
