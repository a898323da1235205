//! Holds and value limits: what the consortium's members sign to decide a held
//! message and to change a value limit (docs/protocol.md, "Holds").
//!
//! A destination app may hold a message instead of executing it (a payment over a
//! value limit, or a large one). The destination endpoint records the hold; the
//! message is executed only after a quorum of the origin's current signer set signed
//! its **release**, and ends refused after a quorum signed its **rejection** (or when
//! the hold outlived the endpoint's hold period). Both digests bind the destination
//! endpoint, the origin and the message id, and a decided hold takes no second
//! decision, so an approval counts for one message, once.
//!
//! A value limit (per route, or per debtor bank of a route) is set up once by the
//! app's admin and changed only with a quorum of the origin's current signers over
//! the change digest, which binds the limit's new values and its next version.

use crate::{keccak256, keccak256_concat};

/// Domain tag of the EVM Inbox's release digest.
pub const EVM_RELEASE_TAG: &[u8] = b"isthmus hold release v1";
/// Domain tag of the EVM Inbox's reject digest.
pub const EVM_REJECT_TAG: &[u8] = b"isthmus hold reject v1";
/// Domain tag of the pallet's release digest.
pub const PALLET_RELEASE_TAG: &[u8] = b"isthmus pallet hold release v1";
/// Domain tag of the pallet's reject digest.
pub const PALLET_REJECT_TAG: &[u8] = b"isthmus pallet hold reject v1";
/// Domain tag of the EVM clearing app's limit change digest.
pub const EVM_LIMIT_CHANGE_TAG: &[u8] = b"isthmus clearing limit change v1";
/// Domain tag of the clearing pallet's limit change digest.
pub const PALLET_LIMIT_CHANGE_TAG: &[u8] = b"isthmus pallet clearing limit change v1";

/// What a quorum decides about a held message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HoldAction {
    /// Execute it past the controls that held it.
    Release,
    /// End it refused: its receipt returns it to its sender.
    Reject,
}

impl HoldAction {
    /// `release` or `reject`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Release => "release",
            Self::Reject => "reject",
        }
    }
}

/// A decision about the hold of message `id` from `origin`, as members sign it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HoldDecision {
    /// The origin ledger of the held message.
    pub origin: u32,
    /// The held message's id.
    pub id: [u8; 32],
    /// Release or reject.
    pub action: HoldAction,
}

impl HoldDecision {
    /// The digest for the Inbox at `inbox` on the chain `chain_id`, as
    /// `Inbox.holdDecisionDigest` computes it: `keccak256(keccak256(tag) ‖ chainid (32
    /// bytes) ‖ inbox (20) ‖ origin (4) ‖ id (32))`, big-endian integers, with the tag
    /// `isthmus hold release v1` or `isthmus hold reject v1`.
    pub fn evm_digest(&self, chain_id: u64, inbox: [u8; 20]) -> [u8; 32] {
        let tag = match self.action {
            HoldAction::Release => EVM_RELEASE_TAG,
            HoldAction::Reject => EVM_REJECT_TAG,
        };
        keccak256_concat(&[
            &keccak256(tag),
            &word(chain_id),
            &inbox,
            &self.origin.to_be_bytes(),
            &self.id,
        ])
    }

    /// The digest for the pallet of the chain with genesis hash `genesis`, whose
    /// ledger id is `ledger`: `keccak256(keccak256(tag) ‖ genesis (32) ‖ ledger (4) ‖
    /// origin (4) ‖ id (32))`, with the tag `isthmus pallet hold release v1` or
    /// `isthmus pallet hold reject v1`.
    pub fn pallet_digest(&self, genesis: [u8; 32], ledger: u32) -> [u8; 32] {
        let tag = match self.action {
            HoldAction::Release => PALLET_RELEASE_TAG,
            HoldAction::Reject => PALLET_REJECT_TAG,
        };
        keccak256_concat(&[
            &keccak256(tag),
            &genesis,
            &ledger.to_be_bytes(),
            &self.origin.to_be_bytes(),
            &self.id,
        ])
    }
}

/// Where a held message stands on its destination.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HoldState {
    /// Waiting for a quorum's decision: not executed.
    Held,
    /// Released: executed at its next submission.
    Released,
    /// Rejected: ends refused at its next submission.
    Rejected,
}

impl HoldState {
    /// `held`, `released` or `rejected`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Held => "held",
            Self::Released => "released",
            Self::Rejected => "rejected",
        }
    }
}

/// The hold of a message as its destination records it (held and not ended yet).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Hold {
    /// Held, released or rejected.
    pub state: HoldState,
    /// The held message's origin ledger.
    pub origin: u32,
    /// When it was first held (unix seconds).
    pub since: u64,
    /// Why, as the app said.
    pub reason: [u8; 32],
}

/// New values of a value limit of payments from `origin` (`debtor` zero: the whole
/// route; otherwise one debtor bank of it), at `version`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LimitChange {
    /// The origin ledger whose payments the limit applies to.
    pub origin: u32,
    /// The debtor bank, or zero for the route.
    pub debtor: [u8; 32],
    /// The rolling allowance (0: none).
    pub capacity: u128,
    /// Seconds the allowance takes to refill from empty.
    pub window: u32,
    /// Payments above this are held whatever the allowance (0: none).
    pub large_value: u128,
    /// The limit's version after the change (its current version + 1).
    pub version: u32,
}

