//! The destination role: deliver attested messages to the Inbox, exactly once.
//!
//! Nonces come from the node's pending count at every submission, so a restarted
//! relayer continues where the chain is, not where its memory was. A transaction
//! that is not mined in time is replaced at the same nonce with higher fees (a
//! stuck transaction never blocks the queue). Replays are harmless by construction:
//! `processBatch` skips ids the Inbox already delivered.

use std::sync::Arc;
use std::time::{Duration, Instant};

use ethers::abi::AbiDecode;
use ethers::contract::{ContractError, EthLogDecode};
use ethers::middleware::SignerMiddleware;
use ethers::providers::{Middleware, Provider};
use ethers::types::transaction::eip2718::TypedTransaction;
use ethers::types::{Address, BlockId, BlockNumber, Bytes, TransactionReceipt, H256, U256};
use isthmus_keys::EcdsaKey;
use isthmus_protocol::{Batch, DeliveryRef, MessageId, MessageOutcome, SeenDelivery};

use crate::contracts::{self, Inbox, InboxErrors, InboxEvents};
use crate::rpc::Failover;
use crate::source::BlockRef;
use crate::EvmError;

pub(crate) type Client = SignerMiddleware<Provider<Failover>, crate::KeyWallet>;

/// The final result of a delivery transaction.
#[derive(Clone, Debug)]
pub struct DeliveryOutcome {
    /// The transaction that carried it.
    pub tx_hash: H256,
    /// Its block, final at the time of reporting.
    pub block: BlockRef,
    /// Gas the transaction used.
    pub gas_used: u64,
    /// Effective gas price paid, in wei.
    pub gas_price: u128,
    /// One outcome per message id in the delivery.
    pub outcomes: Vec<(MessageId, MessageOutcome)>,
}

/// How often a pending delivery is looked up in the node's pool.
const DROPPED_CHECK: Duration = Duration::from_secs(3);

/// Multiplier on the node's fee-cap estimate for deliveries.
const MAX_FEE_HEADROOM: u64 = 3;

/// Simulations of single messages' deliveries in flight at once (see `unfit`).
const SIMULATIONS_AT_ONCE: usize = 8;

/// Estimates whose gas per message sizes the next batches (the largest counts).
const GAS_SAMPLES: usize = 8;

/// What recent estimates showed of this Inbox's gas, to size batches to the block.
#[derive(Clone, Debug, Default)]
struct GasFit {
    /// The latest block's gas limit.
    block_gas_limit: Option<u64>,
    /// Gas per message (estimate / messages) of the last estimates, newest last.
    per_message: std::collections::VecDeque<u64>,
    /// Messages of the last delivery that needed more gas than a block, until an
    /// estimate succeeds again: the next batches take at most half as many.
    too_large: Option<u32>,
}

impl GasFit {
    /// An estimate of `estimate` gas for a delivery of `messages`.
    fn record(&mut self, block_gas_limit: u64, estimate: u64, messages: usize) {
        self.block_gas_limit = Some(block_gas_limit);
        self.too_large = None;
        if messages > 0 {
            if self.per_message.len() == GAS_SAMPLES {
                self.per_message.pop_front();
            }
            self.per_message
                .push_back(estimate.div_ceil(messages as u64).max(1));
        }
    }

    /// A delivery of `messages` needed more gas than a block holds.
    fn record_too_large(&mut self, block_gas_limit: u64, messages: usize) {
        self.block_gas_limit = Some(block_gas_limit);
        self.too_large = Some(u32::try_from(messages).unwrap_or(u32::MAX));
    }

    /// The largest batch, up to `requested`, such that a whole number of such
    /// batches fills a block: a block takes a transaction only while its gas
    /// *limit* fits, so a batch of a little more than a third of a block leaves a
    /// third of every block empty. `margin_pct` is the gas limit's margin over the
    /// estimate. Without an estimate yet, `requested`: all lanes start at once, and
    /// small first batches would leave the blocks empty while they wait for
    /// finality; a batch too large for a block is refused before sending and halves
    /// the next ones.
    fn batch_for(&self, requested: u32, margin_pct: u64) -> u32 {
        let requested = match self.too_large {
            Some(n) => requested.min(n / 2).max(1),
            None => requested,
        };
        let (Some(limit), Some(per_message)) =
            (self.block_gas_limit, self.per_message.iter().max().copied())
        else {
            return requested.max(1);
        };
        // Messages per block at this gas, keeping 1 % of the block spare.
        let per_block = (u128::from(limit) * 99 * 100
            / (u128::from(per_message) * u128::from(100 + margin_pct) * 100))
            .max(1) as u64;
        let requested = u64::from(requested.max(1));
        // The fewest batches per block whose share of it is at most `requested`.
        let batches = per_block / (requested + 1) + 1;
        (per_block / batches).clamp(1, requested) as u32
    }
}

/// Submits deliveries to one Inbox.
#[derive(Clone, Debug)]
pub struct EvmDestination {
    client: Arc<Client>,
    inbox: Inbox<Client>,
    /// Percent added to the gas estimate.
    gas_margin_pct: u64,
    /// How long a transaction may stay unmined before it is replaced.
    replace_after: Duration,
    /// Most replacements before giving up (the caller retries later).
    max_replacements: u32,
    /// Held while a delivery takes its nonce and is sent.
    send_lock: Arc<tokio::sync::Mutex<()>>,
    /// Gas per message and block gas limit seen by the last estimates.
    gas_fit: Arc<std::sync::Mutex<GasFit>>,
}

