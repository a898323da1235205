//! An EVM ledger: logs of the Outbox contract, headers and `eth_getProof` through
//! `isthmus-light-client-evm`, `processBatch` on the Inbox contract, and the Inbox's
//! `MessageDelivered` events as a delivery feed.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use ethers::types::Address;
use isthmus_adapter_evm::source::Scanned;
use isthmus_adapter_evm::{EvmDestination, EvmSource};
use isthmus_config::SealedFinality;
use isthmus_light_client_evm::{
    AccountProof, EvmLightClient, Header, TrustedCheckpoint, Verified, B256,
};
use isthmus_protocol::{
    ActiveSigners, Attestation, Batch, Hold, HoldDecision, MessageId, MessageOutcome, Network,
    RouteControl, RouteState, SignerSetUpdate,
};
use isthmus_schema::{
    BlockRef, LightClientCommit, LightClientRecord, NewMessage, VerifiedHeaderRecord,
};
use tokio::sync::Mutex;
use tracing::{debug, info};

use super::follow::{self, Follower};

use super::{
    Balance, Delivered, DeliveryFeed, DeliveryRef, Destination, LedgerError, Observed,
    SeenDelivery, Source,
};
use crate::verified::VerifiedCheckpoint;

/// Most headers kept for attesting to blocks below the light client's head (a peer
/// that is behind asks for an older checkpoint).
const VERIFIED_HEADER_CACHE: usize = 4096;
/// Most blocks one `eth_getLogs` covers, and most headers one observer round
/// follows.
const SCAN_RANGE: u64 = 2_000;
/// Header requests in flight at once while following.
const FETCH_CONCURRENCY: usize = 16;

/// What an EVM ledger is connected with.
#[derive(Clone)]
pub struct EvmEndpoints {
    /// The nodes' JSON-RPC URLs, by preference (failover from one to the next).
    pub urls: Vec<String>,
    /// Where each JSON-RPC attempt is reported (per-endpoint metrics).
    pub observer: Option<Arc<dyn isthmus_endpoints::RpcObserver>>,
    /// The chain id transactions are signed for.
    pub chain_id: u64,
    /// The Outbox contract.
    pub outbox: [u8; 20],
    /// The Inbox contract.
    pub inbox: [u8; 20],
    /// Blocks to wait after the node's final head before a block is used.
    pub confirmations: u64,
}

/// How an EVM ledger's light client starts.
pub enum LightClientStart {
    /// `finalized-tag`: at block `start_at`, whose hash is taken from the node (the
    /// node's view of final blocks is trusted anyway); every later header is checked
    /// by hash linkage from there.
    Tag {
        /// The first block of the verified range.
        start_at: u64,
    },
    /// Sealed finality: resumed from the state stored with the observe cursor, or
    /// started at the configured checkpoint when none is stored.
    Sealed {
        /// The configured checkpoint and protocol schedule.
        finality: SealedFinality,
        /// The stored state and window of verified headers, if any.
        stored: Option<Box<(LightClientRecord, Vec<VerifiedHeaderRecord>)>>,
    },
}

/// An EVM ledger: source and destination roles plus its light client.
pub struct EvmLedger {
    name: String,
    id: u32,
    source: EvmSource,
    destination: EvmDestination,
    outbox: [u8; 20],
    confirmations: u64,
    client: Client,
    /// The node's latest block less `confirmations` at the last follow (sealed).
    target: AtomicU64,
    /// The Outbox's first nonce, read once (it is immutable).
    first_nonce: tokio::sync::OnceCell<u64>,
}

enum Client {
    Tag(Mutex<LightClientState>),
    Sealed(Mutex<Follower>),
}

struct LightClientState {
    client: EvmLightClient,
    verified: BTreeMap<u64, Verified<Header>>,
}

