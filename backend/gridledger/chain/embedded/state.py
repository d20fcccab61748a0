"""The embedded chain's world state: revm (through pyrevm) executes, this module commits.

pyrevm keeps everything a call does in revm's journal and never finalises it. Left like that,
an account or slot touched by one transaction would stay warm for every later one (EIP-2929)
and a slot's "original value" (EIP-2200/3529) would stay what it was before the first
transaction, so gas would drift from every real node's. Here each execution runs against an
empty journal, its effects are read from the journal (``journal.parse``), the journal is
rolled back, and the effects are written into revm's database, where the next transaction
finds them cold, as on a node.

The database holds the state after one block at a time (the *cursor*); every block keeps the
values it changed, before and after, so the cursor moves back for a query or a snapshot
revert and forward again.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from pyrevm import EVM, AccountInfo, BlockEnv, CfgEnv, Env, Log, TxEnv

from gridledger.chain.embedded import journal
from gridledger.chain.embedded.signed_tx import AccessList

EMPTY_CODE_HASH = bytes.fromhex("c5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470")
# revm 8's newest fork. Prague, the fork of py-evm's chain, changed no opcode or gas cost that
# legacy bytecode meets except EIP-7623's calldata floor, which signed_tx.floor_gas adds.
SPEC = "Cancun"

_REVERT = re.compile(r"^Revert \{ gas_used: (\d+), output: 0x([0-9a-f]*) \}$")
_HALT = re.compile(r"^Halt \{ reason: (.*), gas_used: (\d+) \}$")


@dataclass(frozen=True)
class AccountRecord:
    """An account's balance, nonce and code hash (its storage lives in revm's database)."""

    balance: int = 0
    nonce: int = 0
    code_hash: bytes = EMPTY_CODE_HASH


NO_ACCOUNT = AccountRecord()


@dataclass
class Changes:
    """What a block changed: each account and slot with its value before the block and after."""

    accounts: dict[bytes, tuple[AccountRecord, AccountRecord]] = field(default_factory=dict)
    slots: dict[tuple[bytes, int], tuple[int, int]] = field(default_factory=dict)

    def add(self, other: Changes) -> None:
        for address, (before, after) in other.accounts.items():
            self.accounts[address] = (self.accounts.get(address, (before, after))[0], after)
        for slot, (old, new) in other.slots.items():
            self.slots[slot] = (self.slots.get(slot, (old, new))[0], new)


@dataclass(frozen=True)
class BlockContext:
    """What a transaction sees of its block."""

    number: int
    timestamp: int
    base_fee: int
    gas_limit: int
    prevrandao: bytes
    coinbase: bytes


@dataclass(frozen=True)
class Message:
    """One execution: a transaction's or a call's sender, target and offer."""

    sender: bytes
    to: bytes  # b"" creates a contract
    data: bytes
    value: int
    gas: int
    gas_price: int
    access_list: AccessList = ()


@dataclass
class Outcome:
    """What an execution did. ``gas_used`` is revm's (refund applied, before EIP-7623's floor)."""

    success: bool
    gas_used: int
    output: bytes  # return data, or the revert data
    error: str | None  # None, "Revert", or revm's halt reason (e.g. "OutOfGas(Basic)")
    logs: list[tuple[bytes, list[bytes], bytes]]  # (address, topics, data)
    contract_address: bytes | None
    accounts: dict[bytes, journal.AccountState]


class WorldState:
    """revm with a committed database and a cursor over the blocks' changes."""

    def __init__(self, *, chain_id: int, gas_limit: int) -> None:
        self.evm = EVM(env=Env(cfg=CfgEnv(chain_id=chain_id)), gas_limit=gas_limit, spec_id=SPEC)
        # The database's accounts as last written; revm's own reads would load them into the journal.
        self.accounts: dict[bytes, AccountRecord] = {}
        self.codes: dict[bytes, bytes] = {EMPTY_CODE_HASH: b""}
        self._block: BlockContext | None = None
        self._tx_env_dirty = False

    # ─────────────── execution ───────────────

    def execute(self, message: Message, block: BlockContext, *, read_changes: bool) -> Outcome:
        """Runs ``message`` on the committed state and rolls the journal back; with
        ``read_changes``, the outcome carries what it would change (``commit`` writes it)."""
        evm = self.evm
        if block != self._block:
            evm.set_block_env(
                BlockEnv(
                    number=block.number,
                    coinbase="0x" + block.coinbase.hex(),
                    timestamp=block.timestamp,
                    prevrandao=block.prevrandao,
                    basefee=block.base_fee,
                    gas_limit=block.gas_limit,
                    excess_blob_gas=0,
                )
            )
            self._block = block
        if message.access_list or self._tx_env_dirty:
            evm.set_tx_env(TxEnv(access_list=[("0x" + a.hex(), list(keys)) for a, keys in message.access_list]))
            self._tx_env_dirty = bool(message.access_list)
        sender = "0x" + message.sender.hex()
        checkpoint = evm.snapshot()
        try:
            # revm loads the coinbase (EIP-3651) and the access list's accounts and slots into
            # the journal without journal entries, so no rollback would take them out again:
            # they would stay warm, and shadow the database, for every later transaction.
            # Loading them first, with entries, makes revm find them there; they are warm for
            # this transaction either way.
            evm.basic("0x" + block.coinbase.hex())
            for address, keys in message.access_list:
                evm.basic("0x" + address.hex())
                for key in keys:
                    evm.storage("0x" + address.hex(), key)
            created: bytes | None = None
            try:
                if message.to:
                    output = evm.message_call(
                        sender,
                        "0x" + message.to.hex(),
                        calldata=message.data,
                        value=message.value,
                        gas=message.gas,
                        gas_price=message.gas_price,
                    )
                else:
                    # revm deducts a create's fee itself when given a gas price, and credits all
                    # of it to the coinbase; the backend charges every fee instead, so none here.
                    created = bytes.fromhex(evm.deploy(sender, message.data, value=message.value, gas=message.gas)[2:])
                    output = b""
            except RuntimeError as exc:
                outcome = _failure(str(exc))
            else:
                result = evm.result
                assert result is not None and result.is_success
                outcome = Outcome(
                    success=True,
                    gas_used=result.gas_used,
                    output=bytes(output),
                    error=None,
                    logs=[_log(entry) for entry in result.logs],
                    contract_address=created,
                    accounts={},
                )
            if read_changes:
                outcome.accounts = journal.parse(evm.journal_str)
            return outcome
        finally:
            evm.revert(checkpoint)
            if evm.journal_state:  # see above: anything left would be warm for every later transaction
                raise RuntimeError(f"revm left accounts in its journal after a rollback: {sorted(evm.journal_state)}")

    # ─────────────── the committed database ───────────────

    def commit(
        self,
        accounts: dict[bytes, AccountRecord],
        slots: dict[tuple[bytes, int], tuple[int, int]],
        codes: dict[bytes, bytes],
    ) -> Changes:
        """Writes accounts, slots (before, after) and new code into the database; returns the change."""
        self.codes.update(codes)
        changes = Changes({a: (self.accounts.get(a, NO_ACCOUNT), new) for a, new in accounts.items()}, slots)
        self._write(changes, forward=True)
        return changes

    def undo(self, changes: Changes) -> None:
        self._write(changes, forward=False)

    def redo(self, changes: Changes) -> None:
        self._write(changes, forward=True)

    def _write(self, changes: Changes, *, forward: bool) -> None:
        evm = self.evm
        side = 1 if forward else 0
        # An account not in the journal is written straight into the database (pyrevm's
        # insert_account_info); the journal is empty between executions, so every account is.
        for address, accounts in changes.accounts.items():
            account = accounts[side]
            code = self.codes.get(account.code_hash) if account.code_hash != EMPTY_CODE_HASH else None
            evm.insert_account_info(
                "0x" + address.hex(),
                # pyrevm's stub omits ``balance``; its binding takes it (pyrevm/src/types/info.rs)
                AccountInfo(balance=account.balance, nonce=account.nonce, code_hash=account.code_hash, code=code),  # type: ignore[call-arg]
            )
            self.accounts[address] = account
        # insert_account_storage writes a cold account's slot into the database but then loads
        # the account into the journal (and writes a warm account's slot only to the journal):
        # each slot is written inside a checkpoint that is rolled back.
        for (address, key), values in changes.slots.items():
            checkpoint = evm.snapshot()
            evm.insert_account_storage("0x" + address.hex(), key, values[side])
            evm.revert(checkpoint)

    # ─────────────── reads of the committed state ───────────────

    def account(self, address: bytes) -> AccountRecord:
        return self.accounts.get(address, NO_ACCOUNT)

    def code(self, address: bytes) -> bytes:
        return self.codes[self.account(address).code_hash]

    def storage(self, address: bytes, key: int) -> int:
        checkpoint = self.evm.snapshot()  # the read loads the slot into the journal
        try:
            return int(self.evm.storage("0x" + address.hex(), key))
        finally:
            self.evm.revert(checkpoint)


def _log(entry: Log) -> tuple[bytes, list[bytes], bytes]:
    topics, data = entry.data
    return bytes.fromhex(entry.address[2:]), [bytes(t) for t in topics], bytes(data)


def _failure(text: str) -> Outcome:
    """An outcome from pyrevm's error text: a revert with its data, or a halt with its reason."""
    if match := _REVERT.match(text):
        return Outcome(False, int(match.group(1)), bytes.fromhex(match.group(2)), "Revert", [], None, {})
    if match := _HALT.match(text):
        return Outcome(False, int(match.group(2)), b"", match.group(1), [], None, {})
    raise RuntimeError(f"revm refused the execution: {text}")
