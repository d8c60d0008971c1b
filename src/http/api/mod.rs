//! The `/v1` control-plane API: one file per resource, each exporting `routes()`.
//!
//! Routes are declared with `utoipa-axum`, so the router and `/openapi.json` come from the same
//! declarations and cannot drift. Handlers extract, validate, call the store and map errors;
//! they hold no storage code.

pub mod accounts;
pub mod api_keys;
pub mod deliveries;
pub mod destinations;
pub mod events;
pub mod messages;
pub mod routes;
pub mod sources;

use std::time::{Duration, UNIX_EPOCH};

use base64::Engine as _;
use prometheus::{IntCounterVec, Opts, Registry};
use serde::{Deserialize, Serialize};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{IntoParams, Modify, OpenApi, ToSchema};
use utoipa_axum::router::OpenApiRouter;

use super::envelope::ApiError;
use super::AppState;

/// Default and largest page size of list endpoints.
pub const DEFAULT_PAGE_LIMIT: u32 = 50;
pub const MAX_PAGE_LIMIT: u32 = 250;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "hookgate",
        description = "Webhook reliability gateway: control-plane API. Every answer is a JSON envelope: `{\"data\", \"request_id\", \"duration_ms\"}` or `{\"error\": {\"code\", \"message\"}, \"request_id\", \"duration_ms\"}`."
    ),
    modifiers(&SecurityAddon),
    components(schemas(ErrorBody, ErrorDetail))
)]
struct ApiDoc;

struct SecurityAddon;

impl Modify for SecurityAddon {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "api_key",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("hk_…")
                    .build(),
            ),
        );
        components.add_security_scheme(
            "operator_key",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(accounts::routes())
        .merge(api_keys::routes())
        .merge(sources::routes())
        .merge(destinations::routes())
        .merge(routes::routes())
        .merge(events::routes())
        .merge(deliveries::routes())
        .merge(messages::routes())
        .merge(crate::http::ingest::routes())
}

/// Success envelope, for the OpenAPI document.
#[derive(Serialize, ToSchema)]
pub struct Envelope<T> {
    pub data: T,
    /// `req_…`, also sent as the `x-request-id` header.
    pub request_id: String,
    pub duration_ms: u64,
}

/// List envelope, for the OpenAPI document.
#[derive(Serialize, ToSchema)]
pub struct ListEnvelope<T> {
    pub data: Vec<T>,
    /// Pass as `cursor` to get the next page; null on the last page.
    pub next_cursor: Option<String>,
    pub request_id: String,
    pub duration_ms: u64,
}

/// Error envelope, for the OpenAPI document.
#[derive(Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
    pub request_id: String,
    pub duration_ms: u64,
}

#[derive(Serialize, ToSchema)]
pub struct ErrorDetail {
    /// Stable machine-readable code, e.g. `validation_failed`, `not_found`, `unauthorized`.
    pub code: String,
    pub message: String,
}

/// `?limit=&cursor=` of every list endpoint.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ListParams {
    /// Page size, 1 to 250 (default 50).
    pub limit: Option<u32>,
    /// Opaque cursor from a previous page's `next_cursor`.
    pub cursor: Option<String>,
}

/// A validated page request.
pub struct PageRequest {
    pub after: Option<u128>,
    pub limit: usize,
}

// === impl ListParams ===

impl ListParams {
    pub fn page(&self) -> Result<PageRequest, ApiError> {
        let limit = self.limit.unwrap_or(DEFAULT_PAGE_LIMIT);
        if limit == 0 || limit > MAX_PAGE_LIMIT {
            return Err(ApiError::invalid(
                "limit",
                format!("must be between 1 and {MAX_PAGE_LIMIT}"),
            ));
        }
        let after = self.cursor.as_deref().map(decode_cursor).transpose()?;
        Ok(PageRequest {
            after,
            limit: limit as usize,
        })
    }
}

/// Cursors are opaque to clients: base64url of the last id on the page.
pub fn encode_cursor(last: u128) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(last.to_be_bytes())
}

fn decode_cursor(cursor: &str) -> Result<u128, ApiError> {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(cursor)
        .ok()
        .and_then(|b| <[u8; 16]>::try_from(b.as_slice()).ok())
        .map(u128::from_be_bytes)
        .ok_or_else(|| ApiError::bad_request("bad_cursor", "cursor is not one this API issued"))
}

/// RFC 3339 UTC with milliseconds, the form every timestamp in the API takes.
pub fn rfc3339(ms: u64) -> String {
    humantime::format_rfc3339_millis(UNIX_EPOCH + Duration::from_millis(ms)).to_string()
}

/// Builds a list answer from a store page, mapping records to views.
pub fn list_answer<T, V>(
    page: crate::store::Page<T>,
    id_of: impl Fn(&T) -> u128,
    view: impl Fn(T) -> V,
) -> super::envelope::List<V> {
    let next_cursor = if page.has_more {
        page.items.last().map(|t| encode_cursor(id_of(t)))
    } else {
        None
    };
    super::envelope::List {
        items: page.items.into_iter().map(view).collect(),
        next_cursor,
    }
}

/// Runs a write and the in-memory updates that must follow its commit (catalog, scheduler) to
/// completion even if the client goes away: hyper drops a handler's future when its connection
/// closes, and a committed key revocation or route change must never be left out of memory.
/// Storage errors are returned as such, so they are reported with the request's id.
pub async fn to_completion<T: Send + 'static>(
    work: impl std::future::Future<Output = Result<T, crate::store::StoreError>> + Send + 'static,
) -> Result<T, ApiError> {
    match tokio::spawn(work).await {
        Ok(result) => result.map_err(ApiError::from),
        Err(e) => Err(ApiError::internal(&e)),
    }
}

/// For PATCH bodies: distinguishes an absent field (outer `None`: unchanged) from an explicit
/// null (`Some(None)`: cleared). Use with `#[serde(default, deserialize_with = "super::nullable")]`.
pub fn nullable<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

/// A resource name: 1 to 128 characters, no control characters.
pub fn validate_name(field: &str, name: &str) -> Result<(), ApiError> {
    if name.trim().is_empty() {
        return Err(ApiError::invalid(field, "must not be empty"));
    }
    if name.chars().count() > 128 {
        return Err(ApiError::invalid(field, "must be at most 128 characters"));
    }
    if name.chars().any(char::is_control) {
        return Err(ApiError::invalid(
            field,
            "must not contain control characters",
        ));
    }
    Ok(())
}

/// API counters.
pub struct ApiMetrics {
    auth_failures: IntCounterVec,
}

impl ApiMetrics {
    pub fn register(registry: &Registry) -> Result<Self, prometheus::Error> {
        let auth_failures = IntCounterVec::new(
            Opts::new(
                "hookgate_api_auth_failures_total",
                "API requests refused by authentication or scope.",
            ),
            &["reason"],
        )?;
        registry.register(Box::new(auth_failures.clone()))?;
        Ok(Self { auth_failures })
    }

    /// `reason` is one of a closed set: missing, invalid, scope, operator_disabled, rate_limited.
    pub fn auth_failure(&self, reason: &'static str) {
        self.auth_failures.with_label_values(&[reason]).inc();
        tracing::debug!(reason, "API authentication failed.");
    }
}
