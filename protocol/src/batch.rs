//! What a relayer hands a destination's inbox, and what the inbox reports back:
//! the one vocabulary every ledger adapter speaks.

use alloc::string::String;
use alloc::vec::Vec;

use crate::{Attestation, Branch, Checkpoint, Message};

/// Messages under one attested checkpoint, ready for an inbox (`processBatch` on
/// the Solidity Inbox, `process_batch` on the pallet).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Batch {
    /// The checkpoint the branches lead to.
    pub checkpoint: Checkpoint,
    /// At least the destination's threshold of attestations of its digest.
    pub attestations: Vec<Attestation>,
    /// The messages and their branches under `checkpoint.root`.
    pub messages: Vec<(Message, Branch)>,
}

/// What an inbox did with one message of a batch. The same four outcomes on every
/// kind of ledger.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MessageOutcome {
    /// Handed to the recipient, which accepted it.
    Delivered,
    /// The recipient refused it (its handler reverted, with this reason); the message
    /// is still deliverable.
    HandlerFailed(String),
    /// The recipient refused it for good (with this code), or there is no recipient:
    /// it ended undelivered and will never be delivered.
    Refused(String),
    /// Another submission delivered it first.
    AlreadyDelivered,
    /// Its deadline passed before inclusion.
    Expired,
    /// Held by its recipient's controls (a value limit), for this reason: not
    /// executed, still deliverable; a quorum of the origin's signers releases or
    /// rejects it (docs/protocol.md, "Holds").
    Held(String),
}

/// Where an inbox delivered a message: the transaction (or extrinsic) and its block.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DeliveryRef {
    /// The delivering transaction's hash.
    pub tx_hash: [u8; 32],
    /// Its block.
    pub block: crate::BlockRef,
}

/// A delivery an inbox made, by whichever member, as the destination shows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SeenDelivery {
    /// The message.
    pub id: crate::MessageId,
    /// Its origin ledger.
    pub origin: u32,
    /// Its nonce in the origin's outbox (it tells whose turn it was).
    pub nonce: u64,
    /// Where it was delivered.
    pub at: DeliveryRef,
    /// Whether the submitter of the relayer that asked sent the transaction.
    pub by_this_submitter: bool,
}
