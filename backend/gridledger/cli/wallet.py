"""The ``wallet`` commands: encrypted keystores on this machine; orders, offers, cancellations and
balances over the facilitator's API.

A wallet's name is checked when the command line is read, before any prompt: a wrong name is
named (with the keystore directory and the wallets it holds), never asked a password for.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Annotated, Any

import typer

from gridledger.cli.output import PROMPT_KEY, console
from gridledger.config import Settings
from gridledger.errors import WalletError

if TYPE_CHECKING:
    from gridledger.api.client import GridLedgerClient

wallet_app = typer.Typer(
    help="Prosumer wallets: encrypted keystores; orders, cancellations and balances over the API.",
    no_args_is_help=True,
)


def _existing_wallet(ctx: typer.Context, name: str) -> str:
    """The name of a wallet that exists; a WalletError saying where none was found otherwise."""
    if ctx.resilient_parsing:
        return name
    from gridledger.wallet import keystore

    path = keystore.path_of(name)
    if not path.exists():
        held = keystore.names(directory=path.parent)
        there = f"its wallets: {', '.join(held)}" if held else "it holds no wallets"
        raise WalletError(
            f"no wallet {name!r} in {path.parent} ({there}); create it with `gridledger wallet create {name}` "
            f"or `gridledger wallet import {name}`, or point GRIDLEDGER_KEYSTORE_DIR at the directory that holds it"
        )
    return name


def _new_wallet(ctx: typer.Context, name: str) -> str:
    """The name of a wallet that does not exist yet; a WalletError naming the one that does otherwise."""
    if ctx.resilient_parsing:
        return name
    from gridledger.wallet import keystore

    path = keystore.path_of(name)
    if path.exists():
        raise WalletError(f"wallet {name!r} already exists at {path}; choose another name")
    return name


def _imported_wallet(ctx: typer.Context, name: str) -> str:
    """As ``_new_wallet``; the prompt that follows asks for the private key, then the password."""
    ctx.meta.setdefault(PROMPT_KEY, "private key")
    return _new_wallet(ctx, name)


def _private_key_given(ctx: typer.Context, private_key: str) -> str:
    ctx.meta[PROMPT_KEY] = "password"
    return private_key


WalletName = Annotated[str, typer.Argument(callback=_existing_wallet)]
NewWalletName = Annotated[str, typer.Argument(callback=_new_wallet)]
ImportedWalletName = Annotated[str, typer.Argument(callback=_imported_wallet)]


@wallet_app.command("create")
def wallet_create(
    name: NewWalletName,
    password: Annotated[str, typer.Option(prompt=True, hide_input=True, confirmation_prompt=True)],
) -> None:
    """Create a new key in an encrypted keystore."""
    from gridledger.wallet import keystore

    account = keystore.create(name, password)
    console.print(f"wallet {name}: {account.address} ({keystore.keystore_dir() / (name + '.json')})")


@wallet_app.command("import")
def wallet_import(
    name: ImportedWalletName,
    private_key: Annotated[str, typer.Option(prompt=True, hide_input=True, callback=_private_key_given)],
    password: Annotated[str, typer.Option(prompt=True, hide_input=True, confirmation_prompt=True)],
) -> None:
    """Import an existing private key into an encrypted keystore."""
    from gridledger.wallet import keystore

    account = keystore.create(name, password, private_key=private_key)
    console.print(f"wallet {name}: {account.address}")


@wallet_app.command("address")
def wallet_address(name: WalletName) -> None:
    """Show a wallet's address (without unlocking it)."""
    from gridledger.wallet import keystore

    console.print(keystore.address_of(name))


# ─────────────── wallet over HTTP ───────────────

ApiOption = Annotated[str | None, typer.Option("--api", help="the facilitator's API (default GRIDLEDGER_API_URL)")]
PasswordOption = Annotated[
    str, typer.Option(prompt=True, hide_input=True, envvar="GRIDLEDGER_WALLET_PASSWORD", help="keystore password")
]


def _client(api: str | None) -> GridLedgerClient:
    from gridledger.api.client import GridLedgerClient

    return GridLedgerClient(api or Settings().api_url)


def _slot_start(text: str) -> int:
    """A slot given as unix seconds or as an ISO date-time (UTC unless it names a zone)."""
    if text.isdigit():
        return int(text)
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise typer.BadParameter(
            f"{text!r} is neither unix seconds nor an ISO date-time like 2026-06-21T12:00"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp())


def _readable_slot(slot: str) -> str:
    _slot_start(slot)  # refused when the command line is read, before the password prompt
    return slot


def _side(side: str) -> str:
    if side not in ("buy", "sell"):
        raise typer.BadParameter(f"side must be buy or sell, not {side!r}")
    return side


