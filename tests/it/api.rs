//! The `/v1` control-plane API through a real server: every endpoint, auth and scopes,
//! validation, envelopes, pagination.

use serde_json::{json, Value};

use crate::support::{Api, TestGateway, ADMIN_KEY};

fn assert_envelope(a: &crate::support::Answer) {
    let rid = a.body["request_id"].as_str().expect("request_id");
    assert!(rid.starts_with("req_"), "{rid}");
    assert!(a.body["duration_ms"].is_u64(), "{:?}", a.body);
    assert_eq!(
        a.headers.get("x-request-id").unwrap().to_str().unwrap(),
        rid
    );
}

async fn webhook_source(api: &Api, name: &str) -> Value {
    let a = api
        .post(
            "/v1/sources",
            json!({"name": name, "kind": "webhook",
                   "verification": {"provider": "github", "secret": "It's a Secret to Everybody"}}),
        )
        .await;
    assert_eq!(a.status, 201, "{:?}", a.body);
    a.data().clone()
}

async fn destination(api: &Api, name: &str) -> Value {
    let a = api
        .post(
            "/v1/destinations",
            json!({"name": name, "url": "http://127.0.0.1:9/hook"}),
        )
        .await;
    assert_eq!(a.status, 201, "{:?}", a.body);
    a.data().clone()
}

#[tokio::test]
async fn account_creation_needs_the_operator_key_and_shows_the_key_once() {
    let gw = TestGateway::start().await;
    let api = gw.client();

    let a = api.post("/v1/accounts", json!({"name": "acme"})).await;
    assert_eq!(a.status, 401);
    assert_eq!(a.error_code(), "unauthorized");
    assert_envelope(&a);

    let a = api
        .with_key("wrong-operator-key-000000")
        .post("/v1/accounts", json!({"name": "acme"}))
        .await;
    assert_eq!(a.status, 401);

    let a = api
        .with_key(ADMIN_KEY)
        .post("/v1/accounts", json!({"name": "acme"}))
        .await;
    assert_eq!(a.status, 201, "{:?}", a.body);
    assert_envelope(&a);
    let key = a.data()["api_key"].as_str().unwrap();
    assert!(key.starts_with("hk_") && key.len() > 30, "{key}");
    let account_id = a.data()["account"]["id"].as_str().unwrap();
    assert!(account_id.starts_with("acc_"));

    let me = api.with_key(key).get("/v1/account").await;
    assert_eq!(me.status, 200);
    assert_eq!(me.data()["id"], account_id);
    assert_eq!(me.data()["name"], "acme");

    // The account key is not an operator key.
    let a = api
        .with_key(key)
        .post("/v1/accounts", json!({"name": "other"}))
        .await;
    assert_eq!(a.status, 401);

    let a = api
        .with_key(ADMIN_KEY)
        .post("/v1/accounts", json!({"name": ""}))
        .await;
    assert_eq!(a.status, 422);
    assert!(a.error_message().starts_with("name:"), "{:?}", a.body);
    gw.stop().await;
}

#[tokio::test]
async fn operator_endpoints_are_forbidden_without_a_configured_key() {
    let gw = TestGateway::start_with(tempfile::tempdir().unwrap(), |c| {
        c.admin.api_key = None;
    })
    .await;
    let a = gw
        .client()
        .with_key(ADMIN_KEY)
        .post("/v1/accounts", json!({"name": "acme"}))
        .await;
    assert_eq!(a.status, 403);
    assert!(
        a.error_message().contains("HOOKGATE_ADMIN_KEY"),
        "{:?}",
        a.body
    );
    gw.stop().await;
}

#[tokio::test]
async fn requests_without_or_with_a_wrong_key_are_401() {
    let gw = TestGateway::start().await;
    let api = gw.client();
    for path in [
        "/v1/account",
        "/v1/sources",
        "/v1/destinations",
        "/v1/routes",
        "/v1/api-keys",
    ] {
        let a = api.get(path).await;
        assert_eq!(a.status, 401, "{path}");
        assert_eq!(a.error_code(), "unauthorized");
        let a = api.with_key("hk_not-a-real-key").get(path).await;
        assert_eq!(a.status, 401, "{path}");
        let a = api.with_key("Basic abc").get(path).await;
        assert_eq!(a.status, 401, "{path}");
    }
    let a = api
        .with_key("hk_nope")
        .post("/v1/sources", json!({"name": "x", "kind": "api"}))
        .await;
    assert_eq!(a.status, 401);
    gw.stop().await;
}

