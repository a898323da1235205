//! The transactional store over the history schema.

use std::collections::HashSet;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::{json, Value};
use sqlx::postgres::{PgPoolOptions, PgRow};
use sqlx::{PgConnection, PgPool, Row};

use crate::chain::{ChainVerifier, RawLogRow};
use crate::error::StoreError;
use crate::types::{
    AttestationOutcome, AttestationRecord, BlockRef, CheckpointRecord, Cursor, CursorKey,
    FailureOutcome, Ledger, LedgerId, LogEntry, LogEvent, MessageFilter, MessageHistory, MessageId,
    MessageRecord, MessageStatus, NewAttestation, NewCheckpoint, NewDelivery, NewMessage,
    ObservedOutcome, OperatorAction, RejectedEntry, RetryPolicy, Turn,
};

type Result<T> = std::result::Result<T, StoreError>;

/// Rows fetched per page by [`Store::verify_log_chain`]: bounds memory whatever
/// the log's length.
const VERIFY_PAGE: i64 = 2_000;

/// Default row limit of [`Store::list_messages`].
const DEFAULT_LIST_LIMIT: u32 = 1_000;

/// Opens a connection pool to `url`.
///
/// The error names the target with any password masked (see [`redact_url`]), so it
/// can be logged as is.
pub async fn connect(url: &str) -> Result<PgPool> {
    PgPoolOptions::new()
        .max_connections(16)
        .acquire_timeout(Duration::from_secs(10))
        .connect(url)
        .await
        .map_err(|source| StoreError::Connect {
            target: redact_url(url),
            source,
        })
}

/// [`connect`] with every session named `application_name` (Postgres keeps at most
/// 63 bytes of it). A relayer process names its sessions after its worker id, so
/// [`Store::release_orphaned_leases`] can tell a live lease holder from a dead one.
/// One session is kept open while the pool lives.
pub async fn connect_as(url: &str, application_name: &str) -> Result<PgPool> {
    let redacted = || redact_url(url);
    let options = url
        .parse::<sqlx::postgres::PgConnectOptions>()
        .map_err(|source| StoreError::Connect {
            target: redacted(),
            source,
        })?
        .application_name(application_name);
    PgPoolOptions::new()
        .max_connections(16)
        .min_connections(1)
        .acquire_timeout(Duration::from_secs(10))
        .connect_with(options)
        .await
        .map_err(|source| StoreError::Connect {
            target: redacted(),
            source,
        })
}

/// `url` with the password (in the user info or a `password=` query parameter)
/// replaced by `***`, for error messages and logs.
pub fn redact_url(url: &str) -> String {
    let Some(scheme_end) = url.find("://") else {
        return "<unparsable database url>".to_owned();
    };
    let (scheme, rest) = (&url[..scheme_end], &url[scheme_end + 3..]);
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    let authority = match authority.rfind('@') {
        Some(at) => {
            let (userinfo, host) = (&authority[..at], &authority[at + 1..]);
            match userinfo.find(':') {
                Some(colon) => format!("{}:***@{host}", &userinfo[..colon]),
                None => authority.to_owned(),
            }
        }
        None => authority.to_owned(),
    };
    let tail = match tail.find('?') {
        Some(q) => {
            let (path, query) = tail.split_at(q + 1);
            let query: Vec<String> = query
                .split('&')
                .map(|kv| match kv.split_once('=') {
                    Some((k, _)) if k.eq_ignore_ascii_case("password") => format!("{k}=***"),
                    _ => kv.to_owned(),
                })
                .collect();
            format!("{path}{}", query.join("&"))
        }
        None => tail.to_owned(),
    };
    format!("{scheme}://{authority}{tail}")
}

/// The relayer's history store. Cheap to clone (the pool is shared).
#[derive(Clone, Debug)]
pub struct Store {
    pool: PgPool,
}

fn to_i64(value: u64, what: &str) -> Result<i64> {
    i64::try_from(value)
        .map_err(|_| StoreError::InvalidInput(format!("{what} {value} exceeds the bigint range")))
}

fn to_u32(value: i64, what: &'static str) -> Result<u32> {
    u32::try_from(value).map_err(|_| StoreError::Decode {
        what,
        reason: format!("{value} is not a u32"),
    })
}

fn to_u64(value: i64, what: &'static str) -> Result<u64> {
    u64::try_from(value).map_err(|_| StoreError::Decode {
        what,
        reason: format!("{value} is negative"),
    })
}

fn parse_u64(text: &str, what: &'static str) -> Result<u64> {
    text.parse().map_err(|e| StoreError::Decode {
        what,
        reason: format!("{text:?}: {e}"),
    })
}

fn arr<const N: usize>(bytes: &[u8], what: &'static str) -> Result<[u8; N]> {
    <[u8; N]>::try_from(bytes).map_err(|_| StoreError::Decode {
        what,
        reason: format!("expected {N} bytes, found {}", bytes.len()),
    })
}

fn get<'r, T>(row: &'r PgRow, column: &'static str) -> Result<T>
where
    T: sqlx::Decode<'r, sqlx::Postgres> + sqlx::Type<sqlx::Postgres>,
{
    row.try_get(column).map_err(|e| StoreError::Decode {
        what: column,
        reason: e.to_string(),
    })
}

fn keccak256(bytes: &[u8]) -> [u8; 32] {
    use tiny_keccak::{Hasher, Keccak};
    let mut hasher = Keccak::v256();
    hasher.update(bytes);
    let mut out = [0u8; 32];
    hasher.finalize(&mut out);
    out
}

