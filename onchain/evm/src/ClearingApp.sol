// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.37;

import {Administered} from "./Administered.sol";
import {IMessageRecipient} from "./IMessageRecipient.sol";

/// @title Example inter-bank clearing application.
/// @notice Holds a settlement balance per bank (a bytes32 bank identifier). A payment
/// instruction arriving from a trusted sender on another ledger moves `amount` from
/// one bank to another.
///
/// Refusals that can never change (malformed body, untrusted sender, duplicate
/// instruction) are final: they are recorded by `InstructionRejected` and consume the
/// message, so a refused payment is never retried into a double settlement. Refusals
/// that depend on state (an unknown bank, insufficient funds, a balance that would
/// overflow) revert: the Inbox reports `MessageHandlerFailed` and the message stays
/// deliverable, so a payment delivered before the one that funds it settles when it
/// is retried, whatever order messages arrive in (docs/protocol.md). A call from
/// someone other than the Inbox reverts too.
///
/// Body: `abi.encode(bytes32 instructionId, bytes32 fromBank, bytes32 toBank, uint256 amount)`.
contract ClearingApp is IMessageRecipient, Administered {
    address public immutable inbox;

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
    error BankExists(bytes32 bank);
    /// @notice State-dependent refusals: the message stays deliverable.
    error UnknownBank(bytes32 instructionId);
    error InsufficientFunds(bytes32 instructionId, uint256 balance, uint256 amount);
    error BalanceOverflow(bytes32 instructionId);

    constructor(address inbox_, address admin_) Administered(admin_) {
        if (inbox_ == address(0)) revert ZeroAddress();
        inbox = inbox_;
    }

    /// @notice Opens a new bank with its initial balance. An open bank's balance only
    /// changes by settled payments: opening it again is refused.
    function openBank(bytes32 bank, uint256 balance) external onlyAdmin {
        if (isBank[bank]) revert BankExists(bank);
        isBank[bank] = true;
        balanceOf[bank] = balance;
        emit BankOpened(bank, balance);
    }

    function setTrustedSender(uint32 origin, bytes32 sender, bool trusted) external onlyAdmin {
        trustedSender[origin][sender] = trusted;
        emit SenderTrusted(origin, sender, trusted);
    }

    function handle(uint32 origin, bytes32 sender, bytes calldata body) external returns (bytes32) {
        if (msg.sender != inbox) revert NotInbox();
        if (body.length != 128) {
            emit InstructionRejected(bytes32(0), "malformed instruction");
            return 0;
        }
        (bytes32 instructionId, bytes32 fromBank, bytes32 toBank, uint256 amount) =
            abi.decode(body, (bytes32, bytes32, bytes32, uint256));
        string memory refusal;
        if (!trustedSender[origin][sender]) refusal = "untrusted sender";
        else if (settled[instructionId]) refusal = "duplicate instruction";
        if (bytes(refusal).length != 0) {
            emit InstructionRejected(instructionId, refusal);
            return 0;
        }
        if (!isBank[fromBank] || !isBank[toBank]) revert UnknownBank(instructionId);
        uint256 balance = balanceOf[fromBank];
        if (balance < amount) revert InsufficientFunds(instructionId, balance, amount);
        if (fromBank != toBank && balanceOf[toBank] > type(uint256).max - amount) {
            revert BalanceOverflow(instructionId);
        }
        settled[instructionId] = true;
        balanceOf[fromBank] = balance - amount;
        balanceOf[toBank] += amount;
        emit PaymentSettled(instructionId, fromBank, toBank, amount);
        return instructionId;
    }
}
