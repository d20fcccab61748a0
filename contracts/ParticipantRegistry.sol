// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {IParticipantRegistry} from "./interfaces/IParticipantRegistry.sol";
import {Roles} from "./libraries/Roles.sol";

/// @title ParticipantRegistry
/// @notice Maps each prosumer's address to its meter, its connection point (a bus of the network
/// model) and its connection capacity, and numbers participants in registration order. Only the
/// facilitator registers participants; a registration is permanent and never changes, so the
/// markets may keep a copy of what they read from it.
contract ParticipantRegistry is AccessControl, IParticipantRegistry {
    /// @notice Registers participants.
    bytes32 public constant FACILITATOR_ROLE = Roles.FACILITATOR_ROLE;
    /// @notice The smallest connection capacity: 4 W carries 1 Wh in a 15-minute slot. The market
    /// reads a connection that carries 0 Wh per slot as unregistered.
    uint32 public constant MIN_CAPACITY_W = 4;

    mapping(address account => Participant) private _participants;
    mapping(uint64 meterId => address account) private _meterAccounts;
    address[] private _accounts;

    constructor(address admin) {
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
    }

    /// @inheritdoc IParticipantRegistry
    function register(address account, uint64 meterId, uint32 bus, uint32 capacityW)
        external
        onlyRole(FACILITATOR_ROLE)
    {
        _register(account, meterId, bus, capacityW);
    }

    /// @inheritdoc IParticipantRegistry
    function registerMany(
        address[] calldata accounts,
        uint64[] calldata meterIds,
        uint32[] calldata buses,
        uint32[] calldata capacitiesW
    ) external onlyRole(FACILITATOR_ROLE) {
        uint256 n = accounts.length;
        if (meterIds.length != n) revert LengthMismatch(n, meterIds.length);
        if (buses.length != n) revert LengthMismatch(n, buses.length);
        if (capacitiesW.length != n) revert LengthMismatch(n, capacitiesW.length);
        for (uint256 i; i < n; ++i) {
            _register(accounts[i], meterIds[i], buses[i], capacitiesW[i]);
        }
    }

    /// @inheritdoc IParticipantRegistry
    function participant(address account) external view returns (Participant memory p) {
        p = _participants[account];
        if (p.capacityW == 0) revert NotRegistered(account);
    }

    /// @inheritdoc IParticipantRegistry
    function capacityOf(address account) external view returns (uint32) {
        return _participants[account].capacityW;
    }

    /// @inheritdoc IParticipantRegistry
    function accountOfMeter(uint64 meterId) external view returns (address) {
        return _meterAccounts[meterId];
    }

    /// @inheritdoc IParticipantRegistry
    function participantCount() external view returns (uint32) {
        return uint32(_accounts.length); // fits: see _register
    }

    /// @inheritdoc IParticipantRegistry
    function accountAt(uint32 index) external view returns (address) {
        if (index >= _accounts.length) revert UnknownParticipant(index, uint32(_accounts.length));
        return _accounts[index];
    }

    /// @inheritdoc IParticipantRegistry
    function indexesOf(address[] calldata accounts) external view returns (uint32[] memory indexes) {
        indexes = new uint32[](accounts.length);
        for (uint256 i; i < accounts.length; ++i) {
            Participant memory p = _participants[accounts[i]];
            if (p.capacityW == 0) revert NotRegistered(accounts[i]);
            indexes[i] = p.index;
        }
    }

    function _register(address account, uint64 meterId, uint32 bus, uint32 capacityW) private {
        if (account == address(0)) revert ZeroAccount();
        if (capacityW < MIN_CAPACITY_W) revert InvalidCapacity(capacityW, MIN_CAPACITY_W);
        if (_participants[account].capacityW != 0) revert AlreadyRegistered(account);
        address holder = _meterAccounts[meterId];
        if (holder != address(0)) revert MeterIdTaken(meterId, holder);

        // Fits: 2^32 registrations would need more gas than any chain's blocks have held.
        uint32 index = uint32(_accounts.length);
        _participants[account] = Participant({meterId: meterId, bus: bus, capacityW: capacityW, index: index});
        _meterAccounts[meterId] = account;
        _accounts.push(account);
        emit ParticipantRegistered(account, meterId, bus, capacityW, index);
    }
}
