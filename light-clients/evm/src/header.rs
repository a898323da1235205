//! Execution-layer block headers of every fork: RLP decoding and encoding, the
//! block hash, and conversion from the JSON-RPC block object.

use serde::Deserialize;

use crate::error::{Error, RlpError};
use crate::rlp::{self, Item};
use crate::types::{keccak256, Address, B256, U256};

/// keccak256(RLP([])): the ommers hash of every Clique and BFT header.
pub(crate) const EMPTY_OMMERS_HASH: B256 = B256([
    0x1d, 0xcc, 0x4d, 0xe8, 0xde, 0xc7, 0x5d, 0x7a, 0xab, 0x85, 0xb5, 0x67, 0xb6, 0xcc, 0xd4, 0x1a,
    0xd3, 0x12, 0x45, 0x1b, 0x94, 0x8a, 0x74, 0x13, 0xf0, 0xa1, 0x42, 0xfd, 0x40, 0xd4, 0x93, 0x47,
]);

/// An execution-layer block header.
///
/// The optional fields are the ones later forks appended; a header carries a
/// prefix of them (London's `base_fee_per_gas`, then Shanghai's
/// `withdrawals_root`, then Cancun's three fields, then Prague's `requests_hash`).
/// The decoders refuse any other combination, because the RLP encoding is
/// positional and a gap could not be encoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// Hash of the parent block.
    pub parent_hash: B256,
    /// Hash of the ommers list (`sha3Uncles`).
    pub ommers_hash: B256,
    /// Fee recipient (`miner`); the voted address in Clique.
    pub beneficiary: Address,
    /// Root of the state trie after this block.
    pub state_root: B256,
    /// Root of the transactions trie.
    pub transactions_root: B256,
    /// Root of the receipts trie.
    pub receipts_root: B256,
    /// 2048-bit logs bloom.
    pub logs_bloom: Box<[u8; 256]>,
    /// Proof-of-work difficulty; 0 after the merge, 1 or 2 under Clique.
    pub difficulty: U256,
    /// Block number.
    pub number: u64,
    /// Gas limit.
    pub gas_limit: u64,
    /// Gas used.
    pub gas_used: u64,
    /// Unix timestamp in seconds.
    pub timestamp: u64,
    /// Extra data; carries the seals under Clique, IBFT2 and QBFT.
    pub extra_data: Vec<u8>,
    /// Mix hash (`prevRandao` after the merge).
    pub mix_hash: B256,
    /// Proof-of-work nonce; the vote under Clique.
    pub nonce: [u8; 8],
    /// London (EIP-1559) base fee.
    pub base_fee_per_gas: Option<U256>,
    /// Shanghai (EIP-4895) withdrawals root.
    pub withdrawals_root: Option<B256>,
    /// Cancun (EIP-4844) blob gas used.
    pub blob_gas_used: Option<u64>,
    /// Cancun (EIP-4844) excess blob gas.
    pub excess_blob_gas: Option<u64>,
    /// Cancun (EIP-4788) parent beacon block root.
    pub parent_beacon_block_root: Option<B256>,
    /// Prague (EIP-7685) requests hash.
    pub requests_hash: Option<B256>,
}

/// Field names in RLP order, as in the JSON-RPC block object; error messages use
/// them so a refusal names the field.
pub const FIELD_NAMES: [&str; 21] = [
    "parentHash",
    "sha3Uncles",
    "miner",
    "stateRoot",
    "transactionsRoot",
    "receiptsRoot",
    "logsBloom",
    "difficulty",
    "number",
    "gasLimit",
    "gasUsed",
    "timestamp",
    "extraData",
    "mixHash",
    "nonce",
    "baseFeePerGas",
    "withdrawalsRoot",
    "blobGasUsed",
    "excessBlobGas",
    "parentBeaconBlockRoot",
    "requestsHash",
];

