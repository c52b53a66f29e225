//! The gate's HTTP side: Prometheus `/metrics` and a JSON `/debug/status` of
//! the routing table (keyspaces, shards, tablets with type and health) and
//! of the shards whose statements are buffered.

use std::sync::Arc;

use arc_swap::ArcSwap;
use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::buffer::Buffers;
use crate::metrics::Metrics;
use crate::topology::RoutingTable;

#[derive(Clone)]
struct HttpState {
    routing: Arc<ArcSwap<RoutingTable>>,
    metrics: Arc<Metrics>,
    buffers: Arc<Buffers>,
}

pub(crate) async fn serve(
    listener: TcpListener,
    routing: Arc<ArcSwap<RoutingTable>>,
    metrics: Arc<Metrics>,
    buffers: Arc<Buffers>,
    mut stop: watch::Receiver<bool>,
) {
    let app = Router::new()
        .route("/metrics", get(metrics_text))
        .route("/debug/status", get(status))
        .route("/healthz", get(healthz))
        .with_state(HttpState {
            routing,
            metrics,
            buffers,
        });
    let result = axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            let _ = stop.changed().await;
        })
        .await;
    if let Err(e) = result {
        tracing::warn!("gate HTTP server failed: {e}");
    }
}

async fn metrics_text(State(state): State<HttpState>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        state.metrics.encode(),
    )
}

async fn status(State(state): State<HttpState>) -> impl IntoResponse {
    let mut json = state.routing.load().status_json();
    json["buffering"] = state.buffers.status_json();
    axum::Json(json)
}

/// 200 once every keyspace has a routable primary, 503 before.
async fn healthz(State(state): State<HttpState>) -> impl IntoResponse {
    if state.routing.load().all_primaries_routable() {
        (StatusCode::OK, "ok")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "not ready")
    }
}
