//! Command-line interface: `serve`, `check-config`, `init`, `accounts create`, `compact`,
//! `version`.
//!
//! Subcommand bodies live here so `main.rs` stays a thin shell. Errors are `anyhow` with
//! context: this is the edge where they become exit codes and messages for an operator. A
//! command returns [`Failure`], which says which exit code applies: [`EXIT_USAGE`] for bad
//! arguments or configuration, [`EXIT_FAILURE`] when the work itself failed.
//!
//! Output contract: stdout carries results only (the `serve` readiness line; `key: value`
//! lines for keys, ids and sizes, which scripts and tests read); errors and logs go to stderr.
//!
//! `accounts create` and `compact` open the database file themselves, without a gateway. redb
//! locks the file, so while a gateway runs on the same data directory they fail, and say so
//! ("is hookgate running?") instead of showing a bare lock error.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{anyhow, Context as _};
use clap::{Args, Parser, Subcommand};
use sd_notify::NotifyState;

use crate::config::{Config, ConfigError, StorageConfig};
use crate::store::journal::JournalThread;
use crate::store::{Store, StoreError};

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
        /// Path to the TOML config file to check.
        #[arg(long, short)]
        config: PathBuf,
    },
    /// Write a commented config file holding a fresh operator key, and print the key.
    Init(InitArgs),
    /// Administer accounts offline (the gateway must be stopped; while it runs, use the API).
    #[command(subcommand)]
    Accounts(AccountsCommand),
    /// Compact the database file, giving space freed by deletions back to the filesystem
    /// (the gateway must be stopped).
    Compact {
        /// Path to a TOML config file (the embedded default when absent).
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
    /// Print the version.
    Version,
}

#[derive(Debug, Args)]
pub struct InitArgs {
    /// Where to write the config file.
    #[arg(long, short, default_value = "./hookgate.toml")]
    pub config: PathBuf,
    /// Directory for the database (`storage.data_dir`), written as an absolute path; the
    /// example's "./hookgate-data" when absent.
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Overwrite an existing file (the operator key in it is replaced).
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, Subcommand)]
pub enum AccountsCommand {
    /// Create an account and print its first API key (shown once; only its hash is stored).
    Create {
        /// The account's display name (1 to 128 characters).
        name: String,
        /// Path to a TOML config file (the embedded default when absent).
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
}

/// Exit status for bad arguments or configuration (sysexits EX_USAGE).
pub const EXIT_USAGE: i32 = 64;
/// Exit status for a runtime failure.
pub const EXIT_FAILURE: i32 = 1;

/// `hookgate init` writes this file, with a fresh operator key (and data dir) filled in, so a
/// new installation starts from the annotated defaults rather than from a blank file.
const EXAMPLE_CONFIG: &str = include_str!("../config.example.toml");
/// Random bytes in a generated operator key (43 URL-safe base64 characters).
const OPERATOR_KEY_BYTES: usize = 32;

/// A failed command, and so the exit status it maps to.
#[derive(Debug)]
pub enum Failure {
    /// Bad arguments or configuration: [`EXIT_USAGE`].
    Usage(anyhow::Error),
    /// The work itself failed: [`EXIT_FAILURE`].
    Runtime(anyhow::Error),
}

// === impl Failure ===

impl Failure {
    pub fn usage(error: impl Into<anyhow::Error>) -> Self {
        Self::Usage(error.into())
    }

