//! Isthmus protocol v1: the standard every ledger and every relayer agrees on.
//!
//! This crate is pure (no IO, no async) and `no_std` with `alloc` when the default
//! `std` feature is off, so the Substrate pallet uses exactly the same code as the
//! relayer. The byte layouts are specified in `docs/protocol.md`; the published test
//! vectors in `protocol/vectors/v2.json` pin them, and the Solidity endpoints and the
//! pallet reproduce those vectors.
//!
//! Modules:
//! - [`address`]: [`Address32`], the ledger-neutral 32-byte account form.
//! - [`message`]: [`Message`] v1, its canonical encoding and its [`MessageId`].
//! - [`merkle`]: the incremental Merkle tree every outbox keeps, and branches.
//! - [`checkpoint`]: the [`Checkpoint`] members attest to and its digest.
//! - [`network`]: the [`Network`] a deployment belongs to, which digests bind.
//! - [`attestation`]: secp256k1 attestations and quorum verification.
//! - [`block`]: [`BlockRef`], a block of any ledger by number and hash.
//! - [`batch`]: the [`Batch`] an inbox takes, the [`MessageOutcome`] it reports, and
//!   the deliveries it shows ([`SeenDelivery`]).
//! - [`receipt`]: the [`Receipt`] a destination records when a message ends, and the
//!   receipt batches that carry them back to the origin.
//! - [`route_control`]: the pause and resume of a route members sign.
#![cfg_attr(not(feature = "std"), no_std)]

extern crate alloc;

pub mod address;
pub mod attestation;
pub mod batch;
pub mod block;
pub mod checkpoint;
pub mod holds;
pub mod merkle;
pub mod message;
pub mod network;
pub mod receipt;
pub mod route_control;
pub mod signer_set;

pub use address::{Address32, EvmAddress};
pub use attestation::{
    Attestation, AttestationError, Outcome, Quorum, QuorumError, SignerSet, SignerSetError,
};
pub use batch::{Batch, DeliveryRef, MessageOutcome, SeenDelivery};
pub use block::BlockRef;
pub use checkpoint::{Checkpoint, CHECKPOINT_DOMAIN_TAG};
pub use holds::{Hold, HoldAction, HoldDecision, HoldState, LimitChange};
pub use merkle::{Branch, IncrementalTree, MerkleTree, TreeError, TREE_DEPTH};
pub use message::{DecodeError, Message, MessageId, MAX_BODY_LEN, MESSAGE_HEADER_LEN, VERSION};
pub use network::Network;
pub use receipt::{result_text, Receipt, ReceiptError, ReceiptOutcome, MAX_RECEIPTS, RECEIPT_LEN};
pub use route_control::{RouteAction, RouteControl, RouteState};
pub use signer_set::{ActiveSigners, SignerSetUpdate, WhichSet, MAX_OVERLAP_S};

/// Keccak-256 (the pre-standard Keccak used by Ethereum), the protocol's only hash.
pub fn keccak256(data: &[u8]) -> [u8; 32] {
    keccak256_concat(&[data])
}

/// Keccak-256 over the concatenation of `parts`, without allocating the concatenation.
pub fn keccak256_concat(parts: &[&[u8]]) -> [u8; 32] {
    use tiny_keccak::{Hasher, Keccak};
    let mut hasher = Keccak::v256();
    for part in parts {
        hasher.update(part);
    }
    let mut out = [0u8; 32];
    hasher.finalize(&mut out);
    out
}

/// Formats 32 bytes as `0x`-prefixed lower-case hex.
/// 32 bytes from 64 lower-case hex digits (no `0x`), at compile time: for constants
/// such as keys and hashes written out in the source. A wrong digit or length is a
/// compile error where it is used in a `const`.
pub const fn hex32(digits: &str) -> [u8; 32] {
    const fn nibble(c: u8) -> u8 {
        match c {
            b'0'..=b'9' => c - b'0',
            b'a'..=b'f' => c - b'a' + 10,
            _ => panic!("not a lower-case hex digit"),
        }
    }
    let bytes = digits.as_bytes();
    assert!(bytes.len() == 64, "32 bytes are 64 hex digits");
    let mut out = [0u8; 32];
    let mut i = 0;
    while i < 32 {
        out[i] = (nibble(bytes[2 * i]) << 4) | nibble(bytes[2 * i + 1]);
        i += 1;
    }
    out
}

pub(crate) fn fmt_hex(bytes: &[u8], f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
    f.write_str("0x")?;
    for b in bytes {
        write!(f, "{b:02x}")?;
    }
    Ok(())
}

/// Parses `0x`-prefixed (or bare) hex into exactly `N` bytes.
pub(crate) fn parse_hex<const N: usize>(s: &str) -> Result<[u8; N], HexError> {
    let digits = s.strip_prefix("0x").unwrap_or(s);
    if digits.len() != 2 * N {
        return Err(HexError::Length {
            expected: N,
            got_digits: digits.len(),
        });
    }
    let mut out = [0u8; N];
    hex::decode_to_slice(digits, &mut out).map_err(|_| HexError::Digit)?;
    Ok(out)
}

/// Why a hex string is not the value it should be.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HexError {
    /// The string has the wrong number of hex digits.
    #[error("expected {expected} bytes ({} hex digits), got {got_digits} digits", expected * 2)]
    Length {
        /// Bytes expected.
        expected: usize,
        /// Hex digits found (after an optional `0x`).
        got_digits: usize,
    },
    /// A character is not a hex digit.
    #[error("not a hex digit")]
    Digit,
}
