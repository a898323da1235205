//! A JSON-RPC 2.0 node that replays a recorded EVM chain.
//!
//! [`ReplayServer`] loads a recorded run of blocks (a fixture of
//! `eth_getBlockByNumber` objects, such as the GoQuorum IBFT 1.0 network's blocks
//! 0..=100 in `shared/fixtures/ethereum/goquorum-ibft1-blocks-0-100.json`) and serves
//! them over HTTP as a node would, up to a head the test moves with
//! [`ReplayServer::set_head`]. The chain is empty of transactions: blocks carry
//! `transactions: []`, `eth_getLogs` answers `[]`, accounts have a balance and nonce 0.
//!
//! A test can corrupt a block's consensus evidence with [`ReplayServer::tamper`]: the
//! served `extraData` then carries a flipped byte inside one of the istanbul seals
//! while every other field, the `hash` included, stays as recorded. On an IBFT 1.0
//! chain the block hash leaves the committed seals out, so a tampered committed seal
//! keeps the hash chain intact: only verifying the seals finds it.
//!
//! Every request is recorded ([`ReplayServer::requests`]); a method the server does
//! not know is answered with JSON-RPC error -32601 and listed by
//! [`ReplayServer::unknown_methods`].

use std::collections::HashMap;
use std::net::SocketAddr;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use serde_json::{json, Map, Value};

/// The shared fixtures directory: `ISTHMUS_FIXTURES` if set, else `shared/fixtures`
/// beside the repository.
pub fn fixtures_dir() -> PathBuf {
    std::env::var_os("ISTHMUS_FIXTURES")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/fixtures"))
}

/// The GoQuorum IBFT 1.0 recording: blocks 0..=100 of a five-validator network,
/// chain id 1337, epoch 100.
pub const GOQUORUM_IBFT1: &str = "ethereum/goquorum-ibft1-blocks-0-100.json";

/// The GoQuorum recording's chain id.
pub const GOQUORUM_CHAIN_ID: u64 = 1337;

/// A corruption of a served block's istanbul extra data
/// (`extraData = vanity(32) ‖ RLP([validators, proposerSeal, committedSeals])`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tamper {
    /// Flips a byte of the signature's `r` in the last committed seal.
    CommittedSeal,
    /// Flips a byte of the signature's `r` in the proposer seal.
    ProposerSeal,
}

/// Offset, inside a 65-byte seal (`r ‖ s ‖ v`), of the byte a [`Tamper`] flips.
const FLIPPED_BYTE: usize = 7;

/// Where the parts of an istanbul extra data lie.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IstanbulExtra {
    /// The validators list, as an encoded RLP item (header included).
    pub validators_item: Range<usize>,
    /// The proposer seal, as an encoded RLP item (header included).
    pub proposer_seal_item: Range<usize>,
    /// The proposer seal's bytes.
    pub proposer_seal: Range<usize>,
    /// Each committed seal's bytes.
    pub committed_seals: Vec<Range<usize>>,
}

/// One RLP item at `at`: (payload range, whether it is a list).
fn rlp_item(buf: &[u8], at: usize) -> Option<(Range<usize>, bool)> {
    let b = *buf.get(at)?;
    let long_len = |lenlen: usize| -> Option<(usize, usize)> {
        let bytes = buf.get(at + 1..at + 1 + lenlen)?;
        let len = bytes.iter().try_fold(0usize, |acc, &x| {
            acc.checked_mul(256)?.checked_add(usize::from(x))
        })?;
        Some((at + 1 + lenlen, len))
    };
    let (start, len, list) = match b {
        0x00..=0x7f => (at, 1, false),
        0x80..=0xb7 => (at + 1, usize::from(b - 0x80), false),
        0xb8..=0xbf => {
            let (s, l) = long_len(usize::from(b - 0xb7))?;
            (s, l, false)
        }
        0xc0..=0xf7 => (at + 1, usize::from(b - 0xc0), true),
        0xf8..=0xff => {
            let (s, l) = long_len(usize::from(b - 0xf7))?;
            (s, l, true)
        }
    };
    let end = start.checked_add(len)?;
    (end <= buf.len()).then_some((start..end, list))
}

