//! Receipt batches among observed messages (docs/protocol.md, "Receipts").
//!
//! A destination's Inbox sends the receipts of the messages it ended back to their
//! origin as one ordinary message: sender = the destination's Inbox, recipient = the
//! origin's Inbox. The observer records the receipts such a message carries with the
//! message itself, so the history holds each message's end as its destination
//! reported it, before the receipt batch is even relayed.

use isthmus_protocol::Receipt;
use isthmus_schema::{NewMessage, ObservedReceipt};

/// The receipts `message` carries, if it is a receipt batch: its sender is
/// `from_inbox` (the Inbox of its origin, where the receipts' messages ended) and its
/// recipient `to_inbox` (the Inbox of its destination, where they were sent). Err
/// with the reason for a batch whose body is not receipts (the Inbox taking it
/// refuses it too).
pub fn carried(
    message: &NewMessage,
    from_inbox: Option<[u8; 32]>,
    to_inbox: Option<[u8; 32]>,
) -> Result<Vec<ObservedReceipt>, String> {
    let (Some(from), Some(to)) = (from_inbox, to_inbox) else {
        return Ok(Vec::new());
    };
    if message.sender != from || message.recipient != to {
        return Ok(Vec::new());
    }
    let receipts = Receipt::decode_batch(&message.body).map_err(|e| e.to_string())?;
    Ok(receipts
        .into_iter()
        .map(|r| ObservedReceipt {
            message_id: r.id,
            carried_by: message.id,
            outcome: r.outcome,
            result: r.result,
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use isthmus_protocol::{Address32, Message, MessageId, ReceiptOutcome};
    use isthmus_schema::BlockRef;

    const FROM: [u8; 32] = [0x0b; 32];
    const TO: [u8; 32] = [0x0a; 32];

    fn batch(sender: [u8; 32], recipient: [u8; 32], body: Vec<u8>) -> NewMessage {
        let m = Message {
            nonce: 3,
            origin: 2,
            sender: Address32(sender),
            destination: 1,
            recipient: Address32(recipient),
            deadline: 0,
            body,
        };
        NewMessage::from_protocol(
            &m,
            m.id(),
            BlockRef {
                number: 9,
                hash: [9; 32],
            },
            None,
        )
    }

    fn receipts() -> Vec<Receipt> {
        vec![
            Receipt {
                id: MessageId([1; 32]),
                nonce: 0,
                outcome: ReceiptOutcome::Delivered,
                result: [0xaa; 32],
            },
            Receipt {
                id: MessageId([2; 32]),
                nonce: 1,
                outcome: ReceiptOutcome::Expired,
                result: [0; 32],
            },
        ]
    }

    #[test]
    fn a_message_from_inbox_to_inbox_carries_its_receipts() {
        let m = batch(FROM, TO, Receipt::encode_batch(&receipts()));
        let found = carried(&m, Some(FROM), Some(TO)).expect("a receipt batch");
        assert_eq!(found.len(), 2);
        assert_eq!(found[0].message_id, MessageId([1; 32]));
        assert_eq!(found[0].carried_by, m.id);
        assert_eq!(found[0].outcome, ReceiptOutcome::Delivered);
        assert_eq!(found[0].result, [0xaa; 32]);
        assert_eq!(found[1].outcome, ReceiptOutcome::Expired);
    }

    #[test]
    fn other_messages_carry_none() {
        let body = Receipt::encode_batch(&receipts());
        // From an app, to an app, or on a route whose ledgers keep no receipts.
        for (sender, recipient, from, to) in [
            ([0x5e; 32], TO, Some(FROM), Some(TO)),
            (FROM, [0x5e; 32], Some(FROM), Some(TO)),
            (FROM, TO, None, Some(TO)),
            (FROM, TO, Some(FROM), None),
        ] {
            let m = batch(sender, recipient, body.clone());
            assert_eq!(carried(&m, from, to), Ok(Vec::new()));
        }
    }

    #[test]
    fn a_batch_that_is_not_receipts_is_reported() {
        let m = batch(FROM, TO, vec![1; 72]);
        let e = carried(&m, Some(FROM), Some(TO)).expect_err("not receipts");
        assert!(e.contains("73-byte receipts"), "{e}");
    }
}
