//! Header decoding, encoding and hashing against real mainnet and Goerli headers.

mod common;

use common::*;
use isthmus_light_client_evm::{
    Error, EvmLightClient, Finality, Header, RlpError, RpcHeader, TrustedCheckpoint, B256, U256,
};

fn load(json: &str) -> Header {
    Header::from_rpc_json(json).expect("fixture header parses")
}

#[test]
fn mainnet_fixtures_hash_to_their_hash() {
    for f in [CANCUN, PRE_LONDON] {
        let json = fixture(f);
        let h = load(&json);
        assert_eq!(h.hash(), claimed_hash(&json), "{f}");
        let rpc: RpcHeader = serde_json::from_str(&json).expect("json");
        assert_eq!(rpc.checked().expect("claimed hash matches"), h);
    }
    let cancun = load(&fixture(CANCUN));
    assert_eq!(cancun.number, 21_925_176);
    assert_eq!(cancun.excess_blob_gas, Some(0x4780000));
    assert_eq!(cancun.blob_gas_used, Some(0));
    assert!(cancun.parent_beacon_block_root.is_some() && cancun.requests_hash.is_none());
    let pre = load(&fixture(PRE_LONDON));
    assert_eq!(pre.number, 11_408_438);
    assert!(pre.base_fee_per_gas.is_none());
    assert_eq!(pre.difficulty.to_u64(), Some(0xcd25fca770402));
}

#[test]
fn goerli_london_and_genesis_headers_hash_to_their_hash() {
    for f in ["goerli-block-5102442.json", "goerli-genesis.json"] {
        let json = testdata(f);
        assert_eq!(load(&json).hash(), claimed_hash(&json), "{f}");
    }
    assert_eq!(
        load(&testdata("goerli-block-5102442.json")).base_fee_per_gas,
        Some(U256::from(7))
    );
}

#[test]
fn rlp_round_trip_for_every_fork_shape() {
    let cancun = load(&fixture(CANCUN));
    let mut shapes = vec![load(&fixture(PRE_LONDON)), cancun.clone()];
    let mut london = cancun.clone();
    london.withdrawals_root = None;
    london.blob_gas_used = None;
    london.excess_blob_gas = None;
    london.parent_beacon_block_root = None;
    shapes.push(london.clone());
    let mut shanghai = cancun.clone();
    shanghai.blob_gas_used = None;
    shanghai.excess_blob_gas = None;
    shanghai.parent_beacon_block_root = None;
    shapes.push(shanghai);
    let mut prague = cancun;
    prague.requests_hash = Some(B256([7; 32]));
    shapes.push(prague);
    for h in shapes {
        let enc = h.encode_rlp();
        let back = Header::decode_rlp(&enc).expect("own encoding decodes");
        assert_eq!(back, h);
        assert_eq!(back.encode_rlp(), enc);
    }
}

#[test]
fn every_single_byte_flip_changes_the_hash_or_is_refused() {
    for f in [CANCUN, PRE_LONDON] {
        let json = fixture(f);
        let good = claimed_hash(&json);
        let enc = load(&json).encode_rlp();
        let (mut refused, mut rehashed) = (0, 0);
        for i in 0..enc.len() {
            for mask in [0x01u8, 0x80, 0xff] {
                let mut t = enc.clone();
                t[i] ^= mask;
                match Header::decode_rlp(&t) {
                    Err(_) => refused += 1,
                    Ok(h) => {
                        assert_ne!(h.hash(), good, "{f}: flip at byte {i} kept the hash");
                        rehashed += 1;
                    }
                }
            }
        }
        assert_eq!(refused + rehashed, enc.len() * 3);
        assert!(refused > 0 && rehashed > 0);
    }
}

#[test]
fn structural_errors_are_typed() {
    let enc = load(&fixture(CANCUN)).encode_rlp();
    // trailing bytes
    let mut t = enc.clone();
    t.push(0);
    assert_eq!(
        Header::decode_rlp(&t),
        Err(Error::Rlp(RlpError::TrailingBytes))
    );
    // truncated
    assert_eq!(
        Header::decode_rlp(&enc[..enc.len() - 1]),
        Err(Error::Rlp(RlpError::Truncated))
    );
    // field counts no fork has
    let pre = load(&fixture(PRE_LONDON)).encode_rlp();
    assert_eq!(pre[0], 0xf9, "header list uses a 2-byte length");
    let relist = |payload: &[u8]| {
        let mut out = vec![0xf9, (payload.len() >> 8) as u8, payload.len() as u8];
        out.extend_from_slice(payload);
        out
    };
    let mut payload = pre[3..].to_vec();
    payload.extend_from_slice(&[0x80, 0x80, 0x80]);
    assert_eq!(
        Header::decode_rlp(&relist(&payload)),
        Err(Error::HeaderFieldCount(18))
    );
    // drop the last field (nonce, 9 bytes)
    let payload = &pre[3..pre.len() - 9];
    assert_eq!(
        Header::decode_rlp(&relist(payload)),
        Err(Error::HeaderFieldCount(14))
    );
    // fields out of order: swap miner (20 bytes) and stateRoot (32 bytes)
    let body = &pre[3..];
    let (a, b) = (33 * 2, 33 * 2 + 21);
    let mut swapped = body[..a].to_vec();
    swapped.extend_from_slice(&body[b..b + 33]);
    swapped.extend_from_slice(&body[a..b]);
    swapped.extend_from_slice(&body[b + 33..]);
    assert_eq!(
        Header::decode_rlp(&relist(&swapped)),
        Err(Error::HeaderField {
            field: "miner",
            source: RlpError::WrongLength {
                expected: 20,
                found: 32
            }
        })
    );
}

