//! Delivery HTTP client: sends one webhook attempt and reports what happened.
//!
//! Owns the outbound transport: a pooled hyper-util client over rustls (webpki
//! roots plus any configured extra roots, HTTP/1.1 and HTTP/2 via ALPN), the
//! SSRF-guarded connector under it, the per-attempt timeout, and turning every
//! outcome, failures included, into an [`AttemptResult`].
//!
//! Invariants:
//! - Every address is checked with [`SsrfPolicy::check`] at connect time, on
//!   the address actually dialled: host names are resolved here and each
//!   resolved IP is checked, IP-literal hosts are checked as they are. So a
//!   DNS answer that changes between destination creation and delivery
//!   (rebinding) is still caught, and pooled connections only ever lead to
//!   addresses that passed the check when they were opened.
//! - Redirects are never followed; a 3xx is an answer like any other, because
//!   following it would reach an address the destination owner chose after
//!   the check.
//! - [`DeliveryClient::send`] never fails and never panics: a bad URL, a
//!   refused address, a timeout or a broken connection all come back as an
//!   [`AttemptResult`] with an [`AttemptError`].
//! - The whole attempt (resolve, connect, TLS, send, response head, body
//!   read) fits in [`OutboundRequest::timeout`]. At most
//!   [`RESPONSE_BODY_READ_LIMIT`] bytes of a response body are read and the
//!   first [`RESPONSE_BODY_KEEP`] kept.
//! - Error messages never include request headers, the body or the URL (which
//!   may carry tokens in its path or query); they name addresses and causes.
//!
//! Deliberately not here: signing, retry decisions ([`crate::delivery::retry`]
//! classifies the [`AttemptOutcome`]), scheduling, metrics and logging, proxies,
//! client certificates, and cleartext HTTP/2 (h2c): plain `http` URLs speak
//! HTTP/1.1.

use std::error::Error as StdError;
use std::fmt;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::header::{CONTENT_LENGTH, RETRY_AFTER, TRANSFER_ENCODING, USER_AGENT};
use http::uri::Scheme;
use http::{HeaderMap, HeaderValue, Method, Request, Uri};
use http_body_util::{BodyExt, Full};
use hyper_rustls::{HttpsConnector, HttpsConnectorBuilder};
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use rustls::pki_types::CertificateDer;
use rustls::RootCertStore;
use tokio::net::TcpStream;

use crate::delivery::retry::{parse_retry_after, AttemptOutcome};
use crate::delivery::ssrf::{literal_host_ip, SsrfBlocked, SsrfPolicy};

/// The `user-agent` sent when the caller sets none.
pub const DEFAULT_USER_AGENT: &str = concat!("hookgate/", env!("CARGO_PKG_VERSION"));
/// How much of a response body is kept for the attempt log.
pub const RESPONSE_BODY_KEEP: usize = 4 * 1024;
/// How much of a response body is read before giving up on the rest. Reading
/// past [`RESPONSE_BODY_KEEP`] lets a moderately chatty receiver's connection
/// go back to the pool; beyond this the connection is dropped instead.
pub const RESPONSE_BODY_READ_LIMIT: usize = 64 * 1024;
/// Longest [`AttemptError::message`], in characters.
const MAX_ERROR_MESSAGE_CHARS: usize = 300;
/// How deep an error's cause chain is followed; guards against a cycle.
const MAX_ERROR_CHAIN: usize = 16;

/// How the delivery client is built. One per process: see [`DeliveryClient`].
#[derive(Clone, Debug)]
pub struct ClientConfig {
    /// Which addresses deliveries may reach.
    pub ssrf: SsrfPolicy,
    /// Limit for the DNS lookup, and separately for each TCP connect to one
    /// resolved address. The attempt timeout still bounds the total.
    pub connect_timeout: Duration,
    /// How long an unused pooled connection is kept open.
    pub pool_idle_timeout: Duration,
    /// Most idle connections kept per scheme and host.
    pub pool_max_idle_per_host: usize,
    /// Trusted in addition to the webpki roots, for internal CAs and tests.
    pub extra_root_certs: Vec<CertificateDer<'static>>,
    /// Sent as `user-agent` unless the request sets its own.
    pub user_agent: String,
}

/// Why [`DeliveryClient::new`] refused a configuration.
#[derive(Debug, thiserror::Error)]
pub enum ClientBuildError {
    #[error("user_agent is not a valid header value")]
    InvalidUserAgent(#[source] http::header::InvalidHeaderValue),
    #[error("extra root certificate #{index} is not usable")]
    InvalidRootCert {
        index: usize,
        #[source]
        source: rustls::Error,
    },
    #[error("TLS configuration rejected")]
    Tls(#[source] rustls::Error),
}

/// Sends webhook attempts. Cloning is cheap and clones share one connection
/// pool, so build one at startup and hand clones to every worker.
#[derive(Clone)]
pub struct DeliveryClient {
    inner: Arc<Inner>,
}

struct Inner {
    http: Client<HttpsConnector<GuardedConnector>, Full<Bytes>>,
    user_agent: HeaderValue,
}

/// One attempt to make: always a `POST` of `body` to `url`.
pub struct OutboundRequest {
    /// Absolute `http` or `https` URL.
    pub url: String,
    /// Sent as given, except that `content-length` is always set from the body
    /// and `transfer-encoding` dropped (the body is never chunked).
    pub headers: HeaderMap,
    pub body: Bytes,
    /// Budget for the whole attempt, including reading the response body.
    pub timeout: Duration,
}

/// What one attempt produced.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AttemptResult {
    /// What the retry policy classifies.
    pub outcome: AttemptOutcome,
    /// The status of the response head, if one arrived. It can be `Some`
    /// while `outcome` is not `Response`: the head came but reading the body
    /// then failed or ran out of time.
    pub status_code: Option<u16>,
    /// Wall time of the whole attempt.
    pub duration: Duration,
    /// The first [`RESPONSE_BODY_KEEP`] bytes of the response body at most.
    pub response_body: Vec<u8>,
    /// Why there is no complete response; `None` exactly when `outcome` is
    /// `Response`.
    pub error: Option<AttemptError>,
}

/// A failed attempt, short and safe for the attempt log and API.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{kind}: {message}")]
pub struct AttemptError {
    pub kind: ErrorKind,
    /// Human-readable cause; never contains request headers, body or URL.
    pub message: String,
}

/// The failure classes an attempt can end in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// The attempt timeout ran out before a complete response.
    Timeout,
    /// No TCP connection to any allowed address (refused, unreachable, timed out).
    Connect,
    /// The host name did not resolve.
    Dns,
    /// The TLS handshake failed, e.g. an untrusted or mismatched certificate.
    Tls,
    /// The SSRF policy allows none of the destination's addresses; nothing was sent.
    SsrfBlocked,
    /// The URL is malformed, not http(s), or carries credentials; nothing was sent.
    InvalidUrl,
    /// The destination spoke malformed HTTP.
    Protocol,
    /// Anything else, e.g. the connection was reset mid-response.
    Other,
}

