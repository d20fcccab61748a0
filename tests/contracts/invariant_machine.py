"""A Hypothesis state machine over GridLedger's contracts, and the world it runs in.

The world is deployed once per process (3 prosumers, a funded balancing account and DSO) and
snapshotted; every example starts by reverting the embedded chain to that snapshot, so an example
costs only its own transactions. The machine keeps a model of what the contracts should hold
(accounts, open orders, slots, flexibility escrows), predicts every act's outcome from it, and
after every step checks the chain against it and against the invariants of the issue:

- tokens: the market's token balance is Σ accounts (available + locked, the DSO's and the
  balancing account's included); the flexibility market's token balance is its open escrows +
  the claimable balances settlement credited (payments are pulled with ``claim``);
- locked = Σ escrow of the buy orders recorded and not cancelled whose slot has not settled
  (escrow is released at settlement), per prosumer;
- bought = sold per cleared slot, no fill above its order's energy or beyond its limit price (a
  buyer's all-in: clearing price plus the slot's network tariff);
- nothing settles twice; refunds are exact; nonces (orders', permits', signed withdrawals')
  are what the model predicts, and so are the UFTP keys bound.

Clearings are committed in chunks of a random size (so most slots take several transactions),
and the DSO sets network tariffs before gate closure.

Acts the model knows must fail (withdrawing more than available, an order after gate closure,
a replayed order or permit or signed withdrawal, a UFTP offer without a bound key, a second
settlement, …) are sent anyway and must be refused with the expected
domain exception and leave the chain unchanged.

``CHECKS`` counts every check by invariant, ``REFUSALS`` every refusal by its error
(``benchmarks/invariants.py`` prints both).
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import pytest
from eth_abi.abi import decode as abi_decode
from eth_abi.abi import encode as abi_encode
from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_tester.exceptions import TransactionFailed
from eth_utils.abi import function_signature_to_4byte_selector
from eth_utils.crypto import keccak
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule
from tests.conftest import DEPOSIT, REPORT, open_ledger
from web3.contract.contract import ContractConstructor, ContractFunction
from web3.logs import DISCARD
from web3.types import TxParams, TxReceipt, Wei

from gridledger.chain.compile import Build, compile_contracts
from gridledger.chain.connection import Chain
from gridledger.chain.ledger import SLOT_STATE_ABI, SLOT_STATUS, Ledger, SlotState
from gridledger.chain.reverts import RevertDecoder
from gridledger.chain.transactions import MAX_TX_GAS, PRIORITY_FEE_WEI, RevertError, Transactor, encode_call
from gridledger.errors import (
    ClearingRejected,
    FlexRejected,
    GateClosedError,
    GridLedgerError,
    InsufficientFunds,
    LedgerError,
    NotRegisteredError,
    OrderError,
    OrderExpiredError,
    ReplayRejected,
    SettlementRejected,
    SignatureRejected,
)
from gridledger.flex.products import BaselineMethod, Direction, FlexOffer, FlexRequest, ServiceType
from gridledger.market.book import clear_recorded
from gridledger.market.orders import Order, RecordedOrder, Side, market_domain
from gridledger.settlement.rules import cost, revenue
from gridledger.sim.participants import make_prosumers
from gridledger.wallet.funds import PERMIT_TYPES, WITHDRAWAL_TYPES, sign_permit, token_domain, withdrawal_message
from gridledger.wallet.signing import offer_digest, split_signature

PROSUMERS = 3
SLOTS = 3
START_LEAD = 1_800  # every example starts 30 minutes before its first slot
WALLET = 50_000_000  # tokens each prosumer holds outside the market, to deposit
BALANCING_FLOAT = 1_000 * DEPOSIT  # the balancing account pays surplus buy-backs from this
DSO_FUNDS = 100_000_000
FUNDER_FUNDS = 40_000_000  # a wallet that deposits into others' accounts: a few batches, then too little
GATE = 300  # the deployment's gate closure (Settings.gate_closure_seconds)
SHORTFALL_PRICE, SURPLUS_PRICE = 400_000, 50_000  # the deployment's imbalance prices
CAPACITY_W = 30_000  # make_prosumers' default capacity
MAX_ENERGY_WH = CAPACITY_W // 4  # over one slot
# The flexibility requests: a window over the last two slots, bids until 25 minutes before the
# first slot starts, at most 20 kW at 0.10 (availability) + 0.30 (utilisation) token/kWh.
FLEX_POWER_W = 20_000
FLEX_CAPS = (100_000, 300_000)
FLEX_BID_LEAD = 1_500
MAX_REQUESTS = 2
# A time within this many seconds of a boundary (gate closure, delivery end, …) is stepped over
# before a time-dependent act, so that the model and the block that runs the act agree on which
# side of it they are (every transaction mines a block one second later).
MARGIN = 4
DEADLINES = (0, 600, 86_400)  # how far past the margin a signed deposit or withdrawal stays valid
ZERO_KEY = b"\0" * 32

CHECKS: Counter[str] = Counter()
RUNS: Counter[str] = Counter()
REFUSALS: Counter[str] = Counter()  # refusals seen, by the contract's custom error


# ───────────────────────────── reads ─────────────────────────────


class Lens:
    """The machine's reads of the contracts, straight from the embedded chain's revm backend:
    each an ``eth_call`` whose calldata is encoded here once (selector + eth-abi arguments) and
    whose result eth-abi decodes. Through web3 a read took ~6 ms of ABI lookup, validation and
    formatting, and the reads after every step were three quarters of an example's time; here
    one takes ~0.1 ms. ``test_the_lens_reads_what_web3_reads`` checks it against the ledger's reads."""

    def __init__(self, ledger: Ledger) -> None:
        self.backend = ledger.chain.tester.backend
        self.token = ledger.token.address
        self.market = ledger.market.address
        self.flex = ledger.flex.address
        self._calldata: dict[tuple[str, tuple[Any, ...]], bytes] = {}

    def call(self, to: str, signature: str, args: tuple[Any, ...], returns: str) -> Any:
        key = (signature, args)
        data = self._calldata.get(key)
        if data is None:
            types = signature[signature.index("(") + 1 : -1]
            encoded = abi_encode(split_types(types), list(args)) if types else b""
            data = self._calldata[key] = function_signature_to_4byte_selector(signature) + encoded
        out = self.backend.call({"to": bytes.fromhex(to[2:]), "data": data, "gas_price": 0}, "latest")
        (value,) = abi_decode([returns], out)
        return value

    def block(self) -> int:
        return len(self.backend.blocks) - 1

    def now(self) -> int:
        return int(self.backend.blocks[-1].timestamp)

    def token_balance(self, address: str) -> int:
        return int(self.call(self.token, "balanceOf(address)", (address,), "uint256"))

    def accounts(self, addresses: list[str]) -> list[tuple[int, int]]:
        found = self.call(self.market, "accountsOf(address[])", (tuple(addresses),), "(uint128,uint128)[]")
        return [(int(a), int(b)) for a, b in found]

    def slot_state(self, start: int) -> SlotState:
        (orders_hash, fills_hash, report, orders, cancelled, status, price, tariff, chunks, settled, pot) = self.call(
            self.market, "slotState(uint40)", (start,), SLOT_STATE_ABI
        )
        return SlotState(
            orders_hash, fills_hash, report, orders, cancelled, SLOT_STATUS[status], price, tariff, chunks, settled, pot
        )

    def next_nonce(self, address: str) -> int:
        return int(self.call(self.market, "nextNonce(address)", (address,), "uint64"))

    def permit_nonce(self, address: str) -> int:
        return int(self.call(self.token, "nonces(address)", (address,), "uint256"))

    def withdrawal_nonce(self, address: str) -> int:
        return int(self.call(self.market, "withdrawalNonce(address)", (address,), "uint256"))

    def uftp_key(self, address: str) -> bytes:
        return bytes(self.call(self.flex, "uftpKey(address)", (address,), "bytes32"))

    def claimable(self, address: str) -> int:
        return int(self.call(self.flex, "claimable(address)", (address,), "uint256"))


