//! GRANDPA authority sets, and the persisted authority set of light-sync checkpoints.

use alloc::collections::BTreeMap;
use alloc::vec::Vec;
use core::fmt;
use curve25519_dalek::edwards::{CompressedEdwardsY, EdwardsPoint};
use parity_scale_codec::{Decode, Encode};

use crate::header::decode_exact;
use crate::{BlockNumber, Error, H256};

/// A GRANDPA voter's ed25519 public key.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Encode, Decode)]
pub struct AuthorityId(pub [u8; 32]);

impl fmt::Debug for AuthorityId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl fmt::Display for AuthorityId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&H256(self.0), f)
    }
}

/// A validated GRANDPA authority set: its id and its voters with weights.
///
/// Invariants (checked by [`AuthoritySet::new`]): at least one authority, no zero
/// weight, no key twice, total weight fits in `u64`. They are what makes the
/// threshold meaningful: a key listed twice would count twice.
///
/// Each key is kept decompressed too (once, when the set is built), so verifying a
/// justification costs no more than a batch verification with keys decompressed
/// beforehand. A key that is no curve point is kept as `None`: its precommits can
/// never verify.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuthoritySet {
    set_id: u64,
    authorities: Vec<(AuthorityId, u64)>,
    weights: BTreeMap<AuthorityId, (u64, Option<EdwardsPoint>)>,
    total_weight: u64,
}

impl AuthoritySet {
    /// Validates and builds a set.
    pub fn new(set_id: u64, authorities: Vec<(AuthorityId, u64)>) -> Result<Self, Error> {
        if authorities.is_empty() {
            return Err(Error::EmptyAuthoritySet { set_id });
        }
        let mut weights = BTreeMap::new();
        let mut total_weight = 0u64;
        for (id, weight) in &authorities {
            if *weight == 0 {
                return Err(Error::ZeroWeight { id: *id });
            }
            // ZIP-215 decompression: non-canonical encodings are accepted, as by
            // `ed25519-zebra` and Substrate's host functions.
            let point = CompressedEdwardsY(id.0).decompress();
            if weights.insert(*id, (*weight, point)).is_some() {
                return Err(Error::DuplicateAuthority { id: *id });
            }
            total_weight = total_weight
                .checked_add(*weight)
                .ok_or(Error::WeightOverflow)?;
        }
        Ok(Self {
            set_id,
            authorities,
            weights,
            total_weight,
        })
    }

    /// The set id, which every precommit signature commits to.
    pub fn set_id(&self) -> u64 {
        self.set_id
    }

    /// The authorities and weights, in ledger order.
    pub fn authorities(&self) -> &[(AuthorityId, u64)] {
        &self.authorities
    }

    /// The weight of `id`, if it is a member.
    pub fn weight_of(&self, id: &AuthorityId) -> Option<u64> {
        self.weights.get(id).map(|(weight, _)| *weight)
    }

    /// The decompressed key of `id`, if it is a member and its key a curve point.
    pub(crate) fn point_of(&self, id: &AuthorityId) -> Option<&EdwardsPoint> {
        self.weights.get(id).and_then(|(_, point)| point.as_ref())
    }

    /// Sum of all weights.
    pub fn total_weight(&self) -> u64 {
        self.total_weight
    }

    /// The weight a justification needs: `total - faulty` with
    /// `faulty = (total - 1) / 3`, i.e. strictly more than two thirds, as in
    /// `finality-grandpa`'s `VoterSet::threshold`.
    pub fn threshold(&self) -> u64 {
        self.total_weight - (self.total_weight - 1) / 3
    }
}

/// A change still pending in a persisted authority set.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub struct PersistedPendingChange {
    /// The next authorities.
    pub next_authorities: Vec<(AuthorityId, u64)>,
    /// Blocks between announcement and effect.
    pub delay: BlockNumber,
    /// Number of the announcing block.
    pub canonical_height: BlockNumber,
    /// Hash of the announcing block.
    pub canonical_hash: H256,
    /// Standard (`Finalized`) or forced (`Best`) change.
    pub delay_kind: DelayKind,
}

