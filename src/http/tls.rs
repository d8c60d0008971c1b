//! TLS on the main listener: loading a PEM certificate and key, the reloadable acceptor, and
//! the SIGHUP-driven reloader.
//!
//! Invariants:
//! 1. The acceptor always holds a certificate/key pair that loaded and matched:
//!    [`TlsAcceptor::reload`] builds the new `rustls::ServerConfig` completely before swapping
//!    it in, so a missing file, a broken PEM or a key for another certificate keeps the old
//!    pair.
//! 2. Each connection takes the current `ServerConfig` once, at its handshake; a reload never
//!    touches an established connection, so nothing is dropped by it.
//! 3. Errors name the file and the config key (`server.tls.cert` / `server.tls.key`), never
//!    the file's contents: a key file is a secret.
//!
//! ALPN offers `h2` then `http/1.1`; hyper's auto builder serves whichever the client chose.
//! The leaf certificate's expiry is exported as `hookgate_tls_certificate_expiry_timestamp_seconds`
//! and, within `EXPIRY_WARNING` of it (or past it), logged at WARN on every load and reload
//! and again every [`EXPIRY_RECHECK`] while it is served, so a forgotten renewal shows up in the
//! logs of a gateway that has run for months without a restart, before clients start refusing
//! it.
//! Not done here: client certificates, OCSP stapling.

use std::fs::File;
use std::io::{self, Read as _};
use std::path::{Path, PathBuf};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use prometheus::{IntCounterVec, IntGauge, Opts, Registry};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::{self, PemObject as _};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::sign::{CertifiedKey, SingleCertAndKey};
use tokio::net::TcpStream;
use tokio_rustls::server::TlsStream;

use crate::config::TlsConfig;
use crate::shutdown::Shutdown;

/// ALPN protocols offered, in server preference order.
const ALPN: [&[u8]; 2] = [b"h2", b"http/1.1"];
/// Largest certificate or key file read. A real chain is a few KiB; the cap keeps a path
/// mistakenly pointing at a huge (or endless) file from exhausting memory.
const MAX_PEM_FILE_BYTES: u64 = 1024 * 1024;

/// How long before the leaf certificate's `notAfter` loading it logs a warning.
const EXPIRY_WARNING: Duration = Duration::from_secs(14 * 24 * 3600);
/// How often the served certificate's expiry is looked at again between reloads.
pub const EXPIRY_RECHECK: Duration = Duration::from_secs(24 * 3600);

/// Which of the two configured files an error is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsFile {
    Cert,
    Key,
}

// === impl TlsFile ===

impl TlsFile {
    /// The dotted config key naming this file.
    pub fn config_key(self) -> &'static str {
        match self {
            Self::Cert => "server.tls.cert",
            Self::Key => "server.tls.key",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read {}", path.display())]
    Read {
        file: TlsFile,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{} is not a regular file", path.display())]
    NotAFile { file: TlsFile, path: PathBuf },
    #[error("{} is larger than {MAX_PEM_FILE_BYTES} bytes", path.display())]
    TooLarge { file: TlsFile, path: PathBuf },
    // The PEM parser's own error quotes the offending line, which in a key file is key
    // material; it is replaced by a fixed description instead of kept as the source.
    #[error("{} is not valid PEM: {reason}", path.display())]
    Pem {
        file: TlsFile,
        path: PathBuf,
        reason: &'static str,
    },
    #[error("{} holds no PEM CERTIFICATE section", path.display())]
    NoCertificate { path: PathBuf },
    #[error(
        "{} holds no PEM private key section (PRIVATE KEY, RSA PRIVATE KEY or EC PRIVATE KEY)",
        path.display()
    )]
    NoKey { path: PathBuf },
    #[error("the certificate in {} cannot be used", path.display())]
    BadCertificate {
        path: PathBuf,
        #[source]
        source: rustls::Error,
    },
    #[error("the private key in {} is not a supported RSA, ECDSA or Ed25519 key", path.display())]
    UnsupportedKey {
        path: PathBuf,
        #[source]
        source: rustls::Error,
    },
    #[error(
        "the private key in {} does not match the certificate in {}",
        key.display(),
        cert.display()
    )]
    KeyMismatch { cert: PathBuf, key: PathBuf },
    #[error("cannot build the TLS server configuration")]
    Build(#[source] rustls::Error),
}

