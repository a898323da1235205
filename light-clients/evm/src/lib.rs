//! Pure verification of EVM execution-layer evidence.
//!
//! - [`Header`]: every fork's header (frontier through Prague), strict RLP
//!   decoding, encoding, the block hash, and the JSON-RPC block object.
//! - [`EvmLightClient`]: follows a header chain from a trusted checkpoint under a
//!   [`FinalityMode`] (QBFT or IBFT 2.0 committed seals, Clique signer seals, or
//!   the node's finalized tag) and hands out [`Verified`] headers, which only it
//!   can construct.
//! - [`trie`]: Merkle-Patricia proofs from `eth_getProof`, verified against a
//!   state root, including proofs of absence.
//!
//! Nothing here does IO: callers fetch the bytes, this crate says whether they
//! prove what they claim, and if not, an [`Error`] says why.

pub mod bft;
pub mod clique;
mod error;
mod header;
mod rlp;
pub mod trie;
mod types;

pub use bft::BftKind;
pub use clique::CliqueConfig;
pub use error::{Error, RlpError};
pub use header::{Header, RpcHeader, FIELD_NAMES};
pub use trie::{Account, AccountProof, ProvenAccount};
pub use types::{keccak256, public_key_address, recover_address, Address, InvalidHex, B256, U256};

/// How a ledger's headers become final, chosen per ledger in configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FinalityMode {
    /// QBFT committed seals (Besu, GoQuorum): final once sealed by a quorum.
    Qbft,
    /// IBFT 2.0 committed seals (Besu): final once sealed by a quorum.
    Ibft2,
    /// Clique signer seals: authorised, not final; the caller adds confirmations.
    Clique,
    /// The node's `finalized` block tag, trusted without cryptographic evidence
    /// (development chains). Every result says so.
    FinalizedTag,
}

/// What a verified header's finality rests on. Persisted with the evidence, so a
/// record always says whether finality was proven or trusted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Finality {
    /// Proven by consensus signatures recovered from the header.
    Sealed {
        /// The consensus that sealed it.
        mode: FinalityMode,
        /// The signers recovered (the Clique signer, or the committing validators).
        signers: Vec<Address>,
    },
    /// Trusted from the node's finalized tag; only the hash chain was checked.
    TrustedFinalizedTag,
}

/// A value this light client verified, with the block hash it is bound to and the
/// basis of its finality. Fields are private: only this crate constructs it, so a
/// `Verified` value cannot come from unverified data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified<T> {
    value: T,
    hash: B256,
    finality: Finality,
}

impl<T> Verified<T> {
    /// The verified value.
    pub fn value(&self) -> &T {
        &self.value
    }
    /// The block hash the value is bound to.
    pub fn block_hash(&self) -> B256 {
        self.hash
    }
    /// The basis of finality.
    pub fn finality(&self) -> &Finality {
        &self.finality
    }
    /// Whether finality was trusted from the node's finalized tag rather than proven.
    pub fn finality_trusted_from_tag(&self) -> bool {
        self.finality == Finality::TrustedFinalizedTag
    }
}

impl Verified<Header> {
    /// Verifies an `eth_getProof` response against this header's state root.
    pub fn verify_account_proof(
        &self,
        proof: &AccountProof,
    ) -> Result<Verified<ProvenAccount>, Error> {
        Ok(Verified {
            value: proof.verify(&self.value.state_root)?,
            hash: self.hash,
            finality: self.finality.clone(),
        })
    }
}

/// A block the operator trusts: the starting point of header-chain verification.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TrustedCheckpoint {
    /// Block number.
    pub number: u64,
    /// Block hash (the on-chain hash, for BFT chains the seal-independent one).
    pub hash: B256,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum ConsensusState {
    FinalizedTag,
    Clique(clique::Snapshot),
    Bft(bft::BftState),
}

/// Follows one ledger's header chain from a trusted checkpoint.
///
/// [`EvmLightClient::verify_headers`] accepts headers that extend the current head
/// one by one (number + 1, parentHash = head's hash) and satisfy the finality
/// mode's seal rules; it is all-or-nothing, so a refused batch leaves the client
/// unchanged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EvmLightClient {
    mode: FinalityMode,
    head: TrustedCheckpoint,
    state: ConsensusState,
}