/// One item of an RLP list.
struct RlpItem {
    /// The encoded item, header included.
    item: Range<usize>,
    /// Its payload.
    payload: Range<usize>,
    /// Whether it is a list.
    list: bool,
}

/// The items of the list whose payload is `payload`.
fn rlp_list_items(buf: &[u8], payload: Range<usize>) -> Option<Vec<RlpItem>> {
    let mut items = Vec::new();
    let mut at = payload.start;
    while at < payload.end {
        let (p, list) = rlp_item(buf, at)?;
        if p.end > payload.end {
            return None;
        }
        items.push(RlpItem {
            item: at..p.end,
            payload: p.clone(),
            list,
        });
        at = p.end;
    }
    Some(items)
}

/// Parses an istanbul (IBFT 1.0) extra data; `None` if it is not one.
pub fn istanbul_extra(extra: &[u8]) -> Option<IstanbulExtra> {
    let (outer, list) = rlp_item(extra, 32)?;
    if !list || outer.end != extra.len() {
        return None;
    }
    let items = rlp_list_items(extra, outer)?;
    let [validators, proposer, committed] = items.as_slice() else {
        return None;
    };
    if !validators.list || proposer.list || !committed.list {
        return None;
    }
    let seals = rlp_list_items(extra, committed.payload.clone())?;
    Some(IstanbulExtra {
        validators_item: validators.item.clone(),
        proposer_seal_item: proposer.item.clone(),
        proposer_seal: proposer.payload.clone(),
        committed_seals: seals.into_iter().map(|s| s.payload).collect(),
    })
}

/// The extra data an IBFT 1.0 block hash is computed over: the committed seals
/// removed, the vanity, validators and proposer seal kept.
pub fn istanbul_extra_for_hash(extra: &[u8]) -> Option<Vec<u8>> {
    let parts = istanbul_extra(extra)?;
    let mut payload = extra[parts.validators_item.clone()].to_vec();
    payload.extend_from_slice(&extra[parts.proposer_seal_item.clone()]);
    payload.push(0xc0);
    let mut out = extra[..32].to_vec();
    if payload.len() < 56 {
        out.push(0xc0 + payload.len() as u8);
    } else {
        let len = payload.len().to_be_bytes();
        let skip = len.iter().take_while(|&&b| b == 0).count();
        out.push(0xf7 + (len.len() - skip) as u8);
        out.extend_from_slice(&len[skip..]);
    }
    out.extend_from_slice(&payload);
    Some(out)
}

/// `extra` with `tamper` applied; `None` if `extra` has no such seal.
pub fn tampered_extra(extra: &[u8], tamper: Tamper) -> Option<Vec<u8>> {
    let parts = istanbul_extra(extra)?;
    let seal = match tamper {
        Tamper::CommittedSeal => parts.committed_seals.last()?.clone(),
        Tamper::ProposerSeal => parts.proposer_seal,
    };
    if seal.len() <= FLIPPED_BYTE {
        return None;
    }
    let mut out = extra.to_vec();
    out[seal.start + FLIPPED_BYTE] ^= 0xff;
    Some(out)
}

fn hex_bytes(s: &str) -> Option<Vec<u8>> {
    hex::decode(s.strip_prefix("0x")?).ok()
}

fn quantity(n: u64) -> String {
    format!("0x{n:x}")
}

fn parse_quantity(v: &Value) -> Option<u64> {
    match v {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => u64::from_str_radix(s.strip_prefix("0x")?, 16).ok(),
        _ => None,
    }
}

/// One request as received.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    /// The method.
    pub method: String,
    /// Its params (`null` when absent).
    pub params: Value,
}

struct State {
    head: u64,
    tampered: HashMap<u64, Tamper>,
    requests: Vec<Request>,
    unknown: Vec<String>,
}

struct Inner {
    chain_id: u64,
    /// The blocks as served untampered, by number.
    blocks: Vec<Map<String, Value>>,
    /// Lowercase hash -> number.
    by_hash: HashMap<String, u64>,
    state: Mutex<State>,
}

