"""Designs (a) to (d) over a run of slots: the same auction, the same network check and the same
relief the ledger path runs, slot by slot, without the ledger.

- (a) no local market: loads import at the retail tariff, PV exports at the feed-in tariff, the
  batteries stay idle (with tariffs alone they have nothing to gain);
- (b) P2P unconstrained: every slot cleared by ``market.clearing.clear``; the violations the
  result causes are counted, nothing relieves them;
- (c) P2P, then curtailment: the market clears first; the facilitator relieves what breaches a
  limit by curtailing trades or, as the DSO's last resort, PV (``facilitation.facilitate`` with
  PV curtailment as the only flexibility);
- (d) joint: each morning the DSO forecasts the day's overloaded slots and reserves room in the
  batteries for them (availability paid); in each slot that breaches a limit ``facilitate`` clears
  trades, the batteries' flexibility and PV curtailment together at least cost.

Speed. Each day is simulated slot by slot (the batteries' state of charge couples the slots),
then screened in one power-grid-model batch; only a slot the screen finds over a limit runs
through ``facilitate`` (which would return the market's fills unchanged for any other slot:
its first step is the same engine's check), after which the rest of the day is simulated again
from the slot's new state of charge.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from gridledger.errors import GridLedgerError
from gridledger.facilitation import SlotInputs, facilitate
from gridledger.flex.coordination import FlexUnit
from gridledger.flex.products import Direction
from gridledger.market.clearing import BookOrder, clear
from gridledger.market.orders import Order, RecordedOrder, Side
from gridledger.network.validation import Schedule
from gridledger.study.config import StudyConfig
from gridledger.study.devices import Batteries
from gridledger.study.grid import Kind, StudyGrid
from gridledger.study.records import Check, Design, DesignRun
from gridledger.units import SLOT_SECONDS, SLOTS_PER_DAY, SLOTS_PER_HOUR

PROFILE_YEAR_START = 1_451_606_400  # 2016-01-01 00:00 UTC: SimBench's profile year
Progress = Callable[[int], None]  # called with the number of slots just finished


def delivery_start(slot: int) -> int:
    return PROFILE_YEAR_START + slot * SLOT_SECONDS


def order_hash(participant: int, slot: int) -> bytes:
    """The study's stand-in for an order's EIP-712 hash: unique per participant and slot. Ties in
    the auction break by arrival first, which is unique, so the hash never decides a fill."""
    return participant.to_bytes(4, "big") + slot.to_bytes(4, "big") + bytes(24)


def offer_id(kind: int, participant: int, slot: int) -> bytes:
    return bytes([kind]) + participant.to_bytes(4, "big") + slot.to_bytes(4, "big") + bytes(23)


PV_CURTAILMENT, BATTERY_DOWN, BATTERY_UP = 1, 2, 3


@dataclass(frozen=True)
class Screen:
    trafo: np.ndarray
    lines: np.ndarray
    v_min: np.ndarray
    v_max: np.ndarray
    violations: np.ndarray
    trafo_excess_va: np.ndarray  # Σ over transformers of the apparent power above their limit


class MarketStudy:
    """The participants' orders and the designs' runs on one grid."""

    def __init__(self, grid: StudyGrid, config: StudyConfig) -> None:
        self.grid, self.config = grid, config
        self.loads = np.array([p.index for p in grid.of_kind(Kind.LOAD)], dtype=int)
        self.pvs = np.array([p.index for p in grid.of_kind(Kind.PV)], dtype=int)
        self.bats = np.array([p.index for p in grid.of_kind(Kind.BATTERY)], dtype=int)
        load_el = [p.element for p in grid.of_kind(Kind.LOAD)]
        pv_el = [p.element for p in grid.of_kind(Kind.PV)]
        self.load_wh = np.rint(grid.load_p_w[:, load_el] / SLOTS_PER_HOUR).astype(np.int64)
        self.pv_wh = np.rint(grid.sgen_p_w[:, pv_el] / SLOTS_PER_HOUR).astype(np.int64)
        self.community_wh = self.load_wh.sum(axis=1) - self.pv_wh.sum(axis=1)
        rng = random.Random(config.seed)
        half_spread = (config.retail_per_kwh - config.feed_in_per_kwh) / 2
        self.limit = np.zeros(len(grid.participants), dtype=np.int64)
        for i in self.loads:
            self.limit[i] = config.retail_per_kwh - round(rng.random() * half_spread)
        for i in self.pvs:
            self.limit[i] = config.feed_in_per_kwh + round(rng.random() * half_spread)
        self.incidence = np.zeros((len(grid.participants), len(grid.model.buses)))
        self.incidence[np.arange(len(grid.participants)), grid.participant_bus_position] = 1.0

    # -- one slot's market ----------------------------------------------------------------------

    def orders_wh(self, slot: int, batteries: Batteries, reserved_wh: np.ndarray | None = None) -> np.ndarray:
        order = np.zeros(len(self.grid.participants), dtype=np.int64)
        order[self.loads] = self.load_wh[slot]
        order[self.pvs] = -self.pv_wh[slot]
        if len(self.bats):
            order[self.bats] = batteries.orders_wh(int(self.community_wh[slot]), reserved_wh)
        return order

    def limit_price(self, participant: int, side: Side) -> int:
        if participant in self._battery_set:
            c = self.config
            return c.battery_buy_per_kwh if side is Side.BUY else c.battery_sell_per_kwh
        return int(self.limit[participant])

    @property
    def _battery_set(self) -> frozenset[int]:
        cached = self.__dict__.get("_bset")
        if cached is None:
            cached = self.__dict__["_bset"] = frozenset(int(i) for i in self.bats)
        return cached

    def book(self, slot: int, order: np.ndarray) -> list[BookOrder]:
        """The slot's orders in participant order (their arrival order on the ledger)."""
        book = []
        for i, wh in enumerate(order.tolist()):
            if wh:
                side = Side.BUY if wh > 0 else Side.SELL
                book.append(BookOrder(order_hash(i, slot), side, abs(wh), self.limit_price(i, side), (slot, i)))
        return book

    def recorded(self, slot: int, order: np.ndarray) -> list[RecordedOrder]:
        """The same orders as the ledger would record them (for ``facilitate``)."""
        ds = delivery_start(slot)
        out = []
        for b in self.book(slot, order):
            i = b.arrival[1]
            o = Order(self.grid.participants[i].address, b.side, ds, b.energy_wh, b.price_per_kwh, slot, ds)
            out.append(RecordedOrder(o, b.order_hash, (slot, i)))
        return out

    # -- runs -----------------------------------------------------------------------------------

    def new_run(self, design: Design) -> DesignRun:
        c = self.config
        first = (c.first_day - 1) * SLOTS_PER_DAY
        run = DesignRun(design, first, c.days * SLOTS_PER_DAY, len(self.grid.participants), len(self.bats))
        run.soc_wh[0] = Batteries(self.grid.batteries).soc_wh
        return run

    def run(
        self, design: Design, tariff: np.ndarray, progress: Progress | None = None, *, flexibility: bool = True
    ) -> DesignRun:
        """Design ``design`` over the configured days with the network tariff ``tariff`` per slot.
        ``flexibility=False`` runs (c) or (d) with no flexibility at all: the facilitator's
        curtailment of trades alone (what the ledger path does today without flexibility offers)."""
        started, cpu = time.perf_counter(), time.process_time()
        run = self.new_run(design)
        run.flexibility = flexibility
        run.tariff[:] = tariff
        if design is Design.NO_MARKET:
            for k in range(run.slots):
                run.order_wh[k] = self.orders_wh(run.first_slot + k, Batteries(self.grid.batteries))
                run.order_wh[k][self.bats] = 0
            run.soc_wh[:] = run.soc_wh[0]
            self._store_screen(run, 0, run.slots, self.screen(run, 0, run.slots))
            if progress:
                progress(run.slots)
        elif design is Design.P2P_UNCONSTRAINED:
            for day in range(run.slots // SLOTS_PER_DAY):
                k0 = day * SLOTS_PER_DAY
                self.simulate(run, k0, k0 + SLOTS_PER_DAY)
                if progress:
                    progress(SLOTS_PER_DAY)
            self._store_screen(run, 0, run.slots, self.screen(run, 0, run.slots))
        else:
            for day in range(run.slots // SLOTS_PER_DAY):
                self.relieve_day(run, day)
                if progress:
                    progress(SLOTS_PER_DAY)
        run.seconds = time.perf_counter() - started
        run.cpu_seconds = time.process_time() - cpu
        return run

    def simulate(self, run: DesignRun, k0: int, k1: int, reserve: np.ndarray | None = None) -> None:
        """Slots ``k0`` to ``k1`` of ``run`` as the market alone leaves them (no relief), from the
        state of charge before ``k0``; ``reserve`` (slot of the day × battery) is room kept for the DSO."""
        batteries = Batteries(self.grid.batteries, run.soc_wh[k0])
        for k in range(k0, k1):
            slot = run.first_slot + k
            reserved = reserve[k % SLOTS_PER_DAY] if reserve is not None else None
            order = self.orders_wh(slot, batteries, reserved)
            book = self.book(slot, order)
            result = clear(book, network_charge_per_kwh=int(run.tariff[k]))
            fill = [0] * len(order)
            for b in book:
                filled = result.fills[b.order_hash]
                fill[b.arrival[1]] = filled if b.side is Side.BUY else -filled
            run.order_wh[k], run.fill_wh[k], run.price[k] = order, fill, result.ledger_price
            run.curtailed_wh[k] = 0
            run.flex_wh[k] = 0
            batteries.apply(order[self.bats])
            run.soc_wh[k + 1] = batteries.soc_wh

    def screen_schedule(self, run: DesignRun, k0: int, k1: int) -> Schedule:
        """The physical flows of slots ``k0`` to ``k1``: every load and generator is a participant,
        so the market's power at each bus is the whole schedule (as ``slot_schedule`` builds it)."""
        model = self.grid.model
        market = (run.metered_wh[k0:k1] * SLOTS_PER_HOUR).astype(float) @ self.incidence
        n = k1 - k0
        return Schedule(
            np.zeros((n, len(model.net.load))),
            np.zeros((n, len(model.net.load))),
            np.zeros((n, len(model.net.sgen))),
            market,
        )

    def screen(self, run: DesignRun, k0: int, k1: int) -> Screen:
        """Slots ``k0`` to ``k1`` in one power-grid-model batch."""
        model = self.grid.model
        n = k1 - k0
        vm, lines, trafos = self.grid.engine.solve(self.screen_schedule(run, k0, k1))
        limits = model.limits
        over = (lines > limits.max_loading_percent).sum(axis=1) + (trafos > limits.max_loading_percent).sum(axis=1)
        over += ((vm < limits.v_min_pu) | (vm > limits.v_max_pu)).sum(axis=1)
        excess = np.clip(trafos - limits.max_loading_percent, 0.0, None) / 100 @ self.grid.transformer_ratings_va
        return Screen(
            trafos.max(axis=1) if trafos.shape[1] else np.zeros(n),
            lines.max(axis=1) if lines.shape[1] else np.zeros(n),
            vm.min(axis=1),
            vm.max(axis=1),
            over,
            np.asarray(excess),
        )

    def _store_screen(self, run: DesignRun, k0: int, k1: int, screen: Screen) -> None:
        run.trafo_loading[k0:k1] = screen.trafo
        run.line_loading[k0:k1] = screen.lines
        run.v_min[k0:k1] = screen.v_min
        run.v_max[k0:k1] = screen.v_max
        run.violations[k0:k1] = screen.violations
        run.checked_by[k0:k1] = Check.SCREEN.value

    def relieve_day(self, run: DesignRun, day: int) -> None:
        """Day ``day`` of ``run`` (c or d), from the state of charge before it."""
        d0, d1 = day * SLOTS_PER_DAY, (day + 1) * SLOTS_PER_DAY
        self.relieve(run, d0, d1, self.reserve(run, day) if run.design is Design.JOINT else None)

    def relieve(self, run: DesignRun, k0: int, k1: int, reserve: np.ndarray | None = None) -> None:
        """Slots ``k0`` to ``k1`` (within one day) of ``run`` from the state of charge before
        ``k0``: simulated, screened, and each slot over a limit run through ``facilitate``."""
        k = k0
        self.simulate(run, k, k1, reserve)
        self._store_screen(run, k, k1, self.screen(run, k, k1))
        while True:
            bad = np.flatnonzero(run.violations[k:k1] > 0)  # slots from k on are screened, not yet relieved
            if not len(bad):
                return
            j = k + int(bad[0])
            batteries_changed = self.facilitate_slot(run, j, reserve)
            k = j + 1
            if k >= k1:
                return
            if batteries_changed:
                self.simulate(run, k, k1, reserve)
                self._store_screen(run, k, k1, self.screen(run, k, k1))

    def forecast_excess_wh(self, first_slot: int, slots: int) -> np.ndarray:
        """The DSO's day-ahead forecast, per slot: the energy by which the grid without a market
        (loads and PV as forecast, batteries idle) would push the transformer past its limit in
        export (Wh; 0 where it stays within it or imports)."""
        key = (first_slot, slots)
        cached = self.__dict__.setdefault("_excess", {})
        if key not in cached:
            scratch = DesignRun(Design.NO_MARKET, first_slot, slots, len(self.grid.participants), len(self.bats))
            for k in range(slots):
                scratch.order_wh[k] = self.orders_wh(first_slot + k, Batteries(self.grid.batteries))
            scratch.order_wh[:, self.bats] = 0
            screen = self.screen(scratch, 0, slots)
            over = screen.trafo_excess_va / SLOTS_PER_HOUR
            export = self.community_wh[first_slot : first_slot + slots] < 0
            cached[key] = np.where(export, over, 0.0)
        return np.asarray(cached[key])

    def reserve(self, run: DesignRun, day: int) -> np.ndarray:
        """The DSO's day-ahead reservation: room (Wh per battery) the batteries keep free for
        the day's forecast export overloads, slot by slot. The need is the forecast excess with a
        margin, shared by capacity; a battery holds its share from the start of the day and lets
        it go as the forecast excess still ahead falls."""
        excess = self.forecast_excess_wh(run.first_slot, run.slots)[day * SLOTS_PER_DAY : (day + 1) * SLOTS_PER_DAY]
        reserve = np.zeros((SLOTS_PER_DAY, len(self.bats)))
        if excess.sum() <= 0 or not len(self.bats):
            return reserve
        capacity = Batteries(self.grid.batteries).capacity_wh
        total = np.minimum(capacity, excess.sum() * self.config.reservation_margin * capacity / capacity.sum())
        ahead = excess[::-1].cumsum()[::-1] / excess.sum()  # share of the day's excess still to come
        run.reserved_wh[day] = total
        return np.asarray(ahead[:, None] * total[None, :])

    def facilitate_slot(self, run: DesignRun, k: int, reserve: np.ndarray | None) -> bool:
        """Runs slot ``k`` through ``facilitate`` with the design's flexibility; stores the
        result; returns whether a battery's metered energy differs from its order."""
        slot = run.first_slot + k
        order = run.order_wh[k]
        batteries = Batteries(self.grid.batteries, run.soc_wh[k])
        units = self.flex_units(run, k, batteries)
        inputs = SlotInputs(
            delivery_start(slot),
            self.grid.baseline(slot),
            self.recorded(slot, order),
            self.grid.bus_of,
            flex=units,
            network_charge_per_kwh=int(run.tariff[k]),
        )
        result = facilitate(self.grid.model, self.grid.engine, inputs)
        if result.clearing.ledger_price != run.price[k] or any(
            result.clearing.fills[order_hash(int(i), slot)] != abs(run.fill_wh[k][i]) for i in np.flatnonzero(order)
        ):
            raise GridLedgerError(f"slot {slot}: facilitate() cleared differently from the study's auction")
        for i in np.flatnonzero(order):
            kept = result.network.fills.get(order_hash(int(i), slot), 0)
            run.curtailed_wh[k][i] = abs(run.fill_wh[k][i]) - kept
            run.fill_wh[k][i] = np.sign(order[i]) * kept
        run.flex_wh[k] = 0
        for oid, wh in result.activations.items():
            participant = int.from_bytes(oid[1:5], "big")
            run.flex_wh[k][participant] += -wh if oid[0] == BATTERY_UP else wh
        check = result.report.check
        run.trafo_loading[k] = check.max_trafo_loading_percent
        run.line_loading[k] = check.max_line_loading_percent
        run.v_min[k], run.v_max[k] = check.v_min_pu, check.v_max_pu
        run.violations[k] = len(check.violations)
        run.checked_by[k] = Check.FACILITATED.value
        run.facilitated += 1
        metered = run.metered_wh[k][self.bats]
        batteries.apply(metered)
        run.soc_wh[k + 1] = batteries.soc_wh
        return bool((metered != order[self.bats]).any())

    def flex_units(self, run: DesignRun, k: int, batteries: Batteries) -> list[FlexUnit]:
        """PV curtailment (designs c and d) and the batteries' flexibility (design d) for slot ``k``."""
        if not run.flexibility:
            return []
        slot = run.first_slot + k
        return [
            FlexUnit(offer_id(kind, i, slot), self.grid.participants[i].bus, direction, max_wh, price)
            for kind, i, direction, max_wh, price in self.flex_offers(
                run.design, run.order_wh[k], run.fill_wh[k], batteries
            )
        ]

    def flex_offers(
        self, design: Design, order: np.ndarray, fill: np.ndarray, batteries: Batteries
    ) -> list[tuple[int, int, Direction, int, int]]:
        """What a slot's participants offer the DSO, in the order ``facilitate`` gets it: (kind,
        participant, direction, most Wh, utilisation price per kWh). PV offers to generate less
        of what it exports to its supplier (designs c and d); in (d) each battery offers to charge
        more (Down) or discharge more (Up) than its order, within its power and state of charge.
        The ledger path (``study.ledger``) offers the same on the FlexibilityMarket."""
        c = self.config
        offers: list[tuple[int, int, Direction, int, int]] = []
        for i in self.pvs:
            residual = int(-order[i] - -fill[i])  # exported to the supplier
            if residual > 0:
                offers.append((PV_CURTAILMENT, int(i), Direction.DOWN, residual, c.pv_curtailment_per_kwh))
        if design is Design.JOINT and len(self.bats):
            down, up = batteries.flex_room_wh(order[self.bats].astype(float))
            price = c.battery_utilisation_per_kwh
            for b, i in enumerate(self.bats):
                if down[b] > 0:
                    offers.append((BATTERY_DOWN, int(i), Direction.DOWN, int(down[b]), price))
                if up[b] > 0:
                    offers.append((BATTERY_UP, int(i), Direction.UP, int(up[b]), price))
        return offers
