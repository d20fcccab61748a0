"""A feeder on a Hardhat node. The node holds an eth_call to EIP-7825's per-transaction cap
(16,777,216 gas) as it does a transaction, so the ledger's array views are asked in batches; and
the ledger reads a slot's orders and its receipts raw from the node, which must agree with web3's
own decoding."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from eth_utils.address import to_checksum_address
from eth_utils.crypto import keccak
from tests.conftest import DEPOSIT, free_port, make_order

from gridledger.chain import devnet
from gridledger.chain.ledger import VIEW_BATCH, Ledger
from gridledger.chain.slots import recorded_order
from gridledger.chain.transactions import PRIORITY_FEE_WEI
from gridledger.config import Settings
from gridledger.errors import LedgerError, SettlementRejected
from gridledger.market.orders import Side
from gridledger.sim.participants import make_prosumers

pytestmark = pytest.mark.devnet

METERS = 5_000  # indexesOf needs about 17 M gas for 5,000 accounts, meterReadings about 6 k gas each


@pytest.fixture(scope="module")
def ledger() -> Iterator[Ledger]:
    port = free_port()
    with devnet.running("hardhat", port):
        yield Ledger.open(Settings(chain="hardhat", devnet_port=port), record=False)[0]


def test_a_feeders_readings_post_and_read_back_on_hardhat(ledger: Ledger, monkeypatch: pytest.MonkeyPatch) -> None:
    accounts = [to_checksum_address(keccak(b"meter %d" % i)[12:]) for i in range(METERS)]
    readings = {a: (i * 37) % 4_001 - 2_000 or 1 for i, a in enumerate(accounts)}  # ± 2 kWh, never 0
    buses = [1 + i % 97 for i in range(METERS)]
    ledger.register_many(accounts, meter_ids=list(range(1, METERS + 1)), buses=buses, capacities_w=[30_000] * METERS)
    # Read raw from the node's logs, in registration order.
    registered = ledger.registrations()
    assert [(r.account, r.bus) for r in registered[-METERS:]] == list(zip(accounts, buses, strict=True))
    assert [r.index for r in registered] == list(range(len(registered)))  # participant numbers
    # The node's cap on a call, which one view of every meter runs into: a clear error, not "reverted".
    with pytest.raises(LedgerError, match="per-transaction cap of 16,777,216 gas"):
        ledger.tx.view(ledger.registry.functions.indexesOf(accounts), ("uint32[]",), action="all indexes")

    slot = (ledger.chain.now() // 900 - 2) * 900  # delivered
    receipts = ledger.post_meter_readings(slot, readings)
    assert len(receipts) == 3  # 2,000 meters a transaction
    assert all(r["gasUsed"] < 16_777_216 for r in receipts)

    views: list[int] = []  # accounts asked in each eth_call the ledger makes
    view = ledger.tx.view

    def counted(call, types, *, action):  # type: ignore[no-untyped-def]
        views.append(len(call.args[1]))
        return view(call, types, action=action)

    monkeypatch.setattr(ledger.tx, "view", counted)
    back = ledger.meter_readings(slot, accounts)
    monkeypatch.undo()
    assert views == [VIEW_BATCH] * 5  # 5,000 meters in calls the node's cap allows
    assert back == readings
    assert ledger.meter_readings(slot + 900, accounts[-3:]) == dict.fromkeys(accounts[-3:])
    # A reading is final: posting the last meter again is refused and changes nothing.
    with pytest.raises(SettlementRejected, match="already posted; readings are final"):
        ledger.post_meter_readings(slot, {accounts[-1]: 5})
    assert ledger.meter_reading(slot, accounts[-1]) == readings[accounts[-1]]


def test_a_slots_orders_read_raw_from_hardhat_match_web3s_decoding(ledger: Ledger) -> None:
    alice, bob = make_prosumers(ledger, count=2, deposit=DEPOSIT, first_meter_id=10_000)
    slot = (ledger.chain.now() // 900 + 4) * 900
    orders = [
        make_order(alice, Side.BUY, slot, 2_000, 280_000),
        make_order(bob, Side.SELL, slot, 1_500, 90_000),
        make_order(alice, Side.BUY, slot, 700, 250_000, nonce=1),
    ]
    receipts = ledger.relay_orders([ledger.sign(alice, orders[0]), ledger.sign(bob, orders[1])])
    receipts += ledger.relay_orders([ledger.sign(alice, orders[2])])
    receipts.append(ledger.cancel_order(alice, orders[0]))

    # The receipts the ledger read raw (rpc_raw) are what web3's own formatting gives.
    for receipt in receipts:
        assert receipt == ledger.chain.w3.eth.get_transaction_receipt(receipt["transactionHash"])
    # The fee read raw from the latest block is web3's: twice its base fee plus the tip.
    base_fee = int(ledger.chain.w3.eth.get_block("latest")["baseFeePerGas"])
    assert ledger.tx._fees()["maxFeePerGas"] == 2 * base_fee + PRIORITY_FEE_WEI
    relayed = ledger.market.events.OrderRecorded().process_receipt(receipts[0])
    assert [e["args"]["deliveryStart"] for e in relayed] == [slot, slot]
    (cancelled,) = ledger.market.events.OrderCancelled().process_receipt(receipts[2])
    assert (cancelled["args"]["prosumer"], cancelled["args"]["nonce"]) == (alice.address, 0)

    read = ledger.slot_orders(slot)
    assert [(s.recorded.order, s.cancelled) for s in read] == list(zip(orders, (True, False, False), strict=True))
    decoded = [
        recorded_order(log, ledger.hash_of)
        for log in ledger.market.events.OrderRecorded().get_logs(from_block=ledger.deployment.block)
        if log["args"]["deliveryStart"] == slot
    ]
    assert [s.recorded for s in read] == decoded  # order, hash and arrival (block, log index)
    assert [r.order for r in ledger.recorded_orders(slot)] == orders[1:]
