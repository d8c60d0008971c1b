//! Fuzzes config loading: `Config::parse_raw` (TOML into `RawConfig`) then
//! `Config::from_raw` (validation). Operators hand-edit this file, so any
//! text must give a config or an error, never a panic; and because the file
//! may hold the operator key (`[admin] api_key`), errors must not leak it.
//!
//! Input: UTF-8 text (invalid bytes cut it short), used as the file content.
//!
//! Checks:
//! - Neither step panics; `parse_raw` fails only with `ConfigError::Parse`,
//!   `from_raw` only with `ConfigError::Invalid`.
//! - A parse error's `Display` never contains a 20+ byte run of the input
//!   that includes `SECRET` (config.rs promises message + line/column, never
//!   the source line). The seeds put `api_key = "SECRET..."` in the file.
//!   Backquoted key names (`` unknown field `lisen` ``) are exempt: naming
//!   the key is how a typo is found, and keys are not secrets.
//! - A validation error may quote the values it names by design
//!   (`server.listen`, `delivery.allow_cidrs[i]`, `log.format`,
//!   `log.level`, `admin.api_key_file`); with those quotes removed, the
//!   same no-`SECRET`-run rule holds, so the operator key is never quoted.
//! - The operator key never shows in `Debug` of `RawAdmin` or `AdminConfig`.
//!
//! `admin.api_key_file` makes `from_raw` read a file; a fuzzed path could
//! name a FIFO or `/dev/zero` and hang the run, so the harness swaps any
//! non-empty path for one that does not exist (the error path stays covered).

#![no_main]

use std::path::Path;

use hookgate::config::{Config, ConfigError};
use libfuzzer_sys::fuzz_target;

const MARKER: &[u8] = b"SECRET";
/// Shortest copied run that counts as a leak.
const LEAK_RUN: usize = 20;
const MISSING_KEY_FILE: &str = "/nonexistent/hookgate-fuzz/api-key";

/// A run of at least `LEAK_RUN` bytes of `input` containing `SECRET` that
/// also occurs in `shown`, if any.
fn leaked_run<'a>(input: &'a [u8], shown: &[u8]) -> Option<&'a [u8]> {
    if shown.len() < LEAK_RUN {
        return None;
    }
    // Every window of exactly LEAK_RUN bytes that contains the marker; a
    // longer leaked run contains such a window, so these suffice.
    input
        .windows(LEAK_RUN)
        .filter(|w| w.windows(MARKER.len()).any(|m| m == MARKER))
        .find(|w| shown.windows(LEAK_RUN).any(|s| s == *w))
}

fn assert_no_leak(what: &str, input: &str, shown: &str) {
    if let Some(run) = leaked_run(input.as_bytes(), shown.as_bytes()) {
        panic!(
            "{what} echoes input run {:?}:\n{shown}",
            String::from_utf8_lossy(run)
        );
    }
}

/// Drops every `` `...` `` span. serde and toml backquote *names* (`unknown
/// field `lisen``, `duplicate key `api_key``): quoting the key is how an
/// operator finds a typo, and a key is not a secret. Values are quoted with
/// `"..."` instead, and those stay subject to the leak check.
fn without_backquoted(shown: &str) -> String {
    shown.split('`').step_by(2).collect()
}

fn contains_marker(s: &str) -> bool {
    s.as_bytes().windows(MARKER.len()).any(|w| w == MARKER)
}

fuzz_target!(|data: &[u8]| {
    let text = match std::str::from_utf8(data) {
        Ok(text) => text,
        Err(e) => std::str::from_utf8(&data[..e.valid_up_to()]).unwrap_or_default(),
    };

    let mut raw = match Config::parse_raw(Path::new("fuzz.toml"), text) {
        Ok(raw) => raw,
        Err(e @ ConfigError::Parse { .. }) => {
            let shown = without_backquoted(&e.to_string());
            assert_no_leak("parse error (`names` removed)", text, &shown);
            return;
        }
        Err(other) => panic!("parse_raw failed with a non-parse error: {other:?}"),
    };

    if !raw.admin.api_key_file.is_empty() {
        raw.admin.api_key_file = MISSING_KEY_FILE.to_owned();
    }
    // TLS validation reads the certificate and key files too: same treatment.
    if let Some(tls) = raw.server.tls.as_mut() {
        tls.cert = MISSING_KEY_FILE.into();
        tls.key = MISSING_KEY_FILE.into();
    }
    let api_key = raw.admin.api_key.clone();
    let key_is_marked = contains_marker(&api_key);
    if key_is_marked {
        let shown = format!("{:?}", raw.admin);
        assert!(
            !shown.contains(&api_key),
            "RawAdmin Debug shows the key: {shown}"
        );
    }

    // What validation may quote, exactly as it quotes it.
    let mut quoted: Vec<String> = vec![
        raw.server.listen.escape_debug().to_string(),
        raw.log.format.escape_debug().to_string(),
        raw.log.level.escape_debug().to_string(),
        raw.admin.api_key_file.clone(),
        raw.metrics.listen.escape_debug().to_string(),
        MISSING_KEY_FILE.to_owned(),
    ];
    quoted.extend(
        raw.delivery
            .allow_cidrs
            .iter()
            .map(|c| c.escape_debug().to_string()),
    );
    // Longest first, so a quote containing another is removed whole.
    quoted.sort_by_key(|q| std::cmp::Reverse(q.len()));

    match Config::from_raw(raw, &|_| None) {
        Ok(config) => {
            if key_is_marked {
                let shown = format!("{:?}", config.admin);
                assert!(
                    !shown.contains(&api_key),
                    "AdminConfig Debug shows the key: {shown}"
                );
            }
        }
        Err(e @ ConfigError::Invalid(_)) => {
            let mut shown = e.to_string();
            for q in quoted.iter().filter(|q| !q.is_empty()) {
                shown = shown.replace(q.as_str(), "");
            }
            assert_no_leak("validation error (designed quotes removed)", text, &shown);
            if key_is_marked && !api_key.is_empty() {
                assert!(
                    !shown.contains(&api_key),
                    "validation error shows the key: {shown}"
                );
            }
        }
        Err(other) => panic!("from_raw failed with a non-validation error: {other:?}"),
    }
});
