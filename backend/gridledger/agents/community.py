"""A community that trades by itself: a facilitator with its market clock, prosumer agents, a
meter operator and the DSO, every party acting over HTTP with its own key.

The facilitator runs in this process (uvicorn on a free port of 127.0.0.1, an accelerated
clock on the embedded chain or a local devnet). What happens outside the API is what happens
outside a market too: the token issuer (the admin) mints each agent's starting money to its
wallet and the chain's time moves; every act of an agent, the meter operator and the DSO is a
signed HTTP request through ``api/client.py``.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

from gridledger.agents.ev import EV_EVERY, ElectricVehicle
from gridledger.agents.operators import Dso, MeterOperator
from gridledger.agents.prosumer import Battery, Prosumer
from gridledger.api.client import ApiError, GridLedgerClient
from gridledger.chain.connection import FIRST_PROSUMER_INDEX, derive_account
from gridledger.chain.ledger import Ledger
from gridledger.config import Settings
from gridledger.network.model import NetworkModel
from gridledger.network.profiles import capacity_w, day_profiles
from gridledger.service.facilitator import Facilitator
from gridledger.units import DAYS_IN_PROFILE_YEAR, SLOT_SECONDS, TOKEN_UNIT
from gridledger.wallet import keystore

STARTING_TOKENS = 50 * TOKEN_UNIT  # minted to each wallet; the agent deposits it by permit
DSO_TOKENS = 100 * TOKEN_UNIT  # the DSO's flexibility budget
KEYSTORE_PASSWORD = "community-agent"  # the simulation's own keystores, never a real key
POLL_S = 0.05


@dataclass
class CommunityResult:
    slots: list[int]
    agents: list[Prosumer]
    clearings: dict[int, dict[str, Any]] = field(default_factory=dict)
    settlements: dict[int, dict[str, Any]] = field(default_factory=dict)
    balances: dict[str, dict[str, int]] = field(default_factory=dict)
    flex_requests: list[dict[str, Any]] = field(default_factory=list)
    flex_status: dict[int, str] = field(default_factory=dict)  # request id → open | awarded | settled
    orders: int = 0
    ledger: Ledger | None = None  # the chain, to check what is on it after the run
    elapsed_s: float = 0.0


def run_community(
    *,
    agents: int,
    slots: int,
    seconds_per_slot: float,
    settings: Settings,
    keystore_dir: Path,
    start: int | None = None,
    dso_threshold_percent: float = 80.0,
    timeout_s: float = 600.0,
    progress: Callable[[str], None] = lambda _: None,
) -> CommunityResult:
    """Runs ``agents`` prosumers for ``slots`` slots from the first whose gate is still open
    (after ``start``, unix seconds, if given: a local chain's time moves there first)."""
    began = time.monotonic()
    ledger, _ = Ledger.open(settings, record=settings.chain != "embedded")
    model = NetworkModel.load(settings.network_model)
    if start is not None:
        ledger.chain.move_time_to(start)
    # The clock starts once everyone has joined: joining takes real seconds, which an
    # accelerated clock would turn into slots passing by.
    service = Facilitator(ledger, settings, model=model, seconds_per_slot=seconds_per_slot)
    server, thread, url = _serve(service)
    client = GridLedgerClient(url)
    try:
        now = service.on_chain(ledger.chain.now)
        community = _make_agents(model, settings, agents, now, keystore_dir)
        progress(f"facilitator at {url}; {len(community)} agents on {settings.network_model}")
        _join(client, service, community)
        clock = client.get("/clock")
        # The first slot whose gate is at least two slots away: every agent has time to order.
        first = (clock["now"] + clock["gate_closure_seconds"]) // SLOT_SECONDS * SLOT_SECONDS + 3 * SLOT_SECONDS
        calendar = [first + k * SLOT_SECONDS for k in range(slots)]
        dso = Dso(ledger.roles.dso, model, dso_threshold_percent)
        service.on_chain(lambda: ledger.mint(ledger.roles.dso.address, DSO_TOKENS))
        # Day ahead: the DSO forecasts the community's window before trading starts.
        posted = dso.request_if_congested(client, calendar, bid_deadline=first - SLOT_SECONDS)
        if posted is not None:
            progress(f"DSO: congestion forecast, flexibility request {posted['request_id']}")
            _offer_batteries(client, community, posted["request_id"])
        service.clock.start()
        meter = MeterOperator(ledger.roles.meter, community)
        result = CommunityResult(calendar, community, flex_requests=dso.requests)
        _trade(client, community, meter, calendar, result, began + timeout_s, progress)
        result.ledger = ledger
        for request in dso.requests:
            rid = int(request["request_id"])
            result.flex_status[rid] = client.get(f"/flex/requests/{rid}")["status"]
        for agent in community:
            result.balances[agent.name] = client.get(f"/wallet/{agent.account.address}")["market_balance"]
        result.elapsed_s = time.monotonic() - began
        return result
    finally:
        client.close()
        server.should_exit = True  # the app's shutdown stops the clock and the chain thread
        thread.join(timeout=120)


def _make_agents(model: NetworkModel, settings: Settings, count: int, now: int, directory: Path) -> list[Prosumer]:
    day = min(datetime.fromtimestamp(now, tz=UTC).timetuple().tm_yday, DAYS_IN_PROFILE_YEAR)
    profiles = day_profiles(count=count, day=day, grid=settings.network_model)
    storage = model.net.storage if "storage" in model.net else None
    result = []
    for k, profile in enumerate(profiles):
        name = f"agent-{k:03d}"
        key = derive_account(settings.mnemonic, FIRST_PROSUMER_INDEX + k)
        if keystore.path_of(name, directory=directory).exists():
            account = keystore.load(name, KEYSTORE_PASSWORD, directory=directory)
        else:
            account = keystore.create(name, KEYSTORE_PASSWORD, directory=directory, private_key=key.key.hex())
        battery = None
        if storage is not None and len(storage):
            at_bus = storage[storage.bus == profile.bus]
            if len(at_bus):
                unit = at_bus.iloc[0]
                capacity = int(float(unit.max_e_mwh) * 1e6)
                battery = Battery(int(abs(float(unit.p_mw)) * 1e6), capacity, capacity / 2)
        ev = ElectricVehicle() if k % EV_EVERY == EV_EVERY - 1 else None
        result.append(Prosumer(name, account, profile, battery, seed=k, ev=ev))
    return result


def _join(client: GridLedgerClient, service: Facilitator, community: list[Prosumer]) -> None:
    """Registration (the facilitator's signed request); money minted to the wallet by the token's
    issuer (outside the market, as a bank would pay it in), then deposited by the agent's permit."""
    ledger = service.ctx.ledger
    for k, agent in enumerate(community):
        # The EV's charger comes on top of the household's peak (orders above capacity are refused).
        capacity = capacity_w(agent.profile, floor_w=10_000) + (agent.ev.power_w if agent.ev is not None else 0)
        body = {"account": agent.account.address, "meter_id": 10_000 + k, "bus": agent.bus, "capacity_w": capacity}
        client.request("POST", "/participants", body=body, signer=ledger.roles.facilitator)
        service.on_chain(partial(ledger.mint, agent.account.address, STARTING_TOKENS))
        client.deposit(agent.account, STARTING_TOKENS)


def _offer_batteries(client: GridLedgerClient, community: list[Prosumer], request_id: int) -> None:
    """Agents with a battery offer its power as upward flexibility (their documented response)."""
    for agent in community:
        if agent.battery is not None:
            client.offer(
                agent.account,
                request_id,
                power_w=agent.battery.power_w,
                availability_price_per_kwh=20_000,
                utilisation_price_per_kwh=150_000,
            )


def _trade(
    client: GridLedgerClient,
    community: list[Prosumer],
    meter: MeterOperator,
    calendar: list[int],
    result: CommunityResult,
    deadline: float,
    progress: Callable[[str], None],
) -> None:
    ordered: set[int] = set()
    while True:
        clock = client.get("/clock")
        now, gate = clock["now"], clock["gate_closure_seconds"]
        for slot in calendar:
            # Order while the gate is open with time to spare; meter once delivered.
            if slot not in ordered and now < slot - gate - SLOT_SECONDS // 3:
                last = _last_price(client)
                placed = [p for a in community if (p := a.trade(client, slot, last_price_per_kwh=last)) is not None]
                result.orders += len(placed)
                ordered.add(slot)
                progress(f"slot {slot}: {len(placed)} orders")
            if now >= slot + SLOT_SECONDS and slot not in meter.posted:
                meter.post(client, slot)
        if all(s in meter.posted for s in calendar) and _settled(client, calendar):
            break
        if time.monotonic() > deadline:
            raise TimeoutError(f"the community did not finish in time; the clock says {clock}")
        time.sleep(POLL_S)
    for slot in calendar:
        try:
            result.clearings[slot] = client.get(f"/slots/{slot}/clearing")
            result.settlements[slot] = client.get(f"/slots/{slot}/settlement")
        except ApiError as exc:  # a slot without orders was never cleared: nothing to show
            if exc.status != 404:
                raise


def _last_price(client: GridLedgerClient) -> int | None:
    """The market's last cleared price (GET /market/slots, newest first), None before any clearing."""
    prices = [s["clearing_price_per_kwh"] for s in client.get("/market/slots?limit=96")]
    return next((int(p) for p in prices if p is not None), None)


def _settled(client: GridLedgerClient, calendar: list[int]) -> bool:
    """Whether every slot of the calendar is settled, or was never cleared (no orders)."""
    for slot in calendar:
        try:
            if client.get(f"/slots/{slot}/clearing")["status"] != "settled":
                return False
        except ApiError as exc:
            if exc.status != 404:
                raise
    return True


def _serve(service: Facilitator) -> tuple[Any, threading.Thread, str]:
    """uvicorn in a thread on a free port; returns the server, its thread and its URL once it answers."""
    import uvicorn

    from gridledger.api.app import create_app

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    config = uvicorn.Config(create_app(service), host="127.0.0.1", port=port, log_level="warning")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="gridledger-api", daemon=True)
    thread.start()
    while not server.started:
        if not thread.is_alive():
            raise RuntimeError("the facilitator's API did not start")
        time.sleep(POLL_S)
    return server, thread, f"http://127.0.0.1:{port}"
