// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.37;

/// @title Isthmus protocol v1 message encoding (docs/protocol.md).
/// @notice Produces the same bytes as the `isthmus-protocol` crate; the vectors in
/// protocol/vectors/v2.json are checked against this library on a real EVM.
library IsthmusMessage {
    uint8 internal constant VERSION = 1;
    uint256 internal constant MAX_BODY_LEN = 65_536;
    uint256 internal constant HEADER_LEN = 93;

    /// @dev Offsets of the fixed fields inside an encoded message.
    uint256 private constant NONCE_OFFSET = 1;
    uint256 private constant ORIGIN_OFFSET = 9;
    uint256 private constant SENDER_OFFSET = 13;
    uint256 private constant DESTINATION_OFFSET = 45;
    uint256 private constant RECIPIENT_OFFSET = 49;
    uint256 private constant DEADLINE_OFFSET = 81;
    uint256 private constant BODY_LEN_OFFSET = 89;

    error BodyTooLong(uint256 length);
    error MalformedMessage();
    error UnknownVersion(uint8 version);

    /// @notice The canonical encoding of a v1 message.
    function encode(
        uint64 nonce_,
        uint32 origin_,
        bytes32 sender_,
        uint32 destination_,
        bytes32 recipient_,
        uint64 deadline_,
        bytes memory body_
    ) internal pure returns (bytes memory) {
        if (body_.length > MAX_BODY_LEN) revert BodyTooLong(body_.length);
        return abi.encodePacked(
            VERSION, nonce_, origin_, sender_, destination_, recipient_, deadline_, uint32(body_.length), body_
        );
    }

    /// @notice keccak256 of a canonical encoding: the message id.
    function id(bytes memory message) internal pure returns (bytes32) {
        return keccak256(message);
    }

    /// @notice Checks that `message` is exactly one canonical v1 encoding.
    function validate(bytes calldata message) internal pure {
        if (message.length < HEADER_LEN) revert MalformedMessage();
        uint8 version = uint8(message[0]);
        if (version != VERSION) revert UnknownVersion(version);
        uint256 bodyLen = uint32(bytes4(message[BODY_LEN_OFFSET:BODY_LEN_OFFSET + 4]));
        if (bodyLen > MAX_BODY_LEN) revert BodyTooLong(bodyLen);
        if (message.length != HEADER_LEN + bodyLen) revert MalformedMessage();
    }

    function nonce(bytes calldata m) internal pure returns (uint64) {
        return uint64(bytes8(m[NONCE_OFFSET:NONCE_OFFSET + 8]));
    }

    function origin(bytes calldata m) internal pure returns (uint32) {
        return uint32(bytes4(m[ORIGIN_OFFSET:ORIGIN_OFFSET + 4]));
    }

    function sender(bytes calldata m) internal pure returns (bytes32) {
        return bytes32(m[SENDER_OFFSET:SENDER_OFFSET + 32]);
    }

    function destination(bytes calldata m) internal pure returns (uint32) {
        return uint32(bytes4(m[DESTINATION_OFFSET:DESTINATION_OFFSET + 4]));
    }

    function recipient(bytes calldata m) internal pure returns (bytes32) {
        return bytes32(m[RECIPIENT_OFFSET:RECIPIENT_OFFSET + 32]);
    }

    function deadline(bytes calldata m) internal pure returns (uint64) {
        return uint64(bytes8(m[DEADLINE_OFFSET:DEADLINE_OFFSET + 8]));
    }

    function body(bytes calldata m) internal pure returns (bytes calldata) {
        return m[HEADER_LEN:];
    }

    /// @notice The EVM address in an Address32, refusing non-zero upper bytes.
    function toAddress(bytes32 a) internal pure returns (address) {
        if (uint256(a) >> 160 != 0) revert MalformedMessage();
        return address(uint160(uint256(a)));
    }

    function fromAddress(address a) internal pure returns (bytes32) {
        return bytes32(uint256(uint160(a)));
    }
}
