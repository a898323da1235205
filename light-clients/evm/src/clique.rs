//! Clique (EIP-225) proof-of-authority: seal recovery and the signer snapshot.
//!
//! Clique has no finality of its own: a verified Clique header is one sealed by an
//! authorised signer under the rules below, and the caller decides how many
//! confirmations make it final.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::error::Error;
use crate::header::{Header, EMPTY_OMMERS_HASH};
use crate::types::{keccak256, recover_address, Address, B256};
use crate::votes::GethVotes;

/// Bytes of signer vanity at the start of extraData.
pub const EXTRA_VANITY: usize = 32;
/// Bytes of seal (r ‖ s ‖ v) at the end of extraData.
pub const EXTRA_SEAL: usize = 65;
/// Difficulty of a block sealed by the in-turn signer.
pub const DIFF_IN_TURN: u64 = 2;
/// Difficulty of a block sealed out of turn.
pub const DIFF_NO_TURN: u64 = 1;
const NONCE_AUTH: [u8; 8] = [0xff; 8];
const NONCE_DROP: [u8; 8] = [0; 8];
/// Clique chain parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CliqueConfig {
    /// Blocks between checkpoints, where votes reset and extraData lists the
    /// signers (30000 on the public Clique networks).
    pub epoch: u64,
}

/// The hash a Clique signer signs: keccak256 of the header's RLP with the 65-byte
/// seal removed from extraData.
pub fn seal_hash(header: &Header) -> Result<B256, Error> {
    let extra = &header.extra_data;
    let n = extra.len();
    if n < EXTRA_VANITY + EXTRA_SEAL {
        return Err(Error::ExtraDataTooShort {
            required: EXTRA_VANITY + EXTRA_SEAL,
            found: n,
        });
    }
    Ok(keccak256(
        &header.encode_rlp_with_extra(&extra[..n - EXTRA_SEAL]),
    ))
}

/// Recovers the signer of a Clique header from the seal at the end of extraData.
pub fn recover_signer(header: &Header) -> Result<Address, Error> {
    let digest = seal_hash(header)?;
    let n = header.extra_data.len();
    recover_address(&digest, &header.extra_data[n - EXTRA_SEAL..])
}

/// The signer list a checkpoint header carries between vanity and seal.
pub fn checkpoint_signers(header: &Header) -> Result<Vec<Address>, Error> {
    let extra = &header.extra_data;
    if extra.len() < EXTRA_VANITY + EXTRA_SEAL {
        return Err(Error::ExtraDataTooShort {
            required: EXTRA_VANITY + EXTRA_SEAL,
            found: extra.len(),
        });
    }
    let list = &extra[EXTRA_VANITY..extra.len() - EXTRA_SEAL];
    if list.len() % 20 != 0 {
        return Err(Error::InvalidCliqueSignerList(list.len()));
    }
    Ok(list
        .chunks_exact(20)
        .map(|c| {
            let mut a = [0u8; 20];
            a.copy_from_slice(c);
            Address(a)
        })
        .collect())
}

/// The authorisation state at a block: signers, who signed recently, pending votes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Snapshot {
    pub(crate) epoch: u64,
    /// Sorted, unique, never empty.
    pub(crate) signers: Arc<[Address]>,
    /// Block number -> signer, for the last `signers/2 + 1` blocks.
    pub(crate) recents: BTreeMap<u64, Address>,
    pub(crate) votes: GethVotes,
}

impl Snapshot {
    /// A snapshot with `signers` (sorted, unique, non-empty), no recent signers
    /// and no pending votes.
    ///
    /// Starting from a trusted checkpoint, who signed the blocks just before it
    /// is unknown, so the recent-signer rule starts empty (it can only accept a
    /// signer that the chain would have made wait, never refuse a valid block);
    /// pending votes are empty by definition at an epoch block, and unknown at
    /// any other block.
    pub(crate) fn new(epoch: u64, signers: Arc<[Address]>) -> Result<Self, Error> {
        if epoch == 0 {
            return Err(Error::InvalidConsensusState("Clique epoch is zero"));
        }
        if signers.is_empty() {
            return Err(Error::InvalidConsensusState("Clique signer set is empty"));
        }
        Ok(Snapshot {
            epoch,
            signers,
            recents: BTreeMap::new(),
            votes: GethVotes::default(),
        })
    }

