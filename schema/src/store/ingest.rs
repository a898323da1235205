//! What the observer records: ledgers, scanned ranges (their messages, rejected
//! outbox entries and the moved cursor, in one transaction) and the outbox leaves
//! read back from the observed messages.

use isthmus_protocol::Message;

use super::cursors::advance_cursor;
use super::{arr, get, parse_u64, to_i64, to_u32, Result, Store};
use crate::error::StoreError;
use crate::evidence::{self, RejectedEntryLog};
use crate::types::{
    BlockRef, CursorKey, Ledger, LedgerId, MessageId, NewMessage, ObservedOutcome, ObservedRange,
    ObservedReceipt, RejectedEntry,
};

impl Store {
    /// Inserts or updates a ledger from config.
    pub async fn upsert_ledger(&self, ledger: &Ledger) -> Result<()> {
        sqlx::query(
            "INSERT INTO ledgers (id, name, kind, finality) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name, kind = EXCLUDED.kind, \
                 finality = EXCLUDED.finality, updated_at = now()",
        )
        .bind(i64::from(ledger.id))
        .bind(&ledger.name)
        .bind(ledger.kind.as_str())
        .bind(ledger.finality.as_str())
        .execute(&self.pool)
        .await
        .map_err(StoreError::db("upsert ledger"))?;
        Ok(())
    }

    /// All known ledgers, by id.
    pub async fn ledgers(&self) -> Result<Vec<Ledger>> {
        let rows = sqlx::query("SELECT id, name, kind, finality FROM ledgers ORDER BY id")
            .fetch_all(&self.pool)
            .await
            .map_err(StoreError::db("list ledgers"))?;
        rows.iter()
            .map(|row| {
                let kind: String = get(row, "kind")?;
                let finality: String = get(row, "finality")?;
                Ok(Ledger {
                    id: to_u32(get(row, "id")?, "ledger id")?,
                    name: get(row, "name")?,
                    kind: kind.parse()?,
                    finality: finality.parse()?,
                })
            })
            .collect()
    }

    /// Records a scanned range in one transaction: inserts `messages` (already known
    /// ids are left untouched), appends an `observed` log row per new message, and
    /// moves the cursor to `block`. Either all of it commits or none of it.
    ///
    /// The cursor only moves forward: an older block is refused with
    /// [`StoreError::CursorBackwards`], the same number with another hash with
    /// [`StoreError::CursorConflict`]; the same block again is accepted (a replayed
    /// range). Each message must be at or below `block` and its id must be keccak256
    /// of its canonical bytes. Batches are sent as arrays: one round trip per table,
    /// whatever the batch size.
    pub async fn record_observed(
        &self,
        key: CursorKey,
        block: BlockRef,
        messages: &[NewMessage],
        actor: &str,
    ) -> Result<ObservedOutcome> {
        self.record_observed_with_rejected(key, block, messages, &[], actor)
            .await
    }

    /// [`Store::record_observed`], also recording the range's `rejected` outbox
    /// entries: one `rejected` log row each, without a message id, whose evidence
    /// names the ledger, block, transaction, index, reason and raw payload (hex). They
    /// commit with the messages and the cursor; a range recorded again (the cursor
    /// did not move) adds no second row.
    pub async fn record_observed_with_rejected(
        &self,
        key: CursorKey,
        block: BlockRef,
        messages: &[NewMessage],
        rejected: &[RejectedEntry],
        actor: &str,
    ) -> Result<ObservedOutcome> {
        let range = ObservedRange {
            block,
            messages,
            rejected,
            receipts: &[],
            light_client: None,
        };
        self.record_observed_round(key, range, actor).await
    }