impl Header {
    /// Decodes a header from its RLP encoding.
    ///
    /// The encoding must be canonical, exactly one list with no trailing bytes,
    /// and have 15, 16, 17, 20 or 21 fields (the field counts of the forks).
    pub fn decode_rlp(bytes: &[u8]) -> Result<Self, Error> {
        let items = rlp::decode_list(bytes)?;
        if !matches!(items.len(), 15 | 16 | 17 | 20 | 21) {
            return Err(Error::HeaderFieldCount(items.len()));
        }
        let f = |i: usize| -> (&Item<'_>, &'static str) { (&items[i], FIELD_NAMES[i]) };
        let hash = |i: usize| -> Result<B256, Error> {
            let (it, n) = f(i);
            it.fixed::<32>().map(B256).map_err(Error::field(n))
        };
        let num = |i: usize| -> Result<u64, Error> {
            let (it, n) = f(i);
            it.u64().map_err(Error::field(n))
        };
        let big = |i: usize| -> Result<U256, Error> {
            let (it, n) = f(i);
            let b = it.scalar_bytes(32).map_err(Error::field(n))?;
            U256::from_be_slice(b).ok_or(Error::HeaderField {
                field: n,
                source: RlpError::Overflow,
            })
        };
        let opt = |i: usize| items.len() > i;
        Ok(Header {
            parent_hash: hash(0)?,
            ommers_hash: hash(1)?,
            beneficiary: Address(
                items[2]
                    .fixed::<20>()
                    .map_err(Error::field(FIELD_NAMES[2]))?,
            ),
            state_root: hash(3)?,
            transactions_root: hash(4)?,
            receipts_root: hash(5)?,
            logs_bloom: Box::new(
                items[6]
                    .fixed::<256>()
                    .map_err(Error::field(FIELD_NAMES[6]))?,
            ),
            difficulty: big(7)?,
            number: num(8)?,
            gas_limit: num(9)?,
            gas_used: num(10)?,
            timestamp: num(11)?,
            extra_data: items[12]
                .bytes()
                .map_err(Error::field(FIELD_NAMES[12]))?
                .to_vec(),
            mix_hash: hash(13)?,
            nonce: items[14]
                .fixed::<8>()
                .map_err(Error::field(FIELD_NAMES[14]))?,
            base_fee_per_gas: opt(15).then(|| big(15)).transpose()?,
            withdrawals_root: opt(16).then(|| hash(16)).transpose()?,
            blob_gas_used: opt(17).then(|| num(17)).transpose()?,
            excess_blob_gas: opt(18).then(|| num(18)).transpose()?,
            parent_beacon_block_root: opt(19).then(|| hash(19)).transpose()?,
            requests_hash: opt(20).then(|| hash(20)).transpose()?,
        })
    }

    /// The canonical RLP encoding.
    pub fn encode_rlp(&self) -> Vec<u8> {
        self.encode_rlp_with_extra(&self.extra_data)
    }

    /// The RLP encoding with `extra` in place of the extraData field: the seal
    /// hashes of Clique, IBFT2 and QBFT are hashes of such encodings.
    pub fn encode_rlp_with_extra(&self, extra: &[u8]) -> Vec<u8> {
        let mut p = Vec::with_capacity(600 + extra.len());
        rlp::encode_bytes(&mut p, &self.parent_hash.0);
        rlp::encode_bytes(&mut p, &self.ommers_hash.0);
        rlp::encode_bytes(&mut p, &self.beneficiary.0);
        rlp::encode_bytes(&mut p, &self.state_root.0);
        rlp::encode_bytes(&mut p, &self.transactions_root.0);
        rlp::encode_bytes(&mut p, &self.receipts_root.0);
        rlp::encode_bytes(&mut p, &self.logs_bloom[..]);
        rlp::encode_bytes(&mut p, self.difficulty.to_minimal_be());
        rlp::encode_u64(&mut p, self.number);
        rlp::encode_u64(&mut p, self.gas_limit);
        rlp::encode_u64(&mut p, self.gas_used);
        rlp::encode_u64(&mut p, self.timestamp);
        rlp::encode_bytes(&mut p, extra);
        rlp::encode_bytes(&mut p, &self.mix_hash.0);
        rlp::encode_bytes(&mut p, &self.nonce);
        // The optional fields form a prefix; the constructors guarantee it and
        // encoding stops at the first absent one so output is always decodable.
        if let Some(v) = &self.base_fee_per_gas {
            rlp::encode_bytes(&mut p, v.to_minimal_be());
            if let Some(v) = &self.withdrawals_root {
                rlp::encode_bytes(&mut p, &v.0);
                if let (Some(a), Some(b), Some(c)) = (
                    self.blob_gas_used,
                    self.excess_blob_gas,
                    &self.parent_beacon_block_root,
                ) {
                    rlp::encode_u64(&mut p, a);
                    rlp::encode_u64(&mut p, b);
                    rlp::encode_bytes(&mut p, &c.0);
                    if let Some(v) = &self.requests_hash {
                        rlp::encode_bytes(&mut p, &v.0);
                    }
                }
            }
        }
        rlp::encode_list(&p)
    }

