"""The revm embedded chain charges exactly the gas py-evm's chain charged (same fork, Prague),
and leaves the same receipts, logs, balances and storage, for the same transactions.

Two workloads run on both chains: the probe contract through every gas rule GridLedger's
transactions meet (fresh, dirty and cleared slots with refunds, events, a revert mined with
status 0, a contract creating a contract, value transfers, an EIP-2930 access list, a legacy
transaction, EIP-7623's calldata floor, a capped fee), and GridLedger's own deployment,
onboarding, a relayed order batch and a clearing. py-evm is a dev dependency.
"""

from __future__ import annotations

from typing import Any

import pytest
from eth_utils.address import to_checksum_address
from eth_utils.crypto import keccak
from tests.backend.chain.test_embedded_chain import World, make_world
from tests.conftest import REPORT

from gridledger.chain.compile import compile_contracts
from gridledger.chain.connection import Roles, derive_account, embedded_chain
from gridledger.chain.deploy import ensure_deployed
from gridledger.chain.embedded import CHAIN_ID
from gridledger.chain.ledger import Ledger
from gridledger.chain.reverts import RevertDecoder
from gridledger.chain.transactions import PreparedTx, Transactor
from gridledger.config import DEV_MNEMONIC, Settings
from gridledger.errors import LedgerError
from gridledger.market.orders import Order, Side
from gridledger.sim.participants import make_prosumers

pytest.importorskip("eth", reason="py-evm (a dev dependency) is needed to compare against")

EOA = to_checksum_address("0x" + "ab" * 20)
FEES = {"maxFeePerGas": 10**10, "maxPriorityFeePerGas": 10**9}
VALUES_1 = keccak((1).to_bytes(32, "big") + bytes(32))  # the storage slot of the probe's values[1]


def probe_workload(engine: str) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    w: World = make_world(engine)
    w3, probe, admin = w.chain.w3, w.probe, w.admin
    sender = derive_account(DEV_MNEMONIC, 5)
    for key, value in ((1, 5), (2, 6), (1, 7), (1, 7)):
        w.tx.send(admin, probe.functions.store(key, value), action="store")
    w.tx.send(admin, probe.functions.clear(2), action="clear")  # a refund
    w.tx.send(admin, probe.functions.storeMany(10, 30, 3), action="store many")
    w.tx.send(admin, probe.functions.storeMany(10, 30, 0), action="clear many")  # refund capped at a fifth
    w.tx.send(admin, probe.functions.make(), action="make")
    w.tx.send(admin, probe.functions.burn(2_000), action="burn")
    failing = probe.functions.store(3, 5_000)._encode_transaction_data()
    unchecked = {"from": admin.address, "to": probe.address, "data": failing, "value": 0, "gas": 90_000}
    with pytest.raises(LedgerError):
        w.tx.send_prepared(PreparedTx(admin, unchecked | {"chainId": CHAIN_ID} | FEES, "store", "store"))
    raw = [
        {"to": EOA, "value": 10**15, "gas": 21_000, "gasPrice": 3 * 10**9},  # legacy
        {"to": probe.address, "value": 10**16, "gas": 60_000} | FEES,  # receive()
        {"to": EOA, "data": b"\x7f" * 4_000, "gas": 200_000} | FEES,  # EIP-7623: 181,000, not 85,000
        {"to": EOA, "data": b"\x7f" * 4_000 + b"\x00" * 2_000, "gas": 300_000} | FEES,  # 201,000, not 93,000
        {  # EIP-2930: values[1] warm from the start
            "to": probe.address,
            "data": probe.functions.store(1, 9)._encode_transaction_data(),
            "gas": 100_000,
            "gasPrice": 2 * 10**9,
            "accessList": [{"address": probe.address, "storageKeys": ["0x" + VALUES_1.hex()]}],
        },
        {"to": EOA, "value": 1, "gas": 21_000, "maxFeePerGas": 10**9, "maxPriorityFeePerGas": 10**9},  # capped tip
    ]
    for nonce, fields in enumerate(raw):
        signed = sender.sign_transaction(
            fields | {"nonce": nonce, "chainId": CHAIN_ID, "value": fields.get("value", 0)}
        )
        w3.eth.send_raw_transaction(signed.raw_transaction)
    w.tx.send(admin, probe.functions.pay(EOA, 10**15), action="pay")
    state = {
        "balances": [
            w3.eth.get_balance(a)
            for a in (admin.address, sender.address, EOA, probe.address, to_checksum_address(bytes(20)))
        ],
        "values": [probe.functions.values(k).call() for k in (1, 2, 3, 10, 39)],
        "nonces": [w3.eth.get_transaction_count(a) for a in (admin.address, sender.address, probe.address)],
    }
    return receipts(w3), state


