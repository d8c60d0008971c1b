//! `/v1/deliveries` (what has not been delivered), `/v1/replay` (bulk), and
//! `/v1/notices` (what hookgate did on its own, e.g. disabling a destination).

use axum::extract::State;
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};

use super::events::{delivery_view, parse_time, DeliveryView};
use super::{encode_cursor, rfc3339, Envelope, ErrorBody, ListEnvelope, ListParams};
use crate::http::auth::Auth;
use crate::http::envelope::{ApiError, ApiJson, ApiQuery, Data, List};
use crate::http::AppState;
use crate::ids::{now_ms, DestinationId, SourceId};
use crate::model::{Delivery, DeliveryStatus, Notice};
use crate::store::deliveries::{QueueFilter, ReplayFilter};

/// Deliveries a bulk replay touches at most per call.
pub const MAX_REPLAY: usize = 10_000;
/// Queue entries one page of `GET /v1/deliveries` scans at most for queued deliveries; the
/// `next_cursor` carries on from there, so a read never pins a transaction for long.
const MAX_QUEUE_SCAN: usize = 10_000;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_deliveries))
        .routes(routes!(bulk_replay))
        .routes(routes!(list_notices))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct DeliveryListParams {
    /// `dead_letter`, `pending` (pending and retry-scheduled) or `retry_scheduled`; absent:
    /// everything not yet delivered.
    pub status: Option<DeliveryStatus>,
    pub destination_id: Option<DestinationId>,
    pub limit: Option<u32>,
    /// From a previous page's `next_cursor`. Queued deliveries share one queue across
    /// accounts and a page scans a bounded part of it, so a page can hold fewer than `limit`
    /// items (even none) and still have a `next_cursor`: follow it until it is absent.
    pub cursor: Option<String>,
}

/// Deliveries not (yet) delivered: queued ones in due order, or dead letters.
#[utoipa::path(get, path = "/v1/deliveries", tag = "deliveries", params(DeliveryListParams),
    security(("api_key" = [])),
    responses((status = 200, body = ListEnvelope<DeliveryView>), (status = 422, body = ErrorBody)))]
async fn list_deliveries(
    State(state): State<AppState>,
    auth: Auth,
    ApiQuery(params): ApiQuery<DeliveryListParams>,
) -> Result<List<DeliveryView>, ApiError> {
    auth.require_read()?;
    let dead_letters = params.status == Some(DeliveryStatus::DeadLetter);
    // Dead-letter cursors are an id, queue cursors a queue key (due time and id).
    let page = ListParams {
        limit: params.limit,
        cursor: params.cursor.clone().filter(|_| dead_letters),
    }
    .page()?;
    let queue_after = match (&params.cursor, dead_letters) {
        (Some(c), false) => Some(decode_queue_cursor(c)?),
        _ => None,
    };
    let store = state.store().clone();
    let account = auth.account;
    let destination = params.destination_id;
    let status = params.status;
    let (items, next_cursor) = tokio::task::spawn_blocking(move || match status {
        Some(DeliveryStatus::DeadLetter) => store
            .dead_letters(account, destination, page.after, page.limit)
            .map(|p| {
                let next = p
                    .has_more
                    .then(|| p.items.last().map(|d| encode_cursor(d.id.raw())))
                    .flatten();
                (p.items, next)
            }),
        Some(DeliveryStatus::Delivered) | Some(DeliveryStatus::Delivering) => Err(
            crate::store::StoreError::invalid(
                "status",
                "list delivered deliveries through /v1/events/{id}/deliveries; here: pending, retry_scheduled, dead_letter",
            ),
        ),
        _ => {
            let filter = QueueFilter {
                destination,
                // `pending` means everything queued: new and retry-scheduled alike.
                status: status.filter(|s| *s == DeliveryStatus::RetryScheduled),
            };
            store
                .queued_deliveries(account, filter, queue_after, page.limit, MAX_QUEUE_SCAN)
                .map(|p| (p.items, p.next.map(encode_queue_cursor)))
        }
    })
    .await
    .map_err(|e| ApiError::internal(&e))??;
    let scheduler = state.scheduler().clone();
    Ok(List {
        items: items
            .into_iter()
            .map(|d| delivery_view(d, &scheduler))
            .collect(),
        next_cursor,
    })
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReplayRequest {
    pub source_id: Option<SourceId>,
    pub destination_id: Option<DestinationId>,
    /// e.g. `dead_letter`.
    pub status: Option<DeliveryStatus>,
    pub event_type: Option<String>,
    /// RFC 3339: events received at or after.
    pub since: Option<String>,
    /// RFC 3339: events received at or before.
    pub until: Option<String>,
    /// Count what would be replayed, change nothing.
    #[serde(default)]
    pub dry_run: bool,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ReplayAnswer {
    /// Deliveries the filter selected (at most 10000 per call).
    pub matched: usize,
    /// Deliveries put back in the queue (0 for a dry run).
    pub replayed: usize,
    pub dry_run: bool,
    /// More deliveries matched than one call replays; call again.
    pub truncated: bool,
    /// When the last replayed delivery is due: replays are spaced by
    /// `[delivery] replay_rate_per_s` so they cannot flood a destination.
    pub last_due_at: Option<String>,
}

fn encode_queue_cursor((due_ms, id): (u64, u128)) -> String {
    let mut b = [0u8; 24];
    b[..8].copy_from_slice(&due_ms.to_be_bytes());
    b[8..].copy_from_slice(&id.to_be_bytes());
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
}

fn decode_queue_cursor(cursor: &str) -> Result<(u64, u128), ApiError> {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(cursor)
        .ok()
        .and_then(|b| <[u8; 24]>::try_from(b.as_slice()).ok())
        .map(|b| {
            let (due, id) = b.split_at(8);
            (
                u64::from_be_bytes(due.try_into().unwrap_or_default()),
                u128::from_be_bytes(id.try_into().unwrap_or_default()),
            )
        })
        .ok_or_else(|| ApiError::bad_request("bad_cursor", "cursor is not one this API issued"))
}

/// Queues the given deliveries again, spaced at the replay rate.
pub async fn replay(
    state: &AppState,
    account: crate::ids::AccountId,
    targets: Vec<Delivery>,
    spaced: bool,
) -> Result<(usize, Option<u64>), ApiError> {
    let start = now_ms();
    let spacing = if spaced {
        1000 / u64::from(state.config().delivery.replay_rate_per_s.max(1))
    } else {
        0
    };
    let targets: Vec<_> = targets
        .into_iter()
        .filter(|d| !state.scheduler().is_in_flight(d.id))
        .map(|d| (d.event_id, d.id))
        .collect();
    let entries = state
        .store()
        .replay(account, targets, start, spacing)
        .await?;
    Ok((entries.len(), entries.last().map(|e| e.due_ms)))
}

/// Replay deliveries by filter (all optional), e.g. every dead letter of one destination.
#[utoipa::path(post, path = "/v1/replay", tag = "deliveries", request_body = ReplayRequest,
    security(("api_key" = [])),
    responses((status = 200, body = Envelope<ReplayAnswer>), (status = 422, body = ErrorBody)))]
