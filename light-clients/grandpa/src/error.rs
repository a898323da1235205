use crate::{AuthorityId, BlockNumber, H256};

/// Everything that can make Substrate evidence unacceptable.
///
/// Nothing here is retryable in the IO sense: the same bytes fail the same way. A
/// caller that fetched the evidence from a node may fetch it again from another node.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Bytes did not decode as the named SCALE structure.
    #[error("cannot decode {what}: {source}")]
    Decode {
        /// The structure being decoded.
        what: &'static str,
        /// The codec's reason.
        source: parity_scale_codec::Error,
    },
    /// A structure decoded but bytes were left over (an honest encoder never does that).
    #[error("{remaining} trailing bytes after {what}")]
    TrailingBytes {
        /// The structure that was decoded.
        what: &'static str,
        /// How many bytes were left.
        remaining: usize,
    },
    /// An authority set must have at least one authority.
    #[error("authority set {set_id} is empty")]
    EmptyAuthoritySet {
        /// Its set id.
        set_id: u64,
    },
    /// Authorities vote with positive weight only.
    #[error("authority {id} has zero weight")]
    ZeroWeight {
        /// The authority.
        id: AuthorityId,
    },
    /// An authority listed twice would have its weight counted twice.
    #[error("authority {id} is listed twice")]
    DuplicateAuthority {
        /// The authority.
        id: AuthorityId,
    },
    /// The total weight does not fit in u64.
    #[error("total authority weight overflows u64")]
    WeightOverflow,
    /// The justification finalizes another block than the one presented.
    #[error("justification targets #{got_number} {got_hash}, expected #{expected_number} {expected_hash}")]
    TargetMismatch {
        /// Hash of the block the justification should finalize.
        expected_hash: H256,
        /// Its number.
        expected_number: BlockNumber,
        /// Hash the commit targets.
        got_hash: H256,
        /// Number the commit targets.
        got_number: BlockNumber,
    },
    /// A precommit is signed by a key that is not in the authority set.
    #[error("precommit {index} is signed by {id}, not a member of set {set_id}")]
    UnknownVoter {
        /// Position of the precommit in the commit.
        index: usize,
        /// The signer.
        id: AuthorityId,
        /// The set it was checked against.
        set_id: u64,
    },
    /// A precommit repeats one of the same voter, or a voter casts more than two
    /// (an equivocation is exactly two different votes).
    #[error("precommit {index} by {id} is a duplicate vote")]
    DuplicatePrecommit {
        /// Position of the precommit in the commit.
        index: usize,
        /// The voter.
        id: AuthorityId,
    },
    /// A precommit signature does not verify.
    #[error("precommit {index} has an invalid signature")]
    InvalidSignature {
        /// Position of the precommit in the commit.
        index: usize,
    },
    /// A precommit votes for a block that is not the commit target or a descendant of
    /// it proved by the ancestry headers.
    #[error("precommit {index} does not descend from the commit target")]
    PrecommitNotDescendant {
        /// Position of the precommit in the commit.
        index: usize,
    },
    /// The justification carries an ancestry header that no precommit needs (or the
    /// same header twice).
    #[error("ancestry header {hash} is not used by any precommit")]
    UnusedAncestry {
        /// The header's hash.
        hash: H256,
    },
    /// The distinct voters' weight does not reach the threshold.
    #[error("precommits carry weight {signed}, threshold is {threshold}")]
    InsufficientWeight {
        /// Weight of distinct valid voters.
        signed: u64,
        /// Weight needed (more than two thirds of the total).
        threshold: u64,
    },
    /// The tracker already finalized this height or a later one.
    #[error("block #{number} is not after the last finalized #{finalized}")]
    NotNewer {
        /// The block presented.
        number: BlockNumber,
        /// The tracker's finalized number.
        finalized: BlockNumber,
    },
    /// A header announces an authority-set change while another one is pending, or
    /// carries more than one (the runtime never does either).
    #[error("block #{number} announces an authority-set change while another is pending")]
    OverlappingChange {
        /// The announcing block.
        number: BlockNumber,
    },
    /// A forced change can only be followed above its `median_last_finalized` block.
    #[error("block #{number} is at or below the forced change base #{median}")]
    BelowForcedChangeBase {
        /// The block presented.
        number: BlockNumber,
        /// The change's base.
        median: BlockNumber,
    },
    /// A finality proof carries no header to finalize.
    #[error("the finality proof carries no header")]
    EmptyChain,
    /// A header of a finality proof does not extend the chain before it.
    #[error("header #{number} does not extend the finalized chain (its parent must be {expected_parent})")]
    BrokenLink {
        /// The header that does not link.
        number: BlockNumber,
        /// The hash its parent must have.
        expected_parent: H256,
    },
    /// A finality proof passes over the block that enacts an authority-set change:
    /// that block's own justification (by the outgoing set) is mandatory.
    #[error("block #{number} enacts authority set {set_id}: its own justification is mandatory, and the proof passes over it")]
    MandatoryJustification {
        /// The enacting block.
        number: BlockNumber,
        /// The set it starts.
        set_id: u64,
    },
    /// A finality proof's justification is for another block than the proof's last header.
    #[error("the finality proof names block {named}, its justification finalizes {justified}")]
    ProofMismatch {
        /// The block the proof names.
        named: H256,
        /// The block its justification finalizes.
        justified: H256,
    },
    /// A stored tracker state does not decode or is inconsistent.
    #[error("stored tracker state: {reason}")]
    BadState {
        /// What is wrong.
        reason: &'static str,
    },
    /// A checkpoint's authority set has pending changes this tracker cannot resume.
    #[error("checkpoint carries pending authority-set changes")]
    UnsupportedCheckpoint,
    /// A trie node or value needed for the lookup is not in the proof.
    #[error("trie proof lacks node {hash}")]
    MissingTrieNode {
        /// Hash of the missing node or value.
        hash: H256,
    },
    /// A trie node in the proof does not follow the Substrate node codec.
    #[error("invalid trie node: {reason}")]
    InvalidTrieNode {
        /// What is wrong.
        reason: &'static str,
    },
}
