// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// @title The DSO's flexibility market: requests, signed offers, awards, activations,
/// measurements and settlement (after USEF/Shapeshifter UFTP and UK Open Networks products).
/// @dev Units: power in W, energy in Wh, money in the settlement token's base units. An
/// availability price is per kW of contracted power per hour of the window; a utilisation
/// price is per kWh delivered.
interface IFlexibilityMarket {
    /// @notice Open Networks service types.
    enum ServiceType {
        Sustain,
        Secure,
        Dynamic,
        Restore
    }

    /// @notice Up relieves a point loaded by demand (less consumption or more generation);
    /// Down relieves a point loaded by generation (more consumption or less generation).
    enum Direction {
        Up,
        Down
    }

    enum BaselineMethod {
        Historical,
        Nominated,
        MeterBeforeAfter
    }

    enum RequestStatus {
        None,
        Open,
        Awarded,
        Settled
    }

    /// @notice What the DSO asks for; `escrow` is the most it can cost, locked at posting.
    struct Request {
        address dso;
        ServiceType service;
        Direction direction;
        BaselineMethod baseline;
        RequestStatus status;
        uint32 congestionBus;
        uint32 powerW;
        uint40 windowStart;
        uint16 windowSlots;
        uint40 bidDeadline;
        uint16 minPerformanceBps;
        uint64 maxAvailabilityPricePerKWh;
        uint64 maxUtilisationPricePerKWh;
        uint128 escrow;
    }

    /// @notice A provider's offer, signed as EIP-712 typed data.
    struct Offer {
        address provider;
        uint64 requestId;
        uint40 windowStart;
        uint32 powerW;
        uint64 availabilityPricePerKWh;
        uint64 utilisationPricePerKWh;
        uint32 bus;
        uint64 nonce;
    }

    struct SignedOffer {
        Offer offer;
        bytes32 r;
        bytes32 vs;
    }

    /// @notice An offer as the ledger keeps it.
    struct OfferState {
        address provider;
        uint64 requestId;
        uint32 powerW;
        uint32 bus;
        bool awarded;
        uint64 availabilityPricePerKWh;
        uint64 utilisationPricePerKWh;
    }

    /// @notice One slot of one awarded offer: what the DSO ordered and what was measured.
    struct Delivery {
        uint32 orderedWh;
        bool measured;
        int64 baselineWh;
        int64 actualWh;
        uint32 deliveredWh;
    }

    event RequestPosted(
        uint64 indexed requestId,
        address indexed dso,
        ServiceType service,
        Direction direction,
        BaselineMethod baseline,
        uint32 congestionBus,
        uint32 powerW,
        uint40 windowStart,
        uint16 windowSlots,
        uint40 bidDeadline,
        uint64 maxAvailabilityPricePerKWh,
        uint64 maxUtilisationPricePerKWh,
        uint256 escrow
    );
    event OfferSubmitted(
        bytes32 indexed offerId,
        uint64 indexed requestId,
        address indexed provider,
        uint32 powerW,
        uint64 availabilityPricePerKWh,
        uint64 utilisationPricePerKWh,
        uint32 bus
    );
    /// @notice The award, with the hash of the facilitator's award report (its rule and sensitivities).
    event Awarded(uint64 indexed requestId, bytes32[] offerIds, uint32 awardedPowerW, bytes32 awardReportHash);
    event Activated(uint64 indexed requestId, bytes32 indexed offerId, uint40 slot, uint32 powerW, uint32 orderedWh);
    event Measured(
        uint64 indexed requestId,
        bytes32 indexed offerId,
        uint40 slot,
        int64 baselineWh,
        int64 actualWh,
        uint32 orderedWh,
        uint32 deliveredWh,
        uint32 deficiencyWh
    );
    event OfferSettled(
        uint64 indexed requestId,
        bytes32 indexed offerId,
        address indexed provider,
        uint256 availabilityPayment,
        uint256 utilisationPayment
    );
    event RequestSettled(uint64 indexed requestId, uint256 paid, uint256 refunded);

    error InvalidRequest(string reason);
    error UnknownRequest(uint64 requestId);
    error WrongRequestStatus(uint64 requestId, RequestStatus status);
    error OfferAfterDeadline(uint64 requestId, uint40 bidDeadline, uint256 nowTs);
    error OutsideWindow(uint64 requestId, uint40 slot, uint40 windowStart, uint40 windowEnd);
    error PriceAboveCap(bytes32 offerId, uint64 price, uint64 cap);
    error InvalidPower(bytes32 offerId, uint32 powerW, uint32 maxW);
    error ConnectionPointMismatch(bytes32 offerId, uint32 offerBus, uint32 registeredBus);
    error ProviderNotRegistered(address provider);
    error InvalidOfferSignature(bytes32 offerId, address provider, address recovered);
    error OfferNonceUsed(address provider, uint64 nonce);
    error UnknownOffer(bytes32 offerId);
    error OfferNotAwarded(bytes32 offerId);
    error AwardTooEarly(uint64 requestId, uint40 bidDeadline, uint256 nowTs);
    error AwardTooLate(uint64 requestId, uint40 windowStart, uint256 nowTs);
    error DuplicateAward(bytes32 offerId);
    error ActivationAboveContract(bytes32 offerId, uint32 powerW, uint32 contractedW);
    error AlreadyActivated(bytes32 offerId, uint40 slot);
    error ActivationTooLate(bytes32 offerId, uint40 slot, uint256 nowTs);
    error SlotNotEnded(uint40 slot, uint256 slotEnd, uint256 nowTs);
    error AlreadyMeasured(bytes32 offerId, uint40 slot);
    error WindowNotEnded(uint64 requestId, uint256 windowEnd, uint256 nowTs);
    error MeasurementMissing(bytes32 offerId, uint40 slot);

    function postRequest(Request calldata request) external returns (uint64 requestId);
    function submitOffer(SignedOffer calldata signed) external returns (bytes32 offerId);
    function award(uint64 requestId, bytes32[] calldata offerIds, bytes32 awardReportHash) external;
    function activate(bytes32 offerId, uint40 slot, uint32 powerW) external;
    function recordMeasurement(bytes32 offerId, uint40 slot, int64 baselineWh, int64 actualWh) external;
    function settle(uint64 requestId) external;

    function request(uint64 requestId) external view returns (Request memory);
    function offer(bytes32 offerId) external view returns (OfferState memory);
    function delivery(bytes32 offerId, uint40 slot) external view returns (Delivery memory);
    function offerHash(Offer calldata offer_) external view returns (bytes32);
    function maxSpend(Request calldata request_) external pure returns (uint256);
}
