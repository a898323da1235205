//! Following the GRANDPA authority set along the finalized chain.
//!
//! The tracker starts from a trusted checkpoint (a finalized block and the set that
//! finalizes its descendants, e.g. a published light-sync state) and imports
//! (header, justification) pairs in increasing block order. Each justification must
//! verify against the set in force for its block; changes announced in the digests of
//! imported headers are applied as `sc-consensus-grandpa` applies them:
//!
//! - **Scheduled change** announced at block `N` with `delay`: effective at
//!   `A = N + delay` once `A` is finalized. Block `A` itself is finalized by the old
//!   set; any block after `A` by the new set (`set_id + 1`), so a justification for a
//!   block past `A` may be imported directly.
//! - **Forced change** announced at `N` (with `median_last_finalized = m`): effective
//!   when `A = N + delay` is imported, after which the new set finalizes blocks above
//!   `m`. A justification for a block up to `A` is tried against the old set first,
//!   then the new set; one past `A` against the new set only.
//!
//! What the tracker does not do: it trusts no unfinalized header (it checks no
//! block-production seal), so a change is seen only when the header announcing it is
//! imported with a justification. The runtime announces a change in a block whose
//! justification every node keeps, so a relayer that imports those blocks (as
//! `grandpa_proveFinality` returns them) sees every change. A forced change whose
//! announcing block the old set never finalized (the usual case after a stall) needs
//! a new trusted checkpoint. Skipping a change never makes the tracker accept a
//! forged justification: it only makes later justifications fail to verify.
//! `Pause`, `Resume` and `OnDisabled` logs do not change who signs justifications
//! and are ignored.

use crate::trie::ReadProof;
use crate::{
    AuthoritySet, BlockNumber, Error, GrandpaConsensusLog, GrandpaJustification, Header,
    LightSyncAuthoritySet, VerifiedFinality, VerifiedStorage, H256,
};

/// An authority-set change announced by an imported header and not yet in force.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PendingChange {
    next: AuthoritySet,
    effective: BlockNumber,
    forced_base: Option<BlockNumber>,
}

impl PendingChange {
    /// The set that takes over (its id is the current id + 1).
    pub fn next_set(&self) -> &AuthoritySet {
        &self.next
    }

    /// The block at which the change takes effect (`announcing block + delay`).
    pub fn effective_block(&self) -> BlockNumber {
        self.effective
    }

    /// For a forced change, the block above which the new set finalizes.
    pub fn forced_base(&self) -> Option<BlockNumber> {
        self.forced_base
    }
}

/// A header whose hash a verified justification finalized: its state root can be
/// trusted. Only the tracker constructs it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FinalizedHeader {
    header: Header,
    finality: VerifiedFinality,
}

impl FinalizedHeader {
    /// Pairs a verified finality with the header it finalizes: the header's hash and
    /// number must be the finalized ones.
    pub fn new(header: Header, finality: VerifiedFinality) -> Result<Self, Error> {
        let hash = header.hash();
        if hash != finality.hash() || header.number != finality.number() {
            return Err(Error::TargetMismatch {
                expected_hash: hash,
                expected_number: header.number,
                got_hash: finality.hash(),
                got_number: finality.number(),
            });
        }
        Ok(Self { header, finality })
    }

    /// The header.
    pub fn header(&self) -> &Header {
        &self.header
    }

    /// The finality proof it carries.
    pub fn finality(&self) -> &VerifiedFinality {
        &self.finality
    }

    /// The block hash.
    pub fn hash(&self) -> H256 {
        self.finality.hash()
    }

    /// The block number.
    pub fn number(&self) -> BlockNumber {
        self.header.number
    }

    /// Reads `key` from this block's state through a read proof: the value, or its
    /// proved absence, bound to this block.
    pub fn read_storage(&self, proof: &ReadProof, key: &[u8]) -> Result<VerifiedStorage, Error> {
        let value = proof
            .read(&self.header.state_root, key)?
            .map(<[u8]>::to_vec);
        Ok(VerifiedStorage::new(
            self.hash(),
            self.number(),
            key.to_vec(),
            value,
        ))
    }
}

/// The authority set in force along the finalized chain, and the change pending.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuthoritySetTracker {
    set: AuthoritySet,
    finalized_hash: H256,
    finalized_number: BlockNumber,
    pending: Option<PendingChange>,
}

impl AuthoritySetTracker {
    /// Starts from a trusted checkpoint: `set` finalizes the descendants of the block
    /// `finalized_hash` / `finalized_number`.
    pub fn new(set: AuthoritySet, finalized_hash: H256, finalized_number: BlockNumber) -> Self {
        Self {
            set,
            finalized_hash,
            finalized_number,
            pending: None,
        }
    }

