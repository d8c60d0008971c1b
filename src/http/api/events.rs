//! `/v1/events`: what was received or sent, its status, and its deliveries.
//!
//! Listings are newest first and carry metadata only; `GET /v1/events/{id}` adds the stored
//! headers and the exact body (as a string when it is UTF-8, else base64).

use std::collections::BTreeMap;

use axum::extract::State;
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};

use super::{encode_cursor, rfc3339, Envelope, ErrorBody, ListEnvelope, MAX_PAGE_LIMIT};
use crate::delivery::scheduler::SchedulerHandle;
use crate::http::auth::Auth;
use crate::http::envelope::parse_json;
use crate::http::envelope::{ApiError, ApiPath, ApiQuery, Data, List};
use crate::http::AppState;
use crate::ids::{now_ms, DeliveryId, DestinationId, EventId, SourceId};
use crate::model::{Attempt, Delivery, DeliveryStatus, Event, EventMeta, EventStatus, Origin};
use crate::store::events::{Added, EventFilter};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_events))
        .routes(routes!(get_event))
        .routes(routes!(event_deliveries))
        .routes(routes!(event_attempts))
        .routes(routes!(replay_event))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct EventListParams {
    pub source_id: Option<SourceId>,
    pub status: Option<EventStatus>,
    pub event_type: Option<String>,
    /// The provider's delivery id (Stripe's event `id`, `X-GitHub-Delivery`,
    /// `X-Shopify-Webhook-Id`, `webhook-id`) or the send API's `id`: finds what became of one
    /// webhook the provider says it sent.
    pub dedupe_key: Option<String>,
    /// RFC 3339; events received at or after.
    pub since: Option<String>,
    /// RFC 3339; events received at or before.
    pub until: Option<String>,
    /// 1 to 250 (default 50).
    pub limit: Option<u32>,
    pub cursor: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct EventSummary {
    pub id: EventId,
    pub source_id: SourceId,
    pub origin: Origin,
    pub event_type: Option<String>,
    pub status: EventStatus,
    pub received_at: String,
    /// The provider's delivery id or the idempotency key, when there was one.
    pub dedupe_key: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct EventView {
    pub id: EventId,
    pub source_id: SourceId,
    pub origin: Origin,
    pub event_type: Option<String>,
    pub status: EventStatus,
    pub received_at: String,
    /// The provider's delivery id or the idempotency key, when there was one.
    pub dedupe_key: Option<String>,
    pub content_type: Option<String>,
    /// Stored request headers; repeated headers joined with ", ".
    pub headers: BTreeMap<String, String>,
    /// The exact stored body when it is UTF-8; otherwise null and `body_base64` is set.
    pub body: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub body_base64: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DeliveryView {
    pub id: DeliveryId,
    pub event_id: EventId,
    pub destination_id: DestinationId,
    pub status: DeliveryStatus,
    pub attempts: u32,
    pub next_attempt_at: Option<String>,
    pub last_status_code: Option<u16>,
}

/// A delivery's status as a client should see it: stored status, or `delivering` while an
/// attempt runs (not persisted; a restart re-queues in-flight attempts anyway).
fn live_status(d: &Delivery, scheduler: &SchedulerHandle) -> DeliveryStatus {
    if matches!(
        d.status,
        DeliveryStatus::Pending | DeliveryStatus::RetryScheduled
    ) && scheduler.is_in_flight(d.id)
    {
        DeliveryStatus::Delivering
    } else {
        d.status
    }
}

pub fn delivery_view(d: Delivery, scheduler: &SchedulerHandle) -> DeliveryView {
    let status = live_status(&d, scheduler);
    let pending = matches!(
        status,
        DeliveryStatus::Pending | DeliveryStatus::RetryScheduled
    );
    DeliveryView {
        id: d.id,
        event_id: d.event_id,
        destination_id: d.destination_id,
        status,
        attempts: d.attempts,
        next_attempt_at: d.next_attempt_at_ms.filter(|_| pending).map(rfc3339),
        last_status_code: d.last_status_code,
    }
}

fn summary((m, status): (EventMeta, EventStatus)) -> EventSummary {
    EventSummary {
        id: m.id,
        source_id: m.source_id,
        origin: m.origin,
        event_type: m.event_type,
        status,
        received_at: rfc3339(m.received_at_ms),
        dedupe_key: m.dedupe_key,
    }
}

fn view(e: Event, status: EventStatus) -> EventView {
    let mut headers: BTreeMap<String, String> = BTreeMap::new();
    for (name, value) in &e.headers {
        let value = String::from_utf8_lossy(value);
        headers
            .entry(name.clone())
            .and_modify(|v| {
                v.push_str(", ");
                v.push_str(&value);
            })
            .or_insert_with(|| value.into_owned());
    }
    let (body, body_base64) = match String::from_utf8(e.body.to_vec()) {
        Ok(s) => (Some(s), None),
        Err(e) => (
            None,
            Some(base64::engine::general_purpose::STANDARD.encode(e.as_bytes())),
        ),
    };
    EventView {
        id: e.id,
        source_id: e.source_id,
        origin: e.origin,
        event_type: e.event_type,
        status,
        received_at: rfc3339(e.received_at_ms),
        dedupe_key: e.dedupe_key,
        content_type: e.content_type,
        headers,
        body,
        body_base64,
    }
}

pub fn parse_time(field: &str, value: &str) -> Result<u64, ApiError> {
    humantime::parse_rfc3339_weak(value)
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map(|d| d.as_millis() as u64)
        .ok_or_else(|| {
            ApiError::invalid(
                field,
                "must be an RFC 3339 time such as 2026-11-23T12:00:00Z",
            )
        })
}

/// List events, newest first.
#[utoipa::path(get, path = "/v1/events", tag = "events", params(EventListParams),
    security(("api_key" = [])),
    responses((status = 200, body = ListEnvelope<EventSummary>), (status = 422, body = ErrorBody)))]
async fn list_events(
    State(state): State<AppState>,
    auth: Auth,
    ApiQuery(params): ApiQuery<EventListParams>,
) -> Result<List<EventSummary>, ApiError> {
    auth.require_read()?;
    let page = super::ListParams {
        limit: params.limit,
        cursor: params.cursor,
    }
    .page()?;
    let filter = EventFilter {
        source_id: params.source_id,
        status: params.status,
        event_type: params.event_type,
        dedupe_key: params.dedupe_key,
        since_ms: params
            .since
            .as_deref()
            .map(|v| parse_time("since", v))
            .transpose()?,
        until_ms: params
            .until
            .as_deref()
            .map(|v| parse_time("until", v))
            .transpose()?,
    };
    debug_assert!(page.limit <= MAX_PAGE_LIMIT as usize);
    let store = state.store().clone();
    let account = auth.account;
    // A filtered listing may scan many events: keep it off the async workers.
    let events = tokio::task::spawn_blocking(move || {
        store.list_events(account, &filter, page.after, page.limit)
    })
    .await
    .map_err(|e| ApiError::internal(&e))??;
    Ok(List {
        next_cursor: events.next_before.map(encode_cursor),
        items: events.items.into_iter().map(summary).collect(),
    })
}

#[utoipa::path(get, path = "/v1/events/{id}", tag = "events",
    params(("id" = String, Path, description = "evt_…")), security(("api_key" = [])),
    responses((status = 200, body = Envelope<EventView>), (status = 404, body = ErrorBody)))]