impl LimitChange {
    /// The digest for the clearing app at `app` on the chain `chain_id`, as
    /// `ClearingApp.limitChangeDigest` computes it: `keccak256(keccak256(tag) ‖ chainid
    /// (32) ‖ app (20) ‖ origin (4) ‖ debtor (32) ‖ capacity (16) ‖ window (4) ‖
    /// large value (16) ‖ version (4))`, big-endian integers.
    pub fn evm_digest(&self, chain_id: u64, app: [u8; 20]) -> [u8; 32] {
        keccak256_concat(&[
            &keccak256(EVM_LIMIT_CHANGE_TAG),
            &word(chain_id),
            &app,
            &self.values(),
        ])
    }

    /// The digest for the clearing pallet of the chain with genesis hash `genesis`,
    /// whose ledger id is `ledger`: `keccak256(keccak256(tag) ‖ genesis (32) ‖ ledger
    /// (4) ‖` the same fields as [`Self::evm_digest`] `)`.
    pub fn pallet_digest(&self, genesis: [u8; 32], ledger: u32) -> [u8; 32] {
        keccak256_concat(&[
            &keccak256(PALLET_LIMIT_CHANGE_TAG),
            &genesis,
            &ledger.to_be_bytes(),
            &self.values(),
        ])
    }

    /// origin (4) ‖ debtor (32) ‖ capacity (16) ‖ window (4) ‖ large value (16) ‖
    /// version (4).
    fn values(&self) -> [u8; 76] {
        let mut v = [0u8; 76];
        v[0..4].copy_from_slice(&self.origin.to_be_bytes());
        v[4..36].copy_from_slice(&self.debtor);
        v[36..52].copy_from_slice(&self.capacity.to_be_bytes());
        v[52..56].copy_from_slice(&self.window.to_be_bytes());
        v[56..72].copy_from_slice(&self.large_value.to_be_bytes());
        v[72..76].copy_from_slice(&self.version.to_be_bytes());
        v
    }
}

/// A u64 as a 32-byte big-endian word (Solidity's `uint256` in `encodePacked`).
fn word(n: u64) -> [u8; 32] {
    let mut w = [0u8; 32];
    w[24..].copy_from_slice(&n.to_be_bytes());
    w
}

#[cfg(test)]
mod tests {
    use super::*;

    const INBOX: [u8; 20] = [0x11; 20];

    fn decision(action: HoldAction) -> HoldDecision {
        HoldDecision {
            origin: 7,
            id: [0x44; 32],
            action,
        }
    }

    #[test]
    fn the_evm_hold_digest_is_the_inbox_encoding() {
        let mut expected = Vec::new();
        expected.extend_from_slice(&keccak256(b"isthmus hold release v1"));
        expected.extend_from_slice(&[0u8; 31]);
        expected.push(31);
        expected.extend_from_slice(&INBOX);
        expected.extend_from_slice(&[0, 0, 0, 7]);
        expected.extend_from_slice(&[0x44; 32]);
        assert_eq!(
            decision(HoldAction::Release).evm_digest(31, INBOX),
            keccak256(&expected)
        );
    }

    #[test]
    fn every_field_of_a_decision_changes_its_digest() {
        let base = decision(HoldAction::Release);
        let others = [
            decision(HoldAction::Reject).evm_digest(1, INBOX),
            HoldDecision { origin: 8, ..base }.evm_digest(1, INBOX),
            HoldDecision {
                id: [0x45; 32],
                ..base
            }
            .evm_digest(1, INBOX),
            base.evm_digest(2, INBOX),
            base.evm_digest(1, [0x12; 20]),
            base.pallet_digest([0; 32], 1),
        ];
        for other in others {
            assert_ne!(base.evm_digest(1, INBOX), other);
        }
        assert_ne!(
            base.pallet_digest([0xab; 32], 3),
            decision(HoldAction::Reject).pallet_digest([0xab; 32], 3)
        );
        assert_ne!(
            base.pallet_digest([0xab; 32], 3),
            base.pallet_digest([0xab; 32], 4)
        );
    }

    #[test]
    fn the_limit_digest_binds_every_value_and_the_version() {
        let base = LimitChange {
            origin: 2,
            debtor: [0xd1; 32],
            capacity: 1_000,
            window: 86_400,
            large_value: 500,
            version: 2,
        };
        let mut expected = Vec::new();
        expected.extend_from_slice(&keccak256(b"isthmus clearing limit change v1"));
        expected.extend_from_slice(&word(31));
        expected.extend_from_slice(&INBOX);
        expected.extend_from_slice(&[0, 0, 0, 2]);
        expected.extend_from_slice(&[0xd1; 32]);
        expected.extend_from_slice(&1_000u128.to_be_bytes());
        expected.extend_from_slice(&86_400u32.to_be_bytes());
        expected.extend_from_slice(&500u128.to_be_bytes());
        expected.extend_from_slice(&2u32.to_be_bytes());
        assert_eq!(base.evm_digest(31, INBOX), keccak256(&expected));
        let others = [
            LimitChange { origin: 3, ..base },
            LimitChange {
                debtor: [0; 32],
                ..base
            },
            LimitChange {
                capacity: 1_001,
                ..base
            },
            LimitChange { window: 1, ..base },
            LimitChange {
                large_value: 0,
                ..base
            },
            LimitChange { version: 3, ..base },
        ];
        for other in others {
            assert_ne!(base.evm_digest(31, INBOX), other.evm_digest(31, INBOX));
            assert_ne!(
                base.pallet_digest([1; 32], 1),
                other.pallet_digest([1; 32], 1)
            );
        }
        assert_ne!(
            base.pallet_digest([1; 32], 1),
            base.pallet_digest([1; 32], 2)
        );
    }
}
