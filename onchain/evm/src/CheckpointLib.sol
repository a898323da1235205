// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.37;

/// @title Checkpoints and attestations of protocol v1 (docs/protocol.md).
library CheckpointLib {
    /// @notice keccak256("isthmus:checkpoint:v2"): separates checkpoint signatures
    /// from signatures over anything else (v1 did not bind the network).
    bytes32 internal constant DOMAIN_TAG_HASH = keccak256("isthmus:checkpoint:v2");

    /// @dev Half the secp256k1 order: signatures with a larger `s` are malleated copies.
    uint256 internal constant HALF_ORDER = 0x7FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF5D576E7357A4501DDFE92F46681B20A0;

    struct Checkpoint {
        uint32 origin;
        bytes32 outbox;
        bytes32 root;
        uint32 count;
        uint64 blockNumber;
        bytes32 blockHash;
    }

    /// @notice The digest members of `network` sign: a checkpoint signed for one
    /// network is worthless on every other.
    function digest(Checkpoint calldata cp, bytes32 network) internal pure returns (bytes32) {
        return keccak256(
            abi.encodePacked(
                DOMAIN_TAG_HASH, network, cp.origin, cp.outbox, cp.root, cp.count, cp.blockNumber, cp.blockHash
            )
        );
    }

    /// @notice The signer of a strict 65-byte `r ‖ s ‖ v` signature, or address(0)
    /// when the signature is malformed, malleable or unrecoverable.
    function recover(bytes32 hash, bytes calldata signature) internal pure returns (address) {
        if (signature.length != 65) return address(0);
        bytes32 r = bytes32(signature[0:32]);
        bytes32 s = bytes32(signature[32:64]);
        uint8 v = uint8(signature[64]);
        if (v != 27 && v != 28) return address(0);
        if (uint256(s) > HALF_ORDER || uint256(s) == 0 || uint256(r) == 0) return address(0);
        return ecrecover(hash, v, r, s);
    }
}
