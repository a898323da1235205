//! GRANDPA justifications and their verification against an authority set.
//!
//! Rules (those of `sc-consensus-grandpa`'s `GrandpaJustification::verify` and
//! `finality-grandpa`'s commit validation, made explicit):
//!
//! 1. Every precommit is signed by a member of the set; an unknown signer refuses the
//!    justification (it has no business being there, and checking it costs work).
//! 2. Each signature is ed25519 (ZIP-215 rules, as Substrate's host functions) over
//!    `SCALE(Message::Precommit(precommit)) ‖ round (u64 LE) ‖ set_id (u64 LE)`;
//!    any invalid signature refuses the justification.
//! 3. A voter's weight counts once. A voter may appear twice only with two *different*
//!    votes (an equivocation, which `finality-grandpa` keeps in commits); an exact
//!    repeat or a third vote is refused, since no honest encoder emits one.
//! 4. Each precommit targets the commit target or a descendant of it, proved by the
//!    `votes_ancestries` headers (hash-linked, numbers consecutive). Every ancestry
//!    header must be used, and none twice.
//! 5. The distinct voters' weight reaches `total - (total - 1) / 3` (> 2/3).

use alloc::collections::{BTreeMap, BTreeSet};
use alloc::vec::Vec;
use blake2::digest::consts::U64;
use blake2::{Blake2b, Digest as _};
use core::iter::once;
use curve25519_dalek::constants::ED25519_BASEPOINT_POINT;
use curve25519_dalek::edwards::{CompressedEdwardsY, EdwardsPoint};
use curve25519_dalek::scalar::Scalar;
use curve25519_dalek::traits::{IsIdentity, VartimeMultiscalarMul};
use ed25519_zebra::{Signature, VerificationKey};
use parity_scale_codec::{Decode, Encode};
use rand_core::RngCore;
use sha2::Sha512;

use crate::header::decode_exact;
use crate::{AuthorityId, AuthoritySet, BlockNumber, Error, Header, H256};

/// A vote for a block: the block it finalizes (with its ancestors).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Encode, Decode)]
pub struct Precommit {
    /// Hash of the voted block.
    pub target_hash: H256,
    /// Its number.
    pub target_number: BlockNumber,
}

/// A precommit with its voter's signature.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub struct SignedPrecommit {
    /// The vote.
    pub precommit: Precommit,
    /// ed25519 signature over the vote, round and set id.
    pub signature: [u8; 64],
    /// The voter.
    pub id: AuthorityId,
}

/// The commit of a GRANDPA round: the finalized block and the precommits for it.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub struct Commit {
    /// Hash of the finalized block.
    pub target_hash: H256,
    /// Its number.
    pub target_number: BlockNumber,
    /// The precommits.
    pub precommits: Vec<SignedPrecommit>,
}

/// A GRANDPA justification as the ledger encodes it (unverified data).
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub struct GrandpaJustification {
    /// The voting round.
    pub round: u64,
    /// The commit.
    pub commit: Commit,
    /// Headers linking precommit targets back to the commit target.
    pub votes_ancestries: Vec<Header>,
}

/// How signatures are checked. Both accept exactly the same justifications (ZIP-215
/// makes batch and single verification agree); batch is faster.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum SignatureCheck {
    /// One multi-scalar multiplication for all signatures.
    #[default]
    Batch,
    /// One verification per signature.
    EachSignature,
}

/// Proof that a block was finalized by an authority set: only
/// [`GrandpaJustification::verify`] constructs it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifiedFinality {
    hash: H256,
    number: BlockNumber,
    set_id: u64,
    round: u64,
    signed_weight: u64,
}

impl VerifiedFinality {
    /// Hash of the finalized block.
    pub fn hash(&self) -> H256 {
        self.hash
    }

    /// Number of the finalized block.
    pub fn number(&self) -> BlockNumber {
        self.number
    }

    /// The authority set that finalized it.
    pub fn set_id(&self) -> u64 {
        self.set_id
    }

    /// The GRANDPA round.
    pub fn round(&self) -> u64 {
        self.round
    }