#[tokio::test]
async fn another_accounts_resources_are_404_and_never_listed() {
    let gw = TestGateway::start().await;
    let (alice, _) = gw.client().new_account("alice").await;
    let (bob, _) = gw.client().new_account("bob").await;
    let src = webhook_source(&alice, "stripe").await;
    let dst = destination(&alice, "svc").await;
    let rte = alice
        .post(
            "/v1/routes",
            json!({"source_id": src["id"], "destination_id": dst["id"]}),
        )
        .await;
    assert_eq!(rte.status, 201);
    let rte = rte.data().clone();

    for (kind, id) in [
        ("sources", &src["id"]),
        ("destinations", &dst["id"]),
        ("routes", &rte["id"]),
    ] {
        let path = format!("/v1/{kind}/{}", id.as_str().unwrap());
        assert_eq!(bob.get(&path).await.status, 404, "{path}");
        assert_eq!(bob.delete(&path).await.status, 404, "{path}");
        assert_eq!(alice.get(&path).await.status, 200, "{path}");
        let listed = bob.get(&format!("/v1/{kind}")).await;
        assert_eq!(listed.data().as_array().unwrap().len(), 0, "{kind}");
    }
    let path = format!("/v1/sources/{}", src["id"].as_str().unwrap());
    assert_eq!(bob.patch(&path, json!({"name": "mine"})).await.status, 404);
    let path = format!("/v1/destinations/{}", dst["id"].as_str().unwrap());
    assert_eq!(bob.patch(&path, json!({"name": "mine"})).await.status, 404);

    // Bob cannot route to Alice's destination either.
    let a = bob
        .post("/v1/routes", json!({"destination_id": dst["id"]}))
        .await;
    assert_eq!(a.status, 422);
    assert!(
        a.error_message().starts_with("destination_id"),
        "{:?}",
        a.body
    );
    gw.stop().await;
}

#[tokio::test]
async fn scopes_limit_what_a_key_can_do() {
    let gw = TestGateway::start().await;
    let (full, _) = gw.client().new_account("acme").await;
    let mut keys = std::collections::HashMap::new();
    for scope in ["read-only", "send-only", "full"] {
        let a = full
            .post("/v1/api-keys", json!({"name": scope, "scope": scope}))
            .await;
        assert_eq!(a.status, 201, "{:?}", a.body);
        assert_eq!(a.data()["scope"], scope);
        keys.insert(scope, a.data()["key"].as_str().unwrap().to_owned());
    }
    let read = full.with_key(&keys["read-only"]);
    let send = full.with_key(&keys["send-only"]);

    assert_eq!(read.get("/v1/sources").await.status, 200);
    let a = read
        .post("/v1/sources", json!({"name": "x", "kind": "api"}))
        .await;
    assert_eq!(a.status, 403);
    assert_eq!(a.error_code(), "forbidden");
    assert_eq!(
        read.post("/v1/api-keys", json!({"name": "k"})).await.status,
        403
    );

    assert_eq!(send.get("/v1/sources").await.status, 403);
    assert_eq!(send.get("/v1/account").await.status, 403);
    let a = send
        .post("/v1/sources", json!({"name": "x", "kind": "api"}))
        .await;
    assert_eq!(a.status, 403);

    // Underscore spellings are accepted on input and answered in the contract's form.
    let a = full
        .post("/v1/api-keys", json!({"name": "k", "scope": "read_only"}))
        .await;
    assert_eq!(a.data()["scope"], "read-only");
    let a = full
        .post("/v1/api-keys", json!({"name": "k", "scope": "admin"}))
        .await;
    assert_eq!(a.status, 422);
    assert!(a.error_message().starts_with("scope"), "{:?}", a.body);
    gw.stop().await;
}

