//! The ledgers a relayer talks to, behind the role each plays on a route.
//!
//! Every ledger is a source (its outbox is scanned and its commitment proven through
//! its light client) and a destination (its inbox receives deliveries). [`Ledger`]
//! gives the service one interface over the two kinds:
//! - [`EvmLedger`]: logs of the Outbox contract, headers and `eth_getProof` through
//!   `isthmus-light-client-evm`, `processBatch` on the Inbox contract;
//! - [`SubstrateLedger`]: `Dispatch` events of the pallet, headers and GRANDPA
//!   justifications through `isthmus-light-client-grandpa` (the outbox's root and
//!   count are committed in every header's digest), `process_batch` on the pallet.

use std::collections::BTreeMap;
use std::time::Duration;

use ethers::types::Address;
use isthmus_adapter_evm::source::Scanned;
use isthmus_adapter_evm::{
    BlockRef, Delivery, DeliveryOutcome, EvmDestination, EvmError, EvmSource,
};
use isthmus_adapter_substrate::devnet::DevnetFinality;
use isthmus_adapter_substrate::{
    Destination, Outcome, SkipReason, SubstrateClient, VerifiedOutbox,
};
use isthmus_config::Justifications;
use isthmus_config::{Finality, LedgerConfig};
use isthmus_light_client_evm::{
    AccountProof, EvmLightClient, Header, TrustedCheckpoint, Verified, B256,
};
use isthmus_light_client_grandpa::{AuthoritySet, FinalizedHeader, GrandpaJustification};
use isthmus_protocol::{Message, MessageId};
use isthmus_schema::{BlockRef as StoredBlock, NewMessage};
use tokio::sync::Mutex;

use crate::verified::{CheckpointError, VerifiedCheckpoint};

/// How many "already delivered?" queries run at once against one destination.
const DELIVERED_QUERIES: usize = 16;

pub use isthmus_adapter_evm::MessageOutcome;

/// Most headers kept for attesting to blocks below the light client's head (a peer
/// that is behind asks for an older checkpoint).
const VERIFIED_HEADER_CACHE: usize = 4096;

/// Why a ledger step failed.
#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    /// Chain IO failed (EVM ledger).
    #[error(transparent)]
    Evm(#[from] EvmError),
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
            Self::Timeout { .. } => true,
            // A final block that changed needs an operator: the node is wrong or the
            // chain's finality was violated.
            Self::ChainChanged { .. } => false,
            // A node that served bad evidence may serve good evidence later (another
            // node behind a load balancer, a reorg that settled); the refusal is
            // recorded each time.
            Self::Refused { .. } => true,
            Self::Checkpoint(_) | Self::Config { .. } => false,
        }
    }
}

/// An EVM ledger: source and destination roles plus its light client.
pub struct EvmLedger {
    /// Configured name.
    pub name: String,
    /// Protocol ledger id.
    pub id: u32,
    source: EvmSource,
    destination: Option<EvmDestination>,
    outbox: [u8; 20],
    client: Mutex<LightClientState>,
}

struct LightClientState {
    client: EvmLightClient,
    verified: BTreeMap<u64, Verified<Header>>,
}

fn parse_address(
    ledger: &LedgerConfig,
    field: &str,
    value: Option<&String>,
) -> Result<Address, LedgerError> {
    value
        .and_then(|v| v.parse::<Address>().ok())
        .ok_or_else(|| LedgerError::Config {
            ledger: ledger.name.clone(),
            reason: format!("`{field}` is missing or not an address"),
        })
}

