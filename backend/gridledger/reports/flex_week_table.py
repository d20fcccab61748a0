"""The flexibility week as the terminal shows it: both runs side by side, then what joint clearing chose."""

from __future__ import annotations

from typing import Any

from rich.table import Table

from gridledger.reports.flex_week import GRID, RunTotals
from gridledger.units import tokens as as_tokens


def week_table(independent: RunTotals, joint: RunTotals, *, first_day: int, days: int) -> Table:
    """One column per run, one row per total."""
    table = Table(title=f"{GRID}, days {first_day}–{first_day + days - 1} of 2016, evenings 17:00–21:00")
    rows = [independent.row(), joint.row()]
    table.add_column("")
    for row in rows:
        table.add_column(str(row["run"]), justify="right")
    for key in list(rows[0])[1:]:
        table.add_row(key, *(f"{row[key]:,.2f}" if isinstance(row[key], float) else f"{row[key]:,}" for row in rows))
    return table


def week_note(joint: RunTotals, decisions: list[dict[str, Any]], *, days: int) -> str:
    """The joint run's choices and the DSO's payments in one sentence."""
    return (
        f"{joint.congested_slots} of {days * 16} slots congested before any action; joint clearing chose "
        + ", ".join(f"{choice} in {count}" for choice, count in sorted(joint.choices.items()))
        + f" slots. DSO availability payments {as_tokens(joint.flex_availability_cost):,.2f}, utilisation "
        f"{as_tokens(joint.flex_utilisation_cost):,.2f} tokens; {len(decisions)} decisions recorded."
    )