/// Refuses a message whose id is not keccak256 of its canonical bytes or, for
/// version 1, whose canonical bytes do not carry its fields (packed big-endian:
/// version, nonce, origin, sender, destination, recipient, deadline, body length,
/// body). Stored rows are thereby self-consistent for auditors.
fn check_message(m: &NewMessage) -> Result<()> {
    if keccak256(&m.canonical) != m.id.0 {
        return Err(StoreError::InvalidInput(format!(
            "message {}: id is not keccak256 of the canonical bytes",
            m.id
        )));
    }
    if m.version == 1 {
        let body_len = u32::try_from(m.body.len())
            .map_err(|_| StoreError::InvalidInput(format!("message {}: body too long", m.id)))?;
        let mut expected = Vec::with_capacity(125 + m.body.len());
        expected.push(m.version);
        expected.extend_from_slice(&m.nonce.to_be_bytes());
        expected.extend_from_slice(&m.origin.to_be_bytes());
        expected.extend_from_slice(&m.sender);
        expected.extend_from_slice(&m.destination.to_be_bytes());
        expected.extend_from_slice(&m.recipient);
        expected.extend_from_slice(&m.deadline.to_be_bytes());
        expected.extend_from_slice(&body_len.to_be_bytes());
        expected.extend_from_slice(&m.body);
        if expected != m.canonical {
            return Err(StoreError::InvalidInput(format!(
                "message {}: canonical bytes do not match its fields",
                m.id
            )));
        }
    }
    Ok(())
}

/// Merges the status a message left into the caller's evidence object.
fn with_from(from: MessageStatus, evidence: &Value) -> Value {
    let mut map = serde_json::Map::new();
    map.insert("from_status".into(), Value::from(from.as_str()));
    match evidence {
        Value::Object(fields) => {
            for (k, v) in fields {
                map.entry(k.clone()).or_insert_with(|| v.clone());
            }
        }
        Value::Null => {}
        other => {
            map.insert("detail".into(), other.clone());
        }
    }
    Value::Object(map)
}

fn message_columns(alias: &str) -> String {
    [
        "id",
        "version",
        "nonce::text AS nonce",
        "origin",
        "sender",
        "destination",
        "recipient",
        "deadline::text AS deadline",
        "body",
        "canonical",
        "status",
        "source_block_number",
        "source_block_hash",
        "source_tx_hash",
        "observed_at",
        "updated_at",
        "attempts",
        "last_error",
        "next_attempt_at",
        "claimed_by",
        "claimed_until",
    ]
    .iter()
    .map(|c| format!("{alias}{c}"))
    .collect::<Vec<_>>()
    .join(", ")
}

fn decode_message(row: &PgRow) -> Result<MessageRecord> {
    let id: Vec<u8> = get(row, "id")?;
    let version: i16 = get(row, "version")?;
    let nonce: String = get(row, "nonce")?;
    let deadline: String = get(row, "deadline")?;
    let sender: Vec<u8> = get(row, "sender")?;
    let recipient: Vec<u8> = get(row, "recipient")?;
    let status: String = get(row, "status")?;
    let block_hash: Vec<u8> = get(row, "source_block_hash")?;
    let tx_hash: Option<Vec<u8>> = get(row, "source_tx_hash")?;
    let attempts: i32 = get(row, "attempts")?;
    Ok(MessageRecord {
        id: MessageId(arr(&id, "id")?),
        version: u8::try_from(version).map_err(|_| StoreError::Decode {
            what: "version",
            reason: format!("{version} is not a u8"),
        })?,
        nonce: parse_u64(&nonce, "nonce")?,
        origin: to_u32(get(row, "origin")?, "origin")?,
        sender: arr(&sender, "sender")?,
        destination: to_u32(get(row, "destination")?, "destination")?,
        recipient: arr(&recipient, "recipient")?,
        deadline: parse_u64(&deadline, "deadline")?,
        body: get(row, "body")?,
        canonical: get(row, "canonical")?,
        status: status.parse()?,
        source_block: BlockRef {
            number: to_u64(get(row, "source_block_number")?, "source_block_number")?,
            hash: arr(&block_hash, "source_block_hash")?,
        },
        source_tx_hash: tx_hash.map(|h| arr(&h, "source_tx_hash")).transpose()?,
        observed_at: get(row, "observed_at")?,
        updated_at: get(row, "updated_at")?,
        attempts: u32::try_from(attempts).map_err(|_| StoreError::Decode {
            what: "attempts",
            reason: format!("{attempts} is negative"),
        })?,
        last_error: get(row, "last_error")?,
        next_attempt_at: get(row, "next_attempt_at")?,
        claimed_by: get(row, "claimed_by")?,
        claimed_until: get(row, "claimed_until")?,
    })
}

const LOG_COLUMNS: &str =
    "seq, prev_hash, message_id, event, actor, created_at, evidence::text AS evidence, row_hash";

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
        actor: raw.actor,
        created_at: raw.created_at,
        prev_hash: arr(&raw.prev_hash, "prev_hash")?,
        row_hash: arr(&raw.row_hash, "row_hash")?,
    })
}

/// Appends one log row; the insert trigger assigns seq, created_at and the hashes.
async fn append_log(
    conn: &mut PgConnection,
    message_id: Option<&MessageId>,
    event: LogEvent,
    evidence: &Value,
    actor: &str,
) -> Result<i64> {
    let row = sqlx::query(
        "INSERT INTO lifecycle_log (message_id, event, evidence, actor) \
         VALUES ($1, $2, $3::jsonb, $4) RETURNING seq",
    )
    .bind(message_id.map(|id| id.0.to_vec()))
    .bind(event.as_str())
    .bind(evidence.to_string())
    .bind(actor)
    .fetch_one(conn)
    .await
    .map_err(StoreError::db("append lifecycle log"))?;
    get(&row, "seq")
}

