//! `POST /ingest/<token>` through a real server: every provider with HMACs computed here,
//! every refusal storing nothing, dedupe, routing into deliveries, and the events API.

use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;

use crate::support::{Answer, Api, TestGateway};

fn mac(key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
    let mut m = Hmac::<Sha256>::new_from_slice(key).unwrap();
    for p in parts {
        m.update(p);
    }
    m.finalize().into_bytes().to_vec()
}

fn now_s() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

async fn source(api: &Api, name: &str, verification: Value) -> (String, String) {
    let mut body = json!({"name": name, "kind": "webhook"});
    if !verification.is_null() {
        body["verification"] = verification;
    }
    let a = api.post("/v1/sources", body).await;
    assert_eq!(a.status, 201, "{:?}", a.body);
    (
        a.data()["id"].as_str().unwrap().to_owned(),
        a.data()["ingest_path"].as_str().unwrap().to_owned(),
    )
}

async fn post(
    api: &Api,
    path: &str,
    headers: &[(&str, String)],
    body: impl Into<reqwest::Body>,
) -> Answer {
    let mut req = api
        .http
        .post(format!("{}{path}", api.base))
        .header("content-type", "application/json");
    for (k, v) in headers {
        req = req.header(*k, v);
    }
    Api::answer(req.body(body)).await
}

async fn events(api: &Api, query: &str) -> Vec<Value> {
    let a = api.get(&format!("/v1/events{query}")).await;
    assert_eq!(a.status, 200, "{:?}", a.body);
    a.data().as_array().unwrap().clone()
}

async fn event(api: &Api, id: &str) -> Value {
    let a = api.get(&format!("/v1/events/{id}")).await;
    assert_eq!(a.status, 200, "{:?}", a.body);
    a.data().clone()
}

fn accepted(a: &Answer) -> String {
    assert_eq!(a.status, 200, "{:?}", a.body);
    assert_eq!(a.data()["duplicate"], false);
    let id = a.data()["event_id"].as_str().unwrap().to_owned();
    assert!(id.starts_with("evt_"));
    id
}

fn refused(a: &Answer, status: u16, code: &str) {
    assert_eq!(a.status, status, "{:?}", a.body);
    assert_eq!(a.error_code(), code, "{:?}", a.body);
}

#[tokio::test]
async fn stripe_events_verify_and_are_stored_byte_for_byte_with_type_and_id() {
    let gw = TestGateway::start().await;
    let (api, _) = gw.client().new_account("acme").await;
    let secret = "whsec_stripe_test_secret";
    let (src, path) = source(
        &api,
        "stripe",
        json!({"provider": "stripe", "secret": secret}),
    )
    .await;
    let body = r#"{"id":"evt_1Nstripe","type":"invoice.paid","data":{"object":{"amount":4200}}}"#;
    let sign = |t: i64, b: &str, key: &str| {
        format!(
            "t={t},v1={}",
            hex::encode(mac(
                key.as_bytes(),
                &[t.to_string().as_bytes(), b".", b.as_bytes()]
            ))
        )
    };
    let t = now_s();

    let ok = post(
        &api,
        &path,
        &[("stripe-signature", sign(t, body, secret))],
        body,
    )
    .await;
    let id = accepted(&ok);
    let e = event(&api, &id).await;
    assert_eq!(e["body"], body);
    assert_eq!(e["event_type"], "invoice.paid");
    assert_eq!(e["dedupe_key"], "evt_1Nstripe");
    assert_eq!(e["source_id"], src);
    assert_eq!(e["status"], "received", "no route: stored, not queued");
    assert_eq!(e["content_type"], "application/json");
    assert!(e["headers"]["stripe-signature"]
        .as_str()
        .unwrap()
        .starts_with("t="));

    // Several v1 entries: one valid is enough.
    let valid = sign(t, &body.replace("1Nstripe", "2"), secret);
    let valid_v1 = valid.split(",v1=").nth(1).unwrap();
    let other = format!("t={t},v1={},v1={valid_v1}", "00".repeat(32));
    let several = post(
        &api,
        &path,
        &[("stripe-signature", other)],
        body.replace("1Nstripe", "2"),
    )
    .await;
    accepted(&several);

    let tampered = post(
        &api,
        &path,
        &[("stripe-signature", sign(t, body, secret))],
        body.replace("4200", "1"),
    )
    .await;
    refused(&tampered, 401, "signature_mismatch");
    let wrong = post(
        &api,
        &path,
        &[("stripe-signature", sign(t, body, "whsec_other"))],
        body,
    )
    .await;
    refused(&wrong, 401, "signature_mismatch");
    let stale = post(
        &api,
        &path,
        &[("stripe-signature", sign(t - 600, body, secret))],
        body,
    )
    .await;
    refused(&stale, 401, "timestamp_out_of_tolerance");
    let missing = post(&api, &path, &[], body).await;
    refused(&missing, 401, "missing_signature_header");
    let malformed = post(
        &api,
        &path,
        &[("stripe-signature", "v1=zz,t=soon".into())],
        body,
    )
    .await;
    refused(&malformed, 401, "malformed_signature_header");

    assert_eq!(events(&api, "").await.len(), 2, "refusals store nothing");
    gw.stop().await;
}

