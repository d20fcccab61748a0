"""A running UFTP exchange: GridLedger's DSO endpoint (uvicorn in a thread, embedded chain) and an
aggregator made of USEF's shapeshifter-uftp, unmodified, in its own venv and process.

The aggregator's venv (shapeshifter-uftp 2.4.0 with FastAPI 0.139, which its service needs) is
built from PyPI once and cached in ``.build/uftp-agr-venv``.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from base64 import b64encode
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import pytest
import requests
import uvicorn
from eth_account.signers.local import LocalAccount
from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from nacl.signing import SigningKey
from tests.conftest import free_port, open_ledger

from gridledger.api import errors as api_errors
from gridledger.chain.ledger import Ledger
from gridledger.errors import GridLedgerError
from gridledger.flex.products import BaselineMethod, Direction, FlexRequest, ServiceType
from gridledger.network.model import NetworkModel
from gridledger.network.validation import BatchEngine
from gridledger.sim.participants import make_prosumers
from gridledger.uftp.cro import CRO_MESSAGE_PATH, CommonReference
from gridledger.uftp.gateway import UftpGateway
from gridledger.uftp.mapping import isp_of
from gridledger.uftp.registry import UftpRegistry
from gridledger.uftp.router import MESSAGE_PATH, make_router
from gridledger.uftp.store import MessageStore
from gridledger.units import DEFAULT_GRID
from gridledger.wallet.mandates import Mandate, sign_mandate

ROOT = Path(__file__).resolve().parents[3]
AGR_VENV = ROOT / ".build" / "uftp-agr-venv"
AGR_REQUIREMENTS = ["shapeshifter-uftp==2.4.0", "fastapi==0.139.2"]
TZ = "Europe/Amsterdam"
EAN = "ean.871685900000000042"
DSO_DOMAIN, AGR_DOMAIN, CRO_DOMAIN = "dso.gridledger.test", "agr.gridledger.test", "cro.gridledger.test"
OFFER_PRICE = "6.00"  # EUR for the whole option


def agr_python() -> Path:
    """The aggregator venv's interpreter, built from PyPI on first use."""
    python = AGR_VENV / "bin" / "python"
    stamp = AGR_VENV / ".installed"
    if not stamp.exists() or stamp.read_text() != " ".join(AGR_REQUIREMENTS):
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(AGR_VENV)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "--quiet", *AGR_REQUIREMENTS], check=True)
        stamp.write_text(" ".join(AGR_REQUIREMENTS))
    return python


def wait_for_port(port: int, timeout_s: float = 120) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    raise TimeoutError(f"nothing listens on port {port} after {timeout_s} s")


def keypair() -> tuple[str, str, bytes]:
    """A UFTP key pair as the library takes it: base64 secret (seed + public), base64 public, raw public."""
    key = SigningKey.generate()
    public = key.verify_key.encode()
    return b64encode(key.encode() + public).decode(), b64encode(public).decode(), public


@dataclass
class Exchange:
    ledger: Ledger
    gateway: UftpGateway
    provider: LocalAccount
    request: FlexRequest
    request_id: int
    dso_url: str
    agr_secret: str
    agr_public: bytes
    dso_public: str
    cro_public: str
    agr_log: Path
    chain_lock: threading.Lock
    outsider: LocalAccount  # a participant at a bus outside the congestion point's feeder

    def agr_messages(self, type_: str | None = None) -> list[dict[str, Any]]:
        """What the aggregator logged, whole lines only (a line still being written is left for
        the next read)."""
        if not self.agr_log.exists():
            return []
        text = self.agr_log.read_text()
        rows = [json.loads(line) for line in text[: text.rfind("\n") + 1].splitlines()]
        return [r for r in rows if type_ is None or r["type"] == type_]

    def dso_received(self, type_: str) -> list[dict[str, Any]]:
        """The messages of ``type_`` GridLedger received and has finished processing (result set)."""
        return self.gateway.store.rows(
            "select * from uftp_messages where direction = 'in' and type = ? and result is not null order by at", type_
        )

    def chain(self, fn: Callable[[], Any]) -> Any:
        with self.chain_lock:
            return fn()


def wait_until(check: Callable[[], Any], what: str, timeout_s: float = 60) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.1)
    raise TimeoutError(f"waited {timeout_s} s for {what}")


