//! The dev chain's GRANDPA authorities, run as a service beside chopsticks.
//!
//! Chopsticks builds and finalizes blocks but runs no GRANDPA voters. This service
//! holds the dev runtime's authority keys (seeds `keccak256("isthmus devnet grandpa
//! authority i")`, documented in `docs/substrate.md`) and does what a network's
//! voters and its nodes do for a light client:
//!
//! - [`Voting`] follows the chain's headers and signs a justification (precommits of
//!   every authority of the set in force) for the newest block, never passing over a
//!   block that enacts an authority-set change: that block gets its own
//!   justification, by the outgoing set, and the keys of the new set sign after it.
//!   It keeps justifications as a node does: the latest, the last block of each set,
//!   and the first one finalized in each `justification_period` window.
//! - [`VoterService`] listens on the dev chain's public RPC port: it answers
//!   `grandpa_proveFinality`, `grandpa_subscribeJustifications` and
//!   `chain_getFinalizedHead` from the votes, and passes every other request to
//!   chopsticks, so a relayer cannot tell it from a node. One devnet-only method
//!   injects a fault for tests: `devnet_voteWithRetiredSet(true)` has the voters sign
//!   new blocks with the set the last change retired.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ed25519_zebra::SigningKey;
use futures::{SinkExt, StreamExt};
use isthmus_light_client_grandpa::justification::precommit_signing_payload;
use isthmus_light_client_grandpa::{
    AuthorityId, AuthoritySet, Commit, FinalityProof, GrandpaConsensusLog, GrandpaJustification,
    Header, Precommit, SignedPrecommit, H256,
};
use parity_scale_codec::Encode;
use serde_json::{json, Value};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{broadcast, mpsc};
use tokio::task::{JoinHandle, JoinSet};
use tokio_tungstenite::tungstenite::Message;

use crate::client::SubstrateClient;
use crate::Error;

/// Number of GRANDPA authorities in the dev runtime's genesis (set 0, weight 1 each).
pub const GENESIS_AUTHORITIES: u8 = 3;
/// Devnet authority keys the voters hold (indices `0..KNOWN_AUTHORITIES`): a set the
/// dev runtime schedules may use any of them.
pub const KNOWN_AUTHORITIES: u8 = 16;
/// The devnet's `justification_period`: a justification is kept for the first block
/// finalized in each window of this many blocks (Polkadot's nodes use 512).
pub const JUSTIFICATION_PERIOD: u32 = 16;
/// How often the voters look for new blocks.
const VOTE_INTERVAL: Duration = Duration::from_millis(50);

/// The signing key of devnet authority `i`.
fn authority_key(i: u8) -> SigningKey {
    SigningKey::from(isthmus_protocol::keccak256(
        format!("isthmus devnet grandpa authority {i}").as_bytes(),
    ))
}

/// The public key (GRANDPA authority id) of devnet authority `i`.
pub fn authority_id(i: u8) -> [u8; 32] {
    ed25519_zebra::VerificationKey::from(&authority_key(i)).into()
}

/// The dev runtime's genesis authority set (set 0).
pub fn genesis_set() -> Result<AuthoritySet, Error> {
    Ok(AuthoritySet::new(
        0,
        (0..GENESIS_AUTHORITIES)
            .map(|i| (AuthorityId(authority_id(i)), 1))
            .collect(),
    )?)
}

/// The voters' view of the chain: headers, the set in force, the change pending, and
/// the justifications kept.
pub struct Voting {
    keys: HashMap<AuthorityId, SigningKey>,
    set: AuthoritySet,
    /// The next set and the block that enacts it.
    pending: Option<(AuthoritySet, u32)>,
    /// The anchor: the block (hash, number) the voters take as final.
    anchor: (H256, u32),
    /// Every header after the anchor, by number less `base`.
    headers: Vec<Header>,
    /// The number of the first header held: the anchor's + 1.
    base: u32,
    /// Headers up to here were read for announcements.
    scanned: u32,
    finalized: u32,
    round: u64,
    /// Justifications kept, by block.
    kept: BTreeMap<u32, Vec<u8>>,
    /// The latest justification.
    best: Option<Vec<u8>>,
    /// Each past set's id and the last block it finalized.
    set_ends: Vec<(u64, u32)>,
    period: u32,
    stalled: bool,
    /// The set replaced by the last change, and whether the voters sign with it
    /// (a fault the devnet can inject: `devnet_voteWithRetiredSet`).
    retired: Option<AuthoritySet>,
    vote_retired: bool,
}

