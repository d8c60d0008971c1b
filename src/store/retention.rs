//! Retention: removing events older than their account's retention, and the account settings
//! that choose it.
//!
//! [`Store::purge_expired`] is one journal job (journal invariant 1) that walks each account's
//! expired key range in `EVENTS` — event ids are time-ordered, so "received before the cutoff"
//! is the range `(account, 0)..(account, cutoff_ms << 80)` — and removes what it may.
//!
//! Invariants:
//! 1. An event with a delivery that is not settled (delivered or dead-lettered) is never
//!    removed, whatever its age: a pending, retry-scheduled or in-flight delivery is still owed
//!    to a destination, and its `DUE` entry points at it. The one exception is a test send's
//!    delivery (never queued: pending with no next attempt) whose one attempt never recorded
//!    an outcome because the process stopped: nothing will ever attempt it, nothing owes it.
//! 2. An event goes together with everything keyed by it, in one job: its deliveries, their
//!    attempts, their dead-letter index entries, and its dedupe entry if that still names it.
//!    No reader ever sees a delivery or an attempt whose event is gone.
//! 3. One job examines at most `max_events` expired events, removed or kept, so a long run of
//!    kept events (a disabled destination's backlog) cannot hold the writer; [`PurgeCursor`]
//!    lets the next job resume where this one stopped.
//! 4. A record that cannot be decoded is kept and counted, never an error: a failing job would
//!    doom the ingest writes sharing its batch (journal invariant 4), at every run.
//!
//! Not done here: deciding when to run (`crate::cleaner`); giving freed pages back to the
//! filesystem (redb reuses them for later writes, `hookgate compact` shrinks the file offline,
//! see `store::admin`); notices and destination health, which are per destination, not per
//! event, and stay small.

use std::time::Duration;

use redb::{ReadableTable, WriteTransaction};

use super::journal::Batch;
use super::tables::{ACCOUNTS, ATTEMPTS, DEAD_LETTERS, DEDUPE, DELIVERIES, DESTINATIONS, EVENTS};
use super::{codec, decode, Store, StoreError};
use crate::ids::{AccountId, DeliveryId, DestinationId, EventId};
use crate::model::{Account, DeliveryStatus};

/// Upper bound of a per-account `retention_days`, the same as `[retention] days`.
pub const MAX_RETENTION_DAYS: u32 = 36_500;

const MS_PER_DAY: u64 = 24 * 3600 * 1000;

/// Where a purge sweep resumes: the first event key not yet examined. The default starts a
/// sweep at the beginning.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PurgeCursor {
    account: u128,
    event: u128,
}

/// What one [`Store::purge_expired`] job did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PurgeReport {
    pub events: u64,
    pub deliveries: u64,
    pub attempts: u64,
    /// Expired events kept because a delivery of theirs is not settled yet (invariant 1).
    pub kept: u64,
    /// Expired records kept because they could not be decoded (invariant 4).
    pub unreadable: u64,
    /// Where the next job resumes; `None` once every account's expired range was examined.
    pub next: Option<PurgeCursor>,
}

impl PurgeReport {
    /// Adds `other`'s counts to these (the cursor is left alone).
    pub fn add(&mut self, other: &PurgeReport) {
        self.events += other.events;
        self.deliveries += other.deliveries;
        self.attempts += other.attempts;
        self.kept += other.kept;
        self.unreadable += other.unreadable;
    }
}

/// A change to an account's settings. For each field `None` leaves it as it is and `Some(None)`
/// clears it.
#[derive(Debug, Clone, Default)]
pub struct AccountSettings {
    pub notification_destination_id: Option<Option<DestinationId>>,
    /// `Some(Some(0))` keeps the account's events for ever; `Some(None)` returns it to the
    /// global default.
    pub retention_days: Option<Option<u32>>,
}

/// An expired event, as far as the purge needs it.
struct Expired {
    event: u128,
    /// `(source_raw, dedupe_key)`, if the event has a dedupe key.
    dedupe: Option<(u128, String)>,
}

// === impl Store ===

