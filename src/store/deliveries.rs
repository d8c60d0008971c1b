//! Delivery progress: the queue as the scheduler loads it, attempt outcomes, replay, and the
//! reads behind `/v1/deliveries`, `/v1/events/{id}/attempts` and `/v1/notices`.
//!
//! [`Store::record_attempt`] writes everything one attempt changes in one journal job: the
//! immutable attempt record, the delivery's new state, its queue entry moved or removed, the
//! dead-letter index, the destination's health and, when a threshold is crossed, the
//! destination's disabling with its notice. Invariant kept here: a delivery that is pending
//! or retry-scheduled has exactly one `DUE` entry, at its `next_attempt_at_ms`.

use redb::{ReadableDatabase, ReadableTable, WriteTransaction};

use super::journal::Batch;
use super::tables::{
    ATTEMPTS, DEAD_LETTERS, DELIVERIES, DESTINATIONS, DESTINATION_HEALTH, DUE, NOTICES,
};
use super::{codec, decode, Page, Store, StoreError};
use crate::ids::{next_raw_id, AccountId, DeliveryId, DestinationId, EventId};
use crate::model::{Attempt, Delivery, DeliveryStatus, Destination, Notice};

/// A queued delivery as the scheduler sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DueEntry {
    pub due_ms: u64,
    pub delivery: DeliveryId,
    pub account: AccountId,
    pub event: EventId,
    pub destination: DestinationId,
}

/// What an attempt leads to, decided by the retry policy before the write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NextStep {
    Delivered,
    RetryAt(u64),
    DeadLetter,
}

/// An attempt's result, to be recorded.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub account: AccountId,
    pub event: EventId,
    pub delivery: DeliveryId,
    /// `attempt` is overwritten with the delivery's next attempt number inside the job.
    pub attempt: Attempt,
    pub next: NextStep,
    /// Disable the destination at once with this reason (410 Gone).
    pub disable_now: Option<String>,
}

/// Thresholds after which a failing destination is disabled automatically.
#[derive(Debug, Clone, Copy)]
pub struct HealthPolicy {
    /// Failing continuously for longer than this disables (0: never).
    pub failing_for_ms: u64,
    /// This many dead letters in a row disables (0: never).
    pub consecutive_dead_letters: u32,
}

/// What `record_attempt` did.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub delivery: Delivery,
    /// Set when this attempt disabled the destination.
    pub disabled: Option<String>,
}

fn decode_delivery(bytes: &[u8], event: EventId, id: DeliveryId) -> Result<Delivery, StoreError> {
    codec::decode_delivery(bytes, event, id).map_err(|source| StoreError::Codec {
        table: "deliveries",
        source,
    })
}

fn is_queued(status: DeliveryStatus) -> bool {
    matches!(
        status,
        DeliveryStatus::Pending | DeliveryStatus::RetryScheduled
    )
}

// === impl Store ===

impl Store {
    /// Every queued delivery (the scheduler's state at start). In-flight attempts of a stopped
    /// process are still queued, so they are attempted again: at-least-once.
    /// Visits queue entries in due order, starting at `from` (inclusive), in one short read
    /// transaction of at most `max_scan` entries. `visit` returns false to stop before
    /// consuming an entry. Returns the position of the first entry not consumed, to continue
    /// from, or `None` when the end of the queue was reached. The scheduler reads the queue
    /// this way so that neither memory nor a read transaction grows with the backlog.
    pub fn scan_due(
        &self,
        from: (u64, u128),
        max_scan: usize,
        mut visit: impl FnMut(DueEntry) -> bool,
    ) -> Result<Option<(u64, u128)>, StoreError> {
        let txn = self.db.begin_read()?;
        let due = txn.open_table(DUE)?;
        for (scanned, entry) in due.range(from..)?.enumerate() {
            let (k, v) = entry?;
            let (due_ms, delivery) = k.value();
            if scanned >= max_scan {
                return Ok(Some((due_ms, delivery)));
            }
            let (account, event, destination) = v.value();
            let entry = DueEntry {
                due_ms,
                delivery: DeliveryId(delivery),
                account: AccountId(account),
                event: EventId(event),
                destination: DestinationId(destination),
            };
            if !visit(entry) {
                return Ok(Some((due_ms, delivery)));
            }
        }
        Ok(None)
    }

