//! Events and their deliveries: the write that ingest and the send API acknowledge, and the
//! reads behind `/v1/events`.
//!
//! [`Store::append_event`] is the one rule made concrete: the event, one delivery row per
//! matched destination and their queue entries are written in one journal job, so they share
//! a commit (journal invariant 3) and there is no instant at which an acknowledged event has no
//! queued delivery. Deduplication is checked inside that same job, so two copies of one
//! provider delivery racing each other still produce one event.

use std::future::Future;
use std::time::Duration;

use redb::{ReadableDatabase, ReadableTable};

use super::deliveries::DueEntry;
use super::tables::{DELIVERIES, DESTINATIONS, EVENTS};
use super::{codec, Store, StoreError};
use crate::ids::{next_raw_id, AccountId, DeliveryId, DestinationId, EventId, SourceId};
use crate::model::{Delivery, DeliveryStatus, Event, EventMeta, EventStatus};

/// What `append_event` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Appended {
    /// Stored, with this many deliveries queued.
    Stored {
        event_id: EventId,
        deliveries: Vec<Delivery>,
    },
    /// The dedupe key was seen within the window; nothing was written.
    Duplicate { event_id: EventId },
}

/// What `add_delivery` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Added {
    /// A new delivery, queued.
    Created(Delivery),
    /// The event already had a delivery to that destination; nothing was written.
    Exists(Delivery),
}

/// Filters of `GET /v1/events`; all optional.
#[derive(Debug, Clone, Default)]
pub struct EventFilter {
    pub source_id: Option<SourceId>,
    pub status: Option<EventStatus>,
    pub event_type: Option<String>,
    pub dedupe_key: Option<String>,
    pub since_ms: Option<u64>,
    pub until_ms: Option<u64>,
}

/// Events scanned at most per listing page when filters reject most of them, so a
/// selective filter over a huge account cannot pin a read transaction for long.
const MAX_SCAN_PER_PAGE: usize = 10_000;

fn decode_err(table: &'static str) -> impl Fn(codec::CodecError) -> StoreError {
    move |source| StoreError::Codec { table, source }
}

// === impl Store ===

