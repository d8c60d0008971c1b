//! One destination's lane: what may be sent to it now.
//!
//! A lane holds the queued deliveries of its destination that are next in line, up to a window
//! (the earliest due; with FIFO ordering the first in event order), the rest staying on disk
//! only until the lane runs low, and decides, from the destination's settings, which of them
//! to start: at most `max_in_flight` at once (one with FIFO ordering,
//! one while the circuit is open), no faster than `rate_limit_per_s`, nothing while the
//! destination is disabled. With FIFO ordering the lane starts deliveries in event order and
//! only the head may run, so a failing head holds back that destination alone. Lanes do no I/O;
//! the scheduler owns them and runs what they hand out.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::num::NonZeroU32;
use std::sync::Arc;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};

use crate::model::{Destination, Ordering};
use crate::store::deliveries::DueEntry;

/// Concurrency for a destination that no longer exists: its deliveries are only being
/// dead-lettered, which needs no protection.
const ORPHAN_CONCURRENCY: usize = 16;

/// Position in the lane: `(due_ms, delivery)` unordered, `(event, delivery)` for FIFO.
type Key = (u128, u128);

/// A position in the store's queue index, which is in due order: `(due_ms, delivery)`.
pub type QueuePos = (u64, u128);

/// The smallest key: with it as `fifo_limit`, every delivery may be on disk only.
const FIRST_KEY: Key = (0, 0);

/// A FIFO lane's pass over the whole queue index for its next deliveries in event order. The
/// index is in due order, which is not event order (a retrying head is due later than what
/// follows it, a backfill or replay of an old event is due now), so the entries a FIFO lane
/// needs next can be anywhere in it: every pass reads all of it, in steps.
struct FifoScan {
    /// `fifo_limit` when the pass began: it collects the keys from there on.
    from: Key,
    /// Where its next step reads the index from.
    next: QueuePos,
    /// The smallest keys found so far, at most a window of them.
    found: BTreeMap<Key, DueEntry>,
    /// The smallest key let go to stay within the window: from it on, deliveries stay on disk
    /// only after this pass.
    cut: Option<Key>,
    /// Deliveries announced while the pass runs: what the pass reads of them may be older.
    announced: HashSet<u128>,
}

impl FifoScan {
    fn new(from: Key) -> Self {
        Self {
            from,
            next: (0, 0),
            found: BTreeMap::new(),
            cut: None,
            announced: HashSet::new(),
        }
    }

    fn offer(&mut self, key: Key, entry: DueEntry, window: usize) {
        if key < self.from {
            return;
        }
        self.found.insert(key, entry);
        if self.found.len() > window {
            if let Some((last, _)) = self.found.pop_last() {
                self.cut = Some(self.cut.map_or(last, |c| c.min(last)));
            }
        }
    }
}

pub struct Lane {
    /// `None` when the destination was deleted.
    destination: Option<Arc<Destination>>,
    pending: BTreeMap<Key, DueEntry>,
    keys: HashMap<u128, Key>,
    in_flight: usize,
    limiter: Option<DefaultDirectRateLimiter>,
    consecutive_failures: u32,
    circuit_threshold: u32,
    /// Settings could not be read; nothing starts until they are.
    paused: bool,
    /// Most entries a lane holds (pinned ones aside). A destination that is down or slow can
    /// gather a backlog of millions; held in memory, it would grow without bound and be loaded
    /// again at every start.
    window: usize,
    /// Unordered lanes: some of this destination's deliveries, those at or after this position
    /// of the queue index, may be on disk only. The lane holds nothing from there on and loads
    /// more as it runs low.
    resume: Option<QueuePos>,
    /// FIFO lanes: every queued delivery whose key (event order) is below this is held or
    /// running; from it on they may be on disk only. The head starts only below it, so nothing
    /// passes an earlier event still on disk.
    fifo_limit: Option<Key>,
    /// FIFO lanes: the pass over the queue index that is loading more, if one is.
    fifo_scan: Option<FifoScan>,
    /// Deliveries held at a time that is not their position on disk (an attempt whose
    /// outcome could not be recorded waits a while before the next): held whatever the window
    /// and `resume`, since the index would not bring them back at that time.
    pinned: HashSet<u128>,
}

// === impl Lane ===

