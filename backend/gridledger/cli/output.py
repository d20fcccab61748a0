"""The command's consoles, and how it ends when it cannot go on: one line on stderr and an exit status.

Exit statuses::

    0    done
    1    refused: a GridLedgerError (a wrong wallet name, an unreachable API, a refuted slot…),
         or end of input at a prompt
    2    usage: an unknown command or option, a bad option value (Typer's own errors)
    130  interrupted (Ctrl-C)
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any, NoReturn

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.text import Text
from typer.core import TyperGroup

from gridledger.errors import GridLedgerError

if TYPE_CHECKING:
    from typer._click.core import Context  # the type TyperGroup.invoke takes (Typer's own click)

REFUSED = 1
INTERRUPTED = 130

console = Console(width=None if sys.stdout.isatty() else 130)
errors = Console(stderr=True, soft_wrap=True, highlight=False)

# What a prompt of the running command asks for, kept in the context's shared ``meta`` so that
# end of input can name it; commands that prompt for something other than a password set it.
PROMPT_KEY = "gridledger.prompt"


def say_error(message: str) -> None:
    """One line on stderr: ``error: <message>`` (the message as it is, never read as markup)."""
    errors.print(Text.assemble(("error: ", "red"), message.strip()))


def refuse(message: str, code: int = REFUSED) -> NoReturn:
    """Ends the command with ``message`` on stderr and exit status ``code``."""
    say_error(message)
    raise typer.Exit(code)


class CommandGroup(TyperGroup):
    """The root group: whatever stops a command ends as one line on stderr and an exit status,
    never a traceback, in the installed command and under the test runner alike."""

    def invoke(self, ctx: Context) -> Any:
        try:
            return super().invoke(ctx)
        except GridLedgerError as exc:
            refuse(str(exc))
        except ValidationError as exc:  # settings from the environment that cannot be read
            refuse(_invalid(exc))
        except typer.Abort as exc:
            # A prompt turns end of input and Ctrl-C into Abort; the cause is its context.
            if isinstance(exc.__context__, KeyboardInterrupt):
                refuse("interrupted", INTERRUPTED)
            if isinstance(exc.__context__, EOFError):
                refuse(f"no {ctx.meta.get(PROMPT_KEY, 'password')} given (end of input)")
            raise
        except EOFError:
            refuse("end of input")
        except KeyboardInterrupt:
            refuse("interrupted", INTERRUPTED)


def _invalid(exc: ValidationError) -> str:
    """A validation error in one line; a setting is named by its environment variable."""
    parts = []
    for error in exc.errors():
        field = ".".join(str(part) for part in error["loc"])
        if exc.title == "Settings":
            field = "GRIDLEDGER_" + field.upper()
        parts.append(f"{field}={error['input']!r}: {error['msg']}" if "input" in error else f"{field}: {error['msg']}")
    return "; ".join(parts)
