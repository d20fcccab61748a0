"""The `gridledger` command, run in-process with typer's test runner: what it prints and the
exit status it ends with (0 done, 1 refused, 2 usage, 130 interrupted)."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from gridledger.cli import app

runner = CliRunner()


def test_demo_runs_a_short_day_to_its_summary() -> None:
    result = runner.invoke(app, ["demo", "--prosumers", "4", "--slots", "2", "--first-slot", "48"])
    assert result.exit_code == 0, result.output
    assert "Market day summary" in result.output
    assert "slots cleared and settled    2" in result.output
    assert "DSO flexibility request      not in this run" in result.output
    assert "Each prosumer" in result.output


def test_demo_refuses_slots_beyond_the_day() -> None:
    result = runner.invoke(app, ["demo", "--prosumers", "2", "--slots", "10", "--first-slot", "90"])
    assert result.exit_code == 1
    [line] = result.stderr.splitlines()
    assert line.startswith("error: ") and "outside the day's 0 to 95" in line


def test_deploy_explains_why_the_embedded_chain_has_no_record() -> None:
    result = runner.invoke(app, ["deploy"], env={"GRIDLEDGER_CHAIN": "embedded"})
    assert result.exit_code == 1
    [line] = result.stderr.splitlines()
    assert line.startswith("error: the embedded chain lives only inside one process")


def test_compile_names_the_compiler_and_source_hash() -> None:
    result = runner.invoke(app, ["compile"])
    assert result.exit_code == 0, result.output
    assert "0.8.37" in result.output and "source hash 0x" in result.output


def test_an_interrupted_command_says_so_and_exits_130(monkeypatch) -> None:
    from gridledger.chain import compile as compiling

    def interrupted() -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(compiling, "compile_contracts", interrupted)
    result = runner.invoke(app, ["compile"])
    assert result.exit_code == 130
    assert result.stderr == "error: interrupted\n"


def test_wallet_commands_say_when_the_api_is_unreachable(tmp_path) -> None:
    from gridledger.wallet import keystore

    keystore.create("alice", "a long password", directory=tmp_path)
    env = {"GRIDLEDGER_KEYSTORE_DIR": str(tmp_path), "GRIDLEDGER_API_URL": "http://127.0.0.1:9"}
    result = runner.invoke(app, ["wallet", "balance", "alice"], env=env)
    assert result.exit_code == 1
    [line] = result.stderr.splitlines()
    assert line.startswith("error: cannot reach the GridLedger API at http://127.0.0.1:9")


def test_wallet_order_refuses_a_slot_it_cannot_read_before_asking_a_password(tmp_path) -> None:
    from gridledger.wallet import keystore

    keystore.create("alice", "a long password", directory=tmp_path)
    result = runner.invoke(
        app,
        ["wallet", "order", "alice", "--side", "sell", "--slot", "noon", "--energy-wh", "1", "--price", "0.1"],
        env={"GRIDLEDGER_KEYSTORE_DIR": str(tmp_path), "COLUMNS": "200"},
    )
    assert result.exit_code == 2
    assert "Password" not in result.stdout
    assert "neither unix seconds nor an ISO date-time" in result.stderr


WALLET_COMMANDS = {
    "address": [],
    "orders": [],
    "trades": [],
    "balance": [],
    "cancel": ["0x" + "ab" * 32],
    "order": ["--side", "buy", "--slot", "1782043200", "--energy-wh", "1000", "--price", "0.2"],
    "offer": ["--request", "1", "--power-w", "1000", "--availability-price", "0.1", "--utilisation-price", "0.2"],
}


@pytest.mark.parametrize("command", sorted(WALLET_COMMANDS))
def test_every_wallet_command_names_a_missing_wallet_before_any_prompt(tmp_path, command) -> None:
    from gridledger.wallet import keystore

    keystore.create("alice", "a long password", directory=tmp_path)
    result = runner.invoke(
        app, ["wallet", command, "bob", *WALLET_COMMANDS[command]], env={"GRIDLEDGER_KEYSTORE_DIR": str(tmp_path)}
    )
    assert result.exit_code == 1
    assert result.stdout == ""  # no password prompt
    assert result.stderr == (
        f"error: no wallet 'bob' in {tmp_path} (its wallets: alice); create it with `gridledger wallet create bob` "
        "or `gridledger wallet import bob`, or point GRIDLEDGER_KEYSTORE_DIR at the directory that holds it\n"
    )


@pytest.mark.parametrize("command", ["create", "import"])
def test_a_new_wallet_refuses_a_name_in_use_before_any_prompt(tmp_path, command) -> None:
    from gridledger.wallet import keystore

    keystore.create("alice", "a long password", directory=tmp_path)
    result = runner.invoke(app, ["wallet", command, "alice"], env={"GRIDLEDGER_KEYSTORE_DIR": str(tmp_path)})
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr == f"error: wallet 'alice' already exists at {tmp_path / 'alice.json'}; choose another name\n"


def test_an_invalid_wallet_name_is_refused_in_one_line(tmp_path) -> None:
    result = runner.invoke(app, ["wallet", "address", "../alice"], env={"GRIDLEDGER_KEYSTORE_DIR": str(tmp_path)})
    assert result.exit_code == 1
    assert result.stderr == "error: wallet name '../alice' is invalid: use letters, digits, '-' and '_'\n"


@pytest.mark.parametrize(
    ("args", "given", "missing"),
    [
        (["create", "carol"], "", "password"),
        (["create", "carol"], "a long password\n", "password"),  # end of input at the confirmation
        (["import", "carol"], "", "private key"),
        (["import", "carol"], "0x" + "11" * 32 + "\n", "password"),
        (["import", "carol", "--private-key", "0x" + "11" * 32], "", "password"),
    ],
)
def test_end_of_input_at_a_prompt_is_one_line(tmp_path, args, given, missing) -> None:
    result = runner.invoke(app, ["wallet", *args], input=given, env={"GRIDLEDGER_KEYSTORE_DIR": str(tmp_path)})
    assert result.exit_code == 1
    assert result.stderr == f"error: no {missing} given (end of input)\n"
    assert not (tmp_path / "carol.json").exists()


def test_the_audit_exits_1_when_it_refutes_a_slot(ledger, tmp_path, monkeypatch) -> None:
    """`gridledger audit` reads a devnet; here it reads an embedded chain handed to it, with a
    real day on it whose stored report is then altered (as in test_audit.py)."""
    from gridledger.chain.ledger import Ledger
    from gridledger.sim.market_day import DayConfig, run_market_day
    from gridledger.store.reports import ReportStore

    database = tmp_path / "facilitator.sqlite"
    day = run_market_day(ledger, DayConfig(prosumers=6, slots=2, first_slot=48, database=str(database)))
    monkeypatch.setattr(Ledger, "open", classmethod(lambda cls, settings=None, *, record=True: (ledger, False)))
    env = {"GRIDLEDGER_CHAIN": "anvil", "GRIDLEDGER_DATABASE": str(database)}

    honest = runner.invoke(app, ["audit"], env=env)
    assert honest.exit_code == 0, honest.output
    assert "2 of 2 slots confirmed" in honest.stdout

    store = ReportStore(database)
    slot = day.slots[0].delivery_start
    row = store.get(ledger.market.address, slot)
    assert row is not None
    row["report"]["check"]["max_line_loading_percent"] = 12.5
    report = json.dumps(row["report"], sort_keys=True, separators=(",", ":"))
    store.table.update((ledger.market.address, slot), {"report": report})

    refuted = runner.invoke(app, ["audit"], env=env)
    assert refuted.exit_code == 1
    assert "REFUTED" in refuted.stdout
    assert "    - stored report hashes to" in refuted.stdout
    assert "1 of 2 slots confirmed" in refuted.stdout


def test_a_setting_that_cannot_be_read_is_named_by_its_variable() -> None:
    result = runner.invoke(app, ["deploy"], env={"GRIDLEDGER_API_PORT": "abc"})
    assert result.exit_code == 1
    assert result.stderr == (
        "error: GRIDLEDGER_API_PORT='abc': Input should be a valid integer, unable to parse string as an integer\n"
    )


@pytest.mark.parametrize(
    "args",
    [["--from", "2026-06-01", "--until", "2026-05-31"], ["--until", "2026-05-31", "--from", "2026-06-01"]],
)
def test_a_mandate_whose_days_are_out_of_order_is_refused_before_the_password_prompt(args) -> None:
    result = runner.invoke(app, ["wallet", "mandate", "alice", "--aggregator", "agr.example.com", *args])
    assert result.exit_code == 2
    assert "--until 2026-05-31 is before --from 2026-06-01" in result.output
    assert "Password" not in result.output
