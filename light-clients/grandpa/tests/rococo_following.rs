//! Following real Rococo finality: 304 consecutive headers from block 1,440,933 (whose
//! `ScheduledChange`, delay 0, starts set 2493) and three real justifications of
//! later blocks, imported as a node's `grandpa_proveFinality` serves them: the chain
//! of headers after the last finalized block up to the justified one.

mod common;

use isthmus_light_client_grandpa::{
    AuthorityId, AuthoritySet, AuthoritySetTracker, Error, FinalityProof, GrandpaConsensusLog,
    GrandpaJustification, Header, H256,
};
use parity_scale_codec::Encode;
use serde_json::Value;

struct Recording {
    set: AuthoritySet,
    anchor: Header,
    /// Blocks 1,440,934 onwards, ascending.
    headers: Vec<Header>,
    /// (justified block number, SCALE justification), ascending.
    justifications: Vec<(u32, Vec<u8>)>,
}

fn recording() -> Recording {
    let doc: Value =
        serde_json::from_slice(&common::substrate_fixture("rococo-set2493-headers.json"))
            .expect("fixture is JSON");
    let authorities = doc["authority_set"]["authorities"]
        .as_array()
        .expect("authorities")
        .iter()
        .map(|a| {
            let key: [u8; 32] = common::unhex(a["pubkey"].as_str().expect("pubkey"))
                .try_into()
                .expect("32 bytes");
            (AuthorityId(key), a["weight"].as_u64().expect("weight"))
        })
        .collect();
    let set = AuthoritySet::new(2493, authorities).expect("valid set");
    let mut headers: Vec<Header> = doc["headers"]
        .as_array()
        .expect("headers")
        .iter()
        .map(|h| {
            let header = Header::decode_exact(&common::unhex(h["scale"].as_str().expect("scale")))
                .expect("header decodes");
            assert_eq!(
                format!("{}", header.hash()),
                h["hash"].as_str().expect("hash")
            );
            header
        })
        .collect();
    let anchor = headers.remove(0);
    let justifications = doc["submissions"]
        .as_array()
        .expect("submissions")
        .iter()
        .map(|s| {
            (
                u32::try_from(s["signed_header_number"].as_u64().expect("number")).expect("u32"),
                common::unhex(s["justification"]["scale"].as_str().expect("scale")),
            )
        })
        .collect();
    Recording {
        set,
        anchor,
        headers,
        justifications,
    }
}

impl Recording {
    /// The tracker at the change block: set 2493 finalizes its descendants.
    fn tracker(&self) -> AuthoritySetTracker {
        AuthoritySetTracker::new(self.set.clone(), self.anchor.hash(), self.anchor.number)
    }

    /// The headers after `after` up to `to`, inclusive.
    fn chain(&self, after: u32, to: u32) -> Vec<Header> {
        self.headers
            .iter()
            .filter(|h| h.number > after && h.number <= to)
            .cloned()
            .collect()
    }

    /// The proof a node serves for the block after `after`: justification of `to`,
    /// headers after the asked block.
    fn proof(&self, after: u32, to: u32, justification: &[u8]) -> (Header, FinalityProof) {
        let chain = self.chain(after, to);
        let next = chain[0].clone();
        let proof = FinalityProof {
            block: chain.last().expect("non-empty").hash(),
            justification: justification.to_vec(),
            unknown_headers: chain[1..].to_vec(),
        };
        (next, proof)
    }
}

#[test]
fn the_change_block_announces_set_2493() {
    let r = recording();
    let logs = r.anchor.grandpa_logs().expect("logs decode");
    let change = logs
        .iter()
        .find_map(|l| match l {
            GrandpaConsensusLog::ScheduledChange(c) => Some(c),
            _ => None,
        })
        .expect("a scheduled change");
    assert_eq!(change.delay, 0);
    assert_eq!(change.next_authorities, r.set.authorities());
    assert_eq!(r.set.threshold(), 46);
}

