"""The market clock: the market's calendar, run by the service itself.

At each gate closure it clears, checks on the network and commits the slot (``Operations.clear_slot``,
what ``POST /slots/{ds}/clearing`` runs); once a slot has been delivered it settles it as soon as
the meter operator's readings of every account that traded are in, and names the missing ones
while they are not; a DSO flexibility request is awarded once its bid deadline has passed.

Time: with ``seconds_per_slot`` (local chains only) the clock moves the chain's own time (time
travel on the embedded chain, ``evm_setNextBlockTimestamp`` on anvil and Hardhat) so that one
15-minute slot passes in that many real seconds; without it the clock follows the wall clock, as
it must on any other chain. ``tick(now)`` does one round for a given time, so tests drive the
calendar deterministically; ``start()`` runs rounds in a thread.

Restart: the next slot to clear is kept in the SQLite store (``meta.clock_next_slot``) and only
advanced once that slot is done, so a restarted clock takes up the calendar where it stopped,
clearing every slot whose gate closed meanwhile and none twice. Settlement and awards need no
pointer: they follow the index (a cleared, delivered slot; an open request past its deadline).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from gridledger.errors import ConfigurationError
from gridledger.service.context import ServiceContext, when
from gridledger.service.flexibility import FlexDesk
from gridledger.service.operations import Operations
from gridledger.store.database import get_meta, set_meta, write_transaction
from gridledger.units import SLOT_SECONDS

log = logging.getLogger(__name__)

NEXT_SLOT_KEY = "clock_next_slot"
# Readings are due this long after a slot's delivery ends; later, the clock logs the missing ones.
READINGS_DUE_S = 300
WALL_TICK_S = 1.0  # how often a wall-clock clock looks at the calendar
MIN_TICK_S = 0.05


@dataclass(frozen=True, slots=True)
class MissingReadings:
    """A delivered, cleared slot that cannot settle yet: these accounts traded and have no reading."""

    delivery_start: int
    accounts: list[str]
    due: int  # when the readings were due (unix seconds); late once ``now`` is past it


@dataclass(frozen=True, slots=True)
class ClockState:
    """The calendar as the clock sees it at ``now`` (unix seconds, the chain's time)."""

    running: bool
    mode: str  # "accelerated" (moves a local chain's time) | "wall clock"
    seconds_per_slot: float  # real seconds one 15-minute slot takes (900 on the wall clock)
    now: int
    current_slot: int  # start of the slot being delivered at ``now``
    next_gate_slot: int  # the next slot whose gate closes
    next_gate_closure: int  # when it closes
    next_slot_to_clear: int  # the clock's pointer: slots before it are done
    last_cleared_slot: int | None
    last_settled_slot: int | None
    missing_readings: list[MissingReadings] = field(default_factory=list)
    last_error: str | None = None


@dataclass
class TickReport:
    """What one round did (tests and logs read it)."""

    cleared: list[int] = field(default_factory=list)
    settled: list[int] = field(default_factory=list)
    awarded: list[int] = field(default_factory=list)
    skipped: list[int] = field(default_factory=list)  # gates closed with no order: nothing to commit


class MarketClock:
    def __init__(
        self,
        ctx: ServiceContext,
        operations: Operations,
        flex: FlexDesk,
        *,
        seconds_per_slot: float | None = None,
        time_source: Callable[[], int] | None = None,
    ) -> None:
        if seconds_per_slot is not None:
            if seconds_per_slot <= 0:
                raise ConfigurationError(f"seconds per slot must be positive, not {seconds_per_slot}")
            if not ctx.ledger.chain.can_move_time:
                raise ConfigurationError(
                    f"--seconds-per-slot moves the chain's clock, which only the embedded chain and local "
                    f"devnets (hardhat, anvil) allow; on {ctx.ledger.chain.kind} the clock follows the wall clock"
                )
        self.ctx = ctx
        self.operations = operations
        self.flex = flex
        self.seconds_per_slot = seconds_per_slot
        self._time_source = time_source
        self._gate = ctx.gate_closure_s
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._warned: set[int] = set()
        self._missing: list[MissingReadings] = []
        self.last_error: str | None = None
        self._now = 0

    # ─────────────── time ───────────────

    def now(self) -> int:
        if self._time_source is not None:
            return self._time_source()
        if self.seconds_per_slot is not None:
            return self.ctx.on_chain(self.ctx.ledger.chain.now)
        # Wall clock; a local chain moved ahead before keeps its own (later) time.
        return max(int(time.time()), self.ctx.chain_time())

    def _advance_chain(self, anchor_chain: int, anchor_real: float) -> int:
        """Moves the chain to where the accelerated calendar is now; returns that time."""
        assert self.seconds_per_slot is not None
        elapsed = time.monotonic() - anchor_real
        target = anchor_chain + int(elapsed * SLOT_SECONDS / self.seconds_per_slot)
        chain = self.ctx.ledger.chain

        def move() -> int:
            chain.move_time_to(target)
            self.ctx.indexer.sync()
            return chain.now()

        return self.ctx.on_chain(move)

    # ─────────────── one round ───────────────

    def tick(self, now: int | None = None) -> TickReport:
        """One round of the calendar at ``now`` (default: the clock's time): clears every slot
        whose gate has closed, awards requests past their deadline, settles metered slots."""
        now = self.now() if now is None else now
        self._now = now
        report = TickReport()
        self._clear_due(now, report)
        self._award_due(now, report)
        self._settle_due(now, report)
        return report

    def _clear_due(self, now: int, report: TickReport) -> None:
        slot = self._next_slot(now)
        # A slot's gate closes GATE seconds before it starts (the contract's GateNotClosed rule).
        while slot - self._gate <= now:
            if self._has_orders(slot):
                log.info("gate closed for slot %s: clearing", when(slot))
                self.operations.clear_slot(slot).result()
                report.cleared.append(slot)
            else:
                report.skipped.append(slot)
            slot += SLOT_SECONDS
            self._set_next_slot(slot)  # only once the slot is done: a crash before repeats nothing on-chain

    def _award_due(self, now: int, report: TickReport) -> None:
        due = self._rows(
            "select request_id from flex_requests where status = 'open' and bid_deadline < ? and ? < window_start "
            "order by request_id",
            now,
            now,
        )
        for row in due:
            log.info("bid deadline of flexibility request %s passed: awarding", row["request_id"])
            self.flex.award(row["request_id"]).result()
            report.awarded.append(row["request_id"])

    def _settle_due(self, now: int, report: TickReport) -> None:
        missing: list[MissingReadings] = []
        delivered = self._rows(
            "select delivery_start from slots where status = 'cleared' and delivery_start + ? <= ? "
            "order by delivery_start",
            SLOT_SECONDS,
            now,
        )
        for row in delivered:
            slot = row["delivery_start"]
            absent = [
                r["prosumer"]
                for r in self._rows(
                    "select distinct prosumer from fills f where delivery_start = ? and filled_wh > 0 and not exists "
                    "(select 1 from meter_readings m where m.delivery_start = f.delivery_start "
                    "and m.account = f.prosumer) order by prosumer",
                    slot,
                )
            ]
            if absent:
                due = slot + SLOT_SECONDS + READINGS_DUE_S
                missing.append(MissingReadings(slot, absent, due))
                if now > due and slot not in self._warned:
                    self._warned.add(slot)
                    log.warning(
                        "slot %s cannot settle: meter readings missing for %s (due at %s)",
                        when(slot),
                        ", ".join(absent),
                        when(due),
                    )
                continue
            log.info("slot %s delivered and metered: settling", when(slot))
            self.operations.settle_slot(slot).result()
            report.settled.append(slot)
        self._missing = missing

    # ─────────────── state ───────────────

    def state(self) -> ClockState:
        # Accelerated, the chain's time is what the last round moved it to; else it is read now.
        now = self._now if self._now and self.seconds_per_slot is not None else self.now()
        current = now // SLOT_SECONDS * SLOT_SECONDS
        # The next gate to close: the first slot whose gate time lies after now.
        gate_slot = (now + self._gate) // SLOT_SECONDS * SLOT_SECONDS + SLOT_SECONDS
        cleared = self.ctx.db.execute("select max(delivery_start) from slots").fetchone()[0]
        settled = self.ctx.db.execute("select max(delivery_start) from slots where status = 'settled'").fetchone()[0]
        pointer = get_meta(self.ctx.db, NEXT_SLOT_KEY)
        return ClockState(
            running=self.running,
            mode="wall clock" if self.seconds_per_slot is None else "accelerated",
            seconds_per_slot=float(SLOT_SECONDS if self.seconds_per_slot is None else self.seconds_per_slot),
            now=now,
            current_slot=current,
            next_gate_slot=gate_slot,
            next_gate_closure=gate_slot - self._gate,
            next_slot_to_clear=int(pointer) if pointer is not None else gate_slot,
            last_cleared_slot=cleared,
            last_settled_slot=settled,
            missing_readings=list(self._missing),
            last_error=self.last_error,
        )

    def _next_slot(self, now: int) -> int:
        value = self.ctx.on_chain(lambda: get_meta(self.ctx.indexer.db, NEXT_SLOT_KEY))
        if value is not None:
            return int(value)
        # First start: from the slot being delivered now (an open order for it is still cleared).
        first = now // SLOT_SECONDS * SLOT_SECONDS
        self._set_next_slot(first)
        return first

    def _set_next_slot(self, slot: int) -> None:
        def act() -> None:
            with write_transaction(self.ctx.indexer.db):
                set_meta(self.ctx.indexer.db, NEXT_SLOT_KEY, slot)

        self.ctx.on_chain(act)

    def _has_orders(self, slot: int) -> bool:
        """Open orders on the ledger, or accepted ones still waiting for the relayer."""
        return bool(
            self._rows(
                "select 1 where exists (select 1 from orders where delivery_start = ? and status = 'open') "
                "or exists (select 1 from submissions where delivery_start = ? and status = 'accepted')",
                slot,
                slot,
            )
        )

    def _rows(self, sql: str, *params: Any) -> list[dict[str, Any]]:
        """A read of the index on the chain thread (after what it just wrote)."""
        return self.ctx.on_chain(lambda: self.ctx.worker_rows(sql, *params))

    # ─────────────── the loop ───────────────

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="gridledger-clock", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=120)
            self._thread = None

    def _run(self) -> None:
        accelerated = self.seconds_per_slot is not None
        anchor_chain = self.now() if accelerated else 0
        anchor_real = time.monotonic()
        interval = max(MIN_TICK_S, self.seconds_per_slot / 20) if self.seconds_per_slot else WALL_TICK_S
        while not self._stop.is_set():
            try:
                now = self._advance_chain(anchor_chain, anchor_real) if accelerated else None
                self.tick(now)
                self.last_error = None
            except Exception as exc:  # a refused clearing or a node that went away must not stop the calendar
                self.last_error = f"{type(exc).__name__}: {exc}"
                log.exception("market clock round failed; retrying")
            self._stop.wait(interval)
