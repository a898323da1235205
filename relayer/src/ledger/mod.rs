//! The ledgers a relayer talks to, behind the narrow role each plays on a route.
//!
//! A new kind of ledger implements these traits and nothing else:
//! - [`Source`]: its outbox is scanned over final blocks and its commitment proven
//!   through its light client;
//! - [`Destination`]: its inbox receives batches, and says what it already did;
//! - [`DeliveryFeed`] (optional, from [`Destination::feed`]): its inbox's deliveries,
//!   by any member, listed over a block range with one query.
//!
//! The shared vocabulary lives here and in `isthmus-protocol` ([`Batch`],
//! [`MessageOutcome`], [`DeliveryRef`], [`SeenDelivery`]). The implementations are [`evm`] (Outbox/Inbox contracts
//! through ethers, headers and `eth_getProof` through `isthmus-light-client-evm`) and
//! [`substrate`] (the pallet through subxt, GRANDPA through
//! `isthmus-light-client-grandpa`).

pub mod evm;
pub mod follow;
pub mod grandpa;
pub mod substrate;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use isthmus_protocol::{
    ActiveSigners, Attestation, Batch, Hold, HoldDecision, MessageId, MessageOutcome, Network,
    RouteControl, RouteState, SignerSetUpdate,
};
pub use isthmus_protocol::{DeliveryRef, SeenDelivery};
use isthmus_schema::{BlockRef, LightClientCommit, NewMessage};

use crate::verified::{CheckpointError, VerifiedCheckpoint};

/// Why a ledger step failed. Retryability is decided here, where the cause is known.
#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    /// Chain IO failed (EVM ledger).
    #[error(transparent)]
    Evm(#[from] isthmus_adapter_evm::EvmError),
    /// Chain IO failed (Substrate ledger).
    #[error(transparent)]
    Substrate(#[from] isthmus_adapter_substrate::Error),
    /// The node's chain no longer holds a block the relayer recorded as final.
    #[error("ledger `{ledger}`: block {number} is no longer {hash} on the node's chain")]
    ChainChanged {
        /// The ledger.
        ledger: String,
        /// The block number.
        number: u64,
        /// The recorded hash.
        hash: String,
    },
    /// A block the node reported as final is missing when asked for by number.
    #[error("ledger `{ledger}`: final block {number} is missing from the node")]
    BlockMissing {
        /// The ledger.
        ledger: String,
        /// The block number.
        number: u64,
    },
    /// The ledger did not answer in time.
    #[error("ledger `{ledger}`: {what} took longer than {seconds} s")]
    Timeout {
        /// The ledger.
        ledger: String,
        /// What was awaited.
        what: &'static str,
        /// The limit.
        seconds: u64,
    },
    /// The light client refused the evidence: the node's answer is not a proof.
    #[error("light client refused the evidence of ledger `{ledger}`: {reason}")]
    Refused {
        /// The ledger.
        ledger: String,
        /// Why.
        reason: String,
    },
    /// The proven values do not form a checkpoint.
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    /// The light client refused a header that a verified chain must accept: the
    /// ledger's observer stops until an operator acts; `evidence` goes into the
    /// history.
    #[error("ledger `{ledger}` halted at block {number}: {rule}")]
    Halted {
        /// The ledger.
        ledger: String,
        /// The refused block.
        number: u64,
        /// The rule it broke.
        rule: String,
        /// The header(s), the verified head and the validator set.
        evidence: Box<serde_json::Value>,
    },
    /// The ledger is configured in a way this relayer cannot use.
    #[error("ledger `{ledger}`: {reason}")]
    Config {
        /// The ledger.
        ledger: String,
        /// What to fix.
        reason: String,
    },
}

impl LedgerError {
    /// Whether the step may succeed later.
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Evm(e) => e.is_retryable(),
            Self::Substrate(e) => e.is_retryable(),
            // A node behind a load balancer, or one still importing, answers later.
            Self::Timeout { .. } | Self::BlockMissing { .. } => true,
            // A final block that changed needs an operator: the node is wrong or the
            // chain's finality was violated.
            Self::ChainChanged { .. } => false,
            // A node that served bad evidence may serve good evidence later (another
            // node behind a load balancer, a reorg that settled); the refusal is
            // recorded each time.
            Self::Refused { .. } => true,
            Self::Checkpoint(_) | Self::Config { .. } | Self::Halted { .. } => false,
        }
    }
}

