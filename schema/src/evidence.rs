//! The evidence the store writes into the hash-chained log (`lifecycle_log.evidence`)
//! for the rows it makes itself, as typed structs. Their JSON is what
//! `docs/schema.md` documents and auditors query: these only grow (a renamed field
//! breaks an auditor's query), like every persisted shape.

use serde::Serialize;
use serde_json::Value;

/// A checkpoint recorded with the proof it was verified by (`event = 'checkpoint'`).
#[derive(Serialize)]
pub(crate) struct CheckpointLog<'a> {
    /// The checkpoint's digest, hex.
    pub digest: String,
    /// Source ledger id.
    pub origin: u32,
    /// The outbox, hex of 32 bytes.
    pub outbox: String,
    /// The outbox root, hex.
    pub root: String,
    /// The outbox count.
    pub count: u32,
    /// The source block.
    pub block_number: u64,
    /// Its hash, hex.
    pub block_hash: String,
    /// The relayer's verification evidence.
    pub proof: &'a Value,
}

/// An attestation recorded with its verdict (`event = 'attestation'`). A refusal
/// with no signature (an unreachable member, an unreadable answer) has no
/// `attestations` row: its `attestation_id` and `signature` are null.
#[derive(Serialize)]
pub(crate) struct AttestationLog<'a> {
    /// The attestation row.
    pub attestation_id: Option<i64>,
    /// The attested digest, hex.
    pub checkpoint_digest: String,
    /// The signer address, hex.
    pub signer: String,
    /// The member, when known.
    pub member: Option<&'a str>,
    /// The 65-byte signature, hex.
    pub signature: Option<String>,
    /// `accepted` or `refused`.
    pub outcome: &'a str,
    /// Why it was refused.
    pub reason: Option<&'a str>,
}

/// A delivery of a message (`event = 'delivered'`, merged with `from_status`).
#[derive(Serialize)]
pub(crate) struct DeliveryLog {
    /// The delivering transaction, hex.
    pub tx_hash: String,
    /// Destination ledger id.
    pub destination: u32,
    /// Its block.
    pub block_number: u64,
    /// The block's hash, hex, when known.
    pub block_hash: Option<String>,
    /// Gas used by the transaction, on gas-metered ledgers.
    pub gas_used: Option<u64>,
    /// The checkpoint the message was delivered under, hex; None when another
    /// submission delivered it.
    pub checkpoint_digest: Option<String>,
    /// Position in the batch.
    pub batch_index: u32,
    /// Messages in the batch.
    pub batch_size: u32,
}

/// An outbox entry that holds no valid message (`event = 'rejected'`, no message id).
#[derive(Serialize)]
pub(crate) struct RejectedEntryLog<'a> {
    /// The source ledger.
    pub ledger: u32,
    /// The cursor whose range held the entry.
    pub cursor: String,
    /// The entry's block.
    pub source_block_number: u64,
    /// Its hash, hex.
    pub source_block_hash: String,
    /// The emitting transaction, hex, where the ledger has one.
    pub source_tx_hash: Option<String>,
    /// Position in the block.
    pub index: u64,
    /// Why it was refused.
    pub reason: &'a str,
    /// The raw payload, hex.
    pub raw: String,
}

/// A failed delivery attempt (`event = 'failed'` or `'dead_letter'`).
#[derive(Serialize)]
pub(crate) struct FailureLog<'a> {
    /// The status the message left.
    pub from_status: &'a str,
    /// What failed.
    pub error: &'a str,
    /// Attempts so far.
    pub attempts: u32,
    /// The retry budget.
    pub max_attempts: u32,
    /// When it may be retried (RFC 3339), None once dead-lettered.
    pub next_attempt_at: Option<String>,
}

/// A route named by an operator action.
#[derive(Serialize)]
pub(crate) struct RouteLog {
    /// Source ledger id.
    pub source: u32,
    /// Destination ledger id.
    pub destination: u32,
}

/// The message-level record of an operator's action (the `from_status`/`to_status`
/// move it made).
#[derive(Serialize)]
pub(crate) struct OperatorTransitionLog<'a> {
    /// The `operator_actions` row.
    pub operator_action_id: i64,
    /// Why, in the operator's words.
    pub reason: &'a str,
}