#[tokio::test]
async fn api_keys_are_listed_without_secrets_and_revocation_takes_effect() {
    let gw = TestGateway::start().await;
    let (api, _) = gw.client().new_account("acme").await;
    let created = api.post("/v1/api-keys", json!({"name": "ci"})).await;
    assert_eq!(created.status, 201);
    let id = created.data()["id"].as_str().unwrap().to_owned();
    let secret = created.data()["key"].as_str().unwrap().to_owned();
    assert!(id.starts_with("key_"));
    assert_eq!(created.data()["scope"], "full");
    assert!(secret.starts_with(created.data()["prefix"].as_str().unwrap()));

    let list = api.get("/v1/api-keys").await;
    assert_eq!(list.status, 200);
    let items = list.data().as_array().unwrap();
    assert_eq!(items.len(), 2, "the account's first key and the new one");
    assert!(items.iter().all(|k| k.get("key").is_none()));
    assert!(!list.body.to_string().contains(&secret));

    let one = api.get(&format!("/v1/api-keys/{id}")).await;
    assert_eq!(one.data()["name"], "ci");
    assert!(one.data().get("key").is_none());

    let ci = api.with_key(&secret);
    assert_eq!(ci.get("/v1/account").await.status, 200);
    let del = api.delete(&format!("/v1/api-keys/{id}")).await;
    assert_eq!(del.status, 200);
    assert_eq!(del.data()["deleted"], true);
    assert_eq!(ci.get("/v1/account").await.status, 401);
    assert_eq!(api.delete(&format!("/v1/api-keys/{id}")).await.status, 404);
    gw.stop().await;
}

#[tokio::test]
async fn sources_crud_with_tokens_verification_masking_and_unique_names() {
    let gw = TestGateway::start().await;
    let (api, _) = gw.client().new_account("acme").await;

    let src = webhook_source(&api, "github").await;
    let id = src["id"].as_str().unwrap();
    assert!(id.starts_with("src_"));
    let token = src["path_token"].as_str().unwrap();
    assert!(token.len() >= 40, "{token}");
    assert_eq!(src["ingest_path"], format!("/ingest/{token}"));
    assert_eq!(src["verification"]["provider"], "github");
    // A human-chosen secret shows nothing of itself, not even a prefix.
    assert_eq!(src["verification"]["secret"], "…");
    assert!(src.get("warnings").is_none());

    let other = webhook_source(&api, "github-2").await;
    assert_ne!(other["path_token"], src["path_token"]);

    let unverified = api
        .post("/v1/sources", json!({"name": "open", "kind": "webhook"}))
        .await;
    assert_eq!(unverified.status, 201);
    assert!(unverified.data()["warnings"][0]
        .as_str()
        .unwrap()
        .contains("no signature verification"));

    let api_src = api
        .post("/v1/sources", json!({"name": "customer-42", "kind": "api"}))
        .await;
    assert_eq!(api_src.status, 201);
    assert!(api_src.data().get("path_token").is_none());

    let dup = api
        .post("/v1/sources", json!({"name": "github", "kind": "api"}))
        .await;
    assert_eq!(dup.status, 409);
    assert_eq!(dup.error_code(), "conflict");

    let bad = api
        .post(
            "/v1/sources",
            json!({"name": "x", "kind": "api", "verification": {"provider": "stripe", "secret": "whsec_x"}}),
        )
        .await;
    assert_eq!(bad.status, 422);
    assert!(
        bad.error_message().starts_with("verification"),
        "{:?}",
        bad.body
    );
    let bad = api
        .post(
            "/v1/sources",
            json!({"name": "x", "kind": "webhook", "verification": {"provider": "stripe"}}),
        )
        .await;
    assert_eq!(bad.status, 422);
    assert!(
        bad.error_message().starts_with("verification."),
        "{:?}",
        bad.body
    );
    let bad = api
        .post(
            "/v1/sources",
            json!({"name": "x", "kind": "carrier-pigeon"}),
        )
        .await;
    assert_eq!(bad.status, 422);
    assert!(bad.error_message().starts_with("kind"), "{:?}", bad.body);

    let got = api.get(&format!("/v1/sources/{id}")).await;
    assert_eq!(got.status, 200);
    assert_eq!(got.data()["path_token"], token);

    let patched = api
        .patch(
            &format!("/v1/sources/{id}"),
            json!({"name": "gh", "verification": {"provider": "shopify", "secret": "shpss_abc"}}),
        )
        .await;
    assert_eq!(patched.status, 200, "{:?}", patched.body);
    assert_eq!(patched.data()["name"], "gh");
    assert_eq!(patched.data()["verification"]["provider"], "shopify");
    assert_eq!(
        patched.data()["path_token"],
        token,
        "token survives a patch"
    );
    // The old name is free again, the new one is taken.
    assert_eq!(
        api.post("/v1/sources", json!({"name": "github", "kind": "api"}))
            .await
            .status,
        201
    );
    let clash = api
        .patch(&format!("/v1/sources/{id}"), json!({"name": "github-2"}))
        .await;
    assert_eq!(clash.status, 409);
    let bad = api
        .patch(&format!("/v1/sources/{id}"), json!({"kind": "api"}))
        .await;
    assert_eq!(bad.status, 422);
    assert!(
        bad.error_message().contains("unknown field `kind`"),
        "{:?}",
        bad.body
    );

    let del = api.delete(&format!("/v1/sources/{id}")).await;
    assert_eq!(del.status, 200);
    assert_eq!(api.get(&format!("/v1/sources/{id}")).await.status, 404);
    assert_eq!(api.delete(&format!("/v1/sources/{id}")).await.status, 404);
    assert_eq!(api.get("/v1/sources/src_garbage").await.status, 404);
    assert_eq!(
        api.get(&format!(
            "/v1/sources/{}",
            other["id"].as_str().unwrap().replace("src_", "dst_")
        ))
        .await
        .status,
        404
    );
    gw.stop().await;
}

