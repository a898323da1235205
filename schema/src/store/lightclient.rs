//! Light-client state of sealed EVM ledgers: the state and the window of verified
//! headers written with the observe cursor, read back at start, the evidence of a
//! halt, and the operator's reset.

use serde_json::Value;
use sqlx::postgres::PgRow;
use sqlx::PgConnection;

use super::transitions::insert_operator_action;
use super::{append_log, arr, get, to_i64, to_u32, to_u64, Result, Store};
use crate::error::StoreError;
use crate::types::{
    BlockRef, FinalityMode, LedgerId, LightClientCommit, LightClientRecord, LogEvent,
    OperatorAction, VerifiedHeaderRecord,
};

impl Store {
    /// The stored light-client state of `ledger`, if any.
    pub async fn light_client_state(&self, ledger: LedgerId) -> Result<Option<LightClientRecord>> {
        let row = sqlx::query(
            "SELECT ledger_id, finality, checkpoint_number, checkpoint_hash, head_number, \
                    head_hash, validators, state::text AS state \
             FROM light_client_states WHERE ledger_id = $1",
        )
        .bind(i64::from(ledger))
        .fetch_optional(&self.pool)
        .await
        .map_err(StoreError::db("read light-client state"))?;
        row.as_ref().map(decode_state).transpose()
    }

    /// The stored verified headers of `ledger` from block `from` up, ascending.
    pub async fn light_client_headers(
        &self,
        ledger: LedgerId,
        from: u64,
    ) -> Result<Vec<VerifiedHeaderRecord>> {
        let rows = sqlx::query(
            "SELECT number, hash, parent_hash, state_root, finality, sealed_by, validators, \
                    header_rlp, finality_proof::text AS finality_proof \
             FROM light_client_headers WHERE ledger_id = $1 AND number >= $2 ORDER BY number",
        )
        .bind(i64::from(ledger))
        .bind(to_i64(from, "header number")?)
        .fetch_all(&self.pool)
        .await
        .map_err(StoreError::db("read verified headers"))?;
        rows.iter().map(decode_header).collect()
    }

    /// The stored verified header of `ledger` with this hash, if still in the window.
    pub async fn light_client_header(
        &self,
        ledger: LedgerId,
        hash: [u8; 32],
    ) -> Result<Option<VerifiedHeaderRecord>> {
        let row = sqlx::query(
            "SELECT number, hash, parent_hash, state_root, finality, sealed_by, validators, \
                    header_rlp, finality_proof::text AS finality_proof \
             FROM light_client_headers WHERE ledger_id = $1 AND hash = $2",
        )
        .bind(i64::from(ledger))
        .bind(hash.to_vec())
        .fetch_optional(&self.pool)
        .await
        .map_err(StoreError::db("read a verified header"))?;
        row.as_ref().map(decode_header).transpose()
    }

    /// Records that a light client refused a header of `ledger` and halted: one
    /// `consensus_fault` log row whose evidence names the block, the rule and the
    /// header(s). Returns the row's sequence number.
    pub async fn record_consensus_fault(
        &self,
        ledger: LedgerId,
        evidence: &Value,
        actor: &str,
    ) -> Result<i64> {
        if !evidence.is_object() {
            return Err(StoreError::InvalidInput(
                "consensus fault evidence must be a JSON object".into(),
            ));
        }
        let mut evidence = evidence.clone();
        evidence["ledger"] = Value::from(ledger);
        let mut tx = self.begin().await?;
        let seq = append_log(&mut tx, None, LogEvent::ConsensusFault, &evidence, actor).await?;
        tx.commit()
            .await
            .map_err(StoreError::db("commit consensus fault"))?;
        Ok(seq)
    }

    /// An operator discards the stored light-client state and headers of `ledger`
    /// (the relayer must be stopped): the action and its log row commit with the
    /// deletion. The next start begins again at the configured checkpoint. Returns
    /// the action's id, and the state that was discarded (None if there was none).
    pub async fn reset_light_client(
        &self,
        ledger: LedgerId,
        action: &OperatorAction,
    ) -> Result<(i64, Option<LightClientRecord>)> {
        if action.ledger != Some(ledger) {
            return Err(StoreError::InvalidInput(
                "a light-client reset names its ledger".into(),
            ));
        }
        let mut tx = self.begin().await?;
        let row = sqlx::query(
            "DELETE FROM light_client_states WHERE ledger_id = $1 \
             RETURNING ledger_id, finality, checkpoint_number, checkpoint_hash, head_number, \
                       head_hash, validators, state::text AS state",
        )
        .bind(i64::from(ledger))
        .fetch_optional(&mut *tx)
        .await
        .map_err(StoreError::db("delete light-client state"))?;
        let discarded = row.as_ref().map(decode_state).transpose()?;
        sqlx::query("DELETE FROM light_client_headers WHERE ledger_id = $1")
            .bind(i64::from(ledger))
            .execute(&mut *tx)
            .await
            .map_err(StoreError::db("delete verified headers"))?;
        let id = insert_operator_action(&mut tx, action).await?;
        tx.commit()
            .await
            .map_err(StoreError::db("commit light-client reset"))?;
        Ok((id, discarded))
    }
}

