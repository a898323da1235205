//! The pallet's holds: what a relayer reads of a held message
//! ([`Destination::hold`]), the digest members sign to decide it, and the submission
//! of a quorum's decision (docs/protocol.md, "Holds").

use isthmus_protocol::{Attestation, Hold, HoldAction, HoldDecision, HoldState};
use parity_scale_codec::Decode;

use crate::destination::{Destination, Receipt};
use crate::signer_sets::genesis_hash;
use crate::{keys, Error};

/// A stored `Holds` entry (SCALE: state as a one-byte enum index, origin `u32`,
/// since `u64`, reason 32 bytes); an absent one is no hold.
pub fn hold(stored: Option<&[u8]>) -> Result<Option<Hold>, Error> {
    let Some(mut bytes) = stored else {
        return Ok(None);
    };
    let malformed = |reason: String| Error::Malformed {
        what: "Isthmus::Holds entry",
        reason,
    };
    let (state, origin, since, reason) =
        <(u8, u32, u64, [u8; 32])>::decode(&mut bytes).map_err(|e| malformed(e.to_string()))?;
    let state = match state {
        0 => HoldState::Held,
        1 => HoldState::Released,
        2 => HoldState::Rejected,
        other => {
            return Err(malformed(format!(
                "hold state {other} is none the pallet defines"
            )))
        }
    };
    Ok(Some(Hold {
        state,
        origin,
        since,
        reason,
    }))
}

impl Destination {
    /// The hold of message `id` on this pallet at the node's finalized head, if it is
    /// held and not ended.
    pub async fn hold(&self, id: [u8; 32]) -> Result<Option<Hold>, Error> {
        let (_, head) = self.client().finalized_head().await?;
        let stored = self
            .client()
            .storage(&keys::hold_key(&id), Some(head))
            .await?;
        hold(stored.as_deref())
    }

    /// The digest members sign for `decision` on this pallet, whose ledger id is
    /// `ledger`.
    pub async fn hold_decision_digest(
        &self,
        decision: &HoldDecision,
        ledger: u32,
    ) -> Result<[u8; 32], Error> {
        Ok(decision.pallet_digest(genesis_hash(self.client()).await?, ledger))
    }

    /// Submits a quorum's `signatures` over `decision` and waits until a finalized
    /// block includes it; a refusal is [`Error::Refused`].
    pub async fn decide_hold(
        &self,
        decision: &HoldDecision,
        signatures: &[Attestation],
    ) -> Result<Receipt, Error> {
        let call = match decision.action {
            HoldAction::Release => "release_hold",
            HoldAction::Reject => "reject_hold",
        };
        let payload = subxt::dynamic::transaction(
            keys::PALLET,
            call,
            (
                decision.origin,
                decision.id,
                signatures.iter().map(|a| a.0).collect::<Vec<[u8; 65]>>(),
            ),
        );
        self.submit(&payload).await
    }
}

#[cfg(test)]
mod tests {
    #![allow(
        clippy::unwrap_used,
        reason = "test code: a failed unwrap is a failed test"
    )]

    use super::*;
    use parity_scale_codec::Encode;

    #[test]
    fn a_stored_hold_reads_as_its_state_origin_time_and_reason() {
        assert_eq!(hold(None).unwrap(), None);
        let stored = (1u8, 7u32, 1_000u64, [9u8; 32]).encode();
        assert_eq!(
            hold(Some(&stored)).unwrap(),
            Some(Hold {
                state: HoldState::Released,
                origin: 7,
                since: 1_000,
                reason: [9; 32]
            })
        );
        assert!(hold(Some(&(5u8, 7u32, 1u64, [0u8; 32]).encode())).is_err());
        assert!(hold(Some(&[0u8, 1])).is_err());
    }
}
