//! The relayer's HTTP interface: health, readiness, metrics and the attestation
//! endpoint the other members call.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use tokio_util::sync::CancellationToken;

use crate::attest::AttestRequest;
use crate::service::Relayer;

/// The routes.
pub fn router(relayer: Arc<Relayer>) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/v1/attest", post(attest))
        .with_state(relayer)
}

/// Serves until `shutdown` is cancelled.
pub async fn serve(relayer: Arc<Relayer>, shutdown: CancellationToken) -> std::io::Result<()> {
    let listen = relayer.config.http.listen;
    let listener = tokio::net::TcpListener::bind(listen).await.map_err(|e| {
        std::io::Error::new(
            e.kind(),
            format!("http.listen = {listen}: cannot bind ({e}); choose a free address"),
        )
    })?;
    tracing::info!(%listen, "HTTP listening (/healthz, /readyz, /metrics, /v1/attest)");
    axum::serve(listener, router(relayer))
        .with_graceful_shutdown(async move { shutdown.cancelled().await })
        .await
}

/// Ready when the database answers and every ledger's node answers.
async fn readyz(State(relayer): State<Arc<Relayer>>) -> Response {
    let mut problems = Vec::new();
    if let Err(e) = sqlx::query("SELECT 1").execute(relayer.store.pool()).await {
        problems.push(format!("database: {e}"));
    }
    for ledger in relayer.ledgers.values() {
        if let Err(e) = ledger.finalized().await {
            problems.push(format!("ledger {}: {e}", ledger.name()));
        }
    }
    if problems.is_empty() {
        (StatusCode::OK, "ready\n").into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, problems.join("\n") + "\n").into_response()
    }
}

async fn metrics(State(relayer): State<Arc<Relayer>>) -> Response {
    if let Err(e) = relayer.refresh_metrics().await {
        tracing::warn!(error = %e, "refreshing metrics from the database failed");
    }
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4",
        )],
        relayer.metrics.render(),
    )
        .into_response()
}

async fn attest(
    State(relayer): State<Arc<Relayer>>,
    Json(request): Json<AttestRequest>,
) -> Response {
    match relayer.attest_for_peer(&request).await {
        Ok(answer) => Json(answer).into_response(),
        Err(reason) => {
            tracing::warn!(origin = request.origin, block = request.block_number, %reason, "refused to attest");
            (StatusCode::UNPROCESSABLE_ENTITY, reason).into_response()
        }
    }
}
