//! A seeded fault-injecting proxy for the chaos tests, put between a relayer and what
//! it talks to.
//!
//! Two modes, both on a loopback port:
//!
//! - [`Proxy::http`], for the anvil nodes' HTTP/1.1 JSON-RPC: per request it forwards
//!   normally or injects one [`FaultKind`]: a delay, a drop (closed unanswered), a
//!   reset (RST), a stall (held unanswered, then answered late), HTTP 429, 502 or 503,
//!   a JSON-RPC error object (-32005 "limit exceeded", -32603 "internal error") with
//!   the request's id, or the node's answer truncated.
//! - [`Proxy::tcp`], for Postgres and the Substrate WebSocket: per forwarded chunk it
//!   may delay, stall or reset the connection.
//!
//! In both modes [`Proxy::restart`] resets every open connection and refuses new ones
//! for a while, as a restarting server does. Which request gets which fault comes from
//! a seeded PRNG ([`SplitMix64`]); the rate and mix ([`FaultMix`]) can change at any
//! time (a test turns faults on and off), and [`Proxy::counts`] says how many faults
//! of each kind were injected.

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// A tiny seeded PRNG (SplitMix64): the same seed gives the same draws.
#[derive(Clone, Debug)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    /// A generator starting from `seed`.
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A uniform number in `[0, 1)`.
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// A uniform number in `[0, n)` (`0` when `n` is 0).
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            0
        } else {
            self.next_u64() % n
        }
    }

    /// A uniform duration in `[lo, hi]`.
    pub fn duration(&mut self, lo: Duration, hi: Duration) -> Duration {
        if hi <= lo {
            return lo;
        }
        let span = (hi - lo).as_micros() as u64;
        lo + Duration::from_micros(self.below(span + 1))
    }
}

/// One kind of injected fault.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum FaultKind {
    /// Forwarded after an added latency ([`FaultMix::delay`]).
    Delay,
    /// HTTP: the request is read and the connection closed unanswered (not forwarded).
    Drop,
    /// The connection is reset (`SO_LINGER` 0, then closed: the peer sees RST).
    Reset,
    /// HTTP: the request is held unanswered for [`FaultMix::stall`], then forwarded and
    /// answered late. TCP: the connection forwards nothing for that long.
    Stall,
    /// HTTP: answered `429 Too Many Requests` (not forwarded).
    Http429,
    /// HTTP: answered `502 Bad Gateway` (not forwarded).
    Http502,
    /// HTTP: answered `503 Service Unavailable` (not forwarded).
    Http503,
    /// HTTP: answered with the JSON-RPC error -32005 "limit exceeded" (not forwarded).
    RpcLimitExceeded,
    /// HTTP: answered with the JSON-RPC error -32603 "internal error" (not forwarded).
    RpcInternal,
    /// HTTP: forwarded; the node's answer cut in half (a consistent HTTP message whose
    /// JSON body does not parse).
    Truncate,
    /// Every open connection reset and new ones refused for a while ([`Proxy::restart`]).
    Restart,
}

impl FaultKind {
    /// Every kind, in report order.
    pub const ALL: [FaultKind; 11] = [
        FaultKind::Delay,
        FaultKind::Drop,
        FaultKind::Reset,
        FaultKind::Stall,
        FaultKind::Http429,
        FaultKind::Http502,
        FaultKind::Http503,
        FaultKind::RpcLimitExceeded,
        FaultKind::RpcInternal,
        FaultKind::Truncate,
        FaultKind::Restart,
    ];

    /// The kinds a per-request draw of an HTTP proxy can inject.
    pub const HTTP: [FaultKind; 10] = [
        FaultKind::Delay,
        FaultKind::Drop,
        FaultKind::Reset,
        FaultKind::Stall,
        FaultKind::Http429,
        FaultKind::Http502,
        FaultKind::Http503,
        FaultKind::RpcLimitExceeded,
        FaultKind::RpcInternal,
        FaultKind::Truncate,
    ];

    /// The kinds a per-chunk draw of a TCP proxy can inject.
    pub const TCP: [FaultKind; 3] = [FaultKind::Delay, FaultKind::Reset, FaultKind::Stall];

