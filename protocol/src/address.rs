//! Ledger-neutral account addresses.
//!
//! Every ledger names accounts differently: EVM chains use 20 bytes, Substrate uses a
//! 32-byte `AccountId32`. The protocol carries both as [`Address32`]; an EVM address
//! is left-padded with 12 zero bytes, as Solidity's `bytes32(uint256(uint160(a)))`.

use core::fmt;
use core::str::FromStr;

use crate::HexError;

/// A 20-byte EVM account or contract address.
pub type EvmAddress = [u8; 20];

/// A 32-byte account identifier as carried in messages.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Address32(pub [u8; 32]);

impl Address32 {
    /// The all-zero address.
    pub const ZERO: Self = Self([0u8; 32]);

    /// The address of an EVM account: 12 zero bytes followed by the 20 bytes.
    pub fn from_evm(address: EvmAddress) -> Self {
        let mut out = [0u8; 32];
        out[12..].copy_from_slice(&address);
        Self(out)
    }

    /// The address of a Substrate `AccountId32`, unchanged.
    pub const fn from_account_id(account: [u8; 32]) -> Self {
        Self(account)
    }

    /// The EVM address this is, if its first 12 bytes are zero.
    ///
    /// Returns `None` for addresses that cannot be an EVM account, so a message to a
    /// Substrate account is never silently truncated into an EVM one.
    pub fn to_evm(&self) -> Option<EvmAddress> {
        if self.0[..12].iter().any(|b| *b != 0) {
            return None;
        }
        let mut out = [0u8; 20];
        out.copy_from_slice(&self.0[12..]);
        Some(out)
    }

    /// The raw 32 bytes.
    pub const fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl From<[u8; 32]> for Address32 {
    fn from(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }
}

impl fmt::Display for Address32 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        crate::fmt_hex(&self.0, f)
    }
}

impl fmt::Debug for Address32 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Address32(")?;
        crate::fmt_hex(&self.0, f)?;
        f.write_str(")")
    }
}

impl FromStr for Address32 {
    type Err = HexError;

    /// Parses 32 bytes of hex, or 20 bytes of hex as an EVM address.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let digits = s.strip_prefix("0x").unwrap_or(s);
        if digits.len() == 40 {
            return crate::parse_hex::<20>(s).map(Self::from_evm);
        }
        crate::parse_hex::<32>(s).map(Self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn evm_round_trip_and_padding() {
        let evm = [0xabu8; 20];
        let a = Address32::from_evm(evm);
        assert_eq!(&a.0[..12], &[0u8; 12]);
        assert_eq!(a.to_evm(), Some(evm));
    }

    #[test]
    fn account_id_is_not_an_evm_address() {
        let mut id = [0u8; 32];
        id[0] = 1;
        assert_eq!(Address32::from_account_id(id).to_evm(), None);
    }

    #[test]
    fn parses_both_widths() {
        let short: Address32 = "0x00000000219ab540356cbb839cbe05303d7705fa"
            .parse()
            .expect("20 bytes");
        assert_eq!(
            short.to_evm().map(|a| a[0..4].to_vec()),
            Some(vec![0, 0, 0, 0])
        );
        let long: Address32 = format!("0x{}", "11".repeat(32)).parse().expect("32 bytes");
        assert_eq!(long.0, [0x11; 32]);
        assert!("0x1234".parse::<Address32>().is_err());
        assert!(format!("0x{}", "zz".repeat(32))
            .parse::<Address32>()
            .is_err());
    }
}
