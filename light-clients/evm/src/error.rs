//! The crate's error type: one variant per reason evidence is refused.

use crate::types::{Address, B256};
use crate::FinalityMode;

/// Why an RLP encoding was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RlpError {
    /// The input ended inside an item.
    #[error("truncated RLP input")]
    Truncated,
    /// The item has a valid but non-canonical encoding (a single low byte in a
    /// string header, a long-form length that fits the short form, a length or
    /// scalar with leading zero bytes).
    #[error("non-canonical RLP encoding")]
    NonCanonical,
    /// Bytes remain after the outermost item.
    #[error("trailing bytes after the RLP item")]
    TrailingBytes,
    /// A list was expected and a byte string was found.
    #[error("expected an RLP list")]
    ExpectedList,
    /// A byte string was expected and a list was found.
    #[error("expected an RLP byte string")]
    ExpectedBytes,
    /// A fixed-size byte string has the wrong length.
    #[error("expected {expected} bytes, found {found}")]
    WrongLength {
        /// The required length.
        expected: usize,
        /// The length found.
        found: usize,
    },
    /// A length or scalar does not fit its type.
    #[error("RLP length or scalar overflows")]
    Overflow,
}

/// Everything this light client can refuse, precise enough to be recorded as the
/// reason a piece of evidence was not accepted.
///
/// Every error is deterministic (the same bytes are refused the same way), so none
/// is retryable: see [`Error::is_retryable`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The outer RLP structure is malformed.
    #[error("malformed RLP: {0}")]
    Rlp(RlpError),
    /// A header's RLP list has a number of fields no fork defines.
    #[error("header has {0} fields; expected 15 (frontier), 16 (london), 17 (shanghai), 20 (cancun) or 21 (prague)")]
    HeaderFieldCount(usize),
    /// One header field is malformed (wrong type, wrong length, non-canonical).
    #[error("header field `{field}`: {source}")]
    HeaderField {
        /// The field's name as in the JSON-RPC block object.
        field: &'static str,
        /// What is wrong with it.
        source: RlpError,
    },
    /// A JSON-RPC block object is missing a required field.
    #[error("JSON header is missing `{0}`")]
    MissingJsonField(&'static str),
    /// A JSON-RPC field is not valid 0x-prefixed hex of the right size.
    #[error("JSON header field `{0}` is not valid hex of the expected size")]
    InvalidJsonField(&'static str),
    /// A later fork's field is present while an earlier fork's field is absent.
    #[error("fork fields out of order: `{present}` is present but `{missing}` is absent")]
    ForkFieldsOutOfOrder {
        /// The later field present.
        present: &'static str,
        /// The earlier field missing.
        missing: &'static str,
    },
    /// The JSON object's `hash` differs from the hash recomputed from its fields.
    #[error("claimed block hash {claimed} differs from computed {computed}")]
    ClaimedHashMismatch {
        /// The hash the node claimed.
        claimed: B256,
        /// The hash recomputed from the header.
        computed: B256,
    },

    /// No headers were supplied.
    #[error("empty header sequence")]
    EmptyHeaderChain,
    /// A header's number does not follow its predecessor's.
    #[error("expected block number {expected}, found {found}")]
    NonSequentialNumber {
        /// The number that would link.
        expected: u64,
        /// The number found.
        found: u64,
    },
    /// A header's parent hash is not its predecessor's hash.
    #[error("block {number}: parent hash {found} is not the predecessor's hash {expected}")]
    ParentHashMismatch {
        /// The header's number.
        number: u64,
        /// The predecessor's hash.
        expected: B256,
        /// The header's parentHash.
        found: B256,
    },
    /// A checkpoint header does not hash to the trusted checkpoint.
    #[error("checkpoint header does not match the trusted checkpoint (number {number})")]
    CheckpointMismatch {
        /// The trusted checkpoint's number.
        number: u64,
    },

    /// The proof ended before reaching the key's value or a proof of its absence.
    #[error("proof ends before the key's path is resolved")]
    ProofTooShort,
    /// Nodes remain after the key's path was resolved.
    #[error("proof has {0} unused trailing node(s)")]
    UnusedProofNodes(usize),
    /// A proof node does not hash to the reference its parent (or the root) holds.
    #[error("proof node at depth {depth} does not match its reference")]
    ProofNodeHashMismatch {
        /// Index of the node in the walk (0 = root).
        depth: usize,
    },
    /// A proof node is not a valid trie node.
    #[error("malformed trie node at depth {depth}: {reason}")]
    MalformedTrieNode {
        /// Index of the node in the walk (0 = root).
        depth: usize,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The proven account differs from the values the node claimed for it.
    #[error("proven account differs from the claimed `{0}`")]
    ClaimedAccountMismatch(&'static str),
    /// The proven storage value differs from the value the node claimed.
    #[error("proven storage value of slot {slot} differs from the claimed value")]
    ClaimedStorageMismatch {
        /// The storage slot.
        slot: B256,
    },
    /// A storage proof was requested for a slot the response does not contain.
    #[error("storage slot {0} is not in the proof response")]
    StorageSlotNotInResponse(B256),

    /// extraData is too short to hold the consensus fields.
    #[error("extraData is {found} bytes; at least {required} required")]
    ExtraDataTooShort {
        /// The minimum length.
        required: usize,
        /// The length found.
        found: usize,
    },
    /// A Clique checkpoint's signer list is not a whole number of addresses.
    #[error("Clique checkpoint signer list is {0} bytes, not a multiple of 20")]
    InvalidCliqueSignerList(usize),
    /// A Clique non-checkpoint header carries signer bytes.
    #[error("Clique non-checkpoint header carries signer bytes")]
    UnexpectedCliqueSigners,
    /// A Clique checkpoint lists signers different from the tracked set.
    #[error("Clique checkpoint at block {0} lists a signer set different from the tracked one")]
    CliqueCheckpointSignersMismatch(u64),
    /// A Clique vote nonce is neither all-ones (authorise) nor all-zero (drop), or a
    /// vote appears on a checkpoint block.
    #[error("invalid Clique vote at block {0}")]
    InvalidCliqueVote(u64),
    /// A signature does not recover to a public key.
    #[error("invalid secp256k1 signature")]
    InvalidSignature,
    /// The recovered signer is not in the authorised set.
    #[error("signer {0} is not authorised")]
    UnauthorizedSigner(Address),
    /// The Clique signer signed one of the recent blocks it may not sign again yet.
    #[error("signer {0} signed too recently")]
    RecentlySigned(Address),
    /// The Clique difficulty does not match the signer's turn.
    #[error("difficulty {found} does not match the signer's turn (expected {expected})")]
    WrongDifficulty {
        /// 2 in turn, 1 out of turn.
        expected: u64,
        /// The difficulty found (saturated to u64).
        found: u64,
    },
    /// The BFT extraData is not a valid IBFT2/QBFT structure.
    #[error("invalid BFT extraData: {0}")]
    InvalidBftExtraData(&'static str),
    /// The validator set in the header differs from the tracked set.
    #[error("block {0}: validators in extraData differ from the tracked validator set")]
    ValidatorSetMismatch(u64),
    /// Two committed seals recover to the same validator.
    #[error("duplicate committed seal from {0}")]
    DuplicateSeal(Address),
    /// Fewer valid committed seals than the quorum.
    #[error("{found} committed seal(s) from validators; quorum is {required}")]
    InsufficientSeals {
        /// ceil(2n/3) of the validator set.
        required: usize,
        /// Distinct validators that sealed.
        found: usize,
    },
    /// The consensus state is unusable (for example an empty validator set).
    #[error("invalid consensus state: {0}")]
    InvalidConsensusState(&'static str),
    /// A BFT header field that the protocol fixes has another value.
    #[error("block {number}: `{field}` does not have the value the BFT protocol fixes")]
    BftConstantField {
        /// The header's number.
        number: u64,
        /// The field's name as in the JSON-RPC block object.
        field: &'static str,
    },
    /// An IBFT 1.0 vote nonce is neither all-ones (add) nor all-zero (drop).
    #[error("block {0}: vote nonce is neither 0xff..ff nor 0x00..00")]
    InvalidVoteNonce(u64),

    /// The consensus schedule is unusable.
    #[error("invalid consensus schedule: {0}")]
    InvalidConfig(ConfigError),
    /// No rule of the schedule covers the block (it precedes the first rule).
    #[error("no consensus rule covers block {0}")]
    NoRuleForBlock(u64),
    /// The validators given for a checkpoint differ from those its header lists.
    #[error("block {0}: the given validators differ from those the checkpoint header lists")]
    CheckpointValidatorsMismatch(u64),
    /// A Clique checkpoint that is not an epoch block needs its signers given.
    #[error("block {0}: a Clique checkpoint that is not an epoch block needs its signers given")]
    MissingCheckpointValidators(u64),
    /// A stored state was written by an unknown version of this crate.
    #[error("stored client state has version {found}; this build reads version {supported}")]
    UnsupportedStateVersion {
        /// The version found.
        found: u32,
        /// The version this build reads and writes.
        supported: u32,
    },
    /// A stored state's protocol is not the one the schedule has for the next
    /// block.
    #[error("stored client state follows {state:?} with epoch {state_epoch}; the schedule has {config:?} with epoch {config_epoch} for block {next}")]
    StateProtocolMismatch {
        /// The block after the stored head.
        next: u64,
        /// The stored protocol.
        state: FinalityMode,
        /// The stored epoch.
        state_epoch: u64,
        /// The schedule's protocol for `next`.
        config: FinalityMode,
        /// The schedule's epoch for `next`.
        config_epoch: u64,
    },
}

/// Why a consensus schedule ([`crate::ConsensusConfig`]) was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// The schedule has no rule.
    #[error("the schedule is empty")]
    Empty,
    /// Rules are not in strictly increasing `from_block` order.
    #[error("rule from block {next} does not come after the rule from block {previous}")]
    Unsorted {
        /// The earlier rule's first block.
        previous: u64,
        /// The later rule's first block.
        next: u64,
    },
    /// A consensus rule has epoch 0.
    #[error("the rule from block {0} has epoch 0")]
    ZeroEpoch(u64),
    /// The finalized-tag mode is combined with a consensus protocol.
    #[error("the finalized-tag mode cannot be combined with other rules")]
    FinalizedTagMixed,
    /// A transition between Clique and a BFT protocol, which is not supported.
    #[error("the transition at block {0} between Clique and a BFT protocol is not supported")]
    CliqueTransition(u64),
}

impl Error {
    /// Whether repeating the same call could succeed. Always `false`: verification
    /// is a pure function of its inputs, so a refusal is final for that evidence
    /// (fetching different evidence is the caller's decision, not a retry).
    pub fn is_retryable(&self) -> bool {
        false
    }

    pub(crate) fn field(field: &'static str) -> impl FnOnce(RlpError) -> Error {
        move |source| Error::HeaderField { field, source }
    }
}
