"""The clock's and the new wallet commands' refusals, read from the command line before anything
starts or any password is asked."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from gridledger.cli import app

runner = CliRunner()


def test_serve_refuses_to_accelerate_a_chain_it_cannot_move() -> None:
    env = {"GRIDLEDGER_CHAIN": "http://127.0.0.1:9"}
    result = runner.invoke(app, ["serve", "--seconds-per-slot", "2"], env=env)
    assert result.exit_code == 1
    assert result.stderr == (
        "error: --seconds-per-slot moves the chain's clock, which only the embedded chain and local devnets "
        "(hardhat, anvil) allow; on http://127.0.0.1:9 the market clock follows the wall clock\n"
    )


def test_community_refuses_a_chain_whose_clock_it_cannot_move() -> None:
    result = runner.invoke(app, ["community", "--agents", "2"], env={"GRIDLEDGER_CHAIN": "https://rpc.example"})
    assert result.exit_code == 1
    assert "only the embedded chain and local devnets allow, not https://rpc.example" in result.stderr


@pytest.mark.parametrize("amount", ["0", "-5", "1.0000001", "ten", "nan", "inf"])
def test_a_wallet_amount_it_cannot_read_is_refused_before_the_password(tmp_path, amount) -> None:
    from gridledger.wallet import keystore

    keystore.create("alice", "a long password", directory=tmp_path)
    for command in ("deposit", "withdraw"):
        result = runner.invoke(
            app, ["wallet", command, "alice", "--", amount], env={"GRIDLEDGER_KEYSTORE_DIR": str(tmp_path)}
        )
        assert result.exit_code == 2, result.output
        said = " ".join(result.output.replace("│", " ").split())  # typer's error box, unwrapped
        assert f"{amount!r}: an amount of tokens is positive with at most 6 decimals" in said
        assert "Password" not in result.output