#[tokio::test]
async fn destinations_crud_with_signing_secret_retry_policy_and_masked_auth() {
    let gw = TestGateway::start().await;
    let (api, _) = gw.client().new_account("acme").await;

    let a = api
        .post(
            "/v1/destinations",
            json!({
                "name": "billing",
                "url": "https://billing.internal.example/hooks",
                "auth": {"type": "bearer", "token": "s3cret-token"},
                "headers": {"X-Team": "billing"},
                "timeout_ms": 5000,
                "retry": {"schedule": ["1s", "10s"], "jitter": false},
                "rate_limit_per_s": 50,
                "max_in_flight": 4,
                "ordering": "fifo"
            }),
        )
        .await;
    assert_eq!(a.status, 201, "{:?}", a.body);
    let d = a.data().clone();
    let id = d["id"].as_str().unwrap();
    assert!(id.starts_with("dst_"));
    let secret = d["signing_secret"].as_str().unwrap();
    assert!(
        secret.starts_with("whsec_") && secret.len() > 30,
        "{secret}"
    );
    assert_eq!(d["auth"]["type"], "bearer");
    assert_eq!(d["auth"]["token"], "****");
    assert!(!a.body.to_string().contains("s3cret-token"));
    assert_eq!(d["retry"]["schedule"], json!(["1s", "10s"]));
    assert_eq!(d["retry"]["jitter"], false);
    assert_eq!(d["ordering"], "fifo");
    assert_eq!(d["enabled"], true);
    assert_eq!(d["timeout_ms"], 5000);

    let defaults = destination(&api, "defaults").await;
    assert_eq!(defaults["timeout_ms"], 15000);
    assert_eq!(defaults["max_in_flight"], 10);
    assert_eq!(defaults["ordering"], "none");
    assert_eq!(
        defaults["retry"]["schedule"],
        json!(["5s", "5m", "30m", "2h", "5h", "10h", "10h"])
    );
    assert_ne!(defaults["signing_secret"], d["signing_secret"]);

    for (body, field) in [
        (json!({"name": "x", "url": "ftp://example.com"}), "url"),
        (json!({"name": "x", "url": "not a url"}), "url"),
        (
            json!({"name": "x", "url": "https://u:p@example.com"}),
            "url",
        ),
        (
            json!({"name": "x", "url": "https://example.com", "timeout_ms": 0}),
            "timeout_ms",
        ),
        (
            json!({"name": "x", "url": "https://example.com", "timeout_ms": 60001}),
            "timeout_ms",
        ),
        (
            json!({"name": "x", "url": "https://example.com", "max_in_flight": 0}),
            "max_in_flight",
        ),
        (
            json!({"name": "x", "url": "https://example.com", "retry": {"schedule": []}}),
            "retry",
        ),
        (
            json!({"name": "x", "url": "https://example.com", "retry": {"schedule": ["5 parsecs"]}}),
            "retry",
        ),
        (
            json!({"name": "x", "url": "https://example.com", "headers": {"Host": "evil"}}),
            "headers.Host",
        ),
        (
            json!({"name": "x", "url": "https://example.com", "headers": {"webhook-signature": "v1,x"}}),
            "headers.webhook-signature",
        ),
        (
            json!({"name": "x", "url": "https://example.com", "ordering": "lifo"}),
            "ordering",
        ),
        (
            json!({"name": "x", "url": "https://example.com", "colour": "red"}),
            "colour",
        ),
    ] {
        let a = api.post("/v1/destinations", body.clone()).await;
        assert_eq!(a.status, 422, "{body} → {:?}", a.body);
        assert!(
            a.error_message().starts_with(field)
                || a.error_message().contains(&format!("`{field}`")),
            "{body} → {:?}",
            a.body
        );
    }

    let patched = api
        .patch(
            &format!("/v1/destinations/{id}"),
            json!({"enabled": false, "auth": null, "rate_limit_per_s": null,
                   "retry": {"initial": "1s", "factor": 2.0, "max_delay": "1h", "max_attempts": 10}}),
        )
        .await;
    assert_eq!(patched.status, 200, "{:?}", patched.body);
    assert_eq!(patched.data()["enabled"], false);
    assert!(patched.data()["auth"].is_null());
    assert!(patched.data()["rate_limit_per_s"].is_null());
    assert_eq!(patched.data()["retry"]["max_attempts"], 10);
    assert_eq!(patched.data()["signing_secret"], d["signing_secret"]);
    assert_eq!(
        patched.data()["headers"]["X-Team"],
        "billing",
        "untouched fields stay"
    );

    let bad = api
        .patch(&format!("/v1/destinations/{id}"), json!({"timeout_ms": 0}))
        .await;
    assert_eq!(bad.status, 422);
    let still = api.get(&format!("/v1/destinations/{id}")).await;
    assert_eq!(
        still.data()["timeout_ms"],
        5000,
        "a refused patch changes nothing"
    );

    assert_eq!(
        api.delete(&format!("/v1/destinations/{id}")).await.status,
        200
    );
    assert_eq!(api.get(&format!("/v1/destinations/{id}")).await.status, 404);
    gw.stop().await;
}