impl EvmLedger {
    /// Connects to the nodes at `endpoints.urls`; deliveries are signed with
    /// `submitter`. The light client starts as `start` says. With `finalized-tag`,
    /// the caller starts a little below its stored progress, so checkpoints it and
    /// lagging peers still need are within the verified range after a restart; with
    /// sealed finality the stored window of verified headers serves them.
    pub async fn connect(
        name: &str,
        id: u32,
        endpoints: &EvmEndpoints,
        submitter: std::sync::Arc<dyn isthmus_keys::EcdsaKey>,
        start: LightClientStart,
    ) -> Result<Self, LedgerError> {
        let rpc = isthmus_adapter_evm::failover_provider(
            &endpoints.urls,
            isthmus_adapter_evm::RPC_TIMEOUT,
            endpoints.observer.clone(),
        )?;
        let source = EvmSource::over(rpc.clone(), Address::from(endpoints.outbox), id);
        let destination = EvmDestination::over(
            rpc,
            endpoints.chain_id,
            Address::from(endpoints.inbox),
            submitter,
        )?;
        let config_error = |e: follow::StartError| LedgerError::Config {
            ledger: name.to_owned(),
            reason: e.to_string(),
        };
        let client = match start {
            LightClientStart::Tag { start_at } => {
                let start =
                    source
                        .block_ref(start_at)
                        .await?
                        .ok_or_else(|| LedgerError::BlockMissing {
                            ledger: name.to_owned(),
                            number: start_at,
                        })?;
                Client::Tag(Mutex::new(LightClientState {
                    client: EvmLightClient::finalized_tag(TrustedCheckpoint {
                        number: start.number,
                        hash: B256(start.hash),
                    }),
                    verified: BTreeMap::new(),
                }))
            }
            LightClientStart::Sealed {
                finality,
                stored: Some(stored),
            } => {
                let (record, headers) = *stored;
                let follower = Follower::resume(name, id, &finality, &record, headers)
                    .map_err(config_error)?;
                info!(
                    head = follower.head().number,
                    protocol = %follow::schema_mode(follower.mode()),
                    "light client resumed from its stored state"
                );
                Client::Sealed(Mutex::new(follower))
            }
            LightClientStart::Sealed {
                finality,
                stored: None,
            } => {
                let number = finality.checkpoint.number;
                let json = source.header_json(number).await?;
                let header =
                    Header::from_rpc_json(&json.to_string()).map_err(|e| LedgerError::Config {
                        ledger: name.to_owned(),
                        reason: format!("the node's checkpoint block {number} does not parse: {e}"),
                    })?;
                let follower =
                    Follower::start(name, id, &finality, &header).map_err(config_error)?;
                info!(
                    checkpoint = number,
                    protocol = %follow::schema_mode(follower.mode()),
                    "light client started from the configured checkpoint"
                );
                Client::Sealed(Mutex::new(follower))
            }
        };
        Ok(Self {
            name: name.to_owned(),
            id,
            source,
            destination,
            outbox: endpoints.outbox,
            confirmations: endpoints.confirmations,
            client,
            target: AtomicU64::new(0),
            first_nonce: tokio::sync::OnceCell::new(),
        })
    }

