//! Header hashing and the real mainnet account + storage proof, with alloy-trie's
//! verifier on the same proof as a baseline.
#![allow(missing_docs)]

use std::path::PathBuf;

use alloy_primitives::{Bytes, B256 as AB256};
use alloy_trie::{proof::verify_proof as alloy_verify, Nibbles};
use criterion::{black_box, criterion_group, criterion_main, Criterion};
use isthmus_light_client_evm::trie::verify_proof;
use isthmus_light_client_evm::{keccak256, AccountProof, Header};

fn fixture(rel: &str) -> String {
    let dir = std::env::var_os("ISTHMUS_FIXTURES")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../../../shared/fixtures"
            ))
        });
    std::fs::read_to_string(dir.join(rel)).expect("fixture readable")
}

fn benches(c: &mut Criterion) {
    let header = Header::from_rpc_json(&fixture("ethereum/mainnet-block-21925176.json"))
        .expect("header parses");
    let proof = AccountProof::from_rpc_json(&fixture(
        "ethereum/mainnet-block-21925176-proof-deposit-contract.json",
    ))
    .expect("proof parses");
    let root = header.state_root;
    proof.verify(&root).expect("proof verifies");

    c.bench_function("header_hash_cancun", |b| {
        b.iter(|| black_box(&header).hash())
    });
    c.bench_function("header_decode_rlp_cancun", |b| {
        let enc = header.encode_rlp();
        b.iter(|| Header::decode_rlp(black_box(&enc)).expect("decodes"))
    });
    c.bench_function("account_and_storage_proof_isthmus", |b| {
        b.iter(|| {
            black_box(&proof)
                .verify(black_box(&root))
                .expect("verifies")
        })
    });

    // Baseline: the same two proofs through alloy-trie. Its verifier takes the
    // expected leaf bytes, so they are precomputed (our verifier derives them).
    let acct_key = Nibbles::unpack(keccak256(&proof.address.0).0);
    let acct_leaf = verify_proof(&root, &keccak256(&proof.address.0).0, &proof.account_proof)
        .expect("ours")
        .expect("present");
    let acct_nodes: Vec<Bytes> = proof
        .account_proof
        .iter()
        .map(|n| n.clone().into())
        .collect();
    let (slot, _, storage_nodes) = &proof.storage[0];
    let storage_key = Nibbles::unpack(keccak256(&slot.0).0);
    let storage_leaf = verify_proof(
        &proof.claimed.storage_root,
        &keccak256(&slot.0).0,
        storage_nodes,
    )
    .expect("ours")
    .expect("present");
    let storage_nodes: Vec<Bytes> = storage_nodes.iter().map(|n| n.clone().into()).collect();
    let aroot = AB256::from(root.0);
    let sroot = AB256::from(proof.claimed.storage_root.0);
    c.bench_function("account_and_storage_proof_alloy_trie", |b| {
        b.iter(|| {
            alloy_verify(aroot, acct_key, Some(acct_leaf.clone()), &acct_nodes).expect("alloy");
            alloy_verify(
                sroot,
                storage_key,
                Some(storage_leaf.clone()),
                &storage_nodes,
            )
            .expect("alloy");
        })
    });
}

criterion_group!(all, benches);
criterion_main!(all);
