"""The study's tables: rows (plain values, for the HTML and the CSV) and their terminal form.

- ``design_rows``: the designs side by side on one welfare (issue 12, item 3);
- ``party_rows``: the DSO, the supplier and balancing account, the facilitator (item 5);
- ``participant_rows``: every participant's cost and benefit against the no-market baseline;
- ``tariff_rows``: how the network charge's shape moves where and when trades happen (item 4).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from rich.table import Table

from gridledger.study.grid import Kind
from gridledger.study.records import Design, DesignRun
from gridledger.study.run import StudyResult
from gridledger.units import SLOTS_PER_DAY, SLOTS_PER_HOUR, tokens

MARKETS = (Design.P2P_UNCONSTRAINED, Design.P2P_THEN_CURTAILMENT, Design.JOINT)
Row = dict[str, Any]


def run_of(result: StudyResult, design: Design) -> DesignRun:
    return result.optimum.run if design is Design.OPTIMUM else result.runs[design]


def pv_curtailed_wh(result: StudyResult, design: Design) -> int:
    """PV not generated: curtailment the DSO bought, and PV sales the network check curtailed."""
    run, pvs = run_of(result, design), result.study.pvs
    return int(np.clip(run.flex_wh[:, pvs], 0, None).sum() + run.curtailed_wh[:, pvs].sum())


def battery_flex_wh(result: StudyResult, design: Design) -> int:
    run = run_of(result, design)
    return 0 if design is Design.OPTIMUM else int(np.abs(run.flex_wh[:, result.study.bats]).sum())


def overloaded(run: DesignRun) -> int:
    return int((run.violations > 0).sum())


def design_rows(result: StudyResult) -> list[Row]:
    best = result.welfare(Design.OPTIMUM)
    annuity = result.config.reinforcement.annuity * result.config.days / 366
    rows = []
    for design in Design:
        run = run_of(result, design)
        acc = result.accounts.get(design)
        welfare = result.welfare(design)
        rows.append(
            {
                "design": design.title,
                "welfare (tokens)": tokens(welfare),
                "% of (e)": 100 * welfare / best if best else float("nan"),
                "quarter-hours over a limit": overloaded(run),
                "worst transformer loading (%)": float(run.trafo_loading.max()),
                "PV curtailed (kWh)": pv_curtailed_wh(result, design) / 1000,
                "battery flexibility activated (kWh)": battery_flex_wh(result, design) / 1000,
                "battery room reserved (kWh·days)": float(run.reserved_wh.sum()) / 1000,
                "traded locally (kWh)": (acc.traded_wh / 1000) if acc else float("nan"),
                "network charges (tokens)": tokens(acc.dso_network_charges) if acc else float("nan"),
                "DSO flexibility spend (tokens)": tokens(acc.dso_spend) if acc else float("nan"),
                "reinforcement annuity, same period (tokens)": tokens(annuity),
            }
        )
    return rows


def participant_rows(result: StudyResult) -> list[Row]:
    """Every participant: its money in each market design against (a) (received − paid, with the
    change in its stored energy's value), and the parts of it in design (d)."""
    base = result.accounts[Design.NO_MARKET]
    joint = result.accounts[Design.JOINT]
    feeder = result.grid.feeder_of_bus
    rows = []
    for p in result.grid.participants:
        i = p.index
        before = base.participant_net[i] + base.participant_stored_value[i]
        row: Row = {"participant": p.name, "kind": p.kind.value, "bus": p.bus, "feeder": feeder.get(p.bus, "")}
        row["no market: net (tokens)"] = tokens(before)
        for design in MARKETS:
            acc = result.accounts[design]
            row[f"{design.value}: benefit vs (a)"] = tokens(
                acc.participant_net[i] + acc.participant_stored_value[i] - before
            )
        row["(d) local purchases"] = tokens(joint.market_paid[i])
        row["(d) local sales"] = tokens(joint.market_received[i])
        row["(d) network charges"] = tokens(joint.network_charges_paid[i])
        row["(d) supplier: paid"] = tokens(joint.supplier_paid[i])
        row["(d) supplier: received"] = tokens(joint.supplier_received[i])
        row["(d) flexibility received"] = tokens(joint.flex_received[i])
        row["(d) activation energy paid"] = tokens(joint.balancing_net_paid[i])
        rows.append(row)
    return rows


def party_rows(result: StudyResult) -> list[Row]:
    """The DSO, the supplier and balancing account, and the facilitator, per design (tokens)."""
    base = result.accounts[Design.NO_MARKET]
    annuity = result.config.reinforcement.annuity * result.config.days / 366
    gas_price = result.config.gas_price_per_million / 1e6
    rows = []
    for design in (Design.NO_MARKET, *MARKETS):
        acc = result.accounts[design]
        run = result.runs[design]
        feasible = overloaded(run) == 0
        gas_cost = acc.gas * gas_price
        rows.append(
            {
                "design": design.title,
                "DSO: network charges in": tokens(acc.dso_network_charges),
                "DSO: availability paid": tokens(acc.dso_availability),
                "DSO: utilisation paid": tokens(acc.dso_utilisation),
                "DSO: PV curtailment paid": tokens(acc.dso_pv_curtailment),
                "DSO: net": tokens(acc.dso_net),
                "DSO: reinforcement avoided": tokens(annuity if feasible else 0),
                "supplier: imports sold": tokens(acc.supplier_imports),
                "supplier: exports bought": tokens(acc.supplier_exports),
                "supplier: sales lost vs (a)": tokens(base.supplier_imports - acc.supplier_imports),
                "supplier: purchases avoided vs (a)": tokens(base.supplier_exports - acc.supplier_exports),
                "balancing: pot remainders": tokens(acc.balancing_pot),
                "balancing: activation energy": tokens(acc.balancing_activation),
                "balancing: imbalance": 0.0,
                "facilitator: gas (million)": acc.gas / 1e6,
                "facilitator: gas per slot": acc.gas / run.slots,
                "facilitator: gas cost (tokens)": tokens(gas_cost),
                "facilitator: fee covering it (base units per kWh traded)": gas_cost / (acc.traded_wh / 1000)
                if acc.traded_wh
                else 0.0,
                "money check: all parties sum to": acc.balance,
            }
        )
    return rows


def tariff_rows(result: StudyResult) -> list[Row]:
    """Design (b) under each tariff shape: traded energy by time of day and by the buyers' feeder."""
    best = result.welfare(Design.OPTIMUM)
    feeders = sorted({f for f in result.grid.feeder_of_bus.values()})
    feeder_of = [result.grid.feeder_of_bus.get(p.bus, "") for p in result.grid.participants]
    critical = set(result.critical_days)
    rows = []
    for t in result.tariffs:
        run, acc = t.run, t.accounts
        bought = np.clip(run.fill_wh, 0, None)
        index = np.arange(run.first_slot, run.first_slot + run.slots)
        hour = (index % SLOTS_PER_DAY) // SLOTS_PER_HOUR
        per_slot = bought.sum(axis=1)
        start, end = t.tariff.critical_hours
        on_critical = np.isin(index // SLOTS_PER_DAY, list(critical)) & (hour >= start) & (hour < end)
        row: Row = {
            "tariff": t.tariff.describe(),
            "traded (kWh)": per_slot.sum() / 1000,
            "00–07 h": per_slot[hour < 7].sum() / 1000,
            "07–17 h": per_slot[(hour >= 7) & (hour < 17)].sum() / 1000,
            "17–21 h": per_slot[(hour >= 17) & (hour < 21)].sum() / 1000,
            "21–24 h": per_slot[hour >= 21].sum() / 1000,
            f"critical days {start}–{end} h": per_slot[on_critical].sum() / 1000,
        }
        for f in feeders:
            row[f"bought on {f}"] = bought[:, [i for i, x in enumerate(feeder_of) if x == f]].sum() / 1000
        row["network charges (tokens)"] = tokens(acc.dso_network_charges)
        row["welfare of (b) (tokens)"] = tokens(acc.welfare)
        row["% of (e)"] = 100 * acc.welfare / best if best else float("nan")
        rows.append(row)
    return rows


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:,.2f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def as_table(rows: list[Row], title: str, *, transpose: bool = False) -> Table:
    """Rows as a rich table; ``transpose`` puts one column per row (for wide rows)."""
    table = Table(title=title, title_justify="left")
    if not rows:
        return table
    keys = list(rows[0])
    if transpose:
        table.add_column("")
        for row in rows:
            table.add_column(_cell(row[keys[0]]), justify="right")
        for key in keys[1:]:
            table.add_row(key, *(_cell(row[key]) for row in rows))
        return table
    for key in keys:
        table.add_column(key, justify="left" if isinstance(rows[0][key], str) else "right")
    for row in rows:
        table.add_row(*(_cell(row[k]) for k in keys))
    return table


def loads_and_generation(result: StudyResult) -> str:
    """One line on the grid: its participants and their energy over the run."""
    g, s = result.grid, result.study
    ratings = ", ".join(f"{v / 1000:,.0f}" for v in g.lv_transformers_va)
    first = result.runs[Design.NO_MARKET].first_slot
    span = slice(first, first + result.runs[Design.NO_MARKET].slots)
    return (
        f"{g.code}: {len(g.of_kind(Kind.LOAD))} loads ({s.load_wh[span].sum() / 1e6:,.1f} MWh), "
        f"{len(g.of_kind(Kind.PV))} PV generators ({s.pv_wh[span].sum() / 1e6:,.1f} MWh), "
        f"{len(g.of_kind(Kind.BATTERY))} batteries ({sum(b.capacity_wh for b in g.batteries) / 1000:,.0f} kWh, "
        f"{sum(b.power_w for b in g.batteries) / 1000:,.0f} kW); LV transformers {ratings} kVA"
    )
