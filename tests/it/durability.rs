//! Acknowledged writes survive restarts: graceful in-process, SIGTERM and SIGKILL of the
//! real binary.

use serde_json::{json, Value};

use crate::support::{Api, GatewayProcess, TestGateway};

/// Creates a spread of resources; returns what the API answered for each, by kind.
async fn populate(api: &Api, tag: &str) -> Vec<(String, Value)> {
    let mut made = Vec::new();
    let src = api
        .post(
            "/v1/sources",
            json!({"name": format!("{tag}-src"), "kind": "webhook",
                   "verification": {"provider": "stripe", "secret": "whsec_test"}}),
        )
        .await;
    assert_eq!(src.status, 201, "{:?}", src.body);
    let dst = api
        .post(
            "/v1/destinations",
            json!({"name": format!("{tag}-dst"), "url": "http://127.0.0.1:9/x",
                   "retry": {"schedule": ["1s"], "jitter": false}}),
        )
        .await;
    assert_eq!(dst.status, 201, "{:?}", dst.body);
    let rte = api
        .post(
            "/v1/routes",
            json!({"source_id": src.data()["id"], "destination_id": dst.data()["id"],
                   "event_type_pattern": "invoice.*"}),
        )
        .await;
    assert_eq!(rte.status, 201, "{:?}", rte.body);
    let key = api
        .post(
            "/v1/api-keys",
            json!({"name": format!("{tag}-key"), "scope": "read-only"}),
        )
        .await;
    assert_eq!(key.status, 201, "{:?}", key.body);
    made.push(("sources".to_owned(), src.data().clone()));
    made.push(("destinations".to_owned(), dst.data().clone()));
    made.push(("routes".to_owned(), rte.data().clone()));
    let mut key_view = key.data().clone();
    key_view.as_object_mut().unwrap().remove("key");
    made.push(("api-keys".to_owned(), key_view));
    made
}

async fn assert_all_present(api: &Api, made: &[(String, Value)]) {
    for (kind, view) in made {
        let id = view["id"].as_str().unwrap();
        let got = api.get(&format!("/v1/{kind}/{id}")).await;
        assert_eq!(got.status, 200, "{kind}/{id} lost: {:?}", got.body);
        let mut got = got.data().clone();
        let mut want = view.clone();
        // Views render the same record; warnings aside, they must be identical.
        got.as_object_mut().unwrap().remove("warnings");
        want.as_object_mut().unwrap().remove("warnings");
        assert_eq!(got, want, "{kind}/{id} changed across the restart");
    }
}

#[tokio::test]
async fn resources_survive_a_graceful_restart() {
    let gw = TestGateway::start().await;
    let (api, _) = gw.client().new_account("acme").await;
    let key = api.key.clone().unwrap();
    let made = populate(&api, "a").await;
    let dir = gw.stop().await;

    let gw = TestGateway::start_with(dir, |_| {}).await;
    let api = gw.client().with_key(&key);
    assert_eq!(
        api.get("/v1/account").await.status,
        200,
        "the API key survives"
    );
    assert_all_present(&api, &made).await;
    gw.stop().await;
}

#[tokio::test]
async fn resources_acknowledged_before_sigkill_survive_it() {
    let dir = tempfile::tempdir().unwrap();
    let mut key = String::new();
    let mut made = Vec::new();
    for round in 0..3 {
        let gw = GatewayProcess::start(dir.path());
        let api = if round == 0 {
            let (api, _) = gw.client().new_account("acme").await;
            key = api.key.clone().unwrap();
            api
        } else {
            gw.client().with_key(&key)
        };
        assert_all_present(&api, &made).await;
        made.extend(populate(&api, &format!("r{round}")).await);
        // No pause: the kill lands right after the last acknowledgement.
        gw.kill();
    }
    let gw = GatewayProcess::start(dir.path());
    let api = gw.client().with_key(&key);
    assert_all_present(&api, &made).await;
    assert_eq!(
        api.get("/v1/sources")
            .await
            .data()
            .as_array()
            .unwrap()
            .len(),
        3
    );
    gw.kill();
}

