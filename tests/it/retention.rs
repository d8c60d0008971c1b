//! Retention through the real server: the cleaner removes old settled events and never one with
//! a delivery still owed, accounts choose their own retention, and under a constant load the
//! database file stops growing because redb reuses the pages retention frees.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::support::receiver::TestReceiver;
use crate::support::{Api, TestGateway};

const WAIT: Duration = Duration::from_secs(10);

async fn start(retention: Duration) -> TestGateway {
    TestGateway::start_with(tempfile::tempdir().unwrap(), |c| {
        c.retention.default_retention = retention;
        c.retention.interval = Duration::from_millis(200);
    })
    .await
}

async fn ingest(api: &Api, path: &str, body: String) -> String {
    let a = Api::answer(
        api.http
            .post(format!("{}{path}", api.base))
            .header("content-type", "application/json")
            .body(body),
    )
    .await;
    assert_eq!(a.status, 200, "{:?}", a.body);
    a.data()["event_id"].as_str().unwrap().to_owned()
}

/// Polls `path` until `check` holds on (status, body); returns when it did.
async fn until(api: &Api, path: &str, check: impl Fn(u16, &Value) -> bool) -> Instant {
    let deadline = Instant::now() + WAIT;
    loop {
        let a = api.get(path).await;
        if check(a.status, &a.body) {
            return Instant::now();
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting on {path}: last {} {:?}",
            a.status,
            a.body
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn retention_runs(gw: &TestGateway) -> u64 {
    let text = gw.metrics_text().await;
    let series = "hookgate_retention_runs_total{outcome=\"ok\"} ";
    text.lines()
        .find_map(|l| l.strip_prefix(series))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// Waits until the cleaner has completed two more runs than now, so at least one whole run
/// started after this call.
async fn two_more_runs(gw: &TestGateway) {
    let start = retention_runs(gw).await;
    let deadline = Instant::now() + WAIT;
    while retention_runs(gw).await < start + 2 {
        assert!(Instant::now() < deadline, "the cleaner stopped running");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn old_delivered_events_disappear_and_pending_ones_stay() {
    let retention = Duration::from_secs(2);
    let rx = TestReceiver::start(vec![]).await;
    let gw = start(retention).await;
    let (api, _) = gw.client().new_account("acme").await;
    let src = api
        .post("/v1/sources", json!({"name": "in", "kind": "webhook"}))
        .await;
    let path = src.data()["ingest_path"].as_str().unwrap().to_owned();
    let live = api
        .post(
            "/v1/destinations",
            json!({"name": "live", "url": rx.url("/hook")}),
        )
        .await;
    // Disabled: its deliveries stay pending for as long as it is.
    let parked = api
        .post(
            "/v1/destinations",
            json!({"name": "parked", "url": rx.url("/parked"), "enabled": false}),
        )
        .await;
    assert_eq!((live.status, parked.status), (201, 201));
    for (dst, pattern) in [(&live, "order.*"), (&parked, "audit.*")] {
        let r = api
            .post(
                "/v1/routes",
                json!({"source_id": src.data()["id"], "destination_id": dst.data()["id"],
                       "event_type_pattern": pattern}),
            )
            .await;
        assert_eq!(r.status, 201, "{:?}", r.body);
    }

    // The pending event first: it is older than the delivered ones, so the cleaner run that
    // removes them has examined it too.
    let sent = Instant::now();
    let pending = ingest(&api, &path, json!({"type": "audit.logged"}).to_string()).await;
    let mut delivered = Vec::new();
    for i in 0..3 {
        let body = json!({"type": "order.paid", "n": i}).to_string();
        delivered.push(ingest(&api, &path, body).await);
    }
    for id in &delivered {
        until(&api, &format!("/v1/events/{id}/attempts"), |s, b| {
            s == 200 && b["data"].as_array().is_some_and(|a| a.len() == 1)
        })
        .await;
    }

    for id in &delivered {
        let gone = until(&api, &format!("/v1/events/{id}"), |s, _| s == 404).await;
        assert!(
            gone - sent >= retention,
            "removed after {:?}, before its retention",
            gone - sent
        );
        let attempts = api.get(&format!("/v1/events/{id}/attempts")).await;
        assert_eq!(attempts.status, 404, "{:?}", attempts.body);
    }
    let listed = api.get("/v1/events").await;
    let ids: Vec<&str> = listed
        .data()
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [pending.as_str()]);
    let kept = api.get(&format!("/v1/events/{pending}")).await;
    assert_eq!(kept.status, 200);
    assert_eq!(kept.data()["status"], "queued");
    let deliveries = api.get(&format!("/v1/events/{pending}/deliveries")).await;
    assert_eq!(deliveries.data()[0]["status"], "pending");
    assert_eq!(deliveries.data()[0]["destination_id"], parked.data()["id"]);

    // Per-account retention: 0 keeps everything; a PATCH of only `retention_days` leaves the
    // notification destination as it was.
    let notify = json!({"notification_destination_id": live.data()["id"]});
    assert_eq!(api.patch("/v1/account", notify).await.status, 200);
    let p = api.patch("/v1/account", json!({"retention_days": 0})).await;
    assert_eq!(p.status, 200, "{:?}", p.body);
    assert_eq!(p.data()["retention_days"], 0);
    assert_eq!(p.data()["notification_destination_id"], live.data()["id"]);
    assert_eq!(api.get("/v1/account").await.data()["retention_days"], 0);
    let bad = api
        .patch("/v1/account", json!({"retention_days": 36_501}))
        .await;
    assert_eq!(bad.status, 422, "{:?}", bad.body);

    let sent = Instant::now();
    let forever = ingest(&api, &path, json!({"type": "order.paid"}).to_string()).await;
    until(&api, &format!("/v1/events/{forever}"), |_, b| {
        b["data"]["status"] == "delivered"
    })
    .await;
    // Let it grow older than the global retention, then see the cleaner run past that point.
    tokio::time::sleep(
        (sent + retention + Duration::from_millis(100)).saturating_duration_since(Instant::now()),
    )
    .await;
    two_more_runs(&gw).await;
    assert_eq!(api.get(&format!("/v1/events/{forever}")).await.status, 200);

    // Null returns the account to the global default, and the event goes.
    let p = api
        .patch("/v1/account", json!({"retention_days": null}))
        .await;
    assert_eq!(p.status, 200, "{:?}", p.body);
    assert!(p.data()["retention_days"].is_null());
    assert_eq!(p.data()["notification_destination_id"], live.data()["id"]);
    until(&api, &format!("/v1/events/{forever}"), |s, _| s == 404).await;
    assert_eq!(api.get(&format!("/v1/events/{pending}")).await.status, 200);

    gw.stop().await;
}

#[tokio::test]
async fn database_file_size_plateaus_under_constant_load() {
    const SENDERS: usize = 4;
    const PER_SENDER_PER_S: u64 = 50;
    const BODY_BYTES: usize = 2048;
    const LOAD: Duration = Duration::from_secs(8);
    let gw = start(Duration::from_secs(1)).await;
    let db = gw.dir.path().join("hookgate.redb");
    let (api, _) = gw.client().new_account("load").await;
    // No route: every event is `received`, with no delivery to wait for, so retention may
    // remove each one as soon as it is a second old.
    let src = api
        .post("/v1/sources", json!({"name": "in", "kind": "webhook"}))
        .await;
    let path = src.data()["ingest_path"].as_str().unwrap().to_owned();

    let started = Instant::now();
    let mut senders = Vec::new();
    for s in 0..SENDERS {
        let (api, path) = (api.clone(), path.clone());
        senders.push(tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(1000 / PER_SENDER_PER_S));
            // A stalled machine sends less rather than a burst: the load stays constant.
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
            let (mut n, mut bytes, mut first) = (0u64, 0u64, None);
            while started.elapsed() < LOAD {
                tick.tick().await;
                let pad = "x".repeat(BODY_BYTES - 40);
                let body = format!(r#"{{"type":"tick","s":{s},"n":{n},"p":"{pad}"}}"#);
                bytes += body.len() as u64;
                let id = ingest(&api, &path, body).await;
                first.get_or_insert(id);
                n += 1;
            }
            (n, bytes, first)
        }));
    }
    let mut sizes = Vec::new();
    let mut sample = tokio::time::interval(Duration::from_secs(1));
    while started.elapsed() < LOAD {
        sample.tick().await;
        sizes.push(std::fs::metadata(&db).unwrap().len());
    }
    let (mut events, mut ingested, mut firsts) = (0, 0, Vec::new());
    for s in senders {
        let (n, bytes, first) = tokio::time::timeout(WAIT, s).await.unwrap().unwrap();
        events += n;
        ingested += bytes;
        firsts.extend(first);
    }
    eprintln!("file size by second: {sizes:?}; {events} events, {ingested} body bytes ingested");
    assert!(sizes.len() >= 7, "too few samples: {sizes:?}");

    // Seconds 2 and 3: the cleaner has been removing for a second (retention 1 s), so the live
    // set is at its steady size. Last three seconds: whatever the file grew to since.
    let early = *sizes[2..=3].iter().max().unwrap();
    let late = *sizes[sizes.len() - 3..].iter().max().unwrap();
    // Margin: 2.5x. Measured on this machine: with the cleaner the file stays at 1.1 MB;
    // with two or three busy loops competing for the 2 cores a delayed cleaner run lets the live
    // set spill into one more growth step (1.7 MB, once 2.2 MB, shrinking back after). Without
    // retention the same load grows it 1.1 MB -> 2.2 (2 s) -> 4.5 (3 s) -> 8.9 MB (6 s), so
    // 2.5x tolerates one step from a noisy machine and still fails a file that keeps growing.
    assert!(
        late <= early * 5 / 2,
        "the file kept growing: {early} bytes early, {late} late ({sizes:?})"
    );
    // Without the cleaner the file would hold at least every body ingested.
    assert!(
        late < ingested,
        "{late} bytes on disk for {ingested} ingested ({sizes:?})"
    );
    for id in firsts {
        assert_eq!(api.get(&format!("/v1/events/{id}")).await.status, 404);
    }

    gw.stop().await;
}
