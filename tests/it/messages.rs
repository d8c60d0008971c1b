//! The outbound send API end to end: routing by pattern, Standard Webhooks signatures checked
//! by our own HMAC and by the published `standardwebhooks` Python package, secret rotation,
//! idempotency, test sends.

use std::io::Write as _;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::support::receiver::{signed_by, Received, TestReceiver};
use crate::support::{Api, TestGateway};

const WAIT: Duration = Duration::from_secs(10);

fn signatures(r: &Received) -> Vec<String> {
    r.header("webhook-signature")
        .split(' ')
        .filter_map(|s| s.strip_prefix("v1,").map(str::to_owned))
        .collect()
}

/// The published verifier, which nobody here wrote (PyPI `standardwebhooks`, installed by
/// .ci/run). Returns Err with Python's message when verification fails.
fn python_verifies(secret: &str, r: &Received) -> Result<(), String> {
    let input = json!({
        "secret": secret,
        "headers": {
            "webhook-id": r.header("webhook-id"),
            "webhook-timestamp": r.header("webhook-timestamp"),
            "webhook-signature": r.header("webhook-signature"),
        },
        "body": String::from_utf8(r.body.to_vec()).unwrap(),
    });
    let script = "import json, sys\n\
        from standardwebhooks.webhooks import Webhook\n\
        i = json.load(sys.stdin)\n\
        Webhook(i['secret']).verify(i['body'], i['headers'])\n\
        print('ok')\n";
    let mut child = Command::new("python3")
        .args(["-c", script])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 is needed for the interoperability check");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.to_string().as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !stderr.contains("ModuleNotFoundError"),
        "the standardwebhooks package is missing: pip install standardwebhooks (.ci/run does)"
    );
    if out.status.success() && String::from_utf8_lossy(&out.stdout).trim() == "ok" {
        Ok(())
    } else {
        Err(stderr.into_owned())
    }
}

async fn api_source(api: &Api, name: &str) -> String {
    let s = api
        .post("/v1/sources", json!({"name": name, "kind": "api"}))
        .await;
    assert_eq!(s.status, 201, "{:?}", s.body);
    s.data()["id"].as_str().unwrap().to_owned()
}

async fn subscribe(api: &Api, source: &str, url: String, pattern: Option<&str>) -> Value {
    let d = api
        .post(
            "/v1/destinations",
            json!({"name": "customer-endpoint", "url": url}),
        )
        .await;
    assert_eq!(d.status, 201, "{:?}", d.body);
    let mut route = json!({"source_id": source, "destination_id": d.data()["id"]});
    if let Some(p) = pattern {
        route["event_type_pattern"] = json!(p);
    }
    assert_eq!(api.post("/v1/routes", route).await.status, 201);
    d.data().clone()
}

async fn send(api: &Api, body: Value) -> crate::support::Answer {
    api.post("/v1/messages", body).await
}

