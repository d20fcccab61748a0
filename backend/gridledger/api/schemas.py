"""The shapes of the facilitator's API, one family per resource.

``*Create`` (and the other request bodies) are what a client sends, with the ranges the contracts
allow, and convert to the domain's types in one place (``OrderCreate.to_order()``). Request bodies
are strict: an integer field takes a JSON integer literal only (not ``"5"``, ``5.0``, ``1e3``,
``true``, ``NaN`` or ``Infinity``), within the range of its Solidity type (``uint32``, ``uint40``,
``int64``, ``uint64``). A ``uint64`` above 2**63 - 1 is refused (422) with the reason: the
facilitator's index (SQLite) holds signed 64-bit integers. ``*Public``
are what the API answers: the service layer returns plain dicts, each route validates its dict
into its response model. Response models forbid unknown keys and coerce nothing (strict), so a
service dict that drifts from its documented shape fails loudly in the tests instead of being
trimmed or converted on its way out: the JSON a client sees is the service's dict, key for key.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from eth_utils.address import to_checksum_address
from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from gridledger.flex.products import BaselineMethod, Direction, FlexOffer, FlexRequest, ServiceType
from gridledger.market.orders import Order, Side
from gridledger.units import SLOT_SECONDS, UINT32_MAX, UINT40_MAX, UINT64_MAX
from gridledger.wallet.signing import split_signature

OfferId = Annotated[str, Field(pattern=r"^0x[0-9a-fA-F]{64}$", description="EIP-712 hash of the offer")]
Address = Annotated[str, Field(pattern=r"^0x[0-9a-fA-F]{40}$", description="0x-prefixed Ethereum address")]
Signature = Annotated[
    str,
    Field(
        pattern=r"^0x([0-9a-fA-F]{128}|[0-9a-fA-F]{130})$",
        description="EIP-712 signature: 64 bytes (EIP-2098 r ‖ vs) or 65 bytes (r ‖ s ‖ v), hex",
    ),
]
OrderHash = Annotated[str, Field(pattern=r"^0x[0-9a-fA-F]{64}$", description="EIP-712 hash of the order")]
SlotStart = Annotated[
    int,
    Field(ge=SLOT_SECONDS, le=UINT40_MAX, multiple_of=SLOT_SECONDS, description="unix start of a 15-minute slot"),
]
INT64_MAX = 2**63 - 1


def _storable(value: int) -> int:
    """A uint64 the facilitator can keep: its index (SQLite) holds int64, the upper half of the
    chain's uint64 range would overflow it (a 500 before this check)."""
    if value > INT64_MAX:
        raise ValueError(
            f"at most {INT64_MAX} (2**63 - 1) here: the chain's uint64 goes to {UINT64_MAX}, "
            "the facilitator's index holds signed 64-bit integers"
        )
    return value


UINT64_NOTE = (
    "uint64 on-chain; the facilitator takes at most 2**63 - 1 (its index holds int64) and refuses more with 422"
)
Uint64 = Annotated[int, Field(ge=0, le=UINT64_MAX, description=UINT64_NOTE), AfterValidator(_storable)]
RequestId = Annotated[Uint64, Field(description=f"the flexibility request's id; {UINT64_NOTE}")]


class Body(BaseModel):
    """A request body: unknown fields are refused (422); strict, so an integer is a JSON integer
    literal, never a string, a float (``5.0``), a boolean or a non-finite number."""

    model_config = ConfigDict(extra="forbid", strict=True)


class Public(BaseModel):
    """A response: exactly the keys and types the service returns (see the module docstring)."""

    model_config = ConfigDict(extra="forbid", strict=True)


class Empty(Body):
    """No body (or ``{}``): what a signed request without parameters carries."""


def _signature_parts(signature: str) -> tuple[bytes, bytes]:
    """(r, vs) of a hex EIP-712 signature (64 or 65 bytes; the schema checked the length)."""
    return split_signature(bytes.fromhex(signature[2:]))


# ─────────────── service ───────────────


