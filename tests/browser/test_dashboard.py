"""The dashboard in a real browser (Debian's Chromium through Playwright) against `gridledger serve`
as its own process on an anvil node: a prosumer signs orders in the page with a key kept in the
browser, sees them on-chain, cancels one; another signs through an injected EIP-1193 wallet
(``window.ethereum``, whose ``eth_signTypedData_v4`` this test answers with eth-account, an EIP-712
implementation independent of the page's), declining once; the operating parties clear, meter and
settle the slot and run a flexibility request through the API; every view then shows those numbers
(the network view every element's loading and voltage as GET /network/slots/{ds}/flows has them),
live updates arrive as server-sent events, and each view fits a 390 px phone screen.

Screenshots of each view go to ``artifacts/browser/`` (git ignores it)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount
from playwright.sync_api import Browser, Page, expect, sync_playwright
from tests.conftest import flex_request_body
from tests.integration.serving import DEPOSIT, eventually, serving

from gridledger.api.client import ApiError
from gridledger.paths import PROJECT_ROOT

pytestmark = pytest.mark.devnet

CHROMIUM = "/usr/bin/chromium"
SCREENSHOTS = PROJECT_ROOT / "artifacts" / "browser"
ZONE = "Europe/Berlin"  # the browser's time zone: the page shows local times, UTC on hover


class Events:
    """Reads GET /events in a thread for the whole test: every (kind, data) the server sent."""

    def __init__(self, url: str) -> None:
        self.received: list[tuple[str, dict[str, Any]]] = []
        self.content_type = ""
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._read, args=(url,), daemon=True)
        self._thread.start()

    def _read(self, url: str) -> None:
        with httpx.Client(timeout=httpx.Timeout(5, read=None)) as http, http.stream("GET", f"{url}/events") as r:
            self.content_type = r.headers["content-type"]
            kind = None
            for line in r.iter_lines():
                if self._stop.is_set():
                    return
                if line.startswith("event: "):
                    kind = line.removeprefix("event: ")
                elif line.startswith("data: ") and kind:
                    body = json.loads(line.removeprefix("data: "))
                    assert body["kind"] == kind
                    self.received.append((kind, body["data"]))

    def close(self) -> None:
        self._stop.set()


@pytest.fixture(scope="module")
def market(tmp_path_factory) -> Iterator[dict[str, Any]]:
    """anvil, `gridledger serve` on it, and two registered prosumers with 100 tokens each."""
    if not Path(CHROMIUM).is_file():
        pytest.fail(f"{CHROMIUM} is missing: install Debian's browser (apt-get install chromium); scripts/test.sh does")
    with serving(tmp_path_factory.mktemp("dashboard")) as served:
        alice, bob = served.prosumers(2)
        served.register([alice, bob])
        served.fund([alice, bob], DEPOSIT)
        events = Events(served.url)
        yield {
            "url": served.url,
            "api": served.api,
            "ledger": served.ledger,
            "roles": served.roles,
            "alice": alice,
            "bob": bob,
            "events": events,
        }
        events.close()


def found(api: Any, path: str) -> Any:
    """GET ``path``, or None while it is 404 (not there yet)."""
    try:
        return api.get(path)
    except ApiError as exc:
        if exc.status == 404:
            return None
        raise


def show(page: Page, url: str, view: str) -> None:
    """Opens a view and waits until it has drawn the API's data."""
    if page.url.endswith(f"/#{view}"):
        page.reload()
    elif page.url.startswith(url):  # the page is loaded: switch views as a user does, by the hash
        page.evaluate(f"delete document.body.dataset.rendered; location.hash = '#{view}'")
    else:
        page.goto(f"{url}/#{view}")
    expect(page.locator("body")).to_have_attribute("data-rendered", view, timeout=30_000)


def choose(page: Page, select: str, value: str, view: str) -> None:
    """Chooses an option that redraws the view, and waits for the redrawn view."""
    page.evaluate("delete document.body.dataset.rendered")
    page.locator(select).select_option(value)
    expect(page.locator("body")).to_have_attribute("data-rendered", view, timeout=30_000)


