"""Read models: everything the API serves comes from the index in SQLite (never from the chain
directly), so reads are fast and a slow node does not slow them down."""

from __future__ import annotations

import json
import sys
from concurrent.futures import Future
from dataclasses import asdict
from typing import Any

from gridledger import __version__
from gridledger.audit import audit_slot
from gridledger.encoding import to_hex
from gridledger.errors import NotFoundError
from gridledger.flex.products import flex_domain
from gridledger.market.orders import Side
from gridledger.service.context import ServiceContext
from gridledger.store.database import get_meta
from gridledger.units import SLOT_SECONDS, slot_energy_wh


class Queries:
    def __init__(self, ctx: ServiceContext) -> None:
        self.ctx = ctx

    def health(self) -> dict[str, Any]:
        """The service's state; raises (503, with the reason) while the chain node is unreachable or reset."""
        problem = self.ctx.worker.node_problem
        if problem is not None:
            queued = self.ctx.db.execute("select count(*) from submissions where status = 'accepted'").fetchone()[0]
            raise type(problem)(f"{problem} ({queued} accepted orders wait for relay)")
        head = self.ctx.worker.head
        indexed = int(get_meta(self.ctx.db, "last_block") or 0)
        queued = self.ctx.db.execute("select count(*) from submissions where status = 'accepted'").fetchone()[0]
        return {
            "status": "ok" if self.ctx.worker.last_error is None else "degraded",
            "chain": self.ctx.settings.chain,
            "chain_id": self.ctx.chain_id,
            "contracts": dict(self.ctx.ledger.deployment.addresses),
            "block_height": max(head, indexed),
            "indexed_block": indexed,
            "indexer_lag_blocks": max(0, head - indexed),
            "chain_time": self.ctx.chain_time(),
            "relay_queue": queued,
            "last_error": self.ctx.worker.last_error,
        }

    def version(self) -> dict[str, Any]:
        return {
            "gridledger": __version__,
            "chain_id": self.ctx.chain_id,
            "contracts": dict(self.ctx.ledger.deployment.addresses),
            "compiler": self.ctx.ledger.build.compiler_version,
            "network_model": self.ctx.settings.network_model,
            "eip712_domain": self.ctx.domain,
            "flex_eip712_domain": flex_domain(self.ctx.chain_id, self.ctx.ledger.flex.address),
            "gate_closure_seconds": self.ctx.gate_closure_s,
            "slot_seconds": SLOT_SECONDS,
        }

    def participant(self, account: str) -> dict[str, Any]:
        rows = self.ctx.rows("select * from participants where account = ?", account)
        if not rows:
            raise NotFoundError(f"{account} is not a registered participant")
        balances = self.ctx.rows("select available, locked, token_balance from accounts where account = ?", account)
        used = self.ctx.db.execute(
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
            "max_order_wh": slot_energy_wh(p["capacity_w"]),
            "market_balance": {"available": 0, "locked": 0}
            | ({"available": balances[0]["available"], "locked": balances[0]["locked"]} if balances else {}),
            "token_balance": balances[0]["token_balance"] if balances else 0,
            "next_nonce": 0 if used is None else int(used) + 1,
        }

    def order_status(self, hash_hex: str) -> dict[str, Any]:
        return order_status(self.ctx, hash_hex)

    def orders_of(self, account: str) -> list[dict[str, Any]]:
        hashes = [
            r[0]
            for r in self.ctx.db.execute(
                "select order_hash from submissions where prosumer = ? union select order_hash from orders "
                "where prosumer = ? order by 1",
                [account, account],
            )
        ]
        return sorted(
            (order_status(self.ctx, h) for h in hashes),
            key=lambda o: (o["order"]["delivery_start"], o["order"]["nonce"]),
        )

    def book(self, delivery_start: int) -> dict[str, Any]:
        self.ctx.require_known_slot(delivery_start)
        levels: dict[str, list[dict[str, int]]] = {}
        for side, name, order in ((Side.BUY, "bids", "desc"), (Side.SELL, "asks", "asc")):
            rows = self.ctx.db.execute(
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
        pending = self.ctx.db.execute(
            "select count(*) from submissions where delivery_start = ? and status = 'accepted'", [delivery_start]
        ).fetchone()[0]
        return {
            "delivery_start": delivery_start,
            "gate_closure": delivery_start - self.ctx.gate_closure_s,
            **levels,
            "awaiting_relay": pending,
        }

    def clearing(self, delivery_start: int) -> dict[str, Any]:
        slot = self.ctx.slot_row(delivery_start)
        report = self.ctx.reports.get(self.ctx.market, delivery_start)
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
            "network_tariff_per_kwh": slot["network_tariff_per_kwh"],
            "trades": self.trades(delivery_start),
        }

    def trades(self, delivery_start: int) -> list[dict[str, Any]]:
        return [
            _fill_json(r)
            for r in self.ctx.rows(
                "select f.*, o.block ob, o.log_index from fills f join orders o using (order_hash) "
                "where f.delivery_start = ? order by o.block, o.log_index",
                delivery_start,
            )
        ]

    def trades_of(self, account: str) -> list[dict[str, Any]]:
        rows = self.ctx.rows(
            "select f.*, s.order_hash settled, s.deviation_wh, s.payment, s.imbalance_charge from fills f "
            "left join settlements s using (order_hash) where f.prosumer = ? order by f.delivery_start, f.block",
            account,
        )
        return [_fill_json(r) | {"settlement": _settlement_json(r) if r["settled"] else None} for r in rows]

    def settlement(self, delivery_start: int) -> dict[str, Any]:
        slot = self.ctx.slot_row(delivery_start)
        ds = delivery_start
        readings = dict(
            self.ctx.db.execute(
                "select account, net_wh from meter_readings where delivery_start = ? order by account", [ds]
            ).fetchall()
        )
        payments = dict(
            self.ctx.db.execute(
                "select account, sum(amount) from payments where delivery_start = ? group by account order by account",
                [ds],
            ).fetchall()
        )
        settled = self.ctx.rows("select * from settlements where delivery_start = ? order by block, order_hash", ds)
        return {
            "delivery_start": delivery_start,
            "status": slot["status"],
            "meter_readings_wh": readings,
            "settlements": [_settlement_json(r) for r in settled],
            "net_payments": payments,
            "paid_to_sellers": slot["paid_to_sellers"],
            "to_balancing": slot["to_balancing"],
            "from_balancing": slot["from_balancing"],
            "network_charges": slot["network_charges"],
        }

    def network_report(self, delivery_start: int) -> dict[str, Any]:
        stored = self.ctx.reports.get(self.ctx.market, delivery_start)
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