    /// Weight of the distinct voters whose precommits were verified.
    pub fn signed_weight(&self) -> u64 {
        self.signed_weight
    }

    /// What to store of it beside the headers it finalized, for
    /// [`crate::AuthoritySetTracker::recall`].
    pub fn record(&self) -> RecordedFinality {
        RecordedFinality {
            hash: self.hash,
            number: self.number,
            set_id: self.set_id,
            round: self.round,
            signed_weight: self.signed_weight,
        }
    }

    /// A finality recorded when it was verified; only the tracker's `recall`, which
    /// checks the recalled headers against its own state, builds one.
    pub(crate) fn recorded(r: RecordedFinality) -> Self {
        Self {
            hash: r.hash,
            number: r.number,
            set_id: r.set_id,
            round: r.round,
            signed_weight: r.signed_weight,
        }
    }
}

/// A [`VerifiedFinality`] as stored beside the headers it finalized (plain data).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Encode, Decode)]
pub struct RecordedFinality {
    /// Hash of the justified block.
    pub hash: H256,
    /// Its number.
    pub number: BlockNumber,
    /// The set that signed it.
    pub set_id: u64,
    /// The round.
    pub round: u64,
    /// The weight of its voters.
    pub signed_weight: u64,
}

/// The bytes a voter signs for a precommit:
/// `SCALE(Message::Precommit(precommit)) ‖ round ‖ set_id` (`Message` variant index 1).
pub fn precommit_signing_payload(precommit: &Precommit, round: u64, set_id: u64) -> [u8; 53] {
    let mut payload = [0u8; 53];
    payload[0] = 1;
    payload[1..33].copy_from_slice(&precommit.target_hash.0);
    payload[33..37].copy_from_slice(&precommit.target_number.to_le_bytes());
    payload[37..45].copy_from_slice(&round.to_le_bytes());
    payload[45..53].copy_from_slice(&set_id.to_le_bytes());
    payload
}

impl GrandpaJustification {
    /// Decodes a SCALE-encoded justification; the whole input must be one.
    pub fn decode_exact(bytes: &[u8]) -> Result<Self, Error> {
        decode_exact(bytes, "GRANDPA justification")
    }

    /// Verifies the justification against `set` with batch signature verification.
    pub fn verify(&self, set: &AuthoritySet) -> Result<VerifiedFinality, Error> {
        self.verify_with(set, SignatureCheck::Batch)
    }

    /// Verifies the justification against `set` (rules in the module docs). Cheap
    /// structural checks and the weight threshold come before any signature work.
    pub fn verify_with(
        &self,
        set: &AuthoritySet,
        check: SignatureCheck,
    ) -> Result<VerifiedFinality, Error> {
        let commit = &self.commit;
        let base = Precommit {
            target_hash: commit.target_hash,
            target_number: commit.target_number,
        };

        let mut ancestry: BTreeMap<H256, &Header> = BTreeMap::new();
        for header in &self.votes_ancestries {
            let hash = header.hash();
            if ancestry.insert(hash, header).is_some() {
                return Err(Error::UnusedAncestry { hash });
            }
        }

        // Rule 3: votes per voter; weight of distinct voters.
        let mut votes: BTreeMap<AuthorityId, Vec<Precommit>> = BTreeMap::new();
        let mut signed_weight = 0u64;
        // Ancestry headers proved to descend from the base (rule 4).
        let mut visited: BTreeSet<H256> = BTreeSet::new();
        for (index, signed) in commit.precommits.iter().enumerate() {
            let weight = set.weight_of(&signed.id).ok_or(Error::UnknownVoter {
                index,
                id: signed.id,
                set_id: set.set_id(),
            })?;
            let cast = votes.entry(signed.id).or_default();
            if cast.contains(&signed.precommit) || cast.len() >= 2 {
                return Err(Error::DuplicatePrecommit {
                    index,
                    id: signed.id,
                });
            }
            if cast.is_empty() {
                // Cannot overflow: the set's total weight fits in u64.
                signed_weight += weight;
            }
            cast.push(signed.precommit);
            if !descends(&signed.precommit, &base, &ancestry, &mut visited) {
                return Err(Error::PrecommitNotDescendant { index });
            }
        }
        if let Some(unused) = ancestry.keys().find(|hash| !visited.contains(hash)) {
            return Err(Error::UnusedAncestry { hash: *unused });
        }
        let threshold = set.threshold();
        if signed_weight < threshold {
            return Err(Error::InsufficientWeight {
                signed: signed_weight,
                threshold,
            });
        }

        let payloads: Vec<[u8; 53]> = commit
            .precommits
            .iter()
            .map(|signed| precommit_signing_payload(&signed.precommit, self.round, set.set_id()))
            .collect();
        match check {
            SignatureCheck::Batch => self.check_batch(set, &payloads)?,
            SignatureCheck::EachSignature => self.check_each(&payloads)?,
        }

        Ok(VerifiedFinality {
            hash: commit.target_hash,
            number: commit.target_number,
            set_id: set.set_id(),
            round: self.round,
            signed_weight,
        })
    }

