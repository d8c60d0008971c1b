//! A model test of [`Lane`](super::Lane): a queue index in due order as the store keeps it,
//! random operations on it (new events, backfills of old events, replays, load steps of any
//! size, starts, successes, recorded and unrecorded retries, disable, delete, ordering
//! changes), every change announced to the lane as the scheduler does. Checked throughout: a
//! FIFO lane never starts a delivery while one with an earlier key of the same destination is
//! queued and not running; nothing starts twice or unqueued; a lane with deliveries on disk is
//! never idle; and at the end everything drains. Seeds are fixed, so a failure reproduces.

use super::*;
use crate::ids::{AccountId, DeliveryId, DestinationId, EventId};
use std::collections::BTreeMap;

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn dest(ordering: Ordering, enabled: bool, deleted: bool) -> Option<Arc<Destination>> {
    if deleted {
        return None;
    }
    let mut d = (*super::tests::destination(ordering, 3, None)).clone();
    d.enabled = enabled;
    Some(Arc::new(d))
}

struct Sim {
    rng: Rng,
    lane: Lane,
    disk: BTreeMap<(u64, u128), u128>, // pos -> event
    pos: HashMap<u128, (u64, u128)>,   // id -> pos
    in_flight: HashMap<u128, DueEntry>,
    now: u64,
    next_id: u128,
    next_event: u128,
    ordering: Ordering,
    enabled: bool,
    deleted: bool,
    step: usize,
    started: Vec<u128>,
    log: Vec<String>,
    toggles: bool,
}

impl Sim {
    fn entry(&self, id: u128) -> DueEntry {
        let p = self.pos[&id];
        DueEntry {
            due_ms: p.0,
            delivery: DeliveryId(id),
            account: AccountId(1),
            event: EventId(self.disk[&p]),
            destination: DestinationId(1),
        }
    }
    fn announce(&mut self, e: DueEntry) {
        if self.in_flight.contains_key(&e.delivery.raw()) {
            return;
        }
        if self.lane.parks() {
            self.lane.load_from_start();
        } else {
            self.lane.insert(e);
        }
    }
    fn put(&mut self, id: u128, event: u128, due: u64) {
        if let Some(old) = self.pos.remove(&id) {
            self.disk.remove(&old);
        }
        self.disk.insert((due, id), event);
        self.pos.insert(id, (due, id));
    }
    fn load_step(&mut self) {
        if let Some(from) = self.lane.wants_more() {
            let room = self.lane.room();
            let mut found = Vec::new();
            let mut next = None;
            for (scanned, (&(due, id), &ev)) in self.disk.range(from..).enumerate() {
                if scanned >= self.step {
                    next = Some((due, id));
                    break;
                }
                if found.len() >= room {
                    next = Some((due, id));
                    break;
                }
                found.push(DueEntry {
                    due_ms: due,
                    delivery: DeliveryId(id),
                    account: AccountId(1),
                    event: EventId(ev),
                    destination: DestinationId(1),
                });
            }
            found.retain(|e| !self.in_flight.contains_key(&e.delivery.raw()));
            self.log.push(format!(
                "loaded {:?} next {:?}",
                found
                    .iter()
                    .map(|e| (e.event.raw(), e.delivery.raw()))
                    .collect::<Vec<_>>(),
                next
            ));
            self.lane.loaded(found, next);
        }
    }
    fn take(&mut self) {
        let (got, _) = self.lane.take_ready(self.now, 10);
        for e in got {
            let id = e.delivery.raw();
            assert!(!self.in_flight.contains_key(&id), "double start {id}");
            assert!(self.pos.contains_key(&id), "started {id} not queued");
            if self.ordering == Ordering::Fifo && !self.deleted {
                let key = (e.event.raw(), id);
                for (&(_, oid), &oev) in &self.disk {
                    if self.in_flight.contains_key(&oid) {
                        continue;
                    }
                    if (oev, oid) < key {
                        panic!(
                            "ordering violation: started {:?} while {:?} queued\n{}",
                            key,
                            (oev, oid),
                            self.log[self.log.len().saturating_sub(60)..].join("\n")
                        );
                    }
                }
            }
            self.log.push(format!("start {:?}", (e.event.raw(), id)));
            self.started.push(id);
            self.in_flight.insert(id, e);
        }
    }
    fn finish(&mut self, kind: u64) {
        if self.in_flight.is_empty() {
            return;
        }
        let ids: Vec<u128> = self.in_flight.keys().copied().collect();
        let id = ids[self.rng.below(ids.len() as u64) as usize];
        let e = self.in_flight.remove(&id).unwrap();
        let event = e.event.raw();
        match kind {
            0 => {
                let p = self.pos.remove(&id).unwrap();
                self.disk.remove(&p);
                self.log.push(format!("done {:?}", (event, id)));
                self.lane.finished(true, None, false);
            }
            1 => {
                let due = self.now + 1 + self.rng.below(50);
                self.put(id, event, due);
                self.log.push(format!("retry {:?} at {due}", (event, id)));
                let r = self.entry(id);
                self.lane.finished(false, Some(r), false);
            }
            _ => {
                let due = self.now + 30;
                self.log
                    .push(format!("unrecorded {:?} at {due}", (event, id)));
                self.lane
                    .finished(false, Some(DueEntry { due_ms: due, ..e }), true);
            }
        }
    }
    fn reconf(&mut self) {
        let was_parked = self.lane.parks();
        let runs = self.deleted || self.enabled;
        self.lane
            .reconfigure(dest(self.ordering, self.enabled, self.deleted));
        if self.lane.parks() {
            self.lane.park();
        }
        if was_parked && runs {
            self.lane.load_from_start();
        }
    }
    fn op(&mut self) {
        match self.rng.below(100) {
            0..=24 => {
                let id = self.next_id;
                self.next_id += 1;
                let event = if self.rng.below(4) == 0 && self.next_event > 0 {
                    self.rng.below(self.next_event as u64) as u128
                } else {
                    self.next_event += 1;
                    self.next_event
                };
                let due = self.now + self.rng.below(20);
                self.put(id, event, due);
                self.log.push(format!("new {:?} due {due}", (event, id)));
                let e = self.entry(id);
                self.announce(e);
            }
            25..=29 => {
                let ids: Vec<u128> = self.pos.keys().copied().collect();
                if !ids.is_empty() {
                    let id = ids[self.rng.below(ids.len() as u64) as usize];
                    let ev = self.disk[&self.pos[&id]];
                    let due = self.now + self.rng.below(40);
                    self.put(id, ev, due);
                    self.log.push(format!("replay {:?} due {due}", (ev, id)));
                    let e = self.entry(id);
                    self.announce(e);
                }
            }
            30..=54 => self.load_step(),
            55..=74 => self.take(),
            75..=89 => {
                let k = match self.rng.below(10) {
                    0..=5 => 0,
                    6..=8 => 1,
                    _ => 2,
                };
                self.finish(k)
            }
            90..=95 => self.now += 1 + self.rng.below(10),
            96 if self.toggles => {
                self.enabled = !self.enabled;
                self.log.push(format!("enabled {}", self.enabled));
                self.reconf();
            }
            98 if self.toggles => {
                self.deleted = !self.deleted;
                self.log.push(format!("deleted {}", self.deleted));
                self.reconf();
            }
            97 if self.toggles => {
                self.ordering = if self.ordering == Ordering::Fifo {
                    Ordering::None
                } else {
                    Ordering::Fifo
                };
                self.log.push(format!("ordering {:?}", self.ordering));
                self.reconf();
            }
            _ => {}
        }
    }
}

