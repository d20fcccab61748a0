"""``gridledger study``: market designs over a year (or fewer days) of a SimBench grid."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, cast

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from gridledger.cli.output import console


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
) -> None:
    """Compare market designs (no market, P2P, P2P then curtailment, joint, optimum) on one grid."""
    from gridledger.study.config import StudyConfig
    from gridledger.study.tariffs import Tariff, TariffShape

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
    timing = ", ".join(f"{k} {v:,.1f} s" for k, v in result.timings.items())
    console.print(
        f"run time {result.seconds:,.1f} s (peak memory {result.peak_memory_mb:,.0f} MB): {timing}", soft_wrap=True
    )
    console.print(f"report: {files['study.html']}; per-slot results: {files['slots.csv']}")
