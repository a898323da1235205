//! Clique seals: the real Goerli chain from genesis, and self-signed chains for
//! the rules Goerli's first blocks do not exercise (several signers, turns,
//! recent signers, votes).

mod common;

use common::*;
use isthmus_light_client_evm::clique::{recover_signer, seal_hash};
use isthmus_light_client_evm::{
    Address, CliqueConfig, Error, EvmLightClient, Finality, FinalityMode, Header, RpcHeader,
    TrustedCheckpoint, B256, U256,
};
use k256::ecdsa::SigningKey;

fn goerli() -> (Header, Vec<Header>) {
    let genesis = Header::from_rpc_json(&testdata("goerli-genesis.json")).expect("genesis");
    let blocks: serde_json::Value =
        serde_json::from_str(&testdata("goerli-blocks-1-7.json")).expect("json");
    let headers = blocks
        .as_array()
        .expect("array")
        .iter()
        .map(|b| {
            let v = &b["header"];
            let mut m = serde_json::Map::new();
            for (from, to) in [
                ("parentHash", "parentHash"),
                ("uncleHash", "sha3Uncles"),
                ("coinbase", "miner"),
                ("stateRoot", "stateRoot"),
                ("transactionsTrie", "transactionsRoot"),
                ("receiptTrie", "receiptsRoot"),
                ("bloom", "logsBloom"),
                ("difficulty", "difficulty"),
                ("number", "number"),
                ("gasLimit", "gasLimit"),
                ("gasUsed", "gasUsed"),
                ("timestamp", "timestamp"),
                ("extraData", "extraData"),
                ("mixHash", "mixHash"),
                ("nonce", "nonce"),
            ] {
                m.insert(to.into(), v[from].clone());
            }
            let r: RpcHeader =
                serde_json::from_value(serde_json::Value::Object(m)).expect("rpc header");
            Header::try_from(&r).expect("converts")
        })
        .collect();
    (genesis, headers)
}

const GOERLI_SIGNER: &str = "0xe0a2bd4258d2768837baa26a28fe71dc079f84c7";

fn goerli_client(genesis: &Header) -> EvmLightClient {
    let cp = TrustedCheckpoint {
        number: 0,
        hash: B256::from_hex("0xbf7e331f7f7c1dd2e05159666b3bf8bc7a8a3a9eb1d518969eab529dd9b88c1a")
            .expect("hex"),
    };
    EvmLightClient::clique(cp, genesis, CliqueConfig { epoch: 30_000 }).expect("checkpoint")
}

#[test]
fn real_goerli_blocks_1_to_7_verify_from_genesis() {
    let (genesis, headers) = goerli();
    let mut lc = goerli_client(&genesis);
    let signer = Address::from_hex(GOERLI_SIGNER).expect("hex");
    assert_eq!(lc.authorities(), vec![signer]);
    let verified = lc
        .verify_headers(headers.clone())
        .map_err(|r| r.rule)
        .expect("Goerli seals verify");
    for v in &verified {
        assert!(matches!(
            v.finality(),
            Finality::Sealed { mode: FinalityMode::Clique, signers, validators }
                if *signers == vec![signer] && validators[..] == [signer]
        ));
        assert!(!v.finality_trusted_from_tag());
    }
    assert_eq!(lc.head().hash, headers[6].hash());
    assert_eq!(lc.head().number, 7);
}