    /// The node's final head, less `confirmations` blocks (finalized-tag); the
    /// light client's head after following the node's chain up to its latest
    /// block less `confirmations`, at most [`SCAN_RANGE`] headers further (sealed).
    async fn final_head(&self) -> Result<BlockRef, LedgerError> {
        let follower = match &self.client {
            Client::Sealed(f) => f,
            Client::Tag(_) => return self.node_final_head().await,
        };
        let target = self
            .source
            .latest()
            .await?
            .number
            .saturating_sub(self.confirmations);
        self.target.store(target, Ordering::Relaxed);
        let mut follower = follower.lock().await;
        if let Some(halt) = follower.halted() {
            return Err(self.halted(halt));
        }
        let head = follower.head().number;
        if target > head {
            let end = target.min(head + SCAN_RANGE);
            let began = std::time::Instant::now();
            let headers = self.fetch_headers(head + 1, end).await?;
            if let Err(halt) = follower.follow(headers) {
                let at = follower.head();
                if halt.number == at.number + 1 {
                    // A header that does not link to the verified head may be the
                    // other side of a fork: keep the node's header at our head's
                    // height too, and say so if a quorum sealed it.
                    if let Ok(json) = self.source.header_json(at.number).await {
                        if let Ok(theirs) = Header::from_rpc_json(&json.to_string()) {
                            follower.conflict(&theirs);
                        }
                    }
                }
                if follower.head().number > head {
                    // The headers before the refused one are valid: they are observed
                    // and committed with the state first; the next call halts.
                    return Ok(follower.head());
                }
                let halt = follower.halted().cloned().unwrap_or(halt);
                return Err(self.halted(&halt));
            }
            debug!(
                from = head + 1,
                to = end,
                ms = began.elapsed().as_millis() as u64,
                "followed headers"
            );
        }
        // A node behind the verified head (another endpoint after a failover) may not
        // know the logs of the blocks it lacks: scan only what it has.
        let head = follower.head();
        if target >= head.number {
            return Ok(head);
        }
        match follower.header(target) {
            Some(h) => Ok(BlockRef {
                number: target,
                hash: h.block_hash().0,
            }),
            None => Err(LedgerError::BlockMissing {
                ledger: self.name.clone(),
                number: head.number,
            }),
        }
    }

    /// The node's finalized tag, less `confirmations`.
    async fn node_final_head(&self) -> Result<BlockRef, LedgerError> {
        let head = self.source.finalized().await?;
        if self.confirmations == 0 {
            return Ok(head);
        }
        let number = head.number.saturating_sub(self.confirmations);
        self.source
            .block_ref(number)
            .await?
            .ok_or_else(|| LedgerError::BlockMissing {
                ledger: self.name.clone(),
                number,
            })
    }

    /// Headers `from..=to` from the node, [`FETCH_CONCURRENCY`] requests at a time,
    /// in order. A header with another number than asked ends the list (the light
    /// client refuses it, with the evidence); one that does not parse is a refusal of
    /// the node's answer (retried).
    async fn fetch_headers(&self, from: u64, to: u64) -> Result<Vec<Header>, LedgerError> {
        use futures::stream::{self, StreamExt, TryStreamExt};
        let jsons: Vec<serde_json::Value> = stream::iter(from..=to)
            .map(|n| self.source.header_json(n))
            .buffered(FETCH_CONCURRENCY)
            .try_collect()
            .await?;
        let mut headers = Vec::with_capacity(jsons.len());
        for (n, json) in (from..).zip(jsons) {
            match Header::from_rpc_json(&json.to_string()) {
                Ok(h) if h.number == n => headers.push(h),
                Ok(h) => {
                    // The light client refuses it for its number, with the evidence.
                    headers.push(h);
                    break;
                }
                Err(e) => {
                    return Err(self.refused(format!("header {n} does not parse: {e}")));
                }
            }
        }
        Ok(headers)
    }

    fn halted(&self, halt: &follow::Halt) -> LedgerError {
        LedgerError::Halted {
            ledger: self.name.clone(),
            number: halt.number,
            rule: halt.rule.clone(),
            evidence: Box::new(halt.evidence.clone()),
        }
    }

    fn refused(&self, reason: String) -> LedgerError {
        LedgerError::Refused {
            ledger: self.name.clone(),
            reason,
        }
    }

