// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// @title The peer-to-peer energy market: signed orders, per-slot clearing, metered settlement.
/// @notice Units: energy in Wh, prices in token base units per kWh, time in unix seconds. A
/// delivery slot is 15 minutes and is named by its start. Meter readings follow pandapower's sign
/// convention: positive is energy taken from the grid (load), negative is energy fed in.
///
/// A slot of any size goes on-chain in as many transactions as it needs, each under EIP-7825's
/// per-transaction gas cap. The ledger keeps, per slot, a hash chain of its recorded orders in
/// arrival order (the *order chain*). Clearing commits the fill of every recorded order in that
/// order, in chunks; the chunks are checked against the order chain, so no order can be left
/// out, listed twice or replaced, and the last chunk seals the slot once bought = sold. Each
/// chunk's hash is stored, and settlement re-supplies the same chunks in the same order, each
/// checked against its hash before it pays anything.
interface IEnergyMarket {
    /// @notice Whether an order buys or sells energy.
    enum Side {
        Buy,
        Sell
    }

    /// @notice A delivery slot's life: taking orders (Open), some clearing chunks committed
    /// (Clearing), cleared, some settlement chunks paid (Settling), settled.
    enum SlotStatus {
        Open,
        Clearing,
        Cleared,
        Settling,
        Settled
    }

    /// @notice An order as the prosumer signs it (EIP-712 type `Order`).
    struct Order {
        address prosumer;
        Side side;
        uint40 deliveryStart;
        uint32 energyWh;
        uint64 pricePerKWh;
        uint64 nonce;
        uint40 expiry;
    }

    /// @notice An order with its EIP-712 signature in compact EIP-2098 form (r, yParity|s).
    struct SignedOrder {
        Order order;
        bytes32 r;
        bytes32 vs;
    }

    /// @notice A signed order packed for relaying: the nine words of a `SignedOrder` in four
    /// (calldata is a seventh of a relayed order's gas). `head` = prosumer | side << 160 |
    /// deliveryStart << 168 | energyWh << 208; `terms` = expiry | nonce << 40 | pricePerKWh << 104.
    struct PackedOrder {
        uint256 head;
        uint256 terms;
        bytes32 r;
        bytes32 vs;
    }

    /// @notice One recorded order of a slot and what clearing gives it, as clearing commits it:
    /// the order's hash, and its terms with the fill packed in `fill` = prosumer |
    /// energyWh << 160 | filledWh << 192 | side << 224 | cancelled << 225 (cancelled: the order
    /// was cancelled after it was recorded, and its fill must be 0).
    struct Fill {
        bytes32 orderHash;
        uint256 fill;
        uint64 pricePerKWh;
    }

    /// @notice A committed fill as settlement re-supplies it: `fill` and `pricePerKWh` as the
    /// clearing committed them (the chunk's hash binds both; the order's hash is not needed).
    struct SettlementFill {
        uint256 fill;
        uint64 pricePerKWh;
    }

    /// @notice A delivery slot's ledger state.
    /// @param ordersHash the order chain over the slot's recorded orders, in arrival order
    /// @param fillsHash after clearing: the hash chain over (orderHash, filledWh) of every
    /// recorded order that was not cancelled, in arrival order
    /// @param orders orders recorded for the slot, cancelled ones included
    /// @param cancelledOrders of them, the ones cancelled since
    /// @param chunks clearing chunks committed (after clearing: all of them)
    /// @param settledChunks settlement chunks paid
    /// @param pot during settlement: buyers' payments at the clearing price received so far,
    /// less sellers' revenue paid so far (negative while sellers are paid ahead of buyers)
    struct SlotState {
        bytes32 ordersHash;
        bytes32 fillsHash;
        bytes32 networkReportHash;
        uint32 orders;
        uint32 cancelledOrders;
        SlotStatus status;
        uint64 clearingPricePerKWh;
        uint64 networkTariffPerKWh;
        uint16 chunks;
        uint16 settledChunks;
        int256 pot;
    }

    /// @notice A participant's money inside the market.
    struct Account {
        uint128 available;
        uint128 locked;
    }

