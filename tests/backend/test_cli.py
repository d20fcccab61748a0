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


def test_wallet_commands_say_when_the_api_is_unreachable(tmp_path) -> None:
    from gridledger.wallet import keystore

    keystore.create("alice", "a long password", directory=tmp_path)
    env = {"GRIDLEDGER_KEYSTORE_DIR": str(tmp_path), "GRIDLEDGER_API_URL": "http://127.0.0.1:9"}
    result = runner.invoke(app, ["wallet", "balance", "alice"], env=env)
    assert result.exit_code != 0
    assert "cannot reach the GridLedger API at http://127.0.0.1:9" in str(result.exception)


def test_wallet_order_refuses_a_slot_it_cannot_read(tmp_path) -> None:
    result = runner.invoke(
        app,
        ["wallet", "order", "alice", "--side", "sell", "--slot", "noon", "--energy-wh", "1", "--price", "0.1"],
        env={"GRIDLEDGER_KEYSTORE_DIR": str(tmp_path), "GRIDLEDGER_WALLET_PASSWORD": "a long password"},
    )
    assert result.exit_code != 0
    assert "neither unix seconds nor an ISO date-time" in result.output + str(result.exception)
