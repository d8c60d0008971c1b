//! The web dashboard: an HTML page, a script and a style sheet, compiled into the binary and
//! served at `/dashboard`. The page holds no data and no credentials of its own: it asks for an
//! API key, keeps it in the tab's `sessionStorage` (gone when the tab closes), and shows what
//! the `/v1` API answers for that key, so scopes and account isolation are exactly the API's.
//!
//! Every answer carries a Content-Security-Policy that allows only these files and requests to
//! this origin: event bodies and headers come from the internet, and the script only ever puts
//! them into the page as text, but the policy is what makes a slip there harmless.

use std::sync::OnceLock;

use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::Router;
use sha2::{Digest, Sha256};

use super::AppState;

const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; \
                   img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

struct Asset {
    body: &'static str,
    content_type: &'static str,
    etag: OnceLock<HeaderValue>,
}

static INDEX: Asset = Asset::new(
    include_str!("dashboard/index.html"),
    "text/html; charset=utf-8",
);
static SCRIPT: Asset = Asset::new(
    include_str!("dashboard/app.js"),
    "text/javascript; charset=utf-8",
);
static STYLE: Asset = Asset::new(include_str!("dashboard/app.css"), "text/css; charset=utf-8");

impl Asset {
    const fn new(body: &'static str, content_type: &'static str) -> Self {
        Self {
            body,
            content_type,
            etag: OnceLock::new(),
        }
    }

    /// A strong validator from the content, so a browser revalidates cheaply and an upgraded
    /// binary's files replace the old ones at once (`no-cache` means "ask every time").
    fn etag(&self) -> &HeaderValue {
        self.etag.get_or_init(|| {
            let digest = Sha256::digest(self.body.as_bytes());
            let hex: String = digest[..12].iter().map(|b| format!("{b:02x}")).collect();
            HeaderValue::from_str(&format!("\"{hex}\"")).expect("invariant: hex is a valid header")
        })
    }

    fn serve(&self, request: &HeaderMap) -> Response {
        let etag = self.etag();
        let fresh = request
            .get(header::IF_NONE_MATCH)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| {
                // Weak comparison, as RFC 9110 asks for If-None-Match.
                let ours = etag.to_str().unwrap_or("");
                v.split(',')
                    .map(|t| t.trim())
                    .any(|t| t == "*" || t.trim_start_matches("W/") == ours)
            });
        let headers = [
            (
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static(CSP),
            ),
            (
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            ),
            (
                header::REFERRER_POLICY,
                HeaderValue::from_static("no-referrer"),
            ),
            (header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY")),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
            (header::ETAG, etag.clone()),
        ];
        if fresh {
            return (StatusCode::NOT_MODIFIED, headers).into_response();
        }
        (
            headers,
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static(self.content_type),
            )],
            self.body,
        )
            .into_response()
    }
}

/// `/dashboard` and its two files; absent when `[dashboard] enabled = false`.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/dashboard",
            get(|h: HeaderMap| async move { INDEX.serve(&h) }),
        )
        .route(
            "/dashboard/",
            get(|| async { Redirect::permanent("/dashboard") }),
        )
        .route(
            "/dashboard/app.js",
            get(|h: HeaderMap| async move { SCRIPT.serve(&h) }),
        )
        .route(
            "/dashboard/app.css",
            get(|h: HeaderMap| async move { STYLE.serve(&h) }),
        )
}