impl Inner {
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn served(&self, n: u64, tamper: Option<Tamper>) -> Value {
        let Some(block) = usize::try_from(n).ok().and_then(|i| self.blocks.get(i)) else {
            return Value::Null;
        };
        let mut block = block.clone();
        if let Some(t) = tamper {
            let extra = block
                .get("extraData")
                .and_then(Value::as_str)
                .and_then(hex_bytes)
                .and_then(|e| tampered_extra(&e, t));
            if let Some(extra) = extra {
                block.insert(
                    "extraData".into(),
                    json!(format!("0x{}", hex::encode(extra))),
                );
            }
        }
        Value::Object(block)
    }

    fn block_if_served(&self, n: u64) -> Value {
        let (head, tamper) = {
            let s = self.state();
            (s.head, s.tampered.get(&n).copied())
        };
        if n > head {
            return Value::Null;
        }
        self.served(n, tamper)
    }

    fn block_number_param(&self, v: &Value) -> Option<u64> {
        match v.as_str() {
            Some("latest" | "finalized" | "safe" | "pending") => Some(self.state().head),
            Some("earliest") => Some(0),
            _ => parse_quantity(v),
        }
    }

    /// Answers one request object.
    fn answer(&self, req: &Value) -> Value {
        let id = req.get("id").cloned().unwrap_or(Value::Null);
        let Some(method) = req.get("method").and_then(Value::as_str) else {
            return json!({"jsonrpc": "2.0", "id": id, "error": {"code": -32600, "message": "invalid request"}});
        };
        let params = req.get("params").cloned().unwrap_or(Value::Null);
        self.state().requests.push(Request {
            method: method.to_owned(),
            params: params.clone(),
        });
        let p = |i: usize| params.get(i).cloned().unwrap_or(Value::Null);
        let invalid = |what: &str| Err((-32602, format!("invalid params: {what}")));
        let result: Result<Value, (i64, String)> = match method {
            "eth_chainId" => Ok(json!(quantity(self.chain_id))),
            "net_version" => Ok(json!(self.chain_id.to_string())),
            "eth_blockNumber" => Ok(json!(quantity(self.state().head))),
            "eth_getBlockByNumber" => match self.block_number_param(&p(0)) {
                Some(n) => Ok(self.block_if_served(n)),
                None => invalid("block number"),
            },
            "eth_getBlockByHash" => match p(0).as_str() {
                Some(h) => Ok(self
                    .by_hash
                    .get(&h.to_ascii_lowercase())
                    .map_or(Value::Null, |&n| self.block_if_served(n))),
                None => invalid("block hash"),
            },
            "eth_getLogs" => Ok(json!([])),
            "eth_getBalance" => Ok(json!("0x56bc75e2d63100000")),
            "eth_getTransactionCount" => Ok(json!("0x0")),
            "eth_gasPrice" => Ok(json!("0x3b9aca00")),
            "eth_maxPriorityFeePerGas" => Ok(json!("0x3b9aca00")),
            "eth_feeHistory" => {
                let head = self.state().head;
                let count = parse_quantity(&p(0)).unwrap_or(1).clamp(1, 1024);
                let newest = self.block_number_param(&p(1)).unwrap_or(head).min(head);
                let count = count.min(newest + 1);
                let percentiles = p(2).as_array().map_or(0, Vec::len);
                let mut history = json!({
                    "oldestBlock": quantity(newest + 1 - count),
                    "baseFeePerGas": vec!["0x0"; count as usize + 1],
                    "gasUsedRatio": vec![0.0; count as usize],
                });
                if percentiles > 0 {
                    history["reward"] = json!(vec![vec!["0x0"; percentiles]; count as usize]);
                }
                Ok(history)
            }
            other => {
                self.state().unknown.push(other.to_owned());
                Err((
                    -32601,
                    format!("the method {other} does not exist/is not available"),
                ))
            }
        };
        match result {
            Ok(result) => json!({"jsonrpc": "2.0", "id": id, "result": result}),
            Err((code, message)) => {
                json!({"jsonrpc": "2.0", "id": id, "error": {"code": code, "message": message}})
            }
        }
    }

