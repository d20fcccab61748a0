"""Onboarding prosumers on a ledger: a key, gas money, registration, tokens, a deposit."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from eth_account.signers.local import LocalAccount

from gridledger.chain.connection import FIRST_PROSUMER_INDEX, derive_account
from gridledger.chain.ledger import Ledger
from gridledger.network.profiles import ProsumerProfile

GAS_MONEY_WEI = 10**18
DEFAULT_CAPACITY_W = 30_000


@dataclass
class Participant:
    """A simulated prosumer: its key, its day's profile and the next nonce it will sign."""

    account: LocalAccount
    profile: ProsumerProfile
    next_nonce: int = 0

    @property
    def address(self) -> str:
        return str(self.account.address)


def make_prosumers(
    ledger: Ledger,
    *,
    count: int,
    deposit: int,
    mnemonic: str | None = None,
    buses: Sequence[int] | None = None,
    capacities_w: Sequence[int] | None = None,
    first_meter_id: int = 1000,
) -> list[LocalAccount]:
    """Derives ``count`` prosumer keys, registers them and gives each ``deposit`` in the market.

    Keys come from the development mnemonic after the role accounts, so a run is repeatable.
    """
    from gridledger.config import Settings

    seed = mnemonic or Settings().mnemonic
    accounts = [derive_account(seed, FIRST_PROSUMER_INDEX + i) for i in range(count)]
    for i, account in enumerate(accounts):
        ledger.fund_gas(account.address, GAS_MONEY_WEI)
        ledger.register(
            account.address,
            meter_id=first_meter_id + i,
            bus=buses[i] if buses else i,
            capacity_w=capacities_w[i] if capacities_w else DEFAULT_CAPACITY_W,
        )
        ledger.mint(account.address, deposit)
        ledger.deposit(account, deposit)
    return accounts