class Eip712Domain(Public):
    name: str
    version: str
    chainId: int  # the EIP-712 field names
    verifyingContract: str


class HealthPublic(Public):
    status: Literal["ok", "degraded"]
    chain: str
    chain_id: int
    contracts: dict[str, str] = Field(description="contract name → address")
    block_height: int
    indexed_block: int
    indexer_lag_blocks: int
    chain_time: int = Field(description="the chain's latest block time, unix seconds")
    relay_queue: int = Field(description="accepted orders not yet relayed")
    last_error: str | None


class VersionPublic(Public):
    gridledger: str
    chain_id: int
    contracts: dict[str, str]
    compiler: str
    network_model: str
    eip712_domain: Eip712Domain = Field(description="what a wallet signs orders and cancellations with")
    flex_eip712_domain: Eip712Domain = Field(description="what a provider signs flexibility offers with")
    gate_closure_seconds: int
    slot_seconds: int


# ─────────────── participants ───────────────


class ParticipantCreate(Body):
    account: Address
    meter_id: Annotated[int, Field(ge=1, le=UINT64_MAX, description=UINT64_NOTE), AfterValidator(_storable)]
    bus: Annotated[int, Field(ge=0, le=UINT32_MAX, description="bus of the network model")]
    capacity_w: Annotated[int, Field(ge=4, le=UINT32_MAX, description="connection capacity in W")]


class MarketBalance(Public):
    available: int
    locked: int


class ParticipantPublic(Public):
    account: str
    meter_id: int
    bus: int
    capacity_w: int
    max_order_wh: int
    market_balance: MarketBalance
    token_balance: int
    next_nonce: int


# ─────────────── orders ───────────────


class OrderCreate(Body):
    prosumer: Address
    side: Literal["buy", "sell"]
    delivery_start: SlotStart
    energy_wh: Annotated[int, Field(ge=1, le=UINT32_MAX)]
    price_per_kwh: Annotated[Uint64, Field(description=f"token base units per kWh; {UINT64_NOTE}")]
    # Signed as uint64, but the ledger keeps a prosumer's next nonce in 32 bits (NonceTooLarge).
    nonce: Annotated[int, Field(ge=0, lt=UINT32_MAX, description="the order's nonce: above every earlier one")]
    expiry: Annotated[int, Field(ge=0, le=UINT40_MAX, description="unix time after which the order is void")]
    signature: Signature

    def to_order(self) -> Order:
        return Order(
            prosumer=self.prosumer,
            side=Side.BUY if self.side == "buy" else Side.SELL,
            delivery_start=self.delivery_start,
            energy_wh=self.energy_wh,
            price_per_kwh=self.price_per_kwh,
            nonce=self.nonce,
            expiry=self.expiry,
        )

    def signature_parts(self) -> tuple[bytes, bytes]:
        return _signature_parts(self.signature)


class CancellationCreate(Body):
    signature: Signature

    def signature_parts(self) -> tuple[bytes, bytes]:
        return _signature_parts(self.signature)


class OrderAccepted(Public):
    order_hash: str
    status: Literal["accepted"]


class CancellationAccepted(Public):
    order_hash: str
    cancellation: Literal["pending"]


class OrderTerms(Public):
    prosumer: str
    side: Literal["buy", "sell"]
    delivery_start: int
    energy_wh: int
    price_per_kwh: int
    nonce: int
    expiry: int


class RelayStatus(Public):
    status: str = Field(description="accepted | relayed | rejected | withdrawn | abandoned")
    tx_hash: str | None
    reason: str | None


class CancellationStatus(Public):
    status: str | None
    reason: str | None
    tx_hash: str | None


class SettlementLine(Public):
    order_hash: str
    prosumer: str
    deviation_wh: int
    payment: int
    imbalance_charge: int
    network_charge: int = Field(description="the network charge the buyer paid the DSO for this fill (0 for a sale)")