    // ───────────────────────────── events ─────────────────────────────

    /// @notice `amount` tokens moved into `account`'s market account: from its wallet
    /// (`deposit`) or from a funder's (`depositFor`).
    event Deposited(address indexed account, uint256 amount);
    /// @notice `amount` tokens moved from `account`'s market account back to its wallet.
    event Withdrawn(address indexed account, uint256 amount);
    /// @notice Emitted for every order that reaches the ledger, relayed or placed directly:
    /// `head` and `terms` are the order packed as in `PackedOrder` (two words instead of seven: a
    /// relayed order's log is a ninth of its gas). The order's hash, its EIP-712 digest, follows
    /// from its fields and the market's domain (`orderHash` computes it).
    event OrderRecorded(uint40 indexed deliveryStart, uint256 head, uint256 terms);
    /// @notice An order was cancelled (or, never recorded, its nonce and every lower one burnt);
    /// a buy's escrow `refund` returned to the prosumer's available balance.
    event OrderCancelled(bytes32 indexed orderHash, address indexed prosumer, uint64 nonce, uint256 refund);
    /// @notice The DSO set the network tariff of consecutive slots, the first starting at
    /// `firstDeliveryStart` (token base units per kWh traded locally; the buyer pays it).
    event NetworkTariffSet(uint40 indexed firstDeliveryStart, uint64[] perKWh);
    /// @notice The facilitator started (or restarted) committing a slot's clearing, in `chunks`
    /// transactions. Fills of an earlier, unfinished attempt no longer count.
    event ClearingStarted(
        uint40 indexed deliveryStart,
        uint64 clearingPricePerKWh,
        bytes32 networkReportHash,
        bytes32 networkModelVersion,
        uint16 chunks
    );
    /// @notice Clearing chunk `chunk` covered the slot's recorded orders `firstPosition` to
    /// `firstPosition + count − 1` (arrival order); settlement re-supplies exactly these.
    event ClearingChunkCommitted(
        uint40 indexed deliveryStart, uint16 chunk, uint32 firstPosition, uint32 count, bytes32 chunkHash
    );
    /// @notice A clearing chunk filled `filledWh` of an order. At the clearing price p and the
    /// slot's network tariff t, a buyer will pay `cost` = ⌈F·p⌉ plus `networkCharge` =
    /// ⌈F·(p+t)⌉ − ⌈F·p⌉ at settlement; a seller will be credited `cost` = ⌊F·p⌋.
    event OrderFilled(
        bytes32 indexed orderHash, uint40 indexed deliveryStart, uint32 filledWh, uint256 cost, uint256 networkCharge
    );
    /// @notice A slot's clearing was sealed: every recorded order has its fill, bought = sold,
    /// with the network validation report it passed and the version of the published model.
    event SlotCleared(
        uint40 indexed deliveryStart,
        uint64 clearingPricePerKWh,
        uint256 tradedWh,
        bytes32 fillsHash,
        bytes32 networkReportHash,
        bytes32 networkModelVersion,
        uint64 networkTariffPerKWh
    );
    /// @notice The meter operator posted readings for the slot: `readings` is the call's own
    /// packed list, 8 bytes per meter: the participant number (uint32) and its net energy in Wh
    /// (int32, taken from the grid; negative is fed in), both big-endian.
    event MeterReadingsPosted(uint40 indexed deliveryStart, bytes readings);
    /// @notice Settlement chunk `chunk` settled the slot's recorded orders from `firstPosition`
    /// on. `outcomes` holds a word per order, in order: the energy not delivered (seller) or not
    /// taken (buyer) in Wh << 224 | the payment credited (sale, or surplus bought back) << 160 |
    /// the shortfall charge << 64 | the network charge paid to the DSO. (One log for the chunk: a
    /// log per fill would cost a settled fill a fifth more.) A cancelled or unfilled order has 0.
    event FillsSettled(uint40 indexed deliveryStart, uint16 chunk, uint32 firstPosition, bytes outcomes);
    /// @notice A shortfall charge larger than the seller's balance: the balancing account bears it.
    event ImbalanceUncollected(address indexed account, uint40 indexed deliveryStart, uint256 amount);
    /// @notice A slot settled: `paidToSellers` left the pot, the balancing account received
    /// `toBalancing` (shortfall charges and rounding) and paid `fromBalancing` (surplus buy-backs),
    /// and the DSO's account received `networkCharges`.
    event SlotSettled(
        uint40 indexed deliveryStart,
        uint256 paidToSellers,
        uint256 toBalancing,
        uint256 fromBalancing,
        uint256 networkCharges
    );
    /// @notice The imbalance prices changed (token base units per kWh); shortfall is never below surplus.
    event ImbalancePricesSet(uint64 shortfallPricePerKWh, uint64 surplusPricePerKWh);

