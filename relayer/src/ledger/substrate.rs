//! A Substrate ledger carrying the Isthmus pallet: `Dispatch` events of the pallet,
//! finality from the node's `grandpa_proveFinality` verified by the GRANDPA light
//! client from the configured anchor ([`super::grandpa`]; the outbox's root and count
//! are committed in every header's digest), `process_batch` on the pallet.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use async_trait::async_trait;
use isthmus_adapter_substrate::{Destination as Inbox, SubmitKey, SubstrateClient, VerifiedOutbox};
use isthmus_config::GrandpaAnchor;
use isthmus_light_client_grandpa::{FinalityProof, Header};
use isthmus_protocol::{
    ActiveSigners, Attestation, Batch, Hold, HoldDecision, MessageId, MessageOutcome, Network,
    RouteControl, RouteState, SignerSetUpdate,
};
use isthmus_schema::{
    BlockRef, LightClientCommit, LightClientRecord, NewMessage, VerifiedHeaderRecord,
};
use tokio::sync::Mutex;

use super::follow::{Halt, StartError};
use super::grandpa::{self, GrandpaFollower};
use super::{Balance, Delivered, DeliveryRef, Destination, LedgerError, Observed, Source};
use crate::verified::VerifiedCheckpoint;

/// What a Substrate ledger's deliveries are signed with.
pub enum Submitter<'a> {
    /// An sr25519 secret URI, mnemonic or seed.
    Secret(&'a str),
    /// A secp256k1 key, in process or in a PKCS#11 token: an ECDSA account.
    Ecdsa(std::sync::Arc<dyn isthmus_keys::EcdsaKey>),
}

/// Most blocks one observer round reads events of.
const SCAN_RANGE: u64 = 200;
/// Most finality proofs one call of [`Source::finalized`] imports (each covers the
/// blocks up to a justification: a set's last block, or the node's latest).
const PROOFS_PER_ROUND: usize = 32;

/// Where the GRANDPA follower starts: the stored state (resumed with no trust in the
/// node) or the configured anchor.
pub struct GrandpaStart {
    /// The configured anchor.
    pub anchor: GrandpaAnchor,
    /// The state stored with the observe cursor, and the stored window of headers.
    pub stored: Option<Box<(LightClientRecord, Vec<VerifiedHeaderRecord>)>>,
}

/// A Substrate ledger carrying the Isthmus pallet.
pub struct SubstrateLedger {
    name: String,
    id: u32,
    client: SubstrateClient,
    inbox: Inbox,
    follower: Mutex<GrandpaFollower>,
    announced: std::sync::Arc<Announced>,
    subscription: tokio::task::JoinHandle<()>,
}

impl Drop for SubstrateLedger {
    fn drop(&mut self) {
        self.subscription.abort();
    }
}

/// How far the node's voters have finalized, as its `grandpa_subscribeJustifications`
/// announces it: the highest justified block, and when a justification last came.
/// Only a hint of where to ask for proofs: nothing in it is trusted.
#[derive(Default)]
struct Announced {
    block: std::sync::atomic::AtomicU32,
    at_ms: std::sync::atomic::AtomicU64,
}

/// How long the subscription's hint holds: past this with no justification, the
/// observer asks `chain_getFinalizedHead` instead (a quiet chain, or a subscription
/// that is being re-established).
const ANNOUNCED_FOR: Duration = Duration::from_secs(10);

impl Announced {
    fn now_ms() -> u64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64)
    }

    /// The announced block, if a justification came within [`ANNOUNCED_FOR`].
    fn recent(&self) -> Option<u32> {
        use std::sync::atomic::Ordering;
        let at = self.at_ms.load(Ordering::Relaxed);
        (at > 0 && Self::now_ms().saturating_sub(at) < ANNOUNCED_FOR.as_millis() as u64)
            .then(|| self.block.load(Ordering::Relaxed))
    }
}

