//! The published test vectors, `protocol/vectors/v2.json`.
//!
//! The file is the contract between this crate, the Solidity endpoints and the pallet.
//! `generated_vectors_match_the_committed_file` regenerates it from the code and
//! requires byte equality; `committed_vectors_are_self_consistent` reads the file
//! back and checks every value with the decoding and verifying side of the API, so a
//! wrong generator cannot bless itself. To change the file on purpose (a new
//! protocol version, never an edit of a published version): `ISTHMUS_UPDATE_VECTORS=1 cargo test -p
//! isthmus-protocol --test vectors`.
#![expect(
    clippy::unwrap_used,
    reason = "test code: a panic is the failure report"
)]

use isthmus_protocol::attestation::address_of;
use isthmus_protocol::{
    keccak256, Address32, Attestation, Branch, Checkpoint, DecodeError, IncrementalTree,
    MerkleTree, Message, Network, SignerSet, MAX_BODY_LEN, TREE_DEPTH,
};
use k256::ecdsa::SigningKey;
use serde_json::{json, Value};

const PATH: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/vectors/v2.json");

fn h(bytes: &[u8]) -> String {
    format!("0x{}", hex::encode(bytes))
}

fn unh(v: &Value) -> Vec<u8> {
    let s = v.as_str().unwrap();
    hex::decode(s.strip_prefix("0x").unwrap()).unwrap()
}

fn unh32(v: &Value) -> [u8; 32] {
    unh(v).try_into().unwrap()
}

/// The fixed test keys: secret `i` = keccak256("isthmus test signer i").
fn test_key(i: usize) -> ([u8; 32], SigningKey) {
    let secret = keccak256(format!("isthmus test signer {i}").as_bytes());
    (secret, SigningKey::from_bytes(&secret.into()).unwrap())
}

fn sample_messages() -> Vec<Message> {
    let evm_a = Address32::from_evm(hex_arr("5fbdb2315678afecb367f032d93f642f64180aa3"));
    let evm_b = Address32::from_evm(hex_arr("e7f1725e7734ce288f8367e1bb143e90bb3f0512"));
    // Alice's sr25519 public key, the usual Substrate dev account.
    let alice = Address32(hex_arr(
        "d43593c715fdd31c61141abd04a99fd6822c8558854ccde39a5684e7a56da27d",
    ));
    vec![
        Message {
            nonce: 0,
            origin: 1,
            sender: evm_a,
            destination: 2,
            recipient: evm_b,
            deadline: 0,
            body: vec![],
        },
        Message {
            nonce: 1,
            origin: 1,
            sender: evm_a,
            destination: 3,
            recipient: alice,
            deadline: 1_893_456_000,
            body: b"hello, substrate".to_vec(),
        },
        Message {
            nonce: 0,
            origin: 3,
            sender: alice,
            destination: 1,
            recipient: evm_a,
            deadline: 0,
            body: (0u8..=255).collect(),
        },
        Message {
            nonce: u64::MAX,
            origin: u32::MAX,
            sender: Address32([0xff; 32]),
            destination: u32::MAX,
            recipient: Address32([0xff; 32]),
            deadline: u64::MAX,
            body: vec![0xff; 1],
        },
        Message {
            nonce: 42,
            origin: 2,
            sender: evm_b,
            destination: 1,
            recipient: evm_a,
            deadline: 1_700_000_000,
            body: vec![0x5a; MAX_BODY_LEN],
        },
    ]
}

fn hex_arr<const N: usize>(s: &str) -> [u8; N] {
    hex::decode(s).unwrap().try_into().unwrap()
}

fn message_json(m: &Message) -> Value {
    json!({
        "version": 1,
        "nonce": m.nonce.to_string(),
        "origin": m.origin,
        "sender": h(&m.sender.0),
        "destination": m.destination,
        "recipient": h(&m.recipient.0),
        "deadline": m.deadline.to_string(),
        "body": h(&m.body),
    })
}

