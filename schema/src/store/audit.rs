//! The audit trail: checkpoints and attestations (recorded with their log rows),
//! message histories and listings, log export pages and hash-chain verification.

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::postgres::PgRow;

use super::{
    append_log, arr, decode_message, get, message_columns, to_i64, to_u32, to_u64, Result, Store,
};
use crate::chain::{ChainVerifier, RawLogRow};
use crate::error::StoreError;
use crate::evidence::{self, AttestationLog, CheckpointLog};
use crate::types::{
    AttestationOutcome, AttestationRecord, BlockRef, CheckpointRecord, LogEntry, LogEvent,
    MessageFilter, MessageHistory, MessageId, MessageRecord, NewAttestation, NewCheckpoint,
    ReceiptRecord,
};

/// Rows fetched per page by [`Store::verify_log_chain`]: bounds memory whatever
/// the log's length.
const VERIFY_PAGE: i64 = 2_000;

/// Default row limit of [`Store::list_messages`].
const DEFAULT_LIST_LIMIT: u32 = 1_000;

const LOG_COLUMNS: &str =
    "seq, prev_hash, message_id, event, actor, created_at, evidence::text AS evidence, row_hash";

impl Store {
    /// Records a verified checkpoint and logs it (event `checkpoint`, with
    /// `evidence`: the proof summary). Returns false if it was already recorded.
    pub async fn record_checkpoint(
        &self,
        checkpoint: &NewCheckpoint,
        evidence: &Value,
        actor: &str,
    ) -> Result<bool> {
        let block_number = to_i64(checkpoint.block.number, "checkpoint block number")?;
        let mut tx = self.begin().await?;
        let inserted = sqlx::query(
            "INSERT INTO checkpoints (digest, origin, outbox, root, count, block_number, \
                 block_hash, evidence) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8::jsonb) \
             ON CONFLICT (digest) DO NOTHING RETURNING digest",
        )
        .bind(checkpoint.digest.to_vec())
        .bind(i64::from(checkpoint.origin))
        .bind(checkpoint.outbox.to_vec())
        .bind(checkpoint.root.to_vec())
        .bind(i64::from(checkpoint.count))
        .bind(block_number)
        .bind(checkpoint.block.hash.to_vec())
        .bind(evidence.to_string())
        .fetch_optional(&mut *tx)
        .await
        .map_err(StoreError::db("insert checkpoint"))?
        .is_some();
        if inserted {
            let log = evidence::json(&CheckpointLog {
                digest: hex::encode(checkpoint.digest),
                origin: checkpoint.origin,
                outbox: hex::encode(checkpoint.outbox),
                root: hex::encode(checkpoint.root),
                count: checkpoint.count,
                block_number: checkpoint.block.number,
                block_hash: hex::encode(checkpoint.block.hash),
                proof: evidence,
            });
            append_log(&mut tx, None, LogEvent::Checkpoint, &log, actor).await?;
        }
        tx.commit()
            .await
            .map_err(StoreError::db("commit checkpoint"))?;
        Ok(inserted)
    }

    /// A recorded checkpoint by digest.
    pub async fn checkpoint(&self, digest: [u8; 32]) -> Result<Option<CheckpointRecord>> {
        let row = sqlx::query(
            "SELECT digest, origin, outbox, root, count, block_number, block_hash, \
                    evidence::text AS evidence, recorded_at \
             FROM checkpoints WHERE digest = $1",
        )
        .bind(digest.to_vec())
        .fetch_optional(&self.pool)
        .await
        .map_err(StoreError::db("read checkpoint"))?;
        let Some(row) = row else { return Ok(None) };
        let evidence: String = get(&row, "evidence")?;
        Ok(Some(CheckpointRecord {
            checkpoint: NewCheckpoint {
                digest: arr(&get::<Vec<u8>>(&row, "digest")?, "digest")?,
                origin: to_u32(get(&row, "origin")?, "origin")?,
                outbox: arr(&get::<Vec<u8>>(&row, "outbox")?, "outbox")?,
                root: arr(&get::<Vec<u8>>(&row, "root")?, "root")?,
                count: to_u32(get(&row, "count")?, "count")?,
                block: BlockRef {
                    number: to_u64(get(&row, "block_number")?, "block_number")?,
                    hash: arr(&get::<Vec<u8>>(&row, "block_hash")?, "block_hash")?,
                },
            },
            evidence: serde_json::from_str(&evidence).map_err(|e| StoreError::Decode {
                what: "evidence",
                reason: e.to_string(),
            })?,
            recorded_at: get(&row, "recorded_at")?,
        }))
    }

