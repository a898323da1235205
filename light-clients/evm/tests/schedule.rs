//! Constructed chains (no real chain data with votes or a protocol switch was
//! available): BFT and IBFT 1.0 votes, epoch resets, an IBFT 1.0 -> QBFT
//! transition, the schedule's validation, and the stored state's round trip.

mod common;

use common::chain::BftChain;
use isthmus_light_client_evm::{
    Address, BftKind, ClientState, ConfigError, ConsensusConfig, ConsensusRule, Error,
    EvmLightClient, FinalityMode, Header,
};
use proptest::prelude::*;

fn rule(from_block: u64, protocol: FinalityMode, epoch: u64) -> ConsensusRule {
    ConsensusRule {
        from_block,
        protocol,
        epoch,
    }
}

fn client(chain: &BftChain, config: &ConsensusConfig) -> EvmLightClient {
    EvmLightClient::from_checkpoint(config, chain.checkpoint(), &chain.head, None)
        .expect("genesis checkpoint")
}

/// Proposes a vote from each of `voters` (one block each) and returns the
/// headers, verified by `lc`.
fn vote(
    chain: &mut BftChain,
    lc: &mut EvmLightClient,
    voters: &[Address],
    subject: Address,
    add: bool,
) {
    for p in voters {
        let sealers: Vec<Address> = chain.validators.clone();
        let h = chain.build(*p, &sealers, Some((subject, add)));
        lc.verify_headers([h.clone()]).expect("vote block verifies");
        chain.push(h);
    }
}

#[test]
fn bft_votes_add_and_drop_with_a_majority() {
    for kind in [BftKind::Qbft, BftKind::Ibft2, BftKind::Ibft1] {
        let mut chain = BftChain::new(kind, 4);
        let mut lc = client(&chain, &ConsensusConfig::single(kind.into(), 1000));
        let newcomer = chain.add_key(50);
        let v = chain.validators.clone();
        // two of four is not a majority
        vote(&mut chain, &mut lc, &v[..2], newcomer, true);
        assert_eq!(lc.authorities().len(), 4, "{kind:?}");
        // the third vote passes (> 4/2)
        vote(&mut chain, &mut lc, &v[2..3], newcomer, true);
        assert!(lc.authorities().contains(&newcomer), "{kind:?}");
        chain.validators = lc.authorities();
        // the old list is now refused; the new one is accepted
        let mut stale = chain.build_plain(4);
        if let Some(pos) = chain.validators.iter().position(|a| *a == newcomer) {
            let mut old = chain.validators.clone();
            old.remove(pos);
            let keep = std::mem::replace(&mut chain.validators, old);
            stale = chain.build_plain(3);
            chain.validators = keep;
        }
        let r = lc.clone().verify_headers([stale]).expect_err("stale set");
        assert_eq!(r.rule, Error::ValidatorSetMismatch(4), "{kind:?}");
        // drop it again: three of five needed (> 5/2)
        let v = chain.validators.clone();
        let voters: Vec<Address> = v
            .iter()
            .copied()
            .filter(|a| *a != newcomer)
            .take(3)
            .collect();
        vote(&mut chain, &mut lc, &voters[..2], newcomer, false);
        assert_eq!(lc.authorities().len(), 5, "{kind:?}");
        vote(&mut chain, &mut lc, &voters[2..3], newcomer, false);
        assert_eq!(lc.authorities().len(), 4, "{kind:?}");
        assert!(!lc.authorities().contains(&newcomer));
    }
}

#[test]
fn bft_epoch_blocks_reset_pending_votes() {
    for kind in [BftKind::Qbft, BftKind::Ibft1] {
        let mut chain = BftChain::new(kind, 4);
        let mut lc = client(&chain, &ConsensusConfig::single(kind.into(), 4));
        let newcomer = chain.add_key(51);
        let v = chain.validators.clone();
        // blocks 1, 2 vote; 3 is plain; 4 is an epoch block; 5 votes: only 1 vote counts
        vote(&mut chain, &mut lc, &v[..2], newcomer, true);
        for _ in 0..2 {
            let h = chain.build_plain(4);
            lc.verify_headers([h.clone()]).expect("plain");
            chain.push(h);
        }
        assert_eq!(lc.head().number, 4);
        assert!(lc.state().votes.is_empty(), "{kind:?}");
        vote(&mut chain, &mut lc, &v[2..3], newcomer, true);
        assert_eq!(
            lc.authorities().len(),
            4,
            "{kind:?}: reset votes still counted"
        );
        assert_eq!(lc.state().votes.len(), 1);
    }
}

fn migration() -> ConsensusConfig {
    ConsensusConfig {
        schedule: vec![
            rule(0, FinalityMode::Ibft1, 100),
            rule(5, FinalityMode::Qbft, 30_000),
        ],
    }
}