// === impl TlsError ===

impl TlsError {
    /// The config key an operator has to look at to fix this.
    pub fn config_key(&self) -> &'static str {
        match self {
            Self::Read { file, .. }
            | Self::NotAFile { file, .. }
            | Self::TooLarge { file, .. }
            | Self::Pem { file, .. } => file.config_key(),
            Self::NoCertificate { .. } | Self::BadCertificate { .. } => "server.tls.cert",
            Self::NoKey { .. } | Self::UnsupportedKey { .. } | Self::KeyMismatch { .. } => {
                "server.tls.key"
            }
            // Not caused by either file (a protocol-version problem in the provider), but the
            // pair is what an operator would look at first.
            Self::Build(_) => "server.tls.cert",
        }
    }
}

/// `err` and its causes joined with `: `, for config problems and log lines that want the
/// whole story in one string.
pub fn render_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut out = err.to_string();
    let mut source = err.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

/// Loads and checks the pair without keeping it: what config validation (and so
/// `check-config`) runs. Both files are read even when the first fails, so an operator sees
/// every problem at once.
pub fn check(config: &TlsConfig) -> Result<(), Vec<TlsError>> {
    match (read_chain(config), read_key(config)) {
        (Ok(chain), Ok(key)) => certify(config, chain, key, &provider())
            .map(drop)
            .map_err(|e| vec![e]),
        (chain, key) => Err(chain.err().into_iter().chain(key.err()).collect()),
    }
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Reads at most [`MAX_PEM_FILE_BYTES`] of a regular file. The metadata check comes first
/// because opening a FIFO for reading would block until a writer appears.
fn read_pem_file(file: TlsFile, path: &Path) -> Result<Vec<u8>, TlsError> {
    let read_err = |source| TlsError::Read {
        file,
        path: path.to_owned(),
        source,
    };
    let meta = std::fs::metadata(path).map_err(read_err)?;
    if !meta.is_file() {
        return Err(TlsError::NotAFile {
            file,
            path: path.to_owned(),
        });
    }
    let mut bytes = Vec::new();
    File::open(path)
        .and_then(|f| f.take(MAX_PEM_FILE_BYTES + 1).read_to_end(&mut bytes))
        .map_err(read_err)?;
    if bytes.len() as u64 > MAX_PEM_FILE_BYTES {
        return Err(TlsError::TooLarge {
            file,
            path: path.to_owned(),
        });
    }
    Ok(bytes)
}

fn pem_error(file: TlsFile, path: &Path, err: &pem::Error) -> TlsError {
    let reason = match err {
        pem::Error::MissingSectionEnd { .. } => "a section has no END line",
        pem::Error::IllegalSectionStart { .. } => "a BEGIN line is malformed",
        pem::Error::Base64Decode(_) => "a section is not valid base64",
        pem::Error::SectionTooLarge => "a section is too large",
        _ => "the file cannot be parsed",
    };
    TlsError::Pem {
        file,
        path: path.to_owned(),
        reason,
    }
}

fn read_chain(config: &TlsConfig) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let cert_pem = read_pem_file(TlsFile::Cert, &config.cert)?;
    let chain = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| pem_error(TlsFile::Cert, &config.cert, &e))?;
    if chain.is_empty() {
        return Err(TlsError::NoCertificate {
            path: config.cert.clone(),
        });
    }
    Ok(chain)
}

