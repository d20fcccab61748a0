"""Signing and sending transactions: nonces, fees, gas and reverts, managed in one place.

Every transaction is signed locally with eth-account and sent raw, on every chain, so the
embedded chain, a devnet and a remote node behave the same way.
"""

from __future__ import annotations

import ast
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast

from eth_abi.abi import decode as abi_decode
from eth_abi.abi import encode as abi_encode
from eth_account.signers.local import LocalAccount
from eth_tester.exceptions import TransactionFailed
from eth_typing import BlockIdentifier, HexStr
from eth_utils.abi import function_abi_to_4byte_selector, get_abi_input_types
from eth_utils.address import is_checksum_address
from hexbytes import HexBytes
from web3.contract.contract import ContractConstructor, ContractFunction
from web3.exceptions import ContractCustomError, ContractLogicError, TimeExhausted, Web3RPCError
from web3.types import Nonce, TxParams, TxReceipt, Wei

from gridledger.chain import rpc_raw
from gridledger.chain.connection import LOCAL_DEVNETS, Chain
from gridledger.chain.reverts import RevertDecoder
from gridledger.errors import LedgerError, TransactionStuck

# EIP-7825 caps a transaction at 2**24 gas; Hardhat 3 enforces it and so do we, everywhere.
MAX_TX_GAS = 16_777_216
PRIORITY_FEE_WEI = 1_000_000_000
GAS_MARGIN = 1.15
TRANSFER_GAS = 21_000  # a plain value transfer's, sent without an estimate
RECEIPT_TIMEOUT_S = 60.0
# What nodes answer when a raw transaction's nonce is stale (Hardhat, anvil, geth wordings).
NONCE_REFUSALS = ("nonce too low", "nonce too high", "already known", "replacement transaction underpriced")

_CHECKSUMMED: set[str] = set()  # addresses known to be in EIP-55 checksum form (fast_encode)

# What a reverting call raises: web3's errors for JSON-RPC nodes, eth-tester's for the embedded chain.
RevertError = (ContractCustomError, ContractLogicError, TransactionFailed)


@dataclass(frozen=True)
class PreparedTx:
    """A transaction that passed its preflight, not yet given a nonce or sent."""

    account: LocalAccount
    tx: TxParams
    action: str
    kind: str


