//! Prometheus metrics served on `/metrics`.

use prometheus::{
    Encoder, GaugeVec, HistogramOpts, HistogramVec, IntCounterVec, IntGaugeVec, Opts, Registry,
    TextEncoder,
};

/// The relayer's metrics. Message counts by route and status are read from Postgres
/// at scrape time (the database is the truth; replicas agree); the rest is updated
/// by the pipeline as it runs.
#[derive(Clone)]
pub struct Metrics {
    registry: Registry,
    /// Messages by route and status.
    pub messages: IntGaugeVec,
    /// Seconds from observation to final delivery, per route.
    pub latency: HistogramVec,
    /// Block heights per ledger: `finalized` (the node's), `observed` (our cursor).
    pub height: IntGaugeVec,
    /// RPC and ledger errors per ledger.
    pub rpc_errors: IntCounterVec,
    /// JSON-RPC attempts per ledger, endpoint and outcome (`ok`, `error`).
    pub rpc_requests: IntCounterVec,
    /// Seconds per JSON-RPC attempt, per ledger and endpoint.
    pub rpc_seconds: HistogramVec,
    /// Submitter balance per destination ledger, in gwei.
    pub balance_gwei: IntGaugeVec,
    /// Submitter free balance per Substrate destination, in the chain's smallest unit.
    pub free_balance: GaugeVec,
    /// Attestations refused, per member.
    pub refused_attestations: IntCounterVec,
    /// The version of the signer set each destination accepts per origin, as read.
    pub signer_set_version: IntGaugeVec,
    /// 1 while a route is paused on its destination (a member paused it; a quorum
    /// resumes it), as this relayer last read it.
    pub route_paused: IntGaugeVec,
    /// Submissions whose message the destination app held, per route (a message
    /// counts once per submission that finds it held; `messages{status="held"}`
    /// counts the messages).
    pub holds: IntCounterVec,
    /// Per route, the value of the payments held on their destination.
    pub held_value: GaugeVec,
    /// Per route, seconds the longest-held message has waited for a decision.
    pub longest_hold: GaugeVec,
    /// Outbox logs rejected as malformed, per ledger.
    pub rejected_logs: IntCounterVec,
    /// Seconds a delivery round spends in each phase, per destination.
    pub round_phase: HistogramVec,
    /// Age of the oldest message still waiting for delivery, per route (absent when
    /// none waits): "healthy but relaying nothing" shows here.
    pub oldest_pending: GaugeVec,
    /// Seconds to the nearest deadline of a pending message, by route.
    pub nearest_deadline: GaugeVec,
    /// Round-trip time (message observed to its receipt taken), by route and
    /// quantile (0.5, 0.95), over the last hour.
    pub round_trip: GaugeVec,
    /// Escrow of payments still waiting for their receipt at the origin, by route and
    /// currency, in the currency's smallest unit (the configured `payment_apps`).
    pub escrow_outstanding: GaugeVec,
    /// 1 for a ledger whose light client refused a header and halted its observer.
    pub halted: IntGaugeVec,
    /// Requests to this member's attestation endpoint from members, per member and
    /// outcome (`signed`, `cached`, `refused`).
    pub attestation_requests: IntCounterVec,
    /// Connections and requests this member's attestation endpoint refused, per reason
    /// (`no_certificate`, `bad_certificate`, `handshake`, `not_member`,
    /// `rate_limited`, `too_large`, `bad_request`, `busy`).
    pub attestation_refused: IntCounterVec,
    /// When this member's TLS certificate expires (seconds since the Unix epoch).
    pub tls_certificate_expiry: prometheus::IntGauge,
}