#[tokio::test]
async fn messages_reach_exactly_the_subscribed_endpoints_signed_per_standard_webhooks() {
    let gw = TestGateway::start().await;
    let (api, _) = gw.client().new_account("saas").await;
    let src = api_source(&api, "customer-42").await;
    let mut rx_invoices = TestReceiver::start(vec![]).await;
    let mut rx_customers = TestReceiver::start(vec![]).await;
    let mut rx_all = TestReceiver::start(vec![]).await;
    let d_inv = subscribe(&api, &src, rx_invoices.url("/"), Some("invoice.*")).await;
    let d_cus = subscribe(
        &api,
        &src,
        rx_customers.url("/"),
        Some("customer.*, *.deleted"),
    )
    .await;
    let d_all = subscribe(&api, &src, rx_all.url("/"), None).await;

    let mut sent = Vec::new();
    for (ty, n) in [
        ("invoice.paid", 1),
        ("customer.created", 2),
        ("order.shipped", 3),
        ("invoice.deleted", 4),
    ] {
        // By name and by id.
        let source = if n % 2 == 0 {
            src.clone()
        } else {
            "customer-42".to_owned()
        };
        let a = send(
            &api,
            json!({"source": source, "event_type": ty, "payload": {"n": n}}),
        )
        .await;
        assert_eq!(a.status, 202, "{:?}", a.body);
        sent.push((
            ty,
            a.data()["event_id"].as_str().unwrap().to_owned(),
            a.data()["deliveries"].as_u64().unwrap(),
        ));
    }
    assert_eq!(sent.iter().map(|s| s.2).collect::<Vec<_>>(), [2, 2, 1, 3]);

    for (rx, secret, want) in [
        (
            &mut rx_invoices,
            &d_inv,
            vec!["invoice.paid", "invoice.deleted"],
        ),
        (
            &mut rx_customers,
            &d_cus,
            vec!["customer.created", "invoice.deleted"],
        ),
        (
            &mut rx_all,
            &d_all,
            vec![
                "invoice.paid",
                "customer.created",
                "order.shipped",
                "invoice.deleted",
            ],
        ),
    ] {
        let secret = secret["signing_secret"].as_str().unwrap();
        let mut types = Vec::new();
        for _ in 0..want.len() {
            let r = rx.next(WAIT).await.expect("delivered");
            let body: Value = serde_json::from_slice(&r.body).unwrap();
            assert_eq!(body.as_object().unwrap().len(), 4, "{body}");
            assert_eq!(body["id"], r.header("webhook-id"));
            assert!(body["created_at"].as_str().unwrap().ends_with('Z'));
            let (_, id, _) = sent.iter().find(|s| s.0 == body["type"]).unwrap();
            assert_eq!(&body["id"], id);
            assert!(signed_by(secret, &r), "our HMAC check");
            python_verifies(secret, &r)
                .expect("the standardwebhooks package accepts hookgate's signature");
            assert!(
                python_verifies("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", &r).is_err(),
                "and rejects it for another secret"
            );
            types.push(body["type"].as_str().unwrap().to_owned());
        }
        types.sort();
        let mut want: Vec<String> = want.into_iter().map(str::to_owned).collect();
        want.sort();
        assert_eq!(types, want);
        assert!(
            rx.next(Duration::from_millis(200)).await.is_none(),
            "nothing else"
        );
    }
    gw.stop().await;
}

