//! The GRANDPA follower of a Substrate ledger: the authority-set tracker started
//! from the configured anchor, or resumed from the state stored with the observe
//! cursor; the window of headers it finalized; what it hands the store to commit.
//!
//! Pure bookkeeping around [`AuthoritySetTracker`]: the ledger fetches finality
//! proofs from the node (`grandpa_proveFinality`), this module decides what they
//! prove. A proof the tracker refuses halts the follower for good (until an operator
//! acts): the [`Halt`] names the block, the authority set and the rule, and carries
//! the evidence for the history. A proof whose justification the current set did
//! sign for a chain that is not ours is a safety fault: both justifications are kept.

use std::collections::BTreeMap;

use isthmus_config::GrandpaAnchor;
use isthmus_light_client_evm::B256;
use isthmus_light_client_grandpa::{
    AuthorityId, AuthoritySet, AuthoritySetTracker, Error as Refusal, FinalityProof,
    FinalizedHeader, GrandpaJustification, Header, RecordedFinality, H256,
};
use isthmus_schema::{
    BlockRef, FinalityMode, LedgerId, LightClientCommit, LightClientRecord, VerifiedHeaderRecord,
};
use parity_scale_codec::Encode;
use serde_json::{json, Value};

use super::follow::{Halt, StartError, HEADER_WINDOW};

/// Version of the stored state's JSON layout.
const STATE_VERSION: u64 = 1;

/// One Substrate ledger's GRANDPA tracker with its window of finalized headers.
pub struct GrandpaFollower {
    ledger: String,
    id: LedgerId,
    anchor: BlockRef,
    tracker: AuthoritySetTracker,
    verified: BTreeMap<u64, FinalizedHeader>,
    /// Finalized since the last commit, ascending.
    pending: Vec<VerifiedHeaderRecord>,
    /// The justification of the last finalized block, SCALE (evidence for a safety
    /// fault).
    last_justification: Option<Vec<u8>>,
    halted: Option<Halt>,
}

impl GrandpaFollower {
    /// Starts at the configured anchor (whose hash the caller checked against the
    /// node's block at that height).
    pub fn start(ledger: &str, id: LedgerId, anchor: &GrandpaAnchor) -> Result<Self, StartError> {
        let set = anchor_set(anchor).map_err(|e| StartError::CheckpointMismatch {
            ledger: ledger.to_owned(),
            number: u64::from(anchor.number),
            hash: hex::encode(anchor.block),
            reason: e.to_string(),
        })?;
        Ok(Self {
            ledger: ledger.to_owned(),
            id,
            anchor: anchor_ref(anchor),
            tracker: AuthoritySetTracker::new(set, H256(anchor.block), anchor.number),
            verified: BTreeMap::new(),
            pending: Vec::new(),
            last_justification: None,
            halted: None,
        })
    }

    /// Resumes from the state stored with the observe cursor and the stored window of
    /// headers, checked against the configured anchor. Nothing is fetched.
    pub fn resume(
        ledger: &str,
        id: LedgerId,
        anchor: &GrandpaAnchor,
        record: &LightClientRecord,
        headers: Vec<VerifiedHeaderRecord>,
    ) -> Result<Self, StartError> {
        let configured = anchor_ref(anchor);
        if record.checkpoint != configured {
            return Err(StartError::CheckpointChanged {
                ledger: ledger.to_owned(),
                stored: describe_block(record.checkpoint),
                configured: describe_block(configured),
            });
        }
        let unresumable = |reason: String| StartError::Unresumable {
            ledger: ledger.to_owned(),
            head: record.head.number,
            reason,
        };
        let bytes = hex_field(&record.state, "tracker")
            .ok_or_else(|| unresumable("the stored state has no tracker".into()))?;
        let tracker = AuthoritySetTracker::decode_state(&bytes)
            .map_err(|e| unresumable(format!("the stored tracker: {e}")))?;
        let (hash, number) = tracker.finalized();
        if u64::from(number) != record.head.number || hash.0 != record.head.hash {
            return Err(unresumable(
                "the tracker's last finalized block is not the head recorded beside it".into(),
            ));
        }
        let mut chain = Vec::with_capacity(headers.len());
        for h in headers {
            let header = Header::decode_exact(&h.header_rlp)
                .map_err(|e| unresumable(format!("stored header {}: {e}", h.number)))?;
            let recorded = h
                .finality_proof
                .as_ref()
                .and_then(recorded_finality)
                .ok_or_else(|| {
                    unresumable(format!("stored header {} has no finality proof", h.number))
                })?;
            chain.push((header, recorded));
        }
        let verified = tracker
            .recall(chain)
            .map_err(|e| unresumable(format!("the stored headers: {e}")))?;
        Ok(Self {
            ledger: ledger.to_owned(),
            id,
            anchor: configured,
            last_justification: hex_field(&record.state, "last_justification"),
            tracker,
            verified: verified
                .into_iter()
                .map(|f| (u64::from(f.number()), f))
                .collect(),
            pending: Vec::new(),
            halted: None,
        })
    }