    async fn verified_header(&self, block: BlockRef) -> Result<Verified<Header>, LedgerError> {
        let state = match &self.client {
            Client::Tag(state) => state,
            Client::Sealed(follower) => {
                let follower = follower.lock().await;
                if let Some(halt) = follower.halted() {
                    return Err(self.halted(halt));
                }
                let header = follower.header(block.number).cloned().ok_or_else(|| {
                    self.refused(format!(
                        "block {} is not in the verified window (head {}, checkpoint {})",
                        block.number,
                        follower.head().number,
                        follower.checkpoint().number
                    ))
                })?;
                return self.matching(header, block);
            }
        };
        let mut state = state.lock().await;
        let head = state.client.head().number;
        if block.number > head {
            let mut headers = Vec::with_capacity((block.number - head) as usize);
            for n in head + 1..=block.number {
                let json = self.source.header_json(n).await?;
                let header = Header::from_rpc_json(&json.to_string())
                    .map_err(|e| self.refused(format!("header {n}: {e}")))?;
                headers.push(header);
            }
            let verified = state
                .client
                .verify_headers(headers)
                .map_err(|e| self.refused(e.to_string()))?;
            for v in verified {
                state.verified.insert(v.value().number, v);
            }
            while state.verified.len() > VERIFIED_HEADER_CACHE {
                state.verified.pop_first();
            }
        }
        let header = state.verified.get(&block.number).cloned().ok_or_else(|| {
            self.refused(format!(
                "block {} is below the verified range kept in memory",
                block.number
            ))
        })?;
        self.matching(header, block)
    }

    fn matching(
        &self,
        header: Verified<Header>,
        block: BlockRef,
    ) -> Result<Verified<Header>, LedgerError> {
        if header.block_hash().0 != block.hash {
            return Err(self.refused(format!(
                "block {} is {} on the verified chain, not 0x{}",
                block.number,
                header.block_hash(),
                hex::encode(block.hash)
            )));
        }
        Ok(header)
    }
}

#[async_trait]
impl Source for EvmLedger {
    fn first_block(&self) -> u64 {
        0
    }

    fn scan_range(&self) -> u64 {
        SCAN_RANGE
    }

    /// The node's final head, less the configured `confirmations`.
    async fn finalized(&self) -> Result<BlockRef, LedgerError> {
        self.final_head().await
    }

    /// The headers between the light client's head and the node's latest block
    /// (less `confirmations`) at the last follow: still to verify.
    fn lag(&self) -> u64 {
        match &self.client {
            Client::Sealed(f) => f
                .try_lock()
                .map(|f| {
                    self.target
                        .load(Ordering::Relaxed)
                        .saturating_sub(f.head().number)
                })
                .unwrap_or(0),
            Client::Tag(_) => 0,
        }
    }

    /// With sealed finality, a block of the verified window is answered from it
    /// (the node is not asked).
    async fn block_ref(&self, number: u64) -> Result<Option<BlockRef>, LedgerError> {
        if let Client::Sealed(f) = &self.client {
            if let Some(h) = f.lock().await.header(number) {
                return Ok(Some(BlockRef {
                    number,
                    hash: h.block_hash().0,
                }));
            }
        }
        Ok(self.source.block_ref(number).await?)
    }

    async fn first_nonce(&self) -> Result<u64, LedgerError> {
        let first = self
            .first_nonce
            .get_or_try_init(|| self.source.first_nonce())
            .await?;
        Ok(*first)
    }

    async fn outbox_sent(&self, id: [u8; 32]) -> Result<Option<bool>, LedgerError> {
        Ok(Some(self.source.sent(id).await?))
    }

    async fn check_linkage(&self, cursor: BlockRef) -> Result<(), LedgerError> {
        if let Client::Sealed(f) = &self.client {
            let f = f.lock().await;
            if let Some(h) = f.header(cursor.number) {
                // The cursor's block was verified: its hash is known without the node.
                if h.block_hash().0 == cursor.hash {
                    return Ok(());
                }
                return Err(LedgerError::ChainChanged {
                    ledger: self.name.clone(),
                    number: cursor.number,
                    hash: format!("0x{}", hex::encode(cursor.hash)),
                });
            }
            if cursor.number >= f.checkpoint().number {
                // Within the verified chain but out of the window: the light client
                // verified every header since, so nothing to ask the node.
                return Ok(());
            }
        }
        // A reorg below the cursor is the adapter's `Reorg` (retryable: the node may
        // be catching up with the canonical chain).
        Ok(self.source.check_linkage(cursor).await?)
    }

