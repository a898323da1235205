//! Trie read proofs: a real Polkadot proof, and tries built here in both layouts.

mod common;

use std::collections::BTreeMap;

use isthmus_light_client_grandpa::{blake2_256, Error, ReadProof, H256};
use parity_scale_codec::{Compact, Encode};
use proptest::prelude::*;

/// A storage read proof of the Polkadot genesis state, published in smoldot's tests
/// (`lib/src/trie/proof_decode/tests.rs`); copied to `tests/data`.
#[test]
fn real_polkadot_read_proof() {
    let json: serde_json::Value =
        serde_json::from_str(include_str!("data/polkadot-genesis-read-proof.json"))
            .expect("valid JSON");
    let hexes = |v: &serde_json::Value| common::unhex(v.as_str().expect("hex string"));
    let root = H256::try_from(hexes(&json["stateRoot"]).as_slice()).expect("32 bytes");
    let items: Vec<Vec<u8>> = json["proof"]
        .as_array()
        .expect("array")
        .iter()
        .map(hexes)
        .collect();
    let proof = ReadProof::new(items.clone());

    let value = proof
        .read(&root, &hexes(&json["key"]))
        .expect("complete proof");
    assert_eq!(value, Some(hexes(&json["value"]).as_slice()));
    let absent = proof
        .read(&root, &hexes(&json["absentKey"]))
        .expect("complete proof");
    assert_eq!(absent, None);
    assert!(matches!(
        proof.read(&root, &hexes(&json["incompleteKey"])),
        Err(Error::MissingTrieNode { .. })
    ));
    assert!(matches!(
        proof.read(&H256([0; 32]), &[]),
        Err(Error::MissingTrieNode { .. })
    ));

    // The SCALE form decodes to the same proof.
    assert_eq!(
        ReadProof::decode_exact(&items.encode()).expect("decodes"),
        proof
    );

    // Dropping or altering any item never yields a wrong answer.
    for i in 0..items.len() {
        for alter in [false, true] {
            let mut tampered = items.clone();
            if alter {
                let last = tampered[i].len() - 1;
                tampered[i][last] ^= 1;
            } else {
                tampered.remove(i);
            }
            let proof = ReadProof::new(tampered);
            match proof.read(&root, &hexes(&json["key"])) {
                Ok(found) => assert_eq!(found, Some(hexes(&json["value"]).as_slice())),
                Err(e) => assert!(matches!(e, Error::MissingTrieNode { .. }), "{e}"),
            }
        }
    }
}

/// Builds a Substrate trie (layout V0 or V1) and collects every node and hashed value.
struct TrieBuilder {
    v1: bool,
    items: Vec<Vec<u8>>,
}

fn nibbles(key: &[u8]) -> Vec<u8> {
    key.iter().flat_map(|b| [b >> 4, b & 0x0f]).collect()
}

impl TrieBuilder {
    fn build(v1: bool, entries: &BTreeMap<Vec<u8>, Vec<u8>>) -> (H256, Vec<Vec<u8>>) {
        let mut builder = TrieBuilder {
            v1,
            items: Vec::new(),
        };
        let keyed: Vec<(Vec<u8>, &[u8])> = entries
            .iter()
            .map(|(k, v)| (nibbles(k), v.as_slice()))
            .collect();
        let root = if keyed.is_empty() {
            vec![0]
        } else {
            builder.node(&keyed, 0)
        };
        let hash = blake2_256(&root);
        builder.items.push(root);
        (hash, builder.items)
    }

    fn header(first: u8, prefix_bits: u32, count: usize, out: &mut Vec<u8>) {
        let max = usize::from(0xffu8 >> prefix_bits);
        if count < max {
            out.push(first | count as u8);
            return;
        }
        out.push(first | max as u8);
        let mut rest = count - max;
        while rest >= 255 {
            out.push(255);
            rest -= 255;
        }
        out.push(rest as u8);
    }

    fn partial(nibbles: &[u8], out: &mut Vec<u8>) {
        let mut chunk = nibbles;
        if nibbles.len() % 2 == 1 {
            out.push(nibbles[0]);
            chunk = &nibbles[1..];
        }
        out.extend(chunk.chunks(2).map(|p| (p[0] << 4) | p[1]));
    }