/// One entry of a scan: a message to record, or an outbox entry that does not hold a
/// valid message (recorded as rejected with the reason; the scan goes on).
#[derive(Clone, Debug)]
pub enum Observed {
    /// A valid protocol message.
    Message(NewMessage),
    /// An outbox entry that is not a valid message.
    Rejected {
        /// The block that holds it.
        block: BlockRef,
        /// The transaction that emitted it, where the ledger has one.
        tx_hash: Option<[u8; 32]>,
        /// Position in the block.
        log_index: u64,
        /// Why it was refused.
        reason: String,
        /// The raw payload.
        raw: Vec<u8>,
    },
}

/// A final delivery transaction and what the inbox did with each message.
#[derive(Clone, Debug)]
pub struct Delivered {
    /// The transaction and its final block.
    pub at: DeliveryRef,
    /// Gas used, on ledgers that meter gas.
    pub gas_used: Option<u64>,
    /// One outcome per message, in the inbox's order.
    pub outcomes: Vec<(MessageId, MessageOutcome)>,
}

/// The submitter's balance, as the ledger counts it (for the low-balance gauges).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Balance {
    /// An EVM account, in gwei.
    Gwei(i64),
    /// A Substrate account's free balance, in the chain's smallest unit.
    Free(u128),
}

/// A ledger whose outbox messages leave from.
#[async_trait]
pub trait Source: Send + Sync {
    /// The first block that can hold outbox entries.
    fn first_block(&self) -> u64;

    /// Most blocks one observer round scans (bounds each query, so progress shows
    /// often).
    fn scan_range(&self) -> u64;

    /// The node's final head.
    async fn finalized(&self) -> Result<BlockRef, LedgerError>;

    /// Final blocks beyond the last [`Source::finalized`] that are not usable yet
    /// (a sealed EVM ledger's light client follows a bounded number of headers per
    /// call): the observer counts them as remaining, so a catch-up shows its
    /// progress and runs without pauses.
    fn lag(&self) -> u64 {
        0
    }

    /// Block `number` of the node's chain, if it has it.
    async fn block_ref(&self, number: u64) -> Result<Option<BlockRef>, LedgerError>;

    /// Fails with [`LedgerError::ChainChanged`] when `cursor` (a block recorded as
    /// final) is no longer on the node's chain.
    async fn check_linkage(&self, cursor: BlockRef) -> Result<(), LedgerError>;

    /// The nonce of the outbox's first message. Its tree holds zero leaves below it:
    /// an EVM Outbox that replaced another continues the old one's nonces
    /// (docs/protocol.md, "Replacing an Outbox"). The pallet's nonces never restart.
    async fn first_nonce(&self) -> Result<u64, LedgerError> {
        Ok(0)
    }

    /// Whether the configured outbox sent message `id`, where the ledger can tell
    /// (None: it cannot). A start check: a message of this history it did not send,
    /// at or above its first nonce, means it replaced another outbox without
    /// continuing its nonces.
    async fn outbox_sent(&self, _id: [u8; 32]) -> Result<Option<bool>, LedgerError> {
        Ok(None)
    }

    /// The outbox's entries in final blocks `from..=to`, in chain order.
    async fn scan(&self, from: u64, to: u64) -> Result<Vec<Observed>, LedgerError>;

    /// The outbox's commitment at `block`, proven through the ledger's light client.
    async fn verify_checkpoint(&self, block: BlockRef) -> Result<VerifiedCheckpoint, LedgerError>;

    /// The light-client state to commit with the observe cursor, where the ledger
    /// keeps one in the history (sealed EVM finality). Its head covers every block
    /// [`Source::finalized`] returned so far.
    async fn light_client(&self) -> Option<LightClientCommit> {
        None
    }

    /// The store committed the light-client state up to block `head`.
    async fn light_client_committed(&self, _head: u64) {}
}

/// A ledger whose inbox messages are delivered to.
#[async_trait]
pub trait Destination: Send + Sync {
    /// Why this inbox can never accept a message for `recipient`, when that is
    /// decidable before any submission (None: it may).
    fn refuses_recipient(&self, recipient: &[u8; 32]) -> Option<String>;

    /// How many messages the next batch should carry, at most `requested`.
    fn batch_for(&self, requested: u32) -> u32;

