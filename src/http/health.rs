//! `/healthz` (the process answers), `/readyz` (it can take writes), `/metrics`,
//! `/openapi.json`.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use prometheus::Encoder as _;

use super::AppState;

pub fn routes(openapi: Arc<utoipa::openapi::OpenApi>) -> Router<AppState> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route(
            "/openapi.json",
            get(move || {
                let doc = openapi.clone();
                async move { Json(doc.as_ref().clone()) }
            }),
        )
}

async fn healthz() -> &'static str {
    "ok\n"
}

/// Ready only while storage takes writes and no drain has started: a load balancer must stop
/// sending events before hookgate stops accepting them.
async fn readyz(State(state): State<AppState>) -> Response {
    if state.is_draining() {
        (StatusCode::SERVICE_UNAVAILABLE, "draining\n").into_response()
    } else if !state.store().is_writable() {
        (StatusCode::SERVICE_UNAVAILABLE, "storage not writable\n").into_response()
    } else {
        "ready\n".into_response()
    }
}

pub async fn metrics(State(state): State<AppState>) -> Response {
    let encoder = prometheus::TextEncoder::new();
    let mut out = Vec::with_capacity(16 * 1024);
    if let Err(e) = encoder.encode(&state.registry().gather(), &mut out) {
        tracing::error!(error = %e, "Metrics encoding failed.");
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    }
    (
        [(header::CONTENT_TYPE, encoder.format_type().to_owned())],
        out,
    )
        .into_response()
}