impl EvmLedger {
    /// Connects to `config`'s first RPC URL. `submitter` is the delivery key (None:
    /// this relayer only reads the ledger). The light client starts at block
    /// `start_at`, whose hash is taken from the node: with `finality =
    /// "finalized-tag"` the node's view of final blocks is trusted anyway, and every
    /// later header is checked by hash linkage from there. The caller starts a little
    /// below its stored progress, so checkpoints it and lagging peers still need are
    /// within the verified range after a restart.
    pub async fn connect(
        config: &LedgerConfig,
        submitter: Option<[u8; 32]>,
        start_at: u64,
    ) -> Result<Self, LedgerError> {
        let config_error = |reason: &str| LedgerError::Config {
            ledger: config.name.clone(),
            reason: reason.into(),
        };
        if config.finality != Finality::FinalizedTag {
            return Err(config_error(
                "only `finality = \"finalized-tag\"` is wired into the relayer so far; \
                 the qbft/ibft2/clique light clients exist but have no checkpoint configuration yet",
            ));
        }
        let url = config
            .rpc
            .first()
            .ok_or_else(|| config_error("no rpc URL"))?;
        let outbox = parse_address(config, "outbox", config.outbox.as_ref())?;
        let inbox = parse_address(config, "inbox", config.inbox.as_ref())?;
        let chain_id = config.chain_id.ok_or_else(|| config_error("no chain_id"))?;
        let source = EvmSource::new(url, outbox, config.id)?;
        let destination = match submitter {
            Some(key) => Some(EvmDestination::new(url, chain_id, inbox, &key)?),
            None => None,
        };
        let start = source
            .block_ref(start_at)
            .await?
            .ok_or_else(|| config_error(&format!("the node has no block {start_at}")))?;
        let client = EvmLightClient::finalized_tag(TrustedCheckpoint {
            number: start.number,
            hash: B256(start.hash.0),
        });
        Ok(Self {
            name: config.name.clone(),
            id: config.id,
            source,
            destination,
            outbox: outbox.0,
            client: Mutex::new(LightClientState {
                client,
                verified: BTreeMap::new(),
            }),
        })
    }

    /// The source role.
    pub fn source(&self) -> &EvmSource {
        &self.source
    }

    /// The destination role, when this relayer has a submitter key for the ledger.
    pub fn destination(&self) -> Option<&EvmDestination> {
        self.destination.as_ref()
    }

    /// The Outbox address.
    pub fn outbox(&self) -> [u8; 20] {
        self.outbox
    }

    /// The node's finalized block.
    pub async fn finalized(&self) -> Result<BlockRef, LedgerError> {
        Ok(self.source.finalized().await?)
    }

    /// Outbox logs in `from..=to`.
    pub async fn scan(&self, from: u64, to: u64) -> Result<Vec<Scanned>, LedgerError> {
        Ok(self.source.scan(from, to).await?)
    }

    /// The light client's head: the last block whose header chain it verified.
    pub async fn verified_head(&self) -> BlockRef {
        let state = self.client.lock().await;
        let head = state.client.head();
        BlockRef {
            number: head.number,
            hash: head.hash.0.into(),
        }
    }

    /// Verifies the Outbox's commitment at `block` (number and hash must be final on
    /// this relayer's view): the header chain up to it through the light client, then
    /// the `eth_getProof` of root and count against its state root.
    pub async fn verify_checkpoint(
        &self,
        block: BlockRef,
    ) -> Result<VerifiedCheckpoint, LedgerError> {
        let finalized = self.finalized().await?;
        if block.number > finalized.number {
            return Err(LedgerError::Refused {
                ledger: self.name.clone(),
                reason: format!(
                    "block {} is not final here (finalized: {})",
                    block.number, finalized.number
                ),
            });
        }
        let header = self.verified_header(block).await?;
        let proof = self.source.outbox_proof(block).await?;
        let account = AccountProof::from_rpc_json(&proof.proof_json.to_string())
            .and_then(|p| header.verify_account_proof(&p))
            .map_err(|e| LedgerError::Refused {
                ledger: self.name.clone(),
                reason: e.to_string(),
            })?;
        Ok(VerifiedCheckpoint::from_evm(
            self.id,
            self.outbox,
            &header,
            &account,
        )?)
    }

