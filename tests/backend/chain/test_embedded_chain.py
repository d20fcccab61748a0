"""The revm embedded chain through web3, as GridLedger uses it: accounts, raw transactions,
receipts and logs, reverts with their data, time, nonces, gas limits, snapshots and history.

The contract here is a small probe compiled for the test, so that these tests do not depend on
GridLedger's own contracts.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
import solcx
from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_tester.exceptions import TransactionFailed
from eth_utils.crypto import keccak
from web3.contract import Contract
from web3.eth import Eth
from web3.exceptions import TransactionNotFound

from gridledger.chain.compile import COMPILER_SETTINGS, _solc_binary
from gridledger.chain.connection import ROLE_INDEX, Chain, derive_account, embedded_chain
from gridledger.chain.embedded import CHAIN_ID, TransactionRejected
from gridledger.chain.reverts import RevertDecoder
from gridledger.chain.transactions import PreparedTx, Transactor
from gridledger.config import DEV_MNEMONIC
from gridledger.errors import LedgerError

PROBE_SOURCE = """
// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

contract Child {
    uint256 public made = 1;
}

contract Probe {
    error TooLarge(uint256 value, uint256 limit);
    event Stored(address indexed by, uint256 indexed key, uint256 value);

    mapping(uint256 key => uint256) public values;
    uint256 public lastTimestamp;

    function store(uint256 key, uint256 value) external {
        if (value > 1000) revert TooLarge(value, 1000);
        values[key] = value;
        lastTimestamp = block.timestamp;
        emit Stored(msg.sender, key, value);
    }

    function storeMany(uint256 first, uint256 count, uint256 value) external {
        for (uint256 i = 0; i < count; ++i) values[first + i] = value;
    }

    function clear(uint256 key) external {
        delete values[key];
    }

    function burn(uint256 rounds) external returns (bytes32 h) {
        for (uint256 i = 0; i < rounds; ++i) {
            assembly {
                mstore(0, h)
                mstore(32, i)
                h := keccak256(0, 64)
            }
        }
        values[type(uint256).max] = uint256(h);
    }

    function fail() external pure {
        revert("plain message");
    }

    function make() external returns (address) {
        return address(new Child());
    }

    function pay(address payable to, uint256 amount) external {
        to.transfer(amount);
    }

    function context() external view returns (uint256, uint256, uint256, uint256, address) {
        return (block.number, block.timestamp, block.chainid, block.gaslimit, msg.sender);
    }

    receive() external payable {}
}
"""

_COMPILED: dict[str, Any] = {}


def probe_artifact() -> dict[str, Any]:
    """The probe's ABI and bytecode, compiled once with the project's compiler and settings."""
    if not _COMPILED:
        output = solcx.compile_standard(
            {
                "language": "Solidity",
                "sources": {"Probe.sol": {"content": PROBE_SOURCE}},
                "settings": COMPILER_SETTINGS,
            },
            solc_binary=_solc_binary(),
        )
        item = output["contracts"]["Probe.sol"]["Probe"]
        _COMPILED.update(abi=item["abi"], bytecode=item["evm"]["bytecode"]["object"])
    return _COMPILED


@dataclass
class World:
    chain: Chain
    tx: Transactor
    admin: LocalAccount
    probe: Contract

    def sign(self, account: LocalAccount, call: Any, **overrides: Any) -> bytes:
        """A raw signed EIP-1559 transaction of ``call`` with a fresh nonce, no preflight."""
        w3 = self.chain.w3
        tx = {
            "from": account.address,
            "to": self.probe.address,
            "data": call._encode_transaction_data(),
            "value": 0,
            "gas": 200_000,
            "nonce": w3.eth.get_transaction_count(account.address),
            "chainId": CHAIN_ID,
            "maxFeePerGas": 10**10,
            "maxPriorityFeePerGas": 10**9,
        } | overrides
        return bytes(account.sign_transaction(tx).raw_transaction)


def make_world(engine: str = "revm") -> World:
    chain = embedded_chain(DEV_MNEMONIC, engine=engine)
    artifact = probe_artifact()
    tx = Transactor(chain, RevertDecoder([artifact["abi"]]))
    admin = derive_account(DEV_MNEMONIC, ROLE_INDEX["admin"])
    factory = chain.w3.eth.contract(abi=artifact["abi"], bytecode=artifact["bytecode"])
    receipt = tx.send(admin, factory.constructor(), action="deploy the probe")
    probe = chain.w3.eth.contract(address=receipt["contractAddress"], abi=artifact["abi"])
    return World(chain, tx, admin, probe)


@pytest.fixture
def world() -> World:
    return make_world()


def test_accounts_come_from_the_mnemonic_funded_as_py_evm_funded_them() -> None:
    chain = embedded_chain(DEV_MNEMONIC)
    w3 = chain.w3
    expected = [derive_account(DEV_MNEMONIC, i).address for i in range(10)]
    assert w3.eth.accounts == expected
    assert [w3.eth.get_balance(a) for a in expected] == [10**24] * 10
    assert w3.eth.get_balance(derive_account(DEV_MNEMONIC, 10).address) == 0
    genesis, pending = w3.eth.get_block(0), w3.eth.get_block("pending")
    assert (w3.eth.chain_id, genesis["gasLimit"], genesis["baseFeePerGas"]) == (CHAIN_ID, 60_000_000, 10**9)
    assert (pending["number"], pending["baseFeePerGas"]) == (1, 875_000_000)  # EIP-1559 after an empty block


def test_a_transaction_is_mined_in_its_own_block_with_receipt_and_logs(world: World) -> None:
    w3, probe = world.chain.w3, world.probe
    before = w3.eth.block_number
    first = world.tx.send(world.admin, probe.functions.store(7, 42), action="store")
    second = world.tx.send(world.admin, probe.functions.store(8, 43), action="store")
    assert (first["blockNumber"], second["blockNumber"]) == (before + 1, before + 2)
    assert first["status"] == 1 and 21_000 < first["gasUsed"] < 100_000
    block = w3.eth.get_block(first["blockNumber"])
    assert block["transactions"] == [first["transactionHash"]]
    assert w3.eth.get_block(block["hash"])["number"] == first["blockNumber"]
    assert block["gasUsed"] == first["gasUsed"] == first["cumulativeGasUsed"]
    assert w3.eth.get_block(second["blockNumber"])["timestamp"] > block["timestamp"]
    (log,) = first["logs"]
    assert log["address"] == probe.address
    assert log["topics"] == [
        keccak(text="Stored(address,uint256,uint256)"),
        bytes(12) + bytes.fromhex(world.admin.address[2:]),
        (7).to_bytes(32, "big"),
    ]
    assert log["data"] == (42).to_bytes(32, "big")
    assert (log["logIndex"], log["blockNumber"], log["transactionHash"]) == (0, before + 1, first["transactionHash"])
    assert log["blockHash"] == block["hash"]
    assert w3.eth.get_transaction(first["transactionHash"])["blockNumber"] == before + 1
    assert probe.functions.values(7).call() == 42


def test_get_logs_filters_by_block_range_address_and_topic(world: World) -> None:
    w3 = world.chain.w3
    other = make_probe(world)
    start = w3.eth.block_number + 1
    for key, contract in enumerate([world.probe, other, world.probe, other]):
        world.tx.send(world.admin, contract.functions.store(key, 100 + key), action="store")
    end = w3.eth.block_number
    both = [world.probe.address, other.address]

    every = w3.eth.get_logs({"fromBlock": start, "toBlock": end, "address": both})
    assert [(e["address"], int.from_bytes(e["data"], "big")) for e in every] == [
        (world.probe.address, 100),
        (other.address, 101),
        (world.probe.address, 102),
        (other.address, 103),
    ]
    assert [e["blockNumber"] for e in every] == list(range(start, end + 1))
    middle = w3.eth.get_logs({"fromBlock": start + 1, "toBlock": start + 2, "address": both})
    assert [int.from_bytes(e["data"], "big") for e in middle] == [101, 102]
    only_other = w3.eth.get_logs({"fromBlock": start, "toBlock": end, "address": other.address})
    assert [int.from_bytes(e["data"], "big") for e in only_other] == [101, 103]
    key_two = w3.eth.get_logs(
        {"fromBlock": start, "toBlock": "latest", "topics": [None, None, "0x" + "00" * 31 + "02"]}
    )
    assert [int.from_bytes(e["data"], "big") for e in key_two] == [102]
    decoded = world.probe.events.Stored.get_logs(from_block=start)
    assert [(e["args"]["key"], e["args"]["value"]) for e in decoded] == [(0, 100), (2, 102)]


def make_probe(world: World) -> Contract:
    artifact = probe_artifact()
    factory = world.chain.w3.eth.contract(abi=artifact["abi"], bytecode=artifact["bytecode"])
    receipt = world.tx.send(world.admin, factory.constructor(), action="deploy a probe")
    return world.chain.w3.eth.contract(address=receipt["contractAddress"], abi=artifact["abi"])


def test_a_custom_error_reaches_the_caller_with_its_data(world: World) -> None:
    expected = keccak(text="TooLarge(uint256,uint256)")[:4] + (5_000).to_bytes(32, "big") + (1_000).to_bytes(32, "big")
    call = world.probe.functions.store(1, 5_000)
    # eth_call and eth_estimateGas raise what eth-tester raised for py-evm, with the revert data
    with pytest.raises(TransactionFailed, match="execution reverted: b'") as info:
        world.chain.w3.eth.call({"to": world.probe.address, "data": call._encode_transaction_data()})
    assert str(expected) in str(info.value)
    with pytest.raises(TransactionFailed) as info:
        world.chain.w3.eth.estimate_gas({"to": world.probe.address, "data": call._encode_transaction_data()})
    assert str(expected) in str(info.value)
    # ... and the transactor turns it into a domain error with the decoded arguments
    with pytest.raises(LedgerError, match="store rejected") as refused:
        world.tx.send(world.admin, call, action="store")
    assert (refused.value.error, refused.value.args_) == ("TooLarge", {"value": 5_000, "limit": 1_000})
    with pytest.raises(TransactionFailed, match="execution reverted: plain message"):
        world.probe.functions.fail().call()


def test_a_failed_transaction_is_mined_with_status_0_and_its_gas_charged(world: World) -> None:
    w3, admin = world.chain.w3, world.admin
    balance, nonce, block = (
        w3.eth.get_balance(admin.address),
        w3.eth.get_transaction_count(admin.address),
        w3.eth.block_number,
    )
    call = world.probe.functions.store(1, 5_000)
    unchecked = {
        "from": admin.address,
        "to": world.probe.address,
        "data": call._encode_transaction_data(),
        "value": 0,
        "gas": 150_000,
        "chainId": CHAIN_ID,
        "maxFeePerGas": 10**10,
        "maxPriorityFeePerGas": 10**9,
    }
    # Sent without its preflight, the transaction reverts on-chain; the transactor replays it
    # on the block before to name the custom error.
    with pytest.raises(LedgerError, match="store rejected") as info:
        world.tx.send_prepared(PreparedTx(admin, unchecked, "store", "store"))
    assert info.value.error == "TooLarge"
    mined = w3.eth.get_block(block + 1)
    receipt = w3.eth.get_transaction_receipt(mined["transactions"][0])
    assert (receipt["status"], receipt["blockNumber"], receipt["logs"]) == (0, block + 1, [])
    assert 21_000 < receipt["gasUsed"] < 150_000 and world.tx.gas_used["store"] == receipt["gasUsed"]
    assert w3.eth.get_balance(admin.address) == balance - receipt["gasUsed"] * receipt["effectiveGasPrice"]
    assert w3.eth.get_transaction_count(admin.address) == nonce + 1
    assert world.probe.functions.values(1).call() == 0


def test_a_transaction_out_of_its_own_gas_limit_says_so_not_the_cap(world: World) -> None:
    # A remote node's transaction is sent with the node's estimate plus a margin; if the state
    # changes before it runs and it needs more, the advice is to send it again, not to split it.
    admin = world.admin
    call = world.probe.functions.burn(2_000)
    prepared = world.tx.prepare(admin, call, action="burn")
    short = PreparedTx(admin, {**prepared.tx, "gas": 60_000}, "burn", "burn")
    with pytest.raises(LedgerError, match="burn ran out of gas at its limit of 60,000") as info:
        world.tx.send_prepared(short)
    assert "per-transaction cap" not in str(info.value)
    assert world.probe.functions.values(2**256 - 1).call() == 0  # nothing stored
    # A plain transfer (21,000 gas, no estimate) to a contract that runs code on receipt.
    balance = world.chain.w3.eth.get_balance(world.probe.address)
    with pytest.raises(LedgerError, match="ran out of its 21,000 gas: the recipient runs code"):
        world.tx.send_value(admin, world.probe.address, 10**9)
    assert world.chain.w3.eth.get_balance(world.probe.address) == balance


def test_a_replayed_transaction_is_refused_with_a_clear_error_and_changes_nothing(world: World) -> None:
    w3 = world.chain.w3
    raw = world.sign(world.admin, world.probe.functions.store(3, 9))
    w3.eth.send_raw_transaction(raw)
    block, balance = w3.eth.block_number, w3.eth.get_balance(world.admin.address)
    with pytest.raises(
        TransactionRejected, match=r"nonce \d+ of 0x[0-9a-f]{40} is already used: its next nonce is \d+"
    ):
        w3.eth.send_raw_transaction(raw)
    ahead = world.sign(
        world.admin, world.probe.functions.store(3, 10), nonce=w3.eth.get_transaction_count(world.admin.address) + 1
    )
    with pytest.raises(TransactionRejected, match="is ahead of its next nonce"):
        w3.eth.send_raw_transaction(ahead)
    assert (w3.eth.block_number, w3.eth.get_balance(world.admin.address)) == (block, balance)
    assert world.probe.functions.values(3).call() == 9


def test_gas_over_the_block_limit_is_refused_but_eip_7825_is_left_to_the_transactor(world: World) -> None:
    w3 = world.chain.w3
    too_much = world.sign(world.admin, world.probe.functions.store(1, 1), gas=60_000_001)
    with pytest.raises(TransactionRejected, match="exceeds the 60,000,000 gas left in the block"):
        w3.eth.send_raw_transaction(too_much)
    # Prague, like py-evm's chain, has no per-transaction cap: a 20,000,000 gas transaction is mined.
    big = world.sign(world.admin, world.probe.functions.burn(160_000), gas=20_000_000)
    receipt = w3.eth.wait_for_transaction_receipt(w3.eth.send_raw_transaction(big))
    assert receipt["status"] == 1 and receipt["gasUsed"] > 16_777_216
    # The transactor keeps EIP-7825's cap: a call needing more is refused before it is sent.
    with pytest.raises(LedgerError, match="per-transaction cap of 16,777,216 gas"):
        world.tx.send(world.admin, world.probe.functions.burn(160_000), action="burn")


def test_too_little_gas_fee_or_balance_is_refused(world: World) -> None:
    w3 = world.chain.w3
    pauper: LocalAccount = Account.create()
    with pytest.raises(TransactionRejected, match="below the 21,"):
        w3.eth.send_raw_transaction(world.sign(world.admin, world.probe.functions.store(1, 1), gas=21_000))
    with pytest.raises(TransactionRejected, match="below the block's base fee"):
        w3.eth.send_raw_transaction(
            world.sign(world.admin, world.probe.functions.store(1, 1), maxFeePerGas=1, maxPriorityFeePerGas=1)
        )
    with pytest.raises(TransactionRejected, match="has 0 wei but the transaction may cost"):
        w3.eth.send_raw_transaction(world.sign(pauper, world.probe.functions.store(1, 1), nonce=0))
    with pytest.raises(TransactionRejected, match="signed for chain id 1;"):
        w3.eth.send_raw_transaction(world.sign(world.admin, world.probe.functions.store(1, 1), chainId=1))


def test_legacy_transactions_and_value_transfers(world: World) -> None:
    w3, admin = world.chain.w3, world.admin
    sender = derive_account(DEV_MNEMONIC, 5)  # funded at genesis, unknown to the transactor
    someone = Account.create().address
    legacy = {
        "to": someone,
        "value": 12345,
        "gas": 21_000,
        "gasPrice": 2 * 10**9,
        "nonce": 0,
        "chainId": CHAIN_ID,
    }
    before = w3.eth.get_balance(sender.address)
    receipt = w3.eth.wait_for_transaction_receipt(
        w3.eth.send_raw_transaction(sender.sign_transaction(legacy).raw_transaction)
    )
    assert (receipt["type"], receipt["gasUsed"], receipt["effectiveGasPrice"]) == (0, 21_000, 2 * 10**9)
    assert w3.eth.get_balance(someone) == 12345
    assert w3.eth.get_balance(sender.address) == before - 12345 - 21_000 * 2 * 10**9
    to_probe = {"to": world.probe.address, "value": 10**18, "gas": 60_000, "nonce": 1, "chainId": CHAIN_ID}
    fees = {"maxFeePerGas": 10**10, "maxPriorityFeePerGas": 10**9}
    w3.eth.send_raw_transaction(sender.sign_transaction(to_probe | fees).raw_transaction)  # runs receive()
    world.tx.send(admin, world.probe.functions.pay(someone, 10**17), action="pay")
    assert (w3.eth.get_balance(world.probe.address), w3.eth.get_balance(someone)) == (9 * 10**17, 10**17 + 12345)
    # eth_sendTransaction: the chain signs for its own accounts, and only for those
    unlocked = derive_account(DEV_MNEMONIC, 7).address
    w3.eth.wait_for_transaction_receipt(w3.eth.send_transaction({"from": unlocked, "to": someone, "value": 5}))
    assert w3.eth.get_balance(someone) == 10**17 + 12345 + 5
    with pytest.raises(TransactionRejected, match="is not one of the chain's accounts"):
        w3.eth.send_transaction({"from": Account.create().address, "to": someone, "value": 5, "gas": 21_000})


def test_the_contract_sees_the_time_moved_to_and_each_block_is_later(world: World) -> None:
    chain = world.chain
    target = chain.now() + 7_200
    chain.move_time_to(target)
    assert chain.now() == target
    number, timestamp, chain_id, gas_limit, _ = world.probe.functions.context().call()
    assert (number, timestamp, chain_id, gas_limit) == (chain.w3.eth.block_number, target, CHAIN_ID, 60_000_000)
    receipt = world.tx.send(world.admin, world.probe.functions.store(1, 1), action="store")
    stamped = chain.w3.eth.get_block(receipt["blockNumber"])["timestamp"]
    assert world.probe.functions.lastTimestamp().call() == stamped >= target + 1
    chain.move_time_to(target - 100)  # the past: nothing happens
    assert chain.now() == stamped


def test_a_contract_created_by_a_contract_has_code_and_storage(world: World) -> None:
    w3 = world.chain.w3
    child = world.probe.functions.make().call()
    world.tx.send(world.admin, world.probe.functions.make(), action="make")
    assert len(w3.eth.get_code(child)) > 0
    made = w3.eth.contract(
        address=child,
        abi=[
            {
                "type": "function",
                "name": "made",
                "inputs": [],
                "outputs": [{"type": "uint256", "name": ""}],
                "stateMutability": "view",
            }
        ],
    )
    assert made.functions.made().call() == 1
    assert w3.eth.get_transaction_count(world.probe.address) == 2  # a contract's nonce starts at 1 (EIP-161)


def test_identical_transactions_cost_identical_gas(world: World) -> None:
    """Each transaction starts cold (EIP-2929) with its slots' original values (EIP-2200):
    pyrevm alone would keep the accounts and slots of earlier transactions warm."""
    world.tx.send(world.admin, world.probe.functions.store(9, 5), action="store")
    gas = [world.tx.send(world.admin, world.probe.functions.store(k, 5), action="store")["gasUsed"] for k in (10, 11)]
    assert gas[0] == gas[1]
    # rewriting a slot set by an earlier transaction is a dirty-free 2,900 + 2,100 cold write, not 100
    again = world.tx.send(world.admin, world.probe.functions.store(11, 6), action="store")["gasUsed"]
    assert gas[1] - again == 20_000 - 2_900


def test_an_access_list_warms_only_its_own_transaction(world: World) -> None:
    w3 = world.chain.w3
    sender = derive_account(DEV_MNEMONIC, 6)
    world.tx.send(world.admin, world.probe.functions.store(1, 5), action="store")
    slot = "0x" + keccak((1).to_bytes(32, "big") + bytes(32)).hex()  # values[1]
    listed = {
        "to": world.probe.address,
        "data": world.probe.functions.store(1, 6)._encode_transaction_data(),
        "gas": 100_000,
        "gasPrice": 2 * 10**9,
        "nonce": 0,
        "chainId": CHAIN_ID,
        "accessList": [{"address": world.probe.address, "storageKeys": [slot]}],
    }
    receipt = w3.eth.wait_for_transaction_receipt(
        w3.eth.send_raw_transaction(sender.sign_transaction(listed).raw_transaction)
    )
    assert (receipt["type"], receipt["status"], world.probe.functions.values(1).call()) == (1, 1, 6)
    gas = [world.tx.send(world.admin, world.probe.functions.store(1, v), action="store")["gasUsed"] for v in (7, 8)]
    assert gas[0] == gas[1]  # the listed slot is cold again after its transaction


def test_snapshots_revert_blocks_state_and_nonces(world: World) -> None:
    w3, tester = world.chain.w3, world.chain.tester
    world.tx.send(world.admin, world.probe.functions.store(1, 11), action="store")
    snapshot = tester.take_snapshot()
    block, balance = w3.eth.block_number, w3.eth.get_balance(world.admin.address)
    receipt = world.tx.send(world.admin, world.probe.functions.store(1, 22), action="store")
    world.tx.send(world.admin, world.probe.functions.store(2, 33), action="store")
    tester.revert_to_snapshot(snapshot)
    assert (w3.eth.block_number, w3.eth.get_balance(world.admin.address)) == (block, balance)
    assert (world.probe.functions.values(1).call(), world.probe.functions.values(2).call()) == (11, 0)
    with pytest.raises(Exception, match="not found"):
        w3.eth.get_transaction_receipt(receipt["transactionHash"])
    fresh = Transactor(world.chain, world.tx.decoder)
    again = fresh.send(world.admin, world.probe.functions.store(2, 44), action="store")
    assert again["blockNumber"] == block + 1
    assert world.probe.functions.values(2).call() == 44


def test_queries_at_an_earlier_block_see_that_block_state(world: World) -> None:
    w3, probe = world.chain.w3, world.probe
    first = world.tx.send(world.admin, probe.functions.store(1, 5), action="store")["blockNumber"]
    someone = Account.create().address
    world.tx.send_value(world.admin, someone, 777)
    world.tx.send(world.admin, probe.functions.store(1, 7), action="store")
    assert probe.functions.values(1).call(block_identifier=first) == 5
    assert probe.functions.values(1).call(block_identifier=first - 1) == 0
    assert probe.functions.values(1).call() == 7
    assert (w3.eth.get_balance(someone, first), w3.eth.get_balance(someone)) == (0, 777)
    slot = int.from_bytes(keccak((1).to_bytes(32, "big") + bytes(32)), "big")  # values[1]
    assert int.from_bytes(w3.eth.get_storage_at(probe.address, slot), "big") == 7
    # (web3's eth-tester provider passes a storage query's block on as hex, which eth-tester refuses)
    assert int(world.chain.tester.get_storage_at(probe.address, hex(slot), first), 16) == 5
    # ... and the chain goes on from the latest state afterwards
    world.tx.send(world.admin, probe.functions.store(1, 8), action="store")
    assert probe.functions.values(1).call() == 8


def test_a_gas_estimate_lets_the_transaction_through(world: World) -> None:
    w3 = world.chain.w3
    call = world.probe.functions.storeMany(100, 20, 1)
    estimate = w3.eth.estimate_gas(
        {"from": world.admin.address, "to": world.probe.address, "data": call._encode_transaction_data()}
    )
    receipt = w3.eth.wait_for_transaction_receipt(
        w3.eth.send_raw_transaction(world.sign(world.admin, call, gas=estimate))
    )
    assert receipt["status"] == 1
    assert receipt["gasUsed"] <= estimate < receipt["gasUsed"] + 21_000 + receipt["gasUsed"] // 5


def test_receipts_and_logs_built_directly_equal_web3s_own_formatting(world: World) -> None:
    """EmbeddedEth skips web3's per-field formatting: what it returns must be what web3 returns."""
    w3 = world.chain.w3
    standard_receipt = Eth.__dict__["_transaction_receipt"].__get__(w3.eth, Eth)
    standard_logs = Eth.__dict__["_get_logs"].__get__(w3.eth, Eth)
    artifact = probe_artifact()
    factory = w3.eth.contract(abi=artifact["abi"], bytecode=artifact["bytecode"])
    hashes = [
        world.tx.send(world.admin, factory.constructor(), action="deploy")["transactionHash"],
        world.tx.send(world.admin, world.probe.functions.store(4, 40), action="store")["transactionHash"],
        world.tx.send(world.admin, world.probe.functions.make(), action="make")["transactionHash"],
    ]
    unchecked = {
        "from": world.admin.address,
        "to": world.probe.address,
        "data": world.probe.functions.store(4, 4_000)._encode_transaction_data(),
        "value": 0,
        "gas": 100_000,
        "chainId": CHAIN_ID,
        "maxFeePerGas": 10**10,
        "maxPriorityFeePerGas": 10**9,
    }
    with pytest.raises(LedgerError):
        world.tx.send_prepared(PreparedTx(world.admin, unchecked, "store", "store"))
    hashes.append(w3.eth.get_block("latest")["transactions"][0])
    for tx_hash in hashes:
        assert w3.eth.get_transaction_receipt(tx_hash) == standard_receipt(tx_hash)
        assert w3.eth.wait_for_transaction_receipt(tx_hash) == standard_receipt(tx_hash)
    assert [standard_receipt(h)["status"] for h in hashes] == [1, 1, 1, 0]
    queries = [
        {"fromBlock": 0, "toBlock": "latest"},
        {"fromBlock": 2, "toBlock": hex(w3.eth.block_number), "address": [world.probe.address]},
        {"fromBlock": "earliest", "topics": [keccak(text="Stored(address,uint256,uint256)")]},
        {"fromBlock": 0, "address": world.probe.address, "topics": [None, None, ["0x" + "00" * 31 + "04"]]},
    ]
    for query in queries:
        assert w3.eth.get_logs(query) == standard_logs(query)
    assert len(w3.eth.get_logs(queries[0])) == 1
    with pytest.raises(TransactionNotFound):
        w3.eth.get_transaction_receipt("0x" + "ab" * 32)