/// The connector under TLS: resolves, applies the SSRF policy, dials.
#[derive(Clone)]
struct GuardedConnector {
    policy: Arc<SsrfPolicy>,
    connect_timeout: Duration,
}

/// Why [`GuardedConnector`] produced no connection. Its variants are what
/// lets [`describe`] tell SSRF and DNS failures from other connect errors.
#[derive(Debug, thiserror::Error)]
enum ConnectError {
    #[error("URL has no host")]
    MissingHost,
    #[error("DNS lookup for {host} failed")]
    Dns {
        host: String,
        #[source]
        source: io::Error,
    },
    #[error("DNS lookup for {host} timed out after {}", humantime::format_duration(*timeout))]
    DnsTimeout { host: String, timeout: Duration },
    #[error("DNS lookup for {host} returned no addresses")]
    NoAddresses { host: String },
    #[error("SSRF policy allows none of the {checked} address(es) of the destination")]
    Ssrf {
        checked: usize,
        #[source]
        first: SsrfBlocked,
    },
    #[error("connect to {addr} failed")]
    Tcp {
        addr: SocketAddr,
        #[source]
        source: io::Error,
    },
    #[error("connect to {addr} timed out after {}", humantime::format_duration(*timeout))]
    TcpTimeout { addr: SocketAddr, timeout: Duration },
}

/// What an attempt learnt before it ended; kept outside the timed future so a
/// timeout mid-body still reports the status and the body read so far.
#[derive(Default)]
struct Progress {
    status: Option<u16>,
    body: Vec<u8>,
}

/// Status and `Retry-After` of a response whose body was read to the end or
/// to the read limit.
struct CompleteResponse {
    status: u16,
    retry_after: Option<Duration>,
}

// === impl ClientConfig ===

impl Default for ClientConfig {
    fn default() -> Self {
        Self {
            ssrf: SsrfPolicy::default(),
            connect_timeout: Duration::from_secs(5),
            pool_idle_timeout: Duration::from_secs(90),
            pool_max_idle_per_host: 32,
            extra_root_certs: Vec::new(),
            user_agent: DEFAULT_USER_AGENT.to_owned(),
        }
    }
}

// === impl DeliveryClient ===

impl DeliveryClient {
    /// Builds the TLS configuration and the connection pool. Needs no runtime;
    /// [`DeliveryClient::send`] must run inside a Tokio runtime.
    pub fn new(config: ClientConfig) -> Result<Self, ClientBuildError> {
        let user_agent = HeaderValue::from_str(&config.user_agent)
            .map_err(ClientBuildError::InvalidUserAgent)?;

        let mut roots = RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
        };
        for (index, cert) in config.extra_root_certs.into_iter().enumerate() {
            roots
                .add(cert)
                .map_err(|source| ClientBuildError::InvalidRootCert { index, source })?;
        }
        // An explicit provider rather than the process-wide default, so the
        // client works without anyone calling `install_default` first.
        let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .map_err(ClientBuildError::Tls)?
        .with_root_certificates(roots)
        .with_no_client_auth();

        let connector = GuardedConnector {
            policy: Arc::new(config.ssrf),
            connect_timeout: config.connect_timeout,
        };
        // `with_tls_config` panics if ALPN is preset; `tls` is built above
        // without it, and `enable_http2` sets it to h2 + http/1.1.
        let https = HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .enable_http2()
            .wrap_connector(connector);

        let http = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(config.pool_idle_timeout)
            .pool_max_idle_per_host(config.pool_max_idle_per_host)
            // Without a pool timer idle connections are only noticed as
            // expired when next checked out, so they would linger open.
            .pool_timer(TokioTimer::new())
            .timer(TokioTimer::new())
            .build(https);

