//! `storage.cache_size_mb` bounds the gateway's memory: writing far more than the cache holds
//! leaves resident memory near where it was, and every event still reads back exactly from
//! pages that left the cache.

use std::time::Duration;

use serde_json::json;

use crate::support::GatewayProcess;

const EVENTS: usize = 40;
const BODY_BYTES: usize = 1_000_000;

fn rss_bytes(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS in /proc/<pid>/status");
    kib * 1024
}

fn body(n: usize) -> String {
    let head = format!("{{\"type\":\"cache.test\",\"n\":{n},\"pad\":\"");
    let mut b = head;
    // Distinct content per event, so a page mix-up could not read back as the right body.
    let fill = char::from(b'a' + (n % 26) as u8);
    b.extend(std::iter::repeat_n(fill, BODY_BYTES - b.len() - 2));
    b.push_str("\"}");
    b
}

#[tokio::test]
async fn a_small_cache_bounds_memory_and_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let gw = GatewayProcess::start_with_storage(dir.path(), "cache_size_mb = 8");
    let (api, _) = gw.client().new_account("cache").await;
    let src = api
        .post("/v1/sources", json!({"name": "s", "kind": "webhook"}))
        .await;
    let url = format!(
        "http://{}{}",
        gw.addr,
        src.data()["ingest_path"].as_str().unwrap()
    );
    let http = reqwest::Client::new();
    let post = |n: usize| {
        let (http, url) = (http.clone(), url.clone());
        async move {
            let resp = http.post(&url).body(body(n)).send().await.unwrap();
            assert_eq!(resp.status(), 200);
            let v: serde_json::Value = resp.json().await.unwrap();
            v["data"]["event_id"].as_str().unwrap().to_owned()
        }
    };
    // Warm-up: connection buffers and allocator arenas for 1 MB bodies exist before measuring.
    let mut ids = Vec::new();
    for n in 0..4 {
        ids.push((n, post(n).await));
    }
    let before = rss_bytes(gw.child.id());
    for n in 4..EVENTS {
        ids.push((n, post(n).await));
    }
    // mimalloc returns freed pages to the OS after a 1 s delay, on later allocator activity:
    // measured before that, a fast build counts bodies already freed.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    ids.push((EVENTS, post(EVENTS).await));
    let grown = rss_bytes(gw.child.id()).saturating_sub(before);
    let written = ((EVENTS - 3) * BODY_BYTES) as u64;
    assert!(
        grown < written / 2,
        "resident memory grew {grown} bytes while {written} bytes were written with an 8 MiB cache"
    );

    for (n, id) in ids {
        let event = api.get(&format!("/v1/events/{id}")).await;
        assert_eq!(event.status, 200);
        assert!(
            event.data()["body"].as_str() == Some(body(n).as_str()),
            "event {n} ({id}) did not read back byte for byte"
        );
    }
    gw.kill();
}
