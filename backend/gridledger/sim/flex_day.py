"""The DSO's flexibility request in the market day, on-chain from escrow to settlement.

At the start of the day the DSO asks for a secure service (Up: consume less) at the weakest bus
among the participants' connection points during the evening peak (18:00–19:00 by default), with
a meter-before baseline. Every third prosumer on the congestion point's feeder (under the same
transformer: on an MV/LV grid, its LV grid) offers 2 kW of its household load, on a price ladder
that runs up to the request's caps; after the bid deadline the facilitator awards by the
published rule (``flex.award``); the DSO activates the awarded offers before each window slot;
the providers deliver (their meters read less, by a
performance drawn between 40 % and 110 %); the meter operator records baseline and actual;
after the window the request settles (crediting each provider's payment and the DSO's refund in
the contract), and every party claims its balance, so the wallets end the day paid.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

from web3.logs import DISCARD

from gridledger.chain.ledger import Ledger
from gridledger.facilitation import Dispatch, slot_schedule
from gridledger.flex.award import award
from gridledger.flex.baselines import meter_before_after
from gridledger.flex.products import BaselineMethod, Direction, FlexOffer, FlexRequest, ServiceType, SignedOffer
from gridledger.sim.grid_day import GridDay
from gridledger.sim.participants import Participant
from gridledger.units import SLOT_SECONDS, slot_energy_wh

WINDOW_FIRST_SLOT = 72  # 18:00
WINDOW_SLOTS = 4
BASELINE_SLOTS = 2  # meter before: the two slots before the window
OFFER_W = 2_000
LADDER_FLOOR_PERCENT = 40  # the cheapest offer asks 40 % of the DSO's caps
DSO_BUDGET = 100_000_000


@dataclass
class FlexOutcome:
    """What the day's flexibility request came to, for the summary."""

    request_id: int = 0
    congestion_bus: int = 0
    window_start: int = 0
    power_w: int = 0
    offers: int = 0
    awarded: int = 0
    awarded_power_w: int = 0
    ordered_wh: int = 0
    delivered_wh: int = 0
    availability_paid: int = 0
    utilisation_paid: int = 0
    refunded: int = 0
    escrow: int = 0
    note: str = ""
    deliveries: list[dict[str, Any]] = field(default_factory=list)