impl Lane {
    pub fn new(
        destination: Option<Arc<Destination>>,
        circuit_threshold: u32,
        window: usize,
    ) -> Self {
        let mut lane = Lane {
            destination: None,
            pending: BTreeMap::new(),
            keys: HashMap::new(),
            in_flight: 0,
            limiter: None,
            consecutive_failures: 0,
            circuit_threshold,
            paused: false,
            window: window.max(2),
            resume: None,
            fifo_limit: None,
            fifo_scan: None,
            pinned: HashSet::new(),
        };
        lane.reconfigure(destination);
        lane
    }

    /// A lane whose destination could not be read yet.
    pub fn paused(circuit_threshold: u32, window: usize) -> Self {
        let mut lane = Self::new(None, circuit_threshold, window);
        lane.paused = true;
        lane
    }

    fn fifo(&self) -> bool {
        self.destination
            .as_ref()
            .is_some_and(|d| d.ordering == Ordering::Fifo)
    }

    fn key(&self, e: &DueEntry) -> Key {
        if self.fifo() {
            (e.event.raw(), e.delivery.raw())
        } else {
            (u128::from(e.due_ms), e.delivery.raw())
        }
    }

    /// Takes new settings (after a PATCH, a disable, or a deletion); re-keys the queue when the
    /// ordering changed.
    pub fn reconfigure(&mut self, destination: Option<Arc<Destination>>) {
        let rate = destination.as_ref().and_then(|d| d.rate_limit_per_s);
        let old_rate = self.destination.as_ref().and_then(|d| d.rate_limit_per_s);
        if rate != old_rate || self.limiter.is_none() {
            self.limiter = rate
                .and_then(NonZeroU32::new)
                .map(|r| RateLimiter::direct(Quota::per_second(r)));
        }
        let was_fifo = self.fifo();
        self.destination = destination;
        self.paused = false;
        if self.fifo() != was_fifo {
            self.reorder();
        }
    }

    /// Re-keys the queue for the other ordering. What is held is the whole queue only if
    /// nothing is on disk only; otherwise all but pinned deliveries are let go and loaded again
    /// from the start in the new order, since the window of one order is not that of the other.
    fn reorder(&mut self) {
        let complete =
            self.resume.is_none() && self.fifo_limit.is_none() && self.fifo_scan.is_none();
        let entries: Vec<DueEntry> = std::mem::take(&mut self.pending).into_values().collect();
        self.keys.clear();
        (self.resume, self.fifo_limit, self.fifo_scan) = (None, None, None);
        if !complete {
            self.load_from_start();
        }
        for e in entries {
            if self.pinned.contains(&e.delivery.raw()) {
                self.insert_pinned(e);
            } else if complete {
                self.insert(e);
            }
        }
    }

    /// A disabled destination's lane keeps nothing in memory: its deliveries stay queued on
    /// disk only, and are loaded again when it is re-enabled. A long-disabled destination with
    /// a large backlog must not cost memory or per-event work.
    pub fn parks(&self) -> bool {
        self.destination.as_ref().is_some_and(|d| !d.enabled)
    }

    /// Drops the in-memory queue (the entries remain on disk, to be loaded from the start of
    /// the queue index when the lane runs again); returns how many.
    pub fn park(&mut self) -> usize {
        let n = self.pending.len();
        self.pending.clear();
        self.keys.clear();
        // Their entries on disk are at their recorded positions, which a load finds.
        self.pinned.clear();
        self.load_from_start();
        n
    }

    /// Makes the lane read the queue index again from its start (after a disable).
    pub fn load_from_start(&mut self) {
        if self.fifo() {
            self.fifo_limit = Some(FIRST_KEY);
            self.fifo_scan = None;
        } else {
            self.resume = Some((0, 0));
        }
    }

    /// Held entries the window counts (pinned ones do not).
    fn held(&self) -> usize {
        self.pending.len().saturating_sub(self.pinned.len())
    }

    /// Where to read the queue index from to load more, when the lane wants more: it has
    /// deliveries on disk only and at most half its window in memory (or, FIFO, a head it may
    /// not start yet). A FIFO pass, once begun, runs to the end of the index.
    pub fn wants_more(&self) -> Option<QueuePos> {
        if self.parks() {
            return None;
        }
        if !self.fifo() {
            return self
                .resume
                .filter(|_| self.pending.len() <= self.window / 2);
        }
        if let Some(scan) = &self.fifo_scan {
            return Some(scan.next);
        }
        let limit = self.fifo_limit?;
        let blocked = self
            .pending
            .first_key_value()
            .is_none_or(|(k, _)| *k >= limit);
        (blocked || self.held() <= self.window / 2).then_some((0, 0))
    }

