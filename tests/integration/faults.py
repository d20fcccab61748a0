"""Fault injection against real processes: an anvil node and `gridledger serve`, each killed with
SIGKILL at random moments while orders are relayed and slots cleared and settled.

What a node kill means here:

- ``node``: anvil's state is dumped (``anvil_dumpState``), the process killed with SIGKILL and
  restarted from that state: a crash-consistent node that may lose its last blocks (the
  facilitator must notice the lost blocks, re-index and relay again what the chain lost), and
  whose clock restarts at the wall clock, before its latest block (the facilitator must not let
  a transaction checked at one time run at an earlier one);
- a restart without the state is a reset: the chain's history is gone; the facilitator must
  answer 503, refuse to start, and leave it to ``gridledger migrate`` (see ``test_faults``).

``run_campaign`` returns the figures: faults injected, orders accepted (202), lost (accepted but
neither on the chain nor visibly refused), duplicated (recorded twice), slots cleared or settled
twice, and stored network reports that do not match the chain's clearing.
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from eth_utils.abi import event_abi_to_log_topic

from gridledger.api.client import ApiError, GridLedgerClient
from gridledger.chain import deploy, devnet
from gridledger.chain.connection import FIRST_PROSUMER_INDEX, Roles, derive_account
from gridledger.chain.ledger import Ledger
from gridledger.config import Settings
from gridledger.encoding import to_hex
from gridledger.errors import GridLedgerError
from gridledger.market.orders import Order, Side
from gridledger.service.indexer import decode_event

GRIDLEDGER = str(Path(sys.executable).parent / "gridledger")
DEPOSIT = 1_000_000_000
ON_CHAIN = {"on_chain", "filled", "unfilled", "settled", "cancelled"}
REFUSED = {"rejected", "abandoned", "withdrawn"}


class Node:
    """anvil. ``state``: a kill keeps the chain (a crash-consistent node, see the module); else a
    restart is a reset. anvil's own ``--state-interval`` dumps proved unreliable (they stopped
    following the chain after some blocks), so the state is taken with ``anvil_dumpState`` just
    before SIGKILL and loaded with ``anvil_loadState`` at the restart: blocks mined in between
    are lost, as a crashing node may lose its last blocks."""

    def __init__(self, port: int, workdir: Path, *, state: bool) -> None:
        self.port, self.state = port, state
        self.url = f"http://127.0.0.1:{port}"
        self.log = workdir / "anvil.log"
        self.process: subprocess.Popen[bytes] | None = None
        self.saved: str | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            devnet.anvil_command(self.port), stdout=self.log.open("a"), stderr=subprocess.STDOUT, start_new_session=True
        )
        _wait(lambda: _answers(self.url), 30, "anvil did not start")
        if self.saved is not None:
            assert _rpc(self.url, "anvil_loadState", [self.saved]) is True

    def kill(self) -> None:
        if self.state and self.process is not None:
            self.saved = _rpc(self.url, "anvil_dumpState", [])
        if self.process is not None:  # the npm wrapper and the anvil binary it runs
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
            self.process = None
        _wait(lambda: not _answers(self.url), 10, "anvil still answers")


class Server:
    def __init__(self, env: dict[str, str], url: str, workdir: Path) -> None:
        self.env, self.url, self.log = env, url, workdir / "serve.log"
        self.process: subprocess.Popen[bytes] | None = None
        self.startups: list[float] = []  # seconds until /health answered 200

    def start(self, *, expect_up: bool = True) -> None:
        with self.log.open("a") as log:
            self.process = subprocess.Popen([GRIDLEDGER, "serve"], env=self.env, stdout=log, stderr=subprocess.STDOUT)
        if expect_up:
            started = time.monotonic()
            _wait(lambda: self.health()[0] == 200, 300, "gridledger serve did not come up", self)
            self.startups.append(time.monotonic() - started)

    def health(self) -> tuple[int, dict[str, Any]]:
        if self.process is not None and self.process.poll() is not None:
            raise AssertionError(f"gridledger serve exited: {self.log.read_text()[-2000:]}")
        try:
            response = httpx.get(f"{self.url}/health", timeout=5)
        except httpx.HTTPError:
            return 0, {}
        return response.status_code, response.json()

    def kill(self) -> None:
        if self.process is not None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait()
            self.process = None

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=60)
            if self.process.poll() is None:
                self.kill()
            self.process = None


def environment(workdir: Path, node_port: int, api_port: int) -> dict[str, str]:
    return os.environ | {
        "GRIDLEDGER_CHAIN": "anvil",
        "GRIDLEDGER_DEVNET_PORT": str(node_port),
        "GRIDLEDGER_DATABASE": str(workdir / "facilitator.sqlite"),
        "GRIDLEDGER_DEPLOYMENTS_DIR": str(workdir),
        "GRIDLEDGER_API_PORT": str(api_port),
        "GRIDLEDGER_RELAY_MAX_WAIT_S": "0.1",
    }


class Campaign:
    """One node, one service, a few prosumers trading slot after slot while faults strike."""

    def __init__(self, workdir: Path, node_port: int, api_port: int, *, prosumers: int = 4, seed: int = 1) -> None:
        self.workdir = workdir
        self.url = f"http://127.0.0.1:{api_port}"
        self.settings = Settings(chain="anvil", devnet_port=node_port)
        self.node = Node(node_port, workdir, state=True)
        self.server = Server(environment(workdir, node_port, api_port), self.url, workdir)
        self.api = GridLedgerClient(self.url, timeout=120)
        self.roles = Roles.from_settings(self.settings)
        self.accounts = [derive_account(self.settings.mnemonic, FIRST_PROSUMER_INDEX + i) for i in range(prosumers)]
        self.nonces = Counter[str]()
        self.random = random.Random(seed)
        self.accepted: dict[str, Order] = {}
        self.refused = Counter[int]()
        self.faults: list[str] = []
        self.slots: list[int] = []
        self.phase = "setup"  # what the trading thread is doing: the fault figures count by it
        self.progress = 0  # steps the trading thread completed (the injector waits for one per fault)
        self.fault_phases = Counter[str]()
        self.retries = Counter[str]()  # what a retried act met (faults make the service refuse or vanish)
        self.longest_retry_s = 0.0
        self._lock = threading.Lock()

    # ─────────────── processes ───────────────

    def start(self) -> None:
        self.node.start()
        self.server.start()
        deploy.DEPLOYMENTS_DIR = self.workdir  # where the service keeps its record (GRIDLEDGER_DEPLOYMENTS_DIR)
        self.ledger, _ = Ledger.open(self.settings)  # the service's deployment, through its record
        for i, account in enumerate(self.accounts):
            body = {"account": account.address, "meter_id": 1 + i, "bus": 3 + i % 4, "capacity_w": 20_000}
            self.retry(lambda b=body: self.api.request("POST", "/participants", body=b, signer=self.roles.facilitator))
        for account in (*self.accounts, self.roles.balancing):
            self.ledger.fund_gas(account.address, 10**18)
            self.ledger.mint(account.address, DEPOSIT)
            self.ledger.deposit(account, DEPOSIT)
        last = self.accounts[-1].address
        _wait(lambda: self._available(last) == DEPOSIT, 60, "deposits not indexed")

    def _available(self, account: str) -> int:
        with contextlib.suppress(ApiError, GridLedgerError):
            return int(self.api.get(f"/participants/{account}")["market_balance"]["available"])
        return -1

    def stop(self) -> None:
        self.server.stop()
        self.node.kill()

    def inject(self, kind: str) -> None:
        """kill -9 of the service or the node, then a restart (the node's from its state file)."""
        with self._lock:
            self.faults.append(kind)
            self.fault_phases[self.phase] += 1
            if kind == "serve":
                self.server.kill()
                time.sleep(self.random.uniform(0, 0.5))
                self.server.start()
            else:
                self.node.kill()
                time.sleep(self.random.uniform(0, 1.0))
                self.node.start()
                self.ledger.tx.forget_nonce()

    def retry(self, act: Any, *, timeout: float = 600, done_if: tuple[str, ...] = ()) -> Any:
        """Runs ``act`` until it succeeds, through 503s and dropped connections (faults). The
        bound is generous: on a loaded machine a restart of serve alone took up to a minute."""
        started = time.monotonic()
        while True:
            try:
                return act()
            except ApiError as exc:
                if exc.body.get("error") in done_if:
                    return None
                if exc.status != 503 or time.monotonic() > started + timeout:
                    raise
                self._retried(started, f"503 {exc.body.get('error')}")
            except (GridLedgerError, OSError, httpx.HTTPError, ValueError) as exc:
                if time.monotonic() > started + timeout:
                    raise
                self._retried(started, type(exc).__name__)
            time.sleep(0.3)

    def _retried(self, started: float, why: str) -> None:  # the trading thread only
        self.retries[why] += 1
        self.longest_retry_s = max(self.longest_retry_s, time.monotonic() - started)

    # ─────────────── the market's work ───────────────

    def trade_slot(self, orders: int) -> None:
        now = self.retry(self.ledger.chain.now)
        slot = (now // 900 + 4) * 900
        self.slots.append(slot)
        before = len(self.accepted)
        self.phase = "orders and relay"
        for _ in range(orders):
            self.submit(slot)
        if len(self.accepted) == before:
            return  # every order refused (a fault): nothing to clear
        _wait(lambda: self.server.health()[1].get("relay_queue", 1) == 0, 600, "relay queue not drained", self.server)
        self.progress += 1
        self.retry(lambda: self.move_time_to(slot - 300))
        self.phase = "clearing"
        self.retry(lambda: self.operate("POST", f"/slots/{slot}/clearing"), done_if=("SlotAlreadyCleared",))
        self.progress += 1
        self.retry(lambda: self.move_time_to(slot + 900))
        self.phase = "meter readings and settlement"
        readings = [{"account": a.address, "net_wh": self.random.randint(-500, 500)} for a in self.accounts]
        self.retry(
            lambda: self.operate("POST", f"/slots/{slot}/meter-readings", {"readings": readings}, self.roles.meter),
            done_if=("MeterReadingAlreadyPosted",),
        )
        self.progress += 1
        self.retry(lambda: self.operate("POST", f"/slots/{slot}/settlement"), done_if=("SlotNotCleared",))
        self.progress += 1

    def move_time_to(self, timestamp: int) -> None:
        """The test's time travel, never between a node's state dump and its kill (the block that
        moves time would be lost with the node's last blocks, and the chain's time with it)."""
        with self._lock:
            self.ledger.chain.move_time_to(timestamp)

    def operate(self, method: str, path: str, body: Any = None, signer: Any = None) -> Any:
        """A privileged write. Only a refusal that says the work was already done (a retry after
        a kill) is taken as done (``retry``'s ``done_if``); any other 409, such as a transaction
        that "failed in block N", fails the campaign: it is a fault the service did not absorb."""
        return self.api.request(method, path, body=body, signer=signer or self.roles.facilitator)

    def submit(self, slot: int) -> None:
        account = self.random.choice(self.accounts)
        side = self.random.choice((Side.BUY, Side.SELL))
        order = Order(
            prosumer=account.address,
            side=side,
            delivery_start=slot,
            energy_wh=self.random.randint(100, 2_000),
            price_per_kwh=self.random.randint(50_000, 300_000),
            nonce=self.nonces[account.address],
            expiry=slot,
        )
        self.nonces[account.address] += 1
        try:
            answer = self.api.submit_order(account, order)
        except ApiError as exc:
            self.refused[exc.status] += 1
            return
        except (GridLedgerError, httpx.HTTPError):
            self.refused[0] += 1  # the service was down: no answer, no promise
            return
        self.accepted[answer["order_hash"]] = order

    # ─────────────── the checks ───────────────

    def check(self) -> dict[str, Any]:
        _wait(lambda: self.server.health()[0] == 200, 120, "service not healthy at the end", self.server)
        _wait(lambda: self.server.health()[1]["relay_queue"] == 0, 120, "relay queue not drained", self.server)
        events = self._events()
        # OrderRecorded carries the slot's order-chain link, not the hash: the ledger's reader
        # rebuilds each recorded order (and its hash) from the logs.
        recorded = Counter(to_hex(o.recorded.order_hash) for ds in set(self.slots) for o in self.ledger.slot_orders(ds))
        cleared = Counter(e["deliveryStart"] for e in events["SlotCleared"])
        settled = Counter(e["deliveryStart"] for e in events["SlotSettled"])
        lost, duplicated, refused_visibly, unexplained = [], [], 0, []
        for h in self.accepted:
            status = self.api.get(f"/orders/{h}")
            if recorded[h] > 1:
                duplicated.append(h)
            if recorded[h] >= 1 and status["status"] in ON_CHAIN:
                continue
            if recorded[h] == 0 and status["status"] in REFUSED:
                refused_visibly += 1
                if not status.get("reason"):
                    unexplained.append(h)
                continue
            lost.append((h, status["status"], recorded[h]))
        mismatched = []
        for e in events["SlotCleared"]:
            served = self.api.get(f"/slots/{e['deliveryStart']}/network-report")["report_hash"]
            if served != to_hex(e["networkReportHash"]):
                mismatched.append(e["deliveryStart"])
        return {
            "faults_injected": len(self.faults),
            "faults": dict(Counter(self.faults)),
            "faults_by_phase": dict(self.fault_phases),
            "serve_startups_s": [round(t, 1) for t in self.server.startups],
            "retries": dict(self.retries),
            "longest_retry_s": round(self.longest_retry_s, 1),
            "slots_traded": len(self.slots),
            "orders_accepted": len(self.accepted),
            "orders_on_chain": sum(1 for h in self.accepted if recorded[h]),
            "orders_refused_visibly": refused_visibly,
            "orders_refused_without_reason": len(unexplained),
            "submissions_refused": dict(self.refused),
            "lost": len(lost),
            "lost_detail": lost[:10],
            "duplicated": len(duplicated),
            "slots_cleared_twice": sum(1 for n in cleared.values() if n > 1),
            "slots_settled_twice": sum(1 for n in settled.values() if n > 1),
            "slots_cleared": len(cleared),
            "slots_settled": len(settled),
            "slots_cleared_not_settled": sum(1 for ds in cleared if ds not in settled),
            "reports_mismatched": len(mismatched),
        }

    def _events(self) -> dict[str, list[dict[str, Any]]]:
        market = self.ledger.market
        wanted = {a["name"]: a for a in market.abi if a.get("type") == "event"}
        topics = {bytes(event_abi_to_log_topic(wanted[n])): n for n in ("SlotCleared", "SlotSettled")}
        logs = self.ledger.chain.w3.eth.get_logs(
            {"fromBlock": self.ledger.deployment.block, "toBlock": "latest", "address": market.address}
        )
        found: dict[str, list[dict[str, Any]]] = {n: [] for n in topics.values()}
        for entry in logs:
            name = topics.get(bytes(entry["topics"][0]))
            if name is not None:
                found[name].append(decode_event(wanted[name], entry))  # type: ignore[arg-type]
        return found


def run_campaign(
    workdir: Path,
    node_port: int,
    api_port: int,
    *,
    faults: int,
    seconds: float,
    seed: int = 1,
    orders: int = 12,
    then: Callable[[Campaign], None] | None = None,
) -> dict[str, Any]:
    """Trades slots for ``seconds`` while a thread injects ``faults`` kills at random moments;
    ``then`` runs after the checks, with the processes still up (the CI test resets the node)."""
    campaign = Campaign(workdir, node_port, api_port, seed=seed)
    campaign.start()
    stop = threading.Event()
    chooser = random.Random(seed + 1)
    spacing = max(2.0, seconds / max(faults, 1))
    first = chooser.randrange(2)
    kinds = [("serve", "node")[(first + i) % 2] for i in range(faults)]  # both kinds, alternating

    def injector() -> None:
        # Each fault strikes a random moment after the service has recovered from the one before
        # and completed a step of the work (a serve restart alone takes up to a minute on a loaded
        # machine, and a fresh process's first clearing as long): faults land in relay, clearing
        # and settlement, and never keep one step from finishing (that livelocked a clearing).
        for kind in kinds:
            done = campaign.progress
            _wait(lambda d=done: campaign.progress > d, 900, "no progress after a fault", campaign.server)
            _wait(lambda: campaign.server.health()[0] == 200, 600, "service not back after a fault", campaign.server)
            if stop.wait(chooser.uniform(0.5, spacing)):
                return
            campaign.inject(kind)

    failures: list[BaseException] = []

    def guarded() -> None:
        try:
            injector()
        except BaseException as exc:
            failures.append(exc)

    thread = threading.Thread(target=guarded, daemon=True)
    try:
        thread.start()
        deadline = time.monotonic() + seconds
        while (time.monotonic() < deadline or thread.is_alive()) and not failures:
            campaign.trade_slot(orders)
        stop.set()
        thread.join()
        if failures:
            raise failures[0]
        figures = campaign.check()
        if then is not None:
            then(campaign)
        return figures
    except BaseException:
        for log in (campaign.server.log, campaign.node.log):
            if log.exists():
                print(f"──── {log.name} (end) ────\n{log.read_text()[-4000:]}")
        retried = f"retries {dict(campaign.retries)}, longest {campaign.longest_retry_s:.0f} s"
        print(f"faults so far: {campaign.faults}; {retried}")
        raise
    finally:
        stop.set()
        campaign.stop()


def _rpc(url: str, method: str, params: list[Any]) -> Any:
    return httpx.post(url, json={"jsonrpc": "2.0", "id": 1, "method": method, "params": params}, timeout=60).json()[
        "result"
    ]


def _answers(url: str) -> bool:
    try:
        return httpx.post(
            url, json={"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []}, timeout=2
        ).is_success
    except httpx.HTTPError:
        return False


def _wait(check: Any, timeout: float, what: str, server: Server | None = None) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            if check():
                return
        except (httpx.HTTPError, KeyError):
            pass
        if time.monotonic() > deadline:
            tail = server.log.read_text()[-3000:] if server is not None and server.log.exists() else ""
            raise AssertionError(f"{what} within {timeout:.0f} s\n{tail}")
        time.sleep(0.2)