class OrderPublic(Public):
    """An order's state; ``relay``, ``reason``, ``cancellation`` and ``settlement`` appear only when
    they apply (routes answer with ``response_model_exclude_unset``)."""

    order_hash: str
    status: str = Field(description="accepted | on_chain | rejected | withdrawn | cancelled | filled | …")
    order: OrderTerms
    filled_wh: int
    relay: RelayStatus | None = None
    reason: str | None = None
    cancellation: CancellationStatus | None = None
    settlement: SettlementLine | None = None


# ─────────────── slots ───────────────


class PriceLevel(Public):
    price_per_kwh: int
    energy_wh: int
    orders: int
    cumulative_wh: int


class BookPublic(Public):
    delivery_start: int
    gate_closure: int
    bids: list[PriceLevel]
    asks: list[PriceLevel]
    awaiting_relay: int


class TradePublic(Public):
    order_hash: str
    prosumer: str
    delivery_start: int
    side: Literal["buy", "sell"]
    filled_wh: int
    amount: int = Field(description="at the clearing price: what a buyer pays (rounded up) or a seller is paid")
    network_charge: int = Field(description="what a buyer pays the DSO on top, by the slot's network tariff")


class ParticipantTradePublic(TradePublic):
    settlement: SettlementLine | None


class ClearingPublic(Public):
    delivery_start: int
    status: str
    clearing_price_per_kwh: int | None
    traded_wh: int | None
    fills_hash: str | None
    network_report_hash: str | None
    network_model_version: str | None
    network_passed: bool | None
    curtailed_wh: int | None
    network_tariff_per_kwh: int | None = Field(description="the DSO's tariff per kWh traded in the slot")
    trades: list[TradePublic]


class MeterReadingsPosted(Public):
    delivery_start: int
    posted: int


class SettlementPublic(Public):
    delivery_start: int
    status: str
    meter_readings_wh: dict[str, int] = Field(description="account → net metered Wh")
    settlements: list[SettlementLine]
    net_payments: dict[str, int] = Field(description="account → net payment in token base units")
    paid_to_sellers: int | None
    to_balancing: int | None
    from_balancing: int | None
    network_charges: int | None = Field(description="paid into the DSO's account")


class NetworkReportPublic(Public):
    delivery_start: int
    report_hash: str
    model_version: str
    passed: bool
    curtailed_wh: int
    report: dict[str, Any] = Field(description="the canonical report whose keccak-256 is on-chain")


# ─────────────── flexibility ───────────────


class FlexRequestCreate(Body):
    service: Literal["sustain", "secure", "dynamic", "restore"]
    direction: Literal["up", "down"]
    baseline: Literal["historical", "nominated", "meter_before_after"]
    congestion_bus: Annotated[int, Field(ge=0, le=UINT32_MAX, description="bus of the network model")]
    power_w: Annotated[int, Field(ge=1, le=UINT32_MAX)]
    window_start: SlotStart
    window_slots: Annotated[int, Field(ge=1, le=96)]
    bid_deadline: Annotated[int, Field(ge=0, le=UINT40_MAX)]
    max_availability_price_per_kwh: Annotated[Uint64, Field(description=f"per kW per hour; {UINT64_NOTE}")]
    max_utilisation_price_per_kwh: Uint64
    min_performance_bps: Annotated[int, Field(ge=1, le=10_000)] = 5_000

    def to_request(self) -> FlexRequest:
        return FlexRequest(
            ServiceType[self.service.upper()],
            Direction[self.direction.upper()],
            BaselineMethod[self.baseline.upper()],
            self.congestion_bus,
            self.power_w,
            self.window_start,
            self.window_slots,
            self.bid_deadline,
            self.max_availability_price_per_kwh,
            self.max_utilisation_price_per_kwh,
            self.min_performance_bps,
        )


class FlexOfferCreate(Body):
    provider: Address
    window_start: SlotStart
    power_w: Annotated[int, Field(ge=1, le=UINT32_MAX)]
    availability_price_per_kwh: Uint64
    utilisation_price_per_kwh: Uint64
    bus: Annotated[int, Field(ge=0, le=UINT32_MAX, description="the asset's connection point")]
    nonce: Uint64
    signature: Signature

    def to_offer(self, request_id: int) -> FlexOffer:
        return FlexOffer(
            self.provider,
            request_id,
            self.window_start,
            self.power_w,
            self.availability_price_per_kwh,
            self.utilisation_price_per_kwh,
            self.bus,
            self.nonce,
        )

    def signature_parts(self) -> tuple[bytes, bytes]:
        return _signature_parts(self.signature)