#[test]
fn real_goerli_seal_tampering_is_refused() {
    let (genesis, headers) = goerli();
    let signer = Address::from_hex(GOERLI_SIGNER).expect("hex");
    // Every byte of the seal of block 1: the signature breaks or recovers someone else.
    let n = headers[0].extra_data.len();
    for i in n - 65..n {
        let mut h = headers[0].clone();
        h.extra_data[i] ^= 0x01;
        let mut lc = goerli_client(&genesis);
        let r = lc.verify_headers([h]).map_err(|r| r.rule);
        assert!(
            matches!(
                r,
                Err(Error::InvalidSignature | Error::UnauthorizedSigner(_))
            ),
            "seal byte {i}: {r:?}"
        );
    }
    // Every signed field: the seal no longer recovers the Goerli signer.
    let enc = headers[0].encode_rlp();
    for i in 3..enc.len() - 100 {
        let mut t = enc.clone();
        t[i] ^= 0x01;
        if let Ok(h) = Header::decode_rlp(&t) {
            assert_ne!(recover_signer(&h).ok(), Some(signer), "byte {i}");
        }
    }
    // A wrong difficulty (out-of-turn claim by the only, always in-turn, signer).
    let mut h = headers[0].clone();
    h.difficulty = U256::from(1);
    let mut lc = goerli_client(&genesis);
    assert!(lc.verify_headers([h]).map_err(|r| r.rule).is_err());
    // A genesis that is not the trusted checkpoint.
    let mut g = genesis.clone();
    g.timestamp += 1;
    let cp = TrustedCheckpoint {
        number: 0,
        hash: genesis.hash(),
    };
    assert_eq!(
        EvmLightClient::clique(cp, &g, CliqueConfig { epoch: 30_000 }),
        Err(Error::CheckpointMismatch { number: 0 })
    );
}

/// A self-signed Clique chain.
struct Chain {
    keys: Vec<(SigningKey, Address)>,
    headers: Vec<Header>,
    epoch: u64,
}

impl Chain {
    fn new(n: u8, epoch: u64) -> (Self, EvmLightClient) {
        let mut keys: Vec<_> = (1..=n).map(key).collect();
        keys.sort_by_key(|k| k.1);
        let mut g = template(0, B256::ZERO);
        g.ommers_hash = isthmus_light_client_evm::keccak256(&[0xc0]);
        g.extra_data = vec![0u8; 32];
        for (_, a) in &keys {
            g.extra_data.extend(a.0);
        }
        g.extra_data.extend([0u8; 65]);
        let cp = TrustedCheckpoint {
            number: 0,
            hash: g.hash(),
        };
        let lc = EvmLightClient::clique(cp, &g, CliqueConfig { epoch }).expect("checkpoint");
        (
            Chain {
                keys,
                headers: vec![g],
                epoch,
            },
            lc,
        )
    }

    /// Builds the next header sealed by signer `idx` (sorted index).
    fn next(&self, idx: usize, vote: Option<(Address, bool)>, difficulty: Option<u64>) -> Header {
        let parent = self.headers.last().expect("genesis");
        let number = parent.number + 1;
        let mut h = template(number, parent.hash());
        let n = self.keys.len() as u64;
        let in_turn = number % n == idx as u64;
        h.difficulty = U256::from(difficulty.unwrap_or(if in_turn { 2 } else { 1 }));
        h.extra_data = vec![0u8; 32];
        if number % self.epoch == 0 {
            for (_, a) in &self.keys {
                h.extra_data.extend(a.0);
            }
        }
        if let Some((addr, auth)) = vote {
            h.beneficiary = addr;
            h.nonce = if auth { [0xff; 8] } else { [0; 8] };
        }
        h.extra_data.extend([0u8; 65]);
        let digest = seal_hash(&h).expect("seal hash");
        let sig = sign(&self.keys[idx].0, &digest);
        let len = h.extra_data.len();
        h.extra_data[len - 65..].copy_from_slice(&sig);
        h
    }
}