    /// The inbox's own account (Address32), which sends and takes receipt batches
    /// (docs/protocol.md, "Receipts"); None for an inbox that keeps no receipts.
    fn receipt_endpoint(&self) -> Option<[u8; 32]> {
        None
    }

    /// Whether the inbox ends a message submitted after its deadline (consumes it
    /// with an `expired` receipt, as the EVM Inbox does) rather than refusing it. The
    /// relayer then submits expired messages, so their expiry is proven on the
    /// destination, instead of only recording it.
    fn ends_expired(&self) -> bool {
        false
    }

    /// Which of `messages` the inbox already processed (their ids).
    async fn delivered_among(&self, messages: &[Sent]) -> Result<HashSet<MessageId>, LedgerError>;

    /// Where the inbox processed each of `ids` (ids not processed are absent).
    async fn find_deliveries(
        &self,
        ids: &[MessageId],
    ) -> Result<HashMap<MessageId, DeliveryRef>, LedgerError>;

    /// Where the inbox ended each of `ids` without delivering it, and how
    /// ([`MessageOutcome::Refused`] or [`MessageOutcome::Expired`]); ids that did not
    /// end so are absent. An inbox that ends messages only by delivering them finds
    /// none.
    async fn find_endings(
        &self,
        _ids: &[MessageId],
    ) -> Result<HashMap<MessageId, (DeliveryRef, MessageOutcome)>, LedgerError> {
        Ok(HashMap::new())
    }

    /// How and where the inbox ended each of `ids` (ids that have not ended are
    /// absent): the deliveries ([`Destination::find_deliveries`]), then the other
    /// endings of the rest ([`Destination::find_endings`]). An inbox that finds both
    /// in one lookup per id overrides it.
    async fn find_ends(
        &self,
        ids: &[MessageId],
    ) -> Result<HashMap<MessageId, (DeliveryRef, MessageOutcome)>, LedgerError> {
        let mut ends: HashMap<_, _> = self
            .find_deliveries(ids)
            .await?
            .into_iter()
            .map(|(id, at)| (id, (at, MessageOutcome::Delivered)))
            .collect();
        let rest: Vec<MessageId> = ids
            .iter()
            .filter(|id| !ends.contains_key(*id))
            .copied()
            .collect();
        if !rest.is_empty() {
            ends.extend(self.find_endings(&rest).await?);
        }
        Ok(ends)
    }

    /// The messages of `batch` this inbox could never take as things stand, each with
    /// the reason, found before any submission by simulating each one's delivery
    /// alone: more than `cap` gas (the route's `max_message_gas`) or more than a
    /// block holds. Ledgers whose handlers cannot be starved by the submitter (a
    /// Substrate runtime charges the weight each handler declares) find none.
    async fn unfit(
        &self,
        _batch: &Batch,
        _cap: Option<u64>,
    ) -> Result<Vec<(MessageId, String)>, LedgerError> {
        Ok(Vec::new())
    }

    /// The signer sets the inbox accepts for `origin`'s checkpoints: the current
    /// set and, during an update's overlap, the one it replaced.
    async fn signer_sets(&self, origin: u32) -> Result<ActiveSigners, LedgerError>;

    /// The digest the current signers sign to authorise `update` on this inbox: it
    /// binds the ledger and the inbox, so a signed update is valid here only.
    async fn update_digest(&self, update: &SignerSetUpdate) -> Result<[u8; 32], LedgerError>;

    /// Submits `update` with the current signers' `signatures`; returns the
    /// transaction once included. The inbox's refusal (no quorum, a stale version)
    /// is an error naming it.
    async fn update_signers(
        &self,
        update: &SignerSetUpdate,
        signatures: &[Attestation],
    ) -> Result<DeliveryRef, LedgerError>;

    /// The network this inbox takes checkpoints of: a relayer of another network
    /// would sign digests it never accepts ([`crate::supervise`] checks it at start).
    async fn network(&self) -> Result<Network, LedgerError>;

    /// Whether the route from `origin` is paused on this inbox, and its epoch.
    async fn route_state(&self, origin: u32) -> Result<RouteState, LedgerError>;

    /// The digest members sign for `control` on this inbox: it binds the ledger, the
    /// inbox, the origin and the route's epoch.
    async fn route_control_digest(&self, control: &RouteControl) -> Result<[u8; 32], LedgerError>;