class ActivationCreate(Body):
    slot: SlotStart
    power_w: Annotated[int, Field(ge=1, le=UINT32_MAX)]


class MeasurementCreate(Body):
    slot: SlotStart
    baseline_wh: Annotated[int, Field(ge=-INT64_MAX - 1, le=INT64_MAX)]
    actual_wh: Annotated[int, Field(ge=-INT64_MAX - 1, le=INT64_MAX)]


class MeterReading(Body):
    account: Address
    net_wh: Annotated[int, Field(ge=-INT64_MAX - 1, le=INT64_MAX, description="Wh taken from the grid (fed in < 0)")]


class MeterReadingsCreate(Body):
    readings: Annotated[list[MeterReading], Field(min_length=1, max_length=1_000)]

    def by_account(self) -> dict[str, int]:
        """Net Wh per checksummed account."""
        return {str(to_checksum_address(r.account)): r.net_wh for r in self.readings}


class FlexDeliveryPublic(Public):
    slot: int
    activated_w: int | None
    ordered_wh: int | None
    baseline_wh: int | None
    actual_wh: int | None
    delivered_wh: int | None
    deficiency_wh: int | None
    measured: bool


class FlexOfferPublic(Public):
    offer_id: str
    request_id: int
    provider: str
    power_w: int
    availability_price_per_kwh: int
    utilisation_price_per_kwh: int
    bus: int
    awarded: bool
    availability_payment: int | None
    utilisation_payment: int | None
    deliveries: list[FlexDeliveryPublic]


class FlexRequestPublic(Public):
    request_id: int
    dso: str
    service: Literal["sustain", "secure", "dynamic", "restore"]
    direction: Literal["up", "down"]
    baseline: Literal["historical", "nominated", "meter_before_after"]
    congestion_bus: int
    power_w: int
    window_start: int
    window_slots: int
    bid_deadline: int
    max_availability_price_per_kwh: int
    max_utilisation_price_per_kwh: int
    min_performance_bps: int = Field(description="the delivered share (basis points) below which nothing is paid")
    escrow: int
    status: str = Field(description="open | awarded | settled")
    awarded_power_w: int | None
    award_report_hash: str | None
    paid: int | None
    refunded: int | None
    window_end: int
    offers: list[FlexOfferPublic]


class AwardReportPublic(Public):
    request_id: int
    report_hash: str
    report: dict[str, Any] = Field(description="the canonical award report whose hash is on-chain")


# ─────────────── the dashboard's reads ───────────────


class MarketSlotPublic(Public):
    delivery_start: int
    gate_closure: int = Field(description="unix seconds after which the slot takes no orders")
    status: Literal["open", "cleared", "settled"]
    orders: int = Field(description="orders the ledger recorded for the slot")
    bid_wh: int = Field(description="energy bid for, cancelled orders excluded")
    ask_wh: int = Field(description="energy offered, cancelled orders excluded")
    clearing_price_per_kwh: int | None = Field(description="token base units per kWh, once cleared")
    traded_wh: int | None
    curtailed_wh: int | None = Field(description="energy the network check curtailed, once cleared here")
    network_passed: bool | None


class GridBus(Public):
    index: int
    name: str
    vn_kv: float
    x: float = Field(description="longitude with geodata, else the schematic's column")
    y: float = Field(description="latitude with geodata, else the schematic's row")


class GridLine(Public):
    index: int
    name: str
    from_bus: int
    to_bus: int


class GridTrafo(Public):
    index: int
    name: str
    hv_bus: int
    lv_bus: int