    fn value(&mut self, value: &[u8], out: &mut Vec<u8>) {
        if self.hashed(value) {
            out.extend_from_slice(&blake2_256(value).0);
            self.items.push(value.to_vec());
        } else {
            Compact(value.len() as u32).encode_to(out);
            out.extend_from_slice(value);
        }
    }

    fn hashed(&self, value: &[u8]) -> bool {
        self.v1 && value.len() >= 33
    }

    /// Encodes the node for `entries` (sorted, keys as nibbles), all sharing
    /// `entries[..][..depth]`.
    fn node(&mut self, entries: &[(Vec<u8>, &[u8])], depth: usize) -> Vec<u8> {
        let mut out = Vec::new();
        if let [(key, value)] = entries {
            let partial = &key[depth..];
            if self.hashed(value) {
                Self::header(0b0010_0000, 3, partial.len(), &mut out);
            } else {
                Self::header(0b0100_0000, 2, partial.len(), &mut out);
            }
            Self::partial(partial, &mut out);
            self.value(value, &mut out);
            return out;
        }
        let first = &entries[0].0;
        let last = &entries[entries.len() - 1].0;
        let common = first[depth..]
            .iter()
            .zip(&last[depth..])
            .take_while(|(a, b)| a == b)
            .count();
        let at = depth + common;
        let (own, rest) = match entries.iter().position(|(k, _)| k.len() == at) {
            Some(i) => (
                Some(entries[i].1),
                [&entries[..i], &entries[i + 1..]].concat(),
            ),
            None => (None, entries.to_vec()),
        };
        let partial = &first[depth..at];
        match own {
            Some(v) if self.hashed(v) => Self::header(0b0001_0000, 4, partial.len(), &mut out),
            Some(_) => Self::header(0b1100_0000, 2, partial.len(), &mut out),
            None => Self::header(0b1000_0000, 2, partial.len(), &mut out),
        }
        Self::partial(partial, &mut out);
        let mut bitmap = 0u16;
        let mut children = Vec::new();
        for nibble in 0..16u8 {
            let group: Vec<_> = rest
                .iter()
                .filter(|(k, _)| k[at] == nibble)
                .cloned()
                .collect();
            if group.is_empty() {
                continue;
            }
            bitmap |= 1 << nibble;
            let child = self.node(&group, at + 1);
            if child.len() >= 32 {
                let hash = blake2_256(&child);
                self.items.push(child);
                Compact(32u32).encode_to(&mut children);
                children.extend_from_slice(&hash.0);
            } else {
                Compact(child.len() as u32).encode_to(&mut children);
                children.extend_from_slice(&child);
            }
        }
        out.extend_from_slice(&bitmap.to_le_bytes());
        if let Some(v) = own {
            self.value(v, &mut out);
        }
        out.extend(children);
        out
    }
}

fn sample() -> BTreeMap<Vec<u8>, Vec<u8>> {
    let mut m = BTreeMap::new();
    m.insert(b"alfa".to_vec(), b"1".to_vec());
    m.insert(b"alfabet".to_vec(), vec![7; 40]);
    m.insert(b"alfalfa".to_vec(), vec![8; 33]);
    m.insert(b"b".to_vec(), vec![9; 32]);
    m.insert(vec![0x12, 0x34], vec![]);
    m.insert(vec![0x12, 0x35], vec![1]);
    m.insert(vec![0xff; 80], vec![0xaa; 300]);
    m.insert(b"al".to_vec(), vec![2; 100]);
    m
}

