//! [`LocalKey`]: a secp256k1 key held in this process's memory.
//!
//! For devnets, tests and operators without an HSM. The key is zeroised on drop (k256's
//! `SigningKey` does that) and never printed.

use crate::{address_of, from_k256, EcdsaKey, KeyError, RecoverableSignature};
use k256::ecdsa::SigningKey;

/// A secp256k1 key in process memory, signing deterministically (RFC 6979).
#[derive(Clone)]
pub struct LocalKey {
    signing_key: SigningKey,
    address: [u8; 20],
}

impl LocalKey {
    /// A key from its secret scalar.
    pub fn new(secret: &k256::SecretKey) -> Self {
        let signing_key = SigningKey::from(secret);
        let address = address_of(&k256::PublicKey::from(signing_key.verifying_key()));
        Self {
            signing_key,
            address,
        }
    }
}

impl std::fmt::Debug for LocalKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalKey")
            .field("address", &format_args!("0x{}", hex(&self.address)))
            .finish_non_exhaustive()
    }
}

impl EcdsaKey for LocalKey {
    fn address(&self) -> [u8; 20] {
        self.address
    }

    fn public_key(&self) -> k256::PublicKey {
        k256::PublicKey::from(self.signing_key.verifying_key())
    }

    fn describe(&self) -> String {
        format!("in-process key 0x{}", hex(&self.address))
    }

    fn sign_prehash(&self, digest: &[u8; 32]) -> Result<RecoverableSignature, KeyError> {
        // k256 already returns low s with the recovery id adjusted to it.
        let (signature, id) = self
            .signing_key
            .sign_prehash_recoverable(digest)
            .map_err(|_| KeyError::BadSignature {
                source_name: self.describe(),
                reason: "k256 could not sign this digest",
            })?;
        if id.is_x_reduced() {
            // r ≥ n happens with probability about 2^-128; the 27/28 encoding cannot carry it.
            return Err(KeyError::BadSignature {
                source_name: self.describe(),
                reason: "the nonce point's x coordinate exceeds the group order",
            });
        }
        Ok(from_k256(&signature, id))
    }
}

/// Lowercase hex without a prefix.
pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
