//! The one rule under SIGKILL: every event that got a 200 from ingest is on disk after the
//! process is killed mid-stream and restarted, with its exact body and its delivery rows.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};

use crate::support::{Api, GatewayProcess};

const CLIENTS: usize = 32;

struct Fixture {
    key: String,
    ingest_path: String,
}

async fn setup(api: &Api) -> Fixture {
    let (api, _) = api.new_account("crash").await;
    let src = api
        .post("/v1/sources", json!({"name": "s", "kind": "webhook"}))
        .await;
    let dst = api
        .post(
            "/v1/destinations",
            json!({"name": "d", "url": "http://127.0.0.1:9/x", "enabled": false}),
        )
        .await;
    let rte = api
        .post(
            "/v1/routes",
            json!({"source_id": src.data()["id"], "destination_id": dst.data()["id"]}),
        )
        .await;
    assert_eq!(rte.status, 201);
    Fixture {
        key: api.key.clone().unwrap(),
        ingest_path: src.data()["ingest_path"].as_str().unwrap().to_owned(),
    }
}

/// Posts from `CLIENTS` tasks until the server dies; returns every acknowledged (id, body).
async fn load_until_killed(
    gw: GatewayProcess,
    path: &str,
    cycle: usize,
    kill_after: Duration,
) -> Vec<(String, String)> {
    let stop = Arc::new(AtomicBool::new(false));
    let acked_so_far = Arc::new(AtomicUsize::new(0));
    let base = format!("http://{}", gw.addr);
    let tasks: Vec<_> = (0..CLIENTS)
        .map(|client| {
            let (stop, url) = (stop.clone(), format!("{base}{path}"));
            let acked_so_far = acked_so_far.clone();
            tokio::spawn(async move {
                let http = reqwest::Client::new();
                let mut acked = Vec::new();
                let pad = "p".repeat(900);
                for n in 0.. {
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    let body = format!("{{\"type\":\"crash.test\",\"cycle\":{cycle},\"client\":{client},\"n\":{n},\"pad\":\"{pad}\"}}");
                    let Ok(resp) = http.post(&url).header("content-type", "application/json").body(body.clone()).send().await else {
                        break;
                    };
                    if resp.status() != 200 {
                        break;
                    }
                    let Ok(v) = resp.json::<Value>().await else { break };
                    acked.push((v["data"]["event_id"].as_str().unwrap().to_owned(), body));
                    acked_so_far.fetch_add(1, Ordering::Relaxed);
                }
                acked
            })
        })
        .collect();
    tokio::time::sleep(kill_after).await;
    // On a loaded machine (CI, a build beside it) the restarted server may not have answered
    // anything yet; a kill then would test nothing. Give it up to 10 s to acknowledge one.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while acked_so_far.load(Ordering::Relaxed) == 0 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    gw.kill();
    stop.store(true, Ordering::Relaxed);
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    all
}

async fn verify(api: &Api, acked: &HashMap<String, String>) {
    let ids: Vec<_> = acked.keys().cloned().collect();
    for chunk in ids.chunks(64) {
        let checks: Vec<_> = chunk
            .iter()
            .map(|id| {
                let (api, id, body) = (api.clone(), id.clone(), acked[id].clone());
                tokio::spawn(async move {
                    let e = api.get(&format!("/v1/events/{id}")).await;
                    assert_eq!(e.status, 200, "acknowledged event {id} lost");
                    assert_eq!(
                        e.data()["body"].as_str().unwrap(),
                        body,
                        "{id} body differs"
                    );
                    let d = api.get(&format!("/v1/events/{id}/deliveries")).await;
                    assert_eq!(
                        d.data().as_array().unwrap().len(),
                        1,
                        "{id} lost its delivery row"
                    );
                })
            })
            .collect();
        for c in checks {
            c.await.unwrap();
        }
    }
}