    pub fn delivery(&self, event: EventId, id: DeliveryId) -> Result<Option<Delivery>, StoreError> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(DELIVERIES)?;
        let value = table.get((event.raw(), id.raw()))?;
        value
            .map(|v| decode_delivery(v.value(), event, id))
            .transpose()
    }

    /// Records one attempt and everything it changes, in one commit.
    pub async fn record_attempt(
        &self,
        outcome: Outcome,
        health: HealthPolicy,
    ) -> Result<Recorded, StoreError> {
        self.journal
            .submit(move |batch: &mut Batch<'_>| {
                let txn = batch.txn();
                apply_outcome(txn, outcome, health)
            })
            .await
    }

    /// The attempts of an event's deliveries, oldest first.
    pub fn attempts(&self, event: EventId) -> Result<Vec<Attempt>, StoreError> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(ATTEMPTS)?;
        let mut out = Vec::new();
        for entry in table.range((event.raw(), 0, 0)..=(event.raw(), u128::MAX, u32::MAX))? {
            let (_, v) = entry?;
            out.push(decode("attempt", v.value())?);
        }
        out.sort_by_key(|a: &Attempt| (a.started_at_ms, a.attempt));
        Ok(out)
    }

    /// Puts deliveries back in the queue: the i-th at `start_ms + i * spacing_ms`, with a
    /// fresh retry schedule. Missing deliveries are skipped. Returns the new queue entries.
    pub async fn replay(
        &self,
        account: AccountId,
        targets: Vec<(EventId, DeliveryId)>,
        start_ms: u64,
        spacing_ms: u64,
    ) -> Result<Vec<DueEntry>, StoreError> {
        let hook = self.due_hook(|entries: &Vec<DueEntry>, out: &mut Vec<DueEntry>| {
            out.extend_from_slice(entries);
        });
        self.journal
            .submit_then(
                move |batch: &mut Batch<'_>| {
                    let txn = batch.txn();
                    let mut deliveries = txn.open_table(DELIVERIES)?;
                    let mut due = txn.open_table(DUE)?;
                    let mut dead = txn.open_table(DEAD_LETTERS)?;
                    let mut out = Vec::with_capacity(targets.len());
                    for (i, (event, id)) in targets.into_iter().enumerate() {
                        let current = match deliveries.get((event.raw(), id.raw()))? {
                            Some(v) => decode_delivery(v.value(), event, id)?,
                            None => continue,
                        };
                        if current.account_id != account {
                            continue;
                        }
                        let mut d = current;
                        if is_queued(d.status) {
                            if let Some(at) = d.next_attempt_at_ms {
                                due.remove((at, id.raw()))?;
                            }
                        }
                        if d.status == DeliveryStatus::DeadLetter {
                            dead.remove((account.raw(), id.raw()))?;
                        }
                        let at = start_ms.saturating_add(spacing_ms.saturating_mul(i as u64));
                        d.status = DeliveryStatus::Pending;
                        d.retry_base = d.attempts;
                        d.next_attempt_at_ms = Some(at);
                        d.updated_at_ms = start_ms;
                        deliveries.insert(
                            (event.raw(), id.raw()),
                            codec::encode_delivery(&d).as_slice(),
                        )?;
                        due.insert(
                            (at, id.raw()),
                            (account.raw(), event.raw(), d.destination_id.raw()),
                        )?;
                        out.push(DueEntry {
                            due_ms: at,
                            delivery: id,
                            account,
                            event,
                            destination: d.destination_id,
                        });
                    }
                    Ok(out)
                },
                hook,
            )
            .await
    }

    /// Dead-lettered deliveries of an account, oldest first, optionally of one destination.
    pub fn dead_letters(
        &self,
        account: AccountId,
        destination: Option<DestinationId>,
        after: Option<u128>,
        limit: usize,
    ) -> Result<Page<Delivery>, StoreError> {
        let txn = self.db.begin_read()?;
        let index = txn.open_table(DEAD_LETTERS)?;
        let deliveries = txn.open_table(DELIVERIES)?;
        let start = after.map_or(0, |a| a.saturating_add(1));
        let mut page = Page {
            items: Vec::new(),
            has_more: false,
        };
        for entry in index.range((account.raw(), start)..=(account.raw(), u128::MAX))? {
            let (k, v) = entry?;
            let (event, dst) = v.value();
            if destination.is_some_and(|d| d.raw() != dst) {
                continue;
            }
            if page.items.len() == limit {
                page.has_more = true;
                break;
            }
            let id = DeliveryId(k.value().1);
            if let Some(bytes) = deliveries.get((event, id.raw()))? {
                page.items
                    .push(decode_delivery(bytes.value(), EventId(event), id)?);
            }
        }
        Ok(page)
    }

    /// Queued deliveries of an account in due order, optionally of one destination and one
    /// status, starting after the queue key `after`.
    ///
    /// The queue is one index for all accounts, so a page scans at most `scan_limit` entries;
    /// `next` is then the last key scanned, and the next page starts there. Another account's
    /// large backlog thus makes a listing take more pages, never hides this account's entries.
    pub fn queued_deliveries(
        &self,
        account: AccountId,
        filter: QueueFilter,
        after: Option<(u64, u128)>,
        limit: usize,
        scan_limit: usize,
    ) -> Result<QueuePage, StoreError> {
        let txn = self.db.begin_read()?;
        let due = txn.open_table(DUE)?;
        let deliveries = txn.open_table(DELIVERIES)?;
        let mut page = QueuePage {
            items: Vec::new(),
            next: None,
        };
        let entries = match after {
            Some((at, id)) => due.range((at, id)..)?,
            None => due.range::<(u64, u128)>(..)?,
        };
        let (mut last, mut scanned) = (after, 0);
        for entry in entries {
            let (k, v) = entry?;
            let key = k.value();
            if Some(key) == after {
                continue;
            }
            if scanned >= scan_limit.max(1) || page.items.len() == limit {
                page.next = last;
                break;
            }
            scanned += 1;
            last = Some(key);
            let (acc, event, dst) = v.value();
            if acc != account.raw() || filter.destination.is_some_and(|d| d.raw() != dst) {
                continue;
            }
            let id = DeliveryId(key.1);
            if let Some(bytes) = deliveries.get((event, id.raw()))? {
                let d = decode_delivery(bytes.value(), EventId(event), id)?;
                if filter.status.is_none_or(|s| s == d.status) {
                    page.items.push(d);
                }
            }
        }
        Ok(page)
    }

    /// Notices of an account, newest first.
    pub fn notices(&self, account: AccountId, limit: usize) -> Result<Vec<Notice>, StoreError> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(NOTICES)?;
        let mut out = Vec::new();
        for entry in table
            .range((account.raw(), 0)..=(account.raw(), u128::MAX))?
            .rev()
            .take(limit)
        {
            let (_, v) = entry?;
            out.push(decode("notice", v.value())?);
        }
        Ok(out)
    }
}