    /// The last finalized block.
    pub fn head(&self) -> BlockRef {
        let (hash, number) = self.tracker.finalized();
        BlockRef {
            number: u64::from(number),
            hash: hash.0,
        }
    }

    /// The authority set in force after the head.
    pub fn set_id(&self) -> u64 {
        self.tracker.authority_set().set_id()
    }

    /// The halt, once a proof was refused.
    pub fn halted(&self) -> Option<&Halt> {
        self.halted.as_ref()
    }

    /// The finalized header at `number`, if within the window.
    pub fn header(&self, number: u64) -> Option<&FinalizedHeader> {
        self.verified.get(&number)
    }

    /// Imports the node's finality proof for the block after the head: `next` is that
    /// block's header as served, `proof` leads from it to the justified block. On a
    /// refusal the follower halts, and the [`Halt`] says why.
    pub fn follow(&mut self, next: Header, proof: &FinalityProof) -> Result<u64, Halt> {
        if let Some(halt) = &self.halted {
            return Err(halt.clone());
        }
        match self.tracker.import_proof(next.clone(), proof) {
            Ok(finalized) => {
                let count = finalized.len() as u64;
                for f in finalized {
                    self.admit(f);
                }
                self.last_justification = Some(proof.justification.clone());
                Ok(count)
            }
            Err(refusal) => {
                let halt = self.halt_for(&refusal, &next, proof);
                self.halted = Some(halt.clone());
                Err(halt)
            }
        }
    }

    /// What the observe round commits with its cursor: the state and the headers
    /// finalized since the last commit.
    pub fn commit(&self) -> LightClientCommit {
        LightClientCommit {
            state: LightClientRecord {
                ledger: self.id,
                finality: FinalityMode::Grandpa,
                checkpoint: self.anchor,
                head: self.head(),
                validators: Vec::new(),
                state: self.state_json(),
            },
            headers: self.pending.clone(),
            keep: HEADER_WINDOW as u64,
        }
    }

    /// The store committed everything up to `head`.
    pub fn committed(&mut self, head: u64) {
        self.pending.retain(|h| h.number > head);
    }

    fn state_json(&self) -> Value {
        let set = self.tracker.authority_set();
        json!({
            "version": STATE_VERSION,
            "set_id": set.set_id(),
            "authorities": keys(set),
            "pending": self.tracker.pending_change().map(|p| json!({
                "set_id": p.next_set().set_id(),
                "effective_block": p.effective_block(),
                "forced_base": p.forced_base(),
                "authorities": keys(p.next_set()),
            })),
            "tracker": format!("0x{}", hex::encode(self.tracker.encode_state())),
            "last_justification": self.last_justification.as_ref().map(|j| format!("0x{}", hex::encode(j))),
        })
    }

    fn admit(&mut self, f: FinalizedHeader) {
        let number = u64::from(f.number());
        let r = f.finality().record();
        self.pending.push(VerifiedHeaderRecord {
            number,
            hash: f.hash().0,
            parent_hash: f.header().parent_hash.0,
            state_root: f.header().state_root.0,
            finality: FinalityMode::Grandpa,
            sealed_by: Vec::new(),
            validators: Vec::new(),
            header_rlp: f.header().encode(),
            finality_proof: Some(json!({
                "justified": {"number": r.number, "hash": format!("{}", r.hash)},
                "set_id": r.set_id,
                "round": r.round,
                "signed_weight": r.signed_weight,
            })),
        });
        self.verified.insert(number, f);
        while self.verified.len() > HEADER_WINDOW {
            self.verified.pop_first();
        }
        if self.pending.len() > HEADER_WINDOW {
            let extra = self.pending.len() - HEADER_WINDOW;
            self.pending.drain(..extra);
        }
    }

