//! Self-signed chains for tests and benchmarks: deterministic k256 keys, header
//! templates, and a BFT chain builder (QBFT, IBFT 2.0, IBFT 1.0) that proposes,
//! votes and seals like Besu and GoQuorum. Self-contained so that benches can
//! include it by path.
#![allow(dead_code, unreachable_pub, missing_docs)]

use isthmus_light_client_evm::bft::{
    bft_block_hash, committed_seal_hash, ibft1_committed_seal_hash, ibft1_proposer_seal_hash,
    BftExtraData, BftVote, Ibft1ExtraData, ISTANBUL_DIGEST,
};
use isthmus_light_client_evm::{
    keccak256, public_key_address, Address, BftKind, Header, TrustedCheckpoint, B256, U256,
};
use k256::ecdsa::SigningKey;

/// A deterministic signing key and its address.
pub fn key(i: u8) -> (SigningKey, Address) {
    let mut secret = [0u8; 32];
    secret[31] = i;
    secret[0] = 0x42;
    let sk = SigningKey::from_bytes(&secret.into()).expect("valid secret");
    let addr = public_key_address(sk.verifying_key());
    (sk, addr)
}

/// r ‖ s ‖ v (v = 0/1) over a 32-byte digest.
pub fn sign(sk: &SigningKey, digest: &B256) -> [u8; 65] {
    let (sig, recid) = sk
        .sign_prehash_recoverable(&digest.0)
        .expect("signing succeeds");
    let mut out = [0u8; 65];
    out[..64].copy_from_slice(&sig.to_bytes());
    out[64] = recid.to_byte();
    out
}

/// A plain pre-London header template (fields of no consensus meaning).
pub fn template(number: u64, parent: B256) -> Header {
    Header {
        parent_hash: parent,
        ommers_hash: keccak256(&[0xc0]),
        beneficiary: Address::ZERO,
        state_root: keccak256(b"state"),
        transactions_root: keccak256(&[0x80]),
        receipts_root: keccak256(&[0x80]),
        logs_bloom: Box::new([0u8; 256]),
        difficulty: U256::from(1),
        number,
        gas_limit: 30_000_000,
        gas_used: 0,
        timestamp: 1_700_000_000 + number * 2,
        extra_data: Vec::new(),
        mix_hash: B256::ZERO,
        nonce: [0u8; 8],
        base_fee_per_gas: None,
        withdrawals_root: None,
        blob_gas_used: None,
        excess_blob_gas: None,
        parent_beacon_block_root: None,
        requests_hash: None,
    }
}

/// A self-signed BFT chain. `keys` holds every key the chain may sign with
/// (validators and candidates); `validators` is the set the next header lists.
pub struct BftChain {
    pub kind: BftKind,
    pub keys: Vec<(SigningKey, Address)>,
    pub validators: Vec<Address>,
    pub head: Header,
    pub head_hash: B256,
}

impl BftChain {
    /// A genesis with `n` validators (keys 1..=n) under `kind`.
    pub fn new(kind: BftKind, n: u8) -> Self {
        let keys: Vec<_> = (1..=n).map(key).collect();
        let mut validators: Vec<Address> = keys.iter().map(|k| k.1).collect();
        validators.sort();
        let mut g = template(0, B256::ZERO);
        g.mix_hash = ISTANBUL_DIGEST;
        g.extra_data = Self::extra(kind, &validators);
        let head_hash = bft_block_hash(kind, &g).expect("genesis hash");
        BftChain {
            kind,
            keys,
            validators,
            head: g,
            head_hash,
        }
    }

    fn extra(kind: BftKind, validators: &[Address]) -> Vec<u8> {
        match kind {
            BftKind::Ibft1 => Ibft1ExtraData {
                vanity: [0; 32],
                validators: validators.to_vec(),
                proposer_seal: Vec::new(),
                committed_seals: Vec::new(),
            }
            .encode(true, true),
            _ => BftExtraData {
                vanity: vec![0; 32],
                validators: validators.to_vec(),
                vote: None,
                round: 0,
                seals: Vec::new(),
            }
            .encode(kind, true, true),
        }
    }