    async fn verified_header(&self, block: BlockRef) -> Result<Verified<Header>, LedgerError> {
        let mut state = self.client.lock().await;
        let head = state.client.head().number;
        if block.number > head {
            let mut headers = Vec::with_capacity((block.number - head) as usize);
            for n in head + 1..=block.number {
                let json = self.source.header_json(n).await?;
                let header =
                    Header::from_rpc_json(&json.to_string()).map_err(|e| LedgerError::Refused {
                        ledger: self.name.clone(),
                        reason: format!("header {n}: {e}"),
                    })?;
                headers.push(header);
            }
            let verified =
                state
                    .client
                    .verify_headers(headers)
                    .map_err(|e| LedgerError::Refused {
                        ledger: self.name.clone(),
                        reason: e.to_string(),
                    })?;
            for v in verified {
                state.verified.insert(v.value().number, v);
            }
            while state.verified.len() > VERIFIED_HEADER_CACHE {
                state.verified.pop_first();
            }
        }
        let header =
            state
                .verified
                .get(&block.number)
                .cloned()
                .ok_or_else(|| LedgerError::Refused {
                    ledger: self.name.clone(),
                    reason: format!(
                        "block {} is below the verified range kept in memory",
                        block.number
                    ),
                })?;
        if header.block_hash().0 != block.hash.0 {
            return Err(LedgerError::Refused {
                ledger: self.name.clone(),
                reason: format!(
                    "block {} is {} on the verified chain, not {:?}",
                    block.number,
                    header.block_hash(),
                    block.hash
                ),
            });
        }
        Ok(header)
    }

    /// Whether the Inbox already delivered `id`.
    pub async fn is_delivered(&self, id: MessageId) -> Result<bool, LedgerError> {
        Ok(self.submitter()?.is_delivered(id).await?)
    }

    /// Delivers a batch and waits for its final receipt.
    pub async fn deliver(
        &self,
        delivery: &Delivery,
        timeout: Duration,
    ) -> Result<DeliveryOutcome, LedgerError> {
        Ok(self.submitter()?.deliver(delivery, timeout).await?)
    }

    fn submitter(&self) -> Result<&EvmDestination, LedgerError> {
        self.destination
            .as_ref()
            .ok_or_else(|| LedgerError::Config {
                ledger: self.name.clone(),
                reason: "no submitter key: this relayer cannot deliver here".into(),
            })
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
        block: StoredBlock,
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

/// A delivery made by the inbox of a destination ledger, by whichever member.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SeenDelivery {
    /// The message.
    pub id: MessageId,
    /// Its origin ledger.
    pub origin: u32,
    /// Its nonce in the origin's outbox (it tells whose turn it was).
    pub nonce: u64,
    /// The delivering transaction.
    pub tx_hash: [u8; 32],
    /// Its block.
    pub block: StoredBlock,
    /// Whether this relayer's submitter sent it.
    pub by_this_submitter: bool,
}

/// A final delivery transaction and what the inbox did with each message.
#[derive(Clone, Debug)]
pub struct Delivered {
    /// The transaction.
    pub tx_hash: [u8; 32],
    /// Its block, final when reported.
    pub block: StoredBlock,
    /// Gas used, on ledgers that meter gas.
    pub gas_used: Option<u64>,
    /// One outcome per message, in the inbox's order.
    pub outcomes: Vec<(MessageId, MessageOutcome)>,
}

/// A ledger of either kind.
pub enum Ledger {
    /// An EVM chain.
    Evm(Box<EvmLedger>),
    /// A Substrate chain with the Isthmus pallet.
    Substrate(Box<SubstrateLedger>),
}

fn evm_block(b: StoredBlock) -> BlockRef {
    BlockRef {
        number: b.number,
        hash: b.hash.into(),
    }
}

fn stored_block(b: BlockRef) -> StoredBlock {
    StoredBlock {
        number: b.number,
        hash: b.hash.0,
    }
}

/// The stored form of a message the source emitted.
pub fn new_message(
    message: &Message,
    id: MessageId,
    block: StoredBlock,
    tx_hash: Option<[u8; 32]>,
) -> NewMessage {
    NewMessage {
        id: isthmus_schema::MessageId(id.0),
        version: isthmus_protocol::VERSION,
        nonce: message.nonce,
        origin: message.origin,
        sender: message.sender.0,
        destination: message.destination,
        recipient: message.recipient.0,
        deadline: message.deadline,
        body: message.body.clone(),
        canonical: message.encode(),
        source_block: block,
        source_tx_hash: tx_hash,
    }
}

impl Ledger {
    /// Configured name.
    pub fn name(&self) -> &str {
        match self {
            Self::Evm(l) => &l.name,
            Self::Substrate(l) => &l.name,
        }
    }