impl Store {
    /// Records an operator action that changes no row of the relayer's own (a step
    /// of a signer-set update on a ledger) with its log row. Returns its id.
    pub async fn record_operator_action(&self, action: &OperatorAction) -> Result<i64> {
        let mut tx = self.begin().await?;
        let id = insert_operator_action(&mut tx, action).await?;
        tx.commit()
            .await
            .map_err(StoreError::db("commit operator action"))?;
        Ok(id)
    }
}

/// Writes `commit` inside the observe round's transaction: the state replaces the
/// stored one (its head may not go backwards), the new headers are added and the
/// window is pruned to `keep` headers.
pub(super) async fn write_commit(
    conn: &mut PgConnection,
    commit: &LightClientCommit,
) -> Result<()> {
    let s = &commit.state;
    let validators: Vec<Vec<u8>> = s.validators.iter().map(|a| a.to_vec()).collect();
    let head = to_i64(s.head.number, "light-client head")?;
    let moved = sqlx::query(
        "INSERT INTO light_client_states (ledger_id, finality, checkpoint_number, \
             checkpoint_hash, head_number, head_hash, validators, state) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8::jsonb) \
         ON CONFLICT (ledger_id) DO UPDATE SET finality = EXCLUDED.finality, \
             head_number = EXCLUDED.head_number, head_hash = EXCLUDED.head_hash, \
             validators = EXCLUDED.validators, state = EXCLUDED.state, updated_at = now() \
         WHERE light_client_states.head_number <= EXCLUDED.head_number \
           AND light_client_states.checkpoint_hash = EXCLUDED.checkpoint_hash",
    )
    .bind(i64::from(s.ledger))
    .bind(s.finality.as_str())
    .bind(to_i64(s.checkpoint.number, "checkpoint number")?)
    .bind(s.checkpoint.hash.to_vec())
    .bind(head)
    .bind(s.head.hash.to_vec())
    .bind(&validators)
    .bind(s.state.to_string())
    .execute(&mut *conn)
    .await
    .map_err(StoreError::db("write light-client state"))?
    .rows_affected();
    if moved == 0 {
        return Err(StoreError::InvalidInput(format!(
            "light-client state of ledger {} would move back to block {} or change checkpoint",
            s.ledger, s.head.number
        )));
    }
    if !commit.headers.is_empty() {
        let n = commit.headers.len();
        let mut numbers = Vec::with_capacity(n);
        let mut hashes = Vec::with_capacity(n);
        let mut parents = Vec::with_capacity(n);
        let mut roots = Vec::with_capacity(n);
        let mut finality = Vec::with_capacity(n);
        let mut sealed = Vec::with_capacity(n);
        let mut sets = Vec::with_capacity(n);
        let mut rlps = Vec::with_capacity(n);
        let mut proofs: Vec<Option<String>> = Vec::with_capacity(n);
        for h in &commit.headers {
            numbers.push(to_i64(h.number, "header number")?);
            hashes.push(h.hash.to_vec());
            parents.push(h.parent_hash.to_vec());
            roots.push(h.state_root.to_vec());
            finality.push(h.finality.as_str());
            // Postgres arrays of arrays must be rectangular: each address list is
            // sent as its concatenation and split back into 20-byte elements in SQL.
            sealed.push(h.sealed_by.concat());
            sets.push(h.validators.concat());
            rlps.push(h.header_rlp.clone());
            proofs.push(h.finality_proof.as_ref().map(Value::to_string));
        }
        sqlx::query(
            "INSERT INTO light_client_headers (ledger_id, number, hash, parent_hash, state_root, \
                 finality, sealed_by, validators, header_rlp, finality_proof) \
             SELECT $1, u.number, u.hash, u.parent_hash, u.state_root, u.finality, \
                    ARRAY(SELECT substring(u.sealed FROM i * 20 + 1 FOR 20) \
                          FROM generate_series(0, octet_length(u.sealed) / 20 - 1) AS i ORDER BY i), \
                    ARRAY(SELECT substring(u.vals FROM i * 20 + 1 FOR 20) \
                          FROM generate_series(0, octet_length(u.vals) / 20 - 1) AS i ORDER BY i), \
                    u.rlp, u.proof::jsonb \
             FROM unnest($2::int8[], $3::bytea[], $4::bytea[], $5::bytea[], $6::text[], \
                         $7::bytea[], $8::bytea[], $9::bytea[], $10::text[]) \
                  AS u(number, hash, parent_hash, state_root, finality, sealed, vals, rlp, proof) \
             ON CONFLICT (ledger_id, number) DO NOTHING",
        )
        .bind(i64::from(s.ledger))
        .bind(&numbers)
        .bind(&hashes)
        .bind(&parents)
        .bind(&roots)
        .bind(&finality)
        .bind(&sealed)
        .bind(&sets)
        .bind(&rlps)
        .bind(&proofs)
        .execute(&mut *conn)
        .await
        .map_err(StoreError::db("write verified headers"))?;
    }
    let keep = i64::try_from(commit.keep).unwrap_or(i64::MAX);
    sqlx::query("DELETE FROM light_client_headers WHERE ledger_id = $1 AND number <= $2 - $3")
        .bind(i64::from(s.ledger))
        .bind(head)
        .bind(keep)
        .execute(&mut *conn)
        .await
        .map_err(StoreError::db("prune verified headers"))?;
    Ok(())
}