#[tokio::test]
async fn literal_private_destination_urls_are_refused_by_default() {
    let gw = TestGateway::start_with(tempfile::tempdir().unwrap(), |c| {
        c.delivery.allow_private_networks = false;
    })
    .await;
    let (api, _) = gw.client().new_account("acme").await;
    for url in [
        "http://127.0.0.1:8080/hook",
        "http://10.1.2.3/hook",
        "http://169.254.169.254/latest/meta-data",
        "http://[::1]/hook",
        "http://localhost/hook",
        "http://192.168.0.10/hook",
    ] {
        let a = api
            .post("/v1/destinations", json!({"name": "x", "url": url}))
            .await;
        assert_eq!(a.status, 422, "{url} → {:?}", a.body);
        assert!(a.error_message().starts_with("url:"), "{:?}", a.body);
        assert!(
            a.error_message().contains("allow_private_networks"),
            "{:?}",
            a.body
        );
    }
    let a = api
        .post(
            "/v1/destinations",
            json!({"name": "x", "url": "https://hooks.example.com/in"}),
        )
        .await;
    assert_eq!(a.status, 201, "{:?}", a.body);
    gw.stop().await;
}

#[tokio::test]
async fn routes_crud_with_catch_all_patterns_and_cascading_deletes() {
    let gw = TestGateway::start().await;
    let (api, _) = gw.client().new_account("acme").await;
    let src = webhook_source(&api, "stripe").await;
    let dst = destination(&api, "svc").await;

    let r = api
        .post(
            "/v1/routes",
            json!({"source_id": src["id"], "destination_id": dst["id"], "event_type_pattern": "invoice.*, customer.created"}),
        )
        .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    assert!(r.data()["id"].as_str().unwrap().starts_with("rte_"));
    assert_eq!(
        r.data()["event_type_pattern"],
        "invoice.*, customer.created"
    );

    let catch_all = api
        .post("/v1/routes", json!({"destination_id": dst["id"]}))
        .await;
    assert_eq!(catch_all.status, 201);
    assert!(catch_all.data()["source_id"].is_null());
    assert!(catch_all.data()["event_type_pattern"].is_null());

    for (body, field) in [
        (
            json!({"destination_id": dst["id"], "event_type_pattern": ""}),
            "event_type_pattern",
        ),
        (
            json!({"destination_id": dst["id"], "event_type_pattern": "a,,b"}),
            "event_type_pattern",
        ),
        (
            json!({"destination_id": dst["id"], "event_type_pattern": "bad pattern!"}),
            "event_type_pattern",
        ),
        (json!({"destination_id": "dst_nope"}), "destination_id"),
        (
            json!({"destination_id": "dst_01JD3X0Q4W8N7T5Y2B9C6K1M0P"}),
            "destination_id",
        ),
        (
            json!({"source_id": "src_01JD3X0Q4W8N7T5Y2B9C6K1M0P", "destination_id": dst["id"]}),
            "source_id",
        ),
        (json!({}), "body"),
    ] {
        let a = api.post("/v1/routes", body.clone()).await;
        assert_eq!(a.status, 422, "{body} → {:?}", a.body);
        assert!(
            a.error_message().starts_with(field),
            "{body} → {:?}",
            a.body
        );
    }

    let id = r.data()["id"].as_str().unwrap();
    assert_eq!(api.get(&format!("/v1/routes/{id}")).await.status, 200);
    assert_eq!(
        api.get("/v1/routes").await.data().as_array().unwrap().len(),
        2
    );
    assert_eq!(api.delete(&format!("/v1/routes/{id}")).await.status, 200);
    assert_eq!(api.get(&format!("/v1/routes/{id}")).await.status, 404);

    // Deleting the destination removes the routes that lead to it.
    api.post(
        "/v1/routes",
        json!({"source_id": src["id"], "destination_id": dst["id"]}),
    )
    .await;
    assert_eq!(
        api.get("/v1/routes").await.data().as_array().unwrap().len(),
        2
    );
    let path = format!("/v1/destinations/{}", dst["id"].as_str().unwrap());
    assert_eq!(api.delete(&path).await.status, 200);
    assert_eq!(
        api.get("/v1/routes").await.data().as_array().unwrap().len(),
        0
    );

    // Deleting a source removes its routes but keeps catch-alls.
    let dst = destination(&api, "svc2").await;
    api.post(
        "/v1/routes",
        json!({"source_id": src["id"], "destination_id": dst["id"]}),
    )
    .await;
    api.post("/v1/routes", json!({"destination_id": dst["id"]}))
        .await;
    let path = format!("/v1/sources/{}", src["id"].as_str().unwrap());
    assert_eq!(api.delete(&path).await.status, 200);
    let left = api.get("/v1/routes").await;
    assert_eq!(left.data().as_array().unwrap().len(), 1);
    assert!(left.data()[0]["source_id"].is_null());
    gw.stop().await;
}