#[test]
fn the_tracker_follows_all_three_real_proofs_from_the_change_block() {
    let r = recording();
    let mut tracker = r.tracker();
    let mut after = r.anchor.number;
    for (target, justification) in &r.justifications {
        let (next, proof) = r.proof(after, *target, justification);
        let encoded = FinalityProof::decode_exact(&proof.encode()).expect("round trip");
        let finalized = tracker.import_proof(next, &encoded).expect("verifies");
        assert_eq!(finalized.len() as u32, target - after);
        let last = finalized.last().expect("non-empty");
        assert!(last.is_justified());
        assert_eq!(last.finality().set_id(), 2493);
        assert!(!finalized[0].is_justified() || finalized.len() == 1);
        assert_eq!(finalized[0].number(), after + 1);
        assert_eq!(tracker.finalized().1, *target);
        after = *target;
    }
    assert_eq!(after, 1_441_236);
    assert_eq!(tracker.authority_set().set_id(), 2493);

    // Stored and read back, the state resumes exactly.
    let resumed = AuthoritySetTracker::decode_state(&tracker.encode_state()).expect("decodes");
    assert_eq!(resumed, tracker);
    // The stored window of headers is recalled against it; a gap is refused.
    let window: Vec<_> = r
        .chain(1_441_200, 1_441_236)
        .into_iter()
        .map(|h| (h, tracker_record(&r)))
        .collect();
    assert_eq!(resumed.recall(window.clone()).expect("links").len(), 36);
    let mut gapped = window;
    gapped.remove(10);
    assert!(matches!(
        resumed.recall(gapped),
        Err(Error::BrokenLink { .. })
    ));
}

fn tracker_record(r: &Recording) -> isthmus_light_client_grandpa::RecordedFinality {
    let mut tracker = r.tracker();
    let (target, justification) = r.justifications[0].clone();
    let (next, proof) = r.proof(r.anchor.number, target, &justification);
    let finalized = tracker.import_proof(next, &proof).expect("verifies");
    finalized[0].finality().record()
}

#[test]
fn a_justification_by_another_set_id_or_a_skipped_header_is_refused() {
    let r = recording();
    let (target, justification) = &r.justifications[0];
    let other = AuthoritySet::new(2492, r.set.authorities().to_vec()).expect("set");
    let mut stale = AuthoritySetTracker::new(other, r.anchor.hash(), r.anchor.number);
    let j = GrandpaJustification::decode_exact(justification).expect("decodes");
    assert!(matches!(
        stale.import_chain(r.chain(r.anchor.number, *target), &j),
        Err(Error::InvalidSignature { .. })
    ));
    let mut tracker = r.tracker();
    let mut chain = r.chain(r.anchor.number, *target);
    chain.remove(40);
    assert!(matches!(
        tracker.import_chain(chain, &j),
        Err(Error::BrokenLink { number, .. }) if number == r.anchor.number + 42
    ));
    // A proof that names another block than its justification finalizes.
    let (next, mut proof) = r.proof(r.anchor.number, *target, justification);
    proof.block = H256([9; 32]);
    assert!(matches!(
        tracker.import_proof(next, &proof),
        Err(Error::ProofMismatch { .. })
    ));
    assert_eq!(tracker, r.tracker(), "refusals leave the tracker unchanged");
}

/// Every flipped byte of a header of the proven chains is refused (each changes a
/// hash link, the justified target or fails to decode), and so is every flipped
/// byte of the justifications' commits and first precommits, with a stride through
/// the rest of their signatures and keys.
#[test]
fn any_flipped_byte_of_the_real_proofs_is_refused() {
    let r = recording();
    let mut after = r.anchor.number;
    let mut base = r.tracker();
    for (target, justification) in &r.justifications {
        let chain = r.chain(after, *target);
        let j = GrandpaJustification::decode_exact(justification).expect("decodes");
        for (i, header) in chain.iter().enumerate() {
            let scale = header.encode();
            let stride = if i == 0 || i + 1 == chain.len() { 1 } else { 5 };
            for at in (0..scale.len()).step_by(stride) {
                let mut bad = scale.clone();
                bad[at] ^= 0x01;
                let Ok(tampered) = Header::decode_exact(&bad) else {
                    continue;
                };
                let mut served = chain.clone();
                served[i] = tampered;
                let mut t = base.clone();
                assert!(
                    t.import_chain(served, &j).is_err(),
                    "block {}: flipped byte {at} still verifies",
                    header.number
                );
            }
        }
        for at in (0..justification.len()).filter(|at| *at < 200 || at % 11 == 0) {
            let mut bad = justification.clone();
            bad[at] ^= 0x01;
            let Ok(tampered) = GrandpaJustification::decode_exact(&bad) else {
                continue;
            };
            let mut t = base.clone();
            assert!(
                t.import_chain(chain.clone(), &tampered).is_err(),
                "justification of {target}: flipped byte {at} still verifies"
            );
        }
        base.import_chain(chain, &j)
            .expect("the true chain verifies");
        after = *target;
    }
}
