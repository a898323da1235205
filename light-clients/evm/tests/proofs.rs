//! Merkle-Patricia proofs against the real mainnet `eth_getProof` fixture.

mod common;

use alloy_primitives::{Bytes, B256 as AB256};
use alloy_trie::{proof::verify_proof as alloy_verify, Nibbles};
use common::*;
use isthmus_light_client_evm::trie::{self, verify_proof, verify_storage_proof};
use isthmus_light_client_evm::{
    keccak256, AccountProof, Error, EvmLightClient, Header, TrustedCheckpoint, B256, U256,
};

fn setup() -> (Header, AccountProof) {
    let header = Header::from_rpc_json(&fixture(CANCUN)).expect("header");
    let proof = AccountProof::from_rpc_json(&fixture(PROOF)).expect("proof parses");
    (header, proof)
}

#[test]
fn deposit_contract_proof_verifies_against_the_block_state_root() {
    let (header, proof) = setup();
    let proven = proof.verify(&header.state_root).expect("proof verifies");
    let acct = proven.account();
    assert_eq!(acct.nonce, 1);
    assert_eq!(
        acct.balance,
        U256::from_be_slice(&hex::decode("2fb161afe600a5b2605040").expect("hex")).expect("fits")
    );
    assert_eq!(
        acct.storage_root.to_string(),
        "0xfcbb4b77e533e75ac831006ef975191deda38a7b8f50887a8ad263c38e6e4461"
    );
    let slot1 = B256::from(U256::from(1).0);
    assert_eq!(
        proven.slot(&slot1).expect("slot 1 proven").0,
        B256::from_hex("0x2394e3bc4086a9625ae88307145a40ff4a4bf2c9a6755435bff86b22d6175d5f")
            .expect("hex")
            .0
    );
    assert_eq!(
        proven.slot(&B256::ZERO),
        Err(Error::StorageSlotNotInResponse(B256::ZERO))
    );

    // Through a verified header: the proof inherits the header's hash and finality.
    let mut lc = EvmLightClient::finalized_tag(TrustedCheckpoint {
        number: header.number - 1,
        hash: header.parent_hash,
    });
    let vh = lc.verify_headers([header.clone()]).expect("links");
    let vp = vh[0].verify_account_proof(&proof).expect("verifies");
    assert_eq!(vp.block_hash(), header.hash());
    assert!(vp.finality_trusted_from_tag());
}

#[test]
fn same_proof_verifies_with_alloy_trie() {
    let (header, proof) = setup();
    let acct_nodes: Vec<Bytes> = proof
        .account_proof
        .iter()
        .map(|n| n.clone().into())
        .collect();
    let leaf = verify_proof(
        &header.state_root,
        &keccak256(&proof.address.0).0,
        &proof.account_proof,
    )
    .expect("ours")
    .expect("present");
    alloy_verify(
        AB256::from(header.state_root.0),
        Nibbles::unpack(keccak256(&proof.address.0).0),
        Some(leaf),
        &acct_nodes,
    )
    .expect("alloy-trie agrees");
}

#[test]
fn every_byte_flip_of_every_proof_node_is_refused() {
    let (header, proof) = setup();
    let root = header.state_root;
    let good = proof.verify(&root).expect("untampered verifies");
    let mut checked = 0usize;
    for n in 0..proof.account_proof.len() {
        for i in 0..proof.account_proof[n].len() {
            let mut p = proof.clone();
            p.account_proof[n][i] ^= 0x01;
            match p.verify(&root) {
                Err(_) => {}
                Ok(other) => assert_ne!(other, good, "account node {n} byte {i}"),
            }
            checked += 1;
        }
    }
    let (_, _, nodes) = &proof.storage[0];
    for (n, node) in nodes.iter().enumerate() {
        for i in 0..node.len() {
            let mut p = proof.clone();
            p.storage[0].2[n][i] ^= 0x01;
            assert!(p.verify(&root).is_err(), "storage node {n} byte {i}");
            checked += 1;
        }
    }
    let total: usize = proof.account_proof.iter().chain(nodes).map(Vec::len).sum();
    assert_eq!(checked, total);
}

#[test]
fn tampered_values_and_roots_are_refused() {
    let (header, proof) = setup();
    let root = header.state_root;
    // every byte of the claimed storage value
    for i in 0..32 {
        let mut p = proof.clone();
        p.storage[0].1 .0[i] ^= 0x01;
        assert!(matches!(
            p.verify(&root),
            Err(Error::ClaimedStorageMismatch { .. })
        ));
    }
    // the claimed account fields
    let mut p = proof.clone();
    p.claimed.nonce += 1;
    assert_eq!(p.verify(&root), Err(Error::ClaimedAccountMismatch("nonce")));
    let mut p = proof.clone();
    p.claimed.balance.0[31] ^= 1;
    assert_eq!(
        p.verify(&root),
        Err(Error::ClaimedAccountMismatch("balance"))
    );
    let mut p = proof.clone();
    p.claimed.code_hash.0[0] ^= 1;
    assert_eq!(
        p.verify(&root),
        Err(Error::ClaimedAccountMismatch("codeHash"))
    );
    // every byte of the state root
    for i in 0..32 {
        let mut r = root;
        r.0[i] ^= 0x01;
        assert_eq!(
            proof.verify(&r),
            Err(Error::ProofNodeHashMismatch { depth: 0 })
        );
    }
    // a truncated proof and a proof with an extra node
    let mut p = proof.clone();
    p.account_proof.pop();
    assert_eq!(p.verify(&root), Err(Error::ProofTooShort));
    let mut p = proof.clone();
    let extra = p.account_proof[0].clone();
    p.account_proof.push(extra);
    assert_eq!(p.verify(&root), Err(Error::UnusedProofNodes(1)));
}

