//! Logs of the real binary: JSON when asked, the request id on every line logged while serving
//! a request, and never a secret, signature or API key.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use hmac::{Hmac, Mac};
use serde_json::{json, Value};

use crate::support::{Api, ADMIN_KEY};

#[tokio::test]
async fn json_logs_carry_request_ids_and_no_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("hookgate.toml");
    std::fs::write(
        &config,
        format!(
            "[server]\nlisten = \"127.0.0.1:0\"\n[storage]\ndata_dir = \"{}\"\n[admin]\napi_key = \"{ADMIN_KEY}\"\n[log]\nformat = \"json\"\nlevel = \"hookgate=debug,warn\"\n",
            dir.path().join("data").display()
        ),
    )
    .unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_hookgate"))
        .args(["serve", "--config"])
        .arg(&config)
        .env_remove("RUST_LOG")
        .env_remove("HOOKGATE_ADMIN_KEY")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let addr = line
        .trim()
        .strip_prefix("hookgate ready listen=")
        .unwrap()
        .parse()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let logs = std::thread::spawn(move || {
        BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
            .collect::<Vec<String>>()
    });

    let api = Api::new(addr);
    let (api, _) = api.new_account("logs").await;
    let key = api.key.clone().unwrap();
    let secret = "gh-webhook-secret-value";
    let src = api
        .post("/v1/sources", json!({"name": "gh", "kind": "webhook", "verification": {"provider": "github", "secret": secret}}))
        .await;
    let path = src.data()["ingest_path"].as_str().unwrap().to_owned();
    let token = src.data()["path_token"].as_str().unwrap().to_owned();
    let body = r#"{"action":"opened"}"#;
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(body.as_bytes());
    let signature = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
    let ok = api
        .http
        .post(format!("{}{path}", api.base))
        .header("x-hub-signature-256", &signature)
        .header("x-github-event", "pull_request")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    let bad = api
        .http
        .post(format!("{}{path}", api.base))
        .header("x-hub-signature-256", "sha256=00")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 401);
    let request_ids: Vec<String> = [ok, bad]
        .iter()
        .map(|r| r.headers()["x-request-id"].to_str().unwrap().to_owned())
        .collect();

    let status = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status()
        .unwrap();
    assert!(status.success());
    let waited = tokio::task::spawn_blocking(move || child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(waited.success());
    let lines = tokio::time::timeout(
        Duration::from_secs(10),
        tokio::task::spawn_blocking(move || logs.join().unwrap()),
    )
    .await
    .unwrap()
    .unwrap();

    assert!(!lines.is_empty());
    for l in &lines {
        let v: Value = serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}"));
        assert!(
            v["message"].is_string()
                || v["fields"]["message"].is_string()
                || v.get("message").is_some(),
            "{l}"
        );
        for needle in [
            key.as_str(),
            ADMIN_KEY,
            secret,
            signature.as_str(),
            token.as_str(),
        ] {
            assert!(!l.contains(needle), "a log line leaks a secret: {l}");
        }
    }
    for id in &request_ids {
        let served: Vec<&String> = lines.iter().filter(|l| l.contains(id)).collect();
        assert!(!served.is_empty(), "no log line carries request id {id}");
        assert!(
            served.iter().all(|l| l.contains("\"request_id\"")),
            "{served:?}"
        );
    }
    assert!(
        lines
            .iter()
            .any(|l| l.contains("signature_mismatch") && l.contains(&request_ids[1])),
        "the refused request's reason is logged with its request id"
    );
}
