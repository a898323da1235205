//! Proof-carrying values: what a light client verified, and nothing else.
//!
//! A [`VerifiedCheckpoint`] can only be built from the light client's own
//! proof-carrying outputs (`Verified<Header>` and `Verified<ProvenAccount>`, which
//! only `isthmus-light-client-evm` constructs), so the signer in [`crate::attest`]
//! cannot be handed a checkpoint that was not verified: the guarantee is in the
//! types, not in the call order. On Substrate ledgers the same holds through
//! `VerifiedOutbox`, which is only read out of a GRANDPA-finalized header.

use isthmus_adapter_substrate::VerifiedOutbox;
use isthmus_light_client_evm::{Header, ProvenAccount, Verified, B256};
use isthmus_protocol::{Address32, Attestation, AttestationError, Checkpoint, EvmAddress};

/// Why verified evidence does not make a checkpoint.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CheckpointError {
    /// The account proof was verified against another block than the header's.
    #[error("the outbox proof is for block {proof:?}, the header is {header:?}")]
    BlockMismatch {
        /// Block hash the proof is bound to.
        proof: String,
        /// The verified header's hash.
        header: String,
    },
    /// The proof is of another account than the configured outbox.
    #[error("the proof is of account {0}, not of the outbox")]
    WrongAccount(String),
    /// A committed slot is missing from the proof or out of range.
    #[error("outbox slot {slot} is {reason}")]
    Slot {
        /// The slot.
        slot: u64,
        /// What is wrong.
        reason: String,
    },
}

/// A checkpoint whose root and count were proven against a final source header.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifiedCheckpoint {
    checkpoint: Checkpoint,
    /// How finality was established: `finalized-tag (trusted from the node)`, the
    /// sealing validators and their set, or the GRANDPA justification.
    finality: String,
}

impl VerifiedCheckpoint {
    /// Builds the checkpoint of EVM ledger `origin` from a verified header and the
    /// verified `eth_getProof` of its Outbox (`root` in slot 0, `count` in slot 33).
    /// `finality` says, for the records, what proved the header (the protocol, who
    /// sealed it and the validator set).
    pub fn from_evm(
        origin: u32,
        outbox: [u8; 20],
        header: &Verified<Header>,
        account: &Verified<ProvenAccount>,
        finality: &str,
    ) -> Result<Self, CheckpointError> {
        if account.block_hash() != header.block_hash() {
            return Err(CheckpointError::BlockMismatch {
                proof: account.block_hash().to_string(),
                header: header.block_hash().to_string(),
            });
        }
        if account.value().address().0 != outbox {
            return Err(CheckpointError::WrongAccount(
                account.value().address().to_string(),
            ));
        }
        let slot = |n: u64| -> Result<[u8; 32], CheckpointError> {
            let mut key = [0u8; 32];
            key[24..].copy_from_slice(&n.to_be_bytes());
            account
                .value()
                .slot(&B256(key))
                .map(|v| v.0)
                .map_err(|e| CheckpointError::Slot {
                    slot: n,
                    reason: e.to_string(),
                })
        };
        let root = slot(isthmus_adapter_evm::OUTBOX_ROOT_SLOT)?;
        let count_word = slot(isthmus_adapter_evm::OUTBOX_COUNT_SLOT)?;
        if count_word[..28].iter().any(|b| *b != 0) {
            return Err(CheckpointError::Slot {
                slot: isthmus_adapter_evm::OUTBOX_COUNT_SLOT,
                reason: "larger than a tree can hold".into(),
            });
        }
        let count = u32::from_be_bytes([
            count_word[28],
            count_word[29],
            count_word[30],
            count_word[31],
        ]);
        let finality = finality.to_owned();
        Ok(Self {
            checkpoint: Checkpoint {
                origin,
                outbox: Address32::from_evm(outbox),
                root,
                count,
                block_number: header.value().number,
                block_hash: header.block_hash().0,
            },
            finality,
        })
    }

    /// Builds the checkpoint of Substrate ledger `origin` from the outbox commitment
    /// read out of a GRANDPA-finalized header (a [`VerifiedOutbox`] has no other
    /// constructor). `finality` names how the justification was obtained.
    pub fn from_substrate(origin: u32, outbox: &VerifiedOutbox, finality: &str) -> Self {
        Self {
            checkpoint: outbox.checkpoint(origin),
            finality: finality.to_owned(),
        }
    }

    /// The checkpoint.
    pub fn checkpoint(&self) -> &Checkpoint {
        &self.checkpoint
    }

    /// How the source block's finality was established, for the records.
    pub fn finality(&self) -> &str {
        &self.finality
    }
}

#[cfg(test)]
impl VerifiedCheckpoint {
    /// A checkpoint taken as verified, for the pipeline's unit tests with a fake
    /// ledger (compiled into tests only: production code has no way around the
    /// light client).
    pub(crate) fn assumed_for_tests(checkpoint: Checkpoint) -> Self {
        Self {
            checkpoint,
            finality: "assumed (unit test)".to_owned(),
        }
    }
}

/// The signer of an attestation over `digest`, under the protocol's strict rules
/// ([`Attestation::check_encoding`]), recovered with libsecp256k1 (the backend the
/// EVM light client uses, about 4.5 times faster than `k256` here): the same
/// address as [`Attestation::recover`], or the same refusal.
pub fn recover_signer(
    attestation: &Attestation,
    digest: &[u8; 32],
) -> Result<EvmAddress, AttestationError> {
    attestation.check_encoding()?;
    isthmus_light_client_evm::recover_address(&B256(*digest), &attestation.0)
        .map(|a| a.0)
        .map_err(|_| AttestationError::Unrecoverable)
}

#[cfg(test)]
mod recovery_tests {
    use isthmus_protocol::Attestation;
    use k256::ecdsa::SigningKey;
    use proptest::prelude::*;

    use super::recover_signer;

    proptest! {
        /// Both backends agree on every attestation: valid ones, and ones with any
        /// byte changed (a high s, a bad v, a scalar out of range, another signer).
        #[test]
        fn libsecp256k1_recovery_agrees_with_the_protocol(
            secret in prop::array::uniform32(1u8..),
            digest in prop::array::uniform32(any::<u8>()),
            flip in any::<(usize, u8)>(),
        ) {
            let key = SigningKey::from_bytes(&secret.into()).unwrap_or_else(|_| {
                SigningKey::from_bytes(&[7u8; 32].into()).expect("valid key")
            });
            let att = Attestation::sign(&key, &digest).expect("signs");
            prop_assert_eq!(recover_signer(&att, &digest), att.recover(&digest));
            let mut bad = att;
            bad.0[flip.0 % 65] ^= flip.1.max(1);
            prop_assert_eq!(recover_signer(&bad, &digest), bad.recover(&digest));
            // The malleated twin (n - s, v flipped) is refused by both.
            let mut n = [0u8; 32];
            hex::decode_to_slice(
                "fffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141",
                &mut n,
            )
            .expect("the group order");
            let mut s = [0u8; 32];
            let mut borrow = 0i16;
            for i in (0..32).rev() {
                let d = i16::from(n[i]) - i16::from(att.0[32 + i]) - borrow;
                borrow = i16::from(d < 0);
                s[i] = (d + 256 * borrow) as u8;
            }
            let mut twin = att;
            twin.0[32..64].copy_from_slice(&s);
            twin.0[64] ^= 1;
            prop_assert_eq!(recover_signer(&twin, &digest), twin.recover(&digest));
            prop_assert!(twin.recover(&digest).is_err());
        }
    }
}
