"""The operating parties of a community, acting over the API with their own keys.

- ``MeterOperator``: after each slot's delivery, posts every agent's metered net energy
  (``POST /slots/{ds}/meter-readings``, the meter operator's signed request).
- ``Dso``: runs a day-ahead forecast of its grid (the SimBench profiles of the hours ahead,
  through the published network model's power flow) and, where the forecast loading of a line
  or the transformer passes its threshold, posts a flexibility request for that window at the
  congested element's bus (``POST /flex/requests``, the DSO's signed request).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from eth_account.signers.local import LocalAccount

from gridledger.agents.prosumer import Prosumer
from gridledger.api.client import GridLedgerClient
from gridledger.facilitation import BaselineRef, slot_schedule
from gridledger.network.model import NetworkModel
from gridledger.network.validation import BatchEngine
from gridledger.units import SLOT_SECONDS


@dataclass
class MeterOperator:
    key: LocalAccount
    agents: Sequence[Prosumer]
    posted: set[int] = field(default_factory=set)

    def post(self, client: GridLedgerClient, delivery_start: int) -> int:
        """Posts the slot's readings once; returns how many meters it posted."""
        if delivery_start in self.posted:
            return 0
        readings = [{"account": a.account.address, "net_wh": a.plan(delivery_start)} for a in self.agents]
        client.request("POST", f"/slots/{delivery_start}/meter-readings", body={"readings": readings}, signer=self.key)
        self.posted.add(delivery_start)
        return len(readings)


@dataclass(frozen=True)
class Forecast:
    """The worst forecast loading of a window, and where."""

    delivery_start: int
    loading_percent: float
    element: str  # "line 12" | "transformer 0"
    bus: int  # the congestion point: the line's far end or the transformer's low-voltage bus


@dataclass
class Dso:
    key: LocalAccount
    model: NetworkModel
    threshold_percent: float = 80.0
    requests: list[dict[str, Any]] = field(default_factory=list)

    def forecast(self, slots: Sequence[int]) -> list[Forecast]:
        """The grid's loading in each slot as the profiles forecast it, before any trade."""
        engine = BatchEngine(self.model)
        net = self.model.net
        result = []
        for ds in slots:
            ref = BaselineRef.for_delivery(self.model, self.model.source, ds, [])
            (check,) = engine.run(slot_schedule(self.model, ref, [], {}))
            if check.max_trafo_loading_percent >= check.max_line_loading_percent and check.max_trafo >= 0:
                load, element = check.max_trafo_loading_percent, f"transformer {check.max_trafo}"
                bus = int(net.trafo.lv_bus.at[check.max_trafo])
            else:
                load, element = check.max_line_loading_percent, f"line {check.max_line}"
                bus = int(net.line.to_bus.at[check.max_line])
            result.append(Forecast(ds, load, element, bus))
        return result

    def request_if_congested(
        self, client: GridLedgerClient, slots: Sequence[int], *, bid_deadline: int, power_w: int = 10_000
    ) -> dict[str, Any] | None:
        """Posts one request covering the congested slots of ``slots`` (``None``: no congestion)."""
        congested = [f for f in self.forecast(slots) if f.loading_percent > self.threshold_percent]
        if not congested:
            return None
        first, last = congested[0].delivery_start, congested[-1].delivery_start
        worst = max(congested, key=lambda f: f.loading_percent)
        body = {
            "service": "secure",
            "direction": "up",
            "baseline": "meter_before_after",
            "congestion_bus": worst.bus,
            "power_w": power_w,
            "window_start": first,
            "window_slots": (last - first) // SLOT_SECONDS + 1,
            "bid_deadline": bid_deadline,
            "max_availability_price_per_kwh": 100_000,
            "max_utilisation_price_per_kwh": 300_000,
        }
        posted: dict[str, Any] = client.request("POST", "/flex/requests", body=body, signer=self.key)
        self.requests.append(posted | {"forecast": worst})
        return posted
