"""The ``gridledger`` command."""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from gridledger.config import Settings
from gridledger.errors import GridLedgerError

app = typer.Typer(help="GridLedger: a local energy market on an Ethereum ledger.", no_args_is_help=True)
devnet_app = typer.Typer(help="Start and stop a local devnet node (Hardhat or anvil).", no_args_is_help=True)
wallet_app = typer.Typer(
    help="Prosumer wallets: encrypted keystores; orders, cancellations and balances over the API.",
    no_args_is_help=True,
)
app.add_typer(devnet_app, name="devnet")
app.add_typer(wallet_app, name="wallet")
console = Console(width=None if sys.stdout.isatty() else 130)


def _tokens(base_units: float) -> str:
    return f"{base_units / 1e6:,.2f}"


@app.command()
def demo(
    prosumers: Annotated[int, typer.Option(min=2, max=104, help="number of prosumers")] = 24,
    day: Annotated[int, typer.Option(min=1, max=366, help="day of SimBench's 2016 profile year")] = 173,
    slots: Annotated[int, typer.Option(min=1, max=96, help="15-minute slots to run")] = 96,
    first_slot: Annotated[int, typer.Option(min=0, max=95, help="first slot of the day (48 = 12:00)")] = 0,
    seed: Annotated[int, typer.Option(help="seed of prices and meter deviations")] = 7,
    audit_slots: Annotated[
        bool, typer.Option("--audit", help="audit every slot afterwards (slow on the embedded chain)")
    ] = False,
) -> None:
    """Run one market day of P2P trading on the configured chain (embedded by default)."""
    from gridledger.chain.ledger import Ledger
    from gridledger.reports.day_summary import summarise
    from gridledger.sim.market_day import DayConfig, SlotOutcome, run_market_day

    settings = Settings()
    config = DayConfig(
        prosumers=prosumers, day=day, slots=slots, first_slot=first_slot, seed=seed, database=settings.database
    )
    with console.status("compiling contracts, starting the chain and deploying…"):
        ledger, deployed = Ledger.open(settings, record=settings.chain != "embedded")
    market = ledger.deployment.addresses["EnergyMarket"]
    console.print(
        f"[bold]GridLedger demo[/] on [cyan]{settings.chain}[/] (chain {ledger.chain.chain_id}); "
        f"market {market} "
        f"({'deployed now' if deployed else 'reused'}), solc {ledger.build.compiler_version.split('+')[0]}"
    )
    console.print(f"{prosumers} prosumers of SimBench {config.grid}, day {day} of 2016, {slots} slots of 15 minutes")
    with Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
    ) as progress:
        task = progress.add_task("onboarding prosumers", total=slots)

        def on_slot(outcome: SlotOutcome) -> None:
            clock = datetime.fromtimestamp(outcome.delivery_start, tz=UTC).strftime("%H:%M")
            price = outcome.clearing.price_per_kwh
            what = f"{outcome.clearing.traded_wh / 1000:6.2f} kWh at {price / 1e6:.3f}" if price else "no trade"
            progress.update(task, advance=1, description=f"slot {clock}  {outcome.orders:3d} orders  {what}")

        result = run_market_day(ledger, config, on_slot=on_slot)
    _print_summary(summarise(result))
    if not audit_slots:
        return
    with console.status("auditing every slot from the chain's records…"):
        audits = _audit(ledger, settings, [s.delivery_start for s in result.slots], grid=config.grid)
    confirmed = sum(a.confirmed for a in audits)
    console.print(
        f"audit: {confirmed} of {len(audits)} slots confirmed from the chain's records, the published "
        f"network model and the stored reports (`gridledger audit` re-runs this on a devnet)"
    )


def _audit(ledger, settings: Settings, slots: list[int], *, grid: str):  # type: ignore[no-untyped-def]
    from gridledger.audit import audit_slot
    from gridledger.network.model import NetworkModel
    from gridledger.network.validation import BatchEngine
    from gridledger.store.reports import ReportStore

    model = NetworkModel.load(grid)
    engine = BatchEngine(model)
    store = ReportStore(settings.database)
    return [audit_slot(ledger, model, engine, store, slot) for slot in slots]


