"""Prosumers' writes: signed orders and cancellations, checked against the index and kept in
SQLite before the caller gets an answer; the chain thread relays them (``service.relayer``)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from gridledger.encoding import from_hex, to_hex
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
from gridledger.market.orders import Order, Side
from gridledger.service.context import ServiceContext, when
from gridledger.service.queries import order_status
from gridledger.store.database import find_order, write_transaction
from gridledger.units import slot_energy_wh
from gridledger.wallet.signing import cancellation_digest, order_hash, recover_signer


@dataclass(frozen=True)
class OrderIn:
    """A signed order as a client submits it (already range-checked by the API schema)."""

    order: Order
    r: bytes
    vs: bytes


class OrderDesk:
    def __init__(self, ctx: ServiceContext) -> None:
        self.ctx = ctx

    def accept_order(self, submitted: OrderIn) -> dict[str, Any]:
        """Checks a signed order against the index and queues it for relay; returns its status."""
        ctx, order = self.ctx, submitted.order
        ctx.require_node()
        hash_hex = to_hex(order_hash(order, chain_id=ctx.chain_id, market_address=ctx.market))
        signer = recover_signer(from_hex(hash_hex), submitted.r, submitted.vs)
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
            **order.as_row(),
            "r": to_hex(submitted.r),
            "vs": to_hex(submitted.vs),
            "status": "accepted",
            "reason": "",
            "error": "",
            "tx_hash": "",
            "accepted_at": time.time(),
            "relayed_at": None,
        }
        try:
            with write_transaction(ctx.db):
                columns = ", ".join(row)
                ctx.db.execute(
                    f"insert into submissions ({columns}) values ({', '.join('?' * len(row))})", list(row.values())
                )
        except Exception as exc:  # the unique (prosumer, nonce) index: a concurrent duplicate
            if "UNIQUE" in str(exc):
                raise ConflictError(
                    f"nonce {order.nonce} of {order.prosumer} is already used by another order"
                ) from None
            raise
        ctx.worker.wake()
        return {"order_hash": hash_hex, "status": "accepted"}

    def accept_cancellation(self, hash_hex: str, r: bytes, vs: bytes) -> dict[str, Any]:
        """Checks a prosumer's signed cancellation and queues it for the chain."""
        ctx = self.ctx
        ctx.require_node()
        row = find_order(ctx.db, hash_hex)
        if row is None:
            raise NotFoundError(f"order {hash_hex} is unknown: neither accepted here nor recorded on the ledger")
        digest = cancellation_digest(from_hex(hash_hex), chain_id=ctx.chain_id, market_address=ctx.market)
        signer = recover_signer(digest, r, vs)
        if signer != row["prosumer"]:
            raise SignatureError(
                f"cancellation of {hash_hex}: the signature recovers to {signer or 'no address'}; expected the "
                f"signature of prosumer {row['prosumer']} over Cancellation(orderHash)"
            )
        existing = ctx.db.execute("select status from cancellations where order_hash = ?", [hash_hex]).fetchone()
        if existing:
            raise ConflictError(f"a cancellation of order {hash_hex} was already submitted ({existing[0]})")
        status = order_status(ctx, hash_hex)["status"]
        if status not in ("accepted", "on_chain"):
            raise ConflictError(f"order {hash_hex} is {status}: only an accepted or open order can be cancelled")
        self._require_gate_open(row["delivery_start"], hash_hex)
        with write_transaction(ctx.db):
            ctx.db.table("cancellations").insert(
                {
                    "order_hash": hash_hex,
                    "r": to_hex(r),
                    "vs": to_hex(vs),
                    "status": "pending",
                    "reason": "",
                    "tx_hash": "",
                    "at": time.time(),
                }
            )
        ctx.worker.wake()
        return {"order_hash": hash_hex, "cancellation": "pending"}

    # ─────────────── checks ───────────────

    def _check_tradeable(self, order: Order, hash_hex: str) -> None:
        participant = self.ctx.rows("select capacity_w from participants where account = ?", order.prosumer)
        if not participant:
            raise ForbiddenError(f"{order.prosumer} is not a registered participant: only registered prosumers trade")
        max_wh = slot_energy_wh(participant[0]["capacity_w"])
        if order.energy_wh > max_wh:
            raise OrderError(
                f"energy_wh {order.energy_wh} exceeds what {order.prosumer}'s connection carries in a slot: "
                f"at most {max_wh} Wh ({participant[0]['capacity_w']} W for 15 minutes)"
            )
        now = self.ctx.chain_time()
        if now > order.expiry:
            raise OrderExpiredError(
                f"order {hash_hex} expired at {when(order.expiry)}; the ledger's time is {when(now)}",
                error="OrderExpired",
            )
        self._require_gate_open(order.delivery_start, hash_hex)

    def _require_gate_open(self, delivery_start: int, hash_hex: str) -> None:
        now = self.ctx.chain_time()
        gate_closure_s = self.ctx.gate_closure_s
        gate = delivery_start - gate_closure_s
        if now >= gate:
            raise GateClosedError(
                f"order {hash_hex}: the gate of slot {when(delivery_start)} closed at {when(gate)} "
                f"({gate_closure_s} s before delivery); the ledger's time is {when(now)}",
                error="GateClosed",
            )

    def _check_new(self, order: Order, hash_hex: str) -> None:
        for table in ("submissions", "orders"):
            same = self.ctx.rows(f"select order_hash, status from {table} where order_hash = ?", hash_hex)
            if same:
                raise ConflictError(f"order {hash_hex} was already submitted (status {same[0]['status']})")
        # A prosumer's nonces only go up (the ledger keeps the next one it may use): a nonce at or
        # below one already accepted or recorded would be refused on-chain.
        last = self.ctx.db.execute(
            "select max(n) from (select max(nonce) n from submissions where prosumer = ? "
            "union all select max(nonce) n from orders where prosumer = ?)",
            [order.prosumer, order.prosumer],
        ).fetchone()[0]
        if last is not None and order.nonce <= last:
            raise ConflictError(
                f"nonce {order.nonce} of {order.prosumer} is used up: a prosumer's nonces only go up, and the "
                f"lowest it may still use is {last + 1}"
            )

    def _check_escrow(self, order: Order) -> None:
        balance = self.ctx.rows("select available from accounts where account = ?", order.prosumer)
        available = balance[0]["available"] if balance else 0
        pending = sum(
            Order.from_row(r).max_cost
            for r in self.ctx.rows(
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
