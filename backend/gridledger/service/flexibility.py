"""The flexibility desk: the DSO's requests, providers' offers, awards, activations,
measurements and settlements, as the API serves them.

Every write runs on the chain thread and returns once mined (flexibility is a handful of
transactions a day, so nothing is queued); the contract's checks are the authority and its
preflight refuses a bad write before anything is sent. Reads come from the index.
"""

from __future__ import annotations

import json
from concurrent.futures import Future
from dataclasses import replace
from typing import Any

from gridledger.encoding import from_hex, to_hex
from gridledger.errors import NotFoundError, SignatureError
from gridledger.facilitation import slot_schedule
from gridledger.flex.award import award
from gridledger.flex.products import BaselineMethod, Direction, FlexOffer, FlexRequest, ServiceType, SignedOffer
from gridledger.service.context import ServiceContext
from gridledger.store.database import write_transaction
from gridledger.units import SLOT_SECONDS
from gridledger.wallet.signing import offer_digest, recover_signer


class FlexDesk:
    def __init__(self, ctx: ServiceContext) -> None:
        self.ctx = ctx
        self.ledger = ctx.ledger
        self.flex_address = self.ledger.flex.address

    # ─────────────── writes ───────────────

    def post_request(self, request: FlexRequest) -> Future[int]:
        self.ctx.model.require_bus(request.congestion_bus)

        def act() -> int:
            request_id = self.ledger.post_flex_request(request)
            self.ctx.indexer.sync()
            return request_id

        return self.ctx.worker.call(act)

    def submit_offer(self, offer: FlexOffer, r: bytes, vs: bytes) -> Future[str]:
        digest = offer_digest(offer, chain_id=self.ctx.chain_id, flex_address=self.flex_address)
        signer = recover_signer(digest, r, vs)
        if signer != offer.provider:
            raise SignatureError(
                f"offer {to_hex(digest)}: the signature recovers to {signer or 'no address'}; expected the signature "
                f"of provider {offer.provider} over the offer's EIP-712 hash"
            )
        self.request(offer.request_id)  # 404 for an unknown request
        self.ctx.model.require_bus(offer.bus)  # an unknown connection point is refused here

        def act() -> str:
            self.ledger.submit_offer(SignedOffer(offer, digest, r, vs))
            self.ctx.indexer.sync()
            return to_hex(digest)

        return self.ctx.worker.call(act)

    def award(self, request_id: int) -> Future[None]:
        """Applies the published award rule at the window's first slot and commits the award."""
        row = self.request(request_id)

        def act() -> None:
            request = _request_of(row)
            offers = [
                (from_hex(o["offer_id"]), _offer_of(o, request.window_start))
                for o in self.ctx.indexer.db.execute_returning_dicts(
                    "select * from flex_offers where request_id = ? order by offer_id", [request_id]
                )
            ]
            # The grid as SimBench has it at the window's first slot, before any trade.
            ref = replace(self.ctx.baseline_ref(request.window_start), replaced_loads=())
            schedule = slot_schedule(self.ctx.model, ref, [], {})
            result = award(self.ctx.model, self.ctx.batch_engine(), schedule, request_id, request, offers)
            # Preflight first: a refused award (a repeat, too early) must not replace the stored report.
            prepared = self.ledger.prepare_award(request_id, result.awarded, result.hash)
            with write_transaction(self.ctx.indexer.db):
                self.ctx.indexer.db.execute(
                    "insert or replace into flex_award_reports (request_id, report_hash, report) values (?, ?, ?)",
                    [request_id, to_hex(result.hash), result.canonical.decode()],
                )
            self.ledger.tx.send_prepared(prepared)
            self.ctx.indexer.sync()

        return self.ctx.worker.call(act)

    def activate(self, offer_id: str, slot: int, power_w: int, *, by: str) -> Future[None]:
        self.offer(offer_id)

        def act() -> None:
            self.ledger.activate_flex(from_hex(offer_id), slot, power_w, by=by)
            self.ctx.indexer.sync()

        return self.ctx.worker.call(act)

    def measure(self, offer_id: str, slot: int, baseline_wh: int, actual_wh: int) -> Future[None]:
        self.offer(offer_id)

        def act() -> None:
            self.ledger.record_flex_measurement(from_hex(offer_id), slot, baseline_wh=baseline_wh, actual_wh=actual_wh)
            self.ctx.indexer.sync()

        return self.ctx.worker.call(act)

    def settle(self, request_id: int) -> Future[None]:
        self.request(request_id)

        def act() -> None:
            self.ledger.settle_flex(request_id)
            self.ctx.indexer.sync()

        return self.ctx.worker.call(act)

    # ─────────────── reads ───────────────

    def request(self, request_id: int) -> dict[str, Any]:
        rows = self.ctx.rows("select * from flex_requests where request_id = ?", request_id)
        if not rows:
            raise NotFoundError(f"there is no flexibility request {request_id}")
        return rows[0]

    def request_view(self, request_id: int) -> dict[str, Any]:
        row = self.request(request_id)
        offers = [
            self.offer_view(o["offer_id"])
            for o in self.ctx.rows(
                "select offer_id from flex_offers where request_id = ? order by offer_id", request_id
            )
        ]
        return {
            **row,
            "service": ServiceType(row["service"]).name.lower(),
            "direction": Direction(row["direction"]).name.lower(),
            "baseline": BaselineMethod(row["baseline"]).name.lower(),
            "window_end": row["window_start"] + SLOT_SECONDS * row["window_slots"],
            "offers": offers,
        }

    def offer(self, offer_id: str) -> dict[str, Any]:
        rows = self.ctx.rows("select * from flex_offers where offer_id = ?", offer_id)
        if not rows:
            raise NotFoundError(f"there is no flexibility offer {offer_id}")
        return rows[0]

    def offer_view(self, offer_id: str) -> dict[str, Any]:
        row = self.offer(offer_id)
        deliveries = self.ctx.rows("select * from flex_deliveries where offer_id = ? order by slot", offer_id)
        return {**row, "awarded": bool(row["awarded"]), "deliveries": [_delivery(d) for d in deliveries]}

    def award_report(self, request_id: int) -> dict[str, Any]:
        self.request(request_id)
        rows = self.ctx.rows("select * from flex_award_reports where request_id = ?", request_id)
        if not rows:
            raise NotFoundError(f"request {request_id} has not been awarded here")
        return {
            "request_id": request_id,
            "report_hash": rows[0]["report_hash"],
            "report": json.loads(rows[0]["report"]),
        }


def _request_of(row: dict[str, Any]) -> FlexRequest:
    return FlexRequest(
        ServiceType(row["service"]),
        Direction(row["direction"]),
        BaselineMethod(row["baseline"]),
        row["congestion_bus"],
        row["power_w"],
        row["window_start"],
        row["window_slots"],
        row["bid_deadline"],
        row["max_availability_price_per_kwh"],
        row["max_utilisation_price_per_kwh"],
        row["min_performance_bps"],
    )


def _offer_of(row: dict[str, Any], window_start: int) -> FlexOffer:
    return FlexOffer(
        row["provider"],
        row["request_id"],
        window_start,
        row["power_w"],
        row["availability_price_per_kwh"],
        row["utilisation_price_per_kwh"],
        row["bus"],
        0,
    )


def _delivery(row: dict[str, Any]) -> dict[str, Any]:
    return {k: row[k] for k in row if k != "offer_id"} | {"measured": row["baseline_wh"] is not None}