#[tokio::test]
async fn github_documented_example_and_refusals() {
    let gw = TestGateway::start().await;
    let (api, _) = gw.client().new_account("acme").await;
    let (_, path) = source(
        &api,
        "gh",
        json!({"provider": "github", "secret": "It's a Secret to Everybody"}),
    )
    .await;
    let sig = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";
    let ok = post(
        &api,
        &path,
        &[
            ("x-hub-signature-256", sig.into()),
            ("x-github-event", "ping".into()),
            ("x-github-delivery", "d-1".into()),
        ],
        "Hello, World!",
    )
    .await;
    let id = accepted(&ok);
    let e = event(&api, &id).await;
    assert_eq!(e["body"], "Hello, World!");
    assert_eq!(e["event_type"], "ping");
    assert_eq!(e["dedupe_key"], "d-1");

    let body = r#"{"action":"opened","number":7}"#;
    let sig = format!(
        "sha256={}",
        hex::encode(mac(b"It's a Secret to Everybody", &[body.as_bytes()]))
    );
    let pr = post(
        &api,
        &path,
        &[
            ("x-hub-signature-256", sig.clone()),
            ("x-github-event", "pull_request".into()),
            ("x-github-delivery", "d-2".into()),
        ],
        body,
    )
    .await;
    assert_eq!(
        event(&api, &accepted(&pr)).await["event_type"],
        "pull_request.opened"
    );

    refused(
        &post(
            &api,
            &path,
            &[("x-hub-signature-256", sig.clone())],
            "Hello, World?",
        )
        .await,
        401,
        "signature_mismatch",
    );
    refused(
        &post(
            &api,
            &path,
            &[("x-hub-signature-256", "sha1=abc".into())],
            body,
        )
        .await,
        401,
        "malformed_signature_header",
    );
    refused(
        &post(&api, &path, &[], body).await,
        401,
        "missing_signature_header",
    );
    assert_eq!(events(&api, "").await.len(), 2);
    gw.stop().await;
}