fn apply_outcome(
    txn: &WriteTransaction,
    outcome: Outcome,
    health: HealthPolicy,
) -> Result<Recorded, StoreError> {
    let (event, id, account) = (outcome.event, outcome.delivery, outcome.account);
    let mut deliveries = txn.open_table(DELIVERIES)?;
    let mut d = match deliveries.get((event.raw(), id.raw()))? {
        Some(v) => decode_delivery(v.value(), event, id)?,
        // Removed meanwhile (retention): nothing left to record against.
        None => return Err(StoreError::NotFound("delivery")),
    };
    let mut attempt = outcome.attempt;
    let now = attempt.started_at_ms.saturating_add(attempt.duration_ms);
    attempt.attempt = d.attempts.saturating_add(1);
    let succeeded = outcome.next == NextStep::Delivered;

    let mut due = txn.open_table(DUE)?;
    if is_queued(d.status) {
        if let Some(at) = d.next_attempt_at_ms {
            due.remove((at, id.raw()))?;
        }
    }
    d.attempts = attempt.attempt;
    d.last_status_code = attempt.status_code;
    d.updated_at_ms = now;
    match outcome.next {
        NextStep::Delivered => {
            d.status = DeliveryStatus::Delivered;
            d.next_attempt_at_ms = None;
        }
        NextStep::RetryAt(at) => {
            d.status = DeliveryStatus::RetryScheduled;
            d.next_attempt_at_ms = Some(at);
            due.insert(
                (at, id.raw()),
                (account.raw(), event.raw(), d.destination_id.raw()),
            )?;
        }
        NextStep::DeadLetter => {
            d.status = DeliveryStatus::DeadLetter;
            d.next_attempt_at_ms = None;
            txn.open_table(DEAD_LETTERS)?.insert(
                (account.raw(), id.raw()),
                (event.raw(), d.destination_id.raw()),
            )?;
        }
    }
    deliveries.insert(
        (event.raw(), id.raw()),
        codec::encode_delivery(&d).as_slice(),
    )?;
    drop((deliveries, due));
    txn.open_table(ATTEMPTS)?.insert(
        (event.raw(), id.raw(), attempt.attempt),
        codec::encode(&attempt).as_slice(),
    )?;

    // Destination health, written only when it changes.
    let key = (account.raw(), d.destination_id.raw());
    let mut table = txn.open_table(DESTINATION_HEALTH)?;
    let (since, dead) = table.get(key)?.map(|v| v.value()).unwrap_or((0, 0));
    let (next_since, next_dead) = if succeeded {
        (0, 0)
    } else {
        let since = if since == 0 {
            attempt.started_at_ms
        } else {
            since
        };
        let dead = if outcome.next == NextStep::DeadLetter {
            dead + 1
        } else {
            dead
        };
        (since, dead)
    };
    if (next_since, next_dead) != (since, dead) {
        table.insert(key, (next_since, next_dead))?;
    }
    drop(table);

    let reason = outcome.disable_now.or_else(|| {
        if succeeded {
            None
        } else if health.consecutive_dead_letters > 0
            && next_dead >= health.consecutive_dead_letters
        {
            Some(format!(
                "{next_dead} consecutive deliveries were dead-lettered"
            ))
        } else if health.failing_for_ms > 0
            && next_since > 0
            && now.saturating_sub(next_since) > health.failing_for_ms
        {
            Some(format!(
                "failing continuously since {}",
                humantime::format_rfc3339_seconds(
                    std::time::UNIX_EPOCH + std::time::Duration::from_millis(next_since)
                )
            ))
        } else {
            None
        }
    });
    let disabled = match reason {
        Some(reason) => {
            disable_destination(txn, account, d.destination_id, &reason, now)?.then_some(reason)
        }
        None => None,
    };
    Ok(Recorded {
        delivery: d,
        disabled,
    })
}

