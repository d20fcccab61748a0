"""Onboarding prosumers on a ledger: a key, gas money, registration, tokens, a deposit."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from eth_account import Account
from eth_account.hdaccount import key_from_seed, seed_from_mnemonic
from eth_account.signers.local import LocalAccount

from gridledger.chain.connection import FIRST_PROSUMER_INDEX
from gridledger.chain.ledger import Ledger
from gridledger.network.profiles import ProsumerProfile

GAS_MONEY_WEI = 10**18
DEFAULT_CAPACITY_W = 30_000


@dataclass
class Participant:
    """A simulated prosumer: its key, its day's profile, what it deposited and the next nonce it
    will sign."""

    account: LocalAccount
    profile: ProsumerProfile
    deposit: int = 0
    next_nonce: int = 0

    @property
    def address(self) -> str:
        return str(self.account.address)


def derive_accounts(mnemonic: str, first: int, count: int) -> list[LocalAccount]:
    """The accounts at ``m/44'/60'/0'/0/first`` … ``first + count − 1``: what
    ``chain.connection.derive_account`` gives one by one, with the mnemonic's seed stretched once
    (PBKDF2, ~10 ms) instead of once per account (a minute for 5,000 prosumers)."""
    seed = seed_from_mnemonic(mnemonic, "")
    return [Account.from_key(key_from_seed(seed, f"m/44'/60'/0'/0/{first + i}")) for i in range(count)]


def make_prosumers(
    ledger: Ledger,
    *,
    count: int,
    deposit: int,
    mnemonic: str | None = None,
    buses: Sequence[int] | None = None,
    capacities_w: Sequence[int] | None = None,
    deposits: Sequence[int] | None = None,
    first_meter_id: int = 1000,
    gas_money: bool = True,
) -> list[LocalAccount]:
    """Derives ``count`` prosumer keys, registers them and gives each ``deposit`` (or its own of
    ``deposits``) in the market, in batches: the registrations (``registerMany``), then the
    admin mints the deposits to itself and pays them in (``depositFor``). With ``gas_money``
    each prosumer also gets native currency for transactions of its own (one transfer each);
    a day whose orders the facilitator relays needs none.

    Keys come from the development mnemonic after the role accounts, so a run is repeatable.
    """
    from gridledger.config import Settings

    seed = mnemonic or Settings().mnemonic
    accounts = derive_accounts(seed, FIRST_PROSUMER_INDEX, count)
    addresses = [str(a.address) for a in accounts]
    if gas_money:
        for address in addresses:
            ledger.fund_gas(address, GAS_MONEY_WEI)
    ledger.register_many(
        addresses,
        meter_ids=[first_meter_id + i for i in range(count)],
        buses=list(buses) if buses else list(range(count)),
        capacities_w=list(capacities_w) if capacities_w else [DEFAULT_CAPACITY_W] * count,
    )
    amounts = {a: deposits[i] if deposits else deposit for i, a in enumerate(addresses)}
    if amounts:
        admin = ledger.roles.admin
        ledger.mint(admin.address, sum(amounts.values()))
        ledger.deposit_for(admin, amounts)
    return accounts
