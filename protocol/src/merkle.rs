//! The outbox commitment: an incremental Merkle tree of message ids.
//!
//! This is the algorithm of the Ethereum deposit contract, with keccak256 in place of
//! sha256 and without mixing the count into the root (the count is committed
//! separately, in ledger storage next to the root): depth [`TREE_DEPTH`], leaves
//! appended left to right, empty subtrees padded with the zero hashes
//! `Z[0] = 0x00..00`, `Z[i+1] = keccak256(Z[i] ‖ Z[i])`. An outbox keeps only
//! [`IncrementalTree`] (33 words of storage); a relayer that holds the leaves builds a
//! [`MerkleTree`] to produce a [`Branch`] for any of them.

use alloc::vec::Vec;

use crate::keccak256_concat;

/// Depth of every outbox tree: at most 2^32 - 1 messages per outbox.
pub const TREE_DEPTH: usize = 32;

/// Most leaves a tree of [`TREE_DEPTH`] holds (the deposit contract's bound).
pub const MAX_LEAVES: u64 = (1u64 << TREE_DEPTH) - 1;

/// Why a tree operation is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TreeError {
    /// The tree already holds [`MAX_LEAVES`] leaves.
    #[error("the Merkle tree is full ({MAX_LEAVES} leaves)")]
    Full,
    /// A branch was asked for a leaf the tree does not hold.
    #[error("leaf index {index} is outside a tree of {count} leaves")]
    IndexOutOfRange {
        /// The index asked for.
        index: u64,
        /// Leaves in the tree.
        count: u64,
    },
    /// A branch was asked for one of the zero leaves below a tree's first known leaf.
    #[error("leaf index {index} is below the tree's first leaf {first}")]
    BelowFirst {
        /// The index asked for.
        index: u64,
        /// The first known leaf.
        first: u64,
    },
}

/// Hashes two children into their parent.
pub fn hash_pair(left: &[u8; 32], right: &[u8; 32]) -> [u8; 32] {
    keccak256_concat(&[left, right])
}

/// The zero hashes `Z[0..TREE_DEPTH]`: the root of an empty subtree of each height.
pub fn zero_hashes() -> [[u8; 32]; TREE_DEPTH] {
    let mut zeros = [[0u8; 32]; TREE_DEPTH];
    for h in 1..TREE_DEPTH {
        zeros[h] = hash_pair(&zeros[h - 1], &zeros[h - 1]);
    }
    zeros
}

/// The tree an outbox stores: the left frontier and the leaf count.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IncrementalTree {
    branch: [[u8; 32]; TREE_DEPTH],
    count: u64,
    zeros: [[u8; 32]; TREE_DEPTH],
}

impl Default for IncrementalTree {
    fn default() -> Self {
        Self::new()
    }
}

impl IncrementalTree {
    /// An empty tree.
    pub fn new() -> Self {
        Self {
            branch: [[0u8; 32]; TREE_DEPTH],
            count: 0,
            zeros: zero_hashes(),
        }
    }

    /// A tree whose first `first` leaves are zero, as an outbox that continues the
    /// nonces of the outbox it replaces starts (docs/protocol.md, "Replacing an
    /// Outbox"): every full subtree left of index `first` is the zero subtree of its
    /// height, so its frontier is the zero hashes at the set bits of `first`. Its root
    /// is the empty tree's; the next leaf inserted gets index `first`.
    pub fn starting_at(first: u64) -> Result<Self, TreeError> {
        if first > MAX_LEAVES {
            return Err(TreeError::Full);
        }
        let zeros = zero_hashes();
        let mut branch = [[0u8; 32]; TREE_DEPTH];
        for (h, node) in branch.iter_mut().enumerate() {
            if (first >> h) & 1 == 1 {
                *node = zeros[h];
            }
        }
        Ok(Self {
            branch,
            count: first,
            zeros,
        })
    }

    /// Number of leaves inserted so far.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// Appends a leaf (a message id); its index is the count before the call.
    pub fn insert(&mut self, leaf: [u8; 32]) -> Result<u64, TreeError> {
        if self.count >= MAX_LEAVES {
            return Err(TreeError::Full);
        }
        let index = self.count;
        self.count += 1;
        let mut size = self.count;
        let mut node = leaf;
        for h in 0..TREE_DEPTH {
            if size & 1 == 1 {
                self.branch[h] = node;
                return Ok(index);
            }
            node = hash_pair(&self.branch[h], &node);
            size >>= 1;
        }
        // Unreachable: `count < 2^32` guarantees a set bit below TREE_DEPTH.
        Err(TreeError::Full)
    }

    /// The current root.
    pub fn root(&self) -> [u8; 32] {
        let mut node = [0u8; 32];
        for h in 0..TREE_DEPTH {
            node = if (self.count >> h) & 1 == 1 {
                hash_pair(&self.branch[h], &node)
            } else {
                hash_pair(&node, &self.zeros[h])
            };
        }
        node
    }
}

