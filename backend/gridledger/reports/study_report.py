"""The study's report: an HTML page with its plots (matplotlib, PNG files beside it) and the
per-slot results as CSV, made from the same tables (``reports.study_tables``).

Files written to the output directory:

    study.html            the tables, the plots, the assumptions and a data dictionary
    slots.csv             one row per slot and design (data dictionary in the page)
    participants.csv      one row per participant: cost and benefit per design
    loading_duration.png, monthly_welfare.png, price_duration.png, participants.png,
    flexibility_heatmap.png, tariff_hours.png
"""

from __future__ import annotations

import html
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from gridledger.reports.study_tables import (
    MARKETS,
    as_table,
    design_rows,
    loads_and_generation,
    participant_rows,
    party_rows,
    run_of,
    tariff_rows,
)
from gridledger.study.accounts import month_of_slot
from gridledger.study.market import delivery_start
from gridledger.study.records import Check, Design
from gridledger.study.run import StudyResult
from gridledger.units import SLOTS_PER_DAY, SLOTS_PER_HOUR

SLOT_COLUMNS = {
    "slot": "quarter-hour of the 2016 profile year, 0-based",
    "delivery_start": "unix seconds (UTC) of the slot's start",
    "design": "a to e (see the main table)",
    "price_per_kwh": "clearing price, token base units per kWh (0: no trade)",
    "network_charge_per_kwh": "the DSO's tariff t on traded energy, base units per kWh",
    "traded_wh": "energy bought locally after the network check",
    "network_charges": "base units buyers paid the DSO",
    "trades_curtailed_wh": "energy taken off fills by the network check (sold side and bought side)",
    "pv_curtailed_wh": "PV not generated: curtailment bought and PV sales curtailed",
    "battery_flex_wh": "battery flexibility activated (+ charge more, − discharge more)",
    "battery_soc_wh": "the batteries' total state of charge after the slot",
    "trafo_loading_percent": "worst transformer loading",
    "line_loading_percent": "worst line loading",
    "v_min_pu": "lowest bus voltage",
    "v_max_pu": "highest bus voltage",
    "violations": "elements over a limit after the slot's relief",
    "checked_by": "screen (power-grid-model batch) or facilitate (its pandapower AC check)",
}
PLOTTED_PARTICIPANTS = 60
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
SHAPE_COLOURS = {"none": "#7f7f7f", "flat": "#1f77b4", "tou": "#ff7f0e", "cpp": "#2ca02c"}
COLOURS = {"a": "#7f7f7f", "b": "#d62728", "c": "#ff7f0e", "d": "#2ca02c", "e": "#1f77b4"}


def write_report(result: StudyResult, out_dir: Path) -> dict[str, Path]:
    """Writes the page, its plots and the CSV files; returns them by name."""
    import matplotlib

    matplotlib.use("Agg")
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {
        "slots.csv": _slots_csv(result, out_dir / "slots.csv"),
        "participants.csv": _rows_csv(participant_rows(result), out_dir / "participants.csv"),
        "loading_duration.png": _loading_duration(result, out_dir / "loading_duration.png"),
        "monthly_welfare.png": _monthly_welfare(result, out_dir / "monthly_welfare.png"),
        "price_duration.png": _price_duration(result, out_dir / "price_duration.png"),
        "participants.png": _participants(result, out_dir / "participants.png"),
        "flexibility_heatmap.png": _heatmap(result, out_dir / "flexibility_heatmap.png"),
        "tariff_hours.png": _tariff_hours(result, out_dir / "tariff_hours.png"),
    }
    paths["study.html"] = _page(result, out_dir / "study.html")
    return paths


