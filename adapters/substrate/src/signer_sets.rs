//! The pallet's signer sets: what a relayer reads to follow them
//! ([`Destination::signer_sets`]), and the submission of an update its current
//! signers authorised ([`Destination::update_signers`]).

use isthmus_protocol::{ActiveSigners, Attestation, SignerSet, SignerSetUpdate};
use parity_scale_codec::Decode;

use crate::destination::{Destination, Receipt};
use crate::{keys, Error, SubstrateClient};

/// `pallet_isthmus::OriginConfig` as stored (SCALE), for reading it without the
/// runtime's types.
#[derive(Decode)]
struct StoredOrigin {
    _outbox: [u8; 32],
    signers: Vec<[u8; 20]>,
    threshold: u32,
    version: u64,
    previous_signers: Vec<[u8; 20]>,
    previous_threshold: u32,
    previous_until: u64,
}

/// The sets of a stored `Origins` entry.
pub fn active_signers(stored: &[u8]) -> Result<ActiveSigners, Error> {
    let malformed = |reason: String| Error::Malformed {
        what: "Isthmus::Origins entry",
        reason,
    };
    let o = StoredOrigin::decode(&mut &stored[..]).map_err(|e| malformed(e.to_string()))?;
    let set = |signers: Vec<[u8; 20]>, threshold: u32| {
        SignerSet::new(signers, threshold as usize).map_err(|e| malformed(e.to_string()))
    };
    let previous = if o.previous_threshold == 0 {
        None
    } else {
        Some((
            set(o.previous_signers, o.previous_threshold)?,
            o.previous_until,
        ))
    };
    Ok(ActiveSigners {
        version: o.version,
        current: set(o.signers, o.threshold)?,
        previous,
    })
}

/// The chain's genesis hash as the runtime knows it (`System::BlockHash[0]`), which
/// the update digest binds.
pub async fn genesis_hash(client: &SubstrateClient) -> Result<[u8; 32], Error> {
    let raw = client
        .storage(&keys::block_hash_key(0), None)
        .await?
        .ok_or_else(|| Error::Malformed {
            what: "System::BlockHash[0]",
            reason: "absent".into(),
        })?;
    <[u8; 32]>::try_from(raw.as_slice()).map_err(|_| Error::Malformed {
        what: "System::BlockHash[0]",
        reason: format!("{} bytes, 32 expected", raw.len()),
    })
}

impl Destination {
    /// The signer sets the pallet accepts for `origin`'s checkpoints, at the node's
    /// finalized head.
    pub async fn signer_sets(&self, origin: u32) -> Result<ActiveSigners, Error> {
        let (_, head) = self.client().finalized_head().await?;
        let stored = self
            .client()
            .storage(&keys::origin_key(origin), Some(head))
            .await?
            .ok_or_else(|| Error::Malformed {
                what: "Isthmus::Origins entry",
                reason: format!(
                    "the pallet has no signer set for origin {origin}: the admin sets each \
                     origin up once (set_origin)"
                ),
            })?;
        active_signers(&stored)
    }

    /// The digest the current signers sign to authorise `update` on this pallet, whose
    /// ledger id is `ledger`.
    pub async fn update_digest(
        &self,
        update: &SignerSetUpdate,
        ledger: u32,
    ) -> Result<[u8; 32], Error> {
        Ok(update.pallet_digest(genesis_hash(self.client()).await?, ledger))
    }

    /// Submits `update` with the current signers' `signatures` and waits until a
    /// finalized block includes it; a refusal is [`Error::Refused`].
    pub async fn update_signers(
        &self,
        update: &SignerSetUpdate,
        signatures: &[Attestation],
    ) -> Result<Receipt, Error> {
        let payload = subxt::dynamic::transaction(
            keys::PALLET,
            "update_signers",
            (
                update.origin,
                update.signers.clone(),
                u32::from(update.threshold),
                update.version,
                update.overlap_s,
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
    fn a_stored_origin_becomes_the_active_sets() {
        let stored = |previous: Vec<[u8; 20]>, previous_threshold: u32| {
            (
                [0u8; 32],
                vec![[3u8; 20], [2u8; 20]],
                2u32,
                1u64,
                previous,
                previous_threshold,
                99u64,
            )
                .encode()
        };
        let rotated = active_signers(&stored(vec![[1; 20], [2; 20]], 1)).unwrap();
        assert_eq!(rotated.version, 1);
        assert_eq!(rotated.current.signers(), &[[3; 20], [2; 20]]);
        let (previous, until) = rotated.previous.unwrap();
        assert_eq!((previous.threshold(), until), (1, 99));
        assert_eq!(active_signers(&stored(vec![], 0)).unwrap().previous, None);
        assert!(active_signers(&[1, 2, 3]).is_err());
    }
}