fn generate() -> Value {
    let messages: Vec<Value> = sample_messages()
        .iter()
        .map(|m| json!({ "message": message_json(m), "encoded": h(&m.encode()), "id": h(&m.id().0) }))
        .collect();

    let good = sample_messages()[1].encode();
    let mut bad_version = good.clone();
    bad_version[0] = 2;
    let mut trailing = good.clone();
    trailing.push(0);
    let mut too_long = good.clone();
    too_long[89..93].copy_from_slice(&(MAX_BODY_LEN as u32 + 1).to_be_bytes());
    let invalid = vec![
        json!({ "encoded": h(&good[..92]), "error": "truncated" }),
        json!({ "encoded": h(&good[..good.len() - 1]), "error": "truncated" }),
        json!({ "encoded": h(&bad_version), "error": "unknown_version" }),
        json!({ "encoded": h(&trailing), "error": "trailing_bytes" }),
        json!({ "encoded": h(&too_long), "error": "body_too_long" }),
    ];

    let zeros = isthmus_protocol::merkle::zero_hashes();
    let trees: Vec<Value> = [0usize, 1, 2, 3, 5, 8, 13]
        .iter()
        .map(|&n| {
            let leaves: Vec<[u8; 32]> = (0..n).map(|i| keccak256(format!("leaf {i}").as_bytes())).collect();
            let mut inc = IncrementalTree::new();
            for l in &leaves {
                inc.insert(*l).unwrap();
            }
            let full = MerkleTree::from_leaves(leaves.clone()).unwrap();
            assert_eq!(inc.root(), full.root());
            let branches: Vec<Value> = (0..n as u64)
                .map(|i| {
                    let b = full.branch(i).unwrap();
                    json!({ "index": i, "siblings": b.siblings.iter().map(|s| h(s)).collect::<Vec<_>>() })
                })
                .collect();
            json!({
                "leaves": leaves.iter().map(|l| h(l)).collect::<Vec<_>>(),
                "count": n,
                "root": h(&full.root()),
                "branches": branches,
            })
        })
        .collect();

    let keys: Vec<Value> = (0..4)
        .map(|i| {
            let (secret, key) = test_key(i);
            json!({ "secret": h(&secret), "address": h(&address_of(key.verifying_key())) })
        })
        .collect();

    let checkpoints: Vec<Value> = [
        Checkpoint {
            origin: 1,
            outbox: Address32::from_evm(hex_arr("5fbdb2315678afecb367f032d93f642f64180aa3")),
            root: trees_root(3),
            count: 3,
            block_number: 17,
            block_hash: keccak256(b"block 17"),
        },
        Checkpoint {
            origin: 3,
            outbox: Address32(keccak256(b"isthmus pallet outbox")),
            root: trees_root(0),
            count: 0,
            block_number: 0,
            block_hash: [0u8; 32],
        },
    ]
    .iter()
    .map(|cp| {
        let digest = cp.digest(&vector_network());
        let attestations: Vec<Value> = (0..3)
            .map(|i| {
                let (_, key) = test_key(i);
                json!({ "signer": i, "signature": h(&Attestation::sign(&key, &digest).unwrap().0) })
            })
            .collect();
        json!({
            "checkpoint": {
                "origin": cp.origin,
                "outbox": h(&cp.outbox.0),
                "root": h(&cp.root),
                "count": cp.count,
                "block_number": cp.block_number.to_string(),
                "block_hash": h(&cp.block_hash),
            },
            "preimage": h(&cp.preimage(&vector_network())),
            "digest": h(&digest),
            "attestations": attestations,
        })
    })
    .collect();

    json!({
        "description": "Isthmus protocol v2 test vectors (messages v1, checkpoints v2); see docs/protocol.md. 64-bit integers are decimal strings.",
        "message_header_len": isthmus_protocol::MESSAGE_HEADER_LEN,
        "max_body_len": MAX_BODY_LEN,
        "messages": messages,
        "invalid_messages": invalid,
        "merkle": {
            "depth": TREE_DEPTH,
            "zero_hashes": zeros.iter().map(|z| h(z)).collect::<Vec<_>>(),
            "trees": trees,
        },
        "checkpoint_domain_tag": String::from_utf8(isthmus_protocol::CHECKPOINT_DOMAIN_TAG.to_vec()).unwrap(),
        "checkpoint_domain_tag_hash": h(&keccak256(isthmus_protocol::CHECKPOINT_DOMAIN_TAG)),
        "network_name": VECTOR_NETWORK,
        "network": h(&vector_network().0),
        "test_keys": keys,
        "checkpoints": checkpoints,
    })
}

/// The network the checkpoint vectors are signed for.
const VECTOR_NETWORK: &str = "isthmus test vectors";

fn vector_network() -> Network {
    Network::named(VECTOR_NETWORK)
}

fn trees_root(n: usize) -> [u8; 32] {
    let leaves: Vec<[u8; 32]> = (0..n)
        .map(|i| keccak256(format!("leaf {i}").as_bytes()))
        .collect();
    MerkleTree::from_leaves(leaves).unwrap().root()
}

#[test]
fn generated_vectors_match_the_committed_file() {
    let text = serde_json::to_string_pretty(&generate()).unwrap() + "\n";
    if std::env::var_os("ISTHMUS_UPDATE_VECTORS").is_some() {
        std::fs::write(PATH, &text).unwrap();
    }
    let committed = std::fs::read_to_string(PATH).expect("protocol/vectors/v2.json is committed");
    assert!(
        committed == text,
        "the code no longer reproduces protocol/vectors/v2.json byte for byte"
    );
}

