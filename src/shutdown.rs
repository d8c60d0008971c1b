//! Shutdown: the root cancellation token, the task tracker, and the signal handling.
//!
//! `run` never installs signal handlers itself; the binary calls [`Shutdown::on_signals`] and
//! tests cancel the token directly. SIGTERM and SIGINT start the drain; a second one exits at
//! once (the operator insisted). SIGHUP requests a reload of TLS material: it only raises
//! [`Shutdown::request_reload`], which tests call directly too; whoever holds reloadable
//! material (the TLS acceptor) waits on [`Shutdown::reload_requested`] and does the work.

use std::sync::Arc;

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Cheap to clone; every long-lived task holds one.
#[derive(Clone, Default)]
pub struct Shutdown {
    token: CancellationToken,
    tracker: TaskTracker,
    /// Reload requests. `notify_one` keeps one permit when nobody is waiting, so a SIGHUP that
    /// lands while a reload runs is not lost, and a burst of them costs one extra reload.
    reload: Arc<Notify>,
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

    /// Asks for TLS material to be re-read (what SIGHUP does).
    pub fn request_reload(&self) {
        self.reload.notify_one();
    }

    /// Resolves at the next reload request. Meant for a single waiter: with several, each
    /// request wakes only one of them.
    pub async fn reload_requested(&self) {
        self.reload.notified().await
    }

    /// Spawns a task that drains on the first SIGTERM/SIGINT and exits on the second, and one
    /// that turns each SIGHUP into a reload request.
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
        // Installing the handler also replaces SIGHUP's default action, which would kill the
        // process. Not tracked, like the task above: it lives as long as the runtime.
        let mut hup = signal(SignalKind::hangup())?;
        let reload = self.reload.clone();
        tokio::spawn(async move {
            while hup.recv().await.is_some() {
                tracing::info!("SIGHUP received.");
                reload.notify_one();
            }
        });
        Ok(())
    }
}
