//! Justification rules and authority-set tracking on chains and keys built here.

use ed25519_zebra::{SigningKey, VerificationKeyBytes};
use isthmus_light_client_grandpa::justification::precommit_signing_payload;
use isthmus_light_client_grandpa::{
    AuthorityId, AuthoritySet, AuthoritySetTracker, Commit, Digest, DigestItem, Error,
    GrandpaConsensusLog, GrandpaJustification, Header, Precommit, ReadProof, ScheduledChange,
    SignedPrecommit, H256,
};
use parity_scale_codec::Encode;

fn key(n: u8) -> SigningKey {
    SigningKey::from([n; 32])
}

fn id(key: &SigningKey) -> AuthorityId {
    AuthorityId(VerificationKeyBytes::from(key).into())
}

fn set(set_id: u64, keys: &[SigningKey], weights: &[u64]) -> AuthoritySet {
    AuthoritySet::new(
        set_id,
        keys.iter().zip(weights).map(|(k, w)| (id(k), *w)).collect(),
    )
    .expect("valid set")
}

fn header(parent: &Header, logs: Vec<DigestItem>) -> Header {
    Header {
        parent_hash: parent.hash(),
        number: parent.number + 1,
        state_root: H256([parent.number as u8; 32]),
        extrinsics_root: H256::default(),
        digest: Digest { logs },
    }
}

fn root_header(number: u32) -> Header {
    Header {
        parent_hash: H256([0xee; 32]),
        number,
        state_root: H256::default(),
        extrinsics_root: H256::default(),
        digest: Digest::default(),
    }
}

fn vote(h: &Header) -> Precommit {
    Precommit {
        target_hash: h.hash(),
        target_number: h.number,
    }
}

fn justification(
    target: &Header,
    set_id: u64,
    votes: &[(&SigningKey, Precommit)],
    ancestries: Vec<Header>,
) -> GrandpaJustification {
    let round = 3;
    let precommits = votes
        .iter()
        .map(|(k, precommit)| SignedPrecommit {
            precommit: *precommit,
            signature: k
                .sign(&precommit_signing_payload(precommit, round, set_id))
                .to_bytes(),
            id: id(k),
        })
        .collect();
    GrandpaJustification {
        round,
        commit: Commit {
            target_hash: target.hash(),
            target_number: target.number,
            precommits,
        },
        votes_ancestries: ancestries,
    }
}

/// A justification of `target` with all `keys` voting for it.
fn unanimous(target: &Header, set_id: u64, keys: &[SigningKey]) -> GrandpaJustification {
    let votes: Vec<_> = keys.iter().map(|k| (k, vote(target))).collect();
    justification(target, set_id, &votes, vec![])
}

fn keys(range: std::ops::Range<u8>) -> Vec<SigningKey> {
    range.map(key).collect()
}

#[test]
fn votes_for_descendants_need_exactly_the_used_ancestry() {
    let k = keys(0..4);
    let s = set(0, &k, &[1, 1, 1, 1]);
    let b10 = root_header(10);
    let b11 = header(&b10, vec![]);
    let b12 = header(&b11, vec![]);
    let fork11 = header(&b10, vec![DigestItem::Other(vec![1])]);
    let votes = [
        (&k[0], vote(&b10)),
        (&k[1], vote(&b12)),
        (&k[2], vote(&b11)),
    ];

    let j = justification(&b10, 0, &votes, vec![b11.clone(), b12.clone()]);
    let finality = j.verify(&s).expect("valid");
    assert_eq!((finality.hash(), finality.number()), (b10.hash(), 10));
    j.verify_finalizes(&b10, &s).expect("finalizes b10");
    assert!(matches!(
        j.verify_finalizes(&b11, &s),
        Err(Error::TargetMismatch { .. })
    ));

    let missing = justification(&b10, 0, &votes, vec![b12.clone()]);
    assert!(matches!(
        missing.verify(&s),
        Err(Error::PrecommitNotDescendant { index: 1 })
    ));

    let unused = justification(
        &b10,
        0,
        &votes,
        vec![b11.clone(), b12.clone(), fork11.clone()],
    );
    assert!(
        matches!(unused.verify(&s), Err(Error::UnusedAncestry { hash }) if hash == fork11.hash())
    );

    let twice = justification(&b10, 0, &votes, vec![b11.clone(), b12.clone(), b11.clone()]);
    assert!(matches!(
        twice.verify(&s),
        Err(Error::UnusedAncestry { .. })
    ));

    // A vote for a block that is not below the target (its ancestor or a wrong number).
    let ancestor = justification(&b11, 0, &[(&k[0], vote(&b10))], vec![]);
    assert!(matches!(
        ancestor.verify(&s),
        Err(Error::PrecommitNotDescendant { index: 0 })
    ));
    let mut lying = vote(&b12);
    lying.target_number = 13;
    let wrong_number = justification(&b10, 0, &[(&k[0], lying)], vec![b11, b12]);
    assert!(matches!(
        wrong_number.verify(&s),
        Err(Error::PrecommitNotDescendant { index: 0 })
    ));
}

