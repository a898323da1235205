//! The layout of the Inbox's `endedBits`: origin => nonce / 256 => a word whose bit
//! `nonce % 256` is set once the message at `nonce` ended, and each origin's
//! low-water mark (`firstNonce`), below which every nonce ended whatever its bit
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

/// Whether the message at `nonce` ended, given its origin's low-water mark `mark`
/// and its word `bits` (`None` when not read: a nonce below the mark needs none).
pub(crate) fn ended(mark: u64, bits: Option<U256>, nonce: u64) -> bool {
    nonce < mark || bits.is_some_and(|bits| has(bits, nonce))
}

/// The distinct origins of `messages` (origin, nonce), in first-seen order.
pub(crate) fn origins_of(messages: &[(u32, u64)]) -> Vec<u32> {
    let mut seen = HashSet::new();
    messages
        .iter()
        .map(|&(origin, _)| origin)
        .filter(|origin| seen.insert(*origin))
        .collect()
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

    #[test]
    fn below_the_low_water_mark_every_nonce_ended_whatever_its_bit() {
        let bits = U256::one() << 4; // nonce 260 of word 1
        assert!(ended(256, None, 0));
        assert!(ended(256, None, 255));
        assert!(ended(256, Some(U256::zero()), 100), "a pruned word reads 0");
        assert!(!ended(256, Some(U256::zero()), 256));
        assert!(ended(256, Some(bits), 260));
        assert!(!ended(256, Some(bits), 261));
        assert!(!ended(0, None, 0));
        assert_eq!(origins_of(&[(2, 1), (1, 5), (2, 9)]), vec![2, 1]);
    }
}
