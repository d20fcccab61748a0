"""An eth-tester chain backend on revm: the embedded chain's blocks, transactions and queries.

eth-tester (and web3's ``EthereumTesterProvider`` over it) keeps providing the JSON-RPC surface,
filters and validation; this backend replaces its py-evm one with the same semantics where
GridLedger can see them: accounts from a mnemonic, each pre-funded with 1,000,000 ether; signed
raw transactions with nonce, fee and gas checks; Prague gas (revm's Cancun plus EIP-7623's
calldata floor); a block per transaction when eth-tester auto-mines, stamped with the wall
clock or the time travelled to; EIP-1559 base fees; receipts and logs; calls and gas
estimates at any block, with revert data; snapshots.

Transactions are mined as they arrive (eth-tester's auto-mining, which GridLedger always uses);
eth-tester's manual mining replays pending transactions through ``send_transaction``, which only
the chain's own accounts can do here.

Known differences from py-evm, none of which GridLedger's contracts meet: BLOCKHASH returns
revm's stand-in hash (keccak of the block number's decimal text), Prague's BLS precompiles
(0x0b-0x11) and EIP-7702 are absent, and GASPRICE reads 0 inside a constructor.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

import rlp
from eth_abi.abi import decode as abi_decode
from eth_abi.exceptions import DecodingError
from eth_account import Account
from eth_account.hdaccount import key_from_seed, seed_from_mnemonic
from eth_tester.backends.base import BaseChainBackend
from eth_tester.exceptions import BlockNotFound, SnapshotNotFound, TransactionFailed, TransactionNotFound
from eth_utils.address import to_checksum_address
from eth_utils.crypto import keccak

from gridledger.chain.embedded import signed_tx
from gridledger.chain.embedded.blocks import Block, Receipt, serialise_receipt, serialise_transaction
from gridledger.chain.embedded.errors import TransactionRejected
from gridledger.chain.embedded.signed_tx import SignedTx
from gridledger.chain.embedded.state import NO_ACCOUNT, AccountRecord, BlockContext, Message, Outcome, WorldState

# What web3's EthereumTesterProvider answers for eth_chainId: the chain id py-evm's chain had,
# so EIP-712 domains and signed transactions stay valid.
CHAIN_ID = 131_277_322_940_537
PREFUND_WEI = 1_000_000 * 10**18
INITIAL_BASE_FEE = 1_000_000_000  # London's genesis base fee, as py-evm sets it
DEFAULT_CALL_FEE = 1_000_000_000  # a call that names no fee offers 1 gwei, as eth-tester's py-evm backend
ZERO_ADDRESS = bytes(20)
ERROR_STRING_SELECTOR = bytes.fromhex("08c379a0")  # Error(string)
ESTIMATE_TOLERANCE = 21_000  # py-evm's default: the estimate is within one intrinsic gas of the least
PENDING = -1

T = TypeVar("T")


def _locked(method: Callable[..., T]) -> Callable[..., T]:
    def wrapper(self: RevmBackend, *args: Any, **kwargs: Any) -> T:
        with self._lock:
            return method(self, *args, **kwargs)

    wrapper.__name__ = method.__name__
    wrapper.__doc__ = method.__doc__
    return wrapper


class RevmBackend(BaseChainBackend):  # type: ignore[misc]  # eth-tester ships no type hints
    """The embedded chain: revm state, blocks kept in memory."""

    def __init__(
        self,
        mnemonic: str,
        *,
        num_accounts: int = 10,
        hd_path: str = "m/44'/60'/0'/0",
        gas_limit: int = 60_000_000,
    ) -> None:
        seed = seed_from_mnemonic(mnemonic, "")
        self._keys: dict[bytes, bytes] = {}  # address → private key
        for i in range(num_accounts):
            self.add_account(key_from_seed(seed, f"{hd_path}/{i}"))
        self.gas_limit = gas_limit
        self._lock = threading.RLock()
        self.reset_to_genesis()

    # ─────────────── genesis, snapshots, time ───────────────

    @_locked
    def reset_to_genesis(self) -> None:
        self.state = WorldState(chain_id=CHAIN_ID, gas_limit=self.gas_limit)
        genesis = Block(0, bytes(32), int(time.time()), INITIAL_BASE_FEE, self.gas_limit, bytes(32), ZERO_ADDRESS)
        funded = {address: AccountRecord(balance=PREFUND_WEI) for address in self._keys}
        genesis.changes = self.state.commit(funded, {}, {})
        genesis.seal()
        self.blocks: list[Block] = [genesis]
        self._by_hash: dict[bytes, int] = {genesis.hash or b"": 0}
        self._txs: dict[bytes, tuple[int, int]] = {}  # hash → (block number, index)
        self._cursor = 0  # the block whose state revm's database holds (PENDING: the pending block's)
        self.pending = self._child_of(genesis)

    def take_snapshot(self) -> tuple[int, bytes]:
        latest = self.blocks[-1]
        return latest.number, latest.hash or b""

    @_locked
    def revert_to_snapshot(self, snapshot: tuple[int, bytes]) -> None:
        number, block_hash = snapshot
        if number >= len(self.blocks) or self.blocks[number].hash != block_hash:
            raise SnapshotNotFound(f"block {number} of the snapshot is no longer on the chain")
        self._move_to(number)
        for block in self.blocks[number + 1 :]:
            self._by_hash.pop(block.hash or b"", None)
            for receipt in block.receipts:
                self._txs.pop(receipt.tx.hash, None)
        for receipt in self.pending.receipts:
            self._txs.pop(receipt.tx.hash, None)
        del self.blocks[number + 1 :]
        self.pending = self._child_of(self.blocks[-1])

    @_locked
    def time_travel(self, to_timestamp: int) -> int:
        # As py-evm's backend: the pending block is mined one second before the target, so the
        # next block (stamped at least one second later) is at the target.
        self.pending.timestamp = to_timestamp - 1
        self.mine_blocks()
        return to_timestamp

    @_locked
    def mine_blocks(self, num_blocks: int = 1, coinbase: bytes = ZERO_ADDRESS) -> tuple[bytes, ...]:
        hashes = []
        for _ in range(num_blocks):
            block = self.pending
            block.coinbase = coinbase
            block.seal()
            assert block.hash is not None
            self.blocks.append(block)
            self._by_hash[block.hash] = block.number
            hashes.append(block.hash)
            self.pending = self._child_of(block)
            if self._cursor == PENDING:  # the state after the pending block is now the sealed one's
                self._cursor = block.number
        return tuple(hashes)

    def _child_of(self, parent: Block) -> Block:
        assert parent.hash is not None
        return Block(
            number=parent.number + 1,
            parent_hash=parent.hash,
            timestamp=max(int(time.time()), parent.timestamp + 1),
            base_fee=parent.next_base_fee(),
            gas_limit=parent.gas_limit,
            mix_hash=os.urandom(32),  # PREVRANDAO, random as py-evm's
            coinbase=ZERO_ADDRESS,
            parent_state_root=parent.state_root,
        )

    # ─────────────── the cursor over block states ───────────────

    def _position(self, block_number: Any) -> int:
        """The block a query reads (PENDING for the pending block); BlockNotFound if none."""
        if block_number in ("latest", "safe", "finalized"):
            return len(self.blocks) - 1
        if block_number == "earliest":
            return 0
        if block_number == "pending":
            return PENDING
        if isinstance(block_number, int) and 0 <= block_number < len(self.blocks):
            return block_number
        raise BlockNotFound(f"No block found for block number: {block_number}")

    def _move_to(self, position: int) -> None:
        """Brings revm's database to the state after block ``position``."""
        latest = len(self.blocks) - 1
        target = latest + 1 if position == PENDING else position
        at = latest + 1 if self._cursor == PENDING else self._cursor
        while at > target:
            self.state.undo(self.pending.changes if at == latest + 1 else self.blocks[at].changes)
            at -= 1
        while at < target:
            at += 1
            self.state.redo(self.pending.changes if at == latest + 1 else self.blocks[at].changes)
        self._cursor = PENDING if target == latest + 1 else target

    def _block_at(self, position: int) -> Block:
        return self.pending if position == PENDING else self.blocks[position]

    def _context(self, block: Block) -> BlockContext:
        return BlockContext(
            block.number, block.timestamp, block.base_fee, block.gas_limit, block.mix_hash, block.coinbase
        )

    # ─────────────── accounts ───────────────

    def get_accounts(self) -> tuple[bytes, ...]:
        return tuple(self._keys)

    def add_account(self, private_key: bytes) -> None:
        self._keys[bytes.fromhex(Account.from_key(private_key).address[2:])] = bytes(private_key)

    @_locked
    def get_nonce(self, account: bytes, block_number: Any = "latest") -> int:
        return self._read(block_number, lambda: self.state.account(account).nonce)

    @_locked
    def get_balance(self, account: bytes, block_number: Any = "latest") -> int:
        return self._read(block_number, lambda: self.state.account(account).balance)

    @_locked
    def get_code(self, account: bytes, block_number: Any = "latest") -> bytes:
        return self._read(block_number, lambda: self.state.code(account))

    @_locked
    def get_storage(self, account: bytes, slot: int, block_number: Any = "latest") -> int:
        return self._read(block_number, lambda: self.state.storage(account, slot))

    def get_base_fee(self, block_number: Any = "latest") -> int:
        return self._block_at(self._position(block_number)).base_fee

    def _read(self, block_number: Any, read: Callable[[], T]) -> T:
        self._move_to(self._position(block_number))
        return read()

    # ─────────────── blocks, transactions, receipts ───────────────

    @_locked
    def get_block_by_number(self, block_number: Any, full_transaction: bool = True) -> dict[str, Any]:
        return self._block_at(self._position(block_number)).serialise(full_transaction)

    @_locked
    def get_block_by_hash(self, block_hash: bytes, full_transaction: bool = True) -> dict[str, Any]:
        number = self._by_hash.get(bytes(block_hash))
        if number is None:
            raise BlockNotFound(f"No block found for block hash: {block_hash!r}")
        return self.blocks[number].serialise(full_transaction)

    def find_receipt(self, transaction_hash: bytes) -> tuple[Block, Receipt]:
        """The block (sealed or pending) and receipt of a transaction; TransactionNotFound if none."""
        found = self._txs.get(bytes(transaction_hash))
        if found is None:
            raise TransactionNotFound(f"No transaction found for transaction hash: 0x{bytes(transaction_hash).hex()}")
        block = self._block_at(found[0] if found[0] < len(self.blocks) else PENDING)
        return block, block.receipts[found[1]]

    def block_number(self, block_number: Any) -> int:
        """The number a block identifier names ("pending" names the pending block's)."""
        position = self._position(block_number)
        return self.pending.number if position == PENDING else position

    def blocks_between(self, first: int, last: int) -> list[Block]:
        """Sealed blocks ``first`` to ``last``; BlockNotFound past the latest, as eth-tester's py-evm backend."""
        if last >= len(self.blocks):
            raise BlockNotFound(f"No block found for block number: {last}")
        return self.blocks[first : last + 1]

    @_locked
    def get_transaction_by_hash(self, transaction_hash: bytes) -> dict[str, Any]:
        return serialise_transaction(*self.find_receipt(transaction_hash))

    @_locked
    def get_transaction_receipt(self, transaction_hash: bytes) -> dict[str, Any]:
        return serialise_receipt(*self.find_receipt(transaction_hash))

    @_locked
    def get_fee_history(
        self, block_count: int = 1, newest_block: Any = "latest", reward_percentiles: Any = ()
    ) -> dict[str, Any]:
        newest = self._position("latest" if newest_block == "pending" else newest_block)
        first = max(0, newest - block_count + 1)
        blocks = self.blocks[first : newest + 1]
        return {
            "oldest_block": first,
            "base_fee_per_gas": [b.base_fee for b in blocks],
            "gas_used_ratio": [b.gas_used / b.gas_limit for b in blocks],
            "reward": [],
        }

    # ─────────────── transactions ───────────────

    @_locked
    def send_raw_transaction(self, raw_transaction: bytes) -> bytes:
        tx = signed_tx.decode(bytes(raw_transaction))
        self._move_to(PENDING)
        self._admit(tx)
        self._apply(tx)
        return tx.hash

    def send_signed_transaction(self, signed_transaction: dict[str, Any]) -> bytes:
        raise NotImplementedError("the embedded chain takes raw signed transactions (eth_sendRawTransaction)")

    @_locked
    def send_transaction(self, transaction: dict[str, Any]) -> bytes:
        """Signs with one of the chain's own accounts (eth_sendTransaction) and sends it raw."""
        key = self._keys.get(transaction["from"])
        if key is None:
            raise TransactionRejected(
                f"0x{transaction['from'].hex()} is not one of the chain's accounts: sign the transaction "
                "yourself and send it with eth_sendRawTransaction"
            )
        self._move_to(PENDING)
        fields: dict[str, Any] = {
            "nonce": transaction.get("nonce", self.state.account(transaction["from"]).nonce),
            "gas": transaction.get("gas", 21_000),
            "value": transaction.get("value", 0),
            "data": transaction.get("data", b""),
            "chainId": CHAIN_ID,
        }
        if transaction.get("to"):
            fields["to"] = to_checksum_address(transaction["to"])
        if "gas_price" in transaction:
            fields["gasPrice"] = transaction["gas_price"]
        else:
            fields["maxPriorityFeePerGas"] = transaction.get("max_priority_fee_per_gas", DEFAULT_CALL_FEE)
            fields["maxFeePerGas"] = transaction.get(
                "max_fee_per_gas", fields["maxPriorityFeePerGas"] + 2 * self.pending.base_fee
            )
        signed = Account.sign_transaction(fields, key)
        return self.send_raw_transaction(signed.raw_transaction)

    def _admit(self, tx: SignedTx) -> None:
        """Refuses, with what was wrong and what is allowed, a transaction a node would not include."""
        who = "0x" + tx.sender.hex()
        if tx.chain_id is not None and tx.chain_id != CHAIN_ID:
            raise TransactionRejected(f"transaction signed for chain id {tx.chain_id}; this chain's id is {CHAIN_ID}")
        account = self.state.account(tx.sender)
        if tx.nonce < account.nonce:
            raise TransactionRejected(
                f"nonce {tx.nonce} of {who} is already used: its next nonce is {account.nonce} "
                "(a replayed or duplicated transaction is refused)"
            )
        if tx.nonce > account.nonce:
            raise TransactionRejected(
                f"nonce {tx.nonce} of {who} is ahead of its next nonce {account.nonce}: the embedded chain "
                "mines each transaction as it arrives and keeps no queue, so send the nonces in order"
            )
        if account.code_hash != NO_ACCOUNT.code_hash:
            raise TransactionRejected(f"{who} is a contract; only accounts without code send transactions (EIP-3607)")
        intrinsic = signed_tx.intrinsic_gas(tx.data, is_create=tx.is_create, access_list=tx.access_list)
        floor = signed_tx.floor_gas(tx.data)
        if tx.gas < max(intrinsic, floor):
            raise TransactionRejected(
                f"gas limit {tx.gas:,} is below the {max(intrinsic, floor):,} gas this transaction needs before "
                f"it runs (intrinsic {intrinsic:,}, EIP-7623 calldata floor {floor:,})"
            )
        left = self.pending.gas_limit - self.pending.gas_used
        if tx.gas > left:
            raise TransactionRejected(
                f"gas limit {tx.gas:,} exceeds the {left:,} gas left in the block (block gas limit "
                f"{self.pending.gas_limit:,}); offer at most that"
            )
        if tx.is_create and len(tx.data) > signed_tx.MAX_INITCODE_BYTES:
            raise TransactionRejected(
                f"initcode of {len(tx.data):,} bytes exceeds EIP-3860's {signed_tx.MAX_INITCODE_BYTES:,} bytes"
            )
        base_fee = self.pending.base_fee
        if tx.max_fee < base_fee:
            raise TransactionRejected(
                f"max fee per gas {tx.max_fee:,} wei is below the block's base fee {base_fee:,} wei"
            )
        if tx.max_priority_fee_per_gas is not None and tx.max_priority_fee_per_gas > tx.max_fee:
            raise TransactionRejected(
                f"priority fee {tx.max_priority_fee_per_gas:,} wei exceeds the max fee {tx.max_fee:,} wei"
            )
        cost = tx.gas * tx.max_fee + tx.value
        if account.balance < cost:
            raise TransactionRejected(
                f"{who} has {account.balance:,} wei but the transaction may cost {cost:,} wei "
                "(gas limit × max fee per gas + value)"
            )

    def _apply(self, tx: SignedTx) -> None:
        """Executes an admitted transaction into the pending block and commits its effects."""
        block = self.pending
        price = tx.effective_gas_price(block.base_fee)
        message = Message(tx.sender, tx.to, tx.data, tx.value, tx.gas, price, tx.access_list)
        outcome = self.state.execute(message, self._context(block), read_changes=True)
        gas_used = max(outcome.gas_used, signed_tx.floor_gas(tx.data))
        accounts: dict[bytes, AccountRecord] = {}
        slots: dict[tuple[bytes, int], tuple[int, int]] = {}
        codes: dict[bytes, bytes] = {}
        if outcome.success:
            for address, seen in outcome.accounts.items():
                after = NO_ACCOUNT if seen.destroyed else AccountRecord(seen.balance, seen.nonce, seen.code_hash)
                if after != self.state.account(address):
                    accounts[address] = after
                if seen.code is not None:
                    codes[seen.code_hash] = seen.code
                if not seen.destroyed:
                    slots.update({(address, key): pair for key, pair in seen.slots.items()})
        sender = accounts.get(tx.sender, self.state.account(tx.sender))
        accounts[tx.sender] = AccountRecord(sender.balance - gas_used * price, tx.nonce + 1, sender.code_hash)
        tip = gas_used * (price - block.base_fee)
        coinbase = accounts.get(block.coinbase, self.state.account(block.coinbase))
        accounts[block.coinbase] = AccountRecord(coinbase.balance + tip, coinbase.nonce, coinbase.code_hash)
        block.changes.add(self.state.commit(accounts, slots, codes))
        block.gas_used += gas_used
        receipt = Receipt(
            tx=tx,
            index=len(block.receipts),
            status=int(outcome.success),
            gas_used=gas_used,
            cumulative_gas_used=block.gas_used,
            effective_gas_price=price,
            logs=outcome.logs,
            first_log_index=block.log_count,
            contract_address=_create_address(tx.sender, tx.nonce) if tx.is_create else None,
        )
        block.log_count += len(outcome.logs)
        block.receipts.append(receipt)
        self._txs[tx.hash] = (block.number, receipt.index)

    # ─────────────── calls and estimates ───────────────

    @_locked
    def call(self, transaction: dict[str, Any], block_number: Any = "latest") -> bytes:
        outcome = self._run(transaction, block_number, gas=transaction.get("gas"))
        if not outcome.success:
            raise _failed(outcome)
        return outcome.output

    @_locked
    def estimate_gas(self, transaction: dict[str, Any], block_number: Any = "latest") -> int:
        """The least gas (within py-evm's tolerance of 21,000) with which ``transaction`` succeeds,
        found by py-evm's binary search, and at least EIP-7623's floor."""
        data = transaction.get("data", b"")
        is_create = not transaction.get("to")
        low = signed_tx.intrinsic_gas(data, is_create=is_create, access_list=transaction.get("access_list", ()))
        floor = signed_tx.floor_gas(data)
        if self._run(transaction, block_number, gas=low, price=0).success:
            return max(low, floor)
        high = self._block_at(self._position(block_number)).gas_limit
        outcome = self._run(transaction, block_number, gas=high, price=0)
        if not outcome.success:
            raise _failed(outcome)
        while high - low > ESTIMATE_TOLERANCE:
            middle = (high + low) // 2
            if self._run(transaction, block_number, gas=middle, price=0).success:
                high = middle
            else:
                low = middle
        return max(high, floor)

    def _run(
        self, transaction: dict[str, Any], block_number: Any, *, gas: int | None, price: int | None = None
    ) -> Outcome:
        position = self._position(block_number)
        block = self._block_at(position)
        if gas is None:
            gas = self.pending.gas_limit - self.pending.gas_used
        gas = min(gas, block.gas_limit)  # a node caps a call's gas; revm refuses more than the block's
        if price is None:
            price = _call_price(transaction, block.base_fee)
        self._move_to(position)
        sender = transaction.get("from") or ZERO_ADDRESS
        value = transaction.get("value", 0)
        balance = self.state.account(sender).balance
        if balance < gas * price + value:
            raise TransactionRejected(
                f"0x{sender.hex()} has {balance:,} wei but the call offers {gas:,} gas at {price:,} wei "
                f"plus {value:,} wei of value: call from a funded account or name less gas"
            )
        access = tuple((bytes(a), tuple(keys)) for a, keys in transaction.get("access_list", ()))
        message = Message(sender, transaction.get("to") or b"", transaction.get("data", b""), value, gas, price, access)
        return self.state.execute(message, self._context(block), read_changes=False)


