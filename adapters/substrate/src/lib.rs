//! `isthmus-adapter-substrate`: chain IO for Isthmus relayers on Substrate ledgers,
//! through subxt's dynamic API (no generated code: the pallet's calls, events and
//! storage are addressed by name and encoded against the node's metadata).
//!
//! - [`client`]: one node connection ([`SubstrateClient`]).
//! - [`source`]: finalized blocks, the outbox's `Dispatch` events as protocol
//!   messages, header bytes and read proofs of the outbox's root and count, verified
//!   into a [`VerifiedOutbox`] with `isthmus-light-client-grandpa`.
//! - [`destination`]: `process` / `deliver` (a batch) with local nonce management,
//!   inclusion and finality, per-message outcomes, and replay checks.
//! - [`devnet`]: the local dev chain (chopsticks) and its signed GRANDPA finality.
//! - [`keys`]: the pallet's storage keys and outbox id.
//!
//! Errors are one [`Error`] with [`Error::is_retryable`].

pub mod client;
pub mod destination;
pub mod devnet;
mod error;
pub mod failover;
pub mod holds;
pub mod keys;
mod network;
pub mod route_control;
pub mod signer_sets;
pub mod source;

pub use client::SubstrateClient;
pub use destination::{ecdsa_account, Destination, Receipt, SubmitKey};
pub use error::Error;
pub use source::{DispatchedMessage, OutboxProof, VerifiedOutbox};