impl Voting {
    /// The voters from the anchor on (block `number` with hash `hash`, under the
    /// genesis set), which they take as final.
    pub fn new(hash: H256, number: u32, period: u32) -> Result<Self, Error> {
        Ok(Self {
            keys: (0..KNOWN_AUTHORITIES)
                .map(|i| (AuthorityId(authority_id(i)), authority_key(i)))
                .collect(),
            set: genesis_set()?,
            pending: None,
            anchor: (hash, number),
            headers: Vec::new(),
            base: number + 1,
            scanned: number,
            finalized: number,
            round: 0,
            kept: BTreeMap::new(),
            best: None,
            set_ends: Vec::new(),
            period: period.max(1),
            stalled: false,
            retired: None,
            vote_retired: false,
        })
    }

    /// The number of the next header expected.
    pub fn next_number(&self) -> u32 {
        self.base + self.headers.len() as u32
    }

    /// The header of block `number` (after the anchor, up to the head).
    fn header(&self, number: u32) -> &Header {
        &self.headers[(number - self.base) as usize]
    }

    /// The hash of block `number` (the anchor, or a header held).
    fn hash_of(&self, number: u32) -> H256 {
        if number == self.anchor.1 {
            self.anchor.0
        } else {
            self.header(number).hash()
        }
    }

    /// The anchor `(hash, number)`: the genesis set finalizes its descendants.
    pub fn anchor(&self) -> (H256, u32) {
        self.anchor
    }

    /// The last finalized block.
    pub fn finalized(&self) -> (u32, H256) {
        (self.finalized, self.hash_of(self.finalized))
    }

    /// The set in force.
    pub fn set(&self) -> &AuthoritySet {
        &self.set
    }

    /// Takes the next headers (ascending from [`Self::next_number`]) and finalizes up
    /// to the newest, stopping at each block that enacts a change. Returns the
    /// justifications made, oldest first.
    pub fn vote(&mut self, new: Vec<Header>) -> Vec<Vec<u8>> {
        for header in new {
            if header.number == self.next_number()
                && header.parent_hash == self.hash_of(self.next_number() - 1)
            {
                self.headers.push(header);
            } else {
                tracing::warn!(
                    number = header.number,
                    "devnet voters: a header that does not extend the chain; ignored"
                );
                break;
            }
        }
        let head = self.next_number() - 1;
        let mut made = Vec::new();
        while self.finalized < head && !self.stalled {
            let target = self.next_target(head);
            match self.justify(target) {
                Some(justification) => {
                    self.finalize(target, justification.clone());
                    made.push(justification);
                }
                None => {
                    tracing::error!(
                        set_id = self.set.set_id(),
                        "devnet voters hold too few keys of the set in force to finalize; finality stalls"
                    );
                    self.stalled = true;
                }
            }
        }
        made
    }

    /// The head, or the first block up to it that enacts a change (read the
    /// announcements on the way).
    fn next_target(&mut self, head: u32) -> u32 {
        for n in self.finalized + 1..=head {
            if n > self.scanned {
                self.scanned = n;
                self.read_announcement(n);
            }
            if self.pending.as_ref().is_some_and(|(_, at)| *at == n) {
                return n;
            }
        }
        head
    }

    fn read_announcement(&mut self, n: u32) {
        let logs = match self.header(n).grandpa_logs() {
            Ok(logs) => logs,
            Err(e) => {
                tracing::warn!(number = n, error = %e, "devnet voters: undecodable GRANDPA log");
                return;
            }
        };
        for log in logs {
            match log {
                GrandpaConsensusLog::ScheduledChange(change) if self.pending.is_none() => {
                    match AuthoritySet::new(self.set.set_id() + 1, change.next_authorities) {
                        Ok(next) => {
                            tracing::info!(
                                number = n,
                                delay = change.delay,
                                set_id = next.set_id(),
                                "devnet voters: authority-set change announced"
                            );
                            self.pending = Some((next, n.saturating_add(change.delay)));
                        }
                        Err(e) => {
                            tracing::warn!(number = n, error = %e, "devnet voters: invalid next set")
                        }
                    }
                }
                GrandpaConsensusLog::ForcedChange { .. } => {
                    tracing::warn!(number = n, "devnet voters: forced changes are not followed");
                }
                _ => {}
            }
        }
    }