/// Follows the node's `grandpa_subscribeJustifications` for as long as the ledger
/// lives, subscribing again (after a pause) when the stream ends.
async fn announce(client: SubstrateClient, announced: std::sync::Arc<Announced>, ledger: String) {
    use futures::StreamExt;
    use std::sync::atomic::Ordering;
    loop {
        match client.subscribe_justifications().await {
            Ok(stream) => {
                tracing::info!(
                    ledger,
                    "following the node's GRANDPA justifications (grandpa_subscribeJustifications)"
                );
                let mut stream = std::pin::pin!(stream);
                while let Some(Ok(bytes)) = stream.next().await {
                    if let Ok(j) =
                        isthmus_light_client_grandpa::GrandpaJustification::decode_exact(&bytes)
                    {
                        announced
                            .block
                            .fetch_max(j.commit.target_number, Ordering::Relaxed);
                        announced
                            .at_ms
                            .store(Announced::now_ms(), Ordering::Relaxed);
                    }
                }
                tracing::debug!(
                    ledger,
                    "the justification subscription ended; subscribing again"
                );
            }
            Err(e) => tracing::debug!(ledger, error = %e, "cannot subscribe to justifications yet"),
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
}

impl SubstrateLedger {
    /// Connects to the nodes at `urls` (by preference, with failover, each attempt
    /// reported to `observer`); deliveries are signed with `submitter`: an sr25519
    /// secret, or a secp256k1 key (in a PKCS#11 token) for an ECDSA account. Errors
    /// name the submitter by `submitter_source`. The GRANDPA follower resumes from
    /// the stored state, or starts at the anchor, whose hash must be the node's block
    /// at that height.
    pub async fn connect(
        name: &str,
        id: u32,
        urls: &[String],
        observer: Option<std::sync::Arc<dyn isthmus_endpoints::RpcObserver>>,
        submitter: Submitter<'_>,
        submitter_source: &str,
        start: GrandpaStart,
    ) -> Result<Self, LedgerError> {
        let client = SubstrateClient::connect_any(urls, observer).await?;
        let inbox = match submitter {
            Submitter::Secret(secret) => {
                Inbox::from_secret(client.clone(), secret).map_err(|_| LedgerError::Config {
                    ledger: name.to_owned(),
                    reason: format!(
                        "`submitter` ({submitter_source}) holds no usable sr25519 secret: use a \
                         secret URI such as `//Alice`, a mnemonic with an optional \
                         `//derivation`, or `0x` and 64 hex digits"
                    ),
                })?
            }
            Submitter::Ecdsa(key) => Inbox::with_key(client.clone(), SubmitKey::Ecdsa(key)),
        };
        let config_error = |e: StartError| LedgerError::Config {
            ledger: name.to_owned(),
            reason: e.to_string(),
        };
        let follower = match start.stored {
            Some(stored) => {
                let (record, headers) = *stored;
                let follower = GrandpaFollower::resume(name, id, &start.anchor, &record, headers)
                    .map_err(config_error)?;
                tracing::info!(
                    ledger = name,
                    head = follower.head().number,
                    set_id = follower.set_id(),
                    "GRANDPA light client resumed from the stored state"
                );
                follower
            }
            None => {
                let anchor = &start.anchor;
                let served = client.block_hash(anchor.number).await?;
                if served != Some(anchor.block) {
                    return Err(config_error(StartError::CheckpointMismatch {
                        ledger: name.to_owned(),
                        number: u64::from(anchor.number),
                        hash: hex::encode(anchor.block),
                        reason: format!(
                            "the node's block there is {} (anchor from the {})",
                            served
                                .map_or("missing".to_owned(), |h| format!("0x{}", hex::encode(h))),
                            anchor.source
                        ),
                    }));
                }
                let follower = GrandpaFollower::start(name, id, anchor).map_err(config_error)?;
                tracing::info!(
                    ledger = name,
                    anchor = anchor.number,
                    set_id = anchor.set_id,
                    "GRANDPA light client starts at the anchor"
                );
                follower
            }
        };
        let announced = std::sync::Arc::new(Announced::default());
        let subscription =
            tokio::spawn(announce(client.clone(), announced.clone(), name.to_owned()));
        Ok(Self {
            name: name.to_owned(),
            id,
            client,
            inbox,
            follower: Mutex::new(follower),
            announced,
            subscription,
        })
    }

    fn refused(&self, reason: String) -> LedgerError {
        LedgerError::Refused {
            ledger: self.name.clone(),
            reason,
        }
    }

    fn halted(&self, halt: &Halt) -> LedgerError {
        LedgerError::Halted {
            ledger: self.name.clone(),
            number: halt.number,
            rule: halt.rule.clone(),
            evidence: Box::new(halt.evidence.clone()),
        }
    }

    fn block_number(&self, number: u64) -> Result<u32, LedgerError> {
        u32::try_from(number).map_err(|_| {
            self.refused(format!(
                "block number {number} does not fit a Substrate block number"
            ))
        })
    }

    /// The node's finality proof for block `number` and that block's header, or None
    /// when the node has no proof to give yet.
    async fn proof_for(&self, number: u32) -> Result<Option<(Header, FinalityProof)>, LedgerError> {
        let Some(bytes) = self.client.prove_finality(number).await? else {
            return Ok(None);
        };
        let proof = FinalityProof::decode_exact(&bytes)
            .map_err(|e| self.refused(format!("the finality proof of block {number}: {e}")))?;
        let hash = self.client.block_hash(number).await?.ok_or_else(|| {
            self.refused(format!(
                "the node proves block {number} final but does not serve it"
            ))
        })?;
        let header = Header::decode_exact(&self.client.header_bytes(hash).await?)
            .map_err(|e| self.refused(format!("header {number}: {e}")))?;
        Ok(Some((header, proof)))
    }
}

/// Where a governance call (a signer-set update, a route pause or resume) landed.
fn included(receipt: isthmus_adapter_substrate::destination::Receipt) -> DeliveryRef {
    DeliveryRef {
        tx_hash: receipt.tx_hash,
        block: isthmus_protocol::BlockRef {
            number: u64::from(receipt.block_number),
            hash: receipt.block_hash,
        },
    }
}

#[async_trait]
impl Source for SubstrateLedger {
    /// A Substrate genesis block runs no extrinsics (and chopsticks serves no events
    /// for it).
    fn first_block(&self) -> u64 {
        1
    }

    fn scan_range(&self) -> u64 {
        SCAN_RANGE
    }

    /// The light client's last finalized block, after importing the node's finality
    /// proofs (at most [`PROOFS_PER_ROUND`] a call) up to the block the node's
    /// justification subscription last announced, or, with no recent announcement,
    /// up to the node's finalized head.
    async fn finalized(&self) -> Result<BlockRef, LedgerError> {
        let mut follower = self.follower.lock().await;
        if let Some(halt) = follower.halted() {
            return Err(self.halted(halt));
        }
        let claimed = match self.announced.recent() {
            Some(block) => block,
            None => self.client.finalized_head().await?.0,
        };
        for _ in 0..PROOFS_PER_ROUND {
            let head = follower.head().number;
            if u64::from(claimed) <= head {
                break;
            }
            let next = self.block_number(head + 1)?;
            let Some((header, proof)) = self.proof_for(next).await? else {
                break;
            };
            let began = std::time::Instant::now();
            match follower.follow(header, &proof) {
                Ok(count) => tracing::debug!(
                    from = next,
                    blocks = count,
                    set_id = follower.set_id(),
                    ms = began.elapsed().as_millis() as u64,
                    "imported a finality proof"
                ),
                Err(halt) => return Err(self.halted(&halt)),
            }
        }
        Ok(follower.head())
    }

    async fn light_client(&self) -> Option<LightClientCommit> {
        Some(self.follower.lock().await.commit())
    }

    async fn light_client_committed(&self, head: u64) {
        self.follower.lock().await.committed(head);
    }

    async fn block_ref(&self, number: u64) -> Result<Option<BlockRef>, LedgerError> {
        let n = self.block_number(number)?;
        Ok(self
            .client
            .block_hash(n)
            .await?
            .map(|hash| BlockRef { number, hash }))
    }

    async fn check_linkage(&self, cursor: BlockRef) -> Result<(), LedgerError> {
        match self.block_ref(cursor.number).await? {
            Some(b) if b.hash == cursor.hash => Ok(()),
            _ => Err(LedgerError::ChainChanged {
                ledger: self.name.clone(),
                number: cursor.number,
                hash: format!("0x{}", hex::encode(cursor.hash)),
            }),
        }
    }

    async fn scan(&self, from: u64, to: u64) -> Result<Vec<Observed>, LedgerError> {
        let (from, to) = (self.block_number(from)?, self.block_number(to)?);
        Ok(self
            .client
            .dispatched(from, to)
            .await?
            .into_iter()
            .map(|m| {
                Observed::Message(NewMessage::from_protocol(
                    &m.message,
                    m.id,
                    BlockRef {
                        number: u64::from(m.block_number),
                        hash: m.block_hash,
                    },
                    None,
                ))
            })
            .collect())
    }

    /// The block must be one the light client finalized (within its window), with
    /// `block.hash`; the header's digest then gives the root and count.
    async fn verify_checkpoint(&self, block: BlockRef) -> Result<VerifiedCheckpoint, LedgerError> {
        let follower = self.follower.lock().await;
        if let Some(halt) = follower.halted() {
            return Err(self.halted(halt));
        }
        let head = follower.head().number;
        let Some(finalized) = follower.header(block.number) else {
            return Err(self.refused(if block.number > head {
                format!(
                    "block {} is not final here (finalized: {head})",
                    block.number
                )
            } else {
                format!(
                    "block {} is below the light client's window of finalized headers \
                     (finalized: {head})",
                    block.number
                )
            }));
        };
        if finalized.hash().0 != block.hash {
            return Err(self.refused(format!(
                "block {} is {} on the finalized chain, not 0x{}",
                block.number,
                finalized.hash(),
                hex::encode(block.hash)
            )));
        }
        let outbox = VerifiedOutbox::from_digest(finalized)
            .map_err(|e| self.refused(format!("block {}: {e}", block.number)))?;
        Ok(VerifiedCheckpoint::from_substrate(
            self.id,
            &outbox,
            &grandpa::describe(finalized),
        ))
    }
}

#[async_trait]
impl Destination for SubstrateLedger {
    fn refuses_recipient(&self, _recipient: &[u8; 32]) -> Option<String> {
        None
    }

    fn batch_for(&self, requested: u32) -> u32 {
        requested
    }

    /// Below an origin's low-water mark every message ended (its entry may be
    /// pruned); above it, one `Processed` lookup per id.
    async fn delivered_among(
        &self,
        messages: &[super::Sent],
    ) -> Result<HashSet<MessageId>, LedgerError> {
        let mut marks = HashMap::new();
        for m in messages {
            if let std::collections::hash_map::Entry::Vacant(e) = marks.entry(m.origin) {
                e.insert(self.inbox.low_water(m.origin).await?);
            }
        }
        let below = |m: &super::Sent| marks.get(&m.origin).is_some_and(|mark| m.nonce < *mark);
        let above: Vec<super::Sent> = messages.iter().filter(|m| !below(m)).cloned().collect();
        let mut ended = super::delivered_among(&above, |m| async move {
            Ok(self.inbox.is_delivered(&m.id).await?)
        })
        .await?;
        ended.extend(messages.iter().filter(|m| below(m)).map(|m| m.id));
        Ok(ended)
    }

    /// The pallet's inbox sends its receipts, and takes the origin's, as its own
    /// `Address32` (`pallet_isthmus::INBOX_ID`).
    fn receipt_endpoint(&self) -> Option<[u8; 32]> {
        Some(isthmus_adapter_substrate::keys::INBOX_ID)
    }

    /// The pallet consumes a message submitted after its deadline (`MessageExpired`).
    fn ends_expired(&self) -> bool {
        true
    }

    /// One lookup per id (the pallet has no event index).
    async fn find_deliveries(
        &self,
        ids: &[MessageId],
    ) -> Result<HashMap<MessageId, DeliveryRef>, LedgerError> {
        Ok(self
            .find_ends(ids)
            .await?
            .into_iter()
            .filter(|(_, (_, outcome))| *outcome == MessageOutcome::Delivered)
            .map(|(id, (at, _))| (id, at))
            .collect())
    }

    /// One lookup per id: refusals and expiries.
    async fn find_endings(
        &self,
        ids: &[MessageId],
    ) -> Result<HashMap<MessageId, (DeliveryRef, MessageOutcome)>, LedgerError> {
        Ok(self
            .find_ends(ids)
            .await?
            .into_iter()
            .filter(|(_, (_, outcome))| *outcome != MessageOutcome::Delivered)
            .collect())
    }

    /// One lookup per id (`Processed[id]`, then that block's ending event) finds
    /// every way a message ended.
    async fn find_ends(
        &self,
        ids: &[MessageId],
    ) -> Result<HashMap<MessageId, (DeliveryRef, MessageOutcome)>, LedgerError> {
        let mut found = HashMap::new();
        for id in ids {
            if let Some((number, hash, tx, outcome)) = self.inbox.find_ending(id).await? {
                let at = DeliveryRef {
                    tx_hash: tx,
                    block: BlockRef {
                        number: u64::from(number),
                        hash,
                    },
                };
                found.insert(*id, (at, outcome));
            }
        }
        Ok(found)
    }

    async fn deliver(&self, batch: &Batch, timeout: Duration) -> Result<Delivered, LedgerError> {
        let receipt = tokio::time::timeout(timeout, self.inbox.deliver(batch))
            .await
            .map_err(|_| LedgerError::Timeout {
                ledger: self.name.clone(),
                what: "finality of the delivery",
                seconds: timeout.as_secs(),
            })??;
        Ok(Delivered {
            at: DeliveryRef {
                tx_hash: receipt.tx_hash,
                block: BlockRef {
                    number: u64::from(receipt.block_number),
                    hash: receipt.block_hash,
                },
            },
            gas_used: None,
            outcomes: receipt.outcomes,
        })
    }

    async fn signer_sets(&self, origin: u32) -> Result<ActiveSigners, LedgerError> {
        Ok(self.inbox.signer_sets(origin).await?)
    }

    async fn update_digest(&self, update: &SignerSetUpdate) -> Result<[u8; 32], LedgerError> {
        Ok(self.inbox.update_digest(update, self.id).await?)
    }

    async fn update_signers(
        &self,
        update: &SignerSetUpdate,
        signatures: &[Attestation],
    ) -> Result<DeliveryRef, LedgerError> {
        Ok(included(
            self.inbox.update_signers(update, signatures).await?,
        ))
    }

    async fn network(&self) -> Result<Network, LedgerError> {
        Ok(self.inbox.network().await?)
    }

    async fn route_state(&self, origin: u32) -> Result<RouteState, LedgerError> {
        Ok(self.inbox.route_state(origin).await?)
    }

    async fn route_control_digest(&self, control: &RouteControl) -> Result<[u8; 32], LedgerError> {
        Ok(self.inbox.route_control_digest(control, self.id).await?)
    }

    async fn control_route(
        &self,
        control: &RouteControl,
        signatures: &[Attestation],
    ) -> Result<DeliveryRef, LedgerError> {
        Ok(included(
            self.inbox.control_route(control, signatures).await?,
        ))
    }

    async fn hold(&self, id: MessageId) -> Result<Option<Hold>, LedgerError> {
        Ok(self.inbox.hold(id.0).await?)
    }

    async fn hold_decision_digest(&self, decision: &HoldDecision) -> Result<[u8; 32], LedgerError> {
        Ok(self.inbox.hold_decision_digest(decision, self.id).await?)
    }

    async fn decide_hold(
        &self,
        decision: &HoldDecision,
        signatures: &[Attestation],
    ) -> Result<DeliveryRef, LedgerError> {
        Ok(included(
            self.inbox.decide_hold(decision, signatures).await?,
        ))
    }

    async fn balance(&self) -> Option<Balance> {
        self.inbox.free_balance().await.ok().map(Balance::Free)
    }
}