#[tokio::test]
async fn shopify_standard_webhooks_svix_slack_and_generic_hmac_verify() {
    let gw = TestGateway::start().await;
    let (api, _) = gw.client().new_account("acme").await;
    let t = now_s();

    // Shopify: base64 HMAC of the body; type from X-Shopify-Topic.
    let (_, shop) = source(
        &api,
        "shop",
        json!({"provider": "shopify", "secret": "shpss_secret"}),
    )
    .await;
    let body = r#"{"id":820982911946154508,"email":"jon@example.com"}"#;
    let sig = b64(&mac(b"shpss_secret", &[body.as_bytes()]));
    let a = post(
        &api,
        &shop,
        &[
            ("x-shopify-hmac-sha256", sig),
            ("x-shopify-topic", "orders/create".into()),
            ("x-shopify-webhook-id", "w-1".into()),
        ],
        body,
    )
    .await;
    assert_eq!(
        event(&api, &accepted(&a)).await["event_type"],
        "orders/create"
    );
    let bad = b64(&mac(b"other", &[body.as_bytes()]));
    refused(
        &post(&api, &shop, &[("x-shopify-hmac-sha256", bad)], body).await,
        401,
        "signature_mismatch",
    );

    // Standard Webhooks, with two secrets during a rotation and two signatures of which one is valid.
    let key_old = [7u8; 24];
    let key_new = [9u8; 24];
    let whsec = |k: &[u8]| format!("whsec_{}", b64(k));
    let (_, std_path) = source(
        &api,
        "std",
        json!({"provider": "standard_webhooks", "secret": whsec(&key_new), "secrets": [whsec(&key_old)]}),
    )
    .await;
    let body = r#"{"type":"user.created","data":{}}"#;
    let signed = |k: &[u8], id: &str, ts: i64| {
        b64(&mac(
            k,
            &[
                id.as_bytes(),
                b".",
                ts.to_string().as_bytes(),
                b".",
                body.as_bytes(),
            ],
        ))
    };
    let header = format!("v1,{} v1,{}", b64(&[1u8; 32]), signed(&key_old, "msg_1", t));
    let a = post(
        &api,
        &std_path,
        &[
            ("webhook-id", "msg_1".into()),
            ("webhook-timestamp", t.to_string()),
            ("webhook-signature", header),
        ],
        body,
    )
    .await;
    let e = event(&api, &accepted(&a)).await;
    assert_eq!(e["event_type"], "user.created");
    assert_eq!(e["dedupe_key"], "msg_1");
    // Svix's header names work too.
    let a = post(
        &api,
        &std_path,
        &[
            ("svix-id", "msg_2".into()),
            ("svix-timestamp", t.to_string()),
            (
                "svix-signature",
                format!("v1,{}", signed(&key_new, "msg_2", t)),
            ),
        ],
        body,
    )
    .await;
    accepted(&a);
    let stale = post(
        &api,
        &std_path,
        &[
            ("webhook-id", "msg_3".into()),
            ("webhook-timestamp", (t - 3600).to_string()),
            (
                "webhook-signature",
                format!("v1,{}", signed(&key_new, "msg_3", t - 3600)),
            ),
        ],
        body,
    )
    .await;
    refused(&stale, 401, "timestamp_out_of_tolerance");

    // Slack.
    let (_, slack) = source(
        &api,
        "slack",
        json!({"provider": "slack", "secret": "slack-signing"}),
    )
    .await;
    let body = r#"{"type":"event_callback","event_id":"Ev1","event":{"type":"app_mention"}}"#;
    let sig = format!(
        "v0={}",
        hex::encode(mac(
            b"slack-signing",
            &[format!("v0:{t}:").as_bytes(), body.as_bytes()]
        ))
    );
    let a = post(
        &api,
        &slack,
        &[
            ("x-slack-signature", sig.clone()),
            ("x-slack-request-timestamp", t.to_string()),
        ],
        body,
    )
    .await;
    assert_eq!(
        event(&api, &accepted(&a)).await["event_type"],
        "app_mention"
    );
    refused(
        &post(
            &api,
            &slack,
            &[
                ("x-slack-signature", sig),
                ("x-slack-request-timestamp", (t + 1).to_string()),
            ],
            body,
        )
        .await,
        401,
        "signature_mismatch",
    );

    // Generic HMAC with a configured header, prefix and JSON-pointer type.
    let (_, generic) = source(
        &api,
        "generic",
        json!({"provider": "hmac", "secret": "g-secret", "header": "X-Signature", "prefix": "sha256=",
               "encoding": "hex", "algorithm": "sha256", "event_type_pointer": "/meta/kind"}),
    )
    .await;
    let body = r#"{"meta":{"kind":"thing.happened"}}"#;
    let sig = format!(
        "sha256={}",
        hex::encode(mac(b"g-secret", &[body.as_bytes()]))
    );
    let a = post(&api, &generic, &[("x-signature", sig)], body).await;
    assert_eq!(
        event(&api, &accepted(&a)).await["event_type"],
        "thing.happened"
    );
    refused(
        &post(&api, &generic, &[], body).await,
        401,
        "missing_signature_header",
    );
    gw.stop().await;
}

