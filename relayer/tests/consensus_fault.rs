//! Two headers sealed by a quorum of one validator set at one height are a
//! consensus fault: the follower halts and keeps both as evidence. Real data with
//! such a fork does not exist (it takes validators that sign twice), so the chain
//! here is self-signed: a QBFT network of 4 validators whose keys the test holds.
#![expect(
    clippy::unwrap_used,
    reason = "test code: a panic is the failure report"
)]

#[path = "../../light-clients/evm/tests/common/chain.rs"]
mod chain;

use chain::BftChain;
use isthmus_config::{ConsensusStep, SealProtocol, SealedFinality, TrustedBlock};
use isthmus_light_client_evm::{bft, BftKind, B256};
use isthmus_relayer::ledger::follow::Follower;

fn sealed(genesis_hash: B256) -> SealedFinality {
    SealedFinality {
        checkpoint: TrustedBlock {
            number: 0,
            hash: genesis_hash.0,
        },
        validators: None,
        schedule: vec![ConsensusStep {
            from_block: 0,
            protocol: SealProtocol::Qbft,
            epoch: 30_000,
        }],
    }
}

#[test]
fn two_sealed_headers_at_one_height_halt_with_both_as_evidence() {
    let mut net = BftChain::new(BftKind::Qbft, 4);
    let genesis = net.head.clone();
    let mut follower = Follower::start("besu", 3, &sealed(net.head_hash), &genesis).unwrap();
    let ours = net.extend_plain(5, 3);
    follower.follow(ours.clone()).unwrap();

    // The same validators seal another block 5 (another proposer, another set of
    // three sealers), and the node goes on from it.
    let mut fork = BftChain::new(BftKind::Qbft, 4);
    for h in &ours[..4] {
        fork.push(h.clone());
    }
    let proposer = fork.validators[3];
    let sealers = fork.validators[1..].to_vec();
    let theirs5 = fork.build(proposer, &sealers, None);
    assert_ne!(
        bft::bft_block_hash(BftKind::Qbft, &theirs5).unwrap(),
        bft::bft_block_hash(BftKind::Qbft, &ours[4]).unwrap(),
        "a different block at height 5"
    );
    bft::verify_seals(BftKind::Qbft, &theirs5, &net.validators).unwrap();
    fork.push(theirs5.clone());
    let theirs6 = fork.build_plain(3);

    let halt = follower.follow(vec![theirs6]).unwrap_err();
    assert_eq!(halt.number, 6);
    assert!(follower.conflict(&theirs5), "a quorum sealed both");
    let halt = follower.halted().unwrap();
    assert!(halt.rule.starts_with("consensus fault"), "{}", halt.rule);
    let both = halt.evidence["conflicting_headers"].as_array().unwrap();
    assert_eq!(both.len(), 2);
    assert_eq!(both[0]["number"], 5);
    assert_eq!(both[1]["number"], 5);
    assert_ne!(both[0]["hash"], both[1]["hash"]);
    assert_eq!(
        follower.head().number,
        5,
        "our block 5 stays the verified head"
    );
}

#[test]
fn a_fork_sealed_by_too_few_validators_is_a_broken_link_not_a_consensus_fault() {
    let mut net = BftChain::new(BftKind::Qbft, 4);
    let genesis = net.head.clone();
    let mut follower = Follower::start("besu", 3, &sealed(net.head_hash), &genesis).unwrap();
    let ours = net.extend_plain(3, 3);
    follower.follow(ours.clone()).unwrap();
    let mut fork = BftChain::new(BftKind::Qbft, 4);
    fork.push(ours[0].clone());
    fork.push(ours[1].clone());
    let proposer = fork.validators[2];
    let weak = fork.build(proposer, &fork.validators[2..], None);
    fork.push(weak.clone());
    let next = fork.build_plain(3);
    assert_eq!(follower.follow(vec![next]).unwrap_err().number, 4);
    assert!(!follower.conflict(&weak), "two seals of four are no quorum");
    assert!(!follower
        .halted()
        .unwrap()
        .rule
        .starts_with("consensus fault"));
}
