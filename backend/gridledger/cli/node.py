"""The facilitator's node commands: ``compile``, ``deploy``, ``serve`` and ``devnet start|stop``."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from gridledger.cli.output import console
from gridledger.config import Settings
from gridledger.errors import GridLedgerError

devnet_app = typer.Typer(help="Start and stop a local devnet node (Hardhat or anvil).", no_args_is_help=True)


def compile() -> None:
    """Compile the contracts offline (cached by source hash)."""
    from gridledger.chain.compile import compile_contracts

    build = compile_contracts()
    names = ", ".join(n for n, c in build.contracts.items() if c.bytecode)
    console.print(f"compiled {names} with solc {build.compiler_version}", soft_wrap=True)
    console.print(f"source hash {build.source_hash}", soft_wrap=True)


def deploy() -> None:
    """Deploy to the configured chain and record deployments/<chainId>.json (reuses a live deployment)."""
    from gridledger.chain.deploy import record_path
    from gridledger.chain.ledger import Ledger

    settings = Settings()
    if settings.chain == "embedded":
        raise GridLedgerError(
            "the embedded chain lives only inside one process: deploy to a devnet or RPC URL "
            "(GRIDLEDGER_CHAIN=hardhat|anvil|http://…), or run `gridledger demo`"
        )
    ledger, deployed = Ledger.open(settings)
    d = ledger.deployment
    console.print(("deployed" if deployed else "reused the existing deployment") + f" on chain {d.chain_id}:")
    console.print(json.dumps(d.addresses, indent=2))
    console.print(f"record: {record_path(d.chain_id)}", soft_wrap=True)


def migrate() -> None:
    """Move to a fresh deployment after the chain node was reset: deploy anew, set the old record and
    database aside, and account for every accepted order (re-queued or marked abandoned, with why)."""
    from gridledger.service.migration import migrate as run

    settings = Settings()
    with console.status("checking the recorded deployment, deploying anew…"):
        r = run(settings)
    console.print(f"chain {r.chain_id} was reset: {r.why}", soft_wrap=True)
    console.print(f"old market {r.old_market}  → record set aside as {r.old_record}", soft_wrap=True)
    console.print(f"new market {r.new_market}  → record {r.new_record}", soft_wrap=True)
    if r.database_copy is not None:
        console.print(f"database {r.database} copied to {r.database_copy}; its index was emptied", soft_wrap=True)
    same = r.old_market == r.new_market
    console.print(f"orders accounted for: {r.accounted}")
    console.print(
        f"  re-queued for the new deployment: {r.requeued}"
        + (
            "  (same address, so their signatures still hold; the ledger may still refuse them: unregistered"
            " or unfunded prosumers)"
            if same
            else ""
        )
    )
    console.print(f"  abandoned, never relayed:          {r.abandoned_waiting}")
    console.print(f"  abandoned, relayed to the old chain: {r.abandoned_relayed}")
    console.print(f"  abandoned, recorded there by others: {r.abandoned_indexed}")
    console.print(
        f"cancellations abandoned: {r.cancellations_abandoned}; cleared or settled slots lost: {r.slots_lost}"
    )
    console.print(
        "owners see each order's status and reason at GET /orders/{hash}; participants must be registered and "
        "funded again on the new deployment. Start the service with `gridledger serve`.",
        soft_wrap=True,
    )


def serve(
    host: Annotated[str | None, typer.Option(help="address to listen on (default GRIDLEDGER_API_HOST)")] = None,
    port: Annotated[int | None, typer.Option(min=1, max=65535, help="port (default GRIDLEDGER_API_PORT)")] = None,
    uftp: Annotated[
        str | None,
        typer.Option(
            envvar="GRIDLEDGER_UFTP_CONFIG",
            help="UFTP register (JSON, see README 'UFTP'): also serve the DSO's UFTP endpoint for aggregators",
        ),
    ] = None,
    clock: Annotated[
        bool | None,
        typer.Option(
            "--clock/--no-clock",
            help="run the market clock (clear at gate closure, settle metered slots, award flexibility); "
            "default: on for the embedded chain and local devnets, off on any other RPC",
        ),
    ] = None,
    seconds_per_slot: Annotated[
        float | None,
        typer.Option(
            min=0.1,
            help="real seconds per 15-minute slot: the clock moves the chain's time (embedded chain and local "
            "devnets only); default: the wall clock",
        ),
    ] = None,
) -> None:
    """Run the facilitator's API (uvicorn) on the configured chain: relayer, indexer, clearing, market clock."""
    import uvicorn

    from gridledger.api.app import create_app
    from gridledger.chain.connection import LOCAL_DEVNETS
    from gridledger.chain.ledger import Ledger
    from gridledger.service.facilitator import Facilitator

    settings = Settings()
    local = settings.chain == "embedded" or settings.chain in LOCAL_DEVNETS
    if seconds_per_slot is not None and not local:
        raise GridLedgerError(
            f"--seconds-per-slot moves the chain's clock, which only the embedded chain and local devnets "
            f"({', '.join(LOCAL_DEVNETS)}) allow; on {settings.chain} the market clock follows the wall clock"
        )
    clock = local if clock is None else clock
    if settings.chain == "embedded" and "database" not in settings.model_fields_set:
        # An embedded chain starts empty with every process, and so must its index.
        settings = settings.model_copy(update={"database": "data/embedded-serve.sqlite"})
        _set_aside(settings.database)
    with console.status("compiling contracts, connecting to the chain and deploying…"):
        ledger, deployed = Ledger.open(settings, record=settings.chain != "embedded")
        service = Facilitator(ledger, settings, clock=clock, seconds_per_slot=seconds_per_slot)
    host = host or settings.api_host
    port = port or settings.api_port
    console.print(
        f"GridLedger facilitator on [cyan]{settings.chain}[/] (chain {ledger.chain.chain_id}), market "
        f"{ledger.market.address} ({'deployed now' if deployed else 'reused'}), index {settings.database}",
        soft_wrap=True,
    )
    pace = "off" if not clock else f"{seconds_per_slot:g} s per slot" if seconds_per_slot else "wall clock"
    console.print(f"market clock: {pace} (GET /clock)")
    console.print(f"API at http://{host}:{port}  (OpenAPI: /openapi.json, interactive docs: /docs)", soft_wrap=True)
    console.print(f"dashboard at http://{host}:{port}/", soft_wrap=True)
    if uftp:
        console.print(f"UFTP endpoint at http://{host}:{port}/shapeshifter/api/v3/message (register {uftp})")
    uvicorn.run(create_app(service, uftp_config=uftp), host=host, port=port, log_level="warning")


