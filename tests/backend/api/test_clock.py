"""The market clock: gate closures clear and commit, delivered and metered slots settle, missing
readings are named, flexibility requests are awarded at their deadline, a restart resumes the
calendar; driven by ``tick(now)`` at chosen chain times, and once by the real loop at a fast pace."""

from __future__ import annotations

from fastapi.testclient import TestClient
from tests.backend.api.conftest import DEPOSIT, Api, start_api
from tests.backend.api.test_flexibility_api import flex  # noqa: F401  (fixture)

from gridledger.api.app import create_app
from gridledger.api.client import GridLedgerClient
from gridledger.config import Settings
from gridledger.market.orders import Side
from gridledger.service.facilitator import Facilitator
from gridledger.service.relayer import RelayPolicy

GATE = 300


def trade(api: Api, alice, bob, slot: int) -> tuple[str, str]:
    sell = api.client.place(alice, side=Side.SELL, delivery_start=slot, energy_wh=1_500, price_per_kwh=90_000)
    buy = api.client.place(bob, side=Side.BUY, delivery_start=slot, energy_wh=2_000, price_per_kwh=280_000)
    api.wait_for(sell["order_hash"], "on_chain")
    api.wait_for(buy["order_hash"], "on_chain")
    return sell["order_hash"], buy["order_hash"]


def readings(api: Api, slot: int, values: dict[str, int]) -> None:
    body = {"readings": [{"account": a, "net_wh": v} for a, v in values.items()]}
    api.client.request("POST", f"/slots/{slot}/meter-readings", body=body, signer=api.ledger.roles.meter)


def test_the_clock_clears_at_gate_closure_and_settles_once_every_reading_is_in(api, wallets) -> None:
    alice, bob = wallets
    clock = api.service.clock
    slot = api.next_slot()
    trade(api, alice, bob, slot)

    api.move_time_to(slot - GATE - 1)
    assert clock.tick(api.now()).cleared == []  # the gate is still open
    assert api.chain(lambda: api.ledger.slot_state(slot)).status == "open"

    api.move_time_to(slot - GATE)
    assert clock.tick(api.now()).cleared == [slot]
    state = api.chain(lambda: api.ledger.slot_state(slot))
    assert (state.status, state.clearing_price_per_kwh) == ("cleared", 185_000)
    assert api.client.get(f"/slots/{slot}/clearing")["traded_wh"] == 1_500  # committed on-chain and indexed

    # Delivered; the meter operator posts Alice's reading only: the slot waits, naming Bob.
    api.move_time_to(slot + 900)
    readings(api, slot, {alice.address: -1_500})
    assert clock.tick(api.now()).settled == []
    served = api.client.get("/clock")
    assert served["missing_readings"] == [
        {"delivery_start": slot, "accounts": [bob.address], "due": slot + 900 + 300, "late": False}
    ]
    assert (served["last_cleared_slot"], served["last_settled_slot"]) == (slot, None)
    api.move_time_to(slot + 900 + 301)
    clock.tick(api.now())
    assert api.client.get("/clock")["missing_readings"][0]["late"] is True

    readings(api, slot, {bob.address: 1_500})
    assert clock.tick(api.now()).settled == [slot]
    assert api.chain(lambda: api.ledger.slot_state(slot)).status == "settled"
    assert api.chain(lambda: api.ledger.account_of(alice.address)) == (DEPOSIT + 277_500, 0)
    assert api.chain(lambda: api.ledger.account_of(bob.address)) == (DEPOSIT - 277_500, 0)
    served = api.client.get("/clock")
    assert served["missing_readings"] == [] and served["last_settled_slot"] == slot
    assert served["running"] is False and served["mode"] == "wall clock"
    # Nothing happens twice: another round finds nothing to do.
    again = clock.tick(api.now())
    assert (again.cleared, again.settled) == ([], [])


