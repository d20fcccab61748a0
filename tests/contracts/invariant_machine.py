"""A Hypothesis state machine over GridLedger's contracts, and the world it runs in.

The world is deployed once per process (3 prosumers, a funded balancing account and DSO) and
snapshotted; every example starts by reverting the embedded chain to that snapshot, so an example
costs only its own transactions. The machine keeps a model of what the contracts should hold
(accounts, open orders, slots, flexibility escrows), predicts every act's outcome from it, and
after every step checks the chain against it and against the invariants of the issue:

- tokens: the market's token balance is Σ accounts (available + locked) + pots of cleared,
  unsettled slots; the flexibility market's token balance is its open escrows;
- locked = Σ escrow of open buy orders, per prosumer;
- bought = sold per cleared slot, no fill above its order's energy or beyond its limit price;
- nothing settles twice; refunds are exact.

Acts the model knows must fail (withdrawing more than available, an order after gate closure,
a replayed order, a second settlement, …) are sent anyway and must be refused with the expected
domain exception and leave the chain unchanged.

``CHECKS`` counts every check by invariant (``benchmarks/invariants.py`` prints it).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from eth_account.signers.local import LocalAccount
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule
from tests.conftest import DEPOSIT, REPORT, open_ledger
from web3.logs import DISCARD

from gridledger.chain.compile import Build, compile_contracts
from gridledger.chain.ledger import Ledger
from gridledger.chain.reverts import RevertDecoder
from gridledger.chain.transactions import Transactor
from gridledger.errors import (
    ClearingRejected,
    GateClosedError,
    GridLedgerError,
    InsufficientFunds,
    LedgerError,
    OrderExpiredError,
    ReplayRejected,
    SettlementRejected,
)
from gridledger.market.book import clear_recorded
from gridledger.market.orders import Order, RecordedOrder, Side
from gridledger.settlement.rules import cost, settle_slot
from gridledger.sim.participants import make_prosumers

PROSUMERS = 3
SLOTS = 3
WALLET = 50_000_000  # tokens each prosumer holds outside the market, to deposit
BALANCING_FLOAT = 1_000 * DEPOSIT  # the balancing account pays surplus buy-backs from this
DSO_FUNDS = 100_000_000
GATE = 300  # the deployment's gate closure (Settings.gate_closure_seconds)
SHORTFALL_PRICE, SURPLUS_PRICE = 400_000, 50_000  # the deployment's imbalance prices
MAX_ENERGY_WH = 30_000 // 4  # make_prosumers' capacity over one slot
# A time within this many seconds of a boundary (gate closure, delivery end, …) is stepped over
# before a time-dependent act, so that the model and the block that runs the act agree on which
# side of it they are (every transaction mines a block one second later).
MARGIN = 4

CHECKS: Counter[str] = Counter()
RUNS: Counter[str] = Counter()


# ───────────────────────────── the world, deployed once ─────────────────────────────


@dataclass
class World:
    build: Build
    ledger: Ledger
    prosumers: list[LocalAccount]
    slots: list[int]
    snapshot: int


_WORLD: World | None = None


def world() -> World:
    """The deployed world, made on first use and snapshotted."""
    global _WORLD
    if _WORLD is None:
        build = compile_contracts()
        ledger = open_ledger(build)
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
        first = (ledger.chain.now() // 900 + 2) * 900
        slots = [first + 900 * k for k in range(SLOTS)]
        _WORLD = World(build, ledger, prosumers, slots, ledger.chain.tester.take_snapshot())
    return _WORLD


def fresh_ledger(w: World) -> Ledger:
    """Reverts the chain to the world's snapshot; a new transactor forgets the nonces it counted."""
    w.ledger.chain.tester.revert_to_snapshot(w.snapshot)
    chain = w.ledger.chain
    transactor = Transactor(chain, RevertDecoder(c.abi for c in w.build.contracts.values()))
    return Ledger(chain, w.build, w.ledger.deployment, w.ledger.roles, transactor)


# ───────────────────────────── the model ─────────────────────────────


@dataclass
class ModelOrder:
    order: Order
    hash: bytes
    status: str = "unrecorded"  # unrecorded → open → cancelled | cleared
    arrival: int = 0

    @property
    def escrow(self) -> int:
        return cost(self.order.energy_wh, self.order.price_per_kwh) if self.order.side is Side.BUY else 0


@dataclass
class ModelSlot:
    start: int
    status: str = "open"
    price: int = 0
    pot: int = 0
    fills: list[tuple[Order, int]] = field(default_factory=list)
    readings: dict[str, int] = field(default_factory=dict)


