// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";
import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {SafeCast} from "@openzeppelin/contracts/utils/math/SafeCast.sol";
import {ReentrancyGuardTransient} from "@openzeppelin/contracts/utils/ReentrancyGuardTransient.sol";
import {IEnergyMarket} from "./interfaces/IEnergyMarket.sol";
import {IParticipantRegistry} from "./interfaces/IParticipantRegistry.sol";
import {Roles} from "./libraries/Roles.sol";

/// @title EnergyMarket
/// @notice Records prosumer-signed energy orders per 15-minute delivery slot, holds buyers'
/// escrow, takes the facilitator's clearing result after checking it against every order, and
/// settles each slot against metered energy.
///
/// Money stays inside the market as per-account balances (`available` and `locked`), so an
/// order's escrow is one storage write instead of a token transfer; tokens enter and leave only
/// through `deposit` and `withdraw`. At every step the token balance of this contract equals the
/// sum of all accounts plus the pots of cleared, unsettled slots.
///
/// Settlement rule (dual imbalance pricing), per fill of F Wh at clearing price p:
/// - a seller is credited F·p; the part of F it did not feed in (shortfall) it buys back from the
///   balancing account at the shortfall price. If its balance cannot cover that charge, the
///   balancing account bears the rest (event `ImbalanceUncollected`).
/// - a buyer paid F·p at clearing; the part of F it did not take (surplus) the balancing account
///   buys back at the surplus price.
/// - a prosumer's metered energy is allocated to its fills of a slot in committed order, so two
///   fills never count the same metered Wh twice.
/// Amounts a buyer pays round up and amounts paid out round down; the rounding remainder of the
/// slot's pot goes to the balancing account.
///
/// Narrowing casts: an order's escrow or cost is at most 2^32 Wh × 2^64 per kWh / 1000 < 2^87, so
/// it fits in uint128 without SafeCast; balances that can grow past that go through SafeCast.
contract EnergyMarket is IEnergyMarket, AccessControl, EIP712, ReentrancyGuardTransient {
    using SafeERC20 for IERC20;

    // ───────────────────────────── constants ─────────────────────────────

    /// @notice Relays orders and commits clearings.
    bytes32 public constant FACILITATOR_ROLE = Roles.FACILITATOR_ROLE;
    /// @notice Posts meter readings.
    bytes32 public constant METER_ROLE = Roles.METER_ROLE;

    /// @notice The EIP-712 type of an order.
    bytes32 public constant ORDER_TYPEHASH = keccak256(
        "Order(address prosumer,uint8 side,uint40 deliveryStart,uint32 energyWh,uint64 pricePerKWh,uint64 nonce,uint40 expiry)"
    );

    /// @notice The EIP-712 type of a signed cancellation.
    /// @dev A prosumer's signed cancellation names the order by its EIP-712 hash, which already
    /// binds the prosumer and the nonce; a relayed copy can only repeat a finished cancellation.
    bytes32 public constant CANCELLATION_TYPEHASH = keccak256("Cancellation(bytes32 orderHash)");

    /// @notice The length of a delivery slot in seconds.
    uint256 public constant SLOT_SECONDS = 900;
    /// @dev Slots per hour: a connection of C W carries at most C/4 Wh in one slot.
    uint32 private constant SLOTS_PER_HOUR = 4;
    uint256 private constant WH_PER_KWH = 1000;

    // An order's ledger entry: 64 bits in a word shared by four consecutive nonces of its
    // prosumer, so that a prosumer counting its nonces up pays for a fresh storage slot only
    // every fourth order. The entry is the order hash's low 64 bits with the two lowest bits
    // replaced by the status; a non-zero entry means the nonce is used.
    uint256 private constant ENTRY_BITS = 64;
    uint256 private constant ENTRY_MASK = type(uint64).max;
    uint256 private constant STATUS_MASK = 3;
    uint256 private constant ENTRY_OPEN = 1;
    uint256 private constant ENTRY_CANCELLED = 2;
    uint256 private constant ENTRY_CLEARED = 3;

    uint256 private constant READING_POSTED = 1 << 64;

    // ───────────────────────────── storage ─────────────────────────────

    /// @notice The settlement token deposits, escrows and payments are in.
    IERC20 public immutable TOKEN;
    /// @notice The participant register that orders and readings are checked against.
    IParticipantRegistry public immutable REGISTRY;
    /// @notice The account that supplies shortfalls and takes surpluses (the supplier or BRP).
    address public immutable BALANCING_ACCOUNT;
    /// @notice Orders for a slot close this many seconds before the slot starts.
    uint256 public immutable GATE_CLOSURE_SECONDS;

    uint64 private _shortfallPricePerKWh;
    uint64 private _surplusPricePerKWh;

    mapping(address account => Account) private _accounts;
    mapping(address prosumer => mapping(uint256 nonceWord => uint256 entries)) private _orderEntries;
    mapping(uint40 deliveryStart => SlotState) private _slots;
    // Written through a storage reference in postMeterReadings, which Slither 0.10 does not follow:
    // uninitialized-state is a false positive.
    // slither-disable-next-line uninitialized-state
    mapping(uint40 deliveryStart => mapping(address account => uint256 reading)) private _readings;

    constructor(
        IERC20 token,
        IParticipantRegistry registry,
        address admin,
        address balancingAccount,
        uint256 gateClosureSeconds,
        uint64 shortfallPricePerKWh,
        uint64 surplusPricePerKWh
    ) EIP712("GridLedger EnergyMarket", "1") {
        TOKEN = token;
        REGISTRY = registry;
        BALANCING_ACCOUNT = balancingAccount;
        GATE_CLOSURE_SECONDS = gateClosureSeconds;
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
        _setImbalancePrices(shortfallPricePerKWh, surplusPricePerKWh);
    }

    // ───────────────────────────── money ─────────────────────────────

    /// @inheritdoc IEnergyMarket
    function deposit(uint256 amount) external nonReentrant {
        if (amount == 0) revert ZeroAmount();
        TOKEN.safeTransferFrom(msg.sender, address(this), amount);
        _accounts[msg.sender].available += SafeCast.toUint128(amount);
        emit Deposited(msg.sender, amount);
    }

    /// @inheritdoc IEnergyMarket
    function withdraw(uint256 amount) external nonReentrant {
        if (amount == 0) revert ZeroAmount();
        Account storage account = _accounts[msg.sender];
        uint256 available = account.available;
        if (available < amount) revert InsufficientBalance(msg.sender, available, amount);
        // Cannot underflow: checked just above. The result is below `available`, a uint128, so it fits.
        unchecked {
            account.available = uint128(available - amount);
        }
        emit Withdrawn(msg.sender, amount);
        TOKEN.safeTransfer(msg.sender, amount);
    }

    // ───────────────────────────── orders ─────────────────────────────

    /// @inheritdoc IEnergyMarket
    function relayOrders(SignedOrder[] calldata orders) external onlyRole(FACILITATOR_ROLE) {
        uint256 count = orders.length;
        for (uint256 i; i < count; ++i) {
            SignedOrder calldata signed = orders[i];
            Order calldata order = signed.order;
            bytes32 hash = _hashOrder(order);
            // The third value, the bad `s` or length behind a RecoverError, is not needed: the revert
            // names the recovered signer. unused-return is a false positive.
            // slither-disable-next-line unused-return
            (address signer, ECDSA.RecoverError err,) = ECDSA.tryRecover(hash, signed.r, signed.vs);
            if (err != ECDSA.RecoverError.NoError || signer != order.prosumer) {
                revert InvalidSignature(hash, order.prosumer, signer);
            }
            _record(order, hash);
        }
    }

    /// @inheritdoc IEnergyMarket
    function placeOrder(Order calldata order) external {
        bytes32 hash = _hashOrder(order);
        if (msg.sender != order.prosumer) revert NotOrderOwner(hash, msg.sender, order.prosumer);
        _record(order, hash);
    }

    /// @inheritdoc IEnergyMarket
    function cancelOrder(Order calldata order) external {
        bytes32 hash = _hashOrder(order);
        if (msg.sender != order.prosumer) revert NotOrderOwner(hash, msg.sender, order.prosumer);
        _cancel(order, hash);
    }

    /// @inheritdoc IEnergyMarket
    function cancelOrderBySig(Order calldata order, bytes32 r, bytes32 vs) external {
        bytes32 hash = _hashOrder(order);
        bytes32 digest = _hashTypedDataV4(keccak256(abi.encode(CANCELLATION_TYPEHASH, hash)));
        // The third value, the bad `s` or length behind a RecoverError, is not needed: the revert
        // names the recovered signer. unused-return is a false positive.
        // slither-disable-next-line unused-return
        (address signer, ECDSA.RecoverError err,) = ECDSA.tryRecover(digest, r, vs);
        if (err != ECDSA.RecoverError.NoError || signer != order.prosumer) {
            revert InvalidSignature(digest, order.prosumer, signer);
        }
        _cancel(order, hash);
    }

    // ───────────────────────────── clearing ─────────────────────────────

    /// @inheritdoc IEnergyMarket
    function commitClearing(
        uint40 deliveryStart,
        uint64 clearingPricePerKWh,
        bytes32 networkReportHash,
        bytes32 networkModelVersion,
        Fill[] calldata fills
    ) external onlyRole(FACILITATOR_ROLE) {
        SlotState storage slot = _slots[deliveryStart];
        SlotState memory state = slot; // gas savings: every word read once
        if (state.status != SlotStatus.Open) revert SlotAlreadyCleared(deliveryStart);
        if (networkReportHash == bytes32(0) || networkModelVersion == bytes32(0)) {
            revert NetworkReportMissing(deliveryStart);
        }
        if (block.timestamp + GATE_CLOSURE_SECONDS < deliveryStart) {
            revert GateNotClosed(deliveryStart, deliveryStart - GATE_CLOSURE_SECONDS, block.timestamp);
        }
        if (fills.length != state.openOrders) {
            revert IncompleteClearing(deliveryStart, fills.length, state.openOrders);
        }

        // Running sums and the fills' hash chain start at Solidity's zero default: uninitialized-local
        // is a false positive for each.
        // slither-disable-start uninitialized-local
        bytes32 chain;
        uint256 boughtWh;
        uint256 soldWh;
        uint256 pot;
        // slither-disable-end uninitialized-local
        uint256 count = fills.length;
        for (uint256 i; i < count; ++i) {
            Order calldata order = fills[i].order;
            uint32 filledWh = fills[i].filledWh;
            bytes32 hash = _hashOrder(order);
            if (order.deliveryStart != deliveryStart) {
                revert WrongDeliverySlot(hash, order.deliveryStart, deliveryStart);
            }
            // Marking the entry cleared also rejects an order listed twice.
            _closeOpenEntry(order.prosumer, order.nonce, hash);
            if (filledWh > order.energyWh) revert FillExceedsOrder(hash, filledWh, order.energyWh);

            uint256 amount;
            if (order.side == Side.Buy) {
                if (filledWh != 0 && clearingPricePerKWh > order.pricePerKWh) {
                    revert PriceBeyondLimit(hash, clearingPricePerKWh, order.pricePerKWh);
                }
                boughtWh += filledWh;
                amount = _cost(filledWh, clearingPricePerKWh);
                uint256 escrow = _cost(order.energyWh, order.pricePerKWh);
                Account memory account = _accounts[order.prosumer];
                account.locked -= uint128(escrow); // fits: an escrow is below 2^87 (see the contract's notice)
                // Cannot underflow: amount <= escrow as filledWh <= energyWh and price <= limit. The
                // difference is below the escrow, so its uint128 cast fits.
                unchecked {
                    account.available += uint128(escrow - amount);
                }
                _accounts[order.prosumer] = account;
                pot += amount;
            } else {
                if (filledWh != 0 && clearingPricePerKWh < order.pricePerKWh) {
                    revert PriceBeyondLimit(hash, clearingPricePerKWh, order.pricePerKWh);
                }
                soldWh += filledWh;
                amount = _revenue(filledWh, clearingPricePerKWh);
            }
            chain = _chain(chain, hash, filledWh);
            if (filledWh != 0) emit OrderFilled(hash, order.prosumer, deliveryStart, filledWh, amount);
        }
        if (boughtWh != soldWh) revert EnergyImbalance(boughtWh, soldWh);

        slot.fillsHash = chain;
        slot.networkReportHash = networkReportHash;
        slot.status = SlotStatus.Cleared;
        slot.clearingPricePerKWh = clearingPricePerKWh;
        // Fits: at most 2^32 - 1 fills (openOrders is a uint32) of less than 2^87 each.
        slot.potAmount = uint128(pot);
        emit SlotCleared(
            deliveryStart, clearingPricePerKWh, boughtWh, chain, networkReportHash, networkModelVersion
        );
    }

    // ───────────────────────────── metering and settlement ─────────────────────────────

    /// @inheritdoc IEnergyMarket
    function postMeterReadings(uint40 deliveryStart, address[] calldata accounts, int64[] calldata netWh)
        external
        onlyRole(METER_ROLE)
    {
        if (accounts.length != netWh.length) revert LengthMismatch(accounts.length, netWh.length);
        _requireDeliveryEnded(deliveryStart);
        mapping(address => uint256) storage readings = _readings[deliveryStart];
        uint256 count = accounts.length;
        for (uint256 i; i < count; ++i) {
            address account = accounts[i];
            if (REGISTRY.capacityOf(account) == 0) revert NotRegistered(account);
            if (readings[account] != 0) revert MeterReadingAlreadyPosted(deliveryStart, account);
            // The int64's two's-complement bits in the low word (same width, no narrowing);
            // meterReading and _allocateMetered read them back with int64(uint64(reading)).
            readings[account] = READING_POSTED | uint256(uint64(netWh[i]));
            emit MeterReadingPosted(deliveryStart, account, netWh[i]);
        }
    }

    /// @inheritdoc IEnergyMarket
    function settle(uint40 deliveryStart, Fill[] calldata fills) external {
        SlotState storage slot = _slots[deliveryStart];
        SlotState memory state = slot; // gas savings
        if (state.status != SlotStatus.Cleared) revert SlotNotCleared(deliveryStart, state.status);
        // Nothing settles without a network validation report (commitClearing requires one).
        if (state.networkReportHash == bytes32(0)) revert NetworkReportMissing(deliveryStart);
        _requireDeliveryEnded(deliveryStart);

        uint256 price = state.clearingPricePerKWh;
        uint256 shortfallPrice = _shortfallPricePerKWh;
        uint256 surplusPrice = _surplusPricePerKWh;
        uint256 pot = state.potAmount;
        // Running sums and the fills' hash chain start at Solidity's zero default: uninitialized-local
        // is a false positive for each.
        // slither-disable-start uninitialized-local
        uint256 toBalancing;
        uint256 fromBalancing;
        bytes32 chain;
        // slither-disable-end uninitialized-local
        uint256 count = fills.length;
        for (uint256 i; i < count; ++i) {
            Order calldata order = fills[i].order;
            uint32 filledWh = fills[i].filledWh;
            bytes32 hash = _hashOrder(order);
            chain = _chain(chain, hash, filledWh);
            if (filledWh == 0) continue;

            address prosumer = order.prosumer;
            // At most filledWh, a uint32, so the uint32 casts of it below fit.
            uint256 deviationWh = filledWh - _allocateMetered(deliveryStart, prosumer, order.side, filledWh);
            uint256 payment;
            // 0 unless the prosumer deviated: the zero default is meant (uninitialized-local is a false positive).
            // slither-disable-next-line uninitialized-local
            uint256 charge;
            Account memory account = _accounts[prosumer];
            if (order.side == Side.Sell) {
                payment = _revenue(filledWh, price);
                pot -= payment;
                charge = _revenue(deviationWh, shortfallPrice);
                uint256 funds = uint256(account.available) + payment;
                uint256 collected = charge < funds ? charge : funds;
                account.available = SafeCast.toUint128(funds - collected);
                toBalancing += collected;
                if (collected < charge) emit ImbalanceUncollected(prosumer, deliveryStart, charge - collected);
            } else {
                payment = _revenue(deviationWh, surplusPrice);
                account.available += uint128(payment); // fits: below 2^87, and += is checked
                fromBalancing += payment;
            }
            _accounts[prosumer] = account;
            emit FillSettled(hash, prosumer, deliveryStart, uint32(deviationWh), payment, charge);
        }
        if (chain != state.fillsHash) revert FillsMismatch(deliveryStart, state.fillsHash, chain);

        // The pot's rounding remainder belongs to the balancing account.
        Account storage balancing = _accounts[BALANCING_ACCOUNT];
        uint256 balancingFunds = uint256(balancing.available) + toBalancing + pot;
        if (balancingFunds < fromBalancing) {
            revert InsufficientBalance(BALANCING_ACCOUNT, balancingFunds, fromBalancing);
        }
        balancing.available = SafeCast.toUint128(balancingFunds - fromBalancing);

        slot.status = SlotStatus.Settled;
        slot.potAmount = 0;
        emit SlotSettled(deliveryStart, state.potAmount - pot, toBalancing + pot, fromBalancing);
    }

    // ───────────────────────────── administration ─────────────────────────────

    /// @inheritdoc IEnergyMarket
    function setImbalancePrices(uint64 shortfallPricePerKWh, uint64 surplusPricePerKWh)
        external
        onlyRole(DEFAULT_ADMIN_ROLE)
    {
        _setImbalancePrices(shortfallPricePerKWh, surplusPricePerKWh);
    }

    // ───────────────────────────── views ─────────────────────────────

    /// @inheritdoc IEnergyMarket
    function orderHash(Order calldata order) external view returns (bytes32) {
        return _hashOrder(order);
    }

    /// @inheritdoc IEnergyMarket
    function slotState(uint40 deliveryStart) external view returns (SlotState memory) {
        return _slots[deliveryStart];
    }

    /// @inheritdoc IEnergyMarket
    function accountOf(address account) external view returns (Account memory) {
        return _accounts[account];
    }

    /// @inheritdoc IEnergyMarket
    function accountsOf(address[] calldata accounts) external view returns (Account[] memory result) {
        result = new Account[](accounts.length);
        for (uint256 i; i < accounts.length; ++i) {
            result[i] = _accounts[accounts[i]];
        }
    }

    /// @inheritdoc IEnergyMarket
    function nonceStatus(address prosumer, uint64 nonce) external view returns (uint8) {
        (,, uint256 entry) = _entryOf(prosumer, nonce);
        return uint8(entry & STATUS_MASK); // fits: two bits
    }

    /// @inheritdoc IEnergyMarket
    function meterReading(uint40 deliveryStart, address account) external view returns (bool posted, int64 netWh) {
        uint256 reading = _readings[deliveryStart][account];
        // The low 64 bits hold the reading (see postMeterReadings); the truncation drops the flag.
        return (reading != 0, int64(uint64(reading)));
    }

    /// @inheritdoc IEnergyMarket
    function imbalancePrices() external view returns (uint64 shortfallPricePerKWh, uint64 surplusPricePerKWh) {
        return (_shortfallPricePerKWh, _surplusPricePerKWh);
    }

    // ───────────────────────────── internal ─────────────────────────────

    function _record(Order calldata order, bytes32 hash) private {
        address prosumer = order.prosumer;
        uint40 deliveryStart = order.deliveryStart;
        if (deliveryStart % SLOT_SECONDS != 0) revert InvalidDeliveryStart(deliveryStart);
        if (block.timestamp > order.expiry) revert OrderExpired(hash, order.expiry, block.timestamp);
        _requireGateOpen(hash, deliveryStart);
        uint32 maxEnergyWh = REGISTRY.capacityOf(prosumer) / SLOTS_PER_HOUR;
        if (maxEnergyWh == 0) revert NotRegistered(prosumer);
        if (order.energyWh == 0 || order.energyWh > maxEnergyWh) {
            revert InvalidEnergy(hash, order.energyWh, maxEnergyWh);
        }

        (uint256 word, uint256 shift, uint256 entry) = _entryOf(prosumer, order.nonce);
        if (entry != 0) revert NonceAlreadyUsed(prosumer, order.nonce);
        _orderEntries[prosumer][order.nonce >> 2] = word | (_fingerprint(hash, ENTRY_OPEN) << shift);

        if (order.side == Side.Buy) {
            uint256 escrow = _cost(order.energyWh, order.pricePerKWh);
            Account memory account = _accounts[prosumer];
            if (account.available < escrow) revert InsufficientBalance(prosumer, account.available, escrow);
            // Cannot underflow: checked just above.
            // Fits: an escrow is below 2^87 (see the contract's notice).
            unchecked {
                account.available -= uint128(escrow);
            }
            account.locked += uint128(escrow);
            _accounts[prosumer] = account;
        }
        _slots[deliveryStart].openOrders += 1;
        emit OrderRecorded(
            hash, prosumer, deliveryStart, order.side, order.energyWh, order.pricePerKWh, order.nonce, order.expiry
        );
    }

    function _cancel(Order calldata order, bytes32 hash) private {
        address prosumer = order.prosumer;
        _requireGateOpen(hash, order.deliveryStart);

        (uint256 word, uint256 shift, uint256 entry) = _entryOf(prosumer, order.nonce);
        // 0 unless an open order is cancelled: the zero default is meant (uninitialized-local is a false positive).
        // slither-disable-next-line uninitialized-local
        uint256 refund;
        if (entry == 0) {
            // Never recorded: burn the nonce so a signed copy can no longer be relayed.
            _orderEntries[prosumer][order.nonce >> 2] = word | (_fingerprint(hash, ENTRY_CANCELLED) << shift);
        } else if (entry == _fingerprint(hash, ENTRY_OPEN)) {
            _orderEntries[prosumer][order.nonce >> 2] =
                (word & ~(ENTRY_MASK << shift)) | (_fingerprint(hash, ENTRY_CANCELLED) << shift);
            _slots[order.deliveryStart].openOrders -= 1;
            if (order.side == Side.Buy) {
                refund = _cost(order.energyWh, order.pricePerKWh); // below 2^87: the casts fit
                Account memory account = _accounts[prosumer];
                account.locked -= uint128(refund);
                account.available += uint128(refund);
                _accounts[prosumer] = account;
            }
        } else {
            revert OrderNotOpen(hash);
        }
        emit OrderCancelled(hash, prosumer, order.nonce, refund);
    }

    function _closeOpenEntry(address prosumer, uint64 nonce, bytes32 hash) private {
        (uint256 word, uint256 shift, uint256 entry) = _entryOf(prosumer, nonce);
        if (entry != _fingerprint(hash, ENTRY_OPEN)) revert OrderNotOpen(hash);
        // OPEN (01) -> CLEARED (11): set the status's high bit.
        _orderEntries[prosumer][nonce >> 2] = word | (ENTRY_CLEARED << shift);
    }

    function _entryOf(address prosumer, uint64 nonce) private view returns (uint256 word, uint256 shift, uint256 entry) {
        word = _orderEntries[prosumer][nonce >> 2];
        shift = (nonce & 3) * ENTRY_BITS;
        entry = (word >> shift) & ENTRY_MASK;
    }

    /// @dev Allocates up to `filledWh` of the prosumer's metered energy on `side` in this slot
    /// (fed-in for a sale, taken for a purchase) and returns the amount matched. What earlier
    /// fills of the same transaction used is kept in transient storage. The key names the slot,
    /// and a slot settles once, so no later call in the same transaction can read a stale value.
    function _allocateMetered(uint40 deliveryStart, address prosumer, Side side, uint32 filledWh)
        private
        returns (uint256 matchedWh)
    {
        uint256 reading = _readings[deliveryStart][prosumer];
        if (reading == 0) revert MeterReadingMissing(deliveryStart, prosumer);
        int256 netWh = int64(uint64(reading)); // the low 64 bits hold the reading
        uint256 meteredWh;
        if (side == Side.Sell) meteredWh = netWh < 0 ? uint256(-netWh) : 0;
        else meteredWh = netWh > 0 ? uint256(netWh) : 0;

        bytes32 key = keccak256(abi.encode(deliveryStart, prosumer, side));
        uint256 used;
        assembly ("memory-safe") {
            used := tload(key)
        }
        uint256 left = meteredWh > used ? meteredWh - used : 0;
        matchedWh = filledWh < left ? filledWh : left;
        uint256 nowUsed = used + matchedWh;
        assembly ("memory-safe") {
            tstore(key, nowUsed)
        }
    }

    function _requireGateOpen(bytes32 hash, uint40 deliveryStart) private view {
        if (block.timestamp + GATE_CLOSURE_SECONDS >= deliveryStart) {
            uint256 gateClosure = deliveryStart > GATE_CLOSURE_SECONDS ? deliveryStart - GATE_CLOSURE_SECONDS : 0;
            revert GateClosed(hash, deliveryStart, gateClosure, block.timestamp);
        }
    }

    function _requireDeliveryEnded(uint40 deliveryStart) private view {
        uint256 deliveryEnd = uint256(deliveryStart) + SLOT_SECONDS;
        if (block.timestamp < deliveryEnd) revert DeliveryNotEnded(deliveryStart, deliveryEnd, block.timestamp);
    }

    function _setImbalancePrices(uint64 shortfallPricePerKWh, uint64 surplusPricePerKWh) private {
        if (shortfallPricePerKWh < surplusPricePerKWh) {
            revert ImbalancePricesInverted(shortfallPricePerKWh, surplusPricePerKWh);
        }
        _shortfallPricePerKWh = shortfallPricePerKWh;
        _surplusPricePerKWh = surplusPricePerKWh;
        emit ImbalancePricesSet(shortfallPricePerKWh, surplusPricePerKWh);
    }

    function _hashOrder(Order calldata order) private view returns (bytes32) {
        return _hashTypedDataV4(
            keccak256(
                abi.encode(
                    ORDER_TYPEHASH,
                    order.prosumer,
                    order.side,
                    order.deliveryStart,
                    order.energyWh,
                    order.pricePerKWh,
                    order.nonce,
                    order.expiry
                )
            )
        );
    }

    function _fingerprint(bytes32 hash, uint256 status) private pure returns (uint256) {
        return (uint256(hash) & ENTRY_MASK & ~STATUS_MASK) | status;
    }

    function _chain(bytes32 chain, bytes32 hash, uint32 filledWh) private pure returns (bytes32 next) {
        assembly ("memory-safe") {
            let ptr := mload(0x40)
            mstore(ptr, chain)
            mstore(add(ptr, 0x20), hash)
            mstore(add(ptr, 0x40), filledWh)
            next := keccak256(ptr, 0x60)
        }
    }

    /// @dev What a buyer pays for `energyWh` at `pricePerKWh`, rounded up.
    function _cost(uint256 energyWh, uint256 pricePerKWh) private pure returns (uint256) {
        return (energyWh * pricePerKWh + WH_PER_KWH - 1) / WH_PER_KWH;
    }

    /// @dev What is paid out for `energyWh` at `pricePerKWh`, rounded down.
    function _revenue(uint256 energyWh, uint256 pricePerKWh) private pure returns (uint256) {
        return energyWh * pricePerKWh / WH_PER_KWH;
    }
}