impl Store {
    /// Removes, in one journal job, expired events whose deliveries are all settled, with
    /// everything keyed by them (module invariants). An account's retention is its
    /// `retention_days`, else `default_retention`; zero keeps everything. Examines at most
    /// `max_events` expired events starting at `from`; call again with `next` until it is
    /// `None` to complete a sweep.
    pub async fn purge_expired(
        &self,
        now_ms: u64,
        default_retention: Duration,
        max_events: usize,
        from: PurgeCursor,
    ) -> Result<PurgeReport, StoreError> {
        let max_events = max_events.max(1);
        self.journal
            .submit(move |batch: &mut Batch<'_>| {
                purge(batch.txn(), now_ms, default_retention, max_events, from)
            })
            .await
    }

    /// Applies `settings` to the account in one journal job; checks, before writing, that a
    /// notification destination exists in the account and that the retention is in bounds.
    pub async fn update_account_settings(
        &self,
        id: AccountId,
        settings: AccountSettings,
    ) -> Result<Account, StoreError> {
        self.journal
            .submit(move |batch: &mut Batch<'_>| {
                let txn = batch.txn();
                if let Some(Some(days)) = settings.retention_days {
                    if days > MAX_RETENTION_DAYS {
                        return Err(StoreError::invalid(
                            "retention_days",
                            format!("must be at most {MAX_RETENTION_DAYS}"),
                        ));
                    }
                }
                if let Some(Some(d)) = settings.notification_destination_id {
                    if txn
                        .open_table(DESTINATIONS)?
                        .get((id.raw(), d.raw()))?
                        .is_none()
                    {
                        return Err(StoreError::invalid(
                            "notification_destination_id",
                            "no such destination",
                        ));
                    }
                }
                let mut table = txn.open_table(ACCOUNTS)?;
                let mut account: Account = match table.get(id.raw())? {
                    Some(v) => decode("account", v.value())?,
                    None => return Err(StoreError::NotFound("account")),
                };
                if let Some(d) = settings.notification_destination_id {
                    account.notification_destination_id = d;
                }
                if let Some(days) = settings.retention_days {
                    account.retention_days = days;
                }
                table.insert(id.raw(), codec::encode(&account).as_slice())?;
                Ok(account)
            })
            .await
    }
}

/// The purge job's body.
fn purge(
    txn: &WriteTransaction,
    now_ms: u64,
    default_retention: Duration,
    max_events: usize,
    from: PurgeCursor,
) -> Result<PurgeReport, StoreError> {
    let mut report = PurgeReport::default();
    // Each account's end of range (exclusive), read before any table below is opened.
    let mut ranges = Vec::new();
    for entry in txn.open_table(ACCOUNTS)?.range(from.account..)? {
        let (k, v) = entry?;
        let Ok(account) = codec::decode::<Account>(v.value()) else {
            report.unreadable += 1;
            continue;
        };
        let retention_ms = match account.retention_days {
            Some(days) => u64::from(days) * MS_PER_DAY,
            None => u64::try_from(default_retention.as_millis()).unwrap_or(u64::MAX),
        };
        let cutoff_ms = now_ms.saturating_sub(retention_ms);
        if retention_ms > 0 && cutoff_ms > 0 {
            ranges.push((k.value(), raw_id_floor(cutoff_ms)));
        }
    }

    let mut events = txn.open_table(EVENTS)?;
    let mut deliveries = txn.open_table(DELIVERIES)?;
    let mut attempts = txn.open_table(ATTEMPTS)?;
    let mut dead_letters = txn.open_table(DEAD_LETTERS)?;
    let mut dedupe = txn.open_table(DEDUPE)?;
    let mut budget = max_events;
    for (account, end) in ranges {
        let start = if account == from.account {
            from.event
        } else {
            0
        };
        if start >= end {
            continue;
        }
        let mut expired = Vec::new();
        let mut last = None;
        for entry in events.range((account, start)..(account, end))?.take(budget) {
            let (k, v) = entry?;
            let event = k.value().1;
            last = Some(event);
            budget -= 1;
            match codec::decode_event_meta(v.value(), AccountId(account), EventId(event)) {
                Ok(meta) => expired.push(Expired {
                    event,
                    dedupe: meta.dedupe_key.map(|key| (meta.source_id.raw(), key)),
                }),
                Err(_) => report.unreadable += 1,
            }
        }
        for e in expired {
            let mut owned = Vec::new();
            let mut settled = true;
            for entry in deliveries.range((e.event, 0)..=(e.event, u128::MAX))? {
                let (k, v) = entry?;
                let id = k.value().1;
                match codec::decode_delivery(v.value(), EventId(e.event), DeliveryId(id)) {
                    Ok(d) => {
                        let abandoned_test_send =
                            d.status == DeliveryStatus::Pending && d.next_attempt_at_ms.is_none();
                        settled &= abandoned_test_send
                            || matches!(
                                d.status,
                                DeliveryStatus::Delivered | DeliveryStatus::DeadLetter
                            );
                        owned.push(id);
                    }
                    Err(_) => {
                        report.unreadable += 1;
                        settled = false;
                    }
                }
            }
            if !settled {
                report.kept += 1;
                continue;
            }
            events.remove((account, e.event))?;
            for id in &owned {
                deliveries.remove((e.event, *id))?;
                // Only dead letters have an index entry; removing an absent key is a no-op.
                dead_letters.remove((account, *id))?;
            }
            report.deliveries += owned.len() as u64;
            for removed in attempts
                .extract_from_if((e.event, 0, 0)..=(e.event, u128::MAX, u32::MAX), |_, _| {
                    true
                })?
            {
                removed?;
                report.attempts += 1;
            }
            if let Some((source, key)) = e.dedupe {
                // A later event may have taken the key over once the window passed.
                let points_here = dedupe
                    .get((source, key.as_str()))?
                    .is_some_and(|v| v.value().0 == e.event);
                if points_here {
                    dedupe.remove((source, key.as_str()))?;
                }
            }
            report.events += 1;
        }
        if let (0, Some(event)) = (budget, last) {
            // `event` is below the cutoff's id, so it is not `u128::MAX`.
            report.next = Some(PurgeCursor {
                account,
                event: event.saturating_add(1),
            });
            return Ok(report);
        }
    }
    Ok(report)
}