    /// Answers a request body: one request or a batch.
    fn answer_body(&self, body: &str) -> Value {
        match serde_json::from_str::<Value>(body) {
            Ok(Value::Array(batch)) if !batch.is_empty() => {
                Value::Array(batch.iter().map(|r| self.answer(r)).collect())
            }
            Ok(Value::Array(_)) => {
                json!({"jsonrpc": "2.0", "id": null, "error": {"code": -32600, "message": "empty batch"}})
            }
            Ok(req) => self.answer(&req),
            Err(e) => {
                json!({"jsonrpc": "2.0", "id": null, "error": {"code": -32700, "message": format!("parse error: {e}")}})
            }
        }
    }
}

/// A replaying node on a loopback port; stops when dropped.
pub struct ReplayServer {
    inner: Arc<Inner>,
    addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl std::fmt::Debug for ReplayServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReplayServer")
            .field("addr", &self.addr)
            .field("blocks", &self.inner.blocks.len())
            .finish_non_exhaustive()
    }
}

/// The blocks of a recording, as served: underscore fields dropped, `transactions`
/// and `uncles` empty, `size` and `totalDifficulty` added.
fn load_blocks(path: &Path) -> Result<Vec<Map<String, Value>>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let doc: Value = serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    let blocks = doc
        .get("blocks")
        .and_then(Value::as_array)
        .ok_or_else(|| format!("{}: no `blocks` array", path.display()))?;
    let mut out = Vec::with_capacity(blocks.len());
    let mut total_difficulty: u128 = 0;
    for (i, block) in blocks.iter().enumerate() {
        let obj = block
            .as_object()
            .ok_or_else(|| format!("block {i} is not an object"))?;
        let number = obj.get("number").and_then(parse_quantity);
        if number != Some(i as u64) {
            return Err(format!("block {i} has number {:?}", obj.get("number")));
        }
        let mut served: Map<String, Value> = obj
            .iter()
            .filter(|(k, _)| !k.starts_with('_'))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        served.insert("transactions".into(), json!([]));
        served.insert("uncles".into(), json!([]));
        let difficulty = obj
            .get("difficulty")
            .and_then(Value::as_str)
            .and_then(|d| u128::from_str_radix(d.strip_prefix("0x")?, 16).ok())
            .unwrap_or(0);
        total_difficulty += difficulty;
        served.insert(
            "totalDifficulty".into(),
            json!(format!("0x{total_difficulty:x}")),
        );
        if let Some(header) = obj
            .get("_rlp_header")
            .and_then(Value::as_str)
            .and_then(hex_bytes)
        {
            // RLP([header, [], []]).
            let payload = header.len() + 2;
            let prefix = if payload < 56 {
                1
            } else {
                1 + (usize::BITS - payload.leading_zeros()).div_ceil(8) as usize
            };
            served.insert("size".into(), json!(quantity((prefix + payload) as u64)));
        }
        out.push(served);
    }
    if out.is_empty() {
        return Err(format!("{}: no blocks", path.display()));
    }
    Ok(out)
}

impl ReplayServer {
    /// Serves the recording at `path` (a JSON document with a `blocks` array of block
    /// objects numbered from 0) as chain `chain_id`, its head at the last recorded
    /// block.
    pub async fn start(path: &Path, chain_id: u64) -> Result<Self, String> {
        let blocks = load_blocks(path)?;
        let by_hash = blocks
            .iter()
            .enumerate()
            .filter_map(|(i, b)| Some((b.get("hash")?.as_str()?.to_ascii_lowercase(), i as u64)))
            .collect();
        let inner = Arc::new(Inner {
            chain_id,
            state: Mutex::new(State {
                head: blocks.len() as u64 - 1,
                tampered: HashMap::new(),
                requests: Vec::new(),
                unknown: Vec::new(),
            }),
            blocks,
            by_hash,
        });
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
            .await
            .map_err(|e| format!("bind: {e}"))?;
        let addr = listener.local_addr().map_err(|e| format!("bind: {e}"))?;
        let served = inner.clone();
        let app = axum::Router::new().route(
            "/",
            axum::routing::post(move |body: String| {
                let inner = served.clone();
                async move {
                    let answer = inner.answer_body(&body);
                    (
                        [(axum::http::header::CONTENT_TYPE, "application/json")],
                        answer.to_string(),
                    )
                }
            }),
        );
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(Self { inner, addr, task })
    }