    async fn light_client(&self) -> Option<LightClientCommit> {
        match &self.client {
            Client::Sealed(f) => Some(f.lock().await.commit()),
            Client::Tag(_) => None,
        }
    }

    async fn light_client_committed(&self, head: u64) {
        if let Client::Sealed(f) = &self.client {
            f.lock().await.committed(head);
        }
    }

    async fn scan(&self, from: u64, to: u64) -> Result<Vec<Observed>, LedgerError> {
        Ok(self
            .source
            .scan(from, to)
            .await?
            .into_iter()
            .map(|s| match s {
                Scanned::Message(m) => Observed::Message(NewMessage::from_protocol(
                    &m.message,
                    m.id,
                    m.block,
                    Some(m.tx_hash.0),
                )),
                Scanned::Rejected {
                    block: b,
                    tx_hash,
                    log_index,
                    reason,
                    raw,
                } => Observed::Rejected {
                    block: b,
                    tx_hash: Some(tx_hash.0),
                    log_index,
                    reason,
                    raw,
                },
            })
            .collect())
    }

    /// The header chain up to `block` through the light client, then the
    /// `eth_getProof` of the Outbox's root and count against its state root.
    async fn verify_checkpoint(&self, at: BlockRef) -> Result<VerifiedCheckpoint, LedgerError> {
        let finalized = Source::finalized(self).await?;
        if at.number > finalized.number {
            return Err(self.refused(format!(
                "block {} is not final here (finalized: {})",
                at.number, finalized.number
            )));
        }
        let header = self.verified_header(at).await?;
        let proof = self.source.outbox_proof(at).await?;
        let account = AccountProof::from_rpc_json(&proof.proof_json.to_string())
            .and_then(|p| header.verify_account_proof(&p))
            .map_err(|e| self.refused(e.to_string()))?;
        Ok(VerifiedCheckpoint::from_evm(
            self.id,
            self.outbox,
            &header,
            &account,
            &follow::describe(&header),
        )?)
    }
}

#[async_trait]
impl Destination for EvmLedger {
    /// An EVM Inbox can only call a 20-byte address, so a recipient with non-zero
    /// upper 12 bytes would fail on every attempt.
    fn refuses_recipient(&self, recipient: &[u8; 32]) -> Option<String> {
        recipient[..12].iter().any(|b| *b != 0).then(|| {
            format!(
                "recipient 0x{} is not a 20-byte address, so no contract on EVM ledger `{}` can receive it",
                hex::encode(recipient),
                self.name
            )
        })
    }

    /// The largest count whose whole delivery transactions fill a block (from the
    /// block gas limit and the gas per message of the last estimates).
    fn batch_for(&self, requested: u32) -> u32 {
        self.destination.batch_for(requested)
    }

    /// The Inbox sends its receipts, and takes the origin's, as itself.
    fn receipt_endpoint(&self) -> Option<[u8; 32]> {
        Some(isthmus_protocol::Address32::from_evm(self.destination.inbox().address().0).0)
    }

    /// The Inbox consumes a message submitted after its deadline (`MessageExpired`).
    fn ends_expired(&self) -> bool {
        true
    }

    async fn delivered_among(
        &self,
        messages: &[super::Sent],
    ) -> Result<HashSet<MessageId>, LedgerError> {
        // One read per 256 nonces of an origin (the Inbox's delivered bits).
        let keys: Vec<(u32, u64)> = messages.iter().map(|m| (m.origin, m.nonce)).collect();
        let delivered = self.destination.delivered_among(&keys).await?;
        Ok(messages
            .iter()
            .zip(delivered)
            .filter_map(|(m, done)| done.then_some(m.id))
            .collect())
    }

    /// One log query for all of `ids`.
    async fn find_deliveries(
        &self,
        ids: &[MessageId],
    ) -> Result<HashMap<MessageId, DeliveryRef>, LedgerError> {
        Ok(self.destination.find_deliveries(ids).await?)
    }