impl Metrics {
    /// Registers every metric.
    pub fn new() -> Self {
        let registry = Registry::new_custom(Some("isthmus".into()), None).unwrap_or_default();
        let messages = IntGaugeVec::new(
            Opts::new("messages", "Messages by route and status"),
            &["route", "status"],
        )
        .unwrap_or_else(|e| panic!("static metric definition: {e}"));
        let latency = HistogramVec::new(
            HistogramOpts::new(
                "delivery_latency_seconds",
                "From observation on the source to final delivery",
            )
            .buckets(vec![
                0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0, 600.0,
            ]),
            &["route"],
        )
        .unwrap_or_else(|e| panic!("static metric definition: {e}"));
        let height = IntGaugeVec::new(
            Opts::new("ledger_height", "Block heights per ledger"),
            &["ledger", "kind"],
        )
        .unwrap_or_else(|e| panic!("static metric definition: {e}"));
        let rpc_errors = IntCounterVec::new(
            Opts::new("rpc_errors_total", "Ledger RPC errors"),
            &["ledger"],
        )
        .unwrap_or_else(|e| panic!("static metric definition: {e}"));
        let rpc_requests = IntCounterVec::new(
            Opts::new(
                "rpc_requests_total",
                "JSON-RPC attempts per endpoint; outcome `error` means the endpoint failed and the call moved on to the next",
            ),
            &["ledger", "endpoint", "outcome"],
        )
        .unwrap_or_else(|e| panic!("static metric definition: {e}"));
        let rpc_seconds = HistogramVec::new(
            HistogramOpts::new("rpc_request_seconds", "Seconds per JSON-RPC attempt")
                .buckets(vec![0.005, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0]),
            &["ledger", "endpoint"],
        )
        .unwrap_or_else(|e| panic!("static metric definition: {e}"));
        let balance_gwei = IntGaugeVec::new(
            Opts::new("submitter_balance_gwei", "Balance of the delivery account"),
            &["ledger"],
        )
        .unwrap_or_else(|e| panic!("static metric definition: {e}"));
        let free_balance = GaugeVec::new(
            Opts::new(
                "submitter_free_balance",
                "Free balance of the delivery account (Substrate), in the smallest unit",
            ),
            &["ledger"],
        )
        .unwrap_or_else(|e| panic!("static metric definition: {e}"));
        let refused_attestations = IntCounterVec::new(
            Opts::new("attestations_refused_total", "Peer attestations refused"),
            &["member"],
        )
        .unwrap_or_else(|e| panic!("static metric definition: {e}"));
        let signer_set_version = IntGaugeVec::new(
            Opts::new(
                "signer_set_version",
                "Version of the signer set the destination accepts for the origin's \
                 checkpoints, as this relayer last read it (0 as set up, +1 per update)",
            ),
            &["destination", "origin"],
        )
        .unwrap_or_else(|e| panic!("static metric definition: {e}"));
        let route_paused = IntGaugeVec::new(
            Opts::new(
                "route_paused",
                "1 while the route is paused on its destination (nothing of it is delivered \
                 until a quorum resumes it), as this relayer last read it",
            ),
            &["route"],
        )
        .unwrap_or_else(|e| panic!("static metric definition: {e}"));
        let holds = IntCounterVec::new(
            Opts::new(
                "message_holds_total",
                "Submissions whose message the destination app held (a value limit): \
                 not executed until a quorum of the origin's signers releases it",
            ),
            &["route"],
        )
        .unwrap_or_else(|e| panic!("static metric definition: {e}"));
        let held_value = GaugeVec::new(
            Opts::new(
                "held_value",
                "Value (smallest unit) of the payments held on their destination, waiting \
                 for a quorum's decision",
            ),
            &["route"],
        )
        .unwrap_or_else(|e| panic!("static metric definition: {e}"));
        let longest_hold = GaugeVec::new(
            Opts::new(
                "longest_hold_seconds",
                "Seconds the longest-held message of the route has waited for a decision \
                 (its hold expires after 2 days)",
            ),
            &["route"],
        )
        .unwrap_or_else(|e| panic!("static metric definition: {e}"));
        let round_phase = HistogramVec::new(
            HistogramOpts::new(
                "delivery_round_phase_seconds",
                "Seconds a delivery round spends per phase: claim, checks (already \
                 delivered?), verify (checkpoint and proof), attest (own and peers' \
                 signatures), submit (send until final on the destination), record",
            )
            .buckets(vec![
                0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0,
            ]),
            &["ledger", "phase"],
        )
        .unwrap_or_else(|e| panic!("static metric definition: {e}"));
        let rejected_logs = IntCounterVec::new(
            Opts::new(
                "rejected_outbox_logs_total",
                "Outbox logs that hold no valid message",
            ),
            &["ledger"],
        )
        .unwrap_or_else(|e| panic!("static metric definition: {e}"));
        let nearest_deadline = GaugeVec::new(
            Opts::new(
                "nearest_deadline_seconds",
                "Seconds until the nearest deadline of a message still waiting for delivery, per route (negative: passed)",
            ),
            &["route"],
        )
        .unwrap_or_else(|e| panic!("static metric definition: {e}"));
        let round_trip = GaugeVec::new(
            Opts::new(
                "round_trip_seconds",
                "Observation to the receipt's delivery at the origin, over the last hour, per route of the messages",
            ),
            &["route", "quantile"],
        )
        .unwrap_or_else(|e| panic!("static metric definition: {e}"));
        let escrow_outstanding = GaugeVec::new(
            Opts::new(
                "escrow_outstanding",
                "Amount in escrow on the origin for payments of the configured payment apps whose receipt has not come back, per route and currency (smallest unit)",
            ),
            &["route", "currency"],
        )
        .unwrap_or_else(|e| panic!("static metric definition: {e}"));
        let oldest_pending = GaugeVec::new(
            Opts::new(
                "oldest_pending_seconds",
                "Seconds since the oldest message still waiting for delivery was observed, per route",
            ),
            &["route"],
        )
        .unwrap_or_else(|e| panic!("static metric definition: {e}"));
        let halted = IntGaugeVec::new(
            Opts::new(
                "ledger_halted",
                "1 when the ledger's light client refused a header and its observer stopped (an operator must act)",
            ),
            &["ledger"],
        )
        .unwrap_or_else(|e| panic!("static metric definition: {e}"));
        let attestation_requests = IntCounterVec::new(
            Opts::new(
                "attestation_requests_total",
                "Requests of members to this member's attestation endpoint, by outcome: \
                 signed (verified and signed), cached (answered from the cache), refused",
            ),
            &["member", "outcome"],
        )
        .unwrap_or_else(|e| panic!("static metric definition: {e}"));
        let attestation_refused = IntCounterVec::new(
            Opts::new(
                "attestation_refused_total",
                "Connections and requests the attestation endpoint refused before any \
                 light-client work, by reason",
            ),
            &["reason"],
        )
        .unwrap_or_else(|e| panic!("static metric definition: {e}"));
        let tls_certificate_expiry = prometheus::IntGauge::new(
            "tls_certificate_expiry_timestamp_seconds",
            "When this member's TLS certificate (attestation.certificate) expires, in seconds since the Unix epoch",
        )
        .unwrap_or_else(|e| panic!("static metric definition: {e}"));
        for m in [
            Box::new(messages.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(tls_certificate_expiry.clone()),
            Box::new(attestation_requests.clone()),
            Box::new(attestation_refused.clone()),
            Box::new(halted.clone()),
            Box::new(oldest_pending.clone()),
            Box::new(nearest_deadline.clone()),
            Box::new(round_trip.clone()),
            Box::new(escrow_outstanding.clone()),
            Box::new(latency.clone()),
            Box::new(height.clone()),
            Box::new(rpc_errors.clone()),
            Box::new(rpc_requests.clone()),
            Box::new(rpc_seconds.clone()),
            Box::new(balance_gwei.clone()),
            Box::new(free_balance.clone()),
            Box::new(refused_attestations.clone()),
            Box::new(signer_set_version.clone()),
            Box::new(route_paused.clone()),
            Box::new(holds.clone()),
            Box::new(held_value.clone()),
            Box::new(longest_hold.clone()),
            Box::new(rejected_logs.clone()),
            Box::new(round_phase.clone()),
        ] {
            registry
                .register(m)
                .unwrap_or_else(|e| panic!("metric registered twice: {e}"));
        }
        Self {
            registry,
            messages,
            latency,
            height,
            rpc_errors,
            rpc_requests,
            rpc_seconds,
            balance_gwei,
            free_balance,
            refused_attestations,
            signer_set_version,
            route_paused,
            holds,
            held_value,
            longest_hold,
            rejected_logs,
            round_phase,
            oldest_pending,
            nearest_deadline,
            round_trip,
            escrow_outstanding,
            halted,
            attestation_requests,
            attestation_refused,
            tls_certificate_expiry,
        }
    }

    /// The text exposition format.
    pub fn render(&self) -> String {
        let mut out = Vec::new();
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut out);
        String::from_utf8(out).unwrap_or_default()
    }
}

/// Per-endpoint JSON-RPC metrics of one ledger.
pub struct RpcMetrics {
    ledger: String,
    metrics: Metrics,
}

impl RpcMetrics {
    /// Reports `ledger`'s endpoints into `metrics`.
    pub fn new(ledger: &str, metrics: &Metrics) -> Self {
        Self {
            ledger: ledger.to_owned(),
            metrics: metrics.clone(),
        }
    }
}

impl isthmus_endpoints::RpcObserver for RpcMetrics {
    fn attempt(
        &self,
        endpoint: &str,
        _method: &str,
        elapsed: std::time::Duration,
        attempt: isthmus_endpoints::Attempt,
    ) {
        self.metrics
            .rpc_requests
            .with_label_values(&[&self.ledger, endpoint, attempt.as_str()])
            .inc();
        self.metrics
            .rpc_seconds
            .with_label_values(&[&self.ledger, endpoint])
            .observe(elapsed.as_secs_f64());
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}
