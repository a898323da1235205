//! The lifecycle log hash chain: canonical row bytes and the verifier.
//!
//! The layout is documented byte for byte in `docs/schema.md` and implemented
//! three times on purpose: by the insert trigger (SQL function
//! `lifecycle_log_row_bytes`), by this module (what `isthmus audit verify` runs),
//! and by the plain SQL query in the docs that an auditor can run without trusting
//! either. Tests check that all three agree.

use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};

use crate::error::{ChainBreak, StoreError};

/// Domain tag that starts every row's canonical bytes.
pub const LOG_DOMAIN_TAG: &[u8] = b"isthmus.lifecycle_log.v1";

/// `prev_hash` of the first row (seq 1).
pub const GENESIS_PREV_HASH: [u8; 32] = [0u8; 32];

/// A log row exactly as stored, before any decoding into domain types, so that a
/// tampered value (even one that would not decode) is hashed as found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RawLogRow {
    /// `seq`.
    pub seq: i64,
    /// `prev_hash` as stored.
    pub prev_hash: Vec<u8>,
    /// `message_id` as stored.
    pub message_id: Option<Vec<u8>>,
    /// `event` as stored.
    pub event: String,
    /// `actor` as stored.
    pub actor: String,
    /// `created_at`.
    pub created_at: DateTime<Utc>,
    /// `evidence::text`: Postgres' rendering of the jsonb value.
    pub evidence_text: String,
    /// `row_hash` as stored.
    pub row_hash: Vec<u8>,
}

fn push_text(out: &mut Vec<u8>, text: &str) {
    // Lengths above u32::MAX cannot be stored in a Postgres text value (1 GB limit).
    let len = u32::try_from(text.len()).unwrap_or(u32::MAX);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(text.as_bytes());
}

impl RawLogRow {
    /// The canonical bytes hashed into `row_hash`:
    ///
    /// ```text
    /// "isthmus.lifecycle_log.v1"                  24 bytes, ASCII
    /// seq                                          8 bytes, big-endian signed
    /// prev_hash                                    32 bytes (as stored)
    /// 0x00                        if message_id is NULL
    /// 0x01 || message_id          otherwise
    /// len(event)  || event                         u32 big-endian || UTF-8
    /// len(actor)  || actor                         u32 big-endian || UTF-8
    /// created_at                                   8 bytes, big-endian microseconds since 1970-01-01 UTC
    /// len(evidence) || evidence                    u32 big-endian || UTF-8 of evidence::text
    /// ```
    pub fn canonical_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(
            LOG_DOMAIN_TAG.len()
                + 8
                + self.prev_hash.len()
                + 33
                + 12
                + self.event.len()
                + self.actor.len()
                + 8
                + self.evidence_text.len(),
        );
        out.extend_from_slice(LOG_DOMAIN_TAG);
        out.extend_from_slice(&self.seq.to_be_bytes());
        out.extend_from_slice(&self.prev_hash);
        match &self.message_id {
            None => out.push(0),
            Some(id) => {
                out.push(1);
                out.extend_from_slice(id);
            }
        }
        push_text(&mut out, &self.event);
        push_text(&mut out, &self.actor);
        out.extend_from_slice(&self.created_at.timestamp_micros().to_be_bytes());
        push_text(&mut out, &self.evidence_text);
        out
    }

    /// sha256 of [`RawLogRow::canonical_bytes`].
    pub fn compute_hash(&self) -> [u8; 32] {
        Sha256::digest(self.canonical_bytes()).into()
    }
}

/// Walks the chain in seq order, one row at a time, keeping only the previous hash.
#[derive(Debug)]
pub(crate) struct ChainVerifier {
    expected_seq: i64,
    prev_hash: [u8; 32],
}

impl ChainVerifier {
    pub(crate) fn new() -> Self {
        Self {
            expected_seq: 1,
            prev_hash: GENESIS_PREV_HASH,
        }
    }

    /// Rows verified so far.
    pub(crate) fn count(&self) -> u64 {
        u64::try_from(self.expected_seq - 1).unwrap_or(0)
    }