/// Compare-and-set of many messages from `from` to `to`, with one log row each in
/// input order. A lease survives a move into an in-flight status (`verified`,
/// `attested`, `submitted`): the worker holding it is mid-delivery, and another
/// replica must not take the message until the lease expires; any other target
/// clears it. All or nothing: if one id is missing or not in `from`, the error
/// names it and the caller's transaction must be dropped. Returns each message's
/// destination in input order.
async fn cas_status(
    conn: &mut PgConnection,
    ids: &[MessageId],
    from: MessageStatus,
    to: MessageStatus,
    evidence: &Value,
    actor: &str,
) -> Result<Vec<LedgerId>> {
    let evidence = with_from(from, evidence).to_string();
    cas_status_each(conn, ids, from, to, &vec![evidence; ids.len()], actor).await
}

/// [`cas_status`] with its own evidence per message (`evidences[i]` for `ids[i]`,
/// JSON objects that already name `from_status`).
async fn cas_status_each(
    conn: &mut PgConnection,
    ids: &[MessageId],
    from: MessageStatus,
    to: MessageStatus,
    evidences: &[String],
    actor: &str,
) -> Result<Vec<LedgerId>> {
    if evidences.len() != ids.len() {
        return Err(StoreError::InvalidInput(format!(
            "{} evidence entries for {} messages",
            evidences.len(),
            ids.len()
        )));
    }
    if !from.can_transition_to(to) {
        return Err(StoreError::IllegalTransition { from, to });
    }
    let mut seen = HashSet::with_capacity(ids.len());
    if let Some(dup) = ids.iter().find(|id| !seen.insert(**id)) {
        return Err(StoreError::InvalidInput(format!(
            "message {dup} listed twice"
        )));
    }
    let raw: Vec<Vec<u8>> = ids.iter().map(|id| id.0.to_vec()).collect();
    let rows = sqlx::query(
        "UPDATE messages SET status = $3, updated_at = now(), \
                claimed_by = CASE WHEN $3 IN ('verified', 'attested', 'submitted') \
                                  THEN claimed_by END, \
                claimed_until = CASE WHEN $3 IN ('verified', 'attested', 'submitted') \
                                     THEN claimed_until END, \
                next_attempt_at = CASE WHEN $3 = 'failed' THEN next_attempt_at END \
         WHERE id = ANY($1::bytea[]) AND status = $2 \
         RETURNING id, destination",
    )
    .bind(&raw)
    .bind(from.as_str())
    .bind(to.as_str())
    .fetch_all(&mut *conn)
    .await
    .map_err(StoreError::db("update message status"))?;

    let mut destinations = std::collections::HashMap::with_capacity(rows.len());
    for row in &rows {
        let id: Vec<u8> = get(row, "id")?;
        let destination: i64 = get(row, "destination")?;
        destinations.insert(arr::<32>(&id, "id")?, to_u32(destination, "destination")?);
    }
    if destinations.len() != ids.len() {
        let missing = ids
            .iter()
            .find(|id| !destinations.contains_key(&id.0))
            .copied()
            .ok_or_else(|| StoreError::Decode {
                what: "status update",
                reason: "row count mismatch".into(),
            })?;
        let actual: Option<String> =
            sqlx::query_scalar("SELECT status FROM messages WHERE id = $1")
                .bind(missing.0.to_vec())
                .fetch_optional(&mut *conn)
                .await
                .map_err(StoreError::db("read message status"))?;
        return Err(match actual {
            None => StoreError::NotFound {
                what: "message",
                key: missing.to_string(),
            },
            Some(actual) => StoreError::UnexpectedStatus {
                id: missing,
                expected: from,
                actual: actual.parse()?,
            },
        });
    }

    sqlx::query(
        "INSERT INTO lifecycle_log (message_id, event, evidence, actor) \
         SELECT u.id, $2, u.evidence::jsonb, $4 \
         FROM unnest($1::bytea[], $3::text[]) WITH ORDINALITY AS u(id, evidence, ord) \
         ORDER BY u.ord",
    )
    .bind(&raw)
    .bind(to.event().as_str())
    .bind(evidences)
    .bind(actor)
    .execute(&mut *conn)
    .await
    .map_err(StoreError::db("append lifecycle log"))?;

    ids.iter()
        .map(|id| {
            destinations
                .get(&id.0)
                .copied()
                .ok_or_else(|| StoreError::Decode {
                    what: "status update",
                    reason: format!("no row returned for {id}"),
                })
        })
        .collect()
}

/// A claim's lease in microseconds, for `worker` (which must be named).
fn lease_micros(worker: &str, lease: Duration) -> Result<i64> {
    if worker.is_empty() {
        return Err(StoreError::InvalidInput("claims need a worker id".into()));
    }
    i64::try_from(lease.as_micros()).map_err(|_| StoreError::InvalidInput("lease too long".into()))
}

/// Claimed rows as records, in (origin, nonce) order.
fn claimed_in_order(rows: &[PgRow]) -> Result<Vec<MessageRecord>> {
    let mut claimed = rows
        .iter()
        .map(decode_message)
        .collect::<Result<Vec<_>>>()?;
    claimed.sort_by_key(|m| (m.origin, m.nonce));
    Ok(claimed)
}

