"""A slot end to end on a real devnet node that the test starts and stops itself."""

from __future__ import annotations

import json
import subprocess

import pytest
from tests.conftest import DEPOSIT, REPORT, free_port, make_order, market_total
from tests.integration.serving import GRIDLEDGER
from web3.exceptions import Web3RPCError

from gridledger.chain import devnet, rpc_raw
from gridledger.chain.ledger import Ledger
from gridledger.config import Settings
from gridledger.errors import ReplayRejected
from gridledger.market.book import clear_recorded
from gridledger.market.orders import Side
from gridledger.service import indexer
from gridledger.sim.participants import make_prosumers
from gridledger.store.database import open_database

pytestmark = pytest.mark.devnet


@pytest.mark.parametrize("kind", ["hardhat", "anvil"])
def test_a_slot_end_to_end_on_a_devnet(kind, tmp_path) -> None:
    port = free_port()
    with devnet.running(kind, port) as node:
        settings = Settings(chain=kind, devnet_port=port)
        ledger, deployed = Ledger.open(settings, record=False)
        assert deployed and ledger.chain.chain_id == 31337
        alice, bob = make_prosumers(ledger, count=2, deposit=DEPOSIT)
        slot = (ledger.chain.now() // 900 + 4) * 900
        buy = make_order(alice, Side.BUY, slot, 2_000, 280_000)
        sell = make_order(bob, Side.SELL, slot, 1_500, 90_000)
        ledger.relay_orders([ledger.sign(alice, buy), ledger.sign(bob, sell)])
        with pytest.raises(ReplayRejected):  # the node's revert data decodes to the same domain error
            ledger.relay_orders([ledger.sign(bob, sell)])

        recorded = ledger.recorded_orders(slot)
        fills, result = clear_recorded(recorded)
        assert (result.traded_wh, result.price_per_kwh) == (1_500, 185_000)
        ledger.chain.move_time_to(slot - 300)
        ledger.commit_clearing(slot, result.ledger_price, fills, **REPORT)
        ledger.chain.move_time_to(slot + 900)
        ledger.post_meter_readings(slot, {alice.address: 1_500, bob.address: -1_500})
        ledger.settle(slot, fills)

        # 1.5 kWh at 0.185 = 0.2775 tokens from Alice to Bob, nothing else moves.
        assert ledger.account_of(alice.address) == (DEPOSIT - 277_500, 0)
        assert ledger.account_of(bob.address) == (DEPOSIT + 277_500, 0)
        parties = [alice.address, bob.address, ledger.roles.balancing.address]
        assert ledger.token_balance(ledger.market.address) == market_total(ledger, parties, [slot]) == 2 * DEPOSIT
        assert ledger.slot_state(slot).status == "settled"
    assert not devnet.answers(node.url)  # stopped with the block


def test_deploy_command_records_then_reuses_on_a_devnet(tmp_path, monkeypatch) -> None:
    import json

    from typer.testing import CliRunner

    from gridledger.chain import deploy
    from gridledger.cli import app

    monkeypatch.setattr(deploy, "DEPLOYMENTS_DIR", tmp_path)
    port = free_port()
    env = {
        "GRIDLEDGER_CHAIN": "anvil",
        "GRIDLEDGER_DEVNET_PORT": str(port),
        "GRIDLEDGER_DEPLOYMENTS_DIR": str(tmp_path),
    }
    runner = CliRunner()
    with devnet.running("anvil", port):
        first = runner.invoke(app, ["deploy"], env=env)
        assert first.exit_code == 0, first.output
        assert "deployed on chain 31337" in first.output
        record = json.loads((tmp_path / "31337.json").read_text())
        second = runner.invoke(app, ["deploy"], env=env)
        assert second.exit_code == 0, second.output
        assert "reused the existing deployment" in second.output
        assert json.loads((tmp_path / "31337.json").read_text()) == record
        assert record["roles"]["facilitator"] == "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"


def test_devnet_commands_start_and_stop_each_node_by_its_port() -> None:
    """Two anvil nodes from one checkout: stopping one by its port leaves the other answering."""
    first, second = free_port(), free_port()
    assert first != second

    def gridledger(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([GRIDLEDGER, "devnet", *args], capture_output=True, text=True, timeout=120)

    try:
        for port in (first, second):
            started = gridledger("start", "anvil", "--port", str(port))
            assert started.returncode == 0, started.stderr
            assert f"anvil answers at http://127.0.0.1:{port}" in started.stdout
        again = gridledger("start", "anvil", "--port", str(first))
        assert again.returncode == 1 and "already answers at" in again.stdout + again.stderr

        stopped = gridledger("stop", "anvil", "--port", str(first))
        assert (stopped.returncode, stopped.stdout.strip()) == (0, f"stopped anvil on port {first}")
        assert not devnet.answers(f"http://127.0.0.1:{first}")
        assert devnet.answers(f"http://127.0.0.1:{second}")
        none = gridledger("stop", "anvil", "--port", str(first))
        assert (none.returncode, none.stdout.strip()) == (0, f"no anvil node was running on port {first}")

        rest = gridledger("stop", "anvil", "--port", str(second))
        assert (rest.returncode, rest.stdout.strip()) == (0, f"stopped anvil on port {second}")
        assert not devnet.answers(f"http://127.0.0.1:{second}")
        wrong = gridledger("stop", "ganache")
        assert wrong.returncode == 1 and "unknown devnet 'ganache': use hardhat or anvil" in wrong.stdout + wrong.stderr
    finally:
        for port in (first, second):
            devnet.stop("anvil", port)
            (devnet.STATE_DIR / f"anvil-{port}.log").unlink(missing_ok=True)  # kept by a CLI stop


def test_stopping_every_node_of_a_kind_skips_records_of_other_processes(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(devnet, "STATE_DIR", tmp_path)  # this test's records only
    ports = sorted([free_port(), free_port()])
    nodes = [devnet.start("anvil", port) for port in ports]
    # A record left by a killed node whose PID now belongs to another process group.
    other = subprocess.Popen(["sleep", "60"], start_new_session=True)
    try:
        (tmp_path / "anvil-1.json").write_text(json.dumps({"port": 1, "pid": other.pid}))
        assert devnet.stop("anvil", None) == ports
        assert not any(devnet.answers(node.url) for node in nodes)
        assert list(tmp_path.glob("*.json")) == []  # the stale record is gone
        assert other.poll() is None  # and the process that has its PID was not signalled
    finally:
        other.kill()
        other.wait()
        for port in ports:
            devnet.stop("anvil", port)


def test_a_new_index_catches_up_on_anvil_which_keeps_few_old_states(tmp_path, monkeypatch) -> None:
    """anvil keeps its last 8 block states (``devnet.ANVIL_STATE_HISTORY``): an index far behind
    the head reads its chunks' balances at the head, not at blocks the node no longer holds."""
    port = free_port()
    with devnet.running("anvil", port) as node:
        ledger = Ledger.open(Settings(chain="anvil", devnet_port=port), record=False)[0]
        prosumers = make_prosumers(ledger, count=3, deposit=DEPOSIT)
        for _ in range(2 * devnet.ANVIL_STATE_HISTORY):
            rpc_raw.request(ledger.chain.w3, "evm_mine", [])
        head = ledger.chain.w3.eth.block_number
        with pytest.raises(Web3RPCError):  # the node no longer answers for the deployment's state
            ledger.chain.w3.eth.get_balance(ledger.roles.admin.address, ledger.deployment.block)

        monkeypatch.setattr(indexer, "MAX_BLOCKS_PER_SYNC", 2)  # many chunks, most ending long ago
        index = open_database(tmp_path / "index.sqlite")
        assert indexer.Indexer(ledger, index).sync() == head - ledger.deployment.block + 1
        rows = {r["account"]: r for r in index.execute_returning_dicts("select * from accounts")}
        for p in prosumers:
            assert (rows[p.address]["available"], rows[p.address]["locked"]) == ledger.account_of(p.address)
            assert rows[p.address]["block"] == head  # read at the head: the chunk's own block is gone
        funder = rows[ledger.roles.admin.address]
        assert funder["token_balance"] == ledger.token_balance(ledger.roles.admin.address)
    assert not devnet.answers(node.url)
