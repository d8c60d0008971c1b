//! `/v1/deliveries` (what has not been delivered), `/v1/replay` (bulk), and
//! `/v1/notices` (what hookgate did on its own, e.g. disabling a destination).

use axum::extract::State;
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
use crate::store::deliveries::ReplayFilter;

/// Deliveries a bulk replay touches at most per call.
pub const MAX_REPLAY: usize = 10_000;
/// Queue entries `GET /v1/deliveries` scans at most for pending deliveries.
const MAX_QUEUE_SCAN: usize = 100_000;

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
    /// Dead letters only: from a previous page.
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
    let page = ListParams {
        limit: params.limit,
        cursor: params.cursor,
    }
    .page()?;
    let store = state.store().clone();
    let account = auth.account;
    let status = params.status;
    let destination = params.destination_id;
    let found = tokio::task::spawn_blocking(move || match status {
        Some(DeliveryStatus::DeadLetter) => store.dead_letters(account, destination, page.after, page.limit),
        Some(DeliveryStatus::Delivered) | Some(DeliveryStatus::Delivering) => Err(
            crate::store::StoreError::invalid(
                "status",
                "list delivered deliveries through /v1/events/{id}/deliveries; here: pending, retry_scheduled, dead_letter",
            ),
        ),
        _ => store
            .queued_deliveries(account, destination, page.limit * 4, MAX_QUEUE_SCAN)
            .map(|mut p| {
                if status == Some(DeliveryStatus::RetryScheduled) {
                    p.items.retain(|d| d.status == DeliveryStatus::RetryScheduled);
                }
                p.items.truncate(page.limit);
                p
            }),
    })
    .await
    .map_err(|e| ApiError::internal(&e))??;
    let next_cursor = (status == Some(DeliveryStatus::DeadLetter) && found.has_more)
        .then(|| found.items.last().map(|d| encode_cursor(d.id.raw())))
        .flatten();
    let scheduler = state.scheduler().clone();
    Ok(List {
        items: found
            .items
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
