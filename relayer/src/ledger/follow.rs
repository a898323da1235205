//! The header follower of an EVM ledger with sealed finality (`qbft`, `ibft2`,
//! `ibft`, `clique`): the light client started from the operator's trusted
//! checkpoint, or resumed from the state stored with the observe cursor, the
//! window of headers it verified, and what it hands the store to commit.
//!
//! Pure bookkeeping around [`EvmLightClient`]: the ledger fetches headers, this
//! module decides what they prove. A header the light client refuses halts the
//! follower for good (until an operator acts): [`Halt`] carries the block, the
//! rule and the evidence for the history.

use std::collections::BTreeMap;

use isthmus_config::{SealProtocol, SealedFinality};
use isthmus_light_client_evm::{
    bft, clique, Address, ConsensusConfig, ConsensusRule, EvmLightClient, Finality, FinalityMode,
    Header, Refusal, TrustedCheckpoint, Verified, B256,
};
use isthmus_schema::{
    BlockRef, LedgerId, LightClientCommit, LightClientRecord, VerifiedHeaderRecord,
};
use serde_json::{json, Value};

/// Most verified headers kept (in memory and in the store) below the head: the
/// checkpoints this member and lagging peers ask for are within it, also after a
/// restart. At least twice the observer's scan range, so the cursor (which trails
/// the light client's head by at most one range) always is.
pub const HEADER_WINDOW: usize = 4096;

/// The consensus schedule of a sealed ledger, from its configuration.
pub fn consensus_config(sealed: &SealedFinality) -> ConsensusConfig {
    ConsensusConfig {
        schedule: sealed
            .schedule
            .iter()
            .map(|s| ConsensusRule {
                from_block: s.from_block,
                protocol: protocol(s.protocol),
                epoch: s.epoch,
            })
            .collect(),
    }
}

fn protocol(p: SealProtocol) -> FinalityMode {
    match p {
        SealProtocol::Qbft => FinalityMode::Qbft,
        SealProtocol::Ibft2 => FinalityMode::Ibft2,
        SealProtocol::Ibft => FinalityMode::Ibft1,
        SealProtocol::Clique => FinalityMode::Clique,
    }
}

/// The history's name of a protocol (the `finality` column values).
pub fn schema_mode(mode: FinalityMode) -> isthmus_schema::FinalityMode {
    match mode {
        FinalityMode::Qbft => isthmus_schema::FinalityMode::Qbft,
        FinalityMode::Ibft2 => isthmus_schema::FinalityMode::Ibft2,
        FinalityMode::Ibft1 => isthmus_schema::FinalityMode::Ibft,
        FinalityMode::Clique => isthmus_schema::FinalityMode::Clique,
        FinalityMode::FinalizedTag => isthmus_schema::FinalityMode::FinalizedTag,
    }
}

/// Why a follower cannot start: the stored state and the configuration disagree,
/// or the checkpoint is not what the node serves.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The stored state was started from another checkpoint than the configured one.
    #[error(
        "the stored light-client state of ledger `{ledger}` was started from checkpoint \
         {stored}, but the configuration names checkpoint {configured}; if the new \
         checkpoint is right, stop every process of this member and run \
         `isthmus light-client reset --ledger {ledger} --operator <you> --reason <why>` \
         (recorded in the history), then start again"
    )]
    CheckpointChanged {
        /// The ledger.
        ledger: String,
        /// The stored checkpoint, `number (0xhash)`.
        stored: String,
        /// The configured checkpoint.
        configured: String,
    },
    /// The stored state cannot be resumed under the configuration.
    #[error(
        "the stored light-client state of ledger `{ledger}` (head {head}) cannot be resumed: \
         {reason}; if the configuration changed on purpose, reset it with \
         `isthmus light-client reset --ledger {ledger}`"
    )]
    Unresumable {
        /// The ledger.
        ledger: String,
        /// The stored head.
        head: u64,
        /// Why.
        reason: String,
    },
    /// The checkpoint header does not match the configured checkpoint.
    #[error(
        "ledger `{ledger}`: the node's block {number} does not match checkpoint.hash 0x{hash} \
         ({reason}); check the checkpoint against a source you trust, or the node's chain"
    )]
    CheckpointMismatch {
        /// The ledger.
        ledger: String,
        /// The checkpoint's number.
        number: u64,
        /// The configured hash.
        hash: String,
        /// What the light client said.
        reason: String,
    },
}

