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
    /// items (even none) and still have a `next_cursor`: follow it until it is absent. The
    /// queue is live: a delivery retried or replayed while you page moves to its new due time,
    /// so it can show twice or not at all. Queue cursors are sealed and valid until the
    /// gateway restarts.
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

// Queue cursors name a position in the one queue all accounts share: where a page's scan
// budget ran out, which is often another account's entry. They are sealed so a client learns
// nothing of other accounts' queues (delivery ids, due times) and cannot forge a position: the
// key is XORed with an HMAC-SHA256 keystream under a per-process secret and a random nonce,
// then authenticated (encrypt-then-MAC). A restart makes old cursors `bad_cursor`.
const CURSOR_NONCE: usize = 12;
const CURSOR_KEY: usize = 24;
const CURSOR_TAG: usize = 16;

fn cursor_prf(label: u8, parts: &[&[u8]]) -> [u8; 32] {
    use hmac::{Hmac, Mac};
    use rand::RngCore;
    static SECRET: std::sync::OnceLock<[u8; 32]> = std::sync::OnceLock::new();
    let secret = SECRET.get_or_init(|| {
        let mut k = [0u8; 32];
        rand::thread_rng().fill_bytes(&mut k);
        k
    });
    let mut mac = <Hmac<sha2::Sha256> as Mac>::new_from_slice(secret)
        .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
    mac.update(&[label]);
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes().into()
}

fn encode_queue_cursor((due_ms, id): (u64, u128)) -> String {
    use rand::RngCore;
    let mut nonce = [0u8; CURSOR_NONCE];
    rand::thread_rng().fill_bytes(&mut nonce);
    let mut sealed = [0u8; CURSOR_KEY];
    sealed[..8].copy_from_slice(&due_ms.to_be_bytes());
    sealed[8..].copy_from_slice(&id.to_be_bytes());
    for (b, k) in sealed.iter_mut().zip(cursor_prf(b'k', &[&nonce])) {
        *b ^= k;
    }
    let tag = cursor_prf(b't', &[&nonce, &sealed]);
    let mut out = Vec::with_capacity(CURSOR_NONCE + CURSOR_KEY + CURSOR_TAG);
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&sealed);
    out.extend_from_slice(&tag[..CURSOR_TAG]);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(out)
}

fn decode_queue_cursor(cursor: &str) -> Result<(u64, u128), ApiError> {
    use subtle::ConstantTimeEq;
    let bad = || ApiError::bad_request("bad_cursor", "cursor is not one this API issued");
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(cursor)
        .map_err(|_| bad())?;
    if raw.len() != CURSOR_NONCE + CURSOR_KEY + CURSOR_TAG {
        return Err(bad());
    }
    let (nonce, rest) = raw.split_at(CURSOR_NONCE);
    let (sealed, tag) = rest.split_at(CURSOR_KEY);
    let expected = cursor_prf(b't', &[nonce, sealed]);
    if !bool::from(expected[..CURSOR_TAG].ct_eq(tag)) {
        return Err(bad());
    }
    let mut key = [0u8; CURSOR_KEY];
    for ((b, s), k) in key.iter_mut().zip(sealed).zip(cursor_prf(b'k', &[nonce])) {
        *b = s ^ k;
    }
    let (due, id) = key.split_at(8);
    Ok((
        u64::from_be_bytes(due.try_into().map_err(|_| bad())?),
        u128::from_be_bytes(id.try_into().map_err(|_| bad())?),
    ))
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
    if targets.is_empty() {
        // Nothing to write: no journal job, so no empty fsync'd commit.
        return Ok((0, None));
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queue_cursors_round_trip_hide_the_key_and_refuse_tampering() {
        let key = (
            1_764_000_000_000u64,
            0x0123_4567_89ab_cdef_0011_2233_4455_6677u128,
        );
        let cursor = encode_queue_cursor(key);
        assert_eq!(decode_queue_cursor(&cursor).unwrap(), key);
        // Fresh nonce per cursor: the same position never reads the same twice.
        assert_ne!(encode_queue_cursor(key), cursor);

        let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(&cursor)
            .unwrap();
        let id_bytes = key.1.to_be_bytes();
        assert!(
            !raw.windows(id_bytes.len()).any(|w| w == id_bytes),
            "the delivery id shows in the cursor"
        );
        for i in 0..raw.len() {
            let mut t = raw.clone();
            t[i] ^= 1;
            let tampered = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&t);
            assert!(decode_queue_cursor(&tampered).is_err(), "byte {i} flipped");
        }
        assert!(decode_queue_cursor("nope").is_err());
        assert!(decode_queue_cursor(&super::encode_cursor(7)).is_err());
    }
}