#[tokio::test]
async fn unknown_token_is_404_oversized_is_413_and_neither_stores_anything() {
    let gw = TestGateway::start_with(tempfile::tempdir().unwrap(), |c| {
        c.server.max_body_bytes = 1024;
    })
    .await;
    let (api, _) = gw.client().new_account("acme").await;
    let (_, path) = source(&api, "open", Value::Null).await;

    let unknown = post(&api, "/ingest/not-a-real-token-0123456789", &[], "{}").await;
    refused(&unknown, 404, "not_found");
    assert!(!unknown.body.to_string().contains("not-a-real-token"));

    let big = post(&api, &path, &[], vec![b'x'; 1025]).await;
    refused(&big, 413, "payload_too_large");
    // Chunked (no Content-Length) bodies are capped too.
    let stream = futures::stream::iter((0..4).map(|_| Ok::<_, std::io::Error>(vec![b'y'; 400])));
    let big = post(&api, &path, &[], reqwest::Body::wrap_stream(stream)).await;
    refused(&big, 413, "payload_too_large");

    let fits = post(&api, &path, &[], vec![b'x'; 1024]).await;
    accepted(&fits);
    assert_eq!(events(&api, "").await.len(), 1);

    let metrics = gw.metrics_text().await;
    assert!(
        metrics.contains(
            "hookgate_ingest_requests_total{outcome=\"not_found\",source_id=\"unknown\"} 1"
        ),
        "{metrics}"
    );
    assert!(metrics.contains("outcome=\"too_large\""), "{metrics}");
    gw.stop().await;
}

#[tokio::test]
async fn repeated_provider_delivery_ids_are_duplicates_with_the_original_event_id() {
    let gw = TestGateway::start().await;
    let (api, _) = gw.client().new_account("acme").await;
    let secret = "whsec_dedupe";
    let (src, path) = source(
        &api,
        "stripe",
        json!({"provider": "stripe", "secret": secret}),
    )
    .await;
    let dst = api
        .post(
            "/v1/destinations",
            json!({"name": "d", "url": "http://127.0.0.1:9/x", "enabled": false}),
        )
        .await;
    api.post(
        "/v1/routes",
        json!({"source_id": src, "destination_id": dst.data()["id"]}),
    )
    .await;
    let body = r#"{"id":"evt_same","type":"charge.succeeded"}"#;
    let t = now_s();
    let sig = format!(
        "t={t},v1={}",
        hex::encode(mac(
            secret.as_bytes(),
            &[t.to_string().as_bytes(), b".", body.as_bytes()]
        ))
    );

    let first = accepted(&post(&api, &path, &[("stripe-signature", sig.clone())], body).await);
    // Concurrent repeats land in the same journal batch or later ones: one event either way.
    let repeats: Vec<_> = (0..8)
        .map(|_| {
            let (api, path, sig) = (api.clone(), path.clone(), sig.clone());
            tokio::spawn(async move { post(&api, &path, &[("stripe-signature", sig)], body).await })
        })
        .collect();
    for r in repeats {
        let a = r.await.unwrap();
        assert_eq!(a.status, 200);
        assert_eq!(a.data()["duplicate"], true);
        assert_eq!(a.data()["event_id"], first);
    }
    assert_eq!(events(&api, "").await.len(), 1);
    let deliveries = api.get(&format!("/v1/events/{first}/deliveries")).await;
    assert_eq!(
        deliveries.data().as_array().unwrap().len(),
        1,
        "no new deliveries"
    );
    gw.stop().await;
}

