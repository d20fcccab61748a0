// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// @title The peer-to-peer energy market: signed orders, per-slot clearing, metered settlement.
/// @notice Units: energy in Wh, prices in token base units per kWh, time in unix seconds. A
/// delivery slot is 15 minutes and is named by its start. Meter readings follow pandapower's sign
/// convention: positive is energy taken from the grid (load), negative is energy fed in.
interface IEnergyMarket {
    /// @notice Whether an order buys or sells energy.
    enum Side {
        Buy,
        Sell
    }

    /// @notice A delivery slot's life: taking orders (Open), cleared, settled.
    enum SlotStatus {
        Open,
        Cleared,
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

    /// @notice One order of a slot's clearing result and the energy it trades.
    struct Fill {
        Order order;
        uint32 filledWh;
    }

    /// @notice A delivery slot's ledger state, packed into three storage slots.
    /// @param fillsHash before clearing: zero; after: the hash chain over (orderHash, filledWh)
    /// @param networkReportHash the hash of the network validation report the result passed
    /// @param openOrders orders recorded and not cancelled, which the clearing must all address
    struct SlotState {
        bytes32 fillsHash;
        bytes32 networkReportHash;
        uint32 openOrders;
        SlotStatus status;
        uint64 clearingPricePerKWh;
        uint128 potAmount;
    }

    /// @notice A participant's money inside the market, packed into one storage slot.
    struct Account {
        uint128 available;
        uint128 locked;
    }

    // ───────────────────────────── events ─────────────────────────────

    /// @notice `amount` tokens moved from `account`'s wallet into its market account.
    event Deposited(address indexed account, uint256 amount);
    /// @notice `amount` tokens moved from `account`'s market account back to its wallet.
    event Withdrawn(address indexed account, uint256 amount);
    /// @notice Emitted for every order that reaches the ledger, relayed or placed directly.
    event OrderRecorded(
        bytes32 indexed orderHash,
        address indexed prosumer,
        uint40 indexed deliveryStart,
        Side side,
        uint32 energyWh,
        uint64 pricePerKWh,
        uint64 nonce,
        uint40 expiry
    );
    /// @notice An order was cancelled (or its nonce burnt before it was recorded); a buy's
    /// escrow `refund` returned to the prosumer's available balance.
    event OrderCancelled(bytes32 indexed orderHash, address indexed prosumer, uint64 nonce, uint256 refund);
    /// @notice A committed clearing filled `filledWh` of an order; `cost` is what a buyer paid or
    /// a seller will be credited at settlement, at the clearing price.
    event OrderFilled(
        bytes32 indexed orderHash, address indexed prosumer, uint40 indexed deliveryStart, uint32 filledWh, uint256 cost
    );
    /// @notice A slot's clearing result was committed, with the network validation report it
    /// passed (`networkReportHash`) and the version of the published network model it used.
    event SlotCleared(
        uint40 indexed deliveryStart,
        uint64 clearingPricePerKWh,
        uint256 tradedWh,
        bytes32 fillsHash,
        bytes32 networkReportHash,
        bytes32 networkModelVersion
    );
    /// @notice The meter operator posted `account`'s net energy for the slot (Wh taken from the grid;
    /// negative is fed in).
    event MeterReadingPosted(uint40 indexed deliveryStart, address indexed account, int64 netWh);
    /// @notice One fill settled: `payment` was credited (sale or surplus buy-back) and
    /// `imbalanceCharge` debited (shortfall bought back), `deviationWh` the energy not delivered
    /// (seller) or not taken (buyer).
    event FillSettled(
        bytes32 indexed orderHash,
        address indexed prosumer,
        uint40 indexed deliveryStart,
        uint32 deviationWh,
        uint256 payment,
        uint256 imbalanceCharge
    );
    /// @notice A shortfall charge larger than the seller's balance: the balancing account bears it.
    event ImbalanceUncollected(address indexed account, uint40 indexed deliveryStart, uint256 amount);
    /// @notice A slot settled: `paidToSellers` left the pot, the balancing account received
    /// `toBalancing` (shortfall charges and rounding) and paid `fromBalancing` (surplus buy-backs).
    event SlotSettled(uint40 indexed deliveryStart, uint256 paidToSellers, uint256 toBalancing, uint256 fromBalancing);
    /// @notice The imbalance prices changed (token base units per kWh); shortfall is never below surplus.
    event ImbalancePricesSet(uint64 shortfallPricePerKWh, uint64 surplusPricePerKWh);

    // ───────────────────────────── errors ─────────────────────────────

