//! The source role: what the Outbox did, with the evidence to prove it.

use std::time::Duration;

use ethers::contract::EthEvent;
use ethers::providers::{Middleware, Provider};
use ethers::types::{Address, BlockId, BlockNumber, Filter, Log, H256, U64};
use isthmus_protocol::{Message, MessageId};

use crate::contracts::DispatchFilter;
use crate::rpc::Failover;
use crate::{slot_key, EvmError, OUTBOX_COUNT_SLOT, OUTBOX_ROOT_SLOT};

pub use isthmus_protocol::BlockRef;

/// A message read from an Outbox `Dispatch` log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObservedMessage {
    /// The decoded message.
    pub message: Message,
    /// Its id (checked against the log's indexed id).
    pub id: MessageId,
    /// The block that holds the log.
    pub block: BlockRef,
    /// The dispatching transaction.
    pub tx_hash: H256,
    /// Position of the log in the block.
    pub log_index: u64,
}

/// One entry of a scan: a message, or a log that does not hold one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Scanned {
    /// A valid protocol message.
    Message(ObservedMessage),
    /// An Outbox log whose payload is not a valid message for this ledger; recorded as
    /// rejected with the reason, and the scan goes on.
    Rejected {
        /// Where the log is.
        block: BlockRef,
        /// The transaction that emitted it.
        tx_hash: H256,
        /// Position in the block.
        log_index: u64,
        /// Why it was refused.
        reason: String,
        /// The raw payload.
        raw: Vec<u8>,
    },
}

/// The Outbox's root and count at one block, with the `eth_getProof` response and
/// the block's JSON-RPC object (the header the proof is checked against).
#[derive(Clone, Debug)]
pub struct OutboxProof {
    /// The block the proof is for.
    pub block: BlockRef,
    /// The `eth_getProof` response, exactly as the node returned it: the account proof
    /// of the Outbox and the storage proofs of slots 0 (root) and 33 (count).
    pub proof_json: serde_json::Value,
    /// The block object as the node returned it (`eth_getBlockByNumber`, no txs).
    pub header_json: serde_json::Value,
}

/// Reads an Outbox on one EVM ledger.
#[derive(Clone, Debug)]
pub struct EvmSource {
    provider: Provider<Failover>,
    outbox: Address,
    ledger_id: u32,
}

impl EvmSource {
    /// A source reading the Outbox at `outbox` through the node at `url`.
    pub fn new(url: &str, outbox: Address, ledger_id: u32) -> Result<Self, EvmError> {
        let rpc = crate::rpc::failover_provider(&[url.to_owned()], crate::RPC_TIMEOUT, None)?;
        Ok(Self::over(rpc, outbox, ledger_id))
    }

    /// A source reading the Outbox at `outbox` through `rpc` (several endpoints).
    pub fn over(rpc: Provider<Failover>, outbox: Address, ledger_id: u32) -> Self {
        Self {
            provider: rpc.interval(Duration::from_millis(200)),
            outbox,
            ledger_id,
        }
    }

    /// The Outbox address.
    pub fn outbox(&self) -> Address {
        self.outbox
    }

    /// The underlying provider (for status and metrics).
    pub fn provider(&self) -> &Provider<Failover> {
        &self.provider
    }

    /// The node's finalized block.
    pub async fn finalized(&self) -> Result<BlockRef, EvmError> {
        self.block_at("eth_getBlockByNumber(finalized)", BlockNumber::Finalized)
            .await
    }

    /// The node's latest block.
    pub async fn latest(&self) -> Result<BlockRef, EvmError> {
        self.block_at("eth_getBlockByNumber(latest)", BlockNumber::Latest)
            .await
    }

    /// The canonical block at `number`, if the node has one.
    pub async fn block_ref(&self, number: u64) -> Result<Option<BlockRef>, EvmError> {
        let block = self
            .provider
            .get_block(BlockId::Number(BlockNumber::Number(number.into())))
            .await
            .map_err(|e| EvmError::from_provider("eth_getBlockByNumber", e))?;
        Ok(block.and_then(|b| {
            Some(BlockRef {
                number,
                hash: b.hash?.0,
            })
        }))
    }

    async fn block_at(&self, call: &'static str, tag: BlockNumber) -> Result<BlockRef, EvmError> {
        let block = self
            .provider
            .get_block(BlockId::Number(tag))
            .await
            .map_err(|e| EvmError::from_provider(call, e))?
            .ok_or_else(|| EvmError::BadResponse {
                call,
                detail: "no such block".into(),
            })?;
        match (block.number, block.hash) {
            (Some(n), Some(hash)) => Ok(BlockRef {
                number: n.as_u64(),
                hash: hash.0,
            }),
            _ => Err(EvmError::BadResponse {
                call,
                detail: "block without number or hash".into(),
            }),
        }
    }

    /// Fails with [`EvmError::Reorg`] if `cursor` is no longer canonical: the scan that
    /// produced it saw a chain the node has since abandoned.
    pub async fn check_linkage(&self, cursor: BlockRef) -> Result<(), EvmError> {
        let now = self.block_ref(cursor.number).await?;
        match now {
            Some(b) if b.hash == cursor.hash => Ok(()),
            other => Err(EvmError::Reorg {
                number: cursor.number,
                expected: H256(cursor.hash),
                found: other.map(|b| H256(b.hash)),
            }),
        }
    }

    /// The Outbox's messages in blocks `from..=to`, in chain order. The caller bounds
    /// the range (and keeps it at or below the finalized block).
    pub async fn scan(&self, from: u64, to: u64) -> Result<Vec<Scanned>, EvmError> {
        // Filters are scoped to the Outbox address: a Dispatch event of any other
        // contract must never be taken for ours.
        let filter = Filter::new()
            .address(self.outbox)
            .topic0(DispatchFilter::signature())
            .from_block(from)
            .to_block(to);
        let mut logs = self
            .provider
            .get_logs(&filter)
            .await
            .map_err(|e| EvmError::from_provider("eth_getLogs", e))?;
        logs.sort_by_key(|l| (l.block_number, l.log_index));
        logs.into_iter().map(|log| self.decode_log(log)).collect()
    }

