//! Isthmus signing keys: secp256k1 ECDSA keys that sign 32-byte digests, held either in
//! this process ([`LocalKey`]) or in a PKCS#11 token such as an HSM ([`pkcs11::Pkcs11Key`]).
//!
//! Everything that signs (the attester, the EVM submitter) takes an [`EcdsaKey`], so the
//! choice between a key in memory and a key in a token is configuration, not code.
//! Whatever the source, a signature comes back in one shape: low-s normalised, with the
//! recovery id that makes it recover to the key's public key ([`RecoverableSignature`]).
//!
//! - [`local`]: [`LocalKey`], a key in process memory (devnets, tests).
//! - [`pkcs11`]: [`pkcs11::Pkcs11Key`], a key that never leaves its token.
//! - [`error`]: [`KeyError`] and whether to retry.
//! - `softhsm` (feature `softhsm`): throwaway SoftHSM2 tokens for tests.

pub mod error;
pub mod local;
pub mod pkcs11;
#[cfg(feature = "softhsm")]
pub mod softhsm;

pub use error::KeyError;
pub use local::LocalKey;

use k256::ecdsa::{RecoveryId, Signature, VerifyingKey};
use tiny_keccak::{Hasher, Keccak};

/// A low-s normalised secp256k1 ECDSA signature with its recovery id (0 or 1).
///
/// Low s is what Ethereum (EIP-2) and the attestation verifiers accept; the recovery id
/// lets a verifier get the signer's address from the signature and the digest alone.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RecoverableSignature {
    /// The big-endian scalar r.
    pub r: [u8; 32],
    /// The big-endian scalar s, in the lower half of the group order.
    pub s: [u8; 32],
    /// The parity of the nonce point's y coordinate: 0 or 1.
    pub recovery_id: u8,
}

impl RecoverableSignature {
    /// `r ‖ s ‖ (27 + recovery_id)`, the Ethereum/attestation encoding.
    pub fn to_rsv27(&self) -> [u8; 65] {
        let mut out = [0u8; 65];
        out[..32].copy_from_slice(&self.r);
        out[32..64].copy_from_slice(&self.s);
        out[64] = 27 + self.recovery_id;
        out
    }

    /// The k256 signature (r, s), for verification and recovery.
    pub fn signature(&self) -> Result<Signature, k256::ecdsa::Error> {
        Signature::from_scalars(self.r, self.s)
    }

    /// The k256 recovery id.
    pub fn k256_recovery_id(&self) -> RecoveryId {
        RecoveryId::new(self.recovery_id & 1 == 1, false)
    }
}

/// A secp256k1 key that signs 32-byte digests. Never exposes private key material.
pub trait EcdsaKey: Send + Sync + std::fmt::Debug {
    /// The Ethereum-style address: last 20 bytes of keccak256(uncompressed pubkey without 0x04).
    fn address(&self) -> [u8; 20];
    /// The public key.
    fn public_key(&self) -> k256::PublicKey;
    /// A description naming the source without secrets, e.g.
    /// "pkcs11 token `bank-a` key `attestation` (/usr/lib/softhsm/libsofthsm2.so)".
    fn describe(&self) -> String;
    /// Signs the 32-byte prehash. Blocking (a token call); callers in async code use
    /// `spawn_blocking`. Errors are retryable unless [`KeyError::is_retryable`] says otherwise.
    fn sign_prehash(&self, digest: &[u8; 32]) -> Result<RecoverableSignature, KeyError>;
}

/// The Ethereum-style address of a public key: the last 20 bytes of the keccak256 of the
/// uncompressed point without its `0x04` tag.
pub fn address_of(public_key: &k256::PublicKey) -> [u8; 20] {
    use k256::elliptic_curve::sec1::ToEncodedPoint;
    let point = public_key.to_encoded_point(false);
    let mut hasher = Keccak::v256();
    hasher.update(&point.as_bytes()[1..]);
    let mut hash = [0u8; 32];
    hasher.finalize(&mut hash);
    let mut address = [0u8; 20];
    address.copy_from_slice(&hash[12..]);
    address
}