/// A header refused by the light client: the follower stops, and the history gets
/// the evidence.
#[derive(Debug, Clone)]
pub struct Halt {
    /// The refused block's number.
    pub number: u64,
    /// Its hash as the protocol hashes it (as served).
    pub hash: B256,
    /// The rule it broke.
    pub rule: String,
    /// Everything an auditor needs: the header(s), the verified head, the set.
    pub evidence: Value,
}

/// One sealed ledger's light client with its window of verified headers.
pub struct Follower {
    ledger: String,
    id: LedgerId,
    checkpoint: TrustedCheckpoint,
    client: EvmLightClient,
    verified: BTreeMap<u64, Verified<Header>>,
    /// Verified since the last commit, ascending.
    pending: Vec<VerifiedHeaderRecord>,
    halted: Option<Halt>,
}

impl Follower {
    /// Starts at the configured checkpoint, whose header the node served.
    pub fn start(
        ledger: &str,
        id: LedgerId,
        sealed: &SealedFinality,
        header: &Header,
    ) -> Result<Self, StartError> {
        let checkpoint = TrustedCheckpoint {
            number: sealed.checkpoint.number,
            hash: B256(sealed.checkpoint.hash),
        };
        let validators = sealed
            .validators
            .as_ref()
            .map(|v| v.iter().map(|a| Address(*a.as_bytes())).collect());
        let client = EvmLightClient::from_checkpoint(
            &consensus_config(sealed),
            checkpoint,
            header,
            validators,
        )
        .map_err(|e| StartError::CheckpointMismatch {
            ledger: ledger.to_owned(),
            number: checkpoint.number,
            hash: hex::encode(checkpoint.hash.0),
            reason: e.to_string(),
        })?;
        // The checkpoint itself is trusted, not verified by seals: checkpoints are
        // proven at later blocks, which the light client verified.
        Ok(Self {
            ledger: ledger.to_owned(),
            id,
            checkpoint,
            client,
            verified: BTreeMap::new(),
            pending: Vec::new(),
            halted: None,
        })
    }

    /// Resumes from the state stored with the observe cursor and the stored window
    /// of headers, checked against the configuration. No header is fetched.
    pub fn resume(
        ledger: &str,
        id: LedgerId,
        sealed: &SealedFinality,
        record: &LightClientRecord,
        headers: Vec<VerifiedHeaderRecord>,
    ) -> Result<Self, StartError> {
        let configured = sealed.checkpoint;
        if record.checkpoint.number != configured.number
            || record.checkpoint.hash != configured.hash
        {
            return Err(StartError::CheckpointChanged {
                ledger: ledger.to_owned(),
                stored: format!(
                    "{} (0x{})",
                    record.checkpoint.number,
                    hex::encode(record.checkpoint.hash)
                ),
                configured: format!("{} (0x{})", configured.number, hex::encode(configured.hash)),
            });
        }
        let unresumable = |reason: String| StartError::Unresumable {
            ledger: ledger.to_owned(),
            head: record.head.number,
            reason,
        };
        let state = serde_json::from_value(record.state.clone())
            .map_err(|e| unresumable(format!("the stored state does not parse: {e}")))?;
        let client = EvmLightClient::resume(&consensus_config(sealed), state)
            .map_err(|e| unresumable(e.to_string()))?;
        if client.head().number != record.head.number || client.head().hash.0 != record.head.hash {
            return Err(unresumable(
                "the state's head is not the head recorded beside it".into(),
            ));
        }
        let mut recalled = Vec::with_capacity(headers.len());
        for h in headers {
            let header = Header::decode_rlp(&h.header_rlp)
                .map_err(|e| unresumable(format!("stored header {}: {e}", h.number)))?;
            recalled.push((header, h));
        }
        let verified = client
            .recall(recalled.iter().map(|(header, h)| {
                (
                    header.clone(),
                    h.sealed_by.iter().map(|a| Address(*a)).collect(),
                    h.validators.iter().map(|a| Address(*a)).collect(),
                )
            }))
            .map_err(|e| unresumable(format!("the stored headers: {e}")))?;
        let mut follower = Self {
            ledger: ledger.to_owned(),
            id,
            checkpoint: TrustedCheckpoint {
                number: configured.number,
                hash: B256(configured.hash),
            },
            client,
            verified: BTreeMap::new(),
            pending: Vec::new(),
            halted: None,
        };
        for v in verified {
            follower.verified.insert(v.value().number, v);
        }
        Ok(follower)
    }

