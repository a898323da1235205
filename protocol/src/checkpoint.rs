//! Checkpoints: the statement members attest to.
//!
//! A checkpoint says "at block `block_number` (hash `block_hash`) of ledger `origin`,
//! the outbox `outbox` held `count` messages under Merkle root `root`". A member
//! signs its [`Checkpoint::digest`] only after its light client verified exactly
//! that, so a destination that sees enough members' signatures can accept any
//! message with a branch under `root`.
//!
//! The digest binds the [`Network`] the signing members belong to: a destination
//! takes only its own network's checkpoints, whatever else the two networks share.

use crate::{keccak256, keccak256_concat, Address32, Network};

/// Domain tag that separates checkpoint digests from every other keccak preimage:
/// `keccak256("isthmus:checkpoint:v2")`. A signature over a checkpoint can never be
/// replayed as a signature over a transaction or another protocol object. (v1 had
/// no network in the preimage.)
pub const CHECKPOINT_DOMAIN_TAG: &[u8] = b"isthmus:checkpoint:v2";

/// Length of the digest preimage: tag hash, network, origin, outbox, root, count,
/// number, hash.
pub const CHECKPOINT_PREIMAGE_LEN: usize = 32 + 32 + 4 + 32 + 32 + 4 + 8 + 32;

/// An outbox's commitment at one source block.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Checkpoint {
    /// Ledger id of the source ledger.
    pub origin: u32,
    /// The outbox: the contract address (EVM, left-padded) or the pallet's id.
    pub outbox: Address32,
    /// Merkle root of the outbox's message ids.
    pub root: [u8; 32],
    /// Number of messages in the outbox.
    pub count: u32,
    /// Source block at which root and count were read.
    pub block_number: u64,
    /// Hash of that block.
    pub block_hash: [u8; 32],
}

impl Checkpoint {
    /// The bytes that are hashed into the digest on `network` (packed big-endian):
    /// `keccak256(tag) ‖ network ‖ origin ‖ outbox ‖ root ‖ count ‖ block_number ‖
    /// block_hash`.
    pub fn preimage(&self, network: &Network) -> [u8; CHECKPOINT_PREIMAGE_LEN] {
        let mut out = [0u8; CHECKPOINT_PREIMAGE_LEN];
        let parts: [&[u8]; 8] = [
            &keccak256(CHECKPOINT_DOMAIN_TAG),
            &network.0,
            &self.origin.to_be_bytes(),
            &self.outbox.0,
            &self.root,
            &self.count.to_be_bytes(),
            &self.block_number.to_be_bytes(),
            &self.block_hash,
        ];
        let mut pos = 0;
        for part in parts {
            out[pos..pos + part.len()].copy_from_slice(part);
            pos += part.len();
        }
        out
    }

    /// The digest members of `network` sign: keccak256 of [`Checkpoint::preimage`].
    pub fn digest(&self, network: &Network) -> [u8; 32] {
        keccak256_concat(&[&self.preimage(network)])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_field_changes_the_digest() {
        let base = Checkpoint {
            origin: 1,
            outbox: Address32::from_evm([1; 20]),
            root: [2; 32],
            count: 3,
            block_number: 4,
            block_hash: [5; 32],
        };
        let variants = [
            Checkpoint { origin: 2, ..base },
            Checkpoint {
                outbox: Address32::from_evm([9; 20]),
                ..base
            },
            Checkpoint {
                root: [9; 32],
                ..base
            },
            Checkpoint { count: 4, ..base },
            Checkpoint {
                block_number: 5,
                ..base
            },
            Checkpoint {
                block_hash: [9; 32],
                ..base
            },
        ];
        let net = Network::named("isthmus test");
        for v in variants {
            assert_ne!(v.digest(&net), base.digest(&net), "{v:?}");
        }
        assert_ne!(
            base.digest(&Network::named("isthmus staging")),
            base.digest(&net),
            "the network"
        );
        assert_eq!(base.preimage(&net).len(), 176);
    }
}
