// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.37;

import {Administered} from "./Administered.sol";
import {IMessageRecipient, IReceiptRecipient} from "./IMessageRecipient.sol";
import {Outbox} from "./Outbox.sol";

/// @title Example inter-bank clearing application.
/// @notice Holds a settlement balance per bank (a bytes32 bank identifier), in one
/// currency, and two kinds of business:
///
/// **Cross-ledger payments** (`pay`, docs/dapps.md "The clearing app"). The debtor
/// bank's operator pays: the amount moves from the debtor's balance into escrow here,
/// and the payment (UETR-style end-to-end id, debtor and creditor bank, amount,
/// currency) goes to the clearing app of the destination ledger (its peer). There the
/// creditor bank is credited from the origin ledger's account (the liquidity that
/// ledger holds there), or the payment is refused for good (`Refused`: unknown bank,
/// insufficient funds, untrusted sender, wrong currency, duplicate). Its receipt
/// comes back: `delivered` settles the escrow into the destination ledger's account
/// here; `refused` or `expired` returns it to the debtor. On every ledger, balances
/// plus ledger accounts plus escrow never change, and each payment is settled or
/// returned exactly once (the Inbox hands over one receipt per message).
///
/// **Instructions** (128-byte bodies): move `amount` between two banks of this ledger,
/// on the word of a sender of another ledger that the admin allowed to debit the
/// paying bank (`setDebitor`): a sender debits only the banks it speaks for.
/// Instruction ids are the sender's own: one sender's id never blocks another's
/// (`instructionSettled(origin, sender, id)`). They serve routes whose origin sends no
/// receipts.
///
/// Refusals that can never change (malformed body, a sender that may not debit the
/// paying bank, a duplicate instruction) are final: they are recorded by `InstructionRejected` and consume the
/// message, so a refused payment is never retried into a double settlement. Refusals
/// that depend on state (an unknown bank, insufficient funds, a balance that would
/// overflow) revert: the Inbox reports `MessageHandlerFailed` and the message stays
/// deliverable, so a payment delivered before the one that funds it settles when it
/// is retried, whatever order messages arrive in (docs/protocol.md). A call from
/// someone other than the Inbox reverts too.
///
/// Body: `abi.encode(bytes32 instructionId, bytes32 fromBank, bytes32 toBank, uint256 amount)`.
contract ClearingApp is IMessageRecipient, IReceiptRecipient, Administered {
    address public immutable inbox;
    /// @notice This ledger's Outbox, which payments leave through.
    Outbox public immutable outbox;
    /// @notice The one currency of this app's balances (ISO 4217).
    bytes3 public immutable currency;

    /// @notice Escrow states of a payment sent from here.
    uint8 public constant OPEN = 1;
    uint8 public constant SETTLED = 2;
    uint8 public constant RETURNED = 3;

    struct Escrow {
        bytes32 uetr;
        bytes32 debtor;
        uint256 amount;
        uint32 destination;
        uint8 state;
    }

    mapping(bytes32 => uint256) public balanceOf;
    mapping(bytes32 => bool) public isBank;
    /// @dev keccak256(origin, sender, instruction id) => settled.
    mapping(bytes32 => bool) internal settled;
    /// @notice origin ledger => sender => bank => the sender may instruct payments
    /// from that bank.
    mapping(uint32 => mapping(bytes32 => mapping(bytes32 => bool))) public mayDebit;
    /// @notice bank => the account that may pay from its balance (`pay`).
    mapping(bytes32 => address) public bankOwner;
    /// @notice ledger => the clearing app there: payments go to it and come from it.
    mapping(uint32 => bytes32) public peer;
    /// @notice ledger => its account here: the liquidity it holds on this ledger.
    /// Payments from it are credited out of it; payments to it settle into it.
    mapping(uint32 => uint256) public ledgerBalance;
    mapping(uint32 => bool) public hasLedgerAccount;
    /// @notice message id => escrow of a payment sent from here.
    mapping(bytes32 => Escrow) public escrows;
    /// @notice Total held in escrow (payments sent, their receipt not back yet).
    uint256 public escrowed;
    /// @notice End-to-end ids already paid from here, and credited here.
    mapping(bytes32 => bool) public sentUetr;
    mapping(bytes32 => bool) public creditedUetr;

    event BankOpened(bytes32 indexed bank, uint256 balance);
    event DebitorSet(uint32 indexed origin, bytes32 indexed sender, bytes32 indexed bank, bool allowed);
    event PaymentSettled(bytes32 indexed instructionId, bytes32 indexed fromBank, bytes32 indexed toBank, uint256 amount);
    event InstructionRejected(bytes32 indexed instructionId, string reason);
    event BankOwnerSet(bytes32 indexed bank, address owner);
    event PeerSet(uint32 indexed ledger, bytes32 app);
    event LedgerAccountOpened(uint32 indexed ledger, uint256 balance);
    /// @notice A payment left: `amount` of `debtor` is in escrow until its receipt.
    event PaymentSent(
        bytes32 indexed id,
        bytes32 indexed uetr,
        bytes32 debtor,
        bytes32 creditor,
        uint32 destination,
        uint256 amount
    );
    /// @notice A payment from `origin` credited `creditor` here.
    event PaymentCredited(bytes32 indexed uetr, uint32 indexed origin, bytes32 creditor, uint256 amount);
    /// @notice Its `delivered` receipt settled the escrow into the destination's account.
    event EscrowSettled(bytes32 indexed id, bytes32 indexed uetr, uint256 amount);
    /// @notice Its `refused` or `expired` receipt returned the escrow to the debtor.
    event EscrowReturned(
        bytes32 indexed id, bytes32 indexed uetr, bytes32 debtor, uint256 amount, uint8 outcome, bytes32 result
    );

    error NotInbox();
    error BankExists(bytes32 bank);
    /// @notice State-dependent refusals: the message stays deliverable.
    error UnknownBank(bytes32 instructionId);
    error InsufficientFunds(bytes32 instructionId, uint256 balance, uint256 amount);
    error BalanceOverflow(bytes32 instructionId);
    error NotBankOwner(bytes32 bank);
    error NoPeer(uint32 ledger);
    error ZeroAmount();
    error DuplicatePayment(bytes32 uetr);
    error LedgerAccountExists(uint32 ledger);
    error NoOpenEscrow(bytes32 id);

    constructor(address inbox_, Outbox outbox_, address admin_, bytes3 currency_) Administered(admin_) {
        if (inbox_ == address(0) || address(outbox_) == address(0)) revert ZeroAddress();
        inbox = inbox_;
        outbox = outbox_;
        currency = currency_;
    }

    /// @notice Who may pay from `bank` (zero: nobody).
    function setBankOwner(bytes32 bank, address owner) external onlyAdmin {
        bankOwner[bank] = owner;
        emit BankOwnerSet(bank, owner);
    }

    /// @notice The clearing app on `ledger` (an Address32): payments to that ledger go
    /// to it, and only it can pay here from that ledger.
    function setPeer(uint32 ledger, bytes32 app) external onlyAdmin {
        peer[ledger] = app;
        emit PeerSet(ledger, app);
    }

    /// @notice Opens `ledger`'s account here with the liquidity it holds, once.
    function openLedgerAccount(uint32 ledger, uint256 balance) external onlyAdmin {
        if (hasLedgerAccount[ledger]) revert LedgerAccountExists(ledger);
        hasLedgerAccount[ledger] = true;
        ledgerBalance[ledger] = balance;
        emit LedgerAccountOpened(ledger, balance);
    }

    /// @notice Pays `amount` from `debtor` (a bank the caller operates) to `creditor` on
    /// `destination`, with end-to-end id `uetr`. The amount is in escrow until the
    /// payment's receipt: settled if delivered, returned to `debtor` if refused or
    /// expired (`deadline`: unix seconds, 0 = none).
    /// @return id the message id, which keys the escrow
    function pay(
        uint32 destination,
        bytes32 uetr,
        bytes32 debtor,
        bytes32 creditor,
        uint256 amount,
        uint64 deadline
    ) external returns (bytes32 id) {
        if (bankOwner[debtor] == address(0) || msg.sender != bankOwner[debtor]) revert NotBankOwner(debtor);
        bytes32 to = peer[destination];
        if (to == 0) revert NoPeer(destination);
        if (amount == 0) revert ZeroAmount();
        if (sentUetr[uetr]) revert DuplicatePayment(uetr);
        uint256 balance = balanceOf[debtor];
        if (balance < amount) revert InsufficientFunds(uetr, balance, amount);
        sentUetr[uetr] = true;
        balanceOf[debtor] = balance - amount;
        escrowed += amount;
        id = outbox.dispatch(destination, to, deadline, abi.encode(uetr, debtor, creditor, amount, currency));
        escrows[id] = Escrow(uetr, debtor, amount, destination, OPEN);
        emit PaymentSent(id, uetr, debtor, creditor, destination, amount);
    }

    /// @notice The receipt of a payment sent from here: settles or returns its escrow,
    /// once.
    function onReceipt(bytes32 id, uint32 destination, uint8 outcome, bytes32 result) external {
        if (msg.sender != inbox) revert NotInbox();
        Escrow storage e = escrows[id];
        if (e.state != OPEN || e.destination != destination) revert NoOpenEscrow(id);
        uint256 amount = e.amount;
        escrowed -= amount;
        if (outcome == 1) {
            e.state = SETTLED;
            ledgerBalance[destination] += amount;
            emit EscrowSettled(id, e.uetr, amount);
        } else {
            e.state = RETURNED;
            balanceOf[e.debtor] += amount;
            emit EscrowReturned(id, e.uetr, e.debtor, amount, outcome, result);
        }
    }

    /// @notice Opens a new bank with its initial balance. An open bank's balance only
    /// changes by settled payments: opening it again is refused.
    function openBank(bytes32 bank, uint256 balance) external onlyAdmin {
        if (isBank[bank]) revert BankExists(bank);
        isBank[bank] = true;
        balanceOf[bank] = balance;
        emit BankOpened(bank, balance);
    }

    /// @notice Allows (or no longer allows) `sender` of ledger `origin` to instruct
    /// payments from `bank`.
    function setDebitor(uint32 origin, bytes32 sender, bytes32 bank, bool allowed) external onlyAdmin {
        mayDebit[origin][sender][bank] = allowed;
        emit DebitorSet(origin, sender, bank, allowed);
    }

    /// @notice Whether `sender` of `origin` had instruction `id` settled here.
    function instructionSettled(uint32 origin, bytes32 sender, bytes32 id) public view returns (bool) {
        return settled[keccak256(abi.encode(origin, sender, id))];
    }

    function handle(uint32 origin, bytes32 sender, bytes calldata body) external returns (bytes32) {
        if (msg.sender != inbox) revert NotInbox();
        if (body.length == 160) return _credit(origin, sender, body);
        if (body.length != 128) {
            emit InstructionRejected(bytes32(0), "malformed instruction");
            return 0;
        }
        (bytes32 instructionId, bytes32 fromBank, bytes32 toBank, uint256 amount) =
            abi.decode(body, (bytes32, bytes32, bytes32, uint256));
        string memory refusal;
        bytes32 key = keccak256(abi.encode(origin, sender, instructionId));
        if (!mayDebit[origin][sender][fromBank]) refusal = "sender may not debit this bank";
        else if (settled[key]) refusal = "duplicate instruction";
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
        settled[key] = true;
        balanceOf[fromBank] = balance - amount;
        balanceOf[toBank] += amount;
        emit PaymentSettled(instructionId, fromBank, toBank, amount);
        return instructionId;
    }

    /// @dev A payment from `origin`: credits the creditor out of the origin's account
    /// here, or refuses it for good (its receipt returns it to the debtor there).
    function _credit(uint32 origin, bytes32 sender, bytes calldata body) internal returns (bytes32) {
        (bytes32 uetr,, bytes32 creditor, uint256 amount, bytes3 cur) =
            abi.decode(body, (bytes32, bytes32, bytes32, uint256, bytes3));
        if (sender == 0 || sender != peer[origin]) revert Refused("untrusted sender");
        if (cur != currency) revert Refused("wrong currency");
        if (creditedUetr[uetr]) revert Refused("duplicate payment");
        if (!isBank[creditor]) revert Refused("unknown bank");
        uint256 liquidity = ledgerBalance[origin];
        if (liquidity < amount) revert Refused("insufficient funds");
        if (balanceOf[creditor] > type(uint256).max - amount) revert Refused("balance overflow");
        creditedUetr[uetr] = true;
        ledgerBalance[origin] = liquidity - amount;
        balanceOf[creditor] += amount;
        emit PaymentCredited(uetr, origin, creditor, amount);
        return uetr;
    }
}
