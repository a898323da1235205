//! BFT committed-seal verification: IBFT 2.0 and QBFT (Hyperledger Besu,
//! GoQuorum) and IBFT 1.0 (GoQuorum's legacy "istanbul").
//!
//! ## IBFT 2.0 and QBFT
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
//! collected. The proposer is the header's coinbase and must be a validator.
//! Votes are in extraData; Besu tallies them per subject and changes the set when
//! more than half of the validators agree; epoch blocks discard pending votes and
//! their own vote is ignored.
//!
//! ## IBFT 1.0 (GoQuorum "istanbul")
//!
//! extraData is 32 bytes of vanity followed by the RLP list
//! `[validators, proposerSeal, committedSeals]`. The block hash is keccak256 of
//! the header's RLP with the committed seals emptied (the proposer seal kept).
//! The proposer seal signs keccak256 of keccak256 of the header's RLP with both
//! seals emptied; its signer is the proposer and must be a validator (the
//! coinbase is not the proposer). Committed seals sign keccak256(block hash ‖
//! 0x02). Votes are Clique's: coinbase is the candidate, nonce `0xff..ff` adds
//! and `0x00..00` drops, one vote per (validator, candidate), a change when more
//! than half of the validators agree, tallies reset at epoch blocks.
//!
//! ## All three
//!
//! A header is final when at least ceil(2n/3) distinct validators of the current
//! set committed it (for IBFT 1.0 this is GoQuorum's rule from `ceil2Nby3Block`;
//! the older 2F+1 rule, which accepts 3 of 5 where ceil(2n/3) needs 4, is not
//! supported: chains before their `ceil2Nby3Block` are refused, never wrongly
//! accepted). Every header must carry the Istanbul mixHash
//! ([`ISTANBUL_DIGEST`]) and difficulty 1, as Besu and GoQuorum require; IBFT
//! 2.0 and IBFT 1.0 headers also carry the empty ommers hash, and IBFT 2.0
//! headers a zero nonce. The validator list a header carries must equal the
//! tracked set (compared as a set: GoQuorum's genesis lists validators unsorted,
//! later blocks sorted).

use std::sync::Arc;

use crate::error::Error;
use crate::header::{Header, EMPTY_OMMERS_HASH};
use crate::rlp::{self, Item};
use crate::types::{keccak256, recover_address, Address, B256, U256};
use crate::votes::{BesuVotes, GethVotes, PendingVote};

/// Which BFT protocol a chain runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BftKind {
    /// IBFT 2.0 (Besu).
    Ibft2,
    /// QBFT (Besu, GoQuorum).
    Qbft,
    /// IBFT 1.0 (GoQuorum "istanbul").
    Ibft1,
}

/// The mixHash every BFT header carries (the ASCII bytes `ctical byzantine
/// fault tolerance`): Besu's `BftHelpers.EXPECTED_MIX_HASH`, GoQuorum's
/// `types.IstanbulDigest`.
pub const ISTANBUL_DIGEST: B256 = B256([
    0x63, 0x74, 0x69, 0x63, 0x61, 0x6c, 0x20, 0x62, 0x79, 0x7a, 0x61, 0x6e, 0x74, 0x69, 0x6e, 0x65,
    0x20, 0x66, 0x61, 0x75, 0x6c, 0x74, 0x20, 0x74, 0x6f, 0x6c, 0x65, 0x72, 0x61, 0x6e, 0x63, 0x65,
]);

/// Bytes of vanity before the RLP list in IBFT 1.0 extraData.
pub const IBFT1_VANITY: usize = 32;