    pub fn exit_code(&self) -> i32 {
        match self {
            Self::Usage(_) => EXIT_USAGE,
            Self::Runtime(_) => EXIT_FAILURE,
        }
    }
}

/// `?` on an `anyhow` result inside a command is a runtime failure; usage errors are marked
/// explicitly with [`Failure::usage`].
impl From<anyhow::Error> for Failure {
    fn from(error: anyhow::Error) -> Self {
        Self::Runtime(error)
    }
}

/// Maps a command's outcome to the process exit status, printing the error and its causes.
pub fn exit_code(result: Result<(), Failure>) -> i32 {
    match result {
        Ok(()) => 0,
        Err(failure) => {
            let code = failure.exit_code();
            let (Failure::Usage(e) | Failure::Runtime(e)) = failure;
            eprintln!("error: {e:#}");
            code
        }
    }
}

/// Prints clap's message (help, version or a usage error) and answers the exit status:
/// clap's own `exit()` uses 2 for usage errors, hookgate uses sysexits' EX_USAGE.
pub fn argument_error(error: clap::Error) -> i32 {
    let _ = error.print();
    if error.exit_code() == 0 {
        0
    } else {
        EXIT_USAGE
    }
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

/// Loads the config a command names, or the embedded default; both take the environment
/// overrides (`HOOKGATE_ADMIN_KEY`).
pub fn load_config(path: Option<&Path>) -> Result<Config, ConfigError> {
    match path {
        Some(p) => Config::load(p, &env),
        None => Config::default_with_env(&env),
    }
}

pub fn check_config(path: &Path) -> Result<(), Failure> {
    load_config(Some(path)).map_err(Failure::usage)?;
    println!("{}: configuration is valid", path.display());
    Ok(())
}

/// Binds, runs until a signal, drains. Prints one readiness line on stdout once bound and
/// with storage open: `hookgate ready listen=ADDR`. Under systemd (`Type=notify`) it also
/// sends READY=1 at that moment and STOPPING=1 when the drain starts.
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
        let draining = shutdown.clone();
        // Not tracked: it only reports the drain to systemd and must not hold the drain open;
        // the runtime drops it when `serve` returns.
        tokio::spawn(async move {
            draining.cancelled().await;
            notify_systemd(&[NotifyState::Stopping]);
        });
        let metrics = match config.metrics.listen {
            Some(addr) => Some(
                tokio::net::TcpListener::bind(addr)
                    .await
                    .with_context(|| format!("binding the metrics listener {addr}"))?,
            ),
            None => None,
        };
        crate::run(
            config,
            crate::Listeners { main, metrics },
            shutdown,
            |info| {
                let mut out = std::io::stdout().lock();
                let _ = writeln!(out, "hookgate ready listen={}", info.listen);
                let _ = out.flush();
                let status = format!("Listening on {}.", info.listen);
                notify_systemd(&[NotifyState::Ready, NotifyState::Status(&status)]);
            },
        )
        .await
        .context("running the gateway")
    })
}