#[tokio::test]
async fn dedupe_window_zero_stores_every_copy() {
    let gw = TestGateway::start_with(tempfile::tempdir().unwrap(), |c| {
        c.ingest.dedupe_window = std::time::Duration::ZERO;
    })
    .await;
    let (api, _) = gw.client().new_account("acme").await;
    let (_, path) = source(&api, "gh", json!({"provider": "github", "secret": "s"})).await;
    let body = "{}";
    let sig = format!("sha256={}", hex::encode(mac(b"s", &[body.as_bytes()])));
    let h = [
        ("x-hub-signature-256", sig),
        ("x-github-delivery", "same".to_owned()),
        ("x-github-event", "push".to_owned()),
    ];
    let a = accepted(&post(&api, &path, &h, body).await);
    let b = accepted(&post(&api, &path, &h, body).await);
    assert_ne!(a, b);

    // Both copies are found by the provider's delivery id, and nothing else is.
    let mut other = h.clone();
    other[1].1 = "other".to_owned();
    let c = accepted(&post(&api, &path, &other, body).await);
    let ids = |list: Vec<Value>| -> Vec<String> {
        list.iter()
            .map(|e| e["id"].as_str().unwrap().to_owned())
            .collect()
    };
    let found = events(&api, "?dedupe_key=same").await;
    assert_eq!(ids(found.clone()), [b.clone(), a.clone()]);
    assert!(found.iter().all(|e| e["dedupe_key"] == "same"));
    assert_eq!(ids(events(&api, "?dedupe_key=other").await), [c]);
    assert!(events(&api, "?dedupe_key=nope").await.is_empty());
    gw.stop().await;
}

#[tokio::test]
async fn routes_fan_events_out_into_deliveries_by_pattern() {
    let gw = TestGateway::start().await;
    let (api, _) = gw.client().new_account("acme").await;
    let (src, path) = source(&api, "open", Value::Null).await;
    let mut dst = Vec::new();
    for name in ["invoices", "everything", "failures"] {
        let d = api
            .post(
                "/v1/destinations",
                json!({"name": name, "url": "http://127.0.0.1:9/x", "enabled": false}),
            )
            .await;
        dst.push(d.data()["id"].as_str().unwrap().to_owned());
    }
    let r = |body: Value| {
        let api = api.clone();
        async move { assert_eq!(api.post("/v1/routes", body).await.status, 201) }
    };
    r(json!({"source_id": src, "destination_id": dst[0], "event_type_pattern": "invoice.*"})).await;
    r(json!({"source_id": src, "destination_id": dst[1]})).await;
    r(json!({"destination_id": dst[2], "event_type_pattern": "*.failed"})).await;

    let send = |ty: &str| {
        let (api, path, ty) = (api.clone(), path.clone(), ty.to_owned());
        async move { accepted(&post(&api, &path, &[], format!("{{\"type\":\"{ty}\"}}")).await) }
    };
    for (ty, want) in [
        ("invoice.paid", vec![0, 1]),
        ("invoice.payment.failed", vec![0, 1, 2]),
        ("customer.created", vec![1]),
    ] {
        let id = send(ty).await;
        let d = api.get(&format!("/v1/events/{id}/deliveries")).await;
        let mut got: Vec<String> = d
            .data()
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["destination_id"].as_str().unwrap().to_owned())
            .collect();
        got.sort();
        let mut want: Vec<String> = want.into_iter().map(|i| dst[i].clone()).collect();
        want.sort();
        assert_eq!(got, want, "{ty}");
        for d in d.data().as_array().unwrap() {
            assert_eq!(d["status"], "pending");
            assert_eq!(d["attempts"], 0);
            assert!(d["id"].as_str().unwrap().starts_with("dlv_"));
        }
        assert_eq!(event(&api, &id).await["status"], "queued");
    }

    // Deleting the route stops the fan-out at once.
    let routes = api.get("/v1/routes").await;
    for rt in routes.data().as_array().unwrap() {
        api.delete(&format!("/v1/routes/{}", rt["id"].as_str().unwrap()))
            .await;
    }
    let id = send("invoice.paid").await;
    assert_eq!(event(&api, &id).await["status"], "received");

    // Deleting the source makes its URL unknown.
    api.delete(&format!("/v1/sources/{src}")).await;
    refused(&post(&api, &path, &[], "{}").await, 404, "not_found");
    gw.stop().await;
}