    /// A short name for reports.
    pub fn name(self) -> &'static str {
        match self {
            FaultKind::Delay => "delay",
            FaultKind::Drop => "drop",
            FaultKind::Reset => "reset",
            FaultKind::Stall => "stall",
            FaultKind::Http429 => "http 429",
            FaultKind::Http502 => "http 502",
            FaultKind::Http503 => "http 503",
            FaultKind::RpcLimitExceeded => "json-rpc -32005",
            FaultKind::RpcInternal => "json-rpc -32603",
            FaultKind::Truncate => "truncated answer",
            FaultKind::Restart => "restart",
        }
    }

    fn index(self) -> usize {
        Self::ALL.iter().position(|k| *k == self).unwrap_or(0)
    }
}

impl fmt::Display for FaultKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// How often and which faults a proxy injects. Kinds its mode cannot inject are
/// ignored in the draw.
#[derive(Clone, Debug)]
pub struct FaultMix {
    /// Probability (0 to 1) that a request (HTTP) or a forwarded chunk (TCP) gets a
    /// fault.
    pub rate: f64,
    /// Relative weights of the kinds drawn when a fault is due.
    pub weights: Vec<(FaultKind, u32)>,
    /// The added latency of a [`FaultKind::Delay`], uniform in this range.
    pub delay: (Duration, Duration),
    /// How long a [`FaultKind::Stall`] holds a request or a connection.
    pub stall: Duration,
}

impl FaultMix {
    /// No faults: the proxy is transparent.
    pub fn off() -> Self {
        Self {
            rate: 0.0,
            weights: Vec::new(),
            delay: (Duration::from_millis(10), Duration::from_millis(200)),
            stall: Duration::from_secs(5),
        }
    }

    /// Every HTTP kind with equal weight at `rate`.
    pub fn http(rate: f64) -> Self {
        Self {
            rate,
            weights: FaultKind::HTTP.iter().map(|k| (*k, 1)).collect(),
            ..Self::off()
        }
    }

    /// Every TCP kind with equal weight at `rate`.
    pub fn tcp(rate: f64) -> Self {
        Self {
            rate,
            weights: FaultKind::TCP.iter().map(|k| (*k, 1)).collect(),
            ..Self::off()
        }
    }

    /// Only `kind`, at `rate`.
    pub fn only(kind: FaultKind, rate: f64) -> Self {
        Self {
            rate,
            weights: vec![(kind, 1)],
            ..Self::off()
        }
    }

    /// With the delay range `lo..=hi`.
    pub fn with_delay(mut self, lo: Duration, hi: Duration) -> Self {
        self.delay = (lo, hi);
        self
    }

    /// With stalls of `stall`.
    pub fn with_stall(mut self, stall: Duration) -> Self {
        self.stall = stall;
        self
    }

    /// Draws the fault for one request or chunk, if any, from `allowed` kinds.
    fn draw(&self, rng: &mut SplitMix64, allowed: &[FaultKind]) -> Option<FaultKind> {
        if self.rate <= 0.0 {
            return None;
        }
        if rng.next_f64() >= self.rate {
            return None;
        }
        let eligible: Vec<(FaultKind, u32)> = self
            .weights
            .iter()
            .copied()
            .filter(|(k, w)| *w > 0 && allowed.contains(k))
            .collect();
        let total: u64 = eligible.iter().map(|(_, w)| u64::from(*w)).sum();
        let mut pick = rng.below(total);
        for (kind, weight) in eligible {
            if pick < u64::from(weight) {
                return Some(kind);
            }
            pick -= u64::from(weight);
        }
        None
    }
}

/// Counts of injected faults by kind.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FaultCounts(pub BTreeMap<FaultKind, u64>);

impl FaultCounts {
    /// How many faults of `kind`.
    pub fn get(&self, kind: FaultKind) -> u64 {
        self.0.get(&kind).copied().unwrap_or(0)
    }

    /// All faults together.
    pub fn total(&self) -> u64 {
        self.0.values().sum()
    }

    /// Adds `other`'s counts to these.
    pub fn add(&mut self, other: &FaultCounts) {
        for (k, n) in &other.0 {
            *self.0.entry(*k).or_default() += n;
        }
    }

    /// Adds `n` faults of `kind` (for faults injected outside a proxy, such as a
    /// SIGSTOP of a node).
    pub fn add_kind(&mut self, kind: FaultKind, n: u64) {
        *self.0.entry(kind).or_default() += n;
    }
}