    /// [`Store::record_observed_with_rejected`] of a whole [`ObservedRange`]: also
    /// the receipts its receipt batches carry (one `receipts` row and one `receipt`
    /// log row each, recorded with the batch's own row: a batch already known adds
    /// none), and the source's light-client state and newly verified headers, so
    /// that a restart finds the state that covers its cursor. All in one
    /// transaction.
    pub async fn record_observed_round(
        &self,
        key: CursorKey,
        range: ObservedRange<'_>,
        actor: &str,
    ) -> Result<ObservedOutcome> {
        let ObservedRange {
            block,
            messages,
            rejected,
            receipts,
            light_client,
        } = range;
        if let Some(r) = receipts
            .iter()
            .find(|r| !messages.iter().any(|m| m.id == r.carried_by))
        {
            return Err(StoreError::InvalidInput(format!(
                "receipt of {} is carried by {}, not a message of this range",
                r.message_id, r.carried_by
            )));
        }
        if let Some(lc) = light_client {
            if lc.state.ledger != key.ledger || lc.state.head.number < block.number {
                return Err(StoreError::InvalidInput(format!(
                    "light-client state of ledger {} at block {} does not cover the cursor {} of ledger {}",
                    lc.state.ledger, lc.state.head.number, block.number, key.ledger
                )));
            }
        }
        for r in rejected {
            if r.block.number > block.number {
                return Err(StoreError::InvalidInput(format!(
                    "rejected entry {} of block {} is beyond the cursor {}",
                    r.index, r.block.number, block.number
                )));
            }
        }
        // Checked before anything is written; the cursor itself moves last.
        to_i64(block.number, "cursor block number")?;
        let n = messages.len();
        let mut ids = Vec::with_capacity(n);
        let mut versions = Vec::with_capacity(n);
        let mut nonces = Vec::with_capacity(n);
        let mut origins = Vec::with_capacity(n);
        let mut senders = Vec::with_capacity(n);
        let mut destinations = Vec::with_capacity(n);
        let mut recipients = Vec::with_capacity(n);
        let mut deadlines = Vec::with_capacity(n);
        let mut bodies = Vec::with_capacity(n);
        let mut canonicals = Vec::with_capacity(n);
        let mut block_numbers = Vec::with_capacity(n);
        let mut block_hashes = Vec::with_capacity(n);
        let mut tx_hashes = Vec::with_capacity(n);
        for m in messages {
            check_message(m)?;
            if m.source_block.number > block.number {
                return Err(StoreError::InvalidInput(format!(
                    "message {} is in block {}, beyond the cursor {}",
                    m.id, m.source_block.number, block.number
                )));
            }
            ids.push(m.id.0.to_vec());
            versions.push(i16::from(m.version));
            nonces.push(m.nonce.to_string());
            origins.push(i64::from(m.origin));
            senders.push(m.sender.to_vec());
            destinations.push(i64::from(m.destination));
            recipients.push(m.recipient.to_vec());
            deadlines.push(m.deadline.to_string());
            bodies.push(m.body.clone());
            canonicals.push(m.canonical.clone());
            block_numbers.push(to_i64(m.source_block.number, "source block number")?);
            block_hashes.push(m.source_block.hash.to_vec());
            tx_hashes.push(m.source_tx_hash.map(|h| h.to_vec()));
        }

        let mut tx = self.begin().await?;
        let inserted: Vec<Vec<u8>> = if n == 0 {
            Vec::new()
        } else {
            sqlx::query_scalar(
                "INSERT INTO messages (id, version, nonce, origin, sender, destination, \
                     recipient, deadline, body, canonical, status, source_block_number, \
                     source_block_hash, source_tx_hash) \
                 SELECT u.id, u.version, u.nonce::numeric, u.origin, u.sender, u.destination, \
                        u.recipient, u.deadline::numeric, u.body, u.canonical, 'observed', \
                        u.block_number, u.block_hash, u.tx_hash \
                 FROM unnest($1::bytea[], $2::int2[], $3::text[], $4::int8[], $5::bytea[], \
                             $6::int8[], $7::bytea[], $8::text[], $9::bytea[], $10::bytea[], \
                             $11::int8[], $12::bytea[], $13::bytea[]) \
                      AS u(id, version, nonce, origin, sender, destination, recipient, \
                           deadline, body, canonical, block_number, block_hash, tx_hash) \
                 ON CONFLICT (id) DO NOTHING \
                 RETURNING id",
            )
            .bind(&ids)
            .bind(&versions)
            .bind(&nonces)
            .bind(&origins)
            .bind(&senders)
            .bind(&destinations)
            .bind(&recipients)
            .bind(&deadlines)
            .bind(&bodies)
            .bind(&canonicals)
            .bind(&block_numbers)
            .bind(&block_hashes)
            .bind(&tx_hashes)
            .fetch_all(&mut *tx)
            .await
            .map_err(StoreError::db("insert observed messages"))?
        };

        if !inserted.is_empty() {
            sqlx::query(
                "INSERT INTO lifecycle_log (message_id, event, evidence, actor) \
                 SELECT m.id, 'observed', jsonb_build_object( \
                        'cursor', $2::text, \
                        'origin', m.origin, 'destination', m.destination, 'nonce', m.nonce, \
                        'source_block_number', m.source_block_number, \
                        'source_block_hash', encode(m.source_block_hash, 'hex'), \
                        'source_tx_hash', encode(m.source_tx_hash, 'hex')), $3 \
                 FROM messages m JOIN unnest($1::bytea[]) AS u(id) ON m.id = u.id \
                 ORDER BY m.origin, m.nonce, m.id",
            )
            .bind(&inserted)
            .bind(key.to_string())
            .bind(actor)
            .execute(&mut *tx)
            .await
            .map_err(StoreError::db("append observed log rows"))?;
        }

        // The receipts the newly inserted batches carry (a batch already known had
        // its receipts recorded with it).
        let fresh: Vec<&ObservedReceipt> = receipts
            .iter()
            .filter(|r| inserted.iter().any(|id| id.as_slice() == r.carried_by.0))
            .collect();
        record_receipts(&mut tx, key, &fresh, actor).await?;

        let advanced = advance_cursor(&mut tx, key, block).await?;
        let mut recorded = 0;
        if advanced && !rejected.is_empty() {
            let evidence: Vec<serde_json::Value> = rejected
                .iter()
                .map(|r| {
                    evidence::json(&RejectedEntryLog {
                        ledger: key.ledger,
                        cursor: key.to_string(),
                        source_block_number: r.block.number,
                        source_block_hash: hex::encode(r.block.hash),
                        source_tx_hash: r.tx_hash.map(hex::encode),
                        index: r.index,
                        reason: &r.reason,
                        raw: hex::encode(&r.raw),
                    })
                })
                .collect();
            recorded = sqlx::query(
                "INSERT INTO lifecycle_log (message_id, event, evidence, actor) \
                 SELECT NULL, 'rejected', e.evidence, $2 \
                 FROM unnest($1::jsonb[]) WITH ORDINALITY AS e(evidence, n) ORDER BY e.n",
            )
            .bind(&evidence)
            .bind(actor)
            .execute(&mut *tx)
            .await
            .map_err(StoreError::db("append rejected log rows"))?
            .rows_affected() as usize;
        }
        if let Some(lc) = light_client {
            super::lightclient::write_commit(&mut tx, lc).await?;
        }
        tx.commit()
            .await
            .map_err(StoreError::db("commit observed batch"))?;
        Ok(ObservedOutcome {
            inserted: inserted.len(),
            already_known: n - inserted.len(),
            cursor_advanced: advanced,
            rejected: recorded,
        })
    }

