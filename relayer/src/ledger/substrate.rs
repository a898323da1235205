//! A Substrate ledger carrying the Isthmus pallet: `Dispatch` events of the pallet,
//! headers and GRANDPA justifications through `isthmus-light-client-grandpa` (the
//! outbox's root and count are committed in every header's digest), `process_batch`
//! on the pallet.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use async_trait::async_trait;
use isthmus_adapter_substrate::devnet::DevnetFinality;
use isthmus_adapter_substrate::{Destination as Inbox, SubmitKey, SubstrateClient, VerifiedOutbox};

/// What a Substrate ledger's deliveries are signed with.
pub enum Submitter<'a> {
    /// An sr25519 secret URI, mnemonic or seed.
    Secret(&'a str),
    /// A secp256k1 key, in process or in a PKCS#11 token: an ECDSA account.
    Ecdsa(std::sync::Arc<dyn isthmus_keys::EcdsaKey>),
}
use isthmus_light_client_grandpa::{AuthoritySet, FinalizedHeader, GrandpaJustification};
use isthmus_protocol::{ActiveSigners, Attestation, Batch, MessageId, SignerSetUpdate};
use isthmus_schema::{BlockRef, NewMessage};

use super::{Balance, Delivered, DeliveryRef, Destination, LedgerError, Observed, Source};
use crate::verified::VerifiedCheckpoint;

/// Most blocks one observer round reads events of.
const SCAN_RANGE: u64 = 200;

/// Where a Substrate ledger's GRANDPA justifications come from. Either way they are
/// verified by the light client against the authority set.
pub enum Justifier {
    /// The dev chain, which has no GRANDPA voters: justifications are signed here with
    /// the dev runtime's published genesis authority keys. Only reachable from a
    /// configuration that says `justifications = "devnet"`.
    Devnet(DevnetFinality),
}

impl Justifier {
    /// How checkpoints verified through this justifier say their finality was
    /// established.
    fn finality(&self) -> &'static str {
        match self {
            Self::Devnet(_) => "grandpa (devnet authority keys)",
        }
    }

    fn authority_set(&self) -> Result<AuthoritySet, LedgerError> {
        match self {
            Self::Devnet(d) => Ok(d.authority_set()?),
        }
    }

    fn justify(&self, number: u32, hash: [u8; 32]) -> Vec<u8> {
        match self {
            Self::Devnet(d) => d.justify(number, hash),
        }
    }
}

/// A Substrate ledger carrying the Isthmus pallet.
pub struct SubstrateLedger {
    name: String,
    id: u32,
    client: SubstrateClient,
    inbox: Inbox,
    justifier: Justifier,
    authorities: AuthoritySet,
}

impl SubstrateLedger {
    /// Connects to the nodes at `urls` (by preference, with failover, each attempt
    /// reported to `observer`); deliveries are signed with `submitter`: an sr25519
    /// secret, or a secp256k1 key (in a PKCS#11 token) for an ECDSA account. Errors
    /// name the submitter by `submitter_source`.
    pub async fn connect(
        name: &str,
        id: u32,
        urls: &[String],
        observer: Option<std::sync::Arc<dyn isthmus_endpoints::RpcObserver>>,
        submitter: Submitter<'_>,
        submitter_source: &str,
        justifier: Justifier,
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
        let authorities = justifier.authority_set()?;
        Ok(Self {
            name: name.to_owned(),
            id,
            client,
            inbox,
            justifier,
            authorities,
        })
    }

    fn refused(&self, reason: String) -> LedgerError {
        LedgerError::Refused {
            ledger: self.name.clone(),
            reason,
        }
    }

    fn block_number(&self, number: u64) -> Result<u32, LedgerError> {
        u32::try_from(number).map_err(|_| {
            self.refused(format!(
                "block number {number} does not fit a Substrate block number"
            ))
        })
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

    async fn finalized(&self) -> Result<BlockRef, LedgerError> {
        let (number, hash) = self.client.finalized_head().await?;
        Ok(BlockRef {
            number: u64::from(number),
            hash,
        })
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

    /// The header's bytes must hash to `block.hash`, a GRANDPA justification of that
    /// hash must verify against the authority set, and the header's digest then gives
    /// the root and count.
    async fn verify_checkpoint(&self, block: BlockRef) -> Result<VerifiedCheckpoint, LedgerError> {
        let finalized = Source::finalized(self).await?;
        if block.number > finalized.number {
            return Err(self.refused(format!(
                "block {} is not final here (finalized: {})",
                block.number, finalized.number
            )));
        }
        let number = self.block_number(block.number)?;
        let bytes = self.client.header_bytes(block.hash).await?;
        let header = isthmus_light_client_grandpa::Header::decode_exact(&bytes)
            .map_err(|e| self.refused(format!("header {number}: {e}")))?;
        if header.hash().0 != block.hash || header.number != number {
            return Err(self.refused(format!(
                "the node's header {} hashes to {}, not to the requested block",
                header.number,
                header.hash()
            )));
        }
        let justification =
            GrandpaJustification::decode_exact(&self.justifier.justify(number, block.hash))
                .map_err(|e| self.refused(format!("justification of block {number}: {e}")))?;
        let finality = justification
            .verify(&self.authorities)
            .map_err(|e| self.refused(format!("justification of block {number}: {e}")))?;
        let finalized = FinalizedHeader::new(header, finality)
            .map_err(|e| self.refused(format!("block {number}: {e}")))?;
        let outbox = VerifiedOutbox::from_digest(&finalized)
            .map_err(|e| self.refused(format!("block {number}: {e}")))?;
        Ok(VerifiedCheckpoint::from_substrate(
            self.id,
            &outbox,
            self.justifier.finality(),
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

    async fn delivered_among(&self, ids: &[MessageId]) -> Result<HashSet<MessageId>, LedgerError> {
        super::delivered_among(
            ids,
            |id| async move { Ok(self.inbox.is_delivered(&id).await?) },
        )
        .await
    }

    /// One lookup per id (the pallet has no event index).
    async fn find_deliveries(
        &self,
        ids: &[MessageId],
    ) -> Result<HashMap<MessageId, DeliveryRef>, LedgerError> {
        let mut found = HashMap::new();
        for id in ids {
            if let Some((number, hash, tx)) = self.inbox.find_delivery(id).await? {
                found.insert(
                    *id,
                    DeliveryRef {
                        tx_hash: tx,
                        block: BlockRef {
                            number: u64::from(number),
                            hash,
                        },
                    },
                );
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
        let receipt = self.inbox.update_signers(update, signatures).await?;
        Ok(DeliveryRef {
            tx_hash: receipt.tx_hash,
            block: isthmus_protocol::BlockRef {
                number: u64::from(receipt.block_number),
                hash: receipt.block_hash,
            },
        })
    }

    async fn balance(&self) -> Option<Balance> {
        self.inbox.free_balance().await.ok().map(Balance::Free)
    }
}
