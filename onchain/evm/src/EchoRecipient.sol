// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.37;

import {IMessageRecipient, IReceiptRecipient} from "./IMessageRecipient.sol";
import {Outbox} from "./Outbox.sol";

/// @title Example app: records and echoes every message it receives, and records the
/// receipts of the messages it sends.
/// @notice Its owner can make it refuse messages: for now (a plain revert, which
/// exercises the Inbox's failure path: the message stays deliverable and is delivered
/// once the recipient accepts it again) or for good (`Refused`, which ends the message
/// with a `refused` receipt). It answers each accepted message with the keccak of its
/// body, the result of the `delivered` receipt.
contract EchoRecipient is IMessageRecipient, IReceiptRecipient {
    address public immutable inbox;
    address public immutable owner;
    bool public refusing;
    /// @notice When non-zero, a refusal reverts with this many bytes of revert data
    /// (to check that the Inbox keeps only the first `MAX_REASON_BYTES`).
    uint256 public refusalBytes;
    /// @notice When non-zero, every message is refused for good with this code.
    bytes32 public refusalCode;
    /// @notice When set, `handle` burns all the gas it is given (a hostile recipient).
    bool public burning;
    /// @notice When set, `onReceipt` reverts.
    bool public refusingReceipts;
    uint256 public received;
    uint32 public lastOrigin;
    bytes32 public lastSender;
    bytes public lastBody;
    /// @notice Receipts of the messages this app sent: id => outcome (0 = none yet).
    mapping(bytes32 => uint8) public receiptOutcome;
    mapping(bytes32 => bytes32) public receiptResult;
    uint256 public receipts;

    event Echo(uint32 indexed origin, bytes32 indexed sender, bytes body);
    event Receipt(bytes32 indexed id, uint32 destination, uint8 outcome, bytes32 result);

    error NotInbox();
    error NotOwner();
    error SecondReceipt(bytes32 id);

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

    function setRefusalCode(bytes32 refusalCode_) external {
        if (msg.sender != owner) revert NotOwner();
        refusalCode = refusalCode_;
    }

    function setBurning(bool burning_) external {
        if (msg.sender != owner) revert NotOwner();
        burning = burning_;
    }

    function setRefusingReceipts(bool refusing_) external {
        if (msg.sender != owner) revert NotOwner();
        refusingReceipts = refusing_;
    }

    /// @notice Sends `body` through `outbox` as this app (anyone may ask).
    function send(Outbox outbox, uint32 destination, bytes32 recipient, uint64 deadline, bytes calldata body)
        external
        returns (bytes32)
    {
        return outbox.dispatch(destination, recipient, deadline, body);
    }

    function handle(uint32 origin, bytes32 sender, bytes calldata body) external returns (bytes32) {
        if (msg.sender != inbox) revert NotInbox();
        if (burning) {
            // Runs until the call is out of gas.
            uint256 spin;
            while (true) {
                spin++;
            }
        }
        if (refusalCode != 0) revert Refused(refusalCode);
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
        return keccak256(body);
    }

    function onReceipt(bytes32 id, uint32 destination, uint8 outcome, bytes32 result) external {
        if (msg.sender != inbox) revert NotInbox();
        if (refusingReceipts) revert("echo: refusing receipts");
        if (receiptOutcome[id] != 0) revert SecondReceipt(id);
        receiptOutcome[id] = outcome;
        receiptResult[id] = result;
        receipts++;
        emit Receipt(id, destination, outcome, result);
    }
}
