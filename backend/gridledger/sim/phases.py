"""Where a market day spends its time: wall time, transactions, gas and orders per phase.

A phase is a named stretch of the day (``onboarding``, ``orders: sign``, ``clearing: network``…);
the clock adds up every stretch of the same name. Transactions and gas are read from the
ledger's transactor, which books each receipt's gas once under its call's name: the clock counts
those bookings, so it sees every transaction the day sends and nothing else.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any


@dataclass
class PhaseFigures:
    seconds: float = 0.0
    transactions: int = 0
    gas: int = 0
    orders: int = 0
    stretches: list[float] = field(default_factory=list)  # each stretch's wall time (e.g. per slot)


class _CountingCounter(Counter[str]):
    """The transactor's gas Counter that also counts how often it was booked (once a receipt)."""

    def __init__(self, values: Counter[str]) -> None:
        super().__init__(values)
        self.bookings = 0

    def __setitem__(self, key: str, value: int) -> None:
        self.bookings += 1
        super().__setitem__(key, value)


class PhaseClock:
    """Times the phases of a day on one ledger (see the module's docstring)."""

    def __init__(self, ledger: Any | None = None) -> None:
        self.figures: dict[str, PhaseFigures] = {}
        self._gas: _CountingCounter | None = None
        if ledger is not None:
            self._gas = _CountingCounter(ledger.tx.gas_used)
            ledger.tx.gas_used = self._gas

    @contextmanager
    def phase(self, name: str, *, orders: int = 0) -> Iterator[PhaseFigures]:
        figures = self.figures.setdefault(name, PhaseFigures())
        gas = self._gas
        before = (gas.bookings, gas.total()) if gas is not None else (0, 0)
        started = time.perf_counter()
        try:
            yield figures
        finally:
            seconds = time.perf_counter() - started
            figures.seconds += seconds
            figures.stretches.append(seconds)
            figures.orders += orders
            if gas is not None:
                figures.transactions += gas.bookings - before[0]
                figures.gas += gas.total() - before[1]
