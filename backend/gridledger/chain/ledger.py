"""The ledger as GridLedger's parties use it: one object per deployment, one method per act.

Each method names the role that signs it (admin, facilitator, meter operator, DSO, or the
prosumer's own key) and raises a domain exception, decoded from the contract's custom error, if
the chain refuses. A refused call changes nothing. Most acts are one transaction; a slot's
clearing, its meter readings and its settlement take as many as the slot needs (each under
EIP-7825's cap), and a clearing is checked whole (every chunk) before its first one is sent.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from eth_account.signers.local import LocalAccount
from eth_utils.address import to_checksum_address
from eth_utils.crypto import keccak
from web3.contract import Contract
from web3.contract.contract import ContractFunction
from web3.exceptions import BadResponseFormat
from web3.logs import DISCARD
from web3.types import TxReceipt

from gridledger.chain import rpc_raw
from gridledger.chain.compile import Build, compile_contracts
from gridledger.chain.connection import Chain, Roles, connect
from gridledger.chain.deploy import Deployment, ensure_deployed
from gridledger.chain.reverts import RevertDecoder, refusal
from gridledger.chain.slots import (
    ORDER_CANCELLED_TOPIC,
    ORDER_RECORDED_TOPIC,
    ZERO_HASH,
    ClearingItem,
    SlotOrder,
    cancellation_proof,
    chunks_by_boundaries,
    clearing_items,
    pack_order,
    pack_readings,
    raw_recorded_orders,
    split,
)
from gridledger.chain.slots import chain as order_chain
from gridledger.chain.transactions import PreparedTx, Transactor
from gridledger.config import Settings
from gridledger.encoding import short_hex
from gridledger.errors import LedgerError, OrderError
from gridledger.flex.products import FlexOffer, FlexRequest, SignedOffer
from gridledger.market.orders import Order, RecordedOrder, SignedOrder
from gridledger.wallet.signing import order_hash, sign_cancellation, sign_offer, sign_order

RELAY_BATCH_SIZE = 100
# Orders per clearing or settlement transaction: a chunk of 1,000 takes about 6 M gas to commit and
# 9 M to settle (benchmarks/gas.py), well under EIP-7825's 16,777,216.
CLEARING_CHUNK = 1_000
READINGS_BATCH = 2_000  # meter readings per transaction: about 7 M gas
# Onboarding batches: a registration writes three new storage words (about 75k gas), a first
# deposit one (about 30k with the admission), so both stay near 8 M gas a transaction.
REGISTER_BATCH = 100
DEPOSIT_BATCH = 250
# Accounts per array view (indexesOf, meterReadings). A Hardhat node caps an eth_call at EIP-7825's
# 16,777,216 gas as it does a transaction, and these views cost about 3.3k (indexesOf) and 6k
# (meterReadings) gas an account: 5,000 meters in one call ran out of gas there.
VIEW_BATCH = 1_000
HASHES_REMEMBERED = 100_000  # order hashes kept (hash_of): a few slots of a feeder's orders, ~25 MB
SLOT_STATE_ABI = "(bytes32,bytes32,bytes32,uint32,uint32,uint8,uint64,uint64,uint16,uint16,int256)"
PARTICIPANT_REGISTERED_TOPIC = keccak(b"ParticipantRegistered(address,uint64,uint32,uint32,uint32)")
SLOT_STATUS = ("open", "clearing", "cleared", "settling", "settled")


@dataclass(frozen=True, slots=True)
class Registration:
    """A participant as the registry registered it: account, bus and participant number."""

    account: str
    bus: int
    index: int


@dataclass(frozen=True, slots=True)
class SlotState:
    orders_hash: bytes
    fills_hash: bytes
    network_report_hash: bytes
    orders: int  # recorded, cancelled ones included
    cancelled_orders: int
    status: str
    clearing_price_per_kwh: int
    network_tariff_per_kwh: int
    chunks: int  # clearing chunks committed
    settled_chunks: int
    pot: int  # during settlement: what the slot holds (buyers' payments in, sellers' revenue out)

    @property
    def open_orders(self) -> int:
        return self.orders - self.cancelled_orders


class ClearingPlan:
    """A slot's clearing, every chunk checked against the chain and nothing sent yet."""

    def __init__(self, ledger: Ledger, first: PreparedTx, rest: Sequence[ContractFunction], action: str) -> None:
        self.ledger = ledger
        self.first = first
        self.rest = list(rest)
        self.action = action

    @property
    def chunks(self) -> int:
        return 1 + len(self.rest)

    def send(self) -> list[TxReceipt]:
        """Sends the chunks in order; each is one transaction."""
        tx, facilitator = self.ledger.tx, self.ledger.roles.facilitator
        receipts = [tx.send_prepared(self.first)]
        for k, call in enumerate(self.rest, start=1):
            receipts.append(tx.send(facilitator, call, action=f"{self.action}, chunk {k + 1} of {self.chunks}"))
        return receipts


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
        self._hashes: dict[Order, bytes] = {}
        self._indexes: dict[str, int] = {}  # participant numbers (registrations never change)
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
        """Registers a participant and admits it to the energy market (facilitator's key): the
        market copies the registration into the participant's account word once, so that its
        first order costs what every later one does."""
        call = self.registry.functions.register(account, meter_id, bus, capacity_w)
        receipt = self.tx.send(self.roles.facilitator, call, action=f"register {account}")
        self.admit([account])
        return receipt

    def register_many(
        self,
        accounts: Sequence[str],
        *,
        meter_ids: Sequence[int],
        buses: Sequence[int],
        capacities_w: Sequence[int],
        batch_size: int = REGISTER_BATCH,
    ) -> list[TxReceipt]:
        """Registers ``accounts[i]`` with ``meter_ids[i]``, ``buses[i]`` and ``capacities_w[i]``
        (facilitator's key), ``batch_size`` a transaction (``registerMany``), and admits each
        batch to the energy market as :meth:`register` does: a feeder's onboarding in a few
        transactions instead of two a participant. A refused batch changes nothing; the batches
        before it stay registered."""
        n = len(accounts)
        if not len(meter_ids) == len(buses) == len(capacities_w) == n:
            raise ValueError(
                f"register_many needs one meter id, bus and capacity per account: {n} accounts, "
                f"{len(meter_ids)} meter ids, {len(buses)} buses, {len(capacities_w)} capacities"
            )
        receipts = []
        for k in range(0, n, batch_size):
            batch = slice(k, k + batch_size)
            call = self.registry.functions.registerMany(
                list(accounts[batch]), list(meter_ids[batch]), list(buses[batch]), list(capacities_w[batch])
            )
            count = len(accounts[batch])
            receipts.append(self.tx.send(self.roles.facilitator, call, action=f"registration of {count} participants"))
            receipts.append(self.admit(accounts[batch]))
        return receipts

    def admit(self, accounts: Sequence[str]) -> TxReceipt:
        """Copies what the registry says about ``accounts`` into the energy market (any key may;
        an account's first order does it otherwise)."""
        call = self.market.functions.admit(list(accounts))
        return self.tx.send(self.roles.facilitator, call, action=f"admission of {len(accounts)} participants")

    # ─────────────── prosumer's own transactions ───────────────

    def deposit(self, account: LocalAccount, amount: int) -> TxReceipt:
        """Approves the market and deposits ``amount`` base units into the account's market balance."""
        market = self.market.address
        self.tx.send(account, self.token.functions.approve(market, amount), action="approve the market")
        return self.tx.send(account, self.market.functions.deposit(amount), action=f"deposit {amount}")

    def deposit_for(
        self, funder: LocalAccount, amounts: Mapping[str, int], *, batch_size: int = DEPOSIT_BATCH
    ) -> list[TxReceipt]:
        """Moves ``amounts[a]`` from ``funder``'s wallet into each registered participant ``a``'s
        market account: one approval of the total, then ``depositFor`` for ``batch_size``
        accounts a transaction."""
        accounts, values = list(amounts), list(amounts.values())
        if not accounts:
            return []
        market = self.market.address
        total = sum(values)
        receipts = [self.tx.send(funder, self.token.functions.approve(market, total), action="approve the market")]
        for k in range(0, len(accounts), batch_size):
            call = self.market.functions.depositFor(accounts[k : k + batch_size], values[k : k + batch_size])
            count = len(accounts[k : k + batch_size])
            receipts.append(self.tx.send(funder, call, action=f"deposit for {count} participants"))
        return receipts

    def withdraw(self, account: LocalAccount, amount: int) -> TxReceipt:
        return self.tx.send(account, self.market.functions.withdraw(amount), action=f"withdraw {amount}")

    def place_order(self, account: LocalAccount, order: Order) -> TxReceipt:
        call = self.market.functions.placeOrder(order.as_abi())
        return self.tx.send(account, call, action="place order")

    def cancel_order(self, account: LocalAccount, order: Order) -> TxReceipt:
        """Cancels the prosumer's own order: a recorded one with the proof of its place in its
        slot's order chain (its escrow returns at once), one never recorded by burning its nonce."""
        position, segment = self.cancellation_proof(order)
        call = self.market.functions.cancelOrder(order.as_abi(), position, segment)
        return self.tx.send(account, call, action="cancel order")

    def sign(self, account: LocalAccount, order: Order) -> SignedOrder:
        signed = sign_order(account, order, chain_id=self.chain.chain_id, market_address=self.market.address)
        self._remember_hash(order, signed.order_hash)
        return signed

    def sign_cancellation(self, account: LocalAccount, order_hash: bytes) -> tuple[bytes, bytes]:
        return sign_cancellation(account, order_hash, chain_id=self.chain.chain_id, market_address=self.market.address)

    # ─────────────── facilitator ───────────────

    def relay_orders(self, orders: Sequence[SignedOrder], *, batch_size: int = RELAY_BATCH_SIZE) -> list[TxReceipt]:
        """Relays signed orders in batches; each batch is recorded whole or not at all."""
        receipts = []
        for start in range(0, len(orders), batch_size):
            batch = [pack_order(o) for o in orders[start : start + batch_size]]
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
        position, segment = self.cancellation_proof(order)
        call = self.market.functions.cancelOrderBySig(order.as_abi(), r, vs, position, segment)
        return self.tx.send(self.roles.facilitator, call, action=f"cancellation of order of {order.prosumer}")

    def cancellation_proof(self, order: Order) -> tuple[int, list[bytes]]:
        """The (position, segment of order-chain links) that proves ``order`` is recorded in its
        slot; (0, []) for an order the chain has not recorded (its cancellation burns the nonce)."""
        proof = cancellation_proof(self.slot_orders(order.delivery_start), self.hash_of(order))
        return proof if proof is not None else (0, [])

    def commit_clearing(
        self,
        delivery_start: int,
        price_per_kwh: int,
        fills: Sequence[tuple[Order, int]],
        *,
        network_report_hash: bytes,
        network_model_version: bytes,
        chunk_size: int = CLEARING_CHUNK,
    ) -> list[TxReceipt]:
        """Commits a slot's uniform price, the fill of every open order of the slot (in arrival
        order), and the hash of the network validation report the result passed (with the
        model's version), in chunks of ``chunk_size`` orders."""
        return self.prepare_clearing(
            delivery_start,
            price_per_kwh,
            fills,
            network_report_hash=network_report_hash,
            network_model_version=network_model_version,
            chunk_size=chunk_size,
        ).send()

    def prepare_clearing(
        self,
        delivery_start: int,
        price_per_kwh: int,
        fills: Sequence[tuple[Order, int]],
        *,
        network_report_hash: bytes,
        network_model_version: bytes,
        chunk_size: int = CLEARING_CHUNK,
    ) -> ClearingPlan:
        """``commit_clearing``'s transactions, checked and not yet sent: every chunk goes through
        the contract's ``previewClearing`` (where the chunks before it leave off) and the first
        through a dry run, so a result the contract would refuse raises here and sends nothing."""
        chunks = split(self.clearing_items(delivery_start, fills), chunk_size)
        action = f"clearing of slot {delivery_start}"
        calls = [
            self.market.functions.commitClearing(
                delivery_start,
                price_per_kwh,
                network_report_hash,
                network_model_version,
                k,
                len(chunks),
                [item.as_fill() for item in chunk],
            )
            for k, chunk in enumerate(chunks)
        ]
        suffix = f", chunk 1 of {len(chunks)}" if len(chunks) > 1 else ""
        # The first chunk's dry run checks the slot (status, gate, report, role) and its orders;
        # the previews then check every chunk where the ones before it leave off.
        first = self.tx.prepare(self.roles.facilitator, calls[0], action=action + suffix)
        if len(chunks) > 1:
            self._preview_clearing(delivery_start, price_per_kwh, chunks, action)
        return ClearingPlan(self, first, calls[1:], action)

    def commit_chunk(
        self,
        delivery_start: int,
        price_per_kwh: int,
        items: Sequence[ClearingItem],
        *,
        chunk: int,
        chunks: int,
        network_report_hash: bytes,
        network_model_version: bytes,
    ) -> TxReceipt:
        """Commits one clearing chunk as given (no merging of cancelled orders, no checks first)."""
        call = self.market.functions.commitClearing(
            delivery_start,
            price_per_kwh,
            network_report_hash,
            network_model_version,
            chunk,
            chunks,
            [item.as_fill() for item in items],
        )
        action = f"clearing of slot {delivery_start}, chunk {chunk + 1} of {chunks}"
        return self.tx.send(self.roles.facilitator, call, action=action)

    def clearing_items(self, delivery_start: int, fills: Sequence[tuple[Order, int]]) -> list[ClearingItem]:
        """The sequence a clearing of ``fills`` commits: the slot's cancelled orders go back
        at their places (with a fill of 0) between the open orders' fills."""
        hashes = [self.hash_of(order) for order, _ in fills]
        cancelled = self.slot_state(delivery_start).cancelled_orders
        return clearing_items(self.slot_orders(delivery_start) if cancelled else [], fills, hashes)

    def _preview_clearing(
        self, delivery_start: int, price_per_kwh: int, chunks: Sequence[Sequence[ClearingItem]], action: str
    ) -> None:
        replay, bought, sold, cancelled, position = ZERO_HASH, 0, 0, 0, 0
        for k, chunk in enumerate(chunks):
            call = self.market.functions.previewClearing(
                delivery_start,
                price_per_kwh,
                position,
                replay,
                bought,
                sold,
                cancelled,
                k == len(chunks) - 1,
                [item.as_fill() for item in chunk],
            )
            replay, bought, sold, cancelled = self.tx.view(
                call,
                ("bytes32", "uint256", "uint256", "uint256"),
                action=f"{action}, chunk {k + 1} of {len(chunks)}",
            )
            position += len(chunk)

    # ─────────────── DSO ───────────────

    def set_network_tariff(self, first_delivery_start: int, per_kwh: Sequence[int]) -> TxReceipt:
        """Sets the network tariff (token base units per kWh) of consecutive slots from
        ``first_delivery_start`` on, before their gates close (DSO's key)."""
        call = self.market.functions.setNetworkTariff(first_delivery_start, list(per_kwh))
        count = len(per_kwh)
        return self.tx.send(
            self.roles.dso,
            call,
            action=f"network tariff of {count} slot{'' if count == 1 else 's'} from {first_delivery_start}",
        )

    def network_tariff(self, delivery_start: int) -> int:
        """The slot's network tariff, token base units per kWh (0 when none was set)."""
        call = self.market.functions.networkTariff(delivery_start)
        return int(self.tx.view(call, ("uint64",), action=f"network tariff of slot {delivery_start}")[0])

    # ─────────────── meter operator and settlement ───────────────

    def post_meter_readings(
        self, delivery_start: int, readings: Mapping[str, int], *, batch_size: int = READINGS_BATCH
    ) -> list[TxReceipt]:
        """Posts net metered energy per account (Wh, positive = taken from the grid), in batches
        of ``batch_size`` meters, stored by the registry's participant numbers."""
        action = f"meter readings of slot {delivery_start}"
        data = pack_readings(self.participant_indexes(list(readings), action=action), readings)
        step = 8 * batch_size
        return [
            self.tx.send(
                self.roles.meter,
                self.market.functions.postMeterReadings(delivery_start, data[k : k + step]),
                action=action,
            )
            for k in range(0, max(len(data), 1), step)
        ]

    def participant_indexes(self, accounts: Sequence[str], *, action: str) -> dict[str, int]:
        """The registry's participant numbers of ``accounts`` (``indexesOf``, ``VIEW_BATCH`` a call;
        NotRegistered for one it does not know). Remembered: a registration never changes, and asking for a
        feeder's thousand meters took about half a second a slot."""
        unknown = [a for a in accounts if a not in self._indexes]
        for k in range(0, len(unknown), VIEW_BATCH):
            batch = unknown[k : k + VIEW_BATCH]
            (indexes,) = self.tx.view(self.registry.functions.indexesOf(batch), ("uint32[]",), action=action)
            self._indexes.update(zip(batch, indexes, strict=True))
        return {a: self._indexes[a] for a in accounts}

    def settle(self, delivery_start: int, fills: Sequence[tuple[Order, int]]) -> list[TxReceipt]:
        """Settles a cleared and metered slot (any key may; the facilitator's is used): the
        committed fills again, in the clearing's chunks, from the first chunk not yet settled."""
        items = self.clearing_items(delivery_start, fills)
        counts = self.clearing_chunk_sizes(delivery_start)
        chunks = chunks_by_boundaries(items, counts) if counts else [items]
        state = self.slot_state(delivery_start)
        first = state.settled_chunks if state.status == "settling" else 0
        if len(chunks) - first <= 1:
            return [self.settle_chunk(delivery_start, k, chunks[k]) for k in range(first, len(chunks))]
        # Several transactions: the first one's dry run checks the slot, then the readings of every
        # chunk are checked (one missing for a later chunk would stop the settlement half-way).
        prepared = self.tx.prepare(
            self.roles.facilitator,
            self._settle_call(delivery_start, first, chunks[first]),
            action=f"settlement of slot {delivery_start}, chunk {first + 1}",
        )
        self._require_readings(delivery_start, [i for c in chunks[first:] for i in c])
        receipts = [self.tx.send_prepared(prepared)]
        return receipts + [self.settle_chunk(delivery_start, k, chunks[k]) for k in range(first + 1, len(chunks))]

    def _require_readings(self, delivery_start: int, items: Sequence[ClearingItem]) -> None:
        traded = sorted({i.order.prosumer for i in items if i.filled_wh and not i.cancelled})
        action = f"settlement of slot {delivery_start}"
        for account, reading in self.meter_readings(delivery_start, traded, action=action).items():
            if reading is None:
                args = {"deliveryStart": delivery_start, "account": account}
                raise refusal("MeterReadingMissing", args, action=action)

    def settle_chunk(self, delivery_start: int, chunk: int, items: Sequence[ClearingItem]) -> TxReceipt:
        """Settles one chunk as given."""
        call = self._settle_call(delivery_start, chunk, items)
        return self.tx.send(
            self.roles.facilitator, call, action=f"settlement of slot {delivery_start}, chunk {chunk + 1}"
        )

    def _settle_call(self, delivery_start: int, chunk: int, items: Sequence[ClearingItem]) -> ContractFunction:
        return self.market.functions.settle(delivery_start, chunk, [i.as_settlement_fill() for i in items])

    def clearing_chunk_sizes(self, delivery_start: int) -> list[int]:
        """How many orders each chunk of the slot's clearing covered, in chunk order (the chunks
        committed so far, if the clearing is unfinished)."""
        chunks = self.slot_state(delivery_start).chunks
        action = f"clearing chunks of slot {delivery_start}"
        clearing_chunk = self.market.functions.clearingChunk
        ends = [
            int(self.tx.view(clearing_chunk(delivery_start, k), ("bytes32", "uint32"), action=action)[1])
            for k in range(chunks)
        ]
        return [end - start for start, end in zip([0, *ends], ends, strict=False)]

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
        return self.tx.send_prepared(self.prepare_award(request_id, offer_ids, report_hash))

    def prepare_award(self, request_id: int, offer_ids: Sequence[bytes], report_hash: bytes) -> PreparedTx:
        """``award_flex``'s transaction, preflighted and not yet sent."""
        call = self.flex.functions.award(request_id, list(offer_ids), report_hash)
        return self.tx.prepare(self.roles.facilitator, call, action=f"award of request {request_id}")

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
        return [s.recorded for s in self.slot_orders(delivery_start, from_block=from_block) if not s.cancelled]

    def slot_orders(self, delivery_start: int, *, from_block: int | None = None) -> list[SlotOrder]:
        """Every order the chain recorded for the slot, cancelled ones included, in arrival
        order: the sequence of the slot's order chain.

        Read from the node's raw logs (decoded here: ``slots.raw_recorded_orders``) and then
        confirmed by the chain itself: the links of what was read must hash to the slot's order
        chain (``slotState``), count and all. ``from_block`` (where the slot's orders began, if
        known) narrows the scan; if the chain says orders were missed, the scan starts again from
        the deployment's block, and a sequence the chain still does not confirm raises."""
        state = self.slot_state(delivery_start)
        found = self._slot_orders(delivery_start, self.deployment.block if from_block is None else from_block)
        confirmed = _confirms(found, state)
        if not confirmed and from_block is not None and from_block > self.deployment.block:
            found = self._slot_orders(delivery_start, self.deployment.block)
            confirmed = _confirms(found, state)
        if not confirmed:
            raise LedgerError(
                f"the {len(found)} orders read from the logs of slot {delivery_start} do not hash to its "
                f"order chain on the ledger ({state.orders} orders): the node's logs are incomplete or inconsistent"
            )
        return found

    def _slot_orders(self, delivery_start: int, start: int) -> list[SlotOrder]:
        slot_topic = "0x" + delivery_start.to_bytes(32, "big").hex()
        recorded = self._logs(start, ["0x" + ORDER_RECORDED_TOPIC.hex(), slot_topic])
        # The cancellations of the slot's orders since ``start`` (a cancellation follows its order).
        cancelled = {bytes(log["topics"][1]) for log in self._logs(start, ["0x" + ORDER_CANCELLED_TOPIC.hex()])}
        ordered = sorted(raw_recorded_orders(recorded, self.hash_of), key=lambda r: r.arrival)
        return [SlotOrder(r, k, r.order_hash in cancelled) for k, r in enumerate(ordered)]

    def registrations(self, to_block: int | None = None) -> list[Registration]:
        """Every participant in registration order (``ParticipantRegistered``, up to
        ``to_block``): one read of the logs instead of a ``participant`` call per account, which
        took seconds on a feeder. A registration never changes."""
        topics = ["0x" + PARTICIPANT_REGISTERED_TOPIC.hex()]
        logs = self._logs(self.deployment.block, topics, contract=self.registry, to_block=to_block)
        registrations = []
        for log in sorted(logs, key=lambda log: (log["blockNumber"], log["logIndex"])):
            data = bytes(log["data"])  # bus, capacityW, index: a word each
            bus, _, index = (int.from_bytes(data[k : k + 32], "big") for k in (0, 32, 64))
            registrations.append(Registration(to_checksum_address(log["topics"][1][12:]), bus, index))
        return registrations

    def _logs(
        self, start: int, topics: list[str], *, contract: Contract | None = None, to_block: int | None = None
    ) -> list[Mapping[str, Any]]:
        """The logs of ``contract`` (the market's by default) with ``topics`` from block ``start``
        on: data, topics, block number and log index. From a JSON-RPC node they are read raw: web3
        formats every log field by field (its address re-checksummed, an AttributeDict copy), about
        0.5 ms a log, which was 2–3 s of reading a 5,000-order slot from Hardhat. The embedded
        chain's ``get_logs`` is already direct (``chain/embedded/web3_eth.py``)."""
        address = (contract or self.market).address
        params: dict[str, Any] = {"address": address, "fromBlock": start, "topics": topics}
        if to_block is not None:
            params["toBlock"] = to_block
        if self.chain.kind == "embedded":
            return list(self.chain.w3.eth.get_logs(params))  # type: ignore[arg-type]
        raw = params | {"fromBlock": hex(start)} | ({} if to_block is None else {"toBlock": hex(to_block)})
        logs = rpc_raw.request(self.chain.w3, "eth_getLogs", [raw])
        if not isinstance(logs, list):
            raise BadResponseFormat(f"the node answered eth_getLogs of {address} from block {start} with {logs!r}")
        return [
            {
                "data": bytes.fromhex(log["data"][2:]),
                "topics": [bytes.fromhex(t[2:]) for t in log["topics"]],
                "blockNumber": int(log["blockNumber"], 16),
                "logIndex": int(log["logIndex"], 16),
            }
            for log in logs
        ]

    def slot_state(self, delivery_start: int) -> SlotState:
        # Decoded with eth-abi (``Transactor.view``): web3's ``.call()`` took ~0.2 s here under load.
        call = self.market.functions.slotState(delivery_start)
        ((orders_hash, fills_hash, report_hash, orders, cancelled, status, price, tariff, chunks, settled, pot),) = (
            self.tx.view(call, (SLOT_STATE_ABI,), action=f"state of slot {delivery_start}")
        )
        return SlotState(
            bytes(orders_hash),
            bytes(fills_hash),
            bytes(report_hash),
            orders,
            cancelled,
            SLOT_STATUS[status],
            price,
            tariff,
            chunks,
            settled,
            pot,
        )

    def account_of(self, address: str) -> tuple[int, int]:
        """(available, locked) base units of ``address`` inside the market."""
        available, locked = self.market.functions.accountOf(address).call()
        return int(available), int(locked)

    def token_balance(self, address: str) -> int:
        return int(self.token.functions.balanceOf(address).call())

    def order_hash(self, order: Order) -> bytes:
        """The order's hash as the contract computes it (a call)."""
        return bytes(self.market.functions.orderHash(order.as_abi()).call())

    def hash_of(self, order: Order) -> bytes:
        """The order's EIP-712 hash, computed here (the same digest the contract computes).

        Remembered per order: a slot's orders are hashed when signed, read back, committed and
        settled, about 0.15–0.35 ms each time, which at a feeder's thousands of orders a slot
        was a second a slot."""
        known = self._hashes.get(order)
        if known is None:
            known = order_hash(order, chain_id=self.chain.chain_id, market_address=self.market.address)
            self._remember_hash(order, known)
        return known

    def _remember_hash(self, order: Order, hash_: bytes) -> None:
        if len(self._hashes) >= HASHES_REMEMBERED:
            self._hashes.clear()  # a day of 5,000 prosumers is about 400,000 orders: forget, recompute
        self._hashes[order] = hash_

    def next_nonce(self, prosumer: str) -> int:
        """The lowest nonce ``prosumer`` may still use: nonces only go up."""
        return int(self.market.functions.nextNonce(prosumer).call())

    def is_cancelled(self, order_hash_: bytes) -> bool:
        """Whether the recorded order ``order_hash_`` was cancelled."""
        return bool(self.market.functions.isCancelled(order_hash_).call())

    def meter_reading(self, delivery_start: int, account: str) -> int | None:
        """The posted reading of ``account`` for the slot (Wh), or None."""
        posted, net_wh = self.market.functions.meterReading(delivery_start, account).call()
        return int(net_wh) if posted else None

    def meter_readings(
        self, delivery_start: int, accounts: Sequence[str], *, action: str | None = None
    ) -> dict[str, int | None]:
        """The posted reading (Wh) of each of ``accounts`` for the slot, None where none is posted
        (``meterReadings``, ``VIEW_BATCH`` accounts a call; NotRegistered for an unknown one)."""
        action = action or f"meter readings of slot {delivery_start}"
        readings: dict[str, int | None] = {}
        for k in range(0, len(accounts), VIEW_BATCH):
            batch = list(accounts[k : k + VIEW_BATCH])
            call = self.market.functions.meterReadings(delivery_start, batch)
            posted, net_wh = self.tx.view(call, ("bool[]", "int64[]"), action=action)
            readings.update((a, int(wh) if ok else None) for a, ok, wh in zip(batch, posted, net_wh, strict=True))
        return readings


def fills_hash(fills: Iterable[tuple[bytes, int]]) -> bytes:
    """The hash chain a sealed clearing records (``SlotCleared.fillsHash``) over the fill of every
    open order, in arrival order: keccak(previous ‖ orderHash ‖ filledWh), from zero."""
    chain = b"\0" * 32
    for hash_, filled_wh in fills:
        chain = bytes(keccak(chain + hash_ + filled_wh.to_bytes(32, "big")))
    return chain


def _confirms(orders: Sequence[SlotOrder], state: SlotState) -> bool:
    """Whether ``orders`` are the slot's whole order chain: as many as it counts, and their links
    hash to its value (the contract keeps its first 28 bytes)."""
    if len(orders) != state.orders:
        return False
    return order_chain(o.link for o in orders)[:28] == state.orders_hash[:28]