impl EvmDestination {
    /// A submitter signing with `secret` (32-byte secp256k1 key) for chain `chain_id`.
    pub fn new(
        url: &str,
        chain_id: u64,
        inbox: Address,
        secret: &[u8; 32],
    ) -> Result<Self, EvmError> {
        let rpc = crate::rpc::failover_provider(&[url.to_owned()], crate::RPC_TIMEOUT, None)?;
        let secret = k256::SecretKey::from_slice(secret).map_err(|_| {
            EvmError::Config("submitter key is not a valid secp256k1 secret".into())
        })?;
        Self::over(
            rpc,
            chain_id,
            inbox,
            Arc::new(isthmus_keys::LocalKey::new(&secret)),
        )
    }

    /// [`EvmDestination::new`] through `rpc` (several endpoints), signing with `key`
    /// (in process or in a PKCS#11 token).
    pub fn over(
        rpc: Provider<Failover>,
        chain_id: u64,
        inbox: Address,
        key: Arc<dyn EcdsaKey>,
    ) -> Result<Self, EvmError> {
        let provider = rpc.interval(Duration::from_millis(100));
        let wallet = crate::KeyWallet::new(key, chain_id);
        let client = Arc::new(SignerMiddleware::new(provider, wallet));
        let inbox = Inbox::new(inbox, client.clone());
        Ok(Self {
            client,
            inbox,
            gas_margin_pct: 10,
            replace_after: Duration::from_secs(30),
            max_replacements: 3,
            send_lock: Arc::new(tokio::sync::Mutex::new(())),
            gas_fit: Arc::default(),
        })
    }

    /// Sets how long a transaction may stay unmined before it is replaced.
    pub fn with_replace_after(mut self, after: Duration) -> Self {
        self.replace_after = after;
        self
    }

    /// The submitter's address.
    pub fn submitter(&self) -> Address {
        self.client.address()
    }

    /// The Inbox contract binding.
    pub fn inbox(&self) -> &Inbox<Client> {
        &self.inbox
    }

    /// How many messages the next delivery should carry, at most `requested`: the
    /// largest count such that a whole number of delivery transactions fills a block
    /// of this ledger (from the block gas limit and the gas per message of the last
    /// estimates). Before the first estimate, `requested`.
    pub fn batch_for(&self, requested: u32) -> u32 {
        self.gas_fit.lock().map_or(requested, |fit| {
            fit.batch_for(requested, self.gas_margin_pct)
        })
    }

    /// The submitter's balance in wei (for the balance metric and alerts).
    pub async fn balance(&self) -> Result<U256, EvmError> {
        self.client
            .inner()
            .get_balance(self.submitter(), None)
            .await
            .map_err(|e| EvmError::from_provider("eth_getBalance", e))
    }

    /// Which of `messages` (origin, nonce) already ended on the Inbox (delivered,
    /// refused or expired), in their order: one read of each origin's low-water mark
    /// (`firstNonce`: every nonce below it ended, its bits pruned or never set), then
    /// one read of `endedBits` per 256 nonces at or above it, a few at a time, however
    /// many messages share a word.
    pub async fn delivered_among(&self, messages: &[(u32, u64)]) -> Result<Vec<bool>, EvmError> {
        use futures::stream::{StreamExt, TryStreamExt};
        let marks: std::collections::HashMap<u32, u64> =
            futures::stream::iter(crate::delivered::origins_of(messages))
                .map(|origin| async move {
                    let mark = self
                        .inbox
                        .first_nonce(origin)
                        .call()
                        .await
                        .map_err(|e| contract_error("firstNonce", e))?;
                    Ok::<_, EvmError>((origin, mark))
                })
                .buffer_unordered(crate::delivered::READS_AT_ONCE)
                .try_collect()
                .await?;
        let mark = |origin: u32| marks.get(&origin).copied().unwrap_or(0);
        let above: Vec<(u32, u64)> = messages
            .iter()
            .copied()
            .filter(|&(origin, nonce)| nonce >= mark(origin))
            .collect();
        let words: std::collections::HashMap<(u32, u64), U256> =
            futures::stream::iter(crate::delivered::words_of(&above))
                .map(|(origin, word)| async move {
                    let bits = self
                        .inbox
                        .ended_bits(origin, U256::from(word))
                        .call()
                        .await
                        .map_err(|e| contract_error("endedBits", e))?;
                    Ok::<_, EvmError>(((origin, word), bits))
                })
                .buffer_unordered(crate::delivered::READS_AT_ONCE)
                .try_collect()
                .await?;
        Ok(messages
            .iter()
            .map(|&(origin, nonce)| {
                crate::delivered::ended(
                    mark(origin),
                    words.get(&(origin, crate::delivered::word(nonce))).copied(),
                    nonce,
                )
            })
            .collect())
    }

