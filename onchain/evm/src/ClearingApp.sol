// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.37;

import {IMessageRecipient} from "./IMessageRecipient.sol";

/// @title Example inter-bank clearing application.
/// @notice Holds a settlement balance per bank (a bytes32 bank identifier). A payment
/// instruction arriving from a trusted sender on another ledger moves `amount` from
/// one bank to another. Business refusals (duplicate instruction, unknown or
/// underfunded bank, untrusted sender, malformed body) are final: they are recorded by
/// `InstructionRejected` and consume the message, so a refused payment is never
/// retried into a double settlement. Only a call from someone other than the Inbox
/// reverts.
///
/// Body: `abi.encode(bytes32 instructionId, bytes32 fromBank, bytes32 toBank, uint256 amount)`.
contract ClearingApp is IMessageRecipient {
    address public immutable inbox;
    address public admin;

    mapping(bytes32 => uint256) public balanceOf;
    mapping(bytes32 => bool) public isBank;
    mapping(bytes32 => bool) public settled;
    /// @notice origin ledger => sender => allowed to instruct payments.
    mapping(uint32 => mapping(bytes32 => bool)) public trustedSender;

    event BankOpened(bytes32 indexed bank, uint256 balance);
    event SenderTrusted(uint32 indexed origin, bytes32 indexed sender, bool trusted);
    event PaymentSettled(bytes32 indexed instructionId, bytes32 indexed fromBank, bytes32 indexed toBank, uint256 amount);
    event InstructionRejected(bytes32 indexed instructionId, string reason);

    error NotInbox();
    error NotAdmin();

    constructor(address inbox_, address admin_) {
        inbox = inbox_;
        admin = admin_;
    }

    function openBank(bytes32 bank, uint256 balance) external {
        if (msg.sender != admin) revert NotAdmin();
        isBank[bank] = true;
        balanceOf[bank] = balance;
        emit BankOpened(bank, balance);
    }

    function setTrustedSender(uint32 origin, bytes32 sender, bool trusted) external {
        if (msg.sender != admin) revert NotAdmin();
        trustedSender[origin][sender] = trusted;
        emit SenderTrusted(origin, sender, trusted);
    }

    function handle(uint32 origin, bytes32 sender, bytes calldata body) external {
        if (msg.sender != inbox) revert NotInbox();
        if (body.length != 128) {
            emit InstructionRejected(bytes32(0), "malformed instruction");
            return;
        }
        (bytes32 instructionId, bytes32 fromBank, bytes32 toBank, uint256 amount) =
            abi.decode(body, (bytes32, bytes32, bytes32, uint256));
        string memory refusal;
        if (!trustedSender[origin][sender]) refusal = "untrusted sender";
        else if (settled[instructionId]) refusal = "duplicate instruction";
        else if (!isBank[fromBank] || !isBank[toBank]) refusal = "unknown bank";
        else if (balanceOf[fromBank] < amount) refusal = "insufficient funds";
        if (bytes(refusal).length != 0) {
            emit InstructionRejected(instructionId, refusal);
            return;
        }
        settled[instructionId] = true;
        balanceOf[fromBank] -= amount;
        balanceOf[toBank] += amount;
        emit PaymentSettled(instructionId, fromBank, toBank, amount);
    }
}
