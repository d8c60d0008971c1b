//! The delivery engine through real parts: a gateway, real HTTP receivers on 127.0.0.1:0,
//! retries with test-sized schedules, dead letters and replay, FIFO, isolation, SSRF.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::support::receiver::{signed_by, Received, Reply, TestReceiver};
use crate::support::{metric, Api, TestGateway};

const WAIT: Duration = Duration::from_secs(10);

struct Setup {
    api: Api,
    ingest: String,
    destination: Value,
}

async fn setup(gw: &TestGateway, destination: Value) -> Setup {
    let (api, _) = gw.client().new_account("acme").await;
    let src = api
        .post("/v1/sources", json!({"name": "in", "kind": "webhook"}))
        .await;
    let mut body = json!({"name": "out"});
    body.as_object_mut()
        .unwrap()
        .extend(destination.as_object().unwrap().clone());
    let destination = route_to(&api, src.data(), body).await;
    Setup {
        api,
        ingest: src.data()["ingest_path"].as_str().unwrap().to_owned(),
        destination,
    }
}

/// Creates a destination from `body` and a route to it from `source`; returns the destination.
async fn route_to(api: &Api, source: &Value, body: Value) -> Value {
    let dst = api.post("/v1/destinations", body).await;
    assert_eq!(dst.status, 201, "{:?}", dst.body);
    let rte = api
        .post(
            "/v1/routes",
            json!({"source_id": source["id"], "destination_id": dst.data()["id"]}),
        )
        .await;
    assert_eq!(rte.status, 201);
    dst.data().clone()
}

async fn ingest(api: &Api, path: &str, body: &str) -> String {
    let a = Api::answer(
        api.http
            .post(format!("{}{path}", api.base))
            .header("content-type", "application/json")
            .header("x-github-event", "push")
            .body(body.to_owned()),
    )
    .await;
    assert_eq!(a.status, 200, "{:?}", a.body);
    a.data()["event_id"].as_str().unwrap().to_owned()
}

