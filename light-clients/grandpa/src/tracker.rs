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

use alloc::vec::Vec;
use parity_scale_codec::{Decode, Encode};

use crate::justification::RecordedFinality;
use crate::trie::ReadProof;
use crate::{
    AuthorityId, AuthoritySet, BlockNumber, Error, GrandpaConsensusLog, GrandpaJustification,
    Header, LightSyncAuthoritySet, ScheduledChange, VerifiedFinality, VerifiedStorage, H256,
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

    /// The justification that finalized it: its own, or that of a descendant whose
    /// chain of headers links back to it.
    pub fn finality(&self) -> &VerifiedFinality {
        &self.finality
    }

    /// The block hash.
    pub fn hash(&self) -> H256 {
        self.header.hash()
    }

    /// Whether the justification is this block's own (not a descendant's).
    pub fn is_justified(&self) -> bool {
        self.finality.hash() == self.header.hash()
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
    /// The headers between the last finalized block and `header` are not seen (a
    /// change they announce is missed): a follower uses [`Self::import_chain`].
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
        let announced = announcement(&header)?;
        if announced.is_some() && self.pending.is_some() {
            return Err(Error::OverlappingChange { number });
        }
        let (finality, enacted) = self.verify_for(&header, justification)?;
        let finalized = FinalizedHeader::new(header, finality)?;
        self.advance(&finalized, enacted, announced.map(|(c, f)| (c, f, number)));
        Ok(finalized)
    }

    /// Imports a finalized chain: `headers` are the blocks right after the last
    /// finalized one, in order and hash-linked to it, and `justification` finalizes the
    /// last of them (so all of them). Changes announced anywhere in the chain are
    /// followed; a standard change enacted before the last header is refused, since
    /// the enacting block's own justification (by the outgoing set) is mandatory.
    /// Returns every header of the chain as finalized. On error the tracker is
    /// unchanged.
    pub fn import_chain(
        &mut self,
        headers: Vec<Header>,
        justification: &GrandpaJustification,
    ) -> Result<Vec<FinalizedHeader>, Error> {
        let target_number = headers.last().ok_or(Error::EmptyChain)?.number;
        let mut parent = (self.finalized_hash, self.finalized_number);
        let mut hashes = Vec::with_capacity(headers.len());
        let mut announced = None;
        for header in &headers {
            if header.number != parent.1.wrapping_add(1) || header.parent_hash != parent.0 {
                return Err(Error::BrokenLink {
                    number: header.number,
                    expected_parent: parent.0,
                });
            }
            if let Some((change, forced)) = announcement(header)? {
                if announced.is_some() || self.pending.is_some() {
                    return Err(Error::OverlappingChange {
                        number: header.number,
                    });
                }
                announced = Some((change, forced, header.number));
            }
            if header.number < target_number {
                let enacts = match (&self.pending, &announced) {
                    (Some(p), _) => p.forced_base.is_none() && p.effective == header.number,
                    (None, Some((change, None, at))) => {
                        at.saturating_add(change.delay) == header.number
                    }
                    (None, _) => false,
                };
                if enacts {
                    return Err(Error::MandatoryJustification {
                        number: header.number,
                        set_id: self.set.set_id() + 1,
                    });
                }
            }
            let hash = header.hash();
            hashes.push(hash);
            parent = (hash, header.number);
        }
        let target = headers.last().ok_or(Error::EmptyChain)?;
        let (finality, enacted) = self.verify_for(target, justification)?;
        if finality.hash() != parent.0 {
            return Err(Error::TargetMismatch {
                expected_hash: parent.0,
                expected_number: parent.1,
                got_hash: finality.hash(),
                got_number: finality.number(),
            });
        }
        let finalized: Vec<FinalizedHeader> = headers
            .into_iter()
            .map(|header| FinalizedHeader {
                header,
                finality: finality.clone(),
            })
            .collect();
        if let Some(last) = finalized.last() {
            self.advance(last, enacted, announced);
        }
        Ok(finalized)
    }

    /// Imports a finality proof as `grandpa_proveFinality` returns it for the block
    /// after the last finalized one: `next` is that block's header (the proof starts
    /// after it), the proof's headers lead to the justified block.
    pub fn import_proof(
        &mut self,
        next: Header,
        proof: &FinalityProof,
    ) -> Result<Vec<FinalizedHeader>, Error> {
        let justification = GrandpaJustification::decode_exact(&proof.justification)?;
        if justification.commit.target_hash != proof.block {
            return Err(Error::ProofMismatch {
                named: proof.block,
                justified: justification.commit.target_hash,
            });
        }
        let mut chain = Vec::with_capacity(proof.unknown_headers.len() + 1);
        chain.push(next);
        chain.extend(proof.unknown_headers.iter().cloned());
        self.import_chain(chain, &justification)
    }

    /// Headers this tracker finalized before (kept by the caller, e.g. in a database
    /// written with the tracker's state), checked again: they must be consecutive and
    /// hash-linked up to the last finalized block. Each comes with the finality that
    /// covered it when imported.
    pub fn recall(
        &self,
        chain: Vec<(Header, RecordedFinality)>,
    ) -> Result<Vec<FinalizedHeader>, Error> {
        let mut next: Option<(H256, BlockNumber)> = None;
        for (header, _) in chain.iter().rev() {
            let expected = next.unwrap_or((self.finalized_hash, self.finalized_number));
            if header.number != expected.1 || header.hash() != expected.0 {
                return Err(Error::BrokenLink {
                    number: header.number,
                    expected_parent: expected.0,
                });
            }
            next = Some((header.parent_hash, header.number.wrapping_sub(1)));
        }
        Ok(chain
            .into_iter()
            .map(|(header, r)| FinalizedHeader {
                header,
                finality: VerifiedFinality::recorded(r),
            })
            .collect())
    }

    /// The tracker's whole state as SCALE bytes (versioned), to store beside the
    /// cursor it covers; [`Self::decode_state`] reads it back.
    pub fn encode_state(&self) -> Vec<u8> {
        StoredState {
            version: STATE_VERSION,
            set_id: self.set.set_id(),
            authorities: self.set.authorities().to_vec(),
            finalized_hash: self.finalized_hash,
            finalized_number: self.finalized_number,
            pending: self.pending.as_ref().map(|p| StoredPending {
                authorities: p.next.authorities().to_vec(),
                effective: p.effective,
                forced_base: p.forced_base,
            }),
        }
        .encode()
    }

    /// A tracker from [`Self::encode_state`]'s bytes; the sets are validated again.
    pub fn decode_state(bytes: &[u8]) -> Result<Self, Error> {
        let stored: StoredState = crate::header::decode_exact(bytes, "tracker state")?;
        if stored.version != STATE_VERSION {
            return Err(Error::BadState {
                reason: "unknown version",
            });
        }
        let set = AuthoritySet::new(stored.set_id, stored.authorities)?;
        let pending = match stored.pending {
            Some(p) => Some(PendingChange {
                next: AuthoritySet::new(stored.set_id + 1, p.authorities)?,
                effective: p.effective,
                forced_base: p.forced_base,
            }),
            None => None,
        };
        Ok(Self {
            set,
            finalized_hash: stored.finalized_hash,
            finalized_number: stored.finalized_number,
            pending,
        })
    }

    /// Moves to `finalized`: enacts the pending change if `enacted`, then records the
    /// change `announced` (at its block) as pending, or in force at once for a
    /// standard change with no delay announced by the finalized block itself.
    fn advance(
        &mut self,
        finalized: &FinalizedHeader,
        enacted: bool,
        announced: Option<(ScheduledChange, Option<BlockNumber>, BlockNumber)>,
    ) {
        if enacted {
            if let Some(change) = self.pending.take() {
                self.set = change.next;
            }
        }
        if let Some((change, forced_base, at)) = announced {
            // The set was validated when the header was read (see `announcement`).
            if let Ok(next) = AuthoritySet::new(self.set.set_id() + 1, change.next_authorities) {
                let effective = at.saturating_add(change.delay);
                if forced_base.is_none() && effective <= finalized.number() {
                    self.set = next;
                } else {
                    self.pending = Some(PendingChange {
                        next,
                        effective,
                        forced_base,
                    });
                }
            }
        }
        self.finalized_hash = finalized.hash();
        self.finalized_number = finalized.number();
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

/// Version of [`AuthoritySetTracker::encode_state`]'s layout.
const STATE_VERSION: u8 = 1;

#[derive(Encode, Decode)]
struct StoredState {
    version: u8,
    set_id: u64,
    authorities: Vec<(AuthorityId, u64)>,
    finalized_hash: H256,
    finalized_number: BlockNumber,
    pending: Option<StoredPending>,
}

#[derive(Encode, Decode)]
struct StoredPending {
    authorities: Vec<(AuthorityId, u64)>,
    effective: BlockNumber,
    forced_base: Option<BlockNumber>,
}

/// The change a header announces, if any, with its forced-change base; the next set
/// is validated here, so that a header announcing an invalid set is refused before
/// anything is imported.
fn announcement(header: &Header) -> Result<Option<(ScheduledChange, Option<BlockNumber>)>, Error> {
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
            return Err(Error::OverlappingChange {
                number: header.number,
            });
        }
        AuthoritySet::new(0, change.next_authorities.clone())?;
        announced = Some((change, forced_base));
    }
    Ok(announced)
}

/// A finality proof as `grandpa_proveFinality` returns it (SCALE): the justified
/// block's hash, its justification (SCALE bytes) and the headers from the block after
/// the asked one up to the justified block.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub struct FinalityProof {
    /// Hash of the justified block.
    pub block: H256,
    /// SCALE-encoded [`GrandpaJustification`] of that block.
    pub justification: Vec<u8>,
    /// Headers after the asked block, up to and including the justified one.
    pub unknown_headers: Vec<Header>,
}

impl FinalityProof {
    /// Decodes a SCALE-encoded proof; the whole input must be one.
    pub fn decode_exact(bytes: &[u8]) -> Result<Self, Error> {
        crate::header::decode_exact(bytes, "finality proof")
    }
}