    /// keccak256 of the RLP encoding: the block hash on Ethereum and Clique chains.
    /// (IBFT2 and QBFT chains hash a reduced extraData instead; see
    /// [`crate::bft::bft_block_hash`].)
    pub fn hash(&self) -> B256 {
        keccak256(&self.encode_rlp())
    }

    /// Parses a JSON-RPC block object (`eth_getBlockByNumber`/`Hash`); fields that
    /// are not header fields (transactions, size, ...) are ignored.
    pub fn from_rpc_json(json: &str) -> Result<Self, Error> {
        let rpc: RpcHeader =
            serde_json::from_str(json).map_err(|_| Error::InvalidJsonField("<document>"))?;
        Header::try_from(&rpc)
    }
}

/// The header fields of a JSON-RPC block object, as the node sent them (hex
/// strings). Convert with `Header::try_from(&rpc)`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RpcHeader {
    /// `hash` as claimed by the node (not trusted; see [`RpcHeader::checked`]).
    pub hash: Option<String>,
    /// `parentHash`.
    pub parent_hash: Option<String>,
    /// `sha3Uncles`.
    pub sha3_uncles: Option<String>,
    /// `miner`.
    pub miner: Option<String>,
    /// `stateRoot`.
    pub state_root: Option<String>,
    /// `transactionsRoot`.
    pub transactions_root: Option<String>,
    /// `receiptsRoot`.
    pub receipts_root: Option<String>,
    /// `logsBloom`.
    pub logs_bloom: Option<String>,
    /// `difficulty`.
    pub difficulty: Option<String>,
    /// `number`.
    pub number: Option<String>,
    /// `gasLimit`.
    pub gas_limit: Option<String>,
    /// `gasUsed`.
    pub gas_used: Option<String>,
    /// `timestamp`.
    pub timestamp: Option<String>,
    /// `extraData`.
    pub extra_data: Option<String>,
    /// `mixHash`.
    pub mix_hash: Option<String>,
    /// `nonce`.
    pub nonce: Option<String>,
    /// `baseFeePerGas` (London).
    pub base_fee_per_gas: Option<String>,
    /// `withdrawalsRoot` (Shanghai).
    pub withdrawals_root: Option<String>,
    /// `blobGasUsed` (Cancun).
    pub blob_gas_used: Option<String>,
    /// `excessBlobGas` (Cancun).
    pub excess_blob_gas: Option<String>,
    /// `parentBeaconBlockRoot` (Cancun).
    pub parent_beacon_block_root: Option<String>,
    /// `requestsHash` (Prague).
    pub requests_hash: Option<String>,
}

fn req<'a>(v: &'a Option<String>, name: &'static str) -> Result<&'a str, Error> {
    v.as_deref().ok_or(Error::MissingJsonField(name))
}

fn hex_bytes(s: &str, name: &'static str) -> Result<Vec<u8>, Error> {
    let s = s.strip_prefix("0x").ok_or(Error::InvalidJsonField(name))?;
    hex::decode(s).map_err(|_| Error::InvalidJsonField(name))
}

fn json_fixed<const N: usize>(v: &Option<String>, name: &'static str) -> Result<[u8; N], Error> {
    hex_bytes(req(v, name)?, name)?
        .try_into()
        .map_err(|_| Error::InvalidJsonField(name))
}

/// A JSON-RPC quantity: `0x`-prefixed hex without leading zeros (`0x0` for zero).
fn json_quantity(s: &str, name: &'static str) -> Result<U256, Error> {
    let digits = s.strip_prefix("0x").ok_or(Error::InvalidJsonField(name))?;
    if digits.is_empty() || digits.len() > 64 || (digits.len() > 1 && digits.starts_with('0')) {
        return Err(Error::InvalidJsonField(name));
    }
    let padded = if digits.len() % 2 == 1 {
        format!("0{digits}")
    } else {
        digits.to_string()
    };
    let bytes = hex::decode(padded).map_err(|_| Error::InvalidJsonField(name))?;
    U256::from_be_slice(&bytes).ok_or(Error::InvalidJsonField(name))
}

fn json_u64(v: &Option<String>, name: &'static str) -> Result<u64, Error> {
    json_quantity(req(v, name)?, name)?
        .to_u64()
        .ok_or(Error::InvalidJsonField(name))
}