fn finality(row: &PgRow) -> Result<FinalityMode> {
    let text: String = get(row, "finality")?;
    text.parse().map_err(|e| StoreError::Decode {
        what: "finality",
        reason: format!("{e}"),
    })
}

fn addresses(row: &PgRow, column: &'static str) -> Result<Vec<[u8; 20]>> {
    let raw: Vec<Vec<u8>> = get(row, column)?;
    raw.iter().map(|a| arr::<20>(a, column)).collect()
}

fn decode_state(row: &PgRow) -> Result<LightClientRecord> {
    let ledger: i64 = get(row, "ledger_id")?;
    let checkpoint: i64 = get(row, "checkpoint_number")?;
    let head: i64 = get(row, "head_number")?;
    let checkpoint_hash: Vec<u8> = get(row, "checkpoint_hash")?;
    let head_hash: Vec<u8> = get(row, "head_hash")?;
    let state: String = get(row, "state")?;
    Ok(LightClientRecord {
        ledger: to_u32(ledger, "ledger_id")?,
        finality: finality(row)?,
        checkpoint: BlockRef {
            number: to_u64(checkpoint, "checkpoint_number")?,
            hash: arr(&checkpoint_hash, "checkpoint_hash")?,
        },
        head: BlockRef {
            number: to_u64(head, "head_number")?,
            hash: arr(&head_hash, "head_hash")?,
        },
        validators: addresses(row, "validators")?,
        state: serde_json::from_str(&state).map_err(|e| StoreError::Decode {
            what: "state",
            reason: e.to_string(),
        })?,
    })
}

fn decode_header(row: &PgRow) -> Result<VerifiedHeaderRecord> {
    let number: i64 = get(row, "number")?;
    let hash: Vec<u8> = get(row, "hash")?;
    let parent: Vec<u8> = get(row, "parent_hash")?;
    let root: Vec<u8> = get(row, "state_root")?;
    Ok(VerifiedHeaderRecord {
        number: to_u64(number, "number")?,
        hash: arr(&hash, "hash")?,
        parent_hash: arr(&parent, "parent_hash")?,
        state_root: arr(&root, "state_root")?,
        finality: finality(row)?,
        sealed_by: addresses(row, "sealed_by")?,
        validators: addresses(row, "validators")?,
        header_rlp: get(row, "header_rlp")?,
        finality_proof: get::<Option<String>>(row, "finality_proof")?
            .map(|text| {
                serde_json::from_str(&text).map_err(|e| StoreError::Decode {
                    what: "finality_proof",
                    reason: e.to_string(),
                })
            })
            .transpose()?,
    })
}

/// A recorded halt of a ledger's light client.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConsensusFault {
    /// The log row.
    pub seq: i64,
    /// The refused block.
    pub block_number: u64,
    /// The rule it broke.
    pub rule: String,
}

impl Store {
    /// The halts recorded for `ledger`, oldest first.
    pub async fn consensus_faults(&self, ledger: LedgerId) -> Result<Vec<ConsensusFault>> {
        let rows = sqlx::query(
            "SELECT seq, (evidence->>'block_number')::bigint AS block_number, \
                    evidence->>'rule' AS rule \
             FROM lifecycle_log \
             WHERE event = 'consensus_fault' AND (evidence->>'ledger')::bigint = $1 \
             ORDER BY seq",
        )
        .bind(i64::from(ledger))
        .fetch_all(&self.pool)
        .await
        .map_err(StoreError::db("read consensus faults"))?;
        rows.iter()
            .map(|row| {
                let number: Option<i64> = get(row, "block_number")?;
                let rule: Option<String> = get(row, "rule")?;
                Ok(ConsensusFault {
                    seq: get(row, "seq")?,
                    block_number: to_u64(number.unwrap_or(0), "block_number")?,
                    rule: rule.unwrap_or_default(),
                })
            })
            .collect()
    }

    /// The database sessions of running relayer processes whose worker id starts
    /// with `prefix` (processes name their sessions after it), in this database.
    pub async fn live_workers(&self, prefix: &str) -> Result<Vec<String>> {
        sqlx::query_scalar(
            "SELECT DISTINCT application_name FROM pg_stat_activity \
             WHERE datname = current_database() AND starts_with(application_name, $1) \
             ORDER BY 1",
        )
        .bind(prefix)
        .fetch_all(&self.pool)
        .await
        .map_err(StoreError::db("list running workers"))
    }
}