@app.command()
def audit(
    network: Annotated[str, typer.Option(help="SimBench code or pandapower JSON of the published model")] = (
        "1-LV-semiurb5--0-sw"
    ),
    slot: Annotated[
        list[int] | None, typer.Option(help="delivery start(s) to audit; default: every cleared slot")
    ] = None,
) -> None:
    """Re-run clearing and network validation for cleared slots and compare with the chain."""
    from gridledger.chain.ledger import Ledger

    settings = Settings()
    if settings.chain == "embedded":
        raise GridLedgerError(
            "the embedded chain ends with the process that ran it: audit a devnet or RPC chain "
            "(GRIDLEDGER_CHAIN=hardhat|anvil|http://…); the demo audits its own day at the end"
        )
    ledger, _ = Ledger.open(settings)
    slots = slot or sorted(
        {
            int(e["args"]["deliveryStart"])
            for e in ledger.market.events.SlotCleared.get_logs(from_block=ledger.deployment.block)
        }
    )
    failed = 0
    for result in _audit(ledger, settings, slots, grid=network):
        clock = datetime.fromtimestamp(result.delivery_start, tz=UTC).strftime("%Y-%m-%d %H:%M")
        if result.confirmed:
            console.print(f"{clock}  confirmed")
        else:
            failed += 1
            console.print(f"{clock}  [red]REFUTED[/]", soft_wrap=True)
            for difference in result.differences:
                console.print(f"    - {difference}", soft_wrap=True)
    console.print(f"{len(slots) - failed} of {len(slots)} slots confirmed")
    if failed:
        raise typer.Exit(code=1)


def _flex_lines(flex) -> list[tuple[str, str]]:  # type: ignore[no-untyped-def]
    if flex is None:
        return [("DSO flexibility request", "not in this run (it needs 16:30–19:00 among the slots run)")]

    def clock(ts: int) -> str:
        return datetime.fromtimestamp(ts, tz=UTC).strftime("%H:%M")

    paid = flex.availability_paid + flex.utilisation_paid
    lines = [
        (
            "DSO flexibility request",
            f"#{flex.request_id} secure, up, at bus {flex.congestion_bus} (the participants' weakest), "
            f"{clock(flex.window_start)}–{clock(flex.window_start + 3_600)}, {flex.power_w / 1000:g} kW; "
            f"{flex.offers} offers, {flex.awarded} awarded ({flex.awarded_power_w / 1000:g} kW)",
        ),
        (
            "flexibility delivered",
            f"{flex.delivered_wh / 1000:.2f} of {flex.ordered_wh / 1000:.2f} kWh ordered; paid {_tokens(paid)} "
            f"(availability {_tokens(flex.availability_paid)}, utilisation {_tokens(flex.utilisation_paid)}); "
            f"DSO refunded {_tokens(flex.refunded)} of {_tokens(flex.escrow)} escrowed",
        ),
    ]
    if flex.note:
        lines.append(("", flex.note))
    return lines


