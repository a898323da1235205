// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.37;

/// @title What a destination application implements to receive Isthmus messages.
interface IMessageRecipient {
    /// @notice Revert with this to refuse a message for good: the Inbox consumes it
    /// and its `refused` receipt carries `code` back to the sender. Any other revert
    /// leaves the message undelivered and deliverable again later.
    error Refused(bytes32 code);

    /// @notice Revert with this to hold a message (a control of the app: a value limit,
    /// a large payment): the Inbox records the hold and executes the message only once
    /// a quorum of the origin's signers releases it (`IHoldingRecipient.handleReleased`
    /// is called then), ends it `refused` once a quorum rejects it, or when the hold
    /// outlives `Inbox.HOLD_PERIOD` (docs/protocol.md, "Holds").
    error Held(bytes32 reason);

    /// @notice Called by the Inbox once per delivered message. Implementations must
    /// check that `msg.sender` is their Inbox.
    /// @return result a short answer, the result of the message's `delivered` receipt
    /// (0 if the app has none)
    function handle(uint32 origin, bytes32 sender, bytes calldata body) external returns (bytes32 result);
}

/// @title What a sending application implements to learn how its messages ended.
interface IReceiptRecipient {
    /// @notice Called by the Inbox of the sending ledger once per receipt of a message
    /// this contract sent: `outcome` is 1 delivered, 2 refused, 3 expired (docs/protocol.md,
    /// "Receipts"); `result` is the recipient's answer or refusal code. A revert is
    /// recorded (`ReceiptHandlerFailed`) and the call can be repeated by anyone with
    /// `Inbox.retryReceipt`. Implementations must check that `msg.sender` is their Inbox.
    function onReceipt(bytes32 id, uint32 destination, uint8 outcome, bytes32 result) external;
}

/// @title What a recipient that holds messages (`IMessageRecipient.Held`) implements.
interface IHoldingRecipient {
    /// @notice Called by the Inbox, instead of `handle`, for a message a quorum of the
    /// origin's signers released from its hold: the app executes it past the controls
    /// that held it. Reverting with `Refused` ends it refused; any other revert (a
    /// `Held` included) leaves it released and deliverable.
    function handleReleased(uint32 origin, bytes32 sender, bytes calldata body) external returns (bytes32 result);
}
