"""`gridledger demo` as a user runs it: the grid and prosumer options at their boundaries, the
exit status, the summary and the prosumers' CSV file."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import pytest

from gridledger.reports.day_summary_table import CSV_COLUMNS

GRIDLEDGER = str(Path(sys.executable).parent / "gridledger")


@pytest.fixture
def env(tmp_path) -> dict[str, str]:
    return os.environ | {
        "GRIDLEDGER_CHAIN": "embedded",
        "GRIDLEDGER_DATABASE": str(tmp_path / "facilitator.sqlite"),
        "GRIDLEDGER_DEPLOYMENTS_DIR": str(tmp_path),
        "COLUMNS": "200",
    }


def demo(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [GRIDLEDGER, "demo", *args],
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=1_200,
        start_new_session=True,
    )


def rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as handle:
        reader = csv.DictReader(handle)
        assert tuple(reader.fieldnames or ()) == CSV_COLUMNS
        return list(reader)


def test_every_household_of_the_default_grid_with_the_flexibility_request(env, tmp_path) -> None:
    """The largest value --prosumers allows on the default grid, over the DSO's request window
    (its 35 offers used to stop the run at onboarding: tests/backend/sim/test_feeder_day.py)."""
    done = demo(env, "--prosumers", "104", "--slots", "6", "--first-slot", "70")
    assert done.returncode == 0, done.stderr[-2000:]
    out = done.stdout
    assert "104 prosumers of SimBench 1-LV-semiurb5--0-sw (104 loads)" in out
    assert "slots cleared and settled    6" in out
    assert "35 offers" in out and "awarded" in out
    assert "Prosumers by group" in out and "Each prosumer:" not in out  # 104 rows summarised
    written = tmp_path / "demo-prosumers.csv"
    assert f"every prosumer's row: {written}" in out
    table = rows(written)
    assert len(table) == 104 and len({r["address"] for r in table}) == 104
    assert sum(float(r["saving_tokens"]) for r in table) == pytest.approx(
        sum(float(r["baseline_tokens"]) - float(r["with_market_tokens"]) for r in table), abs=1e-3
    )


def test_the_demo_runs_on_the_mv_lv_feeder(env, tmp_path) -> None:
    table = tmp_path / "feeder.csv"
    done = demo(
        env,
        "--grid",
        "1-MVLV-rural-all-0-sw",
        "--prosumers",
        "2",
        "--slots",
        "2",
        "--first-slot",
        "48",
        "--table-csv",
        str(table),
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "2 prosumers of SimBench 1-MVLV-rural-all-0-sw (5,373 loads)" in done.stdout
    assert "slots cleared and settled    2" in done.stdout
    assert "network model                1-MVLV-rural-all-0-sw, version 0x" in done.stdout
    assert "Each prosumer:" in done.stdout  # a short table is shown whole
    assert len(rows(table)) == 2


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (
            ["--grid", "1-LV-semiurb5--0-s"],
            ["Invalid value for '--grid'", "did you mean 1-LV-semiurb5--0-sw", "allowed are SimBench codes: "],
        ),
        (["--grid", "1-EHV-mixed--0-sw"], ["Invalid value for '--grid'", "regulate voltage"]),
        (["--prosumers", "105"], ["Invalid value for '--prosumers'", "choose 2 to 104"]),
        (["--prosumers", "1"], ["Invalid value for '--prosumers'"]),
    ],
)
def test_values_outside_what_the_help_allows_are_usage_errors(env, args, expected) -> None:
    done = demo(env, *args, "--slots", "2")
    assert done.returncode == 2
    flat = " ".join(line.strip("│ ") for line in done.stderr.splitlines())
    for text in expected:
        assert text in flat
    assert "Traceback" not in done.stdout + done.stderr


def test_the_help_states_the_range() -> None:
    done = subprocess.run(
        [GRIDLEDGER, "demo", "--help"], capture_output=True, text=True, env=os.environ | {"COLUMNS": "200"}
    )
    assert done.returncode == 0
    flat = " ".join(line.strip("│ ") for line in done.stdout.splitlines())
    assert "2 to the grid's loads (104 on 1-LV-semiurb5--0-sw, 5,373 on 1-MVLV-rural-all-0-sw" in flat
