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

    /// @notice How a provider's delivery is measured against what it would have done anyway.
    enum BaselineMethod {
        Historical,
        Nominated,
        MeterBeforeAfter
    }

    /// @notice A request's life: posted (Open), offers awarded (Awarded), paid out (Settled).
    /// `None` is the status of an id that was never posted.
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

    /// @notice An offer with its EIP-712 signature in compact EIP-2098 form (r, yParity|s).
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

    // ───────────────────────────── events ─────────────────────────────

    /// @notice The DSO posted request `requestId` and escrowed `escrow`, the most it can cost.
    /// @param minPerformanceBps the share of an activated slot's ordered energy (in basis points)
    /// a provider must deliver for the slot to be paid and the asset to count as available
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
        uint16 minPerformanceBps,
        uint64 maxAvailabilityPricePerKWh,
        uint64 maxUtilisationPricePerKWh,
        uint256 escrow
    );
    /// @notice A provider's signed offer for request `requestId` was recorded under `offerId`,
    /// its EIP-712 hash.
    event OfferSubmitted(
        bytes32 indexed offerId,
        uint64 indexed requestId,
        address indexed provider,
        uint32 powerW,
        uint64 availabilityPricePerKWh,
        uint64 utilisationPricePerKWh,
        uint32 bus
    );
    /// @notice `provider` bound the UFTP (Ed25519) public key `publicKey` to its account: offers the
    /// facilitator submits for it from UFTP messages must be signed with this key.
    event UftpKeyBound(address indexed provider, bytes32 publicKey);
    /// @notice Offer `offerId` came through UFTP: `sourceMessage` is the keccak-256 of the
    /// aggregator's sealed FlexOffer (its Ed25519 signature followed by the XML), signed with
    /// `publicKey`, the key `provider` had bound. The facilitator serves the message by this hash.
    event OfferSourced(bytes32 indexed offerId, address indexed provider, bytes32 publicKey, bytes32 sourceMessage);
    /// @notice `provider` withdrew its unawarded offer `offerId` for request `requestId` before the
    /// bid deadline: it can no longer be awarded. `sourceMessage` is the keccak-256 of the
    /// aggregator's signed UFTP FlexOfferRevocation when the facilitator withdrew a UFTP offer for
    /// it (`withdrawUftpOffer`), zero when the provider withdrew it itself.
    event OfferWithdrawn(
        bytes32 indexed offerId, uint64 indexed requestId, address indexed provider, bytes32 sourceMessage
    );
    /// @notice The award, with the hash of the facilitator's award report (its rule and sensitivities).
    event Awarded(uint64 indexed requestId, bytes32[] offerIds, uint32 awardedPowerW, bytes32 awardReportHash);
    /// @notice Offer `offerId` was activated at `powerW` for the slot starting at `slot`, which
    /// orders `orderedWh` (`powerW` over 15 minutes).
    event Activated(uint64 indexed requestId, bytes32 indexed offerId, uint40 slot, uint32 powerW, uint32 orderedWh);
    /// @notice The meter operator recorded a slot's baseline and actual net energy (Wh taken from
    /// the grid); `deliveredWh` is the relief in the request's direction and `deficiencyWh` what
    /// falls short of `orderedWh`.
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
    /// @notice An awarded offer was settled: its availability and utilisation payments were credited
    /// to `provider`'s claimable balance (see `claim`).
    event OfferSettled(
        uint64 indexed requestId,
        bytes32 indexed offerId,
        address indexed provider,
        uint256 availabilityPayment,
        uint256 utilisationPayment
    );
    /// @notice Request `requestId` settled: `paid` was credited to providers and `refunded` to the
    /// DSO's claimable balance (see `claim`).
    event RequestSettled(uint64 indexed requestId, uint256 paid, uint256 refunded);
    /// @notice `account` took its whole claimable balance, `amount` base units of the token.
    event Claimed(address indexed account, uint256 amount);

    // ───────────────────────────── errors ─────────────────────────────

    /// @notice A request must ask for more than 0 W.
    error RequestPowerZero();
    /// @notice A request's window must have 1 to `maxWindowSlots` slots; it has `windowSlots`.
    error InvalidWindowSlots(uint16 windowSlots, uint16 maxWindowSlots);
    /// @notice A window must start on a slot boundary (a multiple of 900 s).
    error WindowNotOnSlotBoundary(uint40 windowStart);
    /// @notice The bid deadline `bidDeadline` has passed; the block time is `nowTs`.
    error BidDeadlinePassed(uint40 bidDeadline, uint256 nowTs);
    /// @notice The bid deadline `bidDeadline` must be before the window starts at `windowStart`.
    error BidDeadlineNotBeforeWindow(uint40 bidDeadline, uint40 windowStart);
    /// @notice The minimum performance must be 1 to `maxBps` basis points; it is `minPerformanceBps`.
    error InvalidMinPerformance(uint16 minPerformanceBps, uint16 maxBps);
    /// @notice No request `requestId` was posted.
    error UnknownRequest(uint64 requestId);
    /// @notice Request `requestId` has status `status`, which does not allow this call.
    error WrongRequestStatus(uint64 requestId, RequestStatus status);
    /// @notice Offers for request `requestId` closed at `bidDeadline`; the block time is `nowTs`.
    error OfferAfterDeadline(uint64 requestId, uint40 bidDeadline, uint256 nowTs);
    /// @notice `slot` is not a slot of request `requestId`'s window [`windowStart`, `windowEnd`).
    error OutsideWindow(uint64 requestId, uint40 slot, uint40 windowStart, uint40 windowEnd);
    /// @notice Offer `offerId` asks `price` per kWh, above the request's cap `cap`.
    error PriceAboveCap(bytes32 offerId, uint64 price, uint64 cap);
    /// @notice Power must be 1 W to `maxW` (the request's power, the provider's connection capacity
    /// or, for an activation, the contracted power).
    error InvalidPower(bytes32 offerId, uint32 powerW, uint32 maxW);
    /// @notice The offer names bus `offerBus`, but its provider is registered at `registeredBus`.
    error ConnectionPointMismatch(bytes32 offerId, uint32 offerBus, uint32 registeredBus);
    /// @notice `provider` is not a registered participant.
    error ProviderNotRegistered(address provider);
    /// @notice The offer's signature recovers to `recovered`, not to its `provider`.
    error InvalidOfferSignature(bytes32 offerId, address provider, address recovered);
    /// @notice `provider` already used offer nonce `nonce`.
    error OfferNonceUsed(address provider, uint64 nonce);
    /// @notice No offer `offerId` was submitted (for this request).
    error UnknownOffer(bytes32 offerId);
    /// @notice Offer `offerId` was not awarded, so it cannot be activated.
    error OfferNotAwarded(bytes32 offerId);
    /// @notice Request `requestId` takes offers until `bidDeadline`; the block time is `nowTs`.
    error AwardTooEarly(uint64 requestId, uint40 bidDeadline, uint256 nowTs);
    /// @notice Request `requestId`'s window started at `windowStart`; the block time is `nowTs`.
    error AwardTooLate(uint64 requestId, uint40 windowStart, uint256 nowTs);
    /// @notice Offer `offerId` is listed twice or was awarded already.
    error DuplicateAward(bytes32 offerId);
    /// @notice An activation of `powerW` exceeds the offer's contracted `contractedW`.
    error ActivationAboveContract(bytes32 offerId, uint32 powerW, uint32 contractedW);
    /// @notice Offer `offerId` is already activated for `slot`.
    error AlreadyActivated(bytes32 offerId, uint40 slot);
    /// @notice `slot` has begun (block time `nowTs`); a slot is activated before it starts.
    error ActivationTooLate(bytes32 offerId, uint40 slot, uint256 nowTs);
    /// @notice `slot` ends at `slotEnd`; it is measured after that (block time `nowTs`).
    error SlotNotEnded(uint40 slot, uint256 slotEnd, uint256 nowTs);
    /// @notice Offer `offerId` was already measured for `slot`.
    error AlreadyMeasured(bytes32 offerId, uint40 slot);
    /// @notice Request `requestId`'s window ends at `windowEnd`; it settles after that (block time `nowTs`).
    error WindowNotEnded(uint64 requestId, uint256 windowEnd, uint256 nowTs);
    /// @notice Offer `offerId` was activated for `slot` but not measured; settlement needs every
    /// activated slot measured.
    error MeasurementMissing(bytes32 offerId, uint40 slot);
    /// @notice `provider` has bound no UFTP key (see `bindUftpKey`), so no UFTP offer can be made for it.
    error UftpKeyNotBound(address provider);
    /// @notice `account` has no claimable balance: nothing was credited to it since its last claim.
    error NothingToClaim(address account);
    /// @notice Only offer `offerId`'s provider `provider` may withdraw it, not `caller`.
    error NotOfferProvider(bytes32 offerId, address provider, address caller);
    /// @notice Offer `offerId` was withdrawn: it cannot be awarded or withdrawn again.
    error OfferIsWithdrawn(bytes32 offerId);
    /// @notice Offer `offerId` is awarded: it binds its provider and cannot be withdrawn.
    error OfferAlreadyAwarded(bytes32 offerId);
    /// @notice Request `requestId`'s bid deadline `bidDeadline` has passed (block time `nowTs`):
    /// its offers stand and can no longer be withdrawn.
    error WithdrawalAfterDeadline(uint64 requestId, uint40 bidDeadline, uint256 nowTs);
    /// @notice Offer `offerId` did not come through UFTP: only its provider can withdraw it (`withdrawOffer`).
    error NotUftpOffer(bytes32 offerId);
    /// @notice The facilitator withdraws UFTP offer `offerId` only on the hash of the aggregator's
    /// signed FlexOfferRevocation, never on zero.
    error RevocationMissing(bytes32 offerId);

    // ───────────────────────────── functions ─────────────────────────────

    /// @notice Posts a request (DSO only) and escrows its maximum spend from the caller (approve
    /// `maxSpend(request)` first). The request's `dso`, `status` and `escrow` fields are ignored.
    /// @return requestId the new request's id, counting from 1
    function postRequest(Request calldata request) external returns (uint64 requestId);

    /// @notice Records a provider's signed offer for an open request before its bid deadline;
    /// anyone may relay it (the facilitator does).
    /// @return offerId the offer's EIP-712 hash
    function submitOffer(SignedOffer calldata signed) external returns (bytes32 offerId);

    /// @notice Binds the caller's UFTP signing key (Ed25519 public key), or replaces it; zero unbinds.
    /// It authorises the facilitator to submit offers for the caller from messages signed with it.
    function bindUftpKey(bytes32 publicKey) external;

    /// @notice Records an offer the provider's aggregator sent as a signed UFTP FlexOffer
    /// (facilitator only). The provider's authorisation is that message, signed with the key the
    /// provider bound; `sourceMessage` is its keccak-256, kept for anyone to check. Same checks
    /// as `submitOffer` otherwise.
    /// @return offerId the offer's EIP-712 hash
    function submitUftpOffer(Offer calldata offer_, bytes32 sourceMessage) external returns (bytes32 offerId);

    /// @notice Withdraws the caller's offer `offerId` while it is unawarded, up to its request's
    /// bid deadline; no tokens move (offers escrow nothing).
    function withdrawOffer(bytes32 offerId) external;

    /// @notice Withdraws UFTP offer `offerId` for its provider, on the aggregator's signed
    /// FlexOfferRevocation whose keccak-256 is `sourceMessage` (facilitator only; audited as the
    /// offer itself is). Same conditions as `withdrawOffer`.
    function withdrawUftpOffer(bytes32 offerId, bytes32 sourceMessage) external;

    /// @notice Whether offer `offerId` was withdrawn.
    function offerWithdrawn(bytes32 offerId) external view returns (bool);

    /// @notice Awards `offerIds` of request `requestId` after its bid deadline and before its
    /// window (facilitator only), with the hash of the award report that chose them. A withdrawn
    /// offer cannot be awarded.
    function award(uint64 requestId, bytes32[] calldata offerIds, bytes32 awardReportHash) external;

    /// @notice Orders an awarded offer to deliver `powerW` in the slot starting at `slot`, before
    /// the slot starts (DSO, or the facilitator when it coordinates the markets).
    function activate(bytes32 offerId, uint40 slot, uint32 powerW) external;

    /// @notice Records a slot's baseline and actual net energy of an offer's asset, in Wh taken
    /// from the grid, after the slot ends (meter operator only). Once per offer and slot.
    function recordMeasurement(bytes32 offerId, uint40 slot, int64 baselineWh, int64 actualWh) external;

    /// @notice Settles request `requestId` after its window ends: credits every awarded offer's
    /// payment by the settlement rule to its provider's claimable balance and the rest of the
    /// escrow to the DSO's. It moves no tokens (each party takes its balance with `claim`), so no
    /// recipient can block it. Anyone may call it, once.
    function settle(uint64 requestId) external;

    /// @notice Transfers the caller's whole claimable balance (provider payments and DSO refunds
    /// from every settled request) to the caller, and sets it to zero.
    /// @return amount the base units of the token transferred
    function claim() external returns (uint256 amount);

    /// @notice What `account` can take with `claim`: credited at settlement and not yet claimed.
    function claimable(address account) external view returns (uint256);

    /// @notice The request `requestId` as the ledger keeps it (all zero if it was never posted).
    function request(uint64 requestId) external view returns (Request memory);

    /// @notice The offer `offerId` as the ledger keeps it (all zero if it was never submitted).
    function offer(bytes32 offerId) external view returns (OfferState memory);

    /// @notice What was ordered and measured for offer `offerId` in the slot starting at `slot`.
    function delivery(bytes32 offerId, uint40 slot) external view returns (Delivery memory);

    /// @notice The UFTP key `provider` bound (zero if none).
    function uftpKey(address provider) external view returns (bytes32);

    /// @notice The keccak-256 of the signed UFTP message behind offer `offerId` (zero if it did not
    /// come through UFTP).
    function offerSource(bytes32 offerId) external view returns (bytes32);

    /// @notice The EIP-712 digest of `offer_` that its provider signs; it is also the offer's id.
    function offerHash(Offer calldata offer_) external view returns (bytes32);

    /// @notice The most `request_` can cost: full availability and utilisation at the caps over
    /// the whole window, rounded up. This is the escrow `postRequest` takes.
    function maxSpend(Request calldata request_) external pure returns (uint256);
}
