//! TLS on the main listener, through the built binary: a rustls client trusting a test CA made
//! with rcgen negotiates HTTP/2 (or HTTP/1.1) via ALPN; SIGHUP swaps in replaced certificate
//! files for new connections while open ones keep working; a broken replacement keeps the old
//! pair; `check-config` names a missing file or a mismatched key and exits 64.
//!
//! The gateway is spawned here rather than through `GatewayProcess`, because these tests need
//! `[server.tls]` in its config and its log lines (stderr) to wait on.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::Empty;
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::pki_types::{CertificateDer, ServerName};
use tempfile::TempDir;
use tokio::net::TcpStream;
use tokio::sync::mpsc;

use crate::support::WAIT;

fn hookgate() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_hookgate"));
    c.env_remove("HOOKGATE_ADMIN_KEY").env_remove("RUST_LOG");
    c
}

/// PEM armour for `der` (rcgen's PEM output needs a feature this crate does not enable).
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

/// A test CA that signs `localhost` / 127.0.0.1 leaves.
struct TestCa {
    der: CertificateDer<'static>,
    issuer: rcgen::Issuer<'static, rcgen::KeyPair>,
}

/// A leaf certificate and its key, as the PEM files the gateway reads.
struct Leaf {
    cert_pem: String,
    key_pem: String,
    der: Vec<u8>,
}

impl TestCa {
    fn new() -> Self {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "hookgate TLS test CA");
        params.key_usages = vec![
            rcgen::KeyUsagePurpose::KeyCertSign,
            rcgen::KeyUsagePurpose::DigitalSignature,
        ];
        let cert = params.self_signed(&key).unwrap();
        Self {
            der: cert.der().clone(),
            issuer: rcgen::Issuer::new(params, key),
        }
    }

    /// A fresh key and a leaf for it; `name` makes each leaf's DER distinct.
    fn leaf(&self, name: &str) -> Leaf {
        self.leaf_valid_until(name, None)
    }

    /// Like [`leaf`](Self::leaf), expiring at `not_after` (rcgen's far-future default if `None`).
    fn leaf_valid_until(&self, name: &str, not_after: Option<time::OffsetDateTime>) -> Leaf {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params =
            rcgen::CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
                .unwrap();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, name);
        if let Some(t) = not_after {
            params.not_before = t - time::Duration::days(90);
            params.not_after = t;
        }
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        Leaf {
            cert_pem: pem("CERTIFICATE", cert.der()),
            key_pem: pem("PRIVATE KEY", &key.serialize_der()),
            der: cert.der().to_vec(),
        }
    }
}

/// Writes a gateway config with `[server.tls]` pointing at `cert.pem` / `key.pem` in `dir`.
fn write_tls_config(dir: &Path) -> PathBuf {
    let config = dir.join("hookgate.toml");
    std::fs::write(
        &config,
        format!(
            "[server]\nlisten = \"127.0.0.1:0\"\nshutdown_grace_s = 10\n\
             [server.tls]\ncert = \"{}\"\nkey = \"{}\"\n\
             [storage]\ndata_dir = \"{}\"\n[log]\nlevel = \"info\"\n",
            dir.join("cert.pem").display(),
            dir.join("key.pem").display(),
            dir.join("data").display(),
        ),
    )
    .unwrap();
    config
}

fn write_pair(dir: &Path, cert_pem: &str, key_pem: &str) {
    std::fs::write(dir.join("cert.pem"), cert_pem).unwrap();
    std::fs::write(dir.join("key.pem"), key_pem).unwrap();
}

/// `hookgate serve` with TLS on, its stderr lines forwarded to a channel (and echoed, so a
/// failing test shows the gateway's log).
struct TlsGateway {
    addr: SocketAddr,
    child: Child,
    dir: TempDir,
    log: mpsc::UnboundedReceiver<String>,
}