def order_status(ctx: ServiceContext, hash_hex: str) -> dict[str, Any]:
    on_chain = ctx.rows("select * from orders where order_hash = ?", hash_hex)
    submitted = ctx.rows("select * from submissions where order_hash = ?", hash_hex)
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
        if s["status"] in ("rejected", "withdrawn", "abandoned") and not on_chain:
            result["reason"] = s["reason"]
    cancellation = ctx.rows("select status, reason, tx_hash from cancellations where order_hash = ?", hash_hex)
    if cancellation:
        result["cancellation"] = cancellation[0]
    settled = ctx.rows("select * from settlements where order_hash = ?", hash_hex)
    if settled:
        result["settlement"] = _settlement_json(settled[0])
    return result


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
        "network_charge": row["network_charge"] or 0,
    }


def _settlement_json(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "order_hash": row["order_hash"],
        "prosumer": row["prosumer"],
        "deviation_wh": row["deviation_wh"],
        "payment": row["payment"],
        "imbalance_charge": row["imbalance_charge"],
        "network_charge": row["network_charge"] or 0,
    }


# ─────────────── the dashboard's reads ───────────────


def market_slots(ctx: ServiceContext, *, limit: int) -> list[dict[str, Any]]:
    """The latest ``limit`` slots that have orders or a clearing, newest first: their book's totals
    and, once cleared, price and volume (the market view's series)."""
    starts = [
        r[0]
        for r in ctx.db.execute(
            "select delivery_start from (select delivery_start from orders union select delivery_start from "
            "submissions union select delivery_start from slots) order by delivery_start desc limit ?",
            [limit],
        )
    ]
    result = []
    for ds in starts:
        sides = dict(
            ctx.db.execute(
                "select side, sum(energy_wh) from orders where delivery_start = ? and status != 'cancelled' "
                "group by side",
                [ds],
            ).fetchall()
        )
        count = ctx.db.execute("select count(*) from orders where delivery_start = ?", [ds]).fetchone()[0]
        slot = ctx.rows("select * from slots where delivery_start = ?", ds)
        report = ctx.reports.get(ctx.market, ds) if slot else None
        result.append(
            {
                "delivery_start": ds,
                "gate_closure": ds - ctx.gate_closure_s,
                "status": slot[0]["status"] if slot else "open",
                "orders": count,
                "bid_wh": sides.get(int(Side.BUY), 0),
                "ask_wh": sides.get(int(Side.SELL), 0),
                "clearing_price_per_kwh": slot[0]["clearing_price_per_kwh"] if slot else None,
                "traded_wh": slot[0]["traded_wh"] if slot else None,
                "curtailed_wh": None if report is None else report["curtailed_wh"],
                "network_passed": None if report is None else bool(report["passed"]),
            }
        )
    return result