/// How a persisted pending change takes effect.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub enum DelayKind {
    /// Standard change: on finalization of the effective block.
    #[codec(index = 0)]
    Finalized,
    /// Forced change: on import of the effective block.
    #[codec(index = 1)]
    Best {
        /// The block the new set resumes finalizing from.
        median_last_finalized: BlockNumber,
    },
}

/// A node of the fork tree of pending standard changes.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub struct PendingChangeNode {
    /// Hash of the announcing block.
    pub hash: H256,
    /// Its number.
    pub number: BlockNumber,
    /// The change.
    pub data: PersistedPendingChange,
    /// Changes announced on descendants of this one.
    pub children: Vec<PendingChangeNode>,
}

/// The authority set as `sc-consensus-grandpa` persists it and as published light-sync
/// checkpoints (`grandpaAuthoritySet`) carry it, SCALE-encoded:
/// `current_authorities: Vec<(AuthorityId, u64)>`, `set_id: u64`,
/// `pending_standard_changes: ForkTree { roots, best_finalized_number: Option<N> }`,
/// `pending_forced_changes: Vec<PendingChange>`,
/// `authority_set_changes: Vec<(set_id u64, last block N)>`.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub struct LightSyncAuthoritySet {
    /// The voters of the current set.
    pub current_authorities: Vec<(AuthorityId, u64)>,
    /// The current set id.
    pub set_id: u64,
    /// Roots of the fork tree of pending standard changes.
    pub pending_standard_roots: Vec<PendingChangeNode>,
    /// The fork tree's best finalized number.
    pub best_finalized_number: Option<BlockNumber>,
    /// Pending forced changes.
    pub pending_forced_changes: Vec<PersistedPendingChange>,
    /// For each past set id, the last block it finalized.
    pub authority_set_changes: Vec<(u64, BlockNumber)>,
}

impl LightSyncAuthoritySet {
    /// Decodes the SCALE bytes of a checkpoint's `grandpaAuthoritySet`.
    pub fn decode_exact(bytes: &[u8]) -> Result<Self, Error> {
        decode_exact(bytes, "persisted authority set")
    }

    /// The current set, validated.
    pub fn current_set(&self) -> Result<AuthoritySet, Error> {
        AuthoritySet::new(self.set_id, self.current_authorities.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    fn id(n: u16) -> AuthorityId {
        let mut bytes = [0; 32];
        bytes[..2].copy_from_slice(&n.to_le_bytes());
        AuthorityId(bytes)
    }

    #[test]
    fn threshold_is_strictly_more_than_two_thirds() {
        let set =
            |n: u16| AuthoritySet::new(0, (0..n).map(|i| (id(i), 1)).collect()).expect("valid set");
        assert_eq!(set(1).threshold(), 1);
        assert_eq!(set(3).threshold(), 3);
        assert_eq!(set(4).threshold(), 3);
        assert_eq!(set(297).threshold(), 199);
        assert_eq!(set(299).threshold(), 200);
    }

    #[test]
    fn invalid_sets_are_refused() {
        assert!(matches!(
            AuthoritySet::new(7, vec![]),
            Err(Error::EmptyAuthoritySet { set_id: 7 })
        ));
        assert!(matches!(
            AuthoritySet::new(0, vec![(id(1), 0)]),
            Err(Error::ZeroWeight { .. })
        ));
        assert!(matches!(
            AuthoritySet::new(0, vec![(id(1), 1), (id(1), 2)]),
            Err(Error::DuplicateAuthority { .. })
        ));
        assert!(matches!(
            AuthoritySet::new(0, vec![(id(1), u64::MAX), (id(2), 1)]),
            Err(Error::WeightOverflow)
        ));
    }
}
