//! `/v1/destinations`: where events go, and how.
//!
//! Every destination gets a `whsec_` signing secret at creation. URLs whose host is a literal
//! IP in a blocked range (or `localhost`) are refused here with 422 unless the operator allows
//! private networks; the delivery client checks every resolved address again at connect time,
//! which is the check that actually holds (DNS can change after creation).

use std::collections::BTreeMap;

use axum::extract::State;
use axum::http::{HeaderName, HeaderValue};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use super::api_keys::DeletedView;
use super::events::{attempt_view, AttemptView};
use super::{list_answer, rfc3339, validate_name, Envelope, ErrorBody, ListEnvelope, ListParams};
use crate::config::DeliveryConfig;
use crate::delivery::retry::RetryPolicy;
use crate::delivery::signer::SigningSecret;
use crate::delivery::ssrf::{literal_host_ip, SsrfPolicy};
use crate::http::auth::Auth;
use crate::http::envelope::{ApiError, ApiJson, ApiPath, ApiQuery, Data, List};
use crate::http::AppState;
use crate::ids::{now_ms, DestinationId, EventId, SourceId};
use crate::model::{Destination, DestinationAuth, Ordering, SigningKey};
use crate::model::{Event, Origin};
use crate::store::deliveries::DueEntry;
use crate::store::StoreError;

pub const DEFAULT_TIMEOUT_MS: u32 = 15_000;
pub const MAX_TIMEOUT_MS: u32 = 60_000;
pub const DEFAULT_MAX_IN_FLIGHT: u32 = 10;
const MAX_URL_BYTES: usize = 2048;
const MAX_CUSTOM_HEADERS: usize = 32;
/// Headers hookgate sets itself or that HTTP framing owns; a destination may not override them.
const RESERVED_HEADERS: &[&str] = &[
    "host",
    "content-length",
    "content-type",
    "transfer-encoding",
    "connection",
    "upgrade",
    "te",
    "trailer",
    "webhook-id",
    "webhook-timestamp",
    "webhook-signature",
];
const RESERVED_HEADER_PREFIX: &str = "x-hookgate-";

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_destination, list_destinations))
        .routes(routes!(
            get_destination,
            update_destination,
            delete_destination
        ))
        .routes(routes!(rotate_secret))
        .routes(routes!(test_destination))
}

/// Signing keys kept at most: the current one and rotated-out ones in their grace period.
pub const MAX_SIGNING_KEYS: usize = 4;
/// Default grace period of a rotated-out signing secret.
pub const DEFAULT_ROTATION_GRACE_S: u64 = 24 * 3600;
const MAX_ROTATION_GRACE_S: u64 = 7 * 24 * 3600;

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RotateSecret {
    /// How long the previous secret keeps signing beside the new one (default 86400, at most
    /// 604800; 0 stops it at once).
    pub grace_period_s: Option<u64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SecretRotated {
    /// The new `whsec_…` secret; it signs from now on.
    pub signing_secret: String,
    /// Until when the previous secret also signs (its signature sits beside the new one in
    /// `webhook-signature`); null when it stopped at once.
    pub previous_secret_expires_at: Option<String>,
}

/// Rotate the signing secret. During the grace period every delivery carries signatures of
/// both the new and the previous secret.
#[utoipa::path(post, path = "/v1/destinations/{id}/rotate-secret", tag = "destinations",
    request_body = RotateSecret,
    params(("id" = String, Path, description = "dst_…")), security(("api_key" = [])),
    responses((status = 200, body = Envelope<SecretRotated>), (status = 404, body = ErrorBody),
        (status = 422, body = ErrorBody)))]