/// GoQuorum's message code of a commit, appended to the block hash before
/// hashing it as the committed-seal digest.
const IBFT1_MSG_COMMIT: u8 = 0x02;
const NONCE_ADD: [u8; 8] = [0xff; 8];
const NONCE_DROP: [u8; 8] = [0; 8];

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
    /// and exactly the five-element list Besu writes. IBFT 1.0 has its own
    /// layout ([`Ibft1ExtraData`]) and is refused here.
    pub fn decode(kind: BftKind, extra: &[u8]) -> Result<Self, Error> {
        if kind == BftKind::Ibft1 {
            return Err(Error::InvalidBftExtraData(
                "IBFT 1.0 extraData is not the IBFT 2.0/QBFT list",
            ));
        }
        let items = rlp::decode_list(extra).map_err(bad("not an RLP list"))?;
        let [vanity, validators, vote, round, seals] = items.as_slice() else {
            return Err(Error::InvalidBftExtraData(
                "extraData list does not have 5 elements",
            ));
        };
        let vanity = vanity.bytes().map_err(bad("vanity is not bytes"))?.to_vec();
        let validators = decode_validators(validators)?;
        let vote = decode_vote(kind, vote)?;
        let round = match kind {
            BftKind::Ibft2 | BftKind::Ibft1 => u32::from_be_bytes(
                round
                    .fixed::<4>()
                    .map_err(bad("IBFT2 round is not 4 bytes"))?,
            ),
            BftKind::Qbft => {
                let r = round.u64().map_err(bad("QBFT round is not a scalar"))?;
                u32::try_from(r).map_err(|_| Error::InvalidBftExtraData("QBFT round overflows"))?
            }
        };
        let seals = decode_seals(seals)?;
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
    /// `BftKind::Ibft1` is encoded as IBFT 2.0 (IBFT 1.0 headers use
    /// [`Ibft1ExtraData`]).
    pub fn encode(&self, kind: BftKind, with_round: bool, with_seals: bool) -> Vec<u8> {
        let mut p = Vec::with_capacity(64 + 21 * self.validators.len() + 66 * self.seals.len());
        rlp::encode_bytes(&mut p, &self.vanity);
        encode_validators(&mut p, &self.validators);
        match (&self.vote, kind) {
            (None, BftKind::Ibft2 | BftKind::Ibft1) => p.push(0x80),
            (None, BftKind::Qbft) => p.push(0xc0),
            (Some(v), _) => {
                let mut inner = Vec::with_capacity(23);
                rlp::encode_bytes(&mut inner, &v.recipient.0);
                match (v.add, kind) {
                    (true, _) => rlp::encode_bytes(&mut inner, &[ADD]),
                    (false, BftKind::Ibft2 | BftKind::Ibft1) => {
                        rlp::encode_bytes(&mut inner, &[DROP])
                    }
                    (false, BftKind::Qbft) => rlp::encode_bytes(&mut inner, &[]),
                }
                p.extend_from_slice(&rlp::encode_list(&inner));
            }
        }
        let seals = encode_seals;
        match kind {
            BftKind::Ibft2 | BftKind::Ibft1 => {
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

/// Decoded IBFT 1.0 extraData: `vanity ‖ RLP([validators, proposerSeal,
/// committedSeals])`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ibft1ExtraData {
    /// The 32 vanity bytes.
    pub vanity: [u8; IBFT1_VANITY],
    /// Validators of this block, in the order listed.
    pub validators: Vec<Address>,
    /// The proposer's seal (65 bytes; empty in the genesis block).
    pub proposer_seal: Vec<u8>,
    /// Committed seals (65 bytes each).
    pub committed_seals: Vec<[u8; 65]>,
}

impl Ibft1ExtraData {
    /// Decodes IBFT 1.0 extraData; the RLP part must be canonical and exactly
    /// the three-element list GoQuorum writes.
    pub fn decode(extra: &[u8]) -> Result<Self, Error> {
        if extra.len() < IBFT1_VANITY {
            return Err(Error::ExtraDataTooShort {
                required: IBFT1_VANITY,
                found: extra.len(),
            });
        }
        let mut vanity = [0u8; IBFT1_VANITY];
        vanity.copy_from_slice(&extra[..IBFT1_VANITY]);
        let items = rlp::decode_list(&extra[IBFT1_VANITY..]).map_err(bad("not an RLP list"))?;
        let [validators, proposer_seal, seals] = items.as_slice() else {
            return Err(Error::InvalidBftExtraData(
                "IBFT 1.0 extraData list does not have 3 elements",
            ));
        };
        Ok(Ibft1ExtraData {
            vanity,
            validators: decode_validators(validators)?,
            proposer_seal: proposer_seal
                .bytes()
                .map_err(bad("proposer seal is not bytes"))?
                .to_vec(),
            committed_seals: decode_seals(seals)?,
        })
    }

    /// Encodes as GoQuorum does; the hashing forms drop the proposer seal
    /// (`with_proposer_seal` = false) and the committed seals.
    pub fn encode(&self, with_proposer_seal: bool, with_committed_seals: bool) -> Vec<u8> {
        let mut p =
            Vec::with_capacity(80 + 21 * self.validators.len() + 67 * self.committed_seals.len());
        encode_validators(&mut p, &self.validators);
        rlp::encode_bytes(
            &mut p,
            if with_proposer_seal {
                &self.proposer_seal
            } else {
                &[]
            },
        );
        encode_seals(
            &mut p,
            if with_committed_seals {
                &self.committed_seals
            } else {
                &[]
            },
        );
        let mut out = self.vanity.to_vec();
        out.extend_from_slice(&rlp::encode_list(&p));
        out
    }
}

/// The digest an IBFT 1.0 proposer signs: keccak256 of keccak256 of the header's
/// RLP with both seals emptied (GoQuorum hashes `sigHash` once more before
/// recovering).
pub fn ibft1_proposer_seal_hash(header: &Header, extra: &Ibft1ExtraData) -> B256 {
    keccak256(&keccak256(&header.encode_rlp_with_extra(&extra.encode(false, false))).0)
}

/// The digest IBFT 1.0 validators sign as their committed seal:
/// keccak256(block hash ‖ 0x02).
pub fn ibft1_committed_seal_hash(block_hash: &B256) -> B256 {
    let mut data = [0u8; 33];
    data[..32].copy_from_slice(&block_hash.0);
    data[32] = IBFT1_MSG_COMMIT;
    keccak256(&data)
}

fn decode_validators(item: &Item<'_>) -> Result<Vec<Address>, Error> {
    item.list()
        .map_err(bad("validators is not a list"))?
        .iter()
        .map(|v| v.fixed::<20>().map(Address))
        .collect::<Result<Vec<_>, _>>()
        .map_err(bad("validator is not a 20-byte address"))
}

fn decode_seals(item: &Item<'_>) -> Result<Vec<[u8; 65]>, Error> {
    item.list()
        .map_err(bad("seals is not a list"))?
        .iter()
        .map(|s| s.fixed::<65>())
        .collect::<Result<Vec<_>, _>>()
        .map_err(bad("seal is not 65 bytes"))
}

fn encode_validators(p: &mut Vec<u8>, validators: &[Address]) {
    let mut vals = Vec::with_capacity(21 * validators.len());
    for v in validators {
        rlp::encode_bytes(&mut vals, &v.0);
    }
    p.extend_from_slice(&rlp::encode_list(&vals));
}

fn encode_seals(p: &mut Vec<u8>, list: &[[u8; 65]]) {
    let mut s = Vec::with_capacity(67 * list.len());
    for seal in list {
        rlp::encode_bytes(&mut s, seal);
    }
    p.extend_from_slice(&rlp::encode_list(&s));
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

/// The digest validators sign as their committed seal for `header` (IBFT 2.0 and
/// QBFT; for IBFT 1.0 see [`ibft1_committed_seal_hash`]).
pub fn committed_seal_hash(kind: BftKind, header: &Header, extra: &BftExtraData) -> B256 {
    keccak256(&header.encode_rlp_with_extra(&extra.encode(kind, true, false)))
}

/// The on-chain block hash of a BFT header (IBFT 2.0 and QBFT: round and seals
/// excluded; IBFT 1.0: committed seals excluded). The genesis block is hashed as
/// is.
pub fn bft_block_hash(kind: BftKind, header: &Header) -> Result<B256, Error> {
    if header.number == 0 {
        return Ok(header.hash());
    }
    let extra = match kind {
        BftKind::Ibft1 => Ibft1ExtraData::decode(&header.extra_data)?.encode(true, false),
        _ => BftExtraData::decode(kind, &header.extra_data)?.encode(kind, false, false),
    };
    Ok(keccak256(&header.encode_rlp_with_extra(&extra)))
}

/// Minimum number of distinct committed seals: ceil(2n/3), as Besu computes it
/// (and GoQuorum from `ceil2Nby3Block`).
pub fn quorum(validators: usize) -> usize {
    (2 * validators).div_ceil(3)
}

/// What the seal rules need from one BFT header, read and recovered once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenedHeader {
    /// The on-chain block hash.
    pub hash: B256,
    /// The validators the header lists, in its order.
    pub listed: Vec<Address>,
    /// The proposer: the coinbase (IBFT 2.0, QBFT) or the proposer seal's signer
    /// (IBFT 1.0).
    pub proposer: Address,
    /// The proposer's vote, if any.
    pub vote: Option<BftVote>,
    /// The distinct committing validators recovered from the seals, in seal
    /// order.
    pub committers: Vec<Address>,
}

/// Reads `header` under `kind`'s rules: checks the constant fields, recovers the
/// proposer (IBFT 1.0) and the committed seals. Membership and quorum are checked
/// by [`verify_seals`].
pub fn open_header(kind: BftKind, header: &Header) -> Result<OpenedHeader, Error> {
    let constant = |ok: bool, field: &'static str| {
        if ok {
            Ok(())
        } else {
            Err(Error::BftConstantField {
                number: header.number,
                field,
            })
        }
    };
    constant(header.mix_hash == ISTANBUL_DIGEST, "mixHash")?;
    constant(header.difficulty == U256::from(1), "difficulty")?;
    if matches!(kind, BftKind::Ibft2 | BftKind::Ibft1) {
        constant(header.ommers_hash == EMPTY_OMMERS_HASH, "sha3Uncles")?;
    }
    if kind == BftKind::Ibft2 {
        constant(header.nonce == NONCE_DROP, "nonce")?;
    }
    let (hash, listed, proposer, vote, digest, seals) = match kind {
        BftKind::Ibft1 => {
            let extra = Ibft1ExtraData::decode(&header.extra_data)?;
            let hash = keccak256(&header.encode_rlp_with_extra(&extra.encode(true, false)));
            let proposer = recover_address(
                &ibft1_proposer_seal_hash(header, &extra),
                &extra.proposer_seal,
            )?;
            let add = match header.nonce {
                NONCE_ADD => true,
                NONCE_DROP => false,
                _ => return Err(Error::InvalidVoteNonce(header.number)),
            };
            let vote = Some(BftVote {
                recipient: header.beneficiary,
                add,
            });
            (
                hash,
                extra.validators,
                proposer,
                vote,
                ibft1_committed_seal_hash(&hash),
                extra.committed_seals,
            )
        }
        _ => {
            let extra = BftExtraData::decode(kind, &header.extra_data)?;
            let hash = keccak256(&header.encode_rlp_with_extra(&extra.encode(kind, false, false)));
            let digest = committed_seal_hash(kind, header, &extra);
            (
                hash,
                extra.validators,
                header.beneficiary,
                extra.vote,
                digest,
                extra.seals,
            )
        }
    };
    let mut committers = Vec::with_capacity(seals.len());
    for seal in &seals {
        let signer = recover_address(&digest, seal)?;
        if committers.contains(&signer) {
            return Err(Error::DuplicateSeal(signer));
        }
        committers.push(signer);
    }
    Ok(OpenedHeader {
        hash,
        listed,
        proposer,
        vote,
        committers,
    })
}

/// Checks one header's seals against a validator set (any order): the proposer
/// and every committer are validators, and at least [`quorum`] of them
/// committed. Returns the committers, sorted. This is the whole seal check of
/// [`crate::EvmLightClient`] for one header, without the chain: use it to check a
/// header against a set learned elsewhere.
pub fn verify_seals(
    kind: BftKind,
    header: &Header,
    validators: &[Address],
) -> Result<Vec<Address>, Error> {
    let mut set = validators.to_vec();
    set.sort();
    set.dedup();
    let opened = open_header(kind, header)?;
    check_seals(&set, &opened)
}

/// Membership and quorum of an opened header against `set` (sorted, unique).
fn check_seals(set: &[Address], opened: &OpenedHeader) -> Result<Vec<Address>, Error> {
    if set.binary_search(&opened.proposer).is_err() {
        return Err(Error::UnauthorizedSigner(opened.proposer));
    }
    for c in &opened.committers {
        if set.binary_search(c).is_err() {
            return Err(Error::UnauthorizedSigner(*c));
        }
    }
    let required = quorum(set.len());
    if opened.committers.len() < required {
        return Err(Error::InsufficientSeals {
            required,
            found: opened.committers.len(),
        });
    }
    let mut signers = opened.committers.clone();
    signers.sort();
    Ok(signers)
}

/// The validators a BFT header lists (for the genesis and checkpoints).
pub fn listed_validators(kind: BftKind, header: &Header) -> Result<Vec<Address>, Error> {
    Ok(match kind {
        BftKind::Ibft1 => Ibft1ExtraData::decode(&header.extra_data)?.validators,
        _ => BftExtraData::decode(kind, &header.extra_data)?.validators,
    })
}

/// Sorted, duplicate-free copy of a listed validator set; `None` if the list
/// repeats an address.
pub(crate) fn as_set(listed: &[Address]) -> Option<Vec<Address>> {
    let mut set = listed.to_vec();
    set.sort();
    set.dedup();
    (set.len() == listed.len()).then_some(set)
}

/// Pending votes, in the tally each protocol keeps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Tally {
    /// IBFT 2.0 and QBFT (Besu's `VoteTally`).
    Besu(BesuVotes),
    /// IBFT 1.0 (GoQuorum's snapshot, Clique's rules).
    Geth(GethVotes),
}

/// A header applied to a [`BftState`]: its block hash, the committing
/// validators (sorted), and the set they were checked against.
pub(crate) type Applied = (B256, Vec<Address>, Arc<[Address]>);

/// Validator set and vote tally of a BFT chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct BftState {
    pub(crate) kind: BftKind,
    pub(crate) epoch_length: u64,
    /// Sorted, unique, never empty.
    pub(crate) validators: Arc<[Address]>,
    pub(crate) tally: Tally,
}

