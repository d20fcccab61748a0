"""Signed orders over HTTP: accepted per second, and from HTTP to on-chain per second.

    python benchmarks/api.py [--chain hardhat|anvil|embedded] [--orders 3000] [--clients 32]

Starts a devnet node (unless embedded) and `gridledger serve` as separate processes, registers
and funds 50 prosumers, signs ``--orders`` orders beforehand (half buys, half sells; signing is
the wallets' work, not the service's), then posts them from ``--clients`` concurrent HTTP
clients on loopback. Prints:

- accepted/s: orders answered 202 per second of wall time, first request to last answer;
- on-chain/s: orders recorded on the ledger (and indexed) per second, first request to the
  moment the last one shows in the index (the relayer batches by size and time).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

from gridledger.api.client import GridLedgerClient
from gridledger.chain import devnet
from gridledger.chain.connection import FIRST_PROSUMER_INDEX, Roles, derive_account
from gridledger.chain.ledger import Ledger
from gridledger.config import Settings
from gridledger.market.orders import Order, Side

PROSUMERS = 50
GRIDLEDGER = str(Path(sys.executable).parent / "gridledger")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def server(env: dict[str, str], url: str, log: Path) -> Iterator[None]:
    with log.open("w") as sink:
        process = subprocess.Popen([GRIDLEDGER, "serve"], env=env, stdout=sink, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 180
        while True:
            if process.poll() is not None:
                raise SystemExit(f"gridledger serve exited:\n{log.read_text()}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                    break
            if time.monotonic() > deadline:
                raise SystemExit("gridledger serve did not start")
            time.sleep(0.3)
        yield
    finally:
        process.terminate()
        process.wait(timeout=120)


async def post_all(port: int, bodies: list[dict[str, Any]], clients: int) -> list[float]:
    """Posts every body over ``clients`` concurrent keep-alive connections; returns each answer's
    time. The client speaks HTTP/1.1 on raw sockets: on a two-core machine a full HTTP client
    library would take much of the CPU the server is being measured on."""
    requests = [
        b"POST /orders HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        + f"Content-Length: {len(payload)}\r\n\r\n".encode()
        + payload
        for payload in (json.dumps(body).encode() for body in bodies)
    ]
    answered: list[float] = []

    async def connection(share: list[bytes]) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        for request in share:
            writer.write(request)
            status = await reader.readline()
            length = 0
            while (line := await reader.readline()) not in (b"\r\n", b""):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
            body = await reader.readexactly(length)
            if b" 202 " not in status:
                raise RuntimeError(f"order refused: {status.decode().strip()} {body.decode()}")
            answered.append(time.perf_counter())
        writer.close()

    await asyncio.gather(*(connection(requests[k::clients]) for k in range(clients)))
    return answered


def measure(chain: str, node_port: int | None, orders: int, clients: int, workdir: Path) -> None:
    api_port = free_port()
    url = f"http://127.0.0.1:{api_port}"
    env = os.environ | {
        "GRIDLEDGER_CHAIN": chain,
        "GRIDLEDGER_DATABASE": str(workdir / f"{chain}.sqlite"),
        "GRIDLEDGER_DEPLOYMENTS_DIR": str(workdir),
        "GRIDLEDGER_API_PORT": str(api_port),
    }
    if node_port:
        env["GRIDLEDGER_DEVNET_PORT"] = str(node_port)
    settings = Settings(chain=chain, devnet_port=node_port or 8545)
    roles = Roles.from_settings(settings)
    prosumers = [derive_account(settings.mnemonic, FIRST_PROSUMER_INDEX + i) for i in range(PROSUMERS)]
    with server(env, url, workdir / "server.log"):
        api = GridLedgerClient(url)
        for i, p in enumerate(prosumers):
            body = {"account": p.address, "meter_id": 1 + i, "bus": 3 + i % 10, "capacity_w": 100_000}
            api.request("POST", "/participants", body=body, signer=roles.facilitator)
        ledger: Ledger | None = None
        if chain != "embedded":  # fund the buyers over RPC (the embedded chain lives inside the server)
            from gridledger.chain import deploy

            deploy.DEPLOYMENTS_DIR = workdir
            ledger, _ = Ledger.open(settings)
            for p in prosumers:
                ledger.fund_gas(p.address, 10**18)
                ledger.mint(p.address, 10**12)
                ledger.deposit(p, 10**12)
            while api.get(f"/participants/{prosumers[-1].address}")["market_balance"]["available"] < 10**12:
                time.sleep(0.1)
        now = api.get("/health")["chain_time"]
        slot = (now // 900 + 8) * 900
        bodies = []
        for n in range(orders):
            p = prosumers[n % PROSUMERS]
            side = Side.BUY if (ledger is not None and n % 2) else Side.SELL
            order = Order(p.address, side, slot, 100 + n % 50, 150_000, n // PROSUMERS, slot)
            bodies.append(api.order_body(p, order))

        started = time.perf_counter()
        try:
            answered = asyncio.run(post_all(api_port, bodies, clients))
        except RuntimeError:
            print((workdir / "server.log").read_text()[-5000:])
            raise
        accepted_s = max(answered) - started
        while True:
            book = api.get(f"/slots/{slot}/book")
            on_chain = sum(level["orders"] for level in book["bids"] + book["asks"])
            if on_chain >= orders:
                break
            time.sleep(0.01)
        end_to_end_s = time.perf_counter() - started
        if ledger is not None:
            assert ledger.slot_state(slot).open_orders == orders
        print(
            f"{chain:<9} {orders} signed orders, {clients} concurrent clients: "
            f"accepted {orders / accepted_s:,.0f}/s ({accepted_s:.2f} s), "
            f"on-chain {orders / end_to_end_s:,.0f}/s ({end_to_end_s:.2f} s from first request to last indexed)"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chain", default="hardhat", help="hardhat, anvil or embedded")
    parser.add_argument("--orders", type=int, default=3000)
    parser.add_argument("--clients", type=int, default=32)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        if args.chain == "embedded":
            measure("embedded", None, args.orders, args.clients, Path(tmp))
            return
        port = free_port()
        with devnet.running(args.chain, port):
            measure(args.chain, port, args.orders, args.clients, Path(tmp))


if __name__ == "__main__":
    main()