/// An IBFT 1.0 chain of blocks 1-4 (block 3 carries a vote), ready for QBFT at 5.
fn migrating_chain() -> (BftChain, EvmLightClient, Vec<Header>) {
    let mut chain = BftChain::new(BftKind::Ibft1, 4);
    let lc = client(&chain, &migration());
    let candidate = chain.add_key(60);
    let mut headers = Vec::new();
    for n in 1..=4u64 {
        let v = chain.validators.clone();
        let vote = (n == 3).then_some((candidate, true));
        let h = chain.build(v[(n % 4) as usize], &v[..3], vote);
        headers.push(h.clone());
        chain.push(h);
    }
    (chain, lc, headers)
}

#[test]
fn ibft1_to_qbft_transition_carries_the_set_and_drops_votes() {
    let (mut chain, mut lc, headers) = migrating_chain();
    lc.verify_headers(headers).expect("IBFT 1.0 blocks");
    assert_eq!(lc.head().number, 4);
    assert_eq!(lc.mode(), FinalityMode::Qbft);
    assert!(
        lc.state().votes.is_empty(),
        "the pending IBFT 1.0 vote is dropped"
    );
    // block 5 in IBFT 1.0 format is refused
    let v = chain.validators.clone();
    let r = lc
        .clone()
        .verify_headers([chain.build_as(BftKind::Ibft1, v[1], &v[..3], None)])
        .expect_err("old format");
    assert_eq!(r.number, 5);
    // a QBFT block 5 listing another set is refused, naming the block
    let mut wrong = chain.validators.clone();
    wrong.pop();
    let keep = std::mem::replace(&mut chain.validators, wrong);
    let h = chain.build_as(BftKind::Qbft, keep[0], &keep[..3], None);
    chain.validators = keep;
    let r = lc
        .clone()
        .verify_headers([h.clone()])
        .expect_err("wrong set");
    assert_eq!(r.rule, Error::ValidatorSetMismatch(5));
    assert_eq!(
        r.hash,
        isthmus_light_client_evm::bft::bft_block_hash(BftKind::Qbft, &h).expect("hash")
    );
    // the right QBFT block 5 and 6
    for _ in 0..2 {
        let h = chain.build_as(BftKind::Qbft, v[0], &v[1..], None);
        let out = lc.verify_headers([h.clone()]).expect("QBFT block");
        assert!(matches!(
            out[0].finality(),
            isthmus_light_client_evm::Finality::Sealed {
                mode: FinalityMode::Qbft,
                ..
            }
        ));
        chain.push_as(BftKind::Qbft, h);
    }
    assert_eq!(lc.head().number, 6);
}

#[test]
fn schedules_are_validated() {
    let bad = |s: Vec<ConsensusRule>| ConsensusConfig { schedule: s }.validate();
    assert_eq!(bad(vec![]), Err(Error::InvalidConfig(ConfigError::Empty)));
    assert_eq!(
        bad(vec![
            rule(0, FinalityMode::Qbft, 10),
            rule(0, FinalityMode::Ibft2, 10)
        ]),
        Err(Error::InvalidConfig(ConfigError::Unsorted {
            previous: 0,
            next: 0
        }))
    );
    assert_eq!(
        bad(vec![
            rule(5, FinalityMode::Qbft, 10),
            rule(3, FinalityMode::Ibft2, 10)
        ]),
        Err(Error::InvalidConfig(ConfigError::Unsorted {
            previous: 5,
            next: 3
        }))
    );
    assert_eq!(
        bad(vec![rule(0, FinalityMode::Qbft, 0)]),
        Err(Error::InvalidConfig(ConfigError::ZeroEpoch(0)))
    );
    assert_eq!(
        bad(vec![
            rule(0, FinalityMode::FinalizedTag, 1),
            rule(9, FinalityMode::Qbft, 10)
        ]),
        Err(Error::InvalidConfig(ConfigError::FinalizedTagMixed))
    );
    assert_eq!(
        bad(vec![
            rule(0, FinalityMode::Clique, 10),
            rule(9, FinalityMode::Qbft, 10)
        ]),
        Err(Error::InvalidConfig(ConfigError::CliqueTransition(9)))
    );
    assert_eq!(bad(vec![rule(0, FinalityMode::FinalizedTag, 0)]), Ok(()));
    assert_eq!(migration().validate(), Ok(()));
    // a checkpoint before the first rule
    let chain = BftChain::new(BftKind::Qbft, 4);
    let late = ConsensusConfig {
        schedule: vec![rule(10, FinalityMode::Qbft, 10)],
    };
    assert_eq!(
        EvmLightClient::from_checkpoint(&late, chain.checkpoint(), &chain.head, None),
        Err(Error::NoRuleForBlock(0))
    );
}

fn json_round_trip(state: &ClientState) -> ClientState {
    let text = serde_json::to_string(state).expect("serialises");
    serde_json::from_str(&text).expect("parses")
}

