//! The pallet's cryptography on the runtime's host functions.
//!
//! Attestations are checked with `sp_io::crypto::secp256k1_ecdsa_recover` and
//! `sp_io::hashing::keccak_256` (native speed inside the wasm runtime) under the
//! protocol's strict rules: `v ∈ {27, 28}`, `0 < r < n`, `0 < s ≤ n/2`. The outbox's
//! incremental tree uses the protocol crate's node hash and zero hashes, so the root
//! is bit-for-bit the one every other implementation computes.

use codec::{Decode, DecodeWithMemTracking, Encode, MaxEncodedLen};
use isthmus_protocol::merkle::{hash_pair, zero_hashes};
use isthmus_protocol::TREE_DEPTH;
use scale_info::TypeInfo;

/// An EVM-style signer address: the last 20 bytes of keccak256 of the public key.
pub type SignerAddress = [u8; 20];

/// The secp256k1 group order `n`, big-endian.
const SECP256K1_N: [u8; 32] = [
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe,
    0xba, 0xae, 0xdc, 0xe6, 0xaf, 0x48, 0xa0, 0x3b, 0xbf, 0xd2, 0x5e, 0x8c, 0xd0, 0x36, 0x41, 0x41,
];

/// `n / 2` rounded down, big-endian: the largest `s` a low-s signature may carry.
const SECP256K1_HALF_N: [u8; 32] = [
    0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0x5d, 0x57, 0x6e, 0x73, 0x57, 0xa4, 0x50, 0x1d, 0xdf, 0xe9, 0x2f, 0x46, 0x68, 0x1b, 0x20, 0xa0,
];

/// Why an attestation is not a valid signature under the protocol's strict rules.
#[derive(
    Clone,
    Copy,
    PartialEq,
    Eq,
    Debug,
    Encode,
    Decode,
    DecodeWithMemTracking,
    TypeInfo,
    MaxEncodedLen,
)]
pub enum InvalidSignature {
    /// `v` is neither 27 nor 28.
    BadV,
    /// `r` is zero or not below the group order.
    BadR,
    /// `s` is zero or not below the group order.
    BadS,
    /// `s` is above `n/2` (a malleated copy of a low-s signature).
    HighS,
    /// No public key recovers from the signature.
    Unrecoverable,
}

/// What happened to one attestation of a checkpoint (the protocol's quorum outcomes).
#[derive(
    Clone,
    Copy,
    PartialEq,
    Eq,
    Debug,
    Encode,
    Decode,
    DecodeWithMemTracking,
    TypeInfo,
    MaxEncodedLen,
)]
pub enum AttestationOutcome {
    /// A valid signature of a set member, counted.
    Accepted(SignerAddress),
    /// A valid signature of a member already counted; not counted again.
    Duplicate(SignerAddress),
    /// A valid signature of a key outside the set; not counted.
    UnknownSigner(SignerAddress),
    /// Not a valid signature; not counted.
    Invalid(InvalidSignature),
}

fn is_zero(bytes: &[u8; 32]) -> bool {
    bytes.iter().all(|b| *b == 0)
}

/// Recovers the signer of `signature` (`r ‖ s ‖ v`) over `digest` (no prefix).
pub fn recover_signer(
    digest: &[u8; 32],
    signature: &[u8; 65],
) -> Result<SignerAddress, InvalidSignature> {
    let v = signature[64];
    if v != 27 && v != 28 {
        return Err(InvalidSignature::BadV);
    }
    let mut r = [0u8; 32];
    r.copy_from_slice(&signature[..32]);
    let mut s = [0u8; 32];
    s.copy_from_slice(&signature[32..64]);
    // Big-endian byte arrays of equal length compare like the integers they encode.
    if is_zero(&r) || r >= SECP256K1_N {
        return Err(InvalidSignature::BadR);
    }
    if is_zero(&s) || s >= SECP256K1_N {
        return Err(InvalidSignature::BadS);
    }
    if s > SECP256K1_HALF_N {
        return Err(InvalidSignature::HighS);
    }
    let mut host_sig = *signature;
    host_sig[64] = v - 27;
    let public = sp_io::crypto::secp256k1_ecdsa_recover(&host_sig, digest)
        .map_err(|_| InvalidSignature::Unrecoverable)?;
    let hash = sp_io::hashing::keccak_256(&public);
    let mut address = [0u8; 20];
    address.copy_from_slice(&hash[12..]);
    Ok(address)
}

/// Counts distinct valid member signatures; returns how many and every outcome.
pub fn check_quorum(
    digest: &[u8; 32],
    signers: &[SignerAddress],
    attestations: &[[u8; 65]],
) -> (u32, alloc::vec::Vec<AttestationOutcome>) {
    let mut outcomes = alloc::vec::Vec::with_capacity(attestations.len());
    let mut counted: alloc::vec::Vec<SignerAddress> = alloc::vec::Vec::new();
    for att in attestations {
        let outcome = match recover_signer(digest, att) {
            Err(e) => AttestationOutcome::Invalid(e),
            Ok(a) if !signers.contains(&a) => AttestationOutcome::UnknownSigner(a),
            Ok(a) if counted.contains(&a) => AttestationOutcome::Duplicate(a),
            Ok(a) => {
                counted.push(a);
                AttestationOutcome::Accepted(a)
            }
        };
        outcomes.push(outcome);
    }
    let have = u32::try_from(counted.len()).unwrap_or(u32::MAX);
    (have, outcomes)
}

/// The left frontier of the outbox's incremental tree, as stored.
pub type Frontier = [[u8; 32]; TREE_DEPTH];

/// Appends `leaf` as leaf number `count` (the deposit contract's `deposit` loop).
/// The caller guarantees `count < 2^32 - 1`.
pub fn tree_insert(frontier: &mut Frontier, count: u32, leaf: [u8; 32]) {
    let mut size = u64::from(count) + 1;
    let mut node = leaf;
    for slot in frontier.iter_mut() {
        if size & 1 == 1 {
            *slot = node;
            return;
        }
        node = hash_pair(slot, &node);
        size >>= 1;
    }
}

/// The root of a tree of `count` leaves with this frontier (`get_deposit_root`).
pub fn tree_root(frontier: &Frontier, count: u32) -> [u8; 32] {
    let zeros = zero_hashes();
    let mut node = [0u8; 32];
    for (h, (left, zero)) in frontier.iter().zip(zeros.iter()).enumerate() {
        node = if (count >> h) & 1 == 1 {
            hash_pair(left, &node)
        } else {
            hash_pair(&node, zero)
        };
    }
    node
}