def _slots_csv(result: StudyResult, path: Path) -> Path:
    import pandas as pd

    frames = []
    for design in Design:
        run = run_of(result, design)
        index = np.arange(run.first_slot, run.first_slot + run.slots)
        pvs, bats = result.study.pvs, result.study.bats
        frames.append(
            pd.DataFrame(
                {
                    "slot": index,
                    "delivery_start": [delivery_start(int(k)) for k in index],
                    "design": design.value,
                    "price_per_kwh": run.price,
                    "network_charge_per_kwh": run.tariff,
                    "traded_wh": np.clip(run.fill_wh, 0, None).sum(axis=1),
                    "network_charges": run.network_charges().sum(axis=1),
                    "trades_curtailed_wh": run.curtailed_wh.sum(axis=1),
                    "pv_curtailed_wh": np.clip(run.flex_wh[:, pvs], 0, None).sum(axis=1)
                    + run.curtailed_wh[:, pvs].sum(axis=1),
                    "battery_flex_wh": run.flex_wh[:, bats].sum(axis=1) if design is not Design.OPTIMUM else 0,
                    "battery_soc_wh": np.rint(run.soc_wh[1:].sum(axis=1)).astype(np.int64),
                    "trafo_loading_percent": run.trafo_loading.round(3),
                    "line_loading_percent": run.line_loading.round(3),
                    "v_min_pu": run.v_min.round(5),
                    "v_max_pu": run.v_max.round(5),
                    "violations": run.violations,
                    "checked_by": np.where(run.checked_by == Check.FACILITATED.value, "facilitate", "screen"),
                }
            )
        )
    pd.concat(frames).to_csv(path, index=False)
    return path


def _rows_csv(rows: list[dict[str, Any]], path: Path) -> Path:
    import pandas as pd

    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def _figure(width: float = 8.0, height: float = 4.5) -> Any:
    import matplotlib.pyplot as plt

    return plt.subplots(figsize=(width, height), dpi=110)


def _save(fig: Any, path: Path) -> Path:
    import matplotlib.pyplot as plt

    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def _loading_duration(result: StudyResult, path: Path) -> Path:
    fig, ax = _figure()
    for design in Design:
        loading = np.sort(run_of(result, design).trafo_loading)[::-1]
        hours = np.arange(1, len(loading) + 1) / SLOTS_PER_HOUR
        ax.plot(hours, loading, label=design.title, color=COLOURS[design.value], linewidth=1.2)
    ax.axhline(
        result.grid.model.limits.max_loading_percent, color="black", linestyle="--", linewidth=0.8, label="limit"
    )
    ax.set_xscale("log")
    ax.set_xlabel("hours of the period at or above the loading (log scale)")
    ax.set_ylabel("transformer loading (%)")
    ax.set_title(f"Transformer loading duration, {result.grid.code}")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return _save(fig, path)


def _monthly_welfare(result: StudyResult, path: Path) -> Path:
    fig, ax = _figure()
    first = result.runs[Design.NO_MARKET].first_slot
    months = month_of_slot(first, len(result.optimum_welfare))
    present = sorted(set(months.tolist()))
    width = 0.8 / len(Design)
    for j, design in enumerate(Design):
        per_slot = result.optimum_welfare if design is Design.OPTIMUM else result.accounts[design].welfare_per_slot
        values = [per_slot[months == m].sum() / 1e6 for m in present]
        ax.bar(np.arange(len(present)) + j * width, values, width, label=design.title, color=COLOURS[design.value])
    ax.set_xticks(np.arange(len(present)) + 0.4 - width / 2)
    ax.set_xticklabels([MONTHS[m - 1] for m in present])
    ax.set_ylabel("welfare (tokens)")
    ax.set_title("Monthly welfare per design")
    ax.legend(fontsize=7)
    ax.grid(axis="y", alpha=0.3)
    return _save(fig, path)


def _price_duration(result: StudyResult, path: Path) -> Path:
    fig, ax = _figure()
    for design in MARKETS:
        price = result.runs[design].price
        traded = np.sort(price[price > 0])[::-1] / 1e6
        ax.plot(np.arange(1, len(traded) + 1) / SLOTS_PER_HOUR, traded, label=design.title, color=COLOURS[design.value])
    c = result.config
    ax.axhline(c.retail_per_kwh / 1e6, color="black", linestyle=":", linewidth=0.8, label="retail tariff")
    ax.axhline(c.feed_in_per_kwh / 1e6, color="grey", linestyle=":", linewidth=0.8, label="feed-in tariff")
    ax.set_xlabel("hours with trades, at or above the price")
    ax.set_ylabel("clearing price (tokens per kWh)")
    ax.set_title("Clearing-price duration curve")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return _save(fig, path)


