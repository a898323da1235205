//! Merkle-Patricia trie proofs: `eth_getProof` account and storage proofs.
//!
//! A proof is the list of trie nodes on the path from the root to a key. The walk
//! starts at the root hash, checks that each node hashes to the reference its
//! parent holds, and follows the key's nibbles through branch, extension and leaf
//! nodes. Nodes whose encoding is shorter than 32 bytes are embedded in their
//! parent rather than referenced by hash, so they are not separate proof elements.
//!
//! The result is `Some(value)` when the key is present, or `None` only when the
//! proof itself shows that the path ends (an empty branch slot, or a leaf or
//! extension whose path diverges from the key's). Anything else is an error,
//! including proofs that stop early or carry unused nodes.

use serde::Deserialize;

use crate::error::Error;
use crate::rlp::{self, Item};
use crate::types::{keccak256, Address, B256, U256};

/// Root of the empty trie: keccak256 of the RLP empty string.
pub const EMPTY_TRIE_ROOT: B256 = B256([
    0x56, 0xe8, 0x1f, 0x17, 0x1b, 0xcc, 0x55, 0xa6, 0xff, 0x83, 0x45, 0xe6, 0x92, 0xc0, 0xf8, 0x6e,
    0x5b, 0x48, 0xe0, 0x1b, 0x99, 0x6c, 0xad, 0xc0, 0x01, 0x62, 0x2f, 0xb5, 0xe3, 0x63, 0xb4, 0x21,
]);

/// keccak256 of empty code: the code hash of accounts without code.
pub const EMPTY_CODE_HASH: B256 = B256([
    0xc5, 0xd2, 0x46, 0x01, 0x86, 0xf7, 0x23, 0x3c, 0x92, 0x7e, 0x7d, 0xb2, 0xdc, 0xc7, 0x03, 0xc0,
    0xe5, 0x00, 0xb6, 0x53, 0xca, 0x82, 0x27, 0x3b, 0x7b, 0xfa, 0xd8, 0x04, 0x5d, 0x85, 0xa4, 0x70,
]);

/// An account as stored in the state trie.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Account {
    /// Transaction count (or contract creation count).
    pub nonce: u64,
    /// Balance in wei.
    pub balance: U256,
    /// Root of the account's storage trie.
    pub storage_root: B256,
    /// keccak256 of the account's code.
    pub code_hash: B256,
}

impl Account {
    /// Decodes the RLP list `[nonce, balance, storageRoot, codeHash]`.
    pub fn decode_rlp(bytes: &[u8]) -> Result<Self, Error> {
        let bad = |_| Error::MalformedTrieNode {
            depth: 0,
            reason: "leaf value is not an account",
        };
        let items = rlp::decode_list(bytes).map_err(bad)?;
        let [nonce, balance, storage_root, code_hash] = items.as_slice() else {
            return Err(bad(crate::RlpError::WrongLength {
                expected: 4,
                found: items.len(),
            }));
        };
        Ok(Account {
            nonce: nonce.u64().map_err(bad)?,
            balance: U256::from_be_slice(balance.scalar_bytes(32).map_err(bad)?)
                .unwrap_or_default(),
            storage_root: B256(storage_root.fixed::<32>().map_err(bad)?),
            code_hash: B256(code_hash.fixed::<32>().map_err(bad)?),
        })
    }
}

/// How a node refers to its child: by hash, or by embedding a short node.
enum NodeRef<'a> {
    Hash(B256),
    Inline(&'a [u8]),
}

fn malformed(depth: usize, reason: &'static str) -> Error {
    Error::MalformedTrieNode { depth, reason }
}

fn child_ref<'a>(item: &Item<'a>, depth: usize) -> Result<Option<NodeRef<'a>>, Error> {
    match *item {
        Item::Bytes([]) => Ok(None),
        Item::Bytes(b) => {
            let h: [u8; 32] = b
                .try_into()
                .map_err(|_| malformed(depth, "child reference is neither empty nor 32 bytes"))?;
            Ok(Some(NodeRef::Hash(B256(h))))
        }
        Item::List { raw, .. } => {
            if raw.len() >= 32 {
                return Err(malformed(
                    depth,
                    "embedded child node is 32 bytes or longer",
                ));
            }
            Ok(Some(NodeRef::Inline(raw)))
        }
    }
}

