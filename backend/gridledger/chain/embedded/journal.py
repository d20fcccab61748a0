"""Reads what one transaction changed out of pyrevm's journal.

pyrevm 0.3.7 runs every call inside revm's journal and never finalises it, so the journal is
the only place a transaction's writes live, and the only public view of it with storage is
``EVM.journal_str`` (revm 8's ``Debug`` text of its ``JournaledState``). This module parses
the part of that text the embedded chain needs: each loaded account's balance, nonce and code,
and its storage slots with the value before the transaction and after it. The format is pinned
by the exact pyrevm version in pyproject.toml; tests/backend/chain/test_embedded_*.py would
fail on a change.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

_ACCOUNT = re.compile(
    r"(0x[0-9a-fA-F]{40}): Account \{ info: AccountInfo \{ balance: (\d+), nonce: (\d+), "
    r"code_hash: 0x([0-9a-f]{64}), code: (?:None|Some\(Bytecode \{ bytecode: 0x([0-9a-f]*), "
    r"state: (?:Raw|Checked \{ len: (\d+) \}|Analysed \{ len: (\d+),))"
)
_SLOT = re.compile(r"(\d+): StorageSlot \{ previous_or_original_value: (\d+), present_value: (\d+) \}")
_STATUS = re.compile(r"\}, status: AccountStatus\(([^)]*)\) \}")


@dataclass
class AccountState:
    """One account as the journal holds it after a transaction."""

    balance: int
    nonce: int
    code_hash: bytes
    code: bytes | None  # only for accounts created by the transaction
    created: bool
    destroyed: bool
    slots: dict[int, tuple[int, int]] = field(default_factory=dict)  # key → (before, after)


def parse(text: str) -> dict[bytes, AccountState]:
    """The accounts in ``EVM.journal_str``, by 20-byte address."""
    start = text.index("state: {") + len("state: {")
    end = text.index(", transient_storage: ", start)
    state = text[start:end]
    heads = list(_ACCOUNT.finditer(state))
    accounts: dict[bytes, AccountState] = {}
    for i, head in enumerate(heads):
        tail = state[head.end() : heads[i + 1].start() if i + 1 < len(heads) else len(state)]
        status_match = _STATUS.search(tail)
        if status_match is None:
            raise ValueError(f"unreadable account {head.group(1)} in pyrevm's journal")
        status = status_match.group(1)
        created = "Created" in status
        code = None
        if created and head.group(5) is not None:
            length = head.group(6) or head.group(7)
            raw = bytes.fromhex(head.group(5))
            code = raw[: int(length)] if length is not None else raw
        accounts[bytes.fromhex(head.group(1)[2:])] = AccountState(
            balance=int(head.group(2)),
            nonce=int(head.group(3)),
            code_hash=bytes.fromhex(head.group(4)),
            code=code,
            created=created,
            destroyed="SelfDestructed" in status,
            slots={
                int(k): (int(before), int(after))
                for k, before, after in _SLOT.findall(tail, 0, status_match.start())
                if before != after
            },
        )
    return accounts
