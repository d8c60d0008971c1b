//! `POST /v1/messages`: the outbound send API.
//!
//! A SaaS sends one message per event for one of its customers (an `api` source); hookgate
//! wraps the payload as `{"id", "type", "created_at", "data"}`, stores that exact body with
//! one delivery per subscribed destination in one durable commit, and answers 202. The same
//! journal, queue, retries, signing and logs serve it as inbound events. An idempotency key
//! (`id` or the `Idempotency-Key` header) seen on the same source within 24 h answers 409 with
//! the original event id, and nothing is sent again.

use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use prometheus::{IntCounterVec, Opts, Registry};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use super::{rfc3339, Envelope, ErrorBody};
use crate::http::auth::Auth;
use crate::http::envelope::{ApiError, ApiJson, Data};
use crate::http::AppState;
use crate::ids::EventId;
use crate::model::{Event, Origin, SourceKind};
use crate::routing::pattern::validate_event_type;
use crate::store::events::Appended;

/// How long an idempotency key is remembered per source.
pub const IDEMPOTENCY_WINDOW: Duration = Duration::from_secs(24 * 3600);
const MAX_IDEMPOTENCY_KEY_BYTES: usize = 256;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(send_message))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MessageCreate {
    /// The `api` source, by id (`src_…`) or by name.
    pub source: String,
    /// e.g. `invoice.paid`: letters, digits and `._:/-`, at most 256 bytes.
    pub event_type: String,
    /// Any JSON; delivered as `data`, byte for byte.
    #[schema(value_type = Object)]
    pub payload: Box<serde_json::value::RawValue>,
    /// Idempotency key; the `Idempotency-Key` header works too.
    pub id: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct MessageAccepted {
    pub event_id: EventId,
    /// Destinations the message was queued for.
    pub deliveries: usize,
}

/// Send-API counters; `outcome` is one of accepted, duplicate, invalid, not_found, unavailable.
pub struct MessageMetrics {
    messages: IntCounterVec,
}

impl MessageMetrics {
    pub fn register(registry: &Registry) -> Result<Self, prometheus::Error> {
        let messages = IntCounterVec::new(
            Opts::new("hookgate_messages_total", "Send-API messages by outcome."),
            &["outcome"],
        )?;
        registry.register(Box::new(messages.clone()))?;
        Ok(Self { messages })
    }

    fn count(&self, outcome: &'static str) {
        self.messages.with_label_values(&[outcome]).inc();
    }
}

/// The body every destination receives: Standard Webhooks' recommended envelope.
pub fn envelope_body(
    id: EventId,
    event_type: &str,
    created_at_ms: u64,
    payload: &serde_json::value::RawValue,
) -> bytes::Bytes {
    #[derive(Serialize)]
    struct Body<'a> {
        id: EventId,
        #[serde(rename = "type")]
        kind: &'a str,
        created_at: String,
        data: &'a serde_json::value::RawValue,
    }
    serde_json::to_vec(&Body {
        id,
        kind: event_type,
        created_at: rfc3339(created_at_ms),
        data: payload,
    })
    // Raw JSON and plain strings always serialise.
    .unwrap_or_default()
    .into()
}

/// Send a message to every destination subscribed to its event type. Answers 202 once the
/// message and its deliveries are durably stored.
#[utoipa::path(post, path = "/v1/messages", tag = "messages", request_body = MessageCreate,
    params(("Idempotency-Key" = Option<String>, Header, description = "Idempotency key (alternative to `id`)")),
    security(("api_key" = [])),
    responses((status = 202, body = Envelope<MessageAccepted>),
        (status = 404, description = "Unknown source", body = ErrorBody),
        (status = 409, description = "Idempotency key already used; `error.event_id` is the original", body = ErrorBody),
        (status = 422, body = ErrorBody),
        (status = 503, body = ErrorBody)))]
pub(crate) async fn send_message(
    State(state): State<AppState>,
    auth: Auth,
    headers: HeaderMap,
    ApiJson(input): ApiJson<MessageCreate>,
) -> Result<Data<MessageAccepted>, ApiError> {
    let metrics = state.message_metrics();
    auth.require_send()?;
    if let Err(reason) = validate_event_type(&input.event_type) {
        metrics.count("invalid");
        return Err(ApiError::invalid("event_type", reason));
    }
    let header_key = headers
        .get("idempotency-key")
        .map(|v| v.to_str().map(str::to_owned))
        .transpose()
        .map_err(|_| ApiError::invalid("Idempotency-Key", "must be visible ASCII"))?;
    let key = input.id.or(header_key);
    if let Some(k) = &key {
        if k.is_empty() || k.len() > MAX_IDEMPOTENCY_KEY_BYTES || k.chars().any(char::is_control) {
            metrics.count("invalid");
            return Err(ApiError::invalid(
                "id",
                "an idempotency key is 1 to 256 bytes without control characters",
            ));
        }
    }
    let Some(source) = state
        .catalog()
        .source_by_id_or_name(auth.account, &input.source)
    else {
        metrics.count("not_found");
        return Err(ApiError::not_found("source"));
    };
    if source.kind != SourceKind::Api {
        metrics.count("invalid");
        return Err(ApiError::invalid(
            "source",
            "messages go through api sources; webhook sources receive at /ingest",
        ));
    }

    let id = EventId::new();
    // The id's time, not a second clock read: see `EventId::new`.
    let now = id.created_ms();
    let body = envelope_body(id, &input.event_type, now, &input.payload);
    if body.len() > state.config().server.max_body_bytes {
        metrics.count("invalid");
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            "the message exceeds the configured body limit",
        ));
    }
    let destinations = state
        .catalog()
        .routes(auth.account)
        .destinations(source.id, Some(&input.event_type));
    let event = Event {
        id,
        account_id: auth.account,
        source_id: source.id,
        origin: Origin::Outbound,
        received_at_ms: now,
        event_type: Some(input.event_type),
        dedupe_key: key,
        content_type: Some("application/json".into()),
        headers: Vec::new(),
        body,
    };
    match state
        .store()
        .append_event(event, destinations, IDEMPOTENCY_WINDOW)
        .await
    {
        Ok(Appended::Stored {
            event_id,
            deliveries,
        }) => {
            metrics.count("accepted");
            Ok(Data(
                StatusCode::ACCEPTED,
                MessageAccepted {
                    event_id,
                    deliveries: deliveries.len(),
                },
            ))
        }
        Ok(Appended::Duplicate { event_id }) => {
            metrics.count("duplicate");
            Err(ApiError::new(
                StatusCode::CONFLICT,
                "duplicate",
                "this idempotency key was already used for this source; nothing was sent again",
            )
            .with_detail("event_id", event_id.to_string()))
        }
        Err(e) => {
            metrics.count("unavailable");
            Err(e.into())
        }
    }
}
