//! Group commit seen from outside: concurrent API writes share commits, and every write is
//! acknowledged only once durable (journal.rs invariants 2 and 4).

use serde_json::json;

use crate::support::{metric, TestGateway};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writes_share_commits_and_each_is_readable_when_acknowledged() {
    let gw = TestGateway::start().await;
    let (api, _) = gw.client().new_account("acme").await;
    let metrics_url = gw.url("/metrics");
    let before = reqwest::get(&metrics_url)
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let commits_before = metric(&before, "hookgate_journal_commits_total");

    const WRITES: usize = 400;
    let tasks: Vec<_> = (0..WRITES)
        .map(|i| {
            let api = api.clone();
            tokio::spawn(async move {
                let created = api
                    .post(
                        "/v1/sources",
                        json!({"name": format!("s{i}"), "kind": "api"}),
                    )
                    .await;
                assert_eq!(created.status, 201, "{:?}", created.body);
                // Acknowledged means committed: an immediate read must find it.
                let id = created.data()["id"].as_str().unwrap().to_owned();
                let got = api.get(&format!("/v1/sources/{id}")).await;
                assert_eq!(got.status, 200);
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }

    let after = reqwest::get(&metrics_url)
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let commits = metric(&after, "hookgate_journal_commits_total") - commits_before;
    let batches = metric(&after, "hookgate_journal_batch_size_count");
    let written = metric(&after, "hookgate_journal_batch_size_sum");
    assert!(commits >= 1.0);
    assert!(
        commits < WRITES as f64,
        "{WRITES} concurrent writes took {commits} commits: no batching"
    );
    assert_eq!(batches, metric(&after, "hookgate_journal_commits_total"));
    assert_eq!(
        written,
        (WRITES + 1) as f64,
        "every write is in exactly one commit"
    );
    println!("{WRITES} writes in {commits} commits");
    gw.stop().await;
}
