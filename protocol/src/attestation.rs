//! Attestations: members' secp256k1 signatures over checkpoint digests.
//!
//! An attestation is a 65-byte recoverable signature `r ‖ s ‖ v` with `v` in
//! {27, 28} and `s` in the lower half of the curve order, exactly what Solidity's
//! `ecrecover` and the Substrate `secp256k1_ecdsa_recover` host function accept. A
//! signer is identified by its 20-byte EVM-style address
//! (`keccak256(uncompressed public key)[12..]`), so one member key works on every
//! ledger.

use alloc::vec::Vec;

use k256::ecdsa::{RecoveryId, Signature, SigningKey, VerifyingKey};

use crate::{keccak256, EvmAddress};

/// A member's signature over a checkpoint digest.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct Attestation(pub [u8; 65]);

/// Why one attestation does not count.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AttestationError {
    /// The recovery byte is not 27 or 28.
    #[error("recovery byte v = {0} is not 27 or 28")]
    BadRecoveryByte(u8),
    /// `r` or `s` is zero or not below the curve order.
    #[error("r or s is not a valid scalar")]
    BadScalar,
    /// `s` is in the upper half of the order: a malleated copy of a valid signature.
    #[error("s is in the upper half of the curve order (malleable signature)")]
    HighS,
    /// No public key recovers from the signature and digest.
    #[error("no public key recovers from this signature")]
    Unrecoverable,
}

impl Attestation {
    /// Signs `digest` with `key` (RFC 6979 deterministic nonces, low-s).
    pub fn sign(key: &SigningKey, digest: &[u8; 32]) -> Result<Self, AttestationError> {
        let (sig, recid) = key
            .sign_prehash_recoverable(digest)
            .map_err(|_| AttestationError::Unrecoverable)?;
        // k256 already produces low-s signatures; normalising again keeps the
        // invariant explicit should that ever change.
        let (sig, recid) = match sig.normalize_s() {
            Some(low) => (
                low,
                RecoveryId::new(!recid.is_y_odd(), recid.is_x_reduced()),
            ),
            None => (sig, recid),
        };
        let mut out = [0u8; 65];
        out[..64].copy_from_slice(&sig.to_bytes());
        out[64] = 27 + recid.to_byte();
        Ok(Self(out))
    }

    /// The address of the key that signed `digest`, under the strict rules above.
    pub fn recover(&self, digest: &[u8; 32]) -> Result<EvmAddress, AttestationError> {
        let (sig, recid) = self.strict()?;
        let key = VerifyingKey::recover_from_prehash(digest, &sig, recid)
            .map_err(|_| AttestationError::Unrecoverable)?;
        Ok(address_of(&key))
    }

    /// Checks the encoding rules above (`v` in {27, 28}, both scalars in range,
    /// low `s`) without recovering, and returns the recovery id (0 or 1). A caller
    /// with a faster recovery backend checks this first, then recovers from the
    /// same 65 bytes (see [`SignerSet::verify_with`]).
    pub fn check_encoding(&self) -> Result<u8, AttestationError> {
        self.strict().map(|(_, recid)| recid.to_byte())
    }

    fn strict(&self) -> Result<(Signature, RecoveryId), AttestationError> {
        let v = self.0[64];
        if v != 27 && v != 28 {
            return Err(AttestationError::BadRecoveryByte(v));
        }
        let sig = Signature::from_slice(&self.0[..64]).map_err(|_| AttestationError::BadScalar)?;
        if sig.normalize_s().is_some() {
            return Err(AttestationError::HighS);
        }
        let recid = RecoveryId::from_byte(v - 27).ok_or(AttestationError::BadRecoveryByte(v))?;
        Ok((sig, recid))
    }
}

/// The 20-byte address of a secp256k1 public key.
pub fn address_of(key: &VerifyingKey) -> EvmAddress {
    let point = key.to_encoded_point(false);
    let hash = keccak256(&point.as_bytes()[1..]);
    let mut out = [0u8; 20];
    out.copy_from_slice(&hash[12..]);
    out
}

