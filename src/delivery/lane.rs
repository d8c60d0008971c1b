//! One destination's lane: what may be sent to it now.
//!
//! A lane holds the queued deliveries of its destination that are next in line (all of them
//! with FIFO ordering; otherwise the earliest due, up to a window, the rest staying on disk
//! only until the lane runs low) and decides, from the destination's settings, which of them
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
    /// Most entries an unordered lane holds. A destination that is down or slow can gather a
    /// backlog of millions; held in memory, it would grow without bound and be loaded again
    /// at every start.
    window: usize,
    /// Some of this destination's deliveries, those at or after this position of the queue
    /// index, may be on disk only. An unordered lane holds nothing from there on and loads
    /// more as it runs low; a FIFO lane loads everything and starts nothing until it has,
    /// because its head could be any of them.
    resume: Option<QueuePos>,
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
        let reorder = destination.as_ref().map(|d| d.ordering)
            != self.destination.as_ref().map(|d| d.ordering);
        self.destination = destination;
        self.paused = false;
        if reorder {
            let entries: Vec<DueEntry> = std::mem::take(&mut self.pending).into_values().collect();
            self.keys.clear();
            for e in entries {
                if self.pinned.contains(&e.delivery.raw()) {
                    self.insert_pinned(e);
                } else {
                    self.insert(e);
                }
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
        self.resume = Some((0, 0));
    }

    /// Where to read the queue index from to load more, when the lane wants more: it has
    /// deliveries on disk only and (unless FIFO) fewer than half its window in memory.
    pub fn wants_more(&self) -> Option<QueuePos> {
        let resume = self.resume?;
        if self.parks() || (!self.fifo() && self.pending.len() > self.window / 2) {
            return None;
        }
        Some(resume)
    }

    /// How many entries a load should bring: room in the window, or everything for FIFO.
    pub fn room(&self) -> usize {
        if self.fifo() {
            usize::MAX
        } else {
            self.window.saturating_sub(self.pending.len())
        }
    }

    /// The result of reading the queue index from [`Lane::wants_more`]'s position: the
    /// destination's entries found (in index order) and where the read stopped (`None`: at the
    /// end of the index, so nothing of this destination is on disk only any more).
    pub fn loaded(&mut self, entries: Vec<DueEntry>, next: Option<QueuePos>) {
        self.resume = next;
        for e in entries {
            // A pinned delivery keeps its later time rather than its older position on disk.
            if !self.pinned.contains(&e.delivery.raw()) {
                self.insert(e);
            }
        }
    }

    pub fn destination(&self) -> Option<&Arc<Destination>> {
        self.destination.as_ref()
    }

    /// Queues a delivery, replacing its previous position if it was queued already (a replay
    /// moves a delivery, it never duplicates it). An unordered lane does not hold an entry
    /// past its window: the entry is on disk already and is loaded when its turn nears.
    pub fn insert(&mut self, entry: DueEntry) {
        let id = entry.delivery.raw();
        if let Some(old) = self.keys.remove(&id) {
            self.pending.remove(&old);
        }
        // Almost always empty; skip hashing on the per-delivery path.
        if !self.pinned.is_empty() {
            self.pinned.remove(&id);
        }
        if !self.fifo() {
            let pos = (entry.due_ms, id);
            if self.resume.is_some_and(|r| pos >= r) {
                return;
            }
        }
        let key = self.key(&entry);
        self.keys.insert(id, key);
        self.pending.insert(key, entry);
        self.trim();
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

    /// Keeps an unordered lane within its window by letting go of its latest entries (pinned
    /// ones aside: they do not count and are never let go).
    fn trim(&mut self) {
        if self.fifo() {
            return;
        }
        while self.pending.len().saturating_sub(self.pinned.len()) > self.window {
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
            // Everything else held is before `last` in due order, so from `last` on is on
            // disk only; `min` keeps a position an earlier trim set lower.
            let pos = (last.due_ms, last.delivery.raw());
            self.resume = Some(self.resume.map_or(pos, |r| r.min(pos)));
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
        self.pending.is_empty() && self.in_flight == 0 && self.resume.is_none()
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
        if self.fifo() && self.resume.is_some() {
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
        if !self.enabled() || (fifo && self.resume.is_some()) {
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
mod tests {
    use super::*;
    use crate::delivery::retry::RetryPolicy;
    use crate::ids::{AccountId, DeliveryId, DestinationId, EventId};

    fn destination(ordering: Ordering, max_in_flight: u32, rate: Option<u32>) -> Arc<Destination> {
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

    #[test]
    fn fifo_lane_holds_everything_and_starts_nothing_until_fully_loaded() {
        let mut lane = Lane::new(Some(destination(Ordering::Fifo, 1, None)), 5, 2);
        for i in (0..5u128).rev() {
            lane.insert(entry(i, i, 0));
        }
        assert_eq!(lane.queued(), 5, "no window for FIFO");
        lane.load_from_start();
        assert_eq!(lane.room(), usize::MAX);
        assert_eq!(lane.next_wake(), None);
        assert!(
            lane.take_ready(10, 10).0.is_empty(),
            "the head may still be on disk"
        );
        lane.loaded(vec![entry(7, 7, 0)], Some((0, 9)));
        assert!(lane.take_ready(10, 10).0.is_empty());
        lane.loaded(vec![], None);
        assert_eq!(ids(&lane.take_ready(10, 10).0), [0]);
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
