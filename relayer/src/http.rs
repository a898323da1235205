//! The relayer's plain HTTP interface: health, readiness and metrics, for probes and
//! Prometheus (no client certificate needed). The attestation endpoint the other
//! members call has its own mutual-TLS listener ([`crate::peer_endpoint`]). It works
//! on narrow [`Handles`], not on the pipeline's context.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use isthmus_schema::Store;
use tokio::time::timeout;
use tokio_util::sync::CancellationToken;

use crate::ledger::{Balance, LedgerHandle};
use crate::metrics::Metrics;

/// What the HTTP layer reaches of a running relayer.
#[derive(Clone)]
pub struct Handles {
    /// Where to listen.
    pub listen: SocketAddr,
    /// The history store (readiness, message counts).
    pub store: Store,
    /// The ledgers (readiness, balances).
    pub ledgers: Vec<LedgerHandle>,
    /// The metrics the pipeline updates.
    pub metrics: Metrics,
    /// The escrow of the configured payment apps, read at each scrape.
    pub escrow: std::sync::Arc<crate::payments::Escrow>,
}

/// The routes.
pub fn router(handles: Arc<Handles>) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .with_state(handles)
}

/// Serves until `shutdown` is cancelled.
pub async fn serve(handles: Arc<Handles>, shutdown: CancellationToken) -> std::io::Result<()> {
    let listen = handles.listen;
    let listener = tokio::net::TcpListener::bind(listen).await.map_err(|e| {
        std::io::Error::new(
            e.kind(),
            format!("http.listen = {listen}: cannot bind ({e}); choose a free address"),
        )
    })?;
    tracing::info!(%listen, "HTTP listening (/healthz, /readyz, /metrics)");
    axum::serve(listener, router(handles))
        .with_graceful_shutdown(async move { shutdown.cancelled().await })
        .await
}

/// How long `/readyz` waits for each dependency, and `/metrics` for each balance:
/// a hung node or database makes the answer "not ready", never a hung probe.
const DEPENDENCY_TIMEOUT: Duration = Duration::from_secs(2);

/// Ready when the database answers and every ledger's node answers, each within
/// [`DEPENDENCY_TIMEOUT`] (asked at once, so the probe answers within about that).
/// The body names every dependency with its state.
async fn readyz(State(handles): State<Arc<Handles>>) -> Response {
    let database = async {
        let state = match timeout(
            DEPENDENCY_TIMEOUT,
            sqlx::query("SELECT 1").execute(handles.store.pool()),
        )
        .await
        {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err(format!(
                "no answer within {} s",
                DEPENDENCY_TIMEOUT.as_secs()
            )),
        };
        ("database".to_owned(), state)
    };
    let ledgers = futures::future::join_all(handles.ledgers.iter().map(|ledger| async move {
        let state = match timeout(DEPENDENCY_TIMEOUT, ledger.source.finalized()).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err(format!(
                "no answer within {} s",
                DEPENDENCY_TIMEOUT.as_secs()
            )),
        };
        (format!("ledger {}", ledger.name), state)
    }));
    let (database, ledgers) = futures::future::join(database, ledgers).await;
    let states: Vec<_> = std::iter::once(database).chain(ledgers).collect();
    let ready = states.iter().all(|(_, s)| s.is_ok());
    let mut body: String = states
        .iter()
        .map(|(name, state)| match state {
            Ok(()) => format!("{name}: ok\n"),
            Err(e) => format!("{name}: {e}\n"),
        })
        .collect();
    // Healthy but relaying nothing: each route's oldest waiting message, for the
    // operator (it does not change readiness).
    if let Ok(Ok(oldest)) = timeout(DEPENDENCY_TIMEOUT, handles.store.oldest_pending()).await {
        for o in oldest {
            body.push_str(&format!(
                "route {}: oldest pending message observed {:.0} s ago\n",
                route_name(&handles, o.route),
                o.age_seconds
            ));
        }
    }
    if ready {
        (StatusCode::OK, format!("ready\n{body}")).into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, body).into_response()
    }
}

async fn metrics(State(handles): State<Arc<Handles>>) -> Response {
    if let Err(e) = refresh(&handles).await {
        tracing::warn!(error = %e, "refreshing metrics from the database failed");
    }
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4",
        )],
        handles.metrics.render(),
    )
        .into_response()
}

/// Refreshes the gauges read from Postgres and the ledgers (at scrape time).
async fn refresh(handles: &Handles) -> Result<(), isthmus_schema::StoreError> {
    let counts = handles.store.message_counts().await?;
    let oldest = handles.store.oldest_pending().await?;
    let deadlines = handles.store.nearest_deadlines().await?;
    let round_trips = handles.store.round_trips().await?;
    let held = handles.store.held_totals().await?;
    handles.metrics.held_value.reset();
    handles.metrics.longest_hold.reset();
    for h in held {
        let route = route_name(handles, h.route);
        handles
            .metrics
            .held_value
            .with_label_values(&[&route])
            .set(h.value);
        handles
            .metrics
            .longest_hold
            .with_label_values(&[&route])
            .set(h.longest_seconds);
    }
    let escrow = handles.escrow.outstanding(&handles.store).await?;
    handles.metrics.escrow_outstanding.reset();
    for ((route, currency), amount) in escrow {
        handles
            .metrics
            .escrow_outstanding
            .with_label_values(&[&route_name(handles, route), &currency])
            // A gauge is a float: exact up to 2^53 of the smallest unit.
            .set(amount as f64);
    }
    handles.metrics.messages.reset();
    handles.metrics.oldest_pending.reset();
    handles.metrics.nearest_deadline.reset();
    handles.metrics.round_trip.reset();
    for d in deadlines {
        handles
            .metrics
            .nearest_deadline
            .with_label_values(&[&route_name(handles, d.route)])
            .set(d.seconds);
    }
    for r in round_trips {
        let route = route_name(handles, r.route);
        for (quantile, seconds) in [("0.5", r.p50), ("0.95", r.p95)] {
            handles
                .metrics
                .round_trip
                .with_label_values(&[&route, quantile])
                .set(seconds);
        }
    }
    for c in counts {
        handles
            .metrics
            .messages
            .with_label_values(&[&route_name(handles, c.route), c.status.as_str()])
            .set(c.count);
    }
    for o in oldest {
        handles
            .metrics
            .oldest_pending
            .with_label_values(&[&route_name(handles, o.route)])
            .set(o.age_seconds);
    }
    for ledger in &handles.ledgers {
        // A node that does not answer leaves the last value: a scrape never hangs.
        let balance = timeout(DEPENDENCY_TIMEOUT, ledger.destination.balance())
            .await
            .ok()
            .flatten();
        match balance {
            Some(Balance::Gwei(gwei)) => handles
                .metrics
                .balance_gwei
                .with_label_values(&[&ledger.name])
                .set(gwei),
            Some(Balance::Free(free)) => handles
                .metrics
                .free_balance
                .with_label_values(&[&ledger.name])
                .set(free as f64),
            None => {}
        }
    }
    Ok(())
}

/// `source->destination` by ledger names (ids for ledgers not configured here).
fn route_name(handles: &Handles, route: isthmus_schema::Route) -> String {
    let name = |id: u32| {
        handles
            .ledgers
            .iter()
            .find(|l| l.id == id)
            .map_or_else(|| id.to_string(), |l| l.name.clone())
    };
    format!("{}->{}", name(route.source), name(route.destination))
}