#[test]
fn field_errors_name_the_field() {
    let pre = load(&fixture(PRE_LONDON));
    let enc = pre.encode_rlp();
    // parentHash starts at offset 3 (f9 xx xx) with header a0; make it 31 bytes
    assert_eq!(enc[3], 0xa0);
    let mut t = enc.clone();
    t[3] = 0x9f;
    assert!(Header::decode_rlp(&t).is_err());
    // a number with a leading zero byte is refused by name
    let mut h = pre.clone();
    h.number = 0;
    let enc0 = h.encode_rlp();
    let mut payload = enc0[3..].to_vec();
    // offsets: 6 hashes/addresses, bloom (3 + 256), difficulty (1 + 7)
    let pos = 33 + 33 + 21 + 33 * 3 + 259 + 8;
    assert_eq!(payload[pos], 0x80, "number zero");
    payload[pos] = 0x00; // canonical single byte 0 is a non-canonical zero scalar
    let mut bad = vec![0xf9, (payload.len() >> 8) as u8, payload.len() as u8];
    bad.extend_from_slice(&payload);
    assert_eq!(
        Header::decode_rlp(&bad),
        Err(Error::HeaderField {
            field: "number",
            source: RlpError::NonCanonical
        })
    );
}

#[test]
fn json_fork_fields_must_form_a_prefix() {
    let json = fixture(CANCUN);
    let mut v: serde_json::Value = serde_json::from_str(&json).expect("json");
    v.as_object_mut().expect("object").remove("withdrawalsRoot");
    let r: RpcHeader = serde_json::from_value(v).expect("rpc header");
    assert_eq!(
        Header::try_from(&r),
        Err(Error::ForkFieldsOutOfOrder {
            present: "blobGasUsed",
            missing: "withdrawalsRoot"
        })
    );
    let mut v: serde_json::Value = serde_json::from_str(&json).expect("json");
    v["hash"] = serde_json::Value::String(format!("0x{}", "11".repeat(32)));
    let r: RpcHeader = serde_json::from_value(v).expect("rpc header");
    assert!(matches!(
        r.checked(),
        Err(Error::ClaimedHashMismatch { .. })
    ));
    let mut v: serde_json::Value = serde_json::from_str(&json).expect("json");
    v["gasUsed"] = serde_json::Value::String("0x0f8e2f0".into());
    let r: RpcHeader = serde_json::from_value(v).expect("rpc header");
    assert_eq!(
        Header::try_from(&r),
        Err(Error::InvalidJsonField("gasUsed"))
    );
}

#[test]
fn finalized_tag_chain_links_and_marks_trust() {
    let genesis = load(&testdata("goerli-genesis.json"));
    let blocks: serde_json::Value =
        serde_json::from_str(&testdata("goerli-blocks-1-7.json")).expect("json");
    let headers: Vec<Header> = blocks
        .as_array()
        .expect("array")
        .iter()
        .map(|b| ethereumjs_header(&b["header"]))
        .collect();
    let cp = TrustedCheckpoint {
        number: 0,
        hash: genesis.hash(),
    };
    let mut lc = EvmLightClient::finalized_tag(cp);
    let verified = lc
        .verify_headers(headers.clone())
        .map_err(|r| r.rule)
        .expect("chain links");
    assert_eq!(verified.len(), 7);
    assert!(verified
        .iter()
        .all(|v| v.finality_trusted_from_tag() && *v.finality() == Finality::TrustedFinalizedTag));
    assert_eq!(lc.head().number, 7);
    assert_eq!(lc.head().hash, headers[6].hash());

    // a gap or a broken link is refused and leaves the client unchanged
    let mut lc = EvmLightClient::finalized_tag(cp);
    let mut skipped = headers.clone();
    skipped.remove(2);
    assert!(matches!(
        lc.verify_headers(skipped).map_err(|r| r.rule),
        Err(Error::NonSequentialNumber {
            expected: 3,
            found: 4
        })
    ));
    let mut forged = headers.clone();
    forged[3].gas_used = 1;
    assert!(matches!(
        lc.verify_headers(forged).map_err(|r| r.rule),
        Err(Error::ParentHashMismatch { number: 5, .. })
    ));
    assert_eq!(lc.head(), cp);
    assert_eq!(
        lc.verify_headers(Vec::new()).map_err(|r| r.rule),
        Err(Error::EmptyHeaderChain)
    );
}

/// ethereumjs' test files name header fields differently from JSON-RPC.
pub fn ethereumjs_header(v: &serde_json::Value) -> Header {
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
    let r: RpcHeader = serde_json::from_value(serde_json::Value::Object(m)).expect("rpc header");
    Header::try_from(&r).expect("ethereumjs header converts")
}
