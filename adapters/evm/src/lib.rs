//! Isthmus chain IO for EVM ledgers, through ethers.
//!
//! This crate is the only place that talks JSON-RPC to an EVM ledger. It does no
//! verification of its own: what it fetches (headers, `eth_getProof` responses, logs)
//! is evidence for `isthmus-light-client-evm`, and what it submits was verified and
//! attested upstream.
//!
//! - [`contracts`]: typed bindings of the Solidity endpoints (`onchain/evm`).
//! - [`source`]: the source role: finalized range scans of the Outbox, reorg
//!   detection by hash linkage, headers and storage proofs of the commitment.
//! - [`destination`]: the destination role: `processBatch` submission with nonce and
//!   fee management, confirmation at finality, replay checks.
//! - [`devnet`]: starting a local anvil and deploying the endpoints, for the demo and
//!   the tests.
//! - [`rpc`]: JSON-RPC over several endpoints with failover and per-endpoint
//!   observation.
//! - [`error`]: [`EvmError`] and whether to retry.

pub mod contracts;
mod delivered;
pub mod destination;
pub mod devnet;
pub mod error;
pub mod holds;
mod network;
pub mod route_control;
pub mod rpc;
pub mod signer;
pub mod signer_sets;
pub mod source;

pub use destination::{DeliveryOutcome, EvmDestination, Unfit};
pub use error::EvmError;
pub use isthmus_protocol::SignerSetUpdate;
pub use isthmus_protocol::{Batch, DeliveryRef, MessageOutcome, SeenDelivery};
pub use rpc::{failover_provider, Attempt, Failover, RpcObserver};
pub use signer::KeyWallet;
pub use source::{BlockRef, EvmSource, ObservedMessage, OutboxProof};

use ethers::types::{Address, H256};
use isthmus_protocol::Address32;

/// The protocol's 32-byte form of an EVM address.
pub fn address32(address: Address) -> Address32 {
    Address32::from_evm(address.0)
}

/// Storage slot of the Outbox's Merkle root (`Outbox.ROOT_SLOT`, part of the protocol).
pub const OUTBOX_ROOT_SLOT: u64 = 0;
/// Storage slot of the Outbox's message count (`Outbox.COUNT_SLOT`).
pub const OUTBOX_COUNT_SLOT: u64 = 33;

/// The storage key of a slot number, as `eth_getProof` takes it.
pub fn slot_key(slot: u64) -> H256 {
    H256::from_low_u64_be(slot)
}

/// How long one JSON-RPC call to an EVM node may take. Past it the call fails with
/// a retryable error: a node that stops answering shows as errors and as
/// `isthmus_rpc_errors_total`, never as a relayer that waits forever.
pub const RPC_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// A JSON-RPC provider for the node at `url` whose every call gives up after
/// `timeout`.
pub fn http_provider(
    url: &str,
    timeout: std::time::Duration,
) -> Result<ethers::providers::Provider<ethers::providers::Http>, EvmError> {
    let parsed = reqwest::Url::parse(url)
        .map_err(|e| EvmError::Config(format!("RPC URL `{url}` is not usable: {e}")))?;
    let client = reqwest::Client::builder()
        .timeout(timeout)
        .build()
        .map_err(|e| EvmError::Config(format!("HTTP client for `{url}`: {e}")))?;
    Ok(ethers::providers::Provider::new(
        ethers::providers::Http::new_with_client(parsed, client),
    ))
}

/// A client on the node at `url` that signs with `secret` for `chain_id` (the
/// submitter of deliveries, the sender of `isthmus send`, the devnet deployer).
pub fn signing_client(
    url: &str,
    chain_id: u64,
    secret: &[u8; 32],
) -> Result<
    std::sync::Arc<
        ethers::middleware::SignerMiddleware<
            ethers::providers::Provider<ethers::providers::Http>,
            ethers::signers::LocalWallet,
        >,
    >,
    EvmError,
> {
    use ethers::signers::Signer;
    let provider = http_provider(url, RPC_TIMEOUT)?.interval(std::time::Duration::from_millis(50));
    let wallet = ethers::signers::LocalWallet::from_bytes(secret)
        .map_err(|_| EvmError::Config("the signing key is not a valid secp256k1 secret".into()))?
        .with_chain_id(chain_id);
    Ok(std::sync::Arc::new(
        ethers::middleware::SignerMiddleware::new(provider, wallet),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ethers::providers::Middleware;

    /// A node that accepts the connection and never answers: the call fails, as a
    /// retryable error, soon after the timeout.
    #[tokio::test]
    async fn a_node_that_never_answers_times_out() {
        let listener =
            std::net::TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("bind: {e}"));
        let url = format!(
            "http://{}",
            listener.local_addr().unwrap_or_else(|e| panic!("{e}"))
        );
        // Accepts and holds every connection, answering nothing (a stopped node's
        // kernel still accepts).
        std::thread::spawn(move || {
            let mut open = Vec::new();
            while let Ok((socket, _)) = listener.accept() {
                open.push(socket);
            }
        });
        let provider = http_provider(&url, std::time::Duration::from_millis(300))
            .unwrap_or_else(|e| panic!("provider: {e}"));
        let answer = tokio::time::timeout(
            std::time::Duration::from_secs(30),
            provider.get_block_number(),
        )
        .await
        .unwrap_or_else(|_| panic!("the call did not give up on its own"));
        let error = EvmError::from_provider(
            "eth_blockNumber",
            answer
                .err()
                .unwrap_or_else(|| panic!("a silent node answered")),
        );
        assert!(error.is_retryable(), "{error}");
    }
}
