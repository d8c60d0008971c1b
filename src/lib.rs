//! hookgate: a self-hosted webhook reliability gateway.
//!
//! A 2xx from hookgate means the event is on disk (DESIGN.md, "The one rule"). The modules:
//! - [`config`]: `RawConfig` (the TOML file) → validated, frozen [`Config`].
//! - [`store`]: the `Store` boundary over redb; [`store::journal`] is the single writer with
//!   group commit that every write goes through.
//! - [`http`]: the router, listeners and TLS, the `/v1` control-plane API, health endpoints.
//! - [`verify`]: inbound provider signature verification, one file per provider.
//! - [`routing`]: event-type patterns and route matching; [`catalog`] keeps sources and routes
//!   in memory for the ingest path.
//! - [`delivery`]: retry policy, Standard Webhooks signing, the SSRF address policy.
//! - [`ids`], [`model`]: prefixed time-ordered ids and the shared records.
//! - [`cleaner`]: retention, removing settled events past their account's retention.
//! - [`metrics`]: scrape-time figures (queue depth, storage) beside the modules' own counters.
//! - [`shutdown`], [`telemetry`], [`cli`]: process plumbing.
//!
//! [`run`] takes a validated config, already-bound listeners and a shutdown handle, so tests
//! start the real server on port 0 and stop it on demand.

pub mod catalog;
pub mod cleaner;
pub mod cli;
pub mod config;
pub mod delivery;
pub mod http;
pub mod ids;
pub mod metrics;
pub mod model;
pub mod routing;
pub mod shutdown;
pub mod store;
pub mod telemetry;
pub mod verify;

use std::net::SocketAddr;
use std::sync::Arc;

pub use config::Config;
pub use shutdown::Shutdown;

/// Listeners bound by the caller before `run`.
pub struct Listeners {
    pub main: tokio::net::TcpListener,
    /// `[metrics] listen`: a second listener serving only `/metrics`.
    pub metrics: Option<tokio::net::TcpListener>,
}

/// What `run` reports once storage is open and it is about to serve.
#[derive(Debug, Clone)]
pub struct ReadyInfo {
    pub listen: SocketAddr,
    pub metrics: Option<SocketAddr>,
    pub db_path: std::path::PathBuf,
}

fn start_delivery(
    config: &Config,
    store: &store::Store,
    registry: &prometheus::Registry,
    shutdown: &Shutdown,
) -> Result<delivery::scheduler::SchedulerHandle, RunError> {
    use delivery::{attempt, client, scheduler};
    let d = &config.delivery;
    let client = client::DeliveryClient::new(client::ClientConfig {
        ssrf: delivery::ssrf::SsrfPolicy {
            allow_private_networks: d.allow_private_networks,
            allow_cidrs: d.allow_cidrs.clone(),
        },
        connect_timeout: d.connect_timeout,
        ..Default::default()
    })?;
    let metrics = scheduler::DeliveryMetrics::register(registry)?;
    let handle = scheduler::spawn(
        store.clone(),
        client,
        scheduler::SchedulerConfig {
            per_resource_labels: config.metrics.per_resource_labels,
            max_in_flight_total: d.max_in_flight_total,
            queue_window: d.queue_window,
            circuit_failure_threshold: d.circuit_failure_threshold,
            attempt: attempt::AttemptSettings {
                header_prefix: d.header_prefix.clone(),
                forward_headers: d.forward_headers.clone(),
                health: store::deliveries::HealthPolicy {
                    failing_for_ms: d.auto_disable_after.as_millis() as u64,
                    consecutive_dead_letters: d.auto_disable_after_dead_letters,
                },
            },
        },
        metrics,
        shutdown.clone(),
    )?;
    Ok(handle)
}

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("cannot build the delivery HTTP client")]
    Client(#[from] delivery::client::ClientBuildError),
    #[error("cannot open storage")]
    Store(#[from] store::StoreError),
    #[error("cannot read the listener address")]
    Listener(#[source] std::io::Error),
    #[error("cannot build metrics")]
    Metrics(#[from] prometheus::Error),
    #[error("cannot load the TLS certificate and key")]
    Tls(#[from] http::tls::TlsError),
}

/// Runs the gateway until `shutdown` is triggered, then drains: stop accepting, let in-flight
/// requests finish their commits (bounded by `server.shutdown_grace_s`), let the journal commit
/// what it holds, close the store.
pub async fn run(
    config: Arc<Config>,
    listeners: Listeners,
    shutdown: Shutdown,
    on_ready: impl FnOnce(ReadyInfo) + Send,
) -> Result<(), RunError> {
    let registry = prometheus::Registry::new();
    // Before storage opens: a bad pair (changed since the config was validated) fails fast.
    let tls = match &config.server.tls {
        Some(files) => {
            let metrics = http::tls::TlsMetrics::register(&registry)?;
            Some(http::tls::TlsAcceptor::load(files, metrics)?)
        }
        None => None,
    };
    let (store, journal_thread) = store::Store::open(&config.storage, &registry)?;
    let listen = listeners.main.local_addr().map_err(RunError::Listener)?;
    let catalog = catalog::Catalog::load(&store)?;
    let scheduler = start_delivery(&config, &store, &registry, &shutdown)?;
    cleaner::spawn(
        store.clone(),
        config.retention.clone(),
        &registry,
        &shutdown,
    )?;
    registry.register(Box::new(metrics::GatewayCollector::new(
        store.clone(),
        scheduler.clone(),
    )?))?;
    let state = http::AppState::new(config.clone(), store.clone(), registry, catalog, scheduler)?;
    tracing::info!(%listen, tls = tls.is_some(), db = %store.path().display(), "Listening.");
    let metrics_addr = match &listeners.metrics {
        Some(l) => Some(l.local_addr().map_err(RunError::Listener)?),
        None => None,
    };
    if let Some(addr) = metrics_addr {
        tracing::info!(%addr, "Serving /metrics.");
    }
    on_ready(ReadyInfo {
        listen,
        metrics: metrics_addr,
        db_path: store.path().to_owned(),
    });

    http::tls::spawn_reloader(tls.clone(), &shutdown, http::tls::EXPIRY_RECHECK);
    if let Some(listener) = listeners.metrics {
        let app = http::metrics_router(state.clone());
        let token = shutdown.token().clone();
        // Scrapes are short and carry no writes: this listener simply stops with the drain.
        shutdown.tracker().spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async move { token.cancelled().await })
                .await;
        });
    }
    let deadline = http::serve(listeners.main, state, &config.server, tls, shutdown.clone()).await;
    // Every request handler has returned (or the grace period ran out); dropping our handle
    // leaves the journal with no senders, so it commits its queue and exits.
    drop(store);
    shutdown.tracker().close();
    let remaining = deadline.saturating_duration_since(tokio::time::Instant::now());
    if tokio::time::timeout(remaining, async {
        shutdown.tracker().wait().await;
        journal_thread.join().await;
    })
    .await
    .is_err()
    {
        tracing::warn!("Grace period over before the drain finished; exiting anyway.");
    }
    tracing::info!("Stopped.");
    Ok(())
}