#[test]
fn weights_and_equivocations() {
    let k = keys(0..4);
    let b10 = root_header(10);
    let b11 = header(&b10, vec![]);
    let weighted = set(0, &k, &[5, 1, 1, 1]);
    assert_eq!(weighted.threshold(), 6);
    let heavy = justification(&b10, 0, &[(&k[0], vote(&b10)), (&k[1], vote(&b10))], vec![]);
    assert_eq!(
        heavy
            .verify(&weighted)
            .expect("5 + 1 reaches 6")
            .signed_weight(),
        6
    );
    let light = justification(
        &b10,
        0,
        &[
            (&k[1], vote(&b10)),
            (&k[2], vote(&b10)),
            (&k[3], vote(&b10)),
        ],
        vec![],
    );
    assert!(matches!(
        light.verify(&weighted),
        Err(Error::InsufficientWeight {
            signed: 3,
            threshold: 6
        })
    ));

    // An equivocating voter (two different votes) counts once.
    let even = set(0, &k, &[1, 1, 1, 1]);
    let votes = [
        (&k[0], vote(&b10)),
        (&k[1], vote(&b10)),
        (&k[1], vote(&b11)),
    ];
    let j = justification(&b10, 0, &votes, vec![b11.clone()]);
    assert!(matches!(
        j.verify(&even),
        Err(Error::InsufficientWeight {
            signed: 2,
            threshold: 3
        })
    ));
    let votes = [
        (&k[0], vote(&b10)),
        (&k[1], vote(&b10)),
        (&k[1], vote(&b11)),
        (&k[2], vote(&b11)),
    ];
    let j = justification(&b10, 0, &votes, vec![b11.clone()]);
    assert_eq!(j.verify(&even).expect("three voters").signed_weight(), 3);
    // A third vote by the same voter is refused.
    let b12 = header(&b11, vec![]);
    let votes = [
        (&k[0], vote(&b10)),
        (&k[0], vote(&b11)),
        (&k[0], vote(&b12)),
    ];
    let j = justification(&b10, 0, &votes, vec![b11, b12]);
    assert!(matches!(
        j.verify(&even),
        Err(Error::DuplicatePrecommit { index: 2, .. })
    ));
}

fn change_log(next: &[SigningKey], delay: u32) -> DigestItem {
    let change = ScheduledChange {
        next_authorities: next.iter().map(|k| (id(k), 1)).collect(),
        delay,
    };
    DigestItem::Consensus(
        *b"FRNK",
        GrandpaConsensusLog::ScheduledChange(change).encode(),
    )
}

fn forced_log(next: &[SigningKey], delay: u32, median: u32) -> DigestItem {
    let change = ScheduledChange {
        next_authorities: next.iter().map(|k| (id(k), 1)).collect(),
        delay,
    };
    DigestItem::Consensus(
        *b"FRNK",
        GrandpaConsensusLog::ForcedChange {
            median_last_finalized: median,
            change,
        }
        .encode(),
    )
}

