"""Every UFTP message the DSO side received or sent, kept in the facilitator's SQLite file.

Incoming messages are kept sealed (signature + XML), keyed by the keccak-256 the ledger records,
so anyone can fetch one and check it; outgoing ones as the XML the library sealed and sent.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

SCHEMA = """
create table if not exists uftp_messages (
    hash text primary key,            -- 0x keccak-256 of the sealed Body (incoming) or of the XML (outgoing)
    direction text not null,          -- 'in' or 'out'
    sender_domain text not null,
    recipient_domain text not null,
    type text not null,
    message_id text not null,
    conversation_id text,
    body blob not null,               -- sealed Body (in) or payload XML (out)
    result text,                      -- for incoming messages: Accepted or the rejection reason
    at integer not null
);
create unique index if not exists uftp_message_ids on uftp_messages (direction, sender_domain, message_id);
create table if not exists uftp_flex_requests (
    message_id text primary key,      -- the FlexRequest sent to one aggregator
    request_id integer not null,
    agr_domain text not null
);
create table if not exists uftp_offers (
    offer_id text primary key,        -- 0x on-chain offer id (EIP-712 hash)
    message_id text not null,
    message_hash text not null,
    agr_domain text not null,
    request_id integer not null,
    ordered integer not null default 0,
    settled integer not null default 0
);
create table if not exists uftp_portfolio (
    agr_domain text not null,         -- the aggregator that announced the connection (AGRPortfolioUpdate)
    ean text not null,                -- the connection's EntityAddress: ean. + its meter id, 18 digits
    account text not null,            -- the participant registered with that meter
    bus integer not null,             -- its connection bus in the published network model
    start_period text not null,       -- ISO dates; end_period null: open-ended
    end_period text,
    message_hash text not null,       -- the AGRPortfolioUpdate it came in
    primary key (agr_domain, ean)
);
create table if not exists uftp_mandates (
    account text not null,            -- the participant that signed (the meter's registered account)
    agr_domain text not null,         -- the aggregator it mandates
    meter_id integer not null,
    valid_from text not null,         -- ISO dates; valid_until null: open-ended
    valid_until text,
    nonce integer not null,           -- the newest (highest) is the one in force
    signature text not null,          -- EIP-712 (wallet/mandates.py), 0x hex
    primary key (account, agr_domain)
);
"""


class MessageStore:
    """A thread-safe handle on the UFTP tables (the endpoint's threads and the chain thread share it)."""

    def __init__(self, path: str | Path) -> None:
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._db.row_factory = sqlite3.Row
        self._lock = threading.Lock()
        with self._lock:
            self._db.executescript(SCHEMA)

    def execute(self, sql: str, *params: Any) -> None:
        with self._lock:
            self._db.execute(sql, params)

    def execute_many(self, statements: list[tuple[str, tuple[Any, ...]]]) -> None:
        """Runs ``statements`` in one transaction: all of them or none."""
        with self._lock:
            self._db.execute("begin")
            try:
                for sql, params in statements:
                    self._db.execute(sql, params)
            except BaseException:
                self._db.execute("rollback")
                raise
            self._db.execute("commit")

    def rows(self, sql: str, *params: Any) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(r) for r in self._db.execute(sql, params).fetchall()]

    def add_message(
        self,
        *,
        hash_: str,
        direction: str,
        sender: str,
        recipient: str,
        type_: str,
        message_id: str,
        conversation_id: str | None,
        body: bytes,
    ) -> bool:
        """Keeps a message; False if this sender already used ``message_id`` (UFTP's Duplicate Identifier)."""
        with self._lock:
            try:
                self._db.execute(
                    "insert into uftp_messages values (?, ?, ?, ?, ?, ?, ?, ?, null, ?)",
                    (hash_, direction, sender, recipient, type_, message_id, conversation_id, body, int(time.time())),
                )
            except sqlite3.IntegrityError:
                return False
        return True

    def set_result(self, hash_: str, result: str) -> None:
        self.execute("update uftp_messages set result = ? where hash = ?", result, hash_)

    def message(self, hash_: str) -> dict[str, Any] | None:
        rows = self.rows("select * from uftp_messages where hash = ?", hash_.lower())
        return rows[0] if rows else None
