//! The Inbox's signer sets: what a relayer reads to follow them
//! ([`EvmDestination::signer_sets`]), and the submission of an update its current
//! signers authorised ([`EvmDestination::update_signers`]).

use ethers::types::{Address, H256, U64};
use isthmus_protocol::{
    ActiveSigners, Attestation, DeliveryRef, EvmAddress, SignerSet, SignerSetUpdate,
};

use crate::destination::contract_error;
use crate::{EvmDestination, EvmError};

/// The sets from `Inbox.signerSets`' answer; `None` when the origin is not set up.
pub fn active_signers(
    version: u64,
    signers: Vec<Address>,
    threshold: u8,
    previous: Vec<Address>,
    previous_threshold: u8,
    previous_until: u64,
) -> Result<Option<ActiveSigners>, String> {
    if threshold == 0 {
        return Ok(None);
    }
    let set = |signers: Vec<Address>, threshold: u8| {
        SignerSet::new(
            signers
                .into_iter()
                .map(|a| a.0)
                .collect::<Vec<EvmAddress>>(),
            usize::from(threshold),
        )
        .map_err(|e| format!("the Inbox holds an invalid signer set: {e}"))
    };
    let previous = if previous_threshold == 0 {
        None
    } else {
        Some((set(previous, previous_threshold)?, previous_until))
    };
    Ok(Some(ActiveSigners {
        version,
        current: set(signers, threshold)?,
        previous,
    }))
}

impl EvmDestination {
    /// The signer sets the Inbox accepts for `origin`'s checkpoints, at the node's
    /// latest block.
    pub async fn signer_sets(&self, origin: u32) -> Result<ActiveSigners, EvmError> {
        let (version, signers, threshold, previous, previous_threshold, previous_until) = self
            .inbox()
            .signer_sets(origin)
            .call()
            .await
            .map_err(|e| contract_error("signerSets", e))?;
        active_signers(
            version,
            signers,
            threshold,
            previous,
            previous_threshold,
            previous_until,
        )
        .map_err(|detail| EvmError::BadResponse {
            call: "signerSets",
            detail,
        })?
        .ok_or_else(|| {
            EvmError::Config(format!(
                "the Inbox at {:?} has no signer set for origin {origin}: the admin sets \
                 each origin up once (setOrigin)",
                self.inbox().address()
            ))
        })
    }

    /// The chain id of the node, which the update digest binds.
    pub async fn chain_id(&self) -> Result<u64, EvmError> {
        use ethers::providers::Middleware;
        let id = self
            .inbox()
            .client()
            .get_chainid()
            .await
            .map_err(|e| EvmError::Transient {
                call: "eth_chainId",
                detail: e.to_string(),
            })?;
        Ok(id.as_u64())
    }

    /// The digest the current signers sign to authorise `update` on this Inbox.
    pub async fn update_digest(&self, update: &SignerSetUpdate) -> Result<[u8; 32], EvmError> {
        Ok(update.evm_digest(self.chain_id().await?, self.inbox().address().0))
    }

    /// Submits `update` with the current signers' `signatures` and waits for its
    /// receipt ([`send_governance`]; a refusal is a missing quorum, a wrong version).
    pub async fn update_signers(
        &self,
        update: &SignerSetUpdate,
        signatures: &[Attestation],
    ) -> Result<DeliveryRef, EvmError> {
        let call = self.inbox().update_signers(
            update.origin,
            update.signers.iter().map(|s| Address::from(*s)).collect(),
            update.threshold,
            update.version,
            update.overlap_s,
            signatures
                .iter()
                .map(|a| ethers::types::Bytes::from(a.0.to_vec()))
                .collect(),
        );
        send_governance(call, "updateSigners").await
    }
}

/// Sends a governance call (a signer-set update, a route pause or resume) and waits
/// for its receipt. A refusal is [`EvmError::Reverted`] with the Inbox's error, found
/// by a simulation before anything is sent.
pub(crate) async fn send_governance(
    call: ethers::contract::ContractCall<crate::destination::Client, ()>,
    name: &'static str,
) -> Result<DeliveryRef, EvmError> {
    call.call().await.map_err(|e| contract_error(name, e))?;
    let pending = call.send().await.map_err(|e| contract_error(name, e))?;
    let tx_hash: H256 = *pending;
    let receipt = pending
        .await
        .map_err(|e| EvmError::from_provider("eth_getTransactionReceipt", e))?
        .ok_or_else(|| EvmError::BadResponse {
            call: name,
            detail: "the transaction was dropped".into(),
        })?;
    if receipt.status != Some(U64::one()) {
        return Err(EvmError::Reverted {
            call: name,
            reason: "the transaction reverted when mined".into(),
        });
    }
    Ok(DeliveryRef {
        tx_hash: tx_hash.0,
        block: isthmus_protocol::BlockRef {
            number: receipt.block_number.map_or(0, |n| n.as_u64()),
            hash: receipt.block_hash.map_or([0u8; 32], |h| h.0),
        },
    })
}

#[cfg(test)]
mod tests {
    #![allow(
        clippy::unwrap_used,
        reason = "test code: a failed unwrap is a failed test"
    )]

    use super::*;

    #[test]
    fn the_inbox_answer_becomes_the_active_sets() {
        let a = |n: u8| Address::from([n; 20]);
        assert_eq!(active_signers(0, vec![], 0, vec![], 0, 0), Ok(None));
        let initial = active_signers(0, vec![a(1), a(2)], 2, vec![], 0, 0)
            .unwrap()
            .unwrap();
        assert_eq!(initial.previous, None);
        assert_eq!(initial.current.signers(), &[[1; 20], [2; 20]]);
        let rotated = active_signers(1, vec![a(3), a(2)], 1, vec![a(1), a(2)], 2, 77)
            .unwrap()
            .unwrap();
        assert_eq!(rotated.version, 1);
        let (previous, until) = rotated.previous.unwrap();
        assert_eq!((previous.threshold(), until), (2, 77));
        assert!(active_signers(0, vec![a(1)], 2, vec![], 0, 0).is_err());
    }
}
