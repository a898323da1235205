// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.37;

import {IsthmusMessage} from "./IsthmusMessage.sol";
import {MerkleLib} from "./MerkleLib.sol";

/// @title Isthmus outbox: assigns nonces and commits message ids to a Merkle tree.
/// @notice Storage layout is part of the protocol: relayers prove `root` (slot 0)
/// and the tree's `count` (slot 33) with `eth_getProof` at a final block. Do not
/// reorder the state variables.
///
/// It also keeps, per message id, who sent it, where and at which nonce (`sent`): the
/// Inbox of this ledger accepts a receipt only for a message this Outbox sent to the
/// ledger the receipt comes from (docs/protocol.md, "Receipts").
contract Outbox {
    using MerkleLib for MerkleLib.Tree;

    /// @notice Storage slot of the current Merkle root.
    uint256 public constant ROOT_SLOT = 0;
    /// @notice Storage slot of the message count (= next nonce).
    uint256 public constant COUNT_SLOT = 33;

    /// @notice Current root of the tree (slot 0).
    bytes32 public root;
    /// @dev Slots 1..32: branch; slot 33: count.
    MerkleLib.Tree internal tree;

    /// @notice Ledger id of this ledger.
    uint32 public immutable localDomain;

    /// @notice The nonce of this Outbox's first message: 0 for a new ledger; for an
    /// Outbox that replaces another, the old one's count, so that nonces, and with
    /// them message ids, never repeat on a ledger (docs/protocol.md, "Replacing an
    /// Outbox"). The tree holds zero leaves below it.
    uint64 public immutable firstNonce;

    /// @notice id => sender (bits 0..159), destination (160..191) and nonce
    /// (192..255) of each message sent; 0 for an id never sent. See `sentBy`.
    mapping(bytes32 => uint256) public sent;

    /// @notice Emitted once per message, carrying its whole canonical encoding.
    event Dispatch(bytes32 indexed id, uint32 indexed destination, uint64 nonce, bytes message);

    error DestinationIsLocal();
    /// @notice A deadline at or before this block's time: no later block could deliver
    /// the message.
    error DeadlinePassed(uint64 deadline, uint256 blockTime);

    /// @param firstNonce_ 0 for a new ledger; the count of the Outbox this one
    /// replaces otherwise.
    constructor(uint32 localDomain_, uint64 firstNonce_) {
        localDomain = localDomain_;
        firstNonce = firstNonce_;
        if (firstNonce_ != 0) tree.startAt(firstNonce_);
        root = tree.root();
    }

    /// @notice Sends `body` to `recipient` on ledger `destination`.
    /// @param deadline unix seconds after which the message must not be delivered
    /// (0 = none); otherwise it must be after this block's time
    /// @return id the message id
    function dispatch(uint32 destination, bytes32 recipient, uint64 deadline, bytes calldata body)
        external
        returns (bytes32 id)
    {
        if (destination == localDomain) revert DestinationIsLocal();
        // Delivery happens in a later block, whose time is at least this one's.
        if (deadline != 0 && deadline <= block.timestamp) revert DeadlinePassed(deadline, block.timestamp);
        uint64 nonce = uint64(tree.count);
        bytes memory message = IsthmusMessage.encode(
            nonce, localDomain, IsthmusMessage.fromAddress(msg.sender), destination, recipient, deadline, body
        );
        id = keccak256(message);
        tree.insert(id);
        root = tree.root();
        sent[id] = uint256(uint160(msg.sender)) | (uint256(destination) << 160) | (uint256(nonce) << 192);
        emit Dispatch(id, destination, nonce, message);
    }

    /// @notice Who sent message `id`, to which ledger and at which nonce; a zero sender
    /// if this Outbox never sent it (no sender is the zero address).
    function sentBy(bytes32 id) public view returns (address sender, uint32 destination, uint64 nonce) {
        uint256 packed = sent[id];
        return (address(uint160(packed)), uint32(packed >> 160), uint64(packed >> 192));
    }

    /// @notice Messages dispatched so far.
    function count() external view returns (uint256) {
        return tree.count;
    }
}
