//! The scheduler: turns the durable queue into attempts, one lane per destination.
//!
//! State is the set of queued deliveries, loaded from the store at start (which includes the
//! attempts a stopped process had in flight: at-least-once) on the scheduler task itself, so
//! that ingest and the API serve while a long backlog is read, and fed after every commit that
//! queues something (ingest, send API, replay) through the store's due listener, which runs on
//! the journal thread right after the commit. Attempt outcomes come back as messages. The loop
//! sleeps until the earliest lane can start something or a message arrives: no polling when
//! idle.
//!
//! A lane never waits on another: each has its own concurrency, rate limit and circuit, and
//! attempts run as separate tasks. The global `max_in_flight_total` only bounds hookgate's own
//! resource use.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use prometheus::{Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, Opts, Registry};
use tokio::sync::mpsc;

use super::attempt::{self, AttemptSettings, Finished};
use super::client::DeliveryClient;
use super::lane::Lane;
use crate::ids::{now_ms, AccountId, DeliveryId, DestinationId};
use crate::model::Destination;
use crate::shutdown::Shutdown;
use crate::store::deliveries::DueEntry;
use crate::store::{Store, StoreError};

/// How long a delivery whose outcome could not be recorded waits before it is tried again.
const RECORD_FAILURE_BACKOFF_MS: u64 = 30_000;

/// The outcome of an attempt that could not be recorded: its queue entry on disk is still at
/// its old time, and the lane holds it 30 s later instead.
const UNRECORDED: &str = "unrecorded";

/// Queue index entries read per read transaction when loading the queue at start. Each chunk
/// is then sorted into lanes on a runtime worker, where 8 k entries take a few milliseconds
/// (0.58 M loaded in 0.4 s here), short enough not to stall the requests sharing it.
const LOAD_CHUNK: usize = 8_192;

/// Queue index entries one lane's load step reads at most: the scheduler loop does nothing
/// else meanwhile, and a destination whose deliveries are sparse in a long queue is loaded in
/// several steps, with other work between them.
const LOAD_STEP_SCAN: usize = 20_000;

/// How long a lane waits before reading the queue again after a failed read.
const LOAD_FAILURE_BACKOFF_MS: u64 = 1_000;

#[derive(Debug, Clone)]
pub struct SchedulerConfig {
    /// Label delivery series with the destination id (else "all").
    pub per_resource_labels: bool,
    pub max_in_flight_total: usize,
    pub circuit_failure_threshold: u32,
    /// Queued deliveries of one destination held in memory.
    pub queue_window: usize,
    pub attempt: AttemptSettings,
}

enum Command {
    Queue(Vec<DueEntry>),
    Finished(Box<Finished>),
    DestinationChanged(AccountId, DestinationId),
}

/// Talks to the scheduler task; cheap to clone.
#[derive(Clone)]
pub struct SchedulerHandle {
    tx: mpsc::UnboundedSender<Command>,
    in_flight: Arc<Mutex<HashSet<u128>>>,
    fifo_blocked: Arc<Mutex<HashMap<DestinationId, DueEntry>>>,
    client: DeliveryClient,
    settings: AttemptSettings,
}

impl SchedulerHandle {
    /// New queue entries (after their commit).
    pub fn queue(&self, entries: &[DueEntry]) {
        let _ = self.tx.send(Command::Queue(entries.to_vec()));
    }

    /// A destination's settings changed (PATCH, delete): the lane reloads them.
    pub fn destination_changed(&self, account: AccountId, id: DestinationId) {
        let _ = self.tx.send(Command::DestinationChanged(account, id));
    }

    /// Attempts an unqueued delivery once, now, outside the lanes (test sends).
    pub async fn attempt_once(
        &self,
        store: &Store,
        entry: DueEntry,
        destination: &Destination,
    ) -> Result<Option<crate::model::Attempt>, StoreError> {
        attempt::run_once(store, &self.client, &self.settings, entry, destination)
            .await
            .map(|(_, attempt)| attempt)
    }

    /// For a FIFO destination held back by a failing head: that delivery's next attempt.
    pub fn fifo_blocked_by(&self, destination: DestinationId) -> Option<DueEntry> {
        lock(&self.fifo_blocked).get(&destination).copied()
    }

    /// Attempts running now.
    pub fn in_flight_count(&self) -> usize {
        lock(&self.in_flight).len()
    }