    /// The transactions that delivered `ids` (by whichever member), found by the
    /// Inbox's `MessageDelivered` events with one `eth_getLogs`, with their blocks
    /// (ids not delivered are absent).
    pub async fn find_deliveries(
        &self,
        ids: &[MessageId],
    ) -> Result<std::collections::HashMap<MessageId, DeliveryRef>, EvmError> {
        let mut found = std::collections::HashMap::new();
        if ids.is_empty() {
            return Ok(found);
        }
        let logs = self
            .delivered_logs(
                ethers::types::Filter::new()
                    .topic1(ids.iter().map(|id| H256(id.0)).collect::<Vec<_>>())
                    .from_block(0u64),
            )
            .await?;
        for log in logs {
            let (Some(id), Some(tx), Some(number), Some(hash)) = (
                log.topics.get(1),
                log.transaction_hash,
                log.block_number,
                log.block_hash,
            ) else {
                continue;
            };
            // The Inbox emits `MessageDelivered` once per id.
            found.insert(
                MessageId(id.0),
                DeliveryRef {
                    tx_hash: tx.0,
                    block: BlockRef {
                        number: number.as_u64(),
                        hash: hash.0,
                    },
                },
            );
        }
        Ok(found)
    }

    /// Where the Inbox ended each of `ids` without delivering it, and how
    /// ([`MessageOutcome::Refused`] with its code, or [`MessageOutcome::Expired`]),
    /// from its `MessageRefused` and `MessageExpired` events with one `eth_getLogs`
    /// (ids that did not end so are absent).
    pub async fn find_endings(
        &self,
        ids: &[MessageId],
    ) -> Result<std::collections::HashMap<MessageId, (DeliveryRef, MessageOutcome)>, EvmError> {
        use ethers::contract::EthEvent;
        let mut found = std::collections::HashMap::new();
        if ids.is_empty() {
            return Ok(found);
        }
        let filter = ethers::types::Filter::new()
            .address(self.inbox.address())
            .topic0(vec![
                contracts::inbox::MessageRefusedFilter::signature(),
                contracts::inbox::MessageExpiredFilter::signature(),
            ])
            .topic1(ids.iter().map(|id| H256(id.0)).collect::<Vec<_>>())
            .from_block(0u64);
        let logs = self
            .client
            .inner()
            .get_logs(&filter)
            .await
            .map_err(|e| EvmError::from_provider("eth_getLogs", e))?;
        for log in logs {
            let (Some(tx), Some(number), Some(hash)) =
                (log.transaction_hash, log.block_number, log.block_hash)
            else {
                continue;
            };
            let raw = ethers::abi::RawLog {
                topics: log.topics,
                data: log.data.to_vec(),
            };
            let (id, outcome) = match InboxEvents::decode_log(&raw) {
                Ok(InboxEvents::MessageRefusedFilter(e)) => (
                    e.id,
                    MessageOutcome::Refused(isthmus_protocol::result_text(&e.code)),
                ),
                Ok(InboxEvents::MessageExpiredFilter(e)) => (e.id, MessageOutcome::Expired),
                _ => continue,
            };
            // The Inbox ends a message once: one of these events per id at most.
            let at = DeliveryRef {
                tx_hash: tx.0,
                block: BlockRef {
                    number: number.as_u64(),
                    hash: hash.0,
                },
            };
            found.insert(MessageId(id), (at, outcome));
        }
        Ok(found)
    }

    /// The Inbox's `MessageDelivered` logs that also match `filter` (blocks, ids).
    async fn delivered_logs(
        &self,
        filter: ethers::types::Filter,
    ) -> Result<Vec<ethers::types::Log>, EvmError> {
        use ethers::contract::EthEvent;
        let filter = filter
            .address(self.inbox.address())
            .topic0(contracts::inbox::MessageDeliveredFilter::signature());
        self.client
            .inner()
            .get_logs(&filter)
            .await
            .map_err(|e| EvmError::from_provider("eth_getLogs", e))
    }

    /// Every delivery the Inbox made in blocks `from..=to` (by whichever member),
    /// from its `MessageDelivered` events with one `eth_getLogs`, in chain order;
    /// each delivering transaction is looked up once for its sender.
    pub async fn deliveries_between(
        &self,
        from: u64,
        to: u64,
    ) -> Result<Vec<SeenDelivery>, EvmError> {
        use ethers::contract::EthEvent;
        let logs = self
            .delivered_logs(ethers::types::Filter::new().from_block(from).to_block(to))
            .await?;
        let bad = |detail: &str| EvmError::BadResponse {
            call: "eth_getLogs",
            detail: detail.into(),
        };
        let mut seen = Vec::with_capacity(logs.len());
        let mut ours = std::collections::HashMap::new();
        for log in logs {
            let (Some(tx), Some(number), Some(hash)) =
                (log.transaction_hash, log.block_number, log.block_hash)
            else {
                return Err(bad(
                    "a MessageDelivered log without its transaction or block",
                ));
            };
            let raw = ethers::abi::RawLog {
                topics: log.topics,
                data: log.data.to_vec(),
            };
            let event = <contracts::inbox::MessageDeliveredFilter as EthEvent>::decode_log(&raw)
                .map_err(|e| bad(&format!("MessageDelivered does not decode: {e}")))?;
            let by_this_submitter = match ours.get(&tx) {
                Some(known) => *known,
                None => {
                    let sender = self
                        .client
                        .inner()
                        .get_transaction(tx)
                        .await
                        .map_err(|e| EvmError::from_provider("eth_getTransactionByHash", e))?
                        .ok_or_else(|| bad("a delivering transaction the node does not know"))?
                        .from;
                    *ours.entry(tx).or_insert(sender == self.submitter())
                }
            };
            seen.push(SeenDelivery {
                id: MessageId(event.id),
                origin: event.origin,
                nonce: event.nonce,
                at: DeliveryRef {
                    tx_hash: tx.0,
                    block: BlockRef {
                        number: number.as_u64(),
                        hash: hash.0,
                    },
                },
                by_this_submitter,
            });
        }
        Ok(seen)
    }

