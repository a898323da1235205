//! Signer sets that change: the update the current signers authorise, and the sets a
//! destination accepts while an update's overlap lasts (docs/protocol.md, "Signer-set
//! updates").
//!
//! An origin's signer set on a destination is replaced only by a quorum of its
//! current set, signing a [`SignerSetUpdate`]'s digest. The digest binds the
//! destination endpoint (an EVM chain id and Inbox address, or a Substrate chain's
//! genesis hash and ledger id), so a signed update is valid on one endpoint only.
//! After the update the replaced set stays valid for the overlap the update names:
//! a checkpoint then needs a quorum of either set, never a mix ([`ActiveSigners`]).

use alloc::vec::Vec;

use crate::attestation::{Attestation, AttestationError, Quorum, QuorumError, SignerSet};
use crate::{keccak256, keccak256_concat, EvmAddress};

/// Domain tag of the EVM Inbox's update digest.
pub const EVM_UPDATE_TAG: &[u8] = b"isthmus signer set update v1";
/// Domain tag of the pallet's update digest.
pub const PALLET_UPDATE_TAG: &[u8] = b"isthmus pallet signer set update v1";
/// Longest overlap an update may give the set it replaces, in seconds (30 days).
pub const MAX_OVERLAP_S: u64 = 30 * 24 * 3600;

/// An update of an origin's signer set, as the current signers authorise it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignerSetUpdate {
    /// The origin ledger whose signer set changes.
    pub origin: u32,
    /// The new signers, in order (the order is part of the digest).
    pub signers: Vec<EvmAddress>,
    /// The new threshold.
    pub threshold: u8,
    /// The new version: the current one + 1.
    pub version: u64,
    /// Seconds the replaced set stays valid after the update.
    pub overlap_s: u64,
}

impl SignerSetUpdate {
    /// keccak256 of the signers, each left-padded to 32 bytes (Solidity's
    /// `abi.encodePacked(address[])`).
    fn signers_hash(&self) -> [u8; 32] {
        let mut padded = Vec::with_capacity(self.signers.len() * 32);
        for signer in &self.signers {
            padded.extend_from_slice(&[0u8; 12]);
            padded.extend_from_slice(signer);
        }
        keccak256(&padded)
    }

    /// The digest for the Inbox at `inbox` on the chain `chain_id`, as
    /// `Inbox.signerSetUpdateDigest` computes it:
    /// `keccak256(keccak256("isthmus signer set update v1") ‖ chainid (32 bytes) ‖
    /// inbox (20) ‖ origin (4) ‖ keccak256(each signer left-padded to 32 bytes) ‖
    /// threshold (1) ‖ version (8) ‖ overlap (8))`, big-endian integers.
    pub fn evm_digest(&self, chain_id: u64, inbox: [u8; 20]) -> [u8; 32] {
        let mut chain = [0u8; 32];
        chain[24..].copy_from_slice(&chain_id.to_be_bytes());
        keccak256_concat(&[
            &keccak256(EVM_UPDATE_TAG),
            &chain,
            &inbox,
            &self.origin.to_be_bytes(),
            &self.signers_hash(),
            &[self.threshold],
            &self.version.to_be_bytes(),
            &self.overlap_s.to_be_bytes(),
        ])
    }

    /// The digest for the pallet of the chain with genesis hash `genesis`, whose
    /// ledger id is `ledger`: `keccak256(keccak256("isthmus pallet signer set update
    /// v1") ‖ genesis (32) ‖ ledger (4) ‖ origin (4) ‖ keccak256(signers padded as
    /// above) ‖ threshold (1) ‖ version (8) ‖ overlap (8))`, big-endian integers.
    pub fn pallet_digest(&self, genesis: [u8; 32], ledger: u32) -> [u8; 32] {
        keccak256_concat(&[
            &keccak256(PALLET_UPDATE_TAG),
            &genesis,
            &ledger.to_be_bytes(),
            &self.origin.to_be_bytes(),
            &self.signers_hash(),
            &[self.threshold],
            &self.version.to_be_bytes(),
            &self.overlap_s.to_be_bytes(),
        ])
    }
}

/// The signer sets a destination accepts for one origin: its current set and, during
/// an update's overlap, the set it replaced.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ActiveSigners {
    /// The current set's version (0 as set up, +1 per update).
    pub version: u64,
    /// The current set.
    pub current: SignerSet,
    /// The replaced set and the last second (unix time) it is accepted, while an
    /// update's overlap may still run.
    pub previous: Option<(SignerSet, u64)>,
}

/// Which set a quorum was found in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WhichSet {
    /// The current set.
    Current,
    /// The replaced set, within its overlap.
    Previous,
}

impl ActiveSigners {
    /// A set that was never updated.
    pub fn initial(current: SignerSet) -> Self {
        Self {
            version: 0,
            current,
            previous: None,
        }
    }

    /// Whether `signer` counts in a set accepted at `now` (unix seconds).
    pub fn accepts(&self, signer: &EvmAddress, now: u64) -> bool {
        self.current.signers().contains(signer)
            || self
                .previous_at(now)
                .is_some_and(|p| p.signers().contains(signer))
    }

