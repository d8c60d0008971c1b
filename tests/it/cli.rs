//! The admin CLI through the built binary: `init`, `accounts create`, `compact`, and `--help`
//! on every command. Each test works in its own temp dir and clears the environment overrides
//! the binary reads, so nothing depends on the machine running the tests.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;

use crate::support::{Api, GatewayProcess, WAIT};

fn hookgate() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_hookgate"));
    c.env_remove("HOOKGATE_ADMIN_KEY").env_remove("RUST_LOG");
    c
}

/// Runs the binary with `args`; returns its output whatever the exit status.
fn run(args: &[&str]) -> Output {
    hookgate().args(args).output().expect("run hookgate")
}

/// Runs the binary, asserts success, returns stdout.
fn run_ok(args: &[&str]) -> String {
    let out = run(args);
    assert!(
        out.status.success(),
        "hookgate {args:?} failed ({:?}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8 stdout")
}

/// The value of a `name: value` line on the CLI's stdout.
fn field<'a>(stdout: &'a str, name: &str) -> &'a str {
    stdout
        .lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(": "))
        .unwrap_or_else(|| panic!("no `{name}:` line in {stdout:?}"))
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn path_str(p: &Path) -> &str {
    p.to_str().expect("temp paths are UTF-8")
}

/// `hookgate init` into `config` with data in `data_dir`; returns the printed operator key.
fn init(config: &Path, data_dir: &Path) -> String {
    let out = run_ok(&[
        "init",
        "--config",
        path_str(config),
        "--data-dir",
        path_str(data_dir),
    ]);
    field(&out, "operator_key").to_owned()
}

/// `hookgate serve` on a config of our own (unlike `GatewayProcess`, which writes its own).
struct Served {
    addr: SocketAddr,
    child: Child,
}

impl Served {
    fn start(config: &Path) -> Self {
        let mut child = hookgate()
            .arg("serve")
            .arg("--config")
            .arg(config)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn hookgate serve");
        let addr = crate::support::ready_addr(child.stdout.take().expect("piped stdout"));
        Self { addr, child }
    }

