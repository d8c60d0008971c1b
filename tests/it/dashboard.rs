//! The dashboard's files as the gateway serves them: types, the security headers, caching, and
//! the switch that turns them off. What the page does in a browser is checked by
//! `tests/dashboard/browser.mjs` (run by `.ci/run`) against a real gateway.

use reqwest::header::{CONTENT_SECURITY_POLICY, CONTENT_TYPE, ETAG, IF_NONE_MATCH, LOCATION};

use crate::support::TestGateway;

#[tokio::test]
async fn the_dashboard_is_served_with_a_strict_policy_and_revalidates_by_etag() {
    let gw = TestGateway::start().await;
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let page = http.get(gw.url("/dashboard")).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let h = page.headers().clone();
    assert_eq!(h[CONTENT_TYPE], "text/html; charset=utf-8");
    let csp = h[CONTENT_SECURITY_POLICY].to_str().unwrap();
    for directive in [
        "default-src 'none'",
        "script-src 'self'",
        "connect-src 'self'",
        "frame-ancestors 'none'",
    ] {
        assert!(csp.contains(directive), "{directive} missing from {csp}");
    }
    assert!(!csp.contains("unsafe"), "{csp}");
    assert_eq!(h["x-content-type-options"], "nosniff");
    assert_eq!(h["cache-control"], "no-cache");
    let html = page.text().await.unwrap();
    assert!(html.contains(r#"<script src="/dashboard/app.js" defer></script>"#));
    // Inline script or style would be refused by the policy above.
    assert!(!html.contains("<script>") && !html.contains("<style") && !html.contains(" style="));

    for (path, ty) in [
        ("/dashboard/app.js", "text/javascript; charset=utf-8"),
        ("/dashboard/app.css", "text/css; charset=utf-8"),
    ] {
        let a = http.get(gw.url(path)).send().await.unwrap();
        assert_eq!(a.status(), 200, "{path}");
        assert_eq!(a.headers()[CONTENT_TYPE], ty, "{path}");
        let etag = a.headers()[ETAG].clone();
        assert!(a.text().await.unwrap().len() > 1000, "{path}");
        let again = http
            .get(gw.url(path))
            .header(IF_NONE_MATCH, etag.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(again.status(), 304, "{path}");
        let weak = format!("\"0000\", W/{}", etag.to_str().unwrap());
        let again_weak = http
            .get(gw.url(path))
            .header(IF_NONE_MATCH, weak)
            .send()
            .await
            .unwrap();
        assert_eq!(again_weak.status(), 304, "{path}");
        assert_eq!(again.headers()[ETAG], etag);
        let stale = http
            .get(gw.url(path))
            .header(IF_NONE_MATCH, "\"0000\"")
            .send()
            .await
            .unwrap();
        assert_eq!(stale.status(), 200, "{path}");
    }

    let slash = http.get(gw.url("/dashboard/")).send().await.unwrap();
    assert_eq!(slash.status(), 308);
    assert_eq!(slash.headers()[LOCATION], "/dashboard");
    gw.stop().await;
}

#[tokio::test]
async fn the_dashboard_can_be_turned_off() {
    let gw = TestGateway::start_with(tempfile::tempdir().unwrap(), |c| {
        c.dashboard.enabled = false;
    })
    .await;
    for path in ["/dashboard", "/dashboard/app.js"] {
        let a = reqwest::get(gw.url(path)).await.unwrap();
        assert_eq!(a.status(), 404, "{path}");
    }
    // The API it would have used is unaffected.
    assert_eq!(
        reqwest::get(gw.url("/healthz")).await.unwrap().status(),
        200
    );
    gw.stop().await;
}
