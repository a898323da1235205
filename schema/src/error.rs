//! The crate's single error type.

use crate::types::{BlockRef, CursorKey, MessageId, MessageStatus};

/// Why the lifecycle log chain is broken at a given seq.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ChainBreak {
    /// The row's stored `row_hash` is not sha256 of its canonical bytes: the row was
    /// edited after it was appended.
    #[error("row_hash mismatch (stored {stored}, recomputed {computed})")]
    HashMismatch {
        /// Hex of the stored hash.
        stored: String,
        /// Hex of the recomputed hash.
        computed: String,
    },
    /// The row's `prev_hash` is not the previous row's `row_hash`: the previous row
    /// was rewritten together with its hash, or rows were spliced.
    #[error("prev_hash mismatch (stored {stored}, previous row_hash {expected})")]
    PrevHashMismatch {
        /// Hex of the stored prev_hash.
        stored: String,
        /// Hex of the previous row's row_hash (zeros before seq 1).
        expected: String,
    },
    /// Sequence numbers jump: rows in between were deleted.
    #[error("seq gap: expected seq {expected}, found {found} (rows deleted)")]
    Gap {
        /// The seq that should come next.
        expected: i64,
        /// The seq actually found.
        found: i64,
    },
}

/// Everything the store can fail with. [`StoreError::is_retryable`] tells callers
/// whether repeating the same call may succeed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The pool could not be created or reach the server. `target` is the URL with
    /// any password masked.
    #[error("connecting to {target}: {source}")]
    Connect {
        /// Redacted connection URL.
        target: String,
        /// Underlying error.
        #[source]
        source: sqlx::Error,
    },
    /// Running migrations failed.
    #[error("running migrations: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// A query failed; `op` names the store operation.
    #[error("{op}: {source}")]
    Database {
        /// Store operation that failed.
        op: &'static str,
        /// Underlying error.
        #[source]
        source: sqlx::Error,
    },
    /// The requested status change is not in the transition table.
    #[error("illegal transition {from} -> {to}")]
    IllegalTransition {
        /// Status the caller expected.
        from: MessageStatus,
        /// Status requested.
        to: MessageStatus,
    },
    /// Compare-and-set refused: the message is not in the expected status (someone
    /// else moved it, or the caller's view is stale).
    #[error("message {id} is {actual}, expected {expected}")]
    UnexpectedStatus {
        /// The message.
        id: MessageId,
        /// Status the caller expected.
        expected: MessageStatus,
        /// Status found.
        actual: MessageStatus,
    },
    /// A row the operation needs does not exist.
    #[error("{what} not found: {key}")]
    NotFound {
        /// Kind of row.
        what: &'static str,
        /// Its key.
        key: String,
    },
    /// A cursor may only move forward.
    #[error("cursor {key} is at {current}, refusing to move back to {proposed}")]
    CursorBackwards {
        /// The cursor.
        key: CursorKey,
        /// Stored position.
        current: BlockRef,
        /// Refused position.
        proposed: BlockRef,
    },
    /// Same block number, different hash: the source reorganized below what we
    /// considered final, or two observers disagree. An operator must look.
    #[error("cursor {key} is at {current}, refusing conflicting {proposed}")]
    CursorConflict {
        /// The cursor.
        key: CursorKey,
        /// Stored position.
        current: BlockRef,
        /// Refused position.
        proposed: BlockRef,
    },
    /// The caller passed values the schema cannot hold or that contradict each other.
    #[error("invalid input: {0}")]
    InvalidInput(String),
    /// A stored value does not decode into its Rust type (schema drift or tampering).
    #[error("decoding {what}: {reason}")]
    Decode {
        /// Column or value kind.
        what: &'static str,
        /// What was wrong.
        reason: String,
    },
    /// The lifecycle log hash chain does not verify at `seq`.
    #[error("lifecycle log broken at seq {seq}: {kind}")]
    LogChainBroken {
        /// First seq that fails verification (for a gap, the first missing seq).
        seq: i64,
        /// Why.
        kind: ChainBreak,
    },
}

impl StoreError {
    /// Whether the same operation may succeed if repeated: lost connections,
    /// exhausted pools, serialization failures and deadlocks are; constraint
    /// violations, illegal transitions, missing rows and a broken chain are not.
    pub fn is_retryable(&self) -> bool {
        match self {
            StoreError::Connect { source, .. } | StoreError::Database { source, .. } => {
                sqlx_is_retryable(source)
            }
            StoreError::Migrate(sqlx::migrate::MigrateError::Execute(source)) => {
                sqlx_is_retryable(source)
            }
            StoreError::Migrate(_)
            | StoreError::IllegalTransition { .. }
            | StoreError::UnexpectedStatus { .. }
            | StoreError::NotFound { .. }
            | StoreError::CursorBackwards { .. }
            | StoreError::CursorConflict { .. }
            | StoreError::InvalidInput(_)
            | StoreError::Decode { .. }
            | StoreError::LogChainBroken { .. } => false,
        }
    }

    /// The Postgres SQLSTATE of an underlying database error, if any.
    pub fn sqlstate(&self) -> Option<String> {
        match self {
            StoreError::Connect { source, .. } | StoreError::Database { source, .. } => source
                .as_database_error()
                .and_then(|e| e.code())
                .map(|c| c.into_owned()),
            _ => None,
        }
    }

    pub(crate) fn db(op: &'static str) -> impl FnOnce(sqlx::Error) -> StoreError {
        move |source| StoreError::Database { op, source }
    }
}

/// Transient failures: the connection, the pool, or a concurrency conflict the
/// server asks us to retry.
fn sqlx_is_retryable(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::Protocol(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(db) => db.code().is_some_and(|code| {
            // 08: connection exception; 40001 serialization_failure; 40P01 deadlock;
            // 53300 too_many_connections; 57P01..03 shutdown / cannot connect now.
            code.starts_with("08")
                || matches!(
                    &*code,
                    "40001" | "40P01" | "53300" | "57P01" | "57P02" | "57P03"
                )
        }),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classification() {
        let io = StoreError::Database {
            op: "x",
            source: sqlx::Error::Io(std::io::Error::from(std::io::ErrorKind::ConnectionReset)),
        };
        assert!(io.is_retryable());
        let pool = StoreError::Database {
            op: "x",
            source: sqlx::Error::PoolTimedOut,
        };
        assert!(pool.is_retryable());
        let not_found = StoreError::Database {
            op: "x",
            source: sqlx::Error::RowNotFound,
        };
        assert!(!not_found.is_retryable());
        let illegal = StoreError::IllegalTransition {
            from: MessageStatus::Observed,
            to: MessageStatus::Delivered,
        };
        assert!(!illegal.is_retryable());
        assert_eq!(
            illegal.to_string(),
            "illegal transition observed -> delivered"
        );
    }
}