class Transactor:
    """Sends transactions for local accounts and turns reverts into domain exceptions."""

    def __init__(self, chain: Chain, decoder: RevertDecoder) -> None:
        self.chain = chain
        self.decoder = decoder
        self._nonces: dict[str, int] = {}
        self.receipt_timeout_s = RECEIPT_TIMEOUT_S
        # Gas used so far, by contract function ("deploy" for constructors, "transfer" for value).
        self.gas_used: Counter[str] = Counter()

    def send(self, account: LocalAccount, call: ContractFunction | ContractConstructor, *, action: str) -> TxReceipt:
        """Estimates, signs, sends and waits for ``call``; raises the decoded custom error if it reverts."""
        return self.send_prepared(self.prepare(account, call, action=action))

    def prepare(
        self, account: LocalAccount, call: ContractFunction | ContractConstructor, *, action: str
    ) -> PreparedTx:
        """Runs ``call`` against the latest block without sending it (raising the decoded custom
        error it would revert with) and returns it ready to send: for work that must not start,
        or records that must not be written, unless the transaction will pass."""
        kind = call.fn_name if isinstance(call, ContractFunction) else "deploy"
        return PreparedTx(account, self._preflight(account, call, action), action, kind)

    def send_prepared(self, prepared: PreparedTx) -> TxReceipt:
        tx = dict(prepared.tx)
        tx["nonce"] = Nonce(self._next_nonce(prepared.account))
        return self._send_signed(prepared.account, cast(TxParams, tx), prepared.action, prepared.kind)

    def _preflight(self, account: LocalAccount, call: ContractFunction | ContractConstructor, action: str) -> TxParams:
        w3 = self.chain.w3
        params: TxParams = {
            "from": account.address,
            "chainId": self.chain.chain_id,
            "gas": MAX_TX_GAS,
            **self._fees(),
        }
        if isinstance(call, ContractFunction):
            tx = params | {"to": call.address, "data": encode_call(call), "value": Wei(0)}
        else:
            tx = call.build_transaction(params)
        try:
            if self.chain.kind == "embedded" or self.chain.kind in LOCAL_DEVNETS:
                # estimate_gas binary-searches (about nine executions: a second for a relay batch
                # on a loaded anvil); one eth_call finds the same reverts, and the cap is the
                # limit (only gas used is paid). A remote node gets an estimate.
                w3.eth.call(tx)
            else:
                estimate = w3.eth.estimate_gas({k: v for k, v in tx.items() if k != "gas"})  # type: ignore[arg-type]
                if estimate > MAX_TX_GAS:
                    raise _too_big(action)
                tx["gas"] = min(int(estimate * GAS_MARGIN) + 10_000, MAX_TX_GAS)
        except RevertError as exc:
            raise self._revert(exc, action) from None
        except Web3RPCError as exc:
            if "out of gas" in str(exc).lower():  # a devnet's eth_call at the cap
                raise _too_big(action) from None
            raise
        return tx

    def view(self, call: ContractFunction, types: Sequence[str], *, action: str) -> tuple[Any, ...]:
        """An eth_call of ``call`` decoded as ``types``; a revert raises its decoded custom error."""
        try:
            return read(call, types)
        except RevertError as exc:
            raise self._revert(exc, action) from None

    def send_value(self, account: LocalAccount, to: str, wei: int) -> TxReceipt:
        tx: TxParams = {
            "from": account.address,
            "to": to,
            "value": Wei(wei),
            "gas": TRANSFER_GAS,
            "chainId": self.chain.chain_id,
            "nonce": Nonce(self._next_nonce(account)),
            **self._fees(),
        }
        return self._send_signed(account, tx, f"transfer to {to}", "transfer")

    def _send_signed(self, account: LocalAccount, tx: TxParams, action: str, kind: str) -> TxReceipt:
        """Sends ``tx``; if the node refuses its nonce (stale cache: the node restarted or lost
        its pool) or no receipt comes in time, the nonce is read again from the node and the
        transaction sent once more with it."""
        w3 = self.chain.w3
        for attempt in (1, 2):
            signed = account.sign_transaction(tx)  # type: ignore[arg-type]
            try:
                tx_hash = w3.eth.send_raw_transaction(signed.raw_transaction)
            except RevertError as exc:
                self.forget_nonce(account.address)
                raise self._revert(exc, action, gas=int(tx["gas"])) from None
            except Exception as exc:
                self.forget_nonce(account.address)
                if attempt == 1 and _is_nonce_refusal(exc):
                    tx["nonce"] = Nonce(self._next_nonce(account))
                    continue
                raise
            try:
                # A local node mines at once: web3's default 0.1 s between polls was most of a devnet
                # transaction's wall time. From a JSON-RPC node the receipt is read raw (rpc_raw).
                if self.chain.kind == "embedded":
                    receipt = w3.eth.wait_for_transaction_receipt(
                        tx_hash, timeout=self.receipt_timeout_s, poll_latency=0.005
                    )
                else:
                    receipt = rpc_raw.wait_for_receipt(w3, tx_hash, timeout=self.receipt_timeout_s, poll_latency=0.005)
            except TimeExhausted:
                # Dropped, or queued behind a nonce gap (a nonce the node never reached).
                self.forget_nonce(account.address)
                mined = int(w3.eth.get_transaction_count(account.address, "latest"))
                if attempt == 1 and int(tx["nonce"]) >= mined:
                    tx["nonce"] = Nonce(self._next_nonce(account, block="latest"))
                    continue
                raise TransactionStuck(
                    f"{action}: transaction {tx_hash.hex()} got no receipt in {self.receipt_timeout_s:.0f} s "
                    f"(nonce {tx['nonce']}, the node's {mined}); it stays queued and is sent again"
                ) from None
            self.gas_used[kind] += receipt["gasUsed"]
            if receipt["status"] != 1:
                if attempt == 1 and self._clock_ran_back(receipt):
                    tx["nonce"] = Nonce(self._next_nonce(account))  # it reverted: nothing happened but gas
                    continue
                raise self._replay_failure(tx, receipt, action)
            return receipt
        raise AssertionError("unreachable")

    def forget_nonce(self, address: str | None = None) -> None:
        """Drops the cached nonce of ``address`` (of every account if None): the next transaction
        reads it from the node (after a node restart, a rollback or a failed send)."""
        if address is None:
            self._nonces.clear()
        else:
            self._nonces.pop(address, None)

    def _clock_ran_back(self, receipt: TxReceipt) -> bool:
        """True if ``receipt``'s block is earlier than the block before it (a devnet restarted
        from a dumped state, see ``Chain.keep_clock``), after setting the clock forward again:
        the transaction was checked at one time and run at an earlier one."""
        number = int(receipt["blockNumber"])
        if self.chain.kind == "embedded" or number == 0:
            return False
        before = int(self.chain.w3.eth.get_block(number - 1)["timestamp"])
        if int(self.chain.w3.eth.get_block(number)["timestamp"]) >= before:
            return False
        return self.chain.keep_clock(after=before) > 0

    def _replay_failure(self, tx: TxParams, receipt: TxReceipt, action: str) -> LedgerError:
        call = {k: v for k, v in tx.items() if k in ("from", "to", "data", "value", "gas")}
        try:
            self.chain.w3.eth.call(call, receipt["blockNumber"] - 1)  # type: ignore[arg-type]
        except RevertError as exc:
            return self._revert(exc, action, gas=int(tx["gas"]))
        except Web3RPCError as exc:  # e.g. a node that no longer holds that block's state
            if "out of gas" in str(exc).lower():
                return _out_of_gas(action, int(tx["gas"]))
            return LedgerError(f"{action} failed in block {receipt['blockNumber']}; replaying it said: {exc}")
        return LedgerError(f"{action} failed in block {receipt['blockNumber']} (ran out of gas?)")

    def _revert(self, exc: Exception, action: str, *, gas: int = MAX_TX_GAS) -> LedgerError:
        """The error ``exc`` (a call or transaction that reverted) stands for; ``gas`` is the limit
        it ran with (a view or preflight runs at the cap)."""
        data: Any = getattr(exc, "data", None)
        if isinstance(exc, TransactionFailed):
            if "out of gas" in str(exc).lower():
                return _out_of_gas(action, gas)
            data = _tester_revert_data(exc)
        if isinstance(data, dict):
            data = data.get("data")
        if isinstance(data, (str, bytes, HexBytes)) and len(data) >= 4:
            return self.decoder.to_exception(data if isinstance(data, str) else bytes(data), action=action)
        if "out of gas" in str(exc).lower():  # a devnet's call at its cap (Hardhat answers this without data)
            return _out_of_gas(action, gas)
        return LedgerError(f"{action} reverted: {exc}")

    def _next_nonce(self, account: LocalAccount, *, block: BlockIdentifier = "pending") -> int:
        address = account.address
        if address not in self._nonces:
            self._nonces[address] = self.chain.w3.eth.get_transaction_count(address, block)
        nonce = self._nonces[address]
        self._nonces[address] = nonce + 1
        return nonce

    def _fees(self) -> TxParams:
        if self.chain.kind == "embedded":
            base = int(self.chain.w3.eth.get_block("latest").get("baseFeePerGas", 0) or 0)
        else:  # read raw: web3's formatting of the block took ~10 ms a transaction on a loaded devnet
            block = rpc_raw.request(self.chain.w3, "eth_getBlockByNumber", ["latest", False])
            base = int(block.get("baseFeePerGas") or "0x0", 16)
        return {
            "maxFeePerGas": Wei(2 * base + PRIORITY_FEE_WEI),
            "maxPriorityFeePerGas": Wei(PRIORITY_FEE_WEI),
        }