/// A Merkle branch: the sibling of every node on the path from a leaf to the root.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Branch {
    /// Index of the leaf in the tree.
    pub index: u64,
    /// Siblings from the leaf's level (0) up to just below the root.
    pub siblings: [[u8; 32]; TREE_DEPTH],
}

impl Branch {
    /// The root this branch leads to from `leaf`.
    pub fn root_for(&self, leaf: &[u8; 32]) -> [u8; 32] {
        let mut node = *leaf;
        for (h, sibling) in self.siblings.iter().enumerate() {
            node = if (self.index >> h) & 1 == 1 {
                hash_pair(sibling, &node)
            } else {
                hash_pair(&node, sibling)
            };
        }
        node
    }

    /// Whether `leaf` sits at `self.index` under `root`.
    ///
    /// The index must also be below the committed `count`: otherwise a branch into the
    /// zero padding could "prove" a zero leaf that was never inserted.
    pub fn verify(&self, leaf: &[u8; 32], root: &[u8; 32], count: u64) -> bool {
        self.index < count && self.index < MAX_LEAVES && self.root_for(leaf) == *root
    }
}

/// A whole tree held in memory, for producing branches from the known leaves.
///
/// The known leaves may start at an index `first` (an outbox that continues the nonces
/// of the one it replaces, [`IncrementalTree::starting_at`]): the leaves below it are
/// zero, and so is every node whose subtree lies wholly below it, so only the nodes
/// from index `first >> h` at each height `h` are held.
#[derive(Clone, Debug)]
pub struct MerkleTree {
    /// `layers[h][i]` is the node at height `h` and index `(first >> h) + i`;
    /// `layers[0]` are the known leaves.
    layers: Vec<Vec<[u8; 32]>>,
    first: u64,
    zeros: [[u8; 32]; TREE_DEPTH],
}

impl MerkleTree {
    /// Builds the tree over `leaves` in O(n) hashes.
    pub fn from_leaves(leaves: Vec<[u8; 32]>) -> Result<Self, TreeError> {
        Self::from_leaves_at(0, leaves)
    }

    /// Builds the tree whose leaves from index `first` on are `leaves` and whose
    /// leaves below `first` are zero, in O(n) hashes however large `first` is.
    pub fn from_leaves_at(first: u64, leaves: Vec<[u8; 32]>) -> Result<Self, TreeError> {
        if !matches!(first.checked_add(leaves.len() as u64), Some(end) if end <= MAX_LEAVES) {
            return Err(TreeError::Full);
        }
        let zeros = zero_hashes();
        let mut layers = Vec::with_capacity(TREE_DEPTH + 1);
        layers.push(leaves);
        for h in 0..TREE_DEPTH {
            let below = &layers[h];
            let mut above = Vec::with_capacity(below.len().div_ceil(2) + 1);
            // A layer that starts at an odd index starts with a right child, whose
            // left sibling lies wholly below `first`: the zero subtree.
            let rest = if (first >> h) & 1 == 1 && !below.is_empty() {
                above.push(hash_pair(&zeros[h], &below[0]));
                &below[1..]
            } else {
                &below[..]
            };
            for pair in rest.chunks(2) {
                let right = pair.get(1).unwrap_or(&zeros[h]);
                above.push(hash_pair(&pair[0], right));
            }
            layers.push(above);
        }
        Ok(Self {
            layers,
            first,
            zeros,
        })
    }

    /// Number of leaves, the zero ones below the first known leaf included.
    pub fn count(&self) -> u64 {
        self.first + self.layers[0].len() as u64
    }

    /// Index of the first known leaf (0 unless the tree starts past zero leaves).
    pub fn first(&self) -> u64 {
        self.first
    }

    /// The root (equal to [`IncrementalTree::root`] after the same inserts).
    pub fn root(&self) -> [u8; 32] {
        self.layers[TREE_DEPTH].first().copied().unwrap_or_else(|| {
            // An empty tree's root is the zero hash one level above the top sibling.
            hash_pair(&self.zeros[TREE_DEPTH - 1], &self.zeros[TREE_DEPTH - 1])
        })
    }

