// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";

/// @title The market's settlement token: an ERC-20 with six decimals (one token = one euro).
interface ISettlementToken is IERC20 {
    /// @notice Mints `amount` base units to `to`. Only the minter role (the admin on a devnet).
    function mint(address to, uint256 amount) external;
}
