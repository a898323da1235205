//! The network the Inbox takes checkpoints of (its immutable `network`), which a
//! relayer compares with its `consortium.network` before it delivers anything.

use isthmus_protocol::Network;

use crate::destination::contract_error;
use crate::{EvmDestination, EvmError};

impl EvmDestination {
    /// The Inbox's network id.
    pub async fn network(&self) -> Result<Network, EvmError> {
        let id = self
            .inbox()
            .network()
            .call()
            .await
            .map_err(|e| contract_error("network", e))?;
        Ok(Network(id))
    }
}