    /// Submits `control` with its signatures (one member's to pause, a quorum's to
    /// resume); returns the transaction once included. The inbox's refusal is an error
    /// naming it.
    async fn control_route(
        &self,
        control: &RouteControl,
        signatures: &[Attestation],
    ) -> Result<DeliveryRef, LedgerError>;

    /// The hold of message `id` on this inbox, if it is held and not ended
    /// (docs/protocol.md, "Holds").
    async fn hold(&self, id: MessageId) -> Result<Option<Hold>, LedgerError>;

    /// The digest members sign for `decision` on this inbox: it binds the ledger, the
    /// inbox, the origin and the message id.
    async fn hold_decision_digest(&self, decision: &HoldDecision) -> Result<[u8; 32], LedgerError>;

    /// Submits a quorum's `signatures` over `decision`; returns the transaction once
    /// included. The inbox's refusal (not held, expired, no quorum) is an error
    /// naming it.
    async fn decide_hold(
        &self,
        decision: &HoldDecision,
        signatures: &[Attestation],
    ) -> Result<DeliveryRef, LedgerError>;

    /// Submits `batch` and waits until its transaction is final (at most `timeout`).
    async fn deliver(&self, batch: &Batch, timeout: Duration) -> Result<Delivered, LedgerError>;

    /// The submitter's balance, where the relayer can read it.
    async fn balance(&self) -> Option<Balance>;

    /// The inbox's deliveries as a feed, where the ledger can list them in one query.
    fn feed(&self) -> Option<&dyn DeliveryFeed> {
        None
    }
}

/// A destination whose deliveries, by any member, can be listed over final blocks.
#[async_trait]
pub trait DeliveryFeed: Send + Sync {
    /// The node's final head.
    async fn head(&self) -> Result<u64, LedgerError>;

    /// Most blocks one listing covers.
    fn range(&self) -> u64;

    /// The deliveries the inbox made in blocks `from..=to`.
    async fn deliveries_between(
        &self,
        from: u64,
        to: u64,
    ) -> Result<Vec<SeenDelivery>, LedgerError>;
}

/// One configured ledger: its name, id and roles.
#[derive(Clone)]
pub struct LedgerHandle {
    /// Configured name.
    pub name: String,
    /// Protocol ledger id.
    pub id: u32,
    /// How often its node is polled for new final blocks.
    pub poll_interval: Duration,
    /// The source role.
    pub source: Arc<dyn Source>,
    /// The destination role.
    pub destination: Arc<dyn Destination>,
}

impl std::fmt::Debug for LedgerHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LedgerHandle")
            .field("name", &self.name)
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

/// A sent message as an inbox knows it: its id, and its place in its origin's
/// outbox (the EVM Inbox keeps one delivered bit per origin and nonce).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sent {
    /// The message id.
    pub id: MessageId,
    /// Ledger id of its origin.
    pub origin: u32,
    /// Its nonce in the origin's outbox.
    pub nonce: u64,
}

impl From<&isthmus_schema::MessageRecord> for Sent {
    fn from(m: &isthmus_schema::MessageRecord) -> Self {
        Self {
            id: m.id,
            origin: m.origin,
            nonce: m.nonce,
        }
    }
}

/// How many "already delivered?" queries run at once against one inbox.
const DELIVERED_QUERIES: usize = 16;

/// Which of `messages` `is_delivered` says the inbox processed, a few queries at a
/// time.
async fn delivered_among<F, Fut>(
    messages: &[Sent],
    is_delivered: F,
) -> Result<HashSet<MessageId>, LedgerError>
where
    F: Fn(Sent) -> Fut,
    Fut: std::future::Future<Output = Result<bool, LedgerError>>,
{
    use futures::stream::{StreamExt, TryStreamExt};
    let answers: Vec<(MessageId, bool)> = futures::stream::iter(messages.iter().copied())
        .map(|m| {
            let query = is_delivered(m);
            async move { Ok::<_, LedgerError>((m.id, query.await?)) }
        })
        .buffer_unordered(DELIVERED_QUERIES)
        .try_collect()
        .await?;
    Ok(answers
        .into_iter()
        .filter_map(|(id, done)| done.then_some(id))
        .collect())
}

#[cfg(test)]
pub(crate) mod fake;