def window_start(ledger: Ledger) -> int:
    """A 4-slot window two hours or more ahead that lies within one local day in ``TZ``."""
    start = (ledger.chain.now() // 900 + 8) * 900
    while isp_of(start, TZ)[0] != isp_of(start + 3 * 900, TZ)[0]:
        start += 900
    return start


MANDATE_FROM = date(2026, 1, 1)


def post_mandate(
    url: str, ledger: Ledger, signer: LocalAccount, *, meter_id: int, nonce: int = 0, **changes: Any
) -> requests.Response:
    """POST /cro/mandates: ``signer``'s mandate to the test's aggregator for ``meter_id`` from
    2026 on, open-ended (``changes`` replace body fields after signing, to forge one)."""
    mandate = Mandate(AGR_DOMAIN, meter_id, MANDATE_FROM, None, nonce)
    signature = sign_mandate(signer, mandate, chain_id=ledger.chain.chain_id, registry_address=ledger.registry.address)
    body = {
        "aggregator": AGR_DOMAIN,
        "meter_id": meter_id,
        "valid_from": MANDATE_FROM.isoformat(),
        "valid_until": None,
        "nonce": nonce,
        "signature": signature,
    } | changes
    return requests.post(url + "/cro/mandates", json=body, timeout=10)


@pytest.fixture
def setup(ledger: Ledger) -> tuple[Ledger, LocalAccount, int, FlexRequest, int, str]:
    """A provider with a bound UFTP key and an open request at its bus (for offers made by hand)."""
    (provider,) = make_prosumers(ledger, count=1, deposit=1_000_000)
    bus = int(ledger.registry.functions.participant(provider.address).call()[1])
    ledger.fund_gas(ledger.roles.dso.address, 10**18)
    ledger.mint(ledger.roles.dso.address, 100_000_000)
    start = window_start(ledger)
    request = FlexRequest(
        ServiceType.SECURE, Direction.UP, BaselineMethod.NOMINATED, bus, 8_000, start, 4, start - 3_600, 0, 10**6
    )
    rid = ledger.post_flex_request(request)
    secret, _, public = keypair()
    ledger.tx.send(provider, ledger.flex.functions.bindUftpKey(public), action="bind")
    return ledger, provider, bus, request, rid, secret


@pytest.fixture(scope="module")
def exchange(build: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Exchange]:
    python = agr_python()
    ledger = open_ledger(build)
    engine = BatchEngine(NetworkModel.load(DEFAULT_GRID))
    lv_bus = min(b for b in engine.model.buses if len(engine.feeder_of(b)) < len(engine.model.buses))
    outside = min(set(engine.model.buses) - engine.feeder_of(lv_bus))
    provider, outsider = make_prosumers(ledger, count=2, deposit=1_000_000, buses=[lv_bus, outside])
    bus = int(ledger.registry.functions.participant(provider.address).call()[1])
    dso = ledger.roles.dso
    ledger.fund_gas(dso.address, 10**18)
    ledger.mint(dso.address, 100_000_000)
    start = window_start(ledger)
    request = FlexRequest(
        service=ServiceType.SECURE,
        direction=Direction.UP,
        baseline=BaselineMethod.NOMINATED,
        congestion_bus=bus,
        power_w=8_000,
        window_start=start,
        window_slots=4,
        bid_deadline=start - 3_600,
        max_availability_price_per_kwh=100_000,
        max_utilisation_price_per_kwh=1_000_000,
    )
    request_id = ledger.post_flex_request(request)

    dso_secret, dso_public, _ = keypair()
    cro_secret, cro_public, _ = keypair()
    agr_secret, agr_public_b64, agr_public = keypair()
    ledger.tx.send(provider, ledger.flex.functions.bindUftpKey(agr_public), action="bind UFTP key")
    dso_port, agr_port = free_port(), free_port()
    tmp = tmp_path_factory.mktemp("uftp")
    registry = UftpRegistry.from_dict(
        {
            "dso": {"domain": DSO_DOMAIN, "signing_key": dso_secret, "time_zone": TZ, "currency": "EUR"},
            "cro": {"domain": CRO_DOMAIN, "signing_key": cro_secret},
            "congestion_points": {EAN: bus},
            "aggregators": [
                {
                    "domain": AGR_DOMAIN,
                    "public_key": agr_public_b64,
                    "endpoint": f"http://127.0.0.1:{agr_port}{MESSAGE_PATH}",
                    "provider": provider.address,
                    # none listed: the aggregator reaches the congestion point through the CRO's portfolio
                }
            ],
        }
    )
    lock = threading.Lock()

    def on_chain(fn: Callable[[], Any]) -> Any:
        with lock:
            return fn()

    store = MessageStore(tmp / "uftp.sqlite")
    cro = CommonReference(ledger, registry, store, area=engine.feeder_of, on_chain=on_chain)
    gateway = UftpGateway(ledger, registry, store, on_chain=on_chain, cro=cro)
    app = FastAPI()
    app.include_router(make_router(gateway))
    app.add_exception_handler(GridLedgerError, api_errors.gridledger_error)  # as create_app does
    app.add_exception_handler(RequestValidationError, api_errors.invalid_request)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=dso_port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()

    agr_log = tmp / "agr.jsonl"
    config = tmp / "agr.json"
    config.write_text(
        json.dumps(
            {
                "domain": AGR_DOMAIN,
                "signing_key": agr_secret,
                "port": agr_port,
                "dso_public_key": dso_public,
                "dso_endpoint": f"http://127.0.0.1:{dso_port}{MESSAGE_PATH}",
                "cro_public_key": cro_public,
                "cro_endpoint": f"http://127.0.0.1:{dso_port}{CRO_MESSAGE_PATH}",
                "offer_price": OFFER_PRICE,
                "log": str(agr_log),
            }
        )
    )
    stderr = (tmp / "agr.stderr").open("w")  # the library's log, for a failing test's reader
    agent = subprocess.Popen(
        [str(python), str(Path(__file__).with_name("aggregator_agent.py")), str(config)],
        stdout=subprocess.DEVNULL,
        stderr=stderr,
        env={**os.environ, "PYTHONPATH": ""},
    )
    try:
        wait_for_port(dso_port)
        wait_for_port(agr_port)
        # The provider's participant mandates the aggregator (the outsider's does so in the tests).
        answer = post_mandate(f"http://127.0.0.1:{dso_port}", ledger, provider, meter_id=1000)
        assert answer.status_code == 201, answer.text
        yield Exchange(
            ledger,
            gateway,
            provider,
            request,
            request_id,
            f"http://127.0.0.1:{dso_port}",
            agr_secret,
            agr_public,
            dso_public,
            cro_public,
            agr_log,
            lock,
            outsider,
        )
    finally:
        agent.terminate()
        agent.wait(timeout=30)
        stderr.close()
        server.should_exit = True
        thread.join(timeout=30)