    /// Serves the GoQuorum IBFT 1.0 recording ([`GOQUORUM_IBFT1`]).
    pub async fn goquorum_ibft1() -> Self {
        let path = fixtures_dir().join(GOQUORUM_IBFT1);
        Self::start(&path, GOQUORUM_CHAIN_ID)
            .await
            .unwrap_or_else(|e| panic!("replay of {}: {e}", path.display()))
    }

    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// The chain id it answers.
    pub fn chain_id(&self) -> u64 {
        self.inner.chain_id
    }

    /// The last recorded block's number.
    pub fn last_recorded(&self) -> u64 {
        self.inner.blocks.len() as u64 - 1
    }

    /// The head served: `eth_blockNumber`, `latest`, `safe` and `finalized`; blocks
    /// above it do not exist.
    pub fn head(&self) -> u64 {
        self.inner.state().head
    }

    /// Moves the served head to `n` (a recorded block).
    pub fn set_head(&self, n: u64) {
        assert!(
            n <= self.last_recorded(),
            "block {n} is not recorded (last {})",
            self.last_recorded()
        );
        self.inner.state().head = n;
    }

    /// Serves block `n` with `tamper` applied to its extra data from now on; its
    /// `hash` stays the recorded one. Panics if the block has no such seal.
    pub fn tamper(&self, n: u64, tamper: Tamper) {
        let extra = self
            .inner
            .blocks
            .get(n as usize)
            .and_then(|b| hex_bytes(b.get("extraData")?.as_str()?));
        assert!(
            extra.and_then(|e| tampered_extra(&e, tamper)).is_some(),
            "block {n} has no seal for {tamper:?}"
        );
        self.inner.state().tampered.insert(n, tamper);
    }

    /// Block `n` as served without tampering (whatever the head).
    pub fn recorded_block(&self, n: u64) -> Value {
        self.inner.served(n, None)
    }

    /// Block `n` as served now (tampered if it is), whatever the head.
    pub fn served_block(&self, n: u64) -> Value {
        let tamper = self.inner.state().tampered.get(&n).copied();
        self.inner.served(n, tamper)
    }

    /// The recorded `hash` of block `n` (`0x`-prefixed).
    pub fn recorded_hash(&self, n: u64) -> String {
        self.recorded_block(n)["hash"]
            .as_str()
            .unwrap_or_else(|| panic!("block {n} is not recorded"))
            .to_owned()
    }

    /// Every request received, in order: (method, params).
    pub fn requests(&self) -> Vec<(String, Value)> {
        self.inner
            .state()
            .requests
            .iter()
            .map(|r| (r.method.clone(), r.params.clone()))
            .collect()
    }

    /// Forgets the requests received so far (and the unknown methods).
    pub fn clear_requests(&self) {
        let mut s = self.inner.state();
        s.requests.clear();
        s.unknown.clear();
    }

    /// Every block number asked for by number (`eth_getBlockByNumber` with a number,
    /// not a tag) or by a recorded hash (`eth_getBlockByHash`), in request order.
    pub fn header_numbers_fetched(&self) -> Vec<u64> {
        let s = self.inner.state();
        s.requests
            .iter()
            .filter_map(|r| {
                let first = r.params.get(0)?;
                match r.method.as_str() {
                    "eth_getBlockByNumber" => parse_quantity(first),
                    "eth_getBlockByHash" => self
                        .inner
                        .by_hash
                        .get(&first.as_str()?.to_ascii_lowercase())
                        .copied(),
                    _ => None,
                }
            })
            .collect()
    }

    /// The methods answered with -32601, in order.
    pub fn unknown_methods(&self) -> Vec<String> {
        self.inner.state().unknown.clone()
    }
}

impl Drop for ReplayServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[cfg(test)]
#[expect(
    clippy::unwrap_used,
    reason = "test code: a panic is the failure report"
)]
mod tests {
    use super::*;
    use ethers::providers::{Http, Middleware, Provider};
    use ethers::types::{BlockId, BlockNumber, H256};
    use isthmus_light_client_evm::Header;

