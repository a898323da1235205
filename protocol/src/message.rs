//! Message v1 and its canonical encoding.
//!
//! Layout (all integers big-endian, no padding; see `docs/protocol.md`):
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 1 | version (= 1) |
//! | 1 | 8 | nonce |
//! | 9 | 4 | origin ledger id |
//! | 13 | 32 | sender |
//! | 45 | 4 | destination ledger id |
//! | 49 | 32 | recipient |
//! | 81 | 8 | deadline (unix seconds, 0 = none) |
//! | 89 | 4 | body length `n` (<= [`MAX_BODY_LEN`]) |
//! | 93 | n | body |
//!
//! The body length is explicit so that an encoding is self-delimiting: a decoder can
//! tell a truncated message from one with trailing garbage, and Solidity's
//! `abi.encodePacked` of the same fields yields the same bytes.

use alloc::vec::Vec;
use core::fmt;
use core::str::FromStr;

use crate::{Address32, HexError};

/// The only message version this crate encodes and accepts.
pub const VERSION: u8 = 1;

/// Largest body in bytes. Large enough for any clearing instruction, small enough
/// that a batch of messages fits in one EVM transaction and one Substrate extrinsic.
pub const MAX_BODY_LEN: usize = 65_536;

/// Length of the fixed part of an encoded message, before the body.
pub const MESSAGE_HEADER_LEN: usize = 1 + 8 + 4 + 32 + 4 + 32 + 8 + 4;

/// A cross-ledger message, protocol v1.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub struct Message {
    /// Position of the message in its outbox: 0, 1, 2, ... with no gaps.
    pub nonce: u64,
    /// Ledger id (consortium-assigned domain) of the sending ledger.
    pub origin: u32,
    /// Account that dispatched the message on the origin ledger.
    pub sender: Address32,
    /// Ledger id of the receiving ledger.
    pub destination: u32,
    /// Account that handles the message on the destination ledger.
    pub recipient: Address32,
    /// Unix time in seconds after which the message must not be delivered; 0 = never.
    pub deadline: u64,
    /// Application payload, at most [`MAX_BODY_LEN`] bytes.
    pub body: Vec<u8>,
}

/// Why bytes are not a canonical v1 message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// Fewer bytes than the header or the declared body need.
    #[error("message truncated: need {needed} bytes, have {got}")]
    Truncated {
        /// Bytes the message needs.
        needed: usize,
        /// Bytes present.
        got: usize,
    },
    /// The version byte is not [`VERSION`].
    #[error("unknown message version {0} (this relayer speaks version {VERSION})")]
    UnknownVersion(u8),
    /// The body is longer than [`MAX_BODY_LEN`].
    #[error("message body of {len} bytes exceeds the maximum of {MAX_BODY_LEN}")]
    BodyTooLong {
        /// Declared body length.
        len: usize,
    },
    /// Bytes follow the declared body.
    #[error("{extra} trailing bytes after the message body")]
    TrailingBytes {
        /// Number of extra bytes.
        extra: usize,
    },
}

impl Message {
    /// The canonical encoding: the bytes every ledger hashes into the message id.
    ///
    /// # Panics
    /// Never for a message whose body respects [`MAX_BODY_LEN`]; encoding an oversized
    /// body is a programming error caught by [`Message::check`] at construction sites.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.encoded_len());
        self.encode_into(&mut out);
        out
    }

    /// Appends the canonical encoding to `out`.
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        out.push(VERSION);
        out.extend_from_slice(&self.nonce.to_be_bytes());
        out.extend_from_slice(&self.origin.to_be_bytes());
        out.extend_from_slice(&self.sender.0);
        out.extend_from_slice(&self.destination.to_be_bytes());
        out.extend_from_slice(&self.recipient.0);
        out.extend_from_slice(&self.deadline.to_be_bytes());
        // Bodies above u32::MAX cannot exist in a checked message; saturate so that
        // an unchecked one produces an encoding `decode` refuses instead of a wrap.
        let len = u32::try_from(self.body.len()).unwrap_or(u32::MAX);
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(&self.body);
    }

    /// Length of the canonical encoding.
    pub fn encoded_len(&self) -> usize {
        MESSAGE_HEADER_LEN + self.body.len()
    }

    /// Refuses a message that could not be decoded back (an oversized body).
    pub fn check(&self) -> Result<(), DecodeError> {
        if self.body.len() > MAX_BODY_LEN {
            return Err(DecodeError::BodyTooLong {
                len: self.body.len(),
            });
        }
        Ok(())
    }

    /// The message id: keccak256 of the canonical encoding.
    pub fn id(&self) -> MessageId {
        MessageId(crate::keccak256(&self.encode()))
    }

    /// Decodes exactly one canonical message; every deviation is a typed error.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        if bytes.len() < MESSAGE_HEADER_LEN {
            // Report an unknown version before a short length when the first byte
            // already tells the message is not ours.
            if let Some(&v) = bytes.first() {
                if v != VERSION {
                    return Err(DecodeError::UnknownVersion(v));
                }
            }
            return Err(DecodeError::Truncated {
                needed: MESSAGE_HEADER_LEN,
                got: bytes.len(),
            });
        }
        let mut r = Reader { bytes, pos: 0 };
        let version = r.array::<1>()[0];
        if version != VERSION {
            return Err(DecodeError::UnknownVersion(version));
        }
        let nonce = u64::from_be_bytes(r.array());
        let origin = u32::from_be_bytes(r.array());
        let sender = Address32(r.array());
        let destination = u32::from_be_bytes(r.array());
        let recipient = Address32(r.array());
        let deadline = u64::from_be_bytes(r.array());
        let len = u32::from_be_bytes(r.array()) as usize;
        if len > MAX_BODY_LEN {
            return Err(DecodeError::BodyTooLong { len });
        }
        let needed = MESSAGE_HEADER_LEN + len;
        if bytes.len() < needed {
            return Err(DecodeError::Truncated {
                needed,
                got: bytes.len(),
            });
        }
        if bytes.len() > needed {
            return Err(DecodeError::TrailingBytes {
                extra: bytes.len() - needed,
            });
        }
        let body = bytes[MESSAGE_HEADER_LEN..].to_vec();
        Ok(Self {
            nonce,
            origin,
            sender,
            destination,
            recipient,
            deadline,
            body,
        })
    }

    /// Whether the deadline has passed at `now` (unix seconds). Deadline 0 never expires.
    pub fn is_expired_at(&self, now: u64) -> bool {
        self.deadline != 0 && now > self.deadline
    }
}

