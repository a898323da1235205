//! The 32-byte hash type and the blake2-256 hasher used by Substrate headers and tries.

use blake2::digest::consts::U32;
use blake2::{Blake2b, Digest as _};
use core::fmt;
use parity_scale_codec::{Decode, Encode};

/// A 32-byte hash (block hash, state root, trie node hash).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Encode, Decode)]
pub struct H256(pub [u8; 32]);

impl H256 {
    /// The bytes of the hash.
    pub const fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl From<[u8; 32]> for H256 {
    fn from(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }
}

impl TryFrom<&[u8]> for H256 {
    type Error = core::array::TryFromSliceError;

    fn try_from(bytes: &[u8]) -> Result<Self, Self::Error> {
        <[u8; 32]>::try_from(bytes).map(Self)
    }
}

impl fmt::Debug for H256 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl fmt::Display for H256 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("0x")?;
        for byte in self.0 {
            write!(f, "{byte:02x}")?;
        }
        Ok(())
    }
}

/// blake2b with a 32-byte output, the hasher of Substrate headers and state tries.
pub fn blake2_256(data: &[u8]) -> H256 {
    let mut hasher = Blake2b::<U32>::new();
    hasher.update(data);
    H256(hasher.finalize().into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blake2_256_of_empty_trie_node_is_substrate_empty_root() {
        // The root of an empty Substrate trie is blake2-256 of the single byte 0x00.
        assert_eq!(
            alloc::format!("{}", blake2_256(&[0])),
            "0x03170a2e7597b7b7e3d84c05391d139a62b157e78786d8c082f29dcf4c111314"
        );
    }
}
