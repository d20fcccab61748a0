"""One way to reach every chain GridLedger runs on.

``embedded``: revm (pyrevm) behind eth-tester, in this process (the default; nothing to start;
chain/embedded/). ``embedded_chain(engine="py-evm")`` builds the previous py-evm one, which the
parity test and benchmarks/evm.py compare against (py-evm is a dev dependency).
``hardhat`` / ``anvil``: a devnet node on 127.0.0.1 started by ``gridledger devnet start``.
Anything else: a JSON-RPC URL. Everything above this module talks to a ``Chain`` and never
asks which kind it is, except to move time on chains that allow it.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass, field
from typing import Any, Literal

from eth_account import Account
from eth_account.signers.local import LocalAccount
from web3 import Web3
from web3.main import get_default_modules
from web3.providers.eth_tester import EthereumTesterProvider
from web3.types import RPCEndpoint

from gridledger.config import Settings
from gridledger.errors import ConfigurationError

Account.enable_unaudited_hdwallet_features()

LOCAL_DEVNETS = ("hardhat", "anvil")
# Role accounts on local chains: the first indices of the development mnemonic.
ROLE_INDEX = {"admin": 0, "facilitator": 1, "dso": 2, "meter": 3, "balancing": 4}
FIRST_PROSUMER_INDEX = 10
EMBEDDED_GAS_LIMIT = 60_000_000  # per block


def derive_account(mnemonic: str, index: int) -> LocalAccount:
    """The account at ``m/44'/60'/0'/0/index`` of ``mnemonic``."""
    account: LocalAccount = Account.from_mnemonic(mnemonic, account_path=f"m/44'/60'/0'/0/{index}")
    return account


@dataclass
class Roles:
    """The keys of the parties that operate the market."""

    admin: LocalAccount
    facilitator: LocalAccount
    dso: LocalAccount
    meter: LocalAccount
    balancing: LocalAccount

    @classmethod
    def from_settings(cls, settings: Settings) -> Roles:
        accounts: dict[str, LocalAccount] = {}
        for role, index in ROLE_INDEX.items():
            key = getattr(settings, f"{role}_key")
            accounts[role] = Account.from_key(key) if key else derive_account(settings.mnemonic, index)
        return cls(**accounts)


@dataclass
class Chain:
    """A connected chain: web3, what kind it is, and (for the embedded one) its tester."""

    w3: Web3
    kind: str
    tester: Any = None
    _chain_id: int | None = field(default=None, repr=False)

    @property
    def chain_id(self) -> int:
        if self._chain_id is None:
            self._chain_id = int(self.w3.eth.chain_id)
        return self._chain_id

    @property
    def can_move_time(self) -> bool:
        return self.kind == "embedded" or self.kind in LOCAL_DEVNETS

    def now(self) -> int:
        """The latest block's timestamp."""
        return int(self.w3.eth.get_block("latest")["timestamp"])

    def keep_clock(self, *, after: int | None = None) -> int:
        """Keeps a local devnet's clock from running back: if its next block would be earlier
        than its latest block (or than ``after``), sets that block to one second past it and
        returns by how many seconds the clock had run back (0 if it had not).

        Why: anvil restarted from a dumped state (``anvil_loadState``) forgets the offset that
        ``evm_setNextBlockTimestamp`` set and mines its next blocks at the wall clock, before
        its latest block. A transaction checked against the latest block (gate closed) then
        reverts in the next one (gate open again): seen as a clearing that "failed in block N"
        while its replay against block N - 1 passed. Other chains' clocks do not run back."""
        if self.kind not in LOCAL_DEVNETS:
            return 0
        latest = max(int(self.w3.eth.get_block("latest")["timestamp"]), after or 0)
        behind = latest - int(self.w3.eth.get_block("pending")["timestamp"])
        if behind < 0 or (behind == 0 and after is None):
            return 0
        self.w3.provider.make_request(RPCEndpoint("evm_setNextBlockTimestamp"), [hex(latest + 1)])
        return max(behind, 1)

    def move_time_to(self, timestamp: int) -> None:
        """Mines a block at ``timestamp``, so that calls and later transactions see that time
        (local chains only)."""
        if timestamp <= self.now():
            return
        if self.kind == "embedded":
            self.tester.time_travel(timestamp)  # mines a block at timestamp − 1
            self.tester.mine_blocks(1)
        elif self.kind in LOCAL_DEVNETS:
            self.w3.provider.make_request(RPCEndpoint("evm_setNextBlockTimestamp"), [hex(timestamp)])
            self.w3.provider.make_request(RPCEndpoint("evm_mine"), [])
        else:
            raise ConfigurationError(
                f"cannot move time on {self.kind}: only the embedded chain and local devnets allow it"
            )


def connect(settings: Settings | None = None) -> Chain:
    """Connects to the chain the settings name."""
    settings = settings or Settings()
    name = settings.chain
    if name == "embedded":
        return embedded_chain(settings.mnemonic)
    if name in LOCAL_DEVNETS:
        url = f"http://127.0.0.1:{settings.devnet_port}"
    elif name.startswith(("http://", "https://")):
        url = name
    else:
        raise ConfigurationError(f"unknown chain {name!r}: use embedded, hardhat, anvil or an http(s) JSON-RPC URL")
    w3 = Web3(Web3.HTTPProvider(url, request_kwargs={"timeout": 60}))
    if not w3.is_connected():
        hint = "start it with `gridledger devnet start`" if name in LOCAL_DEVNETS else "check the URL"
        raise ConfigurationError(f"no JSON-RPC node answers at {url}: {hint}")
    return Chain(w3=w3, kind=name)


def embedded_chain(mnemonic: str, *, engine: Literal["revm", "py-evm"] = "revm") -> Chain:
    """A fresh in-process chain whose first ``FIRST_PROSUMER_INDEX`` accounts of ``mnemonic``
    hold 1,000,000 ether each, with a 60,000,000 gas block limit and a block per transaction."""
    from eth_tester import EthereumTester

    hd_path = "m/44'/60'/0'/0"
    tester: EthereumTester
    if engine == "revm":
        from gridledger.chain.embedded import EmbeddedEth, RevmBackend, RevmTester

        backend = RevmBackend(
            mnemonic, num_accounts=FIRST_PROSUMER_INDEX, hd_path=hd_path, gas_limit=EMBEDDED_GAS_LIMIT
        )
        tester = RevmTester(backend)
        w3 = Web3(EthereumTesterProvider(tester), modules=get_default_modules() | {"eth": EmbeddedEth})
    else:
        if importlib.util.find_spec("eth") is None:
            raise ConfigurationError("the py-evm embedded chain needs py-evm: pip install py-evm==0.12.1b1")
        from eth_tester import PyEVMBackend

        pyevm = PyEVMBackend.from_mnemonic(
            mnemonic,
            num_accounts=FIRST_PROSUMER_INDEX,
            hd_path=hd_path,
            genesis_parameters=PyEVMBackend.generate_genesis_params(overrides={"gas_limit": EMBEDDED_GAS_LIMIT}),
        )
        tester = EthereumTester(backend=pyevm)
        w3 = Web3(EthereumTesterProvider(tester))
    # A call without "from" makes web3's eth-tester middleware ask for the node's accounts (a
    # checksummed list, twice) to fill it in: 70 % of a view call's time. Every transaction we
    # send names its sender, so naming one for calls changes nothing but the cost.
    w3.eth.default_account = w3.eth.accounts[0]
    return Chain(w3=w3, kind="embedded", tester=tester)