async fn rotate_secret(
    State(state): State<AppState>,
    auth: Auth,
    ApiPath(id): ApiPath<DestinationId>,
    body: axum::body::Bytes,
) -> Result<Data<SecretRotated>, ApiError> {
    auth.require_write()?;
    let input: RotateSecret = if body.iter().all(u8::is_ascii_whitespace) {
        RotateSecret::default()
    } else {
        crate::http::envelope::parse_json(&body)?
    };
    let grace_s = input.grace_period_s.unwrap_or(DEFAULT_ROTATION_GRACE_S);
    if grace_s > MAX_ROTATION_GRACE_S {
        return Err(ApiError::invalid(
            "grace_period_s",
            format!("must be at most {MAX_ROTATION_GRACE_S}"),
        ));
    }
    let new = SigningSecret::generate().expose().to_owned();
    let now = now_ms();
    let expires = (grace_s > 0).then(|| now + grace_s * 1000);
    let secret = new.clone();
    let account = auth.account;
    let st = state.clone();
    let rotation = move |d: &mut crate::model::Destination| {
        let mut keys: Vec<SigningKey> = d
            .signing_keys
            .drain(..)
            .filter(|k| k.expires_at_ms.is_none_or(|t| t > now))
            .map(|mut k| {
                // The current key starts its grace period; older ones keep theirs.
                if k.expires_at_ms.is_none() {
                    k.expires_at_ms = expires;
                }
                k
            })
            .filter(|k| k.expires_at_ms.is_some())
            .collect();
        keys.insert(
            0,
            SigningKey {
                secret,
                expires_at_ms: None,
            },
        );
        keys.truncate(MAX_SIGNING_KEYS);
        d.signing_keys = keys;
        d.updated_at_ms = now;
        Ok(())
    };
    super::to_completion(async move {
        let d = st.store().update_destination(account, id, rotation).await?;
        st.scheduler().destination_changed(account, d.id);
        Ok(())
    })
    .await?;
    Ok(Data::ok(SecretRotated {
        signing_secret: new,
        previous_secret_expires_at: expires.map(rfc3339),
    }))
}

/// Send a `hookgate.test` event to the destination now and answer with the attempt. It is
/// stored and logged like any delivery, and never retried.
#[utoipa::path(post, path = "/v1/destinations/{id}/test", tag = "destinations",
    params(("id" = String, Path, description = "dst_…")), security(("api_key" = [])),
    responses((status = 200, body = Envelope<AttemptView>), (status = 404, body = ErrorBody)))]
