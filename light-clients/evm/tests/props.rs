//! Property tests: decoders and verifiers never panic on arbitrary input, and
//! random corruptions of real data are refused.

mod common;

use common::*;
use isthmus_light_client_evm::bft::BftExtraData;
use isthmus_light_client_evm::trie::{verify_proof, verify_storage_proof};
use isthmus_light_client_evm::{Account, AccountProof, BftKind, Header, B256};
use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn header_decoder_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..700)) {
        if let Ok(h) = Header::decode_rlp(&bytes) {
            // anything accepted is canonical: it re-encodes to the same bytes
            prop_assert_eq!(h.encode_rlp(), bytes);
        }
    }

    #[test]
    fn proof_verifier_never_panics(
        root in any::<[u8; 32]>(),
        key in proptest::collection::vec(any::<u8>(), 0..40),
        nodes in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..600), 0..6),
    ) {
        let _ = verify_proof(&B256(root), &key, &nodes);
        let _ = verify_storage_proof(&B256(root), &B256(root), &nodes);
        // a root that matches the first node exercises the node parser itself
        if let Some(first) = nodes.first() {
            let r = isthmus_light_client_evm::keccak256(first);
            let _ = verify_proof(&r, &key, &nodes);
        }
    }

    #[test]
    fn other_decoders_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        let _ = BftExtraData::decode(BftKind::Qbft, &bytes);
        let _ = BftExtraData::decode(BftKind::Ibft2, &bytes);
        if let Ok(e) = isthmus_light_client_evm::bft::Ibft1ExtraData::decode(&bytes) {
            // anything accepted is canonical: it re-encodes to the same bytes
            prop_assert_eq!(&e.encode(true, true), &bytes);
        }
        let _ = Account::decode_rlp(&bytes);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn mutated_real_header_never_keeps_its_hash(
        edits in proptest::collection::vec((any::<prop::sample::Index>(), 1u8..=255), 1..4)
    ) {
        let json = fixture(CANCUN);
        let good = claimed_hash(&json);
        let mut enc = Header::from_rpc_json(&json).expect("parses").encode_rlp();
        for (i, x) in edits {
            let i = i.index(enc.len());
            enc[i] ^= x;
        }
        if let Ok(h) = Header::decode_rlp(&enc) {
            prop_assert_ne!(h.hash(), good);
        }
    }

    #[test]
    fn mutated_real_proof_is_refused(
        node in any::<prop::sample::Index>(),
        byte in any::<prop::sample::Index>(),
        x in 1u8..=255,
    ) {
        let header = Header::from_rpc_json(&fixture(CANCUN)).expect("header");
        let mut proof = AccountProof::from_rpc_json(&fixture(PROOF)).expect("proof");
        let good = proof.verify(&header.state_root).expect("verifies");
        let n = node.index(proof.account_proof.len());
        let b = byte.index(proof.account_proof[n].len());
        proof.account_proof[n][b] ^= x;
        if let Ok(other) = proof.verify(&header.state_root) {
            prop_assert_ne!(other, good);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(500))]

    /// libsecp256k1 and k256 accept exactly the same seals and recover the same
    /// signer, including high-s (refused by both) and mangled signatures.
    #[test]
    fn secp256k1_recovery_agrees_with_k256(
        digest in any::<[u8; 32]>(),
        signer in 1u8..=255,
        flip in proptest::option::of((0usize..65, 1u8..=255)),
        high_s in any::<bool>(),
    ) {
        use isthmus_light_client_evm::{recover_address, recover_address_k256};
        let d = B256(digest);
        let (sk, addr) = key(signer);
        let mut sig = sign(&sk, &d);
        prop_assert_eq!(recover_address(&d, &sig), Ok(addr));
        if high_s {
            // s -> n - s, v flipped: the same signature in high-s form
            let n = hex::decode(
                "FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141",
            )
            .expect("hex");
            let mut borrow = 0i16;
            for i in (0..32).rev() {
                let d = i16::from(n[i]) - i16::from(sig[32 + i]) - borrow;
                borrow = i16::from(d < 0);
                sig[32 + i] = (d + 256 * borrow) as u8;
            }
            sig[64] ^= 1;
        }
        if let Some((i, x)) = flip {
            sig[i] ^= x;
        }
        prop_assert_eq!(recover_address(&d, &sig), recover_address_k256(&d, &sig));
        if high_s && flip.is_none() {
            prop_assert!(recover_address(&d, &sig).is_err());
        }
    }
}
