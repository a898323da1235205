//! The client's state as a stored value, and resuming from it.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::bft::{self, BftKind, BftState, Tally};
use crate::clique::Snapshot;
use crate::config::ConsensusConfig;
use crate::error::Error;
use crate::votes::{BesuVotes, GethVotes, PendingVote};
use crate::{Address, ConsensusState, EvmLightClient, FinalityMode, TrustedCheckpoint};

/// The version of [`ClientState`] this build writes and reads.
pub const CLIENT_STATE_VERSION: u32 = 1;

/// A Clique signer and the block it signed, for the recent-signer rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecentSigner {
    /// The block number.
    pub number: u64,
    /// Its signer.
    pub signer: Address,
}

/// Everything an [`EvmLightClient`] needs to continue exactly where it stood,
/// as a JSON-friendly value (hashes and addresses as `0x` hex strings). Persisted
/// (for example as JSONB beside the relayer's cursor): fields may be added under
/// a new `version`, never renamed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientState {
    /// [`CLIENT_STATE_VERSION`] when written.
    pub version: u32,
    /// The last verified block.
    pub head: TrustedCheckpoint,
    /// The protocol that verifies the block after the head.
    pub protocol: FinalityMode,
    /// Its epoch length.
    pub epoch: u64,
    /// The validator (Clique: signer) set, sorted; empty for the finalized-tag
    /// mode.
    pub validators: Vec<Address>,
    /// Pending votes, in the order they were cast.
    pub votes: Vec<PendingVote>,
    /// Clique's recent signers, by block number; empty for other protocols.
    pub recents: Vec<RecentSigner>,
}

pub(crate) fn capture(client: &EvmLightClient) -> ClientState {
    let (validators, votes, recents) = match &client.state {
        ConsensusState::FinalizedTag => (Vec::new(), Vec::new(), Vec::new()),
        ConsensusState::Clique(s) => (
            s.signers.to_vec(),
            s.votes.votes().to_vec(),
            s.recents
                .iter()
                .map(|(number, signer)| RecentSigner {
                    number: *number,
                    signer: *signer,
                })
                .collect(),
        ),
        ConsensusState::Bft(s) => (s.validators.to_vec(), s.pending_votes(), Vec::new()),
    };
    ClientState {
        version: CLIENT_STATE_VERSION,
        head: client.head,
        protocol: client.rule.protocol,
        epoch: client.rule.epoch,
        validators,
        votes,
        recents,
    }
}

fn inconsistent(reason: &'static str) -> Error {
    Error::InvalidConsensusState(reason)
}

/// Checks the votes against the set: one vote per (voter, subject), voters are
/// members, and no subject has the votes that would already have changed the
/// set. `geth` adds go-ethereum's rule that only membership-changing votes are
/// kept.
fn check_votes(set: &[Address], votes: &[PendingVote], geth: bool) -> Result<(), Error> {
    let mut pairs = BTreeMap::new();
    for v in votes {
        if pairs.insert((v.voter, v.subject), v.add).is_some() {
            return Err(inconsistent("two votes by one voter on one subject"));
        }
        if set.binary_search(&v.voter).is_err() {
            return Err(inconsistent("a vote by a non-member"));
        }
        let member = set.binary_search(&v.subject).is_ok();
        if geth && member == v.add {
            return Err(inconsistent("a vote that does not change membership"));
        }
        let same = votes
            .iter()
            .filter(|w| w.subject == v.subject && w.add == v.add)
            .count();
        // Both tallies apply a change at more than n/2 votes (Besu: n/2 + 1).
        if same > set.len() / 2 {
            return Err(inconsistent("a vote tally that has already passed"));
        }
    }
    Ok(())
}

pub(crate) fn restore(config: &ConsensusConfig, s: ClientState) -> Result<EvmLightClient, Error> {
    if s.version != CLIENT_STATE_VERSION {
        return Err(Error::UnsupportedStateVersion {
            found: s.version,
            supported: CLIENT_STATE_VERSION,
        });
    }
    let next = s.head.number.saturating_add(1);
    let rule = *config.rule_at(next).ok_or(Error::NoRuleForBlock(next))?;
    let epoch_matters = rule.protocol != FinalityMode::FinalizedTag;
    if rule.protocol != s.protocol || (epoch_matters && rule.epoch != s.epoch) {
        return Err(Error::StateProtocolMismatch {
            next,
            state: s.protocol,
            state_epoch: s.epoch,
            config: rule.protocol,
            config_epoch: rule.epoch,
        });
    }
    if s.protocol != FinalityMode::Clique && !s.recents.is_empty() {
        return Err(inconsistent("recent signers outside Clique"));
    }
    let state = if s.protocol == FinalityMode::FinalizedTag {
        if !s.validators.is_empty() || !s.votes.is_empty() {
            return Err(inconsistent(
                "validators or votes in the finalized-tag mode",
            ));
        }
        ConsensusState::FinalizedTag
    } else {
        let set = bft::as_set(&s.validators)
            .filter(|set| *set == s.validators)
            .ok_or(inconsistent("validators are not sorted and unique"))?;
        let validators: Arc<[Address]> = set.into();
        match s.protocol.bft_kind() {
            Some(kind) => {
                let geth = kind == BftKind::Ibft1;
                check_votes(&validators, &s.votes, geth)?;
                let mut state = BftState::new(kind, rule.epoch, validators)?;
                state.tally = if geth {
                    Tally::Geth(GethVotes::from_votes(s.votes))
                } else {
                    Tally::Besu(BesuVotes::from_votes(s.votes))
                };
                ConsensusState::Bft(state)
            }
            None => {
                check_votes(&validators, &s.votes, true)?;
                let mut snap = Snapshot::new(rule.epoch, validators)?;
                for r in &s.recents {
                    if r.number > s.head.number {
                        return Err(inconsistent("a recent signer after the head"));
                    }
                    if snap.recents.insert(r.number, r.signer).is_some() {
                        return Err(inconsistent("two recent signers of one block"));
                    }
                }
                snap.votes = GethVotes::from_votes(s.votes);
                ConsensusState::Clique(snap)
            }
        }
    };
    Ok(EvmLightClient {
        config: config.clone(),
        head: s.head,
        rule,
        state,
    })
}
