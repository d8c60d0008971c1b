//! `/metrics` after known traffic: every counter and histogram moves by exactly the expected
//! amount.

use std::time::{Duration, Instant};

use serde_json::json;

use crate::support::receiver::{Reply, TestReceiver};
use crate::support::{Api, TestGateway};

/// The value of one sample line, e.g. `metric(&text, "hookgate_x_total{outcome=\"a\"}")`.
fn metric(text: &str, series: &str) -> f64 {
    text.lines()
        .find(|l| l.starts_with(series) && l[series.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

async fn post_raw(api: &Api, path: &str, headers: &[(&str, &str)], body: Vec<u8>) -> u16 {
    let mut req = api
        .http
        .post(format!("{}{path}", api.base))
        .header("content-type", "application/json");
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    req.body(body).send().await.unwrap().status().as_u16()
}

#[tokio::test]
async fn counters_and_histograms_move_by_exactly_the_traffic_sent() {
    let mut rx = TestReceiver::start(vec![]).await;
    let mut rx_bad = TestReceiver::start(vec![]).await;
    rx_bad.set_default(Reply::status(500));
    let gw = TestGateway::start_with(tempfile::tempdir().unwrap(), |c| {
        c.server.max_body_bytes = 2048
    })
    .await;
    let (api, _) = gw.client().new_account("m").await;
    let open = api
        .post("/v1/sources", json!({"name": "open", "kind": "webhook"}))
        .await;
    let gh = api
        .post("/v1/sources", json!({"name": "gh", "kind": "webhook", "verification": {"provider": "github", "secret": "s"}}))
        .await;
    let src_open = open.data()["id"].as_str().unwrap().to_owned();
    let src_gh = gh.data()["id"].as_str().unwrap().to_owned();
    let dst = api
        .post("/v1/destinations", json!({"name": "r", "url": rx.url("/"), "retry": {"schedule": ["20ms"], "jitter": false}}))
        .await;
    let dst_id = dst.data()["id"].as_str().unwrap().to_owned();
    api.post("/v1/routes", json!({"source_id": src_open, "destination_id": dst_id, "event_type_pattern": "deliver.ok"}))
        .await;
    let bad = api
        .post("/v1/destinations", json!({"name": "bad", "url": rx_bad.url("/"), "retry": {"schedule": ["20ms"], "jitter": false}}))
        .await;
    let bad_id = bad.data()["id"].as_str().unwrap().to_owned();
    api.post("/v1/routes", json!({"source_id": src_open, "destination_id": bad_id, "event_type_pattern": "deliver.fails"}))
        .await;
    let api_src = api
        .post("/v1/sources", json!({"name": "out", "kind": "api"}))
        .await;
    let before = gw.metrics_text().await;

    let open_path = open.data()["ingest_path"].as_str().unwrap().to_owned();
    let gh_path = gh.data()["ingest_path"].as_str().unwrap().to_owned();
    assert_eq!(
        post_raw(
            &api,
            &open_path,
            &[],
            br#"{"type":"deliver.ok","n":1}"#.to_vec()
        )
        .await,
        200
    );
    assert_eq!(
        post_raw(
            &api,
            &open_path,
            &[],
            br#"{"type":"deliver.ok","n":2}"#.to_vec()
        )
        .await,
        200
    );
    assert_eq!(
        post_raw(
            &api,
            &open_path,
            &[],
            br#"{"type":"deliver.fails"}"#.to_vec()
        )
        .await,
        200
    );
    assert_eq!(
        post_raw(&api, &open_path, &[], br#"{"type":"other"}"#.to_vec()).await,
        200
    );
    assert_eq!(post_raw(&api, &open_path, &[], vec![b'x'; 4096]).await, 413);
    assert_eq!(
        post_raw(
            &api,
            &gh_path,
            &[("x-hub-signature-256", "sha256=00")],
            b"{}".to_vec()
        )
        .await,
        401
    );
    assert_eq!(
        post_raw(&api, "/ingest/nope", &[], b"{}".to_vec()).await,
        404
    );
    let msg =
        json!({"source": api_src.data()["id"], "event_type": "a.b", "payload": {}, "id": "k1"});
    assert_eq!(api.post("/v1/messages", msg.clone()).await.status, 202);
    assert_eq!(api.post("/v1/messages", msg).await.status, 409);
    assert_eq!(
        api.post(
            "/v1/messages",
            json!({"source": "missing", "event_type": "a", "payload": 1})
        )
        .await
        .status,
        404
    );

    // Two delivered, one failing twice into a dead letter.
    for _ in 0..2 {
        rx.next(Duration::from_secs(10)).await.expect("delivery");
        rx_bad
            .next(Duration::from_secs(10))
            .await
            .expect("failing attempt");
    }
    // The store records an outcome before the scheduler counts it: wait for both.
    let counted =
        |text: &str, series: &str, n: f64| metric(text, series) - metric(&before, series) == n;
    let dead_letter =
        format!("hookgate_deliveries_total{{destination_id=\"{bad_id}\",outcome=\"dead_letter\"}}");
    let delivered =
        format!("hookgate_deliveries_total{{destination_id=\"{dst_id}\",outcome=\"delivered\"}}");
    let deadline = Instant::now() + Duration::from_secs(10);
    let after = loop {
        let text = gw.metrics_text().await;
        if metric(&text, "hookgate_queue_depth{state=\"dead_letter\"}") == 1.0
            && counted(&text, &dead_letter, 1.0)
            && counted(&text, &delivered, 2.0)
        {
            break text;
        }
        assert!(
            Instant::now() < deadline,
            "dead letter never counted:\n{text}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };

    let delta = |series: &str| metric(&after, series) - metric(&before, series);
    let ingest = |source: &str, outcome: &str| {
        delta(&format!(
            "hookgate_ingest_requests_total{{outcome=\"{outcome}\",source_id=\"{source}\"}}"
        ))
    };
    assert_eq!(ingest(&src_open, "accepted"), 4.0);
    assert_eq!(ingest(&src_open, "too_large"), 1.0);
    assert_eq!(ingest(&src_gh, "unauthorized"), 1.0);
    assert_eq!(ingest("unknown", "not_found"), 1.0);
    assert_eq!(delta("hookgate_ingest_verification_failures_total{provider=\"github\",reason=\"signature_mismatch\"}"), 1.0);
    assert_eq!(delta("hookgate_messages_total{outcome=\"accepted\"}"), 1.0);
    assert_eq!(delta("hookgate_messages_total{outcome=\"duplicate\"}"), 1.0);
    assert_eq!(delta("hookgate_messages_total{outcome=\"not_found\"}"), 1.0);
    let deliveries = |dst: &str, outcome: &str| {
        delta(&format!(
            "hookgate_deliveries_total{{destination_id=\"{dst}\",outcome=\"{outcome}\"}}"
        ))
    };
    assert_eq!(deliveries(&dst_id, "delivered"), 2.0);
    assert_eq!(deliveries(&dst_id, "retry"), 0.0);
    assert_eq!(deliveries(&bad_id, "retry"), 1.0);
    assert_eq!(deliveries(&bad_id, "dead_letter"), 1.0);
    assert_eq!(delta("hookgate_delivery_duration_seconds_count"), 4.0);
    // Journal jobs: 4 events, 2 messages (the duplicate is checked inside its job), 4 attempt
    // records; refusals before verification never reach the journal.
    assert_eq!(delta("hookgate_journal_batch_size_sum"), 10.0);
    assert!(delta("hookgate_journal_commits_total") >= 1.0);
    assert_eq!(
        delta("hookgate_journal_commit_duration_seconds_count"),
        delta("hookgate_journal_batch_size_count")
    );
    assert_eq!(
        metric(&after, "hookgate_queue_depth{state=\"pending\"}"),
        0.0
    );
    assert_eq!(
        metric(&after, "hookgate_queue_depth{state=\"retry_scheduled\"}"),
        0.0
    );
    assert_eq!(
        metric(&after, "hookgate_queue_depth{state=\"delivering\"}"),
        0.0
    );
    assert_eq!(metric(&after, "hookgate_destinations_disabled"), 0.0);
    assert!(metric(&after, "hookgate_storage_bytes") > 0.0);
    assert_eq!(
        metric(
            &after,
            &format!(
                "hookgate_build_info{{version=\"{}\"}}",
                env!("CARGO_PKG_VERSION")
            )
        ),
        1.0
    );
    gw.stop().await;
}

#[tokio::test]
async fn queue_depth_and_oldest_pending_show_a_stuck_destination() {
    let gw = TestGateway::start().await;
    let (api, _) = gw.client().new_account("m").await;
    let src = api
        .post("/v1/sources", json!({"name": "s", "kind": "webhook"}))
        .await;
    let dst = api
        .post(
            "/v1/destinations",
            json!({"name": "d", "url": "http://127.0.0.1:9/", "enabled": false}),
        )
        .await;
    api.post(
        "/v1/routes",
        json!({"source_id": src.data()["id"], "destination_id": dst.data()["id"]}),
    )
    .await;
    let path = src.data()["ingest_path"].as_str().unwrap().to_owned();
    for _ in 0..3 {
        assert_eq!(post_raw(&api, &path, &[], b"{}".to_vec()).await, 200);
    }
    let text = gw.metrics_text().await;
    assert_eq!(
        metric(&text, "hookgate_queue_depth{state=\"pending\"}"),
        3.0,
        "{text}"
    );
    assert_eq!(metric(&text, "hookgate_destinations_disabled"), 1.0);
    assert!(metric(&text, "hookgate_oldest_pending_seconds") >= 0.0);
    gw.stop().await;
}

#[tokio::test]
async fn metrics_listener_serves_only_metrics_and_resource_labels_can_be_turned_off() {
    let gw = TestGateway::start_with(tempfile::tempdir().unwrap(), |c| {
        c.metrics.listen = Some("127.0.0.1:0".parse().unwrap());
        c.metrics.per_resource_labels = false;
    })
    .await;
    let (api, _) = gw.client().new_account("m").await;
    let src = api
        .post("/v1/sources", json!({"name": "s", "kind": "webhook"}))
        .await;
    let path = src.data()["ingest_path"].as_str().unwrap().to_owned();
    assert_eq!(post_raw(&api, &path, &[], b"{}".to_vec()).await, 200);

    let base = format!("http://{}", gw.metrics_addr.expect("metrics listener"));
    let text = reqwest::get(format!("{base}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(
        metric(
            &text,
            "hookgate_ingest_requests_total{outcome=\"accepted\",source_id=\"all\"}"
        ),
        1.0,
        "{text}"
    );
    assert!(
        !text.contains(src.data()["id"].as_str().unwrap()),
        "no per-source series"
    );
    let other = reqwest::get(format!("{base}/v1/sources")).await.unwrap();
    assert_eq!(
        other.status(),
        404,
        "the metrics listener serves nothing else"
    );
    gw.stop().await;
}