impl Store {
    /// Writes `event` and one pending delivery per destination in one durable commit, unless
    /// its dedupe key was seen on the same source within `dedupe_window`.
    ///
    /// Not an `async fn`, so the request future holds `event` once (inside the journal job).
    pub fn append_event(
        &self,
        event: Event,
        destinations: Vec<DestinationId>,
        dedupe_window: Duration,
    ) -> impl Future<Output = Result<Appended, StoreError>> + Send + '_ {
        self.append(event, destinations, dedupe_window, true)
    }

    /// Writes `event` with one delivery to `destination` that is *not* queued: the caller
    /// attempts it itself, once (test sends).
    pub async fn append_unqueued_event(
        &self,
        event: Event,
        destination: DestinationId,
    ) -> Result<Delivery, StoreError> {
        match self
            .append(event, vec![destination], Duration::ZERO, false)
            .await?
        {
            Appended::Stored { mut deliveries, .. } if deliveries.len() == 1 => {
                Ok(deliveries.remove(0))
            }
            // Without a dedupe key and with one destination the event is stored with one
            // delivery; anything else is a bug, reported rather than panicking.
            _ => Err(StoreError::NotFound("delivery")),
        }
    }

    fn due_entries(appended: &Appended, out: &mut Vec<DueEntry>) {
        if let Appended::Stored { deliveries, .. } = appended {
            out.extend(deliveries.iter().map(|d| DueEntry {
                due_ms: d.next_attempt_at_ms.unwrap_or(d.created_at_ms),
                delivery: d.id,
                account: d.account_id,
                event: d.event_id,
                destination: d.destination_id,
            }));
        }
    }

    fn append(
        &self,
        event: Event,
        destinations: Vec<DestinationId>,
        dedupe_window: Duration,
        queue: bool,
    ) -> impl Future<Output = Result<Appended, StoreError>> + Send + '_ {
        let hook = if queue {
            self.due_hook(Self::due_entries)
        } else {
            None
        };
        let work = move |batch: &mut super::journal::Batch<'_>| {
            let acc = event.account_id.raw();
            let now = event.received_at_ms;
            let hot = batch.hot()?;
            if let Some(key) = event.dedupe_key.as_deref() {
                let seen = hot
                    .dedupe
                    .get((event.source_id.raw(), key))?
                    .map(|v| v.value());
                if let Some((original, at_ms)) = seen {
                    if now.saturating_sub(at_ms) < dedupe_window.as_millis() as u64 {
                        return Ok(Appended::Duplicate {
                            event_id: EventId(original),
                        });
                    }
                }
                hot.dedupe
                    .insert((event.source_id.raw(), key), (event.id.raw(), now))?;
            }
            hot.events.insert(
                (acc, event.id.raw()),
                codec::encode_event(&event).as_slice(),
            )?;
            let mut deliveries = Vec::with_capacity(destinations.len());
            for destination_id in destinations {
                let d = Delivery {
                    // Increasing, so deliveries due in the same millisecond keep arrival order.
                    id: DeliveryId(next_raw_id()),
                    event_id: event.id,
                    account_id: event.account_id,
                    destination_id,
                    status: DeliveryStatus::Pending,
                    attempts: 0,
                    retry_base: 0,
                    next_attempt_at_ms: queue.then_some(now),
                    last_status_code: None,
                    created_at_ms: now,
                    updated_at_ms: now,
                };
                hot.deliveries.insert(
                    (event.id.raw(), d.id.raw()),
                    codec::encode_delivery(&d).as_slice(),
                )?;
                if queue {
                    hot.due.insert(
                        (now, d.id.raw()),
                        (acc, event.id.raw(), destination_id.raw()),
                    )?;
                }
                deliveries.push(d);
            }
            Ok(Appended::Stored {
                event_id: event.id,
                deliveries,
            })
        };
        self.journal.submit_then(work, hook)
    }

    /// Queues a first delivery of a stored event to `destination`, which the event was never
    /// routed to (a destination added after the event arrived: a backfill). Everything is
    /// checked inside the journal job, so two concurrent calls create one delivery: the second
    /// finds the first and returns it as [`Added::Exists`], for the caller to replay.
    pub async fn add_delivery(
        &self,
        account: AccountId,
        event: EventId,
        destination: DestinationId,
        at_ms: u64,
    ) -> Result<Added, StoreError> {
        let hook = self.due_hook(move |added: &Added, out: &mut Vec<DueEntry>| {
            if let Added::Created(d) = added {
                out.push(DueEntry {
                    due_ms: at_ms,
                    delivery: d.id,
                    account: d.account_id,
                    event: d.event_id,
                    destination: d.destination_id,
                });
            }
        });
        let work = move |batch: &mut super::journal::Batch<'_>| {
            let txn = batch.txn();
            if txn
                .open_table(EVENTS)?
                .get((account.raw(), event.raw()))?
                .is_none()
            {
                return Err(StoreError::NotFound("event"));
            }
            if txn
                .open_table(DESTINATIONS)?
                .get((account.raw(), destination.raw()))?
                .is_none()
            {
                return Err(StoreError::Invalid {
                    field: "destination_id".into(),
                    message: "no destination with this id in this account".into(),
                });
            }
            let mut deliveries = txn.open_table(DELIVERIES)?;
            if let Some(d) = read_deliveries(&deliveries, event)?
                .into_iter()
                .find(|d| d.destination_id == destination)
            {
                return Ok(Added::Exists(d));
            }
            let d = Delivery {
                id: DeliveryId(next_raw_id()),
                event_id: event,
                account_id: account,
                destination_id: destination,
                status: DeliveryStatus::Pending,
                attempts: 0,
                retry_base: 0,
                next_attempt_at_ms: Some(at_ms),
                last_status_code: None,
                created_at_ms: at_ms,
                updated_at_ms: at_ms,
            };
            deliveries.insert(
                (event.raw(), d.id.raw()),
                codec::encode_delivery(&d).as_slice(),
            )?;
            txn.open_table(super::tables::DUE)?.insert(
                (at_ms, d.id.raw()),
                (account.raw(), event.raw(), destination.raw()),
            )?;
            Ok(Added::Created(d))
        };
        self.journal.submit_then(work, hook).await
    }

    pub fn event(&self, account: AccountId, id: EventId) -> Result<Option<Event>, StoreError> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(EVENTS)?;
        let value = table.get((account.raw(), id.raw()))?;
        value
            .map(|v| codec::decode_event(v.value(), account, id).map_err(decode_err("events")))
            .transpose()
    }

    /// The deliveries of an event, oldest first.
    pub fn event_deliveries(&self, event: EventId) -> Result<Vec<Delivery>, StoreError> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(DELIVERIES)?;
        read_deliveries(&table, event)
    }

    /// Events of an account, newest first, starting below `before` (a raw event id).
    ///
    /// A page ends after `limit` matches or after scanning 10,000 events (`MAX_SCAN_PER_PAGE`),
    /// whichever comes first; `next_before` then says where the next page starts, so a
    /// selective filter over a large account pages through it instead of pinning one read
    /// transaction for the whole scan.
    pub fn list_events(
        &self,
        account: AccountId,
        filter: &EventFilter,
        before: Option<u128>,
        limit: usize,
    ) -> Result<EventPage, StoreError> {
        let mut page = EventPage {
            items: Vec::with_capacity(limit.min(256)),
            ..Default::default()
        };
        let low = filter.since_ms.map_or(0, raw_id_at_floor);
        let mut high = filter.until_ms.map_or(u128::MAX, |ms| {
            raw_id_at_floor(ms.saturating_add(1)).saturating_sub(1)
        });
        if let Some(b) = before {
            high = high.min(b.saturating_sub(1));
            if b == 0 {
                return Ok(page);
            }
        }
        if low > high {
            return Ok(page);
        }
        let txn = self.db.begin_read()?;
        let events = txn.open_table(EVENTS)?;
        let deliveries = txn.open_table(DELIVERIES)?;
        let range = events.range((account.raw(), low)..=(account.raw(), high))?;
        for (scanned, entry) in range.rev().enumerate() {
            let (k, v) = entry?;
            let id = EventId(k.value().1);
            if page.items.len() == limit || scanned == MAX_SCAN_PER_PAGE {
                // Another event exists below the last one looked at: resume there.
                page.next_before = Some(
                    page.items
                        .last()
                        .map(|(m, _)| m.id.raw())
                        .filter(|_| page.items.len() == limit)
                        .unwrap_or(page.last_scanned),
                );
                break;
            }
            page.last_scanned = id.raw();
            let meta =
                codec::decode_event_meta(v.value(), account, id).map_err(decode_err("events"))?;
            if filter.source_id.is_some_and(|s| s != meta.source_id)
                || filter
                    .event_type
                    .as_deref()
                    .is_some_and(|t| meta.event_type.as_deref() != Some(t))
                || filter
                    .dedupe_key
                    .as_deref()
                    .is_some_and(|k| meta.dedupe_key.as_deref() != Some(k))
            {
                continue;
            }
            let status = EventStatus::summarise(
                read_deliveries(&deliveries, id)?
                    .into_iter()
                    .map(|d| d.status),
            );
            if filter.status.is_some_and(|s| s != status) {
                continue;
            }
            page.items.push((meta, status));
        }
        Ok(page)
    }
}

/// A page of events, newest first.
#[derive(Debug, Default)]
pub struct EventPage {
    pub items: Vec<(EventMeta, EventStatus)>,
    /// Raw id to pass as `before` for the next page; `None` on the last page.
    pub next_before: Option<u128>,
    last_scanned: u128,
}

/// The smallest raw id created at `ms`.
fn raw_id_at_floor(ms: u64) -> u128 {
    u128::from(ms & 0xFFFF_FFFF_FFFF) << 80
}

fn read_deliveries(
    table: &impl ReadableTable<(u128, u128), &'static [u8]>,
    event: EventId,
) -> Result<Vec<Delivery>, StoreError> {
    let mut out = Vec::new();
    for entry in table.range((event.raw(), 0)..=(event.raw(), u128::MAX))? {
        let (k, v) = entry?;
        out.push(
            codec::decode_delivery(v.value(), event, DeliveryId(k.value().1))
                .map_err(decode_err("deliveries"))?,
        );
    }
    Ok(out)
}
