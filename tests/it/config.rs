//! `hookgate check-config` and `serve` on valid and invalid files, through the real binary.

use std::path::Path;
use std::process::Command;

fn hookgate() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_hookgate"));
    c.env_remove("HOOKGATE_ADMIN_KEY").env_remove("RUST_LOG");
    c
}

fn fixtures(kind: &str) -> Vec<std::path::PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/config")
        .join(kind);
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    files.sort();
    assert!(!files.is_empty());
    files
}

#[test]
fn check_config_accepts_every_valid_fixture_and_the_example() {
    let mut files = fixtures("valid");
    files.push(Path::new(env!("CARGO_MANIFEST_DIR")).join("config.example.toml"));
    for file in files {
        let out = hookgate()
            .arg("check-config")
            .arg("--config")
            .arg(&file)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}: {}",
            file.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(String::from_utf8_lossy(&out.stdout).contains("configuration is valid"));
    }
}

#[test]
fn check_config_rejects_every_invalid_fixture_with_its_reason_and_exit_64() {
    for file in fixtures("invalid") {
        let expect = std::fs::read_to_string(file.with_extension("expect")).unwrap();
        let out = hookgate()
            .arg("check-config")
            .arg("--config")
            .arg(&file)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(64), "{}", file.display());
        let stderr = String::from_utf8_lossy(&out.stderr);
        for line in expect.lines().filter(|l| !l.is_empty()) {
            assert!(
                stderr.contains(line),
                "{}: expected {line:?} in {stderr}",
                file.display()
            );
        }
    }
}

#[test]
fn check_config_names_a_missing_file() {
    let out = hookgate()
        .args(["check-config", "--config", "/nonexistent/hookgate.toml"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(64));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/hookgate.toml"));
}

#[test]
fn serve_refuses_an_invalid_config_before_binding() {
    let file =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/config/invalid/bad_values.toml");
    let out = hookgate()
        .arg("serve")
        .arg("--config")
        .arg(&file)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(64));
    assert!(String::from_utf8_lossy(&out.stderr).contains("server.listen"));
}

#[test]
fn the_admin_key_comes_from_the_environment_when_set() {
    let file = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/config/invalid/short_admin_key.toml");
    let out = hookgate()
        .env("HOOKGATE_ADMIN_KEY", "a-long-enough-operator-key")
        .arg("check-config")
        .arg("--config")
        .arg(&file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn version_prints_the_crate_version() {
    let out = hookgate().arg("version").output().unwrap();
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        format!("hookgate {}", env!("CARGO_PKG_VERSION"))
    );
}