#[tokio::test]
async fn events_list_newest_first_with_filters_and_binary_bodies() {
    let gw = TestGateway::start().await;
    let (api, _) = gw.client().new_account("acme").await;
    let (other_api, _) = gw.client().new_account("other").await;
    let (s1, p1) = source(&api, "one", Value::Null).await;
    let (_, p2) = source(&api, "two", Value::Null).await;
    let mut ids = Vec::new();
    for i in 0..5 {
        let (p, ty) = if i % 2 == 0 {
            (&p1, "a.x")
        } else {
            (&p2, "b.y")
        };
        ids.push(accepted(
            &post(&api, p, &[], format!("{{\"type\":\"{ty}\",\"n\":{i}}}")).await,
        ));
    }
    let binary = accepted(&post(&api, &p1, &[], vec![0xff, 0x00, 0xfe]).await);
    ids.push(binary.clone());

    let all: Vec<String> = events(&api, "")
        .await
        .iter()
        .map(|e| e["id"].as_str().unwrap().to_owned())
        .collect();
    let mut newest_first = ids.clone();
    newest_first.reverse();
    assert_eq!(all, newest_first);

    // An event's `received_at` is the time in its id, which the time filters use: a window of
    // exactly that millisecond finds it (a second clock read could land a millisecond later).
    for e in events(&api, "").await {
        let at = e["received_at"].as_str().unwrap();
        let id = hookgate::ids::EventId::parse(e["id"].as_str().unwrap()).unwrap();
        let id_time = humantime::format_rfc3339_millis(
            UNIX_EPOCH + std::time::Duration::from_millis(id.created_ms()),
        );
        assert_eq!(at, id_time.to_string());
        let found = events(&api, &format!("?since={at}&until={at}")).await;
        assert!(
            found.iter().any(|f| f["id"] == e["id"]),
            "{e} not in its own millisecond"
        );
    }

    assert_eq!(events(&api, &format!("?source_id={s1}")).await.len(), 4);
    assert_eq!(events(&api, "?event_type=b.y").await.len(), 2);
    assert_eq!(events(&api, "?status=received").await.len(), 6);
    assert_eq!(events(&api, "?status=queued").await.len(), 0);
    assert_eq!(events(&api, "?until=2000-01-01T00:00:00Z").await.len(), 0);
    assert_eq!(events(&api, "?since=2000-01-01T00:00:00Z").await.len(), 6);
    assert_eq!(api.get("/v1/events?since=yesterday").await.status, 422);
    assert_eq!(api.get("/v1/events?status=lost").await.status, 400);

    let mut paged = Vec::new();
    let mut path = "/v1/events?limit=4".to_owned();
    loop {
        let page = api.get(&path).await;
        paged.extend(
            page.data()
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e["id"].as_str().unwrap().to_owned()),
        );
        match page.body["next_cursor"].as_str() {
            Some(c) => path = format!("/v1/events?limit=4&cursor={c}"),
            None => break,
        }
    }
    assert_eq!(paged, newest_first);

    let e = event(&api, &binary).await;
    assert!(e["body"].is_null());
    assert_eq!(e["body_base64"], b64(&[0xff, 0x00, 0xfe]));

    assert_eq!(
        other_api.get(&format!("/v1/events/{binary}")).await.status,
        404
    );
    assert_eq!(
        other_api
            .get(&format!("/v1/events/{binary}/deliveries"))
            .await
            .status,
        404
    );
    assert!(events(&other_api, "").await.is_empty());
    gw.stop().await;
}

