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

pub use crate::failover::RPC_TIMEOUT;

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
    raw: RpcClient,
}

impl SubstrateClient {
    /// Connects to `url` (`ws://` or `wss://`; plain `ws://` is accepted because
    /// relayers often reach their own node over a private network or loopback).
    pub async fn connect(url: &str) -> Result<Self, Error> {
        Self::connect_any(&[url.to_owned()], None).await
    }

    /// Connects to the nodes at `urls`, by preference, with failover between them
    /// ([`crate::failover`]): each call bounded by [`RPC_TIMEOUT`], a dropped
    /// connection reopened by itself, every attempt reported to `observer`. Fails
    /// when no node answers within [`CONNECT_TIMEOUT`].
    pub async fn connect_any(
        urls: &[String],
        observer: Option<std::sync::Arc<dyn isthmus_endpoints::RpcObserver>>,
    ) -> Result<Self, Error> {
        let rpc_client = RpcClient::new(crate::failover::FailoverRpc::new(urls, observer)?);
        let api = tokio::time::timeout(
            CONNECT_TIMEOUT,
            OnlineClient::<ChainConfig>::from_rpc_client(rpc_client.clone()),
        )
        .await
        .map_err(|_| {
            Error::Rpc(subxt_rpcs::Error::Client(
                format!("no node answered within {} s", CONNECT_TIMEOUT.as_secs()).into(),
            ))
        })??;
        Ok(Self {
            api,
            rpc: LegacyRpcMethods::new(rpc_client.clone()),
            raw: rpc_client,
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

    /// `grandpa_proveFinality(number)`: the node's SCALE-encoded finality proof for
    /// block `number` (a justification of that block or a later one, with the headers
    /// after `number` up to it), or `None` when the node has none to give.
    pub async fn prove_finality(&self, number: u32) -> Result<Option<Vec<u8>>, Error> {
        let mut params = subxt_rpcs::client::RpcParams::new();
        params
            .push(number)
            .map_err(|e| Error::Rpc(subxt_rpcs::Error::Client(e.to_string().into())))?;
        let proof: Option<String> = self.raw.request("grandpa_proveFinality", params).await?;
        proof
            .map(|hex_proof| {
                hex::decode(hex_proof.trim_start_matches("0x")).map_err(|e| Error::Malformed {
                    what: "finality proof",
                    reason: e.to_string(),
                })
            })
            .transpose()
    }

    /// `grandpa_subscribeJustifications`: the SCALE bytes of each justification the
    /// node's voters produce from now on.
    pub async fn subscribe_justifications(
        &self,
    ) -> Result<impl futures::Stream<Item = Result<Vec<u8>, Error>> + Send + 'static, Error> {
        use futures::StreamExt;
        let subscription = self
            .raw
            .subscribe::<String>(
                "grandpa_subscribeJustifications",
                subxt_rpcs::client::RpcParams::new(),
                "grandpa_unsubscribeJustifications",
            )
            .await?;
        Ok(subscription.map(|item| {
            let hex_bytes = item?;
            hex::decode(hex_bytes.trim_start_matches("0x")).map_err(|e| Error::Malformed {
                what: "justification",
                reason: e.to_string(),
            })
        }))
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