fn read_key(config: &TlsConfig) -> Result<PrivateKeyDer<'static>, TlsError> {
    let key_pem = read_pem_file(TlsFile::Key, &config.key)?;
    PrivateKeyDer::from_pem_slice(&key_pem).map_err(|e| match e {
        pem::Error::NoItemsFound => TlsError::NoKey {
            path: config.key.clone(),
        },
        other => pem_error(TlsFile::Key, &config.key, &other),
    })
}

/// Pairs the chain with the key, refusing a key the provider cannot use or one that is not the
/// leaf's.
fn certify(
    config: &TlsConfig,
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    provider: &CryptoProvider,
) -> Result<CertifiedKey, TlsError> {
    let signing_key = provider
        .key_provider
        .load_private_key(key)
        .map_err(|source| TlsError::UnsupportedKey {
            path: config.key.clone(),
            source,
        })?;

    let certified = CertifiedKey::new(chain, signing_key);
    match certified.keys_match() {
        Ok(()) => Ok(certified),
        Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::KeyMismatch)) => {
            Err(TlsError::KeyMismatch {
                cert: config.cert.clone(),
                key: config.key.clone(),
            })
        }
        // The key cannot report its public half, so the pair cannot be compared; rustls's
        // own `with_single_cert` accepts this too (ring keys always can, so not reached).
        Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::Unknown)) => Ok(certified),
        // Anything else means the leaf itself did not parse.
        Err(source) => Err(TlsError::BadCertificate {
            path: config.cert.clone(),
            source,
        }),
    }
}

/// The leaf's `notAfter` in Unix seconds; `None` if it does not parse as X.509 (rustls has
/// accepted the pair by then, so that only costs the expiry warning, not the listener).
fn leaf_not_after(chain: &[CertificateDer<'_>]) -> Option<i64> {
    let (_, leaf) = x509_parser::parse_x509_certificate(chain.first()?.as_ref()).ok()?;
    Some(leaf.validity().not_after.timestamp())
}

/// Where the served certificate stands against its `notAfter`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expiry {
    /// `notAfter` could not be read.
    Unknown,
    Valid,
    /// Within 14 days (`EXPIRY_WARNING`) of it.
    Soon {
        days_left: i64,
    },
    Expired {
        days_ago: i64,
    },
}

fn expiry_at(not_after: Option<i64>, now_s: i64) -> Expiry {
    let Some(not_after) = not_after else {
        return Expiry::Unknown;
    };
    let left_s = not_after - now_s;
    if left_s <= 0 {
        Expiry::Expired {
            days_ago: -left_s / 86_400,
        }
    } else if left_s < EXPIRY_WARNING.as_secs() as i64 {
        Expiry::Soon {
            days_left: left_s / 86_400,
        }
    } else {
        Expiry::Valid
    }
}

fn unix_now_s() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// Warns when the certificate is near or past its expiry (or its expiry is unknown, which
/// `loading` says only once, at a load or reload, rather than every day).
fn warn_expiry(config: &TlsConfig, not_after: Option<i64>, loading: bool) -> Expiry {
    let state = expiry_at(not_after, unix_now_s());
    let path = config.cert.display();
    match state {
        Expiry::Unknown if loading => {
            tracing::warn!(%path, "Could not read the TLS certificate's expiry date; no expiry warning will be given.");
        }
        Expiry::Unknown | Expiry::Valid => {}
        Expiry::Expired { days_ago } => {
            tracing::warn!(%path, expired_days_ago = days_ago, "The TLS certificate has expired; clients will refuse the connection. Renew it and send SIGHUP.");
        }
        Expiry::Soon { days_left } => {
            tracing::warn!(%path, days_left, "The TLS certificate expires soon. Renew it and send SIGHUP.");
        }
    }
    state
}

/// Exports the leaf's expiry and warns when it is near or past.
fn note_expiry(config: &TlsConfig, not_after: Option<i64>, gauge: &IntGauge) {
    if let Some(not_after) = not_after {
        gauge.set(not_after);
    }
    warn_expiry(config, not_after, true);
}