/// Disables an enabled destination and records the notice; false if it was already disabled
/// or is gone.
fn disable_destination(
    txn: &WriteTransaction,
    account: AccountId,
    destination: DestinationId,
    reason: &str,
    now: u64,
) -> Result<bool, StoreError> {
    let mut table = txn.open_table(DESTINATIONS)?;
    let key = (account.raw(), destination.raw());
    let mut d: Destination = match table.get(key)? {
        Some(v) => decode("destination", v.value())?,
        None => return Ok(false),
    };
    if !d.enabled {
        return Ok(false);
    }
    d.enabled = false;
    d.disabled_reason = Some(reason.to_owned());
    d.updated_at_ms = now;
    table.insert(key, codec::encode(&d).as_slice())?;
    drop(table);
    let notice = Notice {
        id: next_raw_id(),
        kind: "endpoint.disabled".into(),
        destination_id: Some(destination),
        message: format!("destination {} ({}) was disabled: {reason}", d.id, d.name),
        created_at_ms: now,
    };
    txn.open_table(NOTICES)?.insert(
        (account.raw(), notice.id),
        codec::encode(&notice).as_slice(),
    )?;
    // Health restarts from zero so re-enabling gives the destination a clean slate.
    txn.open_table(DESTINATION_HEALTH)?
        .remove((account.raw(), destination.raw()))?;
    Ok(true)
}

/// Which deliveries a bulk replay selects; every field narrows.
#[derive(Debug, Clone, Default)]
pub struct ReplayFilter {
    pub source_id: Option<crate::ids::SourceId>,
    pub destination_id: Option<DestinationId>,
    pub status: Option<DeliveryStatus>,
    pub event_type: Option<String>,
    pub since_ms: Option<u64>,
    pub until_ms: Option<u64>,
}