#[test]
fn turns_recent_signers_and_authorisation() {
    let (mut chain, mut lc) = Chain::new(3, 1000);
    // in turn (block 1 -> index 1), then out of turn by index 0
    for idx in [1, 0] {
        let h = chain.next(idx, None, None);
        lc.verify_headers([h.clone()])
            .map_err(|r| r.rule)
            .expect("valid seal");
        chain.headers.push(h);
    }
    // index 0 signed block 2; with 3 signers the limit is 2 blocks: it may not sign block 3
    let h = chain.next(0, None, None);
    assert_eq!(
        lc.verify_headers([h]).map_err(|r| r.rule),
        Err(Error::RecentlySigned(chain.keys[0].1))
    );
    // block 3: index 0 is in turn (3 % 3 = 0) but signed recently; index 2 out of turn
    let h = chain.next(2, None, Some(2));
    assert!(matches!(
        lc.verify_headers([h]).map_err(|r| r.rule),
        Err(Error::WrongDifficulty {
            expected: 1,
            found: 2
        })
    ));
    // an outsider
    let (outsider, oaddr) = key(99);
    let mut h = chain.next(2, None, None);
    let digest = seal_hash(&h).expect("seal hash");
    let len = h.extra_data.len();
    h.extra_data[len - 65..].copy_from_slice(&sign(&outsider, &digest));
    assert_eq!(
        lc.verify_headers([h]).map_err(|r| r.rule),
        Err(Error::UnauthorizedSigner(oaddr))
    );
    // a bad vote nonce
    let mut h = chain.next(2, None, None);
    h.nonce = [1; 8];
    assert!(lc.verify_headers([h]).map_err(|r| r.rule).is_err());
    // still at block 2 after all refusals
    assert_eq!(lc.head().number, 2);
    let h = chain.next(2, None, None);
    lc.verify_headers([h])
        .map_err(|r| r.rule)
        .expect("index 2 out of turn is fine");
}

#[test]
fn votes_change_the_signer_set() {
    let (mut chain, mut lc) = Chain::new(3, 1000);
    let (_, newcomer) = key(50);
    // two of three signers vote the newcomer in (> n/2)
    for idx in [1, 2] {
        let h = chain.next(idx, Some((newcomer, true)), None);
        lc.verify_headers([h.clone()])
            .map_err(|r| r.rule)
            .expect("vote accepted");
        chain.headers.push(h);
    }
    assert_eq!(lc.authorities().len(), 4);
    assert!(lc.authorities().contains(&newcomer));
    // a checkpoint that lists the old set is refused after the change
    let (mut chain2, mut lc2) = Chain::new(3, 3);
    for idx in [1, 2] {
        let h = chain2.next(idx, None, None);
        lc2.verify_headers([h.clone()])
            .map_err(|r| r.rule)
            .expect("valid");
        chain2.headers.push(h);
    }
    // block 3 is a checkpoint (epoch 3): its extraData lists the signers
    let mut h = chain2.next(0, None, None);
    assert!(lc2
        .clone()
        .verify_headers([h.clone()])
        .map_err(|r| r.rule)
        .is_ok());
    // the same checkpoint with a signer missing from its list is refused
    h.extra_data.drain(32..52);
    let mut lc3 = lc2.clone();
    assert!(lc3.verify_headers([h]).map_err(|r| r.rule).is_err());
}

#[test]
fn self_signed_chain_marks_the_signer() {
    let (chain, mut lc) = Chain::new(2, 100);
    let h = chain.next(1, None, None);
    let v = lc.verify_headers([h]).map_err(|r| r.rule).expect("valid");
    assert!(matches!(
        v[0].finality(),
        Finality::Sealed { mode: FinalityMode::Clique, signers, validators }
            if *signers == vec![chain.keys[1].1] && validators.len() == 2
    ));
}

#[test]
fn votes_drop_a_signer() {
    let (mut chain, mut lc) = Chain::new(3, 1000);
    let dropped = chain.keys[2].1;
    // blocks 1 (index 1, in turn) and 2 (index 0, out of turn) vote it out: 2 > 3/2
    for idx in [1, 0] {
        let h = chain.next(idx, Some((dropped, false)), None);
        lc.verify_headers([h.clone()]).expect("vote accepted");
        chain.headers.push(h);
    }
    assert_eq!(lc.authorities().len(), 2);
    assert!(!lc.authorities().contains(&dropped));
    assert!(lc.state().votes.is_empty());
    // the dropped signer is no longer authorised
    let h = chain.next(2, None, Some(1));
    assert_eq!(
        lc.verify_headers([h]).map_err(|r| r.rule),
        Err(Error::UnauthorizedSigner(dropped))
    );
}