#[tokio::test]
async fn during_a_rotation_both_secrets_sign_and_afterwards_only_the_new_one() {
    let gw = TestGateway::start().await;
    let (api, _) = gw.client().new_account("saas").await;
    let src = api_source(&api, "c").await;
    let mut rx = TestReceiver::start(vec![]).await;
    let d = subscribe(&api, &src, rx.url("/"), None).await;
    let id = d["id"].as_str().unwrap();
    let old = d["signing_secret"].as_str().unwrap().to_owned();

    let r = api
        .post(
            &format!("/v1/destinations/{id}/rotate-secret"),
            json!({"grace_period_s": 2}),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let new = r.data()["signing_secret"].as_str().unwrap().to_owned();
    assert!(new.starts_with("whsec_") && new != old);
    assert!(r.data()["previous_secret_expires_at"].is_string());
    assert_eq!(
        api.get(&format!("/v1/destinations/{id}")).await.data()["signing_secret"],
        new.as_str()
    );

    send(
        &api,
        json!({"source": src, "event_type": "a.b", "payload": {}}),
    )
    .await;
    let during = rx.next(WAIT).await.unwrap();
    assert_eq!(
        signatures(&during).len(),
        2,
        "{}",
        during.header("webhook-signature")
    );
    assert!(signed_by(&new, &during) && signed_by(&old, &during));
    python_verifies(&new, &during).unwrap();
    python_verifies(&old, &during).unwrap();

    // Once the grace period is over the old secret no longer signs.
    let deadline = Instant::now() + WAIT;
    loop {
        send(
            &api,
            json!({"source": src, "event_type": "a.b", "payload": {}}),
        )
        .await;
        let r = rx.next(WAIT).await.unwrap();
        if signatures(&r).len() == 1 {
            assert!(signed_by(&new, &r));
            assert!(!signed_by(&old, &r));
            python_verifies(&new, &r).unwrap();
            assert!(python_verifies(&old, &r).is_err());
            break;
        }
        assert!(Instant::now() < deadline, "old secret still signing");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert_eq!(
        api.post(
            "/v1/destinations/dst_01JD3X0Q4W8N7T5Y2B9C6K1M0P/rotate-secret",
            json!({})
        )
        .await
        .status,
        404
    );
    assert_eq!(
        api.post(
            &format!("/v1/destinations/{id}/rotate-secret"),
            json!({"grace_period_s": 9999999})
        )
        .await
        .status,
        422
    );
    gw.stop().await;
}

#[tokio::test]
async fn a_repeated_idempotency_key_is_409_with_the_first_event_and_sends_once() {
    let gw = TestGateway::start().await;
    let (api, _) = gw.client().new_account("saas").await;
    let src = api_source(&api, "c").await;
    let mut rx = TestReceiver::start(vec![]).await;
    subscribe(&api, &src, rx.url("/"), None).await;

    let first = send(
        &api,
        json!({"source": src, "event_type": "a.b", "payload": {"v": 1}, "id": "order-7"}),
    )
    .await;
    assert_eq!(first.status, 202);
    let first_id = first.data()["event_id"].as_str().unwrap().to_owned();
    let again = send(
        &api,
        json!({"source": src, "event_type": "a.b", "payload": {"v": 2}, "id": "order-7"}),
    )
    .await;
    assert_eq!(again.status, 409, "{:?}", again.body);
    assert_eq!(again.error_code(), "duplicate");
    assert_eq!(again.body["error"]["event_id"], first_id.as_str());
    // The header form is the same key.
    let header = Api::answer(
        api.http
            .post(format!("{}/v1/messages", api.base))
            .bearer_auth(api.key.as_ref().unwrap())
            .header("idempotency-key", "order-7")
            .json(&json!({"source": src, "event_type": "a.b", "payload": {}})),
    )
    .await;
    assert_eq!(header.status, 409);
    // Another key is another message.
    assert_eq!(
        send(
            &api,
            json!({"source": src, "event_type": "a.b", "payload": {}, "id": "order-8"})
        )
        .await
        .status,
        202
    );

    let r1 = rx.next(WAIT).await.unwrap();
    let r2 = rx.next(WAIT).await.unwrap();
    let ids = [
        r1.header("webhook-id").to_owned(),
        r2.header("webhook-id").to_owned(),
    ];
    assert!(ids.contains(&first_id));
    assert!(
        rx.next(Duration::from_millis(300)).await.is_none(),
        "order-7 delivered once"
    );
    gw.stop().await;
}

#[tokio::test]
async fn invalid_messages_are_refused_with_the_right_status() {
    let gw = TestGateway::start().await;
    let (api, _) = gw.client().new_account("saas").await;
    let src = api_source(&api, "c").await;
    let hook = api
        .post("/v1/sources", json!({"name": "hook", "kind": "webhook"}))
        .await;
    for (body, status, field) in [
        (
            json!({"source": "nope", "event_type": "a", "payload": {}}),
            404,
            "",
        ),
        (
            json!({"source": "src_01JD3X0Q4W8N7T5Y2B9C6K1M0P", "event_type": "a", "payload": {}}),
            404,
            "",
        ),
        (
            json!({"source": src, "event_type": "", "payload": {}}),
            422,
            "event_type",
        ),
        (
            json!({"source": src, "event_type": "has space", "payload": {}}),
            422,
            "event_type",
        ),
        (json!({"source": src, "event_type": "a"}), 422, "body"),
        (
            json!({"source": src, "event_type": "a", "payload": {}, "extra": 1}),
            422,
            "",
        ),
        (
            json!({"source": hook.data()["id"], "event_type": "a", "payload": {}}),
            422,
            "source",
        ),
    ] {
        let a = send(&api, body.clone()).await;
        assert_eq!(a.status, status, "{body} → {:?}", a.body);
        assert!(
            a.error_message().starts_with(field),
            "{body} → {:?}",
            a.body
        );
    }
    let keys = api
        .post("/v1/api-keys", json!({"name": "s", "scope": "send-only"}))
        .await;
    let sender = api.with_key(keys.data()["key"].as_str().unwrap());
    assert_eq!(
        send(
            &sender,
            json!({"source": src, "event_type": "a", "payload": 1})
        )
        .await
        .status,
        202
    );
    let keys = api
        .post("/v1/api-keys", json!({"name": "r", "scope": "read-only"}))
        .await;
    let reader = api.with_key(keys.data()["key"].as_str().unwrap());
    assert_eq!(
        send(
            &reader,
            json!({"source": src, "event_type": "a", "payload": 1})
        )
        .await
        .status,
        403
    );
    let metrics = gw.metrics_text().await;
    assert!(
        metrics.contains("hookgate_messages_total{outcome=\"accepted\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("hookgate_messages_total{outcome=\"not_found\"} 2"),
        "{metrics}"
    );
    gw.stop().await;
}

#[tokio::test]
async fn a_test_send_delivers_now_and_answers_with_the_attempt() {
    let gw = TestGateway::start().await;
    let (api, _) = gw.client().new_account("saas").await;
    let mut rx = TestReceiver::start(vec![
        crate::support::receiver::Reply::status(200).body("pong")
    ])
    .await;
    let d = api
        .post(
            "/v1/destinations",
            json!({"name": "e", "url": rx.url("/hooks")}),
        )
        .await;
    let id = d.data()["id"].as_str().unwrap();
    let a = api
        .post(&format!("/v1/destinations/{id}/test"), json!({}))
        .await;
    assert_eq!(a.status, 200, "{:?}", a.body);
    assert_eq!(a.data()["status_code"], 200);
    assert_eq!(a.data()["response_body"], "pong");
    assert_eq!(a.data()["attempt"], 1);
    assert!(a.data()["duration_ms"].is_u64());
    assert!(a.data()["error"].is_null());
    let r = rx.next(WAIT).await.unwrap();
    let body: Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(body["type"], "hookgate.test");
    assert!(signed_by(d.data()["signing_secret"].as_str().unwrap(), &r));
    assert!(
        rx.next(Duration::from_millis(300)).await.is_none(),
        "sent once, not queued too"
    );

    // A failing endpoint: the attempt says why, and nothing is retried.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let d = api
        .post(
            "/v1/destinations",
            json!({"name": "down", "url": format!("http://127.0.0.1:{closed}/")}),
        )
        .await;
    let id = d.data()["id"].as_str().unwrap();
    let down = api
        .post(&format!("/v1/destinations/{id}/test"), json!({}))
        .await;
    assert_eq!(down.status, 200);
    assert!(down.data()["status_code"].is_null());
    assert_eq!(down.data()["error"], "connect");
    gw.stop().await;
}

/// `POST /v1/messages` bypasses the router (`http::Gateway`): the body limit, the envelope with
/// its request id, authentication and the router's answers for other methods must hold anyway.
#[tokio::test]
async fn the_send_path_keeps_body_limit_envelope_and_auth_outside_the_router() {
    let gw = TestGateway::start_with(tempfile::tempdir().unwrap(), |c| {
        c.server.max_body_bytes = 2048;
    })
    .await;
    let (api, _) = gw.client().new_account("saas").await;
    let src = api_source(&api, "c").await;

    let ok = send(
        &api,
        json!({"source": src, "event_type": "a", "payload": 1}),
    )
    .await;
    assert_eq!(ok.status, 202, "{:?}", ok.body);
    assert_eq!(
        ok.body["request_id"],
        ok.headers["x-request-id"].to_str().unwrap()
    );
    assert!(ok.body["duration_ms"].is_u64(), "{:?}", ok.body);

    let pad = "x".repeat(4096);
    let big = send(
        &api,
        json!({"source": src, "event_type": "a", "payload": pad}),
    )
    .await;
    assert_eq!(big.status, 413, "{:?}", big.body);
    assert_eq!(big.error_code(), "payload_too_large");

    let bad = Api::answer(
        api.http
            .post(format!("{}/v1/messages", api.base))
            .bearer_auth(api.key.as_deref().unwrap())
            .header("content-type", "application/json")
            .body("{not json"),
    )
    .await;
    assert_eq!(bad.status, 400, "{:?}", bad.body);

    let anonymous = Api::answer(
        api.http
            .post(format!("{}/v1/messages", api.base))
            .json(&json!({"source": src, "event_type": "a", "payload": 1})),
    )
    .await;
    assert_eq!(anonymous.status, 401, "{:?}", anonymous.body);
    assert!(anonymous.headers.contains_key("x-request-id"));

    let get = api.get("/v1/messages").await;
    assert_eq!(get.status, 405, "{:?}", get.body);
    let events = api.get("/v1/events").await;
    assert_eq!(
        events.data().as_array().unwrap().len(),
        1,
        "{:?}",
        events.body
    );
    gw.stop().await;
}
