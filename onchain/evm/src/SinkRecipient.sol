// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.37;

import {IMessageRecipient} from "./IMessageRecipient.sol";

/// @title A recipient that does no work beyond checking its caller.
/// @notice Used to measure the Inbox's own gas per message, excluding the
/// application's work (docs/benchmarks.md).
contract SinkRecipient is IMessageRecipient {
    address public immutable inbox;

    error NotInbox();

    constructor(address inbox_) {
        inbox = inbox_;
    }

    function handle(uint32, bytes32, bytes calldata) external view returns (bytes32) {
        if (msg.sender != inbox) revert NotInbox();
        return 0;
    }
}