/// A pair being served: its rustls config and the leaf's `notAfter`.
#[derive(Clone)]
struct Served {
    config: Arc<rustls::ServerConfig>,
    not_after: Option<i64>,
}

fn build_server_config(
    config: &TlsConfig,
    provider: &Arc<CryptoProvider>,
    expiry: &IntGauge,
) -> Result<Served, TlsError> {
    let chain = read_chain(config)?;
    let not_after = leaf_not_after(&chain);
    let certified = certify(config, chain, read_key(config)?, provider)?;
    let mut server = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(TlsError::Build)?
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(SingleCertAndKey::from(certified)));
    server.alpn_protocols = ALPN.iter().map(|p| p.to_vec()).collect();
    // Only for a pair that is about to be served: a refused reload keeps the old expiry.
    note_expiry(config, not_after, expiry);
    Ok(Served {
        config: Arc::new(server),
        not_after,
    })
}

/// Why a TLS handshake did not complete. Clients control this, so it is counted and logged at
/// DEBUG only.
#[derive(Debug, thiserror::Error)]
pub enum HandshakeError {
    #[error("TLS handshake timed out")]
    Timeout,
    #[error("TLS handshake failed")]
    Failed(#[source] io::Error),
}

/// Counters for handshakes and reloads; label values are closed sets.
#[derive(Clone)]
pub struct TlsMetrics {
    handshakes: IntCounterVec,
    reloads: IntCounterVec,
    expiry: IntGauge,
}

// === impl TlsMetrics ===

impl TlsMetrics {
    pub fn register(registry: &Registry) -> Result<Self, prometheus::Error> {
        let handshakes = IntCounterVec::new(
            Opts::new(
                "hookgate_tls_handshakes_total",
                "TLS handshakes on the main listener by outcome (ok, failed, timeout).",
            ),
            &["outcome"],
        )?;
        let reloads = IntCounterVec::new(
            Opts::new(
                "hookgate_tls_reloads_total",
                "TLS certificate reloads by outcome (ok, failed); a failed one keeps the old pair.",
            ),
            &["outcome"],
        )?;
        let expiry = IntGauge::new(
            "hookgate_tls_certificate_expiry_timestamp_seconds",
            "notAfter of the served TLS certificate (the leaf), in Unix seconds.",
        )?;
        registry.register(Box::new(handshakes.clone()))?;
        registry.register(Box::new(reloads.clone()))?;
        registry.register(Box::new(expiry.clone()))?;
        Ok(Self {
            handshakes,
            reloads,
            expiry,
        })
    }
}

/// The main listener's TLS side; cheap to clone (all clones share the current config).
#[derive(Clone)]
pub struct TlsAcceptor {
    inner: Arc<AcceptorInner>,
}

struct AcceptorInner {
    files: TlsConfig,
    provider: Arc<CryptoProvider>,
    /// Swapped whole by `reload`; readers clone the `Arc` and release the lock at once, so the
    /// lock is never held across a handshake or an `.await`.
    current: RwLock<Served>,
    metrics: TlsMetrics,
}

// === impl TlsAcceptor ===

impl TlsAcceptor {
    /// Loads the pair; fails if either file is unreadable or the key does not match.
    pub fn load(files: &TlsConfig, metrics: TlsMetrics) -> Result<Self, TlsError> {
        let provider = provider();
        let current = build_server_config(files, &provider, &metrics.expiry)?;
        Ok(Self {
            inner: Arc::new(AcceptorInner {
                files: files.clone(),
                provider,
                current: RwLock::new(current),
                metrics,
            }),
        })
    }