    /// How many entries a load step should bring: room in the window, or all it reads for a
    /// FIFO pass, which keeps the first in event order itself.
    pub fn room(&self) -> usize {
        if self.fifo() {
            usize::MAX
        } else {
            self.window.saturating_sub(self.pending.len())
        }
    }

    /// The result of reading the queue index from [`Lane::wants_more`]'s position: the
    /// destination's entries found (in index order) and where the read stopped (`None`: at the
    /// end of the index, so nothing of this destination is on disk only any more, unless the
    /// window let some go).
    pub fn loaded(&mut self, entries: Vec<DueEntry>, next: Option<QueuePos>) {
        if self.fifo() {
            self.fifo_loaded(entries, next);
            return;
        }
        self.resume = next;
        for e in entries {
            // A pinned delivery keeps its later time rather than its older position on disk.
            if !self.pinned.contains(&e.delivery.raw()) {
                self.insert(e);
            }
        }
    }

    fn fifo_loaded(&mut self, entries: Vec<DueEntry>, next: Option<QueuePos>) {
        let Some(limit) = self.fifo_limit else {
            // Everything is held already.
            self.fifo_scan = None;
            return;
        };
        let window = self.window;
        let scan = self.fifo_scan.get_or_insert_with(|| FifoScan::new(limit));
        for e in entries {
            let id = e.delivery.raw();
            if !self.pinned.contains(&id) && !scan.announced.contains(&id) {
                scan.offer((e.event.raw(), id), e, window);
            }
        }
        match next {
            Some(pos) => scan.next = pos,
            None => self.finish_fifo_scan(),
        }
    }

    /// Takes what a complete pass found, in event order, up to the window.
    fn finish_fifo_scan(&mut self) {
        let Some(scan) = self.fifo_scan.take() else {
            return;
        };
        if self.fifo_limit != Some(scan.from) {
            // The window let held deliveries go during the pass, below where it collected:
            // what it found cannot be taken before them. A later pass will.
            return;
        }
        let mut limit = scan.cut;
        for (key, e) in scan.found {
            if limit.is_some_and(|l| key >= l) {
                break;
            }
            if self.held() >= self.window {
                limit = Some(key);
                break;
            }
            self.hold(key, e);
        }
        self.fifo_limit = limit;
    }

    pub fn destination(&self) -> Option<&Arc<Destination>> {
        self.destination.as_ref()
    }

    /// Queues a delivery, replacing its previous position if it was queued already (a replay
    /// moves a delivery, it never duplicates it). A lane does not hold an entry past its
    /// window: the entry is on disk already and is loaded when its turn nears.
    pub fn insert(&mut self, entry: DueEntry) {
        let id = entry.delivery.raw();
        if let Some(old) = self.keys.remove(&id) {
            self.pending.remove(&old);
        }
        // Almost always empty; skip hashing on the per-delivery path.
        if !self.pinned.is_empty() {
            self.pinned.remove(&id);
        }
        let key = self.key(&entry);
        if self.fifo() {
            if let Some(limit) = self.fifo_limit.filter(|l| key >= *l) {
                if let Some(scan) = &mut self.fifo_scan {
                    // The pass may have read it already, and maybe at an older position.
                    scan.announced.insert(id);
                    if limit == scan.from {
                        scan.offer(key, entry, self.window);
                    }
                }
                return;
            }
        } else if self.resume.is_some_and(|r| (entry.due_ms, id) >= r) {
            return;
        }
        self.hold(key, entry);
        self.trim();
    }

    fn hold(&mut self, key: Key, entry: DueEntry) {
        let id = entry.delivery.raw();
        if let Some(old) = self.keys.insert(id, key) {
            self.pending.remove(&old);
        }
        self.pending.insert(key, entry);
    }

    /// Holds a delivery at a time that is not its position on disk (see `pinned`).
    pub fn insert_pinned(&mut self, entry: DueEntry) {
        let id = entry.delivery.raw();
        if let Some(old) = self.keys.remove(&id) {
            self.pending.remove(&old);
        }
        let key = self.key(&entry);
        self.keys.insert(id, key);
        self.pending.insert(key, entry);
        self.pinned.insert(id);
    }

