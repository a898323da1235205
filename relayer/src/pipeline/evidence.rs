//! The evidence a step writes into a message's history (the `evidence` jsonb of its
//! log rows), as typed structs. Their JSON is what `docs/schema.md` documents and
//! auditors query: a field renamed here breaks their queries, so these only grow.

use serde::Serialize;

/// A message the destination can never accept, refused before any submission.
#[derive(Serialize)]
pub struct Rejected<'a> {
    /// Why.
    pub reason: &'a str,
}

/// A message whose deadline passed before it was submitted.
#[derive(Serialize)]
pub struct ExpiredUnsent {
    /// Its deadline, Unix seconds.
    pub deadline: u64,
    /// When the relayer found it expired, Unix seconds.
    pub now: u64,
}

/// A message the inbox consumed as expired in a delivery transaction.
#[derive(Serialize)]
pub struct ExpiredInTransaction {
    /// The delivery transaction.
    pub tx: String,
}

/// A message another submission ended without delivering it (refused or expired),
/// as the destination shows it.
#[derive(Serialize)]
pub struct EndedElsewhere<'a> {
    /// The transaction that ended it.
    pub tx: String,
    /// Its block.
    pub block: u64,
    /// The refusal code, for a refusal.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<&'a str>,
}

/// A message its recipient refused for good in a delivery transaction.
#[derive(Serialize)]
pub struct RefusedInTransaction<'a> {
    /// The delivery transaction.
    pub tx: String,
    /// The refusal code, as text if it is text.
    pub code: &'a str,
}

/// A message its recipient held in a delivery transaction (docs/protocol.md,
/// "Holds"): not executed, still deliverable, submitted again at `due`.
#[derive(Serialize)]
pub struct HeldInTransaction<'a> {
    /// The delivery transaction.
    pub tx: String,
    /// The app's reason, as text if it is text.
    pub reason: &'a str,
}

/// The checkpoint a message was verified under.
#[derive(Serialize)]
pub struct Verified<'a> {
    /// The checkpoint's digest, `0x` hex.
    pub checkpoint_digest: String,
    /// The source block, its number.
    pub source_block: u64,
    /// The source block's hash, `0x` hex.
    pub source_block_hash: String,
    /// The outbox root, `0x` hex.
    pub root: String,
    /// The outbox count.
    pub count: u32,
    /// How the source block's finality was established.
    pub finality: &'a str,
}

/// The quorum a message's checkpoint was attested by.
#[derive(Serialize)]
pub struct Attested {
    /// The checkpoint's digest, `0x` hex.
    pub checkpoint_digest: String,
    /// The signing members, by name (or signer address when unknown).
    pub signers: Vec<String>,
}

/// A batch about to be sent.
#[derive(Serialize)]
pub struct Submitted {
    /// The checkpoint's digest, `0x` hex.
    pub checkpoint_digest: String,
    /// Messages in the batch.
    pub batch_size: usize,
}

/// A message the inbox skipped because another submission delivered it first.
#[derive(Serialize)]
pub struct DeliveredElsewhere {
    /// Always "delivered by another submission".
    pub note: &'static str,
}

/// Serializes evidence for the store (a struct of strings and numbers always
/// serializes).
pub fn json<T: Serialize>(evidence: &T) -> serde_json::Value {
    serde_json::to_value(evidence).unwrap_or_else(|e| panic!("evidence serializes: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json as j;

    /// The JSON auditors query (`docs/schema.md`) stays as it was.
    #[test]
    fn evidence_keeps_its_documented_shape() {
        assert_eq!(json(&Rejected { reason: "r" }), j!({"reason": "r"}));
        assert_eq!(
            json(&ExpiredUnsent {
                deadline: 5,
                now: 7
            }),
            j!({"deadline": 5, "now": 7})
        );
        assert_eq!(
            json(&ExpiredInTransaction { tx: "0x01".into() }),
            j!({"tx": "0x01"})
        );
        assert_eq!(
            json(&RefusedInTransaction {
                tx: "0x01".into(),
                code: "unknown bank"
            }),
            j!({"tx": "0x01", "code": "unknown bank"})
        );
        assert_eq!(
            json(&Verified {
                checkpoint_digest: "0xd".into(),
                source_block: 3,
                source_block_hash: "0xh".into(),
                root: "0xr".into(),
                count: 2,
                finality: "f",
            }),
            j!({"checkpoint_digest": "0xd", "source_block": 3, "source_block_hash": "0xh",
                "root": "0xr", "count": 2, "finality": "f"})
        );
        assert_eq!(
            json(&Attested {
                checkpoint_digest: "0xd".into(),
                signers: vec!["a".into()],
            }),
            j!({"checkpoint_digest": "0xd", "signers": ["a"]})
        );
        assert_eq!(
            json(&Submitted {
                checkpoint_digest: "0xd".into(),
                batch_size: 4,
            }),
            j!({"checkpoint_digest": "0xd", "batch_size": 4})
        );
        assert_eq!(
            json(&DeliveredElsewhere {
                note: "delivered by another submission",
            }),
            j!({"note": "delivered by another submission"})
        );
    }
}