async fn test_destination(
    State(state): State<AppState>,
    auth: Auth,
    ApiPath(id): ApiPath<DestinationId>,
) -> Result<Data<AttemptView>, ApiError> {
    auth.require_write()?;
    let destination = state
        .store()
        .destination(auth.account, id)?
        .ok_or_else(|| ApiError::not_found("destination"))?;
    let event_id = EventId::new();
    // The id's time, not a second clock read: see `EventId::new`.
    let now = event_id.created_ms();
    let payload = serde_json::value::to_raw_value(&serde_json::json!({
        "message": "A test event from hookgate.",
        "destination_id": id,
    }))
    .map_err(|e| ApiError::internal(&e))?;
    let event = Event {
        id: event_id,
        account_id: auth.account,
        // Test sends come from no source; the nil id marks them.
        source_id: SourceId(0),
        origin: Origin::Outbound,
        received_at_ms: now,
        event_type: Some("hookgate.test".into()),
        dedupe_key: None,
        content_type: Some("application/json".into()),
        headers: Vec::new(),
        body: super::messages::envelope_body(event_id, "hookgate.test", now, &payload),
    };
    let delivery = state.store().append_unqueued_event(event, id).await?;
    let entry = DueEntry {
        due_ms: now_ms(),
        delivery: delivery.id,
        account: auth.account,
        event: event_id,
        destination: id,
    };
    let attempt = state
        .scheduler()
        .attempt_once(state.store(), entry, &destination)
        .await?
        .ok_or_else(|| ApiError::not_found("delivery"))?;
    Ok(Data::ok(attempt_view(attempt)))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DestinationCreate {
    pub name: String,
    /// `http` or `https` URL.
    pub url: String,
    pub auth: Option<DestinationAuth>,
    /// Extra headers sent with every delivery.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Per-attempt timeout, 1 to 60000 ms (default 15000).
    pub timeout_ms: Option<u32>,
    /// Retry policy; default: immediately, then 5s, 5m, 30m, 2h, 5h, 10h, 10h.
    pub retry: Option<RetryPolicy>,
    /// Deliveries per second at most; absent means unlimited.
    pub rate_limit_per_s: Option<u32>,
    /// Concurrent deliveries at most (default 10).
    pub max_in_flight: Option<u32>,
    #[serde(default)]
    pub ordering: Ordering,
    /// Default true.
    pub enabled: Option<bool>,
}

/// Every field optional; `auth` and `rate_limit_per_s` accept null to clear them.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DestinationPatch {
    pub name: Option<String>,
    pub url: Option<String>,
    #[serde(default, deserialize_with = "super::nullable")]
    #[schema(value_type = Option<DestinationAuth>)]
    pub auth: Option<Option<DestinationAuth>>,
    pub headers: Option<BTreeMap<String, String>>,
    pub timeout_ms: Option<u32>,
    pub retry: Option<RetryPolicy>,
    #[serde(default, deserialize_with = "super::nullable")]
    #[schema(value_type = Option<u32>)]
    pub rate_limit_per_s: Option<Option<u32>>,
    pub max_in_flight: Option<u32>,
    pub ordering: Option<Ordering>,
    /// Setting true re-enables a destination that was disabled, automatically or not.
    pub enabled: Option<bool>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct BlockedBy {
    pub delivery_id: crate::ids::DeliveryId,
    pub event_id: EventId,
    pub next_attempt_at: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DestinationView {
    pub id: DestinationId,
    pub name: String,
    pub url: String,
    /// Secrets masked.
    pub auth: Option<DestinationAuth>,
    pub headers: BTreeMap<String, String>,
    pub timeout_ms: u32,
    pub retry: RetryPolicy,
    pub rate_limit_per_s: Option<u32>,
    pub max_in_flight: u32,
    pub ordering: Ordering,
    pub enabled: bool,
    /// Why hookgate disabled the destination, when it did.
    pub disabled_reason: Option<String>,
    /// `whsec_…`: the key receivers use to verify the `webhook-signature` header.
    pub signing_secret: String,
    /// FIFO destinations only: the failing delivery at the head that holds the others back.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub blocked_by: Option<BlockedBy>,
    pub created_at: String,
    pub updated_at: String,
}

pub fn view(d: Destination) -> DestinationView {
    DestinationView {
        id: d.id,
        name: d.name,
        url: d.url,
        auth: d.auth.as_ref().map(DestinationAuth::redacted),
        headers: d.headers,
        timeout_ms: d.timeout_ms,
        retry: d.retry,
        rate_limit_per_s: d.rate_limit_per_s,
        max_in_flight: d.max_in_flight,
        ordering: d.ordering,
        enabled: d.enabled,
        disabled_reason: d.disabled_reason,
        signing_secret: d
            .signing_keys
            .first()
            .map(|k| k.secret.clone())
            .unwrap_or_default(),
        blocked_by: None,
        created_at: rfc3339(d.created_at_ms),
        updated_at: rfc3339(d.updated_at_ms),
    }
}

/// Checks a destination URL; `Err((field, message))`.
pub fn validate_url(url: &str, delivery: &DeliveryConfig) -> Result<(), StoreError> {
    let bad = |m: String| Err(StoreError::invalid("url", m));
    if url.len() > MAX_URL_BYTES {
        return bad(format!("must be at most {MAX_URL_BYTES} bytes"));
    }
    let parsed = match url::Url::parse(url) {
        Ok(u) => u,
        Err(e) => return bad(format!("is not a valid URL ({e})")),
    };
    if !matches!(parsed.scheme(), "http" | "https") {
        return bad("must be an http or https URL".into());
    }
    let Some(host) = parsed.host_str() else {
        return bad("must have a host".into());
    };
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return bad("must not contain credentials; use auth instead".into());
    }
    let policy = SsrfPolicy {
        allow_private_networks: delivery.allow_private_networks,
        allow_cidrs: delivery.allow_cidrs.clone(),
    };
    if let Some(ip) = literal_host_ip(host) {
        if let Err(blocked) = policy.check(ip) {
            return bad(format!(
                "{blocked}; private destinations need [delivery] allow_private_networks = true or allow_cidrs"
            ));
        }
    } else if !delivery.allow_private_networks {
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        if host == "localhost" || host.ends_with(".localhost") {
            return bad(
                "localhost is refused; private destinations need [delivery] allow_private_networks = true"
                    .into(),
            );
        }
    }
    Ok(())
}

fn validate_headers(headers: &BTreeMap<String, String>) -> Result<(), StoreError> {
    if headers.len() > MAX_CUSTOM_HEADERS {
        return Err(StoreError::invalid(
            "headers",
            format!("at most {MAX_CUSTOM_HEADERS} headers"),
        ));
    }
    for (name, value) in headers {
        let field = format!("headers.{name}");
        let Ok(parsed) = HeaderName::from_bytes(name.as_bytes()) else {
            return Err(StoreError::invalid(field, "is not a valid header name"));
        };
        let lower = parsed.as_str();
        if RESERVED_HEADERS.contains(&lower) || lower.starts_with(RESERVED_HEADER_PREFIX) {
            return Err(StoreError::invalid(
                field,
                "is set by hookgate and cannot be overridden",
            ));
        }
        if HeaderValue::from_str(value).is_err() {
            return Err(StoreError::invalid(field, "is not a valid header value"));
        }
    }
    Ok(())
}

fn validate_auth(auth: &DestinationAuth) -> Result<(), StoreError> {
    let ok = |s: &str| !s.is_empty() && s.len() <= 4096 && HeaderValue::from_str(s).is_ok();
    match auth {
        DestinationAuth::Bearer { token } if !ok(token) => Err(StoreError::invalid(
            "auth.token",
            "must be 1 to 4096 visible characters",
        )),
        DestinationAuth::Basic { username, .. } if username.contains(':') || !ok(username) => {
            Err(StoreError::invalid(
                "auth.username",
                "must be 1 to 4096 visible characters without ':'",
            ))
        }
        DestinationAuth::Basic { password, .. } if !ok(password) => Err(StoreError::invalid(
            "auth.password",
            "must be 1 to 4096 visible characters",
        )),
        _ => Ok(()),
    }
}

fn validate_settings(d: &Destination, delivery: &DeliveryConfig) -> Result<(), StoreError> {
    validate_name("name", &d.name).map_err(|e| StoreError::invalid("name", e.message))?;
    validate_url(&d.url, delivery)?;
    if let Some(auth) = &d.auth {
        validate_auth(auth)?;
    }
    validate_headers(&d.headers)?;
    if d.timeout_ms == 0 || d.timeout_ms > MAX_TIMEOUT_MS {
        return Err(StoreError::invalid(
            "timeout_ms",
            format!("must be between 1 and {MAX_TIMEOUT_MS}"),
        ));
    }
    if let Err(problems) = d.retry.validate() {
        if let Some((field, message)) = problems.into_iter().next() {
            return Err(StoreError::invalid(format!("retry.{field}"), message));
        }
    }
    if matches!(d.rate_limit_per_s, Some(r) if r == 0 || r > 100_000) {
        return Err(StoreError::invalid(
            "rate_limit_per_s",
            "must be between 1 and 100000",
        ));
    }
    if d.max_in_flight == 0 || d.max_in_flight > 1000 {
        return Err(StoreError::invalid(
            "max_in_flight",
            "must be between 1 and 1000",
        ));
    }
    Ok(())
}

/// Create a destination. The answer carries its `signing_secret`.
#[utoipa::path(post, path = "/v1/destinations", tag = "destinations",
    request_body = DestinationCreate, security(("api_key" = [])),
    responses((status = 201, body = Envelope<DestinationView>), (status = 422, body = ErrorBody)))]
