//! Receipts: how a message ended on its destination, carried back to its origin.
//!
//! When a destination endpoint ends a message (it delivered it, its recipient refused
//! it for good, or it was submitted after its deadline) it records one [`Receipt`].
//! The receipts an endpoint records in one submission for one origin travel back as
//! the body of one ordinary v1 [`Message`](crate::Message): sender = the destination's
//! endpoint, recipient = the origin's endpoint, deadline none. That message is
//! committed in the destination's outbox tree like any other, so the light clients and
//! the quorum that prove messages prove receipts too (`docs/protocol.md`, "Receipts").
//!
//! Layout of one receipt (big-endian, no padding), [`RECEIPT_LEN`] bytes:
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 32 | id of the message the receipt ends |
//! | 32 | 8 | its nonce in the origin's outbox |
//! | 40 | 1 | outcome: 1 delivered, 2 refused, 3 expired |
//! | 41 | 32 | result: the recipient's short answer (zero if none) |
//!
//! A receipt batch body is 1 to [`MAX_RECEIPTS`] receipts, concatenated.

use alloc::string::String;
use alloc::vec::Vec;

use crate::MessageId;

/// Bytes of one encoded receipt.
pub const RECEIPT_LEN: usize = 32 + 8 + 1 + 32;

/// Most receipts one receipt batch carries: a body stays far below
/// [`MAX_BODY_LEN`](crate::MAX_BODY_LEN) and a batch of them fits one delivery.
pub const MAX_RECEIPTS: usize = 64;

/// How a message ended on its destination. Every message ends exactly one way.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum ReceiptOutcome {
    /// The recipient accepted the message.
    Delivered,
    /// The recipient refused it for good (or is no recipient at all): it will never be
    /// delivered.
    Refused,
    /// It was submitted after its deadline and consumed undelivered.
    Expired,
}

impl ReceiptOutcome {
    /// The outcome's byte in the encoding.
    pub const fn code(self) -> u8 {
        match self {
            Self::Delivered => 1,
            Self::Refused => 2,
            Self::Expired => 3,
        }
    }

    /// The outcome a byte stands for.
    pub const fn from_code(code: u8) -> Option<Self> {
        match code {
            1 => Some(Self::Delivered),
            2 => Some(Self::Refused),
            3 => Some(Self::Expired),
            _ => None,
        }
    }

    /// Lower-case name, as the history and the CLI show it.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Delivered => "delivered",
            Self::Refused => "refused",
            Self::Expired => "expired",
        }
    }
}

/// One message's end, as its destination recorded it.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct Receipt {
    /// The message ended.
    pub id: MessageId,
    /// Its nonce in the origin's outbox.
    pub nonce: u64,
    /// How it ended.
    pub outcome: ReceiptOutcome,
    /// The recipient's short answer: what it returned when it accepted, or the code it
    /// refused with; zero otherwise.
    pub result: [u8; 32],
}

/// Why bytes are not a receipt batch.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReceiptError {
    /// The body is empty or not a whole number of receipts.
    #[error("a receipt batch is a whole number of {RECEIPT_LEN}-byte receipts, got {0} bytes")]
    Length(usize),
    /// More receipts than [`MAX_RECEIPTS`].
    #[error("{0} receipts in one batch, at most {MAX_RECEIPTS}")]
    TooMany(usize),
    /// An outcome byte that names no outcome.
    #[error("receipt {index} has unknown outcome {code}")]
    Outcome {
        /// Position of the receipt in the batch.
        index: usize,
        /// The byte found.
        code: u8,
    },
}

impl Receipt {
    /// Appends the receipt's [`RECEIPT_LEN`] bytes to `out`.
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.id.0);
        out.extend_from_slice(&self.nonce.to_be_bytes());
        out.push(self.outcome.code());
        out.extend_from_slice(&self.result);
    }

    /// A receipt batch body: `receipts`, concatenated.
    pub fn encode_batch(receipts: &[Receipt]) -> Vec<u8> {
        let mut out = Vec::with_capacity(receipts.len() * RECEIPT_LEN);
        for r in receipts {
            r.encode_into(&mut out);
        }
        out
    }

    /// The receipts of a batch body. Refuses an empty body, a partial receipt, more
    /// than [`MAX_RECEIPTS`] and an unknown outcome.
    pub fn decode_batch(body: &[u8]) -> Result<Vec<Receipt>, ReceiptError> {
        if body.is_empty() || !body.len().is_multiple_of(RECEIPT_LEN) {
            return Err(ReceiptError::Length(body.len()));
        }
        let n = body.len() / RECEIPT_LEN;
        if n > MAX_RECEIPTS {
            return Err(ReceiptError::TooMany(n));
        }
        body.chunks_exact(RECEIPT_LEN)
            .enumerate()
            .map(|(index, r)| {
                let code = r[40];
                let outcome =
                    ReceiptOutcome::from_code(code).ok_or(ReceiptError::Outcome { index, code })?;
                let mut id = [0u8; 32];
                id.copy_from_slice(&r[..32]);
                let mut nonce = [0u8; 8];
                nonce.copy_from_slice(&r[32..40]);
                let mut result = [0u8; 32];
                result.copy_from_slice(&r[41..]);
                Ok(Receipt {
                    id: MessageId(id),
                    nonce: u64::from_be_bytes(nonce),
                    outcome,
                    result,
                })
            })
            .collect()
    }
}

