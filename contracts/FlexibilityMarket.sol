// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";
import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {ReentrancyGuardTransient} from "@openzeppelin/contracts/utils/ReentrancyGuardTransient.sol";
import {SafeCast} from "@openzeppelin/contracts/utils/math/SafeCast.sol";
import {IFlexibilityMarket} from "./interfaces/IFlexibilityMarket.sol";
import {IParticipantRegistry} from "./interfaces/IParticipantRegistry.sol";
import {Roles} from "./libraries/Roles.sol";

/// @title FlexibilityMarket
/// @notice The DSO buys flexibility at a congestion point. It posts a request and escrows the most
/// it can cost; registered providers sign offers; after the bid deadline the facilitator awards
/// offers by its published rule (cheapest offers whose bus relieves the congested point, with the
/// award report's hash on-chain; pay-as-bid); the DSO (or the facilitator, when it coordinates
/// with the energy market) activates awarded offers per slot; the meter operator records each
/// slot's baseline and actual energy; after the window anyone settles, once.
///
/// Settlement rule, per awarded offer of P W over a window of N slots:
/// - performance in an activated slot = min(delivered, ordered) / ordered;
/// - a slot at or above the request's `minPerformanceBps` earns the utilisation price on
///   min(delivered, ordered) (pro rata); a slot below earns nothing and marks the asset as
///   unavailable for the window;
/// - availability payment = P/1000 kW × N/4 h × availability price, unless the asset was
///   unavailable in the window, then nothing;
/// - what the escrow does not pay returns to the DSO.
///
/// Payments are pulled: `settle` credits each provider's payment and the DSO's refund to their
/// claimable balances and moves no tokens; each party takes its balance with `claim`. A recipient
/// the token refuses (a blocklist, a paused account) therefore only ever blocks its own claim,
/// never a settlement or another party's payment. At every step the token balance of this contract
/// equals the escrow of unsettled requests plus the sum of claimable balances.
contract FlexibilityMarket is IFlexibilityMarket, AccessControl, EIP712, ReentrancyGuardTransient {
    using SafeERC20 for IERC20;

    /// @notice Posts requests and activates awarded offers.
    bytes32 public constant DSO_ROLE = Roles.DSO_ROLE;
    /// @notice Awards offers, and activates them when it coordinates with the energy market.
    bytes32 public constant FACILITATOR_ROLE = Roles.FACILITATOR_ROLE;
    /// @notice Records measurements.
    bytes32 public constant METER_ROLE = Roles.METER_ROLE;
    /// @notice The EIP-712 type of an offer.
    bytes32 public constant OFFER_TYPEHASH = keccak256(
        "Offer(address provider,uint64 requestId,uint40 windowStart,uint32 powerW,uint64 availabilityPricePerKWh,uint64 utilisationPricePerKWh,uint32 bus,uint64 nonce)"
    );

    /// @notice The length of a slot in seconds.
    uint256 public constant SLOT_SECONDS = 900;
    /// @notice A window is at most a day of slots, which bounds settlement's loop.
    uint16 public constant MAX_WINDOW_SLOTS = 96;
    uint16 private constant BPS = 10_000;
    /// @dev W × slots × price / 4000 = kW × h × price (1000 W per kW, 4 slots per hour).
    uint256 private constant W_SLOTS_PER_KWH = 4_000;

    /// @notice The settlement token the escrow and payments are in.
    IERC20 public immutable TOKEN;
    /// @notice The participant register providers must be in.
    IParticipantRegistry public immutable REGISTRY;

    uint64 private _requestCount;
    // _requests, _awarded and _deliveries are written through storage references (postRequest,
    // award, activate, recordMeasurement), which Slither 0.10 does not follow: uninitialized-state
    // is a false positive for each.
    // slither-disable-next-line uninitialized-state
    mapping(uint64 requestId => Request) private _requests;
    // slither-disable-next-line uninitialized-state
    mapping(uint64 requestId => bytes32[] offerIds) private _awarded;
    mapping(bytes32 offerId => OfferState) private _offers;
    mapping(address provider => mapping(uint64 nonce => bool used)) private _offerNonces;
    // slither-disable-next-line uninitialized-state
    mapping(bytes32 offerId => mapping(uint40 slot => Delivery)) private _deliveries;
    mapping(address account => uint256) private _claimable;
    // UFTP: the Ed25519 key a provider bound to its account, and the signed message behind an offer.
    mapping(address provider => bytes32 publicKey) private _uftpKeys;
    mapping(bytes32 offerId => bytes32 sourceMessage) private _offerSources;
    // Withdrawn offers: kept apart from OfferState so that `offer()` keeps its return type.
    mapping(bytes32 offerId => bool) private _withdrawn;

    constructor(IERC20 token, IParticipantRegistry registry, address admin)
        EIP712("GridLedger FlexibilityMarket", "1")
    {
        TOKEN = token;
        REGISTRY = registry;
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
    }

    // ───────────────────────────── DSO ─────────────────────────────

    /// @inheritdoc IFlexibilityMarket
    function postRequest(Request calldata r) external onlyRole(DSO_ROLE) nonReentrant returns (uint64 requestId) {
        if (r.powerW == 0) revert RequestPowerZero();
        if (r.windowSlots == 0 || r.windowSlots > MAX_WINDOW_SLOTS) {
            revert InvalidWindowSlots(r.windowSlots, MAX_WINDOW_SLOTS);
        }
        if (r.windowStart % SLOT_SECONDS != 0) revert WindowNotOnSlotBoundary(r.windowStart);
        if (r.bidDeadline <= block.timestamp) revert BidDeadlinePassed(r.bidDeadline, block.timestamp);
        if (r.bidDeadline >= r.windowStart) revert BidDeadlineNotBeforeWindow(r.bidDeadline, r.windowStart);
        if (r.minPerformanceBps == 0 || r.minPerformanceBps > BPS) {
            revert InvalidMinPerformance(r.minPerformanceBps, BPS);
        }
        // The window's end must be a uint40 time, as _windowEnd returns it: the call is the check, its
        // value is not needed (unused-return is a false positive).
        // slither-disable-next-line unused-return
        SafeCast.toUint40(r.windowStart + uint256(r.windowSlots) * SLOT_SECONDS);
        uint256 escrow = maxSpend(r);
        requestId = ++_requestCount;
        Request storage stored = _requests[requestId];
        stored.dso = msg.sender;
        stored.service = r.service;
        stored.direction = r.direction;
        stored.baseline = r.baseline;
        stored.status = RequestStatus.Open;
        stored.congestionBus = r.congestionBus;
        stored.powerW = r.powerW;
        stored.windowStart = r.windowStart;
        stored.windowSlots = r.windowSlots;
        stored.bidDeadline = r.bidDeadline;
        stored.minPerformanceBps = r.minPerformanceBps;
        stored.maxAvailabilityPricePerKWh = r.maxAvailabilityPricePerKWh;
        stored.maxUtilisationPricePerKWh = r.maxUtilisationPricePerKWh;
        stored.escrow = SafeCast.toUint128(escrow);
        emit RequestPosted(
            requestId,
            msg.sender,
            r.service,
            r.direction,
            r.baseline,
            r.congestionBus,
            r.powerW,
            r.windowStart,
            r.windowSlots,
            r.bidDeadline,
            r.minPerformanceBps,
            r.maxAvailabilityPricePerKWh,
            r.maxUtilisationPricePerKWh,
            escrow
        );
        TOKEN.safeTransferFrom(msg.sender, address(this), escrow);
    }

    // ───────────────────────────── providers ─────────────────────────────

    /// @inheritdoc IFlexibilityMarket
    function submitOffer(SignedOffer calldata signed) external returns (bytes32 offerId) {
        Offer calldata o = signed.offer;
        offerId = _hashOffer(o);
        // The third value, the bad `s` or length behind a RecoverError, is not needed: the revert
        // names the recovered signer. unused-return is a false positive.
        // slither-disable-next-line unused-return
        (address signer, ECDSA.RecoverError err,) = ECDSA.tryRecover(offerId, signed.r, signed.vs);
        if (err != ECDSA.RecoverError.NoError || signer != o.provider) revert InvalidOfferSignature(offerId, o.provider, signer);
        _recordOffer(o, offerId);
    }

    /// @inheritdoc IFlexibilityMarket
    function bindUftpKey(bytes32 publicKey) external {
        _uftpKeys[msg.sender] = publicKey;
        emit UftpKeyBound(msg.sender, publicKey);
    }

    /// @inheritdoc IFlexibilityMarket
    function submitUftpOffer(Offer calldata o, bytes32 sourceMessage)
        external
        onlyRole(FACILITATOR_ROLE)
        returns (bytes32 offerId)
    {
        bytes32 publicKey = _uftpKeys[o.provider];
        if (publicKey == bytes32(0)) revert UftpKeyNotBound(o.provider);
        offerId = _hashOffer(o);
        // Written first: _recordOffer reads the registry (a view call) and must be the last step.
        _offerSources[offerId] = sourceMessage;
        _recordOffer(o, offerId);
        emit OfferSourced(offerId, o.provider, publicKey, sourceMessage);
    }

    /// @inheritdoc IFlexibilityMarket
    function withdrawOffer(bytes32 offerId) external {
        address provider = _offers[offerId].provider;
        if (provider != address(0) && provider != msg.sender) revert NotOfferProvider(offerId, provider, msg.sender);
        _withdraw(offerId, bytes32(0));
    }

    /// @inheritdoc IFlexibilityMarket
    function withdrawUftpOffer(bytes32 offerId, bytes32 sourceMessage) external onlyRole(FACILITATOR_ROLE) {
        if (_offerSources[offerId] == bytes32(0)) revert NotUftpOffer(offerId);
        // A zero hash is a provider's own withdrawal (`withdrawOffer`): the audit must find the
        // aggregator's revocation behind every withdrawal the facilitator makes.
        if (sourceMessage == bytes32(0)) revert RevocationMissing(offerId);
        _withdraw(offerId, sourceMessage);
    }

    // ───────────────────────────── facilitator ─────────────────────────────

    /// @inheritdoc IFlexibilityMarket
    function award(uint64 requestId, bytes32[] calldata offerIds, bytes32 awardReportHash)
        external
        onlyRole(FACILITATOR_ROLE)
    {
        Request storage r = _requests[requestId];
        if (r.status == RequestStatus.None) revert UnknownRequest(requestId);
        if (r.status != RequestStatus.Open) revert WrongRequestStatus(requestId, r.status);
        if (block.timestamp <= r.bidDeadline) revert AwardTooEarly(requestId, r.bidDeadline, block.timestamp);
        if (block.timestamp >= r.windowStart) revert AwardTooLate(requestId, r.windowStart, block.timestamp);
        // A running sum from Solidity's zero default (uninitialized-local is a false positive).
        // slither-disable-next-line uninitialized-local
        uint32 awardedW;
        bytes32[] storage awarded = _awarded[requestId];
        for (uint256 i; i < offerIds.length; ++i) {
            OfferState storage o = _offers[offerIds[i]];
            if (o.provider == address(0) || o.requestId != requestId) revert UnknownOffer(offerIds[i]);
            if (o.awarded) revert DuplicateAward(offerIds[i]);
            if (_withdrawn[offerIds[i]]) revert OfferIsWithdrawn(offerIds[i]);
            o.awarded = true;
            awardedW += o.powerW;
            awarded.push(offerIds[i]);
        }
        r.status = RequestStatus.Awarded;
        emit Awarded(requestId, offerIds, awardedW, awardReportHash);
    }

    /// @inheritdoc IFlexibilityMarket
    function activate(bytes32 offerId, uint40 slot, uint32 powerW) external {
        if (!hasRole(DSO_ROLE, msg.sender) && !hasRole(FACILITATOR_ROLE, msg.sender)) {
            revert AccessControlUnauthorizedAccount(msg.sender, DSO_ROLE);
        }
        OfferState storage o = _offers[offerId];
        if (o.provider == address(0)) revert UnknownOffer(offerId);
        if (!o.awarded) revert OfferNotAwarded(offerId);
        Request storage r = _requests[o.requestId];
        _requireInWindow(o.requestId, r, slot);
        if (block.timestamp >= slot) revert ActivationTooLate(offerId, slot, block.timestamp);
        if (powerW == 0) revert InvalidPower(offerId, powerW, o.powerW);
        if (powerW > o.powerW) revert ActivationAboveContract(offerId, powerW, o.powerW);
        Delivery storage d = _deliveries[offerId][slot];
        if (d.orderedWh != 0) revert AlreadyActivated(offerId, slot);
        uint32 orderedWh = powerW / 4;
        d.orderedWh = orderedWh;
        emit Activated(o.requestId, offerId, slot, powerW, orderedWh);
    }

    // ───────────────────────────── meter operator ─────────────────────────────

    /// @inheritdoc IFlexibilityMarket
    function recordMeasurement(bytes32 offerId, uint40 slot, int64 baselineWh, int64 actualWh)
        external
        onlyRole(METER_ROLE)
    {
        OfferState storage o = _offers[offerId];
        if (o.provider == address(0)) revert UnknownOffer(offerId);
        Request storage r = _requests[o.requestId];
        _requireInWindow(o.requestId, r, slot);
        if (block.timestamp < slot + SLOT_SECONDS) revert SlotNotEnded(slot, slot + SLOT_SECONDS, block.timestamp);
        Delivery storage d = _deliveries[offerId][slot];
        if (d.measured) revert AlreadyMeasured(offerId, slot);
        // Up relieves by taking less from the grid (net load falls), Down by taking more.
        int256 change = r.direction == Direction.Up
            ? int256(baselineWh) - int256(actualWh)
            : int256(actualWh) - int256(baselineWh);
        // The relief, clamped to [0, 2^32 - 1] Wh: the narrowing below only ever sees a value that fits.
        uint32 delivered = change <= 0
            ? 0
            : (change >= int256(uint256(type(uint32).max)) ? type(uint32).max : uint32(uint256(change)));
        d.measured = true;
        d.baselineWh = baselineWh;
        d.actualWh = actualWh;
        d.deliveredWh = delivered;
        uint32 ordered = d.orderedWh;
        emit Measured(
            o.requestId, offerId, slot, baselineWh, actualWh, ordered, delivered, ordered > delivered ? ordered - delivered : 0
        );
    }

    // ───────────────────────────── settlement ─────────────────────────────

    /// @inheritdoc IFlexibilityMarket
    function settle(uint64 requestId) external nonReentrant {
        Request storage r = _requests[requestId];
        RequestStatus status = r.status;
        if (status == RequestStatus.None) revert UnknownRequest(requestId);
        if (status == RequestStatus.Settled) revert WrongRequestStatus(requestId, status);
        uint256 windowEnd = _windowEnd(r);
        if (block.timestamp < windowEnd) revert WindowNotEnded(requestId, windowEnd, block.timestamp);
        r.status = RequestStatus.Settled;

        // Credits only: no token moves here, so no recipient can make settlement revert.
        bytes32[] storage awarded = _awarded[requestId];
        // A running sum from Solidity's zero default (uninitialized-local is a false positive).
        // slither-disable-next-line uninitialized-local
        uint256 paid;
        for (uint256 i; i < awarded.length; ++i) {
            bytes32 offerId = awarded[i];
            OfferState storage o = _offers[offerId];
            (uint256 availability, uint256 utilisation) = _payments(r, offerId, o);
            uint256 payment = availability + utilisation;
            if (payment != 0) {
                paid += payment;
                _claimable[o.provider] += payment;
            }
            emit OfferSettled(requestId, offerId, o.provider, availability, utilisation);
        }
        uint256 refund = r.escrow - paid;
        if (refund != 0) _claimable[r.dso] += refund;
        emit RequestSettled(requestId, paid, refund);
    }

    /// @inheritdoc IFlexibilityMarket
    function claim() external nonReentrant returns (uint256 amount) {
        amount = _claimable[msg.sender];
        if (amount == 0) revert NothingToClaim(msg.sender);
        _claimable[msg.sender] = 0;
        emit Claimed(msg.sender, amount);
        TOKEN.safeTransfer(msg.sender, amount);
    }

    // ───────────────────────────── views ─────────────────────────────

    /// @inheritdoc IFlexibilityMarket
    function request(uint64 requestId) external view returns (Request memory) {
        return _requests[requestId];
    }

    /// @inheritdoc IFlexibilityMarket
    function offer(bytes32 offerId) external view returns (OfferState memory) {
        return _offers[offerId];
    }

    /// @inheritdoc IFlexibilityMarket
    function delivery(bytes32 offerId, uint40 slot) external view returns (Delivery memory) {
        return _deliveries[offerId][slot];
    }

    /// @inheritdoc IFlexibilityMarket
    function claimable(address account) external view returns (uint256) {
        return _claimable[account];
    }

    /// @inheritdoc IFlexibilityMarket
    function offerHash(Offer calldata o) external view returns (bytes32) {
        return _hashOffer(o);
    }

    /// @inheritdoc IFlexibilityMarket
    function uftpKey(address provider) external view returns (bytes32) {
        return _uftpKeys[provider];
    }

    /// @inheritdoc IFlexibilityMarket
    function offerSource(bytes32 offerId) external view returns (bytes32) {
        return _offerSources[offerId];
    }

    /// @inheritdoc IFlexibilityMarket
    function offerWithdrawn(bytes32 offerId) external view returns (bool) {
        return _withdrawn[offerId];
    }

    /// @inheritdoc IFlexibilityMarket
    function maxSpend(Request calldata r) public pure returns (uint256) {
        uint256 priceSum = uint256(r.maxAvailabilityPricePerKWh) + r.maxUtilisationPricePerKWh;
        return _ceilDiv(uint256(r.powerW) * r.windowSlots * priceSum, W_SLOTS_PER_KWH);
    }

    // ───────────────────────────── internal ─────────────────────────────

    /// @dev The offer's availability and utilisation payments under the settlement rule above.
    function _payments(Request storage r, bytes32 offerId, OfferState storage o)
        private
        view
        returns (uint256 availability, uint256 utilisation)
    {
        // False until a slot falls below the minimum performance (uninitialized-local is a false positive).
        // slither-disable-next-line uninitialized-local
        bool unavailable;
        uint256 minPerformanceBps = r.minPerformanceBps;
        for (uint256 k; k < r.windowSlots; ++k) {
            // Fits: k < windowSlots, and postRequest checked that the window's end fits in uint40.
            uint40 slot = uint40(r.windowStart + k * SLOT_SECONDS);
            Delivery storage d = _deliveries[offerId][slot];
            uint256 ordered = d.orderedWh;
            if (ordered == 0) continue;
            if (!d.measured) revert MeasurementMissing(offerId, slot);
            uint256 counted = d.deliveredWh < ordered ? d.deliveredWh : ordered;
            if (counted * BPS >= ordered * minPerformanceBps) {
                utilisation += counted * o.utilisationPricePerKWh / 1_000;
            } else {
                unavailable = true;
            }
        }
        if (!unavailable) {
            availability = uint256(o.powerW) * r.windowSlots * o.availabilityPricePerKWh / W_SLOTS_PER_KWH;
        }
    }

    /// @dev The checks every offer passes, however it was authorised; records it and emits.
    function _recordOffer(Offer calldata o, bytes32 offerId) private {
        Request storage r = _requests[o.requestId];
        RequestStatus status = r.status;
        if (status == RequestStatus.None) revert UnknownRequest(o.requestId);
        if (status != RequestStatus.Open) revert WrongRequestStatus(o.requestId, status);
        if (block.timestamp > r.bidDeadline) revert OfferAfterDeadline(o.requestId, r.bidDeadline, block.timestamp);
        if (o.windowStart != r.windowStart) {
            revert OutsideWindow(o.requestId, o.windowStart, r.windowStart, _windowEnd(r));
        }
        uint32 capacityW = REGISTRY.capacityOf(o.provider);
        if (capacityW == 0) revert ProviderNotRegistered(o.provider);
        uint32 registeredBus = REGISTRY.participant(o.provider).bus;
        if (o.bus != registeredBus) revert ConnectionPointMismatch(offerId, o.bus, registeredBus);
        if (o.availabilityPricePerKWh > r.maxAvailabilityPricePerKWh) {
            revert PriceAboveCap(offerId, o.availabilityPricePerKWh, r.maxAvailabilityPricePerKWh);
        }
        if (o.utilisationPricePerKWh > r.maxUtilisationPricePerKWh) {
            revert PriceAboveCap(offerId, o.utilisationPricePerKWh, r.maxUtilisationPricePerKWh);
        }
        uint32 maxW = r.powerW < capacityW ? r.powerW : capacityW;
        if (o.powerW == 0 || o.powerW > maxW) revert InvalidPower(offerId, o.powerW, maxW);
        if (_offerNonces[o.provider][o.nonce]) revert OfferNonceUsed(o.provider, o.nonce);

        _offerNonces[o.provider][o.nonce] = true;
        _offers[offerId] = OfferState({
            provider: o.provider,
            requestId: o.requestId,
            powerW: o.powerW,
            bus: o.bus,
            awarded: false,
            availabilityPricePerKWh: o.availabilityPricePerKWh,
            utilisationPricePerKWh: o.utilisationPricePerKWh
        });
        emit OfferSubmitted(
            offerId, o.requestId, o.provider, o.powerW, o.availabilityPricePerKWh, o.utilisationPricePerKWh, o.bus
        );
    }

    /// @dev Marks an unawarded offer withdrawn, up to its request's bid deadline.
    function _withdraw(bytes32 offerId, bytes32 sourceMessage) private {
        OfferState storage o = _offers[offerId];
        address provider = o.provider;
        if (provider == address(0)) revert UnknownOffer(offerId);
        if (_withdrawn[offerId]) revert OfferIsWithdrawn(offerId);
        if (o.awarded) revert OfferAlreadyAwarded(offerId);
        uint64 requestId = o.requestId;
        uint40 deadline = _requests[requestId].bidDeadline;
        if (block.timestamp > deadline) revert WithdrawalAfterDeadline(requestId, deadline, block.timestamp);
        _withdrawn[offerId] = true;
        emit OfferWithdrawn(offerId, requestId, provider, sourceMessage);
    }

    function _requireInWindow(uint64 requestId, Request storage r, uint40 slot) private view {
        uint40 end = _windowEnd(r);
        if (slot < r.windowStart || slot >= end || (slot - r.windowStart) % SLOT_SECONDS != 0) {
            revert OutsideWindow(requestId, slot, r.windowStart, end);
        }
    }

    function _windowEnd(Request storage r) private view returns (uint40) {
        // Fits: postRequest refuses a request whose window end does not fit in uint40.
        return uint40(r.windowStart + uint256(r.windowSlots) * SLOT_SECONDS);
    }

    function _hashOffer(Offer calldata o) private view returns (bytes32) {
        return _hashTypedDataV4(
            keccak256(
                abi.encode(
                    OFFER_TYPEHASH,
                    o.provider,
                    o.requestId,
                    o.windowStart,
                    o.powerW,
                    o.availabilityPricePerKWh,
                    o.utilisationPricePerKWh,
                    o.bus,
                    o.nonce
                )
            )
        );
    }

    function _ceilDiv(uint256 a, uint256 b) private pure returns (uint256) {
        return a == 0 ? 0 : (a - 1) / b + 1;
    }
}
