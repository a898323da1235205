//! The network the pallet takes checkpoints of: its `Network` constant, which a
//! relayer compares with its `consortium.network` before it delivers anything.

use isthmus_protocol::Network;

use crate::destination::Destination;
use crate::{keys, Error};

impl Destination {
    /// The pallet's network id, from the runtime's metadata at the node's best block.
    pub async fn network(&self) -> Result<Network, Error> {
        let at = self.client().api.at_current_block().await?;
        let id = at
            .constants()
            .entry(subxt::dynamic::constant::<[u8; 32]>(
                keys::PALLET,
                "Network",
            ))
            .map_err(|e| Error::Malformed {
                what: "the pallet's Network constant",
                reason: e.to_string(),
            })?;
        Ok(Network(id))
    }
}