#[tokio::test]
async fn sigterm_drains_and_exits_zero_keeping_everything() {
    let dir = tempfile::tempdir().unwrap();
    let gw = GatewayProcess::start(dir.path());
    let (api, _) = gw.client().new_account("acme").await;
    let key = api.key.clone().unwrap();
    let made = populate(&api, "t").await;

    // Writes racing the signal either succeed (and must survive) or are refused.
    let racing: Vec<_> = (0..20)
        .map(|i| {
            let api = api.clone();
            tokio::spawn(async move {
                let resp = api
                    .http
                    .post(format!("{}/v1/sources", api.base))
                    .bearer_auth(api.key.as_ref().unwrap())
                    .json(&json!({"name": format!("race-{i}"), "kind": "api"}))
                    .send()
                    .await;
                match resp {
                    Ok(r) if r.status() == 201 => {
                        let v: Value = r.json().await.unwrap();
                        Some(v["data"]["id"].as_str().unwrap().to_owned())
                    }
                    _ => None,
                }
            })
        })
        .collect();
    let status = tokio::task::spawn_blocking(move || gw.terminate())
        .await
        .unwrap();
    assert!(status.success(), "exit status {status:?}");
    let mut acked = Vec::new();
    for t in racing {
        if let Some(id) = t.await.unwrap() {
            acked.push(id);
        }
    }

    let gw = GatewayProcess::start(dir.path());
    let api = gw.client().with_key(&key);
    assert_all_present(&api, &made).await;
    for id in &acked {
        assert_eq!(
            api.get(&format!("/v1/sources/{id}")).await.status,
            200,
            "{id} lost"
        );
    }
    gw.kill();
}

/// After the clock steps back, ids run ahead of it (they only increase). A restart must not
/// forget that: a new event's id would then sort before events stored by the last run, in the
/// events list and in a FIFO destination's order. An event stored with an id an hour ahead
/// stands in for the last run's ids.
#[tokio::test]
async fn ids_made_after_a_restart_follow_the_newest_stored_event_even_if_it_is_ahead_of_the_clock()
{
    use hookgate::ids::{raw_id_at, AccountId, EventId, SourceId};

    let dir = tempfile::tempdir().unwrap();
    let gw = GatewayProcess::start(dir.path());
    let (api, account) = gw.client().new_account("clock").await;
    let src = api
        .post("/v1/sources", json!({"name": "s", "kind": "webhook"}))
        .await;
    let ingest = |api: Api, path: String| async move {
        let a = api.post(&path, json!({"type": "t"})).await;
        assert_eq!(a.status, 200, "{:?}", a.body);
        a.data()["event_id"].as_str().unwrap().to_owned()
    };
    let path = src.data()["ingest_path"].as_str().unwrap().to_owned();
    let before = ingest(api.clone(), path.clone()).await;
    assert!(gw.terminate().success());

    let ahead = EventId(raw_id_at(hookgate::ids::now_ms() + 3_600_000));
    {
        let mut raw = hookgate::config::RawConfig::default();
        raw.storage.data_dir = dir.path().join("data");
        let config = hookgate::config::Config::from_raw(raw, &|_| None).unwrap();
        let (store, thread) =
            hookgate::store::Store::open(&config.storage, &prometheus::Registry::new()).unwrap();
        let event = hookgate::model::Event {
            id: ahead,
            account_id: AccountId::parse(account["id"].as_str().unwrap()).unwrap(),
            source_id: SourceId::parse(src.data()["id"].as_str().unwrap()).unwrap(),
            origin: hookgate::model::Origin::Inbound,
            received_at_ms: ahead.created_ms(),
            event_type: Some("t".into()),
            dedupe_key: None,
            content_type: None,
            headers: vec![],
            body: b"{}".to_vec().into(),
        };
        store
            .append_event(event, vec![], std::time::Duration::ZERO)
            .await
            .unwrap();
        drop(store);
        thread.join().await;
    }

    let gw = GatewayProcess::start(dir.path());
    let api = gw.client().with_key(api.key.as_deref().unwrap());
    let after = ingest(api.clone(), path).await;
    let listed: Vec<String> = api
        .get("/v1/events")
        .await
        .data()
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(listed, [after.clone(), ahead.to_string(), before]);
    assert!(gw.terminate().success());
}