    /// From now on, sign with the set the last change retired (`true`), as a
    /// misbehaving node would serve; or with the set in force again. Returns whether
    /// there is a retired set.
    pub fn vote_with_retired_set(&mut self, on: bool) -> bool {
        self.vote_retired = on;
        self.retired.is_some()
    }

    /// A justification of `target` by every key held of the set in force (or the
    /// retired one, see [`Self::vote_with_retired_set`]), if they carry its threshold.
    fn justify(&mut self, target: u32) -> Option<Vec<u8>> {
        let set = match (&self.retired, self.vote_retired) {
            (Some(retired), true) => retired.clone(),
            _ => self.set.clone(),
        };
        let header = self.header(target);
        let precommit = Precommit {
            target_hash: header.hash(),
            target_number: target,
        };
        self.round += 1;
        let payload = precommit_signing_payload(&precommit, self.round, set.set_id());
        let mut weight = 0;
        let precommits: Vec<SignedPrecommit> = set
            .authorities()
            .iter()
            .filter_map(|(id, w)| {
                let key = self.keys.get(id)?;
                weight += w;
                Some(SignedPrecommit {
                    precommit,
                    signature: key.sign(&payload).into(),
                    id: *id,
                })
            })
            .collect();
        if weight < set.threshold() {
            return None;
        }
        Some(
            GrandpaJustification {
                round: self.round,
                commit: Commit {
                    target_hash: precommit.target_hash,
                    target_number: target,
                    precommits,
                },
                votes_ancestries: Vec::new(),
            }
            .encode(),
        )
    }

    fn finalize(&mut self, target: u32, justification: Vec<u8>) {
        if self.finalized / self.period != target / self.period {
            self.kept.insert(target, justification.clone());
        }
        if let Some((next, at)) = self.pending.take() {
            if at == target {
                self.set_ends.push((self.set.set_id(), target));
                self.kept.insert(target, justification.clone());
                tracing::info!(
                    number = target,
                    set_id = next.set_id(),
                    "devnet voters: new authority set in force"
                );
                self.retired = Some(std::mem::replace(&mut self.set, next));
            } else {
                self.pending = Some((next, at));
            }
        }
        self.finalized = target;
        self.best = Some(justification);
    }

    /// What `grandpa_proveFinality(block)` returns: for a block of a past set, the
    /// justification of that set's last block; else the latest justification; with
    /// the headers after `block` up to the justified one. `None` before any.
    pub fn prove(&self, block: u32) -> Result<Option<FinalityProof>, String> {
        if block > self.finalized {
            return Err(format!(
                "block {block} is not yet finalized (finalized: {})",
                self.finalized
            ));
        }
        if block < self.anchor.1 {
            return Err(format!(
                "block {block} is below the devnet's anchor (block {})",
                self.anchor.1
            ));
        }
        let (justified, justification) = match self.set_ends.iter().find(|(_, last)| *last >= block)
        {
            Some((_, last)) => match self.kept.get(last) {
                Some(j) => (*last, j.clone()),
                None => return Ok(None),
            },
            None => match &self.best {
                Some(j) => (self.finalized, j.clone()),
                None => return Ok(None),
            },
        };
        Ok(Some(FinalityProof {
            block: self.header(justified).hash(),
            justification,
            unknown_headers: self.headers
                [(block + 1 - self.base) as usize..=(justified - self.base) as usize]
                .to_vec(),
        }))
    }

    /// The justifications kept (block numbers), for tests and logs.
    pub fn kept(&self) -> Vec<u32> {
        self.kept.keys().copied().collect()
    }
}

/// The voters and their RPC endpoint, stopped on drop.
pub struct VoterService {
    port: u16,
    voting: Arc<Mutex<Voting>>,
    voter: JoinHandle<()>,
    serving: JoinHandle<()>,
}

