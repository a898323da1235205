//! Why a pipeline step failed, and whether the next round may succeed.

use isthmus_schema::{MessageId, StoreError};

use crate::ledger::LedgerError;

/// Why a step of the pipeline failed. Each variant says whether to retry
/// ([`PipelineError::is_retryable`]): a retryable failure is logged as a warning and
/// the round runs again after a pause; a final one is logged as an error, because an
/// operator must act.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    /// A store operation failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A ledger operation failed.
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    /// A message names a ledger this relayer has not configured.
    #[error("ledger {id} is not configured here")]
    UnknownLedger {
        /// The ledger id.
        id: u32,
    },
    /// The source has not been observed yet, so no checkpoint covers its messages.
    #[error("ledger `{ledger}` has no observer cursor yet")]
    NotObserved {
        /// The source ledger.
        ledger: String,
    },
    /// The recorded messages of a source do not produce the root its light client
    /// proved: the history misses or alters an outbox entry.
    #[error(
        "observed messages of `{ledger}` do not produce the proven root at block {block}: \
         the history is incomplete"
    )]
    IncompleteHistory {
        /// The source ledger.
        ledger: String,
        /// The proven block.
        block: u64,
    },
    /// The destination says a message was delivered, but its delivery is not found
    /// (yet) where the inbox records deliveries.
    #[error("`{ledger}` reports {id} delivered but no delivery event was found")]
    DeliveryNotFound {
        /// The destination ledger.
        ledger: String,
        /// The message.
        id: MessageId,
    },
    /// This member could not sign the checkpoint (its key or token failed).
    #[error(transparent)]
    Sign(#[from] Box<crate::attest::SignError>),
    /// A stored message cannot be used as it is.
    #[error("stored message {id}: {reason}")]
    CorruptRecord {
        /// The message.
        id: MessageId,
        /// What is wrong.
        reason: String,
    },
}

impl PipelineError {
    /// Whether the same step may succeed in a later round.
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Store(e) => e.is_retryable(),
            Self::Ledger(e) => e.is_retryable(),
            // The observer records the first cursor on its next round.
            Self::NotObserved { .. } => true,
            // The event lands in a block that is not final yet, or a lagging node
            // behind a load balancer answered.
            Self::DeliveryNotFound { .. } => true,
            // A token comes back (re-inserted, unlocked, reachable again); the
            // messages wait for it, and every failed round is logged.
            Self::Sign(_) => true,
            // Configuration, history or stored rows that are wrong stay wrong.
            Self::UnknownLedger { .. }
            | Self::IncompleteHistory { .. }
            | Self::CorruptRecord { .. } => false,
        }
    }
}