    /// Checks the next row: its seq follows the previous one, it links to the
    /// previous row's hash, and its own hash matches its content.
    pub(crate) fn check(&mut self, row: &RawLogRow) -> Result<(), StoreError> {
        if row.seq != self.expected_seq {
            return Err(StoreError::LogChainBroken {
                seq: self.expected_seq,
                kind: ChainBreak::Gap {
                    expected: self.expected_seq,
                    found: row.seq,
                },
            });
        }
        if row.prev_hash.as_slice() != self.prev_hash.as_slice() {
            return Err(StoreError::LogChainBroken {
                seq: row.seq,
                kind: ChainBreak::PrevHashMismatch {
                    stored: hex::encode(&row.prev_hash),
                    expected: hex::encode(self.prev_hash),
                },
            });
        }
        let computed = row.compute_hash();
        if row.row_hash.as_slice() != computed.as_slice() {
            return Err(StoreError::LogChainBroken {
                seq: row.seq,
                kind: ChainBreak::HashMismatch {
                    stored: hex::encode(&row.row_hash),
                    computed: hex::encode(computed),
                },
            });
        }
        self.prev_hash = computed;
        self.expected_seq += 1;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(seq: i64, prev: [u8; 32]) -> RawLogRow {
        let mut r = RawLogRow {
            seq,
            prev_hash: prev.to_vec(),
            message_id: Some(vec![7u8; 32]),
            event: "observed".into(),
            actor: "observer".into(),
            created_at: DateTime::from_timestamp_micros(1_700_000_000_123_456).expect("valid time"),
            evidence_text: r#"{"a": 1}"#.into(),
            row_hash: Vec::new(),
        };
        r.row_hash = r.compute_hash().to_vec();
        r
    }

    #[test]
    fn layout_is_exact() {
        let r = row(1, GENESIS_PREV_HASH);
        let b = r.canonical_bytes();
        assert_eq!(&b[..24], LOG_DOMAIN_TAG);
        assert_eq!(&b[24..32], &1i64.to_be_bytes());
        assert_eq!(&b[32..64], &[0u8; 32]);
        assert_eq!(b[64], 1);
        assert_eq!(&b[65..97], &[7u8; 32]);
        assert_eq!(&b[97..101], &8u32.to_be_bytes());
        assert_eq!(&b[101..109], b"observed");
        let tail = &b[b.len() - 8 - 4 - 8..];
        assert_eq!(&tail[..8], &1_700_000_000_123_456i64.to_be_bytes());
        assert_eq!(&tail[8..12], &8u32.to_be_bytes());
        assert_eq!(&tail[12..], br#"{"a": 1}"#);
    }

    #[test]
    fn verifier_detects_each_break() {
        let r1 = row(1, GENESIS_PREV_HASH);
        let r2 = row(2, r1.compute_hash());
        let r3 = row(3, r2.compute_hash());

        let mut v = ChainVerifier::new();
        for r in [&r1, &r2, &r3] {
            v.check(r).expect("intact chain verifies");
        }
        assert_eq!(v.count(), 3);

        let mut edited = r2.clone();
        edited.evidence_text = r#"{"a": 2}"#.into();
        let mut v = ChainVerifier::new();
        v.check(&r1).expect("first row");
        match v.check(&edited) {
            Err(StoreError::LogChainBroken {
                seq: 2,
                kind: ChainBreak::HashMismatch { .. },
            }) => {}
            other => panic!("expected hash mismatch at 2, got {other:?}"),
        }

        let mut v = ChainVerifier::new();
        v.check(&r1).expect("first row");
        match v.check(&r3) {
            Err(StoreError::LogChainBroken {
                seq: 2,
                kind:
                    ChainBreak::Gap {
                        expected: 2,
                        found: 3,
                    },
            }) => {}
            other => panic!("expected gap at 2, got {other:?}"),
        }

        let mut v = ChainVerifier::new();
        match v.check(&r2) {
            Err(StoreError::LogChainBroken {
                seq: 1,
                kind: ChainBreak::Gap { .. },
            }) => {}
            other => panic!("expected missing first row, got {other:?}"),
        }

        // Rewriting a row together with its hash breaks the next row's link.
        let mut forged = r2.clone();
        forged.actor = "mallory".into();
        forged.row_hash = forged.compute_hash().to_vec();
        let mut v = ChainVerifier::new();
        v.check(&r1).expect("first row");
        v.check(&forged)
            .expect("a re-hashed row is self-consistent");
        match v.check(&r3) {
            Err(StoreError::LogChainBroken {
                seq: 3,
                kind: ChainBreak::PrevHashMismatch { .. },
            }) => {}
            other => panic!("expected prev_hash mismatch at 3, got {other:?}"),
        }
    }
}
