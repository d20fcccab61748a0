"""The ledger as GridLedger's parties use it: one object per deployment, one method per act.

Each method names the role that signs it (admin, facilitator, meter operator, or the prosumer's
own key) and raises a domain exception, decoded from the contract's custom error, if the
chain refuses. A refused call changes nothing: each act is one transaction.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from eth_account.signers.local import LocalAccount
from eth_utils.crypto import keccak
from web3.contract import Contract
from web3.logs import DISCARD
from web3.types import TxReceipt

from gridledger.chain.compile import Build, compile_contracts
from gridledger.chain.connection import Chain, Roles, connect
from gridledger.chain.deploy import Deployment, ensure_deployed
from gridledger.chain.reverts import RevertDecoder
from gridledger.chain.transactions import Transactor
from gridledger.config import Settings
from gridledger.encoding import short_hex
from gridledger.errors import OrderError
from gridledger.flex.products import FlexOffer, FlexRequest, SignedOffer
from gridledger.market.orders import Order, RecordedOrder, SignedOrder
from gridledger.wallet.signing import sign_cancellation, sign_offer, sign_order

RELAY_BATCH_SIZE = 100
SLOT_STATUS = ("open", "cleared", "settled")


@dataclass(frozen=True, slots=True)
class SlotState:
    fills_hash: bytes
    network_report_hash: bytes
    open_orders: int
    status: str
    clearing_price_per_kwh: int
    pot_amount: int


class Ledger:
    """A GridLedger deployment on a chain, with the keys of the operating roles."""

    def __init__(
        self, chain: Chain, build: Build, deployment: Deployment, roles: Roles, transactor: Transactor
    ) -> None:
        self.chain = chain
        self.build = build
        self.deployment = deployment
        self.roles = roles
        self.tx = transactor
        w3 = chain.w3

        def bind(name: str) -> Contract:
            address = deployment.addresses[name]
            return w3.eth.contract(address=address, abi=build[name].abi)  # type: ignore[call-overload,no-any-return]

        self.token = bind("SettlementToken")
        self.registry = bind("ParticipantRegistry")
        self.market = bind("EnergyMarket")
        self.flex = bind("FlexibilityMarket")

    @classmethod
    def open(cls, settings: Settings | None = None, *, record: bool = True) -> tuple[Ledger, bool]:
        """Connects to the configured chain and uses (or makes) its deployment."""
        settings = settings or Settings()
        chain = connect(settings)
        build = compile_contracts()
        roles = Roles.from_settings(settings)
        transactor = Transactor(chain, RevertDecoder(c.abi for c in build.contracts.values()))
        deployment, deployed = ensure_deployed(chain, transactor, roles, build, settings, record=record)
        return cls(chain, build, deployment, roles, transactor), deployed

    # ─────────────── administration ───────────────

    def fund_gas(self, to: str, wei: int) -> None:
        """Sends ``wei`` of the chain's native currency from the admin, for a wallet's own txs."""
        self.tx.send_value(self.roles.admin, to, wei)

    def mint(self, to: str, amount: int) -> TxReceipt:
        return self.tx.send(self.roles.admin, self.token.functions.mint(to, amount), action=f"mint to {to}")

    def register(self, account: str, *, meter_id: int, bus: int, capacity_w: int) -> TxReceipt:
        """Registers a participant (facilitator's key)."""
        call = self.registry.functions.register(account, meter_id, bus, capacity_w)
        return self.tx.send(self.roles.facilitator, call, action=f"register {account}")

    # ─────────────── prosumer's own transactions ───────────────

    def deposit(self, account: LocalAccount, amount: int) -> TxReceipt:
        """Approves the market and deposits ``amount`` base units into the account's market balance."""
        market = self.market.address
        self.tx.send(account, self.token.functions.approve(market, amount), action="approve the market")
        return self.tx.send(account, self.market.functions.deposit(amount), action=f"deposit {amount}")

    def withdraw(self, account: LocalAccount, amount: int) -> TxReceipt:
        return self.tx.send(account, self.market.functions.withdraw(amount), action=f"withdraw {amount}")

    def place_order(self, account: LocalAccount, order: Order) -> TxReceipt:
        call = self.market.functions.placeOrder(order.as_abi())
        return self.tx.send(account, call, action="place order")

    def cancel_order(self, account: LocalAccount, order: Order) -> TxReceipt:
        call = self.market.functions.cancelOrder(order.as_abi())
        return self.tx.send(account, call, action="cancel order")

    def sign(self, account: LocalAccount, order: Order) -> SignedOrder:
        return sign_order(account, order, chain_id=self.chain.chain_id, market_address=self.market.address)

    def sign_cancellation(self, account: LocalAccount, order_hash: bytes) -> tuple[bytes, bytes]:
        return sign_cancellation(account, order_hash, chain_id=self.chain.chain_id, market_address=self.market.address)

    # ─────────────── facilitator ───────────────

    def relay_orders(self, orders: Sequence[SignedOrder], *, batch_size: int = RELAY_BATCH_SIZE) -> list[TxReceipt]:
        """Relays signed orders in batches; each batch is recorded whole or not at all."""
        receipts = []
        for start in range(0, len(orders), batch_size):
            batch = [o.as_abi() for o in orders[start : start + batch_size]]
            call = self.market.functions.relayOrders(batch)
            receipts.append(
                self.tx.send(
                    self.roles.facilitator,
                    call,
                    action=f"relay of {len(batch)} order{'' if len(batch) == 1 else 's'}",
                )
            )
        return receipts

    def cancel_order_by_sig(self, order: Order, r: bytes, vs: bytes) -> TxReceipt:
        """Relays a prosumer's signed cancellation (facilitator's key pays the gas)."""
        call = self.market.functions.cancelOrderBySig(order.as_abi(), r, vs)
        return self.tx.send(self.roles.facilitator, call, action=f"cancellation of order of {order.prosumer}")

    def commit_clearing(
        self,
        delivery_start: int,
        price_per_kwh: int,
        fills: Sequence[tuple[Order, int]],
        *,
        network_report_hash: bytes,
        network_model_version: bytes,
        check_only: bool = False,
    ) -> TxReceipt | None:
        """Commits a slot's uniform price, the fill of every open order of the slot, and the hash
        of the network validation report the result passed (with the model's version). With
        ``check_only`` it sends nothing and raises what the contract would refuse."""
        call = self.market.functions.commitClearing(
            delivery_start, price_per_kwh, network_report_hash, network_model_version, _fills_abi(fills)
        )
        action = f"clearing of slot {delivery_start}"
        if check_only:
            self.tx.check(self.roles.facilitator, call, action=action)
            return None
        return self.tx.send(self.roles.facilitator, call, action=action)

    # ─────────────── meter operator and settlement ───────────────

    def post_meter_readings(self, delivery_start: int, readings: dict[str, int]) -> TxReceipt:
        """Posts net metered energy per account (Wh, positive = taken from the grid)."""
        accounts = list(readings)
        call = self.market.functions.postMeterReadings(delivery_start, accounts, [readings[a] for a in accounts])
        return self.tx.send(self.roles.meter, call, action=f"meter readings of slot {delivery_start}")

    def settle(self, delivery_start: int, fills: Sequence[tuple[Order, int]]) -> TxReceipt:
        """Settles a cleared and metered slot (any key may; the facilitator's is used)."""
        call = self.market.functions.settle(delivery_start, _fills_abi(fills))
        return self.tx.send(self.roles.facilitator, call, action=f"settlement of slot {delivery_start}")

    # ─────────────── flexibility market ───────────────

    def post_flex_request(self, request: FlexRequest) -> int:
        """The DSO approves the request's maximum spend and posts it; returns the request id."""
        dso = self.roles.dso
        if request.bid_deadline <= self.chain.now():
            raise OrderError(f"bid deadline {request.bid_deadline} has passed: the ledger's time is {self.chain.now()}")
        self.tx.send(dso, self.token.functions.approve(self.flex.address, request.max_spend), action="approve escrow")
        receipt = self.tx.send(dso, self.flex.functions.postRequest(request.as_abi()), action="flexibility request")
        (event,) = self.flex.events.RequestPosted().process_receipt(receipt, errors=DISCARD)
        return int(event["args"]["requestId"])

    def sign_offer(self, account: LocalAccount, offer: FlexOffer) -> SignedOffer:
        return sign_offer(account, offer, chain_id=self.chain.chain_id, flex_address=self.flex.address)

    def submit_offer(self, signed: SignedOffer) -> TxReceipt:
        """Relays a provider's signed offer (the facilitator's key pays the gas)."""
        call = self.flex.functions.submitOffer(signed.as_abi())
        return self.tx.send(self.roles.facilitator, call, action=f"offer of {signed.offer.provider}")

    def award_flex(self, request_id: int, offer_ids: Sequence[bytes], report_hash: bytes) -> TxReceipt:
        call = self.flex.functions.award(request_id, list(offer_ids), report_hash)
        return self.tx.send(self.roles.facilitator, call, action=f"award of request {request_id}")

    def activate_flex(self, offer_id: bytes, slot: int, power_w: int, *, by: str = "dso") -> TxReceipt:
        """Activates an awarded offer for one slot, by the DSO or (coordinating) the facilitator."""
        account = self.roles.dso if by == "dso" else self.roles.facilitator
        call = self.flex.functions.activate(offer_id, slot, power_w)
        return self.tx.send(account, call, action=f"activation of offer {short_hex(offer_id)}")

    def record_flex_measurement(self, offer_id: bytes, slot: int, *, baseline_wh: int, actual_wh: int) -> TxReceipt:
        call = self.flex.functions.recordMeasurement(offer_id, slot, baseline_wh, actual_wh)
        return self.tx.send(self.roles.meter, call, action=f"measurement of offer {short_hex(offer_id)}")

    def settle_flex(self, request_id: int) -> TxReceipt:
        call = self.flex.functions.settle(request_id)
        return self.tx.send(self.roles.facilitator, call, action=f"settlement of request {request_id}")

    def claim_flex(self, account: LocalAccount) -> TxReceipt:
        """Takes ``account``'s whole claimable balance from the flexibility market: a provider's
        payments or the DSO's refunds, credited at settlement (pass ``roles.dso`` for the DSO)."""
        call = self.flex.functions.claim()
        return self.tx.send(account, call, action=f"claim of {account.address}'s flexibility balance")

    def flex_claimable(self, address: str) -> int:
        """What ``address`` can take with :meth:`claim_flex`, in token base units."""
        return int(self.flex.functions.claimable(address).call())

    def flex_request_status(self, request_id: int) -> str:
        status = self.flex.functions.request(request_id).call()[4]
        return ("none", "open", "awarded", "settled")[status]

    def flex_delivery(self, offer_id: bytes, slot: int) -> dict[str, int | bool]:
        ordered, measured, baseline, actual, delivered = self.flex.functions.delivery(offer_id, slot).call()
        return {
            "ordered_wh": ordered,
            "measured": measured,
            "baseline_wh": baseline,
            "actual_wh": actual,
            "delivered_wh": delivered,
        }

    # ─────────────── reads ───────────────

    def recorded_orders(self, delivery_start: int, *, from_block: int | None = None) -> list[RecordedOrder]:
        """The slot's open orders as the chain recorded them, in arrival order."""
        start = self.deployment.block if from_block is None else from_block
        filters: dict[str, Any] = {"deliveryStart": delivery_start}
        recorded = self.market.events.OrderRecorded.get_logs(from_block=start, argument_filters=filters)
        cancelled = {
            bytes(log["args"]["orderHash"]) for log in self.market.events.OrderCancelled.get_logs(from_block=start)
        }
        result = [RecordedOrder.from_log(log) for log in recorded]
        return sorted((r for r in result if r.order_hash not in cancelled), key=lambda r: r.arrival)

    def slot_state(self, delivery_start: int) -> SlotState:
        fills_hash, report_hash, open_orders, status, price, pot = self.market.functions.slotState(
            delivery_start
        ).call()
        return SlotState(bytes(fills_hash), bytes(report_hash), open_orders, SLOT_STATUS[status], price, pot)

    def account_of(self, address: str) -> tuple[int, int]:
        """(available, locked) base units of ``address`` inside the market."""
        available, locked = self.market.functions.accountOf(address).call()
        return int(available), int(locked)

    def token_balance(self, address: str) -> int:
        return int(self.token.functions.balanceOf(address).call())

    def order_hash(self, order: Order) -> bytes:
        return bytes(self.market.functions.orderHash(order.as_abi()).call())

    def nonce_status(self, prosumer: str, nonce: int) -> str:
        status = self.market.functions.nonceStatus(prosumer, nonce).call()
        return ("unused", "open", "cancelled", "cleared")[status]


def fills_hash(fills: Iterable[tuple[bytes, int]]) -> bytes:
    """The hash chain ``commitClearing`` stores: keccak(previous ‖ orderHash ‖ filledWh), from zero."""
    chain = b"\0" * 32
    for order_hash, filled_wh in fills:
        chain = bytes(keccak(chain + order_hash + filled_wh.to_bytes(32, "big")))
    return chain


def _fills_abi(fills: Iterable[tuple[Order, int]]) -> list[tuple[Any, ...]]:
    return [(order.as_abi(), filled_wh) for order, filled_wh in fills]
