"""The facilitator's service layer: what the API does, without HTTP.

Writes a prosumer makes (orders, cancellations) are checked here against the index and kept
in SQLite before the caller gets an answer; the chain thread relays them. Writes the operating
parties make (registration, meter readings, clearing, settlement) run on the chain thread and
return once mined. Reads come from the index. Every refusal is a GridLedgerError whose class
says which HTTP status it is (see ``api/errors.py``) and whose message says what was wrong.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

from gridledger import __version__
from gridledger.chain.ledger import Ledger, RecordedOrder
from gridledger.config import Settings
from gridledger.errors import (
    ConflictError,
    ForbiddenError,
    GateClosedError,
    InsufficientFunds,
    NotFoundError,
    OrderError,
    OrderExpiredError,
    SignatureError,
)
from gridledger.flex.coordination import FlexUnit
from gridledger.flex.products import Direction, flex_domain
from gridledger.market.book import clear_recorded
from gridledger.market.orders import SLOT_SECONDS, Order, Side, market_domain
from gridledger.network.facilitation import BaselineRef, Dispatch, check_slot, fills_hash, register_participant
from gridledger.network.model import NetworkModel
from gridledger.network.validation import BatchEngine
from gridledger.service import auth
from gridledger.service.flexibility import FlexDesk
from gridledger.service.indexer import Indexer
from gridledger.service.relayer import Relayer, RelayPolicy, order_of
from gridledger.service.worker import ChainWorker
from gridledger.store.database import find_order, get_meta, open_database, write_transaction
from gridledger.store.reports import ReportStore
from gridledger.wallet.signing import cancellation_digest, order_hash, recover_signer

T = TypeVar("T")
SLOTS_PER_HOUR = 4
DAY_SECONDS = 86_400
DAYS_IN_PROFILE_YEAR = 366
WRITE_TIMEOUT_S = 600


@dataclass(frozen=True)
class OrderIn:
    """A signed order as a client submits it (already range-checked by the API schema)."""

    order: Order
    r: bytes
    vs: bytes


def _hex(value: bytes) -> str:
    return "0x" + value.hex()


class Facilitator:
    """GridLedger's facilitator on one deployment: accepts, relays, indexes, clears, settles."""

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
        # One connection per thread: this one for the API, the worker's own for relay and index.
        self.db = open_database(settings.database)
        worker_db = open_database(settings.database)
        self.reports = ReportStore(self.db)
        self._worker_reports = ReportStore(worker_db)
        policy = policy or RelayPolicy(settings.relay_batch_size, settings.relay_max_wait_s)
        self.indexer = Indexer(ledger, worker_db)
        self.relayer = Relayer(ledger, worker_db, policy)
        self.worker = ChainWorker(self.indexer, self.relayer)
        self._model = model
        self._engine: BatchEngine | None = None
        self.flex = FlexDesk(self)

    # ─────────────── lifecycle ───────────────

    def start(self) -> None:
        self.worker.start()

    def stop(self) -> None:
        self.worker.stop()

    def on_chain(self, fn: Callable[[], T]) -> T:
        """Runs ``fn`` on the chain thread and waits for it (tests move the chain's clock this way)."""
        return self.worker.call(fn).result(timeout=WRITE_TIMEOUT_S)

    @property
    def model(self) -> NetworkModel:
        if self._model is None:
            self._model = NetworkModel.load(self.settings.network_model)
        return self._model

    # ─────────────── prosumers' writes ───────────────

    def accept_order(self, submitted: OrderIn) -> dict[str, Any]:
        """Checks a signed order against the index and queues it for relay; returns its status."""
        order = submitted.order
        digest = order_hash(order, chain_id=self.chain_id, market_address=self.market)
        hash_hex = _hex(digest)
        signer = recover_signer(digest, submitted.r, submitted.vs)
        if signer != order.prosumer:
            raise SignatureError(
                f"order {hash_hex}: the signature recovers to {signer or 'no address'}; expected the signature of "
                f"prosumer {order.prosumer} over the order's EIP-712 hash"
            )
        self._check_tradeable(order, hash_hex)
        self._check_new(order, hash_hex)
        if order.side is Side.BUY:
            self._check_escrow(order)
        row = {
            "order_hash": hash_hex,
            "prosumer": order.prosumer,
            "nonce": order.nonce,
            "side": int(order.side),
            "delivery_start": order.delivery_start,
            "energy_wh": order.energy_wh,
            "price_per_kwh": order.price_per_kwh,
            "expiry": order.expiry,
            "r": _hex(submitted.r),
            "vs": _hex(submitted.vs),
            "status": "accepted",
            "reason": "",
            "error": "",
            "tx_hash": "",
            "accepted_at": time.time(),
            "relayed_at": None,
        }
        try:
            with write_transaction(self.db):
                columns = ", ".join(row)
                self.db.execute(
                    f"insert into submissions ({columns}) values ({', '.join('?' * len(row))})", list(row.values())
                )
        except Exception as exc:  # the unique (prosumer, nonce) index: a concurrent duplicate
            if "UNIQUE" in str(exc):
                raise ConflictError(
                    f"nonce {order.nonce} of {order.prosumer} is already used by another order"
                ) from None
            raise
        self.worker.wake()
        return {"order_hash": hash_hex, "status": "accepted"}

    def accept_cancellation(self, hash_hex: str, r: bytes, vs: bytes) -> dict[str, Any]:
        """Checks a prosumer's signed cancellation and queues it for the chain."""
        row = find_order(self.db, hash_hex)
        if row is None:
            raise NotFoundError(f"order {hash_hex} is unknown: neither accepted here nor recorded on the ledger")
        digest = cancellation_digest(bytes.fromhex(hash_hex[2:]), chain_id=self.chain_id, market_address=self.market)
        signer = recover_signer(digest, r, vs)
        if signer != row["prosumer"]:
            raise SignatureError(
                f"cancellation of {hash_hex}: the signature recovers to {signer or 'no address'}; expected the "
                f"signature of prosumer {row['prosumer']} over Cancellation(orderHash)"
            )
        existing = self.db.execute("select status from cancellations where order_hash = ?", [hash_hex]).fetchone()
        if existing:
            raise ConflictError(f"a cancellation of order {hash_hex} was already submitted ({existing[0]})")
        status = self.order_status(hash_hex)["status"]
        if status not in ("accepted", "on_chain"):
            raise ConflictError(f"order {hash_hex} is {status}: only an accepted or open order can be cancelled")
        self._require_gate_open(row["delivery_start"], hash_hex)
        with write_transaction(self.db):
            self.db.table("cancellations").insert(
                {
                    "order_hash": hash_hex,
                    "r": _hex(r),
                    "vs": _hex(vs),
                    "status": "pending",
                    "reason": "",
                    "tx_hash": "",
                    "at": time.time(),
                }
            )
        self.worker.wake()
        return {"order_hash": hash_hex, "cancellation": "pending"}

    # ─────────────── operating parties' writes (signed requests) ───────────────
    # Each checks what it can at once, then returns the future of its chain work (the API awaits it).

    def authorise(self, headers: Any, method: str, path: str, body: bytes, *, role: str) -> str:
        roles = self.ledger.roles
        expected = {
            "facilitator": roles.facilitator.address,
            "meter operator": roles.meter.address,
            "DSO": roles.dso.address,
        }[role]
        return auth.verify_request(self.db, headers, method, path, body, role=role, expected=expected)

    def register(self, account: str, *, meter_id: int, bus: int, capacity_w: int) -> Future[None]:
        self.model.require_bus(bus)  # a bus the model lacks is refused before the chain sees it

        def act() -> None:
            register_participant(self.ledger, self.model, account, meter_id=meter_id, bus=bus, capacity_w=capacity_w)
            self.indexer.sync()

        return self.worker.call(act)

    def post_meter_readings(self, delivery_start: int, readings: dict[str, int]) -> Future[None]:
        def act() -> None:
            self.ledger.post_meter_readings(delivery_start, readings)
            self.indexer.sync()

        return self.worker.call(act)

    def clear_slot(self, delivery_start: int) -> Future[None]:
        """Clears a slot from the orders the ledger recorded, checks it against the network
        (curtailing what the network cannot carry), stores the report and commits the result."""
        self._require_known_slot(delivery_start)

        def act() -> None:
            self.relayer.relay_due(force=True)
            self.indexer.sync()
            recorded = self._recorded(delivery_start, statuses=("open",))
            _, clearing = clear_recorded(recorded)
            network, report = check_slot(
                self.model,
                self.batch_engine(),
                self.baseline_ref(delivery_start),
                delivery_start,
                [(r.order_hash, r.order) for r in recorded],
                clearing,
                self._buses(),
                self._flex_units(delivery_start),
                self._dispatched(delivery_start),
            )
            fills = [(r.order, network.fills.get(r.order_hash, 0)) for r in recorded]
            # Flexibility the joint clearing chose is activated (facilitator's role) before the commit.
            for offer_id, wh in report.flexibility.get("activations", {}).items():
                self.ledger.activate_flex(bytes.fromhex(offer_id[2:]), delivery_start, wh * 4, by="facilitator")
            self._worker_reports.save(self.market, report)
            self.ledger.commit_clearing(
                delivery_start,
                clearing.ledger_price,
                fills,
                network_report_hash=report.hash,
                network_model_version=self.model.version,
            )
            self.indexer.sync()

        return self.worker.call(act)

    def settle_slot(self, delivery_start: int) -> Future[None]:
        slot = self._slot_row(delivery_start)

        def act() -> None:
            recorded = self._recorded(delivery_start, statuses=("filled", "unfilled"))
            filled = {
                r["order_hash"]: r["filled_wh"]
                for r in self.rows("select * from fills where delivery_start = ?", delivery_start)
            }
            fills = [(r.order, filled.get(_hex(r.order_hash), 0)) for r in recorded]
            local = _hex(fills_hash([(r.order_hash, f) for r, (_, f) in zip(recorded, fills, strict=True)]))
            if local != slot["fills_hash"]:
                raise ConflictError(
                    f"the index's fills of slot {delivery_start} hash to {local}, the ledger's to "
                    f"{slot['fills_hash']}: the index is behind or corrupt; nothing was sent"
                )
            self.ledger.settle(delivery_start, fills)
            self.indexer.sync()

        return self.worker.call(act)

    # ─────────────── reads (from the index) ───────────────

    def health(self) -> dict[str, Any]:
        head = self.worker.head
        indexed = int(get_meta(self.db, "last_block") or 0)
        queued = self.db.execute("select count(*) from submissions where status = 'accepted'").fetchone()[0]
        return {
            "status": "ok" if self.worker.last_error is None else "degraded",
            "chain": self.settings.chain,
            "chain_id": self.chain_id,
            "contracts": dict(self.ledger.deployment.addresses),
            "block_height": max(head, indexed),
            "indexed_block": indexed,
            "indexer_lag_blocks": max(0, head - indexed),
            "chain_time": self._chain_time(),
            "relay_queue": queued,
            "last_error": self.worker.last_error,
        }

    def version(self) -> dict[str, Any]:
        return {
            "gridledger": __version__,
            "chain_id": self.chain_id,
            "contracts": dict(self.ledger.deployment.addresses),
            "compiler": self.ledger.build.compiler_version,
            "network_model": self.settings.network_model,
            "eip712_domain": self.domain,
            "flex_eip712_domain": flex_domain(self.chain_id, self.ledger.flex.address),
            "gate_closure_seconds": self.gate_closure_s,
            "slot_seconds": SLOT_SECONDS,
        }

    def participant(self, account: str) -> dict[str, Any]:
        rows = self.rows("select * from participants where account = ?", account)
        if not rows:
            raise NotFoundError(f"{account} is not a registered participant")
        balances = self.rows("select available, locked, token_balance from accounts where account = ?", account)
        used = self.db.execute(
            "select max(n) from (select max(nonce) n from submissions where prosumer = ? "
            "union all select max(nonce) n from orders where prosumer = ?)",
            [account, account],
        ).fetchone()[0]
        p = rows[0]
        return {
            "account": account,
            "meter_id": p["meter_id"],
            "bus": p["bus"],
            "capacity_w": p["capacity_w"],
            "max_order_wh": p["capacity_w"] // SLOTS_PER_HOUR,
            "market_balance": {"available": 0, "locked": 0}
            | ({"available": balances[0]["available"], "locked": balances[0]["locked"]} if balances else {}),
            "token_balance": balances[0]["token_balance"] if balances else 0,
            "next_nonce": 0 if used is None else int(used) + 1,
        }

    def order_status(self, hash_hex: str) -> dict[str, Any]:
        on_chain = self.rows("select * from orders where order_hash = ?", hash_hex)
        submitted = self.rows("select * from submissions where order_hash = ?", hash_hex)
        if not on_chain and not submitted:
            raise NotFoundError(f"order {hash_hex} is unknown: neither accepted here nor recorded on the ledger")
        row = on_chain[0] if on_chain else submitted[0]
        status = {"open": "on_chain"}.get(row["status"], row["status"]) if on_chain else row["status"]
        result: dict[str, Any] = {
            "order_hash": hash_hex,
            "status": status,
            "order": _order_json(row),
            "filled_wh": on_chain[0]["filled_wh"] if on_chain else 0,
        }
        if submitted:
            s = submitted[0]
            result["relay"] = {"status": s["status"], "tx_hash": s["tx_hash"] or None, "reason": s["reason"] or None}
            if s["status"] in ("rejected", "withdrawn") and not on_chain:
                result["reason"] = s["reason"]
        cancellation = self.rows("select status, reason, tx_hash from cancellations where order_hash = ?", hash_hex)
        if cancellation:
            result["cancellation"] = cancellation[0]
        settled = self.rows("select * from settlements where order_hash = ?", hash_hex)
        if settled:
            result["settlement"] = _settlement_json(settled[0])
        return result

    def orders_of(self, account: str) -> list[dict[str, Any]]:
        hashes = [
            r[0]
            for r in self.db.execute(
                "select order_hash from submissions where prosumer = ? union select order_hash from orders "
                "where prosumer = ? order by 1",
                [account, account],
            )
        ]
        return sorted(
            (self.order_status(h) for h in hashes), key=lambda o: (o["order"]["delivery_start"], o["order"]["nonce"])
        )

    def book(self, delivery_start: int) -> dict[str, Any]:
        self._require_known_slot(delivery_start)
        levels: dict[str, list[dict[str, int]]] = {}
        for side, name, order in ((Side.BUY, "bids", "desc"), (Side.SELL, "asks", "asc")):
            rows = self.db.execute(
                "select price_per_kwh, sum(energy_wh), count(*) from orders where delivery_start = ? and side = ? "
                f"and status = 'open' group by price_per_kwh order by price_per_kwh {order}",
                [delivery_start, int(side)],
            ).fetchall()
            cumulative = 0
            levels[name] = []
            for price, energy, count in rows:
                cumulative += energy
                levels[name].append(
                    {"price_per_kwh": price, "energy_wh": energy, "orders": count, "cumulative_wh": cumulative}
                )
        pending = self.db.execute(
            "select count(*) from submissions where delivery_start = ? and status = 'accepted'", [delivery_start]
        ).fetchone()[0]
        return {
            "delivery_start": delivery_start,
            "gate_closure": delivery_start - self.gate_closure_s,
            **levels,
            "awaiting_relay": pending,
        }

    def clearing(self, delivery_start: int) -> dict[str, Any]:
        slot = self._slot_row(delivery_start)
        report = self.reports.get(self.market, delivery_start)
        return {
            "delivery_start": delivery_start,
            "status": slot["status"],
            "clearing_price_per_kwh": slot["clearing_price_per_kwh"],
            "traded_wh": slot["traded_wh"],
            "fills_hash": slot["fills_hash"],
            "network_report_hash": slot["network_report_hash"],
            "network_model_version": slot["network_model_version"],
            "network_passed": None if report is None else bool(report["passed"]),
            "curtailed_wh": None if report is None else report["curtailed_wh"],
            "trades": self.trades(delivery_start),
        }

    def trades(self, delivery_start: int) -> list[dict[str, Any]]:
        return [
            _fill_json(r)
            for r in self.rows(
                "select f.*, o.block ob, o.log_index from fills f join orders o using (order_hash) "
                "where f.delivery_start = ? order by o.block, o.log_index",
                delivery_start,
            )
        ]

    def trades_of(self, account: str) -> list[dict[str, Any]]:
        rows = self.rows(
            "select f.*, s.order_hash settled, s.deviation_wh, s.payment, s.imbalance_charge from fills f "
            "left join settlements s using (order_hash) where f.prosumer = ? order by f.delivery_start, f.block",
            account,
        )
        return [_fill_json(r) | {"settlement": _settlement_json(r) if r["settled"] else None} for r in rows]

    def settlement(self, delivery_start: int) -> dict[str, Any]:
        slot = self._slot_row(delivery_start)
        ds = delivery_start
        readings = dict(
            self.db.execute(
                "select account, net_wh from meter_readings where delivery_start = ? order by account", [ds]
            ).fetchall()
        )
        payments = dict(
            self.db.execute(
                "select account, sum(amount) from payments where delivery_start = ? group by account order by account",
                [ds],
            ).fetchall()
        )
        settled = self.rows("select * from settlements where delivery_start = ? order by block, order_hash", ds)
        return {
            "delivery_start": delivery_start,
            "status": slot["status"],
            "meter_readings_wh": readings,
            "settlements": [_settlement_json(r) for r in settled],
            "net_payments": payments,
            "paid_to_sellers": slot["paid_to_sellers"],
            "to_balancing": slot["to_balancing"],
            "from_balancing": slot["from_balancing"],
        }

    def network_report(self, delivery_start: int) -> dict[str, Any]:
        stored = self.reports.get(self.market, delivery_start)
        if stored is None:
            raise NotFoundError(f"slot {delivery_start} has no network report: it has not been cleared here")
        return {
            "delivery_start": delivery_start,
            "report_hash": stored["report_hash"],
            "model_version": stored["model_version"],
            "passed": bool(stored["passed"]),
            "curtailed_wh": stored["curtailed_wh"],
            "report": stored["report"],
        }

    # ─────────────── checks ───────────────

    def _check_tradeable(self, order: Order, hash_hex: str) -> None:
        participant = self.rows("select capacity_w from participants where account = ?", order.prosumer)
        if not participant:
            raise ForbiddenError(f"{order.prosumer} is not a registered participant: only registered prosumers trade")
        max_wh = participant[0]["capacity_w"] // SLOTS_PER_HOUR
        if order.energy_wh > max_wh:
            raise OrderError(
                f"energy_wh {order.energy_wh} exceeds what {order.prosumer}'s connection carries in a slot: "
                f"at most {max_wh} Wh ({participant[0]['capacity_w']} W for 15 minutes)"
            )
        now = self._chain_time()
        if now > order.expiry:
            raise OrderExpiredError(
                f"order {hash_hex} expired at {_when(order.expiry)}; the ledger's time is {_when(now)}",
                error="OrderExpired",
            )
        self._require_gate_open(order.delivery_start, hash_hex)

    def _require_gate_open(self, delivery_start: int, hash_hex: str) -> None:
        now = self._chain_time()
        gate = delivery_start - self.gate_closure_s
        if now >= gate:
            raise GateClosedError(
                f"order {hash_hex}: the gate of slot {_when(delivery_start)} closed at {_when(gate)} "
                f"({self.gate_closure_s} s before delivery); the ledger's time is {_when(now)}",
                error="GateClosed",
            )

    def _check_new(self, order: Order, hash_hex: str) -> None:
        for table in ("submissions", "orders"):
            same = self.rows(f"select order_hash, status from {table} where order_hash = ?", hash_hex)
            if same:
                raise ConflictError(f"order {hash_hex} was already submitted (status {same[0]['status']})")
            taken = self.rows(
                f"select order_hash from {table} where prosumer = ? and nonce = ?", order.prosumer, order.nonce
            )
            if taken:
                raise ConflictError(
                    f"nonce {order.nonce} of {order.prosumer} is already used by order {taken[0]['order_hash']}; "
                    "each order needs a fresh nonce"
                )

    def _check_escrow(self, order: Order) -> None:
        balance = self.rows("select available from accounts where account = ?", order.prosumer)
        available = balance[0]["available"] if balance else 0
        pending = sum(
            order_of(r).max_cost
            for r in self.rows(
                "select * from submissions where prosumer = ? and status = 'accepted' and side = ?",
                order.prosumer,
                int(Side.BUY),
            )
        )
        if available - pending < order.max_cost:
            raise InsufficientFunds(
                f"buy order needs an escrow of {order.max_cost} base units (energy × limit price), but "
                f"{order.prosumer} has {available} available in the market and {pending} reserved by orders "
                "awaiting relay: deposit more first",
                error="InsufficientBalance",
            )

    def _require_known_slot(self, delivery_start: int) -> None:
        known = self.db.execute(
            "select exists(select 1 from orders where delivery_start = ?) or "
            "exists(select 1 from submissions where delivery_start = ?) or "
            "exists(select 1 from slots where delivery_start = ?)",
            [delivery_start, delivery_start, delivery_start],
        ).fetchone()[0]
        if not known:
            raise NotFoundError(f"slot {delivery_start} ({_when(delivery_start)}) has no orders and no clearing")

    # ─────────────── helpers ───────────────

    def rows(self, sql: str, *params: Any) -> list[dict[str, Any]]:
        return self.db.execute_returning_dicts(sql, list(params))

    def _slot_row(self, delivery_start: int) -> dict[str, Any]:
        rows = self.rows("select * from slots where delivery_start = ?", delivery_start)
        if not rows:
            self._require_known_slot(delivery_start)
            raise NotFoundError(f"slot {delivery_start} ({_when(delivery_start)}) has not been cleared yet")
        return rows[0]

    def _chain_time(self) -> int:
        value = get_meta(self.db, "last_block_timestamp")
        return int(value) if value is not None else int(time.time())

    def _recorded(self, delivery_start: int, *, statuses: tuple[str, ...]) -> list[RecordedOrder]:
        """The slot's orders in the index with one of ``statuses``, in arrival order on the ledger."""
        marks = ",".join("?" * len(statuses))
        rows = self.indexer.db.execute_returning_dicts(
            f"select * from orders where delivery_start = ? and status in ({marks}) order by block, log_index",
            [delivery_start, *statuses],
        )
        return [
            RecordedOrder(order_of(r), bytes.fromhex(r["order_hash"][2:]), (r["block"], r["log_index"])) for r in rows
        ]

    def _flex_units(self, delivery_start: int) -> list[FlexUnit]:
        """Awarded offers whose window holds the slot and that the DSO has not activated for it."""
        rows = self.indexer.db.execute_returning_dicts(
            "select o.offer_id, o.bus, o.power_w, o.utilisation_price_per_kwh, r.direction "
            "from flex_offers o join flex_requests r using (request_id) "
            "where o.awarded = 1 and r.status = 'awarded' and r.window_start <= ? "
            "and ? < r.window_start + 900 * r.window_slots "
            "and not exists (select 1 from flex_deliveries d where d.offer_id = o.offer_id and d.slot = ?) "
            "order by o.offer_id",
            [delivery_start, delivery_start, delivery_start],
        )
        return [
            FlexUnit(
                bytes.fromhex(r["offer_id"][2:]),
                r["bus"],
                Direction(r["direction"]),
                r["power_w"] // 4,
                r["utilisation_price_per_kwh"],
            )
            for r in rows
        ]

    def _dispatched(self, delivery_start: int) -> list[Dispatch]:
        """What the DSO itself activated for the slot (before the facilitator clears it)."""
        rows = self.indexer.db.execute_returning_dicts(
            "select d.offer_id, o.bus, r.direction, d.ordered_wh from flex_deliveries d "
            "join flex_offers o using (offer_id) join flex_requests r using (request_id) "
            "where d.slot = ? and d.ordered_wh > 0 order by d.offer_id",
            [delivery_start],
        )
        return [
            Dispatch(bytes.fromhex(r["offer_id"][2:]), r["bus"], Direction(r["direction"]), r["ordered_wh"])
            for r in rows
        ]

    def _buses(self) -> dict[str, int]:
        return {r[0]: r[1] for r in self.indexer.db.execute("select account, bus from participants")}

    def batch_engine(self) -> BatchEngine:
        if self._engine is None:
            self._engine = BatchEngine(self.model)
        return self._engine

    def baseline_ref(self, delivery_start: int) -> BaselineRef:
        """The slot's SimBench baseline: the same day of the year and time of day in the profile
        year, with one household load per participant replaced by the market (see facilitation)."""
        moment = datetime.fromtimestamp(delivery_start, tz=UTC)
        day = min(moment.timetuple().tm_yday, DAYS_IN_PROFILE_YEAR)
        slot = (delivery_start % DAY_SECONDS) // SLOT_SECONDS
        loads = self.model.net.load
        free = {int(bus): sorted(int(i) for i in group.index) for bus, group in loads.groupby("bus")}
        replaced = []
        for (bus,) in self.indexer.db.execute("select bus from participants order by block, log_index"):
            if free.get(bus):
                replaced.append(free[bus].pop(0))
        return BaselineRef(self.settings.network_model, day, slot, tuple(sorted(replaced)))


def _when(timestamp: int) -> str:
    return f"{timestamp} ({datetime.fromtimestamp(timestamp, tz=UTC):%Y-%m-%d %H:%M:%S} UTC)"


def _order_json(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "prosumer": row["prosumer"],
        "side": Side(row["side"]).name.lower(),
        "delivery_start": row["delivery_start"],
        "energy_wh": row["energy_wh"],
        "price_per_kwh": row["price_per_kwh"],
        "nonce": row["nonce"],
        "expiry": row["expiry"],
    }


def _fill_json(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "order_hash": row["order_hash"],
        "prosumer": row["prosumer"],
        "delivery_start": row["delivery_start"],
        "side": Side(row["side"]).name.lower(),
        "filled_wh": row["filled_wh"],
        "amount": row["amount"],
    }


def _settlement_json(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "order_hash": row["order_hash"],
        "prosumer": row["prosumer"],
        "deviation_wh": row["deviation_wh"],
        "payment": row["payment"],
        "imbalance_charge": row["imbalance_charge"],
    }