/// Decodes a hex-prefix encoded path: (is_leaf, nibbles).
fn hex_prefix(encoded: &[u8], depth: usize) -> Result<(bool, Vec<u8>), Error> {
    let first = *encoded.first().ok_or(malformed(depth, "empty path"))?;
    let flag = first >> 4;
    if flag > 3 {
        return Err(malformed(depth, "invalid hex-prefix flag"));
    }
    let is_leaf = flag >= 2;
    let odd = flag & 1 == 1;
    let mut nibbles = Vec::with_capacity(encoded.len() * 2);
    if odd {
        nibbles.push(first & 0x0f);
    } else if first & 0x0f != 0 {
        return Err(malformed(
            depth,
            "non-zero padding nibble in hex-prefix path",
        ));
    }
    for b in &encoded[1..] {
        nibbles.push(b >> 4);
        nibbles.push(b & 0x0f);
    }
    Ok((is_leaf, nibbles))
}

/// Verifies a Merkle-Patricia proof of `key` (the raw trie key; for the secure
/// state and storage tries that is already keccak256 of the address or slot)
/// against `root`, and returns the value stored there (`None` when the proof
/// proves that the key is absent).
pub fn verify_proof<N: AsRef<[u8]>>(
    root: &B256,
    key: &[u8],
    proof: &[N],
) -> Result<Option<Vec<u8>>, Error> {
    let path: Vec<u8> = key.iter().flat_map(|b| [b >> 4, b & 0x0f]).collect();
    let mut path = &path[..];
    let mut nodes = proof.iter();
    if *root == EMPTY_TRIE_ROOT && proof.is_empty() {
        return Ok(None);
    }
    let mut next = NodeRef::Hash(*root);
    let mut depth = 0usize;
    let result = loop {
        let node: &[u8] = match next {
            NodeRef::Hash(h) => {
                let n = nodes.next().ok_or(Error::ProofTooShort)?.as_ref();
                if keccak256(n) != h {
                    return Err(Error::ProofNodeHashMismatch { depth });
                }
                n
            }
            NodeRef::Inline(raw) => raw,
        };
        let item = rlp::decode_exact(node).map_err(|_| malformed(depth, "invalid RLP"))?;
        let mut slots = [Item::Bytes(&[]); 17];
        let items = match item {
            // Only the empty trie's root is an empty string.
            Item::Bytes([]) if depth == 0 => break None,
            Item::Bytes(_) => return Err(malformed(depth, "node is not a list")),
            Item::List { payload, .. } => {
                let n = rlp::list_items_into(payload, &mut slots)
                    .map_err(|_| malformed(depth, "node has neither 2 nor 17 items"))?;
                &slots[..n]
            }
        };
        match items {
            [children @ .., value] if children.len() == 16 => {
                let Some((&nibble, rest)) = path.split_first() else {
                    let v = value
                        .bytes()
                        .map_err(|_| malformed(depth, "branch value is a list"))?;
                    break (!v.is_empty()).then(|| v.to_vec());
                };
                match child_ref(&children[usize::from(nibble)], depth)? {
                    None => break None,
                    Some(r) => {
                        next = r;
                        path = rest;
                    }
                }
            }
            [encoded_path, value] => {
                let encoded_path = encoded_path
                    .bytes()
                    .map_err(|_| malformed(depth, "node path is a list"))?;
                let (is_leaf, nibbles) = hex_prefix(encoded_path, depth)?;
                if is_leaf {
                    let v = value
                        .bytes()
                        .map_err(|_| malformed(depth, "leaf value is a list"))?;
                    if v.is_empty() {
                        return Err(malformed(depth, "leaf with an empty value"));
                    }
                    break (path == nibbles.as_slice()).then(|| v.to_vec());
                }
                if nibbles.is_empty() {
                    return Err(malformed(depth, "extension with an empty path"));
                }
                let Some(rest) = path.strip_prefix(nibbles.as_slice()) else {
                    break None;
                };
                match child_ref(value, depth)? {
                    Some(r) => {
                        next = r;
                        path = rest;
                    }
                    None => return Err(malformed(depth, "extension without a child")),
                }
            }
            _ => return Err(malformed(depth, "node has neither 2 nor 17 items")),
        }
        depth += 1;
    };
    let unused = nodes.count();
    if unused != 0 {
        return Err(Error::UnusedProofNodes(unused));
    }
    Ok(result)
}

