//! Fixed-size values: hashes, addresses, 256-bit integers, and the hash function.

use core::fmt;
use core::str::FromStr;

macro_rules! fixed_bytes {
    ($(#[$doc:meta])* $name:ident, $len:expr) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(pub [u8; $len]);

        impl $name {
            /// The all-zero value.
            pub const ZERO: Self = Self([0u8; $len]);

            /// The raw bytes.
            pub fn as_bytes(&self) -> &[u8; $len] {
                &self.0
            }

            /// Parses `0x`-prefixed (or bare) hex of exactly the right length.
            pub fn from_hex(s: &str) -> Option<Self> {
                let s = s.strip_prefix("0x").unwrap_or(s);
                let mut out = [0u8; $len];
                hex::decode_to_slice(s, &mut out).ok()?;
                Some(Self(out))
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::ZERO
            }
        }

        impl From<[u8; $len]> for $name {
            fn from(b: [u8; $len]) -> Self {
                Self(b)
            }
        }

        impl AsRef<[u8]> for $name {
            fn as_ref(&self) -> &[u8] {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "0x{}", hex::encode(self.0))
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(self, f)
            }
        }

        /// Serialised as `0x`-prefixed lowercase hex (JSON-friendly).
        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                Self::from_hex(&s).ok_or_else(|| {
                    serde::de::Error::custom(concat!("invalid hex for ", stringify!($name)))
                })
            }
        }

        impl FromStr for $name {
            type Err = InvalidHex;
            fn from_str(s: &str) -> Result<Self, InvalidHex> {
                Self::from_hex(s).ok_or(InvalidHex)
            }
        }
    };
}

/// A string was not `0x`-prefixed hex of the expected length.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("invalid hex value")]
pub struct InvalidHex;

fixed_bytes!(
    /// A 32-byte hash (block hash, state root, trie node reference, storage slot).
    B256,
    32
);
fixed_bytes!(
    /// A 20-byte EVM account address.
    Address,
    20
);
fixed_bytes!(
    /// An unsigned 256-bit integer, big-endian (balances, difficulty, base fee,
    /// storage values).
    U256,
    32
);

impl U256 {
    /// Builds a value from a big-endian byte string of at most 32 bytes; `None`
    /// if longer.
    pub fn from_be_slice(b: &[u8]) -> Option<Self> {
        if b.len() > 32 {
            return None;
        }
        let mut out = [0u8; 32];
        out[32 - b.len()..].copy_from_slice(b);
        Some(Self(out))
    }

    /// The minimal big-endian bytes (empty for zero), as RLP scalars use them.
    pub fn to_minimal_be(&self) -> &[u8] {
        let skip = self.0.iter().take_while(|b| **b == 0).count();
        &self.0[skip..]
    }

    /// The value if it fits in a `u64`.
    pub fn to_u64(&self) -> Option<u64> {
        let m = self.to_minimal_be();
        (m.len() <= 8).then(|| m.iter().fold(0u64, |a, b| (a << 8) | u64::from(*b)))
    }
}

impl From<u64> for U256 {
    fn from(v: u64) -> Self {
        let mut out = [0u8; 32];
        out[24..].copy_from_slice(&v.to_be_bytes());
        Self(out)
    }
}

/// keccak256 of `data`.
pub fn keccak256(data: &[u8]) -> B256 {
    use tiny_keccak::{Hasher, Keccak};
    let mut k = Keccak::v256();
    k.update(data);
    let mut out = [0u8; 32];
    k.finalize(&mut out);
    B256(out)
}

/// Half the secp256k1 group order: signatures with a larger `s` are refused
/// (BIP 62 "low S"), as every Clique, Besu and GoQuorum signer produces them.
const HALF_ORDER: [u8; 32] = [
    0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0x5d, 0x57, 0x6e, 0x73, 0x57, 0xa4, 0x50, 0x1d, 0xdf, 0xe9, 0x2f, 0x46, 0x68, 0x1b, 0x20, 0xa0,
];

/// Recovers the address that produced a 65-byte `r ‖ s ‖ v` signature over the
/// 32-byte `digest`. `v` may be 0/1 (Clique, Besu and GoQuorum seals) or 27/28.
///
/// Refused as [`crate::Error::InvalidSignature`]: a length other than 65, any
/// other `v`, `r` or `s` zero or not below the group order, a high `s`, and a
/// signature from which no public key can be recovered. Recovery runs in
/// libsecp256k1 (the `secp256k1` crate), several times faster than `k256`; the
/// accepted set of signatures is the same as with `k256`'s recovery (which
/// verifies the recovered key and so also refuses high `s`).
pub fn recover_address(digest: &B256, sig: &[u8]) -> Result<Address, crate::Error> {
    use secp256k1::ecdsa::{RecoverableSignature, RecoveryId};
    use secp256k1::{Message, SECP256K1};
    let sig: &[u8; 65] = sig.try_into().map_err(|_| crate::Error::InvalidSignature)?;
    let recid = match sig[64] {
        0 | 27 => RecoveryId::Zero,
        1 | 28 => RecoveryId::One,
        _ => return Err(crate::Error::InvalidSignature),
    };
    if sig[32..64] > HALF_ORDER[..] {
        return Err(crate::Error::InvalidSignature);
    }
    let signature = RecoverableSignature::from_compact(&sig[..64], recid)
        .map_err(|_| crate::Error::InvalidSignature)?;
    let key = SECP256K1
        .recover_ecdsa(&Message::from_digest(digest.0), &signature)
        .map_err(|_| crate::Error::InvalidSignature)?;
    let point = key.serialize_uncompressed();
    let hash = keccak256(&point[1..]);
    let mut out = [0u8; 20];
    out.copy_from_slice(&hash.0[12..]);
    Ok(Address(out))
}

/// The same recovery as [`recover_address`] through the pure-Rust `k256` crate:
/// the reference the faster path is tested and benchmarked against.
pub fn recover_address_k256(digest: &B256, sig: &[u8]) -> Result<Address, crate::Error> {
    use k256::ecdsa::{RecoveryId, Signature, VerifyingKey};
    let sig: &[u8; 65] = sig.try_into().map_err(|_| crate::Error::InvalidSignature)?;
    let v = match sig[64] {
        0 | 27 => 0,
        1 | 28 => 1,
        _ => return Err(crate::Error::InvalidSignature),
    };
    let signature =
        Signature::from_slice(&sig[..64]).map_err(|_| crate::Error::InvalidSignature)?;
    let recid = RecoveryId::from_byte(v).ok_or(crate::Error::InvalidSignature)?;
    let key = VerifyingKey::recover_from_prehash(&digest.0, &signature, recid)
        .map_err(|_| crate::Error::InvalidSignature)?;
    Ok(public_key_address(&key))
}

/// The EVM address of a secp256k1 public key: the last 20 bytes of keccak256 of
/// the uncompressed point without its 0x04 tag.
pub fn public_key_address(key: &k256::ecdsa::VerifyingKey) -> Address {
    let point = key.to_encoded_point(false);
    let hash = keccak256(&point.as_bytes()[1..]);
    let mut out = [0u8; 20];
    out.copy_from_slice(&hash.0[12..]);
    Address(out)
}
