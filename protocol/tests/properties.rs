//! Property tests: encoding round trips, decoding never panics, branches bind leaf,
//! index and root.
#![expect(
    clippy::unwrap_used,
    reason = "test code: a panic is the failure report"
)]

use isthmus_protocol::{Address32, IncrementalTree, MerkleTree, Message, MAX_BODY_LEN};
use proptest::prelude::*;

fn any_message() -> impl Strategy<Value = Message> {
    (
        any::<u64>(),
        any::<u32>(),
        any::<[u8; 32]>(),
        any::<u32>(),
        any::<[u8; 32]>(),
        any::<u64>(),
        prop::collection::vec(any::<u8>(), 0..600),
    )
        .prop_map(
            |(nonce, origin, sender, destination, recipient, deadline, body)| Message {
                nonce,
                origin,
                sender: Address32(sender),
                destination,
                recipient: Address32(recipient),
                deadline,
                body,
            },
        )
}

proptest! {
    #[test]
    fn encode_decode_round_trip(m in any_message()) {
        let bytes = m.encode();
        prop_assert_eq!(bytes.len(), m.encoded_len());
        prop_assert_eq!(Message::decode(&bytes), Ok(m));
    }

    #[test]
    fn decoding_arbitrary_bytes_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..400)) {
        if let Ok(m) = Message::decode(&bytes) {
            // Anything accepted is canonical: it re-encodes to the same bytes.
            prop_assert_eq!(m.encode(), bytes);
        }
    }

    #[test]
    fn mutated_encodings_never_panic_and_stay_canonical(m in any_message(), pos in any::<usize>(), byte in any::<u8>(), cut in any::<usize>()) {
        let mut bytes = m.encode();
        let i = pos % bytes.len();
        bytes[i] = byte;
        bytes.truncate(bytes.len() - cut % 3);
        if let Ok(decoded) = Message::decode(&bytes) {
            prop_assert_eq!(decoded.encode(), bytes);
            prop_assert!(decoded.body.len() <= MAX_BODY_LEN);
        }
    }

    #[test]
    fn every_branch_verifies_only_at_its_place(n in 1usize..70, seed in any::<u64>(), other in any::<[u8; 32]>()) {
        let leaves: Vec<[u8; 32]> = (0..n)
            .map(|i| isthmus_protocol::keccak256(&[seed.to_be_bytes(), (i as u64).to_be_bytes()].concat()))
            .collect();
        let mut inc = IncrementalTree::new();
        for l in &leaves {
            inc.insert(*l).unwrap();
        }
        let tree = MerkleTree::from_leaves(leaves.clone()).unwrap();
        let root = tree.root();
        prop_assert_eq!(inc.root(), root);
        let count = n as u64;
        for (i, leaf) in leaves.iter().enumerate() {
            let branch = tree.branch(i as u64).unwrap();
            prop_assert!(branch.verify(leaf, &root, count));
            // Any other root.
            prop_assume!(other != root);
            prop_assert!(!branch.verify(leaf, &other, count));
            // Any other index, inside or outside the tree.
            for j in [i as u64 ^ 1, (i as u64 + 1) % (count + 1), count, u64::from(u32::MAX)] {
                if j != i as u64 {
                    let moved = isthmus_protocol::Branch { index: j, ..branch.clone() };
                    prop_assert!(!moved.verify(leaf, &root, count), "leaf {} verified at index {}", i, j);
                }
            }
        }
    }
}