#[test]
fn scheduled_change_takes_effect_at_its_block() {
    let (old, new) = (keys(0..4), keys(10..13));
    let b10 = root_header(10);
    let mut tracker = AuthoritySetTracker::new(set(7, &old, &[1; 4]), b10.hash(), 10);
    let b11 = header(&b10, vec![change_log(&new, 2)]);
    let b12 = header(&b11, vec![]);
    let b13 = header(&b12, vec![]);
    let b14 = header(&b13, vec![]);

    tracker
        .import(b11.clone(), &unanimous(&b11, 7, &old))
        .expect("old set finalizes 11");
    let pending = tracker.pending_change().expect("change pending");
    assert_eq!(
        (pending.effective_block(), pending.next_set().set_id()),
        (13, 8)
    );
    assert!(matches!(
        tracker.import(b11.clone(), &unanimous(&b11, 7, &old)),
        Err(Error::NotNewer {
            number: 11,
            finalized: 11
        })
    ));
    tracker
        .import(b12.clone(), &unanimous(&b12, 7, &old))
        .expect("old set finalizes 12");
    // Block 13 is still the old set's; the new one cannot finalize it.
    let before = tracker.clone();
    assert!(tracker
        .import(b13.clone(), &unanimous(&b13, 8, &new))
        .is_err());
    assert_eq!(tracker, before, "a failed import changes nothing");
    tracker
        .import(b13.clone(), &unanimous(&b13, 7, &old))
        .expect("old set finalizes 13");
    assert_eq!(tracker.authority_set().set_id(), 8);
    assert!(tracker.pending_change().is_none());
    assert!(tracker
        .import(b14.clone(), &unanimous(&b14, 7, &old))
        .is_err());
    let finalized = tracker
        .import(b14.clone(), &unanimous(&b14, 8, &new))
        .expect("new set");
    assert_eq!((finalized.hash(), finalized.number()), (b14.hash(), 14));
    assert_eq!(tracker.finalized(), (b14.hash(), 14));
}

#[test]
fn blocks_past_the_change_are_finalized_by_the_new_set() {
    let (old, new) = (keys(0..4), keys(10..13));
    let b10 = root_header(10);
    let mut tracker = AuthoritySetTracker::new(set(0, &old, &[1; 4]), b10.hash(), 10);
    let b11 = header(&b10, vec![change_log(&new, 1)]);
    let b12 = header(&b11, vec![]);
    let b13 = header(&b12, vec![]);
    tracker
        .import(b11.clone(), &unanimous(&b11, 0, &old))
        .expect("announcing block");
    assert!(tracker
        .import(b13.clone(), &unanimous(&b13, 0, &old))
        .is_err());
    tracker
        .import(b13.clone(), &unanimous(&b13, 1, &new))
        .expect("past block 12");
    assert_eq!(tracker.authority_set().set_id(), 1);

    // Delay 0: in force from the announcing block on.
    let newer = keys(20..22);
    let b14 = header(&b13, vec![change_log(&newer, 0)]);
    let b15 = header(&b14, vec![]);
    tracker
        .import(b14.clone(), &unanimous(&b14, 1, &new))
        .expect("announcing block");
    assert_eq!(tracker.authority_set().set_id(), 2);
    tracker
        .import(b15.clone(), &unanimous(&b15, 2, &newer))
        .expect("new set");

    // A second announcement while one is pending is refused.
    let b16 = header(&b15, vec![change_log(&new, 5)]);
    let b17 = header(&b16, vec![change_log(&old, 5)]);
    tracker
        .import(b16, &unanimous(&b15, 2, &newer))
        .expect_err("wrong target");
    let b16 = header(&b15, vec![change_log(&new, 5)]);
    tracker
        .import(b16.clone(), &unanimous(&b16, 2, &newer))
        .expect("announces");
    let b17 = Header {
        parent_hash: b16.hash(),
        ..b17
    };
    assert!(matches!(
        tracker.import(b17.clone(), &unanimous(&b17, 2, &newer)),
        Err(Error::OverlappingChange { number: 17 })
    ));
}

#[test]
fn forced_change_lets_the_new_set_take_over() {
    let (old, new) = (keys(0..4), keys(10..13));
    let b10 = root_header(10);
    let mut tracker = AuthoritySetTracker::new(set(0, &old, &[1; 4]), b10.hash(), 10);
    let b11 = header(&b10, vec![forced_log(&new, 2, 10)]);
    let b12 = header(&b11, vec![]);
    let b14 = header(&header(&b12, vec![]), vec![]);
    tracker
        .import(b11.clone(), &unanimous(&b11, 0, &old))
        .expect("announcing block");
    assert_eq!(
        tracker.pending_change().and_then(|p| p.forced_base()),
        Some(10)
    );
    // Before the effective block (13) the old set may still finalize.
    tracker
        .import(b12.clone(), &unanimous(&b12, 0, &old))
        .expect("old set, block 12");
    assert_eq!(tracker.authority_set().set_id(), 0);
    // The old set cannot finalize past 13; the new one can.
    assert!(tracker
        .import(b14.clone(), &unanimous(&b14, 0, &old))
        .is_err());
    tracker
        .import(b14.clone(), &unanimous(&b14, 1, &new))
        .expect("new set");
    assert_eq!(tracker.authority_set().set_id(), 1);
}