/// The smallest raw id created at `ms` (ids are `ms << 80 | random`).
fn raw_id_floor(ms: u64) -> u128 {
    u128::from(ms & 0xFFFF_FFFF_FFFF) << 80
}

#[cfg(test)]
mod tests {
    use redb::{Key, ReadableDatabase, ReadableTableMetadata, TableDefinition, Value};

    use super::*;
    use crate::ids::{raw_id_at, SourceId};
    use crate::model::{Attempt, Delivery, Event, Origin};
    use crate::store::deliveries::{HealthPolicy, NextStep, Outcome};
    use crate::store::events::Appended;

    const HOUR_MS: u64 = 3600 * 1000;
    const NOW: u64 = 1_750_000_000_000;

    struct Fixture {
        store: Store,
        _dir: tempfile::TempDir,
    }

    async fn fixture() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open_for_test(dir.path());
        Fixture { store, _dir: dir }
    }

    async fn account(store: &Store, retention_days: Option<u32>) -> AccountId {
        let account = Account {
            id: AccountId::new(),
            name: "acme".into(),
            created_at_ms: NOW,
            notification_destination_id: None,
            retention_days,
        };
        let id = account.id;
        store
            .journal()
            .submit(move |batch| {
                batch
                    .txn()
                    .open_table(ACCOUNTS)?
                    .insert(account.id.raw(), codec::encode(&account).as_slice())?;
                Ok(())
            })
            .await
            .unwrap();
        id
    }

    /// Stores an event received at `at_ms` with one pending delivery per destination.
    async fn event(
        store: &Store,
        account: AccountId,
        source: SourceId,
        at_ms: u64,
        dedupe_key: Option<&str>,
        destinations: usize,
    ) -> (EventId, Vec<Delivery>) {
        let event = Event {
            id: EventId(raw_id_at(at_ms)),
            account_id: account,
            source_id: source,
            origin: Origin::Inbound,
            received_at_ms: at_ms,
            event_type: None,
            dedupe_key: dedupe_key.map(str::to_owned),
            content_type: None,
            headers: vec![],
            body: bytes::Bytes::from_static(b"{}"),
        };
        let to = (0..destinations).map(|_| DestinationId::new()).collect();
        match store.append_event(event, to, Duration::ZERO).await.unwrap() {
            Appended::Stored {
                event_id,
                deliveries,
            } => (event_id, deliveries),
            Appended::Duplicate { .. } => panic!("no dedupe window in these tests"),
        }
    }

    async fn attempt(store: &Store, d: &Delivery, next: NextStep) {
        let outcome = Outcome {
            account: d.account_id,
            event: d.event_id,
            delivery: d.id,
            attempt: Attempt {
                attempt: 0,
                delivery_id: d.id,
                destination_id: d.destination_id,
                started_at_ms: d.created_at_ms,
                duration_ms: 5,
                status_code: Some(200),
                error: None,
                response_body: String::new(),
            },
            next,
            disable_now: None,
        };
        let health = HealthPolicy {
            failing_for_ms: 0,
            consecutive_dead_letters: 0,
        };
        store.record_attempt(outcome, health).await.unwrap();
    }

    fn len<K: Key + 'static, V: Value + 'static>(
        store: &Store,
        table: TableDefinition<K, V>,
    ) -> u64 {
        let txn = store.db.begin_read().unwrap();
        txn.open_table(table).unwrap().len().unwrap()
    }

    /// What `POST /v1/destinations/{id}/test` writes before its one attempt.
    async fn test_send(store: &Store, account: AccountId, at_ms: u64) -> EventId {
        let event = Event {
            id: EventId(raw_id_at(at_ms)),
            account_id: account,
            source_id: SourceId(0),
            origin: Origin::Outbound,
            received_at_ms: at_ms,
            event_type: Some("hookgate.test".into()),
            dedupe_key: None,
            content_type: None,
            headers: vec![],
            body: bytes::Bytes::from_static(b"{}"),
        };
        let d = store
            .append_unqueued_event(event, DestinationId::new())
            .await
            .unwrap();
        assert_eq!(
            (d.status, d.next_attempt_at_ms),
            (DeliveryStatus::Pending, None)
        );
        d.event_id
    }

    /// Runs jobs of `max_events` until the sweep completes; returns the total and the jobs run.
    async fn sweep(store: &Store, default: Duration, max_events: usize) -> (PurgeReport, usize) {
        let (mut total, mut cursor, mut jobs) = (PurgeReport::default(), PurgeCursor::default(), 0);
        loop {
            let pass = store
                .purge_expired(NOW, default, max_events, cursor)
                .await
                .unwrap();
            jobs += 1;
            assert!(
                (pass.events + pass.kept + pass.unreadable) as usize <= max_events,
                "{pass:?}"
            );
            total.add(&pass);
            match pass.next {
                Some(next) => cursor = next,
                None => return (total, jobs),
            }
        }
    }

    #[tokio::test]
    async fn only_settled_expired_events_go_and_take_everything_keyed_by_them() {
        let f = fixture().await;
        let s = &f.store;
        let acc = account(s, None).await;
        let src = SourceId::new();
        let old = NOW - 2 * HOUR_MS;

        let (received, _) = event(s, acc, src, old, Some("a"), 0).await;
        let (delivered, d) = event(s, acc, src, old, None, 1).await;
        attempt(s, &d[0], NextStep::RetryAt(old + 1)).await;
        attempt(s, &d[0], NextStep::Delivered).await;
        let (dead, d) = event(s, acc, src, old, None, 1).await;
        attempt(s, &d[0], NextStep::DeadLetter).await;
        let (pending, _) = event(s, acc, src, old, None, 1).await;
        let (retrying, d) = event(s, acc, src, old, None, 1).await;
        attempt(s, &d[0], NextStep::RetryAt(NOW + HOUR_MS)).await;
        let (half_done, d) = event(s, acc, src, old, None, 2).await;
        attempt(s, &d[0], NextStep::Delivered).await;
        // Its dedupe key was taken over by the recent event below, whose entry must survive.
        let (superseded, _) = event(s, acc, src, old, Some("b"), 0).await;
        // A test send whose attempt never got recorded (the process stopped mid-attempt).
        let abandoned = test_send(s, acc, old).await;
        let (recent, d) = event(s, acc, src, NOW - 60_000, Some("b"), 1).await;
        attempt(s, &d[0], NextStep::Delivered).await;
        assert_eq!(len(s, DEAD_LETTERS), 1);

        let (report, _) = sweep(s, Duration::from_secs(3600), 1000).await;

        assert_eq!(
            (report.events, report.deliveries, report.attempts),
            (5, 3, 3),
            "{report:?}"
        );
        assert_eq!((report.kept, report.unreadable), (3, 0), "{report:?}");
        for gone in [received, delivered, dead, superseded, abandoned] {
            assert!(s.event(acc, gone).unwrap().is_none());
            assert!(s.event_deliveries(gone).unwrap().is_empty());
            assert!(s.attempts(gone).unwrap().is_empty());
        }
        for kept in [pending, retrying, half_done, recent] {
            assert!(s.event(acc, kept).unwrap().is_some());
        }
        assert_eq!(s.event_deliveries(half_done).unwrap().len(), 2);
        assert_eq!(s.attempts(half_done).unwrap().len(), 1);
        assert_eq!(s.attempts(retrying).unwrap().len(), 1);
        assert_eq!(len(s, DEAD_LETTERS), 0);
        // Queue entries of the kept deliveries are untouched: pending, retrying, half_done.
        assert_eq!(len(s, super::super::tables::DUE), 3);
        let txn = s.db.begin_read().unwrap();
        let dedupe = txn.open_table(DEDUPE).unwrap();
        assert!(dedupe.get((src.raw(), "a")).unwrap().is_none());
        let b = dedupe.get((src.raw(), "b")).unwrap().map(|v| v.value().0);
        assert_eq!(b, Some(recent.raw()));
    }

    #[tokio::test]
    async fn account_retention_overrides_the_default_and_zero_keeps_everything() {
        let f = fixture().await;
        let s = &f.store;
        let src = SourceId::new();
        let forever = account(s, Some(0)).await;
        let one_day = account(s, Some(1)).await;
        let default = account(s, None).await;
        let mut ids = Vec::new();
        for acc in [forever, one_day, default] {
            let (two_days, _) = event(s, acc, src, NOW - 48 * HOUR_MS, None, 0).await;
            let (one_hour, _) = event(s, acc, src, NOW - HOUR_MS, None, 0).await;
            ids.push((acc, two_days, one_hour));
        }

        let (report, _) = sweep(s, Duration::from_secs(60), 1000).await;

        assert_eq!(report.events, 3, "{report:?}");
        let present = |(acc, id): (AccountId, EventId)| s.event(acc, id).unwrap().is_some();
        let [f, d1, dflt] = [ids[0], ids[1], ids[2]];
        assert!(
            present((f.0, f.1)) && present((f.0, f.2)),
            "0 keeps everything"
        );
        assert!(!present((d1.0, d1.1)) && present((d1.0, d1.2)), "1 day");
        assert!(
            !present((dflt.0, dflt.1)) && !present((dflt.0, dflt.2)),
            "default 60 s"
        );

        // A zero default keeps everything too.
        let (report, _) = sweep(s, Duration::ZERO, 1000).await;
        assert_eq!(report, PurgeReport::default());
    }

    #[tokio::test]
    async fn jobs_are_bounded_and_the_cursor_moves_past_kept_events() {
        let f = fixture().await;
        let s = &f.store;
        let src = SourceId::new();
        let first = account(s, None).await;
        let second = account(s, None).await;
        let old = NOW - 2 * HOUR_MS;
        // Kept events first, in key order: a job that started over from the beginning of the
        // range every time would never reach the removable ones behind them.
        for i in 0..5 {
            event(s, first, src, old + i, None, 1).await;
        }
        for i in 5..10 {
            event(s, first, src, old + i, None, 0).await;
        }
        for i in 0..4 {
            event(s, second, src, old + i, None, 0).await;
        }

        let (report, jobs) = sweep(s, Duration::from_secs(3600), 3).await;

        assert_eq!((report.events, report.kept), (9, 5), "{report:?}");
        // 14 events examined, 3 per job: 5 jobs, the last one finding the end.
        assert_eq!(jobs, 5);
        let (again, _) = sweep(s, Duration::from_secs(3600), 3).await;
        assert_eq!((again.events, again.kept), (0, 5), "{again:?}");
    }

    #[tokio::test]
    async fn account_settings_change_only_the_fields_given() {
        let f = fixture().await;
        let s = &f.store;
        let acc = account(s, None).await;
        let set = |days: Option<Option<u32>>| AccountSettings {
            notification_destination_id: None,
            retention_days: days,
        };

        let a = s
            .update_account_settings(acc, set(Some(Some(7))))
            .await
            .unwrap();
        assert_eq!(a.retention_days, Some(7));
        let a = s.update_account_settings(acc, set(None)).await.unwrap();
        assert_eq!(a.retention_days, Some(7), "absent leaves it");
        let err = s
            .update_account_settings(acc, set(Some(Some(MAX_RETENTION_DAYS + 1))))
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::Invalid { .. }), "{err:?}");
        assert_eq!(s.account(acc).unwrap().unwrap().retention_days, Some(7));
        let a = s
            .update_account_settings(acc, set(Some(None)))
            .await
            .unwrap();
        assert_eq!(a.retention_days, None, "null clears it");
        let missing = AccountSettings {
            notification_destination_id: Some(Some(DestinationId::new())),
            retention_days: Some(Some(1)),
        };
        let err = s.update_account_settings(acc, missing).await.unwrap_err();
        assert!(matches!(err, StoreError::Invalid { .. }), "{err:?}");
        assert_eq!(s.account(acc).unwrap().unwrap().retention_days, None);
    }
}