impl fmt::Display for FaultCounts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self
            .0
            .iter()
            .filter(|(_, n)| **n > 0)
            .map(|(k, n)| format!("{k}: {n}"))
            .collect();
        if parts.is_empty() {
            f.write_str("none")
        } else {
            f.write_str(&parts.join(", "))
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    Http,
    Tcp,
}

/// What the connection tasks watch: a restart bumps the epoch; dropping the proxy
/// sets `closed`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Control {
    epoch: u64,
    closed: bool,
}

struct Shared {
    label: String,
    mode: Mode,
    upstream: SocketAddr,
    mix: Mutex<FaultMix>,
    rng: Mutex<SplitMix64>,
    counts: [AtomicU64; FaultKind::ALL.len()],
    requests: AtomicU64,
    down_until: Mutex<Option<Instant>>,
    control: watch::Sender<Control>,
    http: reqwest::Client,
}

impl Shared {
    /// Draws this request's or chunk's fault (counted), with the delay or stall it
    /// lasts.
    fn draw(&self) -> Option<(FaultKind, Duration)> {
        let mix = self
            .mix
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        let allowed: &[FaultKind] = match self.mode {
            Mode::Http => &FaultKind::HTTP,
            Mode::Tcp => &FaultKind::TCP,
        };
        let mut rng = self.rng.lock().unwrap_or_else(PoisonError::into_inner);
        let kind = mix.draw(&mut rng, allowed)?;
        let lasts = match kind {
            FaultKind::Delay => rng.duration(mix.delay.0, mix.delay.1),
            FaultKind::Stall => mix.stall,
            _ => Duration::ZERO,
        };
        self.count(kind);
        Some((kind, lasts))
    }

    fn count(&self, kind: FaultKind) {
        self.counts[kind.index()].fetch_add(1, Ordering::Relaxed);
    }

    fn down_for(&self) -> Option<Duration> {
        let until = (*self
            .down_until
            .lock()
            .unwrap_or_else(PoisonError::into_inner))?;
        until.checked_duration_since(Instant::now())
    }
}

/// A fault-injecting proxy on a loopback port (stopped on drop).
pub struct Proxy {
    addr: SocketAddr,
    shared: Arc<Shared>,
    listener: tokio::task::JoinHandle<()>,
}

impl fmt::Debug for Proxy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Proxy")
            .field("label", &self.shared.label)
            .field("addr", &self.addr)
            .field("upstream", &self.shared.upstream)
            .finish()
    }
}

impl Proxy {
    /// An HTTP JSON-RPC proxy to the node at `upstream` (`http://host:port`), its
    /// faults drawn from `seed`. Starts transparent ([`FaultMix::off`]).
    pub async fn http(label: &str, upstream: &str, seed: u64) -> std::io::Result<Self> {
        let addr = socket_addr_of(upstream)?;
        Self::start(label, Mode::Http, addr, seed).await
    }

    /// A TCP proxy to `upstream` (any URL with a `host:port` authority, such as
    /// `ws://…` or `postgres://user@host:port/db`), its faults drawn from `seed`.
    /// Starts transparent ([`FaultMix::off`]).
    pub async fn tcp(label: &str, upstream: &str, seed: u64) -> std::io::Result<Self> {
        let addr = socket_addr_of(upstream)?;
        Self::start(label, Mode::Tcp, addr, seed).await
    }