#[test]
fn finalized_header_reads_storage() {
    // A one-leaf trie: key 0xab, value [1, 2, 3]; leaf header 0x42 = 2 nibbles.
    let leaf = vec![0x42, 0xab, 0x0c, 1, 2, 3];
    let k = keys(0..1);
    let b10 = root_header(10);
    let mut b11 = header(&b10, vec![]);
    b11.state_root = isthmus_light_client_grandpa::blake2_256(&leaf);
    let mut tracker = AuthoritySetTracker::new(set(0, &k, &[1]), b10.hash(), 10);
    let finalized = tracker
        .import(b11.clone(), &unanimous(&b11, 0, &k))
        .expect("valid");
    let proof = ReadProof::new([leaf]);
    let read = finalized
        .read_storage(&proof, &[0xab])
        .expect("complete proof");
    assert_eq!(
        (read.block_hash(), read.block_number(), read.key()),
        (b11.hash(), 11, &[0xab][..])
    );
    assert_eq!(read.value(), Some(&[1u8, 2, 3][..]));
    assert_eq!(
        finalized
            .read_storage(&proof, &[0xac])
            .expect("complete")
            .value(),
        None
    );
}

/// A proven chain that announces a change: the enacting block must be the justified
/// one (its justification by the outgoing set is mandatory); after it, only the new
/// set finalizes, and a justification by the old set is refused.
#[test]
fn chains_follow_changes_only_through_the_enacting_blocks_justification() {
    let (old, new) = (keys(0..4), keys(10..13));
    let b10 = root_header(10);
    let b11 = header(&b10, vec![change_log(&new, 2)]);
    let b12 = header(&b11, vec![]);
    let b13 = header(&b12, vec![]);
    let b14 = header(&b13, vec![]);
    let b15 = header(&b14, vec![]);
    let start = AuthoritySetTracker::new(set(7, &old, &[1; 4]), b10.hash(), 10);

    // Passing over block 13 (which enacts set 8) to a justification of 14 is refused,
    // whichever set signed it.
    let mut tracker = start.clone();
    for (set_id, keys) in [(7, &old), (8, &new)] {
        assert!(matches!(
            tracker.import_chain(
                vec![b11.clone(), b12.clone(), b13.clone(), b14.clone()],
                &unanimous(&b14, set_id, keys)
            ),
            Err(Error::MandatoryJustification {
                number: 13,
                set_id: 8
            })
        ));
    }
    assert_eq!(tracker, start);

    // Up to 13 with the old set's justification, then the new set.
    let finalized = tracker
        .import_chain(
            vec![b11.clone(), b12.clone(), b13.clone()],
            &unanimous(&b13, 7, &old),
        )
        .expect("the old set finalizes the enacting block");
    assert_eq!(finalized.len(), 3);
    assert!(finalized[2].is_justified() && !finalized[0].is_justified());
    assert_eq!(tracker.authority_set().set_id(), 8);
    let before = tracker.clone();
    assert!(matches!(
        tracker.import_chain(vec![b14.clone(), b15.clone()], &unanimous(&b15, 7, &old)),
        Err(Error::UnknownVoter { .. })
    ));
    assert_eq!(tracker, before);
    tracker
        .import_chain(vec![b14, b15.clone()], &unanimous(&b15, 8, &new))
        .expect("the new set finalizes after the change");
    assert_eq!(tracker.finalized(), (b15.hash(), 15));

    // The state survives encoding, pending change included.
    let mut pending = start.clone();
    pending
        .import_chain(vec![b11.clone()], &unanimous(&b11, 7, &old))
        .expect("announcing block");
    assert!(pending.pending_change().is_some());
    let encoded = pending.encode_state();
    assert_eq!(
        AuthoritySetTracker::decode_state(&encoded).expect("decodes"),
        pending
    );
    let mut bad = encoded;
    bad[0] = 9;
    assert!(matches!(
        AuthoritySetTracker::decode_state(&bad),
        Err(Error::BadState { .. })
    ));
}