    /// Protocol ledger id.
    pub fn id(&self) -> u32 {
        match self {
            Self::Evm(l) => l.id,
            Self::Substrate(l) => l.id,
        }
    }

    /// Most blocks one observer round scans: bounds `eth_getLogs` on EVM ledgers and
    /// the per-block event reads on Substrate ledgers, so progress shows often.
    pub fn scan_range(&self) -> u64 {
        match self {
            Self::Evm(_) => 2_000,
            Self::Substrate(_) => 200,
        }
    }

    /// The first block that can hold outbox entries: a Substrate genesis block runs
    /// no extrinsics (and chopsticks serves no events for it).
    pub fn first_block(&self) -> u64 {
        match self {
            Self::Evm(_) => 0,
            Self::Substrate(_) => 1,
        }
    }

    /// The node's finalized block.
    pub async fn finalized(&self) -> Result<StoredBlock, LedgerError> {
        match self {
            Self::Evm(l) => Ok(stored_block(l.finalized().await?)),
            Self::Substrate(l) => l.finalized().await,
        }
    }

    /// Block `number` of the node's chain, if it has it.
    pub async fn block_ref(&self, number: u64) -> Result<Option<StoredBlock>, LedgerError> {
        match self {
            Self::Evm(l) => Ok(l.source.block_ref(number).await?.map(stored_block)),
            Self::Substrate(l) => l.block_ref(number).await,
        }
    }

    /// Fails when `cursor` (a block recorded as final) is no longer on the node's chain.
    pub async fn check_linkage(&self, cursor: StoredBlock) -> Result<(), LedgerError> {
        match self {
            Self::Evm(l) => Ok(l.source.check_linkage(evm_block(cursor)).await?),
            Self::Substrate(l) => match l.block_ref(cursor.number).await? {
                Some(b) if b.hash == cursor.hash => Ok(()),
                _ => Err(LedgerError::ChainChanged {
                    ledger: l.name.clone(),
                    number: cursor.number,
                    hash: format!("0x{}", hex::encode(cursor.hash)),
                }),
            },
        }
    }

    /// The outbox's messages in blocks `from..=to` (final blocks only).
    pub async fn scan(&self, from: u64, to: u64) -> Result<Vec<Observed>, LedgerError> {
        match self {
            Self::Evm(l) => Ok(l
                .scan(from, to)
                .await?
                .into_iter()
                .map(|s| match s {
                    Scanned::Message(m) => Observed::Message(new_message(
                        &m.message,
                        m.id,
                        stored_block(m.block),
                        Some(m.tx_hash.0),
                    )),
                    Scanned::Rejected {
                        block,
                        tx_hash,
                        log_index,
                        reason,
                        raw,
                    } => Observed::Rejected {
                        block: stored_block(block),
                        tx_hash: Some(tx_hash.0),
                        log_index,
                        reason,
                        raw,
                    },
                })
                .collect()),
            Self::Substrate(l) => l.scan(from, to).await,
        }
    }

    /// Verifies the outbox's commitment at `block` through the ledger's light client.
    pub async fn verify_checkpoint(
        &self,
        block: StoredBlock,
    ) -> Result<VerifiedCheckpoint, LedgerError> {
        match self {
            Self::Evm(l) => l.verify_checkpoint(evm_block(block)).await,
            Self::Substrate(l) => l.verify_checkpoint(block).await,
        }
    }

