//! The endpoint the other members call, served only with mutual TLS on its own
//! listener: `POST /v1/attest` (sign a checkpoint this member verifies) and
//! `GET /v1/holds/{id}/{release|reject}` (the signed decisions on a held message this
//! member recorded: its own, `isthmus approve` / `reject`, and those it was handed).
//!
//! What a caller can make this member do is bounded before any light-client work:
//! - no certificate, or one the consortium CA did not issue: refused at the handshake;
//! - a certificate from the CA that names no configured member: `403` to every request;
//! - a member over its rate (`attestation.rate_per_s`, `burst`): `429`;
//! - a body above [`MAX_BODY`]: `413`;
//! - a checkpoint this member already verified and signed: answered from the cache.
//!
//! Connections are bounded too ([`MAX_CONNECTIONS`], each with a handshake and header
//! deadline), so a flood costs a bounded amount of memory. Every refusal is counted in
//! `isthmus_attestation_refused_total{reason}`.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::rejection::JsonRejection;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{Request, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

use crate::attest::{parse_hex32, AttestRequest, AttestResponse, Endpoint};
use crate::holds::SignedDecision;
use crate::metrics::Metrics;
use crate::mtls::{Caller, Directory};

/// Largest request body accepted: an [`AttestRequest`] is under 200 bytes.
pub const MAX_BODY: usize = 4 * 1024;
/// Connections served at once; more wait in the kernel's backlog.
pub const MAX_CONNECTIONS: usize = 256;
/// Time a client has to complete the TLS handshake, and then each request's headers.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Signed checkpoints kept to answer repeated requests.
pub const CACHE_ENTRIES: usize = 4096;

/// A token bucket per member: `rate` requests per second, up to `burst` at once.
#[derive(Debug)]
pub struct RateLimiter {
    rate: f64,
    burst: f64,
    buckets: Mutex<HashMap<String, (f64, Instant)>>,
}