    fn limit(&self) -> u64 {
        self.signers.len() as u64 / 2 + 1
    }

    fn in_turn(&self, number: u64, signer: &Address) -> bool {
        let n = self.signers.len() as u64;
        self.signers
            .binary_search(signer)
            .is_ok_and(|i| number % n == i as u64)
    }

    /// Checks `header` (whose parent is the snapshot's head) and applies it;
    /// returns its signer and the signer set that authorised it.
    pub(crate) fn apply(&mut self, header: &Header) -> Result<(Address, Arc<[Address]>), Error> {
        let number = header.number;
        let checkpoint = number % self.epoch == 0;
        let extra_len = header.extra_data.len();
        if extra_len < EXTRA_VANITY + EXTRA_SEAL {
            return Err(Error::ExtraDataTooShort {
                required: EXTRA_VANITY + EXTRA_SEAL,
                found: extra_len,
            });
        }
        if checkpoint {
            if header.beneficiary != Address::ZERO || header.nonce != NONCE_DROP {
                return Err(Error::InvalidCliqueVote(number));
            }
            let mut listed = checkpoint_signers(header)?;
            listed.sort();
            listed.dedup();
            if listed[..] != self.signers[..] {
                return Err(Error::CliqueCheckpointSignersMismatch(number));
            }
        } else if extra_len != EXTRA_VANITY + EXTRA_SEAL {
            return Err(Error::UnexpectedCliqueSigners);
        }
        if header.nonce != NONCE_AUTH && header.nonce != NONCE_DROP {
            return Err(Error::InvalidCliqueVote(number));
        }
        if header.mix_hash != B256::ZERO {
            return Err(Error::InvalidConsensusState(
                "Clique header has a non-zero mixHash",
            ));
        }
        if header.ommers_hash != EMPTY_OMMERS_HASH {
            return Err(Error::InvalidConsensusState("Clique header has ommers"));
        }

        let signer = recover_signer(header)?;
        if self.signers.binary_search(&signer).is_err() {
            return Err(Error::UnauthorizedSigner(signer));
        }
        let limit = self.limit();
        if self
            .recents
            .iter()
            .any(|(seen, s)| *s == signer && *seen + limit > number)
        {
            return Err(Error::RecentlySigned(signer));
        }
        let expected = if self.in_turn(number, &signer) {
            DIFF_IN_TURN
        } else {
            DIFF_NO_TURN
        };
        if header.difficulty != expected.into() {
            return Err(Error::WrongDifficulty {
                expected,
                found: header.difficulty.to_u64().unwrap_or(u64::MAX),
            });
        }

        // Apply, as go-ethereum's snapshot does.
        let authorised_by = Arc::clone(&self.signers);
        if checkpoint {
            self.votes.clear();
        }
        if number >= limit {
            self.recents.remove(&(number - limit));
        }
        self.recents.insert(number, signer);
        let coinbase = header.beneficiary;
        let mut set = self.signers.to_vec();
        let was_member = set.binary_search(&coinbase).is_ok();
        if self
            .votes
            .apply(&mut set, signer, coinbase, header.nonce == NONCE_AUTH)
        {
            self.signers = set.into();
            if was_member {
                let limit = self.limit();
                if number >= limit {
                    self.recents.remove(&(number - limit));
                }
            }
        }
        if self.signers.is_empty() {
            return Err(Error::InvalidConsensusState(
                "Clique signer set became empty",
            ));
        }
        Ok((signer, authorised_by))
    }
}