class EmbeddedTransactor(Transactor):
    """The ledger's transactor with its node round trips made straight to the embedded chain:
    fees from the backend's base fee, the preflight ``eth_call`` and the raw transaction into
    eth-tester, the receipt from the embedded ``eth`` (each through web3's request middleware
    was ~3 ms, six of them a transaction). Calldata, signing, nonces, the decoding of reverts
    into domain exceptions and the receipts' form are the Transactor's own."""

    def __init__(self, chain: Chain, decoder: RevertDecoder) -> None:
        super().__init__(chain, decoder)
        self.tester = chain.tester
        self.backend = chain.tester.backend

    def _fees(self) -> TxParams:
        base = int(self.backend.get_base_fee("latest"))
        return {"maxFeePerGas": Wei(2 * base + PRIORITY_FEE_WEI), "maxPriorityFeePerGas": Wei(PRIORITY_FEE_WEI)}

    def _preflight(self, account: LocalAccount, call: ContractFunction | ContractConstructor, action: str) -> TxParams:
        if not isinstance(call, ContractFunction):
            return super()._preflight(account, call, action)
        fees = self._fees()
        data = encode_call(call)
        try:
            self.backend.call(
                {
                    "from": bytes.fromhex(account.address[2:]),
                    "to": bytes.fromhex(call.address[2:]),
                    "data": bytes.fromhex(data[2:]),
                    "gas": MAX_TX_GAS,
                    "max_fee_per_gas": fees["maxFeePerGas"],
                    "max_priority_fee_per_gas": fees["maxPriorityFeePerGas"],
                },
                "latest",
            )
        except TransactionFailed as exc:  # worded as web3's eth-tester provider words it
            raise self._revert(TransactionFailed(f"execution reverted: {exc.args[0]}"), action) from None
        return {
            "from": account.address,
            "chainId": self.chain.chain_id,
            "gas": MAX_TX_GAS,
            **fees,
            "to": call.address,
            "data": data,
            "value": Wei(0),
        }

    def _send_signed(self, account: LocalAccount, tx: TxParams, action: str, kind: str) -> TxReceipt:
        signed = account.sign_transaction(tx)  # type: ignore[arg-type]
        try:
            tx_hash = self.tester.send_raw_transaction(signed.raw_transaction.to_0x_hex())  # mined at once
        except RevertError as exc:
            self.forget_nonce(account.address)
            raise self._revert(exc, action) from None
        receipt = self.chain.w3.eth.get_transaction_receipt(tx_hash)
        self.gas_used[kind] += receipt["gasUsed"]
        if receipt["status"] != 1:
            raise self._replay_failure(tx, receipt, action)
        return receipt


def split_types(types: str) -> list[str]:
    """``"address,(uint8,bytes32)[],uint40"`` → its top-level types."""
    parts, depth, start = [], 0, 0
    for k, c in enumerate(types):
        depth += (c == "(") - (c == ")")
        if c == "," and depth == 0:
            parts.append(types[start:k])
            start = k + 1
    return [*parts, types[start:]]


# ───────────────────────────── the world, deployed once ─────────────────────────────


@dataclass
class World:
    build: Build
    ledger: Ledger
    prosumers: list[LocalAccount]
    snapshot: int
    lens: Lens


_WORLD: World | None = None


def world() -> World:
    """The deployed world, made on first use and snapshotted."""
    global _WORLD
    if _WORLD is None:
        build = compile_contracts()
        ledger = open_ledger(build)
        ledger.tx = EmbeddedTransactor(ledger.chain, ledger.tx.decoder)
        prosumers = make_prosumers(ledger, count=PROSUMERS, deposit=DEPOSIT)
        for p in prosumers:
            ledger.mint(p.address, WALLET)
        balancing = ledger.roles.balancing
        ledger.fund_gas(balancing.address, 10**18)
        ledger.mint(balancing.address, BALANCING_FLOAT)
        ledger.deposit(balancing, BALANCING_FLOAT)
        dso = ledger.roles.dso
        ledger.fund_gas(dso.address, 10**18)
        ledger.mint(dso.address, DSO_FUNDS)
        ledger.fund_gas(ledger.roles.meter.address, 10**18)
        ledger.mint(ledger.roles.meter.address, FUNDER_FUNDS)  # deposits for others (depositFor)
        _WORLD = World(build, ledger, prosumers, ledger.chain.tester.take_snapshot(), Lens(ledger))
    return _WORLD


