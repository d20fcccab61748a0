"""Fault injection with real processes (see ``faults.py``): kill -9 of `gridledger serve` and of the
anvil node at random moments during relay, clearing and settlement; and a node reset, which the
service must report (503), refuse to start on, and leave to `gridledger migrate`."""

from __future__ import annotations

import json
import subprocess

import httpx
import pytest
from tests.integration.faults import GRIDLEDGER, Campaign, Node, run_campaign
from tests.integration.test_devnet import free_port

from gridledger.market.orders import Order, Side

pytestmark = pytest.mark.devnet


def test_random_kills_of_service_and_node_lose_and_duplicate_nothing(tmp_path) -> None:
    figures = run_campaign(tmp_path, free_port(), free_port(), faults=2, seconds=15, seed=7, orders=6)
    print(json.dumps(figures, indent=2))
    assert figures["faults"] == {"serve": 1, "node": 1}
    assert figures["orders_accepted"] > 0
    assert figures["lost"] == 0, figures["lost_detail"]
    assert figures["duplicated"] == 0
    assert figures["orders_refused_without_reason"] == 0
    assert figures["slots_cleared_twice"] == figures["slots_settled_twice"] == 0
    assert figures["reports_mismatched"] == 0


def test_a_reset_node_is_refused_then_migrated(tmp_path) -> None:
    node_port, api_port = free_port(), free_port()
    campaign = Campaign(tmp_path, node_port, api_port, prosumers=2)
    campaign.node = Node(node_port, tmp_path, state=False)  # a restart loses everything: a reset
    campaign.start()
    server, api = campaign.server, campaign.api
    try:
        slot = (campaign.ledger.chain.now() // 900 + 8) * 900
        campaign.submit(slot)
        (accepted,) = campaign.accepted
        record = (tmp_path / "31337.json").read_text()

        campaign.node.kill()
        campaign.node.start()  # the same port, an empty chain
        # 503 NodeUnreachable while the node restarts, then ChainReset once the worker sees the empty chain.
        _until(lambda: server.health()[1].get("error") == "ChainReset")
        status, body = server.health()
        assert status == 503
        assert body["error"] == "ChainReset" and "gridledger migrate" in body["detail"]
        assert set(body) == {"error", "detail", "fields"}
        order = Order(campaign.accounts[0].address, Side.SELL, slot, 500, 100_000, 99, slot)
        refused = httpx.post(f"{campaign.url}/orders", json=api.order_body(campaign.accounts[0], order))
        assert refused.status_code == 503 and refused.json()["error"] == "ChainReset"

        server.stop()  # a restart refuses: it does not deploy over the record
        done = subprocess.run([GRIDLEDGER, "serve"], env=server.env, capture_output=True, text=True, timeout=180)
        assert done.returncode != 0 and "gridledger migrate" in done.stdout + done.stderr
        assert (tmp_path / "31337.json").read_text() == record

        migrated = subprocess.run([GRIDLEDGER, "migrate"], env=server.env, capture_output=True, text=True, timeout=180)
        assert migrated.returncode == 0, migrated.stdout + migrated.stderr
        print(migrated.stdout)
        assert "orders accounted for: 1" in migrated.stdout
        assert len(list(tmp_path.glob("31337.0x*.json"))) == 1  # the old record, set aside
        assert list(tmp_path.glob("facilitator.sqlite.before-migrate-*"))

        server.start()
        _until(lambda: api.get(f"/orders/{accepted}")["status"] in ("rejected", "abandoned"))
        final = api.get(f"/orders/{accepted}")
        assert final["reason"]  # its owner sees why: re-queued and refused (unregistered), or abandoned
    finally:
        campaign.stop()


def _until(check, timeout: float = 60) -> None:  # type: ignore[no-untyped-def]
    import time

    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.2)