def flex_request_ids(ctx: ServiceContext) -> list[int]:
    return [r[0] for r in ctx.db.execute("select request_id from flex_requests order by request_id desc")]


class EventFeed:
    """What changed in the index since the last ``poll``: orders accepted, recorded on-chain and
    cancelled, slots cleared and settled, flexibility requests that moved (offers, award, activations,
    measurements, settlement). The first poll only takes the index's current state as its start."""

    def __init__(self, ctx: ServiceContext) -> None:
        self.ctx = ctx
        self._submissions = self._orders = -1
        self._cancelled: set[str] = set()
        self._slots: dict[int, str] = {}
        self._flex: dict[int, tuple[Any, ...]] = {}
        self._started = False

    def poll(self) -> list[tuple[str, dict[str, Any]]]:
        events: list[tuple[str, dict[str, Any]]] = []
        db = self.ctx.db
        accepted = self.ctx.rows(
            "select rowid, order_hash, prosumer, side, delivery_start, energy_wh, price_per_kwh from submissions "
            "where rowid > ? order by rowid",
            self._submissions,
        )
        recorded = self.ctx.rows(
            "select rowid, order_hash, prosumer, side, delivery_start, energy_wh, price_per_kwh from orders "
            "where rowid > ? order by rowid",
            self._orders,
        )
        for kind, rows in (("order_accepted", accepted), ("order_on_chain", recorded)):
            for r in rows:
                events.append(
                    (kind, {k: v for k, v in r.items() if k != "rowid"} | {"side": Side(r["side"]).name.lower()})
                )
        if accepted:
            self._submissions = accepted[-1]["rowid"]
        if recorded:
            self._orders = recorded[-1]["rowid"]
        cancelled = self.ctx.rows(
            "select order_hash, prosumer, delivery_start from orders where status = 'cancelled' "
            "order by block, log_index"
        )
        events += [("order_cancelled", r) for r in cancelled if r["order_hash"] not in self._cancelled]
        self._cancelled = {r["order_hash"] for r in cancelled}
        slots = dict(db.execute("select delivery_start, status from slots").fetchall())
        for ds, status in sorted(slots.items()):
            if self._slots.get(ds) != status:
                row = self.ctx.rows(
                    "select delivery_start, clearing_price_per_kwh, traded_wh, status from slots "
                    "where delivery_start = ?",
                    ds,
                )[0]
                if self._slots.get(ds) is None and status == "settled":
                    events.append(("slot_cleared", row))
                events.append(("slot_settled" if status == "settled" else "slot_cleared", row))
        self._slots = slots
        flex = {
            r["request_id"]: (r["status"], r["offers"], r["activations"], r["measurements"])
            for r in self.ctx.rows(
                "select r.request_id, r.status, "
                "(select count(*) from flex_offers o where o.request_id = r.request_id) offers, "
                "(select count(*) from flex_deliveries d join flex_offers o using (offer_id) "
                " where o.request_id = r.request_id and d.activated_w > 0) activations, "
                "(select count(*) from flex_deliveries d join flex_offers o using (offer_id) "
                " where o.request_id = r.request_id and d.baseline_wh is not null) measurements "
                "from flex_requests r"
            )
        }
        for request_id, state in sorted(flex.items()):
            if self._flex.get(request_id) != state:
                status, offers, activations, measurements = state
                events.append(
                    (
                        "flexibility",
                        {
                            "request_id": request_id,
                            "status": status,
                            "offers": offers,
                            "activations": activations,
                            "measurements": measurements,
                        },
                    )
                )
        self._flex = flex
        if not self._started:
            self._started = True
            return []
        return events


