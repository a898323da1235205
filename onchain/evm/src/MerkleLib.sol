// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.37;

/// @title The incremental Merkle tree of protocol v1 (docs/protocol.md).
/// @notice The deposit contract's algorithm with keccak256 and no count mixing.
library MerkleLib {
    uint256 internal constant DEPTH = 32;
    uint256 internal constant MAX_LEAVES = 2 ** DEPTH - 1;

    error TreeFull();

    struct Tree {
        bytes32[DEPTH] branch;
        uint256 count;
    }

    /// @notice Starts an empty tree past `first` zero leaves, so that the next leaf gets
    /// index `first`: the frontier holds the zero subtree of each height at the set
    /// bits of `first`. The root stays the empty tree's.
    function startAt(Tree storage tree, uint256 first) internal {
        if (first > MAX_LEAVES) revert TreeFull();
        tree.count = first;
        bytes32 zero = bytes32(0);
        for (uint256 h = 0; h < DEPTH; h++) {
            if ((first >> h) & 1 == 1) tree.branch[h] = zero;
            zero = hashPair(zero, zero);
        }
    }

    /// @notice Appends `leaf`; returns its index.
    function insert(Tree storage tree, bytes32 leaf) internal returns (uint256 index) {
        index = tree.count;
        if (index >= MAX_LEAVES) revert TreeFull();
        uint256 size = index + 1;
        tree.count = size;
        bytes32 node = leaf;
        for (uint256 h = 0; h < DEPTH; h++) {
            if (size & 1 == 1) {
                tree.branch[h] = node;
                return index;
            }
            node = hashPair(tree.branch[h], node);
            size >>= 1;
        }
        // Unreachable: index < 2^32 - 1 leaves a set bit below DEPTH.
        revert TreeFull();
    }

    /// @notice The root of the tree.
    function root(Tree storage tree) internal view returns (bytes32 node) {
        uint256 size = tree.count;
        bytes32 zero = bytes32(0);
        for (uint256 h = 0; h < DEPTH; h++) {
            if ((size >> h) & 1 == 1) {
                node = hashPair(tree.branch[h], node);
            } else {
                node = hashPair(node, zero);
            }
            zero = hashPair(zero, zero);
        }
    }

    /// @notice The root reached from `leaf` at `index` through `siblings`.
    function branchRoot(bytes32 leaf, bytes32[DEPTH] calldata siblings, uint256 index)
        internal
        pure
        returns (bytes32 node)
    {
        node = leaf;
        for (uint256 h = 0; h < DEPTH; h++) {
            if ((index >> h) & 1 == 1) {
                node = hashPair(siblings[h], node);
            } else {
                node = hashPair(node, siblings[h]);
            }
        }
    }

    /// @dev keccak256(a ‖ b) in scratch space, without allocating.
    function hashPair(bytes32 a, bytes32 b) internal pure returns (bytes32 value) {
        assembly ("memory-safe") {
            mstore(0x00, a)
            mstore(0x20, b)
            value := keccak256(0x00, 0x40)
        }
    }
}