/// Why a signer set is unusable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignerSetError {
    /// The threshold is 0 or above the number of signers.
    #[error("threshold {threshold} is not between 1 and the {signers} signers")]
    BadThreshold {
        /// The threshold given.
        threshold: usize,
        /// Distinct signers in the set.
        signers: usize,
    },
    /// The same address appears twice.
    #[error("signer {} appears more than once", hex::encode(.0))]
    DuplicateSigner(EvmAddress),
}

/// The consortium as a destination knows it for one origin: signers and threshold.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignerSet {
    signers: Vec<EvmAddress>,
    threshold: usize,
}

impl SignerSet {
    /// A set of distinct signers with `1 <= threshold <= signers.len()`.
    pub fn new(signers: Vec<EvmAddress>, threshold: usize) -> Result<Self, SignerSetError> {
        for (i, s) in signers.iter().enumerate() {
            if signers[..i].contains(s) {
                return Err(SignerSetError::DuplicateSigner(*s));
            }
        }
        if threshold == 0 || threshold > signers.len() {
            return Err(SignerSetError::BadThreshold {
                threshold,
                signers: signers.len(),
            });
        }
        Ok(Self { signers, threshold })
    }

    /// The signers.
    pub fn signers(&self) -> &[EvmAddress] {
        &self.signers
    }

    /// Distinct valid signatures needed.
    pub fn threshold(&self) -> usize {
        self.threshold
    }

    /// Checks `attestations` of `digest`: each one is accepted, a duplicate of an
    /// accepted signer (counted once), from an unknown signer, or invalid. Succeeds
    /// when the accepted distinct signers reach the threshold; either way the caller
    /// gets the outcome of every attestation, in order, so that a refused member can
    /// be named and recorded.
    pub fn verify(
        &self,
        digest: &[u8; 32],
        attestations: &[Attestation],
    ) -> Result<Quorum, QuorumError> {
        self.verify_with(digest, attestations, Attestation::recover)
    }

    /// [`SignerSet::verify`] with another recovery backend: `recover` must apply
    /// the same strict rules as [`Attestation::recover`] (for example
    /// [`Attestation::check_encoding`] first) and return the same address.
    pub fn verify_with<R>(
        &self,
        digest: &[u8; 32],
        attestations: &[Attestation],
        recover: R,
    ) -> Result<Quorum, QuorumError>
    where
        R: Fn(&Attestation, &[u8; 32]) -> Result<EvmAddress, AttestationError>,
    {
        let mut outcomes = Vec::with_capacity(attestations.len());
        let mut accepted: Vec<EvmAddress> = Vec::new();
        for att in attestations {
            let outcome = match recover(att, digest) {
                Err(e) => Outcome::Invalid(e),
                Ok(signer) if !self.signers.contains(&signer) => Outcome::UnknownSigner(signer),
                Ok(signer) if accepted.contains(&signer) => Outcome::Duplicate(signer),
                Ok(signer) => {
                    accepted.push(signer);
                    Outcome::Accepted(signer)
                }
            };
            outcomes.push(outcome);
        }
        if accepted.len() >= self.threshold {
            Ok(Quorum {
                signers: accepted,
                outcomes,
            })
        } else {
            Err(QuorumError {
                have: accepted.len(),
                need: self.threshold,
                outcomes,
            })
        }
    }
}

/// What happened to one attestation during quorum verification.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// A valid signature of a set member, counted.
    Accepted(EvmAddress),
    /// A valid signature of a member already counted; not counted again.
    Duplicate(EvmAddress),
    /// A valid signature of a key outside the set.
    UnknownSigner(EvmAddress),
    /// Not a valid signature under the strict rules.
    Invalid(AttestationError),
}

/// A reached quorum: the distinct signers that count and every outcome.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Quorum {
    /// Distinct accepted signers, in the order their attestations came.
    pub signers: Vec<EvmAddress>,
    /// One outcome per attestation, in input order.
    pub outcomes: Vec<Outcome>,
}

