//! HTTP: shared state, the router, and the connection loop.
//!
//! [`router`] builds the whole application from state; the server and tests use the same
//! function. [`serve`] runs hyper's auto (HTTP/1.1 + HTTP/2) connection builder directly
//! rather than `axum::serve`, because the header read timeout (slow-client protection) and
//! TLS need the connection builder in hand. With TLS ([`tls`]), the handshake runs inside each
//! connection's task, never on the accept loop, so a slow or hostile client cannot stall
//! accepting others.

pub mod api;
pub mod auth;
mod dashboard;
pub mod envelope;
pub mod health;
pub mod ingest;
pub mod tls;

use std::convert::Infallible;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::error_handling::HandleErrorLayer;
use axum::extract::{DefaultBodyLimit, Request};
use axum::handler::Handler as _;
use axum::http::Method;
use axum::response::Response;
use axum::Router;
use futures_util::future::Either;
use futures_util::FutureExt as _;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tower::util::BoxCloneSyncService;
use tower::{ServiceBuilder, ServiceExt as _};

use crate::catalog::Catalog;
use crate::config::{Config, ServerConfig};
use crate::delivery::scheduler::SchedulerHandle;
use crate::shutdown::Shutdown;
use crate::store::Store;

/// State every handler can reach; cheap to clone.
#[derive(Clone)]
pub struct AppState {
    inner: Arc<StateInner>,
}

struct StateInner {
    config: Arc<Config>,
    store: Store,
    registry: prometheus::Registry,
    /// Set when the drain starts, so `/readyz` turns 503 before the listener closes.
    draining: AtomicBool,
    api_metrics: api::ApiMetrics,
    ingest_metrics: ingest::IngestMetrics,
    message_metrics: api::messages::MessageMetrics,
    catalog: Catalog,
    scheduler: SchedulerHandle,
}

// === impl AppState ===

impl AppState {
    pub fn new(
        config: Arc<Config>,
        store: Store,
        registry: prometheus::Registry,
        catalog: Catalog,
        scheduler: SchedulerHandle,
    ) -> Result<Self, prometheus::Error> {
        let api_metrics = api::ApiMetrics::register(&registry)?;
        let ingest_metrics = ingest::IngestMetrics::register(&registry)?;
        let message_metrics = api::messages::MessageMetrics::register(&registry)?;
        Ok(Self {
            inner: Arc::new(StateInner {
                config,
                store,
                registry,
                draining: AtomicBool::new(false),
                api_metrics,
                ingest_metrics,
                message_metrics,
                catalog,
                scheduler,
            }),
        })
    }

    pub fn scheduler(&self) -> &SchedulerHandle {
        &self.inner.scheduler
    }

    pub fn catalog(&self) -> &Catalog {
        &self.inner.catalog
    }

    pub fn message_metrics(&self) -> &api::messages::MessageMetrics {
        &self.inner.message_metrics
    }

    pub fn ingest_metrics(&self) -> &ingest::IngestMetrics {
        &self.inner.ingest_metrics
    }

    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    pub fn registry(&self) -> &prometheus::Registry {
        &self.inner.registry
    }

    pub fn api_metrics(&self) -> &api::ApiMetrics {
        &self.inner.api_metrics
    }

    pub fn is_draining(&self) -> bool {
        self.inner.draining.load(Ordering::Relaxed)
    }

    fn start_draining(&self) {
        self.inner.draining.store(true, Ordering::Relaxed);
    }
}

/// The `[metrics] listen` application: `/metrics` only.
pub fn metrics_router(state: AppState) -> Router {
    Router::new()
        .route("/metrics", axum::routing::get(health::metrics))
        .with_state(state)
}

/// The whole application.
pub fn router(state: AppState) -> Router {
    let (api, openapi) = api::routes().split_for_parts();
    let openapi = Arc::new(openapi);
    let timeout = state.config().server.request_timeout;
    let max_body = state.config().server.max_body_bytes;
    let dashboard = if state.config().dashboard.enabled {
        dashboard::routes()
    } else {
        Router::new()
    };
    Router::new()
        .merge(health::routes(openapi))
        .merge(api)
        .merge(dashboard)
        .fallback(envelope::fallback)
        .method_not_allowed_fallback(envelope::method_not_allowed)
        .layer(DefaultBodyLimit::max(max_body))
        .layer(
            ServiceBuilder::new()
                .layer(axum::middleware::from_fn(envelope::with_request_context))
                .layer(HandleErrorLayer::new(|_: tower::BoxError| async {
                    envelope::request_timeout()
                }))
                .timeout(timeout),
        )
        .with_state(state)
}

/// The service hyper runs on every connection. The two write paths whose throughput is the
/// product, `POST /ingest/{token}` and `POST /v1/messages`, skip the router and its middleware
/// stack (a boxed future per layer, extension maps, route matching: together about as much CPU
/// per request as the ingest handler itself); they get the same request scope, timeout and
/// body limit by hand. Everything else, including every odd form of those paths, goes through
/// the router, which stays the reference for what each route answers.
#[derive(Clone)]
struct Gateway {
    router: TowerToHyperService<Router>,
    send_message: BoxCloneSyncService<Request<Incoming>, Response, Infallible>,
    state: AppState,
}