def loading_colour(value: float) -> str:
    """The page's colour for a loading in % (its legend's bins)."""
    for top, colour in ((25, "#81c784"), (50, "#2e7d32"), (80, "#c0ca33"), (100, "#ef6c00")):
        if value <= top:
            return colour
    return "#c62828"


def voltage_colour(vm_pu: float, limits: dict[str, float]) -> str:
    """The page's colour for a bus voltage in pu (its legend's bins: below the band, up to 0.95,
    0.98, 1.02, 1.05, the band's top, above)."""
    if vm_pu < limits["v_min_pu"]:
        return "#c62828"
    bins = ((0.95, "#ef6c00"), (0.98, "#c0ca33"), (1.02, "#2e7d32"), (1.05, "#64b5f6"), (limits["v_max_pu"], "#1565c0"))
    for top, colour in bins:
        if vm_pu <= top:
            return colour
    return "#6a1b9a"


def lowest_voltage_bus(flows: dict[str, Any]) -> int:
    """The bus with the slot's lowest voltage."""
    return int(min(flows["buses"], key=lambda b: b["vm_pu"])["index"])


def injected_wallet(
    browser: Browser, account: LocalAccount, chain_id: int, decisions: list[str], asked: list[dict[str, Any]]
) -> Page:
    """A page whose ``window.ethereum`` is an EIP-1193 provider for ``account``, as an extension
    injects one: it shares the account and the chain id, and hands ``eth_signTypedData_v4`` to
    this test, which signs with eth-account (``Account.sign_typed_data``) or, when the next of
    ``decisions`` is ``"decline"``, refuses as a wallet does when its user says no (code 4001).
    Every typed-data request is appended to ``asked``."""
    context = browser.new_context(viewport={"width": 1280, "height": 900}, timezone_id=ZONE, locale="en-US")

    def sign(address: str, typed_json: str) -> dict[str, Any]:
        assert address.lower() == account.address.lower(), address
        typed = json.loads(typed_json)
        asked.append(typed)
        if decisions.pop(0) == "decline":
            return {"declined": True}
        return {"signature": Account.sign_typed_data(account.key, full_message=typed).signature.to_0x_hex()}

    context.expose_function("walletSign", sign)
    context.add_init_script(
        """
        window.ethereum = {
          async request({ method, params }) {
            if (method === "eth_requestAccounts" || method === "eth_accounts") return [ADDRESS];
            if (method === "eth_chainId") return CHAIN_ID;
            if (method === "eth_signTypedData_v4") {
              const answer = await window.walletSign(params[0], params[1]);
              if (answer.declined) throw Object.assign(new Error("User rejected the request."), { code: 4001 });
              return answer.signature;
            }
            throw Object.assign(new Error(`${method} is not supported`), { code: 4200 });
          },
        };
        """.replace("ADDRESS", json.dumps(account.address)).replace("CHAIN_ID", json.dumps(hex(chain_id)))
    )
    return context.new_page()


def percent(value: float) -> str:
    """As the page writes a percentage (Intl, at most one decimal) in the en-US locale."""
    return f"{value:,.1f}".removesuffix(".0") + " %"