/// Tells the service manager about a state change; a no-op when `NOTIFY_SOCKET` is unset (not
/// under systemd). A failure is logged, not fatal: serving matters more than the report, and
/// systemd times the start out on its own if READY=1 never arrives.
fn notify_systemd(states: &[NotifyState<'_>]) {
    if let Err(e) = sd_notify::notify(states) {
        tracing::warn!(error = %e, "Cannot notify systemd.");
    }
}

/// `hookgate init`: writes the annotated example config with a fresh operator key, mode 0600,
/// and prints the key and the next steps.
pub fn init(args: &InitArgs) -> Result<(), Failure> {
    // Absolute, because a relative data_dir would resolve against whatever directory `serve`
    // happens to start in, not against the config file.
    let data_dir = args
        .data_dir
        .as_deref()
        .map(std::path::absolute)
        .transpose()
        .context("resolving --data-dir")
        .map_err(Failure::usage)?;
    let key = crate::ids::random_token(OPERATOR_KEY_BYTES);
    let text = render_init_config(&args.config, &key, data_dir.as_deref())?;
    write_private_file(&args.config, &text, args.force)?;

    let path = args.config.display();
    println!("Wrote {path} (mode 0600).");
    println!("operator_key: {key}");
    println!(
        "The operator key is in the file under [admin] api_key; it authorises POST /v1/accounts."
    );
    if env(crate::config::ADMIN_KEY_ENV).is_some_and(|v| !v.is_empty()) {
        // The override would silently make the printed key useless wherever it is set.
        eprintln!(
            "note: {} is set here; wherever it is set, it overrides the key in the file.",
            crate::config::ADMIN_KEY_ENV
        );
    }
    println!("Next:");
    println!("  hookgate check-config --config {path}");
    println!("  hookgate accounts create NAME --config {path}   (while the gateway is stopped)");
    println!("  hookgate serve --config {path}");
    Ok(())
}

/// The example config with `[admin] api_key` (and `[storage] data_dir` when given) replaced.
/// The result is parsed and validated before it is written, so `init` can never leave a file
/// that `check-config` rejects or that silently lacks the key.
fn render_init_config(path: &Path, key: &str, data_dir: Option<&Path>) -> Result<String, Failure> {
    let data_dir_value = data_dir
        .map(|dir| {
            dir.to_str()
                .map(toml_string)
                .ok_or_else(|| anyhow!("--data-dir {} is not valid UTF-8", dir.display()))
        })
        .transpose()
        .map_err(Failure::usage)?;

    let mut out = String::with_capacity(EXAMPLE_CONFIG.len() + 256);
    out.push_str(
        "# Written by `hookgate init`. [admin] api_key holds a fresh operator key: keep this\n\
         # file private (mode 0600).\n#\n",
    );
    let mut section = "";
    for line in EXAMPLE_CONFIG.lines() {
        let trimmed = line.trim_start();
        if trimmed.starts_with('[') {
            section = trimmed.trim_end();
        }
        let key_name = (!trimmed.starts_with('#'))
            .then(|| trimmed.split_once('=').map(|(k, _)| k.trim()))
            .flatten();
        match (section, key_name, &data_dir_value) {
            ("[admin]", Some("api_key"), _) => {
                out.push_str(&format!("api_key = {}", toml_string(key)));
            }
            ("[storage]", Some("data_dir"), Some(dir)) => {
                out.push_str(&format!("data_dir = {dir}"));
            }
            _ => out.push_str(line),
        }
        out.push('\n');
    }

    let raw = Config::parse_raw(path, &out)
        .context("the generated config does not parse (a bug in `hookgate init`)")?;
    let written_key = raw.admin.api_key.clone();
    let written_dir = raw.storage.data_dir.clone();
    Config::from_raw(raw, &|_| None)
        .context("the generated config is invalid (a bug in `hookgate init`)")?;
    if written_key != key || data_dir.is_some_and(|d| d != written_dir) {
        return Err(anyhow!(
            "the example config no longer has the [admin] api_key or [storage] data_dir line \
             `hookgate init` fills in (a bug in `hookgate init`)"
        )
        .into());
    }
    Ok(out)
}

/// A TOML basic string holding `s`, with whatever escaping it needs.
fn toml_string(s: &str) -> String {
    toml::Value::String(s.to_owned()).to_string()
}

/// Writes `text` to `path` readable by the owner only. Without `force` an existing file is a
/// usage error (`create_new`, so there is no check-then-write race).
fn write_private_file(path: &Path, text: &str, force: bool) -> Result<(), Failure> {
    use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};

    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("creating directory {}", parent.display()))?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).mode(0o600);
    if force {
        options.create(true).truncate(true);
    } else {
        options.create_new(true);
    }
    let mut file = match options.open(path) {
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            return Err(Failure::usage(anyhow!(
                "{} already exists; pass --force to overwrite it (its operator key will be \
                 replaced)",
                path.display()
            )));
        }
        opened => opened.with_context(|| format!("creating {}", path.display()))?,
    };
    // `mode` only applies to a file this call creates; an overwritten file keeps its old bits,
    // so tighten them before the key is written into it.
    file.set_permissions(std::fs::Permissions::from_mode(0o600))
        .with_context(|| format!("setting the mode of {}", path.display()))?;
    file.write_all(text.as_bytes())
        .and_then(|()| file.sync_all())
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

/// `hookgate accounts create NAME`: creates the account and its first full-scope key in the
/// stopped gateway's database, and prints both.
pub fn accounts_create(config_path: Option<&Path>, name: String) -> Result<(), Failure> {
    crate::http::api::validate_name("name", &name)
        .map_err(|e| Failure::usage(anyhow!("account {}", e.message)))?;
    let config = load_config(config_path).map_err(Failure::usage)?;
    // Store::open and the journal need a runtime; one thread is plenty for a single commit.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("building the async runtime")?;
    let (account, key) = runtime.block_on(async {
        let (store, journal) = open_offline(&config.storage, "stop it or use POST /v1/accounts")?;
        let created = crate::http::api::accounts::create(&store, name)
            .await
            .context("creating the account");
        close_offline(store, journal).await;
        created
    })?;
    println!("account_id: {}", account.id);
    println!("api_key: {key}");
    println!("The API key is shown once; only its hash is stored.");
    Ok(())
}