    /// The last verified block.
    pub fn head(&self) -> BlockRef {
        let h = self.client.head();
        BlockRef {
            number: h.number,
            hash: h.hash.0,
        }
    }

    /// The trusted checkpoint.
    pub fn checkpoint(&self) -> BlockRef {
        BlockRef {
            number: self.checkpoint.number,
            hash: self.checkpoint.hash.0,
        }
    }

    /// The protocol that verifies the next header.
    pub fn mode(&self) -> FinalityMode {
        self.client.mode()
    }

    /// The halt, once a header was refused.
    pub fn halted(&self) -> Option<&Halt> {
        self.halted.as_ref()
    }

    /// The verified header at `number`, if within the window.
    pub fn header(&self, number: u64) -> Option<&Verified<Header>> {
        self.verified.get(&number)
    }

    /// Verifies `headers` (the next ones after the head, ascending). On a refusal
    /// the headers before the refused one are kept (they are valid), the follower
    /// halts, and the [`Halt`] says why. `conflict` is the node's header at the
    /// head's height when the refused header does not link to the head (a fork
    /// candidate), fetched by the caller.
    pub fn follow(&mut self, headers: Vec<Header>) -> Result<(), Halt> {
        if let Some(halt) = &self.halted {
            return Err(halt.clone());
        }
        if headers.is_empty() {
            return Ok(());
        }
        match self.client.verify_headers(headers.iter().cloned()) {
            Ok(verified) => {
                for v in verified {
                    self.admit(v);
                }
                Ok(())
            }
            Err(refusal) => {
                let valid: Vec<Header> = headers
                    .iter()
                    .take_while(|h| h.number < refusal.number)
                    .cloned()
                    .collect();
                if !valid.is_empty() {
                    if let Ok(verified) = self.client.verify_headers(valid) {
                        for v in verified {
                            self.admit(v);
                        }
                    }
                }
                let refused = headers.iter().find(|h| h.number == refusal.number);
                let halt = self.halt_for(&refusal, refused);
                self.halted = Some(halt.clone());
                Err(halt)
            }
        }
    }

