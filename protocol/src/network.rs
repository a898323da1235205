//! The network a deployment belongs to.
//!
//! One consortium's endpoints (every Inbox, every pallet) and members share one
//! [`Network`] id, fixed when the endpoints are deployed. Checkpoint digests bind it
//! ([`crate::Checkpoint::digest`]), so signatures made for one network are worthless
//! on another: a staging network that reuses ledger ids, outbox addresses and member
//! keys cannot replay production's checkpoints, nor production staging's.
//!
//! The id is 32 bytes chosen by the consortium; [`Network::named`] derives one from a
//! name that says what the network is (`docs/protocol.md`, "Networks").

use core::fmt;
use core::str::FromStr;

use crate::{keccak256, HexError};

/// A consortium network's id.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Network(pub [u8; 32]);

impl Network {
    /// The id named `name`: `keccak256(name)`.
    pub fn named(name: &str) -> Self {
        Self(keccak256(name.as_bytes()))
    }

    /// The raw 32 bytes.
    pub const fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Display for Network {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        crate::fmt_hex(&self.0, f)
    }
}

impl fmt::Debug for Network {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Network({self})")
    }
}

impl FromStr for Network {
    type Err = HexError;

    /// `0x` and 64 hex digits.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        crate::parse_hex::<32>(s).map(Self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_id_reads_back_from_its_display() {
        let net = Network::named("isthmus devnet");
        assert_eq!(net.to_string().parse::<Network>(), Ok(net));
        assert_ne!(net, Network::named("isthmus staging"));
        assert!("0x12".parse::<Network>().is_err());
    }
}