impl RateLimiter {
    /// `rate_per_s` requests per second per member, `burst` at once.
    pub fn new(rate_per_s: u32, burst: u32) -> Self {
        Self {
            rate: f64::from(rate_per_s),
            burst: f64::from(burst.max(1)),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Whether `member` may make a request at `now` (and takes it from its bucket).
    /// Only configured members reach this, so the map holds at most one bucket each.
    pub fn allow(&self, member: &str, now: Instant) -> bool {
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        let (tokens, last) = buckets
            .entry(member.to_owned())
            .or_insert((self.burst, now));
        let elapsed = now.saturating_duration_since(*last).as_secs_f64();
        *tokens = (*tokens + elapsed * self.rate).min(self.burst);
        *last = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// The checkpoint a request names: a signed answer for it never changes.
type CacheKey = (u32, u64, String);

/// Signed answers by request, oldest evicted first.
#[derive(Debug, Default)]
struct Cache {
    answers: HashMap<CacheKey, AttestResponse>,
    order: VecDeque<CacheKey>,
}

impl Cache {
    fn get(&self, key: &CacheKey) -> Option<AttestResponse> {
        self.answers.get(key).cloned()
    }

    fn put(&mut self, key: CacheKey, answer: AttestResponse) {
        if self.answers.insert(key.clone(), answer).is_none() {
            self.order.push_back(key);
        }
        while self.order.len() > CACHE_ENTRIES {
            if let Some(old) = self.order.pop_front() {
                self.answers.remove(&old);
            }
        }
    }
}

/// The endpoint's state: the verifier and signer, the limits and the metrics.
pub struct PeerEndpoint {
    endpoint: Endpoint,
    limiter: RateLimiter,
    cache: Mutex<Cache>,
    metrics: Metrics,
    store: Option<isthmus_schema::Store>,
}

impl PeerEndpoint {
    /// Serves `endpoint` with `limiter`, counting into `metrics`.
    pub fn new(endpoint: Endpoint, limiter: RateLimiter, metrics: Metrics) -> Self {
        Self {
            endpoint,
            limiter,
            cache: Mutex::new(Cache::default()),
            metrics,
            store: None,
        }
    }

    /// Serves the hold decisions recorded in `store` too.
    pub fn with_store(mut self, store: isthmus_schema::Store) -> Self {
        self.store = Some(store);
        self
    }

    fn refused(&self, reason: &str) {
        self.metrics
            .attestation_refused
            .with_label_values(&[reason])
            .inc();
    }

    fn counted(&self, member: &str, outcome: &str) {
        self.metrics
            .attestation_requests
            .with_label_values(&[member, outcome])
            .inc();
    }
}

/// The endpoint's routes; each request carries its [`Caller`] as an extension.
pub fn router(server: Arc<PeerEndpoint>) -> Router {
    Router::new()
        .route("/v1/attest", post(attest))
        .route("/v1/holds/:id/:decision", get(hold_decisions))
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .with_state(server)
}

async fn attest(
    State(server): State<Arc<PeerEndpoint>>,
    Extension(caller): Extension<Caller>,
    body: Result<Json<AttestRequest>, JsonRejection>,
) -> Response {
    let Caller::Member(member) = caller else {
        server.refused("not_member");
        return (
            StatusCode::FORBIDDEN,
            "the client certificate names no member of this consortium\n",
        )
            .into_response();
    };
    if !server.limiter.allow(&member, Instant::now()) {
        server.refused("rate_limited");
        return (
            StatusCode::TOO_MANY_REQUESTS,
            format!("member {member} is over its rate (attestation.rate_per_s); ask again later\n"),
        )
            .into_response();
    }
    let request = match body {
        Ok(Json(request)) => request,
        Err(rejection) => {
            let status = rejection.status();
            server.refused(if status == StatusCode::PAYLOAD_TOO_LARGE {
                "too_large"
            } else {
                "bad_request"
            });
            return (status, rejection.body_text()).into_response();
        }
    };
    // Before the cache: a cached answer is for this member's network only.
    if let Err(reason) = server.endpoint.check_network(&request) {
        server.counted(&member, "refused");
        tracing::warn!(%member, %reason, "refused to attest");
        return (StatusCode::UNPROCESSABLE_ENTITY, reason).into_response();
    }
    let key: CacheKey = (
        request.origin,
        request.block_number,
        request.block_hash.to_ascii_lowercase(),
    );
    let cached = server
        .cache
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .get(&key);
    if let Some(answer) = cached {
        server.counted(&member, "cached");
        return Json(answer).into_response();
    }
    match server.endpoint.attest(&request).await {
        Ok(answer) => {
            server.counted(&member, "signed");
            server
                .cache
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .put(key, answer.clone());
            Json(answer).into_response()
        }
        Err(reason) => {
            server.counted(&member, "refused");
            tracing::warn!(%member, origin = request.origin, block = request.block_number, %reason, "refused to attest");
            (StatusCode::UNPROCESSABLE_ENTITY, reason).into_response()
        }
    }
}

/// The signed decisions on held message `id` this member recorded, of one kind.
async fn hold_decisions(
    State(server): State<Arc<PeerEndpoint>>,
    Extension(caller): Extension<Caller>,
    Path((id, decision)): Path<(String, String)>,
) -> Response {
    let Caller::Member(member) = caller else {
        server.refused("not_member");
        return (
            StatusCode::FORBIDDEN,
            "the client certificate names no member of this consortium\n",
        )
            .into_response();
    };
    if !server.limiter.allow(&member, Instant::now()) {
        server.refused("rate_limited");
        return (
            StatusCode::TOO_MANY_REQUESTS,
            format!("member {member} is over its rate (attestation.rate_per_s); ask again later\n"),
        )
            .into_response();
    }
    let Some(id) = parse_hex32(&id) else {
        server.refused("bad_request");
        return (
            StatusCode::BAD_REQUEST,
            "the message id is not 32 bytes of hex\n",
        )
            .into_response();
    };
    let verdict = match decision.as_str() {
        "release" => isthmus_schema::HoldVerdict::Release,
        "reject" => isthmus_schema::HoldVerdict::Reject,
        _ => {
            server.refused("bad_request");
            return (
                StatusCode::BAD_REQUEST,
                "the decision is `release` or `reject`\n",
            )
                .into_response();
        }
    };
    let Some(store) = &server.store else {
        return (
            StatusCode::NOT_FOUND,
            "this endpoint keeps no hold decisions\n",
        )
            .into_response();
    };
    match store.hold_decisions(isthmus_schema::MessageId(id)).await {
        Ok(decisions) => {
            server.counted(&member, "hold_decisions");
            let answer: Vec<SignedDecision> = decisions
                .iter()
                .filter(|d| d.verdict == verdict)
                .map(SignedDecision::from)
                .collect();
            Json(answer).into_response()
        }
        Err(e) => {
            tracing::warn!(error = %e, "could not read hold decisions for a peer");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                "this member's history does not answer; ask again later\n",
            )
                .into_response()
        }
    }
}

/// Why a handshake failed, as a metric label.
fn handshake_reason(error: &std::io::Error) -> &'static str {
    let Some(tls) = error
        .get_ref()
        .and_then(|e| e.downcast_ref::<rustls::Error>())
    else {
        return "handshake";
    };
    match tls {
        rustls::Error::NoCertificatesPresented => "no_certificate",
        rustls::Error::InvalidCertificate(_) => "bad_certificate",
        _ => "handshake",
    }
}

/// Serves the endpoint on `listener` with `tls` until `shutdown` is cancelled.
pub async fn serve(
    listener: TcpListener,
    tls: Arc<rustls::ServerConfig>,
    directory: Directory,
    server: Arc<PeerEndpoint>,
    shutdown: CancellationToken,
) {
    let app = router(server.clone());
    let refused: Refusals = Arc::new(move |reason| server.refused(reason));
    serve_router(listener, tls, directory, app, refused, shutdown).await;
}

/// Counts a refused connection by reason.
pub type Refusals = Arc<dyn Fn(&'static str) + Send + Sync>;

/// Serves `app` on `listener` with mutual TLS (`tls`) until `shutdown` is cancelled:
/// each request carries the [`Caller`] its client certificate names, and every
/// handshake refused is reported to `refused`.
pub async fn serve_router(
    listener: TcpListener,
    tls: Arc<rustls::ServerConfig>,
    directory: Directory,
    app: Router,
    refused: Refusals,
    shutdown: CancellationToken,
) {
    let acceptor = tokio_rustls::TlsAcceptor::from(tls);
    let slots = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    loop {
        // Wait for a free slot before accepting: excess connections queue in the
        // kernel, not in this process's memory.
        let permit = tokio::select! {
            () = shutdown.cancelled() => return,
            permit = slots.clone().acquire_owned() => match permit {
                Ok(p) => p,
                Err(_) => return,
            },
        };
        let (stream, peer) = tokio::select! {
            () = shutdown.cancelled() => return,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    tracing::warn!(error = %e, "attestation endpoint: accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let connection = Connection {
            acceptor: acceptor.clone(),
            app: app.clone(),
            directory: directory.clone(),
            refused: refused.clone(),
            shutdown: shutdown.clone(),
        };
        tokio::spawn(async move {
            let _permit = permit;
            connection.serve(stream, peer).await;
        });
    }
}

/// What one connection needs.
struct Connection {
    acceptor: tokio_rustls::TlsAcceptor,
    app: Router,
    directory: Directory,
    refused: Refusals,
    shutdown: CancellationToken,
}

impl Connection {
    async fn serve(self, stream: tokio::net::TcpStream, peer: SocketAddr) {
        let tls = match tokio::time::timeout(HANDSHAKE_TIMEOUT, self.acceptor.accept(stream)).await
        {
            Ok(Ok(tls)) => tls,
            Ok(Err(e)) => {
                let reason = handshake_reason(&e);
                (self.refused)(reason);
                tracing::debug!(%peer, %reason, error = %e, "attestation endpoint: handshake refused");
                return;
            }
            Err(_) => {
                (self.refused)("handshake");
                tracing::debug!(%peer, "attestation endpoint: no handshake within the deadline");
                return;
            }
        };
        let caller = tls
            .get_ref()
            .1
            .peer_certificates()
            .and_then(|chain| chain.first())
            .map_or(Caller::Stranger, |leaf| self.directory.identify(leaf));
        if caller == Caller::Stranger {
            // Counted (`not_member`) and alerted on; one line per connection at
            // debug, so a flood cannot flood the log.
            tracing::debug!(%peer, "attestation endpoint: a certificate of the consortium CA that names no member");
        }
        let service = self
            .app
            .map_request(move |mut request: Request<hyper::body::Incoming>| {
                request.extensions_mut().insert(caller.clone());
                request
            });
        let service = hyper_util::service::TowerToHyperService::new(service);
        let mut http = hyper::server::conn::http1::Builder::new();
        http.timer(TokioTimer::new())
            .header_read_timeout(HANDSHAKE_TIMEOUT);
        let connection = http.serve_connection(TokioIo::new(tls), service);
        tokio::pin!(connection);
        tokio::select! {
            result = connection.as_mut() => {
                if let Err(e) = result {
                    tracing::debug!(%peer, error = %e, "attestation endpoint: connection ended");
                }
            }
            () = self.shutdown.cancelled() => {
                connection.as_mut().graceful_shutdown();
                let _ = connection.await;
            }
        }
    }
}

/// Binds `listen` for the endpoint, naming the key and the fix when it cannot.
pub async fn bind(listen: SocketAddr) -> std::io::Result<TcpListener> {
    TcpListener::bind(listen).await.map_err(|e| {
        std::io::Error::new(
            e.kind(),
            format!("attestation.listen = {listen}: cannot bind ({e}); choose a free address"),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_member_gets_its_burst_then_its_rate() {
        let limiter = RateLimiter::new(10, 3);
        let t0 = Instant::now();
        let granted = (0..5).filter(|_| limiter.allow("bank-a", t0)).count();
        assert_eq!(granted, 3, "the burst, then nothing");
        // Another member has its own bucket.
        assert!(limiter.allow("bank-b", t0));
        // 10 per second: after 100 ms one more, after 250 ms two more.
        assert!(limiter.allow("bank-a", t0 + Duration::from_millis(100)));
        assert!(!limiter.allow("bank-a", t0 + Duration::from_millis(100)));
        let t1 = t0 + Duration::from_millis(300);
        assert_eq!((0..5).filter(|_| limiter.allow("bank-a", t1)).count(), 2);
        // A long pause refills to the burst, never beyond.
        let t2 = t1 + Duration::from_secs(3600);
        assert_eq!((0..10).filter(|_| limiter.allow("bank-a", t2)).count(), 3);
        // Time going backwards (a clock step) grants nothing extra.
        assert!(!limiter.allow("bank-a", t0));
    }

    #[test]
    fn the_cache_keeps_the_newest_answers() {
        let mut cache = Cache::default();
        let answer = |n: u64| AttestResponse {
            member: "bank-a".into(),
            signer: "0x00".into(),
            checkpoint: crate::attest::CheckpointJson {
                origin: 1,
                outbox: "0x".into(),
                root: "0x".into(),
                count: 0,
                block_number: n,
                block_hash: "0x".into(),
            },
            signature: "0x".into(),
        };
        for n in 0..(CACHE_ENTRIES as u64 + 10) {
            cache.put((1, n, "0x".into()), answer(n));
        }
        assert_eq!(cache.answers.len(), CACHE_ENTRIES);
        assert!(
            cache.get(&(1, 9, "0x".into())).is_none(),
            "the oldest are gone"
        );
        assert_eq!(
            cache
                .get(&(1, CACHE_ENTRIES as u64 + 9, "0x".into()))
                .map(|a| a.checkpoint.block_number),
            Some(CACHE_ENTRIES as u64 + 9)
        );
        // The same key twice is one entry.
        cache.put((1, 5_000_000, "0x".into()), answer(1));
        cache.put((1, 5_000_000, "0x".into()), answer(2));
        assert_eq!(cache.order.len(), CACHE_ENTRIES);
    }
}
