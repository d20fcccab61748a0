"""The facilitator's SQLite file: the relay queue it owns, and the index of what the chain recorded.

Two kinds of tables live here and never mix:

- written by the API and the relayer (the facilitator's own records): ``submissions`` (every
  accepted order, before it reaches the chain), ``cancellations``, ``signed_requests`` (signed
  privileged requests already seen), ``network_reports`` (see ``store/reports.py``);
- written only by the indexer, from contract events: ``participants``, ``orders``, ``fills``,
  ``slots``, ``meter_readings``, ``settlements``, ``payments``, ``accounts``; and ``meta`` with
  the deployment this file belongs to and the last block processed.

Amounts are token base units, energy Wh, times unix seconds, hashes 0x-prefixed hex.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlite_utils

SCHEMA: dict[str, tuple[dict[str, Any], str | tuple[str, ...]]] = {
    "meta": ({"key": str, "value": str}, "key"),
    "submissions": (
        {
            "order_hash": str,  # rows are relayed in insertion (rowid) order
            "prosumer": str,
            "nonce": int,
            "side": int,
            "delivery_start": int,
            "energy_wh": int,
            "price_per_kwh": int,
            "expiry": int,
            "r": str,
            "vs": str,
            "status": str,  # accepted | relayed | rejected | withdrawn | abandoned (`gridledger migrate`)
            "reason": str,
            "error": str,
            "tx_hash": str,
            "accepted_at": float,
            "relayed_at": float,
        },
        "order_hash",
    ),
    "cancellations": (
        {"order_hash": str, "r": str, "vs": str, "status": str, "reason": str, "tx_hash": str, "at": float},
        "order_hash",
    ),
    # a signed request by the hash of its signer and message, whatever its signature's encoding
    "signed_requests": ({"request_hash": str, "signer": str, "at": float}, "request_hash"),
    "participants": (
        {
            "account": str,
            "meter_id": int,
            "bus": int,
            "capacity_w": int,
            "participant_index": int,  # the registry's number: meter readings are posted by it
            "block": int,
            "log_index": int,
        },
        "account",
    ),
    "orders": (
        {
            "order_hash": str,
            "prosumer": str,
            "delivery_start": int,
            "side": int,
            "energy_wh": int,
            "price_per_kwh": int,
            "nonce": int,
            "expiry": int,
            "status": str,  # open | cancelled | filled | unfilled | settled
            "filled_wh": int,
            "block": int,
            "log_index": int,
        },
        "order_hash",
    ),
    "fills": (
        {
            "order_hash": str,
            "prosumer": str,
            "delivery_start": int,
            "side": int,
            "filled_wh": int,
            "amount": int,
            "network_charge": int,  # a buy's network charge, paid at settlement
            "block": int,
        },
        "order_hash",
    ),
    "slots": (
        {
            "delivery_start": int,
            "status": str,  # cleared | settled
            "clearing_price_per_kwh": int,
            "network_tariff_per_kwh": int,
            "traded_wh": int,
            "fills_hash": str,
            "network_report_hash": str,
            "network_model_version": str,
            "cleared_block": int,
            "paid_to_sellers": int,
            "to_balancing": int,
            "from_balancing": int,
            "network_charges": int,
            "settled_block": int,
        },
        "delivery_start",
    ),
    "meter_readings": (
        {"delivery_start": int, "account": str, "net_wh": int, "block": int},
        ("delivery_start", "account"),
    ),
    "settlements": (
        {
            "order_hash": str,
            "prosumer": str,
            "delivery_start": int,
            "deviation_wh": int,
            "payment": int,
            "imbalance_charge": int,
            "network_charge": int,
            "block": int,
        },
        "order_hash",
    ),
    "payments": (
        {
            "block": int,
            "log_index": int,
            "account": str,
            "delivery_start": int,
            # deposit | withdrawal | purchase | sale | surplus_buyback | imbalance_charge | uncollected |
            # network_charge (a buyer's, negative; the DSO's account receives them, positive)
            "kind": str,
            "amount": int,  # signed: positive credits the account's market balance
            "order_hash": str,
        },
        ("block", "log_index"),  # log_index: the log's index · 2^20 + the item in it · 8 + the kind
    ),
    "accounts": (
        {"account": str, "available": int, "locked": int, "token_balance": int, "block": int},
        "account",
    ),
    "flex_requests": (
        {
            "request_id": int,
            "dso": str,
            "service": int,
            "direction": int,
            "baseline": int,
            "congestion_bus": int,
            "power_w": int,
            "window_start": int,
            "window_slots": int,
            "bid_deadline": int,
            "min_performance_bps": int,  # basis points of ordered energy a paid slot must deliver
            "max_availability_price_per_kwh": int,
            "max_utilisation_price_per_kwh": int,
            "escrow": int,
            "status": str,  # open | awarded | settled
            "awarded_power_w": int,
            "award_report_hash": str,
            "paid": int,
            "refunded": int,
        },
        "request_id",
    ),
    "flex_offers": (
        {
            "offer_id": str,
            "request_id": int,
            "provider": str,
            "power_w": int,
            "availability_price_per_kwh": int,
            "utilisation_price_per_kwh": int,
            "bus": int,
            "awarded": int,
            "availability_payment": int,
            "utilisation_payment": int,
        },
        "offer_id",
    ),
    "flex_deliveries": (
        {
            "offer_id": str,
            "slot": int,
            "activated_w": int,
            "ordered_wh": int,
            "baseline_wh": int,
            "actual_wh": int,
            "delivered_wh": int,
            "deficiency_wh": int,
        },
        ("offer_id", "slot"),
    ),
    "flex_award_reports": ({"request_id": int, "report_hash": str, "report": str}, "request_id"),
}

INDEXES: list[tuple[str, list[str], bool]] = [
    ("submissions", ["prosumer", "nonce"], True),
    ("submissions", ["status"], False),
    ("submissions", ["delivery_start"], False),
    ("orders", ["prosumer", "nonce"], False),
    ("orders", ["delivery_start", "block", "log_index"], False),
    ("fills", ["delivery_start"], False),
    ("fills", ["prosumer"], False),
    ("settlements", ["delivery_start"], False),
    ("payments", ["delivery_start"], False),
    ("payments", ["account"], False),
    ("flex_offers", ["request_id"], False),
]

INDEXED_TABLES = (
    "participants",
    "orders",
    "fills",
    "slots",
    "meter_readings",
    "settlements",
    "payments",
    "accounts",
    "flex_requests",
    "flex_offers",
    "flex_deliveries",
)


def open_database(path: str | Path) -> sqlite_utils.Database:
    """Opens (creating if needed) the facilitator's database, in WAL mode so that the API reads
    while the relayer and the indexer write."""
    if str(path) != ":memory:":
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(str(path), check_same_thread=False, timeout=30)
    db = sqlite_utils.Database(conn)
    if str(path) != ":memory:":
        db.execute("PRAGMA journal_mode=WAL")
    # NORMAL in WAL mode is durable against a crash of the service (not of the OS), cheap per commit.
    db.execute("PRAGMA synchronous=NORMAL")
    with db.atomic():
        for name, (columns, pk) in SCHEMA.items():
            db.table(name).create(columns, pk=pk, if_not_exists=True)
        for table, indexed, unique in INDEXES:
            db.table(table).create_index(indexed, unique=unique, if_not_exists=True)
    return db


@contextmanager
def write_transaction(db: sqlite_utils.Database) -> Iterator[sqlite_utils.Database]:
    """A transaction that takes the write lock up front (BEGIN IMMEDIATE). Two connections write
    this file (the API's and the chain thread's); a deferred transaction that read first could not
    upgrade to a write while the other one commits ("database is locked" without waiting), whereas
    an immediate one waits for the lock (busy timeout)."""
    if db.conn.in_transaction:  # nested: a savepoint inside the outer transaction
        with db.atomic():
            yield db
        return
    db.execute("BEGIN IMMEDIATE")
    try:
        yield db
    except BaseException:
        db.conn.rollback()
        raise
    db.conn.commit()


def find_order(db: sqlite_utils.Database, order_hash: str) -> dict[str, Any] | None:
    """An order by its hash: as the ledger recorded it if indexed, else as the API accepted it."""
    for table in ("orders", "submissions"):
        rows = db.execute_returning_dicts(f"select * from {table} where order_hash = ?", [order_hash])
        if rows:
            return rows[0]
    return None


def get_meta(db: sqlite_utils.Database, key: str) -> str | None:
    row = db.execute("select value from meta where key = ?", [key]).fetchone()
    return None if row is None else str(row[0])


def set_meta(db: sqlite_utils.Database, key: str, value: object) -> None:
    db.execute("insert or replace into meta (key, value) values (?, ?)", [key, str(value)])
