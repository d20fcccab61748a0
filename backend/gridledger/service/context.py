"""What the facilitator's desks share: the deployment, the SQLite file, the chain thread and the
published network model. The desks (orders, operations, queries, flexibility) each hold this
context, never each other, so that each can be read on its own."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

from gridledger.chain.ledger import Ledger
from gridledger.config import Settings
from gridledger.errors import NotFoundError
from gridledger.facilitation import BaselineRef
from gridledger.market.orders import market_domain
from gridledger.network.model import NetworkModel
from gridledger.network.validation import BatchEngine
from gridledger.service.indexer import Indexer
from gridledger.service.relayer import Relayer, RelayPolicy
from gridledger.service.worker import ChainWorker
from gridledger.store.database import get_meta, open_database
from gridledger.store.reports import ReportStore

T = TypeVar("T")
WRITE_TIMEOUT_S = 600


class ServiceContext:
    """One deployment's shared state. SQLite: ``db`` for the API's thread, ``indexer.db`` (the
    worker's own connection) for work on the chain thread."""

    def __init__(
        self,
        ledger: Ledger,
        settings: Settings,
        *,
        model: NetworkModel | None = None,
        policy: RelayPolicy | None = None,
    ) -> None:
        self.ledger = ledger
        self.settings = settings
        self.market = ledger.market.address
        self.chain_id = ledger.chain.chain_id
        self.domain = market_domain(self.chain_id, self.market)
        self.gate_closure_s = int(ledger.market.functions.GATE_CLOSURE_SECONDS().call())
        self.db = open_database(settings.database)
        worker_db = open_database(settings.database)
        self.reports = ReportStore(self.db)
        self.worker_reports = ReportStore(worker_db)
        policy = policy or RelayPolicy(settings.relay_batch_size, settings.relay_max_wait_s)
        self.indexer = Indexer(ledger, worker_db)
        self.relayer = Relayer(ledger, worker_db, policy)
        self.worker = ChainWorker(self.indexer, self.relayer)
        self._model = model
        self._engine: BatchEngine | None = None

    @property
    def model(self) -> NetworkModel:
        if self._model is None:
            self._model = NetworkModel.load(self.settings.network_model)
        return self._model

    def batch_engine(self) -> BatchEngine:
        if self._engine is None:
            self._engine = BatchEngine(self.model)
        return self._engine

    def on_chain(self, fn: Callable[[], T]) -> T:
        """Runs ``fn`` on the chain thread and waits for it (tests move the chain's clock this way)."""
        return self.worker.call(fn).result(timeout=WRITE_TIMEOUT_S)

    def require_node(self) -> None:
        """Refuses (503) work that needs the chain while the chain thread finds the node unusable:
        unreachable, or reset (see ``service.worker``). An order accepted then could not be relayed."""
        problem = self.worker.node_problem
        if problem is not None:
            raise type(problem)(f"{problem}; nothing is accepted until then")

    # ─────────────── reads every desk needs ───────────────

    def rows(self, sql: str, *params: Any) -> list[dict[str, Any]]:
        return self.db.execute_returning_dicts(sql, list(params))

    def worker_rows(self, sql: str, *params: Any) -> list[dict[str, Any]]:
        """Like ``rows``, on the chain thread's connection."""
        return self.indexer.db.execute_returning_dicts(sql, list(params))

    def chain_time(self) -> int:
        value = get_meta(self.db, "last_block_timestamp")
        return int(value) if value is not None else int(time.time())

    def require_known_slot(self, delivery_start: int) -> None:
        known = self.db.execute(
            "select exists(select 1 from orders where delivery_start = ?) or "
            "exists(select 1 from submissions where delivery_start = ?) or "
            "exists(select 1 from slots where delivery_start = ?)",
            [delivery_start, delivery_start, delivery_start],
        ).fetchone()[0]
        if not known:
            raise NotFoundError(f"slot {when(delivery_start)} has no orders and no clearing")

    def slot_row(self, delivery_start: int) -> dict[str, Any]:
        rows = self.rows("select * from slots where delivery_start = ?", delivery_start)
        if not rows:
            self.require_known_slot(delivery_start)
            raise NotFoundError(f"slot {when(delivery_start)} has not been cleared yet")
        return rows[0]

    def baseline_ref(self, delivery_start: int) -> BaselineRef:
        """The slot's SimBench baseline as its delivery time implies (see ``facilitation.baseline``)."""
        buses = [bus for (bus,) in self.indexer.db.execute("select bus from participants order by block, log_index")]
        return BaselineRef.for_delivery(self.model, self.settings.network_model, delivery_start, buses)


def when(timestamp: int) -> str:
    """A unix time as people read it, with the number the API takes."""
    try:
        return f"{timestamp} ({datetime.fromtimestamp(timestamp, tz=UTC):%Y-%m-%d %H:%M:%S} UTC)"
    except (ValueError, OverflowError, OSError):  # beyond year 9999: a uint40 reaches year 36812
        return f"{timestamp} (after 9999-12-31 UTC)" if timestamp > 0 else str(timestamp)