    async fn start(
        label: &str,
        mode: Mode,
        upstream: SocketAddr,
        seed: u64,
    ) -> std::io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let http = reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(120))
            .build()
            .map_err(std::io::Error::other)?;
        let (control, _) = watch::channel(Control::default());
        let shared = Arc::new(Shared {
            label: label.to_owned(),
            mode,
            upstream,
            mix: Mutex::new(FaultMix::off()),
            rng: Mutex::new(SplitMix64::new(seed)),
            counts: Default::default(),
            requests: AtomicU64::new(0),
            down_until: Mutex::new(None),
            control,
            http,
        });
        let task = tokio::spawn(listen(listener, addr, shared.clone()));
        Ok(Self {
            addr,
            shared,
            listener: task,
        })
    }

    /// Its label (for reports).
    pub fn label(&self) -> &str {
        &self.shared.label
    }

    /// The proxy's address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `url` with its `host:port` replaced by the proxy's: what a client uses instead
    /// of the upstream's URL.
    pub fn rewrite(&self, url: &str) -> String {
        match authority_span(url) {
            Some((start, end)) => format!("{}{}{}", &url[..start], self.addr, &url[end..]),
            None => url.to_owned(),
        }
    }

    /// Sets the fault rate and mix from now on.
    pub fn set_mix(&self, mix: FaultMix) {
        *self
            .shared
            .mix
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = mix;
    }

    /// Stops injecting per-request faults (a restart in progress still ends on time).
    pub fn off(&self) {
        self.set_mix(FaultMix::off());
    }

    /// Resets every open connection and refuses new ones for `down` (the port is
    /// closed meanwhile), as a server restarting does.
    pub fn restart(&self, down: Duration) {
        *self
            .shared
            .down_until
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(Instant::now() + down);
        self.shared.count(FaultKind::Restart);
        self.shared.control.send_modify(|c| c.epoch += 1);
    }

    /// Injected faults by kind so far.
    pub fn counts(&self) -> FaultCounts {
        FaultCounts(
            FaultKind::ALL
                .iter()
                .map(|k| (*k, self.shared.counts[k.index()].load(Ordering::Relaxed)))
                .filter(|(_, n)| *n > 0)
                .collect(),
        )
    }

    /// Requests (HTTP) or connections (TCP) seen so far.
    pub fn requests(&self) -> u64 {
        self.shared.requests.load(Ordering::Relaxed)
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.shared.control.send_modify(|c| c.closed = true);
        self.listener.abort();
    }
}

/// The byte range of `host:port` in a URL like `scheme://[user@]host:port[/path]`.
fn authority_span(url: &str) -> Option<(usize, usize)> {
    let start = url.find("://")? + 3;
    let rest = &url[start..];
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let at = rest[..end].rfind('@').map_or(0, |i| i + 1);
    Some((start + at, start + end))
}

fn socket_addr_of(url: &str) -> std::io::Result<SocketAddr> {
    let bad = || {
        std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("no host:port in {url}"),
        )
    };
    let (start, end) = authority_span(url).ok_or_else(bad)?;
    let mut authority = url[start..end].replace("localhost", "127.0.0.1");
    if !authority.contains(':') {
        // The scheme's default port.
        let port = match url.split("://").next().unwrap_or_default() {
            "postgres" | "postgresql" => 5432,
            "https" | "wss" => 443,
            _ => 80,
        };
        authority = format!("{authority}:{port}");
    }
    authority.parse().map_err(|_| bad())
}

/// Accepts connections; on a restart closes the port until the restart is over, then
/// binds it again.
async fn listen(mut listener: TcpListener, addr: SocketAddr, shared: Arc<Shared>) {
    let mut control = shared.control.subscribe();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else { continue };
                let _ = stream.set_nodelay(true);
                shared.requests.fetch_add(u64::from(shared.mode == Mode::Tcp), Ordering::Relaxed);
                let conn_control = shared.control.subscribe();
                let shared = shared.clone();
                tokio::spawn(async move {
                    match shared.mode {
                        Mode::Http => serve_http(stream, shared.clone(), conn_control).await,
                        Mode::Tcp => serve_tcp(stream, shared.clone(), conn_control).await,
                    }
                });
            }
            changed = control.changed() => {
                if changed.is_err() || control.borrow_and_update().closed {
                    return;
                }
                let Some(down) = shared.down_for() else { continue };
                drop(listener);
                tokio::time::sleep(down).await;
                listener = loop {
                    match TcpListener::bind(addr).await {
                        Ok(l) => break l,
                        Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
                    }
                };
            }
        }
    }
}

/// Closes `stream` with RST instead of FIN.
fn reset(stream: TcpStream) {
    let _ = stream.set_zero_linger();
    drop(stream);
}

/// Sleeps `d`; false if a restart or the proxy's end came first.
async fn sleep_or_restart(d: Duration, control: &mut watch::Receiver<Control>) -> bool {
    tokio::select! {
        () = tokio::time::sleep(d) => true,
        _ = control.changed() => false,
    }
}

/// One HTTP/1.1 request: its request line's target and its body.
struct Request {
    target: String,
    body: Vec<u8>,
    close: bool,
}

