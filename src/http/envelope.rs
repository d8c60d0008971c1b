//! The JSON envelope every API answer uses, and `ApiError`.
//!
//! Success: `{"data": …, "request_id": "req_…", "duration_ms": N}` (lists add `next_cursor`).
//! Failure: `{"error": {"code", "message"}, "request_id", "duration_ms"}`.
//!
//! The request id and start time live in a task-local set by the outermost middleware
//! ([`with_request_context`]), so any response built inside a request — a handler's, an
//! extractor's rejection, the fallback — carries them without threading them through every
//! signature. 4xx answers carry a specific, safe message; 5xx answers log the cause once at
//! ERROR with the request id and tell the client only that something failed.

use std::future::Future;
use std::time::Instant;

use axum::extract::rejection::{BytesRejection, PathRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures_util::FutureExt;
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::ids::RequestId;
use crate::store::StoreError;

#[derive(Clone, Copy)]
pub struct RequestContext {
    pub id: RequestId,
    pub started: Instant,
}

tokio::task_local! {
    static CONTEXT: RequestContext;
}

fn context() -> RequestContext {
    CONTEXT.try_with(|c| *c).unwrap_or_else(|_| RequestContext {
        id: RequestId::new(),
        started: Instant::now(),
    })
}

/// Outermost middleware: assigns the request id, runs the request inside its span, and echoes
/// the id in `x-request-id`.
pub async fn with_request_context(req: Request, next: Next) -> Response {
    RequestScope::start(req.method(), req.uri().path())
        .run(next.run(req))
        .await
}

/// What [`with_request_context`] does, usable outside axum's middleware stack (the ingest fast
/// path in `http::Gateway`), so both paths answer with the same envelope, header and logs.
pub struct RequestScope {
    ctx: RequestContext,
    span: tracing::Span,
}

impl RequestScope {
    pub fn start(method: &Method, path: &str) -> Self {
        let ctx = RequestContext {
            id: RequestId::new(),
            started: Instant::now(),
        };
        // INFO, so every line logged while serving the request carries its id.
        let span = tracing::info_span!(
            "request",
            request_id = %ctx.id,
            method = %method,
            path = %loggable_path(path),
        );
        Self { ctx, span }
    }

    // `run` and `run_with_timeout` are plain functions over combinators, not `async fn`s: an
    // async fn keeps its future argument in its own state *and* again in the future it awaits,
    // so each wrapper doubled the size of the request future (14.5 KB for ingest, memcpy'd into
    // its box and faulted in on every request).
    pub fn run(self, served: impl Future<Output = Response>) -> impl Future<Output = Response> {
        let Self { ctx, span } = self;
        let instrumented = tracing::Instrument::instrument(served, span.clone());
        CONTEXT.scope(ctx, instrumented).map(move |mut response| {
            // Access log at DEBUG: clients and providers control this traffic (STYLE §4).
            span.in_scope(|| {
                tracing::debug!(
                    status = response.status().as_u16(),
                    duration_ms = elapsed_ms(&ctx),
                    "Request served."
                )
            });
            if let Ok(v) = HeaderValue::from_str(ctx.id.text().as_str()) {
                response.headers_mut().insert("x-request-id", v);
            }
            response
        })
    }

    /// [`run`](Self::run) under `server.request_timeout`: past it, 503 `request_timeout`, as
    /// the router's timeout layer answers.
    pub fn run_with_timeout(
        self,
        timeout: std::time::Duration,
        served: impl Future<Output = Response>,
    ) -> impl Future<Output = Response> {
        self.run(
            tokio::time::timeout(timeout, served)
                .map(|outcome| outcome.unwrap_or_else(|_| request_timeout().into_response())),
        )
    }
}

/// The answer when a request outlives `server.request_timeout`.
pub fn request_timeout() -> ApiError {
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "request_timeout",
        "the request took longer than the server allows",
    )
}

/// The request path as it may appear in logs: an ingest path token is a credential of sorts
/// (whoever knows it can submit events to an unverified source), so it is masked.
fn loggable_path(path: &str) -> &str {
    if path.starts_with("/ingest/") {
        "/ingest/…"
    } else {
        path
    }
}