    pub fn checkpoint(&self) -> TrustedCheckpoint {
        TrustedCheckpoint {
            number: self.head.number,
            hash: self.head_hash,
        }
    }

    /// Adds a signing key (for a candidate) and returns its address.
    pub fn add_key(&mut self, i: u8) -> Address {
        let k = key(i);
        let a = k.1;
        self.keys.push(k);
        a
    }

    fn sk(&self, a: &Address) -> &SigningKey {
        &self
            .keys
            .iter()
            .find(|k| k.1 == *a)
            .expect("a key for the address")
            .0
    }

    /// The next header under `kind` (which may differ from the chain's, for a
    /// transition), proposed by `proposer`, voting `vote`, sealed by `sealers`.
    pub fn build_as(
        &self,
        kind: BftKind,
        proposer: Address,
        sealers: &[Address],
        vote: Option<(Address, bool)>,
    ) -> Header {
        let mut h = template(self.head.number + 1, self.head_hash);
        h.mix_hash = ISTANBUL_DIGEST;
        match kind {
            BftKind::Ibft1 => {
                if let Some((subject, add)) = vote {
                    h.beneficiary = subject;
                    h.nonce = if add { [0xff; 8] } else { [0; 8] };
                }
                let mut e = Ibft1ExtraData {
                    vanity: [7; 32],
                    validators: self.validators.clone(),
                    proposer_seal: Vec::new(),
                    committed_seals: Vec::new(),
                };
                h.extra_data = e.encode(true, true);
                e.proposer_seal =
                    sign(self.sk(&proposer), &ibft1_proposer_seal_hash(&h, &e)).to_vec();
                h.extra_data = e.encode(true, true);
                let hash = bft_block_hash(kind, &h).expect("hash");
                let d = ibft1_committed_seal_hash(&hash);
                e.committed_seals = sealers.iter().map(|a| sign(self.sk(a), &d)).collect();
                h.extra_data = e.encode(true, true);
            }
            _ => {
                h.beneficiary = proposer;
                let mut e = BftExtraData {
                    vanity: vec![0; 32],
                    validators: self.validators.clone(),
                    vote: vote.map(|(recipient, add)| BftVote { recipient, add }),
                    round: 0,
                    seals: Vec::new(),
                };
                h.extra_data = e.encode(kind, true, true);
                let d = committed_seal_hash(kind, &h, &e);
                e.seals = sealers.iter().map(|a| sign(self.sk(a), &d)).collect();
                h.extra_data = e.encode(kind, true, true);
            }
        }
        h
    }

    /// The next header under the chain's protocol.
    pub fn build(
        &self,
        proposer: Address,
        sealers: &[Address],
        vote: Option<(Address, bool)>,
    ) -> Header {
        self.build_as(self.kind, proposer, sealers, vote)
    }

    /// The next header proposed by validator `number % n`, sealed by the first
    /// `sealers` validators, without a vote.
    pub fn build_plain(&self, sealers: usize) -> Header {
        let n = self.validators.len();
        let proposer = self.validators[(self.head.number as usize + 1) % n];
        let s: Vec<Address> = self.validators[..sealers].to_vec();
        self.build(proposer, &s, None)
    }

    /// Makes `h` the head (under `kind`'s hash rule).
    pub fn push_as(&mut self, kind: BftKind, h: Header) {
        self.head_hash = bft_block_hash(kind, &h).expect("hash");
        self.head = h;
    }

    pub fn push(&mut self, h: Header) {
        self.push_as(self.kind, h)
    }

    /// `count` plain headers (3-of-4 style: `sealers` seals each), pushed.
    pub fn extend_plain(&mut self, count: usize, sealers: usize) -> Vec<Header> {
        (0..count)
            .map(|_| {
                let h = self.build_plain(sealers);
                self.push(h.clone());
                h
            })
            .collect()
    }
}