type FastFuture =
    std::pin::Pin<Box<dyn std::future::Future<Output = Result<Response, Infallible>> + Send>>;

impl Gateway {
    fn new(state: AppState) -> Self {
        let send_message = ServiceBuilder::new()
            .layer(DefaultBodyLimit::max(state.config().server.max_body_bytes))
            .service(api::messages::send_message.with_state(state.clone()));
        Self {
            router: TowerToHyperService::new(router(state.clone())),
            send_message: BoxCloneSyncService::new(send_message),
            state,
        }
    }
}

impl hyper::service::Service<Request<Incoming>> for Gateway {
    type Response = Response;
    type Error = Infallible;
    type Future = Either<
        <TowerToHyperService<Router> as hyper::service::Service<Request<Incoming>>>::Future,
        FastFuture,
    >;

    fn call(&self, req: Request<Incoming>) -> Self::Future {
        if let Some(token) = ingest::fast_path_token(req.method(), req.uri().path()) {
            let (state, token) = (self.state.clone(), token.to_owned());
            // No async block around `serve`: it would hold `req` and the serve future side by
            // side (see `RequestScope::run`).
            let f = ingest::serve(state, token, req).map(Ok);
            return Either::Right(Box::pin(f));
        }
        if req.method() == Method::POST && req.uri().path() == "/v1/messages" {
            let timeout = self.state.config().server.request_timeout;
            let scope = envelope::RequestScope::start(req.method(), req.uri().path());
            let sent = self
                .send_message
                .clone()
                .oneshot(req)
                .map(|answer| match answer {
                    Ok(response) => response,
                    Err(never) => match never {},
                });
            return Either::Right(Box::pin(scope.run_with_timeout(timeout, sent).map(Ok)));
        }
        Either::Left(self.router.call(req))
    }
}

/// Accepts connections until `shutdown` fires, then waits for open connections to finish their
/// requests for at most the grace period. Returns the drain deadline, which the rest of the
/// shutdown shares. With `tls`, every connection is TLS; its handshake must finish within
/// `header_read_timeout`, the same bound a plain client has to send its request head.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    config: &ServerConfig,
    tls: Option<tls::TlsAcceptor>,
    shutdown: Shutdown,
) -> tokio::time::Instant {
    let app = Gateway::new(state.clone());
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(config.header_read_timeout);
    builder.http2().timer(TokioTimer::new());
    let graceful = GracefulShutdown::new();
    let handshake_timeout = config.header_read_timeout;

    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, _peer) = match accepted {
                    Ok(s) => s,
                    Err(e) => {
                        // EMFILE and friends: back off instead of spinning on the error.
                        tracing::warn!(error = %e, "Accept failed.");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let _ = stream.set_nodelay(true);
                let service = app.clone();
                // Taken here, before the task starts, so a connection still in its TLS
                // handshake already counts for the drain (`graceful.count()`), and one that
                // finishes its handshake after the drain began is told to close at once.
                let watcher = graceful.watcher();
                let builder = builder.clone();
                let tls = tls.clone();
                let shutdown = shutdown.clone();
                // Connections are watched by `graceful`, which the drain awaits below; the
                // tracker would only duplicate that.
                tokio::spawn(async move {
                    let Some(tls) = tls else {
                        serve_connection(&builder, TokioIo::new(stream), service, watcher).await;
                        return;
                    };
                    let stream = tokio::select! {
                        handshake = tls.accept(stream, handshake_timeout) => match handshake {
                            Ok(stream) => stream,
                            Err(e) => {
                                tracing::debug!(error = %tls::render_chain(&e), "TLS handshake failed.");
                                return;
                            }
                        },
                        // A half-done handshake has no request to finish; do not let it hold
                        // the drain for up to the handshake timeout.
                        _ = shutdown.cancelled() => return,
                    };
                    serve_connection(&builder, TokioIo::new(stream), service, watcher).await;
                });
            }
            _ = shutdown.cancelled() => break,
        }
    }
    state.start_draining();
    drop(listener);
    let deadline = tokio::time::Instant::now() + config.shutdown_grace;
    tracing::info!(connections = graceful.count(), "Draining connections.");
    if tokio::time::timeout_at(deadline, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("Grace period over with connections still open.");
    }
    deadline
}

/// Serves one connection (plain or TLS) with HTTP/1.1 or HTTP/2, whichever the client speaks,
/// under the drain's watch.
async fn serve_connection<I>(
    builder: &auto::Builder<TokioExecutor>,
    io: I,
    service: Gateway,
    watcher: Watcher,
) where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let conn = builder.serve_connection_with_upgrades(io, service);
    if let Err(e) = watcher.watch(conn).await {
        tracing::debug!(error = %e, "Connection ended with an error.");
    }
}