    async fn post(url: &str, body: &Value) -> Value {
        post_text(url, body.to_string()).await
    }

    async fn post_text(url: &str, body: String) -> Value {
        let text = reqwest::Client::new()
            .post(url)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        serde_json::from_str(&text).unwrap()
    }

    #[tokio::test]
    async fn serves_the_recording_to_an_ethers_provider() {
        let server = ReplayServer::goquorum_ibft1().await;
        assert_eq!(server.last_recorded(), 100);
        server.set_head(60);
        let provider = Provider::<Http>::try_from(server.url()).unwrap();
        assert_eq!(provider.get_chainid().await.unwrap().as_u64(), 1337);
        assert_eq!(provider.get_block_number().await.unwrap().as_u64(), 60);

        for n in [0u64, 1, 59, 60] {
            let block = provider.get_block(n).await.unwrap().unwrap();
            assert_eq!(block.number.unwrap().as_u64(), n);
            let recorded: H256 = server.recorded_hash(n).parse().unwrap();
            assert_eq!(block.hash.unwrap(), recorded);
            assert!(block.transactions.is_empty());
            assert!(block.size.is_some());
            // By hash too.
            let by_hash = provider.get_block(recorded).await.unwrap().unwrap();
            assert_eq!(by_hash.number.unwrap().as_u64(), n);
        }
        // Parent links as recorded.
        let b60 = provider.get_block(60u64).await.unwrap().unwrap();
        let b59 = provider.get_block(59u64).await.unwrap().unwrap();
        assert_eq!(b60.parent_hash, b59.hash.unwrap());

        // Beyond the head: no such block, by number or by hash.
        assert!(provider.get_block(61u64).await.unwrap().is_none());
        let h61: H256 = server.recorded_hash(61).parse().unwrap();
        assert!(provider.get_block(h61).await.unwrap().is_none());

        // Tags are the head.
        for tag in [
            BlockNumber::Latest,
            BlockNumber::Finalized,
            BlockNumber::Safe,
        ] {
            let b = provider
                .get_block(BlockId::Number(tag))
                .await
                .unwrap()
                .unwrap();
            assert_eq!(b.number.unwrap().as_u64(), 60, "{tag:?}");
        }
        server.set_head(100);
        assert_eq!(provider.get_block_number().await.unwrap().as_u64(), 100);
        assert!(provider.get_block(100u64).await.unwrap().is_some());

        // The account and fee methods a submitter uses.
        let who = ethers::types::Address::zero();
        assert!(!provider.get_balance(who, None).await.unwrap().is_zero());
        assert_eq!(
            provider
                .get_transaction_count(who, None)
                .await
                .unwrap()
                .as_u64(),
            0
        );
        assert!(!provider.get_gas_price().await.unwrap().is_zero());
        let fees = provider
            .fee_history(4u64, BlockNumber::Latest, &[25.0, 75.0])
            .await
            .unwrap();
        assert_eq!(fees.oldest_block.as_u64(), 97);
        assert_eq!(fees.base_fee_per_gas.len(), 5);
        assert_eq!(fees.reward.len(), 4);
        assert!(fees.reward.iter().all(|r| r.len() == 2));
        let logs = provider
            .get_logs(
                &ethers::types::Filter::new()
                    .from_block(0u64)
                    .to_block(10u64),
            )
            .await
            .unwrap();
        assert!(logs.is_empty());

        // What was asked.
        let fetched = server.header_numbers_fetched();
        assert!(fetched.contains(&61) && fetched.contains(&0), "{fetched:?}");
        assert!(server.requests().iter().any(|(m, _)| m == "eth_feeHistory"));
        assert!(
            server.unknown_methods().is_empty(),
            "{:?}",
            server.unknown_methods()
        );
        server.clear_requests();
        assert!(server.requests().is_empty());
    }

