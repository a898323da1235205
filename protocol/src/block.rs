//! A block of any ledger, by number and hash: what cursors, checkpoints and
//! deliveries point at.

use core::fmt;

/// A block by number and hash.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct BlockRef {
    /// Block number.
    pub number: u64,
    /// Block hash.
    pub hash: [u8; 32],
}

impl fmt::Display for BlockRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{} ", self.number)?;
        crate::fmt_hex(&self.hash, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::format;

    #[test]
    fn displays_number_and_hash() {
        let b = BlockRef {
            number: 7,
            hash: [0xab; 32],
        };
        assert_eq!(format!("{b}"), format!("#7 0x{}", "ab".repeat(32)));
    }
}
