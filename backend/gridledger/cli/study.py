"""``gridledger study``: market designs over a year (or fewer days) of a SimBench grid."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, cast

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from gridledger.cli.output import console
from gridledger.errors import GridLedgerError

if TYPE_CHECKING:
    from gridledger.study.market import MarketStudy
    from gridledger.study.records import DesignRun


def study(
    grid: Annotated[str, typer.Option(help="SimBench grid code (with its year of profiles)")] = "1-LV-rural1--2-sw",
    days: Annotated[int, typer.Option(min=1, max=366, help="days to run (366 = SimBench's whole year)")] = 366,
    first_day: Annotated[int, typer.Option(min=1, max=366, help="first day of SimBench's 2016 profile year")] = 1,
    tariff: Annotated[
        str, typer.Option(help="the DSO's network charge on traded energy: none, flat, tou or cpp")
    ] = "tou",
    local_discount: Annotated[float, typer.Option(min=0.0, max=1.0, help="fraction off the network charge")] = 0.0,
    out: Annotated[Path | None, typer.Option(help="directory for study.html, its plots and the CSV files")] = None,
    serial: Annotated[bool, typer.Option("--serial", help="run every design in this process")] = False,
    ledger_days: Annotated[
        int,
        typer.Option(
            min=0,
            help="then run this many days from the first day on the configured chain (embedded by default), "
            "with the network tariff and the design's flexibility, and compare them with the fast path",
        ),
    ] = 0,
    ledger_design: Annotated[str, typer.Option(help="the design the ledger runs: c or d")] = "d",
) -> None:
    """Compare market designs (no market, P2P, P2P then curtailment, joint, optimum) on one grid."""
    from gridledger.study.config import StudyConfig
    from gridledger.study.ledger import LEDGER_DESIGNS
    from gridledger.study.tariffs import Tariff, TariffShape

    on_ledger = {d.value: d for d in LEDGER_DESIGNS}
    if ledger_design not in on_ledger:
        raise GridLedgerError(f"design {ledger_design!r} does not run on the ledger; allowed: {', '.join(on_ledger)}")
    if ledger_days > days:
        raise GridLedgerError(f"--ledger-days ({ledger_days}) must be at most --days ({days})")
    shape = cast(TariffShape, tariff)  # Tariff refuses a shape it does not know, naming the allowed ones
    config = StudyConfig(first_day=first_day, days=days, tariff=Tariff(shape=shape, local_discount=local_discount))

    from gridledger.reports.study_report import terminal_tables, write_report
    from gridledger.reports.study_tables import loads_and_generation
    from gridledger.study.grid import check_grid_code
    from gridledger.study.run import run_study

    check_grid_code(grid)
    target = out or Path("data") / "study" / grid
    runs = 9  # (a), (b), (c), (d), (e) and (b) under four tariff shapes
    with Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
    ) as progress:
        task = progress.add_task(f"loading {grid} and its year of profiles", total=runs * days * 96)

        def advance(label: str, slots: int) -> None:
            progress.update(task, advance=slots, description=label)

        result = run_study(config, grid, advance, parallel=not serial)
    console.print(loads_and_generation(result))
    for table in terminal_tables(result):
        console.print(table)
    files = write_report(result, target)
    timing = ", ".join(f"{k} {v:,.1f} s ({result.cpu.get(k, 0.0):,.1f} s CPU)" for k, v in result.timings.items())
    console.print(
        f"run time {result.seconds:,.1f} s, {sum(result.cpu.values()):,.0f} s CPU in all processes "
        f"(peak memory {result.peak_memory_mb:,.0f} MB): {timing}",
        soft_wrap=True,
    )
    console.print(f"report: {files['study.html']}; per-slot results: {files['slots.csv']}")
    if ledger_days:
        _on_ledger(result.study, result.runs[on_ledger[ledger_design]], ledger_days)


def _on_ledger(study: MarketStudy, run: DesignRun, days: int) -> None:
    """The first ``days`` days of ``run`` again, on the ledger, slot by slot against the fast path."""
    from gridledger.chain.ledger import Ledger
    from gridledger.config import Settings
    from gridledger.study.ledger import compare, flex_money, market_money, reference_run, run_on_ledger

    settings = Settings()
    slots = days * 96
    first, soc, tariff = run.first_slot, run.soc_wh[0], run.tariff[:slots]
    reference = reference_run(study, design=run.design, first_slot=first, days=days, soc_wh=soc, tariff=tariff)
    with console.status(f"compiling, deploying on {settings.chain} and onboarding the participants…"):
        ledger, _ = Ledger.open(settings, record=settings.chain != "embedded")
    with Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=console
    ) as bar:
        task = bar.add_task(f"{run.design.title} on the ledger", total=slots)
        on_chain = run_on_ledger(
            ledger,
            study,
            design=run.design,
            first_slot=first,
            days=days,
            soc_wh=soc,
            tariff=tariff,
            on_slot=lambda _: bar.advance(task),
        )
    differ = compare(study, reference, on_chain)
    shortfall, surplus = ledger.market.functions.imbalancePrices().call()
    money: dict[int, int] = {}
    for record, metered in zip(on_chain.records, on_chain.metered_wh, strict=True):
        for i, amount in market_money(record, metered, shortfall=shortfall, surplus=surplus).items():
            money[i] = money.get(i, 0) + amount
    balances = {i: v for i, v in on_chain.balance_change.items() if v} == {i: v for i, v in money.items() if v}
    charges = int(reference.network_charges().sum())
    flex_ok = on_chain.flex_paid == flex_money(study, reference)
    gas = sum(on_chain.gas_per_slot) / slots
    console.print(
        f"on the ledger: {slots - len(differ)} of {slots} slots identical to the fast path (fills after the network "
        f"check, price, network charges, curtailment, flexibility, meter readings, state of charge); market balances "
        f"{'equal' if balances else 'DIFFERENT'}; DSO's network charges {on_chain.dso_network_charges:,} base units "
        f"(fast path {charges:,}); flexibility payments {'equal' if flex_ok else 'DIFFERENT'} "
        f"({sum(on_chain.flex_paid.values()):,} base units); measured gas {gas:,.0f} per slot; "
        f"{on_chain.seconds:,.0f} s",
        soft_wrap=True,
    )
    if differ or not balances or not flex_ok or on_chain.dso_network_charges != charges:
        raise GridLedgerError(f"the ledger and the fast path differ (slots {differ[:10]})")