def grid(ctx: ServiceContext) -> dict[str, Any]:
    """The published model's buses, lines and transformers with a position per bus: SimBench's
    geodata where every bus has it, else a schematic (the feeder tree drawn from the slack bus)."""
    net = ctx.model.net
    geo = _geodata(net)
    positions = geo or _schematic(net)
    return {
        "network_model": ctx.settings.network_model,
        "model_version": to_hex(ctx.model.version),
        "geodata": geo is not None,
        "limits": asdict(ctx.model.limits),
        "buses": [
            {
                "index": int(i),
                "name": str(net.bus.at[i, "name"]),
                "vn_kv": float(net.bus.at[i, "vn_kv"]),
                "x": positions[int(i)][0],
                "y": positions[int(i)][1],
            }
            for i in net.bus.index
        ],
        "lines": [
            {"index": int(i), "name": str(r["name"]), "from_bus": int(r["from_bus"]), "to_bus": int(r["to_bus"])}
            for i, r in net.line.iterrows()
        ],
        "trafos": [
            {"index": int(i), "name": str(r["name"]), "hv_bus": int(r["hv_bus"]), "lv_bus": int(r["lv_bus"])}
            for i, r in net.trafo.iterrows()
        ],
        "slack_buses": [int(b) for b in net.ext_grid.bus],
        "participant_buses": sorted({r[0] for r in ctx.db.execute("select bus from participants")}),
    }


def _geodata(net: Any) -> dict[int, tuple[float, float]] | None:
    """Bus coordinates from pandapower's GeoJSON column, or None unless every bus has a point."""
    if "geo" not in net.bus.columns:
        return None
    positions = {}
    for i, text in net.bus["geo"].items():
        if not isinstance(text, str):
            return None
        point = json.loads(text)
        if point.get("type") != "Point":
            return None
        x, y = point["coordinates"][:2]
        positions[int(i)] = (float(x), float(y))
    return positions


def _schematic(net: Any) -> dict[int, tuple[float, float]]:
    """A tree layout: x is the depth from the slack bus, y spreads the leaves; parents sit at their
    children's mean. Buses the tree does not reach go in a last column."""
    edges: dict[int, list[int]] = {int(b): [] for b in net.bus.index}
    for a, b in [
        *zip(net.line.from_bus, net.line.to_bus, strict=True),
        *zip(net.trafo.hv_bus, net.trafo.lv_bus, strict=True),
    ]:
        edges[int(a)].append(int(b))
        edges[int(b)].append(int(a))
    positions: dict[int, tuple[float, float]] = {}
    next_leaf = [0.0]

    def place(bus: int, depth: int, parent: int | None) -> float:
        children = [c for c in edges[bus] if c != parent and c not in positions]
        positions[bus] = (float(depth), 0.0)  # reserve, so a mesh does not recurse back
        if not children:
            y = next_leaf[0]
            next_leaf[0] += 1
        else:
            ys = [place(c, depth + 1, bus) for c in children]
            y = sum(ys) / len(ys)
        positions[bus] = (float(depth), y)
        return y

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 4 * len(edges) + 100))
    for slack in [int(b) for b in net.ext_grid.bus]:
        if slack not in positions:
            place(slack, 0, None)
    depth = max((p[0] for p in positions.values()), default=0.0) + 1
    for bus in edges:
        if bus not in positions:
            positions[bus] = (depth, next_leaf[0])
            next_leaf[0] += 1
    return positions


def audit(ctx: ServiceContext, delivery_start: int) -> Future[dict[str, Any]]:
    """Audits a cleared slot from public records (``gridledger.audit``), on the chain thread
    since it reads the chain's logs; confirmed only when no difference is found."""
    ctx.slot_row(delivery_start)  # 404 for a slot that is unknown or not cleared

    def run() -> dict[str, Any]:
        result = audit_slot(ctx.ledger, ctx.model, ctx.batch_engine(), ctx.worker_reports, delivery_start)
        return {"delivery_start": delivery_start, "confirmed": result.confirmed, "differences": result.differences}

    return ctx.worker.call(run)
