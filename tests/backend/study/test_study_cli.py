"""``gridledger study`` as a user runs it: a process, its exit status, its report and its refusals."""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

EXE = Path(sys.executable).parent / "gridledger"


def test_study_of_one_day_writes_the_report_and_exits_0(tmp_path: Path) -> None:
    out = tmp_path / "report"
    done = subprocess.run(
        [str(EXE), "study", "--days", "1", "--first-day", "160", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    assert "Designs on one welfare" in done.stdout
    assert "run time" in done.stdout and "peak memory" in done.stdout
    for name in (
        "loading_duration",
        "monthly_welfare",
        "price_duration",
        "participants",
        "flexibility_heatmap",
        "tariff_hours",
    ):
        assert (out / f"{name}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    page = (out / "study.html").read_text()
    assert page.count("<img src=") == 6 and "(e) optimum (upper bound)" in page
    with (out / "slots.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 5 * 96
    assert {r["design"] for r in rows} == {"a", "b", "c", "d", "e"}
    assert any(int(r["violations"]) > 0 for r in rows if r["design"] == "b")
    assert all(int(r["violations"]) == 0 for r in rows if r["design"] in {"c", "d"})
    with (out / "participants.csv").open() as f:
        assert len(list(csv.DictReader(f))) == 41


def test_an_unknown_grid_is_refused_with_the_allowed_codes(tmp_path: Path) -> None:
    done = subprocess.run(
        [str(EXE), "study", "--grid", "1-LV-nowhere--2-sw", "--days", "1", "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 1
    assert "'1-LV-nowhere--2-sw' is not a SimBench grid code" in done.stderr
    assert "1-LV-rural1--2-sw" in done.stderr
    assert not any(tmp_path.iterdir())


def test_an_unknown_tariff_shape_is_refused(tmp_path: Path) -> None:
    done = subprocess.run(
        [str(EXE), "study", "--tariff", "hourly", "--days", "1", "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 1
    assert "tariff shape 'hourly' is unknown; allowed: none, flat, tou, cpp" in done.stderr


def test_a_design_the_ledger_does_not_run_is_refused(tmp_path: Path) -> None:
    done = subprocess.run(
        [str(EXE), "study", "--days", "1", "--ledger-days", "1", "--ledger-design", "b", "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 1
    assert "design 'b' does not run on the ledger; allowed: c, d" in done.stderr
    assert not any(tmp_path.iterdir())
