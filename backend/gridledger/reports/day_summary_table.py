"""The market day's summary as the terminal shows it: named lines, then a table of prosumers
(for a few dozen prosumers each of them; for more, the table summarised by group, with every
prosumer's row written to a CSV file)."""

from __future__ import annotations

import csv
import statistics
from pathlib import Path

from rich.console import RenderableType
from rich.table import Table
from rich.text import Text

from gridledger.reports.day_summary import DaySummary
from gridledger.reports.format import tokens, utc
from gridledger.sim.flex_day import FlexOutcome
from gridledger.units import tokens as as_tokens

PROSUMER_COLUMNS = (
    "prosumer",
    "bus",
    "PV kWp",
    "import kWh",
    "export kWh",
    "bought kWh",
    "sold kWh",
    "baseline",
    "with market",
    "saving",
)


def flex_lines(flex: FlexOutcome | None) -> list[tuple[str, str]]:
    """The day's flexibility request in named lines (or why there was none)."""
    if flex is None:
        return [("DSO flexibility request", "not in this run (it needs 16:30–19:00 among the slots run)")]
    paid = flex.availability_paid + flex.utilisation_paid
    lines = [
        (
            "DSO flexibility request",
            f"#{flex.request_id} secure, up, at bus {flex.congestion_bus} (the participants' weakest), "
            f"{utc(flex.window_start, '%H:%M')}–{utc(flex.window_start + 3_600, '%H:%M')}, "
            f"{flex.power_w / 1000:g} kW; {flex.offers} offers, {flex.awarded} awarded "
            f"({flex.awarded_power_w / 1000:g} kW)",
        ),
        (
            "flexibility delivered",
            f"{flex.delivered_wh / 1000:.2f} of {flex.ordered_wh / 1000:.2f} kWh ordered; paid {tokens(paid)} "
            f"(availability {tokens(flex.availability_paid)}, utilisation {tokens(flex.utilisation_paid)}); "
            f"DSO refunded {tokens(flex.refunded)} of {tokens(flex.escrow)} escrowed",
        ),
    ]
    if flex.note:
        lines.append(("", flex.note))
    return lines


def summary_lines(summary: DaySummary) -> list[tuple[str, str]]:
    """The day in named lines: volumes, prices, the network, flexibility, gas and time."""
    avg = summary.average_price_per_kwh
    network = summary.network
    return [
        ("slots cleared and settled", f"{summary.slots}"),
        ("orders", f"{summary.orders:,}"),
        ("trades (filled orders)", f"{summary.trades:,}"),
        ("energy traded locally", f"{summary.traded_wh / 1000:,.2f} kWh"),
        ("average clearing price", f"{as_tokens(avg):.4f} per kWh (volume-weighted)" if avg else "no trades"),
        ("network model", f"{summary.network_name}"),
        ("worst line loading", f"{network.max_line_loading_percent:.1f} %"),
        ("worst transformer loading", f"{network.max_trafo_loading_percent:.1f} %"),
        ("bus voltage range", f"{network.v_min_pu:.3f}–{network.v_max_pu:.3f} pu"),
        (
            "slots curtailed",
            f"{network.curtailed_slots} ({network.curtailed_wh / 1000:.2f} kWh curtailed); "
            f"slots with violations left: {network.slots_with_violations}",
        ),
        *flex_lines(summary.flex),
        ("total gas", f"{summary.total_gas:,}"),
        ("gas by call", ", ".join(f"{k} {v:,}" for k, v in summary.gas_by_call.items())),
        ("wall time", f"{summary.seconds:.1f} s"),
        *(
            [("time by phase", ", ".join(f"{k} {v:.1f} s" for k, v in summary.phase_seconds.items()))]
            if summary.phase_seconds
            else []
        ),
    ]


def prosumer_table(summary: DaySummary) -> Table:
    """Each prosumer's energy and cost against the retail and feed-in tariffs, with a total row."""
    table = Table(title="Each prosumer: cost against retail/feed-in tariffs (tokens; negative = income)")
    for column in PROSUMER_COLUMNS:
        table.add_column(column, justify="left" if column == "prosumer" else "right")
    for p in summary.prosumers:
        table.add_row(
            p.name.split(" ", 1)[-1],
            str(p.bus),
            f"{p.pv_kwp:.0f}",
            f"{p.imported_wh / 1000:.2f}",
            f"{p.exported_wh / 1000:.2f}",
            f"{p.bought_wh / 1000:.2f}",
            f"{p.sold_wh / 1000:.2f}",
            tokens(p.baseline_cost),
            tokens(p.market_cost),
            tokens(p.saving),
        )
    table.add_row(
        "all",
        "",
        "",
        "",
        "",
        "",
        "",
        tokens(sum(p.baseline_cost for p in summary.prosumers)),
        tokens(sum(p.market_cost for p in summary.prosumers)),
        tokens(sum(p.saving for p in summary.prosumers)),
        style="bold",
    )
    return table


