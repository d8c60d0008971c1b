//! `/metrics` figures that are read at scrape time rather than counted as they happen: queue
//! depth by state, the oldest pending delivery, dead letters, disabled destinations, storage
//! size, and build info. Counters and histograms live with the modules that move them
//! (journal, ingest, send API, scheduler) and are registered on the same registry.

use prometheus::core::{Collector, Desc};
use prometheus::proto::MetricFamily;
use prometheus::{IntGauge, IntGaugeVec, Opts};

use crate::delivery::scheduler::SchedulerHandle;
use crate::ids::now_ms;
use crate::store::Store;

/// Due entries counted at most per scrape.
const DUE_SCAN_CAP: usize = 1_000_000;

pub struct GatewayCollector {
    store: Store,
    scheduler: SchedulerHandle,
    queue_depth: IntGaugeVec,
    oldest_pending: IntGauge,
    destinations_disabled: IntGauge,
    storage_bytes: IntGauge,
    build_info: IntGaugeVec,
    descs: Vec<Desc>,
}

impl GatewayCollector {
    pub fn new(store: Store, scheduler: SchedulerHandle) -> Result<Self, prometheus::Error> {
        let queue_depth = IntGaugeVec::new(
            Opts::new(
                "hookgate_queue_depth",
                "Deliveries by state: pending (due now), retry_scheduled (due later), delivering, dead_letter.",
            ),
            &["state"],
        )?;
        let oldest_pending = IntGauge::new(
            "hookgate_oldest_pending_seconds",
            "How long the longest-waiting due delivery has been waiting (0 when none is due).",
        )?;
        let destinations_disabled = IntGauge::new(
            "hookgate_destinations_disabled",
            "Destinations currently disabled (by an operator or automatically).",
        )?;
        let storage_bytes = IntGauge::new("hookgate_storage_bytes", "Size of the database file.")?;
        let build_info = IntGaugeVec::new(
            Opts::new("hookgate_build_info", "Always 1; the version as a label."),
            &["version"],
        )?;
        build_info
            .with_label_values(&[env!("CARGO_PKG_VERSION")])
            .set(1);
        let mut descs = Vec::new();
        for c in [
            &queue_depth as &dyn Collector,
            &oldest_pending,
            &destinations_disabled,
            &storage_bytes,
            &build_info,
        ] {
            descs.extend(c.desc().into_iter().cloned());
        }
        Ok(Self {
            store,
            scheduler,
            queue_depth,
            oldest_pending,
            destinations_disabled,
            storage_bytes,
            build_info,
            descs,
        })
    }
}

impl Collector for GatewayCollector {
    fn desc(&self) -> Vec<&Desc> {
        self.descs.iter().collect()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        let now = now_ms();
        match self.store.queue_stats(now, DUE_SCAN_CAP) {
            Ok(s) => {
                let delivering = self.scheduler.in_flight_count() as i64;
                let due = s.due_now as i64;
                let set = |state: &str, v: i64| {
                    self.queue_depth.with_label_values(&[state]).set(v.max(0));
                };
                set("pending", due - delivering);
                set("retry_scheduled", s.queued as i64 - due);
                set("delivering", delivering);
                set("dead_letter", s.dead_letters as i64);
                let oldest = s
                    .oldest_due_ms
                    .filter(|t| *t <= now)
                    .map_or(0, |t| (now - t) / 1000);
                self.oldest_pending.set(oldest as i64);
                self.destinations_disabled
                    .set(s.disabled_destinations as i64);
                self.storage_bytes.set(s.file_bytes as i64);
            }
            Err(e) => {
                tracing::warn!(error = %e, "Queue figures unavailable for this scrape.");
            }
        }
        let mut out = Vec::new();
        out.extend(self.queue_depth.collect());
        out.extend(self.oldest_pending.collect());
        out.extend(self.destinations_disabled.collect());
        out.extend(self.storage_bytes.collect());
        out.extend(self.build_info.collect());
        out
    }
}