    /// Whether the inbox already processed `id`.
    pub async fn is_delivered(&self, id: MessageId) -> Result<bool, LedgerError> {
        match self {
            Self::Evm(l) => l.is_delivered(id).await,
            Self::Substrate(l) => Ok(l.destination.is_processed(&id).await?),
        }
    }

    /// Delivers a batch and waits until its transaction is final.
    pub async fn deliver(
        &self,
        delivery: &Delivery,
        timeout: Duration,
    ) -> Result<Delivered, LedgerError> {
        match self {
            Self::Evm(l) => {
                let o = l.deliver(delivery, timeout).await?;
                Ok(Delivered {
                    tx_hash: o.tx_hash.0,
                    block: stored_block(o.block),
                    gas_used: Some(o.gas_used),
                    outcomes: o.outcomes,
                })
            }
            Self::Substrate(l) => l.deliver(delivery, timeout).await,
        }
    }

    /// Which of `ids` the inbox already processed (a few queries at a time).
    pub async fn delivered_among(
        &self,
        ids: &[MessageId],
    ) -> Result<std::collections::HashSet<MessageId>, LedgerError> {
        use futures::stream::{StreamExt, TryStreamExt};
        let answers: Vec<(MessageId, bool)> = futures::stream::iter(ids.iter().copied())
            .map(|id| async move { Ok::<_, LedgerError>((id, self.is_delivered(id).await?)) })
            .buffer_unordered(DELIVERED_QUERIES)
            .try_collect()
            .await?;
        Ok(answers
            .into_iter()
            .filter_map(|(id, done)| done.then_some(id))
            .collect())
    }

    /// The transaction and block in which the inbox processed each of `ids` (ids
    /// not processed are absent): one log query on EVM ledgers, one lookup per id on
    /// Substrate.
    pub async fn find_deliveries(
        &self,
        ids: &[MessageId],
    ) -> Result<std::collections::HashMap<MessageId, ([u8; 32], StoredBlock)>, LedgerError> {
        match self {
            Self::Evm(l) => Ok(l
                .submitter()?
                .find_deliveries(ids)
                .await?
                .into_iter()
                .map(|(id, (tx, block))| (id, (tx.0, stored_block(block))))
                .collect()),
            Self::Substrate(l) => {
                let mut found = std::collections::HashMap::new();
                for id in ids {
                    if let Some((number, hash, tx)) = l.destination.find_processed(id).await? {
                        let block = StoredBlock {
                            number: u64::from(number),
                            hash,
                        };
                        found.insert(*id, (tx, block));
                    }
                }
                Ok(found)
            }
        }
    }

    /// Whether [`Ledger::deliveries_between`] lists this ledger's deliveries (then
    /// a relayer learns of other members' deliveries as they land, without looking
    /// up held messages one by one).
    pub fn lists_deliveries(&self) -> bool {
        matches!(self, Self::Evm(_))
    }

    /// The deliveries the inbox made in blocks `from..=to`, by any member, where
    /// the ledger can list them with one query (EVM: the Inbox's events); None on
    /// ledgers that cannot (Substrate), where held messages are looked up one by one.
    pub async fn deliveries_between(
        &self,
        from: u64,
        to: u64,
    ) -> Result<Option<Vec<SeenDelivery>>, LedgerError> {
        match self {
            Self::Evm(l) => Ok(Some(
                l.submitter()?
                    .deliveries_between(from, to)
                    .await?
                    .into_iter()
                    .map(|d| SeenDelivery {
                        id: d.id,
                        origin: d.origin,
                        nonce: d.nonce,
                        tx_hash: d.tx_hash.0,
                        block: stored_block(d.block),
                        by_this_submitter: d.by_this_submitter,
                    })
                    .collect(),
            )),
            Self::Substrate(_) => Ok(None),
        }
    }