/// An operator's action (`event = 'operator'`).
#[derive(Serialize)]
pub(crate) struct OperatorLog<'a> {
    /// The `operator_actions` row.
    pub operator_action_id: i64,
    /// What was done.
    pub action: &'a str,
    /// Why, in the operator's words.
    pub reason: &'a str,
    /// The route it applies to, if any.
    pub route: Option<RouteLog>,
    /// Further details.
    pub details: &'a Value,
}

/// Serializes log evidence (structs of strings, numbers and JSON values always
/// serialize).
pub(crate) fn json<T: Serialize>(evidence: &T) -> Value {
    serde_json::to_value(evidence).unwrap_or_else(|e| panic!("log evidence serializes: {e}"))
}

#[cfg(test)]
mod tests {
    #![expect(
        clippy::unwrap_used,
        reason = "test code: a failed unwrap is a failed test"
    )]

    use super::*;
    use serde_json::json as j;

    /// The JSON auditors query (`docs/schema.md`) is exactly what the store wrote
    /// before these types existed.
    #[test]
    fn log_evidence_keeps_its_documented_shape() {
        let proof = j!({"finality": "f"});
        assert_eq!(
            json(&CheckpointLog {
                digest: "dd".into(),
                origin: 1,
                outbox: "oo".into(),
                root: "rr".into(),
                count: 2,
                block_number: 3,
                block_hash: "hh".into(),
                proof: &proof,
            }),
            j!({"digest": "dd", "origin": 1, "outbox": "oo", "root": "rr", "count": 2,
                "block_number": 3, "block_hash": "hh", "proof": {"finality": "f"}})
        );
        assert_eq!(
            json(&AttestationLog {
                attestation_id: Some(4),
                checkpoint_digest: "dd".into(),
                signer: "ss".into(),
                member: None,
                signature: Some("gg".into()),
                outcome: "refused",
                reason: Some("why"),
            }),
            j!({"attestation_id": 4, "checkpoint_digest": "dd", "signer": "ss", "member": null,
                "signature": "gg", "outcome": "refused", "reason": "why"})
        );
        assert_eq!(
            json(&DeliveryLog {
                tx_hash: "tt".into(),
                destination: 9,
                block_number: 5,
                block_hash: None,
                gas_used: Some(21),
                checkpoint_digest: None,
                batch_index: 0,
                batch_size: 1,
            }),
            j!({"tx_hash": "tt", "destination": 9, "block_number": 5, "block_hash": null,
                "gas_used": 21, "checkpoint_digest": null, "batch_index": 0, "batch_size": 1})
        );
        assert_eq!(
            json(&RejectedEntryLog {
                ledger: 7,
                cursor: "c".into(),
                source_block_number: 8,
                source_block_hash: "bb".into(),
                source_tx_hash: Some("tt".into()),
                index: 2,
                reason: "bad",
                raw: "00".into(),
            }),
            j!({"ledger": 7, "cursor": "c", "source_block_number": 8, "source_block_hash": "bb",
                "source_tx_hash": "tt", "index": 2, "reason": "bad", "raw": "00"})
        );
        assert_eq!(
            json(&FailureLog {
                from_status: "submitted",
                error: "e",
                attempts: 8,
                max_attempts: 8,
                next_attempt_at: None,
            }),
            j!({"from_status": "submitted", "error": "e", "attempts": 8, "max_attempts": 8,
                "next_attempt_at": null})
        );
        assert_eq!(
            json(&OperatorTransitionLog {
                operator_action_id: 3,
                reason: "r",
            }),
            j!({"operator_action_id": 3, "reason": "r"})
        );
        let details = j!({"k": 1});
        assert_eq!(
            json(&OperatorLog {
                operator_action_id: 3,
                action: "retry",
                reason: "r",
                route: Some(RouteLog {
                    source: 1,
                    destination: 2,
                }),
                details: &details,
            }),
            j!({"operator_action_id": 3, "action": "retry", "reason": "r",
                "route": {"source": 1, "destination": 2}, "details": {"k": 1}})
        );
        assert!(json(&OperatorLog {
            operator_action_id: 3,
            action: "note",
            reason: "r",
            route: None,
            details: &details,
        })
        .get("route")
        .unwrap()
        .is_null());
    }
}
