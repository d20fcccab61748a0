"""The ``gridledger`` command.

    cli/__init__.py   the root app and ``main``, the installed command's entry point
    cli/market.py     demo, audit, flex-report
    cli/community.py  community (prosumer agents over HTTP on the market clock)
    cli/node.py       compile, deploy, serve, devnet start|stop
    cli/study.py      study (market designs over a year of a SimBench grid)
    cli/wallet.py     wallet create|import|address|order|offer|cancel|orders|trades|balance|deposit|withdraw|statement
    cli/output.py     the console, and how a command ends on an error (one line, an exit status)

Commands import what they use inside their functions, so that ``gridledger --help`` starts fast.
"""

from __future__ import annotations

import getpass
import os
import sys
from typing import TextIO

import typer

from gridledger.cli import community, market, node, study
from gridledger.cli.node import devnet_app
from gridledger.cli.output import INTERRUPTED, CommandGroup, say_error
from gridledger.cli.wallet import wallet_app

__all__ = ["app", "main"]

app = typer.Typer(
    cls=CommandGroup, help="GridLedger: a local energy market on an Ethereum ledger.", no_args_is_help=True
)
app.command()(market.demo)
app.command()(market.audit)
app.command("flex-report")(market.flex_report)
app.command()(study.study)
app.command()(community.community)
app.command()(node.compile)
app.command()(node.deploy)
app.command()(node.serve)
app.command()(node.migrate)
app.add_typer(devnet_app, name="devnet")
app.add_typer(wallet_app, name="wallet")


_getpass = getpass.getpass


def _password(prompt: str = "Password: ", stream: TextIO | None = None) -> str:
    """getpass, except without a terminal (stdin a pipe or a file, no /dev/tty): then the line from
    stdin, read quietly. getpass would also print "Warning: Password input may be echoed." on
    stderr, but nothing echoes a pipe, and beside a refusal the warning would make one line two."""
    if sys.stdin.isatty() or _has_terminal():
        return _getpass(prompt, stream)
    line = sys.stdin.readline()
    if not line:
        raise EOFError
    return line.removesuffix("\n")


def _has_terminal() -> bool:
    try:
        os.close(os.open("/dev/tty", os.O_RDWR | os.O_NOCTTY))
    except OSError:
        return False
    return True


def main() -> None:
    """Runs the command and exits with its status: 0 done, 1 refused (see ``cli.output``), 2 a usage
    error, 130 interrupted."""
    getpass.getpass = _password
    try:
        app(prog_name="gridledger")  # standalone: Typer exits with the command's status
    except KeyboardInterrupt:  # outside any command, e.g. while importing
        say_error("interrupted")
        sys.exit(INTERRUPTED)
