"""Fault injection with real processes (see ``faults.py``), bounded for CI: one kill -9 of
`gridledger serve` and one of the anvil node at random moments while slots are relayed, cleared
and settled; then a node reset, which the service must report (503), refuse to start on, and
leave to `gridledger migrate`, after which every accepted order's owner sees what became of it.
The longer campaign is ``scripts/fault_campaign.py``."""

from __future__ import annotations

import json
import subprocess
import time
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from tests.conftest import free_port
from tests.integration.faults import GRIDLEDGER, ON_CHAIN, REFUSED, Campaign, run_campaign

from gridledger.api.app import create_app
from gridledger.chain.ledger import Ledger
from gridledger.config import Settings
from gridledger.errors import DeploymentError
from gridledger.market.orders import Order, Side
from gridledger.service.facilitator import Facilitator

pytestmark = pytest.mark.devnet


def test_kills_lose_nothing_and_a_reset_node_is_refused_then_migrated(tmp_path) -> None:
    node_port, api_port = free_port(), free_port()
    after_reset: dict[str, Any] = {}
    figures = run_campaign(
        tmp_path,
        node_port,
        api_port,
        faults=2,
        seconds=15,
        seed=7,
        orders=6,
        then=lambda campaign: after_reset.update(reset_and_migrate(campaign, tmp_path)),
    )
    print(json.dumps(figures, indent=2))
    assert figures["faults"] == {"serve": 1, "node": 1}
    assert figures["orders_accepted"] > 0 and figures["slots_cleared"] > 0
    assert figures["lost"] == 0, figures["lost_detail"]
    assert figures["duplicated"] == 0
    assert figures["orders_refused_without_reason"] == 0
    assert figures["slots_cleared_twice"] == figures["slots_settled_twice"] == 0
    assert figures["slots_cleared_not_settled"] == 0
    assert figures["reports_mismatched"] == 0
    # After the reset and `gridledger migrate`: every order the service ever accepted is accounted for
    # and its owner sees (GET /orders/{hash}) that it is not on the new chain, and why.
    statuses = after_reset["statuses"]
    assert len(statuses) == figures["orders_accepted"] + 1
    assert all(s["status"] in REFUSED and s["reason"] for s in statuses.values()), statuses
    assert statuses[after_reset["pending"]]["status"] == "rejected"  # re-queued, then refused: unregistered


def reset_and_migrate(campaign: Campaign, workdir) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    server, api = campaign.server, campaign.api
    slot = (campaign.ledger.chain.now() // 900 + 8) * 900
    campaign.submit(slot)  # accepted just before the reset: its gate is still open
    pending = list(campaign.accepted)[-1]
    record = (workdir / "31337.json").read_text()

    campaign.node.state, campaign.node.saved = False, None
    campaign.node.kill()
    campaign.node.start()  # the same port, an empty chain
    # 503 NodeUnreachable while the node restarts, then ChainReset once the worker sees the empty chain.
    _until(lambda: server.health()[1].get("error") == "ChainReset")
    status, body = server.health()
    assert status == 503 and set(body) == {"error", "detail", "fields"}
    assert "gridledger migrate" in body["detail"] and "accepted orders wait" in body["detail"]
    account = campaign.accounts[0]
    order = Order(account.address, Side.SELL, slot, 500, 100_000, 10_000, slot)
    refused = httpx.post(f"{campaign.url}/orders", json=api.order_body(account, order), timeout=30)
    assert refused.status_code == 503 and refused.json()["error"] == "ChainReset"

    server.stop()
    database = str(workdir / "facilitator.sqlite")
    settings = Settings(chain="anvil", devnet_port=campaign.node.port, database=database, relay_max_wait_s=0.1)
    with pytest.raises(DeploymentError, match="gridledger migrate"):  # what `serve` and `deploy` run first
        Ledger.open(settings)
    assert (workdir / "31337.json").read_text() == record  # not overwritten

    migrated = subprocess.run([GRIDLEDGER, "migrate"], env=server.env, capture_output=True, text=True, timeout=300)
    print(migrated.stdout)
    assert migrated.returncode == 0, migrated.stdout + migrated.stderr
    assert f"orders accounted for: {len(campaign.accepted)}" in migrated.stdout
    assert len(list(workdir.glob("31337.0x*.json"))) == 1  # the old record, set aside
    assert list(workdir.glob("facilitator.sqlite.before-migrate-*"))

    # The service on the new deployment (in this process: the kills above used real processes).
    ledger, deployed = Ledger.open(settings)
    assert not deployed
    with TestClient(create_app(Facilitator(ledger, settings))) as http:

        def status_of(h: str) -> dict[str, Any]:
            answer: dict[str, Any] = http.get(f"/orders/{h}").json()
            return answer

        _until(lambda: status_of(pending)["status"] not in ("accepted", *ON_CHAIN))
        return {"pending": pending, "statuses": {h: status_of(h) for h in campaign.accepted}}


def _until(check, timeout: float = 120) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.2)
