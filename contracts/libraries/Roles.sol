// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// @title Roles
/// @notice GridLedger's access-control role identifiers, defined once. A contract exposes the
/// roles it checks as `bytes32 public constant X_ROLE = Roles.X_ROLE`, so that a deployment reads
/// each id from the contract it grants on, and no contract carries a role it never checks.
library Roles {
    /// @notice The facilitator: registers participants, relays orders, commits clearings,
    /// awards flexibility offers and activates them when it coordinates the two markets.
    bytes32 internal constant FACILITATOR_ROLE = keccak256("FACILITATOR_ROLE");
    /// @notice The meter operator: posts meter readings and flexibility measurements.
    bytes32 internal constant METER_ROLE = keccak256("METER_ROLE");
    /// @notice The distribution system operator: posts flexibility requests and activates awards.
    bytes32 internal constant DSO_ROLE = keccak256("DSO_ROLE");
    /// @notice Mints the settlement token (the admin on a devnet).
    bytes32 internal constant MINTER_ROLE = keccak256("MINTER_ROLE");
}
