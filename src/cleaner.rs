//! The cleaner: applies retention every `[retention] interval_s`.
//!
//! Each run is one sweep of [`Store::purge_expired`] jobs, each examining at most
//! [`MAX_EVENTS_PER_PASS`] expired events, so ingest batches interleave with a long sweep instead
//! of waiting behind it; a sweep ends when every account's expired range has been examined.
//! What may be removed, and that a delivery still owed is never removed, is decided in
//! `store::retention`; this module only decides when, counts and logs.
//!
//! Invariants: the task is spawned through the shutdown tracker and selects on cancellation in
//! every wait, so it never holds the drain (it owns a `Store` clone, and the journal exits only
//! once every clone is gone). A failed run is counted and logged and the next one happens on
//! schedule: retention is catch-up work, nothing is lost by doing it later.
//!
//! Not done here: giving disk space back to the filesystem. redb reuses freed pages, so the file
//! stops growing at steady state; shrinking it is `hookgate compact`, offline.

use std::time::{Duration, Instant};

use prometheus::{IntCounter, IntCounterVec, Opts, Registry};
use tokio::task::JoinHandle;
use tracing::Instrument;

use crate::config::RetentionConfig;
use crate::ids::now_ms;
use crate::shutdown::Shutdown;
use crate::store::retention::{PurgeCursor, PurgeReport};
use crate::store::{Store, StoreError};

/// Expired events one journal job examines at most. Sized so a job stays within a few
/// milliseconds of writer time: it shares its commit with whatever ingest writes are waiting.
pub const MAX_EVENTS_PER_PASS: usize = 1000;

/// The first run comes this soon after start (or after `interval`, if shorter), not a whole
/// interval later, so a gateway restarted often still cleans up.
const FIRST_RUN_DELAY: Duration = Duration::from_secs(10);

/// Retention metrics, registered on the gateway's registry.
#[derive(Clone)]
pub struct RetentionMetrics {
    deleted_events: IntCounter,
    runs_ok: IntCounter,
    runs_error: IntCounter,
}

// === impl RetentionMetrics ===

impl RetentionMetrics {
    pub fn register(registry: &Registry) -> Result<Self, prometheus::Error> {
        let deleted_events = IntCounter::new(
            "hookgate_retention_deleted_events_total",
            "Events removed by retention, with their deliveries and attempts.",
        )?;
        let runs = IntCounterVec::new(
            Opts::new(
                "hookgate_retention_runs_total",
                "Retention runs, by outcome (ok, error).",
            ),
            &["outcome"],
        )?;
        registry.register(Box::new(deleted_events.clone()))?;
        registry.register(Box::new(runs.clone()))?;
        Ok(Self {
            deleted_events,
            runs_ok: runs.with_label_values(&["ok"]),
            runs_error: runs.with_label_values(&["error"]),
        })
    }
}

/// Starts the cleaner. It runs even when the global retention is zero (keep everything), since
/// an account may set its own.
pub fn spawn(
    store: Store,
    retention: RetentionConfig,
    registry: &Registry,
    shutdown: &Shutdown,
) -> Result<JoinHandle<()>, prometheus::Error> {
    let metrics = RetentionMetrics::register(registry)?;
    let task =
        run(store, retention, metrics, shutdown.clone()).instrument(tracing::info_span!("cleaner"));
    Ok(shutdown.tracker().spawn(task))
}

/// Runs a sweep every `retention.interval` until cancelled.
async fn run(
    store: Store,
    retention: RetentionConfig,
    metrics: RetentionMetrics,
    shutdown: Shutdown,
) {
    let mut delay = retention.interval.min(FIRST_RUN_DELAY);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(delay) => {}
        }
        delay = retention.interval;
        let started = Instant::now();
        match sweep(&store, retention.default_retention, &shutdown).await {
            Ok(report) => {
                metrics.runs_ok.inc();
                metrics.deleted_events.inc_by(report.events);
                if report.events > 0 {
                    tracing::info!(
                        events = report.events,
                        deliveries = report.deliveries,
                        attempts = report.attempts,
                        kept_in_progress = report.kept,
                        duration_ms = started.elapsed().as_millis() as u64,
                        "Retention removed expired events."
                    );
                }
                if report.unreadable > 0 {
                    tracing::warn!(
                        records = report.unreadable,
                        "Retention kept expired records it could not decode."
                    );
                }
            }
            // The drain started during the run: not a failure.
            Err(StoreError::ShuttingDown) if shutdown.is_triggered() => return,
            Err(e) => {
                metrics.runs_error.inc();
                tracing::error!(
                    error = %crate::http::tls::render_chain(&e),
                    "Retention run failed; the next run retries."
                );
            }
        }
    }
}

/// One sweep over every account's expired range, job by job; stops early on cancellation.
async fn sweep(
    store: &Store,
    default_retention: Duration,
    shutdown: &Shutdown,
) -> Result<PurgeReport, StoreError> {
    // One `now` for the whole sweep, so every job sees the same cutoffs and the cursor stays
    // meaningful between jobs.
    let now = now_ms();
    let mut total = PurgeReport::default();
    let mut cursor = PurgeCursor::default();
    loop {
        let pass = tokio::select! {
            _ = shutdown.cancelled() => return Ok(total),
            pass = store.purge_expired(now, default_retention, MAX_EVENTS_PER_PASS, cursor) => pass?,
        };
        total.add(&pass);
        match pass.next {
            Some(next) => cursor = next,
            None => return Ok(total),
        }
    }
}