#[test]
fn committed_vectors_are_self_consistent() {
    let file: Value = serde_json::from_str(&std::fs::read_to_string(PATH).unwrap()).unwrap();

    for v in file["messages"].as_array().unwrap() {
        let encoded = unh(&v["encoded"]);
        let m = Message::decode(&encoded).unwrap();
        let f = &v["message"];
        assert_eq!(m.nonce.to_string(), f["nonce"].as_str().unwrap());
        assert_eq!(u64::from(m.origin), f["origin"].as_u64().unwrap());
        assert_eq!(m.sender.0, unh32(&f["sender"]));
        assert_eq!(u64::from(m.destination), f["destination"].as_u64().unwrap());
        assert_eq!(m.recipient.0, unh32(&f["recipient"]));
        assert_eq!(m.deadline.to_string(), f["deadline"].as_str().unwrap());
        assert_eq!(m.body, unh(&f["body"]));
        assert_eq!(keccak256(&encoded), unh32(&v["id"]));
        assert_eq!(m.encode(), encoded);
    }
    assert_eq!(file["messages"].as_array().unwrap().len(), 5);

    for v in file["invalid_messages"].as_array().unwrap() {
        let err = Message::decode(&unh(&v["encoded"])).unwrap_err();
        let kind = match err {
            DecodeError::Truncated { .. } => "truncated",
            DecodeError::UnknownVersion(_) => "unknown_version",
            DecodeError::TrailingBytes { .. } => "trailing_bytes",
            DecodeError::BodyTooLong { .. } => "body_too_long",
        };
        assert_eq!(kind, v["error"].as_str().unwrap());
    }

    let zeros = file["merkle"]["zero_hashes"].as_array().unwrap();
    assert_eq!(unh32(&zeros[0]), [0u8; 32]);
    for w in zeros.windows(2) {
        let z = unh32(&w[0]);
        assert_eq!(keccak256(&[z, z].concat()), unh32(&w[1]));
    }
    for tree in file["merkle"]["trees"].as_array().unwrap() {
        let root = unh32(&tree["root"]);
        let count = tree["count"].as_u64().unwrap();
        let mut inc = IncrementalTree::new();
        for l in tree["leaves"].as_array().unwrap() {
            inc.insert(unh32(l)).unwrap();
        }
        assert_eq!(inc.root(), root);
        for (i, b) in tree["branches"].as_array().unwrap().iter().enumerate() {
            let siblings: Vec<[u8; 32]> = b["siblings"]
                .as_array()
                .unwrap()
                .iter()
                .map(unh32)
                .collect();
            let branch = Branch {
                index: b["index"].as_u64().unwrap(),
                siblings: siblings.try_into().unwrap(),
            };
            let leaf = unh32(&tree["leaves"][i]);
            assert!(branch.verify(&leaf, &root, count));
            assert!(!branch.verify(&keccak256(b"not a leaf"), &root, count));
        }
    }

    let addresses: Vec<[u8; 20]> = file["test_keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| {
            let key = SigningKey::from_bytes(&unh32(&k["secret"]).into()).unwrap();
            let addr: [u8; 20] = unh(&k["address"]).try_into().unwrap();
            assert_eq!(address_of(key.verifying_key()), addr);
            addr
        })
        .collect();
    assert_eq!(
        unh32(&file["checkpoint_domain_tag_hash"]),
        keccak256(file["checkpoint_domain_tag"].as_str().unwrap().as_bytes())
    );
    let network = Network(unh32(&file["network"]));
    assert_eq!(
        network,
        Network::named(file["network_name"].as_str().unwrap())
    );
    let set = SignerSet::new(addresses[..3].to_vec(), 2).unwrap();
    for v in file["checkpoints"].as_array().unwrap() {
        let c = &v["checkpoint"];
        let cp = Checkpoint {
            origin: c["origin"].as_u64().unwrap() as u32,
            outbox: Address32(unh32(&c["outbox"])),
            root: unh32(&c["root"]),
            count: c["count"].as_u64().unwrap() as u32,
            block_number: c["block_number"].as_str().unwrap().parse().unwrap(),
            block_hash: unh32(&c["block_hash"]),
        };
        assert_eq!(cp.preimage(&network).to_vec(), unh(&v["preimage"]));
        assert_eq!(cp.digest(&network), keccak256(&unh(&v["preimage"])));
        assert_eq!(cp.digest(&network), unh32(&v["digest"]));
        let atts: Vec<Attestation> = v["attestations"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| {
                let att = Attestation(unh(&a["signature"]).try_into().unwrap());
                let signer = a["signer"].as_u64().unwrap() as usize;
                assert_eq!(
                    att.recover(&cp.digest(&network)).unwrap(),
                    addresses[signer]
                );
                att
            })
            .collect();
        assert_eq!(
            set.verify(&cp.digest(&network), &atts).unwrap().signers,
            addresses[..3].to_vec()
        );
    }
}
