// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.37;

import {IMessageRecipient} from "./IMessageRecipient.sol";

/// @title Example recipient: records and echoes every message it receives.
/// @notice Its owner can make it refuse messages (revert), which exercises the
/// Inbox's failure path: a refused message stays deliverable and is delivered once
/// the recipient accepts it again.
contract EchoRecipient is IMessageRecipient {
    address public immutable inbox;
    address public immutable owner;
    bool public refusing;
    /// @notice When non-zero, a refusal reverts with this many bytes of revert data
    /// (to check that the Inbox keeps only the first `MAX_REASON_BYTES`).
    uint256 public refusalBytes;
    /// @notice When set, `handle` burns all the gas it is given (a hostile recipient).
    bool public burning;
    uint256 public received;
    uint32 public lastOrigin;
    bytes32 public lastSender;
    bytes public lastBody;

    event Echo(uint32 indexed origin, bytes32 indexed sender, bytes body);

    error NotInbox();
    error NotOwner();

    constructor(address inbox_) {
        inbox = inbox_;
        owner = msg.sender;
    }

    function setRefusing(bool refusing_) external {
        if (msg.sender != owner) revert NotOwner();
        refusing = refusing_;
    }

    function setRefusalBytes(uint256 refusalBytes_) external {
        if (msg.sender != owner) revert NotOwner();
        refusalBytes = refusalBytes_;
    }

    function setBurning(bool burning_) external {
        if (msg.sender != owner) revert NotOwner();
        burning = burning_;
    }

    function handle(uint32 origin, bytes32 sender, bytes calldata body) external {
        if (msg.sender != inbox) revert NotInbox();
        if (burning) {
            // Runs until the call is out of gas.
            uint256 spin;
            while (true) {
                spin++;
            }
        }
        if (refusing) {
            uint256 size = refusalBytes;
            if (size == 0) revert("echo: refusing messages");
            // Reverts with `size` bytes of memory: cheap to produce (memory expansion
            // only), expensive for a caller that copies it all.
            assembly ("memory-safe") {
                revert(0, size)
            }
        }
        received++;
        lastOrigin = origin;
        lastSender = sender;
        lastBody = body;
        emit Echo(origin, sender, body);
    }
}
