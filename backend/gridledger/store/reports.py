"""Network validation reports, stored whole: the chain holds only their hashes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import sqlite_utils

from gridledger.encoding import to_hex
from gridledger.network.validation import NetworkReport
from gridledger.store.database import write_transaction

TABLE = "network_reports"


class ReportStore:
    """One row per (market, slot): the canonical report bytes and what the API needs to list it."""

    def __init__(self, where: str | Path | sqlite_utils.Database) -> None:
        if isinstance(where, sqlite_utils.Database):
            self.db = where
        else:
            path = Path(where)
            path.parent.mkdir(parents=True, exist_ok=True)
            self.db = sqlite_utils.Database(path)
        self.table = self.db.table(TABLE)
        self.table.create(
            {
                "market": str,
                "delivery_start": int,
                "report_hash": str,
                "model_version": str,
                "passed": int,
                "curtailed_wh": int,
                "report": str,
            },
            pk=("market", "delivery_start"),
            if_not_exists=True,
        )

    def save(self, market: str, report: NetworkReport) -> None:
        curtailed = sum(c["curtailed_wh"] for c in report.curtailments if c["side"] == "sell")
        with write_transaction(self.db):
            self._upsert(market, report, curtailed)

    def _upsert(self, market: str, report: NetworkReport, curtailed: int) -> None:
        self.table.upsert(
            {
                "market": market,
                "delivery_start": report.delivery_start,
                "report_hash": to_hex(report.hash),
                "model_version": report.model_version,
                "passed": int(report.check.passed),
                "curtailed_wh": curtailed,
                "report": report.canonical().decode(),
            },
            pk=("market", "delivery_start"),
        )

    def get(self, market: str, delivery_start: int) -> dict[str, Any] | None:
        rows = list(self.table.rows_where("market = ? and delivery_start = ?", [market, delivery_start]))
        if not rows:
            return None
        row = rows[0]
        return {**row, "report": json.loads(row["report"])}
