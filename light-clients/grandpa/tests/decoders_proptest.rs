//! No decoder panics on arbitrary bytes; whatever decodes re-encodes to the same bytes
//! (so a block hash is a function of the decoded header); headers round-trip.

use isthmus_light_client_grandpa::{
    Digest, DigestItem, GrandpaJustification, Header, LightSyncAuthoritySet, ReadProof, H256,
};
use parity_scale_codec::{Decode, Encode};
use proptest::prelude::*;

fn digest_item() -> impl Strategy<Value = DigestItem> {
    let data = || prop::collection::vec(any::<u8>(), 0..80);
    prop_oneof![
        data().prop_map(DigestItem::Other),
        (any::<[u8; 4]>(), data()).prop_map(|(id, d)| DigestItem::Consensus(id, d)),
        (any::<[u8; 4]>(), data()).prop_map(|(id, d)| DigestItem::Seal(id, d)),
        (any::<[u8; 4]>(), data()).prop_map(|(id, d)| DigestItem::PreRuntime(id, d)),
        Just(DigestItem::RuntimeEnvironmentUpdated),
    ]
}

fn header() -> impl Strategy<Value = Header> {
    (
        any::<[u8; 32]>(),
        any::<u32>(),
        any::<[u8; 32]>(),
        any::<[u8; 32]>(),
        prop::collection::vec(digest_item(), 0..6),
    )
        .prop_map(|(parent, number, state, extrinsics, logs)| Header {
            parent_hash: H256(parent),
            number,
            state_root: H256(state),
            extrinsics_root: H256(extrinsics),
            digest: Digest { logs },
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn header_round_trips(h in header()) {
        let bytes = h.encode();
        let decoded = Header::decode_exact(&bytes).expect("own encoding decodes");
        prop_assert_eq!(decoded.hash(), h.hash());
        prop_assert_eq!(decoded, h);
    }

    #[test]
    fn header_decoder_is_total_and_canonical(bytes in prop::collection::vec(any::<u8>(), 0..300)) {
        if let Ok(h) = Header::decode_exact(&bytes) {
            prop_assert_eq!(h.encode(), bytes);
            let _ = h.grandpa_logs();
        }
    }

    #[test]
    fn mutated_headers_never_panic(h in header(), at in any::<prop::sample::Index>(), byte in any::<u8>()) {
        let mut bytes = h.encode();
        let i = at.index(bytes.len());
        bytes[i] = byte;
        if let Ok(decoded) = Header::decode_exact(&bytes) {
            prop_assert_eq!(decoded.encode(), bytes);
        }
    }

    #[test]
    fn other_decoders_are_total(bytes in prop::collection::vec(any::<u8>(), 0..400)) {
        if let Ok(j) = GrandpaJustification::decode_exact(&bytes) {
            prop_assert_eq!(j.encode(), bytes.clone());
        }
        if let Ok(s) = LightSyncAuthoritySet::decode_exact(&bytes) {
            prop_assert_eq!(s.encode(), bytes.clone());
        }
        let _ = ReadProof::decode_exact(&bytes);
        let _ = isthmus_light_client_grandpa::GrandpaConsensusLog::decode(&mut &bytes[..]);
    }
}
