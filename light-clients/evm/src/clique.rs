//! Clique (EIP-225) proof-of-authority: seal recovery and the signer snapshot.
//!
//! Clique has no finality of its own: a verified Clique header is one sealed by an
//! authorised signer under the rules below, and the caller decides how many
//! confirmations make it final.

use std::collections::{BTreeMap, BTreeSet};

use crate::error::Error;
use crate::header::Header;
use crate::types::{keccak256, recover_address, Address, B256};

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
/// keccak256(RLP([])): the ommers hash every Clique header must carry.
const EMPTY_OMMERS: B256 = B256([
    0x1d, 0xcc, 0x4d, 0xe8, 0xde, 0xc7, 0x5d, 0x7a, 0xab, 0x85, 0xb5, 0x67, 0xb6, 0xcc, 0xd4, 0x1a,
    0xd3, 0x12, 0x45, 0x1b, 0x94, 0x8a, 0x74, 0x13, 0xf0, 0xa1, 0x42, 0xfd, 0x40, 0xd4, 0x93, 0x47,
]);

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

#[derive(Debug, Clone, PartialEq, Eq)]
struct Vote {
    signer: Address,
    address: Address,
    authorize: bool,
}

/// The authorisation state at a block: signers, who signed recently, pending votes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Snapshot {
    config: CliqueConfig,
    signers: BTreeSet<Address>,
    /// Block number -> signer, for the last `signers/2 + 1` blocks.
    recents: BTreeMap<u64, Address>,
    votes: Vec<Vote>,
    tally: BTreeMap<Address, (bool, usize)>,
}

impl Snapshot {
    /// Starts from a trusted checkpoint header, which must be an epoch block so its
    /// extraData lists the signers. Who signed the blocks just before the
    /// checkpoint is unknown, so the recent-signer rule starts empty; pending
    /// votes are empty by definition at an epoch block.
    pub(crate) fn from_checkpoint(config: CliqueConfig, header: &Header) -> Result<Self, Error> {
        if config.epoch == 0 {
            return Err(Error::InvalidConsensusState("Clique epoch is zero"));
        }
        if header.number % config.epoch != 0 {
            return Err(Error::InvalidConsensusState(
                "Clique checkpoint header is not an epoch block",
            ));
        }
        let signers: BTreeSet<Address> = checkpoint_signers(header)?.into_iter().collect();
        if signers.is_empty() {
            return Err(Error::InvalidConsensusState(
                "Clique checkpoint lists no signers",
            ));
        }
        Ok(Snapshot {
            config,
            signers,
            recents: BTreeMap::new(),
            votes: Vec::new(),
            tally: BTreeMap::new(),
        })
    }

    /// The current signers, sorted.
    pub(crate) fn signers(&self) -> Vec<Address> {
        self.signers.iter().copied().collect()
    }

    fn limit(&self) -> u64 {
        self.signers.len() as u64 / 2 + 1
    }

    fn in_turn(&self, number: u64, signer: &Address) -> bool {
        let n = self.signers.len() as u64;
        self.signers
            .iter()
            .position(|s| s == signer)
            .is_some_and(|i| number % n == i as u64)
    }

    fn cast(&mut self, address: Address, authorize: bool) -> bool {
        if self.signers.contains(&address) == authorize {
            return false;
        }
        self.tally
            .entry(address)
            .and_modify(|t| t.1 += 1)
            .or_insert((authorize, 1));
        true
    }

    fn uncast(&mut self, address: &Address, authorize: bool) {
        if let Some(t) = self.tally.get_mut(address) {
            if t.0 == authorize {
                if t.1 > 1 {
                    t.1 -= 1;
                } else {
                    self.tally.remove(address);
                }
            }
        }
    }

    /// Checks `header` (whose parent is the snapshot's head) and applies it;
    /// returns its signer.
    pub(crate) fn apply(&mut self, header: &Header) -> Result<Address, Error> {
        let number = header.number;
        let checkpoint = number % self.config.epoch == 0;
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
            let listed: BTreeSet<Address> = checkpoint_signers(header)?.into_iter().collect();
            if listed != self.signers {
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
        if header.ommers_hash != EMPTY_OMMERS {
            return Err(Error::InvalidConsensusState("Clique header has ommers"));
        }

        let signer = recover_signer(header)?;
        if !self.signers.contains(&signer) {
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
        if checkpoint {
            self.votes.clear();
            self.tally.clear();
        }
        if number >= limit {
            self.recents.remove(&(number - limit));
        }
        self.recents.insert(number, signer);
        let coinbase = header.beneficiary;
        if let Some(i) = self
            .votes
            .iter()
            .position(|v| v.signer == signer && v.address == coinbase)
        {
            let old = self.votes.remove(i);
            self.uncast(&old.address, old.authorize);
        }
        let authorize = header.nonce == NONCE_AUTH;
        if self.cast(coinbase, authorize) {
            self.votes.push(Vote {
                signer,
                address: coinbase,
                authorize,
            });
        }
        if let Some(&(auth, count)) = self.tally.get(&coinbase) {
            if count > self.signers.len() / 2 {
                if auth {
                    self.signers.insert(coinbase);
                } else {
                    self.signers.remove(&coinbase);
                    let limit = self.limit();
                    if number >= limit {
                        self.recents.remove(&(number - limit));
                    }
                    let dropped: Vec<Vote> = self
                        .votes
                        .iter()
                        .filter(|v| v.signer == coinbase)
                        .cloned()
                        .collect();
                    for v in dropped {
                        self.uncast(&v.address, v.authorize);
                    }
                    self.votes.retain(|v| v.signer != coinbase);
                }
                self.votes.retain(|v| v.address != coinbase);
                self.tally.remove(&coinbase);
            }
        }
        if self.signers.is_empty() {
            return Err(Error::InvalidConsensusState(
                "Clique signer set became empty",
            ));
        }
        Ok(signer)
    }
}
