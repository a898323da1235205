//! The transactional store over the history schema.
//!
//! [`Store`] is one type; its methods are split by concern, one `impl Store` block
//! per file:
//!
//! - `ingest`: ledgers, scanned ranges (messages, rejected entries, the observe
//!   cursor) and the outbox leaves read back from them;
//! - `cursors`: progress cursors;
//! - `claims`: delivery leases (claims, releases, hold-backs, orphaned leases);
//! - `transitions`: compare-and-set status changes, failures and operator moves;
//! - `deliveries`: final deliveries on the destination;
//! - `lightclient`: light-client state and verified headers of sealed EVM ledgers,
//!   consensus faults and the operator's reset;
//! - `audit`: checkpoints, attestations, message histories, log export and chain
//!   verification.
//!
//! This file holds the connection functions, the struct and the private helpers
//! the concerns share (row decoding, log appends).

use std::time::Duration;

use serde_json::Value;
use sqlx::postgres::{PgPoolOptions, PgRow};
use sqlx::{PgConnection, PgPool, Row};

use crate::error::StoreError;
use crate::types::{BlockRef, LogEvent, MessageId, MessageRecord, MessageStatus};

mod audit;
mod claims;
mod cursors;
mod deliveries;
mod gauges;
mod holds;
mod ingest;
mod lightclient;
mod transitions;

pub use gauges::{
    HeldTotal, NearestDeadline, OldestPending, PaymentApp, PaymentRow, RoundTrips, StatusCount,
};
pub use holds::{HeldMessage, HoldDecisionRecord, HoldVerdict};
pub use lightclient::ConsensusFault;

type Result<T> = std::result::Result<T, StoreError>;

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
/// One session is kept open while the pool lives, and at most `max_connections`
/// (the configuration's `database.pool_size`).
pub async fn connect_as(url: &str, application_name: &str, max_connections: u32) -> Result<PgPool> {
    let redacted = || redact_url(url);
    let options = url
        .parse::<sqlx::postgres::PgConnectOptions>()
        .map_err(|source| StoreError::Connect {
            target: redacted(),
            source,
        })?
        .application_name(application_name);
    PgPoolOptions::new()
        .max_connections(max_connections.max(1))
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

#[cfg(test)]
mod tests {
    use serde_json::json;

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
