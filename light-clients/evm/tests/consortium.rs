//! Real consortium-chain fixtures: GoQuorum IBFT 1.0 blocks 0-100 (migrating to
//! QBFT at 101), Rinkeby and Besu Clique, one Besu QBFT header.

mod common;

use common::*;
use isthmus_light_client_evm::bft::{self, bft_block_hash, Ibft1ExtraData};
use isthmus_light_client_evm::{
    Address, BftKind, ConsensusConfig, ConsensusRule, Error, EvmLightClient, Finality,
    FinalityMode, Header, RpcHeader, TrustedCheckpoint, B256,
};
use proptest::prelude::*;

fn json(rel: &str) -> serde_json::Value {
    serde_json::from_str(&fixture(rel)).expect("fixture is JSON")
}

fn header(v: &serde_json::Value) -> Header {
    let r: RpcHeader = serde_json::from_value(v.clone()).expect("rpc header");
    Header::try_from(&r).expect("header converts")
}

fn hash_of(v: &serde_json::Value, field: &str) -> B256 {
    v[field]
        .as_str()
        .and_then(B256::from_hex)
        .expect("hash field")
}

fn addrs(v: &serde_json::Value) -> Vec<Address> {
    v.as_array()
        .expect("array")
        .iter()
        .map(|a| a.as_str().and_then(Address::from_hex).expect("address"))
        .collect()
}

const IBFT1: &str = "ethereum/goquorum-ibft1-blocks-0-100.json";

/// The GoQuorum genesis schedule: IBFT 1.0 (epoch 100), QBFT from block 101.
fn goquorum_schedule() -> ConsensusConfig {
    ConsensusConfig {
        schedule: vec![
            ConsensusRule {
                from_block: 0,
                protocol: FinalityMode::Ibft1,
                epoch: 100,
            },
            ConsensusRule {
                from_block: 101,
                protocol: FinalityMode::Qbft,
                epoch: 30_000,
            },
        ],
    }
}

fn goquorum() -> (serde_json::Value, Vec<Header>, EvmLightClient) {
    let doc = json(IBFT1);
    let headers: Vec<Header> = doc["blocks"]
        .as_array()
        .expect("blocks")
        .iter()
        .map(header)
        .collect();
    let cp = TrustedCheckpoint {
        number: 0,
        hash: hash_of(&doc["blocks"][0], "hash"),
    };
    let lc = EvmLightClient::from_checkpoint(&goquorum_schedule(), cp, &headers[0], None)
        .expect("genesis checkpoint");
    (doc, headers, lc)
}

#[test]
fn goquorum_ibft1_blocks_1_to_100_verify_from_genesis() {
    let (doc, headers, mut lc) = goquorum();
    // The genesis file's extraData is the fixture's block 0 extraData.
    let genesis = json("ethereum/goquorum-ibft1-genesis.json");
    assert_eq!(genesis["extraData"], doc["blocks"][0]["extraData"]);
    let mut validators = addrs(&doc["blocks"][0]["_decoded"]["validators"]);
    validators.sort();
    assert_eq!(lc.authorities(), validators);
    assert_eq!(lc.mode(), FinalityMode::Ibft1);
    for (h, b) in headers
        .iter()
        .zip(doc["blocks"].as_array().expect("blocks"))
    {
        assert_eq!(bft_block_hash(BftKind::Ibft1, h), Ok(hash_of(b, "hash")));
    }
    let verified = lc
        .verify_headers(headers[1..].to_vec())
        .expect("all 100 GoQuorum blocks verify");
    assert_eq!(verified.len(), 100);
    let mut with_signers = 0;
    for (v, b) in verified
        .iter()
        .zip(&doc["blocks"].as_array().expect("blocks")[1..])
    {
        assert_eq!(v.block_hash(), hash_of(b, "hash"));
        let Finality::Sealed {
            mode,
            signers,
            validators: set,
        } = v.finality()
        else {
            panic!("sealed")
        };
        assert_eq!(*mode, FinalityMode::Ibft1);
        assert_eq!(set[..], validators[..]);
        assert_eq!(signers.len(), 4, "block {}", v.value().number);
        if b["_decoded"]["committed_seal_signers"].is_array() {
            let mut expected = addrs(&b["_decoded"]["committed_seal_signers"]);
            expected.sort();
            assert_eq!(*signers, expected);
            with_signers += 1;
        }
        // the proposer seal recovers to the fixture's proposer
        let opened = bft::open_header(BftKind::Ibft1, v.value()).expect("opens");
        let proposer = b["_decoded"]["proposer"]
            .as_str()
            .and_then(Address::from_hex);
        assert_eq!(Some(opened.proposer), proposer);
    }
    assert!(with_signers >= 4);
    assert_eq!(lc.head().number, 100);
    // block 101 is QBFT's: the client already follows the migration
    assert_eq!(lc.mode(), FinalityMode::Qbft);
    assert_eq!(lc.authorities(), validators);
}