fn run(seed: u64, window: usize, step: usize, toggles: bool) {
    let mut sim = Sim {
        rng: Rng(seed * 2654435761 + 1),
        lane: Lane::new(dest(Ordering::Fifo, true, false), 0, window),
        disk: BTreeMap::new(),
        pos: HashMap::new(),
        in_flight: HashMap::new(),
        now: 0,
        next_id: 1,
        next_event: 0,
        ordering: Ordering::Fifo,
        enabled: true,
        deleted: false,
        step,
        started: vec![],
        log: vec![],
        toggles,
    };
    for _ in 0..1500 {
        sim.op();
        if sim.lane.is_idle() && !sim.disk.is_empty() {
            panic!(
                "idle with {} on disk\n{}",
                sim.disk.len(),
                sim.log[sim.log.len().saturating_sub(40)..].join("\n")
            );
        }
    }
    // Drain.
    sim.enabled = true;
    sim.reconf();
    let mut guard = 0;
    while !sim.disk.is_empty() || !sim.in_flight.is_empty() {
        guard += 1;
        assert!(
            guard < 200_000,
            "never drains: disk {} held {} wants {:?} inflight {}",
            sim.disk.len(),
            sim.lane.queued(),
            sim.lane.wants_more(),
            sim.in_flight.len()
        );
        sim.load_step();
        sim.take();
        sim.finish(0);
        sim.now += 1;
    }
    assert!(sim.lane.is_idle(), "seed {seed}: not idle at the end");
    sim.deleted = false;
}

#[test]
fn fifo_order_holds_and_nothing_is_lost_under_random_operations() {
    for seed in 1..25 {
        for (w, s) in [(2, 1), (3, 2), (4, 3), (8, 5), (16, 100)] {
            run(seed, w, s, false);
        }
    }
}

#[test]
fn the_same_with_disable_delete_and_ordering_changes() {
    for seed in 1..25 {
        for (w, s) in [(2, 1), (3, 2), (4, 3), (8, 5), (16, 100)] {
            run(seed, w, s, true);
        }
    }
}