def _set_aside(database: str) -> None:
    from pathlib import Path

    path = Path(database)
    for suffix in ("", "-wal", "-shm"):
        old = path.with_name(path.name + suffix)
        if old.exists():
            old.replace(old.with_name(old.name + ".previous"))


@devnet_app.command("start")
def devnet_start(
    kind: Annotated[str, typer.Argument(help="hardhat or anvil")] = "hardhat",
    port: Annotated[int, typer.Option(min=1024, max=65535)] = 8545,
) -> None:
    """Start a devnet node on 127.0.0.1 in the background."""
    from gridledger.chain import devnet

    node = devnet.start(kind, port)
    console.print(f"{kind} answers at {node.url} (pid {node.pid}); use GRIDLEDGER_CHAIN={kind}")


@devnet_app.command("stop")
def devnet_stop(
    kind: Annotated[str, typer.Argument(help="hardhat or anvil")] = "hardhat",
    port: Annotated[int, typer.Option(min=1024, max=65535, help="the port the node was started on")] = 8545,
    every: Annotated[bool, typer.Option("--all", help="every node of this kind started from this checkout")] = False,
) -> None:
    """Stop a devnet node that `devnet start` started: the one on --port, or --all of this kind."""
    from gridledger.chain import devnet

    stopped = devnet.stop(kind, None if every else port)
    if stopped:
        ports = ", ".join(map(str, stopped))
        console.print(f"stopped {kind} on port{'s' if len(stopped) > 1 else ''} {ports}")
    else:
        console.print(f"no {kind} node was running" + ("" if every else f" on port {port}"))