    /// Adds a conflicting header at a verified height to the halt's evidence when
    /// it is sealed by a quorum of the set that verified ours: two sealed headers at
    /// one height are a consensus fault. Returns whether it was one.
    pub fn conflict(&mut self, theirs: &Header) -> bool {
        let Some(ours) = self.verified.get(&theirs.number) else {
            return false;
        };
        let Finality::Sealed {
            mode, validators, ..
        } = ours.finality()
        else {
            return false;
        };
        let hash = match mode.block_hash(theirs) {
            Ok(h) if h != ours.block_hash() => h,
            _ => return false,
        };
        let sealed = match mode.bft_kind() {
            Some(kind) => bft::verify_seals(kind, theirs, validators).is_ok(),
            None => clique::recover_signer(theirs).is_ok_and(|s| validators.contains(&s)),
        };
        if !sealed {
            return false;
        }
        if let Some(halt) = &mut self.halted {
            halt.rule = format!(
                "consensus fault: two headers sealed by a quorum of the same validator set at \
                 block {} ({} and {})",
                theirs.number,
                ours.block_hash(),
                hash
            );
            halt.evidence["rule"] = Value::from(halt.rule.clone());
            halt.evidence["conflicting_headers"] = json!([
                header_json(ours.value(), ours.block_hash()),
                header_json(theirs, hash),
            ]);
        }
        true
    }

    /// What the observe round commits with its cursor: the state and the headers
    /// verified since the last commit.
    pub fn commit(&self) -> LightClientCommit {
        let head = self.head();
        let state = self.client.state();
        LightClientCommit {
            state: LightClientRecord {
                ledger: self.id,
                finality: schema_mode(self.client.mode()),
                checkpoint: self.checkpoint(),
                head,
                validators: self.client.authorities().iter().map(|a| a.0).collect(),
                state: serde_json::to_value(&state).unwrap_or(Value::Null),
            },
            headers: self.pending.clone(),
            keep: HEADER_WINDOW as u64,
        }
    }

    /// The store committed everything up to `head`.
    pub fn committed(&mut self, head: u64) {
        self.pending.retain(|h| h.number > head);
    }

    fn admit(&mut self, v: Verified<Header>) {
        let number = v.value().number;
        if let Finality::Sealed {
            mode,
            signers,
            validators,
        } = v.finality()
        {
            self.pending.push(VerifiedHeaderRecord {
                number,
                hash: v.block_hash().0,
                parent_hash: v.value().parent_hash.0,
                state_root: v.value().state_root.0,
                finality: schema_mode(*mode),
                sealed_by: signers.iter().map(|a| a.0).collect(),
                validators: validators.iter().map(|a| a.0).collect(),
                header_rlp: v.value().encode_rlp(),
                finality_proof: None,
            });
        }
        self.verified.insert(number, v);
        while self.verified.len() > HEADER_WINDOW {
            self.verified.pop_first();
        }
        if self.pending.len() > HEADER_WINDOW {
            let extra = self.pending.len() - HEADER_WINDOW;
            self.pending.drain(..extra);
        }
    }

    fn halt_for(&self, refusal: &Refusal, refused: Option<&Header>) -> Halt {
        let head = self.client.head();
        let rule = refusal.rule.to_string();
        let evidence = json!({
            "ledger_name": self.ledger,
            "block_number": refusal.number,
            "block_hash": format!("{}", refusal.hash),
            "rule": rule,
            "protocol": format!("{:?}", self.client.mode()),
            "verified_head": {"number": head.number, "hash": format!("{}", head.hash)},
            "validators": self.client.authorities().iter().map(|a| format!("{a}")).collect::<Vec<_>>(),
            "header": refused.map(|h| header_json(h, refusal.hash)),
        });
        Halt {
            number: refusal.number,
            hash: refusal.hash,
            rule,
            evidence,
        }
    }
}

/// A header as evidence: its hash under the protocol's rule and its RLP as served.
fn header_json(header: &Header, hash: B256) -> Value {
    json!({
        "number": header.number,
        "hash": format!("{hash}"),
        "parent_hash": format!("{}", header.parent_hash),
        "rlp": format!("0x{}", hex::encode(header.encode_rlp())),
    })
}

