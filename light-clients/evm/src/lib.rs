//! Pure verification of EVM execution-layer evidence.
//!
//! - [`Header`]: every fork's header (frontier through Prague), strict RLP
//!   decoding, encoding, the block hash, and the JSON-RPC block object.
//! - [`EvmLightClient`]: follows a header chain from a trusted checkpoint under a
//!   [`ConsensusConfig`], a schedule of protocols ([`FinalityMode`]: QBFT, IBFT
//!   2.0 and IBFT 1.0 committed seals, Clique signer seals, or the node's
//!   finalized tag) that may switch protocol at a block, and hands out
//!   [`Verified`] headers, which only it can construct. A refused batch names the
//!   block and the rule ([`Refusal`]).
//! - [`ClientState`]: the client's whole state as a JSON-friendly value, to store
//!   and [`EvmLightClient::resume`] from after a restart without re-verifying
//!   from the checkpoint.
//! - [`bft`], [`clique`]: the protocols' seal rules, usable on one header
//!   ([`bft::verify_seals`]); [`recover_address`]: secp256k1 recovery
//!   (libsecp256k1) for any 65-byte seal.
//! - [`trie`]: Merkle-Patricia proofs from `eth_getProof`, verified against a
//!   state root, including proofs of absence.
//!
//! Nothing here does IO: callers fetch the bytes, this crate says whether they
//! prove what they claim, and if not, an [`Error`] says why.

pub mod bft;
pub mod clique;
mod config;
mod error;
mod header;
mod recall;
mod rlp;
mod state;
pub mod trie;
mod types;
mod votes;

use std::sync::Arc;

pub use bft::BftKind;
pub use clique::CliqueConfig;
pub use config::{ConsensusConfig, ConsensusRule};
pub use error::{ConfigError, Error, RlpError};
pub use header::{Header, RpcHeader, FIELD_NAMES};
pub use state::{ClientState, RecentSigner, CLIENT_STATE_VERSION};
pub use trie::{Account, AccountProof, ProvenAccount};
pub use types::{
    keccak256, public_key_address, recover_address, recover_address_k256, Address, InvalidHex,
    B256, U256,
};
pub use votes::PendingVote;

/// How a ledger's headers become final: the protocol of one rule of the
/// [`ConsensusConfig`]. Persisted (in [`ClientState`] and with the evidence) as
/// its snake-case name; variants may be added, never renamed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FinalityMode {
    /// QBFT committed seals (Besu, GoQuorum): final once sealed by a quorum.
    Qbft,
    /// IBFT 2.0 committed seals (Besu): final once sealed by a quorum.
    Ibft2,
    /// IBFT 1.0 committed seals (GoQuorum "istanbul"): final once sealed by a
    /// quorum.
    Ibft1,
    /// Clique signer seals: authorised, not final; the caller adds confirmations.
    Clique,
    /// The node's `finalized` block tag, trusted without cryptographic evidence
    /// (development chains). Every result says so.
    FinalizedTag,
}

impl FinalityMode {
    /// The BFT protocol, if this is one.
    pub fn bft_kind(self) -> Option<BftKind> {
        match self {
            FinalityMode::Qbft => Some(BftKind::Qbft),
            FinalityMode::Ibft2 => Some(BftKind::Ibft2),
            FinalityMode::Ibft1 => Some(BftKind::Ibft1),
            FinalityMode::Clique | FinalityMode::FinalizedTag => None,
        }
    }

    /// The block hash of `header` under this protocol's rule: the BFT
    /// on-chain hash ([`bft::bft_block_hash`]), else keccak256 of the RLP.
    pub fn block_hash(self, header: &Header) -> Result<B256, Error> {
        match self.bft_kind() {
            Some(kind) => bft::bft_block_hash(kind, header),
            None => Ok(header.hash()),
        }
    }
}

impl From<BftKind> for FinalityMode {
    fn from(kind: BftKind) -> Self {
        match kind {
            BftKind::Qbft => FinalityMode::Qbft,
            BftKind::Ibft2 => FinalityMode::Ibft2,
            BftKind::Ibft1 => FinalityMode::Ibft1,
        }
    }
}

