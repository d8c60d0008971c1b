//! `POST /ingest/{path_token}`: the inbound door.
//!
//! Order of checks, each answered without storing anything: unknown token 404 (without
//! echoing anything from the request), body over the cap 413, failed verification 401 with its
//! reason code. Only a `Verified` request reaches the journal; the answer 200 comes after the
//! commit holding the event and its deliveries returned (journal invariants 2 and 3). Any
//! storage trouble answers 503 with `Retry-After`, so the provider retries instead of dropping.
//!
//! Outsiders control everything here, so failures are counted and logged at DEBUG, never WARN.

use std::future::Future;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::body::HttpBody;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures_util::FutureExt;
use prometheus::{IntCounterVec, Opts, Registry};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use super::api::{Envelope, ErrorBody};
use super::envelope::{ApiError, Data, RequestScope};
use super::AppState;
use crate::ids::EventId;
use crate::model::{Event, Origin, SourceKind};
use crate::store::events::Appended;
use crate::verify::Unverified;

/// Bodies up to this size are copied out of hyper's read buffer (see [`read_body`]).
const SMALL_BODY_BYTES: usize = 16 * 1024;

/// Request headers never stored with an event: credentials and hop-by-hop framing.
const DROPPED_HEADERS: &[&str] = &[
    "authorization",
    "proxy-authorization",
    "cookie",
    "connection",
    "keep-alive",
    "transfer-encoding",
    "te",
    "trailer",
    "upgrade",
    "host",
    "content-length",
];

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(ingest))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct IngestAnswer {
    /// The stored event (for a duplicate: the original event).
    pub event_id: EventId,
    /// True when this provider delivery id was already received within the dedupe window.
    pub duplicate: bool,
}

/// Ingest counters. `source_id` comes from sources operators created; unknown tokens are
/// counted under `unknown`, never under the token.
pub struct IngestMetrics {
    requests: IntCounterVec,
    verify_failures: IntCounterVec,
}

impl IngestMetrics {
    pub fn register(registry: &Registry) -> Result<Self, prometheus::Error> {
        let requests = IntCounterVec::new(
            Opts::new(
                "hookgate_ingest_requests_total",
                "Ingest requests by source and outcome.",
            ),
            &["source_id", "outcome"],
        )?;
        let verify_failures = IntCounterVec::new(
            Opts::new(
                "hookgate_ingest_verification_failures_total",
                "Ingest requests refused by signature verification, by provider and reason.",
            ),
            &["provider", "reason"],
        )?;
        registry.register(Box::new(requests.clone()))?;
        registry.register(Box::new(verify_failures.clone()))?;
        Ok(Self {
            requests,
            verify_failures,
        })
    }

    fn count(&self, source_id: &str, outcome: &'static str) {
        self.requests.with_label_values(&[source_id, outcome]).inc();
    }
}

/// Receive a provider's webhook. Answers 200 only once the event is durably stored.
#[utoipa::path(post, path = "/ingest/{path_token}", tag = "ingest",
    params(("path_token" = String, Path, description = "The source's path token")),
    request_body(content = String, description = "The provider's payload, stored byte for byte", content_type = "*/*"),
    responses(
        (status = 200, body = Envelope<IngestAnswer>),
        (status = 401, description = "Signature verification failed; `error.code` is the reason", body = ErrorBody),
        (status = 404, description = "Unknown path token", body = ErrorBody),
        (status = 413, description = "Body over `server.max_body_bytes`", body = ErrorBody),
        (status = 503, description = "Storage unavailable or shutting down; retry after `Retry-After`", body = ErrorBody)))]
async fn ingest(
    State(state): State<AppState>,
    Path(token): Path<String>,
    request: Request,
) -> Result<Data<IngestAnswer>, ApiError> {
    handle(state, token, request).await
}

/// The token of a request [`serve`] can take without the router: `POST /ingest/{token}` where
/// the token needs no percent-decoding. Anything else (other methods, odd paths, encoded
/// tokens) goes through the router, whose answers (405, 404, decoding) stay the reference.
pub fn fast_path_token<'a>(method: &Method, path: &'a str) -> Option<&'a str> {
    if method != Method::POST {
        return None;
    }
    let token = path.strip_prefix("/ingest/")?;
    let plain = !token.is_empty() && !token.bytes().any(|b| b == b'/' || b == b'%');
    plain.then_some(token)
}

/// Ingest outside axum's router and middleware stack, with the same envelope, request id,
/// span and timeout. The stack (boxed futures per layer, extension maps, extractors) cost
/// about as much CPU per request as the handler itself, on the path whose throughput is the
/// product; every other route keeps the router.
pub fn serve<B>(
    state: AppState,
    token: String,
    request: http::Request<B>,
) -> impl Future<Output = Response>
where
    B: HttpBody<Data = Bytes> + Send,
    B::Error: Into<tower::BoxError>,
{
    let timeout = state.config().server.request_timeout;
    // Combinators rather than an async block around `handle`, which would hold `request`
    // twice (see `RequestScope::run`).
    RequestScope::start(request.method(), request.uri().path()).run_with_timeout(
        timeout,
        handle(state, token, request).map(IntoResponse::into_response),
    )
}

