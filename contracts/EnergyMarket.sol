// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {IERC20Permit} from "@openzeppelin/contracts/token/ERC20/extensions/IERC20Permit.sol";
import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";
import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {MessageHashUtils} from "@openzeppelin/contracts/utils/cryptography/MessageHashUtils.sol";
import {SafeCast} from "@openzeppelin/contracts/utils/math/SafeCast.sol";
import {ReentrancyGuardTransient} from "@openzeppelin/contracts/utils/ReentrancyGuardTransient.sol";
import {IEnergyMarket} from "./interfaces/IEnergyMarket.sol";
import {IParticipantRegistry} from "./interfaces/IParticipantRegistry.sol";
import {Roles} from "./libraries/Roles.sol";

/// @title EnergyMarket
/// @notice Records prosumer-signed energy orders per 15-minute delivery slot, holds buyers'
/// escrow, takes the facilitator's clearing result in chunks after checking it against every
/// order, and settles each slot in the same chunks against metered energy, paying the DSO's
/// network charges.
///
/// Money stays inside the market as per-account balances (`available` and `locked`), so an
/// order's escrow is a storage write, not a token transfer; tokens enter and leave only through
/// `deposit` and `withdraw`. At every step the token balance of this contract equals the sum of
/// all accounts plus the pots of slots being settled.
///
/// Storage is what a feeder's gas bill is made of, so the ledger keeps per order nothing of its
/// own: a prosumer's account, its next nonce and what the registry said about it share one word;
/// a slot keeps the hash chain of its orders (with a checkpoint every 64 orders), and clearing
/// keeps one hash per chunk; readings are 32 bits each, eight to a word.
///
/// Settlement rule (dual imbalance pricing), per fill of F Wh at clearing price p and the slot's
/// network tariff t:
/// - a buyer pays ⌈F·(p+t)/1000⌉ in all, of which ⌈F·(p+t)/1000⌉ − ⌈F·p/1000⌉ is the network
///   charge (to the DSO's account); the part of F it did not take (surplus) the balancing account
///   buys back at the surplus price. Its escrow returns, less what it paid, at settlement.
/// - a seller is credited ⌊F·p/1000⌋; the part of F it did not feed in (shortfall) it buys back
///   from the balancing account at the shortfall price. If its balance cannot cover that charge,
///   the balancing account bears the rest (event `ImbalanceUncollected`).
/// - a prosumer's metered energy is allocated to its fills of a slot in committed order, so two
///   fills never count the same metered Wh twice.
/// Amounts a buyer pays round up and amounts paid out round down; the rounding remainder of the
/// slot's pot goes to the balancing account.
///
/// Narrowing casts: balances are 56-bit (7.2·10^16 base units, 72 billion tokens of six
/// decimals); every amount that can grow goes through SafeCast.
contract EnergyMarket is IEnergyMarket, AccessControl, EIP712, ReentrancyGuardTransient {
    using SafeERC20 for IERC20;

    // ───────────────────────────── constants ─────────────────────────────

    /// @notice Relays orders and commits clearings.
    bytes32 public constant FACILITATOR_ROLE = Roles.FACILITATOR_ROLE;
    /// @notice Posts meter readings.
    bytes32 public constant METER_ROLE = Roles.METER_ROLE;
    /// @notice Sets the network tariff.
    bytes32 public constant DSO_ROLE = Roles.DSO_ROLE;

    /// @notice The EIP-712 type of an order.
    bytes32 public constant ORDER_TYPEHASH = keccak256(
        "Order(address prosumer,uint8 side,uint40 deliveryStart,uint32 energyWh,uint64 pricePerKWh,uint64 nonce,uint40 expiry)"
    );

    /// @notice The EIP-712 type of a signed cancellation.
    /// @dev A prosumer's signed cancellation names the order by its EIP-712 hash, which already
    /// binds the prosumer and the nonce; a relayed copy can only repeat a finished cancellation.
    bytes32 public constant CANCELLATION_TYPEHASH = keccak256("Cancellation(bytes32 orderHash)");

    /// @notice The EIP-712 type of a signed withdrawal (`withdrawBySig`), in the market's domain.
    bytes32 public constant WITHDRAWAL_TYPEHASH =
        keccak256("Withdrawal(address owner,uint256 amount,uint256 nonce,uint256 deadline)");

    /// @notice The length of a delivery slot in seconds.
    uint256 public constant SLOT_SECONDS = 900;
    /// @notice The order chain keeps a checkpoint after every this many orders of a slot, so a
    /// cancellation proves its order with at most this many links (a fresh word per 256 orders
    /// costs a relayed order about 86 gas).
    uint256 public constant CHECKPOINT_ORDERS = 256;
    /// @dev Slots per hour: a connection of C W carries at most C/4 Wh in one slot.
    uint32 private constant SLOTS_PER_HOUR = 4;
    uint256 private constant WH_PER_KWH = 1000;
    /// @dev Slots are counted in 24 bits in an account word (deliveryStart / 900).
    uint256 private constant LATEST_DELIVERY_START = (1 << 24) * SLOT_SECONDS;
    /// @dev Readings: eight 32-bit fields per word, each int32 Wh + 2^31 (zero means none posted).
    uint256 private constant READING_MASK = 0xffffffff;
    uint256 private constant READING_OFFSET = 1 << 31;
    uint256 private constant READING_BYTES = 8;
    // Packed calldata (see IEnergyMarket's PackedOrder and Fill).
    uint256 private constant FILL_ENERGY_SHIFT = 160;
    uint256 private constant FILL_FILLED_SHIFT = 192;
    uint256 private constant FILL_SIDE_SHIFT = 224;
    uint256 private constant FILL_CANCELLED_SHIFT = 225;

    // ───────────────────────────── storage ─────────────────────────────

    // A participant's account is one storage word: its money, its next nonce, what the registry
    // says about it (copied once: registrations never change), and the metered energy its fills of
    // the slot being settled have used so far (so a slot's chunks never count a metered Wh twice).
    // Bits, low to high: available 56 | locked 56 | nextNonce 32 | maxEnergyWh 32 (capacity / 4;
    // 0 until admitted) | participant 24 (the registry's number, under which readings are stored)
    // | allocSlot 24 (deliveryStart / 900 of the slot allocUsedWh belongs to) | allocUsedWh 32.
    uint256 private constant LOCKED_SHIFT = 56;
    uint256 private constant NONCE_SHIFT = 112;
    uint256 private constant MAX_ENERGY_SHIFT = 144;
    uint256 private constant PARTICIPANT_SHIFT = 176;
    uint256 private constant ALLOC_SLOT_SHIFT = 200;
    uint256 private constant ALLOC_USED_SHIFT = 224;
    uint256 private constant MASK_56 = (1 << 56) - 1;
    uint256 private constant MASK_32 = (1 << 32) - 1;
    uint256 private constant MASK_24 = (1 << 24) - 1;

    struct Slot {
        // the order chain and its length share a word: a relay batch writes one word per slot
        bytes28 ordersHash; // the order chain: keccak(previous ‖ orderLink)'s first 28 bytes, in arrival order
        uint32 orders;
        // cancellations, tariff and progress (one word)
        uint32 cancelled;
        uint64 networkTariffPerKWh;
        SlotStatus status;
        uint64 clearingPricePerKWh;
        uint16 chunks; // the clearing's number of chunks, set by chunk 0
        uint16 committedChunks;
        uint16 settledChunks;
        // the clearing's running check and totals
        bytes32 replay;
        bytes32 fillsHash;
        uint32 committedOrders;
        uint32 committedCancelled;
        uint64 boughtWh;
        uint64 soldWh;
        uint32 settledOrders;
        bytes32 networkReportHash;
        bytes32 networkModelVersion;
        // the running totals of a settlement in several chunks (amounts of 56-bit balances, summed)
        int96 pot; // buyers' payments and shortfall charges in, sellers' revenue and surplus buy-backs out
        uint80 paidToSellers;
        uint80 networkCharges;
        uint96 toBalancing;
        uint96 fromBalancing;
    }

    /// @dev What a scan of clearing fills adds up.
    struct Tally {
        bytes32 replay;
        bytes32 fillsHash;
        bytes32 chunkHash;
        uint256 boughtWh;
        uint256 soldWh;
        uint256 cancelled;
    }

    /// @dev What a settlement adds up (the slot's totals so far, and this chunk's hash and charges).
    struct Totals {
        int256 pot;
        uint256 paidToSellers;
        uint256 toBalancing;
        uint256 fromBalancing;
        uint256 networkCharges;
        uint256 chunkNetworkCharges;
        bytes32 chunkHash;
    }

    /// @dev An order's fields, unpacked once.
    struct OrderTerms {
        address prosumer;
        Side side;
        uint40 deliveryStart;
        uint32 energyWh;
        uint64 pricePerKWh;
        uint64 nonce;
        uint40 expiry;
    }

    /// @notice The settlement token deposits, escrows and payments are in.
    IERC20 public immutable TOKEN;
    /// @notice The participant register that orders and readings are checked against.
    IParticipantRegistry public immutable REGISTRY;
    /// @notice The account that supplies shortfalls and takes surpluses (the supplier or BRP).
    address public immutable BALANCING_ACCOUNT;
    /// @notice The DSO's account in this market, where network charges are paid (fixed at
    /// deployment; the DSO takes them out with `withdraw`).
    address public immutable DSO_ACCOUNT;
    /// @notice Orders for a slot close this many seconds before the slot starts.
    uint256 public immutable GATE_CLOSURE_SECONDS;

    uint64 private _shortfallPricePerKWh;
    uint64 private _surplusPricePerKWh;
    /// @dev Slots whose settlement has begun and not finished.
    uint256 private _settlementsUnderWay;

    mapping(address account => uint256 word) private _accounts;
    mapping(uint40 deliveryStart => Slot) private _slots;
    mapping(uint40 deliveryStart => mapping(uint256 k => bytes32 chain)) private _checkpoints;
    // A committed chunk: its hash's first 28 bytes, and (in the last 4) the position after its last order.
    mapping(uint40 deliveryStart => mapping(uint256 chunk => uint256 word)) private _chunks;
    mapping(bytes32 orderHash => bool) private _cancelled;
    // Written in postMeterReadings through a storage reference, which Slither does not follow:
    // uninitialized-state is a false positive.
    // slither-disable-next-line uninitialized-state
    mapping(uint40 deliveryStart => mapping(uint256 word => uint256 readings)) private _readings;
    /// @notice The nonce `owner`'s next signed withdrawal must carry (each one used once, in order).
    mapping(address owner => uint256) public withdrawalNonce;

    constructor(
        IERC20 token,
        IParticipantRegistry registry,
        address admin,
        address balancingAccount,
        address dsoAccount,
        uint256 gateClosureSeconds,
        uint64 shortfallPricePerKWh,
        uint64 surplusPricePerKWh
    ) EIP712("GridLedger EnergyMarket", "1") {
        TOKEN = token;
        REGISTRY = registry;
        BALANCING_ACCOUNT = balancingAccount;
        DSO_ACCOUNT = dsoAccount;
        GATE_CLOSURE_SECONDS = gateClosureSeconds;
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
        _setImbalancePrices(shortfallPricePerKWh, surplusPricePerKWh);
    }

    // ───────────────────────────── money ─────────────────────────────

    /// @inheritdoc IEnergyMarket
    function deposit(uint256 amount) external nonReentrant {
        if (amount == 0) revert ZeroAmount();
        TOKEN.safeTransferFrom(msg.sender, address(this), amount);
        _accounts[msg.sender] = _credit(_accounts[msg.sender], amount);
        emit Deposited(msg.sender, amount);
    }

    /// @inheritdoc IEnergyMarket
    function depositFor(address[] calldata accounts, uint256[] calldata amounts) external nonReentrant {
        uint256 n = accounts.length;
        if (amounts.length != n) revert LengthMismatch(n, amounts.length);
        // slither-disable-next-line uninitialized-local
        uint256 total;
        for (uint256 i; i < n; ++i) {
            address account = accounts[i];
            uint256 amount = amounts[i];
            if (amount == 0) revert ZeroAmount();
            uint256 word = _accounts[account];
            // Only registered participants: admitting one reverts with NotRegistered otherwise.
            if ((word >> MAX_ENERGY_SHIFT) & MASK_32 == 0) word = _admitted(word, account);
            _accounts[account] = _credit(word, amount);
            total += amount;
            emit Deposited(account, amount);
        }
        TOKEN.safeTransferFrom(msg.sender, address(this), total);
    }

    /// @inheritdoc IEnergyMarket
    function withdraw(uint256 amount) external nonReentrant {
        if (amount == 0) revert ZeroAmount();
        uint256 word = _accounts[msg.sender];
        uint256 available = word & MASK_56;
        if (available < amount) revert InsufficientBalance(msg.sender, available, amount);
        // Cannot underflow: checked just above, so the available field only shrinks.
        unchecked {
            _accounts[msg.sender] = word - amount;
        }
        emit Withdrawn(msg.sender, amount);
        TOKEN.safeTransfer(msg.sender, amount);
    }

    /// @inheritdoc IEnergyMarket
    function depositWithPermit(address owner, uint256 amount, uint256 deadline, uint8 v, bytes32 r, bytes32 s)
        external
        nonReentrant
    {
        if (amount == 0) revert ZeroAmount();
        // The token checks the permit (signer, deadline, its own nonce); the credit goes to its signer.
        IERC20Permit(address(TOKEN)).permit(owner, address(this), amount, deadline, v, r, s);
        // The `from` is not arbitrary: TOKEN is SettlementToken, whose permit reverts unless `owner`
        // signed it, and the tokens are credited to `owner` itself (arbitrary-send-erc20-permit
        // is a false positive).
        // slither-disable-next-line arbitrary-send-erc20-permit
        TOKEN.safeTransferFrom(owner, address(this), amount);
        _accounts[owner] = _credit(_accounts[owner], amount);
        emit Deposited(owner, amount);
    }

    /// @inheritdoc IEnergyMarket
    function withdrawBySig(address owner, uint256 amount, uint256 nonce, uint256 deadline, bytes32 r, bytes32 vs)
        external
        nonReentrant
    {
        if (amount == 0) revert ZeroAmount();
        if (block.timestamp > deadline) revert WithdrawalExpired(owner, deadline, block.timestamp);
        uint256 expected = withdrawalNonce[owner];
        if (nonce != expected) revert WithdrawalNonceUsed(owner, nonce, expected);
        bytes32 digest =
            _hashTypedDataV4(keccak256(abi.encode(WITHDRAWAL_TYPEHASH, owner, amount, nonce, deadline)));
        // The third value (the bad `s` or length) is not needed: the revert names the recovered signer.
        // slither-disable-next-line unused-return
        (address signer, ECDSA.RecoverError err,) = ECDSA.tryRecover(digest, r, vs);
        if (err != ECDSA.RecoverError.NoError || signer != owner) revert WithdrawalSignatureInvalid(owner, signer);
        uint256 word = _accounts[owner];
        uint256 available = word & MASK_56;
        if (available < amount) revert InsufficientBalance(owner, available, amount);
        withdrawalNonce[owner] = expected + 1;
        // Cannot underflow: checked just above, so the available field only shrinks.
        unchecked {
            _accounts[owner] = word - amount;
        }
        emit Withdrawn(owner, amount);
        TOKEN.safeTransfer(owner, amount);
    }

    // ───────────────────────────── orders ─────────────────────────────

    /// @inheritdoc IEnergyMarket
    function relayOrders(PackedOrder[] calldata orders) external onlyRole(FACILITATOR_ROLE) {
        // The order chain of the slot being appended to is kept in memory while consecutive orders
        // share it, and written when the slot changes and at the end.
        // The zero defaults are meant: slot 0 is never a delivery slot (uninitialized-local is a false positive).
        // slither-disable-next-line uninitialized-local
        uint40 current;
        // slither-disable-next-line uninitialized-local
        bytes32 chain;
        // slither-disable-next-line uninitialized-local
        uint256 count;
        bytes32 domain = _domainSeparatorV4(); // gas savings: once per batch
        // One buffer for the batch: the order type's hash followed by the order's seven fields, the
        // EIP-712 struct encoding, refilled per order (memory does not grow with the batch).
        OrderTerms memory o = _typedTerms();
        uint256 n = orders.length;
        for (uint256 i; i < n; ++i) {
            PackedOrder calldata packed = orders[i];
            uint256 head = packed.head;
            uint256 terms = packed.terms;
            if (head >> 240 != 0 || terms >> 168 != 0) revert MalformedOrder(i);
            o.prosumer = address(uint160(head));
            o.side = Side(uint8(head >> 160));
            o.deliveryStart = uint40(head >> 168);
            o.energyWh = uint32(head >> 208);
            o.pricePerKWh = uint64(terms >> 104);
            o.nonce = uint64(terms >> 40);
            o.expiry = uint40(terms);
            bytes32 hash = MessageHashUtils.toTypedDataHash(domain, _structHash(o));
            // The third value, the bad `s` or length behind a RecoverError, is not needed: the revert
            // names the recovered signer. unused-return is a false positive.
            // slither-disable-next-line unused-return
            (address signer, ECDSA.RecoverError err,) = ECDSA.tryRecover(hash, packed.r, packed.vs);
            if (err != ECDSA.RecoverError.NoError || signer != o.prosumer) {
                revert InvalidSignature(hash, o.prosumer, signer);
            }
            bytes32 link = _record(o, hash);
            emit OrderRecorded(o.deliveryStart, head, terms);
            if (o.deliveryStart != current) {
                if (current != 0) _appendOrders(current, chain, count);
                current = o.deliveryStart;
                chain = _slots[current].ordersHash;
                count = _slots[current].orders;
            }
            chain = _nextOrder(chain, link);
            ++count;
            if (count % CHECKPOINT_ORDERS == 0) _checkpoints[current][count / CHECKPOINT_ORDERS] = chain;
        }
        if (current != 0) _appendOrders(current, chain, count);
    }

    /// @inheritdoc IEnergyMarket
    function placeOrder(Order calldata order) external {
        OrderTerms memory o = _terms(order);
        bytes32 hash = _hashTerms(o);
        if (msg.sender != o.prosumer) revert NotOrderOwner(hash, msg.sender, o.prosumer);
        Slot storage slot = _slots[o.deliveryStart];
        bytes32 chain = _nextOrder(slot.ordersHash, _record(o, hash));
        emit OrderRecorded(
            o.deliveryStart,
            uint256(uint160(o.prosumer)) | (uint256(o.side) << 160) | (uint256(o.deliveryStart) << 168)
                | (uint256(o.energyWh) << 208),
            uint256(o.expiry) | (uint256(o.nonce) << 40) | (uint256(o.pricePerKWh) << 104)
        );
        uint256 count = uint256(slot.orders) + 1;
        if (count % CHECKPOINT_ORDERS == 0) _checkpoints[o.deliveryStart][count / CHECKPOINT_ORDERS] = chain;
        _appendOrders(o.deliveryStart, chain, count);
    }

    /// @inheritdoc IEnergyMarket
    function admit(address[] calldata accounts) external {
        for (uint256 i; i < accounts.length; ++i) {
            address account = accounts[i];
            uint256 word = _accounts[account];
            if ((word >> MAX_ENERGY_SHIFT) & MASK_32 == 0) _accounts[account] = _admitted(word, account);
        }
    }

    /// @inheritdoc IEnergyMarket
    function cancelOrder(Order calldata order, uint32 position, bytes32[] calldata segment) external {
        OrderTerms memory o = _terms(order);
        bytes32 hash = _hashTerms(o);
        if (msg.sender != o.prosumer) revert NotOrderOwner(hash, msg.sender, o.prosumer);
        _cancel(o, hash, position, segment);
    }

    /// @inheritdoc IEnergyMarket
    function cancelOrderBySig(
        Order calldata order,
        bytes32 r,
        bytes32 vs,
        uint32 position,
        bytes32[] calldata segment
    ) external {
        OrderTerms memory o = _terms(order);
        bytes32 hash = _hashTerms(o);
        bytes32 digest = _hashTypedDataV4(keccak256(abi.encode(CANCELLATION_TYPEHASH, hash)));
        // The third value, the bad `s` or length behind a RecoverError, is not needed: the revert
        // names the recovered signer. unused-return is a false positive.
        // slither-disable-next-line unused-return
        (address signer, ECDSA.RecoverError err,) = ECDSA.tryRecover(digest, r, vs);
        if (err != ECDSA.RecoverError.NoError || signer != o.prosumer) {
            revert InvalidSignature(digest, o.prosumer, signer);
        }
        _cancel(o, hash, position, segment);
    }

    // ───────────────────────────── network tariff ─────────────────────────────

    /// @inheritdoc IEnergyMarket
    function setNetworkTariff(uint40 firstDeliveryStart, uint64[] calldata perKWh) external onlyRole(DSO_ROLE) {
        uint256 count = perKWh.length;
        if (count == 0) revert EmptyTariff();
        _requireSlotBoundary(firstDeliveryStart);
        uint256 last = uint256(firstDeliveryStart) + (count - 1) * SLOT_SECONDS;
        if (last >= LATEST_DELIVERY_START) revert InvalidDeliveryStart(firstDeliveryStart, LATEST_DELIVERY_START);
        // Later slots close later: if the first slot's gate is open, every one's is.
        if (block.timestamp + GATE_CLOSURE_SECONDS >= firstDeliveryStart) {
            revert TariffGateClosed(firstDeliveryStart, _gateClosure(firstDeliveryStart), block.timestamp);
        }
        for (uint256 i; i < count; ++i) {
            // Fits: below LATEST_DELIVERY_START, checked above.
            _slots[uint40(firstDeliveryStart + i * SLOT_SECONDS)].networkTariffPerKWh = perKWh[i];
        }
        emit NetworkTariffSet(firstDeliveryStart, perKWh);
    }

    // ───────────────────────────── clearing ─────────────────────────────

    /// @inheritdoc IEnergyMarket
    function commitClearing(
        uint40 deliveryStart,
        uint64 clearingPricePerKWh,
        bytes32 networkReportHash,
        bytes32 networkModelVersion,
        uint16 chunk,
        uint16 chunks,
        Fill[] calldata fills
    ) external onlyRole(FACILITATOR_ROLE) {
        Slot storage slot = _slots[deliveryStart];
        SlotStatus status = slot.status;
        if (status >= SlotStatus.Cleared) revert SlotAlreadyCleared(deliveryStart);
        if (networkReportHash == bytes32(0) || networkModelVersion == bytes32(0)) {
            revert NetworkReportMissing(deliveryStart);
        }
        if (chunks == 0) revert InvalidChunkCount(chunks);
        if (block.timestamp + GATE_CLOSURE_SECONDS < deliveryStart) {
            revert GateNotClosed(deliveryStart, _gateClosure(deliveryStart), block.timestamp);
        }
        if (chunk == 0) {
            // Start, or restart an unfinished clearing: nothing of an earlier attempt counts.
            slot.status = SlotStatus.Clearing;
            slot.clearingPricePerKWh = clearingPricePerKWh;
            slot.chunks = chunks;
            slot.committedChunks = 0;
            slot.replay = bytes32(0);
            slot.fillsHash = bytes32(0);
            slot.committedOrders = 0;
            slot.committedCancelled = 0;
            slot.boughtWh = 0;
            slot.soldWh = 0;
            slot.networkReportHash = networkReportHash;
            slot.networkModelVersion = networkModelVersion;
            emit ClearingStarted(deliveryStart, clearingPricePerKWh, networkReportHash, networkModelVersion, chunks);
        } else {
            uint256 expected = status == SlotStatus.Clearing ? slot.committedChunks : 0;
            if (chunk != expected) revert ChunkOutOfOrder(deliveryStart, chunk, expected);
            if (
                clearingPricePerKWh != slot.clearingPricePerKWh || chunks != slot.chunks
                    || networkReportHash != slot.networkReportHash || networkModelVersion != slot.networkModelVersion
            ) revert ClearingTermsChanged(deliveryStart);
        }

        uint256 position = slot.committedOrders;
        uint256 recorded = slot.orders;
        uint64 tariff = slot.networkTariffPerKWh;
        Tally memory tally = _scan(
            deliveryStart,
            clearingPricePerKWh,
            tariff,
            position,
            recorded,
            Tally(slot.replay, slot.fillsHash, bytes32(0), slot.boughtWh, slot.soldWh, slot.committedCancelled),
            fills
        );
        uint256 end = position + fills.length;
        bool last = chunk + 1 == chunks;
        if (last) {
            _requireSealable(deliveryStart, slot.ordersHash, recorded, slot.cancelled, end, tally);
        } else if (end >= recorded) {
            // A chunk before the last one must leave orders for the next.
            revert IncompleteClearing(deliveryStart, end, recorded);
        }

        slot.replay = tally.replay;
        slot.fillsHash = tally.fillsHash;
        // Fit: at most `recorded` (a uint32) orders, each of at most 2^32 − 1 Wh.
        slot.committedOrders = uint32(end);
        slot.committedCancelled = uint32(tally.cancelled);
        slot.boughtWh = uint64(tally.boughtWh);
        slot.soldWh = uint64(tally.soldWh);
        slot.committedChunks = chunk + 1;
        _chunks[deliveryStart][chunk] = (uint256(tally.chunkHash) & ~MASK_32) | end;
        // Fits: position < end <= recorded, a uint32.
        emit ClearingChunkCommitted(deliveryStart, chunk, uint32(position), uint32(fills.length), tally.chunkHash);
        _emitFills(deliveryStart, clearingPricePerKWh, tariff, fills);
        if (last) {
            slot.status = SlotStatus.Cleared;
            emit SlotCleared(
                deliveryStart,
                clearingPricePerKWh,
                tally.boughtWh,
                tally.fillsHash,
                networkReportHash,
                networkModelVersion,
                tariff
            );
        }
    }

    /// @inheritdoc IEnergyMarket
    function previewClearing(
        uint40 deliveryStart,
        uint64 clearingPricePerKWh,
        uint32 firstPosition,
        bytes32 replay,
        uint256 boughtBefore,
        uint256 soldBefore,
        uint256 cancelledBefore,
        bool last,
        Fill[] calldata fills
    ) external view returns (bytes32 nextReplay, uint256 boughtWh, uint256 soldWh, uint256 cancelled) {
        Slot storage slot = _slots[deliveryStart];
        uint256 recorded = slot.orders;
        Tally memory tally = _scan(
            deliveryStart,
            clearingPricePerKWh,
            slot.networkTariffPerKWh,
            firstPosition,
            recorded,
            Tally(replay, bytes32(0), bytes32(0), boughtBefore, soldBefore, cancelledBefore),
            fills
        );
        uint256 end = firstPosition + fills.length;
        if (last) _requireSealable(deliveryStart, slot.ordersHash, recorded, slot.cancelled, end, tally);
        else if (end >= recorded) revert IncompleteClearing(deliveryStart, end, recorded);
        return (tally.replay, tally.boughtWh, tally.soldWh, tally.cancelled);
    }

    // ───────────────────────────── metering and settlement ─────────────────────────────

    /// @inheritdoc IEnergyMarket
    function postMeterReadings(uint40 deliveryStart, bytes calldata readings) external onlyRole(METER_ROLE) {
        uint256 length = readings.length;
        if (length % READING_BYTES != 0) revert MalformedReadings(length);
        _requireDeliveryEnded(deliveryStart);
        uint256 participants = REGISTRY.participantCount();
        mapping(uint256 => uint256) storage words = _readings[deliveryStart];
        uint256 wordIndex = type(uint256).max;
        // Read before it is used: the first record loads it. uninitialized-local is a false positive.
        // slither-disable-next-line uninitialized-local
        uint256 word;
        for (uint256 offset; offset < length; offset += READING_BYTES) {
            uint256 record = uint64(bytes8(readings[offset:offset + READING_BYTES]));
            uint256 index = record >> 32;
            if (index >= participants) {
                // Fit: index is the record's high 32 bits, and the count is a uint32.
                revert IParticipantRegistry.UnknownParticipant(uint32(index), uint32(participants));
            }
            // int32 x ↦ x + 2^31 (flip the sign bit): every reading but the lowest int32 is non-zero.
            uint256 value = (record & READING_MASK) ^ READING_OFFSET;
            if (value == 0) revert MalformedReadings(length);
            if (index >> 3 != wordIndex) {
                if (wordIndex != type(uint256).max) words[wordIndex] = word;
                wordIndex = index >> 3;
                word = words[wordIndex];
            }
            uint256 shift = (index & 7) * 32;
            if ((word >> shift) & READING_MASK != 0) {
                revert MeterReadingAlreadyPosted(deliveryStart, REGISTRY.accountAt(uint32(index)));
            }
            word |= value << shift;
        }
        if (wordIndex != type(uint256).max) words[wordIndex] = word;
        emit MeterReadingsPosted(deliveryStart, readings);
    }

    /// @inheritdoc IEnergyMarket
    function settle(uint40 deliveryStart, uint16 chunk, SettlementFill[] calldata fills) external {
        Slot storage slot = _slots[deliveryStart];
        SlotStatus status = slot.status;
        if (status != SlotStatus.Cleared && status != SlotStatus.Settling) {
            revert SlotNotCleared(deliveryStart, status);
        }
        uint256 expected = status == SlotStatus.Settling ? slot.settledChunks : 0;
        if (chunk != expected) revert ChunkOutOfOrder(deliveryStart, chunk, expected);
        // Nothing settles without a network validation report (commitClearing requires one).
        if (slot.networkReportHash == bytes32(0)) revert NetworkReportMissing(deliveryStart);
        _requireDeliveryEnded(deliveryStart);

        // A settlement in one chunk keeps its running totals in memory only.
        // 0 before the first chunk: the zero defaults are meant (uninitialized-local is a false positive).
        // slither-disable-next-line uninitialized-local
        Totals memory totals;
        // slither-disable-next-line uninitialized-local
        uint256 position;
        if (chunk != 0) {
            totals = Totals(slot.pot, slot.paidToSellers, slot.toBalancing, slot.fromBalancing, slot.networkCharges, 0, 0);
            position = slot.settledOrders;
        }
        // Other slots' settlements under way (this one counts itself from its second chunk on).
        bool concurrent = _settlementsUnderWay > (chunk == 0 ? 0 : 1);
        bytes memory outcomes = new bytes(fills.length * 32);
        _settleFills(deliveryStart, slot, fills, outcomes, totals, concurrent);
        // The chunk's hash (first 28 bytes) and where it ends must be the committed ones.
        uint256 committed = _chunks[deliveryStart][chunk];
        uint256 given = (uint256(totals.chunkHash) & ~MASK_32) | (position + fills.length);
        if (given != committed) revert FillsMismatch(deliveryStart, chunk, bytes32(committed), bytes32(given));
        if (totals.chunkNetworkCharges != 0) {
            _accounts[DSO_ACCOUNT] = _credit(_accounts[DSO_ACCOUNT], totals.chunkNetworkCharges);
        }
        // Fits: position < the slot's recorded orders, a uint32.
        emit FillsSettled(deliveryStart, chunk, uint32(position), outcomes);

        if (chunk + 1 == slot.committedChunks) {
            if (chunk != 0) --_settlementsUnderWay;
            _finishSettlement(deliveryStart, slot, totals);
        } else {
            if (chunk == 0) {
                ++_settlementsUnderWay;
                slot.status = SlotStatus.Settling;
            }
            slot.settledChunks = chunk + 1;
            // Fits: at most the slot's recorded orders, a uint32.
            slot.settledOrders = uint32(position + fills.length);
            slot.pot = SafeCast.toInt96(totals.pot);
            slot.paidToSellers = SafeCast.toUint80(totals.paidToSellers);
            slot.networkCharges = SafeCast.toUint80(totals.networkCharges);
            slot.toBalancing = SafeCast.toUint96(totals.toBalancing);
            slot.fromBalancing = SafeCast.toUint96(totals.fromBalancing);
        }
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
        return _hashTerms(_terms(order));
    }

    /// @inheritdoc IEnergyMarket
    function orderLink(Order calldata order) external view returns (bytes32) {
        OrderTerms memory o = _terms(order);
        return _orderLink(_hashTerms(o), o.prosumer, o.side, o.energyWh, o.pricePerKWh);
    }

    /// @inheritdoc IEnergyMarket
    function slotState(uint40 deliveryStart) external view returns (SlotState memory) {
        Slot storage slot = _slots[deliveryStart];
        return SlotState({
            ordersHash: slot.ordersHash,
            fillsHash: slot.status >= SlotStatus.Cleared ? slot.fillsHash : bytes32(0),
            networkReportHash: slot.networkReportHash,
            orders: slot.orders,
            cancelledOrders: slot.cancelled,
            status: slot.status,
            clearingPricePerKWh: slot.clearingPricePerKWh,
            networkTariffPerKWh: slot.networkTariffPerKWh,
            chunks: slot.committedChunks,
            settledChunks: slot.settledChunks,
            pot: slot.status == SlotStatus.Settling ? _held(slot.pot, slot.toBalancing, slot.fromBalancing) : int256(0)
        });
    }

    /// @inheritdoc IEnergyMarket
    function orderCheckpoint(uint40 deliveryStart, uint256 k) external view returns (bytes32) {
        return _checkpoints[deliveryStart][k];
    }

    /// @inheritdoc IEnergyMarket
    function clearingChunk(uint40 deliveryStart, uint256 chunk) external view returns (bytes32 hash, uint32 end) {
        uint256 word = _chunks[deliveryStart][chunk];
        return (bytes32(word & ~MASK_32), uint32(word)); // the low 32 bits hold the end
    }

    /// @inheritdoc IEnergyMarket
    function accountOf(address account) external view returns (Account memory) {
        uint256 word = _accounts[account];
        return Account(uint128(word & MASK_56), uint128((word >> LOCKED_SHIFT) & MASK_56));
    }

    /// @inheritdoc IEnergyMarket
    function accountsOf(address[] calldata accounts) external view returns (Account[] memory result) {
        result = new Account[](accounts.length);
        for (uint256 i; i < accounts.length; ++i) {
            uint256 word = _accounts[accounts[i]];
            result[i] = Account(uint128(word & MASK_56), uint128((word >> LOCKED_SHIFT) & MASK_56));
        }
    }

    /// @inheritdoc IEnergyMarket
    function nextNonce(address prosumer) external view returns (uint64) {
        return uint64((_accounts[prosumer] >> NONCE_SHIFT) & MASK_32);
    }

    /// @inheritdoc IEnergyMarket
    function isCancelled(bytes32 hash) external view returns (bool) {
        return _cancelled[hash];
    }

    /// @inheritdoc IEnergyMarket
    function meterReading(uint40 deliveryStart, address account) public view returns (bool posted, int64 netWh) {
        uint256 index = REGISTRY.participant(account).index;
        uint256 value = (_readings[deliveryStart][index >> 3] >> ((index & 7) * 32)) & READING_MASK;
        // A 32-bit field minus 2^31: the int32 reading, which fits an int64.
        return (value != 0, int64(int256(value) - int256(READING_OFFSET)));
    }

    /// @inheritdoc IEnergyMarket
    function meterReadings(uint40 deliveryStart, address[] calldata accounts)
        external
        view
        returns (bool[] memory posted, int64[] memory netWh)
    {
        posted = new bool[](accounts.length);
        netWh = new int64[](accounts.length);
        for (uint256 i; i < accounts.length; ++i) {
            (posted[i], netWh[i]) = meterReading(deliveryStart, accounts[i]);
        }
    }

    /// @inheritdoc IEnergyMarket
    function networkTariff(uint40 deliveryStart) external view returns (uint64) {
        return _slots[deliveryStart].networkTariffPerKWh;
    }

    /// @inheritdoc IEnergyMarket
    function imbalancePrices() external view returns (uint64 shortfallPricePerKWh, uint64 surplusPricePerKWh) {
        return (_shortfallPricePerKWh, _surplusPricePerKWh);
    }

    // ───────────────────────────── internal: orders ─────────────────────────────

    /// @dev Checks and records an order against its prosumer's account; returns its order-chain
    /// link (the caller appends it to the slot's chain).
    function _record(OrderTerms memory o, bytes32 hash) private returns (bytes32) {
        address prosumer = o.prosumer;
        uint40 deliveryStart = o.deliveryStart;
        uint32 energyWh = o.energyWh;
        _requireSlotBoundary(deliveryStart);
        if (block.timestamp > o.expiry) revert OrderExpired(hash, o.expiry, block.timestamp);
        _requireGateOpen(hash, deliveryStart);

        uint256 word = _accounts[prosumer]; // gas savings: the whole account is one word, read and written once
        if ((word >> MAX_ENERGY_SHIFT) & MASK_32 == 0) word = _admitted(word, prosumer);
        uint32 maxEnergyWh = uint32(word >> MAX_ENERGY_SHIFT); // the 32-bit field
        if (energyWh == 0 || energyWh > maxEnergyWh) revert InvalidEnergy(hash, energyWh, maxEnergyWh);
        word = _useNonce(word, prosumer, o.nonce);
        if (o.side == Side.Buy) {
            uint256 escrow = _cost(energyWh, o.pricePerKWh);
            uint256 available = word & MASK_56;
            if (available < escrow) revert InsufficientBalance(prosumer, available, escrow);
            // Cannot underflow: checked just above (the escrow is then below 2^56).
            unchecked {
                word -= escrow;
            }
            word = _lock(word, escrow);
        }
        _accounts[prosumer] = word;
        return _orderLink(hash, prosumer, o.side, energyWh, o.pricePerKWh);
    }

    function _appendOrders(uint40 deliveryStart, bytes32 chain, uint256 count) private {
        Slot storage slot = _slots[deliveryStart];
        (slot.ordersHash, slot.orders) = (bytes28(chain), SafeCast.toUint32(count));
    }

    function _cancel(OrderTerms memory order, bytes32 hash, uint32 position, bytes32[] calldata segment) private {
        address prosumer = order.prosumer;
        _requireGateOpen(hash, order.deliveryStart);
        uint256 word = _accounts[prosumer];
        // 0 unless an open order is cancelled: the zero default is meant (uninitialized-local is a false positive).
        // slither-disable-next-line uninitialized-local
        uint256 refund;
        if (order.nonce >= (word >> NONCE_SHIFT) & MASK_32) {
            // Never recorded: burn the nonce (and every lower one) so a signed copy can no longer be relayed.
            word = _useNonce(word, prosumer, order.nonce);
        } else {
            if (_cancelled[hash] || !_isRecordedAt(order, hash, position, segment)) revert OrderNotOpen(hash);
            _cancelled[hash] = true;
            _slots[order.deliveryStart].cancelled += 1;
            if (order.side == Side.Buy) {
                refund = _cost(order.energyWh, order.pricePerKWh);
                word = _credit(_unlock(word, refund), refund);
            }
        }
        _accounts[prosumer] = word;
        emit OrderCancelled(hash, prosumer, order.nonce, refund);
    }

    /// @dev Copies the registry's record of `account` into its account word (reverting with
    /// NotRegistered if there is none).
    function _admitted(uint256 word, address account) private view returns (uint256) {
        IParticipantRegistry.Participant memory p = REGISTRY.participant(account);
        uint256 maxEnergyWh = p.capacityW / SLOTS_PER_HOUR; // at least 1: the registry's minimum is 4 W
        uint256 participant = SafeCast.toUint24(p.index);
        return (word & ~((MASK_32 << MAX_ENERGY_SHIFT) | (MASK_24 << PARTICIPANT_SHIFT)))
            | (maxEnergyWh << MAX_ENERGY_SHIFT) | (participant << PARTICIPANT_SHIFT);
    }

    function _useNonce(uint256 word, address prosumer, uint64 nonce) private pure returns (uint256) {
        uint256 next = (word >> NONCE_SHIFT) & MASK_32;
        if (nonce < next) revert NonceAlreadyUsed(prosumer, nonce, uint64(next));
        if (nonce >= MASK_32) revert NonceTooLarge(prosumer, nonce, uint64(MASK_32));
        return (word & ~(MASK_32 << NONCE_SHIFT)) | ((uint256(nonce) + 1) << NONCE_SHIFT); // fits: checked above
    }

    /// @dev Whether `order` is the slot's recorded order at `position`: `segment` holds the order
    /// chain's links from the checkpoint at or before `position` to the next one (or the last
    /// order), and must rebuild the chain between them with the order's own link in its place.
    function _isRecordedAt(OrderTerms memory order, bytes32 hash, uint256 position, bytes32[] calldata segment)
        private
        view
        returns (bool)
    {
        uint40 deliveryStart = order.deliveryStart;
        Slot storage slot = _slots[deliveryStart];
        uint256 recorded = slot.orders;
        if (position >= recorded) return false;
        uint256 first = position - position % CHECKPOINT_ORDERS;
        uint256 end = first + CHECKPOINT_ORDERS < recorded ? first + CHECKPOINT_ORDERS : recorded;
        if (segment.length != end - first) return false;
        if (segment[position - first] != _orderLink(hash, order.prosumer, order.side, order.energyWh, order.pricePerKWh))
        {
            return false;
        }
        bytes32 chain = first == 0 ? bytes32(0) : _checkpoints[deliveryStart][first / CHECKPOINT_ORDERS];
        for (uint256 i; i < segment.length; ++i) {
            chain = _nextOrder(chain, segment[i]);
        }
        return chain == (end == recorded ? slot.ordersHash : _checkpoints[deliveryStart][end / CHECKPOINT_ORDERS]);
    }

    // ───────────────────────────── internal: clearing ─────────────────────────────

    /// @dev Checks `fills` as the slot's orders from `position` on, continuing `tally`: each one's
    /// link rebuilds the order chain (compared at every checkpoint), each fill within its order's
    /// energy and limit price, a cancelled order flagged only if it was cancelled, with fill 0.
    function _scan(
        uint40 deliveryStart,
        uint64 price,
        uint64 tariff,
        uint256 position,
        uint256 recorded,
        Tally memory tally,
        Fill[] calldata fills
    ) private view returns (Tally memory) {
        uint256 count = fills.length;
        if (position + count > recorded) revert IncompleteClearing(deliveryStart, position + count, recorded);
        uint256 allIn = uint256(price) + tariff;
        for (uint256 i; i < count; ++i) {
            Fill calldata f = fills[i];
            bytes32 hash = f.orderHash;
            uint256 fill = f.fill;
            uint64 limit = f.pricePerKWh;
            if (fill >> 226 != 0) revert MalformedFill(position + i);
            uint32 energyWh = uint32(fill >> FILL_ENERGY_SHIFT);
            uint32 filledWh = uint32(fill >> FILL_FILLED_SHIFT);
            Side side = Side((fill >> FILL_SIDE_SHIFT) & 1);
            tally.replay = _nextOrder(tally.replay, _orderLink(hash, address(uint160(fill)), side, energyWh, limit));
            uint256 reached = position + i + 1;
            if (
                reached % CHECKPOINT_ORDERS == 0
                    && tally.replay != _checkpoints[deliveryStart][reached / CHECKPOINT_ORDERS]
            ) revert OrdersMismatch(deliveryStart, reached - CHECKPOINT_ORDERS);
            if (filledWh > energyWh) revert FillExceedsOrder(hash, filledWh, energyWh);
            if ((fill >> FILL_CANCELLED_SHIFT) & 1 != 0) {
                if (filledWh != 0) revert FillExceedsOrder(hash, filledWh, 0);
                if (!_cancelled[hash]) revert CancellationsMismatch(deliveryStart, hash, tally.cancelled + 1, 0);
                ++tally.cancelled;
            } else {
                if (filledWh != 0) {
                    if (side == Side.Buy) {
                        if (allIn > limit) revert PriceBeyondLimit(hash, price, tariff, limit);
                        tally.boughtWh += filledWh;
                    } else {
                        if (price < limit) revert PriceBeyondLimit(hash, price, 0, limit);
                        tally.soldWh += filledWh;
                    }
                }
                tally.fillsHash = _fillLink(tally.fillsHash, hash, filledWh);
            }
            tally.chunkHash = _settlementLink(tally.chunkHash, fill, limit);
        }
        return tally;
    }

    /// @dev The checks of the last chunk: every recorded order given once, in order (the rebuilt
    /// order chain is the slot's), every cancelled order flagged, bought = sold.
    function _requireSealable(
        uint40 deliveryStart,
        bytes32 ordersHash,
        uint256 recorded,
        uint256 cancelled,
        uint256 end,
        Tally memory tally
    ) private pure {
        if (end != recorded) revert IncompleteClearing(deliveryStart, end, recorded);
        if (tally.replay != ordersHash) {
            revert OrdersMismatch(deliveryStart, recorded == 0 ? 0 : (recorded - 1) - (recorded - 1) % CHECKPOINT_ORDERS);
        }
        if (tally.cancelled != cancelled) revert CancellationsMismatch(deliveryStart, 0, tally.cancelled, cancelled);
        if (tally.boughtWh != tally.soldWh) revert EnergyImbalance(tally.boughtWh, tally.soldWh);
    }

    function _emitFills(uint40 deliveryStart, uint64 price, uint64 tariff, Fill[] calldata fills) private {
        uint256 count = fills.length;
        for (uint256 i; i < count; ++i) {
            uint256 fill = fills[i].fill;
            uint32 filledWh = uint32(fill >> FILL_FILLED_SHIFT);
            if (filledWh == 0) continue;
            if ((fill >> FILL_SIDE_SHIFT) & 1 == uint256(Side.Buy)) {
                uint256 base = _cost(filledWh, price);
                uint256 charge = _cost(filledWh, uint256(price) + tariff) - base;
                emit OrderFilled(fills[i].orderHash, deliveryStart, filledWh, base, charge);
            } else {
                emit OrderFilled(fills[i].orderHash, deliveryStart, filledWh, _revenue(filledWh, price), 0);
            }
        }
    }

    // ───────────────────────────── internal: settlement ─────────────────────────────

    function _settleFills(
        uint40 deliveryStart,
        Slot storage slot,
        SettlementFill[] calldata fills,
        bytes memory outcomes,
        Totals memory totals,
        bool concurrent
    ) private {
        uint256 price = slot.clearingPricePerKWh;
        uint256 allIn = price + slot.networkTariffPerKWh;
        uint256 shortfallPrice = _shortfallPricePerKWh;
        uint256 surplusPrice = _surplusPricePerKWh;
        uint256 slotIndex = deliveryStart / SLOT_SECONDS; // below 2^24: recorded slots are before LATEST_DELIVERY_START
        uint256 count = fills.length;
        for (uint256 i; i < count; ++i) {
            uint256 fill = fills[i].fill;
            uint64 limit = fills[i].pricePerKWh;
            totals.chunkHash = _settlementLink(totals.chunkHash, fill, limit);
            uint32 filledWh = uint32(fill >> FILL_FILLED_SHIFT);
            Side side = Side((fill >> FILL_SIDE_SHIFT) & 1);
            // A cancelled order's escrow went back when it was cancelled; an unfilled sale moves nothing.
            if ((fill >> FILL_CANCELLED_SHIFT) & 1 != 0 || (filledWh == 0 && side == Side.Sell)) continue;
            address prosumer = address(uint160(fill));
            uint256 word = _accounts[prosumer]; // gas savings: the whole account is one word, read and written once
            // 0 unless filled: the zero defaults are meant (uninitialized-local is a false positive).
            // slither-disable-next-line uninitialized-local
            uint256 matchedWh;
            if (filledWh != 0) {
                (word, matchedWh) = _allocate(deliveryStart, slotIndex, word, prosumer, side, filledWh, concurrent);
            }
            uint256 deviationWh = filledWh - matchedWh;
            if (side == Side.Buy) {
                uint256 escrow = _cost(uint32(fill >> FILL_ENERGY_SHIFT), limit);
                uint256 paid = _cost(filledWh, allIn); // at most the escrow: price + tariff <= limit
                uint256 base = _cost(filledWh, price);
                uint256 buyBack = _revenue(deviationWh, surplusPrice);
                word = _credit(_unlock(word, escrow), escrow - paid + buyBack);
                totals.pot += int256(base);
                totals.networkCharges += paid - base;
                totals.chunkNetworkCharges += paid - base;
                totals.fromBalancing += buyBack;
                _storeOutcome(outcomes, i, (deviationWh << 224) | (buyBack << 160) | (paid - base));
            } else {
                uint256 revenue = _revenue(filledWh, price);
                uint256 charge = _revenue(deviationWh, shortfallPrice); // below 2^96: 2^32 Wh × 2^64 per kWh
                uint256 funds = (word & MASK_56) + revenue;
                uint256 collected = charge < funds ? charge : funds;
                word = _withAvailable(word, funds - collected);
                totals.pot -= int256(revenue);
                totals.paidToSellers += revenue;
                totals.toBalancing += collected;
                if (collected < charge) emit ImbalanceUncollected(prosumer, deliveryStart, charge - collected);
                _storeOutcome(outcomes, i, (deviationWh << 224) | (revenue << 160) | (charge << 64));
            }
            _accounts[prosumer] = word;
        }
    }

    /// @dev Allocates up to `filledWh` of the prosumer's metered energy on `side` in this slot
    /// (fed in for a sale, taken for a purchase); returns the account word and the amount matched.
    /// What its earlier fills of the slot used is kept in its account word: only one side of a
    /// reading is ever non-zero, so one counter serves both. While another slot's settlement is
    /// under way, a counter that belongs to it is not overwritten.
    function _allocate(
        uint40 deliveryStart,
        uint256 slotIndex,
        uint256 word,
        address prosumer,
        Side side,
        uint32 filledWh,
        bool concurrent
    ) private view returns (uint256, uint256 matchedWh) {
        uint256 index = (word >> PARTICIPANT_SHIFT) & MASK_24;
        uint256 value = (_readings[deliveryStart][index >> 3] >> ((index & 7) * 32)) & READING_MASK;
        if (value == 0) revert MeterReadingMissing(deliveryStart, prosumer);
        int256 netWh = int256(value) - int256(READING_OFFSET);
        uint256 meteredWh;
        if (side == Side.Sell) meteredWh = netWh < 0 ? uint256(-netWh) : 0;
        else meteredWh = netWh > 0 ? uint256(netWh) : 0;

        uint256 allocSlot = (word >> ALLOC_SLOT_SHIFT) & MASK_24;
        // 0 unless earlier fills of this slot used some: the zero default is meant.
        // slither-disable-next-line uninitialized-local
        uint256 usedWh;
        if (allocSlot == slotIndex) {
            usedWh = word >> ALLOC_USED_SHIFT;
        } else if (concurrent && allocSlot != 0) {
            uint40 other = uint40(allocSlot * SLOT_SECONDS); // fits: below LATEST_DELIVERY_START
            if (_slots[other].status == SlotStatus.Settling) revert SettlementInProgress(prosumer, other);
        }
        uint256 leftWh = meteredWh > usedWh ? meteredWh - usedWh : 0;
        matchedWh = filledWh < leftWh ? filledWh : leftWh;
        // usedWh + matchedWh is at most the metered energy, an int32's magnitude: it fits 32 bits.
        word = (word & ~((MASK_24 << ALLOC_SLOT_SHIFT) | (MASK_32 << ALLOC_USED_SHIFT))) | (slotIndex << ALLOC_SLOT_SHIFT)
            | ((usedWh + matchedWh) << ALLOC_USED_SHIFT);
        return (word, matchedWh);
    }

    function _finishSettlement(uint40 deliveryStart, Slot storage slot, Totals memory totals) private {
        // Every chunk settled: the pot is buyers' payments less sellers' revenue, >= 0 (bought =
        // sold, and buyers round up what sellers round down). Its remainder and the shortfall
        // charges go to the balancing account, which pays the surplus buy-backs.
        uint256 word = _accounts[BALANCING_ACCOUNT];
        uint256 pot = SafeCast.toUint256(totals.pot);
        uint256 funds = (word & MASK_56) + totals.toBalancing + pot;
        if (funds < totals.fromBalancing) revert InsufficientBalance(BALANCING_ACCOUNT, funds, totals.fromBalancing);
        _accounts[BALANCING_ACCOUNT] = _withAvailable(word, funds - totals.fromBalancing);
        slot.status = SlotStatus.Settled;
        slot.settledChunks = slot.committedChunks;
        emit SlotSettled(
            deliveryStart, totals.paidToSellers, totals.toBalancing + pot, totals.fromBalancing, totals.networkCharges
        );
    }

    function _storeOutcome(bytes memory outcomes, uint256 i, uint256 packed) private pure {
        assembly ("memory-safe") {
            mstore(add(add(outcomes, 0x20), mul(i, 0x20)), packed)
        }
    }

    // ───────────────────────────── internal: checks and arithmetic ─────────────────────────────

    function _requireSlotBoundary(uint40 deliveryStart) private pure {
        if (deliveryStart % SLOT_SECONDS != 0 || deliveryStart >= LATEST_DELIVERY_START) {
            revert InvalidDeliveryStart(deliveryStart, LATEST_DELIVERY_START);
        }
    }

    function _requireGateOpen(bytes32 hash, uint40 deliveryStart) private view {
        if (block.timestamp + GATE_CLOSURE_SECONDS >= deliveryStart) {
            revert GateClosed(hash, deliveryStart, _gateClosure(deliveryStart), block.timestamp);
        }
    }

    function _gateClosure(uint40 deliveryStart) private view returns (uint256) {
        return deliveryStart > GATE_CLOSURE_SECONDS ? deliveryStart - GATE_CLOSURE_SECONDS : 0;
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

    function _held(int128 pot, uint128 toBalancing, uint128 fromBalancing) private pure returns (int256) {
        return int256(pot) + int256(uint256(toBalancing)) - int256(uint256(fromBalancing));
    }

    function _terms(Order calldata order) private pure returns (OrderTerms memory) {
        return OrderTerms(
            order.prosumer,
            order.side,
            order.deliveryStart,
            order.energyWh,
            order.pricePerKWh,
            order.nonce,
            order.expiry
        );
    }

    /// @dev The order's EIP-712 digest.
    function _hashTerms(OrderTerms memory o) private view returns (bytes32) {
        OrderTerms memory typed = _typedTerms();
        typed.prosumer = o.prosumer;
        typed.side = o.side;
        typed.deliveryStart = o.deliveryStart;
        typed.energyWh = o.energyWh;
        typed.pricePerKWh = o.pricePerKWh;
        typed.nonce = o.nonce;
        typed.expiry = o.expiry;
        return _hashTypedDataV4(_structHash(typed));
    }

    /// @dev An empty OrderTerms right behind a word that holds ORDER_TYPEHASH, so that the order's
    /// EIP-712 struct hash is one keccak256 over the two (see _structHash).
    function _typedTerms() private pure returns (OrderTerms memory o) {
        bytes32 typeHash = ORDER_TYPEHASH;
        assembly ("memory-safe") {
            let ptr := mload(0x40)
            mstore(ptr, typeHash)
            o := add(ptr, 0x20)
            mstore(0x40, add(ptr, 0x100))
        }
    }

    /// @dev keccak256(ORDER_TYPEHASH ‖ the order's seven fields) for an OrderTerms made by
    /// _typedTerms: a memory struct's fields are one clean word each, in declaration order,
    /// which is the EIP-712 encoding of the order.
    function _structHash(OrderTerms memory o) private pure returns (bytes32 hash) {
        assembly ("memory-safe") {
            hash := keccak256(sub(o, 0x20), 0x100)
        }
    }

    /// @dev keccak256(orderHash ‖ prosumer ‖ side ‖ energyWh ‖ pricePerKWh), each a 32-byte word.
    function _orderLink(bytes32 hash, address prosumer, Side side, uint32 energyWh, uint64 pricePerKWh)
        private
        pure
        returns (bytes32 link)
    {
        assembly ("memory-safe") {
            let ptr := mload(0x40)
            mstore(ptr, hash)
            mstore(add(ptr, 0x20), prosumer)
            mstore(add(ptr, 0x40), side)
            mstore(add(ptr, 0x60), energyWh)
            mstore(add(ptr, 0x80), pricePerKWh)
            link := keccak256(ptr, 0xa0)
        }
    }

    /// @dev A clearing chunk's hash chain over its packed fills: keccak256(previous ‖ fill ‖ price).
    function _settlementLink(bytes32 chain, uint256 fill, uint64 pricePerKWh) private pure returns (bytes32 next) {
        assembly ("memory-safe") {
            let ptr := mload(0x40)
            mstore(ptr, chain)
            mstore(add(ptr, 0x20), fill)
            mstore(add(ptr, 0x40), pricePerKWh)
            next := keccak256(ptr, 0x60)
        }
    }

    /// @dev The fills hash (as before chunking): keccak256(previous ‖ orderHash ‖ filledWh).
    function _fillLink(bytes32 chain, bytes32 hash, uint32 filledWh) private pure returns (bytes32 next) {
        assembly ("memory-safe") {
            let ptr := mload(0x40)
            mstore(ptr, chain)
            mstore(add(ptr, 0x20), hash)
            mstore(add(ptr, 0x40), filledWh)
            next := keccak256(ptr, 0x60)
        }
    }

    /// @dev The order chain's next value: the first 28 bytes of keccak256(chain ‖ link) (the
    /// rest zero), computed in scratch space. 224 bits keep collisions out of reach (2^112 work)
    /// and leave room for the slot's order count in the same word.
    function _nextOrder(bytes32 chain, bytes32 link) private pure returns (bytes32 next) {
        assembly ("memory-safe") {
            mstore(0x00, chain)
            mstore(0x20, link)
            next := and(keccak256(0x00, 0x40), not(0xffffffff))
        }
    }

    /// @dev The account word with `amount` more available (reverting past 56 bits).
    function _credit(uint256 word, uint256 amount) private pure returns (uint256) {
        return _withAvailable(word, (word & MASK_56) + amount);
    }

    function _withAvailable(uint256 word, uint256 available) private pure returns (uint256) {
        if (available > MASK_56) revert SafeCast.SafeCastOverflowedUintDowncast(56, available);
        return (word & ~MASK_56) | available;
    }

    function _lock(uint256 word, uint256 amount) private pure returns (uint256) {
        uint256 locked = ((word >> LOCKED_SHIFT) & MASK_56) + amount;
        if (locked > MASK_56) revert SafeCast.SafeCastOverflowedUintDowncast(56, locked);
        return (word & ~(MASK_56 << LOCKED_SHIFT)) | (locked << LOCKED_SHIFT);
    }

    /// @dev The account word with `amount` less locked (an escrow locked when its order was recorded).
    function _unlock(uint256 word, uint256 amount) private pure returns (uint256) {
        uint256 locked = ((word >> LOCKED_SHIFT) & MASK_56) - amount;
        return (word & ~(MASK_56 << LOCKED_SHIFT)) | (locked << LOCKED_SHIFT);
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
