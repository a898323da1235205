//! The adapter's one error type.

/// What can go wrong talking to a Substrate ledger. [`Error::is_retryable`] tells the
/// pipeline whether to back off and try again or to record a final failure.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The RPC transport or the node failed (connection, timeout, node error).
    #[error("substrate rpc: {0}")]
    Rpc(#[from] subxt_rpcs::Error),
    /// subxt failed while building, submitting or following a transaction, or while
    /// reading a block's events.
    #[error("substrate client: {0}")]
    Client(Box<subxt::Error>),
    /// The node does not (yet) know a block we asked for.
    #[error("block {0} is not known to the node")]
    UnknownBlock(String),
    /// The node sent bytes that do not decode as what the protocol says they are.
    #[error("malformed {what} from the node: {reason}")]
    Malformed {
        /// What was being decoded.
        what: &'static str,
        /// Why it was refused.
        reason: String,
    },
    /// Verification of node data failed (justification, header, read proof).
    #[error("light client refused node data: {0}")]
    LightClient(#[from] isthmus_light_client_grandpa::Error),
    /// The transaction was included but the runtime refused it (`pallet::Error`).
    #[error("the ledger refused the transaction: {pallet}::{error}")]
    Refused {
        /// The pallet that refused.
        pallet: String,
        /// The error variant, e.g. `AlreadyProcessed`.
        error: String,
    },
    /// The transaction was dropped or declared invalid by the pool (stale nonce, …).
    #[error("the transaction pool dropped the transaction: {0}")]
    Dropped(String),
    /// The submitter's key (its PKCS#11 token) could not sign the transaction.
    /// Retryable: the token comes back and the transaction is signed again.
    #[error("the submitter key could not sign: {0}")]
    Signing(String),
    /// Starting or reading the local dev chain failed.
    #[error("devnet: {0}")]
    Devnet(#[from] std::io::Error),
    /// The dev chain process exited or never announced its port.
    #[error("devnet chain did not start: {0}")]
    DevnetStart(String),
}

impl Error {
    /// Whether trying again later can succeed: transport problems, a node that is
    /// behind, a dropped transaction (its nonce is refreshed). Refusals by the
    /// runtime, malformed data and failed verification are final.
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::Rpc(_) | Error::UnknownBlock(_) | Error::Dropped(_) | Error::Signing(_) => true,
            Error::Client(e) => !matches!(
                **e,
                subxt::Error::ExtrinsicError(_) | subxt::Error::StorageKeyError(_)
            ),
            Error::Malformed { .. }
            | Error::LightClient(_)
            | Error::Refused { .. }
            | Error::Devnet(_)
            | Error::DevnetStart(_) => false,
        }
    }

    /// Whether the runtime refused because the message was already processed.
    pub fn is_already_processed(&self) -> bool {
        matches!(self, Error::Refused { error, .. } if error == "AlreadyProcessed")
    }
}

/// Converts subxt's per-operation error types into [`Error::Client`].
macro_rules! from_subxt {
    ($($t:ty),* $(,)?) => {
        $(impl From<$t> for Error {
            fn from(e: $t) -> Self {
                Error::Client(Box::new(subxt::Error::from(e)))
            }
        })*
    };
}

from_subxt!(
    subxt::error::OnlineClientError,
    subxt::error::OnlineClientAtBlockError,
    subxt::error::EventsError,
    subxt::error::ExtrinsicError,
    subxt::error::TransactionProgressError,
    subxt::error::TransactionEventsError,
    subxt::error::AccountNonceError,
);

impl From<subxt::Error> for Error {
    fn from(e: subxt::Error) -> Self {
        Error::Client(Box::new(e))
    }
}
