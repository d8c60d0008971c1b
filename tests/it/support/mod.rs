//! Test harness: a real gateway in-process (`TestGateway`) or as the built binary
//! (`GatewayProcess`), and a small JSON client. No mocks: real sockets on 127.0.0.1:0, a real
//! redb file in a temp dir.

#![allow(dead_code)]

pub mod receiver;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use hookgate::config::{Config, RawConfig};
use hookgate::{Listeners, Shutdown};
use serde_json::Value;
use tempfile::TempDir;
use tokio::task::JoinHandle;

pub const ADMIN_KEY: &str = "test-operator-key-0123456789";
pub const WAIT: Duration = Duration::from_secs(10);

/// A config for tests: data in `dir`, port 0, operator key set, private networks allowed.
pub fn test_config(dir: &Path) -> Config {
    let mut raw = RawConfig::default();
    raw.server.listen = "127.0.0.1:0".into();
    raw.storage.data_dir = dir.to_owned();
    raw.admin.api_key = ADMIN_KEY.into();
    raw.delivery.allow_private_networks = true;
    Config::from_raw(raw, &|_| None).expect("test config is valid")
}

/// The value of an unlabelled series in a `/metrics` text.
pub fn metric(text: &str, name: &str) -> f64 {
    text.lines()
        .find(|l| l.starts_with(name) && l[name.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("metric {name} not found"))
}

/// The gateway running inside the test process.
pub struct TestGateway {
    pub addr: SocketAddr,
    /// The `/metrics`-only listener, when the config asked for one.
    pub metrics_addr: Option<SocketAddr>,
    pub dir: TempDir,
    shutdown: Shutdown,
    task: JoinHandle<Result<(), hookgate::RunError>>,
}

impl TestGateway {
    pub async fn start() -> Self {
        Self::start_with(tempfile::tempdir().unwrap(), |_| {}).await
    }

    /// Starts on `dir` (e.g. one a previous gateway used), after `tweak` edits the config.
    pub async fn start_with(dir: TempDir, tweak: impl FnOnce(&mut Config)) -> Self {
        let mut config = test_config(dir.path());
        tweak(&mut config);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let metrics = match config.metrics.listen {
            Some(a) => Some(tokio::net::TcpListener::bind(a).await.unwrap()),
            None => None,
        };
        let metrics_addr = metrics.as_ref().map(|l| l.local_addr().unwrap());
        let shutdown = Shutdown::new();
        let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
        let task = tokio::spawn(hookgate::run(
            Arc::new(config),
            Listeners {
                main: listener,
                metrics,
            },
            shutdown.clone(),
            move |_| {
                let _ = ready_tx.send(());
            },
        ));
        tokio::time::timeout(WAIT, ready_rx)
            .await
            .expect("gateway ready in time")
            .expect("gateway started");
        Self {
            addr,
            metrics_addr,
            dir,
            shutdown,
            task,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn client(&self) -> Api {
        Api::new(self.addr)
    }

    /// The `/metrics` text from the main listener.
    pub async fn metrics_text(&self) -> String {
        reqwest::get(self.url("/metrics"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    /// Graceful stop; returns the data dir for a restart.
    pub async fn stop(self) -> TempDir {
        self.shutdown.trigger();
        tokio::time::timeout(WAIT, self.task)
            .await
            .expect("gateway stopped in time")
            .expect("gateway task did not panic")
            .expect("gateway run returned Ok");
        self.dir
    }
}

/// Reads the binary's readiness line (`hookgate ready listen=ADDR`) from its stdout, waiting
/// at most [`WAIT`], and keeps draining the pipe so the child never blocks on it.
pub fn ready_addr(stdout: std::process::ChildStdout) -> SocketAddr {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut lines = BufReader::new(stdout).lines();
        if let Some(Ok(line)) = lines.next() {
            let _ = tx.send(line);
        }
        for _ in lines {}
    });
    let line = rx.recv_timeout(WAIT).expect("readiness line on stdout");
    line.strip_prefix("hookgate ready listen=")
        .unwrap_or_else(|| panic!("unexpected readiness line {line:?}"))
        .parse()
        .expect("readiness line holds an address")
}

/// The built binary, for signal and crash tests.
pub struct GatewayProcess {
    pub addr: SocketAddr,
    pub child: Child,
    pub data_dir: PathBuf,
    pub config_path: PathBuf,
}

impl GatewayProcess {
    /// Writes a config for `data_dir` into it and starts `hookgate serve` on port 0. The API
    /// rate limit is off: crash tests read back thousands of events as fast as they can.
    pub fn start(data_dir: &Path) -> Self {
        Self::start_with_storage(data_dir, "")
    }

    /// [`start`](Self::start) with extra `[storage]` lines.
    pub fn start_with_storage(data_dir: &Path, storage: &str) -> Self {
        let config_path = data_dir.join("hookgate.toml");
        std::fs::write(
            &config_path,
            format!(
                "[server]\nlisten = \"127.0.0.1:0\"\nshutdown_grace_s = 10\n[storage]\ndata_dir = \"{}\"\n{storage}\n[admin]\napi_key = \"{ADMIN_KEY}\"\n[delivery]\nallow_private_networks = true\n[api]\nrate_limit_per_s = 0\n[log]\nlevel = \"warn\"\n",
                data_dir.join("data").display()
            ),
        )
        .unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_hookgate"))
            .arg("serve")
            .arg("--config")
            .arg(&config_path)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .env_remove("HOOKGATE_ADMIN_KEY")
            .env_remove("RUST_LOG")
            .spawn()
            .expect("spawn hookgate");
        let addr = ready_addr(child.stdout.take().unwrap());
        Self {
            addr,
            child,
            data_dir: data_dir.to_owned(),
            config_path,
        }
    }

    pub fn client(&self) -> Api {
        Api::new(self.addr)
    }

    /// SIGKILL: no drain, no flush, nothing.
    pub fn kill(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    /// SIGTERM, then wait for the exit status.
    pub fn terminate(mut self) -> std::process::ExitStatus {
        let status = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status()
            .unwrap();
        assert!(status.success());
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "no exit after SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for GatewayProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A JSON client for the API.
#[derive(Clone)]
pub struct Api {
    pub base: String,
    pub http: reqwest::Client,
    pub key: Option<String>,
}

/// Status and parsed JSON body of an answer.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub body: Value,
    pub headers: reqwest::header::HeaderMap,
}

impl Answer {
    pub fn data(&self) -> &Value {
        &self.body["data"]
    }

    pub fn error_code(&self) -> &str {
        self.body["error"]["code"].as_str().unwrap_or("")
    }

    pub fn error_message(&self) -> &str {
        self.body["error"]["message"].as_str().unwrap_or("")
    }
}

impl Api {
    pub fn new(addr: SocketAddr) -> Self {
        Self {
            base: format!("http://{addr}"),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .unwrap(),
            key: None,
        }
    }

    pub fn with_key(&self, key: &str) -> Self {
        let mut c = self.clone();
        c.key = Some(key.to_owned());
        c
    }

    pub async fn send(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Answer {
        let mut req = self.http.request(method, format!("{}{path}", self.base));
        if let Some(key) = &self.key {
            req = req.bearer_auth(key);
        }
        if let Some(body) = body {
            req = req.json(&body);
        }
        Self::answer(req).await
    }

    pub async fn answer(req: reqwest::RequestBuilder) -> Answer {
        let resp = req.send().await.expect("request sent");
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let bytes = resp.bytes().await.expect("body read");
        let body = serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
        Answer {
            status,
            body,
            headers,
        }
    }

    pub async fn get(&self, path: &str) -> Answer {
        self.send(reqwest::Method::GET, path, None).await
    }

    pub async fn post(&self, path: &str, body: Value) -> Answer {
        self.send(reqwest::Method::POST, path, Some(body)).await
    }

    pub async fn patch(&self, path: &str, body: Value) -> Answer {
        self.send(reqwest::Method::PATCH, path, Some(body)).await
    }

    pub async fn delete(&self, path: &str) -> Answer {
        self.send(reqwest::Method::DELETE, path, None).await
    }

    /// Creates an account with the operator key; returns a client holding its first key.
    pub async fn new_account(&self, name: &str) -> (Api, Value) {
        let a = self
            .with_key(ADMIN_KEY)
            .post("/v1/accounts", serde_json::json!({ "name": name }))
            .await;
        assert_eq!(a.status, 201, "{:?}", a.body);
        let key = a.data()["api_key"].as_str().unwrap().to_owned();
        (self.with_key(&key), a.data()["account"].clone())
    }
}
