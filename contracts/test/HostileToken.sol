// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";

/// @title HostileToken (test only, never deployed)
/// @notice An ERC-20 that misbehaves the two ways a settlement token can hurt a market that pays
/// out: it refuses transfers to blocked accounts (as a token with a blocklist or a paused account
/// does), and on a transfer it can call back into a target with calldata chosen by the test (a
/// reentrancy attempt). A failing callback bubbles its revert data up, so a test sees the target's
/// own error (e.g. `ReentrancyGuardReentrantCall`).
contract HostileToken is ERC20 {
    /// @notice A transfer to `to` was refused because `to` is blocked.
    error RecipientBlocked(address to);

    mapping(address account => bool) public blocked;
    address public hookTarget;
    bytes public hookData;
    bool private _inHook;

    constructor() ERC20("Hostile", "HST") {}

    function decimals() public pure override returns (uint8) {
        return 6;
    }

    function mint(address to, uint256 amount) external {
        _mint(to, amount);
    }

    function setBlocked(address account, bool isBlocked) external {
        blocked[account] = isBlocked;
    }

    /// @notice On every later transfer (not mint), call `target` with `data` once per transfer.
    function setHook(address target, bytes calldata data) external {
        hookTarget = target;
        hookData = data;
    }

    function _update(address from, address to, uint256 value) internal override {
        if (blocked[to]) revert RecipientBlocked(to);
        super._update(from, to, value);
        if (from != address(0) && hookTarget != address(0) && !_inHook) {
            _inHook = true;
            (bool ok, bytes memory ret) = hookTarget.call(hookData);
            _inHook = false;
            if (!ok) {
                assembly ("memory-safe") {
                    revert(add(ret, 0x20), mload(ret))
                }
            }
        }
    }
}