fn json_response<T: Serialize>(status: StatusCode, body: &T) -> Response {
    match serde_json::to_vec(body) {
        Ok(bytes) => (
            status,
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            )],
            bytes,
        )
            .into_response(),
        Err(e) => {
            tracing::error!(error = %e, "Response serialisation failed.");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

fn elapsed_ms(ctx: &RequestContext) -> u64 {
    ctx.started.elapsed().as_millis() as u64
}

/// A successful answer: `data` plus the envelope fields.
pub struct Data<T>(pub StatusCode, pub T);

impl<T> Data<T> {
    pub fn ok(value: T) -> Self {
        Self(StatusCode::OK, value)
    }

    pub fn created(value: T) -> Self {
        Self(StatusCode::CREATED, value)
    }
}

impl<T: Serialize> IntoResponse for Data<T> {
    fn into_response(self) -> Response {
        #[derive(Serialize)]
        struct Body<'a, T> {
            data: &'a T,
            request_id: RequestId,
            duration_ms: u64,
        }
        let ctx = context();
        json_response(
            self.0,
            &Body {
                data: &self.1,
                request_id: ctx.id,
                duration_ms: elapsed_ms(&ctx),
            },
        )
    }
}

/// A page of a listing: `data` is the array, `next_cursor` sits beside it.
pub struct List<T> {
    pub items: Vec<T>,
    pub next_cursor: Option<String>,
}

impl<T: Serialize> IntoResponse for List<T> {
    fn into_response(self) -> Response {
        #[derive(Serialize)]
        struct Body<'a, T> {
            data: &'a [T],
            next_cursor: Option<&'a str>,
            request_id: RequestId,
            duration_ms: u64,
        }
        let ctx = context();
        json_response(
            StatusCode::OK,
            &Body {
                data: &self.items,
                next_cursor: self.next_cursor.as_deref(),
                request_id: ctx.id,
                duration_ms: elapsed_ms(&ctx),
            },
        )
    }
}

/// An API failure: a status, a stable machine code, and a safe message.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    /// Seconds, for 429 and 503.
    pub retry_after_s: Option<u64>,
    /// Extra members of the `error` object (e.g. the original `event_id` of a duplicate).
    pub details: Option<serde_json::Map<String, serde_json::Value>>,
}

// === impl ApiError ===

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            retry_after_s: None,
            details: None,
        }
    }

    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", message)
    }

    pub fn not_found(what: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("{what} not found"),
        )
    }

    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, "conflict", message)
    }

    /// 422 naming the offending field.
    pub fn invalid(field: &str, message: impl std::fmt::Display) -> Self {
        Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
            format!("{field}: {message}"),
        )
    }

    pub fn unavailable(message: impl Into<String>, retry_after_s: u64) -> Self {
        let mut e = Self::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", message);
        e.retry_after_s = Some(retry_after_s);
        e
    }

    /// A failure that is ours, not the client's: logged once here, generic to the client.
    pub fn internal(error: &(dyn std::error::Error + 'static)) -> Self {
        tracing::error!(request_id = %context().id, error = %ErrorChain(error), "Request failed.");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "internal error; the request id identifies it in the server log",
        )
    }

    pub fn with_detail(mut self, key: &str, value: impl Into<serde_json::Value>) -> Self {
        self.details
            .get_or_insert_with(Default::default)
            .insert(key.to_owned(), value.into());
        self
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        #[derive(Serialize)]
        struct Inner<'a> {
            code: &'a str,
            message: &'a str,
            #[serde(flatten, skip_serializing_if = "Option::is_none")]
            details: Option<&'a serde_json::Map<String, serde_json::Value>>,
        }
        #[derive(Serialize)]
        struct Body<'a> {
            error: Inner<'a>,
            request_id: RequestId,
            duration_ms: u64,
        }
        let ctx = context();
        if self.status.is_client_error() {
            tracing::debug!(status = self.status.as_u16(), code = self.code, message = %self.message, "Request refused.");
        }
        let mut response = json_response(
            self.status,
            &Body {
                error: Inner {
                    code: self.code,
                    message: &self.message,
                    details: self.details.as_ref(),
                },
                request_id: ctx.id,
                duration_ms: elapsed_ms(&ctx),
            },
        );
        if let Some(s) = self.retry_after_s {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(s));
        }
        response
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound(what) => ApiError::not_found(what),
            StoreError::Conflict(message) => ApiError::conflict(message),
            StoreError::Invalid { field, message } => ApiError::invalid(&field, message),
            StoreError::Overloaded => ApiError::unavailable("storage is busy; retry shortly", 1),
            StoreError::ShuttingDown => ApiError::unavailable("hookgate is shutting down", 5),
            other => ApiError::internal(&other),
        }
    }
}