    /// Records an attestation, accepted or refused with its reason, and logs it
    /// (event `attestation`). Returns false if the same signature was already
    /// recorded for that checkpoint and signer.
    pub async fn record_attestation(
        &self,
        attestation: &NewAttestation,
        actor: &str,
    ) -> Result<bool> {
        let (outcome, reason) = match &attestation.verdict {
            Ok(()) => (AttestationOutcome::Accepted, None),
            Err(reason) if reason.is_empty() => {
                return Err(StoreError::InvalidInput("a refusal needs a reason".into()))
            }
            Err(reason) => (AttestationOutcome::Refused, Some(reason.as_str())),
        };
        let mut tx = self.begin().await?;
        let id: Option<i64> = sqlx::query_scalar(
            "INSERT INTO attestations (checkpoint_digest, signer, member, signature, outcome, reason) \
             VALUES ($1, $2, $3, $4, $5, $6) \
             ON CONFLICT (checkpoint_digest, signer, signature) DO NOTHING RETURNING id",
        )
        .bind(attestation.checkpoint_digest.to_vec())
        .bind(attestation.signer.to_vec())
        .bind(attestation.member.as_deref())
        .bind(attestation.signature.to_vec())
        .bind(outcome.as_str())
        .bind(reason)
        .fetch_optional(&mut *tx)
        .await
        .map_err(StoreError::db("insert attestation"))?;
        if let Some(id) = id {
            let log = evidence::json(&AttestationLog {
                attestation_id: Some(id),
                checkpoint_digest: hex::encode(attestation.checkpoint_digest),
                signer: hex::encode(attestation.signer),
                member: attestation.member.as_deref(),
                signature: Some(hex::encode(attestation.signature)),
                outcome: outcome.as_str(),
                reason,
            });
            append_log(&mut tx, None, LogEvent::Attestation, &log, actor).await?;
        }
        tx.commit()
            .await
            .map_err(StoreError::db("commit attestation"))?;
        Ok(id.is_some())
    }

    /// Logs a member's refusal that came with no signature (it was unreachable, or
    /// its answer was an error or unreadable), so the history names every refusal:
    /// event `attestation`, outcome `refused`, `attestation_id` and `signature`
    /// null (there is no `attestations` row without a signature).
    pub async fn record_unsigned_refusal(
        &self,
        checkpoint_digest: [u8; 32],
        signer: [u8; 20],
        member: &str,
        reason: &str,
        actor: &str,
    ) -> Result<()> {
        if reason.is_empty() {
            return Err(StoreError::InvalidInput("a refusal needs a reason".into()));
        }
        let log = evidence::json(&AttestationLog {
            attestation_id: None,
            checkpoint_digest: hex::encode(checkpoint_digest),
            signer: hex::encode(signer),
            member: Some(member),
            signature: None,
            outcome: AttestationOutcome::Refused.as_str(),
            reason: Some(reason),
        });
        let mut tx = self.begin().await?;
        append_log(&mut tx, None, LogEvent::Attestation, &log, actor).await?;
        tx.commit().await.map_err(StoreError::db("commit refusal"))
    }

    /// Attestations recorded for a checkpoint, in arrival order.
    pub async fn attestations(&self, digest: [u8; 32]) -> Result<Vec<AttestationRecord>> {
        let rows = sqlx::query(
            "SELECT id, checkpoint_digest, signer, member, signature, outcome, reason, received_at \
             FROM attestations WHERE checkpoint_digest = $1 ORDER BY id",
        )
        .bind(digest.to_vec())
        .fetch_all(&self.pool)
        .await
        .map_err(StoreError::db("list attestations"))?;
        rows.iter()
            .map(|row| {
                let outcome: String = get(row, "outcome")?;
                let reason: Option<String> = get(row, "reason")?;
                let verdict = match outcome.parse::<AttestationOutcome>()? {
                    AttestationOutcome::Accepted => Ok(()),
                    AttestationOutcome::Refused => Err(reason.unwrap_or_default()),
                };
                Ok(AttestationRecord {
                    id: get(row, "id")?,
                    attestation: NewAttestation {
                        checkpoint_digest: arr(
                            &get::<Vec<u8>>(row, "checkpoint_digest")?,
                            "checkpoint_digest",
                        )?,
                        signer: arr(&get::<Vec<u8>>(row, "signer")?, "signer")?,
                        member: get(row, "member")?,
                        signature: arr(&get::<Vec<u8>>(row, "signature")?, "signature")?,
                        verdict,
                    },
                    received_at: get(row, "received_at")?,
                })
            })
            .collect()
    }