class GridPublic(Public):
    network_model: str
    model_version: str
    geodata: bool = Field(description="true: positions are SimBench's coordinates; false: a schematic")
    limits: dict[str, float] = Field(description="loading and voltage limits the network check applies")
    buses: list[GridBus]
    lines: list[GridLine]
    trafos: list[GridTrafo]
    slack_buses: list[int]
    participant_buses: list[int] = Field(description="buses with a registered participant")


class SlotAuditPublic(Public):
    delivery_start: int
    confirmed: bool = Field(description="true when re-running the slot from public records found no difference")
    differences: list[str] = Field(description="each mismatch found, in words")


class ServerEvent(Public):
    """One server-sent event's ``data`` (JSON); the SSE ``event`` field names the kind."""

    kind: Literal["order_accepted", "order_on_chain", "order_cancelled", "slot_cleared", "slot_settled", "flexibility"]
    data: dict[str, Any]


# ─────────────── market clock ───────────────


class MissingReadingsPublic(Public):
    delivery_start: int = Field(description="the delivered, cleared slot that cannot settle yet")
    accounts: list[str] = Field(description="accounts that traded in the slot and have no meter reading")
    due: int = Field(description="when the readings were due (unix seconds); late after it")
    late: bool


class ClockPublic(Public):
    running: bool = Field(description="whether the service runs its market clock")
    mode: Literal["accelerated", "wall clock"]
    seconds_per_slot: float = Field(description="real seconds one 15-minute slot takes (900 on the wall clock)")
    now: int = Field(description="the market's time (the chain's), unix seconds")
    current_slot: int = Field(description="start of the slot being delivered now")
    next_gate_slot: int = Field(description="the next slot whose gate closes")
    next_gate_closure: int = Field(description="when that gate closes, unix seconds")
    gate_closure_seconds: int = Field(description="a slot's gate closes this long before it starts")
    next_slot_to_clear: int = Field(description="the clock's place in the calendar: every slot before it is done")
    last_cleared_slot: int | None
    last_settled_slot: int | None
    missing_readings: list[MissingReadingsPublic]
    last_error: str | None


# ─────────────── wallet: signed deposits and withdrawals, payments ───────────────

Amount = Annotated[int, Field(ge=1, le=INT64_MAX, description="token base units (10^-6 token), positive")]
Deadline = Annotated[int, Field(ge=0, le=INT64_MAX, description="unix seconds after which the signature is void")]


class DepositCreate(Body):
    """An EIP-2612 permit of the settlement token for the market, signed by ``owner``: the
    facilitator relays it as ``EnergyMarket.depositWithPermit``."""

    owner: Address
    amount: Amount
    deadline: Deadline
    signature: Signature

    def parts(self) -> tuple[bytes, bytes]:
        return _signature_parts(self.signature)


class WithdrawalCreate(Body):
    """An EIP-712 ``Withdrawal(owner, amount, nonce, deadline)`` in the market's domain, signed by
    ``owner``: the facilitator relays it as ``EnergyMarket.withdrawBySig``."""

    owner: Address
    amount: Amount
    nonce: Annotated[int, Field(ge=0, le=INT64_MAX, description="the owner's next withdrawal nonce")]
    deadline: Deadline
    signature: Signature

    def parts(self) -> tuple[bytes, bytes]:
        return _signature_parts(self.signature)


class WalletPublic(Public):
    account: str
    token_balance: int = Field(description="settlement tokens in the wallet itself, base units")
    market_balance: MarketBalance
    permit_nonce: int = Field(description="the nonce the wallet's next deposit permit carries")
    withdrawal_nonce: int = Field(description="the nonce the wallet's next signed withdrawal carries")
    token_eip712_domain: Eip712Domain = Field(description="what a wallet signs deposit permits with")
    market: str = Field(description="the market: the permit's spender")


class WalletMoved(WalletPublic):
    amount: int
    tx_hash: str


class PaymentPublic(Public):
    block: int
    delivery_start: int | None
    kind: str = Field(
        description="deposit | withdrawal | purchase | sale | surplus_buyback | imbalance_charge | uncollected | "
        "network_charge"
    )
    amount: int = Field(description="signed base units: positive credits the market balance")
    order_hash: str | None