impl VoterService {
    /// Starts voting on the chain chopsticks serves on `upstream` (a local port) and
    /// listens on 127.0.0.1:`port` (0: any free port).
    pub async fn start(upstream: u16, port: u16, period: u32) -> Result<Self, Error> {
        let upstream_url = format!("ws://127.0.0.1:{upstream}");
        let client = SubstrateClient::connect(&upstream_url).await?;
        // The anchor is block 0 under the hash chopsticks reports for it (its genesis
        // provider's constant `0x4545…45`, the parent of block 1; the genesis header
        // it serves hashes otherwise): the same on every start.
        let genesis = client
            .block_hash(0)
            .await?
            .ok_or_else(|| Error::DevnetStart("the dev chain has no block 0".into()))?;
        let voting = Arc::new(Mutex::new(Voting::new(H256(genesis), 0, period)?));
        let (notify, _) = broadcast::channel(1024);
        let listener = bind(port).await?;
        let port = listener.local_addr()?.port();
        let state = Shared {
            voting: voting.clone(),
            notify: notify.clone(),
            upstream,
        };
        Ok(Self {
            port,
            voting: voting.clone(),
            voter: tokio::spawn(vote_loop(client, voting, notify)),
            serving: tokio::spawn(serve(listener, state)),
        })
    }

    /// The public RPC port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The voters' anchor `(hash, number)`: final under the genesis set.
    pub fn anchor(&self) -> (H256, u32) {
        self.voting
            .lock()
            .map_or_else(|p| p.into_inner().anchor(), |v| v.anchor())
    }
}

impl Drop for VoterService {
    fn drop(&mut self) {
        self.voter.abort();
        self.serving.abort();
    }
}

/// Binds 127.0.0.1:`port`, waiting up to 5 s for a previous listener on it (a dev
/// chain restarted on its port) to let go.
async fn bind(port: u16) -> Result<TcpListener, Error> {
    let mut tries = 0;
    loop {
        match TcpListener::bind(("127.0.0.1", port)).await {
            Ok(listener) => return Ok(listener),
            Err(e) if e.kind() == std::io::ErrorKind::AddrInUse && port != 0 && tries < 50 => {
                tries += 1;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => return Err(e.into()),
        }
    }
}

#[derive(Clone)]
struct Shared {
    voting: Arc<Mutex<Voting>>,
    notify: broadcast::Sender<String>,
    upstream: u16,
}

impl Shared {
    fn voting(&self) -> std::sync::MutexGuard<'_, Voting> {
        self.voting
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

async fn vote_loop(
    client: SubstrateClient,
    voting: Arc<Mutex<Voting>>,
    notify: broadcast::Sender<String>,
) {
    loop {
        tokio::time::sleep(VOTE_INTERVAL).await;
        let next = voting.lock().map_or(0, |v| v.next_number());
        let new = match new_headers(&client, next).await {
            Ok(new) => new,
            Err(e) => {
                tracing::debug!(error = %e, "devnet voters: reading the chain failed; retrying");
                continue;
            }
        };
        if new.is_empty() {
            continue;
        }
        let made = voting.lock().map(|mut v| v.vote(new)).unwrap_or_default();
        for justification in made {
            // No subscriber is no error.
            let _ = notify.send(format!("0x{}", hex::encode(justification)));
        }
    }
}

/// The chopsticks chain's headers from `next` to its head.
async fn new_headers(client: &SubstrateClient, next: u32) -> Result<Vec<Header>, Error> {
    let (head, _) = client.finalized_head().await?;
    let mut headers = Vec::new();
    for n in next..=head {
        let Some(hash) = client.block_hash(n).await? else {
            break;
        };
        headers.push(Header::decode_exact(&client.header_bytes(hash).await?)?);
    }
    Ok(headers)
}

async fn serve(listener: TcpListener, state: Shared) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    connections.spawn(connection(stream, state.clone()));
                }
                Err(e) => tracing::warn!(error = %e, "devnet voters: accept failed"),
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}