#[test]
fn goquorum_ibft1_needs_the_istanbul_digest_and_a_quorum() {
    let (_, headers, lc) = goquorum();
    let mut h = headers[1].clone();
    h.mix_hash = B256::ZERO;
    let r = lc.clone().verify_headers([h]).expect_err("refused");
    assert_eq!(
        r.rule,
        Error::BftConstantField {
            number: 1,
            field: "mixHash"
        }
    );
    // 3 of 5 committed seals is below ceil(2*5/3) = 4
    let mut h = headers[1].clone();
    let mut e = Ibft1ExtraData::decode(&h.extra_data).expect("decodes");
    e.committed_seals.pop();
    h.extra_data = e.encode(true, true);
    assert_eq!(
        lc.clone().verify_headers([h]).map_err(|r| r.rule),
        Err(Error::InsufficientSeals {
            required: 4,
            found: 3
        })
    );
}

/// Clients positioned at every head 0..=99, so a tampered block n is checked by
/// `clients[n - 1]`.
fn clients_at_every_head() -> (Vec<Header>, Vec<EvmLightClient>) {
    let (_, headers, mut lc) = goquorum();
    let mut clients = vec![lc.clone()];
    for h in &headers[1..100] {
        lc.verify_headers([h.clone()]).expect("verifies");
        clients.push(lc.clone());
    }
    (headers, clients)
}

/// Byte ranges of one IBFT 1.0 extraData: (validators, proposer seal, committed
/// seals), located by searching for their encodings.
fn regions(
    extra: &[u8],
) -> (
    std::ops::Range<usize>,
    std::ops::Range<usize>,
    std::ops::Range<usize>,
) {
    let e = Ibft1ExtraData::decode(extra).expect("decodes");
    let find = |needle: &[u8]| {
        let i = extra
            .windows(needle.len())
            .position(|w| w == needle)
            .expect("present");
        i..i + needle.len()
    };
    let first = find(&e.validators[0].0);
    let last = find(&e.validators[e.validators.len() - 1].0);
    let seal = find(&e.proposer_seal);
    let c0 = find(&e.committed_seals[0]);
    let cl = find(&e.committed_seals[e.committed_seals.len() - 1]);
    (first.start..last.end, seal, c0.start..cl.end)
}