def test_the_clock_awards_a_flexibility_request_after_its_bid_deadline(api, wallets, flex) -> None:  # noqa: F811
    _, bob = wallets
    posted, body = flex
    rid = posted["request_id"]
    api.client.offer(bob, rid, power_w=8_000, availability_price_per_kwh=50_000, utilisation_price_per_kwh=200_000)
    clock = api.service.clock
    api.move_time_to(body["bid_deadline"])
    assert clock.tick(api.now()).awarded == []  # the contract awards strictly after the deadline
    api.move_time_to(body["bid_deadline"] + 1)
    assert clock.tick(api.now()).awarded == [rid]
    assert api.chain(lambda: api.ledger.flex_request_status(rid)) == "awarded"
    assert api.client.get(f"/flex/requests/{rid}")["awarded_power_w"] == 8_000
    assert clock.tick(api.now()).awarded == []


def test_a_restarted_clock_clears_the_slots_it_missed_and_none_twice(ledger, tmp_path, semiurb5, wallets, api) -> None:
    alice, bob = wallets
    first = api.next_slot()
    second, third = first + 900, first + 1_800
    trade(api, alice, bob, first)
    trade(api, alice, bob, second)
    api.move_time_to(first - GATE)
    assert api.service.clock.tick(api.now()).cleared == [first]
    cleared_block = api.service.ctx.rows("select cleared_block from slots where delivery_start = ?", first)

    # A second service on the same chain and SQLite file (the first one stopped): the calendar
    # moved past two more gates while it was down.
    database = api.service.ctx.settings.database
    api.service.stop()
    policy = RelayPolicy(batch_size=100, max_wait_s=0.05)
    with start_api(ledger, database, semiurb5, policy) as again:
        again.move_time_to(third - GATE)
        report = again.service.clock.tick(again.now())
        assert report.cleared == [second] and report.skipped == [third]
        assert again.chain(lambda: again.ledger.slot_state(second)).status == "cleared"
        query = "select cleared_block from slots where delivery_start = ?"
        assert again.service.ctx.rows(query, first) == cleared_block
        cleared = again.chain(lambda: ledger.market.events.SlotCleared.get_logs(from_block=0))
        assert sorted(e["args"]["deliveryStart"] for e in cleared) == [first, second]  # each once
        assert again.client.get("/clock")["next_slot_to_clear"] == third + 900


def test_the_clock_runs_the_market_by_itself_at_two_seconds_a_slot(ledger, tmp_path, semiurb5, wallets, api) -> None:
    alice, bob = wallets
    # The fixture's service stops; one with its clock running takes over the same file and chain.
    database = api.service.ctx.settings.database
    api.service.stop()
    settings = Settings(chain="embedded", database=database, network_model=semiurb5.source)
    service = Facilitator(
        ledger, settings, model=semiurb5, policy=RelayPolicy(100, 0.05), clock=True, seconds_per_slot=2.0
    )
    with TestClient(create_app(service), raise_server_exceptions=False) as http:
        running = Api(service, GridLedgerClient(http=http), ledger)
        slot = (running.now() // 900 + 6) * 900  # ~10 s of real time before its gate closes
        trade(running, alice, bob, slot)
        running.eventually(lambda: running.client.get("/clock")["last_cleared_slot"] == slot, timeout=60)
        assert running.client.get(f"/slots/{slot}/clearing")["traded_wh"] == 1_500
        running.eventually(lambda: running.client.get("/clock")["missing_readings"], timeout=60)
        readings(running, slot, {alice.address: -1_500, bob.address: 1_500})
        running.eventually(lambda: running.client.get("/clock")["last_settled_slot"] == slot, timeout=60)
        clock = running.client.get("/clock")
        assert clock["running"] is True and clock["mode"] == "accelerated" and clock["seconds_per_slot"] == 2.0
        assert clock["now"] >= slot + 900 and clock["missing_readings"] == []
        assert running.chain(lambda: ledger.account_of(alice.address)) == (DEPOSIT + 277_500, 0)