    /// One log query for all of `ids`: refusals and expiries.
    async fn find_endings(
        &self,
        ids: &[MessageId],
    ) -> Result<HashMap<MessageId, (DeliveryRef, MessageOutcome)>, LedgerError> {
        Ok(self.destination.find_endings(ids).await?)
    }

    async fn unfit(
        &self,
        batch: &Batch,
        cap: Option<u64>,
    ) -> Result<Vec<(MessageId, String)>, LedgerError> {
        Ok(self
            .destination
            .unfit(batch, cap)
            .await?
            .into_iter()
            .map(|(id, why)| (id, why.to_string()))
            .collect())
    }

    async fn deliver(&self, batch: &Batch, timeout: Duration) -> Result<Delivered, LedgerError> {
        let o = self.destination.deliver(batch, timeout).await?;
        Ok(Delivered {
            at: DeliveryRef {
                tx_hash: o.tx_hash.0,
                block: o.block,
            },
            gas_used: Some(o.gas_used),
            outcomes: o.outcomes,
        })
    }

    async fn signer_sets(&self, origin: u32) -> Result<ActiveSigners, LedgerError> {
        Ok(self.destination.signer_sets(origin).await?)
    }

    async fn update_digest(&self, update: &SignerSetUpdate) -> Result<[u8; 32], LedgerError> {
        Ok(self.destination.update_digest(update).await?)
    }

    async fn update_signers(
        &self,
        update: &SignerSetUpdate,
        signatures: &[Attestation],
    ) -> Result<DeliveryRef, LedgerError> {
        Ok(self.destination.update_signers(update, signatures).await?)
    }

    async fn network(&self) -> Result<Network, LedgerError> {
        Ok(self.destination.network().await?)
    }

    async fn route_state(&self, origin: u32) -> Result<RouteState, LedgerError> {
        Ok(self.destination.route_state(origin).await?)
    }

    async fn route_control_digest(&self, control: &RouteControl) -> Result<[u8; 32], LedgerError> {
        Ok(self.destination.route_control_digest(control).await?)
    }

    async fn control_route(
        &self,
        control: &RouteControl,
        signatures: &[Attestation],
    ) -> Result<DeliveryRef, LedgerError> {
        Ok(self.destination.control_route(control, signatures).await?)
    }

    async fn hold(&self, id: MessageId) -> Result<Option<Hold>, LedgerError> {
        Ok(self.destination.hold(id.0).await?)
    }

    async fn hold_decision_digest(&self, decision: &HoldDecision) -> Result<[u8; 32], LedgerError> {
        Ok(self.destination.hold_decision_digest(decision).await?)
    }

    async fn decide_hold(
        &self,
        decision: &HoldDecision,
        signatures: &[Attestation],
    ) -> Result<DeliveryRef, LedgerError> {
        Ok(self.destination.decide_hold(decision, signatures).await?)
    }

    async fn balance(&self) -> Option<Balance> {
        let balance = self.destination.balance().await.ok()?;
        let gwei = balance / ethers::types::U256::exp10(9);
        Some(Balance::Gwei(gwei.min(i64::MAX.into()).as_u64() as i64))
    }

    fn feed(&self) -> Option<&dyn DeliveryFeed> {
        Some(self)
    }
}

#[async_trait]
impl DeliveryFeed for EvmLedger {
    /// The node's final head (finalized-tag), or its latest block less
    /// `confirmations` (sealed finality: deliveries are followed as the node reports
    /// them, as they are awaited).
    async fn head(&self) -> Result<u64, LedgerError> {
        match &self.client {
            Client::Tag(_) => Ok(self.node_final_head().await?.number),
            Client::Sealed(_) => Ok(self
                .source
                .latest()
                .await?
                .number
                .saturating_sub(self.confirmations)),
        }
    }

    fn range(&self) -> u64 {
        SCAN_RANGE
    }

    async fn deliveries_between(
        &self,
        from: u64,
        to: u64,
    ) -> Result<Vec<SeenDelivery>, LedgerError> {
        Ok(self.destination.deliveries_between(from, to).await?)
    }
}