async fn create_destination(
    State(state): State<AppState>,
    auth: Auth,
    ApiJson(input): ApiJson<DestinationCreate>,
) -> Result<Data<DestinationView>, ApiError> {
    auth.require_write()?;
    let now = now_ms();
    let destination = Destination {
        id: DestinationId::new(),
        account_id: auth.account,
        name: input.name,
        url: input.url,
        auth: input.auth,
        headers: input.headers,
        timeout_ms: input.timeout_ms.unwrap_or(DEFAULT_TIMEOUT_MS),
        retry: input.retry.unwrap_or_default(),
        rate_limit_per_s: input.rate_limit_per_s,
        max_in_flight: input.max_in_flight.unwrap_or(DEFAULT_MAX_IN_FLIGHT),
        ordering: input.ordering,
        enabled: input.enabled.unwrap_or(true),
        disabled_reason: None,
        signing_keys: vec![SigningKey {
            secret: SigningSecret::generate().expose().to_owned(),
            expires_at_ms: None,
        }],
        created_at_ms: now,
        updated_at_ms: now,
    };
    validate_settings(&destination, &state.config().delivery)?;
    state
        .store()
        .create_destination(destination.clone())
        .await?;
    Ok(Data::created(view(destination)))
}

#[utoipa::path(get, path = "/v1/destinations", tag = "destinations", params(ListParams),
    security(("api_key" = [])), responses((status = 200, body = ListEnvelope<DestinationView>)))]