#[tracing::instrument(skip_all, fields(source_id))]
async fn handle<B>(
    state: AppState,
    token: String,
    request: http::Request<B>,
) -> Result<Data<IngestAnswer>, ApiError>
where
    B: HttpBody<Data = Bytes> + Send,
    B::Error: Into<tower::BoxError>,
{
    let metrics = state.ingest_metrics();
    let source = match state.catalog().source_by_token(&token) {
        Some(s) if s.kind == SourceKind::Webhook => s,
        _ => {
            metrics.count("unknown", "not_found");
            return Err(ApiError::new(
                StatusCode::NOT_FOUND,
                "not_found",
                "no source has this ingest URL",
            ));
        }
    };
    // Operators of very large fleets turn per-source series off ([metrics] per_resource_labels).
    let source_label = if state.config().metrics.per_resource_labels {
        source.label.as_str()
    } else {
        "all"
    };
    tracing::Span::current().record("source_id", source_label);
    if let Some(limiter) = &source.limiter {
        if let Err(not_until) = limiter.check() {
            use governor::clock::{Clock, DefaultClock};
            metrics.count(source_label, "rate_limited");
            let wait = not_until.wait_time_from(DefaultClock::default().now());
            let mut e = ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limited",
                "this source's ingest rate limit is exceeded; retry after Retry-After seconds",
            );
            e.retry_after_s = Some(wait.as_secs_f64().ceil().max(1.0) as u64);
            return Err(e);
        }
    }
    if state.is_draining() {
        metrics.count(source_label, "unavailable");
        return Err(ApiError::unavailable("hookgate is shutting down", 5));
    }

    // `parts` is dropped here and `headers` before the journal wait: their values are slices
    // of hyper's read buffer, and hyper reads ahead while the answer is pending. Held, they
    // make it allocate a fresh buffer for every request.
    let (http::request::Parts { headers, .. }, body) = request.into_parts();
    let body = match read_body(&headers, body, state.config().server.max_body_bytes).await {
        Ok(b) => b,
        Err(e) => {
            let outcome = if e.status == StatusCode::PAYLOAD_TOO_LARGE {
                "too_large"
            } else {
                "bad_request"
            };
            metrics.count(source_label, outcome);
            return Err(e);
        }
    };

    let verifier = match &source.verifier {
        Ok(v) => v,
        Err(_) => {
            metrics.count(source_label, "unavailable");
            return Err(ApiError::unavailable(
                "this source's verification settings are unusable; the operator must fix them",
                60,
            ));
        }
    };
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    let verified = match verifier.verify(&Unverified {
        headers: &headers,
        body: &body,
        now_unix_s: now,
    }) {
        Ok(v) => v,
        Err(e) => {
            metrics.count(source_label, "unauthorized");
            metrics
                .verify_failures
                .with_label_values(&[verifier.provider().as_str(), e.reason()])
                .inc();
            tracing::debug!(reason = e.reason(), error = %e, "Ingest verification failed.");
            return Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                e.reason(),
                e.to_string(),
            ));
        }
    };

    let event_type = verified.event_type().map(str::to_owned);
    let destinations = state
        .catalog()
        .routes(source.account)
        .destinations(source.id, event_type.as_deref());
    let id = EventId::new();
    let event = Event {
        id,
        account_id: source.account,
        source_id: source.id,
        origin: Origin::Inbound,
        // The id's time, not a second clock read: see `EventId::new`.
        received_at_ms: id.created_ms(),
        event_type,
        dedupe_key: verified.delivery_id().map(str::to_owned),
        content_type: headers
            .get(axum::http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
        headers: kept_headers(&headers),
        body,
    };
    drop(headers);
    let appended = state
        .store()
        .append_event(event, destinations, state.config().ingest.dedupe_window)
        .await;
    match appended {
        Ok(Appended::Stored { event_id, .. }) => {
            metrics.count(source_label, "accepted");
            Ok(Data::ok(IngestAnswer {
                event_id,
                duplicate: false,
            }))
        }
        Ok(Appended::Duplicate { event_id }) => {
            metrics.count(source_label, "duplicate");
            Ok(Data::ok(IngestAnswer {
                event_id,
                duplicate: true,
            }))
        }
        Err(e) => {
            metrics.count(source_label, "unavailable");
            if e.is_unavailable() {
                Err(ApiError::from(e))
            } else {
                // Disk full, I/O error: the provider must retry, never believe it was stored.
                tracing::error!(error = %super::envelope::ErrorChain(&e), "Ingest write failed; answered 503.");
                Err(ApiError::unavailable("storage failed; retry later", 30))
            }
        }
    }
}

/// Reads the body up to `limit` bytes: a declared length over it is refused before reading,
/// a chunked body as soon as it passes it.
async fn read_body<B>(headers: &HeaderMap, body: B, limit: usize) -> Result<Bytes, ApiError>
where
    B: HttpBody<Data = Bytes>,
    B::Error: Into<tower::BoxError>,
{
    let too_large = || {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            "request body exceeds the configured limit",
        )
    };
    let declared = headers
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(too_large());
    }
    match http_body_util::BodyExt::collect(http_body_util::Limited::new(body, limit)).await {
        // A small body is copied out: as a slice it would keep hyper's whole read buffer
        // (8 KiB and up) alive until the journal thread drops the event, so every next request
        // on the connection needed a fresh buffer (allocation, page faults, a cross-thread free).
        Ok(collected) => {
            let body = collected.to_bytes();
            if body.len() <= SMALL_BODY_BYTES {
                Ok(Bytes::copy_from_slice(&body))
            } else {
                Ok(body)
            }
        }
        Err(e) if e.is::<http_body_util::LengthLimitError>() => Err(too_large()),
        Err(_) => Err(ApiError::bad_request(
            "bad_body",
            "could not read the request body",
        )),
    }
}

fn kept_headers(headers: &HeaderMap) -> Vec<(String, Vec<u8>)> {
    headers
        .iter()
        .filter(|(name, _)| !DROPPED_HEADERS.contains(&name.as_str()))
        .map(|(name, value)| (name.as_str().to_owned(), value.as_bytes().to_vec()))
        .collect()
}