    /// @notice An amount of zero was given where a positive amount is required.
    error ZeroAmount();
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
    /// @notice A delivery start must be a multiple of 900 s (a 15-minute slot boundary).
    error InvalidDeliveryStart(uint40 deliveryStart);
    /// @notice Energy must be between 1 Wh and what the connection can carry in one slot.
    error InvalidEnergy(bytes32 orderHash, uint32 energyWh, uint32 maxEnergyWh);
    /// @notice `nonce` of `prosumer` was already used by another order or cancelled.
    error NonceAlreadyUsed(address prosumer, uint64 nonce);
    /// @notice The order is not on the ledger as an open order.
    error OrderNotOpen(bytes32 orderHash);
    /// @notice The order belongs to another delivery slot.
    error WrongDeliverySlot(bytes32 orderHash, uint40 orderSlot, uint40 slot);
    /// @notice The slot's gate closes at `gateClosure`; clearing must wait until then.
    error GateNotClosed(uint40 deliveryStart, uint256 gateClosure, uint256 nowTs);
    /// @notice A clearing result needs the hash of its network validation report (and the
    /// network model version); nothing settles without one.
    error NetworkReportMissing(uint40 deliveryStart);
    /// @notice The slot was already cleared.
    error SlotAlreadyCleared(uint40 deliveryStart);
    /// @notice A fill is larger than its order.
    error FillExceedsOrder(bytes32 orderHash, uint32 filledWh, uint32 energyWh);
    /// @notice The clearing price crosses the order's limit price.
    error PriceBeyondLimit(bytes32 orderHash, uint64 clearingPricePerKWh, uint64 limitPricePerKWh);
    /// @notice Bought and sold energy in a clearing result differ.
    error EnergyImbalance(uint256 boughtWh, uint256 soldWh);
    /// @notice The clearing result addresses `included` orders; the slot has `open` open orders.
    error IncompleteClearing(uint40 deliveryStart, uint256 included, uint256 open);
    /// @notice The slot has not been cleared (status `status`).
    error SlotNotCleared(uint40 deliveryStart, SlotStatus status);
    /// @notice Delivery ends at `deliveryEnd`; metering and settlement must wait until then.
    error DeliveryNotEnded(uint40 deliveryStart, uint256 deliveryEnd, uint256 nowTs);
    /// @notice A reading for this meter and slot is already on the ledger.
    error MeterReadingAlreadyPosted(uint40 deliveryStart, address account);
    /// @notice Settlement needs a meter reading for `account` in the slot.
    error MeterReadingMissing(uint40 deliveryStart, address account);
    /// @notice The fills given to settle are not the ones committed for the slot.
    error FillsMismatch(uint40 deliveryStart, bytes32 committed, bytes32 given);
    /// @notice Array arguments of different lengths.
    error LengthMismatch(uint256 a, uint256 b);
    /// @notice The shortfall price must be at or above the surplus price, so that not delivering
    /// never pays better than delivering.
    error ImbalancePricesInverted(uint64 shortfallPricePerKWh, uint64 surplusPricePerKWh);

    // ───────────────────────────── functions ─────────────────────────────

    /// @notice Moves `amount` tokens from the caller into its market account (approve first).
    function deposit(uint256 amount) external;

    /// @notice Moves `amount` of the caller's available market balance back to its wallet.
    function withdraw(uint256 amount) external;

    /// @notice Records prosumer-signed orders, relayed by the facilitator. All or nothing: one
    /// refused order reverts the batch. A buy order's escrow is locked from its prosumer's balance.
    function relayOrders(SignedOrder[] calldata orders) external;

    /// @notice Records the caller's own order without a signature.
    function placeOrder(Order calldata order) external;

    /// @notice Cancels the caller's order before its gate closes, releasing its escrow; if the
    /// order was never recorded, its nonce is burnt so that a signed copy can no longer be relayed.
    function cancelOrder(Order calldata order) external;

    /// @notice Cancels an order on the prosumer's EIP-712 signature of `Cancellation(orderHash)`,
    /// relayed by anyone (the facilitator's API does). Same rules and effects as `cancelOrder`.
    function cancelOrderBySig(Order calldata order, bytes32 r, bytes32 vs) external;

    /// @notice Commits a slot's clearing: its uniform price, the fill of every open order, and the
    /// hash of the network validation report that the result passed (facilitator only, after the
    /// slot's gate closes, once).
    /// @param deliveryStart the slot's start
    /// @param clearingPricePerKWh the uniform price every fill trades at
    /// @param networkReportHash the hash of the network validation report the result passed
    /// @param networkModelVersion the version of the published network model the report used
    /// @param fills every open order of the slot once, with the energy it trades (0 allowed)
    function commitClearing(
        uint40 deliveryStart,
        uint64 clearingPricePerKWh,
        bytes32 networkReportHash,
        bytes32 networkModelVersion,
        Fill[] calldata fills
    ) external;

    /// @notice Posts metered net energy per participant for a slot (meter operator only), after
    /// the slot's delivery ends. Readings are final: one per account and slot.
    /// @param netWh per account, Wh taken from the grid (negative is fed in)
    function postMeterReadings(uint40 deliveryStart, address[] calldata accounts, int64[] calldata netWh) external;

    /// @notice Settles a cleared, metered slot by the dual imbalance pricing rule. Anyone may call
    /// it, once. `fills` must be the committed fills in order (the contract keeps only their hash).
    function settle(uint40 deliveryStart, Fill[] calldata fills) external;

    /// @notice The EIP-712 digest that identifies `order` and that its prosumer signs.
    /// @return the order's hash, under which the ledger records and fills it
    function orderHash(Order calldata order) external view returns (bytes32);

    /// @notice The ledger state of the slot starting at `deliveryStart`.
    function slotState(uint40 deliveryStart) external view returns (SlotState memory);

    /// @notice The market account of `account`.
    function accountOf(address account) external view returns (Account memory);

    /// @notice Several market accounts in one call (the facilitator's indexer reads them per block range).
    function accountsOf(address[] calldata accounts) external view returns (Account[] memory);

    /// @notice The order status recorded under `prosumer`'s `nonce`: 0 unused, 1 open,
    /// 2 cancelled, 3 cleared.
    function nonceStatus(address prosumer, uint64 nonce) external view returns (uint8);

    /// @notice The meter reading of `account` for the slot; `posted` is false if there is none.
    function meterReading(uint40 deliveryStart, address account) external view returns (bool posted, int64 netWh);

    /// @notice Sets the imbalance prices (admin only). Shortfall at or above surplus, so that
    /// not delivering never pays better than delivering.
    function setImbalancePrices(uint64 shortfallPricePerKWh, uint64 surplusPricePerKWh) external;

    /// @notice The shortfall and surplus imbalance prices in token base units per kWh.
    function imbalancePrices() external view returns (uint64 shortfallPricePerKWh, uint64 surplusPricePerKWh);
}