def _print_summary(summary) -> None:  # type: ignore[no-untyped-def]
    console.print()
    console.print("[bold]Market day summary[/]")
    avg = summary.average_price_per_kwh
    lines = [
        ("slots cleared and settled", f"{summary.slots}"),
        ("orders", f"{summary.orders:,}"),
        ("trades (filled orders)", f"{summary.trades:,}"),
        ("energy traded locally", f"{summary.traded_wh / 1000:,.2f} kWh"),
        ("average clearing price", f"{avg / 1e6:.4f} per kWh (volume-weighted)" if avg else "no trades"),
        ("network model", f"{summary.network_name}"),
        ("worst line loading", f"{summary.network.max_line_loading_percent:.1f} %"),
        ("worst transformer loading", f"{summary.network.max_trafo_loading_percent:.1f} %"),
        ("bus voltage range", f"{summary.network.v_min_pu:.3f}–{summary.network.v_max_pu:.3f} pu"),
        (
            "slots curtailed",
            f"{summary.network.curtailed_slots} ({summary.network.curtailed_wh / 1000:.2f} kWh curtailed); "
            f"slots with violations left: {summary.network.slots_with_violations}",
        ),
        *_flex_lines(summary.flex),
        ("total gas", f"{summary.total_gas:,}"),
        ("gas by call", ", ".join(f"{k} {v:,}" for k, v in summary.gas_by_call.items())),
        ("wall time", f"{summary.seconds:.1f} s"),
    ]
    for name, value in lines:
        console.print(f"  {name:<28} {value}")
    table = Table(title="Each prosumer: cost against retail/feed-in tariffs (tokens; negative = income)")
    for column in (
        "prosumer",
        "bus",
        "PV kWp",
        "import kWh",
        "export kWh",
        "bought kWh",
        "sold kWh",
        "baseline",
        "with market",
        "saving",
    ):
        table.add_column(column, justify="left" if column == "prosumer" else "right")
    for p in summary.prosumers:
        table.add_row(
            p.name.split(" ", 1)[-1],
            str(p.bus),
            f"{p.pv_kwp:.0f}",
            f"{p.imported_wh / 1000:.2f}",
            f"{p.exported_wh / 1000:.2f}",
            f"{p.bought_wh / 1000:.2f}",
            f"{p.sold_wh / 1000:.2f}",
            _tokens(p.baseline_cost),
            _tokens(p.market_cost),
            _tokens(p.saving),
        )
    total_saving = sum(p.saving for p in summary.prosumers)
    table.add_row(
        "all",
        "",
        "",
        "",
        "",
        "",
        "",
        _tokens(sum(p.baseline_cost for p in summary.prosumers)),
        _tokens(sum(p.market_cost for p in summary.prosumers)),
        _tokens(total_saving),
        style="bold",
    )
    console.print(table)


@app.command("flex-report")
def flex_report(
    days: Annotated[int, typer.Option(min=1, max=28, help="days to run (7 = a week)")] = 7,
    first_day: Annotated[int, typer.Option(min=1, max=330, help="first day of SimBench's 2016 profiles")] = 18,
) -> None:
    """Run a week on a congested feeder twice: independent markets versus joint clearing."""
    from gridledger.reports.flex_week import GRID, run_week

    with console.status(f"running {days} days of {GRID} twice…"):
        independent, joint, decisions = run_week(first_day=first_day, days=days)
    table = Table(title=f"{GRID}, days {first_day}–{first_day + days - 1} of 2016, evenings 17:00–21:00")
    rows = [independent.row(), joint.row()]
    table.add_column("")
    for row in rows:
        table.add_column(str(row["run"]), justify="right")
    for key in list(rows[0])[1:]:
        table.add_row(key, *(f"{row[key]:,.2f}" if isinstance(row[key], float) else f"{row[key]:,}" for row in rows))
    console.print(table)
    congested = len(decisions)
    console.print(
        f"{joint.congested_slots} of {days * 16} slots congested before any action; joint clearing chose "
        + ", ".join(f"{choice} in {count}" for choice, count in sorted(joint.choices.items()))
        + f" slots. DSO availability payments {joint.flex_availability_cost / 1e6:,.2f}, utilisation "
        f"{joint.flex_utilisation_cost / 1e6:,.2f} tokens; {congested} decisions recorded."
    )


@app.command()
def compile() -> None:
    """Compile the contracts offline (cached by source hash)."""
    from gridledger.chain.compile import compile_contracts

    build = compile_contracts()
    names = ", ".join(n for n, c in build.contracts.items() if c.bytecode)
    console.print(f"compiled {names} with solc {build.compiler_version}", soft_wrap=True)
    console.print(f"source hash {build.source_hash}", soft_wrap=True)


