"""Start and stop a local devnet node (Hardhat 3 or anvil) on 127.0.0.1.

Both come from npm (``npm ci``): Hardhat through ``scripts/hardhat.mjs``, which runs it on the
Node 22 that npm installs, and anvil through its npm wrapper. Each node's PID and log live in
``.devnet/`` under its kind and port, so that ``gridledger devnet stop`` finds a node that another
command started, and two nodes of one kind (a benchmark's and a test's) never stop each other.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from gridledger.errors import ConfigurationError, ToolchainError
from gridledger.paths import NODE_MODULES, PROJECT_ROOT

STATE_DIR = PROJECT_ROOT / ".devnet"
HOST = "127.0.0.1"
START_TIMEOUT_S = 60.0
# Block states an anvil node keeps, in memory only. By default anvil keeps every block's whole
# state: hundreds in memory, the rest spilt to ~/.foundry/anvil/tmp, which a killed node never
# removes (77 GB after a few feeder-scale days). GridLedger reads only the latest state (logs,
# receipts and blocks are kept whatever this says), so a short history is enough.
ANVIL_STATE_HISTORY = 8


@dataclass(frozen=True)
class Devnet:
    kind: str
    port: int
    pid: int

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"


def _command(kind: str, port: int) -> list[str]:
    if kind == "hardhat":
        return [
            "node",
            str(PROJECT_ROOT / "scripts" / "hardhat.mjs"),
            "node",
            "--hostname",
            HOST,
            "--port",
            str(port),
        ]
    if kind == "anvil":
        return anvil_command(port)
    raise ConfigurationError(f"unknown devnet {kind!r}: use hardhat or anvil")


def anvil_command(port: int) -> list[str]:
    """anvil on 127.0.0.1:``port`` with a bounded state history (``ANVIL_STATE_HISTORY``)."""
    anvil = NODE_MODULES / ".bin" / "anvil"
    if not anvil.exists():
        raise ToolchainError("anvil is not installed: run `npm ci` (scripts/setup.sh does)")
    return [
        *(str(anvil), "--host", HOST, "--port", str(port), "--hardfork", "cancun", "--silent"),
        *("--prune-history", str(ANVIL_STATE_HISTORY)),
    ]


def answers(url: str) -> bool:
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []}).encode()
    request = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=2) as response:
            return "result" in json.loads(response.read())
    except (OSError, ValueError):
        return False


def _pidfile(kind: str, port: int) -> Path:
    return STATE_DIR / f"{kind}-{port}.json"


def _log(kind: str, port: int) -> Path:
    return STATE_DIR / f"{kind}-{port}.log"


def start(kind: str, port: int = 8545) -> Devnet:
    """Starts a node in the background and waits until it answers JSON-RPC."""
    url = f"http://{HOST}:{port}"
    command = _command(kind, port)
    if answers(url):
        raise ConfigurationError(f"something already answers at {url}: stop it or choose another port")
    STATE_DIR.mkdir(parents=True, exist_ok=True)
    log_path = _log(kind, port)
    with log_path.open("w") as log:
        process = subprocess.Popen(
            command, cwd=PROJECT_ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    deadline = time.monotonic() + START_TIMEOUT_S
    while not answers(url):
        if process.poll() is not None or time.monotonic() > deadline:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
            tail = log_path.read_text()[-2000:]
            raise ToolchainError(f"{kind} did not start on {url}; its log ends:\n{tail}")
        time.sleep(0.2)
    devnet = Devnet(kind=kind, port=port, pid=process.pid)
    _pidfile(kind, port).write_text(json.dumps({"port": port, "pid": process.pid}))
    return devnet


def stop(kind: str, port: int | None = 8545) -> list[int]:
    """Stops the node of ``kind`` on ``port`` that ``start`` recorded, or every one of that kind
    if ``port`` is None; returns the ports of the nodes it stopped. A record whose process is
    gone, or is no longer that node (its PID reused), is removed without signalling anything."""
    if kind not in ("hardhat", "anvil"):
        raise ConfigurationError(f"unknown devnet {kind!r}: use hardhat or anvil")
    paths = [_pidfile(kind, port)] if port is not None else list(STATE_DIR.glob(f"{kind}-*.json"))
    stopped = []
    for path in paths:
        if path.exists():
            recorded = json.loads(path.read_text())
            path.unlink()
            pid = int(recorded["pid"])
            if _is_node(pid, kind) and _stop(pid):
                stopped.append(int(recorded["port"]))
    return sorted(stopped)


def _is_node(pid: int, kind: str) -> bool:
    """Whether ``pid`` still runs a ``kind`` node (its command line names it; where there is no
    /proc to ask, whether it runs at all)."""
    proc = Path("/proc")
    if not proc.is_dir():
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        return True
    try:
        return kind.encode() in (proc / str(pid) / "cmdline").read_bytes()
    except OSError:
        return False


def _stop(pid: int) -> bool:
    try:
        os.killpg(pid, signal.SIGTERM)
    except ProcessLookupError:
        return False
    for _ in range(50):
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)  # reap it if this process started it
        try:
            os.killpg(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)
    return True


@contextlib.contextmanager
def running(kind: str, port: int = 8545) -> Iterator[Devnet]:
    """A node for the duration of a ``with`` block (tests, benchmarks). Its log is removed when
    the block ends normally (a log per port would pile up) and kept when it raised."""
    devnet = start(kind, port)
    try:
        yield devnet
    finally:
        stop(kind, port)
    _log(kind, port).unlink(missing_ok=True)