    /// Whether an attempt of this delivery is running now (shown as `delivering`).
    pub fn is_in_flight(&self, delivery: DeliveryId) -> bool {
        lock(&self.in_flight).contains(&delivery.raw())
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A plain set; a panic elsewhere cannot leave it half-updated in a harmful way.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Delivery metrics.
#[derive(Clone)]
pub struct DeliveryMetrics {
    deliveries: IntCounterVec,
    duration: Histogram,
    auto_disabled: IntCounter,
    loading: IntGauge,
}

impl DeliveryMetrics {
    pub fn register(registry: &Registry) -> Result<Self, prometheus::Error> {
        let deliveries = IntCounterVec::new(
            Opts::new(
                "hookgate_deliveries_total",
                "Delivery attempts by destination and outcome (delivered, retry, dead_letter, dropped).",
            ),
            &["destination_id", "outcome"],
        )?;
        let duration = Histogram::with_opts(
            HistogramOpts::new(
                "hookgate_delivery_duration_seconds",
                "Time from sending a delivery to its response or failure.",
            )
            .buckets(vec![
                0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
            ]),
        )?;
        let auto_disabled = IntCounter::new(
            "hookgate_destinations_auto_disabled_total",
            "Destinations hookgate disabled on its own (410 Gone, failing too long, dead letters).",
        )?;
        registry.register(Box::new(deliveries.clone()))?;
        registry.register(Box::new(duration.clone()))?;
        let loading = IntGauge::new(
            "hookgate_delivery_queue_loading",
            "1 while the queue is read from disk after start; no delivery starts until it is 0.",
        )?;
        registry.register(Box::new(auto_disabled.clone()))?;
        registry.register(Box::new(loading.clone()))?;
        Ok(Self {
            deliveries,
            duration,
            auto_disabled,
            loading,
        })
    }
}

struct State {
    store: Store,
    client: DeliveryClient,
    config: SchedulerConfig,
    metrics: DeliveryMetrics,
    lanes: HashMap<DestinationId, Lane>,
    /// `(wake_ms, destination)` of every lane that could start something without news.
    wake: BTreeSet<(u64, DestinationId)>,
    wake_of: HashMap<DestinationId, u64>,
    running: usize,
    in_flight: Arc<Mutex<HashSet<u128>>>,
    fifo_blocked: Arc<Mutex<HashMap<DestinationId, DueEntry>>>,
    tx: mpsc::UnboundedSender<Command>,
    shutdown: Shutdown,
}

/// Starts the scheduler: sets the store's due listener, loads the queue, spawns the loop.
pub fn spawn(
    store: Store,
    client: DeliveryClient,
    config: SchedulerConfig,
    metrics: DeliveryMetrics,
    shutdown: Shutdown,
) -> Result<SchedulerHandle, StoreError> {
    let (tx, rx) = mpsc::unbounded_channel();
    let handle = SchedulerHandle {
        tx: tx.clone(),
        in_flight: Arc::default(),
        fifo_blocked: Arc::default(),
        client: client.clone(),
        settings: config.attempt.clone(),
    };
    // Listener first, then the load: an entry committed in between arrives twice, and a lane
    // treats a second copy of a queued delivery as a move, not a duplicate.
    let feed = handle.clone();
    store.set_due_listener(Arc::new(move |entries: &[DueEntry]| feed.queue(entries)));
    let mut state = State {
        store,
        client,
        config,
        metrics,
        lanes: HashMap::new(),
        wake: BTreeSet::new(),
        wake_of: HashMap::new(),
        running: 0,
        in_flight: handle.in_flight.clone(),
        fifo_blocked: handle.fifo_blocked.clone(),
        tx,
        shutdown: shutdown.clone(),
    };
    // Not read here: `run` answers nothing until this returns, and reading a backlog of a
    // million deliveries takes seconds, during which ingest would refuse providers.
    state.metrics.loading.set(1);
    shutdown.tracker().spawn(async move {
        if state.load_queue().await {
            state.run(rx).await;
        }
    });
    Ok(handle)
}

// === impl State ===

impl State {
    /// Reads the whole queue into the lanes before the loop starts anything, so that a FIFO
    /// lane knows its true head. In chunks, each in its own short read transaction (lanes keep
    /// only a window of a large backlog, so memory stays bounded whatever the queue's length),
    /// read on the blocking pool. Entries committed meanwhile wait in the command channel; one
    /// also read from disk arrives twice, which a lane treats as a move. A failed read is
    /// retried; `false` when shutdown came first.
    async fn load_queue(&mut self) -> bool {
        let started = Instant::now();
        let (mut from, mut queued) = ((0, 0), 0);
        loop {
            let store = self.store.clone();
            let read = tokio::task::spawn_blocking(move || {
                let mut chunk = Vec::with_capacity(LOAD_CHUNK);
                let next = store.scan_due(from, LOAD_CHUNK, |e| {
                    chunk.push(e);
                    true
                })?;
                Ok::<_, StoreError>((chunk, next))
            });
            let failure = tokio::select! {
                read = read => match read {
                    Ok(Ok((chunk, next))) => {
                        queued += chunk.len();
                        self.queue(chunk);
                        match next {
                            Some(pos) => {
                                from = pos;
                                continue;
                            }
                            None => break,
                        }
                    }
                    Ok(Err(e)) => e.to_string(),
                    Err(e) => e.to_string(),
                },
                _ = self.shutdown.cancelled() => return false,
            };
            tracing::error!(error = %failure, "Cannot read the delivery queue; retrying in 1 s. Deliveries wait.");
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_millis(LOAD_FAILURE_BACKOFF_MS)) => {}
                _ = self.shutdown.cancelled() => return false,
            }
        }
        self.metrics.loading.set(0);
        tracing::info!(
            queued,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "Delivery queue loaded."
        );
        true
    }