@wallet_app.command("order")
def wallet_order(
    name: WalletName,
    side: Annotated[str, typer.Option(help="buy or sell", callback=_side)],
    slot: Annotated[
        str, typer.Option(help="delivery slot start: unix seconds or ISO date-time (UTC)", callback=_readable_slot)
    ],
    energy_wh: Annotated[int, typer.Option(min=1, help="energy in Wh")],
    price: Annotated[float, typer.Option(min=0, help="limit price in tokens per kWh, e.g. 0.25")],
    password: PasswordOption,
    nonce: Annotated[int | None, typer.Option(min=0, help="default: the next unused nonce")] = None,
    api: ApiOption = None,
) -> None:
    """Sign an order with the wallet's key and submit it to the facilitator's API."""
    from gridledger.market.orders import Side
    from gridledger.wallet import keystore

    delivery_start = _slot_start(slot)
    account = keystore.load(name, password)
    client = _client(api)
    result = client.place(
        account,
        side=Side.BUY if side == "buy" else Side.SELL,
        delivery_start=delivery_start,
        energy_wh=energy_wh,
        price_per_kwh=round(price * 1_000_000),
        nonce=nonce,
    )
    console.print(f"order {result['order_hash']} {result['status']}", soft_wrap=True)


@wallet_app.command("offer")
def wallet_offer(
    name: WalletName,
    request: Annotated[int, typer.Option(min=1, help="the DSO's flexibility request id")],
    power_w: Annotated[int, typer.Option(min=1, help="flexible power in W")],
    availability_price: Annotated[float, typer.Option(min=0, help="tokens per kW per hour of the window")],
    utilisation_price: Annotated[float, typer.Option(min=0, help="tokens per kWh delivered")],
    password: PasswordOption,
    api: ApiOption = None,
) -> None:
    """Sign a flexibility offer for a request's window at the wallet's connection point and submit it."""
    from gridledger.wallet import keystore

    account = keystore.load(name, password)
    result = _client(api).offer(
        account,
        request,
        power_w=power_w,
        availability_price_per_kwh=round(availability_price * 1_000_000),
        utilisation_price_per_kwh=round(utilisation_price * 1_000_000),
    )
    console.print(f"offer {result['offer_id']} for request {result['request_id']} recorded", soft_wrap=True)


def _day(ctx: typer.Context, param: typer.CallbackParam, text: str | None) -> str | None:
    """An ISO day; with both --from and --until read, they must be in order (checked here, before
    the password prompt, whichever comes first on the command line)."""
    if text is None:
        return None
    try:
        day = date.fromisoformat(text)
    except ValueError:
        raise typer.BadParameter(f"{text!r} is not an ISO date like 2026-06-01") from None
    other = ctx.params.get("valid_until" if param.name == "valid_from" else "valid_from")
    if other is not None:
        first, last = day, date.fromisoformat(other)
        if param.name != "valid_from":
            first, last = last, first
        if last < first:
            raise typer.BadParameter(f"--until {last} is before --from {first}")
    return text


def _aggregator(text: str) -> str:
    if not text.strip():
        raise typer.BadParameter("name the aggregator's UFTP domain, e.g. agr.example.com")
    return text


@wallet_app.command("mandate")
def wallet_mandate(
    name: WalletName,
    aggregator: Annotated[
        str, typer.Option(help="the aggregator's UFTP domain, e.g. agr.example.com", callback=_aggregator)
    ],
    valid_from: Annotated[str, typer.Option("--from", help="first day (ISO date)", callback=_day)],
    password: PasswordOption,
    valid_until: Annotated[
        str | None, typer.Option("--until", help="last day (ISO date); default: until replaced", callback=_day)
    ] = None,
    nonce: Annotated[
        int | None, typer.Option(min=0, max=2**64 - 1, help="default: one above the mandate in force (0 for a first)")
    ] = None,
    api: ApiOption = None,
) -> None:
    """Mandate an aggregator to represent your connection (the CRO's consent check); a later one,
    with a higher nonce and an earlier --until, withdraws it."""
    from gridledger.wallet import keystore

    start = date.fromisoformat(valid_from)
    end = date.fromisoformat(valid_until) if valid_until else None
    account = keystore.load(name, password)
    result = _client(api).mandate(account, aggregator, valid_from=start, valid_until=end, nonce=nonce)
    console.print(
        f"meter {result['meter_id']} mandated to {aggregator} from {start} to {end or 'open end'} "
        f"(nonce {result['nonce']})",
        soft_wrap=True,
    )


