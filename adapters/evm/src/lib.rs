//! Isthmus chain IO for EVM ledgers, through ethers.
//!
//! This crate is the only place that talks JSON-RPC to an EVM ledger. It does no
//! verification of its own: what it fetches (headers, `eth_getProof` responses, logs)
//! is evidence for `isthmus-light-client-evm`, and what it submits was verified and
//! attested upstream.
//!
//! - [`contracts`]: typed bindings of the Solidity endpoints (`onchain/evm`).
//! - [`source`]: the source role: finalized range scans of the Outbox, reorg
//!   detection by hash linkage, headers and storage proofs of the commitment.
//! - [`destination`]: the destination role: `processBatch` submission with nonce and
//!   fee management, confirmation at finality, replay checks.
//! - [`devnet`]: starting a local anvil and deploying the endpoints, for the demo and
//!   the tests.
//! - [`error`]: [`EvmError`] and whether to retry.

pub mod contracts;
pub mod destination;
pub mod devnet;
pub mod error;
pub mod source;

pub use destination::{Delivery, DeliveryOutcome, EvmDestination, MessageOutcome, SeenDelivery};
pub use error::EvmError;
pub use source::{BlockRef, EvmSource, ObservedMessage, OutboxProof};

use ethers::types::{Address, H256};
use isthmus_protocol::Address32;

/// The protocol's 32-byte form of an EVM address.
pub fn address32(address: Address) -> Address32 {
    Address32::from_evm(address.0)
}

/// Storage slot of the Outbox's Merkle root (`Outbox.ROOT_SLOT`, part of the protocol).
pub const OUTBOX_ROOT_SLOT: u64 = 0;
/// Storage slot of the Outbox's message count (`Outbox.COUNT_SLOT`).
pub const OUTBOX_COUNT_SLOT: u64 = 33;

/// The storage key of a slot number, as `eth_getProof` takes it.
pub fn slot_key(slot: u64) -> H256 {
    H256::from_low_u64_be(slot)
}