def receipts(w3: Any) -> list[dict[str, Any]]:
    """Every mined receipt's outcome, in order (hashes and blocks aside, which differ by clock)."""
    out = []
    for number in range(1, w3.eth.block_number + 1):
        block = w3.eth.get_block(number)
        for tx_hash in block["transactions"]:
            r = w3.eth.get_transaction_receipt(tx_hash)
            out.append(
                {
                    "status": r["status"],
                    "gas": r["gasUsed"],
                    "price": r["effectiveGasPrice"],
                    "base_fee": block["baseFeePerGas"],
                    "contract": r["contractAddress"],
                    "logs": [(e["address"], list(e["topics"]), e["data"], e["logIndex"]) for e in r["logs"]],
                }
            )
    return out


def test_the_probe_workload_costs_the_same_gas_and_leaves_the_same_state() -> None:
    revm, revm_state = probe_workload("revm")
    pyevm, pyevm_state = probe_workload("py-evm")
    assert len(revm) == len(pyevm) == 18
    for k, (a, b) in enumerate(zip(revm, pyevm, strict=True)):
        assert a == b, f"transaction {k}"
    assert revm_state == pyevm_state
    assert [r["status"] for r in revm].count(0) == 1
    assert revm[-4]["gas"] == 21_000 + 10 * (4 * 4_000 + 2_000)  # the floor, above the execution gas


def gridledger_workload(engine: str) -> tuple[list[dict[str, Any]], dict[str, int]]:
    settings = Settings(chain="embedded")
    chain = embedded_chain(settings.mnemonic, engine=engine)
    build = compile_contracts()
    roles = Roles.from_settings(settings)
    transactor = Transactor(chain, RevertDecoder(c.abi for c in build.contracts.values()))
    deployment, _ = ensure_deployed(chain, transactor, roles, build, settings, record=False)
    ledger = Ledger(chain, build, deployment, roles, transactor)
    alice, bob, carol, dave = make_prosumers(ledger, count=4, deposit=10**8)
    slot = (chain.now() // 900 + 4) * 900
    orders = [
        Order(alice.address, Side.BUY, slot, 1_000, 300_000, 0, slot),
        Order(bob.address, Side.SELL, slot, 800, 100_000, 0, slot),
        Order(carol.address, Side.BUY, slot, 500, 250_000, 0, slot),
        Order(dave.address, Side.SELL, slot, 700, 120_000, 0, slot),
    ]
    ledger.relay_orders([ledger.sign(p, o) for p, o in zip((alice, bob, carol, dave), orders, strict=True)])
    chain.move_time_to(slot - 300)
    fills = [(orders[0], 1_000), (orders[1], 800), (orders[2], 500), (orders[3], 700)]
    ledger.commit_clearing(slot, 200_000, fills, **REPORT)
    return receipts(chain.w3), dict(transactor.gas_used)


def test_gridledgers_own_transactions_cost_the_same_gas() -> None:
    revm, revm_gas = gridledger_workload("revm")
    pyevm, pyevm_gas = gridledger_workload("py-evm")
    assert [(r["status"], r["gas"], len(r["logs"])) for r in revm] == [
        (r["status"], r["gas"], len(r["logs"])) for r in pyevm
    ]
    assert revm_gas == pyevm_gas and revm_gas["relayOrders"] > 0 and revm_gas["commitClearing"] > 0
