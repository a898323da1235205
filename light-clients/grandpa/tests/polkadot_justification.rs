//! The real Polkadot justification for block 4,635,975 (round 6971, set 450).
//!
//! The fixture does not carry Polkadot's authority list of set 450 (297 validators of
//! weight 1); only the 199 signers are known. The tests build the set from those 199
//! keys plus 98 other distinct keys. That is a sound stand-in: the verdict depends on
//! the set only through (a) membership and weight of the signers, which are real
//! members of weight 1, and (b) the total weight, which is 297 as on Polkadot, so the
//! threshold is the real 199. The 98 stand-ins sign nothing, so they add no weight.

mod common;

use ed25519_zebra::SigningKey;
use isthmus_light_client_grandpa::{
    AuthorityId, AuthoritySet, Error, GrandpaJustification, SignatureCheck,
};
use parity_scale_codec::Encode;

const FILE: &str = "polkadot-grandpa-justification-4635975.scale";
const SET_ID: u64 = 450;

fn justification() -> GrandpaJustification {
    GrandpaJustification::decode_exact(&common::substrate_fixture(FILE))
        .expect("the fixture decodes")
}

/// `extra` distinct keys that are not among the signers.
fn stand_ins(extra: usize) -> Vec<AuthorityId> {
    (0..extra)
        .map(|i| {
            let mut seed = [0x5a; 32];
            seed[..8].copy_from_slice(&(i as u64).to_le_bytes());
            AuthorityId(ed25519_zebra::VerificationKeyBytes::from(&SigningKey::from(seed)).into())
        })
        .collect()
}

/// The 199 signers plus stand-ins, up to `total` authorities of weight 1.
fn authority_set(j: &GrandpaJustification, set_id: u64, total: usize) -> AuthoritySet {
    let mut ids: Vec<AuthorityId> = j.commit.precommits.iter().map(|p| p.id).collect();
    let extra = total - ids.len();
    ids.extend(stand_ins(extra));
    AuthoritySet::new(set_id, ids.into_iter().map(|id| (id, 1)).collect())
        .expect("199 signers and the stand-ins are distinct")
}

#[test]
fn decodes_with_the_documented_shape() {
    let bytes = common::substrate_fixture(FILE);
    let j = GrandpaJustification::decode_exact(&bytes).expect("decodes");
    assert_eq!(j.round, 6971);
    assert_eq!(j.commit.target_number, 4_635_975);
    assert!(j.commit.target_hash.to_string().starts_with("0x2a82146e"));
    assert!(j.commit.target_hash.to_string().ends_with("7022"));
    assert_eq!(j.commit.precommits.len(), 199);
    assert!(j.votes_ancestries.is_empty());
    assert_eq!(j.encode(), bytes, "re-encoding gives the ledger's bytes");
}

#[test]
fn verifies_with_set_450_and_297_authorities() {
    let j = justification();
    let set = authority_set(&j, SET_ID, 297);
    assert_eq!(set.threshold(), 199);
    for check in [SignatureCheck::Batch, SignatureCheck::EachSignature] {
        let finality = j
            .verify_with(&set, check)
            .expect("the real justification verifies");
        assert_eq!(finality.hash(), j.commit.target_hash);
        assert_eq!(finality.number(), 4_635_975);
        assert_eq!(finality.set_id(), SET_ID);
        assert_eq!(finality.round(), 6971);
        assert_eq!(finality.signed_weight(), 199);
    }
}

#[test]
fn fails_with_neighbouring_set_ids() {
    let j = justification();
    for set_id in [SET_ID - 1, SET_ID + 1, 0] {
        let set = authority_set(&j, set_id, 297);
        assert!(
            matches!(j.verify(&set), Err(Error::InvalidSignature { .. })),
            "set id {set_id} must not verify"
        );
    }
}

#[test]
fn fails_when_199_is_below_the_threshold() {
    let j = justification();
    let set = authority_set(&j, SET_ID, 299);
    assert!(matches!(
        j.verify(&set),
        Err(Error::InsufficientWeight {
            signed: 199,
            threshold: 200
        })
    ));
}