impl TlsGateway {
    fn start(leaf: &Leaf) -> Self {
        let dir = tempfile::tempdir().unwrap();
        write_pair(dir.path(), &leaf.cert_pem, &leaf.key_pem);
        let config = write_tls_config(dir.path());
        let mut child = hookgate()
            .arg("serve")
            .arg("--config")
            .arg(&config)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn hookgate");

        let stdout = child.stdout.take().unwrap();
        let stderr = child.stderr.take().unwrap();
        let (log_tx, log) = mpsc::unbounded_channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                eprintln!("[hookgate] {line}");
                let _ = log_tx.send(line);
            }
        });

        let addr = crate::support::ready_addr(stdout);
        Self {
            addr,
            child,
            dir,
            log,
        }
    }

    fn replace_pair(&self, cert_pem: &str, key_pem: &str) {
        write_pair(self.dir.path(), cert_pem, key_pem);
    }

    /// A real SIGHUP, as an operator (or `systemctl reload`) would send it.
    fn sighup(&self) {
        let status = Command::new("kill")
            .arg("-HUP")
            .arg(self.child.id().to_string())
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// SIGTERM, then the exit status (polled with a deadline).
    fn terminate(mut self) -> std::process::ExitStatus {
        let status = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status()
            .unwrap();
        assert!(status.success());
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(Instant::now() < deadline, "no exit after SIGTERM");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits for a log line containing `needle`; returns it.
    async fn wait_for_log(&mut self, needle: &str) -> String {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            match tokio::time::timeout_at(deadline, self.log.recv()).await {
                Ok(Some(line)) if line.contains(needle) => return line,
                Ok(Some(_)) => {}
                Ok(None) => panic!("hookgate exited before logging {needle:?}"),
                Err(_) => panic!("no log line containing {needle:?} in time"),
            }
        }
    }

    /// Waits until a new connection is served `der`, polling with a deadline.
    async fn wait_until_serving(&self, ca: &TestCa, der: &[u8]) -> Connection {
        let deadline = Instant::now() + WAIT;
        loop {
            let conn = Connection::open(self.addr, ca, &[b"h2"]).await;
            if conn.leaf == der {
                return conn;
            }
            assert!(
                Instant::now() < deadline,
                "new connections still get the old certificate"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for TlsGateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One TLS connection to the gateway, with what the handshake showed.
struct Connection {
    alpn: Option<Vec<u8>>,
    leaf: Vec<u8>,
    sender: Sender,
}

enum Sender {
    H2(hyper::client::conn::http2::SendRequest<Empty<Bytes>>),
    H1(hyper::client::conn::http1::SendRequest<Empty<Bytes>>),
}

impl Connection {
    /// Connects to `addr` as `localhost`, trusting only `ca`, offering `alpn`.
    async fn open(addr: SocketAddr, ca: &TestCa, alpn: &[&[u8]]) -> Self {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(ca.der.clone()).unwrap();
        let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
        config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        let connector = tokio_rustls::TlsConnector::from(Arc::new(config));

        let tcp = TcpStream::connect(addr).await.unwrap();
        let name = ServerName::try_from("localhost").unwrap();
        let tls = tokio::time::timeout(WAIT, connector.connect(name, tcp))
            .await
            .expect("TLS handshake in time")
            .expect("TLS handshake succeeds with the test CA");
        let (_, session) = tls.get_ref();
        let alpn = session.alpn_protocol().map(<[u8]>::to_vec);
        let leaf = session.peer_certificates().expect("server certificate")[0].to_vec();

        let io = TokioIo::new(tls);
        let sender = if alpn.as_deref() == Some(b"h2") {
            let (sender, conn) = hyper::client::conn::http2::handshake(TokioExecutor::new(), io)
                .await
                .unwrap();
            tokio::spawn(conn);
            Sender::H2(sender)
        } else {
            let (sender, conn) = hyper::client::conn::http1::handshake(io).await.unwrap();
            tokio::spawn(conn);
            Sender::H1(sender)
        };
        Self { alpn, leaf, sender }
    }

    async fn get(&mut self, path: &str) -> StatusCode {
        let request = Request::get(format!("https://localhost{path}"))
            .body(Empty::<Bytes>::new())
            .unwrap();
        let response = tokio::time::timeout(WAIT, async {
            match &mut self.sender {
                Sender::H2(s) => {
                    s.ready().await?;
                    s.send_request(request).await
                }
                Sender::H1(s) => {
                    s.ready().await?;
                    s.send_request(request).await
                }
            }
        })
        .await
        .expect("answer in time")
        .expect("request succeeds");
        response.status()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_negotiates_h2_and_sighup_serves_the_replaced_certificate_to_new_connections() {
    let ca = TestCa::new();
    let first = ca.leaf("hookgate first");
    let gateway = TlsGateway::start(&first);

    let mut before = Connection::open(gateway.addr, &ca, &[b"h2", b"http/1.1"]).await;
    assert_eq!(before.alpn.as_deref(), Some(&b"h2"[..]));
    assert_eq!(before.leaf, first.der);
    assert_eq!(before.get("/healthz").await, StatusCode::OK);

    let second = ca.leaf("hookgate second");
    assert_ne!(second.der, first.der);
    gateway.replace_pair(&second.cert_pem, &second.key_pem);
    gateway.sighup();

    let mut after = gateway.wait_until_serving(&ca, &second.der).await;
    assert_eq!(after.alpn.as_deref(), Some(&b"h2"[..]));
    assert_eq!(after.get("/healthz").await, StatusCode::OK);

    // The HTTP/2 connection opened before the reload is untouched by it.
    assert_eq!(before.get("/healthz").await, StatusCode::OK);
    assert_eq!(before.get("/readyz").await, StatusCode::OK);

    // The drain closes open TLS connections too and the process exits cleanly.
    let status = gateway.terminate();
    assert!(status.success(), "{status:?}");
}

/// A certificate close to its notAfter is served, with a WARN at start; one past it, loaded by
/// SIGHUP, is reported as expired.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_certificate_near_or_past_expiry_is_logged_at_load_and_reload() {
    let ca = TestCa::new();
    let now = time::OffsetDateTime::now_utc();
    // Half days, so second-rounding in the certificate cannot change the whole days logged.
    let soon = ca.leaf_valid_until("hookgate soon", Some(now + time::Duration::hours(84)));
    let mut gateway = TlsGateway::start(&soon);
    let line = gateway.wait_for_log("TLS certificate expires soon").await;
    assert!(
        line.contains("WARN") && line.contains("days_left=3"),
        "{line}"
    );
    let conn = Connection::open(gateway.addr, &ca, &[b"h2"]).await;
    assert_eq!(conn.leaf, soon.der);

    let expired = ca.leaf_valid_until("hookgate expired", Some(now - time::Duration::hours(60)));
    gateway.replace_pair(&expired.cert_pem, &expired.key_pem);
    gateway.sighup();
    let line = gateway.wait_for_log("TLS certificate has expired").await;
    assert!(line.contains("expired_days_ago=2"), "{line}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_http1_only_client_is_served_http1_over_tls() {
    let ca = TestCa::new();
    let leaf = ca.leaf("hookgate h1");
    let gateway = TlsGateway::start(&leaf);

    let mut conn = Connection::open(gateway.addr, &ca, &[b"http/1.1"]).await;
    assert_eq!(conn.alpn.as_deref(), Some(&b"http/1.1"[..]));
    assert_eq!(conn.get("/healthz").await, StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_with_a_broken_new_key_keeps_serving_the_old_certificate() {
    let ca = TestCa::new();
    let first = ca.leaf("hookgate first");
    let mut gateway = TlsGateway::start(&first);

    // A new certificate beside a key file that holds no key.
    let second = ca.leaf("hookgate second");
    gateway.replace_pair(&second.cert_pem, "not a key\n");
    gateway.sighup();
    let warning = gateway.wait_for_log("TLS reload failed").await;
    assert!(warning.contains("server.tls.key"), "{warning}");
    assert!(warning.contains("holds no PEM private key"), "{warning}");
    assert!(warning.contains("WARN"), "{warning}");

    let mut conn = Connection::open(gateway.addr, &ca, &[b"h2"]).await;
    assert_eq!(conn.leaf, first.der);
    assert_eq!(conn.get("/healthz").await, StatusCode::OK);

    // A key for another certificate is refused the same way.
    let third = ca.leaf("hookgate third");
    gateway.replace_pair(&second.cert_pem, &third.key_pem);
    gateway.sighup();
    let warning = gateway.wait_for_log("TLS reload failed").await;
    assert!(warning.contains("does not match"), "{warning}");
    let conn = Connection::open(gateway.addr, &ca, &[b"h2"]).await;
    assert_eq!(conn.leaf, first.der);

    // Fixing the files and signalling again recovers.
    gateway.replace_pair(&second.cert_pem, &second.key_pem);
    gateway.sighup();
    gateway.wait_until_serving(&ca, &second.der).await;
}

fn check_config(dir: &Path) -> Output {
    let config = write_tls_config(dir);
    hookgate()
        .arg("check-config")
        .arg("--config")
        .arg(&config)
        .output()
        .unwrap()
}

#[test]
fn check_config_rejects_a_missing_certificate_file_naming_server_tls_cert_with_exit_64() {
    let ca = TestCa::new();
    let leaf = ca.leaf("hookgate");
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("key.pem"), &leaf.key_pem).unwrap();

    let out = check_config(dir.path());
    assert_eq!(out.status.code(), Some(64));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("server.tls.cert: cannot read"), "{stderr}");
    assert!(stderr.contains("cert.pem"), "{stderr}");
}

#[test]
fn check_config_rejects_a_mismatched_key_naming_server_tls_key_without_echoing_it() {
    let ca = TestCa::new();
    let leaf = ca.leaf("hookgate");
    let other = ca.leaf("hookgate other");
    let dir = tempfile::tempdir().unwrap();
    write_pair(dir.path(), &leaf.cert_pem, &other.key_pem);

    let out = check_config(dir.path());
    assert_eq!(out.status.code(), Some(64));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("server.tls.key: the private key in"),
        "{stderr}"
    );
    assert!(
        stderr.contains("does not match the certificate"),
        "{stderr}"
    );
    let key_body = other.key_pem.lines().nth(1).unwrap();
    assert!(!stderr.contains(key_body), "{stderr}");
    assert!(!stderr.contains("PRIVATE KEY"), "{stderr}");
}

#[test]
fn serve_refuses_a_mismatched_key_before_binding_with_exit_64() {
    let ca = TestCa::new();
    let leaf = ca.leaf("hookgate");
    let other = ca.leaf("hookgate other");
    let dir = tempfile::tempdir().unwrap();
    write_pair(dir.path(), &leaf.cert_pem, &other.key_pem);
    let config = write_tls_config(dir.path());

    let out = hookgate()
        .arg("serve")
        .arg("--config")
        .arg(&config)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(64));
    assert!(out.stdout.is_empty(), "no readiness line");
    assert!(String::from_utf8_lossy(&out.stderr).contains("server.tls.key"));
}