@app.command()
def deploy() -> None:
    """Deploy to the configured chain and record deployments/<chainId>.json (reuses a live deployment)."""
    from gridledger.chain.deploy import record_path
    from gridledger.chain.ledger import Ledger

    settings = Settings()
    if settings.chain == "embedded":
        raise GridLedgerError(
            "the embedded chain lives only inside one process: deploy to a devnet or RPC URL "
            "(GRIDLEDGER_CHAIN=hardhat|anvil|http://…), or run `gridledger demo`"
        )
    ledger, deployed = Ledger.open(settings)
    d = ledger.deployment
    console.print(("deployed" if deployed else "reused the existing deployment") + f" on chain {d.chain_id}:")
    console.print(json.dumps(d.addresses, indent=2))
    console.print(f"record: {record_path(d.chain_id)}", soft_wrap=True)


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="address to listen on (default GRIDLEDGER_API_HOST)")] = None,
    port: Annotated[int | None, typer.Option(min=1, max=65535, help="port (default GRIDLEDGER_API_PORT)")] = None,
) -> None:
    """Run the facilitator's API (uvicorn) on the configured chain: relayer, indexer, clearing."""
    import uvicorn

    from gridledger.api.app import create_app
    from gridledger.chain.ledger import Ledger
    from gridledger.service.facilitator import Facilitator

    settings = Settings()
    if settings.chain == "embedded" and "database" not in settings.model_fields_set:
        # An embedded chain starts empty with every process, and so must its index.
        settings = settings.model_copy(update={"database": "data/embedded-serve.sqlite"})
        _set_aside(settings.database)
    with console.status("compiling contracts, connecting to the chain and deploying…"):
        ledger, deployed = Ledger.open(settings, record=settings.chain != "embedded")
        service = Facilitator(ledger, settings)
    host = host or settings.api_host
    port = port or settings.api_port
    console.print(
        f"GridLedger facilitator on [cyan]{settings.chain}[/] (chain {ledger.chain.chain_id}), market "
        f"{ledger.market.address} ({'deployed now' if deployed else 'reused'}), index {settings.database}",
        soft_wrap=True,
    )
    console.print(f"API at http://{host}:{port}  (OpenAPI: /openapi.json, interactive docs: /docs)", soft_wrap=True)
    uvicorn.run(create_app(service), host=host, port=port, log_level="warning")


def _set_aside(database: str) -> None:
    from pathlib import Path

    path = Path(database)
    for suffix in ("", "-wal", "-shm"):
        old = path.with_name(path.name + suffix)
        if old.exists():
            old.replace(old.with_name(old.name + ".previous"))


@devnet_app.command("start")
def devnet_start(
    kind: Annotated[str, typer.Argument(help="hardhat or anvil")] = "hardhat",
    port: Annotated[int, typer.Option(min=1024, max=65535)] = 8545,
) -> None:
    """Start a devnet node on 127.0.0.1 in the background."""
    from gridledger.chain import devnet

    node = devnet.start(kind, port)
    console.print(f"{kind} answers at {node.url} (pid {node.pid}); use GRIDLEDGER_CHAIN={kind}")


@devnet_app.command("stop")
def devnet_stop(kind: Annotated[str, typer.Argument(help="hardhat or anvil")] = "hardhat") -> None:
    """Stop the devnet node that `devnet start` started."""
    from gridledger.chain import devnet

    console.print(f"stopped {kind}" if devnet.stop(kind) else f"no {kind} node was running")


@wallet_app.command("create")
def wallet_create(
    name: str, password: Annotated[str, typer.Option(prompt=True, hide_input=True, confirmation_prompt=True)]
) -> None:
    """Create a new key in an encrypted keystore."""
    from gridledger.wallet import keystore

    account = keystore.create(name, password)
    console.print(f"wallet {name}: {account.address} ({keystore.keystore_dir() / (name + '.json')})")


@wallet_app.command("import")
def wallet_import(
    name: str,
    private_key: Annotated[str, typer.Option(prompt=True, hide_input=True)],
    password: Annotated[str, typer.Option(prompt=True, hide_input=True, confirmation_prompt=True)],
) -> None:
    """Import an existing private key into an encrypted keystore."""
    from gridledger.wallet import keystore

    account = keystore.create(name, password, private_key=private_key)
    console.print(f"wallet {name}: {account.address}")


@wallet_app.command("address")
def wallet_address(name: str) -> None:
    """Show a wallet's address (without unlocking it)."""
    from gridledger.wallet import keystore

    console.print(keystore.address_of(name))


# ─────────────── wallet over HTTP ───────────────