def _participants(result: StudyResult, path: Path) -> Path:
    rows = participant_rows(result)
    title = "Each participant's cost and benefit"
    if len(rows) > PLOTTED_PARTICIPANTS:  # the largest gains and losses in (d); the CSV has everyone
        ranked = sorted(rows, key=lambda r: r[f"{Design.JOINT.value}: benefit vs (a)"])
        half = PLOTTED_PARTICIPANTS // 2
        rows = ranked[:half] + ranked[-half:]
        title = f"Participants' cost and benefit: the {half} lowest and {half} highest in (d)"
    fig, ax = _figure(8.0, max(4.0, 0.22 * len(rows) + 1))
    y = np.arange(len(rows))
    height = 0.8 / len(MARKETS)
    for j, design in enumerate(MARKETS):
        values = [r[f"{design.value}: benefit vs (a)"] for r in rows]
        ax.barh(y + j * height, values, height, label=design.title, color=COLOURS[design.value])
    ax.set_yticks(y + 0.4 - height / 2)
    ax.set_yticklabels([f"{r['participant']} ({r['kind']})" for r in rows], fontsize=6)
    ax.invert_yaxis()
    ax.axvline(0, color="black", linewidth=0.6)
    ax.set_xlabel("benefit against no local market (tokens; received − paid, stored energy included)")
    ax.set_title(title)
    ax.legend(fontsize=7)
    ax.grid(axis="x", alpha=0.3)
    return _save(fig, path)


def _heatmap(result: StudyResult, path: Path) -> Path:
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 4.5), dpi=110, sharey=True)
    for ax, design in zip(axes, (Design.P2P_THEN_CURTAILMENT, Design.JOINT), strict=True):
        run = result.runs[design]
        activated = np.abs(run.flex_wh).sum(axis=1) + run.curtailed_wh.sum(axis=1)
        days = run.slots // SLOTS_PER_DAY
        grid = activated[: days * SLOTS_PER_DAY].reshape(days, SLOTS_PER_DAY) / 1000
        first_day = run.first_slot // SLOTS_PER_DAY + 1
        image = ax.imshow(
            grid,
            aspect="auto",
            cmap="magma_r",
            extent=(0, 24, first_day + days - 0.5, first_day - 0.5),
            interpolation="nearest",
        )
        ax.set_title(f"{design.title}: flexibility and curtailment (kWh)", fontsize=9)
        ax.set_xlabel("time of day (h)")
        fig.colorbar(image, ax=ax, fraction=0.046)
    axes[0].set_ylabel("day of 2016")
    return _save(fig, path)


def _tariff_hours(result: StudyResult, path: Path) -> Path:
    """When each network charge shape moves trades: design (b)'s energy traded locally per hour
    of the day, less what trades with no charge, per shape (and the charge itself)."""
    import matplotlib.pyplot as plt

    fig, (ax, rates) = plt.subplots(2, 1, figsize=(8, 6), dpi=110, sharex=True, height_ratios=(2, 1))
    by_hour = {}
    for t in result.tariffs:
        run = t.run
        hour = (np.arange(run.first_slot, run.first_slot + run.slots) % SLOTS_PER_DAY) // SLOTS_PER_HOUR
        bought = np.clip(run.fill_wh, 0, None).sum(axis=1)
        by_hour[t.tariff.shape] = np.bincount(hour, weights=bought, minlength=24) / 1000
        mean_rate = np.bincount(hour, weights=run.tariff, minlength=24) / np.bincount(hour, minlength=24)
        shape = t.tariff.shape
        rates.step(
            np.arange(25),
            np.append(mean_rate, mean_rate[-1]) / 1e6,
            where="post",
            label=shape,
            color=SHAPE_COLOURS[shape],
        )
    none = by_hour.get("none", np.zeros(24))
    for shape, traded in by_hour.items():
        if shape != "none":
            change = np.append(traded - none, (traded - none)[-1])
            style = "--" if shape == "flat" else "-"  # flat lies under tou by day: dashed to stay visible
            ax.step(np.arange(25), change, where="post", label=shape, color=SHAPE_COLOURS[shape], linestyle=style)
    ax.axhline(0, color="black", linewidth=0.6)
    ax.set_ylabel("traded locally vs no charge (kWh)")
    ax.set_title("When the network charge's shape moves trades (design (b))")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    rates.set_ylabel("mean charge (tokens/kWh)")
    rates.set_xlabel("hour of the day")
    rates.set_xticks(range(0, 25, 3))
    rates.legend(fontsize=7)
    rates.grid(alpha=0.3)
    return _save(fig, path)