#[tokio::test]
async fn lists_paginate_with_an_opaque_cursor() {
    let gw = TestGateway::start().await;
    let (api, _) = gw.client().new_account("acme").await;
    let mut created = Vec::new();
    for i in 0..7 {
        let s = api
            .post(
                "/v1/sources",
                json!({"name": format!("s{i}"), "kind": "api"}),
            )
            .await;
        created.push(s.data()["id"].as_str().unwrap().to_owned());
    }
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let path = match &cursor {
            Some(c) => format!("/v1/sources?limit=3&cursor={c}"),
            None => "/v1/sources?limit=3".to_owned(),
        };
        let page = api.get(&path).await;
        assert_eq!(page.status, 200, "{:?}", page.body);
        assert_envelope(&page);
        pages += 1;
        for s in page.data().as_array().unwrap() {
            seen.push(s["id"].as_str().unwrap().to_owned());
        }
        match page.body["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => {
                assert!(page.body["next_cursor"].is_null());
                break;
            }
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(seen, created, "every source once, in creation order");

    assert_eq!(api.get("/v1/sources?limit=0").await.status, 422);
    assert_eq!(api.get("/v1/sources?limit=251").await.status, 422);
    assert_eq!(api.get("/v1/sources?cursor=!!").await.status, 400);
    assert_eq!(api.get("/v1/sources?limit=abc").await.status, 400);
    gw.stop().await;
}

