//! What the gateway says while redb repairs its file after an unclean stop.
//!
//! A crash, SIGKILL, OOM kill or power loss leaves the file marked for repair, and the next open
//! reads all of it (three passes over every live page) before anything can be served: 6.7 s for
//! a 1.2 GB file with a cold page cache here, so minutes for the tens of GB a month of
//! retention holds. Under systemd that start would outlive `TimeoutStartSec` (90 s by default),
//! be killed, restart, repair from the beginning again, and never serve. So while the repair
//! runs, a thread keeps extending the start timeout (`EXTEND_TIMEOUT_USEC`) and reports
//! progress in the unit's status, and the log says what is happening and how long it took.
//!
//! redb reports progress only between its passes, so the keep-alive runs on its own clock
//! rather than from the callback.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use sd_notify::NotifyState;

/// How often the start timeout is extended, and by how much: the margin covers a stalled
/// thread or a slow service manager.
const KEEPALIVE_EVERY: Duration = Duration::from_secs(10);
const EXTEND_BY: Duration = Duration::from_secs(30);

/// Passed to redb's repair callback; [`finish`](Self::finish) once the open returned.
pub(super) struct RepairReport {
    path: PathBuf,
    running: Mutex<Option<Running>>,
    percent: Arc<AtomicU32>,
}

struct Running {
    started: Instant,
    stop: mpsc::Sender<()>,
    keepalive: Option<JoinHandle<()>>,
}

impl RepairReport {
    pub(super) fn new(path: &Path) -> Arc<Self> {
        Arc::new(Self {
            path: path.to_owned(),
            running: Mutex::new(None),
            percent: Arc::default(),
        })
    }

    /// redb calls this at the start of a repair and between its passes (`progress` in 0..1).
    pub(super) fn progress(&self, progress: f64) {
        let percent = (progress.clamp(0.0, 1.0) * 100.0) as u32;
        self.percent.store(percent, Ordering::Relaxed);
        let mut running = self.running.lock().unwrap_or_else(|p| p.into_inner());
        if running.is_some() {
            tracing::info!(percent, "Repairing the database.");
            return;
        }
        let size_mb = std::fs::metadata(&self.path).map_or(0, |m| m.len() >> 20);
        tracing::warn!(
            path = %self.path.display(),
            size_mb,
            "The database was not shut down cleanly (crash, kill or power loss): repairing it \
             before serving. This reads the whole file; nothing acknowledged is lost."
        );
        let (stop, stopped) = mpsc::channel();
        let percent = self.percent.clone();
        // Without the thread the repair still runs; only the systemd keep-alive is missing.
        let keepalive = std::thread::Builder::new()
            .name("hookgate-repair".into())
            .spawn(move || loop {
                let status = format!(
                    "Repairing the database after an unclean stop: {}%.",
                    percent.load(Ordering::Relaxed)
                );
                notify(&[
                    NotifyState::ExtendTimeoutUsec(EXTEND_BY.as_micros() as u32),
                    NotifyState::Status(&status),
                ]);
                match stopped.recv_timeout(KEEPALIVE_EVERY) {
                    Err(RecvTimeoutError::Timeout) => continue,
                    _ => break,
                }
            })
            .map_err(|e| tracing::warn!(error = %e, "Cannot start the repair keep-alive thread."))
            .ok();
        *running = Some(Running {
            started: Instant::now(),
            stop,
            keepalive,
        });
    }

    /// Stops the keep-alive and logs how long the repair took, if there was one.
    pub(super) fn finish(&self, repaired: bool) {
        let running = self
            .running
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        let Some(mut running) = running else {
            return;
        };
        let _ = running.stop.send(());
        if let Some(keepalive) = running.keepalive.take() {
            let _ = keepalive.join();
        }
        let elapsed_ms = running.started.elapsed().as_millis() as u64;
        if repaired {
            tracing::info!(elapsed_ms, "Database repaired.");
        } else {
            tracing::error!(elapsed_ms, "Database repair failed.");
        }
    }
}

/// A no-op when `NOTIFY_SOCKET` is unset (not under systemd).
fn notify(states: &[NotifyState<'_>]) {
    if let Err(e) = sd_notify::notify(states) {
        tracing::debug!(error = %e, "Cannot notify systemd.");
    }
}