async fn bulk_replay(
    State(state): State<AppState>,
    auth: Auth,
    ApiJson(input): ApiJson<ReplayRequest>,
) -> Result<Data<ReplayAnswer>, ApiError> {
    auth.require_write()?;
    let filter = ReplayFilter {
        source_id: input.source_id,
        destination_id: input.destination_id,
        status: input.status,
        event_type: input.event_type,
        since_ms: input
            .since
            .as_deref()
            .map(|v| parse_time("since", v))
            .transpose()?,
        until_ms: input
            .until
            .as_deref()
            .map(|v| parse_time("until", v))
            .transpose()?,
    };
    let store = state.store().clone();
    let account = auth.account;
    let (found, truncated) =
        tokio::task::spawn_blocking(move || store.find_deliveries(account, &filter, MAX_REPLAY))
            .await
            .map_err(|e| ApiError::internal(&e))??;
    let matched = found.len();
    let (replayed, last_due) = if input.dry_run {
        (0, None)
    } else {
        replay(&state, auth.account, found, true).await?
    };
    Ok(Data::ok(ReplayAnswer {
        matched,
        replayed,
        dry_run: input.dry_run,
        truncated,
        last_due_at: last_due.map(rfc3339),
    }))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct NoticeView {
    /// `endpoint.disabled`.
    #[serde(rename = "type")]
    pub kind: String,
    pub destination_id: Option<DestinationId>,
    pub message: String,
    pub created_at: String,
}

/// What hookgate did on its own, newest first (e.g. `endpoint.disabled`).
#[utoipa::path(get, path = "/v1/notices", tag = "deliveries", security(("api_key" = [])),
    responses((status = 200, body = ListEnvelope<NoticeView>)))]
async fn list_notices(
    State(state): State<AppState>,
    auth: Auth,
) -> Result<List<NoticeView>, ApiError> {
    auth.require_read()?;
    let notices = state.store().notices(auth.account, 100)?;
    Ok(List {
        items: notices
            .into_iter()
            .map(|n: Notice| NoticeView {
                kind: n.kind,
                destination_id: n.destination_id,
                message: n.message,
                created_at: rfc3339(n.created_at_ms),
            })
            .collect(),
        next_cursor: None,
    })
}