/// The delivery rows, the moves to `delivered` and their log rows (inside the
/// caller's transaction), one statement per table whatever the count.
async fn insert_deliveries(
    conn: &mut PgConnection,
    deliveries: &[NewDelivery],
    from: MessageStatus,
    actor: &str,
) -> Result<()> {
    let n = deliveries.len();
    let mut ids = Vec::with_capacity(n);
    let mut evidences = Vec::with_capacity(n);
    let mut raw_ids = Vec::with_capacity(n);
    let mut destinations = Vec::with_capacity(n);
    let mut tx_hashes = Vec::with_capacity(n);
    let mut block_numbers = Vec::with_capacity(n);
    let mut block_hashes = Vec::with_capacity(n);
    let mut gas = Vec::with_capacity(n);
    let mut digests = Vec::with_capacity(n);
    let mut indexes = Vec::with_capacity(n);
    let mut sizes = Vec::with_capacity(n);
    for delivery in deliveries {
        if delivery.batch_size == 0 || delivery.batch_index >= delivery.batch_size {
            return Err(StoreError::InvalidInput(format!(
                "batch position {} of {} is impossible",
                delivery.batch_index, delivery.batch_size
            )));
        }
        ids.push(delivery.message_id);
        evidences.push(
            with_from(
                from,
                &json!({
                    "tx_hash": hex::encode(delivery.tx_hash),
                    "destination": delivery.destination,
                    "block_number": delivery.block_number,
                    "block_hash": delivery.block_hash.map(hex::encode),
                    "gas_used": delivery.gas_used,
                    "checkpoint_digest": delivery.checkpoint_digest.map(hex::encode),
                    "batch_index": delivery.batch_index,
                    "batch_size": delivery.batch_size,
                }),
            )
            .to_string(),
        );
        raw_ids.push(delivery.message_id.0.to_vec());
        destinations.push(i64::from(delivery.destination));
        tx_hashes.push(delivery.tx_hash.to_vec());
        block_numbers.push(to_i64(delivery.block_number, "delivery block number")?);
        block_hashes.push(delivery.block_hash.map(|h| h.to_vec()));
        gas.push(
            delivery
                .gas_used
                .map(|g| to_i64(g, "gas used"))
                .transpose()?,
        );
        digests.push(delivery.checkpoint_digest.map(|h| h.to_vec()));
        indexes.push(
            i32::try_from(delivery.batch_index)
                .map_err(|_| StoreError::InvalidInput("batch index too large".into()))?,
        );
        sizes.push(
            i32::try_from(delivery.batch_size)
                .map_err(|_| StoreError::InvalidInput("batch size too large".into()))?,
        );
    }
    let addressed = cas_status_each(
        conn,
        &ids,
        from,
        MessageStatus::Delivered,
        &evidences,
        actor,
    )
    .await?;
    if let Some((delivery, _)) = deliveries
        .iter()
        .zip(&addressed)
        .find(|(d, to)| d.destination != **to)
    {
        return Err(StoreError::InvalidInput(format!(
            "message {} is not addressed to ledger {}",
            delivery.message_id, delivery.destination
        )));
    }
    sqlx::query(
        "INSERT INTO deliveries (message_id, destination, tx_hash, block_number, block_hash, \
             gas_used, checkpoint_digest, batch_index, batch_size) \
         SELECT * FROM unnest($1::bytea[], $2::int8[], $3::bytea[], $4::int8[], $5::bytea[], \
                              $6::int8[], $7::bytea[], $8::int4[], $9::int4[])",
    )
    .bind(&raw_ids)
    .bind(&destinations)
    .bind(&tx_hashes)
    .bind(&block_numbers)
    .bind(&block_hashes)
    .bind(&gas)
    .bind(&digests)
    .bind(&indexes)
    .bind(&sizes)
    .execute(&mut *conn)
    .await
    .map_err(StoreError::db("insert deliveries"))?;
    Ok(())
}

async fn insert_operator_action(conn: &mut PgConnection, action: &OperatorAction) -> Result<i64> {
    if action.operator.is_empty() || action.reason.is_empty() {
        return Err(StoreError::InvalidInput(
            "operator actions need a who and a why".into(),
        ));
    }
    let row = sqlx::query(
        "INSERT INTO operator_actions \
             (operator, action, reason, message_id, route_source, route_destination, details) \
         VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb) RETURNING id",
    )
    .bind(&action.operator)
    .bind(action.action.as_str())
    .bind(&action.reason)
    .bind(action.message_id.map(|id| id.0.to_vec()))
    .bind(action.route.map(|r| i64::from(r.source)))
    .bind(action.route.map(|r| i64::from(r.destination)))
    .bind(action.details.to_string())
    .fetch_one(&mut *conn)
    .await
    .map_err(StoreError::db("insert operator action"))?;
    let id: i64 = get(&row, "id")?;
    let evidence = json!({
        "operator_action_id": id,
        "action": action.action.as_str(),
        "reason": action.reason,
        "route": action.route.map(|r| json!({"source": r.source, "destination": r.destination})),
        "details": action.details,
    });
    append_log(
        conn,
        action.message_id.as_ref(),
        LogEvent::Operator,
        &evidence,
        &action.operator,
    )
    .await?;
    Ok(id)
}