    /// Verifies the justification and that it finalizes exactly `header`.
    pub fn verify_finalizes(
        &self,
        header: &Header,
        set: &AuthoritySet,
    ) -> Result<VerifiedFinality, Error> {
        let expected_hash = header.hash();
        if self.commit.target_hash != expected_hash || self.commit.target_number != header.number {
            return Err(Error::TargetMismatch {
                expected_hash,
                expected_number: header.number,
                got_hash: self.commit.target_hash,
                got_number: self.commit.target_number,
            });
        }
        self.verify(set)
    }

    fn check_each(&self, payloads: &[[u8; 53]]) -> Result<(), Error> {
        for (index, (signed, payload)) in self.commit.precommits.iter().zip(payloads).enumerate() {
            let valid = VerificationKey::try_from(signed.id.0)
                .and_then(|key| key.verify(&Signature::from_bytes(&signed.signature), payload));
            if valid.is_err() {
                return Err(Error::InvalidSignature { index });
            }
        }
        Ok(())
    }

    /// One multi-scalar multiplication for every signature, with the set's keys
    /// decompressed beforehand: `[8](−(Σ zᵢsᵢ)B + Σ zᵢRᵢ + Σ zᵢkᵢAᵢ) = 0`, with
    /// `kᵢ = SHA-512(Rᵢ ‖ Aᵢ ‖ Mᵢ)` over the encodings as given and random 128-bit
    /// `zᵢ`: the cofactored ZIP-215 batch equation, so it accepts exactly what
    /// [`Self::check_each`] (`ed25519-zebra`) accepts. A signature with a
    /// non-canonical `s`, an `R` that is no point or a key that is none is refused
    /// through `check_each`, which names it.
    fn check_batch(&self, set: &AuthoritySet, payloads: &[[u8; 53]]) -> Result<(), Error> {
        let n = self.commit.precommits.len();
        let mut transcript = Blake2b::<U64>::new();
        transcript.update(b"isthmus/grandpa/batch-verification/v2");
        let mut hrams = Vec::with_capacity(n);
        let mut ss = Vec::with_capacity(n);
        let mut rs = Vec::with_capacity(n);
        let mut keys = Vec::with_capacity(n);
        for (signed, payload) in self.commit.precommits.iter().zip(payloads) {
            let (r_bytes, s_bytes) = signed.signature.split_at(32);
            let mut s_array = [0u8; 32];
            s_array.copy_from_slice(s_bytes);
            let mut r_array = [0u8; 32];
            r_array.copy_from_slice(r_bytes);
            let parts = (
                set.point_of(&signed.id),
                CompressedEdwardsY(r_array).decompress(),
                Option::<Scalar>::from(Scalar::from_canonical_bytes(s_array)),
            );
            let (Some(key), Some(r), Some(s)) = parts else {
                self.check_each(payloads)?;
                return Err(Error::InvalidSignature { index: 0 });
            };
            let hram: [u8; 64] = Sha512::new()
                .chain_update(r_bytes)
                .chain_update(signed.id.0)
                .chain_update(payload)
                .finalize()
                .into();
            transcript.update(hram);
            transcript.update(s_bytes);
            hrams.push(Scalar::from_bytes_mod_order_wide(&hram));
            ss.push(s);
            rs.push(r);
            keys.push(*key);
        }
        let mut rng = TranscriptRng::new(transcript.finalize().into());
        let zs: Vec<Scalar> = (0..n)
            .map(|_| {
                let mut z = [0u8; 16];
                rng.fill_bytes(&mut z);
                Scalar::from(u128::from_le_bytes(z))
            })
            .collect();
        let b_coefficient: Scalar = zs.iter().zip(&ss).map(|(z, s)| z * s).sum();
        let zks = zs.iter().zip(&hrams).map(|(z, k)| z * k);
        let check = EdwardsPoint::vartime_multiscalar_mul(
            once(-b_coefficient).chain(zs.iter().copied()).chain(zks),
            once(ED25519_BASEPOINT_POINT).chain(rs).chain(keys),
        );
        if check.mul_by_cofactor().is_identity() {
            return Ok(());
        }
        // Name the culprit; this costs a second pass only on invalid input.
        self.check_each(payloads)?;
        // Batch and single verification agree under ZIP-215, so this is unreachable
        // for a correct library; refuse rather than accept on a disagreement.
        Err(Error::InvalidSignature { index: 0 })
    }
}

