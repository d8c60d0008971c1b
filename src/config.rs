//! Configuration: `RawConfig` is what the TOML file says, `Config` is validated and frozen.
//!
//! `Config::from_raw` resolves defaults, checks every rule and returns *all* problems at once,
//! each with its dotted key path, so an operator fixes a file in one pass. Unknown keys are
//! errors (`deny_unknown_fields`): a typo must never silently fall back to a default.
//! Environment overrides (only `HOOKGATE_ADMIN_KEY` today) come through an injected lookup
//! function, so tests never touch the process environment.
//!
//! Parse errors are reported as message + line/column, never with the offending source line:
//! the file may hold secrets.

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use ipnet::IpNet;
use serde::Deserialize;

/// Environment variable that overrides `[admin] api_key`.
pub const ADMIN_KEY_ENV: &str = "HOOKGATE_ADMIN_KEY";
const MIN_ADMIN_KEY_CHARS: usize = 16;
const MAX_BODY_BYTES_LIMIT: u64 = 64 * 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("config file {path} is not valid TOML at line {line}, column {column}: {message}")]
    Parse {
        path: PathBuf,
        line: usize,
        column: usize,
        message: String,
    },
    /// Valid TOML, but a key hookgate does not know or a value of the wrong type. serde stops
    /// at the first of these, so unlike [`ConfigError::Invalid`] it names one key.
    #[error("config file {path}: {key} at line {line}, column {column}: {message}")]
    Schema {
        path: PathBuf,
        key: String,
        line: usize,
        column: usize,
        message: String,
    },
    #[error("invalid configuration:\n{}", format_problems(.0))]
    Invalid(Vec<Problem>),
}

/// One invalid key: its dotted path and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub key: String,
    pub message: String,
}

fn format_problems(problems: &[Problem]) -> String {
    problems
        .iter()
        .map(|p| format!("  {}: {}", p.key, p.message))
        .collect::<Vec<_>>()
        .join("\n")
}

/// A secret from configuration; `Debug` and `Display` never show it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

// === impl Secret ===

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(****)")
    }
}

// ---------------------------------------------------------------------------------------------
// Raw: exactly what the file says.

#[derive(Debug, Default, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct RawConfig {
    pub server: RawServer,
    pub storage: RawStorage,
    pub admin: RawAdmin,
    pub ingest: RawIngest,
    pub delivery: RawDelivery,
    pub api: RawApi,
    pub metrics: RawMetrics,
    pub retention: RawRetention,
    pub log: RawLog,
    pub dashboard: RawDashboard,
}

#[derive(Debug, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct RawDashboard {
    pub enabled: bool,
}

impl Default for RawDashboard {
    fn default() -> Self {
        Self { enabled: true }
    }
}

#[derive(Debug, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct RawApi {
    pub rate_limit_per_s: u32,
    pub rate_limit_burst: u32,
}

impl Default for RawApi {
    fn default() -> Self {
        Self {
            rate_limit_per_s: 1000,
            rate_limit_burst: 2000,
        }
    }
}

#[derive(Debug, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct RawMetrics {
    pub listen: String,
    pub per_resource_labels: bool,
}

impl Default for RawMetrics {
    fn default() -> Self {
        Self {
            listen: String::new(),
            per_resource_labels: true,
        }
    }
}

#[derive(Debug, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct RawRetention {
    pub days: u32,
    pub interval_s: u64,
}

impl Default for RawRetention {
    fn default() -> Self {
        Self {
            days: 30,
            interval_s: 300,
        }
    }
}

#[derive(Debug, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct RawIngest {
    pub dedupe_window_s: u64,
}

impl Default for RawIngest {
    fn default() -> Self {
        Self {
            dedupe_window_s: 24 * 3600,
        }
    }
}

#[derive(Debug, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct RawServer {
    pub listen: String,
    pub max_body_bytes: u64,
    pub header_read_timeout_ms: u64,
    pub request_timeout_ms: u64,
    pub shutdown_grace_s: u64,
    /// Absent: plain HTTP (the default, for local use).
    pub tls: Option<RawTls>,
}