/// Verifies an account proof against a state root. `None` means the proof shows
/// that no account exists at `address`.
pub fn verify_account_proof<N: AsRef<[u8]>>(
    state_root: &B256,
    address: &Address,
    proof: &[N],
) -> Result<Option<Account>, Error> {
    verify_proof(state_root, &keccak256(&address.0).0, proof)?
        .map(|v| Account::decode_rlp(&v))
        .transpose()
}

/// Verifies a storage proof against an account's storage root and returns the
/// slot's value; an absent slot reads as zero (`U256::ZERO`), as the EVM reads it.
pub fn verify_storage_proof<N: AsRef<[u8]>>(
    storage_root: &B256,
    slot: &B256,
    proof: &[N],
) -> Result<U256, Error> {
    let Some(raw) = verify_proof(storage_root, &keccak256(&slot.0).0, proof)? else {
        return Ok(U256::ZERO);
    };
    let bad = |_| malformed(0, "storage value is not an RLP scalar");
    let item = rlp::decode_exact(&raw).map_err(bad)?;
    let bytes = item.scalar_bytes(32).map_err(bad)?;
    if bytes.is_empty() {
        // Zero values are deleted from the trie, never stored.
        return Err(malformed(0, "storage value zero is stored"));
    }
    U256::from_be_slice(bytes).ok_or(malformed(0, "storage value exceeds 32 bytes"))
}

/// One storage entry of an `eth_getProof` response.
#[derive(Debug, Clone, Deserialize)]
pub struct RpcStorageProof {
    /// The slot, as a 32-byte hex string (some nodes send it shorter).
    pub key: String,
    /// The value the node claims (a hex quantity).
    pub value: String,
    /// Trie nodes from the storage root to the slot, hex.
    pub proof: Vec<String>,
}

/// An `eth_getProof` response, as the node sent it.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RpcAccountProof {
    /// The account.
    pub address: String,
    /// Trie nodes from the state root to the account, hex.
    pub account_proof: Vec<String>,
    /// Claimed balance.
    pub balance: String,
    /// Claimed code hash.
    pub code_hash: String,
    /// Claimed nonce.
    pub nonce: String,
    /// Claimed storage root.
    pub storage_hash: String,
    /// Storage proofs for the requested slots.
    pub storage_proof: Vec<RpcStorageProof>,
}

/// A storage slot and its proven value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StorageSlot {
    /// The slot.
    pub slot: B256,
    /// Its value (zero when absent).
    pub value: U256,
}

/// An `eth_getProof` response decoded to bytes, ready to verify.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountProof {
    /// The account.
    pub address: Address,
    /// Account proof nodes.
    pub account_proof: Vec<Vec<u8>>,
    /// The account the node claims (nonce, balance, storage root, code hash).
    pub claimed: Account,
    /// (slot, claimed value, proof nodes) for each requested slot.
    pub storage: Vec<(B256, U256, Vec<Vec<u8>>)>,
}

fn hex_field(s: &str, name: &'static str) -> Result<Vec<u8>, Error> {
    let s = s.strip_prefix("0x").ok_or(Error::InvalidJsonField(name))?;
    if s.len() % 2 == 1 {
        hex::decode(format!("0{s}"))
    } else {
        hex::decode(s)
    }
    .map_err(|_| Error::InvalidJsonField(name))
}

fn quantity(s: &str, name: &'static str) -> Result<U256, Error> {
    let b = hex_field(s, name)?;
    let skip = b.iter().take_while(|x| **x == 0).count();
    U256::from_be_slice(&b[skip..]).ok_or(Error::InvalidJsonField(name))
}

impl TryFrom<&RpcAccountProof> for AccountProof {
    type Error = Error;

