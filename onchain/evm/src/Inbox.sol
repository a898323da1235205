// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.37;

import {Administered} from "./Administered.sol";
import {CheckpointLib} from "./CheckpointLib.sol";
import {IHoldingRecipient, IMessageRecipient, IReceiptRecipient} from "./IMessageRecipient.sol";
import {IsthmusMessage} from "./IsthmusMessage.sol";
import {MerkleLib} from "./MerkleLib.sol";
import {Outbox} from "./Outbox.sol";

/// @title Isthmus inbox: delivers messages attested by a consortium quorum.
/// @notice Per origin ledger it holds the outbox, the signer set and the threshold.
/// A message is accepted with >= threshold distinct valid attestations of a checkpoint
/// and its id's Merkle branch under that checkpoint's root (docs/protocol.md).
///
/// Every message ends exactly once, one of three ways, and each end is a receipt
/// (docs/protocol.md, "Receipts"): `delivered` (the recipient accepted it), `refused`
/// (the recipient reverted with `IMessageRecipient.Refused(code)`, or there is no
/// recipient contract) or `expired` (submitted after its deadline: consumed
/// undelivered). The nonce is marked ended before the recipient is called (so a
/// re-entrant call cannot deliver it twice); if the recipient reverts any other way,
/// the mark is cleared, `MessageHandlerFailed` is emitted and the message stays
/// deliverable. A message is therefore never lost and never handled twice.
///
/// Receipts travel back as messages: the receipts one submission makes for an origin
/// leave, at most `MAX_RECEIPTS` to a message, through this ledger's Outbox to the
/// origin's Inbox (set per origin; none for an origin set up without one). A message
/// whose recipient is this Inbox and whose sender is the origin's Inbox is such a
/// receipt batch: each receipt in it is taken once, only for a message this ledger's
/// Outbox sent to that origin, and handed to the message's sender
/// (`IReceiptRecipient.onReceipt`). Receipt batches get no receipt of their own.
///
/// Handler gas: the recipient gets at most `handlerGasLimit`, fixed at deployment.
/// A recipient that fails with that much was refused by itself: `MessageHandlerFailed`,
/// whatever it did with the gas, so a recipient that burns gas costs a delivery at
/// most the limit. A recipient that runs out of gas while the transaction had less
/// than the limit left for it (EIP-150 keeps 1/64 back) was starved by the
/// submitter, which is not the recipient's refusal: the whole transaction reverts
/// with `HandlerOutOfGas`, nothing is marked or emitted, and the message stays
/// deliverable for a submission with more gas (docs/protocol.md).
///
/// Route control: any one current signer of an origin pauses that origin's route
/// (`pause`, its signature over the pause digest); only a quorum of the current set
/// resumes it (`resume`). While paused, every submission of the origin's checkpoints
/// reverts, so nothing of the route is executed or consumed (docs/protocol.md,
/// "Route pause").
///
/// Holds: a recipient may hold a message (`IMessageRecipient.Held(reason)`, for a
/// value limit or a large payment). The Inbox records the hold and the message stays
/// deliverable but is not executed: only a quorum of the origin's current signers
/// decides it, over the message id (`releaseHold`, `rejectHold`). A released message
/// is executed at its next submission (`IHoldingRecipient.handleReleased`); a rejected
/// one, or one held longer than `HOLD_PERIOD`, ends `refused` there, and its receipt
/// returns the payment to its sender. No single member, and not the admin, can
/// release a hold (docs/protocol.md, "Holds").
contract Inbox is Administered {
    using IsthmusMessage for bytes;

    /// @notice Why a batch entry was skipped. Persisted in events.
    enum SkipReason {
        None,
        /// The message ended before (delivered, refused or expired).
        AlreadyDelivered
    }

    struct Origin {
        bytes32 outbox;
        uint8 threshold;
        /// @dev Route control (`pause`, `resume`), in the threshold's slot: a
        /// submission reads it for free.
        bool paused;
        /// @dev Resumes so far: the epoch a pause or resume digest names.
        uint64 epoch;
        /// @dev The origin's low-water mark: every nonce below it ended, here (their
        /// bits pruned, `prune`) or at the Inbox this one replaced (`setOrigin`).
        /// In the threshold's slot too.
        uint64 firstNonce;
        /// @dev Messages of the origin held and not ended yet, in the threshold's slot:
        /// while it is 0 a submission reads no hold.
        uint32 held;
        address[] signers;
        /// @dev Version of the signer set: 0 as set up, +1 per update.
        uint64 version;
        /// @dev The set before the last update, accepted until `previousUntil`.
        uint8 previousThreshold;
        uint64 previousUntil;
        address[] previousSigners;
        /// @dev The origin's Inbox, which receipts go to (0 = the origin takes none).
        bytes32 inbox;
    }

    /// @notice Receipt outcomes (docs/protocol.md, "Receipts").
    uint8 public constant DELIVERED = 1;
    uint8 public constant REFUSED = 2;
    uint8 public constant EXPIRED = 3;
    /// @dev How `_deliver` ended a message besides the three outcomes: it stays
    /// deliverable (the recipient reverted); it had ended before; it was a receipt
    /// batch, which ends without a receipt of its own; it claimed to be one and was
    /// not receipts (refused, also without a receipt).
    uint8 internal constant KEPT = 0;
    uint8 internal constant REPLAY = 4;
    uint8 internal constant RECEIPTS = 5;
    uint8 internal constant NOT_A_BATCH = 6;
    /// @notice Bytes of one receipt: id, nonce, outcome, result.
    uint256 public constant RECEIPT_LEN = 73;
    /// @notice Most receipts one receipt batch message carries.
    uint256 public constant MAX_RECEIPTS = 64;
    /// @notice Most gas a sender's `onReceipt` is given (a batch of `MAX_RECEIPTS`
    /// stays deliverable in one block whatever the senders do).
    uint256 public constant RECEIPT_GAS_LIMIT = 100_000;
    /// @notice Refusal codes of the Inbox itself.
    bytes32 public constant NO_RECIPIENT = "no recipient contract";
    bytes32 public constant NOT_RECEIPTS = "not the origin's inbox";
    bytes32 public constant MALFORMED_RECEIPTS = "malformed receipt batch";
    bytes32 public constant UNKNOWN_MESSAGE = "not sent there from here";
    bytes32 public constant DUPLICATE_RECEIPT = "receipt taken before";

    /// @dev Receipts collected during one submission, for one origin; and the
    /// origin's start nonce, read once per submission rather than once per message.
    struct Receipts {
        uint32 origin;
        bytes32 to;
        bytes buf;
        uint256 n;
        uint64 firstNonce;
        uint32 held;
    }

    /// @notice A held message (`holds`): its origin, since when, why, and whether a
    /// quorum decided it.
    struct Hold {
        uint8 state;
        uint32 origin;
        uint64 since;
        bytes32 reason;
    }

    /// @notice Hold states.
    uint8 public constant HOLD_HELD = 1;
    uint8 public constant HOLD_RELEASED = 2;
    uint8 public constant HOLD_REJECTED = 3;
    /// @notice How long a hold may wait for a decision: a held message submitted
    /// later ends refused with `HOLD_EXPIRED`.
    uint64 public constant HOLD_PERIOD = 2 days;
    /// @notice Refusal codes of a hold that ended without being released.
    bytes32 public constant HOLD_EXPIRED = "hold expired";
    bytes32 public constant HOLD_REJECTED_CODE = "hold rejected";
    /// @notice Domain tags of the hold decision digests (docs/protocol.md, "Holds").
    bytes32 public constant HOLD_RELEASE_TAG = keccak256("isthmus hold release v1");
    bytes32 public constant HOLD_REJECT_TAG = keccak256("isthmus hold reject v1");

    /// @notice Ledger id of this ledger.
    uint32 public immutable localDomain;
    /// @notice The consortium network this Inbox belongs to: checkpoint digests bind
    /// it, so only signatures made for this network count here (docs/protocol.md,
    /// "Networks").
    bytes32 public immutable network;
    /// @notice This ledger's Outbox: receipts leave through it, and a receipt is taken
    /// only for a message it sent.
    Outbox public immutable localOutbox;
    /// @notice Most gas a recipient's `handle` is given. A handler that needs more is
    /// refused on every delivery; one that fails with it cannot blame the submitter.
    uint256 public immutable handlerGasLimit;
    /// @notice Least `handlerGasLimit` a deployment may set: a handler must be able to
    /// write a few storage slots.
    uint256 public constant MIN_HANDLER_GAS = 50_000;
    /// @notice Most bytes of a recipient's revert data kept in `MessageHandlerFailed`.
    /// The rest is never copied: a recipient cannot make a refusal expensive.
    uint256 public constant MAX_REASON_BYTES = 256;

    mapping(uint32 => Origin) internal origins;
    /// @dev origin => signer => index + 1 in the signer list (0 = not a signer).
    mapping(uint32 => mapping(address => uint256)) internal signerSlot;
    /// @dev origin => signer => index + 1 in the previous signer list.
    mapping(uint32 => mapping(address => uint256)) internal previousSlot;
    /// @notice Origins the admin retired: refused from then on, never set up again.
    mapping(uint32 => bool) public retired;
    /// @notice origin => nonce / 256 => one bit per nonce (bit `nonce % 256`): the
    /// messages that ended here, delivered, refused or expired (replay protection).
    /// Under an origin's one outbox a nonce names one message (its Merkle index,
    /// checked against the attested root), so a bit stands for the id: 256 messages
    /// share a storage slot, the consecutive nonces of a batch write one slot, and one
    /// read answers for 256 messages (docs/protocol.md, "Delivery rules").
    mapping(uint32 => mapping(uint256 => uint256)) public endedBits;
    /// @notice nonce of this ledger's Outbox / 256 => one bit per nonce: the messages
    /// sent from here whose receipt was taken.
    mapping(uint256 => uint256) public receiptBits;
    /// @notice id => hash of (destination, outcome, result) of a receipt whose
    /// sender's `onReceipt` reverted; `retryReceipt` repeats the call.
    mapping(bytes32 => bytes32) public pendingReceipts;
    /// @notice id => the hold of a message held and not ended (deleted when it ends).
    mapping(bytes32 => Hold) public holds;

    /// @notice Domain tag of a signer-set update digest (docs/protocol.md).
    bytes32 public constant SIGNER_SET_UPDATE_TAG = keccak256("isthmus signer set update v1");
    /// @notice Domain tags of the route control digests (docs/protocol.md).
    bytes32 public constant ROUTE_PAUSE_TAG = keccak256("isthmus route pause v1");
    bytes32 public constant ROUTE_RESUME_TAG = keccak256("isthmus route resume v1");
    /// @notice Longest overlap an update may give the set it replaces.
    uint64 public constant MAX_OVERLAP = 30 days;

    event OriginConfigured(
        uint32 indexed origin, bytes32 outbox, bytes32 inbox, address[] signers, uint8 threshold, uint64 firstNonce
    );
    /// @notice The signer set of `origin` is now `signers`/`threshold` at `version`; the
    /// set it replaces stays valid until `previousUntil` (a timestamp).
    event SignersUpdated(
        uint32 indexed origin, uint64 version, address[] signers, uint8 threshold, uint64 previousUntil
    );
    /// @notice `origin` was retired: its checkpoints are refused for good.
    event OriginRetired(uint32 indexed origin);
    /// @notice Every nonce of `origin` below `firstNonce` has ended; their bits were
    /// deleted (`prune`).
    event EndedPruned(uint32 indexed origin, uint64 firstNonce);
    /// @notice `by` (a current signer of `origin`) paused the route in `epoch`.
    event RoutePaused(uint32 indexed origin, address indexed by, uint64 epoch);
    /// @notice A quorum resumed the route; the next controls name `epoch`.
    event RouteResumed(uint32 indexed origin, uint64 epoch);
    event MessageDelivered(bytes32 indexed id, uint32 indexed origin, uint64 nonce);
    event MessageHandlerFailed(bytes32 indexed id, uint32 indexed origin, uint64 nonce, bytes reason);
    event MessageSkipped(bytes32 indexed id, SkipReason reason);
    /// @notice The message ended refused: its recipient refused it for good with `code`
    /// (or the Inbox did: `NO_RECIPIENT`, `NOT_RECEIPTS`, `MALFORMED_RECEIPTS`).
    event MessageRefused(bytes32 indexed id, uint32 indexed origin, uint64 nonce, bytes32 code);
    /// @notice The message was submitted after its deadline and ended undelivered.
    event MessageExpired(bytes32 indexed id, uint32 indexed origin, uint64 nonce);
    /// @notice The message is held (its recipient held it, for `reason`; or it was
    /// submitted again while held): not executed, still deliverable.
    event MessageHeld(bytes32 indexed id, uint32 indexed origin, uint64 nonce, bytes32 reason);
    /// @notice A quorum (`approvals` signers of the current set) released the hold of `id`.
    event HoldReleased(bytes32 indexed id, uint32 indexed origin, uint256 approvals);
    /// @notice A quorum rejected the hold of `id`: it ends refused at its next submission.
    event HoldRejected(bytes32 indexed id, uint32 indexed origin, uint256 approvals);
    /// @notice `count` receipts for `origin` left in the message `message` of the Outbox.
    event ReceiptsSent(uint32 indexed origin, bytes32 message, uint256 count);
    /// @notice The receipt of message `id`, sent from here to `destination`, was taken.
    event ReceiptTaken(bytes32 indexed id, uint32 indexed destination, uint8 outcome, bytes32 result);
    /// @notice A receipt in a batch from `destination` was not taken, for `code`.
    event ReceiptRefused(bytes32 indexed id, uint32 indexed destination, bytes32 code);
    /// @notice The sender's `onReceipt` reverted; the receipt stands, and anyone can
    /// repeat the call with `retryReceipt`.
    event ReceiptHandlerFailed(bytes32 indexed id, bytes reason);
    /// @notice A pending receipt's `onReceipt` succeeded on a retry.
    event ReceiptHandled(bytes32 indexed id);

    error BadSignerSet();
    /// @notice A deployment without a network id would take any network's checkpoints.
    error NoNetwork();
    /// @notice The route from `origin` is paused: nothing of it is executed until a
    /// quorum resumes it.
    error RouteIsPaused(uint32 origin);
    error RouteNotPaused(uint32 origin);
    /// @notice A pause must be signed by a current signer of the origin.
    error NotASigner(address recovered);
    error UnknownOrigin(uint32 origin);
    error OutboxMismatch(bytes32 expected, bytes32 got);
    error QuorumNotReached(uint256 have, uint256 need);
    error WrongOrigin(bytes32 id, uint32 origin);
    error WrongDestination(bytes32 id, uint32 destination);
    error InvalidBranch(bytes32 id);
    error AlreadyDelivered(bytes32 id);
    error LengthMismatch();
    /// @notice The origin is set up already: its signer set changes only by
    /// `updateSigners`, authorised by its current signers.
    error OriginExists(uint32 origin);
    /// @notice An update must carry the next version of the set.
    error WrongVersion(uint64 expected, uint64 got);
    /// @notice The overlap asked for is longer than `MAX_OVERLAP`.
    error OverlapTooLong(uint64 overlap);
    /// @notice The recipient used up the gas it was given: the submitter gave too
    /// little. Nothing of the transaction stands; the message stays deliverable.
    error HandlerOutOfGas(bytes32 id);
    /// @notice A deployment's handler gas limit is below `MIN_HANDLER_GAS`.
    error HandlerGasLimitTooLow(uint256 limit, uint256 least);
    /// @notice The Outbox given is not one of this ledger.
    error OutboxNotLocal(address outbox);
    /// @notice No receipt of `id` waits for its handler with these fields.
    error NoPendingReceipt(bytes32 id);
    /// @notice The sender's `onReceipt` reverted again.
    error ReceiptHandlerStillFailing(bytes32 id, bytes reason);
    /// @notice `id` is not held from that origin (never held, decided, or ended).
    error NotHeld(bytes32 id);
    /// @notice The hold of `id` outlived `HOLD_PERIOD`: it can only end refused.
    error HoldExpired(bytes32 id);

    /// @param admin_ Sets up each origin once and hands over the admin role (two steps);
    /// later signer-set changes need a quorum of the current set (`updateSigners`).
    /// @param handlerGasLimit_ The most gas each recipient's `handle` is given.
    /// @param localOutbox_ This ledger's Outbox (same ledger id).
    /// @param network_ The consortium network (non-zero), which checkpoint digests bind.
    constructor(uint32 localDomain_, address admin_, uint256 handlerGasLimit_, Outbox localOutbox_, bytes32 network_)
        Administered(admin_)
    {
        if (network_ == 0) revert NoNetwork();
        if (handlerGasLimit_ < MIN_HANDLER_GAS) revert HandlerGasLimitTooLow(handlerGasLimit_, MIN_HANDLER_GAS);
        if (address(localOutbox_).code.length == 0 || localOutbox_.localDomain() != localDomain_) {
            revert OutboxNotLocal(address(localOutbox_));
        }
        localDomain = localDomain_;
        handlerGasLimit = handlerGasLimit_;
        localOutbox = localOutbox_;
        network = network_;
    }

    /// @notice Sets up `origin` once: the outbox, signers and threshold trusted for it,
    /// the origin's Inbox, which receipts go to and come from (0: the origin takes no
    /// receipts; its messages still end exactly once here), and the first nonce this
    /// Inbox ends. An Inbox that replaces another starts each origin past the nonces
    /// that ended at the old one, so none of them can be delivered again here with
    /// its old checkpoint signatures (docs/protocol.md, "Replacing an Inbox"); a new
    /// route starts at 0.
    /// @dev Signers must be distinct and non-zero; 1 <= threshold <= signers (at most 255).
    function setOrigin(
        uint32 origin,
        bytes32 outbox,
        bytes32 originInbox,
        address[] calldata signers,
        uint8 threshold,
        uint64 startNonce
    ) external onlyAdmin {
        if (origin == localDomain) revert BadSignerSet();
        Origin storage o = origins[origin];
        if (o.threshold != 0 || retired[origin]) revert OriginExists(origin);
        _install(origin, signers, threshold);
        o.outbox = outbox;
        o.inbox = originInbox;
        o.firstNonce = startNonce;
        emit OriginConfigured(origin, outbox, originInbox, signers, threshold, startNonce);
    }

    /// @notice The low-water mark of `origin`: every nonce below it ended, at the Inbox
    /// this one replaced (the start nonce of `setOrigin`) or here (`prune`).
    function firstNonce(uint32 origin) external view returns (uint64) {
        return origins[origin].firstNonce;
    }

    /// @notice Deletes the ended bits of `origin` below its first nonce that has not
    /// ended, at most `maxWords` words of 256 nonces, and moves the low-water mark
    /// past them. Anyone may call it (the storage refund is theirs): it changes no
    /// outcome, since a nonce below the mark reads as ended, so the Inbox's replay
    /// record stays as large as the origin's messages not yet ended, not as all its
    /// messages (docs/protocol.md, "Delivery rules").
    /// @return mark the low-water mark after the call
    function prune(uint32 origin, uint256 maxWords) external returns (uint64 mark) {
        Origin storage o = origins[origin];
        if (o.threshold == 0) revert UnknownOrigin(origin);
        mark = o.firstNonce;
        mapping(uint256 => uint256) storage words = endedBits[origin];
        for (uint256 i = 0; i < maxWords; i++) {
            uint256 w = mark >> 8;
            // Nonces below the mark in its own word have ended without a bit.
            uint256 below = (uint256(1) << (mark & 0xff)) - 1;
            if (words[w] | below != type(uint256).max) break;
            delete words[w];
            mark = uint64((w + 1) << 8);
        }
        if (mark != o.firstNonce) {
            o.firstNonce = mark;
            emit EndedPruned(origin, mark);
        }
    }

    /// @notice The Inbox of `origin` that receipts go to (0 if none).
    function receiptEndpoint(uint32 origin) external view returns (bytes32) {
        return origins[origin].inbox;
    }

    /// @notice Retires `origin` for good: its checkpoints are refused from now on
    /// (`UnknownOrigin`) and it can never be set up again, so retiring takes trust
    /// away and never gives any (docs/protocol.md, "Threat model").
    function retireOrigin(uint32 origin) external onlyAdmin {
        Origin storage o = origins[origin];
        if (o.threshold == 0) revert UnknownOrigin(origin);
        for (uint256 i = 0; i < o.signers.length; i++) {
            delete signerSlot[origin][o.signers[i]];
        }
        for (uint256 i = 0; i < o.previousSigners.length; i++) {
            delete previousSlot[origin][o.previousSigners[i]];
        }
        delete origins[origin];
        retired[origin] = true;
        emit OriginRetired(origin);
    }

    /// @notice Replaces the signer set of `origin` with `signers`/`threshold` at
    /// `version` (the current version + 1), authorised by a quorum of the current set's
    /// `signatures` over `signerSetUpdateDigest`. The current set stays valid for
    /// `overlap` seconds, so deliveries attested by either set go on during a rotation.
    function updateSigners(
        uint32 origin,
        address[] calldata signers,
        uint8 threshold,
        uint64 version,
        uint64 overlap,
        bytes[] calldata signatures
    ) external {
        Origin storage o = origins[origin];
        if (o.threshold == 0) revert UnknownOrigin(origin);
        if (version != o.version + 1) revert WrongVersion(o.version + 1, version);
        if (overlap > MAX_OVERLAP) revert OverlapTooLong(overlap);
        bytes32 digest = signerSetUpdateDigest(origin, signers, threshold, version, overlap);
        uint256 have = _count(origin, digest, signatures, false);
        if (have < o.threshold) revert QuorumNotReached(have, o.threshold);
        // The current set becomes the previous one.
        for (uint256 i = 0; i < o.previousSigners.length; i++) {
            delete previousSlot[origin][o.previousSigners[i]];
        }
        for (uint256 i = 0; i < o.signers.length; i++) {
            previousSlot[origin][o.signers[i]] = i + 1;
        }
        o.previousSigners = o.signers;
        o.previousThreshold = o.threshold;
        uint64 until = uint64(block.timestamp) + overlap;
        o.previousUntil = until;
        _install(origin, signers, threshold);
        o.version = version;
        emit SignersUpdated(origin, version, signers, threshold, until);
    }

    /// @notice The digest the current signers sign to authorise an update: it binds
    /// the chain, this Inbox, the origin, the new set, its version and the overlap.
    function signerSetUpdateDigest(
        uint32 origin,
        address[] calldata signers,
        uint8 threshold,
        uint64 version,
        uint64 overlap
    ) public view returns (bytes32) {
        return keccak256(
            abi.encodePacked(
                SIGNER_SET_UPDATE_TAG,
                block.chainid,
                address(this),
                origin,
                keccak256(abi.encodePacked(signers)),
                threshold,
                version,
                overlap
            )
        );
    }

    /// @notice Pauses the route from `origin` at once, with one current signer's
    /// `signature` over `routeControlDigest(origin, false, epoch)`: from now on every
    /// submission of the origin's checkpoints reverts with `RouteIsPaused`, so nothing
    /// of the route is executed or consumed until a quorum resumes it. Anyone may
    /// submit the signature; the signer is the member who paused.
    function pause(uint32 origin, bytes calldata signature) external {
        Origin storage o = origins[origin];
        if (o.threshold == 0) revert UnknownOrigin(origin);
        if (o.paused) revert RouteIsPaused(origin);
        uint64 epoch = o.epoch;
        address signer = CheckpointLib.recover(routeControlDigest(origin, false, epoch), signature);
        if (signer == address(0) || signerSlot[origin][signer] == 0) revert NotASigner(signer);
        o.paused = true;
        emit RoutePaused(origin, signer, epoch);
    }

    /// @notice Resumes the paused route from `origin` with a quorum of the current
    /// set's `signatures` over `routeControlDigest(origin, true, epoch)`, and moves the
    /// epoch on: the signatures of this pause and this resume are spent.
    function resume(uint32 origin, bytes[] calldata signatures) external {
        Origin storage o = origins[origin];
        if (o.threshold == 0) revert UnknownOrigin(origin);
        if (!o.paused) revert RouteNotPaused(origin);
        uint64 epoch = o.epoch;
        uint256 have = _count(origin, routeControlDigest(origin, true, epoch), signatures, false);
        if (have < o.threshold) revert QuorumNotReached(have, o.threshold);
        o.paused = false;
        o.epoch = epoch + 1;
        emit RouteResumed(origin, epoch + 1);
    }

    /// @notice The digest members sign to pause (`resume_` false) or resume the route
    /// from `origin` in `epoch`: it binds the chain, this Inbox, the origin and the
    /// epoch.
    function routeControlDigest(uint32 origin, bool resume_, uint64 epoch) public view returns (bytes32) {
        return keccak256(
            abi.encodePacked(
                resume_ ? ROUTE_RESUME_TAG : ROUTE_PAUSE_TAG, block.chainid, address(this), origin, epoch
            )
        );
    }

    /// @notice Releases the hold of message `id` from `origin` with a quorum of the
    /// current set's `signatures` over `holdDecisionDigest(origin, id, true)`: its next
    /// submission executes it (`IHoldingRecipient.handleReleased`). A decided hold
    /// takes no further decision, so an approval can never be used twice.
    function releaseHold(uint32 origin, bytes32 id, bytes[] calldata signatures) external {
        uint256 have = _decide(origin, id, true, signatures);
        emit HoldReleased(id, origin, have);
    }

    /// @notice Rejects the hold of message `id` from `origin` with a quorum of the
    /// current set's `signatures` over `holdDecisionDigest(origin, id, false)`: its next
    /// submission ends it refused (`HOLD_REJECTED_CODE`), and its receipt returns it.
    function rejectHold(uint32 origin, bytes32 id, bytes[] calldata signatures) external {
        uint256 have = _decide(origin, id, false, signatures);
        emit HoldRejected(id, origin, have);
    }

    /// @dev Moves a hold that is still waiting to released or rejected, with a quorum.
    function _decide(uint32 origin, bytes32 id, bool release, bytes[] calldata signatures)
        internal
        returns (uint256 have)
    {
        Hold storage h = holds[id];
        if (h.state != HOLD_HELD || h.origin != origin) revert NotHeld(id);
        if (block.timestamp > h.since + HOLD_PERIOD) revert HoldExpired(id);
        uint256 threshold = origins[origin].threshold;
        if (threshold == 0) revert UnknownOrigin(origin);
        have = _count(origin, holdDecisionDigest(origin, id, release), signatures, false);
        if (have < threshold) revert QuorumNotReached(have, threshold);
        h.state = release ? HOLD_RELEASED : HOLD_REJECTED;
    }

    /// @notice The digest members sign to release (`release` true) or reject the hold
    /// of message `id` from `origin`: it binds the chain, this Inbox, the origin and
    /// the message id.
    function holdDecisionDigest(uint32 origin, bytes32 id, bool release) public view returns (bytes32) {
        return keccak256(
            abi.encodePacked(release ? HOLD_RELEASE_TAG : HOLD_REJECT_TAG, block.chainid, address(this), origin, id)
        );
    }

    /// @notice The messages of `origin` held and not ended yet.
    function heldCount(uint32 origin) external view returns (uint32) {
        return origins[origin].held;
    }

    /// @notice Whether the route from `origin` is paused, and its epoch.
    function routeState(uint32 origin) external view returns (bool paused, uint64 epoch) {
        Origin storage o = origins[origin];
        return (o.paused, o.epoch);
    }

    /// @notice The version of `origin`'s signer set and until when the previous set is
    /// accepted (0 if never updated).
    function signerSetVersion(uint32 origin) external view returns (uint64 version, uint64 previousUntil) {
        Origin storage o = origins[origin];
        return (o.version, o.previousUntil);
    }

    /// @notice Every signer set `origin`'s checkpoints are accepted with: the current
    /// set at `version`, and the set it replaced, accepted until `previousUntil` (a
    /// timestamp; empty and 0 before the first update). Relayers follow these.
    function signerSets(uint32 origin)
        external
        view
        returns (
            uint64 version,
            address[] memory signers,
            uint8 threshold,
            address[] memory previousSigners,
            uint8 previousThreshold,
            uint64 previousUntil
        )
    {
        Origin storage o = origins[origin];
        return (o.version, o.signers, o.threshold, o.previousSigners, o.previousThreshold, o.previousUntil);
    }

    /// @dev Replaces the current signer list of `origin`.
    function _install(uint32 origin, address[] calldata signers, uint8 threshold) internal {
        if (threshold == 0 || threshold > signers.length || signers.length > 255) revert BadSignerSet();
        Origin storage o = origins[origin];
        for (uint256 i = 0; i < o.signers.length; i++) {
            delete signerSlot[origin][o.signers[i]];
        }
        for (uint256 i = 0; i < signers.length; i++) {
            address s = signers[i];
            if (s == address(0) || signerSlot[origin][s] != 0) revert BadSignerSet();
            signerSlot[origin][s] = i + 1;
        }
        o.threshold = threshold;
        o.signers = signers;
    }

    /// @notice The configuration for `origin`.
    function originConfig(uint32 origin)
        external
        view
        returns (bytes32 outbox, address[] memory signers, uint8 threshold)
    {
        Origin storage o = origins[origin];
        return (o.outbox, o.signers, o.threshold);
    }

    /// @notice Ends one message; reverts on any refusal of the submission (including a
    /// message that ended before). Returns true if it was delivered; false if it ended
    /// refused or expired, or if its recipient reverted (it stays deliverable).
    function process(
        CheckpointLib.Checkpoint calldata cp,
        bytes[] calldata signatures,
        bytes calldata message,
        bytes32[32] calldata branch
    ) external returns (bool) {
        _verifyQuorum(cp, signatures);
        Receipts memory r = _receipts(cp.origin, 1);
        uint8 outcome = _deliver(cp, message, branch, r);
        if (outcome == REPLAY) revert AlreadyDelivered(keccak256(message));
        _sendReceipts(r);
        return outcome == DELIVERED || outcome == RECEIPTS;
    }

    /// @notice Ends many messages under one checkpoint, verifying the quorum once.
    /// Messages that ended before are skipped with `MessageSkipped` (another member
    /// may have submitted first); structural faults revert the whole batch.
    /// @return deliveredCount the messages delivered (receipt batches included)
    function processBatch(
        CheckpointLib.Checkpoint calldata cp,
        bytes[] calldata signatures,
        bytes[] calldata messages,
        bytes32[32][] calldata branches
    ) external returns (uint256 deliveredCount) {
        if (messages.length != branches.length) revert LengthMismatch();
        _verifyQuorum(cp, signatures);
        Receipts memory r = _receipts(cp.origin, messages.length);
        for (uint256 i = 0; i < messages.length; i++) {
            uint8 outcome = _deliver(cp, messages[i], branches[i], r);
            if (outcome == REPLAY) {
                emit MessageSkipped(keccak256(messages[i]), SkipReason.AlreadyDelivered);
            } else if (outcome == DELIVERED || outcome == RECEIPTS) {
                deliveredCount++;
            }
        }
        _sendReceipts(r);
    }

    /// @notice Repeats the `onReceipt` call of a taken receipt whose sender reverted,
    /// with all the gas the caller gives. Reverts if it reverts again.
    function retryReceipt(bytes32 id, uint32 destination, uint8 outcome, bytes32 result) external {
        bytes32 pending = pendingReceipts[id];
        if (pending == 0 || pending != keccak256(abi.encode(destination, outcome, result))) {
            revert NoPendingReceipt(id);
        }
        delete pendingReceipts[id];
        (address sender,,) = localOutbox.sentBy(id);
        bytes memory data = abi.encodeCall(IReceiptRecipient.onReceipt, (id, destination, outcome, result));
        (bool ok, bytes memory reason,) = _call(sender, gasleft(), data);
        if (!ok) revert ReceiptHandlerStillFailing(id, reason);
        emit ReceiptHandled(id);
    }

    /// @notice Whether the message at `nonce` of `origin`'s outbox ended here
    /// (delivered, refused or expired).
    function ended(uint32 origin, uint64 nonce) public view returns (bool) {
        return nonce < origins[origin].firstNonce || _endedBit(origin, nonce);
    }

    /// @dev The ended bit of (`origin`, `nonce`).
    function _endedBit(uint32 origin, uint64 nonce) internal view returns (bool) {
        return endedBits[origin][nonce >> 8] & (uint256(1) << (nonce & 0xff)) != 0;
    }

    /// @notice Whether the receipt of the message at `nonce` of this ledger's Outbox
    /// was taken.
    function receiptTaken(uint64 nonce) public view returns (bool) {
        return receiptBits[nonce >> 8] & (uint256(1) << (nonce & 0xff)) != 0;
    }

    /// @dev Sets or clears the ended bit of (`origin`, `nonce`).
    function _mark(uint32 origin, uint64 nonce, bool on) internal {
        uint256 bit = uint256(1) << (nonce & 0xff);
        mapping(uint256 => uint256) storage words = endedBits[origin];
        uint256 word = words[nonce >> 8];
        words[nonce >> 8] = on ? word | bit : word & ~bit;
    }

    /// @dev An empty receipt collection for up to `n` messages of `origin`; none if the
    /// origin takes no receipts.
    function _receipts(uint32 origin, uint256 n) internal view returns (Receipts memory r) {
        r.origin = origin;
        r.to = origins[origin].inbox;
        r.firstNonce = origins[origin].firstNonce;
        r.held = origins[origin].held;
        if (r.to != 0) r.buf = new bytes((n < MAX_RECEIPTS ? n : MAX_RECEIPTS) * RECEIPT_LEN);
    }

    /// @dev Adds one receipt; sends the collection when it is full.
    function _addReceipt(Receipts memory r, bytes32 id, uint64 nonce, uint8 outcome, bytes32 result) internal {
        if (r.to == 0) return;
        bytes memory buf = r.buf;
        uint256 offset = r.n * RECEIPT_LEN;
        // id | nonce (8 bytes) | outcome (1 byte) | result, in place: each store is
        // inside the buffer, and a later field overwrites the zero tail of an earlier.
        assembly ("memory-safe") {
            let p := add(add(buf, 0x20), offset)
            mstore(p, id)
            mstore(add(p, 32), shl(192, nonce))
            mstore8(add(p, 40), outcome)
            mstore(add(p, 41), result)
        }
        r.n++;
        if (r.n * RECEIPT_LEN == buf.length) _sendReceipts(r);
    }

    /// @dev Sends the collected receipts, if any, as one message to the origin's Inbox.
    function _sendReceipts(Receipts memory r) internal {
        if (r.n == 0) return;
        bytes memory buf = r.buf;
        uint256 capacity = buf.length;
        uint256 size = r.n * RECEIPT_LEN;
        assembly ("memory-safe") {
            mstore(buf, size)
        }
        bytes32 message = localOutbox.dispatch(r.origin, r.to, 0, buf);
        assembly ("memory-safe") {
            mstore(buf, capacity)
        }
        emit ReceiptsSent(r.origin, message, r.n);
        r.n = 0;
    }

    /// @notice The checkpoint digest members sign (for off-chain cross-checks).
    function checkpointDigest(CheckpointLib.Checkpoint calldata cp) external view returns (bytes32) {
        return CheckpointLib.digest(cp, network);
    }

    /// @dev A checkpoint needs a quorum of the current set, or, during the overlap
    /// after an update, of the previous set (never a mix of both).
    function _verifyQuorum(CheckpointLib.Checkpoint calldata cp, bytes[] calldata signatures) internal view {
        Origin storage o = origins[cp.origin];
        uint256 threshold = o.threshold;
        if (threshold == 0) revert UnknownOrigin(cp.origin);
        if (o.paused) revert RouteIsPaused(cp.origin);
        if (cp.outbox != o.outbox) revert OutboxMismatch(o.outbox, cp.outbox);
        bytes32 digest = CheckpointLib.digest(cp, network);
        uint256 have = _count(cp.origin, digest, signatures, false);
        if (have >= threshold) return;
        if (block.timestamp <= o.previousUntil && _count(cp.origin, digest, signatures, true) >= o.previousThreshold) {
            return;
        }
        revert QuorumNotReached(have, threshold);
    }

    /// @dev Distinct members of the current (or previous) set of `origin` among the
    /// valid signatures of `digest`; duplicates count once.
    function _count(uint32 origin, bytes32 digest, bytes[] calldata signatures, bool previous)
        internal
        view
        returns (uint256 have)
    {
        Origin storage o = origins[origin];
        uint256 threshold = previous ? o.previousThreshold : o.threshold;
        mapping(address => uint256) storage slots = previous ? previousSlot[origin] : signerSlot[origin];
        uint256 seen; // bitmap of counted signer indices
        for (uint256 i = 0; i < signatures.length && have < threshold; i++) {
            address signer = CheckpointLib.recover(digest, signatures[i]);
            if (signer == address(0)) continue;
            uint256 slot = slots[signer];
            if (slot == 0) continue; // not in this set
            uint256 bit = 1 << (slot - 1);
            if (seen & bit != 0) continue;
            seen |= bit;
            have++;
        }
    }

    /// @dev Checks one message against a verified checkpoint and ends it if it can:
    /// expired, or handed over. Adds its receipt to `r`. Returns how it ended.
    function _deliver(
        CheckpointLib.Checkpoint calldata cp,
        bytes calldata message,
        bytes32[32] calldata branch,
        Receipts memory r
    ) internal returns (uint8 outcome) {
        bytes32 id = _checkInclusion(cp, message, branch);
        uint64 nonce = message.nonce();
        if (nonce < r.firstNonce || _endedBit(cp.origin, nonce)) return REPLAY;
        bytes32 result;
        uint64 deadline = message.deadline();
        // No hold is read while the origin has none (the count is in `r`).
        uint8 hold = r.held == 0 ? 0 : holds[id].state;
        if (deadline != 0 && block.timestamp > deadline) {
            _mark(cp.origin, nonce, true);
            emit MessageExpired(id, cp.origin, nonce);
            outcome = EXPIRED;
        } else if (hold == 0 || hold == HOLD_RELEASED) {
            (outcome, result) = _handOver(id, message, hold == HOLD_RELEASED, r);
        } else {
            Hold storage h = holds[id];
            bytes32 code = hold == HOLD_REJECTED ? HOLD_REJECTED_CODE : HOLD_EXPIRED;
            if (hold == HOLD_HELD && block.timestamp <= h.since + HOLD_PERIOD) {
                // Still waiting for a decision: not executed, still deliverable.
                emit MessageHeld(id, cp.origin, nonce, h.reason);
                return KEPT;
            }
            _mark(cp.origin, nonce, true);
            (outcome, result) = _refuse(id, cp.origin, nonce, code);
        }
        if (outcome == DELIVERED || outcome == REFUSED || outcome == EXPIRED) {
            if (hold != 0) {
                delete holds[id];
                origins[cp.origin].held -= 1;
                r.held -= 1;
            }
            _addReceipt(r, id, nonce, outcome, result);
        }
    }

    /// @dev Reverts unless `message` is well formed, from `cp.origin`, for this ledger,
    /// and included under `cp.root` at its nonce. Returns the message id.
    function _checkInclusion(CheckpointLib.Checkpoint calldata cp, bytes calldata message, bytes32[32] calldata branch)
        internal
        view
        returns (bytes32 id)
    {
        message.validate();
        id = keccak256(message);
        uint32 origin = message.origin();
        if (origin != cp.origin) revert WrongOrigin(id, origin);
        uint32 destination = message.destination();
        if (destination != localDomain) revert WrongDestination(id, destination);
        uint64 nonce = message.nonce();
        if (nonce >= cp.count || MerkleLib.branchRoot(id, branch, nonce) != cp.root) revert InvalidBranch(id);
    }

    /// @dev Ends the message with its recipient: delivered if it accepts, refused if it
    /// refuses for good (or is not a contract), kept deliverable if it reverts
    /// otherwise. A message to this Inbox is a receipt batch (or refused).
    /// A message released from its hold goes to `handleReleased`; a recipient that holds
    /// it (`Held`) gets its hold recorded, and the message stays deliverable.
    function _handOver(bytes32 id, bytes calldata message, bool released, Receipts memory r)
        internal
        returns (uint8, bytes32)
    {
        uint32 origin = message.origin();
        uint64 nonce = message.nonce();
        address recipient;
        {
            bytes32 recipient32 = message.recipient();
            recipient = address(uint160(uint256(recipient32)));
            // Marked before the call so that a re-entrant delivery of the same id is a replay.
            _mark(origin, nonce, true);
            if (uint256(recipient32) >> 160 != 0 || recipient.code.length == 0) {
                return _refuse(id, origin, nonce, NO_RECIPIENT);
            }
        }
        if (recipient == address(this)) return _takeReceipts(id, origin, nonce, message.sender(), message.body());
        (bool accepted, bytes memory reason, bytes32 result) = _callRecipient(id, recipient, message, released);
        if (accepted) {
            emit MessageDelivered(id, origin, nonce);
            return (DELIVERED, result);
        }
        bytes4 selector = reason.length == 36 ? bytes4(reason) : bytes4(0);
        bytes32 word;
        assembly ("memory-safe") {
            word := mload(add(reason, 36))
        }
        if (selector == IMessageRecipient.Refused.selector) return _refuse(id, origin, nonce, word);
        _mark(origin, nonce, false);
        if (!released && selector == IMessageRecipient.Held.selector) {
            _hold(id, origin, word, r);
            emit MessageHeld(id, origin, nonce, word);
        } else {
            emit MessageHandlerFailed(id, origin, nonce, reason);
        }
        return (KEPT, 0);
    }

    /// @dev Calls the recipient's `handle` (`handleReleased` for a released message)
    /// with at most `handlerGasLimit`.
    function _callRecipient(bytes32 id, address recipient, bytes calldata message, bool released)
        internal
        returns (bool accepted, bytes memory reason, bytes32 result)
    {
        uint32 origin = message.origin();
        bytes memory data = released
            ? abi.encodeCall(IHoldingRecipient.handleReleased, (origin, message.sender(), message.body()))
            : abi.encodeCall(IMessageRecipient.handle, (origin, message.sender(), message.body()));
        uint256 gasBefore = gasleft();
        (accepted, reason, result) = _call(recipient, handlerGasLimit, data);
        // The call got `handlerGasLimit`, or all but 1/64 of `gasBefore` (less the
        // call's own cost) if that was less. In the second case, and only then, a
        // recipient that used up what it got leaves no more than that 1/64: the
        // submitter withheld gas, so the transaction must not stand. A recipient that
        // had its whole limit leaves more than 1/64 behind whatever it did.
        if (!accepted && gasleft() <= gasBefore / 64) revert HandlerOutOfGas(id);
    }

    /// @dev Records a new hold of `id` (a message repeated in one batch is held once).
    function _hold(bytes32 id, uint32 origin, bytes32 why, Receipts memory r) internal {
        Hold storage h = holds[id];
        if (h.state != 0) return;
        h.state = HOLD_HELD;
        h.origin = origin;
        h.since = uint64(block.timestamp);
        h.reason = why;
        origins[origin].held += 1;
        r.held += 1;
    }

    function _refuse(bytes32 id, uint32 origin, uint64 nonce, bytes32 code) internal returns (uint8, bytes32) {
        emit MessageRefused(id, origin, nonce, code);
        return (REFUSED, code);
    }

    /// @dev A message to this Inbox: from the origin's Inbox it is a receipt batch,
    /// delivered here and ending without a receipt of its own; from anyone else it is
    /// refused.
    function _takeReceipts(bytes32 id, uint32 origin, uint64 nonce, bytes32 sender, bytes calldata body)
        internal
        returns (uint8, bytes32)
    {
        bytes32 from = origins[origin].inbox;
        if (from == 0 || sender != from) return _refuse(id, origin, nonce, NOT_RECEIPTS);
        if (body.length == 0 || body.length % RECEIPT_LEN != 0 || body.length > MAX_RECEIPTS * RECEIPT_LEN) {
            // The origin's Inbox never sends one; ended, and no receipt goes back.
            emit MessageRefused(id, origin, nonce, MALFORMED_RECEIPTS);
            return (NOT_A_BATCH, 0);
        }
        emit MessageDelivered(id, origin, nonce);
        for (uint256 k = 0; k < body.length; k += RECEIPT_LEN) {
            _takeReceipt(origin, body[k:k + RECEIPT_LEN]);
        }
        return (RECEIPTS, 0);
    }

    /// @dev Takes one receipt from `destination` if it is the first for a message this
    /// ledger's Outbox sent there, and hands it to the sender.
    function _takeReceipt(uint32 destination, bytes calldata receipt) internal {
        bytes32 id = bytes32(receipt[0:32]);
        uint64 nonce = uint64(bytes8(receipt[32:40]));
        uint8 outcome = uint8(receipt[40]);
        bytes32 result = bytes32(receipt[41:73]);
        (address sender, uint32 sentTo, uint64 sentNonce) = localOutbox.sentBy(id);
        if (sender == address(0) || sentTo != destination || sentNonce != nonce || outcome == 0 || outcome > EXPIRED) {
            emit ReceiptRefused(id, destination, UNKNOWN_MESSAGE);
            return;
        }
        uint256 bit = uint256(1) << (nonce & 0xff);
        uint256 word = receiptBits[nonce >> 8];
        if (word & bit != 0) {
            emit ReceiptRefused(id, destination, DUPLICATE_RECEIPT);
            return;
        }
        receiptBits[nonce >> 8] = word | bit;
        emit ReceiptTaken(id, destination, outcome, result);
        if (sender.code.length != 0) _handReceipt(id, sender, destination, outcome, result);
    }

    /// @dev Calls the sender's `onReceipt` with at most `RECEIPT_GAS_LIMIT`; keeps the
    /// receipt for `retryReceipt` if it reverts.
    function _handReceipt(bytes32 id, address sender, uint32 destination, uint8 outcome, bytes32 result)
        internal
    {
        bytes memory data = abi.encodeCall(IReceiptRecipient.onReceipt, (id, destination, outcome, result));
        uint256 gasBefore = gasleft();
        (bool ok, bytes memory reason,) = _call(sender, RECEIPT_GAS_LIMIT, data);
        if (ok) return;
        // As for a handler: a sender that ran out while it had less than its limit was
        // starved by the submitter.
        if (gasleft() <= gasBefore / 64) revert HandlerOutOfGas(id);
        pendingReceipts[id] = keccak256(abi.encode(destination, outcome, result));
        emit ReceiptHandlerFailed(id, reason);
    }

    /// @dev Calls `target` with at most `gasLimit` (EVM's CALL gives the least of that
    /// and all but 1/64 of the gas left), keeps the first 32 bytes it returns, and
    /// copies at most `MAX_REASON_BYTES` of its revert data (a Solidity call or try/catch would copy all of it, whatever its
    /// size, at the Inbox's expense).
    function _call(address target, uint256 gasLimit, bytes memory data)
        internal
        returns (bool ok, bytes memory reason, bytes32 result)
    {
        uint256 size;
        assembly ("memory-safe") {
            ok := call(gasLimit, target, 0, add(data, 0x20), mload(data), 0, 0)
            size := returndatasize()
        }
        if (ok) {
            // The first 32 bytes returned, zero-padded: the result of a receipt.
            if (size > 32) size = 32;
            assembly ("memory-safe") {
                mstore(0, 0)
                returndatacopy(0, 0, size)
                result := mload(0)
            }
            return (true, reason, result);
        }
        if (size > MAX_REASON_BYTES) size = MAX_REASON_BYTES;
        reason = new bytes(size);
        assembly ("memory-safe") {
            returndatacopy(add(reason, 0x20), 0, size)
        }
    }
}