    // ───────────────────────────── errors ─────────────────────────────

    /// @notice An amount of zero was given where a positive amount is required.
    error ZeroAmount();
    /// @notice `owner`'s signed withdrawal was valid until `deadline`; the chain's time is `nowTs`.
    error WithdrawalExpired(address owner, uint256 deadline, uint256 nowTs);
    /// @notice `owner`'s signed withdrawal carries nonce `nonce`; the next unused one is `expected`
    /// (a replayed withdrawal names a nonce already used).
    error WithdrawalNonceUsed(address owner, uint256 nonce, uint256 expected);
    /// @notice A signed withdrawal of `owner`'s balance recovers to `recovered`, not to `owner`.
    error WithdrawalSignatureInvalid(address owner, address recovered);
    /// @notice `account` holds `available` base units in the market but `required` are needed.
    error InsufficientBalance(address account, uint256 available, uint256 required);
    /// @notice `account` is not a registered participant.
    error NotRegistered(address account);
    /// @notice The signature recovers to `recovered`, not to the order's prosumer.
    error InvalidSignature(bytes32 orderHash, address prosumer, address recovered);
    /// @notice Only the order's prosumer may place or cancel it directly.
    error NotOrderOwner(bytes32 orderHash, address caller, address prosumer);
    /// @notice The order expired at `expiry`; the block time is `nowTs`.
    error OrderExpired(bytes32 orderHash, uint40 expiry, uint256 nowTs);
    /// @notice Slot `deliveryStart` closed for orders at `gateClosure`; the block time is `nowTs`.
    error GateClosed(bytes32 orderHash, uint40 deliveryStart, uint256 gateClosure, uint256 nowTs);
    /// @notice A delivery start must be a multiple of 900 s (a 15-minute slot boundary) and
    /// before `latest` (the ledger counts slots in 24 bits).
    error InvalidDeliveryStart(uint40 deliveryStart, uint256 latest);
    /// @notice Energy must be between 1 Wh and what the connection can carry in one slot.
    error InvalidEnergy(bytes32 orderHash, uint32 energyWh, uint32 maxEnergyWh);
    /// @notice A prosumer's nonces only go up: `nonce` is below `nextNonce`, the lowest it may
    /// still use (every lower nonce was used, skipped or burnt by a cancellation).
    error NonceAlreadyUsed(address prosumer, uint64 nonce, uint64 nextNonce);
    /// @notice A nonce must be below `limit` (the ledger keeps a prosumer's next nonce in 32 bits).
    error NonceTooLarge(address prosumer, uint64 nonce, uint64 limit);
    /// @notice The packed order at `index` of the batch has bits set outside its fields.
    error MalformedOrder(uint256 index);
    /// @notice The packed fill at `position` of the slot has bits set outside its fields.
    error MalformedFill(uint256 position);
    /// @notice The order is not on the ledger as an open order (never recorded at the position
    /// given, already cancelled, or cleared).
    error OrderNotOpen(bytes32 orderHash);
    /// @notice The slot's gate closes at `gateClosure`; clearing must wait until then.
    error GateNotClosed(uint40 deliveryStart, uint256 gateClosure, uint256 nowTs);
    /// @notice A clearing result needs the hash of its network validation report (and the
    /// network model version); nothing settles without one.
    error NetworkReportMissing(uint40 deliveryStart);
    /// @notice The slot was already cleared.
    error SlotAlreadyCleared(uint40 deliveryStart);
    /// @notice A fill is larger than its order (or a cancelled order was given a fill).
    error FillExceedsOrder(bytes32 orderHash, uint32 filledWh, uint32 energyWh);
    /// @notice The clearing price crosses the order's limit price: a sale needs the clearing
    /// price at or above its limit; a purchase needs the clearing price plus the slot's network
    /// tariff (its all-in price) at or below its limit.
    error PriceBeyondLimit(
        bytes32 orderHash, uint64 clearingPricePerKWh, uint64 networkTariffPerKWh, uint64 limitPricePerKWh
    );
    /// @notice Bought and sold energy in a clearing result differ.
    error EnergyImbalance(uint256 boughtWh, uint256 soldWh);
    /// @notice The clearing result addresses `included` orders; the slot has `recorded` recorded orders.
    error IncompleteClearing(uint40 deliveryStart, uint256 included, uint256 recorded);
    /// @notice The fills given from position `position` on are not the slot's recorded orders
    /// in arrival order (one left out, listed twice, replaced, or its terms changed).
    error OrdersMismatch(uint40 deliveryStart, uint256 position);
    /// @notice A fill names its order cancelled when it is not, or `flagged` cancellations were
    /// given where the slot has `cancelled`.
    error CancellationsMismatch(uint40 deliveryStart, bytes32 orderHash, uint256 flagged, uint256 cancelled);
    /// @notice Chunk `given` came where chunk `expected` is next (chunks go in order, once each).
    error ChunkOutOfOrder(uint40 deliveryStart, uint256 given, uint256 expected);
    /// @notice A clearing chunk repeats the clearing's price, report, model and number of chunks
    /// as chunk 0 set them.
    error ClearingTermsChanged(uint40 deliveryStart);
    /// @notice The number of chunks must be 1 to 65,535.
    error InvalidChunkCount(uint256 chunks);
    /// @notice The slot has not been cleared (status `status`).
    error SlotNotCleared(uint40 deliveryStart, SlotStatus status);
    /// @notice Delivery ends at `deliveryEnd`; metering and settlement must wait until then.
    error DeliveryNotEnded(uint40 deliveryStart, uint256 deliveryEnd, uint256 nowTs);
    /// @notice A reading for this meter and slot is already on the ledger.
    error MeterReadingAlreadyPosted(uint40 deliveryStart, address account);
    /// @notice Settlement needs a meter reading for `account` in the slot.
    error MeterReadingMissing(uint40 deliveryStart, address account);
    /// @notice Readings are 8-byte records (uint32 participant, int32 Wh); `length` bytes is not a
    /// whole number of them, or a reading is −2,147,483,648 Wh (the lowest int32, not allowed).
    error MalformedReadings(uint256 length);
    /// @notice The fills given for settlement chunk `chunk` are not the committed ones (`committed`
    /// and `given`: the chunk's hash, its first 28 bytes, and where it ends, in the last 4).
    error FillsMismatch(uint40 deliveryStart, uint256 chunk, bytes32 committed, bytes32 given);
    /// @notice `account`'s metered energy is still being allocated to its fills of slot
    /// `otherSlot`, whose settlement is under way: finish that settlement first.
    error SettlementInProgress(address account, uint40 otherSlot);
    /// @notice The network tariff of slot `deliveryStart` can only be set before its gate
    /// closes (at `gateClosure`; the block time is `nowTs`): tariffs are announced in advance.
    error TariffGateClosed(uint40 deliveryStart, uint256 gateClosure, uint256 nowTs);
    /// @notice A tariff call needs at least one slot's tariff.
    error EmptyTariff();
    /// @notice Array arguments of different lengths.
    error LengthMismatch(uint256 a, uint256 b);
    /// @notice The shortfall price must be at or above the surplus price, so that not delivering
    /// never pays better than delivering.
    error ImbalancePricesInverted(uint64 shortfallPricePerKWh, uint64 surplusPricePerKWh);

