//! Following finality from an anchor: 10,000 blocks with an authority-set change
//! every 1,000 (a `ScheduledChange` with no delay, in the block that ends the set),
//! imported as a node's `grandpa_proveFinality` serves them: for each set, the chain
//! of its 1,000 headers and the justification of its last block, 199 precommits of a
//! set of 297. In the same run, the signature verification alone (the ten
//! justifications against their sets), to give its share.
//!
//! Run: `cargo bench -p isthmus-light-client-grandpa --bench following`.
#![expect(
    missing_docs,
    reason = "criterion's macros generate undocumented items"
)]

use criterion::{criterion_group, criterion_main, Criterion};
use ed25519_zebra::{SigningKey, VerificationKey};
use isthmus_light_client_grandpa::justification::precommit_signing_payload;
use isthmus_light_client_grandpa::{
    AuthorityId, AuthoritySet, AuthoritySetTracker, Commit, ConsensusEngineId, Digest, DigestItem,
    GrandpaConsensusLog, GrandpaJustification, Header, Precommit, ScheduledChange, SignedPrecommit,
    H256,
};
use parity_scale_codec::Encode;

const BLOCKS: u32 = 10_000;
const SET_LENGTH: u32 = 1_000;
const AUTHORITIES: u16 = 297;
const SIGNERS: usize = 199;

fn keys(set: u64) -> Vec<SigningKey> {
    (0..AUTHORITIES)
        .map(|i| {
            let mut seed = [0u8; 32];
            seed[..8].copy_from_slice(&set.to_le_bytes());
            seed[8..10].copy_from_slice(&i.to_le_bytes());
            SigningKey::from(seed)
        })
        .collect()
}

fn set_of(keys: &[SigningKey]) -> Vec<(AuthorityId, u64)> {
    keys.iter()
        .map(|k| (AuthorityId(VerificationKey::from(k).into()), 1))
        .collect()
}

struct Recording {
    anchor: Header,
    genesis: AuthoritySet,
    /// Per set: its headers and the justification of the last one, with the set.
    proofs: Vec<(Vec<Header>, GrandpaJustification, AuthoritySet)>,
}

fn record() -> Recording {
    const FRNK: ConsensusEngineId = *b"FRNK";
    let anchor = Header {
        parent_hash: H256([0; 32]),
        number: 0,
        state_root: H256([1; 32]),
        extrinsics_root: H256([2; 32]),
        digest: Digest::default(),
    };
    let mut parent = anchor.clone();
    let mut current = keys(0);
    let genesis = AuthoritySet::new(0, set_of(&current)).expect("set");
    let mut proofs = Vec::new();
    for set_id in 0..u64::from(BLOCKS / SET_LENGTH) {
        let next = keys(set_id + 1);
        let mut headers = Vec::new();
        for _ in 0..SET_LENGTH {
            let number = parent.number + 1;
            let mut logs = vec![DigestItem::PreRuntime(*b"aura", number.encode())];
            if number.is_multiple_of(SET_LENGTH) {
                logs.push(DigestItem::Consensus(
                    FRNK,
                    GrandpaConsensusLog::ScheduledChange(ScheduledChange {
                        next_authorities: set_of(&next),
                        delay: 0,
                    })
                    .encode(),
                ));
            }
            let header = Header {
                parent_hash: parent.hash(),
                number,
                state_root: H256([3; 32]),
                extrinsics_root: H256([4; 32]),
                digest: Digest { logs },
            };
            parent = header.clone();
            headers.push(header);
        }
        let last = headers.last().expect("headers");
        let precommit = Precommit {
            target_hash: last.hash(),
            target_number: last.number,
        };
        let payload = precommit_signing_payload(&precommit, 1, set_id);
        let justification = GrandpaJustification {
            round: 1,
            commit: Commit {
                target_hash: precommit.target_hash,
                target_number: precommit.target_number,
                precommits: current[..SIGNERS]
                    .iter()
                    .map(|k| SignedPrecommit {
                        precommit,
                        signature: k.sign(&payload).into(),
                        id: AuthorityId(VerificationKey::from(k).into()),
                    })
                    .collect(),
            },
            votes_ancestries: Vec::new(),
        };
        let set = AuthoritySet::new(set_id, set_of(&current)).expect("set");
        proofs.push((headers, justification, set));
        current = next;
    }
    Recording {
        anchor,
        genesis,
        proofs,
    }
}

fn follow(r: &Recording) -> AuthoritySetTracker {
    let mut tracker = AuthoritySetTracker::new(r.genesis.clone(), r.anchor.hash(), 0);
    for (headers, justification, _) in &r.proofs {
        tracker
            .import_chain(headers.clone(), justification)
            .expect("verifies");
    }
    tracker
}

fn bench(c: &mut Criterion) {
    let r = record();
    let done = follow(&r);
    assert_eq!(done.finalized().1, BLOCKS);
    assert_eq!(
        done.authority_set().set_id(),
        u64::from(BLOCKS / SET_LENGTH)
    );

    let mut group = c.benchmark_group("follow_10000_blocks_set_change_every_1000");
    group.sample_size(10);
    group.bench_function("import_proofs_from_anchor", |b| b.iter(|| follow(&r)));
    group.bench_function("signature_verification_only", |b| {
        b.iter(|| {
            for (_, justification, set) in &r.proofs {
                justification.verify(set).expect("verifies");
            }
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