/// `[server.tls]`: PEM file paths. Both default to empty so a missing one is reported by
/// `from_raw` under its own key path, not as a bare serde "missing field".
#[derive(Debug, Default, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct RawTls {
    pub cert: PathBuf,
    pub key: PathBuf,
}

#[derive(Debug, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct RawStorage {
    pub data_dir: PathBuf,
    pub journal_queue_capacity: u64,
    pub journal_max_batch: u64,
    pub journal_enqueue_timeout_ms: u64,
    pub cache_size_mb: u64,
}

#[derive(Default, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct RawAdmin {
    pub api_key: String,
    pub api_key_file: String,
}

impl fmt::Debug for RawAdmin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RawAdmin")
            .field(
                "api_key",
                &if self.api_key.is_empty() { "" } else { "****" },
            )
            .field("api_key_file", &self.api_key_file)
            .finish()
    }
}

#[derive(Debug, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct RawDelivery {
    pub allow_private_networks: bool,
    pub allow_cidrs: Vec<String>,
    pub max_in_flight_total: u64,
    pub queue_window: u64,
    pub connect_timeout_ms: u64,
    pub circuit_failure_threshold: u32,
    pub header_prefix: String,
    pub forward_headers: Vec<String>,
    pub auto_disable_after_s: u64,
    pub auto_disable_after_dead_letters: u32,
    pub replay_rate_per_s: u32,
}

impl Default for RawDelivery {
    fn default() -> Self {
        Self {
            allow_private_networks: false,
            allow_cidrs: Vec::new(),
            max_in_flight_total: 1024,
            queue_window: 4096,
            connect_timeout_ms: 5_000,
            circuit_failure_threshold: 5,
            header_prefix: "x-hookgate-".into(),
            forward_headers: Vec::new(),
            auto_disable_after_s: 5 * 24 * 3600,
            auto_disable_after_dead_letters: 20,
            replay_rate_per_s: 100,
        }
    }
}

#[derive(Debug, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct RawLog {
    pub format: String,
    pub level: String,
}

impl Default for RawServer {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:8080".into(),
            max_body_bytes: 1024 * 1024,
            header_read_timeout_ms: 10_000,
            request_timeout_ms: 30_000,
            shutdown_grace_s: 30,
            tls: None,
        }
    }
}

impl Default for RawStorage {
    fn default() -> Self {
        Self {
            data_dir: PathBuf::from("./hookgate-data"),
            journal_queue_capacity: 8192,
            journal_max_batch: 1024,
            journal_enqueue_timeout_ms: 2_000,
            cache_size_mb: 256,
        }
    }
}

