"""``gridledger community``: a facilitator with its market clock and a community of prosumer
agents trading by signed orders over HTTP, a meter operator and the DSO; ends with a summary."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from gridledger.cli.output import console
from gridledger.config import Settings
from gridledger.errors import GridLedgerError

if TYPE_CHECKING:
    from gridledger.agents.community import CommunityResult


def community(
    agents: Annotated[int, typer.Option(min=2, max=500, help="prosumer agents (from the grid's loads)")] = 24,
    slots: Annotated[int | None, typer.Option(min=1, max=96, help="15-minute slots to trade")] = None,
    hours: Annotated[float | None, typer.Option(min=0.25, max=24, help="or hours to trade (4 slots each)")] = None,
    seconds_per_slot: Annotated[
        float, typer.Option(min=0.5, help="real seconds per slot (the clock moves the chain)")
    ] = 3.0,
    start: Annotated[
        str | None, typer.Option(help="move the chain's clock here first: ISO date-time (UTC) or unix seconds")
    ] = None,
    dso_threshold: Annotated[
        float,
        typer.Option(
            min=0, help="forecast loading (%) of a line or the transformer above which the DSO buys flexibility"
        ),
    ] = 80.0,
    keystores: Annotated[Path, typer.Option(help="where the agents' keystores are kept")] = Path("data/community-keys"),
) -> None:
    """Run a prosumer community on the market clock: agents, meter operator and DSO over HTTP only."""
    from gridledger.agents.community import run_community
    from gridledger.chain.connection import LOCAL_DEVNETS
    from gridledger.cli.wallet import _slot_start

    settings = Settings()
    if settings.chain != "embedded" and settings.chain not in LOCAL_DEVNETS:
        raise GridLedgerError(
            f"a community moves the chain's clock, which only the embedded chain and local devnets allow, not "
            f"{settings.chain}"
        )
    if "database" not in settings.model_fields_set:
        settings = settings.model_copy(update={"database": str(Path("data") / "community.sqlite")})
        for suffix in ("", "-wal", "-shm"):  # a fresh chain: a fresh index (an embedded chain lives in this process)
            Path(settings.database + suffix).unlink(missing_ok=True)
    count = slots if slots is not None else round((hours or 1.0) * 4)
    result = run_community(
        agents=agents,
        slots=count,
        seconds_per_slot=seconds_per_slot,
        settings=settings,
        keystore_dir=keystores,
        start=None if start is None else _slot_start(start),
        dso_threshold_percent=dso_threshold,
        progress=lambda line: console.print(line, soft_wrap=True),
    )
    print_summary(result)


def print_summary(result: CommunityResult) -> None:
    from rich.table import Table

    from gridledger.reports.format import tokens, utc

    table = Table(title="slots", title_justify="left")
    for column in ("slot (UTC)", "fills", "price GLEUR/kWh", "traded kWh", "curtailed kWh", "status"):
        table.add_column(column, justify="right")
    for slot in result.slots:
        c = result.clearings.get(slot)
        s = result.settlements.get(slot)
        if c is None:
            table.add_row(utc(slot), "0", "–", "–", "–", "no orders")
            continue
        price = c["clearing_price_per_kwh"]
        table.add_row(
            utc(slot),
            str(len(c["trades"])),
            "–" if price is None else f"{price / 1e6:.3f}",
            f"{c['traded_wh'] / 1000:.2f}",
            f"{c['curtailed_wh'] / 1000:.2f}",
            (s or c)["status"],
        )
    console.print(table)
    people = Table(title="agents", title_justify="left")
    for column in ("agent", "bus", "PV kWp", "battery kWh", "orders", "market balance GLEUR"):
        people.add_column(column, justify="right")
    for a in result.agents:
        balance = result.balances.get(a.name, {})
        people.add_row(
            a.name,
            str(a.bus),
            f"{a.profile.pv_kwp:g}",
            "–" if a.battery is None else f"{a.battery.capacity_wh / 1000:g}",
            str(len(a.orders)),
            tokens(balance.get("available", 0) + balance.get("locked", 0)),
        )
    console.print(people)
    flex = (
        ", ".join(
            f"request {r['request_id']} at bus {r['congestion_bus']} ({r['forecast'].element}): "
            f"{result.flex_status.get(int(r['request_id']), '?')}"
            for r in result.flex_requests
        )
        or "none (the DSO's forecast showed no congestion)"
    )
    traded = sum(c["traded_wh"] for c in result.clearings.values()) / 1000
    settled = sum(1 for s in result.settlements.values() if s["status"] == "settled")
    console.print(
        f"{len(result.agents)} agents, {result.orders} orders, {traded:.2f} kWh traded in "
        f"{len(result.clearings)} cleared slots, {settled} settled; flexibility: {flex}; {result.elapsed_s:.0f} s",
        soft_wrap=True,
    )