async fn list_destinations(
    State(state): State<AppState>,
    auth: Auth,
    ApiQuery(params): ApiQuery<ListParams>,
) -> Result<List<DestinationView>, ApiError> {
    auth.require_read()?;
    let page = params.page()?;
    let destinations = state
        .store()
        .list_destinations(auth.account, page.after, page.limit)?;
    Ok(list_answer(
        destinations,
        |d| d.id.raw(),
        |d| live_view(&state, d),
    ))
}

/// The view with what only the scheduler knows: a FIFO destination's failing head.
fn live_view(state: &AppState, destination: Destination) -> DestinationView {
    let blocked = state.scheduler().fifo_blocked_by(destination.id);
    let mut v = view(destination);
    v.blocked_by = blocked.map(|e| BlockedBy {
        delivery_id: e.delivery,
        event_id: e.event,
        next_attempt_at: rfc3339(e.due_ms),
    });
    v
}

#[utoipa::path(get, path = "/v1/destinations/{id}", tag = "destinations",
    params(("id" = String, Path, description = "dst_…")), security(("api_key" = [])),
    responses((status = 200, body = Envelope<DestinationView>), (status = 404, body = ErrorBody)))]
async fn get_destination(
    State(state): State<AppState>,
    auth: Auth,
    ApiPath(id): ApiPath<DestinationId>,
) -> Result<Data<DestinationView>, ApiError> {
    auth.require_read()?;
    let destination = state
        .store()
        .destination(auth.account, id)?
        .ok_or_else(|| ApiError::not_found("destination"))?;
    Ok(Data::ok(live_view(&state, destination)))
}

/// Change a destination. Fields left out keep their values.
#[utoipa::path(patch, path = "/v1/destinations/{id}", tag = "destinations",
    request_body = DestinationPatch,
    params(("id" = String, Path, description = "dst_…")), security(("api_key" = [])),
    responses((status = 200, body = Envelope<DestinationView>), (status = 404, body = ErrorBody),
        (status = 422, body = ErrorBody)))]
async fn update_destination(
    State(state): State<AppState>,
    auth: Auth,
    ApiPath(id): ApiPath<DestinationId>,
    ApiJson(patch): ApiJson<DestinationPatch>,
) -> Result<Data<DestinationView>, ApiError> {
    auth.require_write()?;
    let delivery = state.config().delivery.clone();
    let account = auth.account;
    let st = state.clone();
    let change = move |d: &mut crate::model::Destination| {
        if let Some(v) = patch.name {
            d.name = v;
        }
        if let Some(v) = patch.url {
            d.url = v;
        }
        if let Some(v) = patch.auth {
            d.auth = v;
        }
        if let Some(v) = patch.headers {
            d.headers = v;
        }
        if let Some(v) = patch.timeout_ms {
            d.timeout_ms = v;
        }
        if let Some(v) = patch.retry {
            d.retry = v;
        }
        if let Some(v) = patch.rate_limit_per_s {
            d.rate_limit_per_s = v;
        }
        if let Some(v) = patch.max_in_flight {
            d.max_in_flight = v;
        }
        if let Some(v) = patch.ordering {
            d.ordering = v;
        }
        if let Some(v) = patch.enabled {
            d.enabled = v;
            if v {
                d.disabled_reason = None;
            }
        }
        d.updated_at_ms = now_ms();
        validate_settings(d, &delivery)
    };
    let destination = super::to_completion(async move {
        let d = st.store().update_destination(account, id, change).await?;
        st.scheduler().destination_changed(account, d.id);
        Ok(d)
    })
    .await?;
    Ok(Data::ok(view(destination)))
}

/// Delete a destination and the routes that lead to it.
#[utoipa::path(delete, path = "/v1/destinations/{id}", tag = "destinations",
    params(("id" = String, Path, description = "dst_…")), security(("api_key" = [])),
    responses((status = 200, body = Envelope<DeletedView>), (status = 404, body = ErrorBody)))]
async fn delete_destination(
    State(state): State<AppState>,
    auth: Auth,
    ApiPath(id): ApiPath<DestinationId>,
) -> Result<Data<DeletedView>, ApiError> {
    auth.require_write()?;
    super::to_completion(async move {
        state.store().delete_destination(auth.account, id).await?;
        state.scheduler().destination_changed(auth.account, id);
        state.catalog().reload_routes(state.store(), auth.account)
    })
    .await?;
    Ok(Data::ok(DeletedView {
        id: id.to_string(),
        deleted: true,
    }))
}