def encode_call(call: ContractFunction) -> HexStr:
    """The call's calldata, encoded straight from its ABI. web3's own encoder maps every argument
    through its normalisers several times per transaction; for a relay batch of 100 orders that
    was a fifth of a second of CPU. The batches a feeder sends (arrays of static tuples of
    integers and words) are packed here directly, a few times faster than eth-abi; anything else,
    or a value out of its type's range, goes to eth-abi (which raises what is wrong)."""
    types = get_abi_input_types(call.abi)
    args = list(call.args)
    data = fast_encode(types, args)
    if data is None:
        data = abi_encode(types, args)
    return HexStr("0x" + (function_abi_to_4byte_selector(call.abi) + data).hex())


def fast_encode(types: Sequence[str], values: Sequence[Any]) -> bytes | None:
    """The ABI encoding of ``values`` as ``types`` for static words (uintN, intN, bool, address,
    bytesN), tuples of them, ``bytes`` and arrays of any of the static ones; None for any other
    type or any value that is not plainly in range (the caller then uses eth-abi)."""
    heads: list[bytes] = []
    tails: list[bytes] = []
    for kind, value in zip(types, values, strict=True):
        if kind == "bytes":
            if not isinstance(value, bytes):
                return None
            padded = value + b"\0" * (-len(value) % 32)
            heads.append(b"")
            tails.append(len(value).to_bytes(32, "big") + padded)
        elif kind.endswith("[]"):
            element = kind[:-2]
            if not isinstance(value, (list, tuple)):
                return None
            parts = [_static(element, v) for v in value]
            if any(p is None for p in parts):
                return None
            heads.append(b"")
            tails.append(len(value).to_bytes(32, "big") + b"".join(p for p in parts if p is not None))
        else:
            word = _static(kind, value)
            if word is None:
                return None
            heads.append(word)
            tails.append(b"")
    offset = sum(len(h) if h else 32 for h in heads)
    out = []
    for head, tail in zip(heads, tails, strict=True):
        if tail:
            out.append(offset.to_bytes(32, "big"))
            offset += len(tail)
        else:
            out.append(head)
    return b"".join(out) + b"".join(tails)


