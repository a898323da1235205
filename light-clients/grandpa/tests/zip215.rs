//! Batch verification (keys decompressed in the set, one multi-scalar
//! multiplication) accepts exactly what per-signature verification (`ed25519-zebra`,
//! ZIP-215 as Substrate's host functions) accepts, on the edge cases where
//! cofactorless and cofactored verification differ: signatures whose `R` has a
//! small-order component, keys with one, non-canonical `s`.

use curve25519_dalek::constants::{ED25519_BASEPOINT_POINT, EIGHT_TORSION};
use curve25519_dalek::edwards::EdwardsPoint;
use curve25519_dalek::scalar::Scalar;
use isthmus_light_client_grandpa::justification::precommit_signing_payload;
use isthmus_light_client_grandpa::{
    AuthorityId, AuthoritySet, Commit, Error, GrandpaJustification, Precommit, SignatureCheck,
    SignedPrecommit, H256,
};
use sha2::{Digest, Sha512};

/// A key `aB + key_torsion` and a signature of `message` whose `R` is
/// `rB + r_torsion`: valid under the cofactored equation whatever the torsion.
fn sign(
    seed: u8,
    key_torsion: EdwardsPoint,
    r_torsion: EdwardsPoint,
    message: &[u8],
) -> ([u8; 32], [u8; 64]) {
    let a = Scalar::from_bytes_mod_order([seed; 32]);
    let r = Scalar::from_bytes_mod_order([seed.wrapping_add(100); 32]);
    let public = (a * ED25519_BASEPOINT_POINT + key_torsion)
        .compress()
        .to_bytes();
    let big_r = (r * ED25519_BASEPOINT_POINT + r_torsion)
        .compress()
        .to_bytes();
    let k = Scalar::from_bytes_mod_order_wide(
        &Sha512::new()
            .chain_update(big_r)
            .chain_update(public)
            .chain_update(message)
            .finalize()
            .into(),
    );
    // sB = rB + kaB, so sB - kA - R = -(k·key_torsion + r_torsion): small order.
    let s = r + k * a;
    let mut signature = [0u8; 64];
    signature[..32].copy_from_slice(&big_r);
    signature[32..].copy_from_slice(s.as_bytes());
    (public, signature)
}

fn justification(signers: &[([u8; 32], [u8; 64])], target: Precommit) -> GrandpaJustification {
    GrandpaJustification {
        round: 3,
        commit: Commit {
            target_hash: target.target_hash,
            target_number: target.target_number,
            precommits: signers
                .iter()
                .map(|(public, signature)| SignedPrecommit {
                    precommit: target,
                    signature: *signature,
                    id: AuthorityId(*public),
                })
                .collect(),
        },
        votes_ancestries: Vec::new(),
    }
}

fn both(j: &GrandpaJustification, set: &AuthoritySet) -> (bool, bool) {
    (
        j.verify_with(set, SignatureCheck::Batch).is_ok(),
        j.verify_with(set, SignatureCheck::EachSignature).is_ok(),
    )
}

#[test]
fn batch_and_each_agree_on_small_order_components_and_non_canonical_s() {
    let target = Precommit {
        target_hash: H256([7; 32]),
        target_number: 42,
    };
    let message = precommit_signing_payload(&target, 3, 5);
    let identity = EIGHT_TORSION[0];
    for (key_t, r_t) in [
        (identity, identity),
        (identity, EIGHT_TORSION[1]),
        (EIGHT_TORSION[4], identity),
        (EIGHT_TORSION[2], EIGHT_TORSION[5]),
    ] {
        let signers: Vec<_> = (1..=4u8).map(|i| sign(i, key_t, r_t, &message)).collect();
        let set = AuthoritySet::new(
            5,
            signers.iter().map(|(p, _)| (AuthorityId(*p), 1)).collect(),
        )
        .expect("distinct keys");
        let j = justification(&signers, target);
        assert_eq!(
            both(&j, &set),
            (true, true),
            "torsion in key {key_t:?}, R {r_t:?}"
        );

        // s + ℓ (non-canonical) is refused by both, as is a wrong set id.
        let mut high = j.clone();
        let mut s = [0u8; 32];
        s.copy_from_slice(&high.commit.precommits[2].signature[32..]);
        let l = Scalar::ZERO - Scalar::ONE;
        let mut carry = 1u16;
        let l_bytes = l.to_bytes();
        for i in 0..32 {
            let sum = u16::from(s[i]) + u16::from(l_bytes[i]) + carry;
            s[i] = sum as u8;
            carry = sum >> 8;
        }
        high.commit.precommits[2].signature[32..].copy_from_slice(&s);
        assert_eq!(both(&high, &set), (false, false));
        assert!(matches!(
            high.verify(&set),
            Err(Error::InvalidSignature { index: 2 })
        ));
        let other = AuthoritySet::new(6, set.authorities().to_vec()).expect("set");
        assert_eq!(both(&j, &other), (false, false));
    }
}