impl Store {
    /// The deliveries a bulk replay would touch, at most `max`; the flag says more matched.
    pub fn find_deliveries(
        &self,
        account: AccountId,
        filter: &ReplayFilter,
        max: usize,
    ) -> Result<(Vec<Delivery>, bool), StoreError> {
        let txn = self.db.begin_read()?;
        let events = txn.open_table(super::tables::EVENTS)?;
        let deliveries = txn.open_table(DELIVERIES)?;
        let mut out = Vec::new();
        let wanted = |meta: &crate::model::EventMeta| {
            filter.source_id.is_none_or(|s| s == meta.source_id)
                && filter
                    .event_type
                    .as_deref()
                    .is_none_or(|t| meta.event_type.as_deref() == Some(t))
                && filter.since_ms.is_none_or(|s| meta.received_at_ms >= s)
                && filter.until_ms.is_none_or(|u| meta.received_at_ms <= u)
        };
        let keep = |d: &Delivery| {
            filter.destination_id.is_none_or(|x| x == d.destination_id)
                && filter.status.is_none_or(|s| s == d.status)
        };
        if filter.status == Some(DeliveryStatus::DeadLetter) {
            // The dead-letter index is far smaller than the event log.
            let index = txn.open_table(DEAD_LETTERS)?;
            for entry in index.range((account.raw(), 0)..=(account.raw(), u128::MAX))? {
                let (k, v) = entry?;
                let (event, _) = v.value();
                let id = DeliveryId(k.value().1);
                let Some(meta) = events.get((account.raw(), event))? else {
                    continue;
                };
                let meta = codec::decode_event_meta(meta.value(), account, EventId(event))
                    .map_err(|source| StoreError::Codec {
                        table: "events",
                        source,
                    })?;
                if !wanted(&meta) {
                    continue;
                }
                if let Some(bytes) = deliveries.get((event, id.raw()))? {
                    let d = decode_delivery(bytes.value(), EventId(event), id)?;
                    if keep(&d) {
                        if out.len() == max {
                            return Ok((out, true));
                        }
                        out.push(d);
                    }
                }
            }
            return Ok((out, false));
        }
        let low = filter.since_ms.map_or(0, |ms| u128::from(ms) << 80);
        for entry in events.range((account.raw(), low)..=(account.raw(), u128::MAX))? {
            let (k, v) = entry?;
            let event = EventId(k.value().1);
            let meta = codec::decode_event_meta(v.value(), account, event).map_err(|source| {
                StoreError::Codec {
                    table: "events",
                    source,
                }
            })?;
            if filter.until_ms.is_some_and(|u| meta.received_at_ms > u) {
                break;
            }
            if !wanted(&meta) {
                continue;
            }
            for d in deliveries.range((event.raw(), 0)..=(event.raw(), u128::MAX))? {
                let (dk, dv) = d?;
                let d = decode_delivery(dv.value(), event, DeliveryId(dk.value().1))?;
                if keep(&d) {
                    if out.len() == max {
                        return Ok((out, true));
                    }
                    out.push(d);
                }
            }
        }
        Ok((out, false))
    }
}

/// What [`Store::queued_deliveries`] lists.
#[derive(Debug, Clone, Copy, Default)]
pub struct QueueFilter {
    pub destination: Option<DestinationId>,
    /// One status (`Pending` or `RetryScheduled`); `None`: every queued delivery.
    pub status: Option<DeliveryStatus>,
}

/// A page of the queue; `next` is where the following page starts, if there is one.
#[derive(Debug, Clone)]
pub struct QueuePage {
    pub items: Vec<Delivery>,
    pub next: Option<(u64, u128)>,
}

/// Queue and storage figures for `/metrics`, read at scrape time.
#[derive(Debug, Clone, Copy, Default)]
pub struct QueueStats {
    /// Queued deliveries (pending or retry-scheduled, including those being attempted).
    pub queued: u64,
    /// Queued deliveries already due at `now` (counted up to the cap).
    pub due_now: u64,
    /// When the longest-waiting queued delivery became due.
    pub oldest_due_ms: Option<u64>,
    pub dead_letters: u64,
    pub disabled_destinations: u64,
    pub file_bytes: u64,
}