/// Ingest bypasses the router (`http::Gateway`); what it answers must not depend on which path
/// a request took: plain tokens take the fast path, percent-encoded ones the router.
#[tokio::test]
async fn ingest_answers_the_same_on_the_fast_path_and_through_the_router() {
    use futures::StreamExt as _;
    let gw = TestGateway::start_with(tempfile::tempdir().unwrap(), |c| {
        c.server.request_timeout = std::time::Duration::from_millis(300);
    })
    .await;
    let (api, _) = gw.client().new_account("acme").await;
    let (_, path) = source(&api, "open", Value::Null).await;

    let fast = post(&api, &path, &[], r#"{"type":"a.b"}"#).await;
    let fast_id = accepted(&fast);
    let header = fast.headers["x-request-id"].to_str().unwrap();
    assert!(header.starts_with("req_"), "{header}");
    assert_eq!(fast.body["request_id"], header);
    assert!(fast.body["duration_ms"].is_u64(), "{:?}", fast.body);

    // The same token with its first character percent-encoded: only the router decodes it.
    let token = path.strip_prefix("/ingest/").unwrap();
    let encoded = format!("/ingest/%{:02X}{}", token.as_bytes()[0], &token[1..]);
    let routed = post(&api, &encoded, &[], r#"{"type":"a.b"}"#).await;
    let routed_id = accepted(&routed);
    assert_eq!(
        routed.body["request_id"],
        routed.headers["x-request-id"].to_str().unwrap()
    );
    let stored: Vec<String> = events(&api, "")
        .await
        .iter()
        .map(|e| e["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(stored, vec![routed_id, fast_id]);

    let get = Api::answer(api.http.get(format!("{}{path}", api.base))).await;
    refused(&get, 405, "method_not_allowed");
    assert!(get.headers.contains_key("x-request-id"));
    refused(
        &post(&api, &format!("{path}/"), &[], "{}").await,
        404,
        "not_found",
    );

    // A body that stalls past request_timeout_ms: 503, and nothing stored.
    let stalled = futures::stream::once(async { Ok::<_, std::io::Error>(b"{\"type\":".to_vec()) })
        .chain(futures::stream::once(async {
            tokio::time::sleep(std::time::Duration::from_secs(3)).await;
            Ok(b"\"x\"}".to_vec())
        }));
    let slow = post(&api, &path, &[], reqwest::Body::wrap_stream(stalled)).await;
    refused(&slow, 503, "request_timeout");
    assert_eq!(events(&api, "").await.len(), 2);
    gw.stop().await;
}

/// Small bodies are copied out of the connection's read buffer, large ones kept as they came
/// (`read_body`); either way the stored body is the request's, byte for byte.
#[tokio::test]
async fn small_and_large_bodies_are_stored_byte_for_byte() {
    let gw = TestGateway::start().await;
    let (api, _) = gw.client().new_account("acme").await;
    let (_, path) = source(&api, "open", Value::Null).await;
    for len in [1, 1024, 16 * 1024, 16 * 1024 + 1, 200 * 1024] {
        // Not UTF-8, so the events API answers with body_base64.
        let body: Vec<u8> = (0..len).map(|i| (i * 7 % 251) as u8 | 0x80).collect();
        let id = accepted(&post(&api, &path, &[], body.clone()).await);
        let stored = event(&api, &id).await;
        assert!(stored["body"].is_null(), "{len}");
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(stored["body_base64"].as_str().unwrap())
            .unwrap();
        assert_eq!(decoded, body, "body of {len} bytes differs");
    }
    gw.stop().await;
}