#[test]
fn constructed_tries_prove_values_and_absences_in_both_layouts() {
    let entries = sample();
    for v1 in [false, true] {
        let (root, items) = TrieBuilder::build(v1, &entries);
        let proof = ReadProof::new(items.clone());
        for (key, value) in &entries {
            assert_eq!(
                proof.read(&root, key).expect("complete"),
                Some(value.as_slice())
            );
        }
        for absent in [
            &b"alf"[..],
            b"alfab",
            b"alfabets",
            b"c",
            b"",
            &[0x12],
            &[0x12, 0x36],
            &[0xff; 79],
        ] {
            assert_eq!(
                proof.read(&root, absent).expect("complete"),
                None,
                "{absent:?}"
            );
        }
        // V1 stores long values by hash: they are separate proof items.
        let hashed_values = items
            .iter()
            .filter(|i| entries.values().any(|v| v == *i))
            .count();
        assert_eq!(hashed_values > 0, v1);
        // Every item matters to some lookup; without it the lookup errors, never lies.
        for i in 0..items.len() {
            let mut fewer = items.clone();
            fewer.remove(i);
            let proof = ReadProof::new(fewer);
            let mut missed = false;
            for (key, value) in &entries {
                match proof.read(&root, key) {
                    Ok(found) => assert_eq!(found, Some(value.as_slice())),
                    Err(Error::MissingTrieNode { .. }) => missed = true,
                    Err(e) => panic!("{e}"),
                }
            }
            assert!(missed, "item {i} was needed by no lookup");
        }
    }
}

#[test]
fn long_partial_keys_use_continuation_bytes() {
    // A single 200-byte key: a leaf with 400 nibbles (header continuation bytes).
    let entries: BTreeMap<_, _> = [(vec![0x42; 200], vec![1, 2, 3])].into_iter().collect();
    let (root, items) = TrieBuilder::build(true, &entries);
    assert_eq!(
        &items[0][..3],
        &[0x7f, 0xff, 82],
        "0x40|63, then 255 + 82 more: 400 nibbles"
    );
    let proof = ReadProof::new(items);
    assert_eq!(
        proof.read(&root, &[0x42; 200]).expect("complete"),
        Some(&[1u8, 2, 3][..])
    );
    assert_eq!(proof.read(&root, &[0x42; 199]).expect("complete"), None);
}

#[test]
fn empty_trie_proves_every_key_absent() {
    let (root, items) = TrieBuilder::build(false, &BTreeMap::new());
    assert_eq!(root, blake2_256(&[0]));
    let proof = ReadProof::new(items);
    assert_eq!(proof.read(&root, b"anything").expect("complete"), None);
}

#[test]
fn malformed_nodes_are_typed_errors() {
    for node in [
        &[0x01][..],                           // reserved header (escape)
        &[0x41],                               // leaf, 1 nibble, truncated
        &[0x41, 0x10, 0x00],                   // odd nibble with non-zero padding
        &[0x80, 0x00, 0x00],                   // branch with empty bitmap
        &[0x40, 0x00, 0x00],                   // leaf with a trailing byte
        &[0x00, 0x00],                         // empty node with trailing data
        &[0x80, 0x01, 0x00, 0x84, 0, 0, 0, 0], // child reference of 33 bytes
    ] {
        let root = blake2_256(node);
        let proof = ReadProof::new([node.to_vec()]);
        assert!(
            matches!(
                proof.read(&root, &[0x12]),
                Err(Error::InvalidTrieNode { .. })
            ),
            "{node:?}"
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn random_tries_round_trip(
        entries in prop::collection::btree_map(
            prop::collection::vec(any::<u8>(), 0..6),
            prop::collection::vec(any::<u8>(), 0..70),
            0..24,
        ),
        probes in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..6), 0..16),
        v1 in any::<bool>(),
    ) {
        let (root, items) = TrieBuilder::build(v1, &entries);
        let proof = ReadProof::new(items);
        for (key, value) in &entries {
            prop_assert_eq!(proof.read(&root, key).expect("complete"), Some(value.as_slice()));
        }
        for key in &probes {
            let expected = entries.get(key).map(Vec::as_slice);
            prop_assert_eq!(proof.read(&root, key).expect("complete"), expected);
        }
    }

    #[test]
    fn arbitrary_nodes_never_panic(node in prop::collection::vec(any::<u8>(), 0..200), key in prop::collection::vec(any::<u8>(), 0..8)) {
        let root = blake2_256(&node);
        let _ = ReadProof::new([node]).read(&root, &key);
    }
}
