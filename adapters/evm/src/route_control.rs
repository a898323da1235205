//! The Inbox's route control: what a relayer reads to know whether a route is
//! paused ([`EvmDestination::route_state`]), and the submission of a pause one
//! member signed or of a resume a quorum signed.

use ethers::types::Bytes;
use isthmus_protocol::{Attestation, DeliveryRef, RouteAction, RouteControl, RouteState};

use crate::destination::contract_error;
use crate::signer_sets::send_governance;
use crate::{EvmDestination, EvmError};

impl EvmDestination {
    /// Whether the route from `origin` is paused on this Inbox, and its epoch, at the
    /// node's latest block.
    pub async fn route_state(&self, origin: u32) -> Result<RouteState, EvmError> {
        let (paused, epoch) = self
            .inbox()
            .route_state(origin)
            .call()
            .await
            .map_err(|e| contract_error("routeState", e))?;
        Ok(RouteState { paused, epoch })
    }

    /// The digest members sign for `control` on this Inbox.
    pub async fn route_control_digest(&self, control: &RouteControl) -> Result<[u8; 32], EvmError> {
        Ok(control.evm_digest(self.chain_id().await?, self.inbox().address().0))
    }

    /// Submits `control` with its `signatures` (one member's for a pause, a quorum's
    /// for a resume) and waits for its receipt. A refusal (not a signer, no quorum,
    /// a route already paused or not paused) is [`EvmError::Reverted`] naming it.
    pub async fn control_route(
        &self,
        control: &RouteControl,
        signatures: &[Attestation],
    ) -> Result<DeliveryRef, EvmError> {
        let bytes = |a: &Attestation| Bytes::from(a.0.to_vec());
        match control.action {
            RouteAction::Pause => {
                let signature = signatures.first().ok_or_else(|| EvmError::Reverted {
                    call: "pause",
                    reason: "a pause needs one member's signature; none was given".into(),
                })?;
                send_governance(
                    self.inbox().pause(control.origin, bytes(signature)),
                    "pause",
                )
                .await
            }
            RouteAction::Resume => {
                send_governance(
                    self.inbox()
                        .resume(control.origin, signatures.iter().map(bytes).collect()),
                    "resume",
                )
                .await
            }
        }
    }
}