    /// The messages of `batch` this Inbox could never take as things stand, each with
    /// the reason, found before any submission by simulating each message's delivery
    /// alone (`Inbox.process`, with `eth_estimateGas`): more gas than `cap` (the
    /// route's `max_message_gas`) or more than a block holds. Without a cap this costs
    /// nothing until a delivery was too large for a block; then it finds the
    /// messages that made it so, instead of halving batches down to them.
    ///
    /// A message whose simulation reverts (already delivered, expired, refused by the
    /// Inbox) is not judged here: the batch skips or refuses it with the Inbox's
    /// reason. A node that does not answer is an error, retried with the round.
    pub async fn unfit(
        &self,
        batch: &Batch,
        cap: Option<u64>,
    ) -> Result<Vec<(MessageId, Unfit)>, EvmError> {
        let after_too_large = self.gas_fit.lock().is_ok_and(|fit| fit.too_large.is_some());
        if cap.is_none() && !after_too_large {
            return Ok(Vec::new());
        }
        let block_gas_limit = self.block_gas_limit().await?.low_u64();
        let (checkpoint, signatures) = call_parts(batch);
        // Built eagerly, each future owning what it needs (no borrow of the batch).
        let simulations: Vec<_> = batch
            .messages
            .iter()
            .map(|(message, branch)| {
                let id = message.id();
                let call = self.inbox.process(
                    checkpoint.clone(),
                    signatures.clone(),
                    Bytes::from(message.encode()),
                    branch.siblings,
                );
                async move {
                    let gas = match call.estimate_gas().await {
                        Ok(gas) => Simulated::Gas(gas.min(U256::from(u64::MAX)).low_u64()),
                        Err(e) => match contract_error("process", e) {
                            e @ (EvmError::Transient { .. } | EvmError::BadResponse { .. }) => {
                                return Err(e)
                            }
                            e if exceeds_block(&e) => Simulated::OverBlock,
                            _ => Simulated::Reverts,
                        },
                    };
                    Ok((id, gas))
                }
            })
            .collect();
        use futures::StreamExt;
        let results: Vec<_> = futures::stream::iter(simulations)
            .buffered(SIMULATIONS_AT_ONCE)
            .collect()
            .await;
        let mut unfit = Vec::new();
        for result in results {
            let (id, simulated) = result?;
            if let Some(why) = simulated.judge(cap, block_gas_limit) {
                unfit.push((id, why));
            }
        }
        Ok(unfit)
    }

    /// The latest block's gas limit.
    async fn block_gas_limit(&self) -> Result<U256, EvmError> {
        self.client
            .inner()
            .get_block(BlockNumber::Latest)
            .await
            .map_err(|e| EvmError::from_provider("eth_getBlockByNumber(latest)", e))?
            .map(|b| b.gas_limit)
            .ok_or_else(|| EvmError::BadResponse {
                call: "eth_getBlockByNumber(latest)",
                detail: "no latest block".into(),
            })
    }

    /// Builds the `processBatch` transaction, estimating gas. A delivery the Inbox
    /// refuses fails here with the decoded reason, before anything is sent.
    pub async fn prepare(&self, batch: &Batch) -> Result<TypedTransaction, EvmError> {
        let (checkpoint, signatures) = call_parts(batch);
        let messages: Vec<Bytes> = batch
            .messages
            .iter()
            .map(|(m, _)| Bytes::from(m.encode()))
            .collect();
        let branches: Vec<[[u8; 32]; 32]> =
            batch.messages.iter().map(|(_, b)| b.siblings).collect();
        let call = self
            .inbox
            .process_batch(checkpoint, signatures, messages, branches);
        let block_gas_limit = self.block_gas_limit().await?;
        let messages = batch.messages.len();
        let estimate = match call.estimate_gas().await {
            Ok(estimate) => estimate,
            Err(e) => {
                let e = contract_error("processBatch", e);
                if exceeds_block(&e) {
                    // More gas than a block holds: the next batches take at most half
                    // as many messages, until an estimate succeeds.
                    if let Ok(mut fit) = self.gas_fit.lock() {
                        fit.record_too_large(block_gas_limit.low_u64(), messages);
                    }
                    return Err(EvmError::TooLargeForBlock {
                        messages,
                        block_gas_limit: block_gas_limit.as_u64(),
                    });
                }
                return Err(e);
            }
        };
        if estimate > block_gas_limit {
            if let Ok(mut fit) = self.gas_fit.lock() {
                fit.record_too_large(block_gas_limit.low_u64(), messages);
            }
            return Err(EvmError::TooLargeForBlock {
                messages,
                block_gas_limit: block_gas_limit.as_u64(),
            });
        }
        self.record_gas(block_gas_limit, estimate, messages);
        // Within the block: the margin is cut where it would exceed the block.
        let gas = (estimate * (100 + self.gas_margin_pct) / 100).min(block_gas_limit);
        let mut tx = call.tx;
        tx.set_gas(gas);
        tx.set_from(self.submitter());
        Ok(tx)
    }

