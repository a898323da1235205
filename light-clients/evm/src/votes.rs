//! Pending validator votes and the two tallies that count them: Besu's (IBFT 2.0,
//! QBFT) and go-ethereum's (Clique, GoQuorum IBFT 1.0).

use serde::{Deserialize, Serialize};

use crate::types::Address;

/// One pending vote: `voter` proposed to add (`add`) or remove `subject`.
/// Persisted in [`crate::ClientState`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct PendingVote {
    /// The validator (signer) that cast the vote.
    pub voter: Address,
    /// The address voted on.
    pub subject: Address,
    /// `true` to add, `false` to remove.
    pub add: bool,
}

/// Besu's `VoteTally`: the latest vote of each (voter, subject); a subject is
/// added (removed) once at least n/2 + 1 validators voted to add (remove) it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct BesuVotes {
    votes: Vec<PendingVote>,
}

impl BesuVotes {
    pub(crate) fn from_votes(votes: Vec<PendingVote>) -> Self {
        BesuVotes { votes }
    }

    pub(crate) fn votes(&self) -> &[PendingVote] {
        &self.votes
    }

    pub(crate) fn clear(&mut self) {
        self.votes.clear();
    }

    /// Records a vote and applies its outcome to `set` (sorted); returns whether
    /// the set changed.
    pub(crate) fn apply(
        &mut self,
        set: &mut Vec<Address>,
        voter: Address,
        subject: Address,
        add: bool,
    ) -> bool {
        match self
            .votes
            .iter_mut()
            .find(|v| v.voter == voter && v.subject == subject)
        {
            Some(v) => v.add = add,
            None => self.votes.push(PendingVote {
                voter,
                subject,
                add,
            }),
        }
        let limit = set.len() / 2 + 1;
        let count = |add: bool| {
            self.votes
                .iter()
                .filter(|v| v.subject == subject && v.add == add)
                .count()
        };
        if count(true) >= limit {
            if let Err(i) = set.binary_search(&subject) {
                set.insert(i, subject);
            }
            self.votes.retain(|v| v.subject != subject);
            return true;
        }
        if count(false) >= limit {
            if let Ok(i) = set.binary_search(&subject) {
                set.remove(i);
            }
            self.votes
                .retain(|v| v.subject != subject && v.voter != subject);
            return true;
        }
        false
    }
}

/// go-ethereum's snapshot tally (Clique, GoQuorum IBFT 1.0): a vote counts only
/// if meaningful (add a non-member, remove a member), each voter has one vote
/// per subject, and more than n/2 votes change the set. A removed member's own
/// votes are discarded.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct GethVotes {
    votes: Vec<PendingVote>,
}

impl GethVotes {
    pub(crate) fn from_votes(votes: Vec<PendingVote>) -> Self {
        GethVotes { votes }
    }

    pub(crate) fn votes(&self) -> &[PendingVote] {
        &self.votes
    }

    pub(crate) fn clear(&mut self) {
        self.votes.clear();
    }

    /// Records `voter`'s vote on `subject` and applies its outcome to `set`
    /// (sorted); returns whether the set changed.
    pub(crate) fn apply(
        &mut self,
        set: &mut Vec<Address>,
        voter: Address,
        subject: Address,
        add: bool,
    ) -> bool {
        // Discard the voter's previous vote on this subject.
        if let Some(i) = self
            .votes
            .iter()
            .position(|v| v.voter == voter && v.subject == subject)
        {
            self.votes.remove(i);
        }
        let member = set.binary_search(&subject);
        if member.is_ok() != add {
            self.votes.push(PendingVote {
                voter,
                subject,
                add,
            });
        }
        // Every vote on `subject` points the same way (towards changing its
        // membership), so counting them is the tally.
        let tally = self.votes.iter().filter(|v| v.subject == subject).count();
        if tally <= set.len() / 2 {
            return false;
        }
        // The tally's direction is the one that changes membership.
        match member {
            Ok(i) => {
                set.remove(i);
                self.votes.retain(|v| v.voter != subject);
            }
            Err(i) => set.insert(i, subject),
        }
        self.votes.retain(|v| v.subject != subject);
        true
    }
}