    /// Re-reads both files and swaps them in if they load and match; otherwise keeps the
    /// current pair and returns why (invariant 1). Blocking file I/O: call it off the async
    /// workers.
    pub fn reload(&self) -> Result<(), TlsError> {
        let inner = &self.inner;
        match build_server_config(&inner.files, &inner.provider, &inner.metrics.expiry) {
            Ok(next) => {
                // A poisoned lock only means a panic elsewhere while swapping an `Arc`, which
                // cannot leave it half-written; keep serving.
                *inner
                    .current
                    .write()
                    .unwrap_or_else(PoisonError::into_inner) = next;
                inner.metrics.reloads.with_label_values(&["ok"]).inc();
                Ok(())
            }
            Err(e) => {
                inner.metrics.reloads.with_label_values(&["failed"]).inc();
                Err(e)
            }
        }
    }

    fn current(&self) -> Arc<rustls::ServerConfig> {
        self.served().config
    }

    fn served(&self) -> Served {
        self.inner
            .current
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Looks at the served certificate's expiry again and warns if it is near or past: a
    /// gateway can serve one pair for months, longer than the warning window.
    pub fn recheck_expiry(&self) -> Expiry {
        warn_expiry(&self.inner.files, self.served().not_after, false)
    }

    /// Runs the server handshake on `stream` with the config current at this moment
    /// (invariant 2), giving up after `timeout`.
    pub async fn accept(
        &self,
        stream: TcpStream,
        timeout: Duration,
    ) -> Result<TlsStream<TcpStream>, HandshakeError> {
        let acceptor = tokio_rustls::TlsAcceptor::from(self.current());
        let result = match tokio::time::timeout(timeout, acceptor.accept(stream)).await {
            Ok(Ok(stream)) => Ok(stream),
            Ok(Err(e)) => Err(HandshakeError::Failed(e)),
            Err(_) => Err(HandshakeError::Timeout),
        };
        let outcome = match &result {
            Ok(_) => "ok",
            Err(HandshakeError::Failed(_)) => "failed",
            Err(HandshakeError::Timeout) => "timeout",
        };
        self.inner
            .metrics
            .handshakes
            .with_label_values(&[outcome])
            .inc();
        result
    }
}

/// Spawns the task that reloads `acceptor` on every [`Shutdown::request_reload`] (SIGHUP) until
/// the drain starts, and looks at the served certificate's expiry every `recheck_every`.
/// Requests arriving during a reload coalesce into one more. Without TLS the task only says
/// there is nothing to reload, so a SIGHUP is never silently ignored.
pub fn spawn_reloader(acceptor: Option<TlsAcceptor>, shutdown: &Shutdown, recheck_every: Duration) {
    let requests = shutdown.clone();
    shutdown.tracker().spawn(async move {
        // The load has just warned if need be; the first recheck is one period later.
        let start = tokio::time::Instant::now() + recheck_every;
        let mut recheck = tokio::time::interval_at(start, recheck_every);
        // After a suspended VM resumes, one recheck, not one per missed period.
        recheck.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = requests.reload_requested() => {}
                _ = recheck.tick(), if acceptor.is_some() => {
                    if let Some(acceptor) = &acceptor {
                        acceptor.recheck_expiry();
                    }
                    continue;
                }
                _ = requests.cancelled() => return,
            }
            let Some(acceptor) = &acceptor else {
                tracing::info!("Nothing to reload: TLS is off.");
                continue;
            };
            let this = acceptor.clone();
            match tokio::task::spawn_blocking(move || this.reload()).await {
                Ok(Ok(())) => tracing::info!(
                    cert = %acceptor.inner.files.cert.display(),
                    "TLS certificate reloaded."
                ),
                Ok(Err(e)) => tracing::warn!(
                    key = e.config_key(),
                    error = %render_chain(&e),
                    "TLS reload failed; still serving the previous certificate."
                ),
                Err(e) => tracing::error!(error = %e, "TLS reload task failed."),
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine as _;

    /// PEM armour for `der` (rcgen's own PEM output needs a feature we do not enable).
    fn pem(label: &str, der: &[u8]) -> String {
        let b64 = base64::engine::general_purpose::STANDARD.encode(der);
        let mut out = format!("-----BEGIN {label}-----\n");
        for line in b64.as_bytes().chunks(64) {
            out.push_str(std::str::from_utf8(line).expect("base64 is ASCII"));
            out.push('\n');
        }
        out.push_str(&format!("-----END {label}-----\n"));
        out
    }

    /// A self-signed `localhost` certificate and its key, as PEM. (Which certificate a
    /// connection is served is checked end to end in `tests/it/tls.rs`.)
    fn self_signed(name: &str) -> (String, String) {
        self_signed_until(name, None)
    }

    /// Like [`self_signed`], valid until 1 January of `year` (rcgen's far future if `None`).
    fn self_signed_until(name: &str, year: Option<i32>) -> (String, String) {
        self_signed_expiring(name, year.map(|y| rcgen::date_time_ymd(y, 1, 1)))
    }

    fn self_signed_expiring(
        name: &str,
        not_after: Option<time::OffsetDateTime>,
    ) -> (String, String) {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, name);
        if let Some(not_after) = not_after {
            params.not_after = not_after;
        }
        let cert = params.self_signed(&key).unwrap();
        (
            pem("CERTIFICATE", cert.der()),
            pem("PRIVATE KEY", &key.serialize_der()),
        )
    }

    fn write_pair(dir: &Path, cert: &str, key: &str) -> TlsConfig {
        let files = TlsConfig {
            cert: dir.join("cert.pem"),
            key: dir.join("key.pem"),
        };
        std::fs::write(&files.cert, cert).unwrap();
        std::fs::write(&files.key, key).unwrap();
        files
    }

    fn only_error(files: &TlsConfig) -> TlsError {
        let mut errors = check(files).unwrap_err();
        assert_eq!(errors.len(), 1, "{errors:?}");
        errors.remove(0)
    }

    fn acceptor(files: &TlsConfig) -> TlsAcceptor {
        let metrics = TlsMetrics::register(&Registry::new()).unwrap();
        TlsAcceptor::load(files, metrics).unwrap()
    }

    #[test]
    fn a_matching_pair_loads_and_offers_h2_then_http1() {
        let dir = tempfile::tempdir().unwrap();
        let (cert, key) = self_signed("one");
        let files = write_pair(dir.path(), &cert, &key);
        let acceptor = acceptor(&files);
        assert_eq!(
            acceptor.current().alpn_protocols,
            [b"h2".to_vec(), b"http/1.1".to_vec()]
        );
    }

    #[test]
    fn a_key_for_another_certificate_is_a_mismatch_under_the_key_path() {
        let dir = tempfile::tempdir().unwrap();
        let (cert, _) = self_signed("one");
        let (_, other_key) = self_signed("two");
        let files = write_pair(dir.path(), &cert, &other_key);
        let err = only_error(&files);
        assert!(matches!(err, TlsError::KeyMismatch { .. }), "{err:?}");
        assert_eq!(err.config_key(), "server.tls.key");
        assert!(err.to_string().contains("does not match"), "{err}");
    }

    #[test]
    fn missing_files_are_each_named_under_their_own_key() {
        let dir = tempfile::tempdir().unwrap();
        let files = TlsConfig {
            cert: dir.path().join("absent-cert.pem"),
            key: dir.path().join("absent-key.pem"),
        };
        let errors = check(&files).unwrap_err();
        let shown: Vec<_> = errors
            .iter()
            .map(|e| (e.config_key(), render_chain(e)))
            .collect();
        assert_eq!(shown.len(), 2, "{shown:?}");
        assert_eq!(shown[0].0, "server.tls.cert");
        assert!(shown[0].1.contains("absent-cert.pem"), "{shown:?}");
        assert_eq!(shown[1].0, "server.tls.key");
        assert!(shown[1].1.contains("absent-key.pem"), "{shown:?}");
    }

    #[test]
    fn a_key_file_without_a_key_says_so_and_does_not_echo_it() {
        let dir = tempfile::tempdir().unwrap();
        let (cert, _) = self_signed("one");
        let files = write_pair(dir.path(), &cert, "SECRET-not-a-key\n");
        let err = only_error(&files);
        assert!(matches!(err, TlsError::NoKey { .. }), "{err:?}");
        assert!(!render_chain(&err).contains("SECRET"));
    }

    #[test]
    fn a_malformed_pem_key_is_described_without_its_contents() {
        let dir = tempfile::tempdir().unwrap();
        let (cert, _) = self_signed("one");
        let broken = "-----BEGIN PRIVATE KEY-----\nSECRETSECRET!!\n-----END PRIVATE KEY-----\n";
        let files = write_pair(dir.path(), &cert, broken);
        let err = only_error(&files);
        assert_eq!(err.config_key(), "server.tls.key");
        let text = render_chain(&err);
        assert!(!text.contains("SECRET"), "{text}");
    }

    #[test]
    fn a_directory_is_refused_without_reading_it() {
        let dir = tempfile::tempdir().unwrap();
        let (_, key) = self_signed("one");
        std::fs::write(dir.path().join("key.pem"), key).unwrap();
        let files = TlsConfig {
            cert: dir.path().to_owned(),
            key: dir.path().join("key.pem"),
        };
        let err = only_error(&files);
        assert!(matches!(err, TlsError::NotAFile { .. }), "{err:?}");
        assert_eq!(err.config_key(), "server.tls.cert");
    }

    #[test]
    fn the_leafs_expiry_is_exported_and_a_refused_reload_keeps_it() {
        let pair = |name: &str, year: i32| self_signed_until(name, Some(year));
        let dir = tempfile::tempdir().unwrap();
        let (cert1, key1) = pair("one", 2030);
        let files = write_pair(dir.path(), &cert1, &key1);
        let registry = Registry::new();
        let acceptor = TlsAcceptor::load(&files, TlsMetrics::register(&registry).unwrap()).unwrap();
        let expiry = || {
            registry
                .gather()
                .iter()
                .find(|f| f.name() == "hookgate_tls_certificate_expiry_timestamp_seconds")
                .map(|f| f.get_metric()[0].get_gauge().get_value())
        };
        assert_eq!(expiry(), Some(1_893_456_000.0)); // 2030-01-01T00:00:00Z

        let (cert2, key2) = pair("two", 2031);
        write_pair(dir.path(), &cert2, &key1);
        acceptor.reload().unwrap_err();
        assert_eq!(expiry(), Some(1_893_456_000.0));

        write_pair(dir.path(), &cert2, &key2);
        acceptor.reload().unwrap();
        assert_eq!(expiry(), Some(1_924_992_000.0)); // 2031-01-01T00:00:00Z
    }

    #[test]
    fn expiry_is_valid_then_soon_within_the_warning_window_then_expired() {
        let day = 86_400;
        let warn = EXPIRY_WARNING.as_secs() as i64;
        assert_eq!(expiry_at(None, 0), Expiry::Unknown);
        assert_eq!(expiry_at(Some(1_000_000), 1_000_000 - warn), Expiry::Valid);
        assert_eq!(
            expiry_at(Some(1_000_000), 1_000_000 - warn + 1),
            Expiry::Soon { days_left: 13 }
        );
        assert_eq!(
            expiry_at(Some(1_000_000), 1_000_000 - 1),
            Expiry::Soon { days_left: 0 }
        );
        assert_eq!(
            expiry_at(Some(1_000_000), 1_000_000),
            Expiry::Expired { days_ago: 0 }
        );
        assert_eq!(
            expiry_at(Some(1_000_000), 1_000_000 + 3 * day),
            Expiry::Expired { days_ago: 3 }
        );
    }

    #[test]
    fn a_recheck_judges_the_pair_being_served() {
        let dir = tempfile::tempdir().unwrap();
        let soon =
            time::OffsetDateTime::now_utc() + time::Duration::days(3) + time::Duration::hours(1);
        let (cert, key) = self_signed_expiring("soon", Some(soon));
        let files = write_pair(dir.path(), &cert, &key);
        let acceptor = acceptor(&files);
        assert_eq!(acceptor.recheck_expiry(), Expiry::Soon { days_left: 3 });

        let (cert, key) = self_signed_until("renewed", Some(2099));
        write_pair(dir.path(), &cert, &key);
        acceptor.reload().unwrap();
        assert_eq!(acceptor.recheck_expiry(), Expiry::Valid);

        // A refused reload leaves the served pair, and so its expiry, in place.
        let (cert, _) = self_signed_until("expired", Some(2020));
        write_pair(dir.path(), &cert, &key);
        acceptor.reload().unwrap_err();
        assert_eq!(acceptor.recheck_expiry(), Expiry::Valid);

        let (cert, key) = self_signed_until("expired", Some(2020));
        write_pair(dir.path(), &cert, &key);
        acceptor.reload().unwrap();
        assert!(matches!(
            acceptor.recheck_expiry(),
            Expiry::Expired { days_ago } if days_ago > 365
        ));
    }

    /// Log output, kept in memory for the test to count lines in.
    #[derive(Clone, Default)]
    struct Captured(Arc<std::sync::Mutex<Vec<u8>>>);

    impl io::Write for Captured {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    impl Captured {
        fn count(&self, needle: &str) -> usize {
            String::from_utf8_lossy(&self.0.lock().unwrap())
                .matches(needle)
                .count()
        }
    }

    /// The reloader warns again while a near-expiry pair stays served, not only when it loads.
    #[tokio::test]
    async fn the_reloader_rechecks_the_expiry_every_period_until_shutdown() {
        let logs = Captured::default();
        let writer = logs.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .finish();
        // A current-thread runtime: the spawned reloader logs on this thread, under this guard.
        let _guard = tracing::subscriber::set_default(subscriber);
        let dir = tempfile::tempdir().unwrap();
        let soon = time::OffsetDateTime::now_utc() + time::Duration::days(2);
        let (cert, key) = self_signed_expiring("soon", Some(soon));
        let files = write_pair(dir.path(), &cert, &key);
        let acceptor = acceptor(&files);
        let warning = "The TLS certificate expires soon";
        assert_eq!(logs.count(warning), 1, "the load warns once");

        let shutdown = Shutdown::new();
        spawn_reloader(Some(acceptor), &shutdown, Duration::from_millis(40));
        tokio::time::sleep(Duration::from_millis(300)).await;
        let warned = logs.count(warning);
        assert!(warned >= 3, "rechecks warned {} times", warned - 1);

        shutdown.trigger();
        shutdown.tracker().close();
        tokio::time::timeout(Duration::from_secs(5), shutdown.tracker().wait())
            .await
            .expect("the reloader stops with the drain");
        let after = logs.count(warning);
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert_eq!(logs.count(warning), after, "no recheck after shutdown");
    }

    #[test]
    fn reload_swaps_in_a_new_pair_and_keeps_the_old_one_when_the_new_is_broken() {
        let dir = tempfile::tempdir().unwrap();
        let (cert1, key1) = self_signed("one");
        let files = write_pair(dir.path(), &cert1, &key1);
        let acceptor = acceptor(&files);
        let before = acceptor.current();

        // A certificate whose key does not match: refused, the old config stays.
        let (cert2, key2) = self_signed("two");
        write_pair(dir.path(), &cert2, &key1);
        let err = acceptor.reload().unwrap_err();
        assert!(matches!(err, TlsError::KeyMismatch { .. }), "{err:?}");
        assert!(Arc::ptr_eq(&before, &acceptor.current()));

        write_pair(dir.path(), &cert2, &key2);
        acceptor.reload().unwrap();
        assert!(!Arc::ptr_eq(&before, &acceptor.current()));
    }
}