/// What a verified header's finality rests on. Persisted with the evidence, so a
/// record always says whether finality was proven or trusted, and by whom.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Finality {
    /// Proven by consensus signatures recovered from the header.
    Sealed {
        /// The consensus that sealed it.
        mode: FinalityMode,
        /// The signers recovered (the Clique signer, or the committing
        /// validators), sorted.
        signers: Vec<Address>,
        /// The validator (Clique: signer) set the seals were checked against,
        /// sorted. Consecutive headers sealed under the same set share one
        /// allocation.
        validators: Arc<[Address]>,
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TrustedCheckpoint {
    /// Block number.
    pub number: u64,
    /// Block hash (the on-chain hash, for BFT chains the seal-independent one).
    pub hash: B256,
}

/// Why [`EvmLightClient::verify_headers`] refused a batch: the header that broke
/// a rule, identified as the node served it, and the rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("block {number} ({hash}): {rule}")]
pub struct Refusal {
    /// The refused header's number (for an empty batch, the number expected).
    pub number: u64,
    /// The refused header's hash under the protocol's block-hash rule (keccak256
    /// of its RLP if its extraData cannot be read; zero for an empty batch).
    pub hash: B256,
    /// The rule it broke.
    pub rule: Error,
}

impl Refusal {
    /// Whether repeating the same call could succeed: never (see
    /// [`Error::is_retryable`]).
    pub fn is_retryable(&self) -> bool {
        self.rule.is_retryable()
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ConsensusState {
    FinalizedTag,
    Clique(clique::Snapshot),
    Bft(bft::BftState),
}

impl ConsensusState {
    /// The state a rule starts with, carrying `validators` over (none for the
    /// finalized-tag mode).
    fn enter(rule: &ConsensusRule, validators: Option<Arc<[Address]>>) -> Result<Self, Error> {
        let missing = Error::InvalidConsensusState("no validator set to carry over");
        Ok(match (rule.protocol, rule.protocol.bft_kind()) {
            (FinalityMode::FinalizedTag, _) => ConsensusState::FinalizedTag,
            (_, Some(kind)) => ConsensusState::Bft(bft::BftState::new(
                kind,
                rule.epoch,
                validators.ok_or(missing)?,
            )?),
            (_, None) => ConsensusState::Clique(clique::Snapshot::new(
                rule.epoch,
                validators.ok_or(missing)?,
            )?),
        })
    }

    fn validators(&self) -> Option<Arc<[Address]>> {
        match self {
            ConsensusState::FinalizedTag => None,
            ConsensusState::Clique(s) => Some(Arc::clone(&s.signers)),
            ConsensusState::Bft(s) => Some(Arc::clone(&s.validators)),
        }
    }
}

/// Follows one ledger's header chain from a trusted checkpoint.
///
/// [`EvmLightClient::verify_headers`] accepts headers that extend the current head
/// one by one (number + 1, parentHash = head's hash) and satisfy the seal rules
/// of the protocol the [`ConsensusConfig`] has for their number; it is
/// all-or-nothing, so a refused batch leaves the client unchanged. The client is
/// always ready for the block after its head: when the schedule switches
/// protocol there, the switch (validators carried over, votes dropped) happens
/// as soon as the head reaches the block before.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EvmLightClient {
    config: ConsensusConfig,
    head: TrustedCheckpoint,
    /// The rule in force for `head.number + 1`.
    rule: ConsensusRule,
    state: ConsensusState,
}

impl EvmLightClient {
    /// A client starting at `checkpoint`, whose full header is `header`.
    ///
    /// The header must have the checkpoint's number and hash to its hash under
    /// the block-hash rule of the protocol in force at that block. The validator
    /// set comes from the header (BFT extraData; a Clique epoch block's signer
    /// list) and from `validators` when given; when both exist they must agree
    /// (as sets). A Clique checkpoint that is not an epoch block needs
    /// `validators`; its recent signers and pending votes start empty (see
    /// [`ClientState`] to resume without that loss). A BFT checkpoint's own vote
    /// is applied to an empty tally. The finalized-tag mode ignores
    /// `validators`.
    pub fn from_checkpoint(
        config: &ConsensusConfig,
        checkpoint: TrustedCheckpoint,
        header: &Header,
        validators: Option<Vec<Address>>,
    ) -> Result<Self, Error> {
        config.validate()?;
        let rule = *config
            .rule_at(checkpoint.number)
            .ok_or(Error::NoRuleForBlock(checkpoint.number))?;
        if header.number != checkpoint.number
            || rule.protocol.block_hash(header)? != checkpoint.hash
        {
            return Err(Error::CheckpointMismatch {
                number: checkpoint.number,
            });
        }
        let given = validators
            .map(|v| {
                bft::as_set(&v).ok_or(Error::InvalidConsensusState(
                    "the given validators repeat an address",
                ))
            })
            .transpose()?;
        let agree = |listed: Vec<Address>, given: Option<Vec<Address>>| match given {
            Some(g) if g != listed => Err(Error::CheckpointValidatorsMismatch(checkpoint.number)),
            _ => Ok(listed),
        };
        let state = match (rule.protocol, rule.protocol.bft_kind()) {
            (FinalityMode::FinalizedTag, _) => ConsensusState::FinalizedTag,
            (_, Some(kind)) => {
                let listed = bft::as_set(&bft::listed_validators(kind, header)?)
                    .ok_or(Error::ValidatorSetMismatch(checkpoint.number))?;
                let set = agree(listed, given)?;
                let mut state = bft::BftState::new(kind, rule.epoch, set.into())?;
                if header.number != 0 {
                    let opened = bft::open_header(kind, header)?;
                    state.apply_vote(header.number, opened.proposer, opened.vote);
                }
                ConsensusState::Bft(state)
            }
            (_, None) => {
                let set = if rule.epoch != 0 && header.number % rule.epoch == 0 {
                    let mut listed = clique::checkpoint_signers(header)?;
                    listed.sort();
                    listed.dedup();
                    agree(listed, given)?
                } else {
                    given.ok_or(Error::MissingCheckpointValidators(checkpoint.number))?
                };
                ConsensusState::Clique(clique::Snapshot::new(rule.epoch, set.into())?)
            }
        };
        let mut client = EvmLightClient {
            config: config.clone(),
            head: checkpoint,
            rule,
            state,
        };
        client.enter_next_rule()?;
        Ok(client)
    }

    /// A client that trusts the node's finalized tag: it checks hash linkage from
    /// the checkpoint, and marks every result [`Finality::TrustedFinalizedTag`].
    pub fn finalized_tag(checkpoint: TrustedCheckpoint) -> Self {
        let config = ConsensusConfig::single(FinalityMode::FinalizedTag, 1);
        EvmLightClient {
            rule: config.schedule[0],
            config,
            head: checkpoint,
            state: ConsensusState::FinalizedTag,
        }
    }

    /// A Clique client starting at `checkpoint`, whose full header (an epoch block,
    /// so it lists the signers) is `header`. Shorthand for
    /// [`EvmLightClient::from_checkpoint`] with one Clique rule.
    pub fn clique(
        checkpoint: TrustedCheckpoint,
        header: &Header,
        config: CliqueConfig,
    ) -> Result<Self, Error> {
        let config = ConsensusConfig::single(FinalityMode::Clique, config.epoch);
        Self::from_checkpoint(&config, checkpoint, header, None)
    }

    /// A BFT client starting at `checkpoint`, whose full header is `header`; the
    /// validator set is read from its extraData. `epoch_length` is the chain's
    /// `epochlength` (Besu's default is 30000). Shorthand for
    /// [`EvmLightClient::from_checkpoint`] with one rule.
    pub fn bft(
        kind: BftKind,
        checkpoint: TrustedCheckpoint,
        header: &Header,
        epoch_length: u64,
    ) -> Result<Self, Error> {
        let config = ConsensusConfig::single(kind.into(), epoch_length);
        Self::from_checkpoint(&config, checkpoint, header, None)
    }

    /// Resumes from a stored [`ClientState`] under `config`, exactly where the
    /// client that wrote it stood. Refused: an unknown version, a protocol or
    /// epoch other than the schedule's for the block after the head, and a state
    /// that is not internally consistent (empty or repeated validators, votes
    /// that the protocol would already have applied or never counted, recent
    /// signers outside Clique or after the head).
    pub fn resume(config: &ConsensusConfig, state: ClientState) -> Result<Self, Error> {
        config.validate()?;
        state::restore(config, state)
    }

    /// The client's state, to store and [`EvmLightClient::resume`] from.
    pub fn state(&self) -> ClientState {
        state::capture(self)
    }

    /// The protocol that verifies the next header.
    pub fn mode(&self) -> FinalityMode {
        self.rule.protocol
    }

    /// The schedule rule that verifies the next header.
    pub fn rule(&self) -> ConsensusRule {
        self.rule
    }

    /// The last verified block.
    pub fn head(&self) -> TrustedCheckpoint {
        self.head
    }

    /// The current signer (Clique) or validator (BFT) set, sorted; empty for the
    /// finalized-tag mode.
    pub fn authorities(&self) -> Vec<Address> {
        self.state
            .validators()
            .map(|v| v.to_vec())
            .unwrap_or_default()
    }

    /// Verifies `headers`, which must extend the head in order, and advances the
    /// head to the last one. On any refusal nothing changes, and the [`Refusal`]
    /// names the first header that broke a rule. An empty batch is refused
    /// ([`Error::EmptyHeaderChain`]).
    pub fn verify_headers<I>(&mut self, headers: I) -> Result<Vec<Verified<Header>>, Refusal>
    where
        I: IntoIterator<Item = Header>,
    {
        let mut next = self.clone();
        let mut out = Vec::new();
        for header in headers {
            match next.step(&header) {
                Ok((hash, finality)) => out.push(Verified {
                    value: header,
                    hash,
                    finality,
                }),
                Err(rule) => {
                    return Err(Refusal {
                        number: header.number,
                        hash: next.served_hash(&header),
                        rule,
                    })
                }
            }
        }
        if out.is_empty() {
            return Err(Refusal {
                number: self.head.number.saturating_add(1),
                hash: B256::ZERO,
                rule: Error::EmptyHeaderChain,
            });
        }
        *self = next;
        Ok(out)
    }

    /// The hash a node reports for `header`: under the protocol in force at its
    /// number, falling back to keccak256 of its RLP.
    fn served_hash(&self, header: &Header) -> B256 {
        self.config
            .rule_at(header.number)
            .and_then(|r| r.protocol.block_hash(header).ok())
            .unwrap_or_else(|| header.hash())
    }

    /// Verifies one header extending the head and applies it.
    fn step(&mut self, header: &Header) -> Result<(B256, Finality), Error> {
        let expected = self
            .head
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
        if header.parent_hash != self.head.hash {
            return Err(Error::ParentHashMismatch {
                number: header.number,
                expected: self.head.hash,
                found: header.parent_hash,
            });
        }
        let (hash, finality) = match &mut self.state {
            ConsensusState::FinalizedTag => (header.hash(), Finality::TrustedFinalizedTag),
            ConsensusState::Clique(snap) => {
                let (signer, validators) = snap.apply(header)?;
                (
                    header.hash(),
                    Finality::Sealed {
                        mode: FinalityMode::Clique,
                        signers: vec![signer],
                        validators,
                    },
                )
            }
            ConsensusState::Bft(bft) => {
                let (hash, signers, validators) = bft.apply(header)?;
                (
                    hash,
                    Finality::Sealed {
                        mode: self.rule.protocol,
                        signers,
                        validators,
                    },
                )
            }
        };
        self.head = TrustedCheckpoint {
            number: header.number,
            hash,
        };
        self.enter_next_rule()?;
        Ok((hash, finality))
    }

    /// Switches to the rule for the block after the head if it differs:
    /// validators carry over, pending votes and recent signers are dropped.
    fn enter_next_rule(&mut self) -> Result<(), Error> {
        let next = self.head.number.saturating_add(1);
        let rule = *self
            .config
            .rule_at(next)
            .ok_or(Error::NoRuleForBlock(next))?;
        if rule != self.rule {
            self.state = ConsensusState::enter(&rule, self.state.validators())?;
            self.rule = rule;
        }
        Ok(())
    }
}
