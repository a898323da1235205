//! The ledgers a relayer talks to, behind the role each plays on a route.
//!
//! An EVM ledger is a source (its Outbox is scanned and its commitment proven
//! through the light client) and a destination (its Inbox receives deliveries).

use std::collections::BTreeMap;
use std::time::Duration;

use ethers::types::Address;
use isthmus_adapter_evm::source::Scanned;
use isthmus_adapter_evm::{
    BlockRef, Delivery, DeliveryOutcome, EvmDestination, EvmError, EvmSource,
};
use isthmus_config::{Finality, LedgerConfig};
use isthmus_light_client_evm::{
    AccountProof, EvmLightClient, Header, TrustedCheckpoint, Verified, B256,
};
use isthmus_protocol::MessageId;
use tokio::sync::Mutex;

use crate::verified::{CheckpointError, VerifiedCheckpoint};

/// Most headers kept for attesting to blocks below the light client's head (a peer
/// that is behind asks for an older checkpoint).
const VERIFIED_HEADER_CACHE: usize = 4096;

/// Why a ledger step failed.
#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    /// Chain IO failed.
    #[error(transparent)]
    Evm(#[from] EvmError),
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