    /// Decodes one log of a scan (no IO): a `Dispatch` of this Outbox, mined, whose
    /// payload is a v1 message with the indexed id and this ledger as origin, is a
    /// [`Scanned::Message`]; any other payload is [`Scanned::Rejected`] with the
    /// reason. A log without its block, transaction or index, or from another
    /// address, is an error: the node did not answer the filter that was asked.
    pub fn decode_log(&self, log: Log) -> Result<Scanned, EvmError> {
        let (block, tx_hash, log_index) = match (
            log.block_number,
            log.block_hash,
            log.transaction_hash,
            log.log_index,
        ) {
            (Some(n), Some(h), Some(tx), Some(i)) => (
                BlockRef {
                    number: n.as_u64(),
                    hash: h.0,
                },
                tx,
                i.as_u64(),
            ),
            _ => {
                return Err(EvmError::BadResponse {
                    call: "eth_getLogs",
                    detail:
                        "log without block, transaction or index (pending log in a final range)"
                            .into(),
                })
            }
        };
        if log.address != self.outbox || log.removed == Some(true) {
            return Err(EvmError::BadResponse {
                call: "eth_getLogs",
                detail: "log outside the filter".into(),
            });
        }
        let raw_log = ethers::abi::RawLog {
            topics: log.topics.clone(),
            data: log.data.to_vec(),
        };
        let event = match <DispatchFilter as EthEvent>::decode_log(&raw_log) {
            Ok(e) => e,
            Err(e) => {
                return Ok(Scanned::Rejected {
                    block,
                    tx_hash,
                    log_index,
                    reason: format!("Dispatch log does not decode: {e}"),
                    raw: log.data.to_vec(),
                })
            }
        };
        let raw = event.message.to_vec();
        let reject = |reason: String| Scanned::Rejected {
            block,
            tx_hash,
            log_index,
            reason,
            raw: raw.clone(),
        };
        let message = match Message::decode(&raw) {
            Ok(m) => m,
            Err(e) => return Ok(reject(format!("not a v1 message: {e}"))),
        };
        let id = message.id();
        if id.0 != event.id {
            return Ok(reject(format!(
                "indexed id {} differs from the message's id {id}",
                H256(event.id)
            )));
        }
        if message.origin != self.ledger_id {
            return Ok(reject(format!(
                "origin {} is not this ledger ({})",
                message.origin, self.ledger_id
            )));
        }
        Ok(Scanned::Message(ObservedMessage {
            message,
            id,
            block,
            tx_hash,
            log_index,
        }))
    }

    /// The block object of `number` as the node returns it, for header verification.
    pub async fn header_json(&self, number: u64) -> Result<serde_json::Value, EvmError> {
        let value: serde_json::Value = self
            .provider
            .request("eth_getBlockByNumber", (U64::from(number), false))
            .await
            .map_err(|e| EvmError::from_provider("eth_getBlockByNumber", e))?;
        if value.is_null() {
            return Err(EvmError::BadResponse {
                call: "eth_getBlockByNumber",
                detail: format!("no block {number}"),
            });
        }
        Ok(value)
    }

    /// The Outbox's first nonce (its immutable `firstNonce`): 0, or the count of the
    /// Outbox it replaced, whose nonces it continues. A relayer builds the tree with
    /// zero leaves below it. The node's answer needs no proof: a wrong one gives a
    /// tree whose root differs from the proven root, so nothing is attested from it.
    pub async fn first_nonce(&self) -> Result<u64, EvmError> {
        self.outbox_contract()
            .first_nonce()
            .call()
            .await
            .map_err(|e| crate::destination::contract_error("firstNonce", e))
    }

    /// Whether this Outbox sent message `id` (its `sent` record is set).
    pub async fn sent(&self, id: [u8; 32]) -> Result<bool, EvmError> {
        let packed = self
            .outbox_contract()
            .sent(id)
            .call()
            .await
            .map_err(|e| crate::destination::contract_error("sent", e))?;
        Ok(!packed.is_zero())
    }

    /// The Outbox's bindings over this source's provider, for its view calls.
    fn outbox_contract(&self) -> crate::contracts::Outbox<Provider<Failover>> {
        crate::contracts::Outbox::new(self.outbox, std::sync::Arc::new(self.provider.clone()))
    }

    /// `eth_getProof` of the Outbox's root and count slots at `block`, with the header.
    pub async fn outbox_proof(&self, block: BlockRef) -> Result<OutboxProof, EvmError> {
        let proof_json: serde_json::Value = self
            .provider
            .request(
                "eth_getProof",
                (
                    self.outbox,
                    [slot_key(OUTBOX_ROOT_SLOT), slot_key(OUTBOX_COUNT_SLOT)],
                    U64::from(block.number),
                ),
            )
            .await
            .map_err(|e| EvmError::from_provider("eth_getProof", e))?;
        let header_json = self.header_json(block.number).await?;
        let hash_in_header = header_json
            .get("hash")
            .and_then(|h| h.as_str())
            .and_then(|h| h.parse::<H256>().ok());
        if hash_in_header != Some(H256(block.hash)) {
            // The block changed between the caller's read and ours: a reorg.
            return Err(EvmError::Reorg {
                number: block.number,
                expected: H256(block.hash),
                found: hash_in_header,
            });
        }
        Ok(OutboxProof {
            block,
            proof_json,
            header_json,
        })
    }
}