    fn try_from(r: &RpcAccountProof) -> Result<Self, Error> {
        let address = Address::from_hex(&r.address).ok_or(Error::InvalidJsonField("address"))?;
        let nodes = |v: &[String], n| -> Result<Vec<Vec<u8>>, Error> {
            v.iter().map(|s| hex_field(s, n)).collect()
        };
        let nonce = quantity(&r.nonce, "nonce")?
            .to_u64()
            .ok_or(Error::InvalidJsonField("nonce"))?;
        let claimed = Account {
            nonce,
            balance: quantity(&r.balance, "balance")?,
            storage_root: B256::from_hex(&r.storage_hash)
                .ok_or(Error::InvalidJsonField("storageHash"))?,
            code_hash: B256::from_hex(&r.code_hash).ok_or(Error::InvalidJsonField("codeHash"))?,
        };
        let storage = r
            .storage_proof
            .iter()
            .map(|s| {
                let slot = quantity(&s.key, "storageProof.key")?;
                Ok((
                    B256(slot.0),
                    quantity(&s.value, "storageProof.value")?,
                    nodes(&s.proof, "storageProof.proof")?,
                ))
            })
            .collect::<Result<_, Error>>()?;
        Ok(AccountProof {
            address,
            account_proof: nodes(&r.account_proof, "accountProof")?,
            claimed,
            storage,
        })
    }
}

impl AccountProof {
    /// Parses an `eth_getProof` JSON response.
    pub fn from_rpc_json(json: &str) -> Result<Self, Error> {
        let r: RpcAccountProof =
            serde_json::from_str(json).map_err(|_| Error::InvalidJsonField("<document>"))?;
        AccountProof::try_from(&r)
    }

    /// Verifies the account proof against `state_root` and every storage proof
    /// against the proven storage root; each proven value must equal what the
    /// node claimed. Returns the proven account and slots.
    ///
    /// An account proven absent is refused unless the node claimed the empty
    /// account (nonce 0, balance 0, empty storage, empty code), as geth reports
    /// absent accounts.
    pub fn verify(&self, state_root: &B256) -> Result<ProvenAccount, Error> {
        let account = verify_account_proof(state_root, &self.address, &self.account_proof)?
            .unwrap_or(Account {
                nonce: 0,
                balance: U256::ZERO,
                storage_root: EMPTY_TRIE_ROOT,
                code_hash: EMPTY_CODE_HASH,
            });
        let c = &self.claimed;
        for (ok, name) in [
            (account.nonce == c.nonce, "nonce"),
            (account.balance == c.balance, "balance"),
            (account.storage_root == c.storage_root, "storageHash"),
            (account.code_hash == c.code_hash, "codeHash"),
        ] {
            if !ok {
                return Err(Error::ClaimedAccountMismatch(name));
            }
        }
        let slots = self
            .storage
            .iter()
            .map(|(slot, claimed, proof)| {
                let value = verify_storage_proof(&account.storage_root, slot, proof)?;
                if value != *claimed {
                    return Err(Error::ClaimedStorageMismatch { slot: *slot });
                }
                Ok(StorageSlot { slot: *slot, value })
            })
            .collect::<Result<_, Error>>()?;
        Ok(ProvenAccount {
            address: self.address,
            state_root: *state_root,
            account,
            slots,
        })
    }
}

/// An account and storage slots proven against a state root. Only
/// [`AccountProof::verify`] constructs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProvenAccount {
    address: Address,
    state_root: B256,
    account: Account,
    slots: Vec<StorageSlot>,
}

impl ProvenAccount {
    /// The account's address.
    pub fn address(&self) -> Address {
        self.address
    }
    /// The state root the proof was verified against.
    pub fn state_root(&self) -> B256 {
        self.state_root
    }
    /// The proven account.
    pub fn account(&self) -> &Account {
        &self.account
    }
    /// The proven slots, in request order.
    pub fn slots(&self) -> &[StorageSlot] {
        &self.slots
    }
    /// The proven value of `slot`, if it was part of the proof.
    pub fn slot(&self, slot: &B256) -> Result<U256, Error> {
        self.slots
            .iter()
            .find(|s| s.slot == *slot)
            .map(|s| s.value)
            .ok_or(Error::StorageSlotNotInResponse(*slot))
    }
}