    /// How many messages the next delivery to this ledger should carry, at most
    /// `requested` (the route's `batch_size`). On an EVM ledger, the largest count
    /// whose whole delivery transactions fill a block (from the block gas limit and
    /// the gas per message of the last estimates; `requested` before the first);
    /// elsewhere `requested`.
    pub fn batch_for(&self, requested: u32) -> u32 {
        match self {
            Self::Evm(l) => l
                .destination()
                .map_or(requested, |d| d.batch_for(requested)),
            Self::Substrate(_) => requested,
        }
    }

    /// The submitter's free balance in the smallest unit, on Substrate ledgers.
    pub async fn free_balance(&self) -> Option<u128> {
        match self {
            Self::Evm(_) => None,
            Self::Substrate(l) => l.destination.free_balance().await.ok(),
        }
    }

    /// The submitter's balance in gwei, on ledgers where the relayer reads it.
    pub async fn balance_gwei(&self) -> Option<i64> {
        match self {
            Self::Evm(l) => {
                let balance = l.destination()?.balance().await.ok()?;
                let gwei = balance / ethers::types::U256::exp10(9);
                Some(gwei.min(i64::MAX.into()).as_u64() as i64)
            }
            Self::Substrate(_) => None,
        }
    }
}

/// A Substrate ledger carrying the Isthmus pallet.
pub struct SubstrateLedger {
    /// Configured name.
    pub name: String,
    /// Protocol ledger id.
    pub id: u32,
    client: SubstrateClient,
    destination: Destination,
    justifier: DevnetFinality,
    authorities: AuthoritySet,
}

impl SubstrateLedger {
    /// Connects to `config`'s first RPC URL; deliveries are signed with the sr25519
    /// `submitter` secret.
    pub async fn connect(config: &LedgerConfig, submitter: &str) -> Result<Self, LedgerError> {
        let config_error = |reason: String| LedgerError::Config {
            ledger: config.name.clone(),
            reason,
        };
        if config.justifications() != Justifications::Devnet {
            return Err(config_error(
                "`justifications = \"rpc\"` is not wired into the relayer yet: fetching GRANDPA \
                 justifications from a network's RPC and configuring its authority-set anchor are \
                 still to come; the dev chain runs with `justifications = \"devnet\"`"
                    .into(),
            ));
        }
        let url = config
            .rpc
            .first()
            .ok_or_else(|| config_error("no rpc URL".into()))?;
        let client = SubstrateClient::connect(url).await?;
        let destination = Destination::from_secret(client.clone(), submitter).map_err(|_| {
            config_error(format!(
                "`submitter` ({}) holds no usable sr25519 secret: use a secret URI such as \
                 `//Alice`, a mnemonic with an optional `//derivation`, or `0x` and 64 hex digits",
                config.submitter.describe()
            ))
        })?;
        let justifier = DevnetFinality::new();
        let authorities = justifier.authority_set()?;
        Ok(Self {
            name: config.name.clone(),
            id: config.id,
            client,
            destination,
            justifier,
            authorities,
        })
    }

    /// The destination role (also the account `isthmus send` dispatches from).
    pub fn destination(&self) -> &Destination {
        &self.destination
    }

    fn block_number(&self, number: u64) -> Result<u32, LedgerError> {
        u32::try_from(number).map_err(|_| LedgerError::Refused {
            ledger: self.name.clone(),
            reason: format!("block number {number} does not fit a Substrate block number"),
        })
    }

    async fn finalized(&self) -> Result<StoredBlock, LedgerError> {
        let (number, hash) = self.client.finalized_head().await?;
        Ok(StoredBlock {
            number: u64::from(number),
            hash,
        })
    }

    async fn block_ref(&self, number: u64) -> Result<Option<StoredBlock>, LedgerError> {
        let n = self.block_number(number)?;
        Ok(self
            .client
            .block_hash(n)
            .await?
            .map(|hash| StoredBlock { number, hash }))
    }