#[test]
fn fails_with_a_duplicate_precommit() {
    let j = justification();
    let set = authority_set(&j, SET_ID, 297);
    // 198 distinct voters with one of them repeated: 199 entries, 198 voters.
    let mut dup = j.clone();
    dup.commit.precommits[198] = dup.commit.precommits[0].clone();
    assert!(matches!(
        dup.verify(&set),
        Err(Error::DuplicatePrecommit { index: 198, .. })
    ));
    // All 199 plus a repeat is refused too: an honest commit never repeats a vote.
    let mut dup = j.clone();
    dup.commit.precommits.push(j.commit.precommits[57].clone());
    assert!(matches!(
        dup.verify(&set),
        Err(Error::DuplicatePrecommit { index: 199, .. })
    ));
}

#[test]
fn fails_with_a_voter_outside_the_set() {
    let j = justification();
    let mut ids: Vec<AuthorityId> = j.commit.precommits.iter().map(|p| p.id).skip(1).collect();
    ids.extend(stand_ins(98));
    let set = AuthoritySet::new(SET_ID, ids.into_iter().map(|id| (id, 1)).collect())
        .expect("distinct keys");
    assert!(matches!(
        j.verify(&set),
        Err(Error::UnknownVoter { index: 0, .. })
    ));
}

#[test]
fn fails_when_a_signature_byte_is_flipped() {
    let j = justification();
    let set = authority_set(&j, SET_ID, 297);
    // Every byte of the first and last signatures, and for every signature one byte of
    // R and one of s, at positions that move along the set.
    let mut cases: Vec<(usize, usize)> = (0..64).flat_map(|b| [(0, b), (198, b)]).collect();
    cases.extend((0..199).flat_map(|s| [(s, (s * 7 + 3) % 32), (s, 32 + (s * 5 + 1) % 32)]));
    for (sig, byte) in cases {
        let mut bad = j.clone();
        bad.commit.precommits[sig].signature[byte] ^= 0x01;
        match bad.verify(&set) {
            Err(Error::InvalidSignature { index }) => assert_eq!(index, sig),
            other => panic!("signature {sig} byte {byte}: {other:?}"),
        }
    }
}

#[test]
fn fails_when_the_target_or_round_is_altered() {
    let j = justification();
    let set = authority_set(&j, SET_ID, 297);
    for byte in 0..32 {
        // The commit target alone: the precommits no longer vote for it.
        let mut bad = j.clone();
        bad.commit.target_hash.0[byte] ^= 0x80;
        assert!(matches!(
            bad.verify(&set),
            Err(Error::PrecommitNotDescendant { index: 0 })
        ));
        // The target everywhere: consistent, but the signatures were over the real one.
        let mut bad = j.clone();
        bad.commit.target_hash.0[byte] ^= 0x80;
        for p in &mut bad.commit.precommits {
            p.precommit.target_hash = bad.commit.target_hash;
        }
        assert!(matches!(
            bad.verify(&set),
            Err(Error::InvalidSignature { .. })
        ));
    }
    for byte in 0..8 {
        let mut bad = j.clone();
        bad.round ^= 1 << (byte * 8);
        assert!(matches!(
            bad.verify(&set),
            Err(Error::InvalidSignature { .. })
        ));
    }
    let mut bad = j.clone();
    bad.commit.target_number += 1;
    for p in &mut bad.commit.precommits {
        p.precommit.target_number += 1;
    }
    assert!(matches!(
        bad.verify(&set),
        Err(Error::InvalidSignature { .. })
    ));
}

#[test]
fn raw_byte_flips_never_verify() {
    // Flip bytes of the encoded justification (a stride through the whole file): the
    // result either fails to decode or fails to verify; it never verifies.
    let bytes = common::substrate_fixture(FILE);
    let set = authority_set(&justification(), SET_ID, 297);
    for at in (0..bytes.len()).step_by(97) {
        let mut bad = bytes.clone();
        bad[at] ^= 0x10;
        if let Ok(j) = GrandpaJustification::decode_exact(&bad) {
            assert!(j.verify(&set).is_err(), "flipping byte {at} still verifies");
        }
    }
}