    /// Keeps the lane within its window by letting go of its last entries (pinned ones aside:
    /// they do not count and are never let go).
    fn trim(&mut self) {
        while self.held() > self.window {
            let Some((&key, &last)) = self
                .pending
                .iter()
                .rev()
                .find(|(_, e)| !self.pinned.contains(&e.delivery.raw()))
            else {
                break;
            };
            self.pending.remove(&key);
            self.keys.remove(&last.delivery.raw());
            // Everything else held is before `last`, so from `last` on is on disk only; `min`
            // keeps a position an earlier trim set lower.
            if self.fifo() {
                self.fifo_limit = Some(self.fifo_limit.map_or(key, |l| l.min(key)));
            } else {
                let pos = (last.due_ms, last.delivery.raw());
                self.resume = Some(self.resume.map_or(pos, |r| r.min(pos)));
            }
        }
    }

    pub fn queued(&self) -> usize {
        self.pending.len()
    }

    pub fn in_flight(&self) -> usize {
        self.in_flight
    }

    /// Nothing queued in memory or on disk only, nothing running: the lane can be forgotten.
    pub fn is_idle(&self) -> bool {
        self.pending.is_empty()
            && self.in_flight == 0
            && self.resume.is_none()
            && self.fifo_limit.is_none()
            && self.fifo_scan.is_none()
    }

    /// A FIFO head may start only when nothing before it in event order can be on disk only.
    fn fifo_head_waits(&self) -> bool {
        self.fifo()
            && self.fifo_limit.is_some_and(|limit| {
                self.pending
                    .first_key_value()
                    .is_some_and(|(k, _)| *k >= limit)
            })
    }

    fn enabled(&self) -> bool {
        !self.paused && self.destination.as_ref().is_none_or(|d| d.enabled)
    }

    fn capacity(&self) -> usize {
        match &self.destination {
            None => ORPHAN_CONCURRENCY,
            Some(d) if d.ordering == Ordering::Fifo => 1,
            Some(_) if self.circuit_open() => 1,
            Some(d) => d.max_in_flight.max(1) as usize,
        }
    }

    /// Open after `circuit_threshold` consecutive failures: the lane then sends one request at
    /// a time (the probe) until one succeeds.
    pub fn circuit_open(&self) -> bool {
        self.circuit_threshold > 0 && self.consecutive_failures >= self.circuit_threshold
    }

    /// The earliest time the lane could start something, if it could ever without news
    /// (an attempt finishing, new settings).
    pub fn next_wake(&self) -> Option<u64> {
        if !self.enabled() || self.in_flight >= self.capacity() {
            return None;
        }
        if self.fifo_head_waits() {
            return None;
        }
        let (_, head) = self.pending.first_key_value()?;
        Some(head.due_ms)
    }

    /// Hands out what may start at `now`, at most `budget` of it (the global allowance).
    /// Returns the entries and, when the rate limit held something back, when to ask again.
    pub fn take_ready(&mut self, now: u64, budget: usize) -> (Vec<DueEntry>, Option<u64>) {
        let mut out = Vec::new();
        let fifo = self.fifo();
        if !self.enabled() || self.fifo_head_waits() {
            return (out, None);
        }
        while out.len() < budget && self.in_flight < self.capacity() {
            let Some((&key, head)) = self.pending.first_key_value() else {
                break;
            };
            if head.due_ms > now {
                break;
            }
            if let Some(limiter) = &self.limiter {
                if let Err(not_until) = limiter.check() {
                    let wait = not_until.wait_time_from(DefaultClock::default().now());
                    return (out, Some(now + wait.as_millis() as u64 + 1));
                }
            }
            let entry = *head;
            self.pending.remove(&key);
            self.keys.remove(&entry.delivery.raw());
            if !self.pinned.is_empty() {
                self.pinned.remove(&entry.delivery.raw());
            }
            self.in_flight += 1;
            out.push(entry);
            if fifo {
                break;
            }
        }
        (out, None)
    }

    /// An attempt ended. `retry` re-queues the delivery at its next time; `pinned` when that
    /// time is not its position on disk (its outcome was not recorded).
    pub fn finished(&mut self, succeeded: bool, retry: Option<DueEntry>, pinned: bool) {
        self.in_flight = self.in_flight.saturating_sub(1);
        if succeeded {
            self.consecutive_failures = 0;
        } else {
            self.consecutive_failures = self.consecutive_failures.saturating_add(1);
        }
        match retry {
            Some(e) if pinned => self.insert_pinned(e),
            Some(e) => self.insert(e),
            None => {}
        }
    }
}