class FlexCycle:
    """Hooks the request's life into the day's slot loop (see ``run_market_day``)."""

    def __init__(
        self, ledger: Ledger, grid: GridDay, participants: list[Participant], day_start: int, rng: random.Random
    ) -> None:
        self.ledger = ledger
        self.rng = rng
        self.participants = participants
        self.window = [day_start + (WINDOW_FIRST_SLOT + k) * SLOT_SECONDS for k in range(WINDOW_SLOTS)]
        self.outcome = FlexOutcome(window_start=self.window[0])
        self.readings: dict[int, dict[str, int]] = {}
        self.awarded: list[tuple[SignedOffer, Participant]] = []
        self.settled = False
        dso = ledger.roles.dso
        ledger.fund_gas(dso.address, 10**18)
        ledger.mint(dso.address, DSO_BUDGET)

        self.schedule = slot_schedule(grid.model, grid.baseline(WINDOW_FIRST_SLOT), [], {})
        self.grid = grid
        vm, _, _ = grid.engine.solve(self.schedule)
        buses = {p.profile.bus for p in participants}
        bus = min(buses, key=lambda b: (float(vm[0, grid.model.bus_position[b]]), b))
        self.request = FlexRequest(
            ServiceType.SECURE,
            Direction.UP,
            BaselineMethod.METER_BEFORE_AFTER,
            congestion_bus=bus,
            power_w=3 * OFFER_W,
            window_start=self.window[0],
            window_slots=WINDOW_SLOTS,
            bid_deadline=self.window[0] - 2 * 3_600,
            max_availability_price_per_kwh=50_000,
            max_utilisation_price_per_kwh=250_000,
        )
        self.outcome.congestion_bus, self.outcome.power_w = bus, self.request.power_w
        self.outcome.escrow = self.request.max_spend
        self.request_id = ledger.post_flex_request(self.request)
        self.outcome.request_id = self.request_id
        self.offers: list[tuple[SignedOffer, Participant]] = []
        feeder = grid.feeder_buses(bus)
        providers = [p for p in participants if p.profile.bus in feeder][::3]
        for offer, p in zip(offers_for(self.request, self.request_id, providers), providers, strict=True):
            signed = ledger.sign_offer(p.account, offer)
            ledger.submit_offer(signed)
            self.offers.append((signed, p))
        self.outcome.offers = len(self.offers)

    def before_slot(self, ds: int) -> None:
        """Called when the chain's clock is just before slot ``ds``'s gate: award, then activate."""
        now = self.ledger.chain.now()
        if not self.awarded and self.request.bid_deadline < now < self.request.window_start and self.offers:
            result = award(
                self.grid.model,
                self.grid.engine,
                self.schedule,
                self.request_id,
                self.request,
                [(s.offer_id, s.offer) for s, _ in self.offers],
            )
            self.ledger.award_flex(self.request_id, result.awarded, result.hash)
            chosen = set(result.awarded)
            self.awarded = [(s, p) for s, p in self.offers if s.offer_id in chosen]
            self.outcome.awarded = len(self.awarded)
            self.outcome.awarded_power_w = sum(s.offer.power_w for s, _ in self.awarded)
            if not self.awarded:
                self.outcome.note = "no offer relieved the congestion point enough to be awarded"
        if ds in self.window:
            for signed, _ in self.awarded:
                self.ledger.activate_flex(signed.offer_id, ds, signed.offer.power_w)

    def dispatched(self, ds: int) -> list[Dispatch]:
        """The DSO's activations for slot ``ds`` (the network check includes their relief)."""
        if ds not in self.window:
            return []
        return [
            Dispatch(s.offer_id, p.profile.bus, Direction.UP, slot_energy_wh(s.offer.power_w)) for s, p in self.awarded
        ]

    def adjust_readings(self, ds: int, readings: dict[str, int]) -> dict[str, int]:
        """The providers' meters in an activated slot read less: they delivered (some of) it."""
        self.readings[ds] = dict(readings)
        if ds not in self.window:
            return readings
        adjusted = dict(readings)
        for signed, p in self.awarded:
            ordered = slot_energy_wh(signed.offer.power_w)
            performance = self.rng.uniform(0.4, 1.1)
            adjusted[p.address] = readings[p.address] - round(ordered * performance)
        self.readings[ds] = adjusted
        return adjusted

    def after_metering(self, ds: int) -> None:
        """Measures each awarded offer in a window slot; settles after the last one."""
        if ds not in self.window:
            return
        for signed, p in self.awarded:
            history = {s: r[p.address] for s, r in self.readings.items()}
            baseline = meter_before_after(history, self.request.window_start, WINDOW_SLOTS, before=BASELINE_SLOTS)
            actual = self.readings[ds][p.address]
            self.ledger.record_flex_measurement(signed.offer_id, ds, baseline_wh=baseline, actual_wh=actual)
            d = self.ledger.flex_delivery(signed.offer_id, ds)
            self.outcome.ordered_wh += int(d["ordered_wh"])
            self.outcome.delivered_wh += min(int(d["delivered_wh"]), int(d["ordered_wh"]))
            self.outcome.deliveries.append({"slot": ds, "provider": p.address, **d})
        if ds == self.window[-1]:
            self.settle()

    def settle(self) -> None:
        if self.settled:
            return
        receipt = self.ledger.settle_flex(self.request_id)
        for event in self.ledger.flex.events.OfferSettled().process_receipt(receipt, errors=DISCARD):
            self.outcome.availability_paid += int(event["args"]["availabilityPayment"])
            self.outcome.utilisation_paid += int(event["args"]["utilisationPayment"])
        (total,) = self.ledger.flex.events.RequestSettled().process_receipt(receipt, errors=DISCARD)
        self.outcome.refunded = int(total["args"]["refunded"])
        self.settled = True
        # Settlement only credits (pull payments): each party takes its balance, as a wallet would.
        for account in [p.account for _, p in self.awarded] + [self.ledger.roles.dso]:
            if self.ledger.flex_claimable(account.address) > 0:
                if self.ledger.chain.w3.eth.get_balance(account.address) == 0:  # onboarded without gas money
                    self.ledger.fund_gas(account.address, 10**18)
                self.ledger.claim_flex(account)


def offers_for(request: FlexRequest, request_id: int, providers: list[Participant]) -> list[FlexOffer]:
    """Each provider's offer of OFFER_W at its own bus, priced on a ladder from LADDER_FLOOR of the
    request's caps (the cheapest) up to the caps (the dearest).

    The prices answer the request: the ladder used to rise by a fixed step per offer (10,000 +
    2,000·n for availability) whatever the caps, so the 21st offer was above the DSO's 50,000
    cap and `gridledger demo --prosumers 104` stopped at onboarding; a ladder spread between the
    caps' bounds stays inside them for any number of offers."""
    steps = max(len(providers) - 1, 1)

    def rung(cap: int, n: int) -> int:
        low = cap * LADDER_FLOOR_PERCENT // 100
        return low + (cap - low) * n // steps

    return [
        FlexOffer(
            p.address,
            request_id,
            request.window_start,
            OFFER_W,
            rung(request.max_availability_price_per_kwh, n),
            rung(request.max_utilisation_price_per_kwh, n),
            p.profile.bus,
            0,
        )
        for n, p in enumerate(providers)
    ]


def covers_window(first_slot: int, slots: int) -> bool:
    """Whether a run of ``slots`` from ``first_slot`` has the request's baseline slots and window."""
    return first_slot <= WINDOW_FIRST_SLOT - BASELINE_SLOTS and first_slot + slots >= WINDOW_FIRST_SLOT + WINDOW_SLOTS
