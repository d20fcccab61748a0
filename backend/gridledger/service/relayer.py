"""The relayer: takes accepted orders and cancellations from SQLite to the chain.

An accepted order is in ``submissions`` before the API answers, so a restart loses nothing.
It is relayed at most once: the chain refuses a used nonce, and before sending, the relayer
asks the index whether the chain already recorded the order (a batch sent just before a crash
is found there and marked relayed, not sent again). A batch is all-or-nothing on-chain; if one
order in it fails (say its gate closed meanwhile), the batch is split in halves until that order
stands alone and is rejected with the contract's reason, and the rest go through.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import sqlite_utils
from web3.exceptions import TransactionNotFound

from gridledger.chain.ledger import Ledger
from gridledger.encoding import from_hex, to_hex
from gridledger.errors import LedgerError
from gridledger.market.orders import Order, SignedOrder
from gridledger.store.database import find_order, write_transaction

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RelayPolicy:
    """When a batch goes: as soon as ``batch_size`` orders wait, or when the oldest has waited
    ``max_wait_s``."""

    batch_size: int = 100
    max_wait_s: float = 0.2


class Relayer:
    def __init__(self, ledger: Ledger, db: sqlite_utils.Database, policy: RelayPolicy = RelayPolicy()) -> None:
        self.ledger = ledger
        self.db = db
        self.policy = policy
        self.relayed = 0
        self.rejected = 0

    def seconds_until_due(self) -> float | None:
        """None if nothing waits; else how long until the next batch is due (0: now)."""
        row = self.db.execute("select count(*), min(accepted_at) from submissions where status = 'accepted'").fetchone()
        count, oldest = int(row[0]), row[1]
        if count == 0:
            return None
        if count >= self.policy.batch_size:
            return 0.0
        return max(0.0, float(oldest) + self.policy.max_wait_s - time.time())

    def relay_due(self, *, force: bool = False) -> int:
        """Relays the batches that are due (all waiting orders if ``force``); returns orders relayed."""
        sent = 0
        while True:
            wait = self.seconds_until_due()
            if wait is None or (wait > 0 and not force):
                return sent
            rows = self.db.execute_returning_dicts(
                "select * from submissions where status = 'accepted' order by rowid limit ?", [self.policy.batch_size]
            )
            rows = self._skip_already_recorded(rows)
            if rows:
                sent += self._send(rows)

    def process_cancellations(self) -> int:
        """Sends every pending signed cancellation; returns how many were processed."""
        pending = self.db.execute_returning_dicts("select * from cancellations where status = 'pending' order by at")
        for c in pending:
            order_hash = c["order_hash"]
            row = find_order(self.db, order_hash)
            if row is None:
                raise LedgerError(f"order {order_hash} is unknown to the facilitator")
            with write_transaction(self.db):
                # An order not yet relayed never will be; the cancellation still burns its nonce on-chain.
                self.db.execute(
                    "update submissions set status = 'withdrawn', reason = ? "
                    "where order_hash = ? and status = 'accepted'",
                    ["cancelled by the prosumer before it reached the ledger", order_hash],
                )
            try:
                receipt = self.ledger.cancel_order_by_sig(Order.from_row(row), from_hex(c["r"]), from_hex(c["vs"]))
            except LedgerError as exc:
                self._set_cancellation(order_hash, "rejected", reason=str(exc))
            else:
                self._set_cancellation(order_hash, "done", tx_hash=to_hex(receipt["transactionHash"]))
        return len(pending)

    def requeue_lost(self) -> int:
        """Queues again relayed orders whose transaction the node no longer knows (a node restarted
        from an older state lost it before the index saw it); returns how many."""
        rows = self.db.execute(
            "select distinct tx_hash from submissions where status = 'relayed' and tx_hash != '' "
            "and order_hash not in (select order_hash from orders)"
        ).fetchall()
        lost = []
        for (tx_hash,) in rows:
            try:
                self.ledger.chain.w3.eth.get_transaction(tx_hash)
            except TransactionNotFound:
                lost.append(tx_hash)
        if not lost:
            return 0
        marks = ",".join("?" * len(lost))
        with write_transaction(self.db):
            count = self.db.execute(
                "update submissions set status = 'accepted', tx_hash = '', relayed_at = null "
                f"where status = 'relayed' and tx_hash in ({marks}) "
                "and order_hash not in (select order_hash from orders)",
                lost,
            ).rowcount
        log.warning("%d relayed orders are in no transaction the node knows: queued for relay again", count)
        return int(count)

    # ─────────────── internals ───────────────

    def _set_cancellation(self, order_hash: str, status: str, *, reason: str = "", tx_hash: str = "") -> None:
        with write_transaction(self.db):
            self.db.execute(
                "update cancellations set status = ?, reason = ?, tx_hash = ? where order_hash = ?",
                [status, reason, tx_hash, order_hash],
            )

    def _skip_already_recorded(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        hashes = [r["order_hash"] for r in rows]
        marks = ",".join("?" * len(hashes))
        on_chain = {
            r[0] for r in self.db.execute(f"select order_hash from orders where order_hash in ({marks})", hashes)
        }
        if on_chain:
            log.info("%d accepted orders are already on the ledger (relayed before a restart)", len(on_chain))
            self._mark_relayed(sorted(on_chain), tx_hash="")
        return [r for r in rows if r["order_hash"] not in on_chain]

    def _send(self, rows: Sequence[dict[str, Any]]) -> int:
        signed = [
            SignedOrder(Order.from_row(r), from_hex(r["order_hash"]), from_hex(r["r"]), from_hex(r["vs"])) for r in rows
        ]
        try:
            (receipt,) = self.ledger.relay_orders(signed, batch_size=len(signed))
        except LedgerError as exc:
            if len(rows) == 1:
                self._reject(rows[0]["order_hash"], exc)
                return 0
            half = len(rows) // 2
            return self._send(rows[:half]) + self._send(rows[half:])
        self._mark_relayed([r["order_hash"] for r in rows], tx_hash=to_hex(receipt["transactionHash"]))
        return len(rows)

    def _mark_relayed(self, hashes: Sequence[str], *, tx_hash: str) -> None:
        now = time.time()
        with write_transaction(self.db):
            self.db.conn.executemany(
                "update submissions set status = 'relayed', tx_hash = ?, relayed_at = ? where order_hash = ?",
                [(tx_hash, now, h) for h in hashes],
            )
        self.relayed += len(hashes)

    def _reject(self, order_hash: str, exc: LedgerError) -> None:
        log.info("order %s rejected by the ledger: %s", order_hash, exc)
        with write_transaction(self.db):
            self.db.execute(
                "update submissions set status = 'rejected', reason = ?, error = ? where order_hash = ?",
                [str(exc), exc.error, order_hash],
            )
        self.rejected += 1