impl TryFrom<&RpcHeader> for Header {
    type Error = Error;

    fn try_from(r: &RpcHeader) -> Result<Self, Error> {
        let present = [
            ("baseFeePerGas", r.base_fee_per_gas.is_some()),
            ("withdrawalsRoot", r.withdrawals_root.is_some()),
            ("blobGasUsed", r.blob_gas_used.is_some()),
            ("excessBlobGas", r.excess_blob_gas.is_some()),
            (
                "parentBeaconBlockRoot",
                r.parent_beacon_block_root.is_some(),
            ),
            ("requestsHash", r.requests_hash.is_some()),
        ];
        for (i, (name, here)) in present.iter().enumerate().skip(1) {
            if *here {
                if let Some((missing, _)) = present[..i].iter().find(|(_, p)| !p) {
                    return Err(Error::ForkFieldsOutOfOrder {
                        present: name,
                        missing,
                    });
                }
            }
        }
        // Cancun's three fields come together; with the prefix rule above only
        // a trailing part of them can be missing.
        if present[2].1 {
            if let Some((missing, _)) = present[3..5].iter().find(|(_, p)| !p) {
                return Err(Error::ForkFieldsOutOfOrder {
                    present: "blobGasUsed",
                    missing,
                });
            }
        }
        let opt_hash = |v: &Option<String>, n| -> Result<Option<B256>, Error> {
            v.as_ref()
                .map(|_| json_fixed::<32>(v, n).map(B256))
                .transpose()
        };
        let opt_u64 = |v: &Option<String>, n| -> Result<Option<u64>, Error> {
            v.as_ref().map(|_| json_u64(v, n)).transpose()
        };
        Ok(Header {
            parent_hash: B256(json_fixed(&r.parent_hash, "parentHash")?),
            ommers_hash: B256(json_fixed(&r.sha3_uncles, "sha3Uncles")?),
            beneficiary: Address(json_fixed(&r.miner, "miner")?),
            state_root: B256(json_fixed(&r.state_root, "stateRoot")?),
            transactions_root: B256(json_fixed(&r.transactions_root, "transactionsRoot")?),
            receipts_root: B256(json_fixed(&r.receipts_root, "receiptsRoot")?),
            logs_bloom: Box::new(json_fixed(&r.logs_bloom, "logsBloom")?),
            difficulty: json_quantity(req(&r.difficulty, "difficulty")?, "difficulty")?,
            number: json_u64(&r.number, "number")?,
            gas_limit: json_u64(&r.gas_limit, "gasLimit")?,
            gas_used: json_u64(&r.gas_used, "gasUsed")?,
            timestamp: json_u64(&r.timestamp, "timestamp")?,
            extra_data: hex_bytes(req(&r.extra_data, "extraData")?, "extraData")?,
            mix_hash: B256(json_fixed(&r.mix_hash, "mixHash")?),
            nonce: json_fixed(&r.nonce, "nonce")?,
            base_fee_per_gas: r
                .base_fee_per_gas
                .as_deref()
                .map(|s| json_quantity(s, "baseFeePerGas"))
                .transpose()?,
            withdrawals_root: opt_hash(&r.withdrawals_root, "withdrawalsRoot")?,
            blob_gas_used: opt_u64(&r.blob_gas_used, "blobGasUsed")?,
            excess_blob_gas: opt_u64(&r.excess_blob_gas, "excessBlobGas")?,
            parent_beacon_block_root: opt_hash(
                &r.parent_beacon_block_root,
                "parentBeaconBlockRoot",
            )?,
            requests_hash: opt_hash(&r.requests_hash, "requestsHash")?,
        })
    }
}

impl RpcHeader {
    /// The hash the node claimed for this block, if it sent one.
    pub fn claimed_hash(&self) -> Result<Option<B256>, Error> {
        self.hash
            .as_ref()
            .map(|_| json_fixed::<32>(&self.hash, "hash").map(B256))
            .transpose()
    }

    /// Converts to a [`Header`] and checks that keccak256 of its RLP equals the
    /// claimed `hash` (Ethereum and Clique chains). A missing `hash` is refused.
    pub fn checked(&self) -> Result<Header, Error> {
        let header = Header::try_from(self)?;
        let claimed = self
            .claimed_hash()?
            .ok_or(Error::MissingJsonField("hash"))?;
        let computed = header.hash();
        if claimed != computed {
            return Err(Error::ClaimedHashMismatch { claimed, computed });
        }
        Ok(header)
    }
}