    #[tokio::test]
    async fn answers_batches_and_refuses_unknown_methods() {
        let server = ReplayServer::goquorum_ibft1().await;
        server.set_head(10);
        let answer = post(
            &server.url(),
            &json!([
                {"jsonrpc": "2.0", "id": 1, "method": "eth_blockNumber", "params": []},
                {"jsonrpc": "2.0", "id": 2, "method": "eth_getBlockByNumber", "params": ["0x5", false]},
                {"jsonrpc": "2.0", "id": 3, "method": "eth_getProof", "params": []},
                {"jsonrpc": "2.0", "id": 4, "method": "net_version"},
            ]),
        )
        .await;
        let answers = answer.as_array().unwrap();
        assert_eq!(answers.len(), 4);
        assert_eq!(answers[0]["id"], 1);
        assert_eq!(answers[0]["result"], "0xa");
        assert_eq!(answers[1]["result"]["number"], "0x5");
        assert_eq!(answers[1]["result"]["hash"], json!(server.recorded_hash(5)));
        assert_eq!(answers[2]["error"]["code"], -32601);
        assert_eq!(answers[3]["result"], "1337");
        assert_eq!(server.unknown_methods(), vec!["eth_getProof".to_owned()]);
        assert_eq!(server.header_numbers_fetched(), vec![5]);
        let requests = server.requests();
        assert_eq!(requests.len(), 4);
        assert_eq!(requests[1].0, "eth_getBlockByNumber");
        assert_eq!(requests[1].1, json!(["0x5", false]));

        let garbage = post_text(&server.url(), "{not json".into()).await;
        assert_eq!(garbage["error"]["code"], -32700);
    }

    /// The served blocks parse as headers for the light client, their recorded hash
    /// is the IBFT 1.0 hash (committed seals left out), and a tampered committed seal
    /// changes one byte of one seal and leaves that hash (and so the chain) intact.
    #[tokio::test]
    async fn served_headers_parse_and_tampering_keeps_the_hash_chain() {
        let server = ReplayServer::goquorum_ibft1().await;
        let provider = Provider::<Http>::try_from(server.url()).unwrap();
        let mut parent = None;
        for n in 0..=server.last_recorded() {
            let json: Value = provider
                .request("eth_getBlockByNumber", (format!("0x{n:x}"), false))
                .await
                .unwrap();
            let mut header = Header::from_rpc_json(&json.to_string())
                .unwrap_or_else(|e| panic!("block {n}: {e:?}"));
            assert_eq!(header.number, n);
            if let Some(p) = parent {
                assert_eq!(header.parent_hash, p, "block {n}'s parent");
            }
            let recorded =
                isthmus_light_client_evm::B256::from_hex(json["hash"].as_str().unwrap()).unwrap();
            header.extra_data = istanbul_extra_for_hash(&header.extra_data)
                .unwrap_or_else(|| panic!("block {n}: not an istanbul extra"));
            assert_eq!(header.hash(), recorded, "block {n}'s IBFT 1.0 hash");
            parent = Some(recorded);
        }

        let original = hex_bytes(server.recorded_block(80)["extraData"].as_str().unwrap()).unwrap();
        let parts = istanbul_extra(&original).unwrap();
        assert_eq!(parts.committed_seals.len(), 4);
        assert!(parts.committed_seals.iter().all(|s| s.len() == 65));
        server.tamper(80, Tamper::CommittedSeal);
        let json: Value = provider
            .request("eth_getBlockByNumber", ("0x50", false))
            .await
            .unwrap();
        assert_eq!(json["hash"], json!(server.recorded_hash(80)));
        let tampered = hex_bytes(json["extraData"].as_str().unwrap()).unwrap();
        assert_eq!(tampered.len(), original.len());
        let differing: Vec<usize> = (0..original.len())
            .filter(|&i| original[i] != tampered[i])
            .collect();
        let last = parts.committed_seals.last().unwrap();
        assert_eq!(differing, vec![last.start + FLIPPED_BYTE]);
        let mut header = Header::from_rpc_json(&json.to_string()).unwrap();
        header.extra_data = istanbul_extra_for_hash(&header.extra_data).unwrap();
        assert_eq!(
            header.hash().0,
            hex_bytes(&server.recorded_hash(80)).unwrap().as_slice(),
            "the hash leaves the committed seals out"
        );
        // The other blocks are untouched.
        assert_eq!(server.served_block(79), server.recorded_block(79));
        assert_ne!(server.served_block(80), server.recorded_block(80));
    }
}
