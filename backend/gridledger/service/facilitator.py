"""The facilitator's service layer: what the API does, without HTTP.

One shared context (``service.context``) and four desks that each hold it:

- ``orders``: prosumers' signed orders and cancellations, kept in SQLite before the answer;
- ``operations``: the operating parties' signed writes (registration, meter readings, clearing,
  settlement), run on the chain thread;
- ``queries``: read models from the index;
- ``flex``: the DSO's flexibility market;
- ``funds``: wallets' signed deposits and withdrawals, relayed;
- ``clock`` (``service.clock``): the market's calendar, which clears, settles and awards on time
  when the service runs with it.

Every refusal is a GridLedgerError whose class says which HTTP status it is (see
``api/errors.py``) and whose message says what was wrong.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from gridledger.chain.ledger import Ledger
from gridledger.config import Settings
from gridledger.network.model import NetworkModel
from gridledger.service.clock import MarketClock
from gridledger.service.context import ServiceContext
from gridledger.service.flexibility import FlexDesk
from gridledger.service.funds import FundsDesk
from gridledger.service.operations import Operations
from gridledger.service.orders import OrderDesk
from gridledger.service.queries import Queries
from gridledger.service.relayer import RelayPolicy

T = TypeVar("T")


class Facilitator:
    """GridLedger's facilitator on one deployment: accepts, relays, indexes, clears, settles."""

    def __init__(
        self,
        ledger: Ledger,
        settings: Settings,
        *,
        model: NetworkModel | None = None,
        policy: RelayPolicy | None = None,
        clock: bool = False,
        seconds_per_slot: float | None = None,
    ) -> None:
        self.ctx = ServiceContext(ledger, settings, model=model, policy=policy)
        self.orders = OrderDesk(self.ctx)
        self.operations = Operations(self.ctx)
        self.queries = Queries(self.ctx)
        self.flex = FlexDesk(self.ctx)
        self.funds = FundsDesk(self.ctx)
        # Always there (``/clock`` reads its state); it runs only when ``clock`` is set.
        self.clock = MarketClock(self.ctx, self.operations, self.flex, seconds_per_slot=seconds_per_slot)
        self.clock_enabled = clock

    def start(self) -> None:
        self.ctx.worker.start()
        if self.clock_enabled:
            self.clock.start()

    def stop(self) -> None:
        self.clock.stop()  # before the chain thread: its last round waits on that thread
        self.ctx.worker.stop()

    def on_chain(self, fn: Callable[[], T]) -> T:
        """Runs ``fn`` on the chain thread and waits for it (tests move the chain's clock this way)."""
        return self.ctx.on_chain(fn)
