//! Errors of the EVM adapter, classified as retryable or permanent.

use ethers::types::H256;

/// What went wrong talking to an EVM ledger.
#[derive(Debug, thiserror::Error)]
pub enum EvmError {
    /// The RPC endpoint failed in a way that may pass: connection refused, timeout,
    /// rate limit, a node that is behind.
    #[error("RPC call `{call}` failed (will retry): {detail}")]
    Transient {
        /// The JSON-RPC method or contract call.
        call: &'static str,
        /// What the node or the transport said.
        detail: String,
    },
    /// The node answered with something this adapter cannot use.
    #[error("RPC call `{call}` returned an unusable answer: {detail}")]
    BadResponse {
        /// The JSON-RPC method.
        call: &'static str,
        /// What was wrong with it.
        detail: String,
    },
    /// A transaction or call reverted with a decoded reason; resubmitting it unchanged
    /// fails the same way.
    #[error("`{call}` reverted: {reason}")]
    Reverted {
        /// The contract call.
        call: &'static str,
        /// The decoded custom error or revert string.
        reason: String,
    },
    /// A nonce was taken by another transaction in the meantime.
    #[error("nonce race while sending `{call}`: {detail}")]
    NonceRace {
        /// The contract call.
        call: &'static str,
        /// What the node said.
        detail: String,
    },
    /// The submitter cannot pay for the transaction; an operator must fund it.
    #[error("submitter {submitter} has insufficient funds for `{call}`: fund it")]
    InsufficientFunds {
        /// The contract call.
        call: &'static str,
        /// The submitter's address.
        submitter: String,
    },
    /// The block a cursor points at is no longer on the canonical chain.
    #[error("reorg: block {number} was {expected:?}, the node now has {found:?}")]
    Reorg {
        /// Block number of the cursor.
        number: u64,
        /// Hash the cursor recorded.
        expected: H256,
        /// Hash the node has now at that height (None: the block is gone).
        found: Option<H256>,
    },
    /// An Outbox log does not hold a valid protocol message.
    #[error("Outbox log at block {block} index {log_index} holds an invalid message: {detail}")]
    MalformedLog {
        /// Block of the log.
        block: u64,
        /// Log index in the block.
        log_index: u64,
        /// Why it was refused.
        detail: String,
    },
    /// A delivery needs more gas than a block of the ledger holds; the next batches
    /// are sized smaller from what this one showed.
    #[error(
        "a delivery of {messages} messages needs more gas than a block holds \
         ({block_gas_limit}); the next batches are sized to fit"
    )]
    TooLargeForBlock {
        /// Messages in the delivery.
        messages: usize,
        /// The ledger's block gas limit.
        block_gas_limit: u64,
    },
    /// A transaction did not reach finality in the allotted time.
    #[error("transaction {tx:?} not final after {waited_s} s")]
    NotFinal {
        /// The transaction.
        tx: H256,
        /// Seconds waited.
        waited_s: u64,
    },
    /// The submitter's key (its PKCS#11 token) could not sign the transaction. Retried:
    /// a token comes back, and the messages wait for it.
    #[error("the submitter key could not sign `{call}` (will retry): {detail}")]
    Signing {
        /// The transaction being signed.
        call: &'static str,
        /// What the key said.
        detail: String,
    },
    /// The adapter was configured with something unusable (bad URL, bad key).
    #[error("invalid EVM adapter configuration: {0}")]
    Config(String),
    /// A local devnet process could not be started or used.
    #[error("devnet: {0}")]
    Devnet(String),
}

impl EvmError {
    /// Whether the same step may succeed if repeated later.
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Transient { .. } | Self::NonceRace { .. } | Self::NotFinal { .. } => true,
            Self::Signing { .. } => true,
            // The next claim is sized to the block.
            Self::TooLargeForBlock { .. } => true,
            // Retried with backoff: funding the account resolves it without a restart.
            Self::InsufficientFunds { .. } => true,
            // A reorg is handled by rewinding, after which the scan is repeated.
            Self::Reorg { .. } => true,
            Self::BadResponse { .. }
            | Self::Reverted { .. }
            | Self::MalformedLog { .. }
            | Self::Config(_)
            | Self::Devnet(_) => false,
        }
    }

    /// Classifies a provider error by what the transport and the node said.
    pub(crate) fn from_provider(call: &'static str, err: ethers::providers::ProviderError) -> Self {
        let detail = err.to_string();
        let lower = detail.to_ascii_lowercase();
        if lower.contains("nonce too low")
            || lower.contains("replacement transaction underpriced")
            || lower.contains("already known")
        {
            return Self::NonceRace { call, detail };
        }
        if lower.contains("execution reverted") || lower.contains("revert") {
            return Self::Reverted {
                call,
                reason: detail,
            };
        }
        if let ethers::providers::ProviderError::SerdeJson(_) = err {
            return Self::BadResponse { call, detail };
        }
        Self::Transient { call, detail }
    }
}