    /// A message with its full log, or `None` if unknown.
    pub async fn message(&self, id: MessageId) -> Result<Option<MessageHistory>> {
        let sql = format!("SELECT {} FROM messages WHERE id = $1", message_columns(""));
        let Some(row) = sqlx::query(&sql)
            .bind(id.0.to_vec())
            .fetch_optional(&self.pool)
            .await
            .map_err(StoreError::db("read message"))?
        else {
            return Ok(None);
        };
        let message = decode_message(&row)?;
        let sql =
            format!("SELECT {LOG_COLUMNS} FROM lifecycle_log WHERE message_id = $1 ORDER BY seq");
        let log = sqlx::query(&sql)
            .bind(id.0.to_vec())
            .fetch_all(&self.pool)
            .await
            .map_err(StoreError::db("read message log"))?
            .iter()
            .map(decode_log)
            .collect::<Result<Vec<_>>>()?;
        Ok(Some(MessageHistory { message, log }))
    }

    /// The receipt of message `id`, if one was observed, with the progress of the
    /// receipt batch carrying it.
    pub async fn receipt(&self, id: MessageId) -> Result<Option<ReceiptRecord>> {
        let row = sqlx::query(
            "SELECT r.outcome, r.result, r.carried_by, b.status, d.tx_hash, r.observed_at \
             FROM receipts r JOIN messages b ON b.id = r.carried_by \
             LEFT JOIN deliveries d ON d.message_id = r.carried_by \
             WHERE r.message_id = $1",
        )
        .bind(id.0.to_vec())
        .fetch_optional(&self.pool)
        .await
        .map_err(StoreError::db("read receipt"))?;
        let Some(row) = row else {
            return Ok(None);
        };
        let outcome: String = get(&row, "outcome")?;
        let status: String = get(&row, "status")?;
        let taken: Option<Vec<u8>> = get(&row, "tx_hash")?;
        Ok(Some(ReceiptRecord {
            outcome: match outcome.as_str() {
                "delivered" => isthmus_protocol::ReceiptOutcome::Delivered,
                "refused" => isthmus_protocol::ReceiptOutcome::Refused,
                "expired" => isthmus_protocol::ReceiptOutcome::Expired,
                other => {
                    return Err(StoreError::Decode {
                        what: "receipt outcome",
                        reason: format!("unknown outcome {other}"),
                    })
                }
            },
            result: arr(&get::<Vec<u8>>(&row, "result")?, "receipt result")?,
            carried_by: MessageId(arr(
                &get::<Vec<u8>>(&row, "carried_by")?,
                "receipt carrier",
            )?),
            batch_status: status.parse()?,
            taken_tx: taken.map(|t| arr(&t, "receipt tx")).transpose()?,
            observed_at: get(&row, "observed_at")?,
        }))
    }

    /// Messages matching `filter`, oldest observation first.
    pub async fn list_messages(&self, filter: &MessageFilter) -> Result<Vec<MessageRecord>> {
        let statuses: Vec<&str> = filter.statuses.iter().map(|s| s.as_str()).collect();
        let outcomes: Vec<&str> = filter.outcomes.iter().map(|o| o.as_str()).collect();
        let sql = format!(
            "SELECT {} FROM messages \
             WHERE ($1::bigint IS NULL OR origin = $1) \
               AND ($2::bigint IS NULL OR destination = $2) \
               AND (cardinality($3::text[]) = 0 OR status = ANY($3::text[])) \
               AND ($4::timestamptz IS NULL OR observed_at >= $4) \
               AND ($5::timestamptz IS NULL OR observed_at < $5) \
               AND (cardinality($7::text[]) = 0 OR id IN ( \
                    SELECT message_id FROM receipts WHERE outcome = ANY($7::text[]))) \
             ORDER BY observed_at, origin, nonce \
             LIMIT $6",
            message_columns("")
        );
        sqlx::query(&sql)
            .bind(filter.route.map(|r| i64::from(r.source)))
            .bind(filter.route.map(|r| i64::from(r.destination)))
            .bind(&statuses)
            .bind(filter.observed_from)
            .bind(filter.observed_to)
            .bind(i64::from(filter.limit.unwrap_or(DEFAULT_LIST_LIMIT)))
            .bind(&outcomes)
            .fetch_all(&self.pool)
            .await
            .map_err(StoreError::db("list messages"))?
            .iter()
            .map(decode_message)
            .collect()
    }

