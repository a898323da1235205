// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.37;

import {Administered} from "./Administered.sol";
import {CheckpointLib} from "./CheckpointLib.sol";
import {IHoldingRecipient, IMessageRecipient, IReceiptRecipient} from "./IMessageRecipient.sol";
import {Inbox} from "./Inbox.sol";
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
/// **Value limits** on payments from another ledger (docs/dapps.md, "Value limits"):
/// per route (`debtor` 0) and per debtor bank of a route, a rolling allowance that
/// refills over a window and a large-value threshold. A payment over either is held
/// (`Held`), not refused: the Inbox keeps it until a quorum of the origin's signers
/// releases it (`handleReleased`: credited, its value counted against the allowance)
/// or rejects it, or its hold expires (both return it to the debtor through its
/// receipt). The admin sets each limit up once; a change needs a quorum of the
/// origin's current signers, like the signer set itself.
///
/// Body: `abi.encode(bytes32 instructionId, bytes32 fromBank, bytes32 toBank, uint256 amount)`.
contract ClearingApp is IMessageRecipient, IHoldingRecipient, IReceiptRecipient, Administered {
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

    /// @notice A value control of a route (`debtor` 0) or of one debtor bank of it, in
    /// two slots. `capacity` 0: no rolling limit; `largeValue` 0: no threshold.
    struct Limit {
        uint128 capacity;
        uint128 largeValue;
        /// @dev Seconds the allowance takes to refill from 0 to `capacity`.
        uint32 window;
        /// @dev 0: never set up; +1 per change.
        uint32 version;
        uint128 available;
        uint64 updated;
    }

    /// @notice keccak256(abi.encode(origin, debtor)) => its limit (`limitOf`).
    mapping(bytes32 => Limit) internal limits;
    /// @notice Domain tag of a limit change digest (docs/protocol.md, "Holds").
    bytes32 public constant LIMIT_CHANGE_TAG = keccak256("isthmus clearing limit change v1");
    /// @notice Reasons a payment is held.
    bytes32 public constant LARGE_VALUE = "large value";
    bytes32 public constant OVER_ROUTE_LIMIT = "over route limit";
    bytes32 public constant OVER_BANK_LIMIT = "over bank limit";

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
    /// @notice A rolling limit needs a window of at least one second.
    error BadLimit();
    /// @notice The limit is set up already: it changes only by `changeLimit`.
    error LimitExists(uint32 origin, bytes32 debtor);
    /// @notice A change must carry the next version of the limit.
    error WrongLimitVersion(uint32 expected, uint32 got);
    /// @notice Fewer than the origin's threshold of its current signers signed.
    error LimitQuorumNotReached(uint256 have, uint256 need);
    event LimitSet(
        uint32 indexed origin, bytes32 indexed debtor, uint128 capacity, uint32 window, uint128 largeValue, uint32 version
    );

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

    /// @notice Sets up the limit of payments from `origin` (`debtor` 0: all of them;
    /// otherwise those of that debtor bank), once: `capacity` per `window` seconds,
    /// refilling steadily (0: no rolling limit), and payments above `largeValue` held
    /// whatever the allowance (0: none).
    function setLimit(uint32 origin, bytes32 debtor, uint128 capacity, uint32 window, uint128 largeValue)
        external
        onlyAdmin
    {
        if (limits[_limitKey(origin, debtor)].version != 0) revert LimitExists(origin, debtor);
        _setLimit(origin, debtor, capacity, window, largeValue, 1);
    }

    /// @notice Changes a limit set up before, at `version` (its version + 1), with a
    /// quorum of `origin`'s current signers (as the Inbox has them) over
    /// `limitChangeDigest`. Nobody alone, and not the admin, loosens a limit.
    function changeLimit(
        uint32 origin,
        bytes32 debtor,
        uint128 capacity,
        uint32 window,
        uint128 largeValue,
        uint32 version,
        bytes[] calldata signatures
    ) external {
        uint32 current = limits[_limitKey(origin, debtor)].version;
        if (current == 0 || version != current + 1) revert WrongLimitVersion(current + 1, version);
        _requireQuorum(origin, limitChangeDigest(origin, debtor, capacity, window, largeValue, version), signatures);
        _setLimit(origin, debtor, capacity, window, largeValue, version);
    }

    /// @dev Reverts unless a quorum of `origin`'s current signers (the Inbox's) signed
    /// `digest`; each signer counts once.
    function _requireQuorum(uint32 origin, bytes32 digest, bytes[] calldata signatures) internal view {
        (, address[] memory signers, uint8 threshold,,,) = Inbox(inbox).signerSets(origin);
        uint256 have;
        uint256 seen;
        for (uint256 i = 0; i < signatures.length && have < threshold; i++) {
            address signer = CheckpointLib.recover(digest, signatures[i]);
            if (signer == address(0)) continue;
            for (uint256 k = 0; k < signers.length; k++) {
                if (signers[k] != signer || seen & (1 << k) != 0) continue;
                seen |= 1 << k;
                have++;
            }
        }
        if (threshold == 0 || have < threshold) revert LimitQuorumNotReached(have, threshold);
    }

    /// @notice The digest `origin`'s signers sign to change a limit: it binds the
    /// chain, this app, the limit's key, its new values and version.
    function limitChangeDigest(
        uint32 origin,
        bytes32 debtor,
        uint128 capacity,
        uint32 window,
        uint128 largeValue,
        uint32 version
    ) public view returns (bytes32) {
        return keccak256(
            abi.encodePacked(
                LIMIT_CHANGE_TAG, block.chainid, address(this), origin, debtor, capacity, window, largeValue, version
            )
        );
    }

    /// @notice The limit of payments from `origin` (`debtor` 0: the route's), and the
    /// allowance left now.
    function limitOf(uint32 origin, bytes32 debtor)
        external
        view
        returns (uint128 capacity, uint32 window, uint128 largeValue, uint32 version, uint128 available)
    {
        Limit storage l = limits[_limitKey(origin, debtor)];
        return (l.capacity, l.window, l.largeValue, l.version, l.capacity == 0 ? 0 : _available(l));
    }

    function _limitKey(uint32 origin, bytes32 debtor) internal pure returns (bytes32) {
        return keccak256(abi.encode(origin, debtor));
    }

    /// @dev Sets a limit's values; a new one starts full, a changed one keeps what it
    /// had left (refilled to now), up to its new capacity.
    function _setLimit(
        uint32 origin,
        bytes32 debtor,
        uint128 capacity,
        uint32 window,
        uint128 largeValue,
        uint32 version
    ) internal {
        if (capacity != 0 && window == 0) revert BadLimit();
        Limit storage l = limits[_limitKey(origin, debtor)];
        uint128 left = l.version == 0 || l.capacity == 0 ? capacity : _available(l);
        l.capacity = capacity;
        l.largeValue = largeValue;
        l.window = window;
        l.version = version;
        l.available = left < capacity ? left : capacity;
        l.updated = uint64(block.timestamp);
        emit LimitSet(origin, debtor, capacity, window, largeValue, version);
    }

    /// @dev The allowance of `l` refilled to now: `capacity` per `window`, capped.
    function _available(Limit storage l) internal view returns (uint128) {
        uint256 cap = l.capacity;
        uint256 refill = cap * (block.timestamp - l.updated) / l.window;
        uint256 a = uint256(l.available) + refill;
        return uint128(a < cap ? a : cap);
    }

    /// @dev Applies the limit `key` to a payment of `amount`: the reason to hold it
    /// (0: none), or, when it passes (or `released` overrides it), its value taken from
    /// the allowance (down to 0 for a released one).
    function _control(bytes32 key, uint256 amount, bool released, bytes32 overLimit) internal returns (bytes32) {
        Limit storage l = limits[key];
        uint256 cap = l.capacity;
        uint256 large = l.largeValue;
        if (cap == 0 && large == 0) return 0;
        if (!released && large != 0 && amount > large) return LARGE_VALUE;
        if (cap == 0) return 0;
        uint256 available = _available(l);
        if (amount > available) {
            if (!released) return overLimit;
            available = amount;
        }
        l.available = uint128(available - amount);
        l.updated = uint64(block.timestamp);
        return 0;
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
        if (body.length == 160) return _credit(origin, sender, body, false);
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

    /// @notice A payment a quorum released from its hold: credited past the limits that
    /// held it (its value still counts against their allowance).
    function handleReleased(uint32 origin, bytes32 sender, bytes calldata body) external returns (bytes32) {
        if (msg.sender != inbox) revert NotInbox();
        if (body.length != 160) revert Refused("malformed payment");
        return _credit(origin, sender, body, true);
    }

    /// @dev A payment from `origin`: credits the creditor out of the origin's account
    /// here, refuses it for good (its receipt returns it to the debtor there), or holds
    /// it when it is over a limit (not `released`).
    function _credit(uint32 origin, bytes32 sender, bytes calldata body, bool released) internal returns (bytes32) {
        (bytes32 uetr, bytes32 debtor, bytes32 creditor, uint256 amount, bytes3 cur) =
            abi.decode(body, (bytes32, bytes32, bytes32, uint256, bytes3));
        if (sender == 0 || sender != peer[origin]) revert Refused("untrusted sender");
        if (cur != currency) revert Refused("wrong currency");
        if (creditedUetr[uetr]) revert Refused("duplicate payment");
        if (!isBank[creditor]) revert Refused("unknown bank");
        uint256 liquidity = ledgerBalance[origin];
        if (liquidity < amount) revert Refused("insufficient funds");
        if (balanceOf[creditor] > type(uint256).max - amount) revert Refused("balance overflow");
        bytes32 hold = _control(_limitKey(origin, 0), amount, released, OVER_ROUTE_LIMIT);
        if (hold == 0) hold = _control(_limitKey(origin, debtor), amount, released, OVER_BANK_LIMIT);
        if (hold != 0) revert Held(hold);
        creditedUetr[uetr] = true;
        ledgerBalance[origin] = liquidity - amount;
        balanceOf[creditor] += amount;
        emit PaymentCredited(uetr, origin, creditor, amount);
        return uetr;
    }
}