    async fn run(mut self, mut rx: mpsc::UnboundedReceiver<Command>) {
        loop {
            while let Ok(cmd) = rx.try_recv() {
                self.handle(cmd);
            }
            self.dispatch();
            let next = if self.running < self.config.max_in_flight_total {
                self.wake.first().map(|(t, _)| *t)
            } else {
                None
            };
            let sleep = next.map(|t| Duration::from_millis(t.saturating_sub(now_ms())));
            tokio::select! {
                cmd = rx.recv() => match cmd {
                    Some(cmd) => self.handle(cmd),
                    None => break,
                },
                _ = tokio::time::sleep(sleep.unwrap_or(Duration::ZERO)), if sleep.is_some() => {}
                _ = self.shutdown.cancelled() => break,
            }
        }
        tracing::info!(
            running = self.running,
            "Scheduler stopped; attempts in flight finish on their own."
        );
    }

    fn lane(&mut self, account: AccountId, id: DestinationId) -> &mut Lane {
        if !self.lanes.contains_key(&id) {
            let (threshold, window) = (
                self.config.circuit_failure_threshold,
                self.config.queue_window,
            );
            let lane = match self.load_destination(account, id) {
                Ok(destination) => Lane::new(destination, threshold, window),
                Err(()) => Lane::paused(threshold, window),
            };
            self.lanes.insert(id, lane);
        }
        // Inserted just above when absent.
        self.lanes
            .get_mut(&id)
            .expect("invariant: lane exists after insertion")
    }

    /// `Err` when the store could not be read: the lane then waits (paused) rather than
    /// treating the destination as deleted and dead-lettering its deliveries.
    fn load_destination(
        &self,
        account: AccountId,
        id: DestinationId,
    ) -> Result<Option<Arc<Destination>>, ()> {
        self.store
            .destination(account, id)
            .map(|d| d.map(Arc::new))
            .map_err(|e| {
                tracing::error!(destination_id = %id, error = %e, "Cannot read destination; its deliveries wait.");
            })
    }

    fn queue(&mut self, entries: Vec<DueEntry>) {
        let mut touched = HashSet::new();
        for e in entries {
            if lock(&self.in_flight).contains(&e.delivery.raw()) {
                // An attempt of it is running; its outcome decides what comes next.
                continue;
            }
            let lane = self.lane(e.account, e.destination);
            if lane.parks() {
                // On disk only; the lane reads it when the destination is enabled or deleted.
                lane.load_from_start();
                continue;
            }
            lane.insert(e);
            touched.insert(e.destination);
        }
        for id in touched {
            self.reschedule(id, None);
        }
    }