    // ───────────────────────────── functions ─────────────────────────────

    /// @notice Moves `amount` tokens from the caller into its market account (approve first).
    function deposit(uint256 amount) external;

    /// @notice Moves the sum of `amounts` from the caller's wallet (approve it first) into the
    /// market accounts of `accounts`, `amounts[i]` to `accounts[i]` (an account named twice
    /// gets both), one `Deposited(accounts[i], amounts[i])` each: a funder onboarding a feeder
    /// in one transaction. Each account must be a registered participant (it is admitted as
    /// `admit` would) and each amount positive; all or nothing.
    function depositFor(address[] calldata accounts, uint256[] calldata amounts) external;

    /// @notice Moves `amount` of the caller's available market balance back to its wallet.
    function withdraw(uint256 amount) external;

    /// @notice Moves `amount` tokens from `owner`'s wallet into `owner`'s market account with
    /// `owner`'s EIP-2612 permit for this market (anyone may relay it; the facilitator does).
    function depositWithPermit(address owner, uint256 amount, uint256 deadline, uint8 v, bytes32 r, bytes32 s)
        external;

    /// @notice Moves `amount` of `owner`'s available market balance to `owner`'s wallet, signed by
    /// `owner` as an EIP-712 `Withdrawal(owner, amount, nonce, deadline)` in the market's domain
    /// (anyone may relay it). Each nonce counts once, in order.
    function withdrawBySig(address owner, uint256 amount, uint256 nonce, uint256 deadline, bytes32 r, bytes32 vs)
        external;