def fresh_ledger(w: World) -> tuple[Ledger, list[int]]:
    """Reverts the chain to the world's snapshot (the transactor forgets the nonces it counted;
    the ledger is the world's, its contracts bound once) and sets the clock to 30 minutes before
    the first of the example's slots.

    After a revert, eth-tester stamps the next block with the wall-clock time, so slots fixed when
    the world was made would drift into the past during a long run. Each example instead starts at
    the same offset from its own slots, so a replayed example (Hypothesis shrinks by replaying)
    sees the same times relative to them."""
    w.ledger.chain.tester.revert_to_snapshot(w.snapshot)
    w.ledger.tx.forget_nonce()
    first = (max(w.lens.now(), int(time.time())) // 900 + 3) * 900
    w.ledger.chain.move_time_to(first - START_LEAD)
    return w.ledger, [first + 900 * k for k in range(SLOTS)]


# ───────────────────────────── the model ─────────────────────────────


@dataclass
class ModelOrder:
    order: Order
    hash: bytes
    status: str = "unrecorded"  # unrecorded → open → cancelled | cleared; unrecorded → burnt
    arrival: int = 0

    @property
    def escrow(self) -> int:
        return cost(self.order.energy_wh, self.order.price_per_kwh) if self.order.side is Side.BUY else 0


@dataclass
class ModelSlot:
    start: int
    status: str = "open"
    price: int = 0
    tariff: int = 0
    fills: list[tuple[Order, int]] = field(default_factory=list)
    readings: dict[str, int] = field(default_factory=dict)


@dataclass
class ModelRequest:
    id: int
    request: FlexRequest
    escrow: int
    status: str = "open"  # open → awarded → settled
    awarded: list[bytes] = field(default_factory=list)


@dataclass
class ModelOffer:
    id: bytes
    offer: FlexOffer
    awarded: bool = False
    withdrawn: bool = False
    uftp: bool = False  # recorded by the facilitator from a UFTP message (``submitUftpOffer``)
    ordered: dict[int, int] = field(default_factory=dict)  # slot → ordered Wh
    delivered: dict[int, int] = field(default_factory=dict)  # slot → delivered Wh (measured)


@dataclass(frozen=True)
class Refused:
    """What the model expects an act to raise: a domain exception class and the custom error."""

    kind: type[GridLedgerError]
    error: str = ""


pick = st.integers(0, 2**16)
who = st.integers(0, PROSUMERS - 1)
slot_index = st.integers(0, SLOTS - 1)
side = st.sampled_from([Side.BUY, Side.SELL])
energy = st.integers(1, MAX_ENERGY_WH)
price = st.integers(1, 60).map(lambda k: k * 5_000 + 1)  # 0.005 … 0.3 token/kWh; odd, so rounding shows


class GridLedgerMachine(RuleBasedStateMachine):
    """Random sequences of every party's acts on the energy and flexibility markets."""

    def __init__(self) -> None:
        super().__init__()
        self.w = world()
        self.ledger, self.slot_times = fresh_ledger(self.w)
        self.lens = self.w.lens
        self.people = self.w.prosumers
        self.balancing = self.ledger.roles.balancing.address
        self.addresses = [p.address for p in self.people]
        self.dso = self.ledger.roles.dso.address
        self.available = {a: DEPOSIT for a in self.addresses} | {self.balancing: BALANCING_FLOAT, self.dso: 0}
        self.wallet = dict.fromkeys(self.addresses, WALLET)
        self.orders: list[ModelOrder] = []
        self.nonce = dict.fromkeys(self.addresses, 0)  # the next nonce a prosumer signs
        self.next_nonce = dict.fromkeys(self.addresses, 0)  # the lowest the ledger still takes
        self.slots = [ModelSlot(s) for s in self.slot_times]
        self.arrivals = 0
        self._reads: tuple[int, dict[str, Any]] | None = None
        self._started = False
        self.dso_wallet = DSO_FUNDS
        self.funder_wallet = FUNDER_FUNDS
        self.requests: list[ModelRequest] = []
        self.offers: list[ModelOffer] = []
        self.offer_nonce = dict.fromkeys(self.addresses, 0)
        self.claimable = dict.fromkeys([*self.addresses, self.ledger.roles.dso.address], 0)
        # Signed money movements: the token's permit nonces, the market's withdrawal nonces, and
        # what was relayed already (to replay it).
        self.permit_nonce = dict.fromkeys(self.addresses, 0)
        self.withdrawal_nonce = dict.fromkeys(self.addresses, 0)
        self.permits: list[tuple[str, int, int, bytes]] = []  # (owner, amount, deadline, r ‖ s ‖ v)
        self.withdrawals: list[tuple[str, int, int, int, bytes, bytes]] = []  # owner, amount, nonce, deadline, r, vs
        self.uftp_key = dict.fromkeys(self.addresses, ZERO_KEY)
        RUNS["examples"] += 1

    # ───────── helpers ─────────

    def now(self) -> int:
        return self.lens.now()

    def gate_open_somewhere(self) -> bool:
        return self.now() + 1 + GATE < self.slot_times[-1]

    def gate_closed_somewhere(self) -> bool:
        return self.now() + 1 + GATE >= self.slot_times[0]

    def delivery_ended_somewhere(self) -> bool:
        return self.now() + 1 >= self.slot_times[0] + 900

    def cleared_somewhere(self) -> bool:
        return any(s.status != "open" for s in self.slots)

    def boundaries(self) -> list[int]:
        return [b for s in self.slot_times for b in (s - GATE, s, s + 900)] + [self.slot_times[1] - FLEX_BID_LEAD]

    def clear_of_boundaries(self) -> int:
        """Moves the clock past any boundary the next block's time would be within MARGIN of;
        returns the time the next transaction will see."""
        t = self.now() + 1
        for b in sorted(self.boundaries()):
            if abs(t - b) <= MARGIN:
                self.ledger.chain.move_time_to(b + MARGIN + 1)
                t = self.now() + 1
        return t

    def block(self) -> int:
        return self.lens.block()

    def expect_refusal(self, refused: Refused, act: Callable[[], object], *, mines: int = 0) -> None:
        """Runs ``act`` expecting the model's refusal; the chain must not have changed (no block
        mined beyond the ``mines`` harmless ones the act sends first, such as an approval)."""
        before = self.block()
        with pytest.raises(refused.kind) as info:
            act()
        if refused.error:
            assert info.value.error == refused.error, f"expected {refused.error}, got {info.value}"
        assert self.block() == before + mines, "a refused act mined a transaction"
        CHECKS["refusal changes nothing"] += 1
        RUNS["refusals"] += 1
        REFUSALS[refused.error or refused.kind.__name__] += 1

    def reads(self) -> dict[str, Any]:
        """The chain's balances and slots, read once per block (a refusal mines none)."""
        block = self.block()
        if self._reads is None or self._reads[0] != block:
            lens = self.lens
            parties = [*self.addresses, self.balancing, self.dso]
            self._reads = (
                block,
                {
                    "accounts": dict(zip(parties, lens.accounts(parties), strict=True)),
                    "market_tokens": lens.token_balance(lens.market),
                    "slots": {s.start: lens.slot_state(s.start) for s in self.slots},
                    "flex_tokens": lens.token_balance(lens.flex),
                    "nonces": {a: lens.next_nonce(a) for a in self.addresses},
                    "permit_nonces": {a: lens.permit_nonce(a) for a in self.addresses},
                    "withdrawal_nonces": {a: lens.withdrawal_nonce(a) for a in self.addresses},
                    "uftp_keys": {a: lens.uftp_key(a) for a in self.addresses},
                },
            )
        return self._reads[1]

    def reads_via_web3(self) -> dict[str, Any]:
        """``reads`` through web3 and the ledger's own reads (what the lens must agree with)."""
        led = self.ledger
        parties = [*self.addresses, self.balancing, self.dso]
        accounts = led.market.functions.accountsOf(parties).call()
        return {
            "accounts": {a: (int(x[0]), int(x[1])) for a, x in zip(parties, accounts, strict=True)},
            "market_tokens": led.token_balance(led.market.address),
            "slots": {s.start: led.slot_state(s.start) for s in self.slots},
            "flex_tokens": led.token_balance(led.flex.address),
            "nonces": {a: led.next_nonce(a) for a in self.addresses},
            "permit_nonces": {a: int(led.token.functions.nonces(a).call()) for a in self.addresses},
            "withdrawal_nonces": {a: int(led.market.functions.withdrawalNonce(a).call()) for a in self.addresses},
            "uftp_keys": {a: bytes(led.flex.functions.uftpKey(a).call()) for a in self.addresses},
        }

    def locked(self, address: str) -> int:
        """Escrow is locked from recording until the slot settles (or the order is cancelled)."""
        settled = {s.start for s in self.slots if s.status == "settled"}
        return sum(
            o.escrow
            for o in self.orders
            if o.status in ("open", "cleared") and o.order.prosumer == address and o.order.delivery_start not in settled
        )

    def new_order(self, i: int, side_: Side, s: int, energy_wh: int, price_: int) -> ModelOrder:
        account = self.people[i]
        nonce = self.nonce[account.address]
        self.nonce[account.address] += 1
        order = Order(account.address, side_, self.slot_times[s], energy_wh, price_, nonce, self.slot_times[s])
        model = ModelOrder(order, self.ledger.sign(account, order).order_hash)
        self.orders.append(model)
        return model

    def predict_record(
        self, o: ModelOrder, t: int, available: dict[str, int], next_nonce: dict[str, int]
    ) -> Refused | None:
        """What ``_record`` does with the order at time ``t`` (``available`` and ``next_nonce``
        are updated on success)."""
        order = o.order
        if t > order.expiry:
            return Refused(OrderExpiredError, "OrderExpired")
        if t + GATE >= order.delivery_start:
            return Refused(GateClosedError, "GateClosed")
        if order.nonce < next_nonce[order.prosumer]:
            return Refused(ReplayRejected, "NonceAlreadyUsed")
        if order.side is Side.BUY:
            if available[order.prosumer] < o.escrow:
                return Refused(InsufficientFunds, "InsufficientBalance")
            available[order.prosumer] -= o.escrow
        next_nonce[order.prosumer] = order.nonce + 1
        return None

    def recorded(self, o: ModelOrder) -> None:
        o.status = "open"
        self.arrivals += 1
        o.arrival = self.arrivals

    # ───────── money ─────────

    @rule(i=who, amount=st.integers(0, WALLET), too_much=st.integers(0, 3))
    def deposit(self, i: int, amount: int, too_much: int) -> None:
        account = self.people[i]
        wallet = self.wallet[account.address]
        if too_much:
            # the approval is mined, then the token refuses to move more than the wallet holds
            refused = Refused(LedgerError, "ERC20InsufficientBalance")
            self.expect_refusal(refused, lambda: self.ledger.deposit(account, wallet + too_much), mines=1)
            return
        amount = min(amount, wallet)
        if amount == 0:
            # approve(0) is mined, then the deposit of nothing is refused
            self.expect_refusal(Refused(LedgerError, "ZeroAmount"), lambda: self.ledger.deposit(account, 0), mines=1)
            return
        self.ledger.deposit(account, amount)
        self.wallet[account.address] -= amount
        self.available[account.address] += amount
        RUNS["deposits"] += 1

    @rule(
        amounts=st.dictionaries(who, st.integers(0, WALLET // 10), min_size=1, max_size=PROSUMERS),
        refusal=st.sampled_from(["none", "none", "zero", "stranger", "too_much"]),
    )
    def deposit_for(self, amounts: dict[int, int], refusal: str) -> None:
        """A funder (the meter operator's wallet here) deposits into several accounts in one transaction
        (``depositFor``); the whole batch is refused if any amount is zero or any account is not
        registered, or if the funder's wallet cannot cover the total."""
        funder = self.ledger.roles.meter
        batch = {self.addresses[i]: max(amount, 1) for i, amount in amounts.items()}
        total = sum(batch.values())
        if refusal == "zero":
            batch[next(iter(batch))] = 0
            act = lambda: self.ledger.deposit_for(funder, batch)  # noqa: E731
            self.expect_refusal(Refused(LedgerError, "ZeroAmount"), act, mines=1)  # the approval is mined
            return
        if refusal == "stranger":
            stranger = {**batch, "0x000000000000000000000000000000000000dEaD": 1}
            act = lambda: self.ledger.deposit_for(funder, stranger)  # noqa: E731
            self.expect_refusal(Refused(NotRegisteredError, "NotRegistered"), act, mines=1)
            return
        if refusal == "too_much" or total > self.funder_wallet:
            over = {**batch, self.addresses[0]: batch.get(self.addresses[0], 0) + self.funder_wallet + 1}
            act = lambda: self.ledger.deposit_for(funder, over)  # noqa: E731
            self.expect_refusal(Refused(InsufficientFunds, "ERC20InsufficientBalance"), act, mines=1)
            return
        self.ledger.deposit_for(funder, batch)
        self.funder_wallet -= total
        for address, amount in batch.items():
            self.available[address] += amount
        RUNS["deposits for others"] += 1

    @rule(i=who, fraction=st.integers(0, 100), too_much=st.integers(0, 3))
    def withdraw(self, i: int, fraction: int, too_much: int) -> None:
        account = self.people[i]
        available = self.available[account.address]
        if too_much:
            refused = Refused(InsufficientFunds, "InsufficientBalance")
            self.expect_refusal(refused, lambda: self.ledger.withdraw(account, available + too_much))
            return
        amount = available * fraction // 100
        if amount == 0:
            self.expect_refusal(Refused(LedgerError, "ZeroAmount"), lambda: self.ledger.withdraw(account, 0))
            return
        wallet_before = self.lens.token_balance(account.address)
        self.ledger.withdraw(account, amount)
        assert self.lens.token_balance(account.address) == wallet_before + amount
        self.available[account.address] -= amount
        self.wallet[account.address] += amount
        RUNS["withdrawals"] += 1

    def step_over(self, deadline: int) -> int:
        """Like ``clear_of_boundaries`` for a signature's deadline; returns the next block's time."""
        t = self.clear_of_boundaries()
        if abs(t - deadline) <= MARGIN:
            self.ledger.chain.move_time_to(deadline + MARGIN + 1)
            t = self.now() + 1
        return t

    def relay(self, call: Any, action: str) -> Any:
        return self.ledger.tx.send(self.ledger.roles.facilitator, call, action=action)

    @rule(
        i=who,
        amount=st.integers(0, WALLET),
        extra=st.sampled_from(DEADLINES),
        refusal=st.sampled_from(["none", "none", "expired", "wrong_signer", "replay", "amount_mismatch", "too_much"]),
    )
    def deposit_with_permit(self, i: int, amount: int, extra: int, refusal: str) -> None:
        """The facilitator relays a wallet's EIP-2612 permit as a deposit (``depositWithPermit``):
        the token checks deadline, signer and its nonce, so an expired permit, one signed by another
        key, one relayed again or for another amount is refused; so is more than the wallet holds."""
        owner = self.people[i]
        address = owner.address
        led = self.ledger
        domain = token_domain(led.chain.chain_id, led.token.address)
        t = self.clear_of_boundaries()
        nonce = self.permit_nonce[address]
        amount = min(amount, self.wallet[address]) if refusal != "too_much" else self.wallet[address] + 1 + extra
        deadline = t + MARGIN + extra if refusal != "expired" else t - MARGIN - 1 - extra
        signer = self.people[(i + 1) % PROSUMERS] if refusal == "wrong_signer" else owner
        relayed = amount + 1 if refusal == "amount_mismatch" else amount
        if refusal == "replay" and self.permits:
            address, relayed, deadline, signature = self.permits[i % len(self.permits)]
            t = self.step_over(deadline)
        elif signer is owner:
            signature = sign_permit(
                owner,
                domain=domain,
                spender=led.market.address,
                amount=amount,
                nonce=nonce + 1 if refusal == "replay" else nonce,  # no permit to replay yet: a future nonce
                deadline=deadline,
            )
        else:  # another key signs the owner's permit, word for word
            message = {
                "owner": address,
                "spender": led.market.address,
                "value": amount,
                "nonce": nonce,
                "deadline": deadline,
            }
            signature = bytes(Account.sign_typed_data(signer.key, domain, PERMIT_TYPES, message).signature)
        r, s, v = signature[:32], signature[32:64], signature[64]
        call = led.market.functions.depositWithPermit(address, relayed, deadline, v, r, s)

        def act() -> object:
            return self.relay(call, f"deposit by permit of {address}")

        if relayed == 0:
            self.expect_refusal(Refused(LedgerError, "ZeroAmount"), act)
            return
        if t > deadline:
            self.expect_refusal(Refused(OrderExpiredError, "ERC2612ExpiredSignature"), act)
            return
        if refusal in ("wrong_signer", "replay", "amount_mismatch"):
            self.expect_refusal(Refused(SignatureRejected, "ERC2612InvalidSigner"), act)
            CHECKS["a permit counts once, for its signer and amount"] += 1
            return
        if relayed > self.wallet[address]:
            self.expect_refusal(Refused(InsufficientFunds, "ERC20InsufficientBalance"), act)
            return
        act()
        assert self.lens.permit_nonce(address) == nonce + 1
        assert self.lens.token_balance(address) == self.wallet[address] - relayed
        self.permit_nonce[address] += 1
        self.permits.append((address, relayed, deadline, signature))
        self.wallet[address] -= relayed
        self.available[address] += relayed
        RUNS["deposits by permit"] += 1

    @rule(
        i=who,
        fraction=st.integers(0, 100),
        extra=st.sampled_from(DEADLINES),
        refusal=st.sampled_from(["none", "none", "expired", "wrong_signer", "replay", "too_much"]),
    )
    def withdraw_by_sig(self, i: int, fraction: int, extra: int, refusal: str) -> None:
        """The facilitator relays a wallet's signed ``Withdrawal`` (``withdrawBySig``): refused
        when expired, signed by another key, relayed again (its nonce is spent) or above the
        free balance."""
        owner = self.people[i]
        address = owner.address
        led = self.ledger
        t = self.clear_of_boundaries()
        nonce = self.withdrawal_nonce[address]
        available = self.available[address]
        amount = available * fraction // 100 if refusal != "too_much" else available + 1 + extra
        deadline = t + MARGIN + extra if refusal != "expired" else t - MARGIN - 1 - extra
        replayed = refusal == "replay" and bool(self.withdrawals)
        if replayed:
            address, amount, nonce, deadline, r, vs = self.withdrawals[i % len(self.withdrawals)]
            t = self.step_over(deadline)
        else:
            if refusal == "replay":
                nonce += 1  # nothing to replay yet: a nonce out of order
            signer = self.people[(i + 1) % PROSUMERS] if refusal == "wrong_signer" else owner
            message = withdrawal_message(address, amount=amount, nonce=nonce, deadline=deadline)
            domain = market_domain(led.chain.chain_id, led.market.address)
            signed = Account.sign_typed_data(signer.key, domain, WITHDRAWAL_TYPES, message)
            r, vs = split_signature(bytes(signed.signature))
        call = led.market.functions.withdrawBySig(address, amount, nonce, deadline, r, vs)

        def act() -> object:
            return self.relay(call, f"signed withdrawal of {address}")

        if amount == 0:
            refused = Refused(LedgerError, "ZeroAmount")
        elif t > deadline:
            refused = Refused(OrderExpiredError, "WithdrawalExpired")
        elif nonce != self.withdrawal_nonce[address]:
            refused = Refused(ReplayRejected, "WithdrawalNonceUsed")
            CHECKS["a signed withdrawal counts once"] += replayed
        elif refusal == "wrong_signer":
            refused = Refused(SignatureRejected, "WithdrawalSignatureInvalid")
        elif amount > self.available[address]:
            refused = Refused(InsufficientFunds, "InsufficientBalance")
        else:
            refused = None
        if refused:
            self.expect_refusal(refused, act)
            return
        wallet_before = self.lens.token_balance(address)
        act()
        assert self.lens.token_balance(address) == wallet_before + amount
        assert self.lens.withdrawal_nonce(address) == nonce + 1
        self.withdrawal_nonce[address] += 1
        self.withdrawals.append((address, amount, nonce, deadline, r, vs))
        self.available[address] -= amount
        self.wallet[address] += amount
        RUNS["withdrawals by signature"] += 1

    # ───────── orders ─────────

    @precondition(lambda self: self.gate_open_somewhere())
    @rule(
        orders=st.lists(st.tuples(who, side, slot_index, energy, price), min_size=1, max_size=3),
        replay=st.lists(pick, max_size=1),
    )
    def relay_batch(self, orders: list[tuple[int, Side, int, int, int]], replay: list[int]) -> None:
        """The facilitator relays a batch of signed orders, recorded whole or not at all; the
        batch may repeat an order signed before (recorded, cancelled or refused)."""
        batch = [self.new_order(*spec) for spec in orders]
        if replay and self.orders[: -len(batch)]:
            earlier = self.orders[: -len(batch)]
            batch.insert(replay[0] % (len(batch) + 1), earlier[replay[0] % len(earlier)])
        t = self.clear_of_boundaries()
        available, next_nonce = dict(self.available), dict(self.next_nonce)
        refused = None
        for o in batch:
            refused = self.predict_record(o, t, available, next_nonce)
            if refused:
                break
        signed = [self.ledger.sign(self.w.prosumers[self.addresses.index(o.order.prosumer)], o.order) for o in batch]
        if refused:
            self.expect_refusal(refused, lambda: self.ledger.relay_orders(signed))
            return
        self.ledger.relay_orders(signed)
        for o in batch:
            self.recorded(o)
        self.available, self.next_nonce = available, next_nonce
        RUNS["orders recorded"] += len(batch)

    @precondition(lambda self: self.gate_open_somewhere())
    @rule(spec=st.tuples(who, side, slot_index, energy, price))
    def place_order(self, spec: tuple[int, Side, int, int, int]) -> None:
        """The prosumer sends its own order (``placeOrder``)."""
        o = self.new_order(*spec)
        self._place(o)

    @precondition(lambda self: self.orders)
    @rule(k=pick)
    def place_again(self, k: int) -> None:
        """The prosumer sends an order it signed before: a replay unless it was never recorded."""
        self._place(self.orders[k % len(self.orders)])

    def _place(self, o: ModelOrder) -> None:
        account = self.people[self.addresses.index(o.order.prosumer)]
        t = self.clear_of_boundaries()
        available, next_nonce = dict(self.available), dict(self.next_nonce)
        refused = self.predict_record(o, t, available, next_nonce)
        if refused:
            self.expect_refusal(refused, lambda: self.ledger.place_order(account, o.order))
            return
        self.ledger.place_order(account, o.order)
        self.recorded(o)
        self.available, self.next_nonce = available, next_nonce
        RUNS["orders recorded"] += 1

    @precondition(lambda self: self.orders)
    @rule(k=pick, by_sig=st.booleans())
    def cancel(self, k: int, by_sig: bool) -> None:
        """The prosumer cancels an order it signed, itself or through the facilitator's relay
        (proving its place in the slot's order chain); cancelling one never recorded burns its
        nonce and every lower one, unless a higher nonce was used already (then there is nothing
        to cancel)."""
        o = self.orders[k % len(self.orders)]
        account = self.people[self.addresses.index(o.order.prosumer)]
        if by_sig:
            r, vs = self.ledger.sign_cancellation(account, o.hash)

            def act() -> object:
                return self.ledger.cancel_order_by_sig(o.order, r, vs)
        else:

            def act() -> object:
                return self.ledger.cancel_order(account, o.order)

        t = self.clear_of_boundaries()
        if t + GATE >= o.order.delivery_start:
            self.expect_refusal(Refused(GateClosedError, "GateClosed"), act)
            return
        prosumer = o.order.prosumer
        unrecorded_below = o.status in ("unrecorded", "burnt") and o.order.nonce < self.next_nonce[prosumer]
        if o.status in ("cancelled", "cleared") or unrecorded_below:
            self.expect_refusal(Refused(LedgerError, "OrderNotOpen"), act)
            return
        (before,) = self.lens.accounts([prosumer])
        act()
        (after,) = self.lens.accounts([prosumer])
        if o.status == "open":
            # refunds exact: the buy order's escrow, no more, no less, moves back to available
            assert after == (before[0] + o.escrow, before[1] - o.escrow), (before, after, o.escrow)
            CHECKS["refunds exact (cancelled order)"] += 1
            self.available[prosumer] += o.escrow
            o.status = "cancelled"
        else:
            assert after == before
            assert self.lens.next_nonce(prosumer) == o.order.nonce + 1
            CHECKS["a cancelled unrecorded order burns its nonce"] += 1
            self.next_nonce[prosumer] = o.order.nonce + 1
            o.status = "burnt"
        RUNS["cancellations"] += 1

    # ───────── time ─────────

    @rule(seconds=st.sampled_from([60, 300, 900, 1800]))
    def advance(self, seconds: int) -> None:
        self.ledger.chain.move_time_to(self.now() + seconds)

    @rule()
    def next_boundary(self) -> None:
        """Moves the clock just past the next boundary (a gate closure, a slot's start or end)."""
        now = self.now()
        later = [b for b in sorted(self.boundaries()) if b > now]
        if later:
            self.ledger.chain.move_time_to(later[0] + MARGIN + 1)

    # ───────── clearing, metering, settlement ─────────

    def book(self, s: ModelSlot) -> list[RecordedOrder]:
        open_ = [o for o in self.orders if o.status == "open" and o.order.delivery_start == s.start]
        return [RecordedOrder(o.order, o.hash, (o.arrival, 0)) for o in sorted(open_, key=lambda o: o.arrival)]

    def sequence(self, s: ModelSlot) -> list[ModelOrder]:
        """Every order recorded for the slot, cancelled ones included, in arrival order."""
        mine = [
            o for o in self.orders if o.status in ("open", "cancelled", "cleared") and o.order.delivery_start == s.start
        ]
        return sorted(mine, key=lambda o: o.arrival)

    @staticmethod
    def clear_with_tariff(book: list[RecordedOrder], tariff: int) -> tuple[list[tuple[Order, int]], int]:
        """The project's clearing with the slot's network tariff: a buyer's bid is its all-in
        limit less the tariff (so a buy fill at p keeps p + tariff within its limit)."""
        net = [
            replace(r, order=replace(r.order, price_per_kwh=max(0, r.order.price_per_kwh - tariff)))
            if r.order.side is Side.BUY
            else r
            for r in book
        ]
        fills, result = clear_recorded(net)
        return [(r.order, f) for r, (_, f) in zip(book, fills, strict=True)], result.ledger_price

    @precondition(lambda self: self.gate_open_somewhere())
    @rule(s=slot_index, tariff=st.sampled_from([0, 1, 20_001, 60_001]))
    def set_tariff(self, s: int, tariff: int) -> None:
        """The DSO sets a slot's network tariff, before its gate closes."""
        slot = self.slots[s]
        t = self.clear_of_boundaries()

        def act() -> object:
            return self.ledger.set_network_tariff(slot.start, [tariff])

        if t + GATE >= slot.start:
            self.expect_refusal(Refused(LedgerError, "TariffGateClosed"), act)
            return
        act()
        slot.tariff = tariff
        assert self.ledger.network_tariff(slot.start) == tariff
        RUNS["tariffs set"] += 1

    @precondition(lambda self: self.gate_closed_somewhere())
    @rule(
        s=slot_index,
        tamper=st.sampled_from(["none", "none", "overfill", "drop", "imbalance"]),
        chunk=st.integers(1, 4),
    )
    def commit(self, s: int, tamper: str, chunk: int) -> None:
        """The facilitator clears the slot with the project's clearing and commits it in chunks
        of ``chunk`` orders (or commits a tampered result, which must be refused before any
        chunk is sent)."""
        slot = self.slots[s]
        t = self.clear_of_boundaries()
        fills, price_ = self.clear_with_tariff(self.book(slot), slot.tariff)

        def act(f: list[tuple[Order, int]]) -> Callable[[], list[Any]]:
            return lambda: self.ledger.commit_clearing(slot.start, price_, f, **REPORT, chunk_size=chunk)

        if slot.status != "open":
            self.expect_refusal(Refused(ClearingRejected, "SlotAlreadyCleared"), act(fills))
            return
        if t + GATE < slot.start:
            self.expect_refusal(Refused(ClearingRejected, "GateNotClosed"), act(fills))
            return
        if tamper == "overfill" and fills:
            order, _ = fills[0]
            bad = [(order, order.energy_wh + 1), *fills[1:]]
            self.expect_refusal(Refused(ClearingRejected, "FillExceedsOrder"), act(bad))
            return
        if tamper == "drop" and fills:
            self.expect_refusal(Refused(ClearingRejected, "IncompleteClearing"), act(fills[:-1]))
            return
        traded = [(o, f) for o, f in fills if f]
        if tamper == "imbalance" and traded:
            order, f = traded[0]
            bad = [(o, f - 1 if o is order else x) for o, x in fills]
            self.expect_refusal(Refused(ClearingRejected, "EnergyImbalance"), act(bad))
            return
        receipts = act(fills)()
        filled = self.ledger.market.events.OrderFilled()
        events = [e for r in receipts for e in filled.process_receipt(r, errors=DISCARD)]
        on_chain = {bytes(e["args"]["orderHash"]): int(e["args"]["filledWh"]) for e in events}
        slot.status, slot.price, slot.fills = "cleared", price_, fills
        for order, f in fills:
            o = next(m for m in self.orders if m.order == order)
            o.status = "cleared"
            assert on_chain.get(o.hash, 0) == f
        # A commit moves no money: escrow stays locked until settlement.
        RUNS["slots cleared"] += 1
        RUNS["clearing chunks"] += len(receipts)

    @precondition(lambda self: self.delivery_ended_somewhere())
    @rule(
        s=slot_index,
        readings=st.lists(st.tuples(who, st.integers(-MAX_ENERGY_WH, MAX_ENERGY_WH)), min_size=1, max_size=3),
        everyone=st.booleans(),
    )
    def meter(self, s: int, readings: list[tuple[int, int]], everyone: bool) -> None:
        """The meter operator posts readings (with ``everyone``, for every prosumer the slot lacks)."""
        slot = self.slots[s]
        posted = {self.addresses[i]: wh for i, wh in readings}
        if everyone:
            missing = [a for a in self.addresses if a not in slot.readings]
            posted = {a: posted.get(a, wh) for a, (_, wh) in zip(missing, readings * PROSUMERS, strict=False)} or posted
        t = self.clear_of_boundaries()

        def act() -> object:
            return self.ledger.post_meter_readings(slot.start, posted)

        if t < slot.start + 900:
            self.expect_refusal(Refused(SettlementRejected, "DeliveryNotEnded"), act)
            return
        if any(a in slot.readings for a in posted):
            self.expect_refusal(Refused(SettlementRejected, "MeterReadingAlreadyPosted"), act)
            return
        act()
        slot.readings.update(posted)
        RUNS["meter readings"] += 1

    def expected_settlement(self, slot: ModelSlot) -> dict[str, int]:
        """Available balances after the slot settles, by the contract's rule applied in committed
        order: a buyer's escrow comes back less ⌈F·(p+t)⌉ plus its surplus bought back; a seller
        is paid ⌊F·p⌋ less the shortfall charge its funds cover; the DSO receives the network
        charges and the balancing account the pot's remainder and the charges, less buy-backs."""
        balances = dict(self.available)
        filled = {order: f for order, f in slot.fills}
        used: dict[tuple[str, Side], int] = {}
        pot = to_balancing = from_balancing = network = 0
        p, t = slot.price, slot.tariff
        for o in self.sequence(slot):
            if o.status == "cancelled":
                continue
            order, f = o.order, filled.get(o.order, 0)
            if order.side is Side.SELL and f == 0:
                continue
            matched = 0
            if f:
                net = slot.readings[order.prosumer]
                metered = max(0, -net) if order.side is Side.SELL else max(0, net)
                key = (order.prosumer, order.side)
                matched = min(f, max(0, metered - used.get(key, 0)))
                used[key] = used.get(key, 0) + matched
            deviation = f - matched
            if order.side is Side.BUY:
                paid, base = cost(f, p + t), cost(f, p)
                buy_back = revenue(deviation, SURPLUS_PRICE)
                balances[order.prosumer] += o.escrow - paid + buy_back
                pot, network, from_balancing = pot + base, network + paid - base, from_balancing + buy_back
            else:
                charge = revenue(deviation, SHORTFALL_PRICE)
                funds = balances[order.prosumer] + revenue(f, p)
                collected = min(charge, funds)
                balances[order.prosumer] = funds - collected
                pot, to_balancing = pot - revenue(f, p), to_balancing + collected
        balances[self.balancing] += to_balancing + pot - from_balancing
        balances[self.dso] += network
        return balances

    @precondition(lambda self: self.cleared_somewhere())
    @rule(s=slot_index)
    def settle(self, s: int) -> None:
        slot = self.slots[s]
        t = self.clear_of_boundaries()

        def act() -> object:
            return self.ledger.settle(slot.start, slot.fills)

        if slot.status != "cleared":
            self.expect_refusal(Refused(SettlementRejected, "SlotNotCleared"), act)
            if slot.status == "settled":
                CHECKS["nothing settles twice"] += 1
            return
        if t < slot.start + 900:
            self.expect_refusal(Refused(SettlementRejected, "DeliveryNotEnded"), act)
            return
        if any(f and o.prosumer not in slot.readings for o, f in slot.fills):
            self.expect_refusal(Refused(SettlementRejected, "MeterReadingMissing"), act)
            return
        expected = self.expected_settlement(slot)
        act()
        self.available = expected
        slot.status = "settled"
        RUNS["slots settled"] += 1
        # A second settlement of the same slot, right away, is refused with the contract's error.
        self.expect_refusal(Refused(SettlementRejected, "SlotNotCleared"), act)
        CHECKS["nothing settles twice"] += 1

    # A random walk of the clock rarely takes a slot through its whole life within one example
    # (gate closure, commit, delivery, every trader's reading, settlement): these two rules jump
    # the clock forward to the next stage and run the same acts as the rules above.

    @precondition(lambda self: any(s.status == "open" for s in self.slots))
    @rule(k=pick, chunk=st.integers(1, 4))
    def close_gate_and_commit(self, k: int, chunk: int) -> None:
        opened = [i for i, s in enumerate(self.slots) if s.status == "open"]
        s = opened[k % len(opened)]
        gate = self.slots[s].start - GATE
        if self.now() + 1 < gate:
            self.ledger.chain.move_time_to(gate)
        self.commit(s, "none", chunk)

    @precondition(lambda self: any(s.status == "cleared" for s in self.slots))
    @rule(k=pick, readings=st.lists(st.integers(-MAX_ENERGY_WH, MAX_ENERGY_WH), min_size=PROSUMERS, max_size=PROSUMERS))
    def deliver_and_settle(self, k: int, readings: list[int]) -> None:
        cleared = [i for i, s in enumerate(self.slots) if s.status == "cleared"]
        s = cleared[k % len(cleared)]
        slot = self.slots[s]
        if self.now() + 1 < slot.start + 900:
            self.ledger.chain.move_time_to(slot.start + 900)
        missing = [
            (i, wh) for i, (a, wh) in enumerate(zip(self.addresses, readings, strict=True)) if a not in slot.readings
        ]
        if missing:
            self.meter(s, missing, everyone=False)
        self.settle(s)

    # ───────── flexibility market ─────────

    @initialize(min_performance=st.sampled_from([2_500, 5_000, 10_000]), power=st.sampled_from([8_000, FLEX_POWER_W]))
    def first_request(self, min_performance: int, power: int) -> None:
        """Every example starts with a flexibility request, so the flexibility rules have one."""
        self.post_request(min_performance, power)

    @precondition(lambda self: len(self.requests) < MAX_REQUESTS)
    @rule(min_performance=st.sampled_from([2_500, 5_000, 10_000]), power=st.sampled_from([8_000, FLEX_POWER_W]))
    def post_request(self, min_performance: int, power: int) -> None:
        """The DSO posts a request and escrows its maximum spend."""
        window_start = self.slot_times[1]
        request = FlexRequest(
            service=ServiceType.SECURE,
            direction=Direction.UP,
            baseline=BaselineMethod.HISTORICAL,
            congestion_bus=2,
            power_w=power,
            window_start=window_start,
            window_slots=2,
            bid_deadline=window_start - FLEX_BID_LEAD,
            max_availability_price_per_kwh=FLEX_CAPS[0],
            max_utilisation_price_per_kwh=FLEX_CAPS[1],
            min_performance_bps=min_performance,
        )
        t = self.clear_of_boundaries()
        if t > request.bid_deadline:
            # refused by the ledger before anything is sent
            self.expect_refusal(Refused(OrderError), lambda: self.ledger.post_flex_request(request))
            return
        before = self.lens.token_balance(self.ledger.roles.dso.address)
        rid = self.ledger.post_flex_request(request)
        assert rid == len(self.requests) + 1
        assert self.lens.token_balance(self.ledger.roles.dso.address) == before - request.max_spend
        self.dso_wallet -= request.max_spend
        self.requests.append(ModelRequest(rid, request, request.max_spend))
        RUNS["flex requests"] += 1

    @precondition(lambda self: self.requests)
    @rule(
        k=pick,
        i=who,
        power=st.integers(1, 25).map(lambda x: x * 1_000),
        availability=st.integers(0, 105_000),
        utilisation=st.integers(0, 305_000),
        wrong_bus=st.booleans(),
        reuse_nonce=st.booleans(),
    )
    def submit_offer(
        self, k: int, i: int, power: int, availability: int, utilisation: int, wrong_bus: bool, reuse_nonce: bool
    ) -> None:
        """A provider signs an offer and the facilitator relays it (bus 0, 1, 2 = prosumer 0, 1, 2)."""
        req, offer = self.new_offer(k, i, power, availability, utilisation, wrong_bus, reuse_nonce)
        provider = self.people[i]
        signed = self.ledger.sign_offer(provider, offer)
        t = self.clear_of_boundaries()
        refused = self.predict_offer(req, offer, t, wrong_bus=wrong_bus)
        if refused:
            self.expect_refusal(refused, lambda: self.ledger.submit_offer(signed))
            return
        self.ledger.submit_offer(signed)
        self.offers.append(ModelOffer(signed.offer_id, offer))
        RUNS["flex offers"] += 1

    def new_offer(
        self, k: int, i: int, power: int, availability: int, utilisation: int, wrong_bus: bool, reuse_nonce: bool
    ) -> tuple[ModelRequest, FlexOffer]:
        """An offer of provider ``i`` for one of the requests (bus 0, 1, 2 = prosumer 0, 1, 2),
        with a fresh nonce or the one before it."""
        req = self.requests[k % len(self.requests)]
        provider = self.people[i].address
        nonce = self.offer_nonce[provider]
        if reuse_nonce and nonce:
            nonce -= 1
        else:
            self.offer_nonce[provider] += 1
        bus = (i + 1) % PROSUMERS if wrong_bus else i
        offer = FlexOffer(provider, req.id, req.request.window_start, power, availability, utilisation, bus, nonce)
        return req, offer

    def predict_offer(self, req: ModelRequest, offer: FlexOffer, t: int, *, wrong_bus: bool) -> Refused | None:
        """What the flexibility market's checks of every offer (``_recordOffer``) do with it at ``t``."""
        if req.status != "open":
            return Refused(FlexRejected, "WrongRequestStatus")
        if t > req.request.bid_deadline:
            return Refused(FlexRejected, "OfferAfterDeadline")
        if wrong_bus:
            return Refused(FlexRejected, "ConnectionPointMismatch")
        if offer.availability_price_per_kwh > FLEX_CAPS[0] or offer.utilisation_price_per_kwh > FLEX_CAPS[1]:
            return Refused(FlexRejected, "PriceAboveCap")
        if offer.power_w > min(req.request.power_w, CAPACITY_W):
            return Refused(FlexRejected, "InvalidPower")
        if any(o.offer.provider == offer.provider and o.offer.nonce == offer.nonce for o in self.offers):
            return Refused(ReplayRejected, "OfferNonceUsed")
        return None

    @rule(i=who, key=st.integers(0, 3))
    def bind_uftp_key(self, i: int, key: int) -> None:
        """A provider binds one of its aggregator's UFTP (Ed25519) keys to its account, or
        unbinds it (key 0 binds zero)."""
        provider = self.people[i]
        public = keccak(b"UFTP key %d of %d" % (key, i)) if key else ZERO_KEY
        receipt = self.ledger.tx.send(provider, self.ledger.flex.functions.bindUftpKey(public), action="bind UFTP key")
        (bound,) = self.ledger.flex.events.UftpKeyBound().process_receipt(receipt, errors=DISCARD)
        assert (bound["args"]["provider"], bytes(bound["args"]["publicKey"])) == (provider.address, public)
        self.uftp_key[provider.address] = public
        RUNS["UFTP keys bound" if key else "UFTP keys unbound"] += 1

    @precondition(lambda self: self.requests)
    @rule(
        k=pick,
        i=who,
        power=st.integers(1, 25).map(lambda x: x * 1_000),
        availability=st.integers(0, 105_000),
        utilisation=st.integers(0, 305_000),
        wrong_bus=st.booleans(),
        reuse_nonce=st.booleans(),
        sender=st.sampled_from(["facilitator", "facilitator", "facilitator", "provider", "dso"]),
        message=st.binary(min_size=1, max_size=64),
        bind_first=st.booleans(),
    )
    def submit_uftp_offer(
        self,
        k: int,
        i: int,
        power: int,
        availability: int,
        utilisation: int,
        wrong_bus: bool,
        reuse_nonce: bool,
        sender: str,
        message: bytes,
        bind_first: bool,
    ) -> None:
        """The facilitator records an offer sourced from a UFTP message (its hash) on the strength
        of the provider's bound key (with ``bind_first``, the provider binds one just before):
        refused from anyone but the facilitator, without a bound key, and by every check a signed
        offer passes."""
        if bind_first:
            self.bind_uftp_key(i, 1)
        req, offer = self.new_offer(k, i, power, availability, utilisation, wrong_bus, reuse_nonce)
        source = keccak(message)
        led = self.ledger
        account = {"facilitator": led.roles.facilitator, "provider": self.people[i], "dso": led.roles.dso}[sender]
        call = led.flex.functions.submitUftpOffer(offer.as_abi(), source)
        t = self.clear_of_boundaries()

        def act() -> Any:
            return led.tx.send(account, call, action=f"UFTP offer of {offer.provider}")

        if sender != "facilitator":
            refused: Refused | None = Refused(LedgerError, "AccessControlUnauthorizedAccount")
        elif self.uftp_key[offer.provider] == ZERO_KEY:
            refused = Refused(SignatureRejected, "UftpKeyNotBound")
        else:
            refused = self.predict_offer(req, offer, t, wrong_bus=wrong_bus)
        if refused:
            self.expect_refusal(refused, act)
            return
        receipt = act()
        offer_id = offer_digest(offer, chain_id=led.chain.chain_id, flex_address=led.flex.address)
        (sourced,) = led.flex.events.OfferSourced().process_receipt(receipt, errors=DISCARD)
        assert (bytes(sourced["args"]["offerId"]), bytes(sourced["args"]["publicKey"])) == (
            offer_id,
            self.uftp_key[offer.provider],
        )
        assert bytes(self.lens.call(self.lens.flex, "offerSource(bytes32)", (offer_id,), "bytes32")) == source
        CHECKS["a UFTP offer records its source and the bound key"] += 1
        self.offers.append(ModelOffer(offer_id, offer, uftp=True))
        RUNS["flex offers (UFTP)"] += 1

    @precondition(lambda self: self.offers)
    @rule(
        k=pick, by=st.sampled_from(["provider", "provider", "stranger", "facilitator"]), message=st.binary(max_size=8)
    )
    def withdraw_offer(self, k: int, by: str, message: bytes) -> None:
        """A provider withdraws its unawarded offer before the bid deadline (``withdrawOffer``),
        or the facilitator does for a UFTP offer on the aggregator's FlexOfferRevocation
        (``withdrawUftpOffer``, the revocation's hash); refused from anyone else, for an offer
        awarded or withdrawn, after the deadline, and for an offer that did not come through UFTP."""
        o = self.offers[k % len(self.offers)]
        req = next(r for r in self.requests if r.id == o.offer.request_id)
        led, flex = self.ledger, self.ledger.flex
        provider = next(p for p in self.people if p.address == o.offer.provider)
        stranger = self.people[(self.people.index(provider) + 1) % PROSUMERS]
        revocation = keccak(message) if message else ZERO_KEY  # zero: no revocation behind it
        if by == "facilitator":
            account, call = led.roles.facilitator, flex.functions.withdrawUftpOffer(o.id, revocation)
        else:
            account = provider if by == "provider" else stranger
            call = flex.functions.withdrawOffer(o.id)
        t = self.clear_of_boundaries()

        def act() -> Any:
            return led.tx.send(account, call, action=f"withdraw offer {o.id.hex()[:8]}")

        if by == "stranger":
            refused: Refused | None = Refused(FlexRejected, "NotOfferProvider")
        elif by == "facilitator" and not o.uftp:
            refused = Refused(FlexRejected, "NotUftpOffer")
        elif by == "facilitator" and revocation == ZERO_KEY:
            refused = Refused(FlexRejected, "RevocationMissing")
        elif o.withdrawn:
            refused = Refused(FlexRejected, "OfferIsWithdrawn")
        elif o.awarded:
            refused = Refused(FlexRejected, "OfferAlreadyAwarded")
        elif t > req.request.bid_deadline:
            refused = Refused(FlexRejected, "WithdrawalAfterDeadline")
        else:
            refused = None
        if refused:
            self.expect_refusal(refused, act)
            return
        (withdrawn,) = flex.events.OfferWithdrawn().process_receipt(act(), errors=DISCARD)
        expected = (o.id, req.id, o.offer.provider, revocation if by == "facilitator" else ZERO_KEY)
        got = withdrawn["args"]
        assert (bytes(got["offerId"]), got["requestId"], got["provider"], bytes(got["sourceMessage"])) == expected
        assert self.lens.call(self.lens.flex, "offerWithdrawn(bytes32)", (o.id,), "bool") is True
        CHECKS["a withdrawal records the offer withdrawn, and by whom"] += 1
        o.withdrawn = True
        RUNS["flex offers withdrawn"] += 1

    @precondition(lambda self: self.requests)
    @rule(k=pick, mask=st.integers(0, 2**6 - 1), duplicate=st.booleans())
    def award(self, k: int, mask: int, duplicate: bool) -> None:
        """The facilitator awards a subset of the request's offers."""
        req = self.requests[k % len(self.requests)]
        mine = [o for o in self.offers if o.offer.request_id == req.id]
        chosen = [o for n, o in enumerate(mine) if mask >> n & 1]
        ids = [o.id for o in chosen] + ([chosen[0].id] if duplicate and chosen else [])
        t = self.clear_of_boundaries()

        def act() -> object:
            return self.ledger.award_flex(req.id, ids, b"\x07" * 32)

        if req.status != "open":
            self.expect_refusal(Refused(FlexRejected, "WrongRequestStatus"), act)
            return
        if t <= req.request.bid_deadline:
            self.expect_refusal(Refused(FlexRejected, "AwardTooEarly"), act)
            return
        if t >= req.request.window_start:
            self.expect_refusal(Refused(FlexRejected, "AwardTooLate"), act)
            return
        if any(o.withdrawn for o in chosen):  # met in the contract's loop before the duplicate at the end
            self.expect_refusal(Refused(FlexRejected, "OfferIsWithdrawn"), act)
            return
        if duplicate and chosen:
            self.expect_refusal(Refused(FlexRejected, "DuplicateAward"), act)
            return
        act()
        for o in chosen:
            o.awarded = True
        req.status, req.awarded = "awarded", [o.id for o in chosen]
        RUNS["flex awards"] += 1

    @precondition(lambda self: self.offers)
    @rule(
        k=pick, slot=st.integers(0, SLOTS - 1), power=st.integers(4, 25_000), by=st.sampled_from(["dso", "facilitator"])
    )
    def activate(self, k: int, slot: int, power: int, by: str) -> None:
        """The DSO (or the coordinating facilitator) activates an offer for one slot; slot 0 is
        outside every request's window."""
        o = self.offers[k % len(self.offers)]
        start = self.slot_times[slot]
        t = self.clear_of_boundaries()

        def act() -> object:
            return self.ledger.activate_flex(o.id, start, power, by=by)

        if not o.awarded:
            refused = Refused(FlexRejected, "OfferNotAwarded")
        elif slot == 0:
            refused = Refused(FlexRejected, "OutsideWindow")
        elif t >= start:
            refused = Refused(FlexRejected, "ActivationTooLate")
        elif power > o.offer.power_w:
            refused = Refused(FlexRejected, "ActivationAboveContract")
        elif o.ordered.get(start):
            refused = Refused(FlexRejected, "AlreadyActivated")
        else:
            refused = None
        if refused:
            self.expect_refusal(refused, act)
            return
        act()
        o.ordered[start] = power // 4
        RUNS["flex activations"] += 1

    @precondition(lambda self: self.offers)
    @rule(k=pick, slot=st.integers(1, SLOTS - 1), baseline=st.integers(0, 8_000), actual=st.integers(0, 8_000))
    def measure(self, k: int, slot: int, baseline: int, actual: int) -> None:
        """The meter operator records an offer's baseline and actual energy in a window slot."""
        o = self.offers[k % len(self.offers)]
        start = self.slot_times[slot]
        t = self.clear_of_boundaries()

        def act() -> object:
            return self.ledger.record_flex_measurement(o.id, start, baseline_wh=baseline, actual_wh=actual)

        if t < start + 900:
            self.expect_refusal(Refused(FlexRejected, "SlotNotEnded"), act)
            return
        if start in o.delivered:
            self.expect_refusal(Refused(FlexRejected, "AlreadyMeasured"), act)
            return
        act()
        o.delivered[start] = max(0, baseline - actual)  # direction Up: relief = baseline − actual
        RUNS["flex measurements"] += 1

    def flex_payments(self, req: ModelRequest) -> dict[bytes, tuple[int, int]]:
        """Each awarded offer's (availability, utilisation) payment by the settlement rule."""
        payments = {}
        for offer_id in req.awarded:
            o = next(x for x in self.offers if x.id == offer_id)
            unavailable, utilisation = False, 0
            for start in req.request.slots:
                ordered = o.ordered.get(start, 0)
                if not ordered:
                    continue
                counted = min(o.delivered[start], ordered)
                if counted * 10_000 >= ordered * req.request.min_performance_bps:
                    utilisation += counted * o.offer.utilisation_price_per_kwh // 1_000
                else:
                    unavailable = True
            availability = 0 if unavailable else o.offer.availability_payment(req.request.window_slots)
            payments[offer_id] = (availability, utilisation)
        return payments

    @precondition(lambda self: self.requests)
    @rule(k=pick)
    def settle_flex(self, k: int) -> None:
        req = self.requests[k % len(self.requests)]
        t = self.clear_of_boundaries()

        def act() -> object:
            return self.ledger.settle_flex(req.id)

        if req.status == "settled":
            self.expect_refusal(Refused(FlexRejected, "WrongRequestStatus"), act)
            CHECKS["nothing settles twice"] += 1
            return
        if t < req.request.window_end:
            self.expect_refusal(Refused(FlexRejected, "WindowNotEnded"), act)
            return
        awarded = [o for o in self.offers if o.id in req.awarded]
        if any(start not in o.delivered for o in awarded for start, wh in o.ordered.items() if wh):
            self.expect_refusal(Refused(FlexRejected, "MeasurementMissing"), act)
            return
        payments = self.flex_payments(req)
        dso = self.ledger.roles.dso.address
        parties = [*self.addresses, dso]
        tokens_before = {a: self.lens.token_balance(a) for a in parties}
        receipt = act()
        (settled,) = self.ledger.flex.events.RequestSettled().process_receipt(receipt, errors=DISCARD)
        paid = sum(a + u for a, u in payments.values())
        # refunds exact: the DSO is credited the escrow less what the providers were paid
        assert (settled["args"]["paid"], settled["args"]["refunded"]) == (paid, req.escrow - paid)
        self.claimable[dso] += req.escrow - paid
        for offer_id, (a, u) in payments.items():
            provider = next(x for x in self.offers if x.id == offer_id).offer.provider
            self.claimable[provider] += a + u
        # pull payments: settlement credits claimable balances and moves no tokens
        assert {a: self.lens.claimable(a) for a in parties} == self.claimable
        assert {a: self.lens.token_balance(a) for a in parties} == tokens_before
        CHECKS["refunds exact (settled flexibility request)"] += 1
        req.status = "settled"
        RUNS["flex settlements"] += 1
        # a second settlement is refused with the contract's error
        self.expect_refusal(Refused(FlexRejected, "WrongRequestStatus"), act)
        CHECKS["nothing settles twice"] += 1

    # As for slots, a random walk of the clock seldom takes a request through its award,
    # activations and measurements: these two rules jump to the next stage and run the same acts.

    @precondition(lambda self: self.offers and any(r.status == "open" for r in self.requests))
    @rule(
        k=pick,
        slot=st.integers(1, SLOTS - 1),
        powers=st.lists(st.integers(4, 25_000), min_size=1, max_size=4),
        by=st.sampled_from(["dso", "facilitator"]),
    )
    def award_and_activate(self, k: int, slot: int, powers: list[int], by: str) -> None:
        """The bids close; the facilitator awards every offer of an open request, and the DSO (or
        the facilitator) activates the awarded ones for a window slot."""
        opened = [n for n, r in enumerate(self.requests) if r.status == "open"]
        n = opened[k % len(opened)]
        req = self.requests[n]
        if self.now() + 1 <= req.request.bid_deadline:
            self.ledger.chain.move_time_to(req.request.bid_deadline + 1)
        mine = [o for o in self.offers if o.offer.request_id == req.id]
        self.award(n, sum(1 << m for m, o in enumerate(mine) if not o.withdrawn), duplicate=False)
        awarded = [o for o in mine if o.awarded]
        for o, power in zip(awarded, powers, strict=False):
            self.activate(self.offers.index(o), slot, min(power, o.offer.power_w), by)

    @precondition(lambda self: any(r.status == "awarded" for r in self.requests))
    @rule(
        k=pick,
        readings=st.lists(st.tuples(st.integers(0, 8_000), st.integers(0, 8_000)), min_size=SLOTS, max_size=SLOTS),
    )
    def deliver_and_settle_flex(self, k: int, readings: list[tuple[int, int]]) -> None:
        """The request's window ends; the meter operator measures every activation (baseline and
        actual of each slot) and the facilitator settles the request."""
        awarded = [n for n, r in enumerate(self.requests) if r.status == "awarded"]
        n = awarded[k % len(awarded)]
        req = self.requests[n]
        if self.now() + 1 < req.request.window_end:
            self.ledger.chain.move_time_to(req.request.window_end)
        for o in self.offers:
            if o.id not in req.awarded:
                continue
            for start, wh in list(o.ordered.items()):
                if wh and start not in o.delivered:
                    s = self.slot_times.index(start)
                    self.measure(self.offers.index(o), s, *readings[s])
        self.settle_flex(n)

    @rule(i=st.integers(0, PROSUMERS))
    def claim_flex(self, i: int) -> None:
        """A provider (or, for i = 3, the DSO) takes its claimable balance from the flexibility market."""
        account = self.people[i] if i < PROSUMERS else self.ledger.roles.dso
        owed = self.claimable[account.address]
        if owed == 0:
            self.expect_refusal(Refused(FlexRejected, "NothingToClaim"), lambda: self.ledger.claim_flex(account))
            return
        before = self.lens.token_balance(account.address)
        self.ledger.claim_flex(account)
        assert self.lens.token_balance(account.address) == before + owed
        assert self.lens.claimable(account.address) == 0
        CHECKS["claims exact"] += 1
        self.claimable[account.address] = 0
        if i < PROSUMERS:
            self.wallet[account.address] += owed
        else:
            self.dso_wallet += owed
        RUNS["flex claims"] += 1

    # ───────── invariants ─────────

    @invariant()
    def market_tokens_are_accounts_plus_pots(self) -> None:
        # Hypothesis checks invariants once after the machine starts and once after every step.
        RUNS["steps" if self._started else "examples started"] += 1
        self._started = True
        r = self.reads()
        accounts = sum(free + locked for free, locked in r["accounts"].values())
        pots = sum(st_.pot for st_ in r["slots"].values())
        assert r["market_tokens"] == accounts + pots, (r["market_tokens"], accounts, pots)
        # Every act finishes what it starts: no slot is left half-settled with money in its pot.
        assert all(st_.pot == 0 and st_.status != "settling" for st_ in r["slots"].values())
        CHECKS["market tokens = accounts + pots"] += 1

    @invariant()
    def locked_is_unsettled_buy_escrow(self) -> None:
        r = self.reads()
        for a in self.addresses:
            assert r["accounts"][a][1] == self.locked(a), (a, r["accounts"][a], self.locked(a))
        assert r["accounts"][self.balancing][1] == 0
        CHECKS["locked = Σ escrow of unsettled buy orders"] += 1

    @invariant()
    def balances_match_the_model(self) -> None:
        r = self.reads()
        for a, (available, _) in r["accounts"].items():
            assert available == self.available[a], (a, available, self.available[a])
        CHECKS["available = model (exact refunds, payments and network charges)"] += 1

    @invariant()
    def nonces_only_go_up(self) -> None:
        r = self.reads()
        assert r["nonces"] == self.next_nonce
        CHECKS["next nonce = model"] += 1
        assert r["permit_nonces"] == self.permit_nonce and r["withdrawal_nonces"] == self.withdrawal_nonce
        assert r["uftp_keys"] == self.uftp_key
        CHECKS["permit and withdrawal nonces, UFTP keys = model"] += 1

    @invariant()
    def cleared_slots_balance(self) -> None:
        r = self.reads()
        for s in self.slots:
            chain = r["slots"][s.start]
            assert chain.status == s.status, (s.start, chain.status, s.status)
            assert chain.network_tariff_per_kwh == s.tariff
            if s.status == "open":
                assert chain.open_orders == len(self.book(s))
                continue
            assert chain.clearing_price_per_kwh == s.price
            bought = sum(f for o, f in s.fills if o.side is Side.BUY)
            sold = sum(f for o, f in s.fills if o.side is Side.SELL)
            assert bought == sold
            for o, f in s.fills:
                assert 0 <= f <= o.energy_wh
                if f:
                    beyond = s.price + s.tariff > o.price_per_kwh if o.side is Side.BUY else s.price < o.price_per_kwh
                    assert not beyond, (o, f, s.price, s.tariff)
        CHECKS["bought = sold, fills within energy and all-in limit"] += 1

    @invariant()
    def flex_tokens_are_open_escrows_plus_claimable(self) -> None:
        r = self.reads()
        escrows = sum(q.escrow for q in self.requests if q.status != "settled")
        claimable = sum(self.claimable.values())  # checked against the chain at every settlement and claim
        assert r["flex_tokens"] == escrows + claimable, (r["flex_tokens"], escrows, claimable)
        CHECKS["flex tokens = open escrows + claimable"] += 1
