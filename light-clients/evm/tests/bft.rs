//! QBFT and IBFT 2.0 committed seals on self-signed headers (no real Besu chain
//! data was available; see testdata/README.md).

mod common;

use common::*;
use isthmus_light_client_evm::bft::{
    bft_block_hash, committed_seal_hash, quorum, BftExtraData, BftVote, ISTANBUL_DIGEST,
};
use isthmus_light_client_evm::{
    Address, BftKind, Error, EvmLightClient, Finality, FinalityMode, Header, TrustedCheckpoint,
};
use k256::ecdsa::SigningKey;

struct Net {
    kind: BftKind,
    keys: Vec<(SigningKey, Address)>,
    validators: Vec<Address>,
    head: Header,
}

fn extra(validators: &[Address], vote: Option<BftVote>, round: u32) -> BftExtraData {
    BftExtraData {
        vanity: vec![0u8; 32],
        validators: validators.to_vec(),
        vote,
        round,
        seals: Vec::new(),
    }
}

/// A header template with the constant fields BFT protocols require.
fn bft_template(number: u64, parent: isthmus_light_client_evm::B256) -> Header {
    let mut h = template(number, parent);
    h.mix_hash = ISTANBUL_DIGEST;
    h
}

impl Net {
    fn new(kind: BftKind, n: u8) -> (Self, EvmLightClient) {
        let mut keys: Vec<_> = (1..=n).map(key).collect();
        keys.sort_by_key(|k| k.1);
        let validators: Vec<Address> = keys.iter().map(|k| k.1).collect();
        let mut g = bft_template(0, Default::default());
        g.extra_data = extra(&validators, None, 0).encode(kind, true, true);
        let cp = TrustedCheckpoint {
            number: 0,
            hash: bft_block_hash(kind, &g).expect("hash"),
        };
        let lc = EvmLightClient::bft(kind, cp, &g, 30_000).expect("checkpoint");
        (
            Net {
                kind,
                keys,
                validators,
                head: g,
            },
            lc,
        )
    }

    /// The next header, proposed by validator 0, sealed by `sealers`.
    fn next(&self, sealers: &[usize], vote: Option<BftVote>, round: u32) -> Header {
        let parent = bft_block_hash(self.kind, &self.head).expect("hash");
        let mut h = bft_template(self.head.number + 1, parent);
        h.beneficiary = self.validators[0];
        let mut e = extra(&self.validators, vote, round);
        h.extra_data = e.encode(self.kind, true, true);
        let digest = committed_seal_hash(self.kind, &h, &e);
        e.seals = sealers
            .iter()
            .map(|i| sign(&self.keys[*i].0, &digest))
            .collect();
        h.extra_data = e.encode(self.kind, true, true);
        h
    }
}

#[test]
fn quorum_is_ceil_two_thirds() {
    assert_eq!(
        (1..=7).map(quorum).collect::<Vec<_>>(),
        vec![1, 2, 2, 3, 4, 4, 5]
    );
}

#[test]
fn genesis_extra_data_matches_besu_layout() {
    // Besu's genesis extraData for one validator: QBFT ends `c080c0`, IBFT 2.0
    // ends `808400000000c0`.
    let v = [Address([0x11; 20])];
    let q = extra(&v, None, 0).encode(BftKind::Qbft, true, true);
    assert!(hex::encode(&q).ends_with("c080c0"), "{}", hex::encode(&q));
    assert!(hex::encode(&q).starts_with("f83aa0"));
    let i = extra(&v, None, 0).encode(BftKind::Ibft2, true, true);
    assert!(
        hex::encode(&i).ends_with("808400000000c0"),
        "{}",
        hex::encode(&i)
    );
    for kind in [BftKind::Qbft, BftKind::Ibft2] {
        let mut e = extra(
            &v,
            Some(BftVote {
                recipient: Address([2; 20]),
                add: false,
            }),
            3,
        );
        e.seals = vec![[7u8; 65]];
        let enc = e.encode(kind, true, true);
        assert_eq!(BftExtraData::decode(kind, &enc), Ok(e));
        // the other protocol's encoding is refused
        let other = if kind == BftKind::Qbft {
            BftKind::Ibft2
        } else {
            BftKind::Qbft
        };
        assert!(BftExtraData::decode(other, &enc).is_err());
    }
}

#[test]
fn quorum_of_seals_verifies_for_both_protocols() {
    for kind in [BftKind::Qbft, BftKind::Ibft2] {
        let (mut net, mut lc) = Net::new(kind, 4);
        let h = net.next(&[0, 1, 3], None, 2);
        let v = lc
            .verify_headers([h.clone()])
            .map_err(|r| r.rule)
            .expect("3 of 4 seals");
        let mode = if kind == BftKind::Qbft {
            FinalityMode::Qbft
        } else {
            FinalityMode::Ibft2
        };
        let mut signers = vec![net.validators[0], net.validators[1], net.validators[3]];
        signers.sort();
        assert!(matches!(
            v[0].finality(),
            Finality::Sealed { mode: m, signers: s, validators }
                if *m == mode && *s == signers && validators[..] == net.validators[..]
        ));
        // the on-chain hash does not depend on the round or the seals
        let mut other = net.next(&[0, 1, 2, 3], None, 0);
        other.parent_hash = h.parent_hash;
        assert_eq!(
            v[0].block_hash(),
            bft_block_hash(kind, &other).expect("hash")
        );
        assert_ne!(v[0].block_hash(), h.hash());
        net.head = h;
        let h2 = net.next(&[1, 2, 3], None, 0);
        lc.verify_headers([h2])
            .map_err(|r| r.rule)
            .expect("links to the BFT hash");
        assert_eq!(lc.head().number, 2);
    }
}

