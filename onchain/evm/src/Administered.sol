// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.37;

/// @title An admin role that moves in two steps and never to the zero address.
/// @notice `setAdmin(next)` only proposes; the role moves when `next` calls
/// `acceptAdmin()`, so a mistyped address can neither take the role nor strand it.
/// A new proposal replaces a pending one.
abstract contract Administered {
    /// @notice The account allowed to administer the contract.
    address public admin;
    /// @notice The account the admin role is being handed to (zero when none).
    address public pendingAdmin;

    event AdminChanged(address indexed previous, address indexed next);
    event AdminProposed(address indexed current, address indexed proposed);

    error NotAdmin();
    error NotPendingAdmin();
    error ZeroAddress();

    constructor(address admin_) {
        if (admin_ == address(0)) revert ZeroAddress();
        admin = admin_;
        emit AdminChanged(address(0), admin_);
    }

    modifier onlyAdmin() {
        if (msg.sender != admin) revert NotAdmin();
        _;
    }

    /// @notice Proposes `next` as admin.
    function setAdmin(address next) external onlyAdmin {
        if (next == address(0)) revert ZeroAddress();
        pendingAdmin = next;
        emit AdminProposed(admin, next);
    }

    /// @notice The proposed admin takes the role.
    function acceptAdmin() external {
        if (msg.sender != pendingAdmin) revert NotPendingAdmin();
        emit AdminChanged(admin, msg.sender);
        admin = msg.sender;
        pendingAdmin = address(0);
    }
}
