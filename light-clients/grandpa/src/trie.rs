//! Substrate state-trie read proofs (`state_getReadProof`), layouts V0 and V1.
//!
//! A proof is an unordered set of encoded trie nodes (and, for V1, values stored by
//! hash). Each item is addressed by its blake2-256 hash, so a lookup that starts at a
//! trusted state root can only reach items that hash-link to it: extra items are
//! harmless, a missing one is an error, never a wrong answer.
//!
//! Node codec (`sp-trie`'s `NodeCodec`, base 16 with partial keys, no extension
//! nodes). The first byte is a header:
//!
//! | bits        | node                                   | nibble-count bits |
//! |-------------|----------------------------------------|-------------------|
//! | `0000_0000` | empty trie                             | -                 |
//! | `01xx_xxxx` | leaf, inline value                     | 6                 |
//! | `10xx_xxxx` | branch without value                   | 6                 |
//! | `11xx_xxxx` | branch with inline value               | 6                 |
//! | `001x_xxxx` | leaf, hashed value (V1)                | 5                 |
//! | `0001_xxxx` | branch, hashed value (V1)              | 4                 |
//!
//! A nibble count equal to the field's maximum continues in following bytes (each
//! 255 adds 255, the first byte below 255 ends it). Then the partial key (packed
//! nibbles, an odd count left-padded with a zero nibble); for branches a 16-bit
//! little-endian child bitmap (bit `i` = child `i`, never zero); the value (compact
//! length + bytes, or a 32-byte hash); then each child as compact length + bytes: 32
//! bytes is a hash reference, fewer an inline node.

use alloc::collections::BTreeMap;
use alloc::vec::Vec;
use parity_scale_codec::{Compact, Decode};

use crate::header::decode_exact;
use crate::{blake2_256, BlockNumber, Error, H256};

/// Largest nibble count a header may declare (`sp-trie`'s `NIBBLE_SIZE_BOUND`).
const NIBBLE_SIZE_BOUND: usize = u16::MAX as usize;

/// The items of a read proof, addressed by hash.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReadProof {
    items: BTreeMap<H256, Vec<u8>>,
}

impl ReadProof {
    /// Builds a proof from its items (the `proof` array of `state_getReadProof`).
    pub fn new<I: IntoIterator<Item = Vec<u8>>>(items: I) -> Self {
        Self {
            items: items
                .into_iter()
                .map(|item| (blake2_256(&item), item))
                .collect(),
        }
    }

    /// Decodes a SCALE `Vec<Vec<u8>>` of proof items (a `StorageProof` as encoded on
    /// the wire).
    pub fn decode_exact(bytes: &[u8]) -> Result<Self, Error> {
        Ok(Self::new(decode_exact::<Vec<Vec<u8>>>(
            bytes,
            "read proof",
        )?))
    }

    /// Number of distinct items.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// Whether the proof has no item.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    fn item(&self, hash: &H256) -> Result<&[u8], Error> {
        self.items
            .get(hash)
            .map(Vec::as_slice)
            .ok_or(Error::MissingTrieNode { hash: *hash })
    }

    /// The value of `key` in the trie of root `root`: `Some(value)`, or `None` when the
    /// proof shows the key is absent. Errors when a needed item is missing or a node
    /// is malformed.
    pub fn read(&self, root: &H256, key: &[u8]) -> Result<Option<&[u8]>, Error> {
        let key = Nibbles {
            bytes: key,
            start: 0,
            len: key.len() * 2,
        };
        let mut at = 0usize;
        let mut encoded = self.item(root)?;
        loop {
            let node = Node::decode(encoded)?;
            let (partial, value, children) = match node {
                Node::Empty => return Ok(None),
                Node::Leaf { partial, value } => (partial, Some(value), None),
                Node::Branch {
                    partial,
                    value,
                    children,
                } => (partial, value, Some(children)),
            };
            if !key.has_prefix_at(at, &partial) {
                return Ok(None);
            }
            at += partial.len;
            if at == key.len {
                return match value {
                    None => Ok(None),
                    Some(Value::Inline(bytes)) => Ok(Some(bytes)),
                    Some(Value::Hashed(hash)) => self.item(&hash).map(Some),
                };
            }
            let Some(children) = children else {
                return Ok(None);
            };
            let child = children[usize::from(key.at(at))];
            at += 1;
            encoded = match child {
                None => return Ok(None),
                Some(Child::Hash(hash)) => self.item(&hash)?,
                Some(Child::Inline(bytes)) => bytes,
            };
        }
    }
}

/// A storage value (or its absence) proved at a finalized block. Only this crate
/// constructs it, from a read proof checked against a finalized state root.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifiedStorage {
    block_hash: H256,
    block_number: BlockNumber,
    key: Vec<u8>,
    value: Option<Vec<u8>>,
}

impl VerifiedStorage {
    pub(crate) fn new(
        block_hash: H256,
        block_number: BlockNumber,
        key: Vec<u8>,
        value: Option<Vec<u8>>,
    ) -> Self {
        Self {
            block_hash,
            block_number,
            key,
            value,
        }
    }

    /// The block whose state was read.
    pub fn block_hash(&self) -> H256 {
        self.block_hash
    }

    /// Its number.
    pub fn block_number(&self) -> BlockNumber {
        self.block_number
    }

    /// The storage key.
    pub fn key(&self) -> &[u8] {
        &self.key
    }

    /// The value, or `None` when the key is proved absent.
    pub fn value(&self) -> Option<&[u8]> {
        self.value.as_deref()
    }
}