    fn halt_for(&self, refusal: &Refusal, next: &Header, proof: &FinalityProof) -> Halt {
        let head = self.head();
        let set = self.tracker.authority_set();
        let justification = GrandpaJustification::decode_exact(&proof.justification).ok();
        let (number, hash) = match refusal {
            Refusal::BrokenLink { number, .. } | Refusal::MandatoryJustification { number, .. } => {
                let hash = std::iter::once(next)
                    .chain(&proof.unknown_headers)
                    .find(|h| h.number == *number)
                    .map_or(H256([0; 32]), Header::hash);
                (*number, hash)
            }
            _ => justification
                .as_ref()
                .map_or((next.number, next.hash()), |j| {
                    (j.commit.target_number, j.commit.target_hash)
                }),
        };
        // The current set signed a block whose chain is not ours: two finalized
        // chains, which only an equivocating third of the set can produce.
        let conflicting = matches!(refusal, Refusal::BrokenLink { .. })
            && justification
                .as_ref()
                .is_some_and(|j| j.verify(set).is_ok());
        let rule = if conflicting {
            format!(
                "safety fault: authority set {} signed a justification of block {number} ({hash}) \
                 on a chain that does not extend the finalized block {} (0x{})",
                set.set_id(),
                head.number,
                hex::encode(head.hash)
            )
        } else {
            format!(
                "the finality proof of block {number} does not verify against authority set {}: \
                 {refusal}",
                set.set_id()
            )
        };
        let mut evidence = json!({
            "ledger_name": self.ledger,
            "block_number": number,
            "block_hash": format!("{hash}"),
            "rule": rule,
            "protocol": "grandpa",
            "set_id": set.set_id(),
            "authorities": keys(set),
            "verified_head": {"number": head.number, "hash": format!("0x{}", hex::encode(head.hash))},
            "next_header": format!("0x{}", hex::encode(next.encode())),
            "finality_proof": format!("0x{}", hex::encode(proof.encode())),
        });
        if conflicting {
            evidence["conflicting_justifications"] = json!([
                self.last_justification
                    .as_ref()
                    .map(|j| format!("0x{}", hex::encode(j))),
                format!("0x{}", hex::encode(&proof.justification)),
            ]);
        }
        Halt {
            number: u64::from(number),
            hash: B256(hash.0),
            rule,
            evidence,
        }
    }
}

/// How a finalized header's finality reads in the records.
pub fn describe(header: &FinalizedHeader) -> String {
    let f = header.finality();
    if header.is_justified() {
        format!(
            "grandpa: block {} {} justified by authority set {} (round {}, weight {})",
            header.number(),
            header.hash(),
            f.set_id(),
            f.round(),
            f.signed_weight()
        )
    } else {
        format!(
            "grandpa: block {} {} an ancestor of block {} {} justified by authority set {} \
             (round {}, weight {})",
            header.number(),
            header.hash(),
            f.number(),
            f.hash(),
            f.set_id(),
            f.round(),
            f.signed_weight()
        )
    }
}

fn anchor_set(anchor: &GrandpaAnchor) -> Result<AuthoritySet, Refusal> {
    AuthoritySet::new(
        anchor.set_id,
        anchor
            .authorities
            .iter()
            .map(|(key, weight)| (AuthorityId(*key), *weight))
            .collect(),
    )
}

fn anchor_ref(anchor: &GrandpaAnchor) -> BlockRef {
    BlockRef {
        number: u64::from(anchor.number),
        hash: anchor.block,
    }
}

fn describe_block(b: BlockRef) -> String {
    format!("{} (0x{})", b.number, hex::encode(b.hash))
}

fn keys(set: &AuthoritySet) -> Vec<String> {
    set.authorities()
        .iter()
        .map(|(id, _)| format!("{id}"))
        .collect()
}

fn hex_field(state: &Value, name: &str) -> Option<Vec<u8>> {
    hex::decode(state.get(name)?.as_str()?.trim_start_matches("0x")).ok()
}

fn recorded_finality(proof: &Value) -> Option<RecordedFinality> {
    let hash = hex_field(&proof["justified"], "hash")?;
    Some(RecordedFinality {
        hash: H256(hash.try_into().ok()?),
        number: u32::try_from(proof["justified"]["number"].as_u64()?).ok()?,
        set_id: proof["set_id"].as_u64()?,
        round: proof["round"].as_u64()?,
        signed_weight: proof["signed_weight"].as_u64()?,
    })
}

