//! IBFT 2.0 and QBFT (Hyperledger Besu) committed-seal verification.
//!
//! extraData is the RLP list `[vanity, validators, vote, round, committedSeals]`.
//! The two protocols differ only in encoding details, which matter because the
//! seals sign a re-encoding of the header:
//!
//! | | IBFT 2.0 | QBFT |
//! |---|---|---|
//! | no vote | empty string `0x80` | empty list `0xc0` |
//! | vote | `[address, 0xff (add) / 0x00 (drop)]` | `[address, 0xff (add) / empty (drop)]` |
//! | round | 4-byte big-endian | canonical scalar |
//! | seals-excluded form | the seals element is omitted | seals = `[]` |
//! | on-chain hash form | round and seals omitted | round = 0, seals = `[]` |
//!
//! A committed seal is an r ‖ s ‖ v signature (v = 0/1) over keccak256 of the
//! header's RLP with the seals-excluded extraData. The block hash (what the next
//! header's parentHash refers to) is keccak256 of the header's RLP with the
//! on-chain form, so that it does not depend on which seals or round were
//! collected. A header is final when at least ceil(2n/3) distinct validators of
//! the current set committed it.

use std::collections::BTreeSet;

use crate::error::Error;
use crate::header::Header;
use crate::rlp::{self, Item};
use crate::types::{keccak256, recover_address, Address, B256};

/// Which Besu BFT protocol a chain runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BftKind {
    /// IBFT 2.0.
    Ibft2,
    /// QBFT.
    Qbft,
}

/// A validator vote carried by a block proposer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BftVote {
    /// The validator to add or remove.
    pub recipient: Address,
    /// `true` to add, `false` to remove.
    pub add: bool,
}

/// Decoded BFT extraData.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BftExtraData {
    /// Vanity bytes (32 on Besu-created blocks).
    pub vanity: Vec<u8>,
    /// Validators of this block, in the order listed.
    pub validators: Vec<Address>,
    /// The proposer's vote, if any.
    pub vote: Option<BftVote>,
    /// The consensus round the block was committed in.
    pub round: u32,
    /// Committed seals (65 bytes each).
    pub seals: Vec<[u8; 65]>,
}

const ADD: u8 = 0xff;
const DROP: u8 = 0x00;

fn bad(reason: &'static str) -> impl Fn(crate::RlpError) -> Error {
    move |_| Error::InvalidBftExtraData(reason)
}

impl BftExtraData {
    /// Decodes extraData of the given protocol. The encoding must be canonical
    /// and exactly the five-element list Besu writes.
    pub fn decode(kind: BftKind, extra: &[u8]) -> Result<Self, Error> {
        let items = rlp::decode_list(extra).map_err(bad("not an RLP list"))?;
        let [vanity, validators, vote, round, seals] = items.as_slice() else {
            return Err(Error::InvalidBftExtraData(
                "extraData list does not have 5 elements",
            ));
        };
        let vanity = vanity.bytes().map_err(bad("vanity is not bytes"))?.to_vec();
        let validators = validators
            .list()
            .map_err(bad("validators is not a list"))?
            .iter()
            .map(|v| v.fixed::<20>().map(Address))
            .collect::<Result<Vec<_>, _>>()
            .map_err(bad("validator is not a 20-byte address"))?;
        let vote = decode_vote(kind, vote)?;
        let round = match kind {
            BftKind::Ibft2 => u32::from_be_bytes(
                round
                    .fixed::<4>()
                    .map_err(bad("IBFT2 round is not 4 bytes"))?,
            ),
            BftKind::Qbft => {
                let r = round.u64().map_err(bad("QBFT round is not a scalar"))?;
                u32::try_from(r).map_err(|_| Error::InvalidBftExtraData("QBFT round overflows"))?
            }
        };
        let seals = seals
            .list()
            .map_err(bad("seals is not a list"))?
            .iter()
            .map(|s| s.fixed::<65>())
            .collect::<Result<Vec<_>, _>>()
            .map_err(bad("seal is not 65 bytes"))?;
        Ok(BftExtraData {
            vanity,
            validators,
            vote,
            round,
            seals,
        })
    }

