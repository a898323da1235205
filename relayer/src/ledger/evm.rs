//! An EVM ledger: logs of the Outbox contract, headers and `eth_getProof` through
//! `isthmus-light-client-evm`, `processBatch` on the Inbox contract, and the Inbox's
//! `MessageDelivered` events as a delivery feed.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use ethers::types::Address;
use isthmus_adapter_evm::source::Scanned;
use isthmus_adapter_evm::{EvmDestination, EvmSource};
use isthmus_light_client_evm::{
    AccountProof, EvmLightClient, Header, TrustedCheckpoint, Verified, B256,
};
use isthmus_protocol::{Batch, MessageId};
use isthmus_schema::{BlockRef, NewMessage};
use tokio::sync::Mutex;

use super::{
    Balance, Delivered, DeliveryFeed, DeliveryRef, Destination, LedgerError, Observed,
    SeenDelivery, Source,
};
use crate::verified::VerifiedCheckpoint;

/// Most headers kept for attesting to blocks below the light client's head (a peer
/// that is behind asks for an older checkpoint).
const VERIFIED_HEADER_CACHE: usize = 4096;
/// Most blocks one `eth_getLogs` covers.
const SCAN_RANGE: u64 = 2_000;

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

/// An EVM ledger: source and destination roles plus its light client.
pub struct EvmLedger {
    name: String,
    id: u32,
    source: EvmSource,
    destination: EvmDestination,
    outbox: [u8; 20],
    confirmations: u64,
    client: Mutex<LightClientState>,
}

struct LightClientState {
    client: EvmLightClient,
    verified: BTreeMap<u64, Verified<Header>>,
}

impl EvmLedger {
    /// Connects to the nodes at `endpoints.urls`; deliveries are signed with
    /// `submitter`. The light client starts at block `start_at`, whose hash is taken
    /// from the node: with `finality = "finalized-tag"` the node's view of final
    /// blocks is trusted anyway, and every later header is checked by hash linkage
    /// from there. The caller starts a little below its stored progress, so
    /// checkpoints it and lagging peers still need are within the verified range
    /// after a restart.
    pub async fn connect(
        name: &str,
        id: u32,
        endpoints: &EvmEndpoints,
        submitter: &[u8; 32],
        start_at: u64,
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
        let start = source
            .block_ref(start_at)
            .await?
            .ok_or_else(|| LedgerError::BlockMissing {
                ledger: name.to_owned(),
                number: start_at,
            })?;
        let client = EvmLightClient::finalized_tag(TrustedCheckpoint {
            number: start.number,
            hash: B256(start.hash),
        });
        Ok(Self {
            name: name.to_owned(),
            id,
            source,
            destination,
            outbox: endpoints.outbox,
            confirmations: endpoints.confirmations,
            client: Mutex::new(LightClientState {
                client,
                verified: BTreeMap::new(),
            }),
        })
    }

    /// The node's final head, less `confirmations` blocks.
    async fn final_head(&self) -> Result<BlockRef, LedgerError> {
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

    fn refused(&self, reason: String) -> LedgerError {
        LedgerError::Refused {
            ledger: self.name.clone(),
            reason,
        }
    }

    async fn verified_header(&self, block: BlockRef) -> Result<Verified<Header>, LedgerError> {
        let mut state = self.client.lock().await;
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

    async fn block_ref(&self, number: u64) -> Result<Option<BlockRef>, LedgerError> {
        Ok(self.source.block_ref(number).await?)
    }

    async fn check_linkage(&self, cursor: BlockRef) -> Result<(), LedgerError> {
        // A reorg below the cursor is the adapter's `Reorg` (retryable: the node may
        // be catching up with the canonical chain).
        Ok(self.source.check_linkage(cursor).await?)
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

    async fn delivered_among(&self, ids: &[MessageId]) -> Result<HashSet<MessageId>, LedgerError> {
        super::delivered_among(ids, |id| async move {
            Ok(self.destination.is_delivered(id).await?)
        })
        .await
    }

    /// One log query for all of `ids`.
    async fn find_deliveries(
        &self,
        ids: &[MessageId],
    ) -> Result<HashMap<MessageId, DeliveryRef>, LedgerError> {
        Ok(self.destination.find_deliveries(ids).await?)
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
    async fn head(&self) -> Result<u64, LedgerError> {
        Ok(self.final_head().await?.number)
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