class Refused(Exception):
    """What the model expects an act to raise: a domain exception class and the custom error."""

    def __init__(self, kind: type[GridLedgerError], error: str = "") -> None:
        super().__init__(f"{kind.__name__} {error}")
        self.kind = kind
        self.error = error


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
        self.ledger = fresh_ledger(self.w)
        self.people = self.w.prosumers
        self.balancing = self.ledger.roles.balancing.address
        self.addresses = [p.address for p in self.people]
        self.available = {a: DEPOSIT for a in self.addresses} | {self.balancing: BALANCING_FLOAT}
        self.wallet = dict.fromkeys(self.addresses, WALLET)
        self.orders: list[ModelOrder] = []
        self.nonce = dict.fromkeys(self.addresses, 0)
        self.slots = [ModelSlot(s) for s in self.w.slots]
        self.arrivals = 0
        self._reads: tuple[int, dict[str, Any]] | None = None
        self._started = False
        RUNS["examples"] += 1

    # ───────── helpers ─────────

    def now(self) -> int:
        return self.ledger.chain.now()

    def gate_open_somewhere(self) -> bool:
        return self.now() + 1 + GATE < self.w.slots[-1]

    def gate_closed_somewhere(self) -> bool:
        return self.now() + 1 + GATE >= self.w.slots[0]

    def delivery_ended_somewhere(self) -> bool:
        return self.now() + 1 >= self.w.slots[0] + 900

    def cleared_somewhere(self) -> bool:
        return any(s.status != "open" for s in self.slots)

    def boundaries(self) -> list[int]:
        return [b for s in self.w.slots for b in (s - GATE, s, s + 900)]

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
        return int(self.ledger.chain.w3.eth.block_number)

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

    def reads(self) -> dict[str, Any]:
        """The chain's balances and slots, read once per block (a refusal mines none)."""
        block = self.block()
        if self._reads is None or self._reads[0] != block:
            led = self.ledger
            accounts = led.market.functions.accountsOf([*self.addresses, self.balancing]).call()
            self._reads = (
                block,
                {
                    "accounts": {
                        a: (int(x[0]), int(x[1]))
                        for a, x in zip([*self.addresses, self.balancing], accounts, strict=True)
                    },
                    "market_tokens": led.token_balance(led.market.address),
                    "slots": {s.start: led.slot_state(s.start) for s in self.slots},
                },
            )
        return self._reads[1]

    def locked(self, address: str) -> int:
        return sum(o.escrow for o in self.orders if o.status == "open" and o.order.prosumer == address)

    def new_order(self, i: int, side_: Side, s: int, energy_wh: int, price_: int) -> ModelOrder:
        account = self.people[i]
        nonce = self.nonce[account.address]
        self.nonce[account.address] += 1
        order = Order(account.address, side_, self.w.slots[s], energy_wh, price_, nonce, self.w.slots[s])
        model = ModelOrder(order, self.ledger.sign(account, order).order_hash)
        self.orders.append(model)
        return model

    def predict_record(self, o: ModelOrder, t: int, available: dict[str, int]) -> Refused | None:
        """What ``_record`` does with the order at time ``t`` (``available`` is updated on success)."""
        order = o.order
        if t > order.expiry:
            return Refused(OrderExpiredError, "OrderExpired")
        if t + GATE >= order.delivery_start:
            return Refused(GateClosedError, "GateClosed")
        if o.status != "unrecorded":
            return Refused(ReplayRejected, "NonceAlreadyUsed")
        if order.side is Side.BUY:
            if available[order.prosumer] < o.escrow:
                return Refused(InsufficientFunds, "InsufficientBalance")
            available[order.prosumer] -= o.escrow
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
        wallet_before = self.ledger.token_balance(account.address)
        self.ledger.withdraw(account, amount)
        assert self.ledger.token_balance(account.address) == wallet_before + amount
        self.available[account.address] -= amount
        self.wallet[account.address] += amount
        RUNS["withdrawals"] += 1

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
        available = dict(self.available)
        refused = None
        for o in batch:
            refused = self.predict_record(o, t, available)
            if refused:
                break
        signed = [self.ledger.sign(self.w.prosumers[self.addresses.index(o.order.prosumer)], o.order) for o in batch]
        if refused:
            self.expect_refusal(refused, lambda: self.ledger.relay_orders(signed))
            return
        self.ledger.relay_orders(signed)
        for o in batch:
            self.recorded(o)
        self.available = available
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
        available = dict(self.available)
        refused = self.predict_record(o, t, available)
        if refused:
            self.expect_refusal(refused, lambda: self.ledger.place_order(account, o.order))
            return
        self.ledger.place_order(account, o.order)
        self.recorded(o)
        self.available = available
        RUNS["orders recorded"] += 1

    @precondition(lambda self: self.orders)
    @rule(k=pick, by_sig=st.booleans())
    def cancel(self, k: int, by_sig: bool) -> None:
        """The prosumer cancels an order it signed, itself or through the facilitator's relay;
        cancelling one never recorded burns its nonce."""
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
        if o.status in ("cancelled", "cleared"):
            self.expect_refusal(Refused(LedgerError, "OrderNotOpen"), act)
            return
        before = self.ledger.account_of(o.order.prosumer)
        act()
        after = self.ledger.account_of(o.order.prosumer)
        if o.status == "open":
            # refunds exact: the buy order's escrow, no more, no less, moves back to available
            assert after == (before[0] + o.escrow, before[1] - o.escrow), (before, after, o.escrow)
            CHECKS["refunds exact (cancelled order)"] += 1
            self.available[o.order.prosumer] += o.escrow
        else:
            assert after == before
        o.status = "cancelled"
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

    @precondition(lambda self: self.gate_closed_somewhere())
    @rule(s=slot_index, tamper=st.sampled_from(["none", "none", "overfill", "drop", "imbalance"]))
    def commit(self, s: int, tamper: str) -> None:
        """The facilitator clears the slot with the project's clearing and commits it (or commits
        a tampered result, which must be refused)."""
        slot = self.slots[s]
        t = self.clear_of_boundaries()
        fills, result = clear_recorded(self.book(slot))
        price_ = result.ledger_price

        def act(f: list[tuple[Order, int]]) -> Callable[[], object]:
            return lambda: self.ledger.commit_clearing(slot.start, price_, f, **REPORT)

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
        receipt = act(fills)()
        assert receipt is not None
        events = self.ledger.market.events.OrderFilled().process_receipt(receipt, errors=DISCARD)
        on_chain = {bytes(e["args"]["orderHash"]): int(e["args"]["filledWh"]) for e in events}
        slot.status, slot.price, slot.fills = "cleared", price_, fills
        for order, f in fills:
            o = next(m for m in self.orders if m.order == order)
            o.status = "cleared"
            assert on_chain.get(o.hash, 0) == f
            if order.side is Side.BUY:
                paid = cost(f, price_)
                self.available[order.prosumer] += o.escrow - paid
                slot.pot += paid
        RUNS["slots cleared"] += 1

    @precondition(lambda self: self.delivery_ended_somewhere())
    @rule(
        s=slot_index,
        readings=st.lists(st.tuples(who, st.integers(-MAX_ENERGY_WH, MAX_ENERGY_WH)), min_size=1, max_size=3),
    )
    def meter(self, s: int, readings: list[tuple[int, int]]) -> None:
        slot = self.slots[s]
        posted = {self.addresses[i]: wh for i, wh in readings}
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
        mirror = settle_slot(
            slot.fills,
            slot.readings,
            price_per_kwh=slot.price,
            shortfall_price_per_kwh=SHORTFALL_PRICE,
            surplus_price_per_kwh=SURPLUS_PRICE,
            available=dict(self.available),
        )
        act()
        for f in mirror.fills:
            self.available[f.prosumer] += f.payment - f.collected
        self.available[self.balancing] += mirror.to_balancing - mirror.from_balancing
        slot.status, slot.pot = "settled", 0
        RUNS["slots settled"] += 1
        # A second settlement of the same slot, right away, is refused with the contract's error.
        self.expect_refusal(Refused(SettlementRejected, "SlotNotCleared"), act)
        CHECKS["nothing settles twice"] += 1

    # ───────── invariants ─────────

    @invariant()
    def market_tokens_are_accounts_plus_pots(self) -> None:
        # Hypothesis checks invariants once after the machine starts and once after every step.
        RUNS["steps" if self._started else "examples started"] += 1
        self._started = True
        r = self.reads()
        accounts = sum(free + locked for free, locked in r["accounts"].values())
        pots = sum(st_.pot_amount for st_ in r["slots"].values() if st_.status == "cleared")
        assert r["market_tokens"] == accounts + pots, (r["market_tokens"], accounts, pots)
        assert all(st_.pot_amount == 0 for st_ in r["slots"].values() if st_.status != "cleared")
        CHECKS["market tokens = accounts + pots"] += 1

    @invariant()
    def locked_is_open_buy_escrow(self) -> None:
        r = self.reads()
        for a in self.addresses:
            assert r["accounts"][a][1] == self.locked(a), (a, r["accounts"][a], self.locked(a))
        assert r["accounts"][self.balancing][1] == 0
        CHECKS["locked = Σ open buy escrow"] += 1

    @invariant()
    def balances_match_the_model(self) -> None:
        r = self.reads()
        for a, (available, _) in r["accounts"].items():
            assert available == self.available[a], (a, available, self.available[a])
        CHECKS["available = model (exact refunds and payments)"] += 1

    @invariant()
    def cleared_slots_balance(self) -> None:
        r = self.reads()
        for s in self.slots:
            chain = r["slots"][s.start]
            assert chain.status == s.status, (s.start, chain.status, s.status)
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
                    beyond = s.price > o.price_per_kwh if o.side is Side.BUY else s.price < o.price_per_kwh
                    assert not beyond, (o, f, s.price)
            if s.status == "cleared":
                assert chain.pot_amount == s.pot
        CHECKS["bought = sold, fills within energy and limit"] += 1
