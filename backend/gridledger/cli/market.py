"""The market's commands: ``demo``, ``audit`` and ``flex-report``."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from gridledger.cli.output import console
from gridledger.config import Settings
from gridledger.errors import GridLedgerError
from gridledger.units import DEFAULT_GRID
from gridledger.units import tokens as as_tokens

if TYPE_CHECKING:
    from gridledger.audit import SlotAudit
    from gridledger.chain.ledger import Ledger


def demo(
    grid: Annotated[
        str,
        typer.Option(
            help="SimBench grid code (LV, MV, HV, MV/LV or HV/MV grids, e.g. 1-MVLV-rural-all-0-sw); "
            "its loads are the prosumers"
        ),
    ] = DEFAULT_GRID,
    prosumers: Annotated[
        int,
        typer.Option(
            min=2,
            help="number of prosumers: 2 to the grid's loads (104 on 1-LV-semiurb5--0-sw, 5,373 on "
            "1-MVLV-rural-all-0-sw, 8,772 on 1-MVLV-semiurb-all-0-sw)",
        ),
    ] = 24,
    day: Annotated[int, typer.Option(min=1, max=366, help="day of SimBench's 2016 profile year")] = 173,
    slots: Annotated[int, typer.Option(min=1, max=96, help="15-minute slots to run")] = 96,
    first_slot: Annotated[int, typer.Option(min=0, max=95, help="first slot of the day (48 = 12:00)")] = 0,
    seed: Annotated[int, typer.Option(help="seed of prices and meter deviations")] = 7,
    table_csv: Annotated[
        Path | None,
        typer.Option(help="where to write every prosumer's row (default: demo-prosumers.csv beside the database)"),
    ] = None,
    audit_slots: Annotated[
        bool, typer.Option("--audit", help="audit every slot afterwards (slow on the embedded chain)")
    ] = False,
) -> None:
    """Run one market day of P2P trading on the configured chain (embedded by default)."""
    from gridledger.chain.ledger import Ledger
    from gridledger.errors import ConfigurationError
    from gridledger.network.profiles import grid_loads, require_grid
    from gridledger.reports.day_summary import summarise
    from gridledger.reports.day_summary_table import render
    from gridledger.sim.market_day import DayConfig, SlotOutcome, run_market_day

    try:
        require_grid(grid)
    except ConfigurationError as exc:
        raise typer.BadParameter(str(exc), param_hint="'--grid'") from None
    with console.status(f"loading SimBench grid {grid}…"):
        loads = grid_loads(grid)
    if prosumers > loads:
        raise typer.BadParameter(
            f"{prosumers:,} is more than grid {grid} has loads: choose 2 to {loads:,}", param_hint="'--prosumers'"
        )
    settings = Settings()
    config = DayConfig(
        prosumers=prosumers,
        day=day,
        grid=grid,
        slots=slots,
        first_slot=first_slot,
        seed=seed,
        database=settings.database,
    )
    with console.status("compiling contracts, starting the chain and deploying…"):
        ledger, deployed = Ledger.open(settings, record=settings.chain != "embedded")
    market = ledger.deployment.addresses["EnergyMarket"]
    console.print(
        f"[bold]GridLedger demo[/] on [cyan]{settings.chain}[/] (chain {ledger.chain.chain_id}); "
        f"market {market} "
        f"({'deployed now' if deployed else 'reused'}), solc {ledger.build.compiler_version.split('+')[0]}"
    )
    console.print(
        f"{prosumers:,} prosumers of SimBench {config.grid} ({loads:,} loads), day {day} of 2016, "
        f"{slots} slots of 15 minutes"
    )
    with Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
    ) as progress:
        task = progress.add_task(f"onboarding {prosumers:,} prosumers", total=slots)

        def on_slot(outcome: SlotOutcome) -> None:
            clock = datetime.fromtimestamp(outcome.delivery_start, tz=UTC).strftime("%H:%M")
            price = outcome.clearing.price_per_kwh
            what = f"{outcome.clearing.traded_wh / 1000:6.2f} kWh at {as_tokens(price):.3f}" if price else "no trade"
            progress.update(task, advance=1, description=f"slot {clock}  {outcome.orders:3d} orders  {what}")

        result = run_market_day(ledger, config, on_slot=on_slot)
    csv_path = table_csv or Path(settings.database).parent / "demo-prosumers.csv"
    for renderable in render(summarise(result), csv_path=csv_path):
        console.print(renderable)
    if not audit_slots:
        return
    with console.status("auditing every slot from the chain's records…"):
        audits = _audit(ledger, settings, [s.delivery_start for s in result.slots], grid=config.grid)
    confirmed = sum(a.confirmed for a in audits)
    console.print(
        f"audit: {confirmed} of {len(audits)} slots confirmed from the chain's records, the published "
        f"network model and the stored reports (`gridledger audit` re-runs this on a devnet)"
    )


def _audit(ledger: Ledger, settings: Settings, slots: list[int], *, grid: str) -> list[SlotAudit]:
    from gridledger.audit import audit_slot
    from gridledger.network.model import NetworkModel
    from gridledger.network.validation import BatchEngine
    from gridledger.store.reports import ReportStore

    model = NetworkModel.load(grid)
    engine = BatchEngine(model)
    store = ReportStore(settings.database)
    return [audit_slot(ledger, model, engine, store, slot) for slot in slots]


def audit(
    network: Annotated[str, typer.Option(help="SimBench code or pandapower JSON of the published model")] = (
        "1-LV-semiurb5--0-sw"
    ),
    slot: Annotated[
        list[int] | None, typer.Option(help="delivery start(s) to audit; default: every cleared slot")
    ] = None,
    uftp_terms: Annotated[
        str | None,
        typer.Option(
            envvar="GRIDLEDGER_UFTP_TERMS",
            help="the DSO's UFTP terms (JSON of GET /uftp/terms, or the UFTP register): also trace every UFTP offer "
            "to its aggregator's signed message, kept in GRIDLEDGER_DATABASE (needed when UFTP offers exist and "
            "no --slot is given)",
        ),
    ] = None,
) -> None:
    """Re-run clearing and network validation for cleared slots and compare with the chain; trace UFTP offers."""
    from gridledger.chain.ledger import Ledger

    settings = Settings()
    if settings.chain == "embedded":
        raise GridLedgerError(
            "the embedded chain ends with the process that ran it: audit a devnet or RPC chain "
            "(GRIDLEDGER_CHAIN=hardhat|anvil|http://…); the demo audits its own day at the end"
        )
    ledger, _ = Ledger.open(settings)
    slots = slot or sorted(
        {
            int(e["args"]["deliveryStart"])
            for e in ledger.market.events.SlotCleared.get_logs(from_block=ledger.deployment.block)
        }
    )
    failed = 0
    for result in _audit(ledger, settings, slots, grid=network) if slots else []:
        clock = datetime.fromtimestamp(result.delivery_start, tz=UTC).strftime("%Y-%m-%d %H:%M")
        failed += _print_verdict(clock, result.confirmed, result.differences)
    console.print(f"{len(slots) - failed} of {len(slots)} slots confirmed")
    if not slot or uftp_terms is not None:  # auditing chosen slots traces UFTP offers only when asked
        failed += _audit_uftp(ledger, settings, uftp_terms)
    if failed:
        raise typer.Exit(code=1)


def _print_verdict(what: str, confirmed: bool, differences: list[str]) -> int:
    """Prints one audited item confirmed, or refuted with each difference; 1 if refuted."""
    if confirmed:
        console.print(f"{what}  confirmed", soft_wrap=True)
        return 0
    console.print(f"{what}  [red]REFUTED[/]", soft_wrap=True)
    for difference in differences:
        console.print(f"    - {difference}", soft_wrap=True, markup=False)
    return 1


def _audit_uftp(ledger: Ledger, settings: Settings, terms_path: str | None) -> int:
    """Prints each UFTP-sourced offer confirmed or refuted (with why); the number refuted."""
    sourced = ledger.flex.events.OfferSourced.get_logs(from_block=ledger.deployment.block)
    if not sourced:
        return 0
    if terms_path is None:
        raise GridLedgerError(
            f"{len(sourced)} offers on the ledger came through UFTP: give the DSO's UFTP terms (--uftp-terms, the JSON "
            "of GET /uftp/terms) to trace them to the aggregators' signed messages"
        )
    from gridledger.audit import audit_uftp_offers
    from gridledger.encoding import short_hex, to_hex
    from gridledger.uftp.registry import PublicTerms
    from gridledger.uftp.store import MessageStore

    terms = PublicTerms.load(terms_path)
    store = MessageStore(settings.database)

    def fetch(message_hash: bytes) -> bytes | None:
        row = store.message(to_hex(message_hash))
        return bytes(row["body"]) if row is not None and row["direction"] == "in" else None

    audits = audit_uftp_offers(
        ledger, fetch, congestion_points=terms.congestion_points, time_zone=terms.time_zone, currency=terms.currency
    )
    refuted = 0
    for a in audits:
        what = f"UFTP offer {short_hex(a.offer_id)}  message {short_hex(a.source_message)}"
        refuted += _print_verdict(what, a.confirmed, a.differences)
    console.print(f"{len(audits) - refuted} of {len(audits)} UFTP offers traced to their signed messages")
    return refuted


def flex_report(
    days: Annotated[int, typer.Option(min=1, max=28, help="days to run (7 = a week)")] = 7,
    first_day: Annotated[int, typer.Option(min=1, max=330, help="first day of SimBench's 2016 profiles")] = 18,
) -> None:
    """Run a week on a congested feeder twice: independent markets versus joint clearing."""
    from gridledger.reports.flex_week import GRID, run_week
    from gridledger.reports.flex_week_table import week_note, week_table

    with console.status(f"running {days} days of {GRID} twice…"):
        independent, joint, decisions = run_week(first_day=first_day, days=days)
    console.print(week_table(independent, joint, first_day=first_day, days=days))
    console.print(week_note(joint, decisions, days=days))