impl Store {
    /// Figures for `/metrics`. Table lengths are O(1) in redb; due-now entries are counted by
    /// a range scan bounded by `due_scan_cap`, so a huge backlog cannot make a scrape slow.
    pub fn queue_stats(&self, now_ms: u64, due_scan_cap: usize) -> Result<QueueStats, StoreError> {
        use redb::ReadableTableMetadata;
        let txn = self.db.begin_read()?;
        let due = txn.open_table(DUE)?;
        let dead = txn.open_table(DEAD_LETTERS)?;
        let destinations = txn.open_table(DESTINATIONS)?;
        let oldest_due_ms = due.first()?.map(|(k, _)| k.value().0);
        let due_now = due
            .range((0, 0)..=(now_ms, u128::MAX))?
            .take(due_scan_cap)
            .count() as u64;
        let mut disabled_destinations = 0;
        for entry in destinations.iter()? {
            let (_, v) = entry?;
            let d: Destination = decode("destination", v.value())?;
            if !d.enabled {
                disabled_destinations += 1;
            }
        }
        Ok(QueueStats {
            queued: due.len()?,
            due_now,
            oldest_due_ms,
            dead_letters: dead.len()?,
            disabled_destinations,
            file_bytes: std::fs::metadata(&self.path).map_or(0, |m| m.len()),
        })
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::ids::{raw_id_at, SourceId};
    use crate::model::{Event, Origin};
    use crate::store::events::Appended;

    async fn queue(store: &Store, account: AccountId, at_ms: u64, to: DestinationId) -> DeliveryId {
        let event = Event {
            id: EventId(raw_id_at(at_ms)),
            account_id: account,
            source_id: SourceId::new(),
            origin: Origin::Inbound,
            received_at_ms: at_ms,
            event_type: None,
            dedupe_key: None,
            content_type: None,
            headers: vec![],
            body: bytes::Bytes::from_static(b"{}"),
        };
        match store.append_event(event, vec![to], Duration::ZERO).await {
            Ok(Appended::Stored { deliveries, .. }) => deliveries[0].id,
            other => panic!("{other:?}"),
        }
    }

    /// Another account's backlog in front of ours costs pages, and never hides our entries.
    #[tokio::test]
    async fn queue_pages_reach_past_another_accounts_backlog() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open_for_test(dir.path());
        let (busy, ours) = (AccountId::new(), AccountId::new());
        let (theirs_dst, our_dst, other_dst) = (
            DestinationId::new(),
            DestinationId::new(),
            DestinationId::new(),
        );
        for n in 0..30 {
            queue(&store, busy, 1_000 + n, theirs_dst).await;
        }
        let mut expected = Vec::new();
        for n in 0..3 {
            expected.push(queue(&store, ours, 2_000 + n, our_dst).await);
        }
        queue(&store, ours, 3_000, other_dst).await;

        let filter = QueueFilter {
            destination: Some(our_dst),
            status: None,
        };
        let (mut seen, mut after, mut pages) = (Vec::new(), None, 0);
        loop {
            let page = store.queued_deliveries(ours, filter, after, 2, 8).unwrap();
            assert!(page.items.len() <= 2);
            seen.extend(page.items.iter().map(|d| d.id));
            pages += 1;
            match page.next {
                Some(next) => after = Some(next),
                None => break,
            }
        }
        assert_eq!(seen, expected, "each of ours once, in due order");
        assert!(
            pages >= 4,
            "30 foreign entries at 8 per page take pages: {pages}"
        );

        // Retry-scheduled only: none of ours are.
        let retrying = QueueFilter {
            destination: None,
            status: Some(DeliveryStatus::RetryScheduled),
        };
        let page = store
            .queued_deliveries(ours, retrying, None, 10, 1_000)
            .unwrap();
        assert!(page.items.is_empty() && page.next.is_none());
    }

    /// Deliveries due in the same millisecond keep the order they were written in: the queue
    /// index is `(due, delivery id)`, so random id bits would shuffle them.
    #[tokio::test]
    async fn deliveries_due_in_one_millisecond_queue_in_the_order_they_were_written() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open_for_test(dir.path());
        let (account, to) = (AccountId::new(), DestinationId::new());
        let mut written = Vec::new();
        for _ in 0..100 {
            written.push(queue(&store, account, 5_000, to).await);
        }
        let mut queued = Vec::new();
        store
            .scan_due((0, 0), usize::MAX, |e| {
                queued.push(e.delivery);
                true
            })
            .unwrap();
        assert_eq!(queued, written);
    }
}