    /// New settings for a destination. Re-enabling one loads its queue back from disk.
    fn destination_changed(&mut self, account: AccountId, id: DestinationId) {
        let Ok(destination) = self.load_destination(account, id) else {
            return;
        };
        // A parked lane is never forgotten (it has deliveries on disk only), so no lane means
        // nothing of this destination waits on disk.
        let was_parked = self.lanes.get(&id).is_some_and(Lane::parks);
        // Enabled again, or deleted: its deliveries go out, or are dead-lettered, either way
        // read from disk.
        let runs = destination.as_ref().is_none_or(|d| d.enabled);
        if let Some(lane) = self.lanes.get_mut(&id) {
            lane.reconfigure(destination);
            if lane.parks() {
                lane.park();
            }
        }
        if was_parked && runs {
            // Its deliveries are on disk only; the lane loads them as any lane with a backlog.
            self.lane(account, id).load_from_start();
        }
        self.reschedule(id, None);
    }

    fn handle(&mut self, cmd: Command) {
        match cmd {
            Command::Queue(entries) => self.queue(entries),
            Command::Finished(f) => self.finished(*f),
            Command::DestinationChanged(account, id) => self.destination_changed(account, id),
        }
    }

    fn finished(&mut self, f: Finished) {
        self.running = self.running.saturating_sub(1);
        lock(&self.in_flight).remove(&f.entry.delivery.raw());
        let id = f.entry.destination;
        let label = if self.config.per_resource_labels {
            id.to_string()
        } else {
            "all".to_owned()
        };
        self.metrics
            .deliveries
            .with_label_values(&[label.as_str(), f.outcome])
            .inc();
        if f.outcome != "dropped" {
            self.metrics.duration.observe(f.duration.as_secs_f64());
        }
        if let Some(reason) = &f.disabled {
            self.metrics.auto_disabled.inc();
            tracing::warn!(destination_id = %id, reason = %reason, "Destination disabled automatically.");
            self.notify_disabled(f.entry.account, id, reason.clone());
        }
        self.track_fifo_head(&f);
        let reload = if f.disabled.is_some() {
            self.load_destination(f.entry.account, id).ok()
        } else {
            None
        };
        if let Some(lane) = self.lanes.get_mut(&id) {
            lane.finished(f.succeeded, f.retry, f.outcome == UNRECORDED);
            if let Some(destination) = reload {
                lane.reconfigure(destination);
                lane.park();
            }
        }
        self.reschedule(id, None);
    }

    /// Remembers a FIFO destination whose head delivery is failing, for the API to show why
    /// the destination is not advancing.
    fn track_fifo_head(&self, f: &Finished) {
        let fifo = self
            .lanes
            .get(&f.entry.destination)
            .and_then(|l| l.destination())
            .is_some_and(|d| d.ordering == crate::model::Ordering::Fifo);
        let mut blocked = lock(&self.fifo_blocked);
        match (&f.retry, fifo) {
            (Some(next), true) => {
                blocked.insert(f.entry.destination, *next);
            }
            _ => {
                blocked.remove(&f.entry.destination);
            }
        }
    }

    /// Sends an `endpoint.disabled` message to the account's notification destination, if it
    /// has one (and it is not the destination just disabled).
    fn notify_disabled(&self, account: AccountId, destination: DestinationId, reason: String) {
        let store = self.store.clone();
        self.shutdown.tracker().spawn(async move {
            let target = match store.account(account) {
                Ok(Some(a)) => a.notification_destination_id,
                _ => None,
            };
            let Some(target) = target.filter(|t| *t != destination) else {
                return;
            };
            let id = crate::ids::EventId::new();
            // The id's time, not a second clock read: see `EventId::new`.
            let now = id.created_ms();
            let payload = serde_json::json!({
                "destination_id": destination,
                "reason": reason,
            });
            let Ok(payload) = serde_json::value::to_raw_value(&payload) else {
                return;
            };
            let event = crate::model::Event {
                id,
                account_id: account,
                // hookgate's own notices come from no source; the nil id marks them.
                source_id: crate::ids::SourceId(0),
                origin: crate::model::Origin::Outbound,
                received_at_ms: now,
                event_type: Some("endpoint.disabled".into()),
                dedupe_key: None,
                content_type: Some("application/json".into()),
                headers: Vec::new(),
                body: crate::http::api::messages::envelope_body(
                    id,
                    "endpoint.disabled",
                    now,
                    &payload,
                ),
            };
            if let Err(e) = store
                .append_event(event, vec![target], Duration::ZERO)
                .await
            {
                tracing::error!(error = %e, "Could not queue the endpoint.disabled notification.");
            }
        });
    }

