//! Substrate block headers: SCALE codec, blake2-256 hash, digest items and the GRANDPA
//! consensus logs that announce authority-set changes.

use alloc::vec::Vec;
use parity_scale_codec::{Decode, DecodeLimit, Encode};

use crate::{blake2_256, AuthorityId, BlockNumber, Error, H256};

/// Nesting bound for every decoder in this crate: our structures nest a few levels
/// deep, so a deeper input is hostile.
const DEPTH_LIMIT: u32 = 64;

/// Decodes `bytes` as exactly one `T`: typed error on malformed input, on excessive
/// nesting and on trailing bytes (an honest encoder leaves none, and accepting them
/// would let two byte strings stand for one value).
pub(crate) fn decode_exact<T: Decode>(mut bytes: &[u8], what: &'static str) -> Result<T, Error> {
    let value = T::decode_with_depth_limit(DEPTH_LIMIT, &mut bytes)
        .map_err(|source| Error::Decode { what, source })?;
    if !bytes.is_empty() {
        return Err(Error::TrailingBytes {
            what,
            remaining: bytes.len(),
        });
    }
    Ok(value)
}

/// A four-byte consensus engine identifier (`BABE`, `FRNK`, `aura`, ...).
pub type ConsensusEngineId = [u8; 4];

/// Engine id of GRANDPA consensus logs.
pub const GRANDPA_ENGINE_ID: ConsensusEngineId = *b"FRNK";

/// A Substrate block header, as the ledger encodes it (unverified data).
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub struct Header {
    /// Hash of the parent block.
    pub parent_hash: H256,
    /// Block number (SCALE compact on the wire).
    #[codec(compact)]
    pub number: BlockNumber,
    /// Root of the state trie after this block.
    pub state_root: H256,
    /// Root of the extrinsics trie.
    pub extrinsics_root: H256,
    /// Consensus and runtime logs.
    pub digest: Digest,
}

impl Header {
    /// Decodes a SCALE-encoded header; the whole input must be one header.
    pub fn decode_exact(bytes: &[u8]) -> Result<Self, Error> {
        decode_exact(bytes, "header")
    }

    /// The block hash: blake2-256 of the SCALE encoding.
    pub fn hash(&self) -> H256 {
        blake2_256(&self.encode())
    }

    /// The GRANDPA consensus logs (`FRNK`) that decode; logs of other engines are
    /// skipped. A `FRNK` log that does not decode is an error, not silently dropped:
    /// missing an authority-set change would strand the tracker.
    pub fn grandpa_logs(&self) -> Result<Vec<GrandpaConsensusLog>, Error> {
        self.digest
            .logs
            .iter()
            .filter_map(|item| match item {
                DigestItem::Consensus(id, data) if *id == GRANDPA_ENGINE_ID => Some(data),
                _ => None,
            })
            .map(|data| decode_exact(data, "GRANDPA consensus log"))
            .collect()
    }
}

impl TryFrom<&[u8]> for Header {
    type Error = Error;

    fn try_from(bytes: &[u8]) -> Result<Self, Error> {
        Self::decode_exact(bytes)
    }
}

/// The header digest: a list of logs.
#[derive(Clone, Debug, Default, PartialEq, Eq, Encode, Decode)]
pub struct Digest {
    /// The logs, in block order.
    pub logs: Vec<DigestItem>,
}

/// One digest log. Indices are those of `sp_runtime::DigestItem`; the retired
/// changes-trie items (2 and 7) are refused, no current ledger emits them.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub enum DigestItem {
    /// Arbitrary data.
    #[codec(index = 0)]
    Other(Vec<u8>),
    /// A message from the runtime to a consensus engine (GRANDPA set changes live here).
    #[codec(index = 4)]
    Consensus(ConsensusEngineId, Vec<u8>),
    /// A seal, signed by the block author.
    #[codec(index = 5)]
    Seal(ConsensusEngineId, Vec<u8>),
    /// Data for the consensus engine, put by the block author before the runtime runs.
    #[codec(index = 6)]
    PreRuntime(ConsensusEngineId, Vec<u8>),
    /// The runtime code or heap pages changed in this block.
    #[codec(index = 8)]
    RuntimeEnvironmentUpdated,
}

/// An authority-set change announced by the GRANDPA runtime module.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub struct ScheduledChange {
    /// The next authorities and their weights.
    pub next_authorities: Vec<(AuthorityId, u64)>,
    /// Number of blocks after the announcing block at which the change takes effect.
    pub delay: BlockNumber,
}

/// A GRANDPA consensus log (`sp_consensus_grandpa::ConsensusLog`).
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub enum GrandpaConsensusLog {
    /// A standard change: effective once the block `announcing + delay` is finalized.
    #[codec(index = 1)]
    ScheduledChange(ScheduledChange),
    /// A forced change after a finality stall: effective when the block
    /// `announcing + delay` is imported; the new set votes above
    /// `median_last_finalized`.
    #[codec(index = 2)]
    ForcedChange {
        /// The block the new set resumes finalizing from.
        median_last_finalized: BlockNumber,
        /// The change.
        change: ScheduledChange,
    },
    /// The authority at this index of the current set is disabled.
    #[codec(index = 3)]
    OnDisabled(u64),
    /// Voting pauses after the given delay.
    #[codec(index = 4)]
    Pause(BlockNumber),
    /// Voting resumes after the given delay.
    #[codec(index = 5)]
    Resume(BlockNumber),
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    #[test]
    fn header_round_trips_and_rejects_trailing_bytes() {
        let header = Header {
            parent_hash: H256([1; 32]),
            number: 1_000_000,
            state_root: H256([2; 32]),
            extrinsics_root: H256([3; 32]),
            digest: Digest {
                logs: vec![
                    DigestItem::PreRuntime(*b"BABE", vec![1, 2, 3]),
                    DigestItem::Consensus(
                        GRANDPA_ENGINE_ID,
                        GrandpaConsensusLog::Pause(5).encode(),
                    ),
                    DigestItem::RuntimeEnvironmentUpdated,
                    DigestItem::Other(vec![9]),
                    DigestItem::Seal(*b"BABE", vec![0; 64]),
                ],
            },
        };
        let bytes = header.encode();
        let decoded = Header::decode_exact(&bytes).expect("own encoding decodes");
        assert_eq!(decoded, header);
        assert_eq!(
            decoded.grandpa_logs().expect("valid log"),
            vec![GrandpaConsensusLog::Pause(5)]
        );
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(matches!(
            Header::decode_exact(&longer),
            Err(Error::TrailingBytes { remaining: 1, .. })
        ));
        assert!(matches!(
            Header::decode_exact(&bytes[..bytes.len() - 1]),
            Err(Error::Decode { .. })
        ));
    }

    #[test]
    fn malformed_grandpa_log_is_an_error() {
        let header = Header {
            parent_hash: H256::default(),
            number: 1,
            state_root: H256::default(),
            extrinsics_root: H256::default(),
            digest: Digest {
                logs: vec![DigestItem::Consensus(GRANDPA_ENGINE_ID, vec![9])],
            },
        };
        assert!(matches!(header.grandpa_logs(), Err(Error::Decode { .. })));
    }
}