/// A run of nibbles inside packed bytes (high nibble first).
#[derive(Clone, Copy, Debug)]
struct Nibbles<'a> {
    bytes: &'a [u8],
    /// Nibble offset of the first nibble in `bytes`.
    start: usize,
    len: usize,
}

impl Nibbles<'_> {
    fn at(&self, i: usize) -> u8 {
        let n = self.start + i;
        let byte = self.bytes[n / 2];
        if n & 1 == 0 {
            byte >> 4
        } else {
            byte & 0x0f
        }
    }

    /// Whether `self[at..]` starts with `prefix`.
    fn has_prefix_at(&self, at: usize, prefix: &Nibbles<'_>) -> bool {
        at + prefix.len <= self.len && (0..prefix.len).all(|i| self.at(at + i) == prefix.at(i))
    }
}

#[derive(Clone, Copy, Debug)]
enum Value<'a> {
    Inline(&'a [u8]),
    Hashed(H256),
}

#[derive(Clone, Copy, Debug)]
enum Child<'a> {
    Hash(H256),
    Inline(&'a [u8]),
}

#[expect(
    clippy::large_enum_variant,
    reason = "a transient value decoded on the stack, one at a time"
)]
enum Node<'a> {
    Empty,
    Leaf {
        partial: Nibbles<'a>,
        value: Value<'a>,
    },
    Branch {
        partial: Nibbles<'a>,
        value: Option<Value<'a>>,
        children: [Option<Child<'a>>; 16],
    },
}

fn invalid(reason: &'static str) -> Error {
    Error::InvalidTrieNode { reason }
}

struct Reader<'a> {
    data: &'a [u8],
}

impl<'a> Reader<'a> {
    fn byte(&mut self) -> Result<u8, Error> {
        let (&first, rest) = self.data.split_first().ok_or(invalid("truncated node"))?;
        self.data = rest;
        Ok(first)
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], Error> {
        if self.data.len() < n {
            return Err(invalid("truncated node"));
        }
        let (taken, rest) = self.data.split_at(n);
        self.data = rest;
        Ok(taken)
    }

    fn hash(&mut self) -> Result<H256, Error> {
        let bytes = self.take(32)?;
        H256::try_from(bytes).map_err(|_| invalid("truncated node"))
    }

    fn compact_len(&mut self) -> Result<usize, Error> {
        let Compact(len) =
            Compact::<u32>::decode(&mut self.data).map_err(|_| invalid("bad compact length"))?;
        usize::try_from(len).map_err(|_| invalid("length overflows usize"))
    }

    /// Nibble count: `first & mask`, continued while the running byte is 255.
    fn nibble_count(&mut self, first: u8, prefix_bits: u32) -> Result<usize, Error> {
        let max = usize::from(0xffu8 >> prefix_bits);
        let mut count = usize::from(first) & max;
        if count < max {
            return Ok(count);
        }
        loop {
            let next = usize::from(self.byte()?);
            count += next;
            if count > NIBBLE_SIZE_BOUND {
                return Err(invalid("nibble count above bound"));
            }
            if next < 255 {
                return Ok(count);
            }
        }
    }

    fn partial(&mut self, count: usize) -> Result<Nibbles<'a>, Error> {
        let bytes = self.take(count.div_ceil(2))?;
        let start = count % 2;
        if start == 1 && bytes.first().is_some_and(|b| b & 0xf0 != 0) {
            return Err(invalid("non-zero partial key padding"));
        }
        Ok(Nibbles {
            bytes,
            start,
            len: count,
        })
    }

    fn value(&mut self, hashed: bool) -> Result<Value<'a>, Error> {
        if hashed {
            return self.hash().map(Value::Hashed);
        }
        let len = self.compact_len()?;
        self.take(len).map(Value::Inline)
    }
}

impl<'a> Node<'a> {
    fn decode(data: &'a [u8]) -> Result<Self, Error> {
        let mut r = Reader { data };
        let first = r.byte()?;
        // (is_branch, value kind: None = no value, Some(hashed)), prefix bits.
        let (branch, value, prefix_bits) = match first >> 6 {
            0b01 => (false, Some(false), 2),
            0b10 => (true, None, 2),
            0b11 => (true, Some(false), 2),
            _ if first == 0 => {
                return if r.data.is_empty() {
                    Ok(Node::Empty)
                } else {
                    Err(invalid("data after empty node"))
                };
            }
            _ if first >> 5 == 0b001 => (false, Some(true), 3),
            _ if first >> 4 == 0b0001 => (true, Some(true), 4),
            _ => return Err(invalid("reserved node header")),
        };
        let count = r.nibble_count(first, prefix_bits)?;
        let partial = r.partial(count)?;
        let node = if branch {
            let bitmap = u16::from_le_bytes([r.byte()?, r.byte()?]);
            if bitmap == 0 {
                return Err(invalid("branch without children"));
            }
            let value = value.map(|hashed| r.value(hashed)).transpose()?;
            let mut children = [None; 16];
            for (i, child) in children.iter_mut().enumerate() {
                if bitmap & (1 << i) == 0 {
                    continue;
                }
                let len = r.compact_len()?;
                *child = Some(if len == 32 {
                    Child::Hash(r.hash()?)
                } else if len < 32 {
                    Child::Inline(r.take(len)?)
                } else {
                    return Err(invalid("child reference longer than a hash"));
                });
            }
            Node::Branch {
                partial,
                value,
                children,
            }
        } else {
            let hashed = value.is_some_and(|hashed| hashed);
            Node::Leaf {
                partial,
                value: r.value(hashed)?,
            }
        };
        if !r.data.is_empty() {
            return Err(invalid("trailing bytes in node"));
        }
        Ok(node)
    }
}