/// Reads one request with a `Content-Length` body (what JSON-RPC clients send);
/// `None` at the end of the connection or on a request it cannot frame. Bytes of a
/// following request stay in `buf`.
async fn read_request(stream: &mut TcpStream, buf: &mut Vec<u8>) -> Option<Request> {
    let mut chunk = [0u8; 16 * 1024];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let target = lines.next()?.split(' ').nth(1)?.to_owned();
    let mut length = 0usize;
    let mut close = false;
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let (name, value) = (name.trim().to_ascii_lowercase(), value.trim());
        match name.as_str() {
            "content-length" => length = value.parse().ok()?,
            "transfer-encoding" => return None,
            "connection" => close = value.eq_ignore_ascii_case("close"),
            _ => {}
        }
    }
    while buf.len() < head_end + length {
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let body = buf[head_end..head_end + length].to_vec();
    buf.drain(..head_end + length);
    Some(Request {
        target,
        body,
        close,
    })
}

async fn respond(stream: &mut TcpStream, status: u16, reason: &str, body: &[u8]) -> bool {
    let head = format!(
        "HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await.is_ok() && stream.write_all(body).await.is_ok()
}

/// A JSON-RPC error answer to `body` (one object per request of a batch).
fn rpc_error(body: &[u8], code: i64, message: &str) -> Vec<u8> {
    let error = |id: &serde_json::Value| serde_json::json!({"jsonrpc": "2.0", "id": id, "error": {"code": code, "message": message}});
    let answer = match serde_json::from_slice::<serde_json::Value>(body) {
        Ok(serde_json::Value::Array(requests)) => {
            serde_json::Value::Array(requests.iter().map(|r| error(&r["id"])).collect())
        }
        Ok(request) => error(&request["id"]),
        Err(_) => error(&serde_json::Value::Null),
    };
    answer.to_string().into_bytes()
}

/// The node's answer to `request`: status and body.
async fn forward(shared: &Shared, request: &Request) -> Option<(u16, Vec<u8>)> {
    let url = format!("http://{}{}", shared.upstream, request.target);
    let answer = shared
        .http
        .post(url)
        .header("content-type", "application/json")
        .body(request.body.clone())
        .send()
        .await
        .ok()?;
    let status = answer.status().as_u16();
    let body = answer.bytes().await.ok()?.to_vec();
    Some((status, body))
}

async fn serve_http(
    mut client: TcpStream,
    shared: Arc<Shared>,
    mut control: watch::Receiver<Control>,
) {
    let mut buf = Vec::new();
    loop {
        let request = tokio::select! {
            r = read_request(&mut client, &mut buf) => r,
            _ = control.changed() => return reset(client),
        };
        let Some(request) = request else { return };
        shared.requests.fetch_add(1, Ordering::Relaxed);
        let fault = shared.draw();
        let answered = match fault {
            None => forward_and_answer(&mut client, &shared, &request, false).await,
            Some((FaultKind::Delay | FaultKind::Stall, lasts)) => {
                if !sleep_or_restart(lasts, &mut control).await {
                    return reset(client);
                }
                forward_and_answer(&mut client, &shared, &request, false).await
            }
            Some((FaultKind::Drop, _)) => return,
            Some((FaultKind::Reset, _)) => return reset(client),
            Some((FaultKind::Http429, _)) => {
                respond(&mut client, 429, "Too Many Requests", b"Too Many Requests").await
            }
            Some((FaultKind::Http502, _)) => {
                respond(&mut client, 502, "Bad Gateway", b"Bad Gateway").await
            }
            Some((FaultKind::Http503, _)) => {
                respond(
                    &mut client,
                    503,
                    "Service Unavailable",
                    b"Service Unavailable",
                )
                .await
            }
            Some((FaultKind::RpcLimitExceeded, _)) => {
                let body = rpc_error(&request.body, -32005, "limit exceeded");
                respond(&mut client, 200, "OK", &body).await
            }
            Some((FaultKind::RpcInternal, _)) => {
                let body = rpc_error(&request.body, -32603, "internal error");
                respond(&mut client, 200, "OK", &body).await
            }
            Some((FaultKind::Truncate, _)) => {
                forward_and_answer(&mut client, &shared, &request, true).await
            }
            Some((FaultKind::Restart, _)) => return reset(client),
        };
        if !answered || request.close {
            return;
        }
    }
}

/// Forwards `request` and writes the node's answer (cut in half when `truncate`);
/// false when the connection should end (the node or the client is gone).
async fn forward_and_answer(
    client: &mut TcpStream,
    shared: &Shared,
    request: &Request,
    truncate: bool,
) -> bool {
    let Some((status, mut body)) = forward(shared, request).await else {
        return false;
    };
    if truncate {
        body.truncate(body.len() / 2);
    }
    let reason = if status == 200 { "OK" } else { "Upstream" };
    respond(client, status, reason, &body).await
}

async fn serve_tcp(client: TcpStream, shared: Arc<Shared>, mut control: watch::Receiver<Control>) {
    let Ok(upstream) = TcpStream::connect(shared.upstream).await else {
        return reset(client);
    };
    let _ = upstream.set_nodelay(true);
    let (mut client, mut upstream) = (client, upstream);
    let mut up = vec![0u8; 32 * 1024];
    let mut down = vec![0u8; 32 * 1024];
    let mut reset_both = false;
    {
        let (mut cr, mut cw) = client.split();
        let (mut ur, mut uw) = upstream.split();
        loop {
            // Which direction has bytes: (from client to upstream?, how many).
            let (to_upstream, n) = tokio::select! {
                r = cr.read(&mut up) => (true, r.unwrap_or(0)),
                r = ur.read(&mut down) => (false, r.unwrap_or(0)),
                _ = control.changed() => { reset_both = true; break }
            };
            if n == 0 {
                break;
            }
            let lasts = match shared.draw() {
                Some((FaultKind::Reset, _)) => {
                    reset_both = true;
                    break;
                }
                Some((_, lasts)) => lasts,
                None => Duration::ZERO,
            };
            if !lasts.is_zero() && !sleep_or_restart(lasts, &mut control).await {
                reset_both = true;
                break;
            }
            let written = if to_upstream {
                uw.write_all(&up[..n]).await
            } else {
                cw.write_all(&down[..n]).await
            };
            if written.is_err() {
                break;
            }
        }
    }
    if reset_both {
        reset(client);
        reset(upstream);
    }
}

#[cfg(test)]
#[expect(
    clippy::unwrap_used,
    reason = "test code: a panic is the failure report"
)]
mod tests {
    use super::*;