    /// Encodes as Besu does: `with_round` = false gives the on-chain hash form
    /// (round and seals excluded), `with_seals` = false the committed-seal form.
    pub fn encode(&self, kind: BftKind, with_round: bool, with_seals: bool) -> Vec<u8> {
        let mut p = Vec::with_capacity(64 + 21 * self.validators.len() + 66 * self.seals.len());
        rlp::encode_bytes(&mut p, &self.vanity);
        let mut vals = Vec::with_capacity(21 * self.validators.len());
        for v in &self.validators {
            rlp::encode_bytes(&mut vals, &v.0);
        }
        p.extend_from_slice(&rlp::encode_list(&vals));
        match (&self.vote, kind) {
            (None, BftKind::Ibft2) => p.push(0x80),
            (None, BftKind::Qbft) => p.push(0xc0),
            (Some(v), _) => {
                let mut inner = Vec::with_capacity(23);
                rlp::encode_bytes(&mut inner, &v.recipient.0);
                match (v.add, kind) {
                    (true, _) => rlp::encode_bytes(&mut inner, &[ADD]),
                    (false, BftKind::Ibft2) => rlp::encode_bytes(&mut inner, &[DROP]),
                    (false, BftKind::Qbft) => rlp::encode_bytes(&mut inner, &[]),
                }
                p.extend_from_slice(&rlp::encode_list(&inner));
            }
        }
        let seals = |p: &mut Vec<u8>, list: &[[u8; 65]]| {
            let mut s = Vec::with_capacity(67 * list.len());
            for seal in list {
                rlp::encode_bytes(&mut s, seal);
            }
            p.extend_from_slice(&rlp::encode_list(&s));
        };
        match kind {
            BftKind::Ibft2 => {
                if with_round {
                    rlp::encode_bytes(&mut p, &self.round.to_be_bytes());
                    if with_seals {
                        seals(&mut p, &self.seals);
                    }
                }
            }
            BftKind::Qbft => {
                rlp::encode_u64(&mut p, if with_round { u64::from(self.round) } else { 0 });
                seals(
                    &mut p,
                    if with_round && with_seals {
                        &self.seals
                    } else {
                        &[]
                    },
                );
            }
        }
        rlp::encode_list(&p)
    }
}

fn decode_vote(kind: BftKind, item: &Item<'_>) -> Result<Option<BftVote>, Error> {
    match (kind, item) {
        (BftKind::Ibft2, Item::Bytes([])) | (BftKind::Qbft, Item::List { payload: [], .. }) => {
            Ok(None)
        }
        (_, Item::List { .. }) => {
            let parts = item.list().map_err(bad("vote is not a list"))?;
            let [recipient, ty] = parts.as_slice() else {
                return Err(Error::InvalidBftExtraData("vote does not have 2 elements"));
            };
            let recipient = Address(
                recipient
                    .fixed::<20>()
                    .map_err(bad("vote recipient is not an address"))?,
            );
            let add = match (kind, ty.bytes().map_err(bad("vote type is a list"))?) {
                (_, [ADD]) => true,
                (BftKind::Ibft2, [DROP]) | (BftKind::Qbft, []) => false,
                _ => return Err(Error::InvalidBftExtraData("invalid vote type")),
            };
            Ok(Some(BftVote { recipient, add }))
        }
        _ => Err(Error::InvalidBftExtraData("vote has the wrong form")),
    }
}

/// The digest validators sign as their committed seal for `header`.
pub fn committed_seal_hash(kind: BftKind, header: &Header, extra: &BftExtraData) -> B256 {
    keccak256(&header.encode_rlp_with_extra(&extra.encode(kind, true, false)))
}

/// The on-chain block hash of a BFT header (round and seals excluded). The genesis
/// block is hashed as is.
pub fn bft_block_hash(kind: BftKind, header: &Header) -> Result<B256, Error> {
    if header.number == 0 {
        return Ok(header.hash());
    }
    let extra = BftExtraData::decode(kind, &header.extra_data)?;
    Ok(keccak256(
        &header.encode_rlp_with_extra(&extra.encode(kind, false, false)),
    ))
}

/// Minimum number of distinct committed seals: ceil(2n/3), as Besu computes it.
pub fn quorum(validators: usize) -> usize {
    (2 * validators).div_ceil(3)
}

/// Validator set and vote tally of a BFT chain, as Besu's block-header validator
/// selection keeps them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct BftState {
    kind: BftKind,
    epoch_length: u64,
    validators: BTreeSet<Address>,
    /// (subject, voter) pairs for additions and removals.
    add_votes: BTreeSet<(Address, Address)>,
    remove_votes: BTreeSet<(Address, Address)>,
}

