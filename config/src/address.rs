//! EVM addresses as written in the configuration.

use std::fmt;
use std::str::FromStr;

use tiny_keccak::{Hasher, Keccak};

/// A 20-byte EVM account or contract address.
///
/// Parsed from `0x` followed by 40 hex digits. An all-lowercase or all-uppercase
/// address is accepted as is; a mixed-case one must carry a correct EIP-55 checksum,
/// because mixed case is a checksum claim and a mismatch means a typo. Displayed in
/// EIP-55 form.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EvmAddress([u8; 20]);

/// Why a string is not an [`EvmAddress`].
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AddressError {
    /// The string does not start with `0x`.
    #[error("does not start with 0x")]
    MissingPrefix,
    /// Wrong number of hex digits.
    #[error("has {0} hex digits after 0x, expected 40 (20 bytes)")]
    Length(usize),
    /// A character is not a hex digit.
    #[error("contains a character that is not a hex digit")]
    NotHex,
    /// Mixed case that is not the EIP-55 checksum of the address.
    #[error("has mixed case that is not a valid EIP-55 checksum (did you mean {0}?)")]
    Checksum(String),
}

impl EvmAddress {
    /// Wraps raw bytes.
    pub fn from_bytes(bytes: [u8; 20]) -> Self {
        Self(bytes)
    }

    /// The raw bytes.
    pub fn as_bytes(&self) -> &[u8; 20] {
        &self.0
    }
}

impl FromStr for EvmAddress {
    type Err = AddressError;

    fn from_str(s: &str) -> Result<Self, AddressError> {
        let digits = s.strip_prefix("0x").ok_or(AddressError::MissingPrefix)?;
        if digits.len() != 40 {
            return Err(AddressError::Length(digits.len()));
        }
        let mut bytes = [0u8; 20];
        hex::decode_to_slice(digits, &mut bytes).map_err(|_| AddressError::NotHex)?;
        let address = EvmAddress(bytes);
        let has_lower = digits.bytes().any(|b| b.is_ascii_lowercase());
        let has_upper = digits.bytes().any(|b| b.is_ascii_uppercase());
        if has_lower && has_upper {
            let checksummed = address.to_string();
            if checksummed != s {
                return Err(AddressError::Checksum(checksummed));
            }
        }
        Ok(address)
    }
}

impl fmt::Display for EvmAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let lower = hex::encode(self.0);
        let hash = keccak256(lower.as_bytes());
        f.write_str("0x")?;
        for (i, c) in lower.chars().enumerate() {
            let nibble = (hash[i / 2] >> (if i % 2 == 0 { 4 } else { 0 })) & 0x0f;
            if c.is_ascii_alphabetic() && nibble >= 8 {
                write!(f, "{}", c.to_ascii_uppercase())?;
            } else {
                write!(f, "{c}")?;
            }
        }
        Ok(())
    }
}

impl fmt::Debug for EvmAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

pub(crate) fn keccak256(data: &[u8]) -> [u8; 32] {
    let mut hasher = Keccak::v256();
    hasher.update(data);
    let mut out = [0u8; 32];
    hasher.finalize(&mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_checksummed_and_single_case() {
        let a: EvmAddress = "0x5FbDB2315678afecb367f032d93F642f64180aa3"
            .parse()
            .expect("valid");
        assert_eq!(a.to_string(), "0x5FbDB2315678afecb367f032d93F642f64180aa3");
        let lower: EvmAddress = "0x5fbdb2315678afecb367f032d93f642f64180aa3"
            .parse()
            .expect("valid lowercase");
        assert_eq!(a, lower);
    }

    #[test]
    fn rejects_malformed() {
        assert_eq!(
            "5fbdb2315678afecb367f032d93f642f64180aa3".parse::<EvmAddress>(),
            Err(AddressError::MissingPrefix)
        );
        assert_eq!("0x1234".parse::<EvmAddress>(), Err(AddressError::Length(4)));
        assert_eq!(
            "0xzzbdb2315678afecb367f032d93f642f64180aa3".parse::<EvmAddress>(),
            Err(AddressError::NotHex)
        );
        assert_eq!(
            "0x5FBdB2315678afecb367f032d93F642f64180aa3".parse::<EvmAddress>(),
            Err(AddressError::Checksum(
                "0x5FbDB2315678afecb367f032d93F642f64180aa3".into()
            ))
        );
    }
}