    /// `origin`'s message with the highest nonce at or above `first`, with that nonce,
    /// if this history holds one. At start a relayer asks its Outbox whether it sent
    /// that message: if not, the Outbox replaced another and restarted below the old
    /// one's nonces (docs/protocol.md, "Replacing an Outbox").
    pub async fn highest_message_from(
        &self,
        origin: LedgerId,
        first: u64,
    ) -> Result<Option<(u64, MessageId)>> {
        let row = sqlx::query(
            "SELECT m.nonce::text AS nonce_text, m.id FROM messages m \
             WHERE m.origin = $1 AND m.nonce >= $2::numeric ORDER BY m.nonce DESC LIMIT 1",
        )
        .bind(i64::from(origin))
        .bind(first.to_string())
        .fetch_optional(&self.pool)
        .await
        .map_err(StoreError::db("read the highest message of an origin"))?;
        let Some(row) = row else { return Ok(None) };
        let nonce: String = get(&row, "nonce_text")?;
        let id: Vec<u8> = get(&row, "id")?;
        Ok(Some((
            parse_u64(&nonce, "nonce")?,
            MessageId(arr::<32>(&id, "messages.id")?),
        )))
    }

    /// The ids of `origin`'s messages with nonce in `first..count`, in nonce order:
    /// the leaves of the outbox tree as this relayer observed them, from the outbox's
    /// first nonce (below it, an Outbox that replaced another holds zero leaves, and
    /// the history may hold the old Outbox's messages). Refused with
    /// [`StoreError::InvalidInput`] when a nonce is missing (the observer has not seen
    /// every message the outbox committed), so a branch is never built from a tree
    /// with a hole.
    pub async fn outbox_leaves(
        &self,
        origin: LedgerId,
        first: u64,
        count: u64,
    ) -> Result<Vec<[u8; 32]>> {
        let rows = sqlx::query(
            // Ordered by the numeric column, not by the text alias (which would put
            // nonce 10 before nonce 2).
            "SELECT m.nonce::text AS nonce_text, m.id FROM messages m \
             WHERE m.origin = $1 AND m.nonce >= $2::numeric AND m.nonce < $3::numeric \
             ORDER BY m.nonce",
        )
        .bind(i64::from(origin))
        .bind(first.to_string())
        .bind(count.to_string())
        .fetch_all(&self.pool)
        .await
        .map_err(StoreError::db("read outbox leaves"))?;
        let mut leaves = Vec::with_capacity(rows.len());
        for (expected, row) in (first..).zip(rows.iter()) {
            let nonce: String = get(row, "nonce_text")?;
            if parse_u64(&nonce, "nonce")? != expected {
                return Err(StoreError::InvalidInput(format!(
                    "outbox of ledger {origin}: nonce {expected} was never observed"
                )));
            }
            let id: Vec<u8> = get(row, "id")?;
            leaves.push(arr::<32>(&id, "messages.id")?);
        }
        let expected = count.saturating_sub(first);
        if leaves.len() as u64 != expected {
            return Err(StoreError::InvalidInput(format!(
                "outbox of ledger {origin}: {} of the {expected} messages from nonce {first} \
                 to {count} observed",
                leaves.len()
            )));
        }
        Ok(leaves)
    }
}