#[cfg(test)]
#[path = "lane_model.rs"]
mod model;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::delivery::retry::RetryPolicy;
    use crate::ids::{AccountId, DeliveryId, DestinationId, EventId};

    pub(super) fn destination(
        ordering: Ordering,
        max_in_flight: u32,
        rate: Option<u32>,
    ) -> Arc<Destination> {
        Arc::new(Destination {
            id: DestinationId(1),
            account_id: AccountId(1),
            name: "d".into(),
            url: "http://example.com".into(),
            auth: None,
            headers: Default::default(),
            timeout_ms: 1000,
            retry: RetryPolicy::default(),
            rate_limit_per_s: rate,
            max_in_flight,
            ordering,
            enabled: true,
            disabled_reason: None,
            signing_keys: vec![],
            created_at_ms: 0,
            updated_at_ms: 0,
        })
    }

    fn entry(event: u128, delivery: u128, due_ms: u64) -> DueEntry {
        DueEntry {
            due_ms,
            delivery: DeliveryId(delivery),
            account: AccountId(1),
            event: EventId(event),
            destination: DestinationId(1),
        }
    }

    /// An unordered lane offered `n` deliveries, delivery `i` due at `i`.
    fn filled(max_in_flight: u32, window: usize, n: u64) -> Lane {
        let mut lane = Lane::new(
            Some(destination(Ordering::None, max_in_flight, None)),
            5,
            window,
        );
        for i in 0..n {
            lane.insert(entry(u128::from(i), u128::from(i), i));
        }
        lane
    }

    fn ids(v: &[DueEntry]) -> Vec<u128> {
        v.iter().map(|e| e.delivery.raw()).collect()
    }

    #[test]
    fn unordered_lane_starts_due_entries_up_to_max_in_flight() {
        let mut lane = Lane::new(Some(destination(Ordering::None, 2, None)), 5, 1000);
        lane.insert(entry(1, 10, 100));
        lane.insert(entry(2, 20, 50));
        lane.insert(entry(3, 30, 500));
        assert_eq!(lane.next_wake(), Some(50));
        let (got, _) = lane.take_ready(100, 10);
        assert_eq!(ids(&got), [20, 10], "due order");
        assert_eq!(lane.next_wake(), None, "at capacity");
        lane.finished(true, None, false);
        assert_eq!(lane.next_wake(), Some(500));
        assert!(lane.take_ready(499, 10).0.is_empty());
        assert_eq!(ids(&lane.take_ready(500, 10).0), [30]);
    }

    #[test]
    fn fifo_lane_runs_one_at_a_time_in_event_order_and_a_failing_head_blocks() {
        let mut lane = Lane::new(Some(destination(Ordering::Fifo, 10, None)), 5, 1000);
        lane.insert(entry(2, 20, 0));
        lane.insert(entry(1, 10, 0));
        lane.insert(entry(3, 30, 0));
        assert_eq!(ids(&lane.take_ready(1, 10).0), [10]);
        assert!(lane.take_ready(1, 10).0.is_empty(), "one in flight");
        // The head fails and retries at t=1000: nothing behind it may pass.
        lane.finished(false, Some(entry(1, 10, 1000)), false);
        assert_eq!(lane.next_wake(), Some(1000));
        assert!(lane.take_ready(999, 10).0.is_empty());
        assert_eq!(ids(&lane.take_ready(1000, 10).0), [10]);
        lane.finished(true, None, false);
        assert_eq!(ids(&lane.take_ready(1000, 10).0), [20]);
    }

    #[test]
    fn circuit_opens_after_consecutive_failures_and_a_success_closes_it() {
        let mut lane = Lane::new(Some(destination(Ordering::None, 10, None)), 3, 1000);
        for i in 0..3 {
            lane.insert(entry(i, i, 0));
        }
        assert_eq!(lane.take_ready(0, 10).0.len(), 3);
        for i in 0..3 {
            lane.finished(false, Some(entry(i, i, 10)), false);
        }
        assert!(lane.circuit_open());
        assert_eq!(lane.take_ready(10, 10).0.len(), 1, "one probe");
        assert!(lane.take_ready(10, 10).0.is_empty());
        lane.finished(true, None, false);
        assert!(!lane.circuit_open());
        assert_eq!(lane.take_ready(10, 10).0.len(), 2);
    }

    #[test]
    fn disabled_lane_starts_nothing_until_reenabled() {
        let mut d = (*destination(Ordering::None, 10, None)).clone();
        d.enabled = false;
        let mut lane = Lane::new(Some(Arc::new(d.clone())), 5, 1000);
        lane.insert(entry(1, 1, 0));
        assert_eq!(lane.next_wake(), None);
        assert!(lane.take_ready(10, 10).0.is_empty());
        d.enabled = true;
        lane.reconfigure(Some(Arc::new(d)));
        assert_eq!(lane.take_ready(10, 10).0.len(), 1);
    }

    #[test]
    fn rate_limit_holds_back_and_says_when_to_return() {
        let mut lane = Lane::new(Some(destination(Ordering::None, 100, Some(2))), 5, 1000);
        for i in 0..10 {
            lane.insert(entry(i, i, 0));
        }
        let (got, wake) = lane.take_ready(0, 100);
        assert_eq!(got.len(), 2, "burst equals the per-second quota");
        assert!(wake.is_some());
    }

    #[test]
    fn reinserting_a_queued_delivery_moves_it() {
        let mut lane = Lane::new(Some(destination(Ordering::None, 10, None)), 5, 1000);
        lane.insert(entry(1, 1, 500));
        lane.insert(entry(1, 1, 5));
        assert_eq!(lane.queued(), 1);
        assert_eq!(lane.next_wake(), Some(5));
    }

    #[test]
    fn unordered_lane_holds_a_window_and_loads_the_rest_as_it_runs_low() {
        let mut lane = filled(3, 4, 10);
        assert_eq!(lane.queued(), 4, "only the earliest due are held");
        assert_eq!(lane.wants_more(), None, "more than half the window is held");
        assert_eq!(ids(&lane.take_ready(100, 10).0), [0, 1, 2]);
        assert_eq!(lane.wants_more(), Some((4, 4)), "from the first one let go");
        assert_eq!(lane.room(), 3);
        // Arrivals past the window stay on disk; a move to before it is held.
        lane.insert(entry(20, 20, 50));
        lane.insert(entry(21, 21, 0));
        assert_eq!(lane.queued(), 2);
        // A load step read the index up to (7, 7) exclusive.
        lane.loaded(
            vec![entry(4, 4, 4), entry(5, 5, 5), entry(6, 6, 6)],
            Some((7, 7)),
        );
        assert_eq!(lane.queued(), 4, "trimmed back to the window");
        assert_eq!(lane.wants_more(), None);
        for _ in 0..3 {
            lane.finished(true, None, false);
        }
        assert_eq!(ids(&lane.take_ready(100, 10).0), [21, 3, 4]);
        // The last step reached the end of the index: nothing is on disk only any more.
        lane.loaded(vec![], None);
        assert_eq!(lane.wants_more(), None);
        lane.insert(entry(30, 30, 99));
        assert_eq!(lane.queued(), 2, "held again once everything is loaded");
    }

    #[test]
    fn a_delivery_moved_past_the_window_leaves_memory() {
        let mut lane = filled(1, 2, 3);
        assert_eq!(lane.queued(), 2);
        // Delivery 0 fails and retries later than the window reaches.
        assert_eq!(ids(&lane.take_ready(10, 10).0), [0]);
        lane.finished(false, Some(entry(0, 0, 1_000)), false);
        assert_eq!(lane.queued(), 1, "on disk only now");
        assert!(
            !lane.is_idle(),
            "a lane with deliveries on disk only is not forgotten"
        );
    }

    /// A FIFO lane of window `window` offered events `0..n` in reverse, all due at 0.
    fn fifo_filled(window: usize, n: u128) -> Lane {
        let mut lane = Lane::new(Some(destination(Ordering::Fifo, 1, None)), 5, window);
        for i in (0..n).rev() {
            lane.insert(entry(i, i, 0));
        }
        lane
    }

    /// Starts and completes the head up to `n` times; returns the deliveries in the order
    /// started.
    fn run_heads(lane: &mut Lane, now: u64, n: usize) -> Vec<u128> {
        let mut order = Vec::new();
        for _ in 0..n {
            let (got, _) = lane.take_ready(now, 10);
            assert!(got.len() <= 1, "FIFO starts one at a time");
            if got.is_empty() {
                break;
            }
            order.extend(ids(&got));
            assert!(lane.take_ready(now, 10).0.is_empty(), "one in flight");
            lane.finished(true, None, false);
        }
        order
    }

    #[test]
    fn fifo_lane_holds_a_window_in_event_order_and_loads_the_rest_in_whole_passes() {
        let mut lane = fifo_filled(4, 10);
        assert_eq!(lane.queued(), 4, "only the first in event order are held");
        assert_eq!(lane.room(), usize::MAX);
        // A later event stays on disk; a backfill of an earlier one is held and pushes the
        // last held one out.
        lane.insert(entry(20, 20, 0));
        lane.insert(entry(1, 101, 0));
        assert_eq!(lane.queued(), 4);
        assert_eq!(lane.wants_more(), None, "more than half the window is held");
        assert_eq!(run_heads(&mut lane, 10, 2), [0, 1]);
        assert_eq!(
            lane.wants_more(),
            Some((0, 0)),
            "a pass reads the whole index"
        );
        // The pass's first step: what the lane holds is below where it collects, and ignored;
        // what the window let go is collected again.
        lane.loaded(
            vec![entry(5, 5, 0), entry(2, 2, 0), entry(3, 3, 0)],
            Some((0, 9)),
        );
        assert_eq!(lane.wants_more(), Some((0, 9)), "a pass runs to the end");
        // Announced during the pass (a replay moved it): newer than what the pass reads.
        lane.insert(entry(4, 4, 7));
        lane.loaded(vec![entry(4, 4, 0), entry(20, 20, 0), entry(6, 6, 0)], None);
        assert_eq!(lane.wants_more(), None);
        assert_eq!(lane.queued(), 4, "refilled to the window in event order");
        assert_eq!(lane.next_wake(), Some(0));
        assert_eq!(run_heads(&mut lane, 5, 3), [101, 2, 3]);
        assert_eq!(
            lane.next_wake(),
            Some(7),
            "as announced, not as the pass read it"
        );
        assert_eq!(run_heads(&mut lane, 10, 1), [4]);
        assert_eq!(
            lane.wants_more(),
            Some((0, 0)),
            "5 may still be on disk only"
        );
        lane.loaded(vec![entry(20, 20, 0), entry(5, 5, 0)], None);
        assert_eq!(run_heads(&mut lane, 10, 3), [5, 20]);
        assert!(
            lane.is_idle(),
            "a pass that kept everything leaves nothing on disk only"
        );
    }

    #[test]
    fn a_fifo_pass_overtaken_by_the_window_is_dropped_and_its_deliveries_wait() {
        let mut lane = fifo_filled(2, 5);
        assert_eq!(run_heads(&mut lane, 10, 1), [0]);
        assert_eq!(lane.wants_more(), Some((0, 0)));
        lane.loaded(vec![entry(2, 2, 0)], Some((0, 5)));
        // Two backfills of event 0 during the pass: the window lets event 1 go, below where
        // the pass collects.
        lane.insert(entry(0, 50, 0));
        lane.insert(entry(0, 60, 0));
        lane.loaded(vec![entry(3, 3, 0)], None);
        assert_eq!(run_heads(&mut lane, 10, 3), [50, 60], "2 never passes 1");
        assert_eq!(lane.wants_more(), Some((0, 0)));
        lane.loaded(vec![entry(1, 1, 0), entry(2, 2, 0)], None);
        assert_eq!(run_heads(&mut lane, 10, 2), [1, 2]);
    }

    #[test]
    fn switching_ordering_rekeys_a_complete_queue_and_reloads_an_incomplete_one() {
        let mut d = (*destination(Ordering::None, 1, None)).clone();
        let mut lane = Lane::new(Some(Arc::new(d.clone())), 5, 8);
        // Due order is the reverse of event order.
        for i in 0..3u64 {
            lane.insert(entry(u128::from(10 - i), u128::from(i), i));
        }
        d.ordering = Ordering::Fifo;
        lane.reconfigure(Some(Arc::new(d.clone())));
        assert_eq!(lane.wants_more(), None, "it held everything");
        assert_eq!(run_heads(&mut lane, 10, 3), [2, 1, 0], "event order");

        let mut lane = fifo_filled(2, 4);
        d.ordering = Ordering::None;
        lane.reconfigure(Some(Arc::new(d)));
        assert_eq!(lane.queued(), 0);
        assert_eq!(lane.wants_more(), Some((0, 0)), "loaded again in due order");
    }

    #[test]
    fn a_held_fifo_head_waits_while_earlier_events_may_be_on_disk_only() {
        let mut lane = fifo_filled(2, 4);
        assert_eq!(run_heads(&mut lane, 10, 1), [0]);
        assert_eq!(ids(&lane.take_ready(10, 10).0), [1]);
        // Its outcome was not recorded: held, pinned, at a later time than on disk.
        lane.finished(false, Some(entry(1, 1, 30_000)), true);
        let mut d = (*destination(Ordering::None, 1, None)).clone();
        lane.reconfigure(Some(Arc::new(d.clone())));
        d.ordering = Ordering::Fifo;
        lane.reconfigure(Some(Arc::new(d)));
        assert_eq!(lane.queued(), 1, "only the pinned delivery is kept");
        assert!(
            lane.take_ready(40_000, 10).0.is_empty(),
            "an earlier event may be on disk only"
        );
        // The pass finds a backfill of event 0, and the pinned one at its older position.
        lane.loaded(
            vec![
                entry(0, 70, 0),
                entry(1, 1, 0),
                entry(2, 2, 0),
                entry(3, 3, 0),
            ],
            None,
        );
        assert_eq!(run_heads(&mut lane, 40_000, 3), [70, 1, 2]);
    }

    #[test]
    fn a_parked_fifo_lane_loads_from_the_start_before_its_head_may_start() {
        let mut lane = fifo_filled(8, 3);
        let mut d = (*destination(Ordering::Fifo, 1, None)).clone();
        d.enabled = false;
        lane.reconfigure(Some(Arc::new(d.clone())));
        assert_eq!(lane.park(), 3);
        lane.load_from_start();
        assert_eq!(lane.wants_more(), None, "nothing loads while disabled");
        d.enabled = true;
        lane.reconfigure(Some(Arc::new(d)));
        // Arrivals while everything else may be on disk only are not held.
        lane.insert(entry(9, 9, 0));
        assert_eq!(lane.queued(), 0);
        assert_eq!(lane.wants_more(), Some((0, 0)));
        lane.loaded(vec![entry(2, 2, 0)], Some((0, 5)));
        assert_eq!(lane.wants_more(), Some((0, 5)), "the pass runs to the end");
        // A backfill of an earlier event announced during the pass.
        lane.insert(entry(1, 11, 0));
        lane.loaded(vec![entry(0, 0, 0), entry(9, 9, 0)], None);
        assert_eq!(run_heads(&mut lane, 10, 5), [0, 11, 2, 9]);
        assert!(lane.is_idle());
    }

    #[test]
    fn parking_leaves_everything_on_disk_to_be_loaded_from_the_start() {
        let mut d = (*destination(Ordering::None, 10, None)).clone();
        let mut lane = Lane::new(Some(Arc::new(d.clone())), 5, 8);
        lane.insert(entry(1, 1, 0));
        d.enabled = false;
        lane.reconfigure(Some(Arc::new(d.clone())));
        assert_eq!(lane.park(), 1);
        assert_eq!(lane.wants_more(), None, "nothing loads while disabled");
        d.enabled = true;
        lane.reconfigure(Some(Arc::new(d)));
        assert_eq!(lane.wants_more(), Some((0, 0)));
    }

    #[test]
    fn an_unrecorded_retry_is_held_past_the_window_and_a_load_keeps_its_later_time() {
        let mut lane = filled(1, 2, 4);
        assert_eq!(lane.wants_more(), None);
        assert_eq!(ids(&lane.take_ready(10, 10).0), [0]);
        // Its outcome was not recorded: on disk it is still at (0, 0), the lane holds it later.
        lane.finished(false, Some(entry(0, 0, 30_000)), true);
        assert_eq!(lane.queued(), 2, "held although past the window");
        lane.insert(entry(9, 9, 5));
        lane.insert(entry(8, 8, 1));
        assert_eq!(
            lane.queued(),
            3,
            "never trimmed, and not counted in the window"
        );
        assert_eq!(lane.wants_more(), None);
        assert_eq!(ids(&lane.take_ready(10, 10).0), [1]);
        lane.finished(true, None, false);
        // A load from the start finds it at its old position and leaves it where it is.
        lane.load_from_start();
        lane.loaded(vec![entry(0, 0, 0)], Some((2, 2)));
        assert_eq!(lane.next_wake(), Some(1));
        assert_eq!(ids(&lane.take_ready(10, 10).0), [8]);
        lane.finished(true, None, false);
        assert_eq!(lane.next_wake(), Some(30_000));
    }

    #[test]
    fn trimming_never_moves_the_resume_position_later() {
        let mut lane = filled(1, 2, 3);
        assert_eq!(lane.wants_more(), None);
        // A load brought entries that a pinned retry and arrivals then push out again.
        lane.loaded(vec![], Some((1, 1)));
        lane.insert(entry(5, 5, 0));
        assert_eq!(lane.queued(), 2);
        assert_eq!(ids(&lane.take_ready(10, 10).0), [0]);
        lane.finished(true, None, false);
        assert_eq!(ids(&lane.take_ready(10, 10).0), [5]);
        lane.finished(true, None, false);
        assert_eq!(
            lane.wants_more(),
            Some((1, 1)),
            "still from the earliest let go"
        );
    }
}