#[tokio::test]
async fn malformed_json_is_400_wrong_type_is_415_and_huge_bodies_413() {
    let gw = TestGateway::start_with(tempfile::tempdir().unwrap(), |c| {
        c.server.max_body_bytes = 4096;
    })
    .await;
    let (api, _) = gw.client().new_account("acme").await;
    let key = api.key.clone().unwrap();
    let http = reqwest::Client::new();

    let a = crate::support::Api::answer(
        http.post(gw.url("/v1/sources"))
            .bearer_auth(&key)
            .header("content-type", "application/json")
            .body("{\"name\": \"x\", "),
    )
    .await;
    assert_eq!(a.status, 400);
    assert_eq!(a.error_code(), "malformed_json");

    let a = crate::support::Api::answer(
        http.post(gw.url("/v1/sources"))
            .bearer_auth(&key)
            .header("content-type", "text/plain")
            .body("{}"),
    )
    .await;
    assert_eq!(a.status, 415);

    let big = format!("{{\"name\": \"{}\", \"kind\": \"api\"}}", "x".repeat(8192));
    let a = crate::support::Api::answer(
        http.post(gw.url("/v1/sources"))
            .bearer_auth(&key)
            .header("content-type", "application/json")
            .body(big),
    )
    .await;
    assert_eq!(a.status, 413);
    assert_eq!(a.error_code(), "payload_too_large");
    assert_eq!(
        api.get("/v1/sources")
            .await
            .data()
            .as_array()
            .unwrap()
            .len(),
        0
    );

    let a = api.get("/v1/no-such-thing").await;
    assert_eq!(a.status, 404);
    assert_eq!(a.error_code(), "not_found");
    let a = api
        .send(reqwest::Method::PUT, "/v1/sources", Some(json!({})))
        .await;
    assert_eq!(a.status, 405);
    gw.stop().await;
}

#[tokio::test]
async fn health_readiness_and_openapi_document_every_endpoint() {
    let gw = TestGateway::start().await;
    let http = reqwest::Client::new();
    let h = http.get(gw.url("/healthz")).send().await.unwrap();
    assert_eq!(h.status(), 200);
    let r = http.get(gw.url("/readyz")).send().await.unwrap();
    assert_eq!(r.status(), 200);

    let doc: Value = http
        .get(gw.url("/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    let paths = doc["paths"].as_object().unwrap();
    for (path, methods) in [
        ("/v1/accounts", &["post"][..]),
        ("/v1/account", &["get"]),
        ("/v1/api-keys", &["get", "post"]),
        ("/v1/api-keys/{id}", &["get", "delete"]),
        ("/v1/sources", &["get", "post"]),
        ("/v1/sources/{id}", &["get", "patch", "delete"]),
        ("/v1/destinations", &["get", "post"]),
        ("/v1/destinations/{id}", &["get", "patch", "delete"]),
        ("/v1/routes", &["get", "post"]),
        ("/v1/routes/{id}", &["get", "delete"]),
    ] {
        for m in methods {
            assert!(
                paths[path].get(*m).is_some(),
                "{m} {path} missing from openapi.json"
            );
        }
    }
    let schemas = doc["components"]["schemas"].as_object().unwrap();
    for s in [
        "SourceCreate",
        "DestinationCreate",
        "RouteCreate",
        "RetryPolicy",
    ] {
        assert!(schemas.contains_key(s), "{s} missing");
    }
    gw.stop().await;
}