    fn record_gas(&self, block_gas_limit: U256, estimate: U256, messages: usize) {
        if let Ok(mut fit) = self.gas_fit.lock() {
            fit.record(
                block_gas_limit.low_u64(),
                estimate.min(U256::from(u64::MAX)).low_u64(),
                messages,
            );
        }
    }

    /// Sends a prepared transaction at `nonce` with EIP-1559 fees scaled by `bump`
    /// percent (100 = the node's estimate). Returns the transaction hash.
    pub async fn send(
        &self,
        mut tx: TypedTransaction,
        nonce: U256,
        bump: u64,
    ) -> Result<H256, EvmError> {
        let (max_fee, priority) =
            self.client
                .estimate_eip1559_fees(None)
                .await
                .map_err(|e| EvmError::Transient {
                    call: "eth_feeHistory",
                    detail: e.to_string(),
                })?;
        tx.set_nonce(nonce);
        if let TypedTransaction::Eip1559(ref mut inner) = tx {
            // The fee cap only bounds what a transaction may pay (it pays the base fee
            // plus the tip). With several batches in flight, full blocks raise the
            // base fee by up to 12.5 % per block; a cap at the node's estimate (about
            // twice the base fee) would leave later batches unmineable after six.
            inner.max_fee_per_gas = Some(max_fee * MAX_FEE_HEADROOM * bump / 100);
            inner.max_priority_fee_per_gas = Some((priority * bump / 100).max(U256::one()));
        }
        let pending = self
            .client
            .send_transaction(tx, None)
            .await
            .map_err(|e| match e {
                ethers::middleware::signer::SignerMiddlewareError::MiddlewareError(p)
                    if p.to_string()
                        .to_ascii_lowercase()
                        .contains("insufficient funds") =>
                {
                    EvmError::InsufficientFunds {
                        call: "processBatch",
                        submitter: format!("{:?}", self.submitter()),
                    }
                }
                ethers::middleware::signer::SignerMiddlewareError::MiddlewareError(p) => {
                    EvmError::from_provider("eth_sendRawTransaction", p)
                }
                ethers::middleware::signer::SignerMiddlewareError::SignerError(e) => {
                    EvmError::Signing {
                        call: "processBatch",
                        detail: e.to_string(),
                    }
                }
                other => EvmError::Config(format!("cannot sign the delivery: {other}")),
            })?;
        Ok(pending.tx_hash())
    }

    /// The nonce the next transaction must use: the node's pending count, so that a
    /// restart or another process's transaction never causes a gap or a collision.
    pub async fn next_nonce(&self) -> Result<U256, EvmError> {
        self.client
            .inner()
            .get_transaction_count(
                self.submitter(),
                Some(BlockId::Number(BlockNumber::Pending)),
            )
            .await
            .map_err(|e| EvmError::from_provider("eth_getTransactionCount", e))
    }