    /// The replaced set if it is still accepted at `now`.
    pub fn previous_at(&self, now: u64) -> Option<&SignerSet> {
        self.previous
            .as_ref()
            .filter(|(_, until)| now <= *until)
            .map(|(set, _)| set)
    }

    /// A quorum of `attestations` of `digest` for a submission at `now`: of the
    /// current set if it has one, else of the replaced set while its overlap lasts.
    /// The signatures of one set only are counted, as the destination counts them;
    /// the error is the current set's shortfall.
    pub fn quorum<R>(
        &self,
        digest: &[u8; 32],
        attestations: &[Attestation],
        now: u64,
        recover: R,
    ) -> Result<(WhichSet, Quorum), QuorumError>
    where
        R: Fn(&Attestation, &[u8; 32]) -> Result<EvmAddress, AttestationError>,
    {
        let shortfall = match self.current.verify_with(digest, attestations, &recover) {
            Ok(q) => return Ok((WhichSet::Current, q)),
            Err(e) => e,
        };
        match self.previous_at(now) {
            Some(previous) => previous
                .verify_with(digest, attestations, &recover)
                .map(|q| (WhichSet::Previous, q))
                .map_err(|_| shortfall),
            None => Err(shortfall),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;
    use k256::ecdsa::SigningKey;

    fn key(n: u8) -> SigningKey {
        SigningKey::from_bytes(&keccak256(&[n]).into()).expect("valid key")
    }

    fn addr(n: u8) -> EvmAddress {
        crate::attestation::address_of(key(n).verifying_key())
    }

    fn set(members: &[u8], threshold: usize) -> SignerSet {
        SignerSet::new(members.iter().map(|n| addr(*n)).collect(), threshold).expect("set")
    }

    fn signed(by: &[u8]) -> Vec<Attestation> {
        by.iter()
            .map(|n| Attestation::sign(&key(*n), &[9u8; 32]).expect("sign"))
            .collect()
    }

    /// Members 1, 2, 3 at threshold 2, after member 1 rotated to key 4 with the old
    /// set accepted until t = 100.
    fn rotated() -> ActiveSigners {
        ActiveSigners {
            version: 1,
            current: set(&[4, 2, 3], 2),
            previous: Some((set(&[1, 2, 3], 2), 100)),
        }
    }

    #[test]
    fn a_quorum_of_the_current_set_is_taken_first() {
        let (which, q) = rotated()
            .quorum(&[9u8; 32], &signed(&[1, 2, 3]), 50, Attestation::recover)
            .expect("quorum");
        assert_eq!(which, WhichSet::Current);
        assert_eq!(q.signers, vec![addr(2), addr(3)]);
    }

    #[test]
    fn the_replaced_set_counts_only_during_its_overlap_and_never_mixed() {
        let active = rotated();
        // Old key 1 and member 2: a quorum of the previous set only.
        let old = signed(&[1, 2]);
        let (which, _) = active
            .quorum(&[9u8; 32], &old, 100, Attestation::recover)
            .expect("within the overlap");
        assert_eq!(which, WhichSet::Previous);
        let refused = active
            .quorum(&[9u8; 32], &old, 101, Attestation::recover)
            .expect_err("after the overlap");
        assert_eq!((refused.have, refused.need), (1, 2));
        // Old key 1 and new key 4 are the same member in two sets: no quorum in
        // either, whenever.
        let mixed = signed(&[1, 4]);
        assert!(active
            .quorum(&[9u8; 32], &mixed, 50, Attestation::recover)
            .is_err());
        assert!(active.accepts(&addr(1), 100));
        assert!(!active.accepts(&addr(1), 101));
        assert!(active.accepts(&addr(4), 101));
        assert!(!ActiveSigners::initial(set(&[2, 3], 2)).accepts(&addr(1), 0));
    }

    #[test]
    fn update_digests_bind_every_field_and_the_endpoint() {
        let update = SignerSetUpdate {
            origin: 7,
            signers: vec![addr(4), addr(2), addr(3)],
            threshold: 2,
            version: 1,
            overlap_s: 3600,
        };
        let evm = update.evm_digest(31337, [0xaa; 20]);
        let pallet = update.pallet_digest([0x11; 32], 3);
        assert_ne!(evm, pallet);
        let variants = [
            SignerSetUpdate {
                origin: 8,
                ..update.clone()
            },
            SignerSetUpdate {
                signers: vec![addr(2), addr(4), addr(3)],
                ..update.clone()
            },
            SignerSetUpdate {
                threshold: 3,
                ..update.clone()
            },
            SignerSetUpdate {
                version: 2,
                ..update.clone()
            },
            SignerSetUpdate {
                overlap_s: 3601,
                ..update.clone()
            },
        ];
        for v in &variants {
            assert_ne!(v.evm_digest(31337, [0xaa; 20]), evm, "{v:?}");
            assert_ne!(v.pallet_digest([0x11; 32], 3), pallet, "{v:?}");
        }
        assert_ne!(update.evm_digest(31338, [0xaa; 20]), evm);
        assert_ne!(update.evm_digest(31337, [0xab; 20]), evm);
        assert_ne!(update.pallet_digest([0x12; 32], 3), pallet);
        assert_ne!(update.pallet_digest([0x11; 32], 4), pallet);
    }
}