#[cfg(test)]
mod tests {
    //! The follower on real Rococo finality (set 2493, three real justifications),
    //! and on two forks signed by the devnet's voters.
    #![expect(
        clippy::unwrap_used,
        reason = "test code: a panic is the failure report"
    )]

    use isthmus_adapter_substrate::devnet::voters::{genesis_set, Voting};
    use isthmus_light_client_grandpa::{Digest, DigestItem};

    use super::*;

    struct Rococo {
        anchor: GrandpaAnchor,
        headers: Vec<Header>,
        /// (justified number, SCALE justification)
        justifications: Vec<(u32, Vec<u8>)>,
    }

    fn rococo() -> Rococo {
        let dir = std::env::var("ISTHMUS_FIXTURES").map_or_else(
            |_| std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/fixtures"),
            std::path::PathBuf::from,
        );
        let text =
            std::fs::read_to_string(dir.join("substrate/rococo-set2493-headers.json")).unwrap();
        let doc: Value = serde_json::from_str(&text).unwrap();
        let unhex = |v: &Value| hex::decode(&v.as_str().unwrap()[2..]).unwrap();
        let mut headers: Vec<Header> = doc["headers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| Header::decode_exact(&unhex(&h["scale"])).unwrap())
            .collect();
        let first = headers.remove(0);
        Rococo {
            anchor: GrandpaAnchor {
                block: first.hash().0,
                number: first.number,
                set_id: 2493,
                authorities: doc["authority_set"]["authorities"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|a| (unhex(&a["pubkey"]).try_into().unwrap(), 1))
                    .collect(),
                source: "rococo recording".into(),
            },
            headers,
            justifications: doc["submissions"]
                .as_array()
                .unwrap()
                .iter()
                .map(|s| {
                    (
                        s["signed_header_number"].as_u64().unwrap() as u32,
                        unhex(&s["justification"]["scale"]),
                    )
                })
                .collect(),
        }
    }

    impl Rococo {
        /// The proof a node serves for the block after `after`, up to `to`.
        fn proof(&self, after: u32, to: u32, justification: &[u8]) -> (Header, FinalityProof) {
            let chain: Vec<Header> = self
                .headers
                .iter()
                .filter(|h| h.number > after && h.number <= to)
                .cloned()
                .collect();
            (
                chain[0].clone(),
                FinalityProof {
                    block: chain.last().unwrap().hash(),
                    justification: justification.to_vec(),
                    unknown_headers: chain[1..].to_vec(),
                },
            )
        }
    }

    #[test]
    fn real_rococo_proofs_are_followed_committed_and_resumed() {
        let r = rococo();
        let mut f = GrandpaFollower::start("rococo", 9, &r.anchor).unwrap();
        let (target, justification) = &r.justifications[0];
        let (next, proof) = r.proof(r.anchor.number, *target, justification);
        assert_eq!(f.follow(next, &proof).unwrap(), 271);
        let commit = f.commit();
        assert_eq!(commit.state.head.number, u64::from(*target));
        assert_eq!(commit.state.checkpoint.number, u64::from(r.anchor.number));
        assert_eq!(commit.headers.len(), 271);
        assert_eq!(commit.state.state["set_id"], 2493);
        assert_eq!(
            commit.headers[0].finality_proof.as_ref().unwrap()["set_id"],
            2493
        );
        // A checkpoint inside the window reads as an ancestor of the justified block.
        assert!(describe(f.header(1_441_000).unwrap()).contains("an ancestor of block 1441204"));

        // Through JSON, as the store keeps it, then onwards with the next two proofs.
        let record = LightClientRecord {
            state: serde_json::from_str(&commit.state.state.to_string()).unwrap(),
            ..commit.state.clone()
        };
        let mut resumed =
            GrandpaFollower::resume("rococo", 9, &r.anchor, &record, commit.headers.clone())
                .unwrap();
        assert_eq!(resumed.head(), f.head());
        assert_eq!(
            resumed.header(1_441_100).map(FinalizedHeader::hash),
            f.header(1_441_100).map(FinalizedHeader::hash)
        );
        let mut after = *target;
        for (target, justification) in &r.justifications[1..] {
            let (next, proof) = r.proof(after, *target, justification);
            resumed.follow(next, &proof).unwrap();
            after = *target;
        }
        assert_eq!(resumed.head().number, 1_441_236);

        // Another anchor than the stored state's refuses to start.
        let mut moved = r.anchor.clone();
        moved.number += 1;
        moved.block = r.headers[0].hash().0;
        let e = GrandpaFollower::resume("rococo", 9, &moved, &record, commit.headers.clone())
            .err()
            .unwrap()
            .to_string();
        assert!(
            e.contains("isthmus light-client reset --ledger rococo"),
            "{e}"
        );
        // A window with a gap is refused.
        let mut gapped = commit.headers.clone();
        gapped.remove(100);
        assert!(GrandpaFollower::resume("rococo", 9, &r.anchor, &record, gapped).is_err());
    }

    #[test]
    fn a_refused_proof_halts_with_block_set_and_rule_and_stays_halted() {
        let r = rococo();
        let mut f = GrandpaFollower::start("rococo", 9, &r.anchor).unwrap();
        let (target, justification) = &r.justifications[0];
        let (next, proof) = r.proof(r.anchor.number, *target, justification);
        let mut forged = proof.clone();
        let mut j = GrandpaJustification::decode_exact(&forged.justification).unwrap();
        j.commit.precommits[3].signature[10] ^= 1;
        forged.justification = j.encode();
        let halt = f.follow(next.clone(), &forged).unwrap_err();
        assert_eq!(halt.number, u64::from(*target));
        assert!(halt.rule.contains("authority set 2493"), "{}", halt.rule);
        assert!(halt.rule.contains("invalid signature"), "{}", halt.rule);
        assert_eq!(halt.evidence["set_id"], 2493);
        assert_eq!(halt.evidence["verified_head"]["number"], r.anchor.number);
        assert!(halt.evidence["finality_proof"].as_str().unwrap().len() > 1000);
        assert_eq!(
            f.head().number,
            u64::from(r.anchor.number),
            "nothing imported"
        );
        // Halted for good: the true proof is not taken any more.
        assert!(f.follow(next, &proof).is_err());
    }

    fn child(parent: &Header, mark: u8) -> Header {
        Header {
            parent_hash: parent.hash(),
            number: parent.number + 1,
            state_root: H256([mark; 32]),
            extrinsics_root: H256([mark; 32]),
            digest: Digest {
                logs: vec![DigestItem::Other(vec![mark])],
            },
        }
    }

    /// Two chains from one anchor, each finalized by the same set: the second proof
    /// is a safety fault, and both justifications are kept in the evidence.
    #[test]
    fn conflicting_justifications_of_one_set_are_a_safety_fault() {
        let anchor = Header {
            parent_hash: H256([0; 32]),
            number: 10,
            state_root: H256([0; 32]),
            extrinsics_root: H256([0; 32]),
            digest: Digest::default(),
        };
        let fork = |mark: u8| {
            let mut chain = vec![anchor.clone()];
            for _ in 0..4 {
                let next = child(chain.last().unwrap(), mark);
                chain.push(next);
            }
            let mut voting = Voting::new(anchor.hash(), 10, 16).unwrap();
            voting.vote(chain[1..].to_vec());
            (chain, voting)
        };
        let ((ours, our_votes), (theirs, their_votes)) = (fork(1), fork(2));
        let set = genesis_set().unwrap();
        let config = GrandpaAnchor {
            block: anchor.hash().0,
            number: 10,
            set_id: 0,
            authorities: set.authorities().iter().map(|(id, w)| (id.0, *w)).collect(),
            source: "test".into(),
        };
        let mut f = GrandpaFollower::start("sub", 3, &config).unwrap();
        f.follow(ours[1].clone(), &our_votes.prove(11).unwrap().unwrap())
            .unwrap();
        assert_eq!(f.head().number, 14);
        // Their chain's proof of block 15? None: the same height, another chain.
        let mut more = theirs.clone();
        more.push(child(theirs.last().unwrap(), 2));
        let mut votes = Voting::new(anchor.hash(), 10, 16).unwrap();
        votes.vote(more[1..].to_vec());
        let halt = f
            .follow(more[5].clone(), &votes.prove(15).unwrap().unwrap())
            .unwrap_err();
        assert!(halt.rule.starts_with("safety fault"), "{}", halt.rule);
        assert_eq!(halt.number, 15);
        let kept = halt.evidence["conflicting_justifications"]
            .as_array()
            .unwrap();
        assert_eq!(kept.len(), 2);
        assert!(kept
            .iter()
            .all(|j| j.as_str().is_some_and(|j| j.len() > 100)));
        drop(their_votes);
    }
}
