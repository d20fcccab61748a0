"""The `gridledger` command, run in-process with typer's test runner."""

from __future__ import annotations

from typer.testing import CliRunner

from gridledger.cli import app

runner = CliRunner()


def test_demo_runs_a_short_day_to_its_summary() -> None:
    result = runner.invoke(app, ["demo", "--prosumers", "4", "--slots", "2", "--first-slot", "48"])
    assert result.exit_code == 0, result.output
    assert "Market day summary" in result.output
    assert "slots cleared and settled    2" in result.output
    assert "Each prosumer" in result.output


def test_demo_refuses_slots_beyond_the_day() -> None:
    result = runner.invoke(app, ["demo", "--prosumers", "2", "--slots", "10", "--first-slot", "90"])
    assert result.exit_code != 0
    assert "outside the day's 0 to 95" in str(result.exception)


def test_deploy_explains_why_the_embedded_chain_has_no_record() -> None:
    result = runner.invoke(app, ["deploy"], env={"GRIDLEDGER_CHAIN": "embedded"})
    assert result.exit_code != 0
    assert "the embedded chain lives only inside one process" in str(result.exception)


def test_compile_names_the_compiler_and_source_hash() -> None:
    result = runner.invoke(app, ["compile"])
    assert result.exit_code == 0, result.output
    assert "0.8.37" in result.output and "source hash 0x" in result.output