/// Refuses a message whose id is not keccak256 of its canonical bytes or, for
/// version 1, whose canonical bytes are not the protocol's encoding of its fields:
/// they are decoded with [`isthmus_protocol::Message::decode`], the code every
/// ledger and relayer shares, and compared field by field. Stored rows are thereby
/// self-consistent for auditors.
/// Writes `receipts` (each carried by a batch inserted in `tx`): one `receipts` row
/// and one `receipt` log row each. A receipt for a message this relayer has not
/// observed keeps its id in the evidence, with no message id on the row.
async fn record_receipts(
    tx: &mut sqlx::Transaction<'static, sqlx::Postgres>,
    key: CursorKey,
    receipts: &[&ObservedReceipt],
    actor: &str,
) -> Result<()> {
    if receipts.is_empty() {
        return Ok(());
    }
    let ids: Vec<Vec<u8>> = receipts.iter().map(|r| r.message_id.0.to_vec()).collect();
    let outcomes: Vec<&str> = receipts.iter().map(|r| r.outcome.as_str()).collect();
    let results: Vec<Vec<u8>> = receipts.iter().map(|r| r.result.to_vec()).collect();
    let batches: Vec<Vec<u8>> = receipts.iter().map(|r| r.carried_by.0.to_vec()).collect();
    sqlx::query(
        "WITH r AS ( \
             INSERT INTO receipts (message_id, outcome, result, carried_by) \
             SELECT * FROM unnest($1::bytea[], $2::text[], $3::bytea[], $4::bytea[]) \
             ON CONFLICT (message_id) DO NOTHING \
             RETURNING message_id, outcome, result, carried_by) \
         INSERT INTO lifecycle_log (message_id, event, evidence, actor) \
         SELECT m.id, 'receipt', jsonb_build_object( \
                'message', encode(r.message_id, 'hex'), 'outcome', r.outcome, \
                'result', encode(r.result, 'hex'), \
                'carried_by', encode(r.carried_by, 'hex'), 'cursor', $5::text), $6 \
         FROM r LEFT JOIN messages m ON m.id = r.message_id \
         ORDER BY r.carried_by, r.message_id",
    )
    .bind(&ids)
    .bind(&outcomes)
    .bind(&results)
    .bind(&batches)
    .bind(key.to_string())
    .bind(actor)
    .execute(&mut **tx)
    .await
    .map_err(StoreError::db("record receipts"))?;
    Ok(())
}