/// How a verified header's finality reads in the records: the protocol, the block,
/// who sealed it and the set they were checked against.
pub fn describe(header: &Verified<Header>) -> String {
    match header.finality() {
        Finality::TrustedFinalizedTag => "finalized-tag (trusted from the node)".to_owned(),
        Finality::Sealed {
            mode,
            signers,
            validators,
        } => {
            let list = |a: &[Address]| {
                a.iter()
                    .map(|x| format!("{x}"))
                    .collect::<Vec<_>>()
                    .join(",")
            };
            format!(
                "{}: block {} {} sealed by {} of {} validators [{}] of set [{}]",
                schema_mode(*mode),
                header.value().number,
                header.block_hash(),
                signers.len(),
                validators.len(),
                list(signers),
                list(validators)
            )
        }
    }
}

#[cfg(test)]
mod tests {
    //! The follower on a real GoQuorum IBFT 1.0 chain (blocks 0-100 of a
    //! 5-validator network that migrates to QBFT at block 101).
    #![expect(
        clippy::unwrap_used,
        reason = "test code: a panic is the failure report"
    )]

    use isthmus_config::{ConsensusStep, TrustedBlock};

    use super::*;

    fn fixture(name: &str) -> Value {
        let dir = std::env::var("ISTHMUS_FIXTURES").map_or_else(
            |_| std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/fixtures"),
            std::path::PathBuf::from,
        );
        let text = std::fs::read_to_string(dir.join("ethereum").join(name)).unwrap();
        serde_json::from_str(&text).unwrap()
    }

    fn headers_of(doc: &Value) -> Vec<Header> {
        doc["blocks"]
            .as_array()
            .unwrap()
            .iter()
            .map(|b| {
                let mut b = b.clone();
                b["transactions"] = json!([]);
                Header::from_rpc_json(&b.to_string()).unwrap()
            })
            .collect()
    }

    fn single(protocol: SealProtocol, epoch: u64, genesis: &Header) -> SealedFinality {
        SealedFinality {
            checkpoint: TrustedBlock {
                number: genesis.number,
                hash: genesis.hash().0,
            },
            validators: None,
            schedule: vec![ConsensusStep {
                from_block: 0,
                protocol,
                epoch,
            }],
        }
    }

    /// Real Clique chains (Rinkeby's genesis and blocks 1-5; a London-era Besu
    /// Clique dev chain) pass the follower from their genesis, and every flipped
    /// byte of a block's seal, signer list or parent link halts it at that block.
    #[test]
    fn real_clique_chains_follow_and_any_flipped_byte_halts() {
        for name in ["rinkeby-clique-0-5.json", "besu-clique-dev-blocks-0-4.json"] {
            let chain = headers_of(&fixture(name));
            let config = single(SealProtocol::Clique, 30_000, &chain[0]);
            let mut f = Follower::start("clique", 4, &config, &chain[0]).unwrap();
            f.follow(chain[1..].to_vec()).unwrap();
            assert_eq!(f.head().number, chain.len() as u64 - 1, "{name}");
            for target in 1..chain.len() {
                let extra = chain[target].extra_data.len();
                let mut positions: Vec<usize> = (extra - 65..extra).collect();
                positions.extend(0..32);
                for pos in positions {
                    let mut served = chain[1..].to_vec();
                    served[target - 1].extra_data[pos] ^= 0x01;
                    let mut f = Follower::start("clique", 4, &config, &chain[0]).unwrap();
                    let halt = f.follow(served).unwrap_err();
                    assert!(
                        halt.number == target as u64 || halt.number == target as u64 + 1,
                        "{name}: byte {pos} of block {target} halted at {}",
                        halt.number
                    );
                }
                let mut served = chain[1..].to_vec();
                served[target - 1].parent_hash.0[5] ^= 0x80;
                let mut f = Follower::start("clique", 4, &config, &chain[0]).unwrap();
                assert_eq!(
                    f.follow(served).unwrap_err().number,
                    target as u64,
                    "{name}"
                );
            }
        }
    }

    /// The real Besu QBFT block 7528 is a checkpoint the follower accepts (its
    /// validators come from its header), and not under another hash.
    #[test]
    fn real_qbft_block_is_a_checkpoint() {
        let doc = fixture("besu-qbft-block-7528.json");
        let mut json = doc["header"].clone();
        json["transactions"] = json!([]);
        let header = Header::from_rpc_json(&json.to_string()).unwrap();
        let hash = bft::bft_block_hash(isthmus_light_client_evm::BftKind::Qbft, &header).unwrap();
        let mut config = single(SealProtocol::Qbft, 30_000, &header);
        config.checkpoint.hash = hash.0;
        let f = Follower::start("besu", 5, &config, &header).unwrap();
        assert_eq!(f.head().number, 7528);
        assert_eq!(f.commit().state.validators.len(), 4);
        config.checkpoint.hash[31] ^= 1;
        assert!(Follower::start("besu", 5, &config, &header).is_err());
    }

    fn blocks() -> Vec<Header> {
        let doc = fixture("goquorum-ibft1-blocks-0-100.json");
        headers_of(&doc)
    }

    fn sealed(genesis: &Header) -> SealedFinality {
        SealedFinality {
            checkpoint: TrustedBlock {
                number: 0,
                hash: genesis.hash().0,
            },
            validators: None,
            schedule: vec![
                ConsensusStep {
                    from_block: 0,
                    protocol: SealProtocol::Ibft,
                    epoch: 100,
                },
                ConsensusStep {
                    from_block: 101,
                    protocol: SealProtocol::Qbft,
                    epoch: 30_000,
                },
            ],
        }
    }

    fn tamper_last_seal(header: &Header) -> Header {
        let mut h = header.clone();
        let n = h.extra_data.len();
        // The extraData ends with the last committed seal: flip a byte of its r.
        h.extra_data[n - 60] ^= 1;
        h
    }

    #[test]
    fn a_resumed_follower_continues_exactly_where_the_stored_one_stood() {
        let chain = blocks();
        let config = sealed(&chain[0]);
        let mut straight = Follower::start("quorum", 7, &config, &chain[0]).unwrap();
        straight.follow(chain[1..=100].to_vec()).unwrap();

        let mut first = Follower::start("quorum", 7, &config, &chain[0]).unwrap();
        first.follow(chain[1..=60].to_vec()).unwrap();
        let commit = first.commit();
        assert_eq!(commit.state.head.number, 60);
        assert_eq!(commit.headers.len(), 60);
        assert_eq!(commit.state.validators.len(), 5);
        // Through JSON, as the store keeps it.
        let record = LightClientRecord {
            state: serde_json::from_str(&commit.state.state.to_string()).unwrap(),
            ..commit.state.clone()
        };
        let mut resumed =
            Follower::resume("quorum", 7, &config, &record, commit.headers.clone()).unwrap();
        assert_eq!(resumed.head(), first.head());
        // The stored window serves checkpoints below the head without the node.
        assert_eq!(
            resumed.header(42).map(Verified::block_hash),
            first.header(42).map(Verified::block_hash)
        );
        assert!(describe(resumed.header(60).unwrap()).contains("sealed by 4 of 5 validators"));
        resumed.follow(chain[61..=100].to_vec()).unwrap();
        assert_eq!(resumed.head(), straight.head());
        assert_eq!(resumed.commit().state.state, straight.commit().state.state);
        assert_eq!(resumed.mode(), FinalityMode::Qbft, "ready for block 101");
    }

    #[test]
    fn a_refused_header_halts_after_the_valid_ones_and_stays_halted() {
        let chain = blocks();
        let config = sealed(&chain[0]);
        let mut f = Follower::start("quorum", 7, &config, &chain[0]).unwrap();
        let mut served = chain[1..=100].to_vec();
        served[79] = tamper_last_seal(&chain[80]);
        let halt = f.follow(served).unwrap_err();
        assert_eq!(halt.number, 80);
        assert_eq!(f.head().number, 79, "the valid prefix is kept");
        assert_eq!(halt.evidence["block_number"], 80);
        assert!(halt.evidence["header"]["rlp"].as_str().unwrap().len() > 100);
        assert_eq!(halt.evidence["verified_head"]["number"], 79);
        assert!(!halt.rule.is_empty());
        // Halted for good: even the true header is not taken any more.
        assert_eq!(f.follow(vec![chain[80].clone()]).unwrap_err().number, 80);
        assert_eq!(f.head().number, 79);
    }

    /// Every byte of block 37's validator list, proposer seal and committed seals
    /// (everything after the vanity), flipped, halts the follower there.
    #[test]
    fn every_flipped_byte_of_a_real_ibft_seal_or_validator_list_halts() {
        let chain = blocks();
        let config = sealed(&chain[0]);
        let mut base = Follower::start("quorum", 7, &config, &chain[0]).unwrap();
        base.follow(chain[1..=36].to_vec()).unwrap();
        let target = &chain[37];
        for pos in 32..target.extra_data.len() {
            let mut bad = target.clone();
            bad.extra_data[pos] ^= 0x01;
            let mut f = Follower::resume(
                "quorum",
                7,
                &config,
                &base.commit().state,
                base.commit().headers,
            )
            .unwrap();
            let halt = f.follow(vec![bad, chain[38].clone()]).unwrap_err();
            assert!(
                halt.number == 37 || halt.number == 38,
                "byte {pos}: halted at {}",
                halt.number
            );
            assert_eq!(f.head().number, halt.number - 1);
        }
    }

    #[test]
    fn a_broken_link_halts_and_a_sealed_fork_is_named_a_consensus_fault() {
        let chain = blocks();
        let config = sealed(&chain[0]);
        let mut f = Follower::start("quorum", 7, &config, &chain[0]).unwrap();
        f.follow(chain[1..=10].to_vec()).unwrap();
        let mut orphan = chain[11].clone();
        orphan.parent_hash = B256([7; 32]);
        let halt = f.follow(vec![orphan]).unwrap_err();
        assert_eq!(halt.number, 11);
        // A header at a verified height that is not sealed by the set is no fork.
        let mut unsealed = chain[10].clone();
        unsealed.gas_limit += 1;
        assert!(!f.conflict(&unsealed));
        // Our own header is no conflict either.
        assert!(!f.conflict(&chain[10]));
    }

    #[test]
    fn a_stored_state_from_another_checkpoint_refuses_to_start() {
        let chain = blocks();
        let config = sealed(&chain[0]);
        let mut f = Follower::start("quorum", 7, &config, &chain[0]).unwrap();
        f.follow(chain[1..=5].to_vec()).unwrap();
        let commit = f.commit();
        let mut moved = config.clone();
        moved.checkpoint = TrustedBlock {
            number: 3,
            hash: f.header(3).unwrap().block_hash().0,
        };
        let e = Follower::resume("quorum", 7, &moved, &commit.state, commit.headers.clone())
            .err()
            .unwrap();
        let text = e.to_string();
        assert!(
            text.contains("checkpoint 0 (0x") && text.contains("checkpoint 3 (0x"),
            "{text}"
        );
        assert!(
            text.contains("isthmus light-client reset --ledger quorum"),
            "{text}"
        );
        // A window that does not end at the head is refused too.
        let e = Follower::resume(
            "quorum",
            7,
            &config,
            &commit.state,
            commit.headers[..4].to_vec(),
        )
        .err()
        .unwrap();
        assert!(e.to_string().contains("stored headers"), "{e}");
    }

    #[test]
    fn a_wrong_checkpoint_hash_is_refused_at_start() {
        let chain = blocks();
        let mut config = sealed(&chain[0]);
        config.checkpoint.hash[0] ^= 1;
        let e = Follower::start("quorum", 7, &config, &chain[0])
            .err()
            .unwrap();
        assert!(
            e.to_string().contains("does not match checkpoint.hash"),
            "{e}"
        );
    }
}
