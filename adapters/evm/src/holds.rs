//! The Inbox's holds: what a relayer reads of a held message
//! ([`EvmDestination::hold`]), the digest members sign to decide it, and the
//! submission of a quorum's decision (docs/protocol.md, "Holds").

use ethers::types::Bytes;
use isthmus_protocol::{Attestation, DeliveryRef, Hold, HoldAction, HoldDecision, HoldState};

use crate::destination::contract_error;
use crate::signer_sets::send_governance;
use crate::{EvmDestination, EvmError};

/// The Inbox's `holds(id)` fields as a [`Hold`]; `None` when the message is not held
/// (never held, or ended).
pub fn hold_of(
    state: u8,
    origin: u32,
    since: u64,
    reason: [u8; 32],
) -> Result<Option<Hold>, EvmError> {
    let state = match state {
        0 => return Ok(None),
        1 => HoldState::Held,
        2 => HoldState::Released,
        3 => HoldState::Rejected,
        other => {
            return Err(EvmError::BadResponse {
                call: "holds",
                detail: format!("hold state {other} is none the Inbox defines"),
            })
        }
    };
    Ok(Some(Hold {
        state,
        origin,
        since,
        reason,
    }))
}

impl EvmDestination {
    /// The hold of message `id` on this Inbox at the node's latest block, if it is
    /// held and not ended.
    pub async fn hold(&self, id: [u8; 32]) -> Result<Option<Hold>, EvmError> {
        let (state, origin, since, reason) = self
            .inbox()
            .holds(id)
            .call()
            .await
            .map_err(|e| contract_error("holds", e))?;
        hold_of(state, origin, since, reason)
    }

    /// The digest members sign for `decision` on this Inbox.
    pub async fn hold_decision_digest(
        &self,
        decision: &HoldDecision,
    ) -> Result<[u8; 32], EvmError> {
        Ok(decision.evm_digest(self.chain_id().await?, self.inbox().address().0))
    }

    /// Submits a quorum's `signatures` over `decision` and waits for its receipt. A
    /// refusal (not held, expired, no quorum) is [`EvmError::Reverted`] naming it.
    pub async fn decide_hold(
        &self,
        decision: &HoldDecision,
        signatures: &[Attestation],
    ) -> Result<DeliveryRef, EvmError> {
        let signatures: Vec<Bytes> = signatures
            .iter()
            .map(|a| Bytes::from(a.0.to_vec()))
            .collect();
        match decision.action {
            HoldAction::Release => {
                send_governance(
                    self.inbox()
                        .release_hold(decision.origin, decision.id, signatures),
                    "releaseHold",
                )
                .await
            }
            HoldAction::Reject => {
                send_governance(
                    self.inbox()
                        .reject_hold(decision.origin, decision.id, signatures),
                    "rejectHold",
                )
                .await
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(
        clippy::unwrap_used,
        reason = "test code: a failed unwrap is a failed test"
    )]

    use super::*;

    #[test]
    fn the_inbox_hold_states_read_as_holds() {
        assert_eq!(hold_of(0, 1, 0, [0; 32]).unwrap(), None);
        let held = hold_of(1, 7, 1_000, [9; 32]).unwrap().unwrap();
        assert_eq!(
            (held.state, held.origin, held.since, held.reason),
            (HoldState::Held, 7, 1_000, [9; 32])
        );
        assert_eq!(
            hold_of(2, 7, 1, [0; 32]).unwrap().unwrap().state,
            HoldState::Released
        );
        assert_eq!(
            hold_of(3, 7, 1, [0; 32]).unwrap().unwrap().state,
            HoldState::Rejected
        );
        assert!(hold_of(4, 7, 1, [0; 32]).is_err());
    }
}