/// One client: WebSocket JSON-RPC with the GRANDPA methods answered here, or plain
/// HTTP passed to chopsticks as it is.
async fn connection(mut stream: TcpStream, state: Shared) {
    let mut head = [0u8; 4096];
    let is_websocket = loop {
        let Ok(n) = stream.peek(&mut head).await else {
            return;
        };
        if n == 0 {
            return;
        }
        let text = String::from_utf8_lossy(&head[..n]).to_ascii_lowercase();
        if text.contains("\r\n\r\n") || n == head.len() {
            break text.contains("upgrade: websocket");
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    let Ok(mut upstream) = TcpStream::connect(("127.0.0.1", state.upstream)).await else {
        return;
    };
    if !is_websocket {
        let _ = tokio::io::copy_bidirectional(&mut stream, &mut upstream).await;
        return;
    }
    drop(upstream);
    if let Err(e) = websocket(stream, state).await {
        tracing::debug!(error = %e, "devnet voters: a client connection ended");
    }
}

async fn websocket(stream: TcpStream, state: Shared) -> Result<(), Box<dyn std::error::Error>> {
    let client = tokio_tungstenite::accept_async(stream).await?;
    let (upstream, _) =
        tokio_tungstenite::connect_async(format!("ws://127.0.0.1:{}", state.upstream)).await?;
    let (mut to_client, mut from_client) = client.split();
    let (mut to_upstream, mut from_upstream) = upstream.split();
    let (out, mut outgoing) = mpsc::unbounded_channel::<Message>();
    let writer = tokio::spawn(async move {
        while let Some(message) = outgoing.recv().await {
            if to_client.send(message).await.is_err() {
                break;
            }
        }
    });
    let relay = out.clone();
    let reader = tokio::spawn(async move {
        while let Some(Ok(message)) = from_upstream.next().await {
            if relay.send(message).is_err() {
                break;
            }
        }
    });
    let mut subscriptions = Subscriptions::default();
    while let Some(message) = from_client.next().await {
        let message = message?;
        if let Message::Text(text) = &message {
            if let Ok(request) = serde_json::from_str::<Value>(text) {
                if let Some(reply) = answer(&state, &request, &out, &mut subscriptions) {
                    out.send(Message::Text(reply.to_string()))?;
                    continue;
                }
            }
        }
        if message.is_close() {
            break;
        }
        to_upstream.send(message).await?;
    }
    for (_, task) in subscriptions.tasks {
        task.abort();
    }
    reader.abort();
    writer.abort();
    Ok(())
}

/// One client's justification subscriptions: ids are never reused on a connection.
#[derive(Default)]
struct Subscriptions {
    issued: u64,
    tasks: HashMap<String, JoinHandle<()>>,
}

/// The reply to a request the voters answer themselves, or `None` to pass it on.
fn answer(
    state: &Shared,
    request: &Value,
    out: &mpsc::UnboundedSender<Message>,
    subscriptions: &mut Subscriptions,
) -> Option<Value> {
    let method = request.get("method")?.as_str()?;
    let id = request.get("id").cloned().unwrap_or(Value::Null);
    let params = request.get("params").cloned().unwrap_or(Value::Null);
    let result = match method {
        "chain_getFinalizedHead" => Ok(json!(format!("{}", state.voting().finalized().1))),
        "grandpa_proveFinality" => match params.get(0).and_then(block_number) {
            Some(block) => state.voting().prove(block).map(|proof| {
                proof.map_or(Value::Null, |p| {
                    json!(format!("0x{}", hex::encode(p.encode())))
                })
            }),
            None => Err("grandpa_proveFinality takes a block number".to_owned()),
        },
        "grandpa_subscribeJustifications" => {
            subscriptions.issued += 1;
            let subscription = format!("grandpa-{}", subscriptions.issued);
            let mut receiver = state.notify.subscribe();
            let (out, name) = (out.clone(), subscription.clone());
            subscriptions.tasks.insert(
                subscription.clone(),
                tokio::spawn(async move {
                    while let Ok(justification) = receiver.recv().await {
                        let notification = json!({
                            "jsonrpc": "2.0",
                            "method": "grandpa_justifications",
                            "params": {"subscription": name, "result": justification},
                        });
                        if out.send(Message::Text(notification.to_string())).is_err() {
                            break;
                        }
                    }
                }),
            );
            Ok(json!(subscription))
        }
        "devnet_voteWithRetiredSet" => match params.get(0).and_then(Value::as_bool) {
            Some(on) => Ok(json!(state.voting().vote_with_retired_set(on))),
            None => Err("devnet_voteWithRetiredSet takes true or false".to_owned()),
        },
        "grandpa_unsubscribeJustifications" => {
            let name = params.get(0).and_then(Value::as_str).unwrap_or_default();
            Ok(json!(subscriptions
                .tasks
                .remove(name)
                .map(|t| t.abort())
                .is_some()))
        }
        m if m.starts_with("grandpa_") => Err(format!("{m} is not served by the devnet voters")),
        _ => return None,
    };
    Some(match result {
        Ok(result) => json!({"jsonrpc": "2.0", "id": id, "result": result}),
        Err(message) => {
            json!({"jsonrpc": "2.0", "id": id, "error": {"code": -32000, "message": message}})
        }
    })
}

/// A block number given as a JSON number or a hex string.
fn block_number(v: &Value) -> Option<u32> {
    match v {
        Value::Number(n) => n.as_u64().and_then(|n| u32::try_from(n).ok()),
        Value::String(s) => u32::from_str_radix(s.trim_start_matches("0x"), 16).ok(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    #![expect(
        clippy::unwrap_used,
        reason = "test code: a panic is the failure report"
    )]

    use isthmus_light_client_grandpa::{
        AuthoritySetTracker, ConsensusEngineId, Digest, DigestItem, ScheduledChange,
    };

    use super::*;

    fn child(parent: &Header, logs: Vec<DigestItem>) -> Header {
        Header {
            parent_hash: parent.hash(),
            number: parent.number + 1,
            state_root: H256([1; 32]),
            extrinsics_root: H256([2; 32]),
            digest: Digest { logs },
        }
    }

    fn change(next: &[u8], delay: u32) -> DigestItem {
        const FRNK: ConsensusEngineId = *b"FRNK";
        DigestItem::Consensus(
            FRNK,
            GrandpaConsensusLog::ScheduledChange(ScheduledChange {
                next_authorities: next
                    .iter()
                    .map(|i| (AuthorityId(authority_id(*i)), 1))
                    .collect(),
                delay,
            })
            .encode(),
        )
    }

    /// The voters finalize across a scheduled change (with its mandatory
    /// justification) and every proof they serve is one the tracker imports, from
    /// the genesis anchor.
    #[test]
    fn the_voters_proofs_carry_a_tracker_across_a_change() {
        let genesis = Header {
            parent_hash: H256([0; 32]),
            number: 0,
            state_root: H256([0; 32]),
            extrinsics_root: H256([0; 32]),
            digest: Digest::default(),
        };
        let mut voting = Voting::new(genesis.hash(), 0, 4).unwrap();
        let mut chain = vec![genesis.clone()];
        for n in 1..=30u32 {
            let logs = if n == 5 {
                vec![change(&[3, 4, 5, 6], 3)]
            } else {
                vec![]
            };
            let next = child(chain.last().unwrap(), logs);
            chain.push(next);
        }
        // Blocks arrive in bursts: 1-6, then 7-30 (the change enacts at 8).
        assert_eq!(voting.vote(chain[1..=6].to_vec()).len(), 1);
        assert_eq!(voting.finalized().0, 6);
        assert_eq!(voting.vote(chain[7..].to_vec()).len(), 2, "8, then 30");
        assert_eq!(voting.set().set_id(), 1);
        assert!(
            voting.kept().contains(&8),
            "the enacting block's justification is kept"
        );
        assert!(voting.prove(31).is_err());

        let mut tracker = AuthoritySetTracker::new(genesis_set().unwrap(), genesis.hash(), 0);
        while tracker.finalized().1 < 30 {
            let next = tracker.finalized().1 + 1;
            let proof = voting.prove(next).unwrap().unwrap();
            tracker
                .import_proof(chain[next as usize].clone(), &proof)
                .unwrap();
        }
        assert_eq!(tracker.authority_set().set_id(), 1);
        assert_eq!(tracker.finalized(), (chain[30].hash(), 30));
        // A proof for a block of the past set ends at that set's last block.
        let past = voting.prove(2).unwrap().unwrap();
        assert_eq!(past.block, chain[8].hash());
        assert_eq!(past.unknown_headers.len(), 6);
    }
}