impl Store {
    /// Wraps a pool (see [`connect`]). Run [`Store::migrate`] once at startup.
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }

    /// The underlying pool.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Applies pending migrations (idempotent; refuses if an applied one changed).
    pub async fn migrate(&self) -> Result<()> {
        crate::MIGRATOR.run(&self.pool).await?;
        Ok(())
    }

    async fn begin(&self) -> Result<sqlx::Transaction<'static, sqlx::Postgres>> {
        self.pool
            .begin()
            .await
            .map_err(StoreError::db("begin transaction"))
    }

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

    /// The stored cursor, or `None` if the stage never recorded progress.
    pub async fn load_cursor(&self, key: CursorKey) -> Result<Option<Cursor>> {
        let mut conn = self
            .pool
            .acquire()
            .await
            .map_err(StoreError::db("acquire connection"))?;
        load_cursor(&mut conn, key).await
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
        for r in rejected {
            if r.block.number > block.number {
                return Err(StoreError::InvalidInput(format!(
                    "rejected entry {} of block {} is beyond the cursor {}",
                    r.index, r.block.number, block.number
                )));
            }
        }
        let block_number = to_i64(block.number, "cursor block number")?;
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

        let advanced = sqlx::query(
            "INSERT INTO progress_cursors (ledger_id, destination_id, stage, block_number, block_hash) \
             VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT ON CONSTRAINT progress_cursors_key DO UPDATE \
                 SET block_number = EXCLUDED.block_number, block_hash = EXCLUDED.block_hash, \
                     updated_at = now() \
                 WHERE progress_cursors.block_number < EXCLUDED.block_number \
             RETURNING block_number",
        )
        .bind(i64::from(key.ledger))
        .bind(key.destination.map(i64::from))
        .bind(key.stage.as_str())
        .bind(block_number)
        .bind(block.hash.to_vec())
        .fetch_optional(&mut *tx)
        .await
        .map_err(StoreError::db("advance cursor"))?
        .is_some();

        if !advanced {
            let current = load_cursor(&mut tx, key)
                .await?
                .ok_or_else(|| StoreError::NotFound {
                    what: "cursor",
                    key: key.to_string(),
                })?;
            if current.block.number > block.number {
                return Err(StoreError::CursorBackwards {
                    key,
                    current: current.block,
                    proposed: block,
                });
            }
            if current.block.hash != block.hash {
                return Err(StoreError::CursorConflict {
                    key,
                    current: current.block,
                    proposed: block,
                });
            }
        }
        let mut recorded = 0;
        if advanced && !rejected.is_empty() {
            let evidence: Vec<serde_json::Value> = rejected
                .iter()
                .map(|r| {
                    serde_json::json!({
                        "ledger": key.ledger,
                        "cursor": key.to_string(),
                        "source_block_number": r.block.number,
                        "source_block_hash": hex::encode(r.block.hash),
                        "source_tx_hash": r.tx_hash.map(hex::encode),
                        "index": r.index,
                        "reason": r.reason,
                        "raw": hex::encode(&r.raw),
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

    /// Moves one message from `from` to `to` (compare-and-set) and logs the step
    /// with `evidence` (an object; the store adds `from_status`). Refused with
    /// [`StoreError::IllegalTransition`] if the table forbids it and with
    /// [`StoreError::UnexpectedStatus`] if the message is not in `from`; nothing
    /// changes in either case.
    pub async fn transition(
        &self,
        id: MessageId,
        from: MessageStatus,
        to: MessageStatus,
        evidence: &Value,
        actor: &str,
    ) -> Result<()> {
        self.transition_many(&[id], from, to, evidence, actor).await
    }

    /// [`Store::transition`] for many messages sharing the same evidence (a batch
    /// delivery, a checkpoint covering many messages): all move or none do.
    pub async fn transition_many(
        &self,
        ids: &[MessageId],
        from: MessageStatus,
        to: MessageStatus,
        evidence: &Value,
        actor: &str,
    ) -> Result<()> {
        if ids.is_empty() {
            return Ok(());
        }
        let mut tx = self.begin().await?;
        cas_status(&mut tx, ids, from, to, evidence, actor).await?;
        tx.commit()
            .await
            .map_err(StoreError::db("commit transition"))
    }

    /// Leases up to `limit` messages for `destination` in one of `statuses` to
    /// `worker` for `lease`: first those never scheduled (no `next_attempt_at`), then
    /// retries and held-back messages; oldest nonce first per origin within each.
    ///
    /// Ready means: not leased (or lease expired) and past `next_attempt_at` if set
    /// (a failed message's back-off, or a message held back for another member's
    /// submission turn). The rows are selected `FOR UPDATE SKIP LOCKED` and marked in
    /// the same statement (one implicit transaction), so concurrent claimers never
    /// receive the same message. A status change out of the in-flight statuses ends
    /// the lease.
    pub async fn claim_ready(
        &self,
        destination: LedgerId,
        statuses: &[MessageStatus],
        limit: u32,
        worker: &str,
        lease: Duration,
    ) -> Result<Vec<MessageRecord>> {
        self.claim_ready_from(destination, &[], statuses, limit, worker, lease)
            .await
    }

    /// [`Store::claim_ready`] restricted to messages from `origins` (empty: any
    /// origin), so a relayer never leases messages of routes it does not serve.
    pub async fn claim_ready_from(
        &self,
        destination: LedgerId,
        origins: &[LedgerId],
        statuses: &[MessageStatus],
        limit: u32,
        worker: &str,
        lease: Duration,
    ) -> Result<Vec<MessageRecord>> {
        self.claim_ready_turns(destination, origins, statuses, limit, worker, lease, None)
            .await
    }

    /// [`Store::claim_ready_from`] for a member that submits in turns: among the
    /// never-scheduled messages, those whose `nonce % members == index` (the
    /// member's own turns) come first, so a batch is not filled with messages the
    /// member would only hold back.
    #[allow(clippy::too_many_arguments)]
    pub async fn claim_ready_turns(
        &self,
        destination: LedgerId,
        origins: &[LedgerId],
        statuses: &[MessageStatus],
        limit: u32,
        worker: &str,
        lease: Duration,
        turn: Option<Turn>,
    ) -> Result<Vec<MessageRecord>> {
        let lease_micros = lease_micros(worker, lease)?;
        // The statuses go into the statement as literals (from the enum, never from
        // input), so that the planner can use the partial index of pending messages
        // (`messages_due_idx`): a claim then reads the messages that are due, not the
        // whole history nor the ones held back.
        if statuses.is_empty() {
            return Ok(Vec::new());
        }
        let statuses = statuses
            .iter()
            .map(|s| format!("'{}'", s.as_str()))
            .collect::<Vec<_>>()
            .join(", ");
        let sql = format!(
            "WITH ready AS ( \
                 SELECT id FROM messages \
                 WHERE destination = $1 AND status IN ({statuses}) \
                   AND (cardinality($5::bigint[]) = 0 OR origin = ANY($5::bigint[])) \
                   AND (next_attempt_at IS NULL OR next_attempt_at <= now()) \
                   AND (claimed_until IS NULL OR claimed_until <= now()) \
                 ORDER BY (next_attempt_at IS NOT NULL), \
                          ($6::bigint > 0 AND nonce % greatest($6::bigint, 1) <> $7::bigint), \
                          origin, nonce \
                 LIMIT $2 \
                 FOR UPDATE SKIP LOCKED) \
             UPDATE messages m \
                SET claimed_by = $3, claimed_until = now() + $4::bigint * interval '1 microsecond' \
             FROM ready WHERE m.id = ready.id \
             RETURNING {}",
            message_columns("m.")
        );
        let rows = sqlx::query(&sql)
            .bind(i64::from(destination))
            .bind(i64::from(limit))
            .bind(worker)
            .bind(lease_micros)
            .bind(origins.iter().map(|o| i64::from(*o)).collect::<Vec<_>>())
            .bind(turn.map_or(0, |t| i64::from(t.members)))
            .bind(turn.map_or(0, |t| i64::from(t.index)))
            .fetch_all(&self.pool)
            .await
            .map_err(StoreError::db("claim ready messages"))?;
        claimed_in_order(&rows)
    }

    /// Claims those of `ids` that are in one of `statuses` and not leased (or whose
    /// lease expired), whatever their `next_attempt_at`: for a relayer that learned
    /// from the destination that these messages were delivered and records it. Rows
    /// are locked `FOR UPDATE SKIP LOCKED` and marked in one statement, like
    /// [`Store::claim_ready`], so a delivery lane and this claimer never share one.
    pub async fn claim_ids(
        &self,
        ids: &[MessageId],
        statuses: &[MessageStatus],
        worker: &str,
        lease: Duration,
    ) -> Result<Vec<MessageRecord>> {
        let lease_micros = lease_micros(worker, lease)?;
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let statuses: Vec<&str> = statuses.iter().map(|s| s.as_str()).collect();
        let raw: Vec<Vec<u8>> = ids.iter().map(|id| id.0.to_vec()).collect();
        let sql = format!(
            "WITH ready AS ( \
                 SELECT id FROM messages \
                 WHERE id = ANY($1::bytea[]) AND status = ANY($2::text[]) \
                   AND (claimed_until IS NULL OR claimed_until <= now()) \
                 FOR UPDATE SKIP LOCKED) \
             UPDATE messages m \
                SET claimed_by = $3, claimed_until = now() + $4::bigint * interval '1 microsecond' \
             FROM ready WHERE m.id = ready.id \
             RETURNING {}",
            message_columns("m.")
        );
        let rows = sqlx::query(&sql)
            .bind(&raw)
            .bind(&statuses)
            .bind(worker)
            .bind(lease_micros)
            .fetch_all(&self.pool)
            .await
            .map_err(StoreError::db("claim messages by id"))?;
        claimed_in_order(&rows)
    }

    /// Frees the unexpired leases held by workers whose id starts with `prefix` and
    /// that have no database session left (a killed or crashed process of this
    /// member: relayer processes name their sessions after their worker id, see
    /// [`connect_as`]). Their messages resume at once instead of after the lease.
    /// Returns how many leases were freed.
    pub async fn release_orphaned_leases(&self, prefix: &str) -> Result<u64> {
        let done = sqlx::query(
            "UPDATE messages SET claimed_by = NULL, claimed_until = NULL \
             WHERE claimed_by IS NOT NULL AND starts_with(claimed_by, $1) \
               AND claimed_until > now() \
               AND NOT EXISTS (SELECT 1 FROM pg_stat_activity a \
                               WHERE a.application_name = messages.claimed_by)",
        )
        .bind(prefix)
        .execute(&self.pool)
        .await
        .map_err(StoreError::db("release orphaned leases"))?;
        Ok(done.rows_affected())
    }

    /// Holds back `ids` (those still `observed`) until `delay` from now: claims skip a
    /// message until its `next_attempt_at`. A relayer holds back the messages another
    /// member's turn it is to submit, so that member's delivery is normally the only
    /// one, and looks at them again after each delay. Scheduling only: no status
    /// change and no log row. Returns how many.
    pub async fn defer_observed(&self, ids: &[MessageId], delay: Duration) -> Result<u64> {
        if ids.is_empty() {
            return Ok(0);
        }
        let micros = i64::try_from(delay.as_micros())
            .map_err(|_| StoreError::InvalidInput("delay too long".into()))?;
        let raw: Vec<Vec<u8>> = ids.iter().map(|id| id.0.to_vec()).collect();
        let done = sqlx::query(
            "UPDATE messages SET next_attempt_at = now() + $2::bigint * interval '1 microsecond' \
             WHERE id = ANY($1::bytea[]) AND status = 'observed'",
        )
        .bind(&raw)
        .bind(micros)
        .execute(&self.pool)
        .await
        .map_err(StoreError::db("defer observed messages"))?;
        Ok(done.rows_affected())
    }

    /// Gives the leases `worker` holds on `ids` back before they expire, in one
    /// statement. Returns how many it held.
    pub async fn release_claims(&self, ids: &[MessageId], worker: &str) -> Result<u64> {
        if ids.is_empty() {
            return Ok(0);
        }
        let raw: Vec<Vec<u8>> = ids.iter().map(|id| id.0.to_vec()).collect();
        let done = sqlx::query(
            "UPDATE messages SET claimed_by = NULL, claimed_until = NULL \
             WHERE id = ANY($1::bytea[]) AND claimed_by = $2",
        )
        .bind(&raw)
        .bind(worker)
        .execute(&self.pool)
        .await
        .map_err(StoreError::db("release claims"))?;
        Ok(done.rows_affected())
    }

    /// Gives a lease back before it expires. Returns whether `worker` held it.
    pub async fn release_claim(&self, id: MessageId, worker: &str) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE messages SET claimed_by = NULL, claimed_until = NULL \
             WHERE id = $1 AND claimed_by = $2",
        )
        .bind(id.0.to_vec())
        .bind(worker)
        .execute(&self.pool)
        .await
        .map_err(StoreError::db("release claim"))?;
        Ok(done.rows_affected() == 1)
    }

    /// Records a failed delivery attempt of a message in `from`: attempts + 1,
    /// `last_error`, and either `failed` with `next_attempt_at` = now + backoff, or
    /// `dead_letter` once `policy.max_attempts` is reached. Logged with the error.
    pub async fn set_failure(
        &self,
        id: MessageId,
        from: MessageStatus,
        error: &str,
        policy: &RetryPolicy,
        actor: &str,
    ) -> Result<FailureOutcome> {
        let mut tx = self.begin().await?;
        let row = sqlx::query("SELECT status, attempts FROM messages WHERE id = $1 FOR UPDATE")
            .bind(id.0.to_vec())
            .fetch_optional(&mut *tx)
            .await
            .map_err(StoreError::db("lock message"))?
            .ok_or_else(|| StoreError::NotFound {
                what: "message",
                key: id.to_string(),
            })?;
        let status: String = get(&row, "status")?;
        let actual: MessageStatus = status.parse()?;
        if actual != from {
            return Err(StoreError::UnexpectedStatus {
                id,
                expected: from,
                actual,
            });
        }
        let attempts_now: i32 = get(&row, "attempts")?;
        let attempts = u32::try_from(attempts_now).unwrap_or(0).saturating_add(1);
        let dead = attempts >= policy.max_attempts;
        let to = if dead {
            MessageStatus::DeadLetter
        } else {
            MessageStatus::Failed
        };
        if !from.can_transition_to(to) {
            return Err(StoreError::IllegalTransition { from, to });
        }
        let delay_micros = if dead {
            None
        } else {
            Some(
                i64::try_from(policy.jittered_delay_after(attempts, &id.0).as_micros())
                    .map_err(|_| StoreError::InvalidInput("backoff too long".into()))?,
            )
        };
        let row = sqlx::query(
            "UPDATE messages SET status = $2, attempts = $3, last_error = $4, \
                    next_attempt_at = now() + $5::bigint * interval '1 microsecond', \
                    updated_at = now(), claimed_by = NULL, claimed_until = NULL \
             WHERE id = $1 RETURNING next_attempt_at",
        )
        .bind(id.0.to_vec())
        .bind(to.as_str())
        .bind(i32::try_from(attempts).unwrap_or(i32::MAX))
        .bind(error)
        .bind(delay_micros)
        .fetch_one(&mut *tx)
        .await
        .map_err(StoreError::db("record failure"))?;
        let next_attempt_at: Option<DateTime<Utc>> = get(&row, "next_attempt_at")?;
        let evidence = json!({
            "from_status": from.as_str(),
            "error": error,
            "attempts": attempts,
            "max_attempts": policy.max_attempts,
            "next_attempt_at": next_attempt_at.map(|t| t.to_rfc3339()),
        });
        append_log(&mut tx, Some(&id), to.event(), &evidence, actor).await?;
        tx.commit()
            .await
            .map_err(StoreError::db("commit failure"))?;
        Ok(match next_attempt_at {
            Some(next_attempt_at) if !dead => FailureOutcome::Failed {
                attempts,
                next_attempt_at,
            },
            _ => FailureOutcome::DeadLettered { attempts },
        })
    }

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
            let log = json!({
                "digest": hex::encode(checkpoint.digest),
                "origin": checkpoint.origin,
                "outbox": hex::encode(checkpoint.outbox),
                "root": hex::encode(checkpoint.root),
                "count": checkpoint.count,
                "block_number": checkpoint.block.number,
                "block_hash": hex::encode(checkpoint.block.hash),
                "proof": evidence,
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
            let log = json!({
                "attestation_id": id,
                "checkpoint_digest": hex::encode(attestation.checkpoint_digest),
                "signer": hex::encode(attestation.signer),
                "member": attestation.member,
                "signature": hex::encode(attestation.signature),
                "outcome": outcome.as_str(),
                "reason": reason,
            });
            append_log(&mut tx, None, LogEvent::Attestation, &log, actor).await?;
        }
        tx.commit()
            .await
            .map_err(StoreError::db("commit attestation"))?;
        Ok(id.is_some())
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

    /// Records the final delivery of a message in `from` (usually `submitted`; also
    /// `attested` or `failed` when the destination had already processed it): the
    /// delivery row, the move to `delivered` and its log row, in one transaction.
    pub async fn record_delivery(
        &self,
        delivery: &NewDelivery,
        from: MessageStatus,
        actor: &str,
    ) -> Result<()> {
        self.record_deliveries(std::slice::from_ref(delivery), from, actor)
            .await
    }

    /// [`Store::record_delivery`] for the messages of one delivery transaction, all
    /// in `from`: every row and log entry commits together, or none does.
    pub async fn record_deliveries(
        &self,
        deliveries: &[NewDelivery],
        from: MessageStatus,
        actor: &str,
    ) -> Result<()> {
        if deliveries.is_empty() {
            return Ok(());
        }
        let mut tx = self.begin().await?;
        insert_deliveries(&mut tx, deliveries, from, actor).await?;
        tx.commit().await.map_err(StoreError::db("commit delivery"))
    }

    /// Records an operator action (who, what, why) and logs it (event `operator`).
    /// Returns the action's id.
    pub async fn record_operator_action(&self, action: &OperatorAction) -> Result<i64> {
        let mut tx = self.begin().await?;
        let id = insert_operator_action(&mut tx, action).await?;
        tx.commit()
            .await
            .map_err(StoreError::db("commit operator action"))?;
        Ok(id)
    }

    /// An operator moves a message (e.g. retries a dead letter): the action, the
    /// compare-and-set transition and both log rows commit together.
    pub async fn operator_transition(
        &self,
        action: &OperatorAction,
        from: MessageStatus,
        to: MessageStatus,
    ) -> Result<i64> {
        let id = action.message_id.ok_or_else(|| {
            StoreError::InvalidInput("an operator transition names a message".into())
        })?;
        let mut tx = self.begin().await?;
        let action_id = insert_operator_action(&mut tx, action).await?;
        let evidence = json!({ "operator_action_id": action_id, "reason": action.reason });
        cas_status(&mut tx, &[id], from, to, &evidence, &action.operator).await?;
        tx.commit()
            .await
            .map_err(StoreError::db("commit operator transition"))?;
        Ok(action_id)
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

    /// Messages matching `filter`, oldest observation first.
    pub async fn list_messages(&self, filter: &MessageFilter) -> Result<Vec<MessageRecord>> {
        let statuses: Vec<&str> = filter.statuses.iter().map(|s| s.as_str()).collect();
        let sql = format!(
            "SELECT {} FROM messages \
             WHERE ($1::bigint IS NULL OR origin = $1) \
               AND ($2::bigint IS NULL OR destination = $2) \
               AND (cardinality($3::text[]) = 0 OR status = ANY($3::text[])) \
               AND ($4::timestamptz IS NULL OR observed_at >= $4) \
               AND ($5::timestamptz IS NULL OR observed_at < $5) \
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

    /// The ids of `origin`'s messages with nonce below `count`, in nonce order: the
    /// leaves of the outbox tree as this relayer observed them. Refused with
    /// [`StoreError::InvalidInput`] when a nonce is missing (the observer has not seen
    /// every message the outbox committed), so a branch is never built from a tree
    /// with a hole.
    pub async fn outbox_leaves(&self, origin: LedgerId, count: u64) -> Result<Vec<[u8; 32]>> {
        let rows = sqlx::query(
            // Ordered by the numeric column, not by the text alias (which would put
            // nonce 10 before nonce 2).
            "SELECT m.nonce::text AS nonce_text, m.id FROM messages m \
             WHERE m.origin = $1 AND m.nonce < $2::numeric ORDER BY m.nonce",
        )
        .bind(i64::from(origin))
        .bind(count.to_string())
        .fetch_all(&self.pool)
        .await
        .map_err(StoreError::db("read outbox leaves"))?;
        let mut leaves = Vec::with_capacity(rows.len());
        for (expected, row) in rows.iter().enumerate() {
            let nonce: String = get(row, "nonce_text")?;
            if parse_u64(&nonce, "nonce")? != expected as u64 {
                return Err(StoreError::InvalidInput(format!(
                    "outbox of ledger {origin}: nonce {expected} was never observed"
                )));
            }
            let id: Vec<u8> = get(row, "id")?;
            leaves.push(arr::<32>(&id, "messages.id")?);
        }
        if leaves.len() as u64 != count {
            return Err(StoreError::InvalidInput(format!(
                "outbox of ledger {origin}: {} of {count} messages observed",
                leaves.len()
            )));
        }
        Ok(leaves)
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

async fn load_cursor(conn: &mut PgConnection, key: CursorKey) -> Result<Option<Cursor>> {
    let row = sqlx::query(
        "SELECT block_number, block_hash, updated_at FROM progress_cursors \
         WHERE ledger_id = $1 AND destination_id IS NOT DISTINCT FROM $2 AND stage = $3",
    )
    .bind(i64::from(key.ledger))
    .bind(key.destination.map(i64::from))
    .bind(key.stage.as_str())
    .fetch_optional(conn)
    .await
    .map_err(StoreError::db("load cursor"))?;
    let Some(row) = row else { return Ok(None) };
    let hash: Vec<u8> = get(&row, "block_hash")?;
    Ok(Some(Cursor {
        block: BlockRef {
            number: to_u64(get(&row, "block_number")?, "block_number")?,
            hash: arr(&hash, "block_hash")?,
        },
        updated_at: get(&row, "updated_at")?,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_passwords() {
        assert_eq!(
            redact_url("postgres://relayer:s3cret@db.example:5432/isthmus?sslmode=require"),
            "postgres://relayer:***@db.example:5432/isthmus?sslmode=require"
        );
        assert_eq!(
            redact_url("postgres://postgres@127.0.0.1:5432/postgres"),
            "postgres://postgres@127.0.0.1:5432/postgres"
        );
        assert_eq!(
            redact_url("postgresql://u@h/db?password=hunter2&application_name=x"),
            "postgresql://u@h/db?password=***&application_name=x"
        );
        assert_eq!(redact_url("p@ss:word"), "<unparsable database url>");
        assert!(!redact_url("postgres://a:p%40ss@h/d").contains("p%40ss"));
    }

    #[test]
    fn evidence_gets_from_status() {
        let v = with_from(MessageStatus::Attested, &json!({"tx": "ab"}));
        assert_eq!(v, json!({"from_status": "attested", "tx": "ab"}));
        let v = with_from(MessageStatus::Attested, &json!("note"));
        assert_eq!(v, json!({"from_status": "attested", "detail": "note"}));
    }
}