def _static(kind: str, value: Any) -> bytes | None:
    """A static value's encoding (one word, or a tuple's words), or None (see ``fast_encode``)."""
    if kind.startswith("("):
        fields = kind[1:-1].split(",")
        if "(" in kind[1:] or not isinstance(value, (list, tuple)) or len(value) != len(fields):
            return None
        words = [_static(f, v) for f, v in zip(fields, value, strict=True)]
        return None if any(w is None for w in words) else b"".join(w for w in words if w is not None)
    if kind.startswith("uint") and type(value) is int:
        bits = int(kind[4:] or 256)
        return value.to_bytes(32, "big") if 0 <= value < 1 << bits else None
    if kind.startswith("int") and type(value) is int:
        bits = int(kind[3:] or 256)
        return value.to_bytes(32, "big", signed=True) if -(1 << (bits - 1)) <= value < 1 << (bits - 1) else None
    if kind == "bytes32" and isinstance(value, bytes) and len(value) == 32:
        return bytes(value)
    if kind == "address" and isinstance(value, str) and len(value) == 42:
        if value not in _CHECKSUMMED:  # a keccak each (~0.3 ms): a feeder's addresses recur every slot
            if not is_checksum_address(value):
                return None
            if len(_CHECKSUMMED) > 100_000:
                _CHECKSUMMED.clear()
            _CHECKSUMMED.add(value)
        return bytes.fromhex(value[2:]).rjust(32, b"\0")
    if kind == "bool" and type(value) is bool:
        return int(value).to_bytes(32, "big")
    return None


def read(call: ContractFunction, types: Sequence[str], block: BlockIdentifier = "latest") -> tuple[Any, ...]:
    """An eth_call of ``call`` at ``block``, decoded with eth-abi as ``types``."""
    raw = call.w3.eth.call({"to": call.address, "data": encode_call(call)}, block)
    return tuple(abi_decode(list(types), raw))


def _tester_revert_data(exc: TransactionFailed) -> bytes | None:
    """eth-tester reports a revert as the text ``execution reverted: b'...'``; recover the bytes."""
    text = str(exc.args[0]) if exc.args else ""
    prefix = "execution reverted: "
    if not text.startswith(prefix):
        return None
    try:
        data = ast.literal_eval(text[len(prefix) :])
    except (ValueError, SyntaxError):
        return None
    return data if isinstance(data, bytes) else None


def _is_nonce_refusal(exc: Exception) -> bool:
    text = str(exc).lower()
    return any(refusal in text for refusal in NONCE_REFUSALS)


def _out_of_gas(action: str, gas: int) -> LedgerError:
    if gas >= MAX_TX_GAS:
        return _too_big(action)
    if gas == TRANSFER_GAS:  # a value transfer whose recipient runs code: no estimate to blame
        return LedgerError(f"{action} ran out of its {gas:,} gas: the recipient runs code a transfer cannot pay for")
    # Below the cap a contract call's limit is the node's estimate with a margin: the state it
    # was estimated against changed before the transaction ran.
    return LedgerError(
        f"{action} ran out of gas at its limit of {gas:,} (the node's estimate plus a margin); "
        "the chain changed since the estimate: send it again"
    )


def _too_big(action: str) -> LedgerError:
    # A Hardhat node holds an eth_call (a view, a preflight) to the same cap as a transaction.
    return LedgerError(
        f"{action} needs more than the per-transaction cap of {MAX_TX_GAS:,} gas (EIP-7825, which Hardhat "
        "applies to calls too); split it into smaller batches"
    )