/// Why a raw (r, s) from a signer could not become a [`RecoverableSignature`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Unrecoverable {
    /// r or s is zero or not below the group order.
    OutOfRange,
    /// Neither recovery id recovers the expected public key: the signer used another key.
    OtherKey,
}

/// Normalises a raw signature to low s and finds the recovery id that recovers `expected`.
///
/// Tokens return bare (r, s) with no recovery id and s in either half, so the id is
/// found by trying both parities; replacing s with n - s keeps the signature valid and
/// only the recovered parity changes, which the search absorbs.
pub(crate) fn recoverable_from_raw(
    r: [u8; 32],
    s: [u8; 32],
    digest: &[u8; 32],
    expected: &VerifyingKey,
) -> Result<RecoverableSignature, Unrecoverable> {
    use secp256k1::ecdsa::{RecoverableSignature as Recoverable, RecoveryId as Parity};
    let signature = Signature::from_scalars(r, s).map_err(|_| Unrecoverable::OutOfRange)?;
    let signature = signature.normalize_s().unwrap_or(signature);
    // libsecp256k1 recovers about four times faster than k256 (docs/benchmarks.md).
    let expected = expected.to_encoded_point(false);
    let message = secp256k1::Message::from_digest(*digest);
    let compact = signature.to_bytes();
    for (parity, id) in [(Parity::Zero, false), (Parity::One, true)] {
        let Ok(candidate) = Recoverable::from_compact(&compact, parity) else {
            continue;
        };
        if let Ok(recovered) = secp256k1::SECP256K1.recover_ecdsa(&message, &candidate) {
            if recovered.serialize_uncompressed() == expected.as_bytes() {
                return Ok(from_k256(&signature, RecoveryId::new(id, false)));
            }
        }
    }
    Err(Unrecoverable::OtherKey)
}

/// A k256 signature already low-s, with an id that is not x-reduced.
pub(crate) fn from_k256(signature: &Signature, id: RecoveryId) -> RecoverableSignature {
    let (r, s) = signature.split_bytes();
    RecoverableSignature {
        r: r.into(),
        s: s.into(),
        recovery_id: u8::from(id.is_y_odd()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k256::ecdsa::SigningKey;
    use k256::elliptic_curve::scalar::IsHigh;

    fn key() -> SigningKey {
        SigningKey::from_bytes(&[7u8; 32].into()).expect("valid scalar")
    }

    #[test]
    fn high_s_is_normalised_and_still_recovers() {
        let key = key();
        let digest = [0x42u8; 32];
        let (signature, _) = key.sign_prehash_recoverable(&digest).expect("signs");
        // Make the high-s twin a token might return.
        let high = Signature::from_scalars(signature.r(), -*signature.s()).expect("in range");
        assert!(bool::from(high.s().is_high()));
        let (r, s) = high.split_bytes();
        let sig = recoverable_from_raw(r.into(), s.into(), &digest, key.verifying_key())
            .expect("recovers");
        assert_eq!(sig.signature().expect("valid"), signature);
        let recovered =
            VerifyingKey::recover_from_prehash(&digest, &signature, sig.k256_recovery_id())
                .expect("recovers");
        assert_eq!(&recovered, key.verifying_key());
    }

    #[test]
    fn a_signature_by_another_key_is_refused() {
        let digest = [1u8; 32];
        let (signature, _) = key().sign_prehash_recoverable(&digest).expect("signs");
        let other = SigningKey::from_bytes(&[9u8; 32].into()).expect("valid scalar");
        let (r, s) = signature.split_bytes();
        assert_eq!(
            recoverable_from_raw(r.into(), s.into(), &digest, other.verifying_key()),
            Err(Unrecoverable::OtherKey)
        );
        assert_eq!(
            recoverable_from_raw([0; 32], s.into(), &digest, other.verifying_key()),
            Err(Unrecoverable::OutOfRange)
        );
    }

    #[test]
    fn rsv27_encoding() {
        let sig = RecoverableSignature {
            r: [1; 32],
            s: [2; 32],
            recovery_id: 1,
        };
        let bytes = sig.to_rsv27();
        assert_eq!(&bytes[..32], &[1; 32]);
        assert_eq!(&bytes[32..64], &[2; 32]);
        assert_eq!(bytes[64], 28);
    }
}