#[test]
fn too_few_duplicate_foreign_or_tampered_seals_are_refused() {
    for kind in [BftKind::Qbft, BftKind::Ibft2] {
        let (net, lc) = Net::new(kind, 4);
        let h = net.next(&[0, 1], None, 0);
        assert_eq!(
            lc.clone().verify_headers([h]).map_err(|r| r.rule),
            Err(Error::InsufficientSeals {
                required: 3,
                found: 2
            })
        );
        let h = net.next(&[0, 1, 1], None, 0);
        assert_eq!(
            lc.clone().verify_headers([h]).map_err(|r| r.rule),
            Err(Error::DuplicateSeal(net.validators[1]))
        );
        // a non-validator's seal
        let mut h = net.next(&[0, 1, 2], None, 0);
        let mut e = BftExtraData::decode(kind, &h.extra_data).expect("decodes");
        let (outsider, oaddr) = key(77);
        e.seals[2] = sign(&outsider, &committed_seal_hash(kind, &h, &e));
        h.extra_data = e.encode(kind, true, true);
        assert_eq!(
            lc.clone().verify_headers([h]).map_err(|r| r.rule),
            Err(Error::UnauthorizedSigner(oaddr))
        );
        // any flipped bit of any seal
        let h = net.next(&[0, 1, 2], None, 0);
        let e = BftExtraData::decode(kind, &h.extra_data).expect("decodes");
        for s in 0..3 {
            for i in 0..65 {
                let mut t = e.clone();
                t.seals[s][i] ^= 1;
                let mut th = h.clone();
                th.extra_data = t.encode(kind, true, true);
                assert!(
                    lc.clone().verify_headers([th]).map_err(|r| r.rule).is_err(),
                    "seal {s} byte {i}"
                );
            }
        }
        // any flipped bit of the signed header fields
        let enc = h.encode_rlp();
        for i in 3..enc.len() {
            let mut t = enc.clone();
            t[i] ^= 1;
            if let Ok(th) = Header::decode_rlp(&t) {
                assert!(
                    lc.clone().verify_headers([th]).map_err(|r| r.rule).is_err(),
                    "header byte {i}"
                );
            }
        }
        // a validator list that differs from the tracked set
        let mut h = net.next(&[0, 1, 2], None, 0);
        let mut e = BftExtraData::decode(kind, &h.extra_data).expect("decodes");
        e.validators.pop();
        e.seals.clear();
        h.extra_data = e.encode(kind, true, true);
        assert_eq!(
            lc.clone().verify_headers([h]).map_err(|r| r.rule),
            Err(Error::ValidatorSetMismatch(1))
        );
    }
}

#[test]
fn votes_add_a_validator() {
    for kind in [BftKind::Qbft, BftKind::Ibft2] {
        let (mut net, mut lc) = Net::new(kind, 4);
        let (newkey, newcomer) = key(60);
        // three proposers (> 4/2) vote; proposer is the beneficiary
        for proposer in 0..3usize {
            let parent = bft_block_hash(kind, &net.head).expect("hash");
            let mut h = bft_template(net.head.number + 1, parent);
            h.beneficiary = net.validators[proposer];
            let mut e = extra(
                &net.validators,
                Some(BftVote {
                    recipient: newcomer,
                    add: true,
                }),
                0,
            );
            h.extra_data = e.encode(kind, true, true);
            let d = committed_seal_hash(kind, &h, &e);
            e.seals = (0..3).map(|i| sign(&net.keys[i].0, &d)).collect();
            h.extra_data = e.encode(kind, true, true);
            lc.verify_headers([h.clone()])
                .map_err(|r| r.rule)
                .expect("vote block verifies");
            net.head = h;
        }
        assert!(lc.authorities().contains(&newcomer));
        assert_eq!(lc.authorities().len(), 5);
        // the next block must list five validators; the old list is refused
        let old = net.next(&[0, 1, 2, 3], None, 0);
        assert_eq!(
            lc.clone().verify_headers([old]).map_err(|r| r.rule),
            Err(Error::ValidatorSetMismatch(4))
        );
        net.keys.push((newkey, newcomer));
        net.keys.sort_by_key(|k| k.1);
        net.validators = net.keys.iter().map(|k| k.1).collect();
        let h = net.next(&[0, 1, 2, 3], None, 0);
        lc.verify_headers([h])
            .map_err(|r| r.rule)
            .expect("4 of 5 seals with the new set");
    }
}