async fn get_event(
    State(state): State<AppState>,
    auth: Auth,
    ApiPath(id): ApiPath<EventId>,
) -> Result<Data<EventView>, ApiError> {
    auth.require_read()?;
    let event = state
        .store()
        .event(auth.account, id)?
        .ok_or_else(|| ApiError::not_found("event"))?;
    let deliveries = state.store().event_deliveries(id)?;
    let scheduler = state.scheduler();
    let status = EventStatus::summarise(deliveries.iter().map(|d| live_status(d, scheduler)));
    Ok(Data::ok(view(event, status)))
}

/// The deliveries of one event: one per destination it was routed to.
#[utoipa::path(get, path = "/v1/events/{id}/deliveries", tag = "events",
    params(("id" = String, Path, description = "evt_…")), security(("api_key" = [])),
    responses((status = 200, body = ListEnvelope<DeliveryView>), (status = 404, body = ErrorBody)))]
async fn event_deliveries(
    State(state): State<AppState>,
    auth: Auth,
    ApiPath(id): ApiPath<EventId>,
) -> Result<List<DeliveryView>, ApiError> {
    auth.require_read()?;
    // Checks the event belongs to the caller's account before showing anything about it.
    if state.store().event(auth.account, id)?.is_none() {
        return Err(ApiError::not_found("event"));
    }
    let deliveries = state.store().event_deliveries(id)?;
    let scheduler = state.scheduler();
    Ok(List {
        items: deliveries
            .into_iter()
            .map(|d| delivery_view(d, scheduler))
            .collect(),
        next_cursor: None,
    })
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AttemptView {
    pub attempt: u32,
    pub delivery_id: DeliveryId,
    pub destination_id: DestinationId,
    pub started_at: String,
    pub duration_ms: u64,
    /// Null when no response arrived.
    pub status_code: Option<u16>,
    /// The failure kind when no response arrived: `timeout`, `connect`, `dns`, `tls`,
    /// `ssrf_blocked`, `invalid_url`, `protocol`, `other`, `destination_deleted`.
    pub error: Option<String>,
    /// A readable description of the failure.
    pub error_message: Option<String>,
    /// The first 4 KiB of the response body.
    pub response_body: String,
}

pub fn attempt_view(a: Attempt) -> AttemptView {
    AttemptView {
        attempt: a.attempt,
        delivery_id: a.delivery_id,
        destination_id: a.destination_id,
        started_at: rfc3339(a.started_at_ms),
        duration_ms: a.duration_ms,
        status_code: a.status_code,
        error: a.error.as_ref().map(|e| e.kind.clone()),
        error_message: a.error.map(|e| e.message),
        response_body: a.response_body,
    }
}

/// Every attempt at delivering the event, oldest first.
#[utoipa::path(get, path = "/v1/events/{id}/attempts", tag = "events",
    params(("id" = String, Path, description = "evt_…")), security(("api_key" = [])),
    responses((status = 200, body = ListEnvelope<AttemptView>), (status = 404, body = ErrorBody)))]