impl BftState {
    /// A state with `validators` (sorted, unique, non-empty) and no pending
    /// votes.
    pub(crate) fn new(
        kind: BftKind,
        epoch_length: u64,
        validators: Arc<[Address]>,
    ) -> Result<Self, Error> {
        if epoch_length == 0 {
            return Err(Error::InvalidConsensusState("BFT epoch length is zero"));
        }
        if validators.is_empty() {
            return Err(Error::InvalidConsensusState("BFT validator set is empty"));
        }
        let tally = match kind {
            BftKind::Ibft1 => Tally::Geth(GethVotes::default()),
            _ => Tally::Besu(BesuVotes::default()),
        };
        Ok(BftState {
            kind,
            epoch_length,
            validators,
            tally,
        })
    }

    /// Pending votes, for the persisted state.
    pub(crate) fn pending_votes(&self) -> Vec<PendingVote> {
        match &self.tally {
            Tally::Besu(v) => v.votes().to_vec(),
            Tally::Geth(v) => v.votes().to_vec(),
        }
    }

    /// Applies the vote of block `number` by `proposer`, as the protocol's tally
    /// does, including the epoch reset.
    pub(crate) fn apply_vote(&mut self, number: u64, proposer: Address, vote: Option<BftVote>) {
        let epoch = number % self.epoch_length == 0;
        let mut set: Vec<Address> = self.validators.to_vec();
        let changed = match &mut self.tally {
            Tally::Besu(t) => {
                if epoch {
                    // Besu: epoch blocks discard pending votes and carry none.
                    t.clear();
                    false
                } else {
                    vote.is_some_and(|v| t.apply(&mut set, proposer, v.recipient, v.add))
                }
            }
            Tally::Geth(t) => {
                if epoch {
                    // GoQuorum: reset, then count the epoch block's own vote.
                    t.clear();
                }
                vote.is_some_and(|v| t.apply(&mut set, proposer, v.recipient, v.add))
            }
        };
        if changed {
            self.validators = set.into();
        }
    }

    /// Checks `header` against the current validators (listed set, proposer,
    /// committed seals, quorum), applies its vote, and returns (block hash,
    /// sealing validators sorted, the set that sealed it).
    pub(crate) fn apply(&mut self, header: &Header) -> Result<Applied, Error> {
        let opened = open_header(self.kind, header)?;
        if as_set(&opened.listed).as_deref() != Some(&self.validators[..]) {
            return Err(Error::ValidatorSetMismatch(header.number));
        }
        let signers = check_seals(&self.validators, &opened)?;
        let sealed_by = Arc::clone(&self.validators);
        self.apply_vote(header.number, opened.proposer, opened.vote);
        if self.validators.is_empty() {
            return Err(Error::InvalidConsensusState(
                "BFT validator set became empty",
            ));
        }
        Ok((opened.hash, signers, sealed_by))
    }
}