    fn reschedule(&mut self, id: DestinationId, hint: Option<u64>) {
        if let Some(old) = self.wake_of.remove(&id) {
            self.wake.remove(&(old, id));
        }
        let again = match self.lanes.get(&id).and_then(Lane::wants_more) {
            Some(from) => self.load_more(id, from),
            None => None,
        };
        let Some(lane) = self.lanes.get(&id) else {
            return;
        };
        let wake = match (lane.next_wake(), hint) {
            (Some(w), Some(h)) => Some(w.max(h)),
            (w, _) => w,
        };
        let wake = match (wake, again) {
            (Some(w), Some(a)) => Some(w.min(a)),
            (w, a) => w.or(a),
        };
        if let Some(w) = wake {
            self.wake.insert((w, id));
            self.wake_of.insert(id, w);
        } else if lane.is_idle() {
            // Nothing queued or running: forget the lane (and its possibly stale settings).
            self.lanes.remove(&id);
        }
    }

    /// One load step for a lane that has deliveries on disk only: reads the queue index from
    /// `from` for this destination's entries, up to the lane's room and at most
    /// [`LOAD_STEP_SCAN`] index entries. Runs on the scheduler loop, so the index cannot
    /// change under it in a way the loop has not seen: every commit that queues something is
    /// announced after it is visible. Returns when to come back if the lane still wants more.
    fn load_more(&mut self, id: DestinationId, from: (u64, u128)) -> Option<u64> {
        let room = self.lanes.get(&id).map_or(0, Lane::room);
        let mut found = Vec::new();
        let scanned = self.store.scan_due(from, LOAD_STEP_SCAN, |e| {
            if e.destination != id {
                return true;
            }
            if found.len() >= room {
                return false;
            }
            found.push(e);
            true
        });
        let next = match scanned {
            Ok(next) => next,
            Err(e) => {
                tracing::error!(destination_id = %id, error = %e, "Cannot read the queue; the destination's backlog waits.");
                return Some(now_ms() + LOAD_FAILURE_BACKOFF_MS);
            }
        };
        {
            // Running attempts are not queued; their outcome queues them again if need be.
            let running = lock(&self.in_flight);
            found.retain(|e| !running.contains(&e.delivery.raw()));
        }
        let lane = self.lanes.get_mut(&id)?;
        lane.loaded(found, next);
        // Not `now`: dispatch would take the lane again at once, and a destination sparse in a
        // long queue would be read to the end in one go, with messages waiting meanwhile.
        lane.wants_more().map(|_| now_ms() + 1)
    }

    fn dispatch(&mut self) {
        let now = now_ms();
        while self.running < self.config.max_in_flight_total {
            let Some(&(t, id)) = self.wake.first() else {
                break;
            };
            if t > now {
                break;
            }
            self.wake.remove(&(t, id));
            self.wake_of.remove(&id);
            let budget = self.config.max_in_flight_total - self.running;
            let Some(lane) = self.lanes.get_mut(&id) else {
                continue;
            };
            let (ready, hint) = lane.take_ready(now, budget);
            let destination = lane.destination().cloned();
            for entry in ready {
                self.start(entry, destination.clone());
            }
            self.reschedule(id, hint);
        }
    }

    fn start(&mut self, entry: DueEntry, destination: Option<Arc<Destination>>) {
        self.running += 1;
        lock(&self.in_flight).insert(entry.delivery.raw());
        let (store, client, settings, tx) = (
            self.store.clone(),
            self.client.clone(),
            self.config.attempt.clone(),
            self.tx.clone(),
        );
        self.shutdown.tracker().spawn(async move {
            let finished =
                match attempt::run(&store, &client, &settings, entry, destination.as_deref())
                    .await
                {
                    Ok(f) => f,
                    Err(e) => {
                        tracing::error!(delivery_id = %entry.delivery, error = %e, "Attempt outcome not recorded; the delivery stays queued.");
                        Finished {
                            entry,
                            succeeded: false,
                            retry: Some(DueEntry {
                                due_ms: now_ms() + RECORD_FAILURE_BACKOFF_MS,
                                ..entry
                            }),
                            disabled: None,
                            status_code: None,
                            duration: Duration::ZERO,
                            outcome: UNRECORDED,
                        }
                    }
                };
            let _ = tx.send(Command::Finished(Box::new(finished)));
        });
    }
}