/// A receipt's result (or a refusal code) for people: a Solidity string literal
/// (printable ASCII, zero-padded on the right) reads as itself, anything else as
/// `0x` hex.
pub fn result_text(result: &[u8; 32]) -> String {
    let end = result.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
    let text = &result[..end];
    if !text.is_empty() && text.iter().all(|b| b.is_ascii_graphic() || *b == b' ') {
        return text.iter().map(|&b| char::from(b)).collect();
    }
    let mut out = String::from("0x");
    for b in result {
        out.push_str(&alloc::format!("{b:02x}"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_read_as_their_text_or_as_hex() {
        let mut code = [0u8; 32];
        code[..12].copy_from_slice(b"unknown bank");
        assert_eq!(result_text(&code), "unknown bank");
        code[31] = 7;
        assert!(result_text(&code).starts_with("0x756e6b6e6f776e2062616e6b"));
        assert_eq!(
            result_text(&[0; 32]),
            alloc::format!("0x{}", "00".repeat(32))
        );
        let mut binary = [0u8; 32];
        binary[0] = 0xff;
        assert_eq!(
            result_text(&binary),
            alloc::format!("0xff{}", "00".repeat(31))
        );
    }

    fn receipt(i: u8, outcome: ReceiptOutcome) -> Receipt {
        Receipt {
            id: MessageId([i; 32]),
            nonce: 0x0102_0304_0506_0700 + u64::from(i),
            outcome,
            result: [0xa0 | i; 32],
        }
    }

    #[test]
    fn a_batch_round_trips_and_has_the_documented_layout() {
        let batch = [
            receipt(1, ReceiptOutcome::Delivered),
            receipt(2, ReceiptOutcome::Refused),
            receipt(3, ReceiptOutcome::Expired),
        ];
        let body = Receipt::encode_batch(&batch);
        assert_eq!(body.len(), 3 * RECEIPT_LEN);
        assert_eq!(&body[..32], &[1u8; 32]);
        assert_eq!(&body[32..40], &[1, 2, 3, 4, 5, 6, 7, 1]);
        assert_eq!(body[40], 1);
        assert_eq!(&body[41..73], &[0xa1; 32]);
        assert_eq!(body[RECEIPT_LEN + 40], 2);
        assert_eq!(body[2 * RECEIPT_LEN + 40], 3);
        assert_eq!(Receipt::decode_batch(&body), Ok(batch.to_vec()));
    }

    #[test]
    fn bodies_that_are_not_whole_receipts_are_refused() {
        assert_eq!(Receipt::decode_batch(&[]), Err(ReceiptError::Length(0)));
        let mut body = Receipt::encode_batch(&[receipt(1, ReceiptOutcome::Delivered)]);
        body.push(0);
        assert_eq!(
            Receipt::decode_batch(&body),
            Err(ReceiptError::Length(RECEIPT_LEN + 1))
        );
        body.truncate(RECEIPT_LEN - 1);
        assert_eq!(
            Receipt::decode_batch(&body),
            Err(ReceiptError::Length(RECEIPT_LEN - 1))
        );
    }

    #[test]
    fn unknown_outcomes_and_oversized_batches_are_refused() {
        for code in [0u8, 4, 255] {
            let mut body = Receipt::encode_batch(&[
                receipt(1, ReceiptOutcome::Delivered),
                receipt(2, ReceiptOutcome::Delivered),
            ]);
            body[RECEIPT_LEN + 40] = code;
            assert_eq!(
                Receipt::decode_batch(&body),
                Err(ReceiptError::Outcome { index: 1, code })
            );
        }
        let many = vec![receipt(1, ReceiptOutcome::Expired); MAX_RECEIPTS + 1];
        assert_eq!(
            Receipt::decode_batch(&Receipt::encode_batch(&many)),
            Err(ReceiptError::TooMany(MAX_RECEIPTS + 1))
        );
        let most = vec![receipt(1, ReceiptOutcome::Expired); MAX_RECEIPTS];
        assert_eq!(
            Receipt::decode_batch(&Receipt::encode_batch(&most)).map(|r| r.len()),
            Ok(MAX_RECEIPTS)
        );
    }

    #[test]
    fn outcome_codes_name_each_outcome_once() {
        for o in [
            ReceiptOutcome::Delivered,
            ReceiptOutcome::Refused,
            ReceiptOutcome::Expired,
        ] {
            assert_eq!(ReceiptOutcome::from_code(o.code()), Some(o));
        }
    }
}