    /// @notice The nonce `owner`'s next signed withdrawal must carry.
    function withdrawalNonce(address owner) external view returns (uint256);

    /// @notice Records prosumer-signed orders, relayed by the facilitator. All or nothing: one
    /// refused order reverts the batch. A buy order's escrow is locked from its prosumer's balance.
    function relayOrders(PackedOrder[] calldata orders) external;

    /// @notice Records the caller's own order without a signature.
    function placeOrder(Order calldata order) external;

    /// @notice Copies into the market what the registry says about each account (its
    /// connection's limit per slot and its participant number), once; anyone may call it, and
    /// an account's first order does it if nobody did. Reverts with NotRegistered for an account
    /// the registry does not know. Done at registration, it makes a prosumer's first order cost
    /// what every later one does.
    function admit(address[] calldata accounts) external;

    /// @notice Cancels the caller's order before its gate closes. A recorded order is named by
    /// its `position` among its slot's recorded orders and proved by `segment`: the order-chain
    /// links (see `orderLink`) of the slot's recorded orders from position ⌊position/256⌋·256 up
    /// to the next multiple of 256 (or the last order); its escrow returns at once. An order never
    /// recorded has its nonce burnt (with every lower one), so that a signed copy can no longer
    /// be relayed; `position` and `segment` are then ignored.
    function cancelOrder(Order calldata order, uint32 position, bytes32[] calldata segment) external;

    /// @notice Cancels an order on the prosumer's EIP-712 signature of `Cancellation(orderHash)`,
    /// relayed by anyone (the facilitator's API does). Same rules and effects as `cancelOrder`.
    function cancelOrderBySig(
        Order calldata order,
        bytes32 r,
        bytes32 vs,
        uint32 position,
        bytes32[] calldata segment
    ) external;

    /// @notice Sets the network tariff (token base units per kWh) of consecutive slots from
    /// `firstDeliveryStart` on, one per slot; DSO only, and only for slots whose gate is open.
    function setNetworkTariff(uint40 firstDeliveryStart, uint64[] calldata perKWh) external;

    /// @notice Commits chunk `chunk` of `chunks` of a slot's clearing (facilitator only, after the
    /// slot's gate closes). Chunk 0 starts the clearing (or restarts an unfinished one); every
    /// chunk repeats the uniform price, the network report's hash, the model's version and the
    /// number of chunks. Together the chunks give every recorded order of the slot, in arrival
    /// order, its fill; the last one seals the slot (bought = sold). Chunks move no money.
    /// @param fills the slot's next recorded orders with their fills (0 allowed; a cancelled
    /// order is flagged and gets 0)
    function commitClearing(
        uint40 deliveryStart,
        uint64 clearingPricePerKWh,
        bytes32 networkReportHash,
        bytes32 networkModelVersion,
        uint16 chunk,
        uint16 chunks,
        Fill[] calldata fills
    ) external;