def _call_price(transaction: dict[str, Any], base_fee: int) -> int:
    if "gas_price" in transaction:
        return int(transaction["gas_price"])
    tip = int(transaction.get("max_priority_fee_per_gas", DEFAULT_CALL_FEE))
    max_fee = int(
        transaction.get(
            "max_fee_per_gas", tip + 2 * base_fee if "max_priority_fee_per_gas" in transaction else DEFAULT_CALL_FEE
        )
    )
    if max_fee < base_fee:
        raise TransactionRejected(f"max fee per gas {max_fee:,} wei is below the block's base fee {base_fee:,} wei")
    return min(max_fee, base_fee + tip)


def _failed(outcome: Outcome) -> TransactionFailed:
    """A failed call as py-evm's backend reports it, so that web3 and reverts.py read it the same way:
    a revert's data as the text of its bytes (``b'...'``), a halt by its reason."""
    if outcome.error == "Revert":
        if outcome.output[:4] == ERROR_STRING_SELECTOR:
            try:
                return TransactionFailed(abi_decode(["string"], outcome.output[4:])[0])
            except DecodingError:
                pass
        return TransactionFailed(str(outcome.output))
    if outcome.error is not None and outcome.error.startswith("OutOfGas"):
        return TransactionFailed(f"Out of gas: revm halted ({outcome.error}) after {outcome.gas_used:,} gas")
    return TransactionFailed(f"execution halted: {outcome.error}")


def _create_address(sender: bytes, nonce: int) -> bytes:
    return keccak(rlp.encode([sender, nonce]))[12:]