        Ok(Self {
            inner: Arc::new(Inner { http, user_agent }),
        })
    }

    /// Makes one delivery attempt. Every failure is reported in the result.
    pub async fn send(&self, request: OutboundRequest) -> AttemptResult {
        let started = Instant::now();
        let OutboundRequest {
            url,
            headers,
            body,
            timeout,
        } = request;

        let uri = match parse_url(&url) {
            Ok(uri) => uri,
            Err(error) => return Progress::default().finish(Err(error), started.elapsed()),
        };
        let request = self.build_request(uri, headers, body);

        let mut progress = Progress::default();
        let result =
            match tokio::time::timeout(timeout, self.exchange(request, &mut progress)).await {
                Ok(result) => result,
                Err(_elapsed) => Err(AttemptError {
                    kind: ErrorKind::Timeout,
                    message: if progress.status.is_some() {
                        format!(
                            "response body not complete within {}",
                            humantime::format_duration(timeout)
                        )
                    } else {
                        format!("no response within {}", humantime::format_duration(timeout))
                    },
                }),
            };
        progress.finish(result, started.elapsed())
    }

    fn build_request(&self, uri: Uri, headers: HeaderMap, body: Bytes) -> Request<Full<Bytes>> {
        let mut request = Request::new(Full::new(Bytes::new()));
        *request.method_mut() = Method::POST;
        *request.uri_mut() = uri;
        *request.headers_mut() = headers;
        let headers = request.headers_mut();
        headers.remove(TRANSFER_ENCODING);
        headers.insert(CONTENT_LENGTH, HeaderValue::from(body.len()));
        if !headers.contains_key(USER_AGENT) {
            headers.insert(USER_AGENT, self.inner.user_agent.clone());
        }
        *request.body_mut() = Full::new(body);
        request
    }

    /// Sends the request and reads the response, recording progress as it
    /// goes. Not timed itself: [`DeliveryClient::send`] wraps it.
    async fn exchange(
        &self,
        request: Request<Full<Bytes>>,
        progress: &mut Progress,
    ) -> Result<CompleteResponse, AttemptError> {
        let response = self
            .inner
            .http
            .request(request)
            .await
            .map_err(|err| describe(&err))?;

        let status = response.status().as_u16();
        progress.status = Some(status);
        let retry_after = response
            .headers()
            .get(RETRY_AFTER)
            .and_then(|value| parse_retry_after(value.as_bytes(), unix_now_s()));

        let mut body = response.into_body();
        let mut read = 0usize;
        while read < RESPONSE_BODY_READ_LIMIT {
            let Some(frame) = body.frame().await else {
                break;
            };
            let frame = frame.map_err(|err| describe(&err))?;
            // Trailers carry nothing the attempt log wants.
            if let Ok(data) = frame.into_data() {
                read = read.saturating_add(data.len());
                let room = RESPONSE_BODY_KEEP.saturating_sub(progress.body.len());
                progress
                    .body
                    .extend_from_slice(&data[..room.min(data.len())]);
            }
        }
        // Past the limit the rest is abandoned. On HTTP/1.1 hyper then drains
        // only what is already buffered and otherwise closes the connection,
        // as it cannot be reused mid-message; on HTTP/2 just this stream is
        // reset.
        Ok(CompleteResponse {
            status,
            retry_after,
        })
    }
}

impl fmt::Debug for DeliveryClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DeliveryClient")
            .field("user_agent", &self.inner.user_agent)
            .finish_non_exhaustive()
    }
}

// === impl OutboundRequest ===

/// Shows header names only and hides the URL: both may carry secrets.
impl fmt::Debug for OutboundRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OutboundRequest")
            .field("url", &"<redacted>")
            .field("header_names", &self.headers.keys().collect::<Vec<_>>())
            .field("body_len", &self.body.len())
            .field("timeout", &self.timeout)
            .finish()
    }
}

// === impl Progress ===

impl Progress {
    fn finish(
        self,
        result: Result<CompleteResponse, AttemptError>,
        duration: Duration,
    ) -> AttemptResult {
        match result {
            Ok(CompleteResponse {
                status,
                retry_after,
            }) => AttemptResult {
                outcome: AttemptOutcome::Response {
                    status,
                    retry_after,
                },
                status_code: Some(status),
                duration,
                response_body: self.body,
                error: None,
            },
            Err(error) => AttemptResult {
                outcome: error.kind.outcome(),
                status_code: self.status,
                duration,
                response_body: self.body,
                error: Some(error),
            },
        }
    }
}

// === impl ErrorKind ===

