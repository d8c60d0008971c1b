//! Per-source ingest rate limits: a burst over the limit gets 429 with `Retry-After`; the
//! accepted requests are stored, the refused ones are not.

use serde_json::json;

use crate::support::TestGateway;

#[tokio::test]
async fn a_burst_over_the_source_limit_is_429_and_only_accepted_events_are_stored() {
    let gw = TestGateway::start().await;
    let (api, _) = gw.client().new_account("r").await;
    let src = api
        .post(
            "/v1/sources",
            json!({"name": "s", "kind": "webhook", "rate_limit_per_s": 1, "rate_limit_burst": 5}),
        )
        .await;
    assert_eq!(src.status, 201, "{:?}", src.body);
    assert_eq!(src.data()["rate_limit_per_s"], 1);
    assert_eq!(src.data()["rate_limit_burst"], 5);
    let url = gw.url(src.data()["ingest_path"].as_str().unwrap());
    let http = reqwest::Client::new();
    let (mut accepted, mut limited) = (0, 0);
    for n in 0..12 {
        let r = http
            .post(&url)
            .body(format!("{{\"n\":{n}}}"))
            .send()
            .await
            .unwrap();
        match r.status().as_u16() {
            200 => accepted += 1,
            429 => {
                limited += 1;
                let after: u64 = r.headers()["retry-after"]
                    .to_str()
                    .unwrap()
                    .parse()
                    .unwrap();
                assert!((1..=2).contains(&after), "{after}");
                let body: serde_json::Value = r.json().await.unwrap();
                assert_eq!(body["error"]["code"], "rate_limited");
            }
            other => panic!("unexpected {other}"),
        }
    }
    // The bucket starts full: the burst passes at once, the rest is refused (a refill of one
    // more token is possible only if the loop took over a second).
    assert!((5..=6).contains(&accepted), "{accepted} accepted");
    assert_eq!(accepted + limited, 12);
    let events = api.get("/v1/events?limit=50").await;
    assert_eq!(
        events.data().as_array().unwrap().len(),
        accepted,
        "refused requests stored nothing"
    );
    let metrics = gw.metrics_text().await;
    let id = src.data()["id"].as_str().unwrap();
    assert!(
        metrics.contains(&format!("hookgate_ingest_requests_total{{outcome=\"rate_limited\",source_id=\"{id}\"}} {limited}")),
        "{metrics}"
    );

    // Limits are validated and can be lifted.
    let path = format!("/v1/sources/{id}");
    assert_eq!(
        api.patch(&path, json!({"rate_limit_per_s": 0}))
            .await
            .status,
        422
    );
    let lifted = api
        .patch(
            &path,
            json!({"rate_limit_per_s": null, "rate_limit_burst": null}),
        )
        .await;
    assert_eq!(lifted.status, 200, "{:?}", lifted.body);
    for _ in 0..10 {
        assert_eq!(
            http.post(&url).body("{}").send().await.unwrap().status(),
            200
        );
    }
    assert_eq!(
        api.post(
            "/v1/sources",
            json!({"name": "b", "kind": "webhook", "rate_limit_burst": 5})
        )
        .await
        .status,
        422
    );
    gw.stop().await;
}

#[tokio::test]
async fn each_api_key_has_its_own_request_rate_limit() {
    let gw = TestGateway::start_with(tempfile::tempdir().unwrap(), |c| {
        c.api.rate_limit_per_s = 1;
        c.api.rate_limit_burst = 3;
    })
    .await;
    let (api, _) = gw.client().new_account("r").await;
    // The account's first key spent nothing yet; a second key has its own bucket.
    let (other, _) = gw.client().new_account("s").await;
    let mut codes = Vec::new();
    for _ in 0..5 {
        let a = api.get("/v1/sources").await;
        if a.status == 429 {
            let after: u64 = a.headers["retry-after"].to_str().unwrap().parse().unwrap();
            assert!(after >= 1);
            assert_eq!(a.error_code(), "rate_limited");
        }
        codes.push(a.status);
    }
    assert_eq!(&codes[..3], &[200, 200, 200], "{codes:?}");
    assert!(codes[3..].contains(&429), "{codes:?}");
    assert_eq!(
        other.get("/v1/sources").await.status,
        200,
        "another key is not limited by this one"
    );
    gw.stop().await;
}
