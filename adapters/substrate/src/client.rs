//! One connection to a Substrate node, shared by the source and destination roles.

use subxt::config::RpcConfigFor;
use subxt::{OnlineClient, PolkadotConfig};
use subxt_rpcs::methods::LegacyRpcMethods;
use subxt_rpcs::RpcClient;

use crate::Error;

/// The subxt configuration of the ledgers Isthmus talks to: `AccountId32`,
/// `MultiAddress<AccountId32, ()>`, `MultiSignature`, blake2-256 hashes, the standard
/// transaction extensions (the dev runtime's set is a subset subxt knows).
pub type ChainConfig = PolkadotConfig;

/// How long one call to the node may take.
pub const RPC_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// How long connecting to a node may take before [`SubstrateClient::connect`] fails.
pub const CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// Block hash type of [`ChainConfig`].
pub type BlockHash = subxt::config::HashFor<ChainConfig>;

/// A node connection: subxt's client for metadata-driven encoding and decoding, and
/// the plain RPC methods for headers, storage and read proofs.
#[derive(Clone)]
pub struct SubstrateClient {
    pub(crate) api: OnlineClient<ChainConfig>,
    pub(crate) rpc: LegacyRpcMethods<RpcConfigFor<ChainConfig>>,
}

impl SubstrateClient {
    /// Connects to `url` (`ws://` or `wss://`; plain `ws://` is accepted because
    /// relayers often reach their own node over a private network or loopback).
    ///
    /// The connection comes back by itself: when the node drops it (a restart, a
    /// reset), it is reopened with a backoff of 100 ms doubling to 5 s, for as long
    /// as it takes; calls made meanwhile fail or wait, and subxt renews its
    /// subscriptions. Each call is bounded by [`RPC_TIMEOUT`]. A node that cannot be
    /// reached at all within [`CONNECT_TIMEOUT`] fails the connect.
    pub async fn connect(url: &str) -> Result<Self, Error> {
        use subxt_rpcs::client::reconnecting_rpc_client::{
            ExponentialBackoff, RpcClient as Reconnecting,
        };
        let connecting = Reconnecting::builder()
            .retry_policy(
                ExponentialBackoff::from_millis(100).max_delay(std::time::Duration::from_secs(5)),
            )
            .request_timeout(RPC_TIMEOUT)
            .connection_timeout(RPC_TIMEOUT)
            .build(url);
        let reconnecting = tokio::time::timeout(CONNECT_TIMEOUT, connecting)
            .await
            .map_err(|_| {
                Error::Rpc(subxt_rpcs::Error::Client(
                    format!(
                        "no connection to the node within {} s",
                        CONNECT_TIMEOUT.as_secs()
                    )
                    .into(),
                ))
            })?
            .map_err(|e| Error::Rpc(subxt_rpcs::Error::Client(Box::new(e))))?;
        let rpc_client = RpcClient::new(reconnecting);
        let api = OnlineClient::<ChainConfig>::from_rpc_client(rpc_client.clone()).await?;
        Ok(Self {
            api,
            rpc: LegacyRpcMethods::new(rpc_client),
        })
    }

    /// The hash of block `number` on the node's chain, if it has it.
    pub async fn block_hash(&self, number: u32) -> Result<Option<[u8; 32]>, Error> {
        let hash = self
            .rpc
            .chain_get_block_hash(Some(u64::from(number).into()))
            .await?;
        Ok(hash.map(|h| h.0))
    }

    /// The SCALE bytes of the header of block `hash` (what the light client decodes
    /// and hashes; the node's JSON is not trusted beyond giving us these bytes).
    pub async fn header_bytes(&self, hash: [u8; 32]) -> Result<Vec<u8>, Error> {
        use parity_scale_codec::Encode;
        let header = self
            .rpc
            .chain_get_header(Some(BlockHash::from(hash)))
            .await?
            .ok_or_else(|| Error::UnknownBlock(format!("0x{}", hex::encode(hash))))?;
        Ok(header.encode())
    }

    /// Reads a raw storage value at block `hash` (unproven: for the destination's own
    /// bookkeeping, never for what a relayer attests).
    pub async fn storage(
        &self,
        key: &[u8],
        hash: Option<[u8; 32]>,
    ) -> Result<Option<Vec<u8>>, Error> {
        let value = self
            .rpc
            .state_get_storage(key, hash.map(BlockHash::from))
            .await?;
        Ok(value)
    }

    /// The number of block `hash`.
    pub async fn block_number(&self, hash: [u8; 32]) -> Result<u32, Error> {
        let header = self
            .rpc
            .chain_get_header(Some(BlockHash::from(hash)))
            .await?
            .ok_or_else(|| Error::UnknownBlock(format!("0x{}", hex::encode(hash))))?;
        u32::try_from(header.number).map_err(|_| Error::Malformed {
            what: "block number",
            reason: format!("{} does not fit in u32", header.number),
        })
    }

    /// The node's finalized head `(number, hash)`.
    pub async fn finalized_head(&self) -> Result<(u32, [u8; 32]), Error> {
        let hash = self.rpc.chain_get_finalized_head().await?;
        let header = self
            .rpc
            .chain_get_header(Some(hash))
            .await?
            .ok_or_else(|| Error::UnknownBlock(format!("{hash:?}")))?;
        let number = u32::try_from(header.number).map_err(|_| Error::Malformed {
            what: "block number",
            reason: format!("{} does not fit in u32", header.number),
        })?;
        Ok((number, hash.0))
    }
}
