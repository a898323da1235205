//! The layout of the Inbox's `deliveredBits`: origin => nonce / 256 => a word whose
//! bit `nonce % 256` is set once the message at `nonce` is delivered
//! (docs/protocol.md, "Delivery rules"). One read of a word answers for 256 messages.

use std::collections::HashSet;

use ethers::types::U256;

/// Reads of the Inbox's delivered bits in flight at once.
pub(crate) const READS_AT_ONCE: usize = 16;

/// The word holding `nonce`'s bit.
pub(crate) fn word(nonce: u64) -> u64 {
    nonce >> 8
}

/// Whether `bits` (the word of `nonce`) marks `nonce` delivered.
pub(crate) fn has(bits: U256, nonce: u64) -> bool {
    bits.bit((nonce & 0xff) as usize)
}

/// The distinct (origin, word) pairs `messages` (origin, nonce) need, in
/// first-seen order.
pub(crate) fn words_of(messages: &[(u32, u64)]) -> Vec<(u32, u64)> {
    let mut seen = HashSet::new();
    messages
        .iter()
        .map(|&(origin, nonce)| (origin, word(nonce)))
        .filter(|key| seen.insert(*key))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_are_read_once_per_origin_and_256_nonces() {
        let messages = [(1, 0), (1, 255), (1, 256), (2, 3), (1, 7), (2, 300)];
        assert_eq!(words_of(&messages), vec![(1, 0), (1, 1), (2, 0), (2, 1)]);
        // Bit `nonce % 256` of the nonce's word.
        let bits = (U256::one() << 255) | (U256::one() << 64) | U256::one();
        for (nonce, set) in [
            (0, true),
            (1, false),
            (63, false),
            (64, true),
            (255, true),
            (256, true),
            (256 + 64, true),
            (256 + 1, false),
        ] {
            assert_eq!(has(bits, nonce), set, "nonce {nonce}");
        }
        assert_eq!(word(255), 0);
        assert_eq!(word(256), 1);
    }
}
