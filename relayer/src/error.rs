//! The crate's error type.

use isthmus_config::ConfigError;
use isthmus_schema::StoreError;

/// Why a command could not run to completion. Configuration *problems* are not
/// errors: they are the output of `config validate` and give exit status 1.
#[derive(Debug, thiserror::Error)]
pub enum RelayerError {
    /// The configuration could not be read or a key could not be loaded.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// Connecting to the database or running a store operation failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Reading or applying migrations failed.
    #[error("migrating the database: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// A direct database call (listing applied migrations) failed.
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    /// The log filter (`log.level` or `RUST_LOG`) could not be parsed.
    #[error("invalid log filter: {0}")]
    LogFilter(#[from] tracing_subscriber::filter::ParseError),
    /// A ledger could not be reached or used.
    #[error(transparent)]
    Evm(#[from] isthmus_adapter_evm::EvmError),
    /// A ledger step failed (chain IO or refused evidence).
    #[error(transparent)]
    Ledger(#[from] crate::ledger::LedgerError),
    /// Mutual TLS could not be set up (certificate, key or CA).
    #[error(transparent)]
    Tls(#[from] crate::mtls::MtlsError),
    /// The consortium section and this member's key do not fit together.
    #[error("{0}")]
    Consortium(String),
    /// A ledger's deployed endpoints do not fit this member's history (an Outbox that
    /// replaced another without continuing its nonces).
    #[error("{0}")]
    Deployment(String),
    /// `isthmus send` could not dispatch the message.
    #[error("{0}")]
    Dispatch(String),
    /// A `devnet` command could not start or wire a local ledger.
    #[error("{0}")]
    Devnet(String),
    /// A command was given command-line input it cannot use.
    #[error("{0}")]
    Usage(String),
    /// Writing the command's report to standard output failed.
    #[error("writing output: {0}")]
    Output(#[from] std::io::Error),
}

impl RelayerError {
    /// Whether running the same command again unchanged may succeed (a database that
    /// is still starting, a dropped connection).
    pub fn is_retryable(&self) -> bool {
        match self {
            RelayerError::Config(e) => e.is_retryable(),
            RelayerError::Store(e) => e.is_retryable(),
            RelayerError::Database(e) => is_retryable_sqlx(e),
            RelayerError::Migrate(sqlx::migrate::MigrateError::Execute(e)) => is_retryable_sqlx(e),
            RelayerError::Evm(e) => e.is_retryable(),
            RelayerError::Ledger(e) => e.is_retryable(),
            // A node that did not answer may answer the next time.
            RelayerError::Dispatch(_) => true,
            RelayerError::Consortium(_)
            | RelayerError::Deployment(_)
            | RelayerError::Devnet(_)
            | RelayerError::Tls(_) => false,
            RelayerError::Migrate(_)
            | RelayerError::LogFilter(_)
            | RelayerError::Output(_)
            | RelayerError::Usage(_) => false,
        }
    }
}

fn is_retryable_sqlx(error: &sqlx::Error) -> bool {
    matches!(
        error,
        sqlx::Error::Io(_)
            | sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::WorkerCrashed
    )
}