    /// The branch of the known leaf at `index`.
    pub fn branch(&self, index: u64) -> Result<Branch, TreeError> {
        let count = self.count();
        if index >= count {
            return Err(TreeError::IndexOutOfRange { index, count });
        }
        if index < self.first {
            return Err(TreeError::BelowFirst {
                index,
                first: self.first,
            });
        }
        let mut siblings = [[0u8; 32]; TREE_DEPTH];
        for (h, sibling) in siblings.iter_mut().enumerate() {
            let position = (index >> h) ^ 1;
            *sibling = position
                .checked_sub(self.first >> h)
                .and_then(|p| usize::try_from(p).ok())
                .and_then(|p| self.layers[h].get(p))
                .copied()
                .unwrap_or(self.zeros[h]);
        }
        Ok(Branch { index, siblings })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leaf(i: u64) -> [u8; 32] {
        crate::keccak256(&i.to_be_bytes())
    }

    #[test]
    fn empty_roots_agree() {
        let full = MerkleTree::from_leaves(Vec::new()).expect("empty tree");
        assert_eq!(full.root(), IncrementalTree::new().root());
        let z = zero_hashes();
        assert_eq!(full.root(), hash_pair(&z[31], &z[31]));
    }

    #[test]
    fn incremental_matches_full_tree_for_small_sizes() {
        let mut inc = IncrementalTree::new();
        let mut leaves = Vec::new();
        for i in 0..40u64 {
            assert_eq!(inc.insert(leaf(i)), Ok(i));
            leaves.push(leaf(i));
            let full = MerkleTree::from_leaves(leaves.clone()).expect("tree");
            assert_eq!(inc.root(), full.root(), "after {} leaves", i + 1);
            for j in 0..=i {
                let b = full.branch(j).expect("branch");
                assert!(b.verify(&leaf(j), &full.root(), i + 1));
            }
        }
    }

    #[test]
    fn a_tree_past_zero_leaves_is_the_tree_of_those_zeros_and_its_leaves() {
        // Starts below, on and across subtree boundaries, odd and even.
        for first in [1u64, 2, 3, 5, 8, 13, 64, 255, 256, 1000] {
            let mut inc = IncrementalTree::starting_at(first).expect("start");
            assert_eq!(inc.count(), first);
            assert_eq!(inc.root(), IncrementalTree::new().root(), "zeros only");
            let mut padded = alloc::vec![[0u8; 32]; first as usize];
            let mut known = Vec::new();
            for i in 0..12u64 {
                let index = inc.insert(leaf(i)).expect("insert");
                assert_eq!(index, first + i);
                padded.push(leaf(i));
                known.push(leaf(i));
                let whole = MerkleTree::from_leaves(padded.clone()).expect("tree");
                let at = MerkleTree::from_leaves_at(first, known.clone()).expect("tree");
                assert_eq!(at.count(), first + i + 1);
                assert_eq!(at.root(), whole.root(), "first {first}, {} leaves", i + 1);
                assert_eq!(inc.root(), whole.root());
                for j in first..=index {
                    let b = at.branch(j).expect("branch");
                    assert_eq!(b, whole.branch(j).expect("branch"), "leaf {j}");
                    assert!(b.verify(&padded[j as usize], &at.root(), at.count()));
                }
            }
            let at = MerkleTree::from_leaves_at(first, known).expect("tree");
            assert_eq!(
                at.branch(first - 1),
                Err(TreeError::BelowFirst {
                    index: first - 1,
                    first
                })
            );
        }
        let empty = MerkleTree::from_leaves_at(77, Vec::new()).expect("no known leaves");
        assert_eq!(empty.count(), 77);
        assert_eq!(empty.root(), IncrementalTree::new().root());
        assert_eq!(
            MerkleTree::from_leaves_at(MAX_LEAVES, alloc::vec![leaf(0)]).err(),
            Some(TreeError::Full)
        );
        assert_eq!(
            IncrementalTree::starting_at(MAX_LEAVES + 1),
            Err(TreeError::Full)
        );
        // The last possible leaf: only zeros to its left, and a full tree after it.
        let mut last = IncrementalTree::starting_at(MAX_LEAVES - 1).expect("start");
        assert_eq!(last.insert(leaf(0)), Ok(MAX_LEAVES - 1));
        assert_eq!(last.insert(leaf(1)), Err(TreeError::Full));
        let at = MerkleTree::from_leaves_at(MAX_LEAVES - 1, alloc::vec![leaf(0)]).expect("tree");
        assert_eq!(at.root(), last.root());
        assert!(at.branch(MAX_LEAVES - 1).expect("branch").verify(
            &leaf(0),
            &last.root(),
            MAX_LEAVES
        ));
    }

    #[test]
    fn branch_outside_the_tree_is_refused() {
        let full = MerkleTree::from_leaves(vec![leaf(0), leaf(1)]).expect("tree");
        assert_eq!(
            full.branch(2),
            Err(TreeError::IndexOutOfRange { index: 2, count: 2 })
        );
        // A branch into the padding proves the zero leaf under the root, but not below
        // the committed count.
        let mut padded = full.branch(1).expect("branch");
        padded.index = 2;
        padded.siblings[0] = [0u8; 32];
        padded.siblings[1] = hash_pair(&leaf(0), &leaf(1));
        let bigger = MerkleTree::from_leaves(vec![leaf(0), leaf(1), [0u8; 32]]).expect("tree");
        assert!(!padded.verify(&[0u8; 32], &full.root(), 2));
        assert_eq!(padded.root_for(&[0u8; 32]), full.root());
        // A zero leaf is indistinguishable from padding by the root alone: this is why
        // the count is committed beside the root and checked by `verify`.
        assert_eq!(bigger.root(), full.root());
    }
}