impl ErrorKind {
    /// Stable name for logs, metrics and the API.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Timeout => "timeout",
            ErrorKind::Connect => "connect",
            ErrorKind::Dns => "dns",
            ErrorKind::Tls => "tls",
            ErrorKind::SsrfBlocked => "ssrf_blocked",
            ErrorKind::InvalidUrl => "invalid_url",
            ErrorKind::Protocol => "protocol",
            ErrorKind::Other => "other",
        }
    }

    /// The coarser class the retry policy works with.
    pub fn outcome(self) -> AttemptOutcome {
        match self {
            ErrorKind::Timeout => AttemptOutcome::Timeout,
            ErrorKind::Connect | ErrorKind::Dns => AttemptOutcome::Connect,
            ErrorKind::Tls => AttemptOutcome::Tls,
            ErrorKind::SsrfBlocked => AttemptOutcome::SsrfBlocked,
            ErrorKind::InvalidUrl | ErrorKind::Protocol | ErrorKind::Other => AttemptOutcome::Other,
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

// === impl GuardedConnector ===

impl tower::Service<Uri> for GuardedConnector {
    type Response = TokioIo<TcpStream>;
    type Error = ConnectError;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        let this = self.clone();
        Box::pin(async move { this.connect(&uri).await })
    }
}

impl GuardedConnector {
    async fn connect(&self, uri: &Uri) -> Result<TokioIo<TcpStream>, ConnectError> {
        let host = uri.host().ok_or(ConnectError::MissingHost)?;
        let default_port = if uri.scheme() == Some(&Scheme::HTTPS) {
            443
        } else {
            80
        };
        let port = uri.port_u16().unwrap_or(default_port);

        // `literal_host_ip` also reads the legacy numeric IPv4 spellings a
        // resolver would turn into an address, so they get the same check.
        let candidates = match literal_host_ip(host) {
            Some(ip) => vec![SocketAddr::new(ip, port)],
            None => self.resolve(host, port).await?,
        };

        let mut first_blocked = None;
        let mut allowed = Vec::with_capacity(candidates.len());
        for addr in &candidates {
            match self.policy.check(addr.ip()) {
                Ok(()) => allowed.push(*addr),
                Err(blocked) => {
                    first_blocked.get_or_insert(blocked);
                }
            }
        }

        let mut first_error = None;
        for addr in allowed {
            match self.dial(addr).await {
                Ok(stream) => return Ok(TokioIo::new(stream)),
                Err(error) => {
                    first_error.get_or_insert(error);
                }
            }
        }
        // The first failure is reported: it is the destination's preferred
        // address and usually the telling one.
        Err(match (first_error, first_blocked) {
            (Some(error), _) => error,
            (None, Some(first)) => ConnectError::Ssrf {
                checked: candidates.len(),
                first,
            },
            (None, None) => ConnectError::NoAddresses {
                host: host.to_owned(),
            },
        })
    }

    async fn resolve(&self, host: &str, port: u16) -> Result<Vec<SocketAddr>, ConnectError> {
        let lookup = tokio::net::lookup_host((host, port));
        match tokio::time::timeout(self.connect_timeout, lookup).await {
            Ok(Ok(addrs)) => {
                let addrs: Vec<SocketAddr> = addrs.collect();
                if addrs.is_empty() {
                    Err(ConnectError::NoAddresses {
                        host: host.to_owned(),
                    })
                } else {
                    Ok(addrs)
                }
            }
            Ok(Err(source)) => Err(ConnectError::Dns {
                host: host.to_owned(),
                source,
            }),
            Err(_elapsed) => Err(ConnectError::DnsTimeout {
                host: host.to_owned(),
                timeout: self.connect_timeout,
            }),
        }
    }

    async fn dial(&self, addr: SocketAddr) -> Result<TcpStream, ConnectError> {
        match tokio::time::timeout(self.connect_timeout, TcpStream::connect(addr)).await {
            Ok(Ok(stream)) => {
                // Best effort: without it a small body can wait on Nagle's
                // algorithm, but the connection works either way.
                let _ = stream.set_nodelay(true);
                Ok(stream)
            }
            Ok(Err(source)) => Err(ConnectError::Tcp { addr, source }),
            Err(_elapsed) => Err(ConnectError::TcpTimeout {
                addr,
                timeout: self.connect_timeout,
            }),
        }
    }
}

// === impl ConnectError ===

impl ConnectError {
    fn kind(&self) -> ErrorKind {
        match self {
            ConnectError::MissingHost => ErrorKind::InvalidUrl,
            ConnectError::Dns { .. }
            | ConnectError::DnsTimeout { .. }
            | ConnectError::NoAddresses { .. } => ErrorKind::Dns,
            ConnectError::Ssrf { .. } => ErrorKind::SsrfBlocked,
            ConnectError::Tcp { .. } | ConnectError::TcpTimeout { .. } => ErrorKind::Connect,
        }
    }
}

/// Parses and normalises the destination URL. The WHATWG parse turns legacy
/// IPv4 spellings and IDNs into their canonical forms before anything dials.
fn parse_url(raw: &str) -> Result<Uri, AttemptError> {
    let invalid = |message: String| AttemptError {
        kind: ErrorKind::InvalidUrl,
        message,
    };
    let mut url = url::Url::parse(raw).map_err(|e| invalid(format!("not a valid URL ({e})")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(invalid(format!(
            "unsupported URL scheme `{}`; only http and https are delivered",
            url.scheme()
        )));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(invalid("URL has no host".to_owned()));
    }
    // They would end up in logs and, over plain http, on the wire; creating
    // a destination refuses them too, so this only guards older rows.
    if !url.username().is_empty() || url.password().is_some() {
        return Err(invalid("URL must not contain credentials".to_owned()));
    }
    url.set_fragment(None);
    url.as_str()
        .parse::<Uri>()
        .map_err(|e| invalid(format!("URL is not usable for HTTP ({e})")))
}

/// Classifies a transport error and renders its cause chain as a message.
fn describe(err: &(dyn StdError + 'static)) -> AttemptError {
    let chain = cause_chain(err);
    AttemptError {
        kind: classify(&chain),
        message: render(&chain),
    }
}

/// `err` and its causes, outermost first.
///
/// `io::Error::source` skips the error it wraps and returns *that* error's
/// source, which would hide e.g. the `rustls::Error` inside the `io::Error`s
/// that tokio-rustls and hyper-rustls wrap handshake failures in; so wrapped
/// errors are entered through `get_ref` instead.
fn cause_chain<'a>(err: &'a (dyn StdError + 'static)) -> Vec<&'a (dyn StdError + 'static)> {
    std::iter::successors(Some(err), |&current: &&'a (dyn StdError + 'static)| {
        if let Some(inner) = current
            .downcast_ref::<io::Error>()
            .and_then(io::Error::get_ref)
        {
            let inner: &'a (dyn StdError + 'static) = inner;
            return Some(inner);
        }
        current.source()
    })
    .take(MAX_ERROR_CHAIN)
    .collect()
}

fn classify(chain: &[&(dyn StdError + 'static)]) -> ErrorKind {
    // Most specific first: our connector knows exactly what went wrong.
    if let Some(connect) = find::<ConnectError>(chain) {
        return connect.kind();
    }
    if find::<rustls::Error>(chain).is_some() {
        return ErrorKind::Tls;
    }
    if find::<tokio::time::error::Elapsed>(chain).is_some() {
        return ErrorKind::Timeout;
    }
    if let Some(hyper_err) = find::<hyper::Error>(chain) {
        if hyper_err.is_timeout() {
            return ErrorKind::Timeout;
        }
        if hyper_err.is_parse() || hyper_err.is_parse_status() {
            return ErrorKind::Protocol;
        }
    }
    let timed_out = chain.iter().any(|e| {
        e.downcast_ref::<io::Error>()
            .is_some_and(|io| io.kind() == io::ErrorKind::TimedOut)
    });
    if timed_out {
        return ErrorKind::Timeout;
    }
    // E.g. the peer closed the socket during the TLS handshake.
    let connect_phase = find::<hyper_util::client::legacy::Error>(chain)
        .is_some_and(hyper_util::client::legacy::Error::is_connect);
    if connect_phase {
        return ErrorKind::Connect;
    }
    ErrorKind::Other
}

fn find<'a, E: StdError + 'static>(chain: &[&'a (dyn StdError + 'static)]) -> Option<&'a E> {
    chain.iter().find_map(|e| e.downcast_ref::<E>())
}

/// Joins the chain's messages with `: `, leaving out hyper-util's generic
/// wrapper and repeats (an `io::Error` displays as the error it wraps).
fn render(chain: &[&(dyn StdError + 'static)]) -> String {
    let mut parts: Vec<String> = Vec::new();
    for err in chain {
        if err.is::<hyper_util::client::legacy::Error>() && chain.len() > 1 {
            continue;
        }
        let text = err.to_string();
        if parts.last() != Some(&text) && !text.is_empty() {
            parts.push(text);
        }
    }
    let message = parts.join(": ");
    if message.chars().count() <= MAX_ERROR_MESSAGE_CHARS {
        message
    } else {
        let mut cut: String = message.chars().take(MAX_ERROR_MESSAGE_CHARS - 3).collect();
        cut.push_str("...");
        cut
    }
}

fn unix_now_s() -> i64 {
    // A clock before 1970 is a broken host; 0 makes HTTP dates read as far
    // in the future, which the retry policy caps anyway.
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Mutex;

    use http::{Response, StatusCode, Version};
    use hyper::body::Incoming;
    use hyper::service::service_fn;
    use hyper_util::server::conn::auto;
    use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;
    use tokio::task::JoinHandle;

    use super::*;

    const PAYLOAD: &[u8] = br#"{"type":"ping"}"#;

    /// One scripted answer of the test server.
    #[derive(Clone)]
    struct Reply {
        status: u16,
        headers: Vec<(&'static str, String)>,
        body: Bytes,
        delay: Duration,
    }

    /// A request as the test server received it.
    struct Seen {
        method: Method,
        version: Version,
        path: String,
        headers: HeaderMap,
        body: Bytes,
    }

    /// A real hyper server on 127.0.0.1 answering request `n` with reply `n`
    /// of its script (the last one repeats). Speaks HTTP/1.1 and HTTP/2, and
    /// TLS when given a config.
    struct TestServer {
        addr: SocketAddr,
        accepts: Arc<AtomicUsize>,
        seen: Arc<Mutex<Vec<Seen>>>,
        task: JoinHandle<()>,
    }

    impl Reply {
        fn status(status: u16) -> Self {
            Self {
                status,
                headers: Vec::new(),
                body: Bytes::new(),
                delay: Duration::ZERO,
            }
        }

        fn header(mut self, name: &'static str, value: &str) -> Self {
            self.headers.push((name, value.to_owned()));
            self
        }

        fn body(mut self, body: impl Into<Bytes>) -> Self {
            self.body = body.into();
            self
        }

        fn delay(mut self, delay: Duration) -> Self {
            self.delay = delay;
            self
        }
    }

    impl TestServer {
        async fn start(script: Vec<Reply>) -> Self {
            Self::start_inner(script, None).await
        }

        async fn start_tls(script: Vec<Reply>, tls: Arc<rustls::ServerConfig>) -> Self {
            Self::start_inner(script, Some(tls)).await
        }

        async fn start_inner(script: Vec<Reply>, tls: Option<Arc<rustls::ServerConfig>>) -> Self {
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            let accepts = Arc::new(AtomicUsize::new(0));
            let seen = Arc::new(Mutex::new(Vec::new()));
            let script = Arc::new(script);
            let task = tokio::spawn({
                let accepts = Arc::clone(&accepts);
                let seen = Arc::clone(&seen);
                async move {
                    while let Ok((stream, _)) = listener.accept().await {
                        accepts.fetch_add(1, Ordering::SeqCst);
                        let seen = Arc::clone(&seen);
                        let script = Arc::clone(&script);
                        let service = service_fn(move |request: Request<Incoming>| {
                            let seen = Arc::clone(&seen);
                            let script = Arc::clone(&script);
                            async move { respond(request, &seen, &script).await }
                        });
                        let tls = tls.clone();
                        tokio::spawn(async move {
                            let builder = auto::Builder::new(TokioExecutor::new());
                            match tls {
                                Some(config) => {
                                    let acceptor = tokio_rustls::TlsAcceptor::from(config);
                                    if let Ok(stream) = acceptor.accept(stream).await {
                                        let _ = builder
                                            .serve_connection(TokioIo::new(stream), service)
                                            .await;
                                    }
                                }
                                None => {
                                    let _ = builder
                                        .serve_connection(TokioIo::new(stream), service)
                                        .await;
                                }
                            }
                        });
                    }
                }
            });
            Self {
                addr,
                accepts,
                seen,
                task,
            }
        }

        fn url(&self, path: &str) -> String {
            format!("http://{}{path}", self.addr)
        }

        fn accepts(&self) -> usize {
            self.accepts.load(Ordering::SeqCst)
        }

        fn requests(&self) -> usize {
            self.seen.lock().unwrap().len()
        }
    }

    impl Drop for TestServer {
        fn drop(&mut self) {
            self.task.abort();
        }
    }

    async fn respond(
        request: Request<Incoming>,
        seen: &Mutex<Vec<Seen>>,
        script: &[Reply],
    ) -> Result<Response<Full<Bytes>>, Infallible> {
        let (parts, body) = request.into_parts();
        let body = body
            .collect()
            .await
            .map(|b| b.to_bytes())
            .unwrap_or_default();
        let index = {
            let mut seen = seen.lock().unwrap();
            seen.push(Seen {
                method: parts.method,
                version: parts.version,
                path: parts
                    .uri
                    .path_and_query()
                    .map(ToString::to_string)
                    .unwrap_or_default(),
                headers: parts.headers,
                body,
            });
            seen.len() - 1
        };
        let reply = script
            .get(index)
            .or(script.last())
            .cloned()
            .unwrap_or_else(|| Reply::status(200));
        tokio::time::sleep(reply.delay).await;
        let mut response = Response::new(Full::new(reply.body));
        *response.status_mut() = StatusCode::from_u16(reply.status).unwrap();
        for (name, value) in reply.headers {
            response
                .headers_mut()
                .insert(name, HeaderValue::from_str(&value).unwrap());
        }
        Ok(response)
    }

    /// Accepts one connection, reads the whole request, writes `response`
    /// verbatim, then closes or (`stall`) keeps the socket open and silent.
    async fn raw_server(response: &'static [u8], stall: bool) -> (SocketAddr, JoinHandle<()>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            let (mut stream, _) = listener.accept().await.unwrap();
            let mut request = Vec::new();
            let mut buf = [0u8; 4096];
            // Reading it all first means closing sends FIN, not RST, so the
            // client sees exactly the bytes written.
            while !request.ends_with(PAYLOAD) {
                let n = stream.read(&mut buf).await.unwrap();
                assert!(n > 0, "client closed before sending the body");
                request.extend_from_slice(&buf[..n]);
            }
            stream.write_all(response).await.unwrap();
            stream.flush().await.unwrap();
            if stall {
                tokio::time::sleep(Duration::from_secs(30)).await;
            }
        });
        (addr, task)
    }

    /// A CA and a `localhost` / 127.0.0.1 leaf it signed, served with `alpn`.
    struct TestPki {
        ca: CertificateDer<'static>,
        server: Arc<rustls::ServerConfig>,
    }

    fn test_pki(alpn: &[&[u8]]) -> TestPki {
        let ca_key = rcgen::KeyPair::generate().unwrap();
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "hookgate test CA");
        ca_params.key_usages = vec![
            rcgen::KeyUsagePurpose::KeyCertSign,
            rcgen::KeyUsagePurpose::DigitalSignature,
        ];
        let ca_cert = ca_params.self_signed(&ca_key).unwrap();
        let issuer = rcgen::Issuer::new(ca_params, ca_key);

        let leaf_key = rcgen::KeyPair::generate().unwrap();
        let leaf =
            rcgen::CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
                .unwrap()
                .signed_by(&leaf_key, &issuer)
                .unwrap();
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf_key.serialize_der()));

        let mut server = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![leaf.der().clone(), ca_cert.der().clone()], key)
        .unwrap();
        server.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        TestPki {
            ca: ca_cert.der().clone(),
            server: Arc::new(server),
        }
    }

    fn open_policy() -> SsrfPolicy {
        SsrfPolicy {
            allow_private_networks: true,
            allow_cidrs: Vec::new(),
        }
    }

    fn client_with(ssrf: SsrfPolicy) -> DeliveryClient {
        DeliveryClient::new(ClientConfig {
            ssrf,
            ..ClientConfig::default()
        })
        .unwrap()
    }

    fn open_client() -> DeliveryClient {
        client_with(open_policy())
    }

    fn post(url: impl Into<String>) -> OutboundRequest {
        OutboundRequest {
            url: url.into(),
            headers: HeaderMap::new(),
            body: Bytes::from_static(PAYLOAD),
            timeout: Duration::from_secs(5),
        }
    }

    fn error_kind(result: &AttemptResult) -> Option<ErrorKind> {
        result.error.as_ref().map(|e| e.kind)
    }

    #[tokio::test]
    async fn ok_response_posts_headers_and_body_and_keeps_response_body() {
        let server = TestServer::start(vec![Reply::status(200).body("thanks")]).await;
        let mut request = post(server.url("/hook?x=1"));
        request
            .headers
            .insert("webhook-id", HeaderValue::from_static("msg_1"));
        request
            .headers
            .insert(CONTENT_LENGTH, HeaderValue::from_static("999"));

        let result = open_client().send(request).await;

        assert_eq!(
            result.outcome,
            AttemptOutcome::Response {
                status: 200,
                retry_after: None
            }
        );
        assert_eq!(result.status_code, Some(200));
        assert_eq!(result.response_body, b"thanks");
        assert_eq!(result.error, None);
        assert!(result.duration > Duration::ZERO);

        let seen = server.seen.lock().unwrap();
        assert_eq!(seen.len(), 1);
        let got = &seen[0];
        assert_eq!(got.method, Method::POST);
        assert_eq!(got.version, Version::HTTP_11);
        assert_eq!(got.path, "/hook?x=1");
        assert_eq!(got.body, PAYLOAD);
        assert_eq!(got.headers["webhook-id"], "msg_1");
        assert_eq!(
            got.headers[CONTENT_LENGTH],
            PAYLOAD.len().to_string().as_str(),
            "content-length comes from the body, not the caller"
        );
        assert_eq!(got.headers[USER_AGENT], DEFAULT_USER_AGENT);
    }

    #[tokio::test]
    async fn caller_user_agent_is_not_replaced() {
        let server = TestServer::start(vec![Reply::status(204)]).await;
        let mut request = post(server.url("/"));
        request
            .headers
            .insert(USER_AGENT, HeaderValue::from_static("acme-relay/2"));

        let result = open_client().send(request).await;

        assert_eq!(result.status_code, Some(204));
        assert_eq!(
            server.seen.lock().unwrap()[0].headers[USER_AGENT],
            "acme-relay/2"
        );
    }

    #[tokio::test]
    async fn service_unavailable_reports_retry_after_seconds() {
        let server = TestServer::start(vec![Reply::status(503).header("retry-after", "7")]).await;

        let result = open_client().send(post(server.url("/"))).await;

        assert_eq!(
            result.outcome,
            AttemptOutcome::Response {
                status: 503,
                retry_after: Some(Duration::from_secs(7))
            }
        );
        assert_eq!(result.error, None);
    }

    #[tokio::test]
    async fn gone_is_an_ordinary_response() {
        let server = TestServer::start(vec![Reply::status(410).body("bye")]).await;

        let result = open_client().send(post(server.url("/"))).await;

        assert_eq!(
            result.outcome,
            AttemptOutcome::Response {
                status: 410,
                retry_after: None
            }
        );
        assert_eq!(result.response_body, b"bye");
    }

    #[tokio::test]
    async fn redirect_is_returned_not_followed() {
        let server =
            TestServer::start(vec![Reply::status(302).header("location", "/elsewhere")]).await;

        let result = open_client().send(post(server.url("/hook"))).await;

        assert_eq!(result.status_code, Some(302));
        assert_eq!(error_kind(&result), None);
        let seen = server.seen.lock().unwrap();
        assert_eq!(seen.len(), 1, "the Location must not be fetched");
        assert_eq!(seen[0].path, "/hook");
    }

    #[tokio::test]
    async fn large_response_body_is_cut_to_4_kib_and_the_call_completes() {
        let server = TestServer::start(vec![Reply::status(200).body(vec![b'x'; 100 * 1024])]).await;

        let result = open_client().send(post(server.url("/"))).await;

        assert_eq!(result.status_code, Some(200));
        assert_eq!(result.error, None);
        assert_eq!(result.response_body.len(), RESPONSE_BODY_KEEP);
        assert!(result.response_body.iter().all(|b| *b == b'x'));
    }

    #[tokio::test]
    async fn body_far_beyond_read_limit_is_abandoned_with_its_connection() {
        let server = TestServer::start(vec![
            Reply::status(200).body(vec![b'x'; 4 * 1024 * 1024]),
            Reply::status(200),
        ])
        .await;
        let client = open_client();

        let first = client.send(post(server.url("/"))).await;
        tokio::time::sleep(Duration::from_millis(50)).await;
        let second = client.send(post(server.url("/"))).await;

        assert_eq!(first.status_code, Some(200));
        assert_eq!(first.error, None);
        assert_eq!(first.response_body.len(), RESPONSE_BODY_KEEP);
        assert_eq!(second.status_code, Some(200));
        // An HTTP/1.1 connection stopped mid-body cannot carry another request.
        assert_eq!(server.accepts(), 2);
    }

    #[tokio::test]
    async fn body_within_read_limit_is_drained_and_connection_reused() {
        let server = TestServer::start(vec![Reply::status(200).body(vec![b'y'; 48 * 1024])]).await;
        let client = open_client();

        let first = client.send(post(server.url("/"))).await;
        // The connection goes back to the pool from a background task once
        // the response is finished; give it a moment.
        tokio::time::sleep(Duration::from_millis(50)).await;
        let second = client.send(post(server.url("/"))).await;

        assert_eq!(first.response_body.len(), RESPONSE_BODY_KEEP);
        assert_eq!(second.status_code, Some(200));
        assert_eq!(server.accepts(), 1);
    }

    #[tokio::test]
    async fn sequential_requests_reuse_one_connection() {
        let server = TestServer::start(vec![Reply::status(200)]).await;
        let client = open_client();

        let first = client.send(post(server.url("/a"))).await;
        tokio::time::sleep(Duration::from_millis(50)).await;
        // A clone shares the pool.
        let second = client.clone().send(post(server.url("/b"))).await;

        assert_eq!(first.status_code, Some(200));
        assert_eq!(second.status_code, Some(200));
        assert_eq!(server.requests(), 2);
        assert_eq!(server.accepts(), 1);
    }

    #[tokio::test]
    async fn slow_server_times_out_within_the_request_timeout() {
        let server =
            TestServer::start(vec![Reply::status(200).delay(Duration::from_secs(3))]).await;
        let mut request = post(server.url("/"));
        request.timeout = Duration::from_millis(300);

        let result = open_client().send(request).await;

        assert_eq!(result.outcome, AttemptOutcome::Timeout);
        assert_eq!(error_kind(&result), Some(ErrorKind::Timeout));
        assert_eq!(result.status_code, None);
        assert!(result.duration >= Duration::from_millis(300));
        assert!(
            result.duration < Duration::from_millis(1500),
            "took {:?}",
            result.duration
        );
    }

    #[tokio::test]
    async fn stall_mid_body_is_a_timeout_that_keeps_status_and_partial_body() {
        let (addr, _server) =
            raw_server(b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\nhello", true).await;
        let mut request = post(format!("http://{addr}/"));
        request.timeout = Duration::from_millis(300);

        let result = open_client().send(request).await;

        assert_eq!(result.outcome, AttemptOutcome::Timeout);
        assert_eq!(result.status_code, Some(200));
        assert_eq!(result.response_body, b"hello");
        assert!(result.duration < Duration::from_millis(1500));
    }

    #[tokio::test]
    async fn connection_closed_mid_body_is_other_with_status_kept() {
        let (addr, _server) = raw_server(
            b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\nhello",
            false,
        )
        .await;

        let result = open_client().send(post(format!("http://{addr}/"))).await;

        assert_eq!(result.outcome, AttemptOutcome::Other);
        assert_eq!(error_kind(&result), Some(ErrorKind::Other));
        assert_eq!(result.status_code, Some(200));
        assert_eq!(result.response_body, b"hello");
    }

    #[tokio::test]
    async fn malformed_response_is_a_protocol_error() {
        let (addr, _server) = raw_server(b"this is not http\r\n\r\n", false).await;

        let result = open_client().send(post(format!("http://{addr}/"))).await;

        assert_eq!(result.outcome, AttemptOutcome::Other);
        assert_eq!(error_kind(&result), Some(ErrorKind::Protocol));
        assert_eq!(result.status_code, None);
    }

    #[tokio::test]
    async fn refused_connection_is_a_connect_error() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        drop(listener);

        let result = open_client().send(post(format!("http://{addr}/"))).await;

        assert_eq!(result.outcome, AttemptOutcome::Connect);
        let error = result.error.unwrap();
        assert_eq!(error.kind, ErrorKind::Connect);
        assert!(
            error.message.contains(&addr.to_string()),
            "{}",
            error.message
        );
    }

    #[tokio::test]
    async fn default_policy_blocks_loopback_before_connecting() {
        let server = TestServer::start(vec![Reply::status(200)]).await;
        let client = client_with(SsrfPolicy::default());
        let port = server.addr.port();

        for url in [
            format!("http://127.0.0.1:{port}/"),
            format!("http://localhost:{port}/"),
            // Other spellings of loopback get the same check.
            format!("http://2130706433:{port}/"),
            format!("http://[::ffff:127.0.0.1]:{port}/"),
        ] {
            let result = client.send(post(url.as_str())).await;
            assert_eq!(result.outcome, AttemptOutcome::SsrfBlocked, "{url}");
            let error = result.error.unwrap();
            assert_eq!(error.kind, ErrorKind::SsrfBlocked, "{url}");
            assert!(error.message.contains("blocked range"), "{}", error.message);
        }
        assert_eq!(server.accepts(), 0, "nothing may reach a blocked address");
        assert_eq!(server.requests(), 0);
    }

    #[tokio::test]
    async fn allow_listed_cidr_lets_loopback_through() {
        let server = TestServer::start(vec![Reply::status(200)]).await;
        let client = client_with(SsrfPolicy {
            allow_private_networks: false,
            allow_cidrs: vec!["127.0.0.0/8".parse().unwrap()],
        });
        let port = server.addr.port();

        for url in [
            format!("http://127.0.0.1:{port}/"),
            format!("http://localhost:{port}/"),
        ] {
            let result = client.send(post(url.as_str())).await;
            assert_eq!(result.status_code, Some(200), "{url}: {:?}", result.error);
        }
        assert_eq!(server.requests(), 2);
    }

    #[tokio::test]
    async fn unusable_urls_are_rejected_without_a_network_attempt() {
        let client = open_client();
        for url in [
            "ftp://example.com/hook",
            "file:///etc/passwd",
            "not a url",
            "http://",
            "https://user:hunter2@example.com/hook",
        ] {
            let result = client.send(post(url)).await;
            assert_eq!(result.outcome, AttemptOutcome::Other, "{url}");
            let error = result.error.unwrap();
            assert_eq!(error.kind, ErrorKind::InvalidUrl, "{url}");
            assert!(!error.message.contains("hunter2"), "{}", error.message);
            assert_eq!(result.status_code, None);
        }
    }

    #[tokio::test]
    async fn https_with_extra_root_negotiates_http2() {
        let pki = test_pki(&[b"h2", b"http/1.1"]);
        let server =
            TestServer::start_tls(vec![Reply::status(200).body("secure")], pki.server).await;
        let client = DeliveryClient::new(ClientConfig {
            ssrf: open_policy(),
            extra_root_certs: vec![pki.ca],
            ..ClientConfig::default()
        })
        .unwrap();
        let port = server.addr.port();

        for url in [
            format!("https://localhost:{port}/hook"),
            format!("https://127.0.0.1:{port}/hook"),
        ] {
            let result = client.send(post(url.as_str())).await;
            assert_eq!(result.status_code, Some(200), "{url}: {:?}", result.error);
            assert_eq!(result.response_body, b"secure");
        }

        let seen = server.seen.lock().unwrap();
        assert_eq!(seen.len(), 2);
        for got in seen.iter() {
            assert_eq!(got.version, Version::HTTP_2);
            assert_eq!(got.method, Method::POST);
            assert_eq!(got.body, PAYLOAD);
            assert_eq!(got.headers[USER_AGENT], DEFAULT_USER_AGENT);
        }
    }

    #[tokio::test]
    async fn https_uses_http1_when_server_offers_no_h2() {
        let pki = test_pki(&[b"http/1.1"]);
        let server = TestServer::start_tls(vec![Reply::status(200)], pki.server).await;
        let client = DeliveryClient::new(ClientConfig {
            ssrf: open_policy(),
            extra_root_certs: vec![pki.ca],
            ..ClientConfig::default()
        })
        .unwrap();

        let result = client
            .send(post(format!("https://localhost:{}/", server.addr.port())))
            .await;

        assert_eq!(result.status_code, Some(200), "{:?}", result.error);
        assert_eq!(server.seen.lock().unwrap()[0].version, Version::HTTP_11);
    }

    #[tokio::test]
    async fn https_to_untrusted_certificate_is_a_tls_error() {
        let pki = test_pki(&[b"h2", b"http/1.1"]);
        let server = TestServer::start_tls(vec![Reply::status(200)], pki.server).await;

        let result = open_client()
            .send(post(format!("https://localhost:{}/", server.addr.port())))
            .await;

        assert_eq!(result.outcome, AttemptOutcome::Tls);
        let error = result.error.unwrap();
        assert_eq!(error.kind, ErrorKind::Tls);
        assert!(error.message.contains("certificate"), "{}", error.message);
        assert_eq!(server.requests(), 0);
    }

    #[test]
    fn invalid_configuration_is_refused() {
        let bad_agent = DeliveryClient::new(ClientConfig {
            user_agent: "bad\nagent".to_owned(),
            ..ClientConfig::default()
        });
        assert!(matches!(
            bad_agent,
            Err(ClientBuildError::InvalidUserAgent(_))
        ));

        let bad_root = DeliveryClient::new(ClientConfig {
            extra_root_certs: vec![CertificateDer::from(b"not a certificate".to_vec())],
            ..ClientConfig::default()
        });
        assert!(matches!(
            bad_root,
            Err(ClientBuildError::InvalidRootCert { index: 0, .. })
        ));
    }

    #[test]
    fn error_kinds_have_stable_names_and_outcomes() {
        let cases = [
            (ErrorKind::Timeout, "timeout", AttemptOutcome::Timeout),
            (ErrorKind::Connect, "connect", AttemptOutcome::Connect),
            (ErrorKind::Dns, "dns", AttemptOutcome::Connect),
            (ErrorKind::Tls, "tls", AttemptOutcome::Tls),
            (
                ErrorKind::SsrfBlocked,
                "ssrf_blocked",
                AttemptOutcome::SsrfBlocked,
            ),
            (ErrorKind::InvalidUrl, "invalid_url", AttemptOutcome::Other),
            (ErrorKind::Protocol, "protocol", AttemptOutcome::Other),
            (ErrorKind::Other, "other", AttemptOutcome::Other),
        ];
        for (kind, name, outcome) in cases {
            assert_eq!(kind.as_str(), name);
            assert_eq!(kind.to_string(), name);
            assert_eq!(kind.outcome(), outcome, "{name}");
        }
    }

    #[test]
    fn errors_wrapped_in_io_errors_are_still_classified() {
        // The shape hyper-rustls produces for a failed handshake.
        let tls = io::Error::other(io::Error::new(
            io::ErrorKind::InvalidData,
            rustls::Error::General("bad record".to_owned()),
        ));
        let described = describe(&tls);
        assert_eq!(described.kind, ErrorKind::Tls);
        assert_eq!(described.message, "unexpected error: bad record");

        let dns: Box<dyn StdError + Send + Sync> = Box::new(ConnectError::Dns {
            host: "nowhere.invalid".to_owned(),
            source: io::Error::other("no such host"),
        });
        let described = describe(&io::Error::other(dns));
        assert_eq!(described.kind, ErrorKind::Dns);
        assert_eq!(
            described.message,
            "DNS lookup for nowhere.invalid failed: no such host"
        );
    }

    #[test]
    fn long_error_messages_are_truncated() {
        let long = io::Error::other("x".repeat(1000));
        let message = describe(&long).message;
        assert_eq!(message.chars().count(), MAX_ERROR_MESSAGE_CHARS);
        assert!(message.ends_with("..."));
    }

    #[test]
    fn debug_output_hides_url_and_header_values() {
        let mut request = post("https://example.com/hook?token=s3cret");
        request
            .headers
            .insert("authorization", HeaderValue::from_static("Bearer s3cret"));
        let shown = format!("{request:?}");
        assert!(!shown.contains("s3cret"), "{shown}");
        assert!(shown.contains("authorization"), "{shown}");
    }
}