@wallet_app.command("cancel")
def wallet_cancel(name: WalletName, order_hash: str, password: PasswordOption, api: ApiOption = None) -> None:
    """Sign a cancellation of one of the wallet's orders and submit it."""
    from gridledger.wallet import keystore

    account = keystore.load(name, password)
    result = _client(api).cancel(account, order_hash)
    console.print(f"cancellation of {result['order_hash']} {result['cancellation']}", soft_wrap=True)


@wallet_app.command("orders")
def wallet_orders(name: WalletName, api: ApiOption = None) -> None:
    """The wallet's orders and their status."""
    from gridledger.reports.participant_tables import orders_table
    from gridledger.wallet import keystore

    console.print(orders_table(_client(api).get(f"/participants/{keystore.address_of(name)}/orders")))


@wallet_app.command("trades")
def wallet_trades(name: WalletName, api: ApiOption = None) -> None:
    """The wallet's fills, with their settlement."""
    from gridledger.reports.participant_tables import trades_table
    from gridledger.wallet import keystore

    console.print(trades_table(_client(api).get(f"/participants/{keystore.address_of(name)}/trades")))


@wallet_app.command("balance")
def wallet_balance(name: WalletName, api: ApiOption = None) -> None:
    """The wallet's token balance and its market account (available and locked in escrow)."""
    from gridledger.reports.participant_tables import balance_line
    from gridledger.wallet import keystore

    console.print(balance_line(_client(api).get(f"/participants/{keystore.address_of(name)}")), soft_wrap=True)


# ─────────────── money in and out; the statement ───────────────


def _amount(text: str) -> int:
    """Tokens as typed (``12.5``) → base units; refused when the command line is read."""
    from decimal import Decimal, InvalidOperation

    try:
        value = Decimal(text)
    except InvalidOperation:
        value = Decimal("NaN")
    units = value * 1_000_000 if value.is_finite() else Decimal(0)
    if units != units.to_integral_value() or not 0 < units <= 2**63 - 1:
        raise typer.BadParameter(f"{text!r}: an amount of tokens is positive with at most 6 decimals, e.g. 25 or 12.5")
    return int(units)


def _readable_amount(text: str) -> str:
    _amount(text)  # refused when the command line is read, before the password prompt
    return text


AmountArg = Annotated[str, typer.Argument(help="tokens, e.g. 25 or 12.5 (six decimals)", callback=_readable_amount)]


@wallet_app.command("deposit")
def wallet_deposit(name: WalletName, amount: AmountArg, password: PasswordOption, api: ApiOption = None) -> None:
    """Move tokens from the wallet into its market balance: a signed permit the facilitator relays."""
    from gridledger.wallet import keystore

    units = _amount(amount)
    account = keystore.load(name, password)
    _print_moved("deposited", _client(api).deposit(account, units))


@wallet_app.command("withdraw")
def wallet_withdraw(name: WalletName, amount: AmountArg, password: PasswordOption, api: ApiOption = None) -> None:
    """Move tokens from the market balance back to the wallet: a signed withdrawal the facilitator relays."""
    from gridledger.wallet import keystore

    units = _amount(amount)
    account = keystore.load(name, password)
    _print_moved("withdrew", _client(api).withdraw(account, units))


def _print_moved(verb: str, result: dict[str, Any]) -> None:
    from gridledger.reports.format import tokens

    balance = result["market_balance"]
    console.print(
        f"{verb} {tokens(result['amount'])} GLEUR (tx {result['tx_hash']}); market balance "
        f"{tokens(balance['available'])} available, {tokens(balance['locked'])} locked; "
        f"wallet {tokens(result['token_balance'])} GLEUR",
        soft_wrap=True,
    )


@wallet_app.command("statement")
def wallet_statement(
    name: WalletName,
    csv_path: Annotated[str, typer.Option("--csv", help="file to write the statement to (CSV)")],
    api: ApiOption = None,
) -> None:
    """Export the wallet's orders, trades, settlements and payments as one CSV (from the API)."""
    from pathlib import Path

    from gridledger.reports.statement import statement_rows, write_statement
    from gridledger.wallet import keystore

    address = keystore.address_of(name)
    client = _client(api)
    rows = statement_rows(
        client.get(f"/participants/{address}/orders"),
        client.get(f"/participants/{address}/trades"),
        client.get(f"/wallet/{address}/payments"),
    )
    write_statement(Path(csv_path), rows)
    kinds = {k: sum(1 for r in rows if r["record"] == k) for k in ("order", "trade", "settlement", "payment")}
    counts = ", ".join(f"{n} {k}{'' if n == 1 else 's'}" for k, n in kinds.items())
    console.print(f"statement of {address}: {counts} → {csv_path}", soft_wrap=True)