    /// Starts from a published light-sync checkpoint (`finalizedBlockHeader` and
    /// `grandpaAuthoritySet`, SCALE bytes). A checkpoint with pending changes is
    /// refused: resuming one needs the headers that announced them.
    pub fn from_light_sync_state(header: &[u8], authority_set: &[u8]) -> Result<Self, Error> {
        let header = Header::decode_exact(header)?;
        let persisted = LightSyncAuthoritySet::decode_exact(authority_set)?;
        if !persisted.pending_standard_roots.is_empty()
            || !persisted.pending_forced_changes.is_empty()
        {
            return Err(Error::UnsupportedCheckpoint);
        }
        Ok(Self::new(
            persisted.current_set()?,
            header.hash(),
            header.number,
        ))
    }

    /// The set in force for blocks after the last finalized one (a pending change may
    /// replace it, see the module docs).
    pub fn authority_set(&self) -> &AuthoritySet {
        &self.set
    }

    /// The pending change, if any.
    pub fn pending_change(&self) -> Option<&PendingChange> {
        self.pending.as_ref()
    }

    /// Hash and number of the last finalized block.
    pub fn finalized(&self) -> (H256, BlockNumber) {
        (self.finalized_hash, self.finalized_number)
    }

    /// Imports a finalized block: verifies `justification` finalizes `header` under
    /// the set in force for it, applies changes, and returns the finalized header.
    /// On error the tracker is unchanged.
    pub fn import(
        &mut self,
        header: Header,
        justification: &GrandpaJustification,
    ) -> Result<FinalizedHeader, Error> {
        let number = header.number;
        if number <= self.finalized_number {
            return Err(Error::NotNewer {
                number,
                finalized: self.finalized_number,
            });
        }
        let mut announced = None;
        for log in header.grandpa_logs()? {
            let (change, forced_base) = match log {
                GrandpaConsensusLog::ScheduledChange(change) => (change, None),
                GrandpaConsensusLog::ForcedChange {
                    median_last_finalized,
                    change,
                } => (change, Some(median_last_finalized)),
                GrandpaConsensusLog::OnDisabled(_)
                | GrandpaConsensusLog::Pause(_)
                | GrandpaConsensusLog::Resume(_) => continue,
            };
            if announced.is_some() {
                return Err(Error::OverlappingChange { number });
            }
            announced = Some((change, forced_base));
        }

        let (finality, enacted) = self.verify_for(&header, justification)?;
        let mut set = self.set.clone();
        let mut pending = self.pending.clone();
        if enacted {
            if let Some(change) = pending.take() {
                set = change.next;
            }
        }
        if let Some((change, forced_base)) = announced {
            if pending.is_some() {
                return Err(Error::OverlappingChange { number });
            }
            let next = AuthoritySet::new(set.set_id() + 1, change.next_authorities)?;
            let effective = number.saturating_add(change.delay);
            if change.delay == 0 && forced_base.is_none() {
                // Effective at this very block, which is now finalized.
                set = next;
            } else {
                pending = Some(PendingChange {
                    next,
                    effective,
                    forced_base,
                });
            }
        }

        let finalized = FinalizedHeader::new(header, finality)?;
        self.set = set;
        self.pending = pending;
        self.finalized_hash = finalized.hash();
        self.finalized_number = number;
        Ok(finalized)
    }

    /// Verifies against the set in force for `header`; says whether the pending change
    /// is in force once this block is finalized.
    fn verify_for(
        &self,
        header: &Header,
        justification: &GrandpaJustification,
    ) -> Result<(VerifiedFinality, bool), Error> {
        let number = header.number;
        let Some(change) = &self.pending else {
            return Ok((justification.verify_finalizes(header, &self.set)?, false));
        };
        match change.forced_base {
            None if number <= change.effective => {
                let finality = justification.verify_finalizes(header, &self.set)?;
                Ok((finality, number == change.effective))
            }
            None => Ok((justification.verify_finalizes(header, &change.next)?, true)),
            Some(median) => {
                if number <= change.effective {
                    if let Ok(finality) = justification.verify_finalizes(header, &self.set) {
                        return Ok((finality, number == change.effective));
                    }
                }
                if number <= median {
                    return Err(Error::BelowForcedChangeBase { number, median });
                }
                Ok((justification.verify_finalizes(header, &change.next)?, true))
            }
        }
    }
}