impl TryFrom<&[u8]> for Message {
    type Error = DecodeError;

    fn try_from(bytes: &[u8]) -> Result<Self, Self::Error> {
        Self::decode(bytes)
    }
}

/// Reads fixed-size fields from a slice whose length was checked beforehand.
struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl Reader<'_> {
    fn array<const N: usize>(&mut self) -> [u8; N] {
        let mut out = [0u8; N];
        out.copy_from_slice(&self.bytes[self.pos..self.pos + N]);
        self.pos += N;
        out
    }
}

/// keccak256 of a message's canonical encoding: its identity on every ledger.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct MessageId(pub [u8; 32]);

impl MessageId {
    /// The raw 32 bytes.
    pub const fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl From<[u8; 32]> for MessageId {
    fn from(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }
}

impl fmt::Display for MessageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        crate::fmt_hex(&self.0, f)
    }
}

impl fmt::Debug for MessageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MessageId(")?;
        crate::fmt_hex(&self.0, f)?;
        f.write_str(")")
    }
}

impl FromStr for MessageId {
    type Err = HexError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        crate::parse_hex::<32>(s).map(Self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    fn sample() -> Message {
        Message {
            nonce: 7,
            origin: 1,
            sender: Address32::from_evm([0x11; 20]),
            destination: 3,
            recipient: Address32([0x22; 32]),
            deadline: 1_700_000_000,
            body: b"hello".to_vec(),
        }
    }

    #[test]
    fn layout_is_as_documented() {
        let bytes = sample().encode();
        assert_eq!(bytes.len(), MESSAGE_HEADER_LEN + 5);
        assert_eq!(bytes[0], 1);
        assert_eq!(&bytes[1..9], &7u64.to_be_bytes());
        assert_eq!(&bytes[9..13], &1u32.to_be_bytes());
        assert_eq!(&bytes[13..45], &sample().sender.0);
        assert_eq!(&bytes[45..49], &3u32.to_be_bytes());
        assert_eq!(&bytes[49..81], &[0x22; 32]);
        assert_eq!(&bytes[81..89], &1_700_000_000u64.to_be_bytes());
        assert_eq!(&bytes[89..93], &5u32.to_be_bytes());
        assert_eq!(&bytes[93..], b"hello");
    }

    #[test]
    fn typed_errors() {
        let bytes = sample().encode();
        assert_eq!(Message::decode(&bytes), Ok(sample()));
        assert_eq!(
            Message::decode(&[]),
            Err(DecodeError::Truncated { needed: 93, got: 0 })
        );
        assert_eq!(
            Message::decode(&bytes[..bytes.len() - 1]),
            Err(DecodeError::Truncated {
                needed: 98,
                got: 97
            })
        );
        let mut v2 = bytes.clone();
        v2[0] = 2;
        assert_eq!(Message::decode(&v2), Err(DecodeError::UnknownVersion(2)));
        assert_eq!(Message::decode(&[9]), Err(DecodeError::UnknownVersion(9)));
        let mut trailing = bytes.clone();
        trailing.push(0);
        assert_eq!(
            Message::decode(&trailing),
            Err(DecodeError::TrailingBytes { extra: 1 })
        );
        let mut long = bytes;
        long[89..93].copy_from_slice(&(MAX_BODY_LEN as u32 + 1).to_be_bytes());
        assert_eq!(
            Message::decode(&long),
            Err(DecodeError::BodyTooLong {
                len: MAX_BODY_LEN + 1
            })
        );
    }

    #[test]
    fn oversized_body_is_refused_by_check() {
        let mut m = sample();
        m.body = vec![0; MAX_BODY_LEN + 1];
        assert_eq!(
            m.check(),
            Err(DecodeError::BodyTooLong {
                len: MAX_BODY_LEN + 1
            })
        );
        assert_eq!(
            Message::decode(&m.encode()),
            Err(DecodeError::BodyTooLong {
                len: MAX_BODY_LEN + 1
            })
        );
        m.body.pop();
        assert_eq!(m.check(), Ok(()));
        assert_eq!(Message::decode(&m.encode()), Ok(m));
    }

    #[test]
    fn deadline_zero_never_expires() {
        let mut m = sample();
        assert!(!m.is_expired_at(1_700_000_000));
        assert!(m.is_expired_at(1_700_000_001));
        m.deadline = 0;
        assert!(!m.is_expired_at(u64::MAX));
    }

    #[test]
    fn id_is_keccak_of_encoding() {
        let m = sample();
        assert_eq!(m.id().0, crate::keccak256(&m.encode()));
        let shown = m.id().to_string();
        assert_eq!(shown.parse::<MessageId>(), Ok(m.id()));
    }
}