/// Polls the API until `check` holds (state changes land right after the receiver answered).
async fn until(api: &Api, path: &str, check: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + WAIT;
    loop {
        let a = api.get(path).await;
        if a.status == 200 && check(&a.body) {
            return a.body;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting on {path}: last {:?}",
            a.body
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn attempts(api: &Api, event: &str, n: usize) -> Vec<Value> {
    let body = until(api, &format!("/v1/events/{event}/attempts"), |b| {
        b["data"].as_array().unwrap().len() >= n
    })
    .await;
    body["data"].as_array().unwrap().clone()
}

#[tokio::test]
async fn delivered_on_first_try_byte_for_byte_signed_and_logged() {
    let mut rx = TestReceiver::start(vec![Reply::status(200).body("thanks")]).await;
    let gw = TestGateway::start().await;
    let s = setup(
        &gw,
        json!({"url": rx.url("/hook"), "headers": {"X-Team": "billing"},
                              "auth": {"type": "bearer", "token": "tok"}}),
    )
    .await;
    let body = r#"{"type":"invoice.paid","amount":42}"#;
    let event = ingest(&s.api, &s.ingest, body).await;

    let r = rx.next(WAIT).await.expect("delivered");
    assert_eq!(r.path, "/hook");
    assert_eq!(&r.body[..], body.as_bytes());
    assert_eq!(r.header("content-type"), "application/json");
    assert_eq!(r.header("webhook-id"), event);
    assert_eq!(r.header("x-hookgate-event-type"), "invoice.paid");
    assert_eq!(r.header("x-hookgate-attempt"), "1");
    assert!(r.header("x-hookgate-delivery-id").starts_with("dlv_"));
    assert_eq!(
        r.header("x-github-event"),
        "push",
        "provider headers are forwarded"
    );
    assert_eq!(r.header("x-team"), "billing");
    assert_eq!(r.header("authorization"), "Bearer tok");
    assert!(signed_by(
        s.destination["signing_secret"].as_str().unwrap(),
        &r
    ));

    let a = attempts(&s.api, &event, 1).await;
    assert_eq!(a[0]["attempt"], 1);
    assert_eq!(a[0]["status_code"], 200);
    assert_eq!(a[0]["response_body"], "thanks");
    assert!(a[0]["error"].is_null());
    until(&s.api, &format!("/v1/events/{event}"), |b| {
        b["data"]["status"] == "delivered"
    })
    .await;
    let d = s.api.get(&format!("/v1/events/{event}/deliveries")).await;
    assert_eq!(d.data()[0]["status"], "delivered");
    assert_eq!(d.data()[0]["attempts"], 1);
    assert_eq!(d.data()[0]["last_status_code"], 200);
    assert!(
        rx.next(Duration::from_millis(300)).await.is_none(),
        "delivered once"
    );
    gw.stop().await;
}

#[tokio::test]
async fn failures_are_retried_on_the_schedule_until_success() {
    let mut rx = TestReceiver::start(vec![Reply::status(503), Reply::status(500)]).await;
    let gw = TestGateway::start().await;
    let s = setup(
        &gw,
        json!({"url": rx.url("/"), "retry": {"schedule": ["300ms", "600ms"], "jitter": false}}),
    )
    .await;
    let event = ingest(&s.api, &s.ingest, "{}").await;
    let r1 = rx.next(WAIT).await.unwrap();
    let r2 = rx.next(WAIT).await.unwrap();
    let r3 = rx.next(WAIT).await.unwrap();
    assert_eq!((r1.answered, r2.answered, r3.answered), (503, 500, 200));
    assert_eq!(r2.header("x-hookgate-attempt"), "2");
    assert_eq!(
        r3.header("webhook-id"),
        r1.header("webhook-id"),
        "same webhook-id on retries"
    );
    let gap1 = r2.at - r1.at;
    let gap2 = r3.at - r2.at;
    assert!(
        gap1 >= Duration::from_millis(290),
        "first retry after {gap1:?}"
    );
    assert!(
        gap2 >= Duration::from_millis(590),
        "second retry after {gap2:?}"
    );
    assert!(gap2 < Duration::from_secs(3), "{gap2:?}");
    let a = attempts(&s.api, &event, 3).await;
    let codes: Vec<_> = a
        .iter()
        .map(|a| a["status_code"].as_u64().unwrap())
        .collect();
    assert_eq!(codes, [503, 500, 200]);
    until(&s.api, &format!("/v1/events/{event}"), |b| {
        b["data"]["status"] == "delivered"
    })
    .await;
    gw.stop().await;
}

#[tokio::test]
async fn retry_after_on_429_is_honoured() {
    let mut rx = TestReceiver::start(vec![Reply::status(429).header("retry-after", "1")]).await;
    let gw = TestGateway::start().await;
    let s = setup(
        &gw,
        json!({"url": rx.url("/"), "retry": {"schedule": ["50ms"], "jitter": false}}),
    )
    .await;
    ingest(&s.api, &s.ingest, "{}").await;
    let r1 = rx.next(WAIT).await.unwrap();
    let r2 = rx.next(WAIT).await.unwrap();
    assert_eq!(r1.answered, 429);
    assert!(
        r2.at - r1.at >= Duration::from_millis(990),
        "retried after {:?}",
        r2.at - r1.at
    );
    gw.stop().await;
}

#[tokio::test]
async fn gone_disables_the_destination_and_reenabling_resumes_pending_deliveries() {
    let mut rx = TestReceiver::start(vec![Reply::status(410)]).await;
    let gw = TestGateway::start().await;
    let s = setup(
        &gw,
        json!({"url": rx.url("/"), "retry": {"schedule": ["50ms", "50ms"], "jitter": false}}),
    )
    .await;
    let dst = s.destination["id"].as_str().unwrap().to_owned();
    let first = ingest(&s.api, &s.ingest, r#"{"n":1}"#).await;
    assert_eq!(rx.next(WAIT).await.unwrap().answered, 410);
    let d = until(&s.api, &format!("/v1/destinations/{dst}"), |b| {
        b["data"]["enabled"] == false
    })
    .await;
    assert!(d["data"]["disabled_reason"]
        .as_str()
        .unwrap()
        .contains("410"));
    let notices = s.api.get("/v1/notices").await;
    assert_eq!(notices.data()[0]["type"], "endpoint.disabled");
    assert_eq!(notices.data()[0]["destination_id"], dst.as_str());

    let second = ingest(&s.api, &s.ingest, r#"{"n":2}"#).await;
    assert!(
        rx.next(Duration::from_millis(500)).await.is_none(),
        "nothing goes to a disabled destination"
    );
    let p = s
        .api
        .patch(&format!("/v1/destinations/{dst}"), json!({"enabled": true}))
        .await;
    assert_eq!(p.status, 200);
    assert!(p.data()["disabled_reason"].is_null());
    let mut got: Vec<String> = Vec::new();
    for _ in 0..2 {
        got.push(
            rx.next(WAIT)
                .await
                .expect("resumed")
                .header("webhook-id")
                .to_owned(),
        );
    }
    got.sort();
    let mut want = vec![first, second];
    want.sort();
    assert_eq!(got, want);
    gw.stop().await;
}

#[tokio::test]
async fn a_timeout_is_a_failed_attempt_without_status_code() {
    let mut rx = TestReceiver::start(vec![Reply::status(200).delay(Duration::from_secs(2))]).await;
    let gw = TestGateway::start().await;
    let s = setup(&gw, json!({"url": rx.url("/"), "timeout_ms": 300, "retry": {"schedule": ["50ms"], "jitter": false}})).await;
    let event = ingest(&s.api, &s.ingest, "{}").await;
    rx.next(WAIT).await.unwrap();
    let a = attempts(&s.api, &event, 2).await;
    assert!(a[0]["status_code"].is_null());
    assert_eq!(a[0]["error"], "timeout");
    assert!(a[0]["duration_ms"].as_u64().unwrap() < 1500, "{:?}", a[0]);
    assert_eq!(a[1]["status_code"], 200);
    gw.stop().await;
}

#[tokio::test]
async fn dead_letters_are_listed_and_bulk_replay_delivers_them() {
    let mut rx = TestReceiver::start(vec![]).await;
    rx.set_default(Reply::status(500).body("down"));
    let gw = TestGateway::start().await;
    let s = setup(
        &gw,
        json!({"url": rx.url("/"), "retry": {"schedule": ["50ms"], "jitter": false}}),
    )
    .await;
    let e1 = ingest(&s.api, &s.ingest, r#"{"n":1}"#).await;
    let e2 = ingest(&s.api, &s.ingest, r#"{"n":2}"#).await;
    for _ in 0..4 {
        rx.next(WAIT).await.unwrap();
    }
    for e in [&e1, &e2] {
        until(&s.api, &format!("/v1/events/{e}"), |b| {
            b["data"]["status"] == "dead_letter"
        })
        .await;
    }
    let dl = s.api.get("/v1/deliveries?status=dead_letter").await;
    assert_eq!(dl.status, 200, "{:?}", dl.body);
    assert_eq!(dl.data().as_array().unwrap().len(), 2);
    assert_eq!(dl.data()[0]["attempts"], 2);
    assert_eq!(dl.data()[0]["last_status_code"], 500);

    let dry = s
        .api
        .post(
            "/v1/replay",
            json!({"status": "dead_letter", "dry_run": true}),
        )
        .await;
    assert_eq!(dry.status, 200, "{:?}", dry.body);
    assert_eq!(dry.data()["matched"], 2);
    assert_eq!(dry.data()["replayed"], 0);
    assert!(
        rx.next(Duration::from_millis(300)).await.is_none(),
        "dry run sends nothing"
    );

    rx.set_default(Reply::status(200));
    let r = s
        .api
        .post(
            "/v1/replay",
            json!({"status": "dead_letter", "destination_id": s.destination["id"]}),
        )
        .await;
    assert_eq!(r.data()["matched"], 2);
    assert_eq!(r.data()["replayed"], 2);
    let mut got = vec![
        rx.next(WAIT).await.unwrap().header("webhook-id").to_owned(),
        rx.next(WAIT).await.unwrap().header("webhook-id").to_owned(),
    ];
    got.sort();
    let mut want = vec![e1.clone(), e2.clone()];
    want.sort();
    assert_eq!(got, want);
    for e in [&e1, &e2] {
        until(&s.api, &format!("/v1/events/{e}"), |b| {
            b["data"]["status"] == "delivered"
        })
        .await;
    }
    let a = attempts(&s.api, &e1, 3).await;
    assert_eq!(
        a[2]["attempt"], 3,
        "the attempt log continues across a replay"
    );
    assert_eq!(
        s.api
            .get("/v1/deliveries?status=dead_letter")
            .await
            .data()
            .as_array()
            .unwrap()
            .len(),
        0
    );

    // Replaying one event re-delivers it even when delivered.
    let one = s
        .api
        .post(&format!("/v1/events/{e1}/replay"), json!({}))
        .await;
    assert_eq!(one.data()["replayed"], 1);
    assert_eq!(rx.next(WAIT).await.unwrap().header("webhook-id"), e1);
    gw.stop().await;
}

#[tokio::test]
async fn replaying_to_a_destination_added_later_gives_it_a_first_delivery() {
    let mut first = TestReceiver::start(vec![]).await;
    let mut later = TestReceiver::start(vec![]).await;
    let gw = TestGateway::start().await;
    let s = setup(&gw, json!({"url": first.url("/")})).await;
    let body = r#"{"n":"backfill"}"#;
    let event = ingest(&s.api, &s.ingest, body).await;
    assert_eq!(first.next(WAIT).await.unwrap().header("webhook-id"), event);

    // No route leads there: the event predates it.
    let added = s
        .api
        .post(
            "/v1/destinations",
            json!({"name": "later", "url": later.url("/")}),
        )
        .await;
    let added_id = added.data()["id"].as_str().unwrap().to_owned();
    let replay = format!("/v1/events/{event}/replay");
    let one = s
        .api
        .post(&replay, json!({"destination_id": added_id}))
        .await;
    assert_eq!(one.status, 200, "{:?}", one.body);
    assert_eq!(
        (
            one.data()["matched"].clone(),
            one.data()["replayed"].clone(),
            one.data()["created"].clone()
        ),
        (json!(0), json!(1), json!(1))
    );
    let got = later
        .next(WAIT)
        .await
        .expect("the new destination gets the event");
    assert_eq!(got.header("webhook-id"), event);
    assert_eq!(&got.body[..], body.as_bytes());
    let deliveries = until(&s.api, &format!("/v1/events/{event}/deliveries"), |b| {
        b["data"]
            .as_array()
            .unwrap()
            .iter()
            .any(|d| d["destination_id"] == added_id.as_str() && d["status"] == "delivered")
    })
    .await;
    assert_eq!(deliveries["data"].as_array().unwrap().len(), 2);

    // From now on it is an ordinary delivery: a second replay re-sends it, creating nothing.
    let again = s
        .api
        .post(&replay, json!({"destination_id": added_id}))
        .await;
    assert_eq!(
        (
            again.data()["matched"].clone(),
            again.data()["replayed"].clone(),
            again.data()["created"].clone()
        ),
        (json!(1), json!(1), json!(0))
    );
    assert_eq!(later.next(WAIT).await.unwrap().header("webhook-id"), event);
    let listed = s.api.get(&format!("/v1/events/{event}/deliveries")).await;
    assert_eq!(listed.data().as_array().unwrap().len(), 2);

    // Destinations that are not this account's are refused, and nothing is created.
    let (other, _) = gw.client().new_account("other").await;
    let foreign = other
        .post(
            "/v1/destinations",
            json!({"name": "x", "url": later.url("/")}),
        )
        .await;
    for id in [
        foreign.data()["id"].as_str().unwrap(),
        "dst_00000000000000000000000000",
    ] {
        let refused = s.api.post(&replay, json!({"destination_id": id})).await;
        assert_eq!(refused.status, 422, "{id}: {:?}", refused.body);
        assert_eq!(refused.error_code(), "validation_failed");
    }
    let listed = s.api.get(&format!("/v1/events/{event}/deliveries")).await;
    assert_eq!(listed.data().as_array().unwrap().len(), 2);
    assert!(later.next(Duration::from_millis(300)).await.is_none());
    gw.stop().await;
}

#[tokio::test]
async fn fifo_destination_delivers_in_event_order_even_when_the_head_fails() {
    let mut rx = TestReceiver::start(vec![Reply::status(503), Reply::status(503)]).await;
    let gw = TestGateway::start().await;
    let s = setup(
        &gw,
        json!({"url": rx.url("/"), "ordering": "fifo",
                              "retry": {"schedule": ["100ms", "100ms", "100ms"], "jitter": false}}),
    )
    .await;
    let mut events = Vec::new();
    for n in 0..6 {
        events.push(ingest(&s.api, &s.ingest, &format!("{{\"n\":{n}}}")).await);
    }
    let mut delivered = Vec::new();
    let mut concurrent_check: Vec<Received> = Vec::new();
    while delivered.len() < events.len() {
        let r = rx.next(WAIT).await.expect("all delivered");
        if r.answered == 200 {
            delivered.push(r.header("webhook-id").to_owned());
        }
        concurrent_check.push(r);
    }
    assert_eq!(delivered, events, "delivered in event order");
    // The first event failed twice and nothing else was sent meanwhile.
    assert_eq!(concurrent_check[0].header("webhook-id"), events[0]);
    assert_eq!(concurrent_check[1].header("webhook-id"), events[0]);
    assert_eq!(concurrent_check[2].header("webhook-id"), events[0]);
    gw.stop().await;
}

#[tokio::test]
async fn a_hanging_destination_does_not_slow_another() {
    let mut slow = TestReceiver::start(vec![]).await;
    slow.set_default(Reply::status(200).delay(Duration::from_secs(5)));
    let mut fast = TestReceiver::start(vec![]).await;
    let gw = TestGateway::start().await;
    let (api, _) = gw.client().new_account("acme").await;
    let src = api
        .post("/v1/sources", json!({"name": "in", "kind": "webhook"}))
        .await;
    for (name, url) in [("slow", slow.url("/")), ("fast", fast.url("/"))] {
        route_to(
            &api,
            src.data(),
            json!({"name": name, "url": url, "timeout_ms": 10000, "max_in_flight": 2}),
        )
        .await;
    }
    let path = src.data()["ingest_path"].as_str().unwrap().to_owned();
    let started = Instant::now();
    for n in 0..30 {
        ingest(&api, &path, &format!("{{\"n\":{n}}}")).await;
    }
    for _ in 0..30 {
        fast.next(WAIT)
            .await
            .expect("fast destination keeps receiving");
    }
    let fast_done = started.elapsed();
    assert!(
        fast_done < Duration::from_secs(3),
        "fast destination took {fast_done:?} behind a hanging one"
    );
    // The slow one has only its two in flight.
    assert!(slow.drain().len() <= 2);
    println!("30 deliveries to the fast destination in {fast_done:?} while the other hangs");
    gw.stop().await;
}

#[tokio::test]
async fn ssrf_guard_blocks_private_addresses_at_connect_time() {
    let mut rx = TestReceiver::start(vec![]).await;
    // Destinations created while private networks were allowed...
    let gw = TestGateway::start().await;
    let (api, _) = gw.client().new_account("acme").await;
    let key = api.key.clone().unwrap();
    let src = api
        .post("/v1/sources", json!({"name": "in", "kind": "webhook"}))
        .await;
    let port = rx.addr.port();
    for (name, url) in [
        ("ip", format!("http://127.0.0.1:{port}/")),
        ("name", format!("http://localhost:{port}/")),
        ("private", "http://10.1.2.3/".to_owned()),
        (
            "metadata",
            "http://169.254.169.254/latest/meta-data".to_owned(),
        ),
        ("ipv6-loopback", format!("http://[::1]:{port}/")),
    ] {
        let d = api
            .post(
                "/v1/destinations",
                json!({"name": name, "url": url, "retry": {"schedule": ["1h"]}}),
            )
            .await;
        assert_eq!(d.status, 201);
        api.post(
            "/v1/routes",
            json!({"source_id": src.data()["id"], "destination_id": d.data()["id"]}),
        )
        .await;
    }
    let path = src.data()["ingest_path"].as_str().unwrap().to_owned();
    let dir = gw.stop().await;
    // ...are refused once the operator turns the guard on, whatever the name resolves to.
    let gw = TestGateway::start_with(dir, |c| c.delivery.allow_private_networks = false).await;
    let api = gw.client().with_key(&key);
    let event = ingest(&api, &path, "{}").await;
    let a = attempts(&api, &event, 5).await;
    assert_eq!(a.len(), 5, "one attempt per destination");
    for attempt in &a {
        assert!(attempt["status_code"].is_null(), "{attempt:?}");
        assert_eq!(attempt["error"], "ssrf_blocked", "{attempt:?}");
    }
    assert!(
        rx.next(Duration::from_millis(300)).await.is_none(),
        "nothing reached the receiver"
    );
    gw.stop().await;
}

#[tokio::test]
async fn deliveries_queued_before_a_restart_are_delivered_after_it() {
    let mut rx = TestReceiver::start(vec![]).await;
    rx.set_default(Reply::status(503));
    let gw = TestGateway::start().await;
    let s = setup(
        &gw,
        json!({"url": rx.url("/"), "retry": {"schedule": ["500ms"], "jitter": false}}),
    )
    .await;
    let key = s.api.key.clone().unwrap();
    let event = ingest(&s.api, &s.ingest, "{}").await;
    assert_eq!(rx.next(WAIT).await.unwrap().answered, 503);
    until(&s.api, &format!("/v1/events/{event}"), |b| {
        b["data"]["status"] == "retry_scheduled"
    })
    .await;
    let dir = gw.stop().await;
    rx.set_default(Reply::status(200));
    let gw = TestGateway::start_with(dir, |_| {}).await;
    let r = rx.next(WAIT).await.expect("retried after restart");
    assert_eq!(r.header("webhook-id"), event);
    assert_eq!(r.header("x-hookgate-attempt"), "2");
    let api = gw.client().with_key(&key);
    until(&api, &format!("/v1/events/{event}"), |b| {
        b["data"]["status"] == "delivered"
    })
    .await;
    gw.stop().await;
}

#[tokio::test]
async fn consecutive_dead_letters_disable_the_destination_and_notify_the_account() {
    let failing = TestReceiver::start(vec![]).await;
    failing.set_default(Reply::status(500));
    let mut notices = TestReceiver::start(vec![]).await;
    let gw = TestGateway::start_with(tempfile::tempdir().unwrap(), |c| {
        c.delivery.auto_disable_after_dead_letters = 2;
    })
    .await;
    let s = setup(
        &gw,
        json!({"url": failing.url("/"), "retry": {"schedule": ["20ms"], "jitter": false}}),
    )
    .await;
    let dst = s.destination["id"].as_str().unwrap().to_owned();
    let notify = s
        .api
        .post(
            "/v1/destinations",
            json!({"name": "ops", "url": notices.url("/ops")}),
        )
        .await;
    let p = s
        .api
        .patch(
            "/v1/account",
            json!({"notification_destination_id": notify.data()["id"]}),
        )
        .await;
    assert_eq!(p.status, 200, "{:?}", p.body);
    assert_eq!(p.data()["notification_destination_id"], notify.data()["id"]);
    assert_eq!(
        s.api
            .patch(
                "/v1/account",
                json!({"notification_destination_id": "dst_01JD3X0Q4W8N7T5Y2B9C6K1M0P"})
            )
            .await
            .status,
        422
    );

    ingest(&s.api, &s.ingest, r#"{"n":1}"#).await;
    ingest(&s.api, &s.ingest, r#"{"n":2}"#).await;
    let d = until(&s.api, &format!("/v1/destinations/{dst}"), |b| {
        b["data"]["enabled"] == false
    })
    .await;
    assert!(
        d["data"]["disabled_reason"]
            .as_str()
            .unwrap()
            .contains("2 consecutive"),
        "{d}"
    );
    let r = notices.next(WAIT).await.expect("the account is notified");
    let body: Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(body["type"], "endpoint.disabled");
    assert_eq!(body["data"]["destination_id"], dst.as_str());
    assert!(signed_by(
        notify.data()["signing_secret"].as_str().unwrap(),
        &r
    ));
    let n = s.api.get("/v1/notices").await;
    assert_eq!(n.data()[0]["type"], "endpoint.disabled");
    gw.stop().await;
}

#[tokio::test]
async fn a_fifo_destination_shows_the_failing_head_that_blocks_it() {
    let mut rx = TestReceiver::start(vec![Reply::status(503)]).await;
    let gw = TestGateway::start().await;
    let s = setup(
        &gw,
        json!({"url": rx.url("/"), "ordering": "fifo",
                              "retry": {"schedule": ["1s"], "jitter": false}}),
    )
    .await;
    let dst = s.destination["id"].as_str().unwrap().to_owned();
    let first = ingest(&s.api, &s.ingest, r#"{"n":1}"#).await;
    ingest(&s.api, &s.ingest, r#"{"n":2}"#).await;
    assert_eq!(rx.next(WAIT).await.unwrap().answered, 503);
    let d = until(&s.api, &format!("/v1/destinations/{dst}"), |b| {
        b["data"]["blocked_by"].is_object()
    })
    .await;
    assert_eq!(d["data"]["blocked_by"]["event_id"], first.as_str());
    // The list says so too (the dashboard's overview reads it there).
    let list = s.api.get("/v1/destinations").await;
    assert_eq!(list.data()[0]["blocked_by"]["event_id"], first.as_str());
    // Once the head goes through, nothing blocks.
    rx.next(WAIT).await.unwrap();
    rx.next(WAIT).await.unwrap();
    until(&s.api, &format!("/v1/destinations/{dst}"), |b| {
        b["data"].get("blocked_by").is_none()
    })
    .await;
    gw.stop().await;
}

#[tokio::test]
async fn queued_deliveries_page_through_next_cursor_in_due_order() {
    let gw = TestGateway::start().await;
    // Disabled: its deliveries stay queued, pending, for as long as the test looks.
    let s = setup(&gw, json!({"url": "http://127.0.0.1:9/", "enabled": false})).await;
    let mut events = Vec::new();
    for n in 0..3 {
        events.push(ingest(&s.api, &s.ingest, &format!("{{\"n\":{n}}}")).await);
    }
    let (mut listed, mut cursor) = (Vec::new(), None::<String>);
    for _ in 0..10 {
        let path = match &cursor {
            Some(c) => format!("/v1/deliveries?status=pending&limit=1&cursor={c}"),
            None => "/v1/deliveries?status=pending&limit=1".to_owned(),
        };
        let page = s.api.get(&path).await;
        assert_eq!(page.status, 200, "{:?}", page.body);
        let items = page.data().as_array().unwrap();
        assert!(items.len() <= 1);
        listed.extend(
            items
                .iter()
                .map(|d| d["event_id"].as_str().unwrap().to_owned()),
        );
        match page.body["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    assert_eq!(
        listed, events,
        "every queued delivery once, oldest due first"
    );

    let bad = s.api.get("/v1/deliveries?status=pending&cursor=nope").await;
    assert_eq!(bad.status, 400);
    assert_eq!(bad.error_code(), "bad_cursor");
    gw.stop().await;
}

#[tokio::test]
async fn a_destination_failing_longer_than_the_threshold_is_disabled() {
    let mut rx = TestReceiver::start(vec![]).await;
    rx.set_default(Reply::status(502));
    let gw = TestGateway::start_with(tempfile::tempdir().unwrap(), |c| {
        c.delivery.auto_disable_after = Duration::from_millis(300);
    })
    .await;
    let s = setup(&gw, json!({"url": rx.url("/"), "retry": {"schedule": ["100ms", "100ms", "100ms", "100ms", "100ms", "100ms", "100ms", "100ms"], "jitter": false}})).await;
    let dst = s.destination["id"].as_str().unwrap().to_owned();
    let event = ingest(&s.api, &s.ingest, "{}").await;
    let d = until(&s.api, &format!("/v1/destinations/{dst}"), |b| {
        b["data"]["enabled"] == false
    })
    .await;
    assert!(
        d["data"]["disabled_reason"]
            .as_str()
            .unwrap()
            .starts_with("failing continuously since"),
        "{d}"
    );
    // The delivery is not lost: it waits, queued, for the destination to come back.
    let pending = s
        .api
        .get(&format!(
            "/v1/deliveries?status=pending&destination_id={dst}"
        ))
        .await;
    assert_eq!(pending.status, 200);
    let items = pending.data().as_array().unwrap();
    assert_eq!(items.len(), 1, "{:?}", pending.body);
    assert_eq!(items[0]["event_id"], event.as_str());
    assert_eq!(items[0]["status"], "retry_scheduled");
    rx.drain();
    gw.stop().await;
}

/// Ingests `n` small events one after another; their ids.
async fn ingest_many(s: &Setup, n: usize) -> Vec<String> {
    let mut events = Vec::new();
    for i in 0..n {
        events.push(ingest(&s.api, &s.ingest, &format!("{{\"n\":{i}}}")).await);
    }
    events
}

/// Delivers until every id in `want` has had one 200, and checks that none had two.
async fn delivered_once_each(rx: &mut TestReceiver, want: &[String]) {
    let mut ok = std::collections::HashMap::<String, usize>::new();
    while ok.len() < want.len() {
        let r = rx.next(WAIT).await.expect("the whole backlog is delivered");
        if r.answered == 200 {
            *ok.entry(r.header("webhook-id").to_owned()).or_default() += 1;
        }
    }
    while let Some(r) = rx.next(Duration::from_millis(300)).await {
        if r.answered == 200 {
            *ok.entry(r.header("webhook-id").to_owned()).or_default() += 1;
        }
    }
    let mut got: Vec<&String> = ok.keys().collect();
    got.sort();
    let mut want: Vec<&String> = want.iter().collect();
    want.sort();
    assert_eq!(got, want);
    assert!(ok.values().all(|n| *n == 1), "each delivered once: {ok:?}");
}

/// A gateway restarted on data holding a backlog (see [`backlog_across_a_restart`]).
struct Backlog {
    gw: TestGateway,
    api: Api,
    destination: String,
    events: Vec<String>,
}

impl Backlog {
    async fn patch_destination(&self, body: Value) {
        let p = self
            .api
            .patch(&format!("/v1/destinations/{}", self.destination), body)
            .await;
        assert_eq!(p.status, 200, "{:?}", p.body);
    }
}

/// Queues `n` events to a destination made from `destination` on a gateway whose queue window
/// is 16, and restarts it on the same data.
async fn backlog_across_a_restart(destination: Value, n: usize) -> Backlog {
    let window = |c: &mut hookgate::config::Config| c.delivery.queue_window = 16;
    let gw = TestGateway::start_with(tempfile::tempdir().unwrap(), window).await;
    let s = setup(&gw, destination).await;
    let key = s.api.key.clone().unwrap();
    let events = ingest_many(&s, n).await;
    let dir = gw.stop().await;
    let gw = TestGateway::start_with(dir, window).await;
    Backlog {
        api: gw.client().with_key(&key),
        gw,
        destination: s.destination["id"].as_str().unwrap().to_owned(),
        events,
    }
}

#[tokio::test]
async fn a_backlog_many_times_the_queue_window_is_delivered_once_each_after_a_restart() {
    let mut rx = TestReceiver::start(vec![]).await;
    let b = backlog_across_a_restart(json!({"url": rx.url("/"), "enabled": false}), 120).await;
    assert!(rx.next(Duration::from_millis(300)).await.is_none());
    b.patch_destination(json!({"enabled": true})).await;
    delivered_once_each(&mut rx, &b.events).await;
    b.gw.stop().await;
}

#[tokio::test]
async fn retries_moved_past_the_queue_window_come_back_from_disk() {
    let mut rx = TestReceiver::start(vec![]).await;
    rx.set_default(Reply::status(503));
    let gw = TestGateway::start_with(tempfile::tempdir().unwrap(), |c| {
        c.delivery.queue_window = 16;
    })
    .await;
    let s = setup(
        &gw,
        json!({"url": rx.url("/"), "retry": {"schedule": ["300ms", "300ms", "300ms"], "jitter": false}}),
    )
    .await;
    let events = ingest_many(&s, 60).await;
    // Some first attempts fail and move behind the backlog; then the destination recovers.
    for _ in 0..20 {
        assert_eq!(rx.next(WAIT).await.unwrap().answered, 503);
    }
    rx.set_default(Reply::status(200));
    delivered_once_each(&mut rx, &events).await;
    gw.stop().await;
}

#[tokio::test]
async fn an_enabled_destination_s_backlog_is_windowed_at_start_and_delivered_once_each() {
    let mut rx = TestReceiver::start(vec![]).await;
    // One delivery a second: the backlog is still queued when the gateway stops.
    let b = backlog_across_a_restart(json!({"url": rx.url("/"), "rate_limit_per_s": 1}), 120).await;
    b.patch_destination(json!({"rate_limit_per_s": null})).await;
    delivered_once_each(&mut rx, &b.events).await;
    b.gw.stop().await;
}

/// A restart with a long queue on disk: ingest answers at once, while the queue is still being
/// read, and what it queued meanwhile is delivered once the read is done.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ingest_answers_while_a_long_queue_loads_at_start_and_its_events_are_delivered() {
    use hookgate::ids::{AccountId, DestinationId};
    const BACKLOG: u64 = 200_000;
    let mut rx = TestReceiver::start(vec![]).await;
    let gw = TestGateway::start().await;
    let (api, account) = gw.client().new_account("acme").await;
    let src = api
        .post("/v1/sources", json!({"name": "in", "kind": "webhook"}))
        .await;
    let mut destinations = Vec::new();
    for (name, url, enabled) in [
        ("down", "http://127.0.0.1:9/", false),
        ("up", &rx.url("/"), true),
    ] {
        let d = route_to(
            &api,
            src.data(),
            json!({"name": name, "url": url, "enabled": enabled}),
        )
        .await;
        destinations.push(d["id"].as_str().unwrap().to_owned());
    }
    let key = api.key.clone().unwrap();
    let ingest_path = src.data()["ingest_path"].as_str().unwrap().to_owned();
    let dir = gw.stop().await;

    // The backlog of a disabled destination, written straight into the queue index: reading
    // it at start takes far longer than the requests below. It is due tomorrow because a
    // scrape counts the deliveries due now: 200,000 of those made `/metrics` take about as
    // long as the whole read in an optimised build.
    let tomorrow = hookgate::ids::now_ms() + 86_400_000;
    let account = AccountId::parse(account["id"].as_str().unwrap())
        .unwrap()
        .raw();
    let down = DestinationId::parse(&destinations[0]).unwrap().raw();
    let db = redb::Database::open(dir.path().join(hookgate::store::DB_FILE)).unwrap();
    let txn = db.begin_write().unwrap();
    {
        let mut due = txn.open_table(hookgate::store::tables::DUE).unwrap();
        for i in 0..BACKLOG {
            let id = u128::from(i) + 1;
            due.insert((tomorrow + i, id), (account, id, down)).unwrap();
        }
    }
    txn.commit().unwrap();
    drop(db);

    let gw = TestGateway::start_with(dir, |_| {}).await;
    let api = gw.client().with_key(&key);
    let event = ingest(&api, &ingest_path, r#"{"during":"load"}"#).await;
    let text = gw.metrics_text().await;
    assert_eq!(
        metric(&text, "hookgate_delivery_queue_loading"),
        1.0,
        "ingest answered only after the queue was read"
    );

    let r = rx
        .next(Duration::from_secs(60))
        .await
        .expect("delivered after the load");
    assert_eq!(r.answered, 200);
    assert_eq!(r.header("webhook-id"), event);
    assert!(
        rx.next(Duration::from_millis(500)).await.is_none(),
        "delivered once"
    );
    let text = gw.metrics_text().await;
    assert_eq!(metric(&text, "hookgate_delivery_queue_loading"), 0.0);
    gw.stop().await;
}

/// A FIFO backlog many times the queue window, across a restart: the lane holds a window in
/// event order and loads the rest in passes over the queue, and a failing head (whose retry is
/// due after everything behind it) still holds the rest back.
#[tokio::test]
async fn a_fifo_backlog_many_times_the_queue_window_is_delivered_in_event_order_once_each() {
    let mut rx = TestReceiver::start(vec![Reply::status(503), Reply::status(503)]).await;
    let b = backlog_across_a_restart(
        json!({"url": rx.url("/"), "ordering": "fifo", "enabled": false,
               "retry": {"schedule": ["100ms", "100ms", "100ms"], "jitter": false}}),
        60,
    )
    .await;
    b.patch_destination(json!({"enabled": true})).await;
    let events = &b.events;
    let mut received = Vec::new();
    let mut delivered = Vec::new();
    while delivered.len() < events.len() {
        let r = rx.next(WAIT).await.expect("the whole backlog is delivered");
        if r.answered == 200 {
            delivered.push(r.header("webhook-id").to_owned());
        }
        received.push(r.header("webhook-id").to_owned());
    }
    assert!(
        rx.next(Duration::from_millis(300)).await.is_none(),
        "once each"
    );
    assert_eq!(&delivered, events, "in event order");
    assert_eq!(
        received[..3],
        [events[0].clone(), events[0].clone(), events[0].clone()]
    );
    b.gw.stop().await;
}