/// `hookgate compact`: compacts the stopped gateway's database file and prints its size
/// before and after.
pub fn compact(config_path: Option<&Path>) -> Result<(), Failure> {
    let config = load_config(config_path).map_err(Failure::usage)?;
    let data_dir = &config.storage.data_dir;
    let report =
        crate::store::admin::compact(data_dir, config.storage.cache_size_bytes).map_err(|e| {
            let what = format!("compacting the database in {}", data_dir.display());
            in_use_or(e, data_dir, "stop it first", what)
        })?;
    println!("database: {}", report.path.display());
    println!("size_before_bytes: {}", report.size_before_bytes);
    println!("size_after_bytes: {}", report.size_after_bytes);
    println!(
        "reclaimed_bytes: {}",
        report
            .size_before_bytes
            .saturating_sub(report.size_after_bytes)
    );
    Ok(())
}

/// Opens the store for an admin command, turning "the file is locked" into advice.
/// Call it inside the runtime: the journal it starts needs one.
fn open_offline(storage: &StorageConfig, advice: &str) -> anyhow::Result<(Store, JournalThread)> {
    // Admin commands export no metrics; the registry only satisfies the journal's API.
    Store::open(storage, &prometheus::Registry::new()).map_err(|e| {
        let what = format!("opening the database in {}", storage.data_dir.display());
        in_use_or(e, &storage.data_dir, advice, what)
    })
}

/// Closes the store the way `run` does: once every handle is dropped, the journal commits what
/// it holds, closes the file and releases its lock.
async fn close_offline(store: Store, journal: JournalThread) {
    drop(store);
    journal.join().await;
}

fn in_use_or(error: StoreError, data_dir: &Path, advice: &str, what: String) -> anyhow::Error {
    if error.is_in_use() {
        anyhow::Error::new(error).context(format!(
            "the database in {} is in use: is hookgate running? {advice}",
            data_dir.display()
        ))
    } else {
        anyhow::Error::new(error).context(what)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory as _;

    #[test]
    fn the_command_line_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn init_fills_in_the_key_and_data_dir_and_keeps_every_other_default() {
        let path = Path::new("hookgate.toml");
        let text = render_init_config(path, "k".repeat(43).as_str(), Some(Path::new("/srv/hg")))
            .map_err(|f| format!("{f:?}"))
            .unwrap();
        let config = Config::from_raw(Config::parse_raw(path, &text).unwrap(), &|_| None).unwrap();
        assert_eq!(
            config.admin.api_key.as_ref().map(|k| k.expose().to_owned()),
            Some("k".repeat(43))
        );
        assert_eq!(config.storage.data_dir, Path::new("/srv/hg"));
        let mut expected = Config {
            admin: config.admin.clone(),
            ..Config::default()
        };
        expected.storage.data_dir = config.storage.data_dir.clone();
        assert_eq!(config, expected);
    }

    #[test]
    fn init_without_a_data_dir_keeps_the_example_one() {
        let path = Path::new("hookgate.toml");
        let text = render_init_config(path, &"k".repeat(43), None)
            .map_err(|f| format!("{f:?}"))
            .unwrap();
        let raw = Config::parse_raw(path, &text).unwrap();
        assert_eq!(raw.storage.data_dir, Config::default().storage.data_dir);
    }

    #[test]
    fn a_data_dir_needing_escapes_is_written_as_a_valid_toml_string() {
        let path = Path::new("hookgate.toml");
        let dir = Path::new("/srv/with \"quotes\" and \\ backslash");
        let text = render_init_config(path, &"k".repeat(43), Some(dir))
            .map_err(|f| format!("{f:?}"))
            .unwrap();
        assert_eq!(
            Config::parse_raw(path, &text).unwrap().storage.data_dir,
            dir
        );
    }
}
