"""The installed `gridledger` command, run as a process as a user or a script runs it: its exit
status reaches the shell, and whatever stops it is one line on stderr, never a traceback."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from gridledger.wallet import keystore

GRIDLEDGER = str(Path(sys.executable).parent / "gridledger")
PASSWORD = "a long password"
ORDER = ["--side", "buy", "--slot", "1782043200", "--energy-wh", "1000", "--price", "0.2"]


@pytest.fixture
def env(tmp_path) -> dict[str, str]:
    """Keystores, database and deployments in tmp_path; an API nobody listens on."""
    keystore.create("alice", PASSWORD, directory=tmp_path / "keys")
    environment = os.environ | {
        "GRIDLEDGER_KEYSTORE_DIR": str(tmp_path / "keys"),
        "GRIDLEDGER_DATABASE": str(tmp_path / "facilitator.sqlite"),
        "GRIDLEDGER_DEPLOYMENTS_DIR": str(tmp_path),
        "GRIDLEDGER_API_URL": "http://127.0.0.1:9",
        "COLUMNS": "200",
    }
    environment.pop("GRIDLEDGER_WALLET_PASSWORD", None)
    return environment


def gridledger(env: dict[str, str], *args: str, given: str | None = None) -> subprocess.CompletedProcess[str]:
    """Runs the command without a terminal (its own session), stdin closed or given."""
    return subprocess.run(
        [GRIDLEDGER, *args],
        env=env,
        input=given,
        stdin=subprocess.DEVNULL if given is None else None,
        capture_output=True,
        text=True,
        timeout=120,
        start_new_session=True,
    )


def test_a_wrong_wallet_name_is_one_line_before_any_password_prompt(env, tmp_path) -> None:
    done = gridledger(env, "wallet", "order", "bob", *ORDER)
    assert done.returncode == 1
    assert done.stdout == ""  # not asked for a password
    [line] = done.stderr.splitlines()
    assert line.startswith(f"error: no wallet 'bob' in {tmp_path / 'keys'} (its wallets: alice); ")
    assert "`gridledger wallet create bob`" in line and "GRIDLEDGER_KEYSTORE_DIR" in line


def test_end_of_input_at_the_password_prompt_is_one_line(env) -> None:
    done = gridledger(env, "wallet", "order", "alice", *ORDER)
    assert done.returncode == 1
    assert done.stdout.strip() == "Password:"
    assert done.stderr == "error: no password given (end of input)\n"


def test_a_password_from_stdin_unlocks_the_wallet_without_a_warning(env) -> None:
    done = gridledger(env, "wallet", "order", "alice", *ORDER, given=PASSWORD + "\n")
    assert done.returncode == 1  # unlocked, then the API is unreachable
    [line] = done.stderr.splitlines()
    assert line.startswith("error: cannot reach the GridLedger API at http://127.0.0.1:9")


def test_a_wrong_password_is_one_line(env) -> None:
    done = gridledger(env, "wallet", "order", "alice", *ORDER, given="not the password\n")
    assert done.returncode == 1
    assert done.stderr == "error: cannot unlock wallet 'alice': MAC mismatch (wrong password?)\n"


def test_ctrl_c_at_the_password_prompt_exits_130(env) -> None:
    process = subprocess.Popen(
        [GRIDLEDGER, "wallet", "order", "alice", *ORDER],
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        # As at a terminal: a background job of a non-interactive shell (a CI script's `&`)
        # inherits SIGINT ignored, and Python then installs no KeyboardInterrupt handler.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    try:
        assert process.stdout is not None
        assert process.stdout.read(len("Password:")) == "Password:"
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=60)
    finally:
        process.kill()
    assert process.returncode == 130, stderr
    assert stderr == "error: interrupted\n"


def test_an_unknown_command_is_a_usage_error(env) -> None:
    done = gridledger(env, "nosuch")
    assert done.returncode == 2
    assert "Usage: gridledger [OPTIONS] COMMAND [ARGS]..." in done.stderr
    assert "No such command 'nosuch'" in done.stderr
    assert "Traceback" not in done.stdout + done.stderr


def test_a_bad_option_value_is_a_usage_error(env) -> None:
    done = gridledger(env, "demo", "--slots", "0")
    assert done.returncode == 2
    assert "Usage: gridledger demo [OPTIONS]" in done.stderr
    assert "Invalid value for '--slots'" in done.stderr
    assert "Traceback" not in done.stdout + done.stderr


def test_a_refusing_command_exits_1_in_one_line(env) -> None:
    """The refusal reaches the shell as status 1 (`gridledger audit` refuting a slot exits the same
    way: test_cli.py::test_the_audit_exits_1_when_it_refutes_a_slot)."""
    done = gridledger(env | {"GRIDLEDGER_CHAIN": "embedded"}, "audit")
    assert done.returncode == 1
    assert done.stderr == (
        "error: the embedded chain ends with the process that ran it: audit a devnet or RPC chain "
        "(GRIDLEDGER_CHAIN=hardhat|anvil|http://…); the demo audits its own day at the end\n"
    )


def test_help_exits_0(env) -> None:
    done = gridledger(env, "wallet", "--help")
    assert done.returncode == 0
    assert "Usage: gridledger wallet [OPTIONS] COMMAND [ARGS]..." in done.stdout
