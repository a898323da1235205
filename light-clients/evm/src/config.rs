//! The consensus schedule: which protocol verifies which blocks.

use serde::{Deserialize, Serialize};

use crate::error::{ConfigError, Error};
use crate::FinalityMode;

/// One protocol in force from `from_block` until the next rule's `from_block`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ConsensusRule {
    /// The first block the rule verifies.
    pub from_block: u64,
    /// The protocol.
    pub protocol: FinalityMode,
    /// Blocks between epoch blocks, where pending votes reset (Besu's and
    /// GoQuorum's `epochlength`, Clique's `epoch`). Ignored by
    /// [`FinalityMode::FinalizedTag`].
    pub epoch: u64,
}

/// A ledger's consensus schedule, parsed once from configuration: a network may
/// switch protocol at a block (GoQuorum's IBFT 1.0 -> QBFT migration at the QBFT
/// `startBlock`, Besu's IBFT 2.0 -> QBFT migration).
///
/// At a transition the validator set carries over (the first header of the new
/// protocol lists it in the new format and must equal it) and pending votes are
/// dropped. Transitions between Clique and a BFT protocol, and the finalized-tag
/// mode combined with anything, are refused by [`ConsensusConfig::validate`].
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ConsensusConfig {
    /// Rules in strictly increasing `from_block` order; the first must start at
    /// or before the trusted checkpoint.
    pub schedule: Vec<ConsensusRule>,
}

impl ConsensusConfig {
    /// One protocol from block 0 on.
    pub fn single(protocol: FinalityMode, epoch: u64) -> Self {
        ConsensusConfig {
            schedule: vec![ConsensusRule {
                from_block: 0,
                protocol,
                epoch,
            }],
        }
    }

    /// Checks the schedule: not empty, strictly increasing `from_block`, no
    /// consensus rule with epoch 0, no finalized-tag rule beside another rule,
    /// no transition between Clique and a BFT protocol.
    pub fn validate(&self) -> Result<(), Error> {
        let bad = |e| Err(Error::InvalidConfig(e));
        let Some(first) = self.schedule.first() else {
            return bad(ConfigError::Empty);
        };
        let tagged = self
            .schedule
            .iter()
            .any(|r| r.protocol == FinalityMode::FinalizedTag);
        if tagged && self.schedule.len() > 1 {
            return bad(ConfigError::FinalizedTagMixed);
        }
        for r in &self.schedule {
            if r.epoch == 0 && r.protocol != FinalityMode::FinalizedTag {
                return bad(ConfigError::ZeroEpoch(r.from_block));
            }
        }
        let mut previous = first;
        for r in &self.schedule[1..] {
            if r.from_block <= previous.from_block {
                return bad(ConfigError::Unsorted {
                    previous: previous.from_block,
                    next: r.from_block,
                });
            }
            let clique = |p: FinalityMode| p == FinalityMode::Clique;
            if clique(r.protocol) != clique(previous.protocol) {
                return bad(ConfigError::CliqueTransition(r.from_block));
            }
            previous = r;
        }
        Ok(())
    }

    /// The rule in force at block `number`: the last rule starting at or before
    /// it (the schedule is assumed valid).
    pub fn rule_at(&self, number: u64) -> Option<&ConsensusRule> {
        self.schedule.iter().rev().find(|r| r.from_block <= number)
    }
}
