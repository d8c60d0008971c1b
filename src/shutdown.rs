//! Shutdown: the root cancellation token, the task tracker, and the signal handling.
//!
//! `run` never installs signal handlers itself; the binary calls [`Shutdown::on_signals`] and
//! tests cancel the token directly. SIGTERM and SIGINT start the drain; a second one exits at
//! once (the operator insisted). SIGHUP is caught so it cannot kill the process.

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Cheap to clone; every long-lived task holds one.
#[derive(Clone, Default)]
pub struct Shutdown {
    token: CancellationToken,
    tracker: TaskTracker,
}

impl Shutdown {
    pub fn new() -> Self {
        Self::default()
    }

    /// Starts the drain.
    pub fn trigger(&self) {
        self.token.cancel();
    }

    pub fn token(&self) -> &CancellationToken {
        &self.token
    }

    pub async fn cancelled(&self) {
        self.token.cancelled().await
    }

    pub fn is_triggered(&self) -> bool {
        self.token.is_cancelled()
    }

    pub fn tracker(&self) -> &TaskTracker {
        &self.tracker
    }

    /// Spawns a task that drains on the first SIGTERM/SIGINT and exits on the second.
    pub fn on_signals(&self) -> std::io::Result<()> {
        use tokio::signal::unix::{signal, SignalKind};
        let mut term = signal(SignalKind::terminate())?;
        let mut int = signal(SignalKind::interrupt())?;
        let token = self.token.clone();
        // Not tracked: this task must outlive the drain it starts, to catch the second signal.
        tokio::spawn(async move {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
            tracing::info!("Shutdown signal received; draining.");
            token.cancel();
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
            tracing::warn!("Second shutdown signal; exiting without finishing the drain.");
            std::process::exit(1);
        });
        // SIGHUP's default action would kill the process; until TLS material can be reloaded
        // (the open operations issue) it is acknowledged and otherwise ignored.
        let mut hup = signal(SignalKind::hangup())?;
        tokio::spawn(async move {
            while hup.recv().await.is_some() {
                tracing::info!("SIGHUP received; nothing to reload yet.");
            }
        });
        Ok(())
    }
}