    /// Up to `limit` lifecycle log rows with `seq > after`, appended in
    /// `[from, to)` (either bound optional), in chain order: one page of an export.
    /// Callers page by passing the last `seq` they received.
    pub async fn log_page(
        &self,
        after: i64,
        from: Option<DateTime<Utc>>,
        to: Option<DateTime<Utc>>,
        limit: u32,
    ) -> Result<Vec<LogEntry>> {
        let sql = format!(
            "SELECT {LOG_COLUMNS} FROM lifecycle_log \
             WHERE seq > $1 AND ($2::timestamptz IS NULL OR created_at >= $2) \
               AND ($3::timestamptz IS NULL OR created_at < $3) \
             ORDER BY seq LIMIT $4"
        );
        sqlx::query(&sql)
            .bind(after)
            .bind(from)
            .bind(to)
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await
            .map_err(StoreError::db("read log page"))?
            .iter()
            .map(decode_log)
            .collect()
    }

    /// Recomputes the whole lifecycle log chain in seq order, a page at a time, and
    /// returns the number of rows verified. Fails with
    /// [`StoreError::LogChainBroken`] naming the first row that was edited (hash
    /// mismatch), re-linked (prev_hash mismatch) or deleted (seq gap).
    ///
    /// Deleting the newest rows leaves a shorter valid chain: compare the returned
    /// count and the last row_hash with a copy kept elsewhere to detect that.
    pub async fn verify_log_chain(&self) -> Result<u64> {
        let sql =
            format!("SELECT {LOG_COLUMNS} FROM lifecycle_log WHERE seq > $1 ORDER BY seq LIMIT $2");
        let mut verifier = ChainVerifier::new();
        let mut after = 0i64;
        loop {
            let rows = sqlx::query(&sql)
                .bind(after)
                .bind(VERIFY_PAGE)
                .fetch_all(&self.pool)
                .await
                .map_err(StoreError::db("read lifecycle log"))?;
            for row in &rows {
                let raw = decode_raw_log(row)?;
                verifier.check(&raw)?;
                after = raw.seq;
            }
            if rows.len() < usize::try_from(VERIFY_PAGE).unwrap_or(usize::MAX) {
                return Ok(verifier.count());
            }
        }
    }
}

fn decode_raw_log(row: &PgRow) -> Result<RawLogRow> {
    Ok(RawLogRow {
        seq: get(row, "seq")?,
        prev_hash: get(row, "prev_hash")?,
        message_id: get(row, "message_id")?,
        event: get(row, "event")?,
        actor: get(row, "actor")?,
        created_at: get(row, "created_at")?,
        evidence_text: get(row, "evidence")?,
        row_hash: get(row, "row_hash")?,
    })
}

fn decode_log(row: &PgRow) -> Result<LogEntry> {
    let raw = decode_raw_log(row)?;
    Ok(LogEntry {
        seq: raw.seq,
        message_id: raw
            .message_id
            .as_deref()
            .map(|id| arr(id, "message_id"))
            .transpose()?
            .map(MessageId),
        event: raw.event.parse()?,
        evidence: serde_json::from_str(&raw.evidence_text).map_err(|e| StoreError::Decode {
            what: "evidence",
            reason: e.to_string(),
        })?,
        evidence_text: raw.evidence_text,
        actor: raw.actor,
        created_at: raw.created_at,
        prev_hash: arr(&raw.prev_hash, "prev_hash")?,
        row_hash: arr(&raw.row_hash, "row_hash")?,
    })
}
