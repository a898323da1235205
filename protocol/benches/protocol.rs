//! Protocol hot paths: message id, tree insert, branch verification, quorum check.
#![expect(missing_docs, reason = "criterion generates the entry point")]

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use isthmus_protocol::{
    Address32, Attestation, Checkpoint, IncrementalTree, MerkleTree, Message, SignerSet,
};
use k256::ecdsa::SigningKey;

fn message(nonce: u64) -> Message {
    Message {
        nonce,
        origin: 1,
        sender: Address32::from_evm([1; 20]),
        destination: 2,
        recipient: Address32::from_evm([2; 20]),
        deadline: 0,
        body: vec![0xab; 256],
    }
}

fn benches(c: &mut Criterion) {
    let m = message(1);
    c.bench_function("message_id_256b_body", |b| b.iter(|| black_box(&m).id()));
    let bytes = m.encode();
    c.bench_function("message_decode_256b_body", |b| {
        b.iter(|| Message::decode(black_box(&bytes)))
    });

    let mut tree = IncrementalTree::new();
    c.bench_function("tree_insert", |b| {
        b.iter(|| tree.insert(black_box([3u8; 32])))
    });

    let leaves: Vec<[u8; 32]> = (0..1024).map(|i| message(i).id().0).collect();
    let full = MerkleTree::from_leaves(leaves.clone()).expect("tree");
    let branch = full.branch(517).expect("branch");
    let root = full.root();
    c.bench_function("branch_verify", |b| {
        b.iter(|| branch.verify(black_box(&leaves[517]), &root, 1024))
    });

    let keys: Vec<SigningKey> = (1u8..=3)
        .map(|n| SigningKey::from_bytes(&[n; 32].into()).expect("key"))
        .collect();
    let set = SignerSet::new(
        keys.iter()
            .map(|k| isthmus_protocol::attestation::address_of(k.verifying_key()))
            .collect(),
        2,
    )
    .expect("set");
    let cp = Checkpoint {
        origin: 1,
        outbox: Address32::from_evm([1; 20]),
        root,
        count: 1024,
        block_number: 10,
        block_hash: [9; 32],
    };
    let digest = cp.digest(&isthmus_protocol::Network::named("isthmus bench"));
    let atts: Vec<Attestation> = keys[..2]
        .iter()
        .map(|k| Attestation::sign(k, &digest).expect("sign"))
        .collect();
    c.bench_function("quorum_verify_2_of_3", |b| {
        b.iter(|| set.verify(black_box(&digest), &atts))
    });
}

criterion_group!(protocol, benches);
criterion_main!(protocol);
