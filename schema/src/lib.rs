//! Postgres history of the Isthmus relayer.
//!
//! The schema lives in `migrations/` (applied with [`MIGRATOR`]; an applied
//! migration is never edited) and is documented for auditors in `docs/schema.md`.
//! [`Store`] is the relayer's only way to write it. Every method is one
//! transaction, so progress and the data it covers commit together:
//!
//! - [`Store::record_observed`] inserts a batch of messages, their `observed` log
//!   rows and the moved cursor at once; a cursor never moves backwards.
//! - [`Store::transition`] changes a status by compare-and-set along
//!   [`TRANSITIONS`] and logs the step with its evidence.
//! - [`Store::claim`] leases ready messages (a [`Claim`]) with
//!   `FOR UPDATE SKIP LOCKED`, so concurrent delivery workers never share one.
//! - [`Store::verify_log_chain`] recomputes the lifecycle log's hash chain and
//!   names the first altered or deleted row.
//!
//! Writes to the lifecycle log are serialized by the database itself (an insert
//! trigger takes the row lock of `lifecycle_log_writer`, which no auditor can take,
//! reads the head and assigns seq and hashes), so
//! the chain cannot fork whoever the writer is.
//!
//! Modules: `types` (the persisted enums and records), `chain` (the log's hash chain
//! and its verifier), `evidence` (the typed evidence of the log rows the store writes
//! itself), `error` ([`StoreError`], with `is_retryable`), and `store`, split by
//! concern: `ingest`, `cursors`, `claims`, `transitions`, `deliveries`, `audit`,
//! `gauges` (what the relayer's gauges read at scrape time).

mod chain;
mod error;
mod evidence;
mod store;
mod types;

pub use chain::{RawLogRow, GENESIS_PREV_HASH, LOG_DOMAIN_TAG};
pub use error::{ChainBreak, StoreError};
pub use store::{
    connect, connect_as, redact_url, ConsensusFault, HeldMessage, HeldTotal, HoldDecisionRecord,
    HoldVerdict, NearestDeadline, OldestPending, PaymentApp, PaymentRow, RoundTrips, StatusCount,
    Store,
};
pub use types::{
    AttestationOutcome, AttestationRecord, BlockRef, CheckpointRecord, Claim, Cursor, CursorKey,
    FailureOutcome, FinalityMode, Ledger, LedgerId, LedgerKind, LightClientCommit,
    LightClientRecord, LogEntry, LogEvent, MessageFilter, MessageHistory, MessageId, MessageRecord,
    MessageStatus, NewAttestation, NewCheckpoint, NewDelivery, NewMessage, ObservedOutcome,
    ObservedRange, ObservedReceipt, OperatorAction, OperatorActionKind, ReceiptRecord,
    RejectedEntry, RetryPolicy, Route, Stage, Turn, VerifiedHeaderRecord, TRANSITIONS,
};

/// The schema migrations, embedded at build time from `schema/migrations/`.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");
