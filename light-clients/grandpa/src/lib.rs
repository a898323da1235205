//! Pure verification of Substrate evidence for Isthmus relayers.
//!
//! A relayer must not trust the RPC node it reads a Substrate ledger from. This crate
//! turns untrusted bytes into verified values, with no IO:
//!
//! - [`header`]: SCALE header codec, blake2-256 hash, digest items and the GRANDPA
//!   consensus logs (`FRNK`) that announce authority-set changes.
//! - [`authorities`]: GRANDPA authority sets (ed25519 keys and weights) and the
//!   persisted authority set found in published light-sync checkpoints.
//! - [`justification`]: GRANDPA justifications, verified against an authority set
//!   (batch ed25519, weights, > 2/3 threshold, vote ancestry) into a
//!   [`VerifiedFinality`] that only this crate can construct.
//! - [`tracker`]: follows the authority set across scheduled and forced changes,
//!   from justifications or `grandpa_proveFinality` proofs of hash-linked chains,
//!   and yields [`FinalizedHeader`]s; its state encodes for storage.
//! - [`trie`]: Substrate base-16 trie read proofs (`state_getReadProof`), layouts V0
//!   and V1, proving a value or its absence against a state root.
//!
//! Block numbers are `u32`, as on Polkadot, Kusama and Westend.
#![no_std]

extern crate alloc;
#[cfg(test)]
extern crate std;

pub mod authorities;
mod error;
pub mod hash;
pub mod header;
pub mod justification;
pub mod tracker;
pub mod trie;

pub use authorities::{AuthorityId, AuthoritySet, LightSyncAuthoritySet};
pub use error::Error;
pub use hash::{blake2_256, H256};
pub use header::{
    ConsensusEngineId, Digest, DigestItem, GrandpaConsensusLog, Header, ScheduledChange,
};
pub use justification::{
    Commit, GrandpaJustification, Precommit, RecordedFinality, SignatureCheck, SignedPrecommit,
    VerifiedFinality,
};
pub use tracker::{AuthoritySetTracker, FinalityProof, FinalizedHeader, PendingChange};
pub use trie::{ReadProof, VerifiedStorage};

/// Block number type of the Substrate ledgers this crate follows.
pub type BlockNumber = u32;