#[test]
fn absence_is_proven_only_by_a_complete_path() {
    let (_, proof) = setup();
    let storage_root = proof.claimed.storage_root;
    let nodes = &proof.storage[0].2;
    // Find slots whose path ends inside the real storage proof (an empty branch
    // slot or a diverging leaf), using prefixes of the proof.
    let mut found = 0;
    for s in 0u64..4000 {
        let slot = B256(U256::from(s).0);
        for k in 1..=nodes.len() {
            if let Ok(U256::ZERO) = verify_storage_proof(&storage_root, &slot, &nodes[..k]) {
                // alloy-trie agrees that this proves absence
                let alloy_nodes: Vec<Bytes> = nodes[..k].iter().map(|n| n.clone().into()).collect();
                alloy_verify(
                    AB256::from(storage_root.0),
                    Nibbles::unpack(keccak256(&slot.0).0),
                    None,
                    &alloy_nodes,
                )
                .expect("alloy-trie agrees on absence");
                // and the same prefix with a flipped byte does not prove it
                let mut t: Vec<Vec<u8>> = nodes[..k].to_vec();
                let last = t.len() - 1;
                t[last][5] ^= 1;
                assert!(verify_storage_proof(&storage_root, &slot, &t).is_err());
                found += 1;
            }
        }
    }
    assert!(found > 0, "no absence proof found in the real storage trie");

    // A proof that stops before the path is resolved proves nothing.
    let slot1 = B256(U256::from(1).0);
    assert_eq!(
        verify_storage_proof(&storage_root, &slot1, &nodes[..1]),
        Err(Error::ProofTooShort)
    );
    // The empty trie proves every key absent.
    let empty: [&[u8]; 0] = [];
    assert_eq!(
        verify_proof(&trie::EMPTY_TRIE_ROOT, &[1, 2, 3], &empty),
        Ok(None)
    );
}

#[test]
fn embedded_nodes_are_followed() {
    // A branch whose children 1 and 3 are short leaves embedded inline (3 bytes
    // each, < 32) and whose child 7 is a hash reference to a longer leaf, so the
    // root itself is longer than 32 bytes and referenced by hash.
    let long_leaf = {
        let mut payload = vec![0x38]; // leaf path, odd: nibble 8
        payload.push(0xa0);
        payload.extend([0xabu8; 32]);
        let mut n = vec![0xc0 + payload.len() as u8];
        n.extend(payload);
        n
    };
    let mut payload = Vec::new();
    for i in 0..16u8 {
        match i {
            1 => payload.extend([0xc2, 0x32, b'a']),
            3 => payload.extend([0xc2, 0x34, b'b']),
            7 => {
                payload.push(0xa0);
                payload.extend(keccak256(&long_leaf).0);
            }
            _ => payload.push(0x80),
        }
    }
    payload.push(0x80);
    let branch = rlp_list(&payload);
    let root = keccak256(&branch);
    let proof = [branch.clone()];
    assert_eq!(verify_proof(&root, &[0x12], &proof), Ok(Some(vec![b'a'])));
    assert_eq!(verify_proof(&root, &[0x34], &proof), Ok(Some(vec![b'b'])));
    assert_eq!(verify_proof(&root, &[0x15], &proof), Ok(None));
    assert_eq!(verify_proof(&root, &[0x52], &proof), Ok(None));
    let two = [branch.clone(), long_leaf.clone()];
    assert_eq!(verify_proof(&root, &[0x78], &two), Ok(Some(vec![0xab; 32])));
    assert_eq!(verify_proof(&root, &[0x79], &two), Ok(None));
    assert_eq!(
        verify_proof(&root, &[0x78], &proof),
        Err(Error::ProofTooShort)
    );
    // alloy-trie reads the same trie the same way
    let ab: Vec<Bytes> = vec![branch.clone().into()];
    alloy_verify(
        AB256::from(root.0),
        Nibbles::unpack([0x12]),
        Some(vec![b'a']),
        &ab,
    )
    .expect("alloy agrees on the embedded leaf");
    alloy_verify(AB256::from(root.0), Nibbles::unpack([0x15]), None, &ab)
        .expect("alloy agrees on absence");

    // an embedded node of 32 bytes or more is malformed
    let mut payload = vec![0xe0u8, 0x80 + 30];
    payload.extend([0u8; 30]);
    payload.extend(std::iter::repeat_n(0x80u8, 16));
    let node = rlp_list(&payload);
    let r = keccak256(&node);
    assert!(matches!(
        verify_proof(&r, &[0x00], &[node]),
        Err(Error::MalformedTrieNode { .. })
    ));
}

fn rlp_list(payload: &[u8]) -> Vec<u8> {
    let mut out = if payload.len() < 56 {
        vec![0xc0 + payload.len() as u8]
    } else {
        vec![0xf8, payload.len() as u8]
    };
    out.extend(payload);
    out
}
