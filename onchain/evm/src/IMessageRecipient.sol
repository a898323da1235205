// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.37;

/// @title What a destination application implements to receive Isthmus messages.
interface IMessageRecipient {
    /// @notice Called by the Inbox once per delivered message. A revert does not
    /// consume the message: it stays undelivered and can be delivered again later.
    /// Implementations must check that `msg.sender` is their Inbox.
    function handle(uint32 origin, bytes32 sender, bytes calldata body) external;
}