def test_a_prosumer_trades_in_the_browser_and_every_view_shows_the_slot(market) -> None:
    url, api, ledger, roles = market["url"], market["api"], market["ledger"], market["roles"]
    alice: LocalAccount = market["alice"]
    bob: LocalAccount = market["bob"]
    slot = (ledger.chain.now() // 900 + 4) * 900
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        context = browser.new_context(viewport={"width": 1280, "height": 900}, timezone_id=ZONE, locale="en-US")
        page = context.new_page()

        # The prosumer page: an unregistered key is told so in words, and its order refused.
        show(page, url, "prosumer")
        page.click("#new-key")
        expect(page.locator("#account")).to_contain_text("This account is not registered")
        page.click("#order-form button[type=submit]")
        expect(page.locator("#error")).to_contain_text("not registered: the facilitator must register it")

        # Alice's key, kept in the browser: her registration and balance in units.
        page.fill("#key", "0x" + alice.key.hex().removeprefix("0x"))
        page.click("#use-key")
        expect(page.locator("#address")).to_have_text(alice.address)
        expect(page.locator("#balance")).to_contain_text("100 tokens available, 0 tokens locked in escrow")
        expect(page.locator("#error")).to_be_hidden()

        # An order above her connection's capacity: the service's refusal shown in the page.
        form = page.locator("#order-form")
        form.locator("select[name=slot]").select_option(str(slot))
        form.locator("input[name=energy]").fill("6")  # 20 kW × 15 min = 5 kWh at most
        form.locator("button[type=submit]").click()
        expect(page.locator("#error")).to_contain_text("The service refused POST /orders (HTTP")
        assert api.get(f"/participants/{alice.address}")["next_nonce"] == 0  # nothing was recorded

        # Signed in the page: a buy of 2 kWh at ≤ 0.28, then a buy of 1 kWh at ≤ 0.10 to cancel.
        hashes = []
        for energy, price in (("2", "0.28"), ("1", "0.10")):
            form.locator("select[name=side]").select_option("buy")
            form.locator("select[name=slot]").select_option(str(slot))
            form.locator("input[name=energy]").fill(energy)
            form.locator("input[name=price]").fill(price)
            page.evaluate("document.querySelector('#order-result').textContent = ''")
            form.locator("button[type=submit]").click()
            expect(page.locator("#order-hash")).to_have_count(1)
            hashes.append(page.locator("#order-hash").inner_text())
            expect(page.locator("#error")).to_be_hidden()
        kept, cancelled = hashes
        for h in hashes:
            eventually(lambda h=h: api.get(f"/orders/{h}")["status"] == "on_chain")
        recorded = api.get(f"/orders/{kept}")
        assert recorded["order"] | {"prosumer": recorded["order"]["prosumer"].lower()} == {
            "prosumer": alice.address.lower(),
            "side": "buy",
            "delivery_start": slot,
            "energy_wh": 2_000,
            "price_per_kwh": 280_000,
            "nonce": 0,
            "expiry": slot,
        }
        assert recorded["relay"]["tx_hash"]  # relayed in a transaction, indexed from the chain's event
        # The page follows the ledger through server-sent events, without a reload.
        expect(page.locator(f".status[data-hash='{kept}']")).to_have_text("on_chain", timeout=30_000)
        page.click(f"button.cancel[data-hash='{cancelled}']")
        eventually(lambda: api.get(f"/orders/{cancelled}")["status"] == "cancelled")
        expect(page.locator(f".status[data-hash='{cancelled}']")).to_have_text("cancelled", timeout=30_000)

        # Bob sells 1.5 kWh at ≥ 0.09 from his own browser through its injected wallet: he first
        # declines the signature (EIP-1193 error 4001), which the page says in words, posting nothing.
        decisions: list[str] = []
        asked: list[dict[str, Any]] = []
        wallet_page = injected_wallet(browser, bob, ledger.chain.chain_id, decisions, asked)
        show(wallet_page, url, "prosumer")
        wallet_page.click("#injected")
        expect(wallet_page.locator("#address")).to_have_text(bob.address)
        expect(wallet_page.locator("#account")).to_contain_text("browser wallet (eth_signTypedData_v4)")
        bob_form = wallet_page.locator("#order-form")
        bob_form.locator("select[name=side]").select_option("sell")
        bob_form.locator("select[name=slot]").select_option(str(slot))
        bob_form.locator("input[name=energy]").fill("1.5")
        bob_form.locator("input[name=price]").fill("0.09")
        decisions.append("decline")
        bob_form.locator("button[type=submit]").click()
        expect(wallet_page.locator("#error")).to_have_text(
            "You declined the signature of the order in your wallet: nothing was sent."
        )
        assert api.get(f"/participants/{bob.address}/orders") == []
        assert api.get(f"/participants/{bob.address}")["next_nonce"] == 0
        decisions.append("sign")
        bob_form.locator("button[type=submit]").click()
        expect(wallet_page.locator("#order-hash")).to_have_count(1)
        expect(wallet_page.locator("#error")).to_be_hidden()
        bob_hash = wallet_page.locator("#order-hash").inner_text()
        assert "hashed it differently" not in wallet_page.locator("#order-result").inner_text()
        # What the wallet was asked to sign: the market's domain and the order as typed, as EIP-712 JSON.
        typed = asked[-1]
        assert (typed["primaryType"], typed["domain"]) == ("Order", api.get("/version")["eip712_domain"])
        assert typed["message"] | {"prosumer": typed["message"]["prosumer"].lower()} == {
            "prosumer": bob.address.lower(),
            "side": 1,
            "deliveryStart": str(slot),
            "energyWh": 1_500,
            "pricePerKWh": "90000",
            "nonce": "0",
            "expiry": str(slot),
        }
        eventually(lambda: api.get(f"/orders/{bob_hash}")["status"] == "on_chain")
        assert api.get(f"/orders/{bob_hash}")["order"]["prosumer"] == bob.address
        wallet_page.context.close()
        # A flexibility request at Bob's bus.
        flex = run_flexibility(market, slot)

        # The service's market clock clears the slot at its gate closure and settles it once the
        # meter operator (through the API) has posted every trader's reading.
        ledger.chain.move_time_to(slot - 300)
        cleared = eventually(lambda: found(api, f"/slots/{slot}/clearing"))
        assert (cleared["clearing_price_per_kwh"], cleared["traded_wh"]) == (185_000, 1_500)
        ledger.chain.move_time_to(slot + 900)
        readings = [{"account": alice.address, "net_wh": 1_500}, {"account": bob.address, "net_wh": -1_500}]
        api.request("POST", f"/slots/{slot}/meter-readings", body={"readings": readings}, signer=roles.meter)
        settled = eventually(lambda: (s := found(api, f"/slots/{slot}/settlement")) and s["status"] == "settled" and s)
        assert settled["net_payments"] == {alice.address: -277_500, bob.address: 277_500}

        # Live: the prosumer page (still open) shows the settled trade and the new balance.
        trades = page.locator("#my-trades")
        expect(trades).to_contain_text("1.5 kWh", timeout=30_000)
        expect(trades).to_contain_text("0.2775 tokens")
        expect(page.locator("#balance")).to_contain_text("99.7225 tokens available", timeout=30_000)
        page.screenshot(path=SCREENSHOTS / "prosumer.png", full_page=True)
        finish_flexibility(market, flex)

        # Market: the slot's row in units, local time with UTC on hover, the price chart, no clock.
        show(page, url, "market")
        row = page.locator(f"#slots tr[data-slot='{slot}']")
        for text in ("settled", "0.1850 tokens/kWh", "1.5 kWh", "2 kWh", "0 kWh"):
            expect(row).to_contain_text(text)  # bids 2 kWh: the cancelled 1 kWh does not count
        start = row.locator("time").first
        utc = datetime.fromtimestamp(slot, tz=UTC)
        assert start.get_attribute("title") == f"{utc:%Y-%m-%d %H:%M:%S} UTC"
        local = utc.astimezone(ZoneInfo(ZONE))
        assert f"{local.hour % 12 or 12}:{local:%M}" in start.inner_text()
        assert page.locator("#price-chart canvas").count() == 1
        clock = httpx.get(f"{url}/clock", timeout=10)
        if clock.status_code == 404:  # a service without the market clock (issue 13, items 1-3) says so
            expect(page.locator("#clock-body")).to_contain_text("No market clock")
        else:  # with it, the panel shows its figures
            state = clock.json()
            body = page.locator("#clock-body")
            expect(body).to_contain_text(f"{state['seconds_per_slot']:g} s")
            expect(body).to_contain_text(state["mode"])
            # The clock cleared and settled the slot itself: its panel says so (local time).
            settled_at = datetime.fromtimestamp(state["last_settled_slot"], tz=UTC).astimezone(ZoneInfo(ZONE))
            assert state["last_settled_slot"] == slot
            expect(body.locator("dd").nth(6)).to_contain_text(f"{settled_at.hour % 12 or 12}:{settled_at:%M}")
        page.screenshot(path=SCREENSHOTS / "market.png", full_page=True)

        # Network: the grid from the model, the slot's worst loadings as the stored report has them.
        grid = api.get("/network/grid")
        report = api.get(f"/slots/{slot}/network-report")["report"]
        show(page, url, "network")
        choose(page, "#network-slot", str(slot), "network")
        assert page.locator("#grid-svg circle.bus").count() == len(grid["buses"]) == 111
        assert page.locator("#grid-svg line").count() == len(grid["lines"]) + len(grid["trafos"])
        expect(page.locator("#worst-line")).to_contain_text(percent(report["check"]["max_line_loading_percent"]))
        expect(page.locator("#worst-trafo")).to_contain_text(percent(report["check"]["max_trafo_loading_percent"]))
        expect(page.locator("#curtailments")).to_contain_text("No trade was curtailed in this slot.")
        # Every element coloured by the slot's re-run power flow, its value on hover, with a legend.
        flows = api.get(f"/network/slots/{slot}/flows")
        assert flows["matches_report"] is True and flows["report_hash"] == cleared["network_report_hash"]
        lines = page.locator("#grid-svg line.line")
        assert lines.count() == len(flows["lines"])
        worst = max(flows["lines"], key=lambda e: e["loading_percent"])
        quiet = min(flows["lines"], key=lambda e: e["loading_percent"])
        for line in (worst, quiet):
            drawn = page.locator(f"#grid-svg line.line[data-index='{line['index']}']")
            assert drawn.get_attribute("stroke") == loading_colour(line["loading_percent"])
            expect(drawn.locator("title")).to_contain_text(f"{percent(line['loading_percent'])} loading")
        [trafo] = flows["trafos"]
        drawn = page.locator(f"#grid-svg line.trafo[data-index='{trafo['index']}']")
        assert drawn.get_attribute("stroke") == loading_colour(trafo["loading_percent"])
        expect(drawn.locator("title")).to_contain_text(f"{percent(trafo['loading_percent'])} loading")
        highest = max(flows["buses"], key=lambda b: b["vm_pu"])["index"]
        for bus in (b for b in flows["buses"] if b["index"] in (4, lowest_voltage_bus(flows), highest)):
            drawn = page.locator(f"#grid-svg circle.bus[data-index='{bus['index']}']")
            assert drawn.get_attribute("fill") == voltage_colour(bus["vm_pu"], grid["limits"])
            expect(drawn.locator("title")).to_contain_text(f"{bus['vm_pu']:.3f} pu")
        legend = page.locator("#grid-legend")
        for text in (
            "Line and transformer loading",
            "% of rating",
            "above 100 % (overloaded)",
            "Bus voltage",
            "pu of nominal",
        ):
            expect(legend).to_contain_text(text)
        page.screenshot(path=SCREENSHOTS / "network.png", full_page=True)

        # Flexibility: the request, its offer, the award, the activation and measurement, the payments.
        show(page, url, "flexibility")
        view = page.locator("#flex")
        expect(view).to_contain_text(f"Request #{flex['request_id']}: secure up, 10 kW at bus 4 — settled")
        for text in ("8 kW", "yes", "2 kWh", "3 kWh", "1.2 kWh", "1.8 kWh", "0.76 tokens", "3.24 tokens"):
            expect(view).to_contain_text(text)
        page.screenshot(path=SCREENSHOTS / "flexibility.png", full_page=True)

        # Audit: the slot re-run from public records and confirmed.
        show(page, url, "audit")
        audit_row = page.locator("#audits tr", has=page.locator(f"time[datetime='{utc:%Y-%m-%dT%H:%M:%S}.000Z']"))
        expect(audit_row).to_contain_text("confirmed")
        assert api.get(f"/audit/slots/{slot}") == {"delivery_start": slot, "confirmed": True, "differences": []}
        page.screenshot(path=SCREENSHOTS / "audit.png", full_page=True)

        # Phone width: every view fits 390 px without sideways scrolling of the page.
        phone = browser.new_context(viewport={"width": 390, "height": 844}, timezone_id=ZONE, locale="en-US")
        small = phone.new_page()
        for name in ("market", "network", "flexibility", "prosumer", "audit"):
            show(small, url, name)
            assert small.evaluate("document.documentElement.scrollWidth") <= 390, name
            small.screenshot(path=SCREENSHOTS / f"phone-{name}.png", full_page=True)
        browser.close()

    # The same changes went out as server-sent events, as they happened.
    events = market["events"]
    assert events.content_type.startswith("text/event-stream")
    seen = {
        (kind, d.get("order_hash") or d.get("delivery_start") or d.get("request_id")) for kind, d in events.received
    }
    for h in (kept, cancelled, bob_hash):
        assert ("order_accepted", h) in seen and ("order_on_chain", h) in seen
    assert ("order_cancelled", cancelled) in seen
    assert ("slot_cleared", slot) in seen and ("slot_settled", slot) in seen
    flex_states = [d["status"] for kind, d in events.received if kind == "flexibility"]
    # The feed sends a request's state as each poll (0.1 s) finds it: the clock's award can be
    # followed by the activation and settlement within one poll, so "awarded" may not show.
    assert flex_states[0] == "open" and flex_states[-1] == "settled", flex_states
    cleared_event = next(d for kind, d in events.received if kind == "slot_cleared" and d["delivery_start"] == slot)
    assert (cleared_event["clearing_price_per_kwh"], cleared_event["traded_wh"]) == (185_000, 1_500)


def run_flexibility(market: dict[str, Any], slot: int) -> dict[str, Any]:
    """The DSO asks for 10 kW up at Bob's bus for an hour 4 h after the slot; Bob offers 8 kW."""
    api, ledger, roles, bob = market["api"], market["ledger"], market["roles"], market["bob"]
    ledger.fund_gas(roles.dso.address, 10**18)
    ledger.mint(roles.dso.address, 50_000_000)
    body = flex_request_body(slot + 4 * 3_600)
    request = api.request("POST", "/flex/requests", body=body, signer=roles.dso)
    rid = request["request_id"]
    offer = api.offer(bob, rid, power_w=8_000, availability_price_per_kwh=50_000, utilisation_price_per_kwh=200_000)
    return {"request_id": rid, "offer": offer, "body": body}


def finish_flexibility(market: dict[str, Any], flex: dict[str, Any]) -> None:
    """Awards Bob's offer, activates it for the window's first slot (8 kW: 2 kWh ordered), measures
    1.2 kWh against a 3 kWh baseline (1.8 kWh delivered) and settles: 0.40 availability + 0.36
    utilisation paid, 3.24 of the 4 tokens escrowed refunded. Moves the chain's clock past the window."""
    api, ledger, roles = market["api"], market["ledger"], market["roles"]
    rid, offer_id, body = flex["request_id"], flex["offer"]["offer_id"], flex["body"]
    ledger.chain.move_time_to(body["bid_deadline"] + 1)
    report = eventually(lambda: found(api, f"/flex/requests/{rid}/award"))  # the market clock awards it
    assert [o["offer_id"] for o in report["report"]["offers"] if o["awarded"]] == [offer_id]
    start = body["window_start"]
    api.request(
        "POST", f"/flex/offers/{offer_id}/activations", body={"slot": start, "power_w": 8_000}, signer=roles.dso
    )
    ledger.chain.move_time_to(start + 4 * 900)
    measured = {"slot": start, "baseline_wh": 3_000, "actual_wh": 1_200}
    api.request("POST", f"/flex/offers/{offer_id}/measurements", body=measured, signer=roles.meter)
    settled = api.request("POST", f"/flex/requests/{rid}/settlement", signer=roles.facilitator)
    assert (settled["status"], settled["paid"], settled["refunded"]) == ("settled", 760_000, 3_240_000)
