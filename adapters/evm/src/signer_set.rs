//! Signer-set updates on an EVM Inbox: the digest an origin's current signers sign to
//! replace their set (`Inbox.updateSigners`, docs/protocol.md "Signer-set updates").

use isthmus_protocol::{keccak256, keccak256_concat};

/// An update of an origin's signer set, as the current signers authorise it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignerSetUpdate {
    /// The origin ledger whose signer set changes.
    pub origin: u32,
    /// The new signers, in order (the order is part of the digest).
    pub signers: Vec<[u8; 20]>,
    /// The new threshold.
    pub threshold: u8,
    /// The new version: the current one + 1.
    pub version: u64,
    /// Seconds the replaced set stays valid after the update.
    pub overlap_s: u64,
}

impl SignerSetUpdate {
    /// The digest for the Inbox at `inbox` on the chain `chain_id`, as
    /// `Inbox.signerSetUpdateDigest` computes it:
    /// `keccak256(keccak256("isthmus signer set update v1") ‖ chainid (32 bytes) ‖
    /// inbox (20) ‖ origin (4) ‖ keccak256(each signer left-padded to 32 bytes) ‖
    /// threshold (1) ‖ version (8) ‖ overlap (8))`, big-endian integers.
    pub fn evm_digest(&self, chain_id: u64, inbox: [u8; 20]) -> [u8; 32] {
        let tag = keccak256(b"isthmus signer set update v1");
        let mut chain = [0u8; 32];
        chain[24..].copy_from_slice(&chain_id.to_be_bytes());
        let mut padded = Vec::with_capacity(self.signers.len() * 32);
        for signer in &self.signers {
            padded.extend_from_slice(&[0u8; 12]);
            padded.extend_from_slice(signer);
        }
        let signers = keccak256(&padded);
        keccak256_concat(&[
            &tag,
            &chain,
            &inbox,
            &self.origin.to_be_bytes(),
            &signers,
            &[self.threshold],
            &self.version.to_be_bytes(),
            &self.overlap_s.to_be_bytes(),
        ])
    }
}
