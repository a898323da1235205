//! Real headers and light-sync checkpoints from Polkadot, Kusama and Westend.

mod common;

use isthmus_light_client_grandpa::{
    AuthoritySetTracker, DigestItem, GrandpaConsensusLog, Header, LightSyncAuthoritySet,
};
use parity_scale_codec::{Decode, Encode};

#[test]
fn polkadot_512271_announces_a_scheduled_change() {
    let bytes = common::substrate_fixture("polkadot-header-512271.scale");
    let header = Header::decode_exact(&bytes).expect("decodes");
    assert_eq!(header.number, 512_271);
    assert_eq!(header.encode(), bytes);
    let logs = header.grandpa_logs().expect("FRNK logs decode");
    let changes: Vec<_> = logs
        .iter()
        .filter_map(|log| match log {
            GrandpaConsensusLog::ScheduledChange(change) => Some(change),
            _ => None,
        })
        .collect();
    assert_eq!(changes.len(), 1, "logs: {logs:?}");
    let change = changes[0];
    assert_eq!(change.delay, 0);
    // Cross-check with the BABE log of the same header: its next epoch lists the
    // same validators (by their sr25519 keys), so the counts agree.
    let babe_next_epoch = header
        .digest
        .logs
        .iter()
        .find_map(|item| match item {
            DigestItem::Consensus(id, data) if id == b"BABE" && data.first() == Some(&1) => {
                <Vec<([u8; 32], u64)>>::decode(&mut &data[1..]).ok()
            }
            _ => None,
        })
        .expect("the session change also announces the next BABE epoch");
    assert_eq!(change.next_authorities.len(), babe_next_epoch.len());
    assert_eq!(change.next_authorities.len(), 197);
    assert!(change
        .next_authorities
        .iter()
        .all(|(_, weight)| *weight == 1));
    let distinct: std::collections::BTreeSet<_> =
        change.next_authorities.iter().map(|(id, _)| id).collect();
    assert_eq!(distinct.len(), change.next_authorities.len());
    assert!(
        matches!(header.digest.logs.last(), Some(DigestItem::Seal(id, sig)) if id == b"BABE" && sig.len() == 64)
    );
}

#[test]
fn kusama_header_decodes() {
    let bytes = common::substrate_fixture("kusama-header-7472481.scale");
    let header = Header::decode_exact(&bytes).expect("decodes");
    assert_eq!(header.number, 7_472_481);
    assert_eq!(header.encode(), bytes);
    assert!(header.digest.logs.len() >= 2);
    header.grandpa_logs().expect("FRNK logs, if any, decode");
}

struct Checkpoint {
    header: Vec<u8>,
    authority_set: Vec<u8>,
}

fn checkpoint(file: &str) -> Checkpoint {
    let json: serde_json::Value =
        serde_json::from_slice(&common::substrate_fixture(file)).expect("fixture is JSON");
    let state = &json["lightSyncState"];
    let field = |name: &str| {
        common::unhex(
            state[name]
                .as_str()
                .unwrap_or_else(|| panic!("{file} lacks {name}")),
        )
    };
    Checkpoint {
        header: field("finalizedBlockHeader"),
        authority_set: field("grandpaAuthoritySet"),
    }
}

#[test]
fn light_sync_checkpoints_decode() {
    for (file, number, set_id, count) in [
        ("polkadot-light-sync-state.json", 29_378_183, 3195, 600),
        ("westend2-light-sync-state.json", 29_233_814, 10077, 20),
    ] {
        let cp = checkpoint(file);
        let header = Header::decode_exact(&cp.header).expect("header decodes");
        assert_eq!(header.number, number, "{file}");
        assert_eq!(header.encode(), cp.header);
        let persisted =
            LightSyncAuthoritySet::decode_exact(&cp.authority_set).expect("authority set decodes");
        assert_eq!(persisted.set_id, set_id, "{file}");
        assert_eq!(persisted.current_authorities.len(), count, "{file}");
        assert_eq!(persisted.encode(), cp.authority_set);
        assert_eq!(persisted.best_finalized_number, Some(number));
        // The history of past sets ends with the set before the current one.
        assert_eq!(
            persisted.authority_set_changes.last().map(|(id, _)| id + 1),
            Some(set_id)
        );
        let set = persisted.current_set().expect("a valid set");
        assert_eq!(set.total_weight(), count as u64);

        let tracker = AuthoritySetTracker::from_light_sync_state(&cp.header, &cp.authority_set)
            .expect("checkpoint without pending changes");
        assert_eq!(tracker.finalized(), (header.hash(), number));
        assert_eq!(tracker.authority_set().set_id(), set_id);
        assert!(tracker.pending_change().is_none());
    }
}
