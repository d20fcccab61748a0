"""Read models: everything the API serves comes from the index in SQLite (never from the chain
directly), so reads are fast and a slow node does not slow them down."""

from __future__ import annotations

from typing import Any

from gridledger import __version__
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