    fn terminate(mut self) -> std::process::ExitStatus {
        terminate(&mut self.child)
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// SIGTERM, then the exit status, polled against a deadline.
fn terminate(child: &mut Child) -> std::process::ExitStatus {
    let sent = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status()
        .expect("run kill");
    assert!(sent.success());
    let deadline = Instant::now() + WAIT;
    loop {
        if let Some(status) = child.try_wait().expect("wait for hookgate") {
            return status;
        }
        assert!(Instant::now() < deadline, "no exit after SIGTERM");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[tokio::test]
async fn init_writes_a_valid_config_and_prints_the_operator_key() {
    let dir = tempfile::tempdir().unwrap();
    // A parent that does not exist yet, as with /etc/hookgate on a fresh machine.
    let config = dir.path().join("etc/hookgate.toml");
    let key = init(&config, &dir.path().join("data"));
    assert!(key.len() >= 32, "operator key {key:?} is too short");

    let mode = std::fs::metadata(&config).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "config mode {mode:o}");
    let text = std::fs::read_to_string(&config).unwrap();
    assert!(text.contains(&key));
    assert!(
        text.lines().filter(|l| l.starts_with('#')).count() > 20,
        "the written file keeps the example's comments"
    );

    let out = run_ok(&["check-config", "--config", path_str(&config)]);
    assert!(out.contains("configuration is valid"), "{out}");

    // Port 0 so parallel tests never collide; quieter logs for the test output.
    let text = text
        .replace("listen = \"127.0.0.1:8080\"", "listen = \"127.0.0.1:0\"")
        .replace("level = \"info\"", "level = \"warn\"");
    std::fs::write(&config, text).unwrap();
    let gateway = Served::start(&config);
    let api = Api::new(gateway.addr);
    let created = api
        .with_key(&key)
        .post("/v1/accounts", json!({ "name": "first" }))
        .await;
    assert_eq!(created.status, 201, "{:?}", created.body);
    let refused = api
        .with_key("not-the-operator-key-0123456789")
        .post("/v1/accounts", json!({ "name": "second" }))
        .await;
    assert!(matches!(refused.status, 401 | 403), "{:?}", refused.status);
    let status = tokio::task::spawn_blocking(move || gateway.terminate())
        .await
        .unwrap();
    assert!(status.success(), "exit status {status:?}");
    assert!(dir.path().join("data/hookgate.redb").exists());
}

#[test]
fn init_refuses_to_overwrite_without_force() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("hookgate.toml");
    let first_key = init(&config, &dir.path().join("data"));
    let before = std::fs::read_to_string(&config).unwrap();

    let out = run(&["init", "--config", path_str(&config)]);
    assert_eq!(out.status.code(), Some(64), "{}", stderr(&out));
    let message = stderr(&out);
    assert!(message.contains("already exists"), "{message}");
    assert!(message.contains("--force"), "{message}");
    assert!(message.contains(path_str(&config)), "{message}");
    assert_eq!(std::fs::read_to_string(&config).unwrap(), before);

    // --force replaces the key and tightens a mode someone loosened meanwhile.
    std::fs::set_permissions(&config, std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = run_ok(&["init", "--config", path_str(&config), "--force"]);
    let second_key = field(&out, "operator_key");
    assert_ne!(second_key, first_key);
    assert!(std::fs::read_to_string(&config)
        .unwrap()
        .contains(second_key));
    let mode = std::fs::metadata(&config).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "config mode {mode:o}");
}

#[tokio::test]
async fn accounts_create_prints_a_working_api_key() {
    let dir = tempfile::tempdir().unwrap();
    // GatewayProcess keeps its data in DIR/data and writes DIR/hookgate.toml itself.
    let admin_config = dir.path().join("admin.toml");
    init(&admin_config, &dir.path().join("data"));

    let out = run_ok(&[
        "accounts",
        "create",
        "acme",
        "--config",
        path_str(&admin_config),
    ]);
    let account_id = field(&out, "account_id").to_owned();
    let key = field(&out, "api_key").to_owned();

    let gateway = GatewayProcess::start(dir.path());
    let answer = gateway.client().with_key(&key).get("/v1/account").await;
    assert_eq!(answer.status, 200, "{:?}", answer.body);
    assert_eq!(answer.data()["name"], "acme");
    assert_eq!(answer.data()["id"], account_id.as_str());
    let status = tokio::task::spawn_blocking(move || gateway.terminate())
        .await
        .unwrap();
    assert!(status.success(), "exit status {status:?}");
}

#[test]
fn accounts_create_rejects_an_invalid_name_with_exit_64() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("hookgate.toml");
    init(&config, &dir.path().join("data"));
    let out = run(&["accounts", "create", " ", "--config", path_str(&config)]);
    assert_eq!(out.status.code(), Some(64), "{}", stderr(&out));
    assert!(stderr(&out).contains("name"), "{}", stderr(&out));
    assert!(
        !dir.path().join("data").exists(),
        "nothing is opened or created for a bad argument"
    );
}

#[tokio::test]
async fn accounts_create_refuses_while_the_gateway_runs() {
    let dir = tempfile::tempdir().unwrap();
    let gateway = GatewayProcess::start(dir.path());
    let out = run(&[
        "accounts",
        "create",
        "acme",
        "--config",
        path_str(&gateway.config_path),
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let message = stderr(&out);
    assert!(message.contains("is hookgate running?"), "{message}");
    assert!(message.contains("POST /v1/accounts"), "{message}");
    assert!(out.stdout.is_empty(), "no key is printed on failure");

    // The refused command left the running gateway untouched.
    let health = gateway.client().get("/healthz").await;
    assert_eq!(health.status, 200);
    let status = tokio::task::spawn_blocking(move || gateway.terminate())
        .await
        .unwrap();
    assert!(status.success(), "exit status {status:?}");
}

#[tokio::test]
async fn compact_reports_sizes_and_keeps_data() {
    let dir = tempfile::tempdir().unwrap();
    let gateway = GatewayProcess::start(dir.path());
    let config = gateway.config_path.clone();
    let (api, account) = gateway.client().new_account("kept").await;
    // Keys created and revoked leave free pages behind for compaction to reclaim.
    for i in 0..100 {
        let created = api
            .post("/v1/api-keys", json!({ "name": format!("k{i}") }))
            .await;
        assert_eq!(created.status, 201, "{:?}", created.body);
        let id = created.data()["id"].as_str().unwrap().to_owned();
        let revoked = api.delete(&format!("/v1/api-keys/{id}")).await;
        assert!(revoked.status < 300, "{:?}", revoked.body);
    }

    let refused = run(&["compact", "--config", path_str(&config)]);
    assert_eq!(refused.status.code(), Some(1), "{}", stderr(&refused));
    assert!(stderr(&refused).contains("is hookgate running?"));

    let status = tokio::task::spawn_blocking(move || gateway.terminate())
        .await
        .unwrap();
    assert!(status.success(), "exit status {status:?}");

    let db: PathBuf = dir.path().join("data/hookgate.redb");
    let on_disk_before = std::fs::metadata(&db).unwrap().len();
    let out = run_ok(&["compact", "--config", path_str(&config)]);
    let before: u64 = field(&out, "size_before_bytes").parse().unwrap();
    let after: u64 = field(&out, "size_after_bytes").parse().unwrap();
    assert_eq!(field(&out, "database"), path_str(&db));
    assert_eq!(before, on_disk_before);
    assert_eq!(after, std::fs::metadata(&db).unwrap().len());
    assert!(after < before, "compaction reclaimed nothing: {out}");
    let reclaimed: u64 = field(&out, "reclaimed_bytes").parse().unwrap();
    assert_eq!(reclaimed, before - after);

    let gateway = GatewayProcess::start(dir.path());
    let answer = gateway
        .client()
        .with_key(api.key.as_deref().unwrap())
        .get("/v1/account")
        .await;
    assert_eq!(answer.status, 200, "{:?}", answer.body);
    assert_eq!(answer.data()["id"], account["id"]);
    assert_eq!(answer.data()["name"], "kept");
    let status = tokio::task::spawn_blocking(move || gateway.terminate())
        .await
        .unwrap();
    assert!(status.success(), "exit status {status:?}");
}

/// The subcommand names in the "Commands:" section of a help text (without `help`).
fn listed_commands(help: &str) -> BTreeSet<String> {
    help.lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|name| *name != "help")
        .map(str::to_owned)
        .collect()
}

#[test]
fn every_command_has_help() {
    let top = run_ok(&["--help"]);
    let commands = listed_commands(&top);
    let expected: BTreeSet<String> = [
        "serve",
        "check-config",
        "init",
        "accounts",
        "compact",
        "version",
    ]
    .into_iter()
    .map(str::to_owned)
    .collect();
    assert_eq!(commands, expected, "{top}");

    // Walk the tree, so a command added later is covered without editing this test.
    let mut pending: Vec<Vec<String>> = commands.into_iter().map(|c| vec![c]).collect();
    let mut seen = 0;
    while let Some(path) = pending.pop() {
        let mut args: Vec<&str> = path.iter().map(String::as_str).collect();
        args.push("--help");
        let help = run_ok(&args);
        let usage = format!("Usage: hookgate {}", path.join(" "));
        assert!(help.contains(&usage), "{args:?}: {help}");
        for sub in listed_commands(&help) {
            let mut child = path.clone();
            child.push(sub);
            pending.push(child);
        }
        seen += 1;
    }
    assert!(seen >= 7, "accounts create is reached too");
}

#[test]
fn bad_arguments_exit_64_with_usage() {
    for args in [
        &["no-such-command"][..],
        &["init", "--no-such-flag"],
        &["accounts"],
        &["accounts", "create"],
        &[],
    ] {
        let out = run(args);
        assert_eq!(out.status.code(), Some(64), "{args:?}: {}", stderr(&out));
        assert!(
            stderr(&out).contains("Usage:"),
            "{args:?}: {}",
            stderr(&out)
        );
    }
}

#[test]
fn serve_notifies_systemd_when_ready_and_when_the_drain_starts() {
    use std::os::unix::net::UnixDatagram;

    let dir = tempfile::tempdir().unwrap();
    let socket_path = dir.path().join("notify.sock");
    let socket = UnixDatagram::bind(&socket_path).unwrap();
    socket.set_read_timeout(Some(WAIT)).unwrap();
    let config = dir.path().join("hookgate.toml");
    std::fs::write(
        &config,
        format!(
            "[server]\nlisten = \"127.0.0.1:0\"\n[storage]\ndata_dir = \"{}\"\n[log]\nlevel = \"warn\"\n",
            dir.path().join("data").display()
        ),
    )
    .unwrap();
    let mut child = Reaped(
        hookgate()
            .args(["serve", "--config", path_str(&config)])
            .env("NOTIFY_SOCKET", &socket_path)
            .stdout(Stdio::null())
            .spawn()
            .expect("spawn hookgate serve"),
    );
    let mut buf = [0u8; 512];
    let mut receive = || {
        let n = socket.recv(&mut buf).expect("a notification in time");
        String::from_utf8_lossy(&buf[..n]).into_owned()
    };
    let ready = receive();
    assert!(ready.lines().any(|l| l == "READY=1"), "{ready:?}");
    assert!(
        ready.contains("STATUS=Listening on 127.0.0.1:"),
        "{ready:?}"
    );

    let status = terminate(&mut child.0);
    let stopping = receive();
    assert_eq!(stopping.trim_end(), "STOPPING=1");
    assert!(status.success(), "exit status {status:?}");
}

/// A child killed when the test ends, pass or panic.
struct Reaped(Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// After a SIGKILL the next start repairs the database first; under systemd it keeps extending
/// its start timeout and says so in its status, so a long repair is not killed and restarted
/// from scratch. A start after a clean stop repairs nothing.
#[test]
fn a_start_after_sigkill_reports_the_repair_to_systemd_and_a_clean_start_does_not() {
    use std::io::Read;
    use std::os::unix::net::UnixDatagram;

    let dir = tempfile::tempdir().unwrap();
    let first = GatewayProcess::start(dir.path());
    let config = first.config_path.clone();
    first.kill();

    let socket_path = dir.path().join("notify.sock");
    let socket = UnixDatagram::bind(&socket_path).unwrap();
    socket.set_read_timeout(Some(WAIT)).unwrap();
    let start = || {
        Reaped(
            hookgate()
                .args(["serve", "--config", path_str(&config)])
                .env("NOTIFY_SOCKET", &socket_path)
                .env("RUST_LOG", "info")
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .expect("spawn hookgate serve"),
        )
    };
    let mut buf = [0u8; 512];
    let mut until_ready = || {
        let mut before = Vec::new();
        loop {
            let n = socket.recv(&mut buf).expect("a notification in time");
            let message = String::from_utf8_lossy(&buf[..n]).into_owned();
            if message.lines().any(|l| l == "READY=1") {
                return before;
            }
            before.push(message);
        }
    };

    // SIGTERM; returns what it logged.
    let stop = |mut child: Reaped| {
        assert!(terminate(&mut child.0).success());
        let mut log = String::new();
        let mut stderr = child.0.stderr.take().unwrap();
        stderr.read_to_string(&mut log).unwrap();
        log
    };

    let child = start();
    let before = until_ready();
    assert!(
        before
            .iter()
            .any(|m| m.lines().any(|l| l == "EXTEND_TIMEOUT_USEC=30000000")
                && m.contains("STATUS=Repairing the database after an unclean stop")),
        "{before:?}"
    );
    let log = stop(child);
    assert!(log.contains("was not shut down cleanly"), "{log}");
    assert!(log.contains("Database repaired."), "{log}");
    let _stopping = socket.recv(&mut [0u8; 64]).expect("STOPPING=1");

    let child = start();
    let before = until_ready();
    assert!(before.is_empty(), "{before:?}");
    let log = stop(child);
    assert!(!log.contains("repair"), "{log}");
}