/// Displays an error with its whole `source()` chain, for the one log line a 5xx gets.
pub struct ErrorChain<'a>(pub &'a (dyn std::error::Error + 'static));

impl std::fmt::Display for ErrorChain<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)?;
        let mut source = self.0.source();
        while let Some(s) = source {
            write!(f, ": {s}")?;
            source = s.source();
        }
        Ok(())
    }
}

/// Answers unknown paths in the envelope rather than with an empty body.
pub async fn fallback() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such endpoint")
}

pub async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "method not allowed on this endpoint",
    )
}

/// JSON body extractor: 400 for malformed JSON, 413 over the body limit, 422 naming the field
/// for JSON of the wrong shape (unknown fields included, via `deny_unknown_fields`).
pub struct ApiJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let is_json = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|ct| {
                let ct = ct.split(';').next().unwrap_or("").trim();
                ct.eq_ignore_ascii_case("application/json") || ct.ends_with("+json")
            });
        if !is_json {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "expected Content-Type: application/json",
            ));
        }
        let bytes = Bytes::from_request(req, state).await.map_err(body_error)?;
        parse_json(&bytes).map(ApiJson)
    }
}

/// Parses a JSON request body with the status rules above.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    match serde_path_to_error::deserialize(de) {
        Ok(v) => Ok(v),
        Err(e) => {
            let path = e.path().to_string();
            let inner = e.into_inner();
            match inner.classify() {
                serde_json::error::Category::Data => {
                    let field = if path == "." { "body" } else { path.as_str() };
                    Err(ApiError::invalid(field, strip_position(&inner.to_string())))
                }
                _ => Err(ApiError::bad_request(
                    "malformed_json",
                    format!("request body is not valid JSON: {inner}"),
                )),
            }
        }
    }
}

/// serde_json appends " at line L column C" to data errors; the field path says more.
fn strip_position(message: &str) -> &str {
    message.split(" at line ").next().unwrap_or(message)
}

pub fn body_error(e: BytesRejection) -> ApiError {
    if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            "request body exceeds the configured limit",
        )
    } else {
        ApiError::bad_request("bad_body", "could not read the request body")
    }
}

/// Query-string extractor answering 400 with the reason.
pub struct ApiQuery<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &S,
    ) -> Result<Self, ApiError> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|q| ApiQuery(q.0))
            .map_err(|e: QueryRejection| ApiError::bad_request("bad_query", e.body_text()))
    }
}

/// Path extractor: a path segment that does not parse as the expected id is simply not found.
pub struct ApiPath<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for ApiPath<T> {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &S,
    ) -> Result<Self, ApiError> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|p| ApiPath(p.0))
            .map_err(|_: PathRejection| ApiError::not_found("resource"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The wrappers add a small constant to the request future; as `async fn`s they doubled it
    /// (14.5 KB per ingest request, copied into its box).
    #[tokio::test]
    async fn scope_wrappers_do_not_copy_the_wrapped_future() {
        let payload = [7u8; 4096];
        let served = async move {
            std::hint::black_box(&payload);
            Response::new(axum::body::Body::empty())
        };
        let inner = std::mem::size_of_val(&served);
        let scope = RequestScope::start(&Method::POST, "/ingest/x");
        let wrapped = scope.run_with_timeout(std::time::Duration::from_secs(1), served);
        let outer = std::mem::size_of_val(&wrapped);
        assert!(
            outer < inner + 1024,
            "wrapping a {inner}-byte future made {outer} bytes"
        );
    }
}