    /// Prepares, sends, replaces while stuck, and waits for the receipt; then waits
    /// until the receipt's block is final and decodes the outcome per message.
    pub async fn deliver(
        &self,
        batch: &Batch,
        finality_timeout: Duration,
    ) -> Result<DeliveryOutcome, EvmError> {
        let tx = self.prepare(batch).await?;
        let (mut nonce, first) = self.send_next(&tx, 100).await?;
        tracing::info!(
            nonce = %nonce,
            tx = ?first,
            messages = batch.messages.len(),
            "delivery sent"
        );
        let mut bump = 100;
        let mut hashes = vec![first];
        let receipt = 'mined: {
            for attempt in 0..=self.max_replacements {
                if attempt > 0 {
                    match self.send(tx.clone(), nonce, bump).await {
                        Ok(hash) => hashes.push(hash),
                        // The previous attempt was mined meanwhile; its receipt is checked below.
                        Err(EvmError::NonceRace { .. }) => {}
                        Err(e) => return Err(e),
                    }
                }
                let mut started = Instant::now();
                let mut looked = Instant::now();
                while started.elapsed() < self.replace_after {
                    for hash in &hashes {
                        if let Some(r) = self.receipt(*hash).await? {
                            break 'mined r;
                        }
                    }
                    // A node may drop a pending transaction from its pool; then the
                    // nonce may go to the next delivery. Send it again at once, at the
                    // next free nonce, rather than wait for the replacement deadline.
                    if looked.elapsed() >= DROPPED_CHECK {
                        looked = Instant::now();
                        if !self.any_known(&hashes).await? {
                            let (next, hash) = self.send_next(&tx, bump).await?;
                            tracing::warn!(
                                nonce = %nonce,
                                new_nonce = %next,
                                tx = ?hash,
                                "delivery dropped from the node's pool; sent again"
                            );
                            nonce = next;
                            hashes.push(hash);
                            started = Instant::now();
                        }
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                tracing::warn!(nonce = %nonce, bump, "delivery not mined in time; replacing with higher fees");
                // Replacement needs at least +10% on both fees; +25% clears every node.
                bump = bump * 125 / 100;
            }
            return Err(EvmError::NotFinal {
                tx: hashes.last().copied().unwrap_or_default(),
                waited_s: 0,
            });
        };
        let wanted: Vec<MessageId> = batch.messages.iter().map(|(m, _)| m.id()).collect();
        self.confirm_receipt(receipt, &wanted, finality_timeout)
            .await
    }

    /// Takes the next nonce and sends `tx` at it, under the send lock: concurrent
    /// deliveries from this submitter take nonces one after the other, because the
    /// node counts a sent transaction as pending before the lock is released.
    async fn send_next(&self, tx: &TypedTransaction, bump: u64) -> Result<(U256, H256), EvmError> {
        let _turn = self.send_lock.lock().await;
        let nonce = self.next_nonce().await?;
        Ok((nonce, self.send(tx.clone(), nonce, bump).await?))
    }

    /// Whether the node knows any of `hashes` (pending in its pool or mined).
    async fn any_known(&self, hashes: &[H256]) -> Result<bool, EvmError> {
        for hash in hashes {
            let known = self
                .client
                .inner()
                .get_transaction(*hash)
                .await
                .map_err(|e| EvmError::from_provider("eth_getTransactionByHash", e))?;
            if known.is_some() {
                return Ok(true);
            }
        }
        Ok(false)
    }

    async fn receipt(&self, hash: H256) -> Result<Option<TransactionReceipt>, EvmError> {
        self.client
            .inner()
            .get_transaction_receipt(hash)
            .await
            .map_err(|e| EvmError::from_provider("eth_getTransactionReceipt", e))
    }

    async fn confirm_receipt(
        &self,
        receipt: TransactionReceipt,
        ids: &[MessageId],
        timeout: Duration,
    ) -> Result<DeliveryOutcome, EvmError> {
        let tx_hash = receipt.transaction_hash;
        let (Some(number), Some(hash)) = (receipt.block_number, receipt.block_hash) else {
            return Err(EvmError::BadResponse {
                call: "eth_getTransactionReceipt",
                detail: "receipt without block".into(),
            });
        };
        let block = BlockRef {
            number: number.as_u64(),
            hash: hash.0,
        };
        if receipt.status != Some(1u64.into()) {
            return Err(EvmError::Reverted {
                call: "processBatch",
                reason: format!("transaction {tx_hash:?} reverted"),
            });
        }
        // Final means: the finalized tag passed the block and the block is still ours.
        let started = Instant::now();
        loop {
            let finalized = self
                .client
                .inner()
                .get_block(BlockId::Number(BlockNumber::Finalized))
                .await
                .map_err(|e| EvmError::from_provider("eth_getBlockByNumber(finalized)", e))?
                .and_then(|b| b.number)
                .map(|n| n.as_u64())
                .unwrap_or(0);
            if finalized >= block.number {
                let canonical = self
                    .client
                    .inner()
                    .get_block(BlockId::Number(BlockNumber::Number(number)))
                    .await
                    .map_err(|e| EvmError::from_provider("eth_getBlockByNumber", e))?
                    .and_then(|b| b.hash);
                if canonical != Some(hash) {
                    return Err(EvmError::Reorg {
                        number: block.number,
                        expected: hash,
                        found: canonical,
                    });
                }
                break;
            }
            if started.elapsed() >= timeout {
                return Err(EvmError::NotFinal {
                    tx: tx_hash,
                    waited_s: started.elapsed().as_secs(),
                });
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }

        let inbox = self.inbox.address();
        let mut outcomes: Vec<(MessageId, MessageOutcome)> = Vec::with_capacity(ids.len());
        for log in receipt.logs.iter().filter(|l| l.address == inbox) {
            let raw = ethers::abi::RawLog {
                topics: log.topics.clone(),
                data: log.data.to_vec(),
            };
            let Ok(event) = InboxEvents::decode_log(&raw) else {
                continue;
            };
            let (id, outcome) = match event {
                InboxEvents::MessageDeliveredFilter(e) => (e.id, MessageOutcome::Delivered),
                InboxEvents::MessageHandlerFailedFilter(e) => {
                    (e.id, MessageOutcome::HandlerFailed(revert_text(&e.reason)))
                }
                // The one skip reason: the message ended before.
                InboxEvents::MessageSkippedFilter(e) => (e.id, MessageOutcome::AlreadyDelivered),
                InboxEvents::MessageExpiredFilter(e) => (e.id, MessageOutcome::Expired),
                InboxEvents::MessageRefusedFilter(e) => (
                    e.id,
                    MessageOutcome::Refused(isthmus_protocol::result_text(&e.code)),
                ),
                InboxEvents::MessageHeldFilter(e) => (
                    e.id,
                    MessageOutcome::Held(isthmus_protocol::result_text(&e.reason)),
                ),
                _ => continue,
            };
            outcomes.push((MessageId(id), outcome));
        }
        for id in ids {
            if !outcomes.iter().any(|(o, _)| o == id) {
                return Err(EvmError::BadResponse {
                    call: "eth_getTransactionReceipt",
                    detail: format!("no Inbox event for message {id} in {tx_hash:?}"),
                });
            }
        }
        Ok(DeliveryOutcome {
            tx_hash,
            block,
            gas_used: receipt.gas_used.map(|g| g.as_u64()).unwrap_or(0),
            gas_price: receipt
                .effective_gas_price
                .map(|p| p.as_u128())
                .unwrap_or(0),
            outcomes,
        })
    }
}

/// A revert payload as text: `Error(string)` decoded, anything else as hex.
fn revert_text(reason: &[u8]) -> String {
    if reason.len() >= 4 && reason[..4] == [0x08, 0xc3, 0x79, 0xa0] {
        if let Ok(tokens) = ethers::abi::decode(&[ethers::abi::ParamType::String], &reason[4..]) {
            if let Some(ethers::abi::Token::String(s)) = tokens.into_iter().next() {
                return s;
            }
        }
    }
    if let Ok(text) = std::str::from_utf8(reason) {
        if !text.is_empty() && text.chars().all(|c| !c.is_control()) {
            return text.to_owned();
        }
    }
    format!("0x{}", hex::encode(reason))
}

/// The Inbox's checkpoint argument and signatures for `batch`.
fn call_parts(batch: &Batch) -> (contracts::inbox::Checkpoint, Vec<Bytes>) {
    let cp = batch.checkpoint;
    let checkpoint = contracts::inbox::Checkpoint {
        origin: cp.origin,
        outbox: cp.outbox.0,
        root: cp.root,
        count: cp.count,
        block_number: cp.block_number,
        block_hash: cp.block_hash,
    };
    let signatures = batch
        .attestations
        .iter()
        .map(|a| Bytes::from(a.0.to_vec()))
        .collect();
    (checkpoint, signatures)
}

/// Whether a failed estimate says the call needs more gas than a block holds (the
/// node's binary search ran out of the block's gas: "gas required exceeds allowance").
fn exceeds_block(e: &EvmError) -> bool {
    let text = e.to_string().to_ascii_lowercase();
    text.contains("exceeds allowance") || text.contains("exceeds block gas limit")
}

/// Why one message can never be delivered as things stand.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unfit {
    /// Its delivery alone needs more gas than the route allows.
    OverCap {
        /// Gas its delivery needs, by simulation.
        needs: u64,
        /// The route's `max_message_gas`.
        cap: u64,
    },
    /// Its delivery alone needs more gas than a block of the ledger holds.
    OverBlock {
        /// Gas its delivery needs, where the simulation could tell.
        needs: Option<u64>,
        /// The ledger's block gas limit.
        block_gas_limit: u64,
    },
}

impl std::fmt::Display for Unfit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::OverCap { needs, cap } => write!(
                f,
                "its delivery needs {needs} gas, more than the route's max_message_gas of {cap}; \
                 raise the cap (or ask the recipient to need less), then `isthmus retry`"
            ),
            Self::OverBlock {
                needs: Some(needs),
                block_gas_limit,
            } => write!(
                f,
                "its delivery needs {needs} gas, more than a block of the destination holds \
                 ({block_gas_limit}); no submission can deliver it"
            ),
            Self::OverBlock {
                needs: None,
                block_gas_limit,
            } => write!(
                f,
                "its delivery needs more gas than a block of the destination holds \
                 ({block_gas_limit}); no submission can deliver it"
            ),
        }
    }
}