#[test]
fn stored_state_is_refused_when_inconsistent() {
    let (_, mut lc, headers) = migrating_chain();
    lc.verify_headers(headers[..3].to_vec())
        .expect("blocks 1-3");
    let state = lc.state();
    assert_eq!(state.votes.len(), 1);
    let text = serde_json::to_value(&state).expect("json");
    assert_eq!(text["protocol"], "ibft1");
    assert!(text["head"]["hash"]
        .as_str()
        .is_some_and(|h| h.starts_with("0x")));
    assert_eq!(
        EvmLightClient::resume(&migration(), state.clone()),
        Ok(lc.clone())
    );
    let refuse = |s: ClientState| EvmLightClient::resume(&migration(), s).expect_err("refused");
    let mut s = state.clone();
    s.version = 99;
    assert!(matches!(
        refuse(s),
        Error::UnsupportedStateVersion { found: 99, .. }
    ));
    let mut s = state.clone();
    s.validators.clear();
    assert!(matches!(refuse(s), Error::InvalidConsensusState(_)));
    let mut s = state.clone();
    s.validators.reverse();
    assert!(matches!(refuse(s), Error::InvalidConsensusState(_)));
    let mut s = state.clone();
    s.protocol = FinalityMode::Qbft;
    assert!(matches!(
        refuse(s),
        Error::StateProtocolMismatch { next: 4, .. }
    ));
    let mut s = state.clone();
    s.head.number = 4;
    assert!(matches!(
        refuse(s),
        Error::StateProtocolMismatch { next: 5, .. }
    ));
    let mut s = state.clone();
    s.votes.push(s.votes[0]);
    assert!(matches!(refuse(s), Error::InvalidConsensusState(_)));
    let mut s = state;
    s.recents.push(isthmus_light_client_evm::RecentSigner {
        number: 1,
        signer: s.validators[0],
    });
    assert!(matches!(refuse(s), Error::InvalidConsensusState(_)));
}

/// A 14-block chain with votes, an epoch reset and a protocol switch: IBFT 1.0
/// (epoch 6) for blocks 0-9, QBFT (epoch 4) from block 10.
fn eventful_chain() -> (ConsensusConfig, EvmLightClient, Vec<Header>) {
    let config = ConsensusConfig {
        schedule: vec![
            rule(0, FinalityMode::Ibft1, 6),
            rule(10, FinalityMode::Qbft, 4),
        ],
    };
    let mut chain = BftChain::new(BftKind::Ibft1, 4);
    let lc = client(&chain, &config);
    let mut follower = lc.clone();
    let a = chain.add_key(70);
    let b = chain.add_key(71);
    let mut headers = Vec::new();
    for n in 1..=14u64 {
        let kind = if n >= 10 {
            BftKind::Qbft
        } else {
            BftKind::Ibft1
        };
        let v = chain.validators.clone();
        let vote = match n {
            1..=3 => Some((a, true)),
            5 | 7 => Some((b, true)),
            8 => Some((v[0], false)),
            11 | 12 => Some((a, false)),
            _ => None,
        };
        let proposer = v[(n as usize) % v.len()];
        let sealers = &v[..bft_quorum(v.len())];
        let h = chain.build_as(kind, proposer, sealers, vote);
        let out = follower
            .verify_headers([h.clone()])
            .expect("eventful block verifies");
        drop(out);
        chain.push_as(kind, h.clone());
        chain.validators = follower.authorities();
        headers.push(h);
    }
    (config, lc, headers)
}

fn bft_quorum(n: usize) -> usize {
    (2 * n).div_ceil(3)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(16))]

    #[test]
    fn following_in_two_parts_through_stored_json_equals_following_at_once(k in 0usize..=14) {
        thread_local! {
            static CHAIN: (ConsensusConfig, EvmLightClient, Vec<Header>) = eventful_chain();
        }
        CHAIN.with(|(config, start, headers)| {
            let mut whole = start.clone();
            whole.verify_headers(headers.clone()).expect("whole chain");
            let mut first = start.clone();
            if k > 0 {
                first.verify_headers(headers[..k].to_vec()).expect("first part");
            }
            let mut resumed = EvmLightClient::resume(config, json_round_trip(&first.state()))
                .expect("resumes");
            prop_assert_eq!(&resumed, &first);
            if k < headers.len() {
                resumed.verify_headers(headers[k..].to_vec()).expect("second part");
            }
            prop_assert_eq!(&resumed, &whole);
            prop_assert_eq!(resumed.state(), whole.state());
            Ok(())
        })?;
    }
}

#[test]
fn eventful_chain_changes_the_set() {
    let (_, mut lc, headers) = eventful_chain();
    let start = lc.authorities().len();
    lc.verify_headers(headers).expect("verifies");
    assert_eq!(start, 4);
    // a added at 3; b's two votes reset at epoch 6 then not a majority; v0 not
    // dropped (one vote); a dropped again under QBFT needs 3 of 5: not reached
    assert_eq!(lc.authorities().len(), 5);
    assert_eq!(lc.mode(), FinalityMode::Qbft);
}