impl EvmLightClient {
    /// A client that trusts the node's finalized tag: it checks hash linkage from
    /// the checkpoint, and marks every result [`Finality::TrustedFinalizedTag`].
    pub fn finalized_tag(checkpoint: TrustedCheckpoint) -> Self {
        EvmLightClient {
            mode: FinalityMode::FinalizedTag,
            head: checkpoint,
            state: ConsensusState::FinalizedTag,
        }
    }

    /// A Clique client starting at `checkpoint`, whose full header (an epoch block,
    /// so it lists the signers) is `header`.
    pub fn clique(
        checkpoint: TrustedCheckpoint,
        header: &Header,
        config: CliqueConfig,
    ) -> Result<Self, Error> {
        if header.number != checkpoint.number || header.hash() != checkpoint.hash {
            return Err(Error::CheckpointMismatch {
                number: checkpoint.number,
            });
        }
        Ok(EvmLightClient {
            mode: FinalityMode::Clique,
            head: checkpoint,
            state: ConsensusState::Clique(clique::Snapshot::from_checkpoint(config, header)?),
        })
    }

    /// A QBFT or IBFT 2.0 client starting at `checkpoint`, whose full header is
    /// `header`; the validator set is read from its extraData. `epoch_length` is
    /// the chain's `epochlength` (Besu's default is 30000).
    pub fn bft(
        kind: BftKind,
        checkpoint: TrustedCheckpoint,
        header: &Header,
        epoch_length: u64,
    ) -> Result<Self, Error> {
        if header.number != checkpoint.number
            || bft::bft_block_hash(kind, header)? != checkpoint.hash
        {
            return Err(Error::CheckpointMismatch {
                number: checkpoint.number,
            });
        }
        Ok(EvmLightClient {
            mode: match kind {
                BftKind::Qbft => FinalityMode::Qbft,
                BftKind::Ibft2 => FinalityMode::Ibft2,
            },
            head: checkpoint,
            state: ConsensusState::Bft(bft::BftState::from_checkpoint(kind, epoch_length, header)?),
        })
    }

    /// The finality mode.
    pub fn mode(&self) -> FinalityMode {
        self.mode
    }

    /// The last verified block.
    pub fn head(&self) -> TrustedCheckpoint {
        self.head
    }

    /// The current signer (Clique) or validator (BFT) set, sorted; empty for the
    /// finalized-tag mode.
    pub fn authorities(&self) -> Vec<Address> {
        match &self.state {
            ConsensusState::FinalizedTag => Vec::new(),
            ConsensusState::Clique(s) => s.signers(),
            ConsensusState::Bft(s) => s.validators(),
        }
    }

    /// Verifies `headers`, which must extend the head in order, and advances the
    /// head to the last one. On any error nothing changes.
    pub fn verify_headers<I>(&mut self, headers: I) -> Result<Vec<Verified<Header>>, Error>
    where
        I: IntoIterator<Item = Header>,
    {
        let mut state = self.state.clone();
        let mut head = self.head;
        let mut out = Vec::new();
        for header in headers {
            let expected = head
                .number
                .checked_add(1)
                .ok_or(Error::NonSequentialNumber {
                    expected: u64::MAX,
                    found: header.number,
                })?;
            if header.number != expected {
                return Err(Error::NonSequentialNumber {
                    expected,
                    found: header.number,
                });
            }
            if header.parent_hash != head.hash {
                return Err(Error::ParentHashMismatch {
                    number: header.number,
                    expected: head.hash,
                    found: header.parent_hash,
                });
            }
            let (hash, finality) = match &mut state {
                ConsensusState::FinalizedTag => (header.hash(), Finality::TrustedFinalizedTag),
                ConsensusState::Clique(snap) => {
                    let signer = snap.apply(&header)?;
                    (
                        header.hash(),
                        Finality::Sealed {
                            mode: FinalityMode::Clique,
                            signers: vec![signer],
                        },
                    )
                }
                ConsensusState::Bft(bft) => {
                    let (hash, signers) = bft.apply(&header)?;
                    (
                        hash,
                        Finality::Sealed {
                            mode: self.mode,
                            signers,
                        },
                    )
                }
            };
            head = TrustedCheckpoint {
                number: header.number,
                hash,
            };
            out.push(Verified {
                value: header,
                hash,
                finality,
            });
        }
        if out.is_empty() {
            return Err(Error::EmptyHeaderChain);
        }
        self.state = state;
        self.head = head;
        Ok(out)
    }
}
