//! Route pause and resume: what the consortium's members sign to stop and restart
//! the delivery of one origin's messages on one destination.
//!
//! Any one member of the origin's current signer set pauses a route at once: its
//! signature over the pause digest is enough. Resuming needs a quorum of that set
//! over the resume digest. While a route is paused the destination refuses every
//! submission of the origin's checkpoints, so nothing is executed and nothing is
//! consumed: the messages wait and are delivered, in any order the relayers choose
//! (as always), after the resume.
//!
//! Both digests bind the destination endpoint (an EVM chain id and Inbox address, or
//! a Substrate chain's genesis hash and ledger id) and the route's **epoch**, the number of resumes so far. A resume moves the epoch
//! on, so a pause signature cannot be used again after the route was resumed, and a
//! quorum's resume signatures resume once.

use crate::{keccak256, keccak256_concat};

/// Domain tag of the EVM Inbox's pause digest.
pub const EVM_PAUSE_TAG: &[u8] = b"isthmus route pause v1";
/// Domain tag of the EVM Inbox's resume digest.
pub const EVM_RESUME_TAG: &[u8] = b"isthmus route resume v1";
/// Domain tag of the pallet's pause digest.
pub const PALLET_PAUSE_TAG: &[u8] = b"isthmus pallet route pause v1";
/// Domain tag of the pallet's resume digest.
pub const PALLET_RESUME_TAG: &[u8] = b"isthmus pallet route resume v1";

/// What a control does to a route.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RouteAction {
    /// Stop the route at once: one member's signature.
    Pause,
    /// Start it again: a quorum's signatures.
    Resume,
}

impl RouteAction {
    /// `pause` or `resume`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Pause => "pause",
            Self::Resume => "resume",
        }
    }

    /// Signatures of the current set a control needs, under `threshold`.
    pub const fn signatures_needed(self, threshold: usize) -> usize {
        match self {
            Self::Pause => 1,
            Self::Resume => threshold,
        }
    }
}

/// A pause or resume of `origin`'s route at `epoch`, as the members authorise it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RouteControl {
    /// The origin ledger whose messages stop or start.
    pub origin: u32,
    /// Pause or resume.
    pub action: RouteAction,
    /// The route's epoch on the destination: the resumes so far.
    pub epoch: u64,
}

/// A route's state on its destination.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RouteState {
    /// Submissions of the origin's checkpoints are refused.
    pub paused: bool,
    /// Resumes so far; the next control names it.
    pub epoch: u64,
}

impl RouteState {
    /// The control that would change this state: a pause of an open route, the
    /// resume of a paused one.
    pub const fn next(&self, origin: u32) -> RouteControl {
        RouteControl {
            origin,
            action: if self.paused {
                RouteAction::Resume
            } else {
                RouteAction::Pause
            },
            epoch: self.epoch,
        }
    }
}

impl RouteControl {
    /// The digest for the Inbox at `inbox` on the chain `chain_id`, as
    /// `Inbox.routeControlDigest` computes it: `keccak256(keccak256(tag) ‖ chainid
    /// (32 bytes) ‖ inbox (20) ‖ origin (4) ‖ epoch (8))`, big-endian integers, with
    /// the tag `isthmus route pause v1` or `isthmus route resume v1`.
    pub fn evm_digest(&self, chain_id: u64, inbox: [u8; 20]) -> [u8; 32] {
        let tag = match self.action {
            RouteAction::Pause => EVM_PAUSE_TAG,
            RouteAction::Resume => EVM_RESUME_TAG,
        };
        let mut chain = [0u8; 32];
        chain[24..].copy_from_slice(&chain_id.to_be_bytes());
        keccak256_concat(&[
            &keccak256(tag),
            &chain,
            &inbox,
            &self.origin.to_be_bytes(),
            &self.epoch.to_be_bytes(),
        ])
    }

    /// The digest for the pallet of the chain with genesis hash `genesis`, whose
    /// ledger id is `ledger`: `keccak256(keccak256(tag) ‖ genesis (32) ‖ ledger (4) ‖
    /// origin (4) ‖ epoch (8))`, big-endian integers, with the tag `isthmus pallet
    /// route pause v1` or `isthmus pallet route resume v1`.
    pub fn pallet_digest(&self, genesis: [u8; 32], ledger: u32) -> [u8; 32] {
        let tag = match self.action {
            RouteAction::Pause => PALLET_PAUSE_TAG,
            RouteAction::Resume => PALLET_RESUME_TAG,
        };
        keccak256_concat(&[
            &keccak256(tag),
            &genesis,
            &ledger.to_be_bytes(),
            &self.origin.to_be_bytes(),
            &self.epoch.to_be_bytes(),
        ])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const INBOX: [u8; 20] = [0x11; 20];

    fn control(action: RouteAction, epoch: u64) -> RouteControl {
        RouteControl {
            origin: 7,
            action,
            epoch,
        }
    }

    #[test]
    fn the_evm_digest_is_the_inbox_encoding() {
        let mut expected = Vec::new();
        expected.extend_from_slice(&keccak256(b"isthmus route pause v1"));
        expected.extend_from_slice(&[0u8; 31]);
        expected.push(31);
        expected.extend_from_slice(&INBOX);
        expected.extend_from_slice(&[0, 0, 0, 7]);
        expected.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 2]);
        assert_eq!(
            control(RouteAction::Pause, 2).evm_digest(31, INBOX),
            keccak256(&expected)
        );
    }

    #[test]
    fn the_pallet_digest_is_the_pallet_encoding_and_differs_from_the_inbox_one() {
        let mut expected = Vec::new();
        expected.extend_from_slice(&keccak256(b"isthmus pallet route resume v1"));
        expected.extend_from_slice(&[0xab; 32]);
        expected.extend_from_slice(&[0, 0, 0, 3]);
        expected.extend_from_slice(&[0, 0, 0, 7]);
        expected.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 1]);
        let resume = control(RouteAction::Resume, 1);
        assert_eq!(resume.pallet_digest([0xab; 32], 3), keccak256(&expected));
        assert_ne!(
            resume.pallet_digest([0xab; 32], 3),
            control(RouteAction::Pause, 1).pallet_digest([0xab; 32], 3)
        );
        assert_ne!(
            resume.pallet_digest([0xab; 32], 3),
            resume.pallet_digest([0xab; 32], 4)
        );
    }

    #[test]
    fn every_field_changes_the_digest() {
        let base = control(RouteAction::Pause, 0).evm_digest(1, INBOX);
        let others = [
            control(RouteAction::Resume, 0).evm_digest(1, INBOX),
            control(RouteAction::Pause, 1).evm_digest(1, INBOX),
            RouteControl {
                origin: 8,
                ..control(RouteAction::Pause, 0)
            }
            .evm_digest(1, INBOX),
            control(RouteAction::Pause, 0).evm_digest(2, INBOX),
            control(RouteAction::Pause, 0).evm_digest(1, [0x12; 20]),
        ];
        for other in others {
            assert_ne!(base, other);
        }
    }

    #[test]
    fn one_signature_pauses_and_a_quorum_resumes() {
        assert_eq!(RouteAction::Pause.signatures_needed(2), 1);
        assert_eq!(RouteAction::Resume.signatures_needed(2), 2);
        let open = RouteState::default();
        assert_eq!(open.next(7), control(RouteAction::Pause, 0));
        let paused = RouteState {
            paused: true,
            epoch: 3,
        };
        assert_eq!(paused.next(7), control(RouteAction::Resume, 3));
    }
}