async fn kill_cycles(cycles: usize) {
    let dir = tempfile::tempdir().unwrap();
    let mut acked: HashMap<String, String> = HashMap::new();
    let gw = GatewayProcess::start(dir.path());
    let fixture = setup(&gw.client()).await;
    let mut gw = Some(gw);
    for cycle in 0..cycles {
        let g = gw
            .take()
            .unwrap_or_else(|| GatewayProcess::start(dir.path()));
        // Vary the kill instant so it lands in different phases of the commit cycle.
        let kill_after = Duration::from_millis(150 + (cycle as u64 * 37) % 250);
        let got = load_until_killed(g, &fixture.ingest_path, cycle, kill_after).await;
        assert!(
            !got.is_empty(),
            "cycle {cycle}: nothing acknowledged before the kill"
        );
        acked.extend(got);
        let g = GatewayProcess::start(dir.path());
        verify(&g.client().with_key(&fixture.key), &acked).await;
        gw = Some(g);
    }
    println!(
        "{cycles} SIGKILL cycles, {} acknowledged events all present",
        acked.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_events_survive_sigkill_mid_stream() {
    kill_cycles(3).await;
}

/// The long form for manual runs: `cargo test --release --test it -- --ignored many_sigkill`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore]
async fn acknowledged_events_survive_many_sigkill_cycles() {
    kill_cycles(25).await;
}

/// SIGKILL while deliveries are in flight and retries are scheduled: after a restart every
/// acknowledged event reaches the receiver, and the receiver sees nothing that was never stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_events_reach_the_receiver_across_sigkill() {
    use crate::support::receiver::{Reply, TestReceiver};
    use std::collections::HashSet;

    // Slow answers keep attempts in flight; every fourth fails so retries are scheduled.
    let script = (0..20_000)
        .map(|i| {
            if i % 4 == 1 {
                Reply::status(503)
            } else {
                Reply::status(200).delay(Duration::from_millis(20))
            }
        })
        .collect();
    let mut rx = TestReceiver::start(script).await;
    let dir = tempfile::tempdir().unwrap();
    let gw = GatewayProcess::start(dir.path());
    let (api, _) = gw.client().new_account("crash").await;
    let key = api.key.clone().unwrap();
    let src = api
        .post("/v1/sources", json!({"name": "s", "kind": "webhook"}))
        .await;
    let dst = api
        .post("/v1/destinations", json!({"name": "d", "url": rx.url("/"), "max_in_flight": 8,
            // Long enough that a quarter of answers failing cannot dead-letter anything
            // (all 16 attempts failing: 4^-16).
            "retry": {"schedule": ["200ms", "200ms", "200ms", "200ms", "200ms", "200ms", "200ms", "200ms",
                                   "200ms", "200ms", "200ms", "200ms", "200ms", "200ms", "200ms"], "jitter": false}}))
        .await;
    api.post(
        "/v1/routes",
        json!({"source_id": src.data()["id"], "destination_id": dst.data()["id"]}),
    )
    .await;
    let path = src.data()["ingest_path"].as_str().unwrap().to_owned();

    let acked = load_until_killed(gw, &path, 0, Duration::from_millis(400)).await;
    assert!(!acked.is_empty());
    let acked: HashSet<String> = acked.into_iter().map(|(id, _)| id).collect();

    let gw = GatewayProcess::start(dir.path());
    let api = gw.client().with_key(&key);
    let mut delivered: HashSet<String> = HashSet::new();
    let mut seen: HashSet<String> = HashSet::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while !acked.is_subset(&delivered) {
        assert!(
            std::time::Instant::now() < deadline,
            "{} of {} acknowledged events never delivered",
            acked.difference(&delivered).count(),
            acked.len()
        );
        if let Some(r) = rx.next(Duration::from_secs(1)).await {
            let id = r.header("webhook-id").to_owned();
            if r.answered == 200 {
                delivered.insert(id.clone());
            }
            seen.insert(id);
        }
    }
    for r in rx.drain() {
        seen.insert(r.header("webhook-id").to_owned());
    }
    for id in &seen {
        let e = api.get(&format!("/v1/events/{id}")).await;
        assert_eq!(
            e.status, 200,
            "the receiver got {id}, which was never stored"
        );
    }
    println!(
        "{} acknowledged events, all delivered after SIGKILL; receiver saw {} distinct events",
        acked.len(),
        seen.len()
    );
    gw.kill();
}

/// SIGTERM under ingest load: the drain finishes in-flight commits, the process exits 0 within
/// the grace period, and every event that got a 200 is there after the restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_under_ingest_load_exits_zero_and_keeps_every_acknowledged_event() {
    let dir = tempfile::tempdir().unwrap();
    let gw = GatewayProcess::start(dir.path());
    let fixture = setup(&gw.client()).await;
    let stop = Arc::new(AtomicBool::new(false));
    let url = format!("http://{}{}", gw.addr, fixture.ingest_path);
    let clients: Vec<_> = (0..16)
        .map(|client| {
            let (stop, url) = (stop.clone(), url.clone());
            tokio::spawn(async move {
                let http = reqwest::Client::new();
                let mut acked = Vec::new();
                for n in 0.. {
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    let body = format!("{{\"type\":\"drain\",\"client\":{client},\"n\":{n}}}");
                    match http.post(&url).body(body.clone()).send().await {
                        Ok(r) if r.status() == 200 => {
                            let v: Value = r.json().await.unwrap();
                            acked.push((v["data"]["event_id"].as_str().unwrap().to_owned(), body));
                        }
                        // 503 while draining, or the connection closed: stop this client.
                        _ => break,
                    }
                }
                acked
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let started = std::time::Instant::now();
    let status = tokio::task::spawn_blocking(move || gw.terminate())
        .await
        .unwrap();
    let took = started.elapsed();
    stop.store(true, Ordering::Relaxed);
    assert!(status.success(), "exit status {status:?}");
    assert!(
        took < Duration::from_secs(10),
        "drain took {took:?}, over the grace period"
    );
    let mut acked = HashMap::new();
    for c in clients {
        acked.extend(c.await.unwrap());
    }
    assert!(!acked.is_empty());
    let gw = GatewayProcess::start(dir.path());
    verify(&gw.client().with_key(&fixture.key), &acked).await;
    println!(
        "SIGTERM under load: exit 0 after {took:?}, {} acknowledged events all present",
        acked.len()
    );
    gw.kill();
}