FULL_TABLE_ROWS = 30  # more prosumers than this: the console shows the table summarised

# The CSV's columns: one row per prosumer; energy in kWh over the run, money in tokens
# (negative = income), costs against the retail/feed-in baseline as in the console table.
CSV_COLUMNS = (
    "prosumer",  # the grid's load name
    "address",  # the prosumer's account
    "bus",  # its connection point in the network model
    "pv_kwp",  # rooftop PV size (0: none)
    "import_kwh",  # metered energy taken from the grid
    "export_kwh",  # metered energy fed in
    "bought_kwh",  # filled buy orders
    "sold_kwh",  # filled sell orders
    "baseline_tokens",  # cost with every import at retail and every export at feed-in
    "with_market_tokens",  # cost with the market (its market account plus the supplier's bill)
    "saving_tokens",  # baseline − with market
)


def write_prosumer_csv(summary: DaySummary, path: Path) -> Path:
    """Every prosumer's row (``CSV_COLUMNS``) in ``path``; returns it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(CSV_COLUMNS)
        for p in summary.prosumers:
            writer.writerow(
                [
                    p.name,
                    p.address,
                    p.bus,
                    f"{p.pv_kwp:g}",
                    f"{p.imported_wh / 1000:.3f}",
                    f"{p.exported_wh / 1000:.3f}",
                    f"{p.bought_wh / 1000:.3f}",
                    f"{p.sold_wh / 1000:.3f}",
                    f"{as_tokens(p.baseline_cost):.6f}",
                    f"{as_tokens(p.market_cost):.6f}",
                    f"{as_tokens(p.saving):.6f}",
                ]
            )
    return path


def prosumer_groups(summary: DaySummary) -> Table:
    """The prosumer table summarised: with PV, without PV and all, each a sum over its members,
    with the median saving per prosumer and how many came out ahead."""
    table = Table(title="Prosumers by group: cost against retail/feed-in tariffs (tokens; negative = income)")
    for column in ("group", "prosumers", *PROSUMER_COLUMNS[3:], "median saving", "ahead"):
        table.add_column(column, justify="left" if column == "group" else "right")
    groups = {
        "with PV": [p for p in summary.prosumers if p.pv_kwp > 0],
        "without PV": [p for p in summary.prosumers if p.pv_kwp == 0],
        "all": summary.prosumers,
    }
    for name, members in groups.items():
        if not members:
            continue
        table.add_row(
            name,
            f"{len(members):,}",
            f"{sum(p.imported_wh for p in members) / 1000:,.2f}",
            f"{sum(p.exported_wh for p in members) / 1000:,.2f}",
            f"{sum(p.bought_wh for p in members) / 1000:,.2f}",
            f"{sum(p.sold_wh for p in members) / 1000:,.2f}",
            tokens(sum(p.baseline_cost for p in members)),
            tokens(sum(p.market_cost for p in members)),
            tokens(sum(p.saving for p in members)),
            tokens(statistics.median(p.saving for p in members)),
            f"{sum(p.saving > 0 for p in members):,}",
            style="bold" if name == "all" else None,
        )
    return table


def render(summary: DaySummary, *, csv_path: Path | None = None) -> list[RenderableType]:
    """Everything the demo prints after its day, in order (a blank line first). With
    ``csv_path``, every prosumer's row is written there and the console names the file; beyond
    FULL_TABLE_ROWS prosumers the console shows the table summarised by group."""
    lines: list[RenderableType] = [
        "",
        Text("Market day summary", style="bold"),
        *(Text(f"  {name:<28} {value}") for name, value in summary_lines(summary)),
    ]
    if len(summary.prosumers) <= FULL_TABLE_ROWS:
        lines.append(prosumer_table(summary))
    else:
        lines.append(prosumer_groups(summary))
    if csv_path is not None:
        written = write_prosumer_csv(summary, csv_path)
        lines.append(Text(f"  every prosumer's row: {written}"))
    return lines