async fn event_attempts(
    State(state): State<AppState>,
    auth: Auth,
    ApiPath(id): ApiPath<EventId>,
) -> Result<List<AttemptView>, ApiError> {
    auth.require_read()?;
    if state.store().event(auth.account, id)?.is_none() {
        return Err(ApiError::not_found("event"));
    }
    Ok(List {
        items: state
            .store()
            .attempts(id)?
            .into_iter()
            .map(attempt_view)
            .collect(),
        next_cursor: None,
    })
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EventReplay {
    /// Only the delivery to this destination; absent: every delivery of the event. A
    /// destination of the account the event was never routed to gets a first delivery.
    pub destination_id: Option<DestinationId>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct EventReplayAnswer {
    /// Existing deliveries of the event the request selected.
    pub matched: usize,
    /// Deliveries queued by this call, `created` included.
    pub replayed: usize,
    /// New deliveries: 1 when `destination_id` names a destination the event was never
    /// delivered to, which now gets its first delivery.
    pub created: usize,
}

/// Deliver an event again, to all its destinations or one; a destination it never went to
/// gets a first delivery.
#[utoipa::path(post, path = "/v1/events/{id}/replay", tag = "events", request_body = EventReplay,
    params(("id" = String, Path, description = "evt_…")), security(("api_key" = [])),
    responses((status = 200, body = Envelope<EventReplayAnswer>), (status = 404, body = ErrorBody),
        (status = 422, body = ErrorBody)))]
async fn replay_event(
    State(state): State<AppState>,
    auth: Auth,
    ApiPath(id): ApiPath<EventId>,
    body: axum::body::Bytes,
) -> Result<Data<EventReplayAnswer>, ApiError> {
    auth.require_write()?;
    // The body is optional: empty means every destination.
    let input: EventReplay = if body.iter().all(u8::is_ascii_whitespace) {
        EventReplay::default()
    } else {
        parse_json(&body)?
    };
    if state.store().event(auth.account, id)?.is_none() {
        return Err(ApiError::not_found("event"));
    }
    let mut deliveries: Vec<_> = state
        .store()
        .event_deliveries(id)?
        .into_iter()
        .filter(|d| input.destination_id.is_none_or(|x| x == d.destination_id))
        .collect();
    let mut matched = deliveries.len();
    let mut created = 0;
    if let (Some(destination), true) = (input.destination_id, deliveries.is_empty()) {
        // Never routed there (the destination is newer than the event, or no route matched):
        // a first delivery, due now.
        match state
            .store()
            .add_delivery(auth.account, id, destination, now_ms())
            .await?
        {
            Added::Created(_) => created = 1,
            // A concurrent call created it first: replay that one like any other.
            Added::Exists(d) => {
                matched += 1;
                deliveries.push(d);
            }
        }
    }
    let (replayed, _) = super::deliveries::replay(&state, auth.account, deliveries, false).await?;
    Ok(Data::ok(EventReplayAnswer {
        matched,
        replayed: replayed + created,
        created,
    }))
}
