// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";
import {ERC20Permit} from "@openzeppelin/contracts/token/ERC20/extensions/ERC20Permit.sol";
import {ISettlementToken} from "./interfaces/ISettlementToken.sol";
import {Roles} from "./libraries/Roles.sol";

/// @title SettlementToken
/// @notice The euro-denominated token in which energy trades settle. Six decimals, so one base
/// unit is one micro-euro and a price of 0.25 EUR/kWh is 250,000 base units per kWh. EIP-2612
/// permits let a wallet without gas (or without a node of its own, on the embedded chain) approve
/// the market with a signature the facilitator relays (`EnergyMarket.depositWithPermit`).
contract SettlementToken is ERC20, ERC20Permit, AccessControl, ISettlementToken {
    /// @notice Mints tokens.
    bytes32 public constant MINTER_ROLE = Roles.MINTER_ROLE;

    constructor(address admin) ERC20("GridLedger Euro", "GLEUR") ERC20Permit("GridLedger Euro") {
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
        _grantRole(MINTER_ROLE, admin);
    }

    /// @inheritdoc ISettlementToken
    function mint(address to, uint256 amount) external onlyRole(MINTER_ROLE) {
        _mint(to, amount);
    }

    /// @notice Six decimals, as a euro stablecoin would have.
    function decimals() public pure override returns (uint8) {
        return 6;
    }
}