ApiOption = Annotated[str | None, typer.Option("--api", help="the facilitator's API (default GRIDLEDGER_API_URL)")]
PasswordOption = Annotated[
    str, typer.Option(prompt=True, hide_input=True, envvar="GRIDLEDGER_WALLET_PASSWORD", help="keystore password")
]


def _client(api: str | None):  # type: ignore[no-untyped-def]
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


@wallet_app.command("order")
def wallet_order(
    name: str,
    side: Annotated[str, typer.Option(help="buy or sell")],
    slot: Annotated[str, typer.Option(help="delivery slot start: unix seconds or ISO date-time (UTC)")],
    energy_wh: Annotated[int, typer.Option(min=1, help="energy in Wh")],
    price: Annotated[float, typer.Option(min=0, help="limit price in tokens per kWh, e.g. 0.25")],
    password: PasswordOption,
    nonce: Annotated[int | None, typer.Option(min=0, help="default: the next unused nonce")] = None,
    api: ApiOption = None,
) -> None:
    """Sign an order with the wallet's key and submit it to the facilitator's API."""
    from gridledger.market.orders import Side
    from gridledger.wallet import keystore

    if side not in ("buy", "sell"):
        raise typer.BadParameter(f"side must be buy or sell, not {side!r}")
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
    name: str,
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


@wallet_app.command("cancel")
def wallet_cancel(name: str, order_hash: str, password: PasswordOption, api: ApiOption = None) -> None:
    """Sign a cancellation of one of the wallet's orders and submit it."""
    from gridledger.wallet import keystore

    account = keystore.load(name, password)
    result = _client(api).cancel(account, order_hash)
    console.print(f"cancellation of {result['order_hash']} {result['cancellation']}", soft_wrap=True)


@wallet_app.command("orders")
def wallet_orders(name: str, api: ApiOption = None) -> None:
    """The wallet's orders and their status."""
    from gridledger.wallet import keystore

    orders = _client(api).get(f"/participants/{keystore.address_of(name)}/orders")
    table = Table("order", "slot (UTC)", "side", "Wh", "price/kWh", "status", "filled Wh")
    for o in orders:
        order = o["order"]
        table.add_row(
            o["order_hash"][:18] + "…",
            datetime.fromtimestamp(order["delivery_start"], tz=UTC).strftime("%Y-%m-%d %H:%M"),
            order["side"],
            str(order["energy_wh"]),
            f"{order['price_per_kwh'] / 1e6:.4f}",
            o["status"] + (f" ({o['reason']})" if o.get("reason") else ""),
            str(o["filled_wh"]),
        )
    console.print(table)


@wallet_app.command("trades")
def wallet_trades(name: str, api: ApiOption = None) -> None:
    """The wallet's fills, with their settlement."""
    from gridledger.wallet import keystore

    trades = _client(api).get(f"/participants/{keystore.address_of(name)}/trades")
    table = Table("slot (UTC)", "side", "filled Wh", "amount", "settled: payment", "imbalance charge")
    for t in trades:
        s = t["settlement"] or {}
        table.add_row(
            datetime.fromtimestamp(t["delivery_start"], tz=UTC).strftime("%Y-%m-%d %H:%M"),
            t["side"],
            str(t["filled_wh"]),
            _tokens(t["amount"]),
            _tokens(s["payment"]) if s else "not yet",
            _tokens(s["imbalance_charge"]) if s else "",
        )
    console.print(table)


@wallet_app.command("balance")
def wallet_balance(name: str, api: ApiOption = None) -> None:
    """The wallet's token balance and its market account (available and locked in escrow)."""
    from gridledger.wallet import keystore

    p = _client(api).get(f"/participants/{keystore.address_of(name)}")
    market = p["market_balance"]
    console.print(
        f"{p['account']}: wallet {_tokens(p['token_balance'])} tokens; market available "
        f"{_tokens(market['available'])}, locked {_tokens(market['locked'])}; next nonce {p['next_nonce']}",
        soft_wrap=True,
    )


def main() -> None:
    try:
        app(standalone_mode=False)
    except GridLedgerError as exc:
        console.print(f"[red]error:[/] {exc}")
        sys.exit(1)