    /// @notice Checks a clearing chunk as `commitClearing` would, given where the chunks before
    /// it left off, without writing anything: the facilitator checks a whole clearing before it
    /// sends the first chunk. Reverts with the error the commit would raise, including the
    /// sealing checks for the `last` chunk (every order given, bought = sold).
    /// @return nextReplay the order chain after the chunk's orders
    /// @return boughtWh bought energy up to the chunk's end
    /// @return soldWh sold energy up to the chunk's end
    /// @return cancelled cancelled orders up to the chunk's end
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
    ) external view returns (bytes32 nextReplay, uint256 boughtWh, uint256 soldWh, uint256 cancelled);

    /// @notice Posts metered net energy for a slot (meter operator only), after the slot's
    /// delivery ends: `readings` packs 8 bytes per meter, the participant number (uint32) and
    /// its net Wh (int32), big-endian. Readings are final: one per participant and slot.
    function postMeterReadings(uint40 deliveryStart, bytes calldata readings) external;

    /// @notice Settles chunk `chunk` of a cleared, metered slot by the dual imbalance pricing
    /// rule, paying network charges to the DSO's account. Anyone may call it; chunks go in order,
    /// once each, and `fills` must be exactly the committed chunk.
    function settle(uint40 deliveryStart, uint16 chunk, SettlementFill[] calldata fills) external;

    /// @notice The EIP-712 digest that identifies `order` and that its prosumer signs.
    /// @return the order's hash, under which the ledger records and fills it
    function orderHash(Order calldata order) external view returns (bytes32);

    /// @notice An order's link in its slot's order chain: keccak256(orderHash, prosumer, side,
    /// energyWh, pricePerKWh). The chain is keccak256(previous ‖ link), starting from zero.
    function orderLink(Order calldata order) external view returns (bytes32);

    /// @notice The ledger state of the slot starting at `deliveryStart`.
    function slotState(uint40 deliveryStart) external view returns (SlotState memory);

    /// @notice The order chain after the first 256·k recorded orders of the slot (k ≥ 1).
    function orderCheckpoint(uint40 deliveryStart, uint256 k) external view returns (bytes32);

    /// @notice Committed clearing chunk `chunk` of the slot: its hash's first 28 bytes (the rest
    /// zero), and the position after its last order (its orders are the ones from the previous
    /// chunk's end up to this one).
    function clearingChunk(uint40 deliveryStart, uint256 chunk) external view returns (bytes32 hash, uint32 end);

    /// @notice The market account of `account`.
    function accountOf(address account) external view returns (Account memory);

    /// @notice Several market accounts in one call (the facilitator's indexer reads them per block range).
    function accountsOf(address[] calldata accounts) external view returns (Account[] memory);

    /// @notice The lowest nonce `prosumer` may still use.
    function nextNonce(address prosumer) external view returns (uint64);

    /// @notice Whether the recorded order `orderHash` was cancelled.
    function isCancelled(bytes32 orderHash) external view returns (bool);

    /// @notice The meter reading of `account` for the slot; `posted` is false if there is none.
    function meterReading(uint40 deliveryStart, address account) external view returns (bool posted, int64 netWh);

    /// @notice The meter readings of several accounts for the slot, as `meterReading` gives each.
    function meterReadings(uint40 deliveryStart, address[] calldata accounts)
        external
        view
        returns (bool[] memory posted, int64[] memory netWh);

    /// @notice The network tariff of the slot, token base units per kWh (0 when none was set).
    function networkTariff(uint40 deliveryStart) external view returns (uint64);

    /// @notice Sets the imbalance prices (admin only). Shortfall at or above surplus, so that
    /// not delivering never pays better than delivering.
    function setImbalancePrices(uint64 shortfallPricePerKWh, uint64 surplusPricePerKWh) external;

    /// @notice The shortfall and surplus imbalance prices in token base units per kWh.
    function imbalancePrices() external view returns (uint64 shortfallPricePerKWh, uint64 surplusPricePerKWh);
}