/// Too few valid distinct signers.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{have} valid distinct attestations, {need} needed")]
pub struct QuorumError {
    /// Distinct valid signers found.
    pub have: usize,
    /// The threshold.
    pub need: usize,
    /// One outcome per attestation, in input order: which failed and why.
    pub outcomes: Vec<Outcome>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    fn key(n: u8) -> SigningKey {
        SigningKey::from_bytes(&crate::keccak256(&[n]).into()).expect("valid key")
    }

    fn addr(n: u8) -> EvmAddress {
        address_of(key(n).verifying_key())
    }

    const DIGEST: [u8; 32] = [7u8; 32];

    #[test]
    fn sign_and_recover() {
        let att = Attestation::sign(&key(1), &DIGEST).expect("sign");
        assert_eq!(att.recover(&DIGEST), Ok(addr(1)));
        assert_ne!(att.recover(&[8u8; 32]), Ok(addr(1)));
    }

    #[test]
    fn strict_encoding() {
        let att = Attestation::sign(&key(1), &DIGEST).expect("sign");
        let mut bad_v = att;
        bad_v.0[64] = 1;
        assert_eq!(
            bad_v.recover(&DIGEST),
            Err(AttestationError::BadRecoveryByte(1))
        );
        let mut zero = att;
        zero.0[..32].fill(0);
        assert_eq!(zero.recover(&DIGEST), Err(AttestationError::BadScalar));
        // Malleate: s' = n - s, v flipped. Same key would recover, but it must be refused.
        let sig = Signature::from_slice(&att.0[..64]).expect("sig");
        let (r, s) = sig.split_scalars();
        let high = Signature::from_scalars(r, -*s).expect("high-s sig");
        let mut malleated = att;
        malleated.0[..64].copy_from_slice(&high.to_bytes());
        malleated.0[64] = if att.0[64] == 27 { 28 } else { 27 };
        assert_eq!(malleated.recover(&DIGEST), Err(AttestationError::HighS));
    }

    #[test]
    fn quorum_counts_duplicates_once_and_names_failures() {
        let set = SignerSet::new(vec![addr(1), addr(2), addr(3)], 2).expect("set");
        let a1 = Attestation::sign(&key(1), &DIGEST).expect("sign");
        let a2 = Attestation::sign(&key(2), &DIGEST).expect("sign");
        let stranger = Attestation::sign(&key(9), &DIGEST).expect("sign");
        let mut broken = a2;
        broken.0[64] = 5;

        let err = set
            .verify(&DIGEST, &[a1, a1, stranger, broken])
            .expect_err("one signer only");
        assert_eq!((err.have, err.need), (1, 2));
        assert_eq!(
            err.outcomes,
            vec![
                Outcome::Accepted(addr(1)),
                Outcome::Duplicate(addr(1)),
                Outcome::UnknownSigner(addr(9)),
                Outcome::Invalid(AttestationError::BadRecoveryByte(5)),
            ]
        );
        let ok = set.verify(&DIGEST, &[a1, stranger, a2]).expect("quorum");
        assert_eq!(ok.signers, vec![addr(1), addr(2)]);
        // Signatures over another digest recover to other keys: unknown, not accepted.
        assert!(set.verify(&[8u8; 32], &[a1, a2]).is_err());
    }

    #[test]
    fn signer_set_rules() {
        assert_eq!(
            SignerSet::new(vec![addr(1)], 2),
            Err(SignerSetError::BadThreshold {
                threshold: 2,
                signers: 1
            })
        );
        assert_eq!(
            SignerSet::new(vec![addr(1)], 0),
            Err(SignerSetError::BadThreshold {
                threshold: 0,
                signers: 1
            })
        );
        assert_eq!(
            SignerSet::new(vec![addr(1), addr(1)], 1),
            Err(SignerSetError::DuplicateSigner(addr(1)))
        );
    }
}