#[test]
fn goquorum_ibft1_every_byte_of_a_seal_and_the_links_is_load_bearing() {
    let (headers, clients) = clients_at_every_head();
    for n in [1usize, 37, 100] {
        let lc = &clients[n - 1];
        let good = &headers[n];
        let (vals, seal, committed) = regions(&good.extra_data);
        // every byte of the proposer seal, of the first committed seal, and of
        // the validator list; every byte of parentHash
        let positions = seal
            .chain(committed.start..committed.start + 65)
            .chain(vals);
        for i in positions {
            let mut h = good.clone();
            h.extra_data[i] ^= 0x01;
            let r = lc.clone().verify_headers([h]);
            assert!(r.is_err(), "block {n} extraData byte {i} accepted");
        }
        for i in 0..32 {
            let mut h = good.clone();
            h.parent_hash.0[i] ^= 0x80;
            let r = lc.clone().verify_headers([h]).expect_err("refused");
            assert!(matches!(r.rule, Error::ParentHashMismatch { .. }));
            assert_eq!(r.number, n as u64);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn goquorum_ibft1_random_extra_data_flips_are_refused(
        n in 1usize..=100,
        pos in any::<prop::sample::Index>(),
        x in 1u8..=255,
    ) {
        thread_local! {
            static CLIENTS: (Vec<Header>, Vec<EvmLightClient>) = clients_at_every_head();
        }
        CLIENTS.with(|(headers, clients)| {
            let mut h = headers[n].clone();
            let i = pos.index(h.extra_data.len());
            h.extra_data[i] ^= x;
            let r = clients[n - 1].clone().verify_headers([h]);
            prop_assert!(r.is_err(), "block {} byte {} ^ {:#x} accepted", n, i, x);
            Ok(())
        })?;
    }
}

#[test]
fn refusal_names_the_block_and_its_hash() {
    let (_, headers, lc) = goquorum();
    let mut h = headers[2].clone();
    h.gas_used = 1;
    let r = lc
        .clone()
        .verify_headers(headers[1..3].iter().cloned().map(|x| {
            if x.number == 2 {
                h.clone()
            } else {
                x
            }
        }))
        .expect_err("refused");
    assert_eq!(r.number, 2);
    assert_eq!(r.hash, bft_block_hash(BftKind::Ibft1, &h).expect("hash"));
    assert!(matches!(
        r.rule,
        Error::UnauthorizedSigner(_) | Error::InvalidSignature
    ));
    let text = r.to_string();
    assert!(
        text.starts_with(&format!("block 2 ({}): ", r.hash)),
        "{text}"
    );
    // all-or-nothing: block 1 was valid but the client did not move
    assert_eq!(lc.head().number, 0);
}

fn rinkeby() -> (serde_json::Value, Vec<Header>) {
    let doc = json("ethereum/rinkeby-clique-0-5.json");
    let headers = doc["blocks"]
        .as_array()
        .expect("blocks")
        .iter()
        .map(header)
        .collect();
    (doc, headers)
}

#[test]
fn rinkeby_blocks_1_to_5_verify_from_genesis() {
    let (doc, headers) = rinkeby();
    let cp = TrustedCheckpoint {
        number: 0,
        hash: hash_of(&doc["blocks"][0], "hash"),
    };
    let config = ConsensusConfig::single(FinalityMode::Clique, 30_000);
    let mut lc = EvmLightClient::from_checkpoint(&config, cp, &headers[0], None).expect("genesis");
    let mut signers = addrs(&doc["blocks"][0]["_checks"]["checkpoint_signers"]);
    signers.sort();
    assert_eq!(lc.authorities(), signers);
    let verified = lc
        .verify_headers(headers[1..].to_vec())
        .expect("Rinkeby verifies");
    for (v, b) in verified
        .iter()
        .zip(&doc["blocks"].as_array().expect("blocks")[1..])
    {
        assert_eq!(v.block_hash(), hash_of(b, "hash"));
        let expected = b["_checks"]["signer"].as_str().and_then(Address::from_hex);
        let Finality::Sealed {
            signers: s,
            validators,
            ..
        } = v.finality()
        else {
            panic!("sealed")
        };
        assert_eq!(Some(s[0]), expected);
        assert_eq!(validators[..], signers[..]);
    }
    // the genesis given with the wrong signers is refused
    let wrong = signers[..2].to_vec();
    assert_eq!(
        EvmLightClient::from_checkpoint(&config, cp, &headers[0], Some(wrong)),
        Err(Error::CheckpointValidatorsMismatch(0))
    );
}

#[test]
fn rinkeby_epoch_blocks_are_checkpoints_with_3_and_6_signers() {
    let doc = json("ethereum/rinkeby-clique-checkpoints.json");
    let config = ConsensusConfig::single(FinalityMode::Clique, 30_000);
    let mut sizes = Vec::new();
    for b in doc["blocks"].as_array().expect("blocks") {
        let h = header(b);
        let cp = TrustedCheckpoint {
            number: h.number,
            hash: hash_of(b, "hash"),
        };
        let lc = EvmLightClient::from_checkpoint(&config, cp, &h, None).expect("checkpoint");
        let mut listed = addrs(&b["_checks"]["checkpoint_signers"]);
        listed.sort();
        assert_eq!(lc.authorities(), listed);
        sizes.push(listed.len());
        // the same signers given explicitly agree
        assert!(EvmLightClient::from_checkpoint(&config, cp, &h, Some(listed)).is_ok());
    }
    assert_eq!(sizes, vec![3, 6]);
}

#[test]
fn clique_checkpoint_off_epoch_needs_signers() {
    let (doc, headers) = rinkeby();
    let config = ConsensusConfig::single(FinalityMode::Clique, 30_000);
    let cp = TrustedCheckpoint {
        number: 2,
        hash: hash_of(&doc["blocks"][2], "hash"),
    };
    assert_eq!(
        EvmLightClient::from_checkpoint(&config, cp, &headers[2], None),
        Err(Error::MissingCheckpointValidators(2))
    );
    let signers = addrs(&doc["blocks"][0]["_checks"]["checkpoint_signers"]);
    let mut lc = EvmLightClient::from_checkpoint(&config, cp, &headers[2], Some(signers))
        .expect("signers given");
    lc.verify_headers(headers[3..].to_vec())
        .expect("3..5 verify");
}

#[test]
fn besu_clique_dev_blocks_1_to_4_verify() {
    let doc = json("ethereum/besu-clique-dev-blocks-0-4.json");
    let headers: Vec<Header> = doc["blocks"]
        .as_array()
        .expect("blocks")
        .iter()
        .map(header)
        .collect();
    let cp = TrustedCheckpoint {
        number: 0,
        hash: hash_of(&doc["blocks"][0], "hash"),
    };
    let config = ConsensusConfig::single(FinalityMode::Clique, 30_000);
    let mut lc = EvmLightClient::from_checkpoint(&config, cp, &headers[0], None).expect("genesis");
    let signer = Address::from_hex("0x3b63a1ee47ffd227458746ca9bb079d0d3cbb4bd").expect("hex");
    assert_eq!(lc.authorities(), vec![signer]);
    let v = lc.verify_headers(headers[1..].to_vec()).expect("verifies");
    assert_eq!(v.len(), 4);
    assert_eq!(lc.head().hash, hash_of(&doc["blocks"][4], "hash"));
}

#[test]
fn besu_qbft_block_7528_seals_verify_against_its_validators() {
    let doc = json("ethereum/besu-qbft-block-7528.json");
    let h = header(&doc["header"]);
    let validators = addrs(&doc["decoded"]["validators"]);
    let mut expected = addrs(&doc["seal_signers"]);
    expected.sort();
    assert_eq!(
        bft::verify_seals(BftKind::Qbft, &h, &validators),
        Ok(expected)
    );
    let e = bft::BftExtraData::decode(BftKind::Qbft, &h.extra_data).expect("decodes");
    assert_eq!(
        bft::committed_seal_hash(BftKind::Qbft, &h, &e),
        hash_of(&doc["hashes"], "commit_hash")
    );
    let onchain = hash_of(&doc["hashes"], "onchain_block_hash_computed");
    assert_eq!(bft_block_hash(BftKind::Qbft, &h), Ok(onchain));
    // as a checkpoint
    let config = ConsensusConfig::single(FinalityMode::Qbft, 30_000);
    let cp = TrustedCheckpoint {
        number: 7528,
        hash: onchain,
    };
    let lc = EvmLightClient::from_checkpoint(&config, cp, &h, Some(validators.clone()))
        .expect("checkpoint");
    let mut sorted = validators.clone();
    sorted.sort();
    assert_eq!(lc.authorities(), sorted);
    // a set without one of the sealers refuses; a flipped seal byte refuses
    assert!(bft::verify_seals(BftKind::Qbft, &h, &validators[..3]).is_err());
    let mut t = e.clone();
    t.seals[0][10] ^= 1;
    let mut th = h.clone();
    th.extra_data = t.encode(BftKind::Qbft, true, true);
    assert!(bft::verify_seals(BftKind::Qbft, &th, &validators).is_err());
}