impl BftState {
    /// Starts from a trusted checkpoint header: the validators of the next block
    /// are the checkpoint's validators after its own vote. Votes pending before the
    /// checkpoint are unknown and start empty; a change they would have completed
    /// then shows up as [`Error::ValidatorSetMismatch`] (a refusal, never a wrong
    /// acceptance). Checkpoints at epoch blocks, where Besu resets votes, avoid it.
    pub(crate) fn from_checkpoint(
        kind: BftKind,
        epoch_length: u64,
        header: &Header,
    ) -> Result<Self, Error> {
        if epoch_length == 0 {
            return Err(Error::InvalidConsensusState("BFT epoch length is zero"));
        }
        let extra = BftExtraData::decode(kind, &header.extra_data)?;
        let mut state = BftState {
            kind,
            epoch_length,
            validators: extra.validators.iter().copied().collect(),
            add_votes: BTreeSet::new(),
            remove_votes: BTreeSet::new(),
        };
        if state.validators.is_empty() {
            return Err(Error::InvalidConsensusState(
                "BFT checkpoint lists no validators",
            ));
        }
        if header.number != 0 {
            state.apply_vote(header.number, header.beneficiary, extra.vote);
        }
        Ok(state)
    }

    /// The current validators, sorted.
    pub(crate) fn validators(&self) -> Vec<Address> {
        self.validators.iter().copied().collect()
    }

    fn apply_vote(&mut self, number: u64, proposer: Address, vote: Option<BftVote>) {
        if number % self.epoch_length == 0 {
            self.add_votes.clear();
            self.remove_votes.clear();
        }
        let Some(vote) = vote else { return };
        let key = (vote.recipient, proposer);
        if vote.add {
            self.add_votes.insert(key);
            self.remove_votes.remove(&key);
        } else {
            self.remove_votes.insert(key);
            self.add_votes.remove(&key);
        }
        let limit = self.validators.len() / 2 + 1;
        let count = |set: &BTreeSet<(Address, Address)>| {
            set.iter().filter(|(s, _)| *s == vote.recipient).count()
        };
        if count(&self.add_votes) >= limit {
            self.validators.insert(vote.recipient);
            self.discard_votes_for(&vote.recipient);
        }
        if count(&self.remove_votes) >= limit {
            self.validators.remove(&vote.recipient);
            self.discard_votes_for(&vote.recipient);
            self.add_votes.retain(|(_, voter)| *voter != vote.recipient);
            self.remove_votes
                .retain(|(_, voter)| *voter != vote.recipient);
        }
    }

    fn discard_votes_for(&mut self, subject: &Address) {
        self.add_votes.retain(|(s, _)| s != subject);
        self.remove_votes.retain(|(s, _)| s != subject);
    }

    /// Checks `header`'s committed seals against the current validators, applies
    /// its vote, and returns (block hash, sealing validators).
    pub(crate) fn apply(&mut self, header: &Header) -> Result<(B256, Vec<Address>), Error> {
        let extra = BftExtraData::decode(self.kind, &header.extra_data)?;
        let listed: BTreeSet<Address> = extra.validators.iter().copied().collect();
        if listed != self.validators || listed.len() != extra.validators.len() {
            return Err(Error::ValidatorSetMismatch(header.number));
        }
        if !self.validators.contains(&header.beneficiary) {
            return Err(Error::UnauthorizedSigner(header.beneficiary));
        }
        let digest = committed_seal_hash(self.kind, header, &extra);
        let mut signers = BTreeSet::new();
        for seal in &extra.seals {
            let signer = recover_address(&digest, seal)?;
            if !self.validators.contains(&signer) {
                return Err(Error::UnauthorizedSigner(signer));
            }
            if !signers.insert(signer) {
                return Err(Error::DuplicateSeal(signer));
            }
        }
        let required = quorum(self.validators.len());
        if signers.len() < required {
            return Err(Error::InsufficientSeals {
                required,
                found: signers.len(),
            });
        }
        let hash = keccak256(&header.encode_rlp_with_extra(&extra.encode(self.kind, false, false)));
        self.apply_vote(header.number, header.beneficiary, extra.vote);
        if self.validators.is_empty() {
            return Err(Error::InvalidConsensusState(
                "BFT validator set became empty",
            ));
        }
        Ok((hash, signers.into_iter().collect()))
    }
}