    async fn scan(&self, from: u64, to: u64) -> Result<Vec<Observed>, LedgerError> {
        let (from, to) = (self.block_number(from)?, self.block_number(to)?);
        Ok(self
            .client
            .dispatched(from, to)
            .await?
            .into_iter()
            .map(|m| {
                Observed::Message(new_message(
                    &m.message,
                    m.id,
                    StoredBlock {
                        number: u64::from(m.block_number),
                        hash: m.block_hash,
                    },
                    None,
                ))
            })
            .collect())
    }

    /// Verifies the outbox's commitment at `block`: the header's bytes must hash to
    /// `block.hash`, a GRANDPA justification of that hash must verify against the
    /// authority set, and the header's digest then gives the root and count.
    async fn verify_checkpoint(
        &self,
        block: StoredBlock,
    ) -> Result<VerifiedCheckpoint, LedgerError> {
        let refused = |reason: String| LedgerError::Refused {
            ledger: self.name.clone(),
            reason,
        };
        let finalized = self.finalized().await?;
        if block.number > finalized.number {
            return Err(refused(format!(
                "block {} is not final here (finalized: {})",
                block.number, finalized.number
            )));
        }
        let number = self.block_number(block.number)?;
        let bytes = self.client.header_bytes(block.hash).await?;
        let header = isthmus_light_client_grandpa::Header::decode_exact(&bytes)
            .map_err(|e| refused(format!("header {number}: {e}")))?;
        if header.hash().0 != block.hash || header.number != number {
            return Err(refused(format!(
                "the node's header {} hashes to {}, not to the requested block",
                header.number,
                header.hash()
            )));
        }
        // The dev chain has no GRANDPA voters: its justification is signed here with
        // the published genesis authority keys (`justifications = "devnet"`), then
        // verified like any network's.
        let justification =
            GrandpaJustification::decode_exact(&self.justifier.justify(number, block.hash))
                .map_err(|e| refused(format!("justification of block {number}: {e}")))?;
        let finality = justification
            .verify(&self.authorities)
            .map_err(|e| refused(format!("justification of block {number}: {e}")))?;
        let finalized = FinalizedHeader::new(header, finality)
            .map_err(|e| refused(format!("block {number}: {e}")))?;
        let outbox = VerifiedOutbox::from_digest(&finalized)
            .map_err(|e| refused(format!("block {number}: {e}")))?;
        Ok(VerifiedCheckpoint::from_substrate(
            self.id,
            &outbox,
            "grandpa (devnet authority keys)",
        ))
    }

    async fn deliver(
        &self,
        delivery: &Delivery,
        timeout: Duration,
    ) -> Result<Delivered, LedgerError> {
        let items: Vec<(Vec<u8>, isthmus_protocol::Branch)> = delivery
            .messages
            .iter()
            .map(|(m, b)| (m.encode(), b.clone()))
            .collect();
        let receipt = tokio::time::timeout(
            timeout,
            self.destination
                .process_batch(&delivery.checkpoint, &delivery.attestations, &items),
        )
        .await
        .map_err(|_| LedgerError::Timeout {
            ledger: self.name.clone(),
            what: "finality of the delivery",
            seconds: timeout.as_secs(),
        })??;
        Ok(Delivered {
            tx_hash: receipt.tx_hash,
            block: StoredBlock {
                number: u64::from(receipt.block_number),
                hash: receipt.block_hash,
            },
            gas_used: None,
            outcomes: receipt
                .outcomes
                .into_iter()
                .map(|(id, outcome)| {
                    let outcome = match outcome {
                        Outcome::Processed => MessageOutcome::Delivered,
                        Outcome::HandlerFailed { error } => MessageOutcome::HandlerFailed(error),
                        Outcome::Skipped(SkipReason::AlreadyProcessed) => {
                            MessageOutcome::AlreadyDelivered
                        }
                        Outcome::Skipped(SkipReason::Expired) => MessageOutcome::Expired,
                    };
                    (id, outcome)
                })
                .collect(),
        })
    }
}
