// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// @title The register of market participants and where they connect to the network.
interface IParticipantRegistry {
    /// @notice A participant's meter and connection point. Packed into one storage slot.
    /// @param meterId the metering point's identifier, unique across participants
    /// @param bus the bus of the published network model the participant connects to
    /// @param capacityW the connection's capacity in W; zero means "not registered"
    /// @param index the participant's number in registration order (0, 1, 2, …): meter readings
    /// are posted and stored by it
    struct Participant {
        uint64 meterId;
        uint32 bus;
        uint32 capacityW;
        uint32 index;
    }

    /// @notice Emitted when `account` is registered at `bus` with meter `meterId`, as participant
    /// number `index`.
    event ParticipantRegistered(
        address indexed account, uint64 indexed meterId, uint32 bus, uint32 capacityW, uint32 index
    );

    // ───────────────────────────── errors ─────────────────────────────

    /// @notice The account is the zero address.
    error ZeroAccount();
    /// @notice `account` is already registered.
    error AlreadyRegistered(address account);
    /// @notice `meterId` already belongs to `account`.
    error MeterIdTaken(uint64 meterId, address account);
    /// @notice A connection capacity must be at least `minCapacityW` (4 W: one Wh per 15-minute
    /// slot; below that the market could not trade a single Wh and would read the participant as
    /// unregistered).
    error InvalidCapacity(uint32 capacityW, uint32 minCapacityW);
    /// @notice `account` is not a registered participant.
    error NotRegistered(address account);
    /// @notice There is no participant number `index`: `count` participants are registered (0 to count − 1).
    error UnknownParticipant(uint32 index, uint32 count);
    /// @notice Array arguments of different lengths (as the energy market's error of that name).
    error LengthMismatch(uint256 a, uint256 b);

    // ───────────────────────────── functions ─────────────────────────────

    /// @notice Registers `account` with its meter, connection bus and capacity. Facilitator only.
    /// @param capacityW the connection's capacity in W, at least 4 W
    function register(address account, uint64 meterId, uint32 bus, uint32 capacityW) external;

    /// @notice Registers `accounts[i]` with `meterIds[i]`, `buses[i]` and `capacitiesW[i]`, in
    /// order, as `register` would one by one (numbers, events and refusals alike), in one
    /// transaction: onboarding a feeder. All or nothing. Facilitator only.
    function registerMany(
        address[] calldata accounts,
        uint64[] calldata meterIds,
        uint32[] calldata buses,
        uint32[] calldata capacitiesW
    ) external;

    /// @notice The participant record of `account`; reverts with NotRegistered if there is none.
    function participant(address account) external view returns (Participant memory);

    /// @notice The connection capacity of `account` in W, or zero if it is not registered.
    function capacityOf(address account) external view returns (uint32);

    /// @notice The account registered with `meterId`, or the zero address.
    function accountOfMeter(uint64 meterId) external view returns (address);

    /// @notice How many participants are registered; their numbers are 0 to count − 1.
    function participantCount() external view returns (uint32);

    /// @notice The account of participant number `index`; reverts with UnknownParticipant if there is none.
    function accountAt(uint32 index) external view returns (address);

    /// @notice The participant numbers of `accounts`, in the same order; reverts with
    /// NotRegistered for the first account that is not registered.
    function indexesOf(address[] calldata accounts) external view returns (uint32[] memory);
}