fn check_message(m: &NewMessage) -> Result<()> {
    if isthmus_protocol::keccak256(&m.canonical) != m.id.0 {
        return Err(StoreError::InvalidInput(format!(
            "message {}: id is not keccak256 of the canonical bytes",
            m.id
        )));
    }
    if m.version == isthmus_protocol::VERSION {
        let mismatch = |detail: String| {
            StoreError::InvalidInput(format!(
                "message {}: canonical bytes do not match its fields{detail}",
                m.id
            ))
        };
        // The decoder is strict (exact length, declared body length), so the bytes
        // are the encoding of what it returns, and the id checked above is that
        // message's `Message::id`.
        let decoded = Message::decode(&m.canonical).map_err(|e| mismatch(format!(": {e}")))?;
        let Message {
            nonce,
            origin,
            sender,
            destination,
            recipient,
            deadline,
            body,
        } = decoded;
        if (nonce, origin, sender.0, destination, recipient.0, deadline)
            != (
                m.nonce,
                m.origin,
                m.sender,
                m.destination,
                m.recipient,
                m.deadline,
            )
            || body != m.body
        {
            return Err(mismatch(String::new()));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use isthmus_protocol::Address32;

    use super::*;
    use crate::types::MessageId;

    fn new_message(message: &Message) -> NewMessage {
        let block = BlockRef {
            number: 1,
            hash: [1; 32],
        };
        NewMessage::from_protocol(message, message.id(), block, None)
    }

    fn sample() -> Message {
        Message {
            nonce: 7,
            origin: 1,
            sender: Address32([0x11; 32]),
            destination: 3,
            recipient: Address32([0x22; 32]),
            deadline: u64::MAX,
            body: b"hello".to_vec(),
        }
    }

    fn refusal(m: &NewMessage) -> String {
        match check_message(m) {
            Err(StoreError::InvalidInput(text)) => text,
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    #[test]
    fn protocol_encoded_messages_pass() {
        check_message(&new_message(&sample())).expect("consistent");
        let empty = Message {
            body: Vec::new(),
            ..sample()
        };
        check_message(&new_message(&empty)).expect("empty body");
    }

    #[test]
    fn inconsistent_messages_are_refused() {
        let good = new_message(&sample());

        let mut wrong_id = good.clone();
        wrong_id.id.0[0] ^= 1;
        assert!(refusal(&wrong_id).ends_with("id is not keccak256 of the canonical bytes"));

        for edit in [
            (|m: &mut NewMessage| m.nonce += 1) as fn(&mut NewMessage),
            |m| m.origin += 1,
            |m| m.sender[0] ^= 1,
            |m| m.destination += 1,
            |m| m.recipient[31] ^= 1,
            |m| m.deadline = 0,
            |m| m.body.push(0),
        ] {
            let mut m = good.clone();
            edit(&mut m);
            assert!(
                refusal(&m).ends_with("canonical bytes do not match its fields"),
                "{m:?}"
            );
        }

        // Bytes the protocol does not decode, even with a matching id.
        let mut trailing = good.clone();
        trailing.canonical.push(0);
        trailing.id = MessageId(isthmus_protocol::keccak256(&trailing.canonical));
        let text = refusal(&trailing);
        assert!(
            text.contains("canonical bytes do not match its fields: 1 trailing bytes"),
            "{text}"
        );
    }

    #[test]
    fn other_versions_are_checked_by_id_only() {
        let mut other = new_message(&sample());
        other.version = 2;
        other.canonical = b"a future encoding".to_vec();
        other.id = MessageId(isthmus_protocol::keccak256(&other.canonical));
        check_message(&other).expect("id matches");
    }
}