impl Default for RawLog {
    fn default() -> Self {
        Self {
            format: "text".into(),
            level: "info".into(),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Validated.

#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub server: ServerConfig,
    pub storage: StorageConfig,
    pub admin: AdminConfig,
    pub ingest: IngestConfig,
    pub delivery: DeliveryConfig,
    pub api: ApiConfig,
    pub metrics: MetricsConfig,
    pub retention: RetentionConfig,
    pub log: LogConfig,
    pub dashboard: DashboardConfig,
}

#[derive(Debug, Clone, PartialEq)]
pub struct DashboardConfig {
    /// Serve the web dashboard at `/dashboard` on the main listener. It is static files; every
    /// figure it shows comes from `/v1` with the API key typed into it.
    pub enabled: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ApiConfig {
    /// Requests per second per API key on `/v1` (management and send API); 0: unlimited.
    pub rate_limit_per_s: u32,
    pub rate_limit_burst: u32,
}

#[derive(Debug, Clone, PartialEq)]
pub struct MetricsConfig {
    /// A second listener serving only `/metrics` (e.g. on an internal interface).
    pub listen: Option<SocketAddr>,
    /// Label series with source and destination ids; off for very large fleets.
    pub per_resource_labels: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct RetentionConfig {
    /// Events (and their attempts) older than this are removed, unless a delivery of theirs
    /// is still queued. Accounts may set their own. Zero keeps everything.
    pub default_retention: Duration,
    /// How often the cleaner runs.
    pub interval: Duration,
}

#[derive(Debug, Clone, PartialEq)]
pub struct IngestConfig {
    /// A provider delivery id seen again on the same source within this window is answered
    /// as a duplicate and not stored again.
    pub dedupe_window: Duration,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ServerConfig {
    pub listen: SocketAddr,
    pub max_body_bytes: usize,
    /// Bounds how long a client may take to send its request head (slowloris).
    pub header_read_timeout: Duration,
    /// Bounds a whole request, so one stuck handler cannot hold the drain.
    pub request_timeout: Duration,
    pub shutdown_grace: Duration,
    /// `None`: plain HTTP.
    pub tls: Option<TlsConfig>,
}

/// Where the main listener's TLS material lives. The files were read and checked (certificate
/// parses, key matches it) when this was validated; they are read again at start-up and on
/// every SIGHUP, so the validated struct holds paths, never key material.
#[derive(Debug, Clone, PartialEq)]
pub struct TlsConfig {
    /// PEM certificate chain, leaf first.
    pub cert: PathBuf,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1) matching the leaf.
    pub key: PathBuf,
}

#[derive(Debug, Clone, PartialEq)]
pub struct StorageConfig {
    pub data_dir: PathBuf,
    pub journal_queue_capacity: usize,
    pub journal_max_batch: usize,
    /// How long a writer waits for room in a full journal queue before answering 503.
    pub journal_enqueue_timeout: Duration,
    /// redb's page cache: recently written and read pages kept in memory, the bulk of the
    /// gateway's resident memory once traffic has filled it.
    pub cache_size_bytes: usize,
}

#[derive(Debug, Clone, PartialEq)]
pub struct AdminConfig {
    /// The operator key; `None` disables operator endpoints (account creation over HTTP).
    pub api_key: Option<Secret>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct DeliveryConfig {
    pub allow_private_networks: bool,
    pub allow_cidrs: Vec<IpNet>,
    /// Attempts running at once across all destinations (bounds hookgate's own resources).
    pub max_in_flight_total: usize,
    /// Queued deliveries of one destination held in memory (the earliest due; FIFO: the first
    /// in event order); the rest wait on disk and are loaded as these go.
    pub queue_window: usize,
    pub connect_timeout: Duration,
    /// Consecutive failures that open a destination's circuit (0: never).
    pub circuit_failure_threshold: u32,
    /// Prefix of hookgate's informational headers on deliveries.
    pub header_prefix: String,
    /// Stored request headers forwarded to destinations; empty forwards all of them.
    pub forward_headers: Vec<String>,
    /// A destination failing continuously for longer than this is disabled (zero: never).
    pub auto_disable_after: Duration,
    /// A destination with this many dead letters in a row is disabled (0: never).
    pub auto_disable_after_dead_letters: u32,
    /// Bulk replays queue deliveries at most this fast, so a replay cannot flood a destination.
    pub replay_rate_per_s: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, PartialEq)]
pub struct LogConfig {
    pub format: LogFormat,
    pub level: String,
}

// === impl Config ===

impl Default for Config {
    /// The embedded default: what `hookgate serve` runs on with no `--config`.
    fn default() -> Self {
        Config::from_raw(RawConfig::default(), &|_| None)
            .expect("invariant: the built-in defaults are valid (tested)")
    }
}

impl Config {
    /// Reads, parses and validates a file. `env` looks up environment overrides.
    pub fn load(path: &Path, env: &dyn Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        let raw = Self::parse_raw(path, &text)?;
        Self::from_raw(raw, env)
    }

    /// The embedded default plus environment overrides.
    pub fn default_with_env(env: &dyn Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        Self::from_raw(RawConfig::default(), env)
    }

    pub fn parse_raw(path: &Path, text: &str) -> Result<RawConfig, ConfigError> {
        let at = |e: &toml::de::Error| {
            e.span()
                .map(|span| line_col(text, span.start))
                .unwrap_or((0, 0))
        };
        // Syntax first, so a file that is valid TOML is never called invalid TOML.
        if let Err(e) = text.parse::<toml::Table>() {
            let (line, column) = at(&e);
            return Err(ConfigError::Parse {
                path: path.to_owned(),
                line,
                column,
                message: redact_quoted(e.message()),
            });
        }
        serde_path_to_error::deserialize(toml::Deserializer::new(text)).map_err(|e| {
            let key = e.path().to_string();
            let e = e.into_inner();
            let (line, column) = at(&e);
            ConfigError::Schema {
                path: path.to_owned(),
                key,
                line,
                column,
                message: redact_quoted(e.message()),
            }
        })
    }

    pub fn from_raw(
        raw: RawConfig,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        let mut problems = Vec::new();
        let mut bad = |key: &str, message: String| {
            problems.push(Problem {
                key: key.to_owned(),
                message,
            })
        };

        let listen = raw.server.listen.parse::<SocketAddr>().unwrap_or_else(|_| {
            bad(
                "server.listen",
                format!(
                    "\"{}\" is not an address:port such as \"127.0.0.1:8080\"",
                    raw.server.listen.escape_debug()
                ),
            );
            SocketAddr::from(([127, 0, 0, 1], 8080))
        });
        if raw.server.max_body_bytes == 0 || raw.server.max_body_bytes > MAX_BODY_BYTES_LIMIT {
            bad(
                "server.max_body_bytes",
                format!("must be between 1 and {MAX_BODY_BYTES_LIMIT}"),
            );
        }
        for (key, value) in [
            (
                "server.header_read_timeout_ms",
                raw.server.header_read_timeout_ms,
            ),
            ("server.request_timeout_ms", raw.server.request_timeout_ms),
        ] {
            if !(100..=600_000).contains(&value) {
                bad(key, "must be between 100 and 600000".into());
            }
        }
        if raw.server.shutdown_grace_s > 3600 {
            bad("server.shutdown_grace_s", "must be at most 3600".into());
        }
        let tls = raw.server.tls.map(|t| TlsConfig {
            cert: t.cert,
            key: t.key,
        });
        if let Some(t) = &tls {
            let cert_missing = t.cert.as_os_str().is_empty();
            let key_missing = t.key.as_os_str().is_empty();
            if cert_missing {
                bad(
                    "server.tls.cert",
                    "must be set to a PEM certificate file".into(),
                );
            }
            if key_missing {
                bad(
                    "server.tls.key",
                    "must be set to a PEM private key file".into(),
                );
            }
            // Loading both here is what makes `check-config` (and a start with a bad pair)
            // fail before any port is bound. Messages name files, never their contents.
            if !cert_missing && !key_missing {
                for e in crate::http::tls::check(t).err().unwrap_or_default() {
                    bad(e.config_key(), crate::http::tls::render_chain(&e));
                }
            }
        }

        if raw.storage.data_dir.as_os_str().is_empty() {
            bad("storage.data_dir", "must not be empty".into());
        }
        if !(1..=1_000_000).contains(&raw.storage.journal_queue_capacity) {
            bad(
                "storage.journal_queue_capacity",
                "must be between 1 and 1000000".into(),
            );
        }
        if !(1..=100_000).contains(&raw.storage.journal_max_batch) {
            bad(
                "storage.journal_max_batch",
                "must be between 1 and 100000".into(),
            );
        }
        if !(1..=60_000).contains(&raw.storage.journal_enqueue_timeout_ms) {
            bad(
                "storage.journal_enqueue_timeout_ms",
                "must be between 1 and 60000".into(),
            );
        }
        if !(8..=1_048_576).contains(&raw.storage.cache_size_mb) {
            bad(
                "storage.cache_size_mb",
                "must be between 8 and 1048576".into(),
            );
        }

        if !raw.admin.api_key.is_empty() && !raw.admin.api_key_file.is_empty() {
            bad(
                "admin.api_key_file",
                "set either admin.api_key or admin.api_key_file, not both".into(),
            );
        }
        let admin_key = match (env(ADMIN_KEY_ENV), raw.admin.api_key.is_empty()) {
            (Some(v), _) if !v.is_empty() => Some((v, ADMIN_KEY_ENV)),
            _ if !raw.admin.api_key.is_empty() => Some((raw.admin.api_key, "admin.api_key")),
            _ if !raw.admin.api_key_file.is_empty() => {
                match std::fs::read_to_string(&raw.admin.api_key_file) {
                    Ok(v) => Some((v.trim().to_owned(), "admin.api_key_file")),
                    Err(e) => {
                        bad(
                            "admin.api_key_file",
                            format!("cannot read {}: {e}", raw.admin.api_key_file),
                        );
                        None
                    }
                }
            }
            _ => None,
        };
        let api_key = match admin_key {
            Some((key, from)) if key.chars().count() < MIN_ADMIN_KEY_CHARS => {
                bad(
                    from,
                    format!("the operator key must be at least {MIN_ADMIN_KEY_CHARS} characters"),
                );
                None
            }
            Some((key, _)) => Some(Secret(key)),
            None => None,
        };

        if raw.ingest.dedupe_window_s > 30 * 24 * 3600 {
            bad(
                "ingest.dedupe_window_s",
                "must be at most 2592000 (30 days)".into(),
            );
        }

        let mut allow_cidrs = Vec::new();
        for (i, cidr) in raw.delivery.allow_cidrs.iter().enumerate() {
            match cidr.parse::<IpNet>() {
                Ok(net) => allow_cidrs.push(net),
                Err(_) => bad(
                    &format!("delivery.allow_cidrs[{i}]"),
                    format!(
                        "\"{}\" is not a CIDR such as \"10.0.0.0/8\"",
                        cidr.escape_debug()
                    ),
                ),
            }
        }

        if !(1..=100_000).contains(&raw.delivery.max_in_flight_total) {
            bad(
                "delivery.max_in_flight_total",
                "must be between 1 and 100000".into(),
            );
        }
        if !(16..=1_000_000).contains(&raw.delivery.queue_window) {
            bad(
                "delivery.queue_window",
                "must be between 16 and 1000000".into(),
            );
        }
        if !(100..=60_000).contains(&raw.delivery.connect_timeout_ms) {
            bad(
                "delivery.connect_timeout_ms",
                "must be between 100 and 60000".into(),
            );
        }
        let prefix_ok = !raw.delivery.header_prefix.is_empty()
            && raw
                .delivery
                .header_prefix
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-');
        if !prefix_ok {
            bad(
                "delivery.header_prefix",
                "must be letters, digits and '-' only, e.g. \"x-hookgate-\"".into(),
            );
        }
        for (i, h) in raw.delivery.forward_headers.iter().enumerate() {
            if http::HeaderName::from_bytes(h.as_bytes()).is_err() {
                bad(
                    &format!("delivery.forward_headers[{i}]"),
                    format!("\"{}\" is not a header name", h.escape_debug()),
                );
            }
        }
        if !(1..=100_000).contains(&raw.delivery.replay_rate_per_s) {
            bad(
                "delivery.replay_rate_per_s",
                "must be between 1 and 100000".into(),
            );
        }

        if raw.api.rate_limit_per_s > 0 && raw.api.rate_limit_burst == 0 {
            bad(
                "api.rate_limit_burst",
                "must be at least 1 when api.rate_limit_per_s is set".into(),
            );
        }
        let metrics_listen = if raw.metrics.listen.is_empty() {
            None
        } else {
            match raw.metrics.listen.parse::<SocketAddr>() {
                Ok(a) => Some(a),
                Err(_) => {
                    bad(
                        "metrics.listen",
                        format!(
                            "\"{}\" is not an address:port such as \"127.0.0.1:9090\"",
                            raw.metrics.listen.escape_debug()
                        ),
                    );
                    None
                }
            }
        };
        // Caught here rather than by the second bind at start, so `check-config` (systemd's
        // ExecStartPre) refuses it. Port 0 picks a free port each time, so it never clashes.
        if let (Some(m), Ok(main)) = (metrics_listen, raw.server.listen.parse::<SocketAddr>()) {
            let overlap =
                m.ip() == main.ip() || m.ip().is_unspecified() || main.ip().is_unspecified();
            if m.port() != 0 && m.port() == main.port() && overlap {
                bad(
                    "metrics.listen",
                    format!("{m} overlaps server.listen ({main}); give the metrics listener its own port"),
                );
            }
        }
        if raw.retention.days > 36_500 {
            bad("retention.days", "must be at most 36500".into());
        }
        if !(1..=86_400).contains(&raw.retention.interval_s) {
            bad("retention.interval_s", "must be between 1 and 86400".into());
        }

        let format = match raw.log.format.as_str() {
            "text" => LogFormat::Text,
            "json" => LogFormat::Json,
            other => {
                bad(
                    "log.format",
                    format!(
                        "\"{}\" is not one of \"text\", \"json\"",
                        other.escape_debug()
                    ),
                );
                LogFormat::Text
            }
        };
        if tracing_subscriber::EnvFilter::try_new(&raw.log.level).is_err() {
            bad(
                "log.level",
                format!(
                    "\"{}\" is not a level or filter such as \"info\" or \"hookgate=debug\"",
                    raw.log.level.escape_debug()
                ),
            );
        }

        if !problems.is_empty() {
            return Err(ConfigError::Invalid(problems));
        }
        Ok(Config {
            server: ServerConfig {
                listen,
                max_body_bytes: raw.server.max_body_bytes as usize,
                header_read_timeout: Duration::from_millis(raw.server.header_read_timeout_ms),
                request_timeout: Duration::from_millis(raw.server.request_timeout_ms),
                shutdown_grace: Duration::from_secs(raw.server.shutdown_grace_s),
                tls,
            },
            storage: StorageConfig {
                data_dir: raw.storage.data_dir,
                journal_queue_capacity: raw.storage.journal_queue_capacity as usize,
                journal_max_batch: raw.storage.journal_max_batch as usize,
                journal_enqueue_timeout: Duration::from_millis(
                    raw.storage.journal_enqueue_timeout_ms,
                ),
                cache_size_bytes: (raw.storage.cache_size_mb as usize).saturating_mul(1 << 20),
            },
            admin: AdminConfig { api_key },
            ingest: IngestConfig {
                dedupe_window: Duration::from_secs(raw.ingest.dedupe_window_s),
            },
            api: ApiConfig {
                rate_limit_per_s: raw.api.rate_limit_per_s,
                rate_limit_burst: raw.api.rate_limit_burst,
            },
            metrics: MetricsConfig {
                listen: metrics_listen,
                per_resource_labels: raw.metrics.per_resource_labels,
            },
            dashboard: DashboardConfig {
                enabled: raw.dashboard.enabled,
            },
            retention: RetentionConfig {
                default_retention: Duration::from_secs(u64::from(raw.retention.days) * 86_400),
                interval: Duration::from_secs(raw.retention.interval_s),
            },
            delivery: DeliveryConfig {
                allow_private_networks: raw.delivery.allow_private_networks,
                allow_cidrs,
                max_in_flight_total: raw.delivery.max_in_flight_total as usize,
                queue_window: raw.delivery.queue_window as usize,
                connect_timeout: Duration::from_millis(raw.delivery.connect_timeout_ms),
                circuit_failure_threshold: raw.delivery.circuit_failure_threshold,
                header_prefix: raw.delivery.header_prefix.to_ascii_lowercase(),
                forward_headers: raw.delivery.forward_headers,
                auto_disable_after: Duration::from_secs(raw.delivery.auto_disable_after_s),
                auto_disable_after_dead_letters: raw.delivery.auto_disable_after_dead_letters,
                replay_rate_per_s: raw.delivery.replay_rate_per_s,
            },
            log: LogConfig {
                format,
                level: raw.log.level,
            },
        })
    }
}

/// serde's type errors quote the offending value (`invalid type: string "…"`), which may be a
/// secret written under the wrong key: keep the message, drop every quoted value.
fn redact_quoted(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    let mut quoted = false;
    for c in message.chars() {
        if c == '"' {
            if !quoted {
                out.push_str("\"…");
            } else {
                out.push('"');
            }
            quoted = !quoted;
        } else if !quoted {
            out.push(c);
        }
    }
    out
}

fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_env(_: &str) -> Option<String> {
        None
    }

    #[test]
    fn example_file_parses_to_exactly_the_default() {
        let text = include_str!("../config.example.toml");
        let raw = Config::parse_raw(Path::new("config.example.toml"), text).unwrap();
        assert_eq!(raw, RawConfig::default());
        assert_eq!(Config::from_raw(raw, &no_env).unwrap(), Config::default());
    }

    #[test]
    fn default_listens_on_loopback_8080_with_local_data_dir() {
        let c = Config::default();
        assert_eq!(c.server.listen, "127.0.0.1:8080".parse().unwrap());
        assert_eq!(c.storage.data_dir, PathBuf::from("./hookgate-data"));
        assert_eq!(c.server.max_body_bytes, 1024 * 1024);
        assert!(c.admin.api_key.is_none());
        assert!(!c.delivery.allow_private_networks);
    }

    #[test]
    fn unknown_key_is_an_error_naming_it() {
        let err = Config::parse_raw(
            Path::new("x.toml"),
            "[server]\nlisten = \"127.0.0.1:1\"\nlisen = 1\n",
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("unknown field `lisen`"), "{err}");
        assert!(err.contains("line 3"), "{err}");
        assert!(err.contains("server.lisen"), "{err}");
        assert!(
            !err.contains("TOML"),
            "valid TOML is not called invalid: {err}"
        );
    }

    #[test]
    fn a_value_of_the_wrong_type_names_its_key_and_bad_syntax_says_toml() {
        let err = Config::parse_raw(
            Path::new("x.toml"),
            "[server]\nlisten = \"127.0.0.1:1\"\n[storage]\ncache_size_mb = \"64\"\n",
        )
        .unwrap_err();
        let ConfigError::Schema { key, line, .. } = &err else {
            panic!("{err}");
        };
        assert_eq!((key.as_str(), *line), ("storage.cache_size_mb", 4), "{err}");

        let err = Config::parse_raw(Path::new("x.toml"), "[server\nlisten = 1\n").unwrap_err();
        assert!(matches!(err, ConfigError::Parse { line: 1, .. }), "{err}");
        assert!(err.to_string().contains("not valid TOML"), "{err}");
    }

    #[test]
    fn all_problems_are_reported_with_key_paths() {
        let text = r#"
[server]
listen = "not-an-address"
max_body_bytes = 0
[storage]
journal_max_batch = 0
cache_size_mb = 4
[delivery]
allow_cidrs = ["10.0.0.0/8", "nope"]
[log]
format = "xml"
"#;
        let raw = Config::parse_raw(Path::new("x.toml"), text).unwrap();
        let ConfigError::Invalid(problems) = Config::from_raw(raw, &no_env).unwrap_err() else {
            panic!("expected Invalid");
        };
        let keys: Vec<_> = problems.iter().map(|p| p.key.as_str()).collect();
        assert_eq!(
            keys,
            [
                "server.listen",
                "server.max_body_bytes",
                "storage.journal_max_batch",
                "storage.cache_size_mb",
                "delivery.allow_cidrs[1]",
                "log.format"
            ]
        );
    }

    #[test]
    fn a_metrics_listener_on_the_main_listeners_port_is_refused() {
        let problems = |main: &str, metrics: &str| {
            let text =
                format!("[server]\nlisten = \"{main}\"\n[metrics]\nlisten = \"{metrics}\"\n");
            let raw = Config::parse_raw(Path::new("x.toml"), &text).unwrap();
            match Config::from_raw(raw, &no_env) {
                Ok(_) => Vec::new(),
                Err(ConfigError::Invalid(p)) => p.into_iter().map(|p| p.key).collect(),
                Err(e) => panic!("{e}"),
            }
        };
        let clash = ["metrics.listen".to_owned()];
        assert_eq!(problems("127.0.0.1:8080", "127.0.0.1:8080"), clash);
        assert_eq!(problems("0.0.0.0:8080", "127.0.0.1:8080"), clash);
        assert_eq!(problems("127.0.0.1:8080", "[::]:8080"), clash);
        assert!(problems("127.0.0.1:8080", "127.0.0.1:9090").is_empty());
        assert!(problems("127.0.0.1:8080", "10.0.0.1:8080").is_empty());
        assert!(problems("127.0.0.1:0", "127.0.0.1:0").is_empty());
        // A bad main address is reported once, not again as a clash with its stand-in.
        assert_eq!(
            problems("nope", "127.0.0.1:8080"),
            ["server.listen".to_owned()]
        );
    }

    #[test]
    fn env_admin_key_overrides_the_file_and_is_masked() {
        let raw = Config::parse_raw(
            Path::new("x.toml"),
            "[admin]\napi_key = \"file-key-0123456789\"\n",
        )
        .unwrap();
        let env = |k: &str| (k == ADMIN_KEY_ENV).then(|| "env-key-0123456789".to_owned());
        let c = Config::from_raw(raw, &env).unwrap();
        assert_eq!(
            c.admin.api_key.as_ref().unwrap().expose(),
            "env-key-0123456789"
        );
        assert!(!format!("{c:?}").contains("env-key"));
    }

    #[test]
    fn short_admin_key_is_rejected() {
        let raw = Config::parse_raw(Path::new("x.toml"), "[admin]\napi_key = \"short\"\n").unwrap();
        let err = Config::from_raw(raw, &no_env).unwrap_err().to_string();
        assert!(
            err.contains("admin.api_key: the operator key must be at least 16"),
            "{err}"
        );
        assert!(!err.contains("short\""), "{err}");
    }

    #[test]
    fn a_secret_under_a_key_of_the_wrong_type_is_not_echoed() {
        // Found by the config_toml fuzz target.
        for text in [
            "admin = \"SECRET-operator-key-0123456789abcdef\"\n",
            "[server]\nmax_body_bytes = \"SECRET-operator-key\"\n",
        ] {
            let err = Config::parse_raw(Path::new("x.toml"), text)
                .unwrap_err()
                .to_string();
            assert!(!err.contains("SECRET"), "{err}");
            assert!(err.contains("invalid type"), "{err}");
        }
    }

    #[test]
    fn tls_is_off_unless_its_table_is_present() {
        assert_eq!(Config::default().server.tls, None);
    }

    #[test]
    fn an_empty_tls_table_names_both_missing_keys() {
        let raw = Config::parse_raw(Path::new("x.toml"), "[server.tls]\n").unwrap();
        let ConfigError::Invalid(problems) = Config::from_raw(raw, &no_env).unwrap_err() else {
            panic!("expected Invalid");
        };
        let keys: Vec<_> = problems.iter().map(|p| p.key.as_str()).collect();
        assert_eq!(keys, ["server.tls.cert", "server.tls.key"]);
    }

    #[test]
    fn unreadable_tls_files_are_each_reported_under_their_key_with_their_path() {
        let text = "[server.tls]\ncert = \"/nonexistent/hg/cert.pem\"\nkey = \"/nonexistent/hg/key.pem\"\n";
        let raw = Config::parse_raw(Path::new("x.toml"), text).unwrap();
        let err = Config::from_raw(raw, &no_env).unwrap_err().to_string();
        assert!(
            err.contains("server.tls.cert: cannot read /nonexistent/hg/cert.pem: "),
            "{err}"
        );
        assert!(
            err.contains("server.tls.key: cannot read /nonexistent/hg/key.pem: "),
            "{err}"
        );
    }

    #[test]
    fn an_unknown_tls_key_is_an_error() {
        let err = Config::parse_raw(
            Path::new("x.toml"),
            "[server.tls]\ncert = \"c\"\nkey = \"k\"\nchain = \"x\"\n",
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("unknown field `chain`"), "{err}");
    }

    #[test]
    fn parse_error_does_not_echo_the_source_line() {
        let err = Config::parse_raw(Path::new("x.toml"), "[admin]\napi_key = \"sekrit-value\n")
            .unwrap_err()
            .to_string();
        assert!(!err.contains("sekrit"), "{err}");
        assert!(err.contains("line 2"), "{err}");
    }
}