def _html_table(rows: list[dict[str, Any]], *, transpose: bool = False) -> str:
    def cell(v: Any) -> str:
        return html.escape(f"{v:,.2f}" if isinstance(v, float) else f"{v:,}" if isinstance(v, int) else str(v))

    if not rows:
        return "<p>(none)</p>"
    keys = list(rows[0])
    if transpose:
        head = "<tr><th></th>" + "".join(f"<th>{cell(r[keys[0]])}</th>" for r in rows) + "</tr>"
        body = "".join(
            f"<tr><th>{html.escape(k)}</th>" + "".join(f"<td>{cell(r[k])}</td>" for r in rows) + "</tr>"
            for k in keys[1:]
        )
    else:
        head = "<tr>" + "".join(f"<th>{html.escape(k)}</th>" for k in keys) + "</tr>"
        body = "".join("<tr>" + "".join(f"<td>{cell(r[k])}</td>" for k in keys) + "</tr>" for r in rows)
    return f"<table>{head}{body}</table>"


def _page(result: StudyResult, path: Path) -> Path:
    c = result.config
    r = c.reinforcement
    assumptions = {k: v for k, v in asdict(c).items() if k not in ("tariff", "reinforcement")}
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'><title>GridLedger study</title>",
        "<style>body{font-family:sans-serif;max-width:1200px;margin:auto}table{border-collapse:collapse;"
        "font-size:12px;margin:8px 0}td,th{border:1px solid #ccc;padding:3px 6px;text-align:right}"
        "th{background:#f3f3f3}img{max-width:100%}</style></head><body>",
        f"<h1>Market designs on {html.escape(result.grid.code)}</h1>",
        f"<p>{html.escape(loads_and_generation(result))}. Days {c.first_day}–{c.first_day + c.days - 1} of "
        f"SimBench's 2016 profile year; network tariff on traded energy: {html.escape(c.tariff.describe())}. "
        f"Run time {result.seconds:,.0f} s, peak memory {result.peak_memory_mb:,.0f} MB.</p>",
        "<h2>Designs on one welfare</h2>",
        _html_table(design_rows(result), transpose=True),
        f"<p>Reinforcing the transformer {r.from_kva} → {r.to_kva} kVA: {r.capital_cost / 1e6:,.0f} tokens over "
        f"{r.lifetime_years} years at {r.interest:.0%}, an annuity of {r.annuity / 1e6:,.0f} tokens a year. With it, "
        f"design (b) would leave {result.reinforced_violations} quarter-hours over a limit.</p>",
        "<img src='loading_duration.png'><img src='monthly_welfare.png'>",
        "<h2>The DSO, the supplier and balancing account, the facilitator</h2>",
        _html_table(party_rows(result), transpose=True),
        "<h2>Every participant</h2><img src='participants.png'>",
        _html_table(participant_rows(result)),
        "<h2>Prices and flexibility</h2><img src='price_duration.png'><img src='flexibility_heatmap.png'>",
        "<h2>How the network charge's shape moves trades (design (b))</h2>",
        _html_table(tariff_rows(result)),
        "<img src='tariff_hours.png'>",
        "<h2>Assumptions</h2>",
        _html_table([{"assumption": k, "value": v} for k, v in assumptions.items()]),
        "<h2>Data: slots.csv</h2>",
        _html_table([{"column": k, "meaning": v} for k, v in SLOT_COLUMNS.items()]),
        "</body></html>",
    ]
    path.write_text("".join(parts), encoding="utf-8")
    return path


def terminal_tables(result: StudyResult) -> list[Any]:
    """What ``gridledger study`` prints."""
    return [
        as_table(design_rows(result), "Designs on one welfare", transpose=True),
        as_table(party_rows(result), "DSO, supplier and balancing account, facilitator", transpose=True),
        as_table(tariff_rows(result), "Network charge shapes on design (b)", transpose=True),
    ]