/// Whether `vote` is `base` or a descendant of it through `ancestry`; records the
/// ancestry headers walked. A header already proved to descend from the base ends the
/// walk early, so the total work is bounded by precommits + ancestry headers.
fn descends(
    vote: &Precommit,
    base: &Precommit,
    ancestry: &BTreeMap<H256, &Header>,
    visited: &mut BTreeSet<H256>,
) -> bool {
    let (mut hash, mut number) = (vote.target_hash, vote.target_number);
    let mut walked = Vec::new();
    loop {
        if hash == base.target_hash {
            if number != base.target_number {
                return false;
            }
            break;
        }
        if visited.contains(&hash) {
            if ancestry.get(&hash).map(|h| h.number) != Some(number) {
                return false;
            }
            break;
        }
        if number <= base.target_number {
            return false;
        }
        let Some(header) = ancestry.get(&hash) else {
            return false;
        };
        if header.number != number {
            return false;
        }
        walked.push(hash);
        hash = header.parent_hash;
        number -= 1;
    }
    visited.extend(walked);
    true
}

/// The randomness of batch verification, derived from a hash of every (key,
/// signature, message) in the batch.
///
/// Batch verification is sound when the signer of an invalid signature cannot predict
/// the random coefficients; deriving them from a hash of the whole batch gives that
/// (the approach of `ed25519-dalek`'s deterministic batch verification) and keeps this
/// crate free of an OS entropy source, so it also runs on-chain.
struct TranscriptRng {
    seed: [u8; 64],
    counter: u64,
    block: [u8; 64],
    used: usize,
}

impl TranscriptRng {
    fn new(seed: [u8; 64]) -> Self {
        Self {
            seed,
            counter: 0,
            block: [0; 64],
            used: 64,
        }
    }

    fn refill(&mut self) {
        let mut hasher = Blake2b::<U64>::new();
        hasher.update(self.seed);
        hasher.update(self.counter.to_le_bytes());
        self.block = hasher.finalize().into();
        self.counter += 1;
        self.used = 0;
    }
}

impl rand_core::RngCore for TranscriptRng {
    fn next_u32(&mut self) -> u32 {
        let mut bytes = [0; 4];
        self.fill_bytes(&mut bytes);
        u32::from_le_bytes(bytes)
    }

    fn next_u64(&mut self) -> u64 {
        let mut bytes = [0; 8];
        self.fill_bytes(&mut bytes);
        u64::from_le_bytes(bytes)
    }

    fn fill_bytes(&mut self, dest: &mut [u8]) {
        for byte in dest {
            if self.used == self.block.len() {
                self.refill();
            }
            *byte = self.block[self.used];
            self.used += 1;
        }
    }

    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand_core::Error> {
        self.fill_bytes(dest);
        Ok(())
    }
}

impl rand_core::CryptoRng for TranscriptRng {}
