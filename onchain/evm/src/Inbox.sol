// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.37;

import {Administered} from "./Administered.sol";
import {CheckpointLib} from "./CheckpointLib.sol";
import {IMessageRecipient} from "./IMessageRecipient.sol";
import {IsthmusMessage} from "./IsthmusMessage.sol";
import {MerkleLib} from "./MerkleLib.sol";

/// @title Isthmus inbox: delivers messages attested by a consortium quorum.
/// @notice Per origin ledger it holds the outbox, the signer set and the threshold.
/// A message is accepted with >= threshold distinct valid attestations of a checkpoint
/// and its id's Merkle branch under that checkpoint's root (docs/protocol.md).
///
/// Recipient failures: the id is marked delivered before the recipient is called
/// (so a re-entrant call cannot deliver it twice); if the recipient reverts, the mark
/// is cleared, `MessageHandlerFailed` is emitted and the message stays deliverable.
/// A message is therefore never lost and never handled twice: it is delivered
/// exactly once, when its recipient first accepts it.
///
/// Handler gas: the recipient gets at most `handlerGasLimit`, fixed at deployment.
/// A recipient that fails with that much was refused by itself: `MessageHandlerFailed`,
/// whatever it did with the gas, so a recipient that burns gas costs a delivery at
/// most the limit. A recipient that runs out of gas while the transaction had less
/// than the limit left for it (EIP-150 keeps 1/64 back) was starved by the
/// submitter, which is not the recipient's refusal: the whole transaction reverts
/// with `HandlerOutOfGas`, nothing is marked or emitted, and the message stays
/// deliverable for a submission with more gas (docs/protocol.md).
contract Inbox is Administered {
    using IsthmusMessage for bytes;

    /// @notice Why a batch entry was skipped rather than delivered. Persisted in events.
    enum SkipReason {
        None,
        AlreadyDelivered,
        Expired
    }

    struct Origin {
        bytes32 outbox;
        uint8 threshold;
        address[] signers;
        /// @dev Version of the signer set: 0 as set up, +1 per update.
        uint64 version;
        /// @dev The set before the last update, accepted until `previousUntil`.
        uint8 previousThreshold;
        uint64 previousUntil;
        address[] previousSigners;
    }

    /// @notice Ledger id of this ledger.
    uint32 public immutable localDomain;
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
    /// delivered messages (replay protection). Under an origin's one outbox a nonce
    /// names one message (its Merkle index, checked against the attested root), so a
    /// bit stands for the id: 256 deliveries share a storage slot, the consecutive
    /// nonces of a batch write one slot, and one read answers for 256 messages
    /// (docs/protocol.md, "Delivery rules").
    mapping(uint32 => mapping(uint256 => uint256)) public deliveredBits;

    /// @notice Domain tag of a signer-set update digest (docs/protocol.md).
    bytes32 public constant SIGNER_SET_UPDATE_TAG = keccak256("isthmus signer set update v1");
    /// @notice Longest overlap an update may give the set it replaces.
    uint64 public constant MAX_OVERLAP = 30 days;

    event OriginConfigured(uint32 indexed origin, bytes32 outbox, address[] signers, uint8 threshold);
    /// @notice The signer set of `origin` is now `signers`/`threshold` at `version`; the
    /// set it replaces stays valid until `previousUntil` (a timestamp).
    event SignersUpdated(
        uint32 indexed origin, uint64 version, address[] signers, uint8 threshold, uint64 previousUntil
    );
    /// @notice `origin` was retired: its checkpoints are refused for good.
    event OriginRetired(uint32 indexed origin);
    event MessageDelivered(bytes32 indexed id, uint32 indexed origin, uint64 nonce);
    event MessageHandlerFailed(bytes32 indexed id, uint32 indexed origin, uint64 nonce, bytes reason);
    event MessageSkipped(bytes32 indexed id, SkipReason reason);

    error BadSignerSet();
    error UnknownOrigin(uint32 origin);
    error OutboxMismatch(bytes32 expected, bytes32 got);
    error QuorumNotReached(uint256 have, uint256 need);
    error WrongOrigin(bytes32 id, uint32 origin);
    error WrongDestination(bytes32 id, uint32 destination);
    error InvalidBranch(bytes32 id);
    error AlreadyDelivered(bytes32 id);
    error Expired(bytes32 id, uint64 deadline);
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

    /// @param admin_ Sets up each origin once and hands over the admin role (two steps);
    /// later signer-set changes need a quorum of the current set (`updateSigners`).
    /// @param handlerGasLimit_ The most gas each recipient's `handle` is given.
    constructor(uint32 localDomain_, address admin_, uint256 handlerGasLimit_) Administered(admin_) {
        if (handlerGasLimit_ < MIN_HANDLER_GAS) revert HandlerGasLimitTooLow(handlerGasLimit_, MIN_HANDLER_GAS);
        localDomain = localDomain_;
        handlerGasLimit = handlerGasLimit_;
    }

    /// @notice Sets up `origin` once: the outbox, signers and threshold trusted for it.
    /// @dev Signers must be distinct and non-zero; 1 <= threshold <= signers (at most 255).
    function setOrigin(uint32 origin, bytes32 outbox, address[] calldata signers, uint8 threshold)
        external
        onlyAdmin
    {
        if (origin == localDomain) revert BadSignerSet();
        Origin storage o = origins[origin];
        if (o.threshold != 0 || retired[origin]) revert OriginExists(origin);
        _install(origin, signers, threshold);
        o.outbox = outbox;
        emit OriginConfigured(origin, outbox, signers, threshold);
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

    /// @notice Delivers one message; reverts on any refusal (including a replay or an
    /// expired deadline). Returns false if the recipient reverted (the message stays
    /// deliverable).
    function process(
        CheckpointLib.Checkpoint calldata cp,
        bytes[] calldata signatures,
        bytes calldata message,
        bytes32[32] calldata branch
    ) external returns (bool) {
        _verifyQuorum(cp, signatures);
        (bool ok, SkipReason skip) = _deliver(cp, message, branch);
        bytes32 id = keccak256(message);
        if (skip == SkipReason.AlreadyDelivered) revert AlreadyDelivered(id);
        if (skip == SkipReason.Expired) revert Expired(id, message.deadline());
        return ok;
    }

    /// @notice Delivers many messages under one checkpoint, verifying the quorum once.
    /// Already delivered and expired messages are skipped with `MessageSkipped` (another
    /// member may have delivered first); structural faults revert the whole batch.
    function processBatch(
        CheckpointLib.Checkpoint calldata cp,
        bytes[] calldata signatures,
        bytes[] calldata messages,
        bytes32[32][] calldata branches
    ) external returns (uint256 deliveredCount) {
        if (messages.length != branches.length) revert LengthMismatch();
        _verifyQuorum(cp, signatures);
        for (uint256 i = 0; i < messages.length; i++) {
            (bool ok, SkipReason skip) = _deliver(cp, messages[i], branches[i]);
            if (skip != SkipReason.None) {
                emit MessageSkipped(keccak256(messages[i]), skip);
            } else if (ok) {
                deliveredCount++;
            }
        }
    }

    /// @notice Whether the message at `nonce` of `origin`'s outbox was delivered.
    function delivered(uint32 origin, uint64 nonce) public view returns (bool) {
        return deliveredBits[origin][nonce >> 8] & (uint256(1) << (nonce & 0xff)) != 0;
    }

    /// @dev Sets or clears the delivered bit of (`origin`, `nonce`).
    function _mark(uint32 origin, uint64 nonce, bool on) internal {
        uint256 bit = uint256(1) << (nonce & 0xff);
        mapping(uint256 => uint256) storage words = deliveredBits[origin];
        uint256 word = words[nonce >> 8];
        words[nonce >> 8] = on ? word | bit : word & ~bit;
    }

    /// @notice The checkpoint digest members sign (for off-chain cross-checks).
    function checkpointDigest(CheckpointLib.Checkpoint calldata cp) external pure returns (bytes32) {
        return CheckpointLib.digest(cp);
    }

    /// @dev A checkpoint needs a quorum of the current set, or, during the overlap
    /// after an update, of the previous set (never a mix of both).
    function _verifyQuorum(CheckpointLib.Checkpoint calldata cp, bytes[] calldata signatures) internal view {
        Origin storage o = origins[cp.origin];
        uint256 threshold = o.threshold;
        if (threshold == 0) revert UnknownOrigin(cp.origin);
        if (cp.outbox != o.outbox) revert OutboxMismatch(o.outbox, cp.outbox);
        bytes32 digest = CheckpointLib.digest(cp);
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

    /// @dev Checks one message against a verified checkpoint and hands it over.
    function _deliver(CheckpointLib.Checkpoint calldata cp, bytes calldata message, bytes32[32] calldata branch)
        internal
        returns (bool ok, SkipReason skip)
    {
        bytes32 id = _checkInclusion(cp, message, branch);
        if (delivered(cp.origin, message.nonce())) return (false, SkipReason.AlreadyDelivered);
        uint64 deadline = message.deadline();
        if (deadline != 0 && block.timestamp > deadline) return (false, SkipReason.Expired);
        return (_handOver(id, message), SkipReason.None);
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

    /// @dev Calls the recipient; marks the id delivered only if it accepts.
    function _handOver(bytes32 id, bytes calldata message) internal returns (bool) {
        uint32 origin = message.origin();
        uint64 nonce = message.nonce();
        bytes32 recipient32 = message.recipient();
        address recipient = address(uint160(uint256(recipient32)));
        if (uint256(recipient32) >> 160 != 0 || recipient.code.length == 0) {
            emit MessageHandlerFailed(id, origin, nonce, bytes("recipient is not a contract on this ledger"));
            return false;
        }
        // Marked before the call so that a re-entrant delivery of the same id is a replay.
        _mark(origin, nonce, true);
        bytes memory data = abi.encodeCall(IMessageRecipient.handle, (origin, message.sender(), message.body()));
        uint256 gasBefore = gasleft();
        (bool accepted, bytes memory reason) = _call(recipient, handlerGasLimit, data);
        if (accepted) {
            emit MessageDelivered(id, origin, nonce);
            return true;
        }
        // The call got `handlerGasLimit`, or all but 1/64 of `gasBefore` (less the
        // call's own cost) if that was less. In the second case, and only then, a
        // recipient that used up what it got leaves no more than that 1/64: the
        // submitter withheld gas, so the transaction must not stand. A recipient that
        // had its whole limit leaves more than 1/64 behind whatever it did.
        if (gasleft() <= gasBefore / 64) revert HandlerOutOfGas(id);
        _mark(origin, nonce, false);
        emit MessageHandlerFailed(id, origin, nonce, reason);
        return false;
    }

    /// @dev Calls `target` with at most `gasLimit` (EVM's CALL gives the least of that
    /// and all but 1/64 of the gas left) and copies at most `MAX_REASON_BYTES` of its
    /// revert data (a Solidity call or try/catch would copy all of it, whatever its
    /// size, at the Inbox's expense).
    function _call(address target, uint256 gasLimit, bytes memory data)
        internal
        returns (bool ok, bytes memory reason)
    {
        uint256 size;
        assembly ("memory-safe") {
            ok := call(gasLimit, target, 0, add(data, 0x20), mload(data), 0, 0)
            size := returndatasize()
        }
        if (ok) return (true, reason);
        if (size > MAX_REASON_BYTES) size = MAX_REASON_BYTES;
        reason = new bytes(size);
        assembly ("memory-safe") {
            returndatacopy(add(reason, 0x20), 0, size)
        }
    }
}
