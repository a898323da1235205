//! The pallet's route control: what a relayer reads to know whether a route is
//! paused ([`Destination::route_state`]), and the submission of a pause one member
//! signed or of a resume a quorum signed ([`Destination::control_route`]).

use isthmus_protocol::{Attestation, RouteAction, RouteControl, RouteState};
use parity_scale_codec::Decode;

use crate::destination::{Destination, Receipt};
use crate::signer_sets::genesis_hash;
use crate::{keys, Error};

/// A stored `RouteStates` entry (`(paused, epoch)`); an absent one is an open route
/// at epoch 0.
pub fn route_state(stored: Option<&[u8]>) -> Result<RouteState, Error> {
    let Some(mut bytes) = stored else {
        return Ok(RouteState::default());
    };
    let (paused, epoch) = <(bool, u64)>::decode(&mut bytes).map_err(|e| Error::Malformed {
        what: "Isthmus::RouteStates entry",
        reason: e.to_string(),
    })?;
    Ok(RouteState { paused, epoch })
}

impl Destination {
    /// Whether the route from `origin` is paused on this pallet, and its epoch, at the
    /// node's finalized head.
    pub async fn route_state(&self, origin: u32) -> Result<RouteState, Error> {
        let (_, head) = self.client().finalized_head().await?;
        let stored = self
            .client()
            .storage(&keys::route_state_key(origin), Some(head))
            .await?;
        route_state(stored.as_deref())
    }

    /// The digest members sign for `control` on this pallet, whose ledger id is
    /// `ledger`.
    pub async fn route_control_digest(
        &self,
        control: &RouteControl,
        ledger: u32,
    ) -> Result<[u8; 32], Error> {
        Ok(control.pallet_digest(genesis_hash(self.client()).await?, ledger))
    }

    /// Submits `control` with its `signatures` (one member's for a pause, a quorum's
    /// for a resume) and waits until a finalized block includes it; a refusal is
    /// [`Error::Refused`].
    pub async fn control_route(
        &self,
        control: &RouteControl,
        signatures: &[Attestation],
    ) -> Result<Receipt, Error> {
        match control.action {
            RouteAction::Pause => {
                let signature = signatures.first().ok_or_else(|| Error::Malformed {
                    what: "pause_route",
                    reason: "a pause needs one member's signature; none was given".into(),
                })?;
                let payload = subxt::dynamic::transaction(
                    keys::PALLET,
                    "pause_route",
                    (control.origin, signature.0),
                );
                self.submit(&payload).await
            }
            RouteAction::Resume => {
                let payload = subxt::dynamic::transaction(
                    keys::PALLET,
                    "resume_route",
                    (
                        control.origin,
                        signatures.iter().map(|a| a.0).collect::<Vec<[u8; 65]>>(),
                    ),
                );
                self.submit(&payload).await
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
    use parity_scale_codec::Encode;

    #[test]
    fn a_stored_route_state_reads_as_paused_and_its_epoch() {
        assert_eq!(route_state(None).unwrap(), RouteState::default());
        let stored = (true, 3u64).encode();
        assert_eq!(
            route_state(Some(&stored)).unwrap(),
            RouteState {
                paused: true,
                epoch: 3
            }
        );
        assert!(route_state(Some(&[1u8, 2])).is_err());
    }
}
