"""The operating parties' writes, each a signed request: registration (facilitator), meter
readings (meter operator), clearing and settlement (facilitator). Each checks what it can at
once, then returns the future of its chain work (the API awaits it)."""

from __future__ import annotations

from concurrent.futures import Future
from typing import Any

from gridledger.chain.ledger import fills_hash
from gridledger.encoding import from_hex, to_hex
from gridledger.errors import ConflictError
from gridledger.facilitation import Dispatch, SlotInputs, commit, facilitate, register_participant
from gridledger.flex.coordination import FlexUnit
from gridledger.flex.products import Direction
from gridledger.market.orders import RecordedOrder
from gridledger.service import auth
from gridledger.service.context import ServiceContext
from gridledger.units import SLOT_SECONDS, slot_energy_wh

ROLES = ("facilitator", "meter operator", "DSO")


class Operations:
    def __init__(self, ctx: ServiceContext) -> None:
        self.ctx = ctx

    def authorise(self, headers: Any, method: str, path: str, body: bytes, *, role: str) -> str:
        roles = self.ctx.ledger.roles
        expected = {
            "facilitator": roles.facilitator.address,
            "meter operator": roles.meter.address,
            "DSO": roles.dso.address,
        }[role]
        return auth.verify_request(self.ctx.db, headers, method, path, body, role=role, expected=expected)

    def register(self, account: str, *, meter_id: int, bus: int, capacity_w: int) -> Future[None]:
        ctx = self.ctx
        ctx.model.require_bus(bus)  # a bus the model lacks is refused before the chain sees it

        def act() -> None:
            register_participant(ctx.ledger, ctx.model, account, meter_id=meter_id, bus=bus, capacity_w=capacity_w)
            ctx.indexer.sync()

        return ctx.worker.call(act)

    def post_meter_readings(self, delivery_start: int, readings: dict[str, int]) -> Future[None]:
        ctx = self.ctx

        def act() -> None:
            ctx.ledger.post_meter_readings(delivery_start, readings)
            ctx.indexer.sync()

        return ctx.worker.call(act)

    def clear_slot(self, delivery_start: int) -> Future[None]:
        """Runs the slot's facilitation (``facilitation.facilitate``) on what the index holds of
        the chain, then records it (``facilitation.commit``)."""
        ctx = self.ctx
        ctx.require_known_slot(delivery_start)

        def act() -> None:
            ctx.relayer.relay_due(force=True)
            ctx.indexer.sync()
            slot = facilitate(ctx.model, ctx.batch_engine(), self.slot_inputs(delivery_start))
            commit(ctx.ledger, ctx.worker_reports, ctx.model, slot)
            ctx.indexer.sync()

        return ctx.worker.call(act)

    def settle_slot(self, delivery_start: int) -> Future[None]:
        ctx = self.ctx
        slot = ctx.slot_row(delivery_start)

        def act() -> None:
            recorded = self._recorded(delivery_start, statuses=("filled", "unfilled"))
            filled = {
                r["order_hash"]: r["filled_wh"]
                for r in ctx.worker_rows("select * from fills where delivery_start = ?", delivery_start)
            }
            fills = [(r.order_hash, filled.get(to_hex(r.order_hash), 0)) for r in recorded]
            local = to_hex(fills_hash(fills))
            if local != slot["fills_hash"]:
                raise ConflictError(
                    f"the index's fills of slot {delivery_start} hash to {local}, the ledger's to "
                    f"{slot['fills_hash']}: the index is behind or corrupt; nothing was sent"
                )
            ctx.ledger.settle(delivery_start, [(r.order, f) for r, (_, f) in zip(recorded, fills, strict=True)])
            ctx.indexer.sync()

        return ctx.worker.call(act)

    # ─────────────── the facilitation's inputs, from the index (chain thread) ───────────────

    def slot_inputs(self, delivery_start: int) -> SlotInputs:
        return SlotInputs(
            delivery_start,
            self.ctx.baseline_ref(delivery_start),
            self._recorded(delivery_start, statuses=("open",)),
            {r["account"]: r["bus"] for r in self.ctx.worker_rows("select account, bus from participants")},
            self._flex_units(delivery_start),
            self._dispatched(delivery_start),
            network_charge_per_kwh=self.ctx.ledger.network_tariff(delivery_start),
        )

    def _recorded(self, delivery_start: int, *, statuses: tuple[str, ...]) -> list[RecordedOrder]:
        """The slot's orders in the index with one of ``statuses``, in arrival order on the ledger."""
        marks = ",".join("?" * len(statuses))
        rows = self.ctx.worker_rows(
            f"select * from orders where delivery_start = ? and status in ({marks}) order by block, log_index",
            delivery_start,
            *statuses,
        )
        return [RecordedOrder.from_row(r) for r in rows]

    def _flex_units(self, delivery_start: int) -> list[FlexUnit]:
        """Awarded offers whose window holds the slot and that the DSO has not activated for it."""
        rows = self.ctx.worker_rows(
            "select o.offer_id, o.bus, o.power_w, o.utilisation_price_per_kwh, r.direction "
            "from flex_offers o join flex_requests r using (request_id) "
            "where o.awarded = 1 and r.status = 'awarded' and r.window_start <= ? "
            "and ? < r.window_start + ? * r.window_slots "
            "and not exists (select 1 from flex_deliveries d where d.offer_id = o.offer_id and d.slot = ?) "
            "order by o.offer_id",
            delivery_start,
            delivery_start,
            SLOT_SECONDS,
            delivery_start,
        )
        return [
            FlexUnit(
                from_hex(r["offer_id"]),
                r["bus"],
                Direction(r["direction"]),
                slot_energy_wh(r["power_w"]),
                r["utilisation_price_per_kwh"],
            )
            for r in rows
        ]

    def _dispatched(self, delivery_start: int) -> list[Dispatch]:
        """What the DSO itself activated for the slot (before the facilitator clears it)."""
        rows = self.ctx.worker_rows(
            "select d.offer_id, o.bus, r.direction, d.ordered_wh from flex_deliveries d "
            "join flex_offers o using (offer_id) join flex_requests r using (request_id) "
            "where d.slot = ? and d.ordered_wh > 0 order by d.offer_id",
            delivery_start,
        )
        return [Dispatch(from_hex(r["offer_id"]), r["bus"], Direction(r["direction"]), r["ordered_wh"]) for r in rows]
