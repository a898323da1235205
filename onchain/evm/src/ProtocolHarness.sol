// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.37;

import {CheckpointLib} from "./CheckpointLib.sol";
import {IsthmusMessage} from "./IsthmusMessage.sol";
import {MerkleLib} from "./MerkleLib.sol";

/// @title Exposes the protocol libraries for cross-implementation tests.
/// @notice Tests call these through `eth_call` to prove that the contracts produce the
/// bytes of protocol/vectors/v2.json. Not deployed on real ledgers.
contract ProtocolHarness {
    using MerkleLib for MerkleLib.Tree;

    MerkleLib.Tree internal tree;

    function encodeMessage(
        uint64 nonce,
        uint32 origin,
        bytes32 sender,
        uint32 destination,
        bytes32 recipient,
        uint64 deadline,
        bytes calldata body
    ) external pure returns (bytes memory encoded, bytes32 id) {
        encoded = IsthmusMessage.encode(nonce, origin, sender, destination, recipient, deadline, body);
        id = keccak256(encoded);
    }

    /// @notice Reverts unless `message` is one canonical v1 encoding.
    function validateMessage(bytes calldata message) external pure returns (bytes32) {
        IsthmusMessage.validate(message);
        return keccak256(message);
    }

    /// @notice Root after inserting `leaves` into a fresh tree (use with eth_call).
    function rootOf(bytes32[] calldata leaves) external returns (bytes32) {
        delete tree;
        for (uint256 i = 0; i < leaves.length; i++) {
            tree.insert(leaves[i]);
        }
        return tree.root();
    }

    function branchRoot(bytes32 leaf, bytes32[32] calldata siblings, uint256 index) external pure returns (bytes32) {
        return MerkleLib.branchRoot(leaf, siblings, index);
    }

    function checkpointDigest(CheckpointLib.Checkpoint calldata cp, bytes32 network)
        external
        pure
        returns (bytes32)
    {
        return CheckpointLib.digest(cp, network);
    }

    function recoverSigner(bytes32 digest, bytes calldata signature) external pure returns (address) {
        return CheckpointLib.recover(digest, signature);
    }
}