/// What simulating one message's delivery alone showed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Simulated {
    /// It needs this much gas.
    Gas(u64),
    /// The node's search ran out of the block's gas.
    OverBlock,
    /// It reverts (replay, expiry, a refusal the batch reports): not judged here.
    Reverts,
}

impl Simulated {
    /// Whether the message is unfit under `cap` and a block of `block_gas_limit`.
    fn judge(self, cap: Option<u64>, block_gas_limit: u64) -> Option<Unfit> {
        match self {
            Self::Gas(needs) if needs > block_gas_limit => Some(Unfit::OverBlock {
                needs: Some(needs),
                block_gas_limit,
            }),
            Self::Gas(needs) => match cap {
                Some(cap) if needs > cap => Some(Unfit::OverCap { needs, cap }),
                _ => None,
            },
            Self::OverBlock => Some(Unfit::OverBlock {
                needs: None,
                block_gas_limit,
            }),
            Self::Reverts => None,
        }
    }
}

/// Turns a contract error into an [`EvmError`], decoding the Inbox's custom errors.
pub(crate) fn contract_error<M: Middleware>(call: &'static str, err: ContractError<M>) -> EvmError {
    if let Some(decoded) = err
        .as_revert()
        .and_then(|data| InboxErrors::decode(data).ok())
    {
        return EvmError::Reverted {
            call,
            reason: format!("{decoded:?}"),
        };
    }
    match err {
        ContractError::Revert(data) => EvmError::Reverted {
            call,
            reason: revert_text(&data),
        },
        ContractError::ProviderError { e } => EvmError::from_provider(call, e),
        ContractError::MiddlewareError { e } => EvmError::Transient {
            call,
            detail: e.to_string(),
        },
        other => EvmError::BadResponse {
            call,
            detail: other.to_string(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Block gas of the devnet and the Inbox's gas per message there (echo recipient).
    const BLOCK: u64 = 30_000_000;
    const PER_MESSAGE: u64 = 59_940;

    fn fit(samples: &[u64]) -> GasFit {
        let mut fit = GasFit::default();
        for per_message in samples {
            fit.record(BLOCK, per_message * 100, 100);
        }
        fit
    }

    /// The gas limit of a batch of `size` (the estimate plus 10 %).
    fn limit(size: u32, per_message: u64) -> u64 {
        u64::from(size) * per_message * 110 / 100
    }

    #[test]
    fn a_message_is_unfit_over_the_cap_or_the_block_and_judged_only_when_measured() {
        let block = 30_000_000;
        assert_eq!(Simulated::Gas(400_000).judge(None, block), None);
        assert_eq!(Simulated::Gas(400_000).judge(Some(400_000), block), None);
        assert_eq!(
            Simulated::Gas(400_001).judge(Some(400_000), block),
            Some(Unfit::OverCap {
                needs: 400_001,
                cap: 400_000
            })
        );
        // The block wins over a cap above it.
        assert_eq!(
            Simulated::Gas(31_000_000).judge(Some(40_000_000), block),
            Some(Unfit::OverBlock {
                needs: Some(31_000_000),
                block_gas_limit: block
            })
        );
        assert_eq!(
            Simulated::OverBlock.judge(None, block),
            Some(Unfit::OverBlock {
                needs: None,
                block_gas_limit: block
            })
        );
        assert_eq!(Simulated::Reverts.judge(Some(1), block), None);
        let text = Unfit::OverCap {
            needs: 5_919_309,
            cap: 1_000_000,
        }
        .to_string();
        assert!(
            text.contains("5919309") && text.contains("max_message_gas"),
            "{text}"
        );
    }

    #[test]
    fn before_any_estimate_batches_are_as_asked() {
        let fit = GasFit::default();
        assert_eq!(fit.batch_for(128, 10), 128);
        assert_eq!(fit.batch_for(5, 10), 5);
        assert_eq!(fit.batch_for(0, 10), 1);
    }

    #[test]
    fn whole_batches_fill_a_block() {
        let fit = fit(&[PER_MESSAGE]);
        // 128 asked: three batches of 128 would leave a quarter of each block empty;
        // four of 112 fill it.
        assert_eq!(fit.batch_for(128, 10), 112);
        assert!(4 * limit(112, PER_MESSAGE) <= BLOCK);
        assert_eq!(fit.batch_for(112, 10), 112);
        // More than a block's worth is cut to one block.
        assert_eq!(fit.batch_for(1_000, 10), 450);
        assert!(limit(450, PER_MESSAGE) <= BLOCK);
        // Whatever is asked, the answer fits, and its whole batches leave less than
        // one batch's worth of a message each (plus the 1 % spare) of a block unused.
        for requested in 1..=1_000u32 {
            let size = fit.batch_for(requested, 10);
            assert!((1..=requested).contains(&size), "{requested} -> {size}");
            let per_block = BLOCK / limit(size, PER_MESSAGE);
            assert!(per_block >= 1, "{requested} -> {size} does not fit a block");
            let unused = BLOCK - per_block * limit(size, PER_MESSAGE);
            assert!(
                unused <= per_block * limit(1, PER_MESSAGE) + BLOCK / 100
                    || u64::from(size) == u64::from(requested),
                "{requested} -> {size}: {per_block} batches leave {unused} of {BLOCK}"
            );
        }
    }

    #[test]
    fn the_heaviest_recent_estimate_sizes_batches() {
        // A batch whose messages another member already delivered is cheap; one cheap
        // estimate must not make the next batches too large for four per block.
        let mut fit = fit(&[PER_MESSAGE, 20_000]);
        assert_eq!(fit.batch_for(128, 10), 112);
        // A heavier recipient: two batches of 67 per block.
        fit.record(BLOCK, 200_000 * 50, 50);
        assert_eq!(fit.batch_for(128, 10), 67);
        assert!(2 * limit(67, 200_000) <= BLOCK);
        // Old samples age out.
        for _ in 0..GAS_SAMPLES {
            fit.record(BLOCK, PER_MESSAGE * 100, 100);
        }
        assert_eq!(fit.batch_for(128, 10), 112);
    }

    #[test]
    fn a_batch_too_large_for_a_block_halves_the_next_until_an_estimate_succeeds() {
        let mut first = GasFit::default();
        first.record_too_large(BLOCK, 128);
        assert_eq!(first.batch_for(128, 10), 64);
        first.record_too_large(BLOCK, 8);
        assert_eq!(first.batch_for(128, 10), 4);
        first.record(BLOCK, 4 * 2_000_000, 4);
        // Fitted again: 2M gas a message, 13 per block.
        assert_eq!(first.batch_for(128, 10), 13);
        let mut fitted = fit(&[PER_MESSAGE]);
        fitted.record_too_large(BLOCK, 112);
        assert_eq!(fitted.batch_for(128, 10), 56);
        assert_eq!(fitted.batch_for(1, 10), 1);
    }
}