    /// A JSON-RPC node that answers every request with `{"result": "0x2a"}` and its id.
    async fn node() -> (String, tokio::task::JoinHandle<()>) {
        use axum::routing::post;
        use axum::Json;
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let app = axum::Router::new().route(
            "/",
            post(|Json(req): Json<serde_json::Value>| async move {
                Json(serde_json::json!({"jsonrpc": "2.0", "id": req["id"], "result": "0x2a"}))
            }),
        );
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        (url, task)
    }

    /// A TCP echo server.
    async fn echo() -> (String, tokio::task::JoinHandle<()>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("tcp://{}", listener.local_addr().unwrap());
        let task = tokio::spawn(async move {
            while let Ok((mut s, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let mut buf = [0u8; 1024];
                    while let Ok(n) = s.read(&mut buf).await {
                        if n == 0 || s.write_all(&buf[..n]).await.is_err() {
                            break;
                        }
                    }
                });
            }
        });
        (url, task)
    }

    fn client() -> reqwest::Client {
        reqwest::Client::builder().no_proxy().build().unwrap()
    }

    async fn call(
        client: &reqwest::Client,
        proxy: &Proxy,
        id: u64,
    ) -> reqwest::Result<reqwest::Response> {
        client
            .post(format!("http://{}/", proxy.addr()))
            .header("content-type", "application/json")
            .body(serde_json::json!({"jsonrpc": "2.0", "id": id, "method": "eth_chainId", "params": []}).to_string())
            .send()
            .await
    }

    #[test]
    fn the_same_seed_draws_the_same_faults() {
        let mix = FaultMix::http(0.5);
        let draws = |seed| {
            let mut rng = SplitMix64::new(seed);
            (0..200)
                .map(|_| mix.draw(&mut rng, &FaultKind::HTTP))
                .collect::<Vec<_>>()
        };
        assert_eq!(draws(7), draws(7));
        assert_ne!(draws(7), draws(8));
        let faults = draws(7).iter().flatten().count();
        assert!((60..140).contains(&faults), "rate 0.5 gave {faults} of 200");
        let kinds: std::collections::BTreeSet<_> = draws(7).into_iter().flatten().collect();
        assert_eq!(
            kinds.len(),
            FaultKind::HTTP.len(),
            "every HTTP kind is drawn"
        );
        let tcp_only = draws_tcp(&FaultMix::http(1.0));
        assert!(tcp_only.iter().all(|k| FaultKind::TCP.contains(k)));
    }

    fn draws_tcp(mix: &FaultMix) -> Vec<FaultKind> {
        let mut rng = SplitMix64::new(1);
        (0..100)
            .filter_map(|_| mix.draw(&mut rng, &FaultKind::TCP))
            .collect()
    }

    #[test]
    fn urls_are_rewritten_to_the_proxy() {
        assert_eq!(authority_span("http://127.0.0.1:8545"), Some((7, 21)));
        let pg = "postgres://postgres@127.0.0.1:5432/db";
        let (s, e) = authority_span(pg).unwrap();
        assert_eq!(&pg[s..e], "127.0.0.1:5432");
        assert_eq!(
            socket_addr_of("ws://localhost:8000").unwrap(),
            "127.0.0.1:8000".parse().unwrap()
        );
        assert_eq!(
            socket_addr_of("postgres://postgres@localhost/db").unwrap(),
            "127.0.0.1:5432".parse().unwrap()
        );
    }

    #[tokio::test]
    async fn with_faults_off_the_http_proxy_is_transparent() {
        let (url, _node) = node().await;
        let proxy = Proxy::http("node", &url, 1).await.unwrap();
        assert_eq!(proxy.rewrite(&url), format!("http://{}", proxy.addr()));
        let client = client();
        for id in 0..50 {
            let answer = call(&client, &proxy, id)
                .await
                .unwrap()
                .bytes()
                .await
                .unwrap();
            let answer: serde_json::Value = serde_json::from_slice(&answer).unwrap();
            assert_eq!(answer["result"], "0x2a");
            assert_eq!(answer["id"], id);
        }
        assert_eq!(proxy.counts().total(), 0);
        assert_eq!(proxy.requests(), 50);
    }

    #[tokio::test]
    async fn every_http_fault_kind_happens() {
        let (url, _node) = node().await;
        let proxy = Proxy::http("node", &url, 2).await.unwrap();
        let client = client();

        for (kind, status) in [
            (FaultKind::Http429, 429),
            (FaultKind::Http502, 502),
            (FaultKind::Http503, 503),
        ] {
            proxy.set_mix(FaultMix::only(kind, 1.0));
            let answer = call(&client, &proxy, 1).await.unwrap();
            assert_eq!(answer.status().as_u16(), status, "{kind}");
        }

        for (kind, code) in [
            (FaultKind::RpcLimitExceeded, -32005),
            (FaultKind::RpcInternal, -32603),
        ] {
            proxy.set_mix(FaultMix::only(kind, 1.0));
            let answer = call(&client, &proxy, 77)
                .await
                .unwrap()
                .bytes()
                .await
                .unwrap();
            let answer: serde_json::Value = serde_json::from_slice(&answer).unwrap();
            assert_eq!(answer["error"]["code"], code, "{kind}");
            assert_eq!(answer["id"], 77, "{kind} keeps the request's id");
        }

        proxy.set_mix(FaultMix::only(FaultKind::Truncate, 1.0));
        let body = call(&client, &proxy, 3)
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        assert!(!body.is_empty());
        assert!(
            serde_json::from_slice::<serde_json::Value>(&body).is_err(),
            "a truncated answer does not parse"
        );

        proxy.set_mix(FaultMix::only(FaultKind::Drop, 1.0));
        let dropped = call(&client, &proxy, 4).await.unwrap_err();
        assert!(
            format!("{dropped:?}").contains("IncompleteMessage"),
            "{dropped:?}"
        );

        proxy.set_mix(FaultMix::only(FaultKind::Reset, 1.0));
        let reset = call(&client, &proxy, 5).await.unwrap_err();
        assert!(
            format!("{reset:?}").contains("ConnectionReset"),
            "a reset is a connection error: {reset:?}"
        );

        let delay = Duration::from_millis(300);
        proxy.set_mix(FaultMix::only(FaultKind::Delay, 1.0).with_delay(delay, delay));
        let started = Instant::now();
        assert!(call(&client, &proxy, 6)
            .await
            .unwrap()
            .status()
            .is_success());
        assert!(started.elapsed() >= delay);

        proxy.set_mix(FaultMix::only(FaultKind::Stall, 1.0).with_stall(Duration::from_secs(2)));
        let impatient = reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_millis(500))
            .build()
            .unwrap();
        let stalled = call(&impatient, &proxy, 7).await.unwrap_err();
        assert!(stalled.is_timeout(), "{stalled:?}");
        let started = Instant::now();
        let late = call(&client, &proxy, 8)
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        let late: serde_json::Value = serde_json::from_slice(&late).unwrap();
        assert_eq!(late["result"], "0x2a", "a stalled request is answered late");
        assert!(started.elapsed() >= Duration::from_secs(2));

        proxy.off();
        assert!(call(&client, &proxy, 9)
            .await
            .unwrap()
            .status()
            .is_success());
        let counts = proxy.counts();
        for kind in FaultKind::HTTP {
            let expected = if kind == FaultKind::Stall { 2 } else { 1 };
            assert_eq!(counts.get(kind), expected, "{kind}: {counts}");
        }
    }

    async fn roundtrip(addr: SocketAddr, bytes: &[u8]) -> std::io::Result<Vec<u8>> {
        let mut s = TcpStream::connect(addr).await?;
        s.write_all(bytes).await?;
        let mut got = vec![0u8; bytes.len()];
        s.read_exact(&mut got).await?;
        Ok(got)
    }

    #[tokio::test]
    async fn the_tcp_proxy_is_transparent_delays_stalls_and_resets() {
        let (url, _echo) = echo().await;
        let proxy = Proxy::tcp("echo", &url, 3).await.unwrap();
        for i in 0..20u8 {
            assert_eq!(
                roundtrip(proxy.addr(), &[i; 100]).await.unwrap(),
                vec![i; 100]
            );
        }
        assert_eq!(proxy.counts().total(), 0);

        proxy.set_mix(FaultMix::only(FaultKind::Reset, 1.0));
        let err = roundtrip(proxy.addr(), b"hello").await.unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::ConnectionReset, "{err:?}");

        let delay = Duration::from_millis(200);
        proxy.set_mix(FaultMix::only(FaultKind::Delay, 1.0).with_delay(delay, delay));
        let started = Instant::now();
        assert_eq!(roundtrip(proxy.addr(), b"late").await.unwrap(), b"late");
        // Both directions are delayed.
        assert!(started.elapsed() >= delay * 2);

        proxy.set_mix(FaultMix::only(FaultKind::Stall, 1.0).with_stall(Duration::from_secs(1)));
        let started = Instant::now();
        assert_eq!(roundtrip(proxy.addr(), b"stall").await.unwrap(), b"stall");
        assert!(started.elapsed() >= Duration::from_secs(2));

        proxy.off();
        let counts = proxy.counts();
        assert_eq!(counts.get(FaultKind::Reset), 1, "{counts}");
        assert_eq!(counts.get(FaultKind::Delay), 2, "{counts}");
        assert_eq!(counts.get(FaultKind::Stall), 2, "{counts}");
    }

    #[tokio::test]
    async fn a_restart_resets_open_connections_and_refuses_new_ones_for_a_while() {
        for (mode, url) in [("tcp", echo().await), ("http", node().await)] {
            let (url, _server) = url;
            let proxy = if mode == "tcp" {
                Proxy::tcp("echo", &url, 4).await.unwrap()
            } else {
                Proxy::http("node", &url, 4).await.unwrap()
            };
            let mut open = TcpStream::connect(proxy.addr()).await.unwrap();
            tokio::time::sleep(Duration::from_millis(100)).await;
            proxy.restart(Duration::from_secs(1));
            let mut buf = [0u8; 8];
            let read = open.read(&mut buf).await;
            assert!(
                matches!(&read, Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset),
                "{mode}: the open connection is reset: {read:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
            let refused = TcpStream::connect(proxy.addr()).await.unwrap_err();
            assert_eq!(
                refused.kind(),
                std::io::ErrorKind::ConnectionRefused,
                "{mode}"
            );
            tokio::time::sleep(Duration::from_millis(1200)).await;
            if mode == "tcp" {
                assert_eq!(roundtrip(proxy.addr(), b"back").await.unwrap(), b"back");
            } else {
                assert!(call(&client(), &proxy, 1)
                    .await
                    .unwrap()
                    .status()
                    .is_success());
            }
            assert_eq!(proxy.counts().get(FaultKind::Restart), 1);
        }
    }
}
