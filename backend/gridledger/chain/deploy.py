"""Deploy the token, registry and market, grant the roles, and record the deployment.

The record, ``deployments/<chainId>.json``, names the addresses, the block, the compiler and
the source hash. Deploying to a chain that already has a live deployment reuses it when its
sources match and refuses when they do not: this module never deploys a second copy silently.
A record whose contracts are gone (the node was reset) is never overwritten either: deploying
anew on purpose is ``gridledger migrate`` (``fresh=True``), which sets the old record aside.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from gridledger.chain.compile import Build
from gridledger.chain.connection import Chain, Roles
from gridledger.chain.transactions import Transactor
from gridledger.config import Settings
from gridledger.errors import DeploymentError
from gridledger.paths import DEPLOYMENTS_DIR

CONTRACT_NAMES = ("SettlementToken", "ParticipantRegistry", "EnergyMarket")


def record_path(chain_id: int) -> Path:
    """Where the deployment record of ``chain_id`` lives."""
    return DEPLOYMENTS_DIR / f"{chain_id}.json"


@dataclass(frozen=True)
class Deployment:
    chain_id: int
    addresses: dict[str, str]
    block: int  # the block of the first contract: where an indexer starts
    compiler_version: str
    source_hash: str
    roles: dict[str, str]

    def save(self, directory: Path | None = None) -> Path:
        directory = directory or DEPLOYMENTS_DIR
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / f"{self.chain_id}.json"
        path.write_text(json.dumps(asdict(self), indent=2) + "\n")
        return path

    @classmethod
    def load(cls, chain_id: int, directory: Path | None = None) -> Deployment | None:
        path = (directory or DEPLOYMENTS_DIR) / f"{chain_id}.json"
        if not path.exists():
            return None
        try:
            return cls(**json.loads(path.read_text()))
        except (ValueError, TypeError) as exc:
            raise DeploymentError(f"{path} is not a GridLedger deployment record: {exc}") from None


def is_live(chain: Chain, deployment: Deployment) -> bool:
    """Whether every recorded contract has code on the chain."""
    return all(len(chain.w3.eth.get_code(a)) > 0 for a in deployment.addresses.values())  # type: ignore[arg-type]


def ensure_deployed(
    chain: Chain,
    transactor: Transactor,
    roles: Roles,
    build: Build,
    settings: Settings,
    *,
    directory: Path | None = None,
    record: bool = True,
    fresh: bool = False,
) -> tuple[Deployment, bool]:
    """Returns the chain's deployment, deploying it first if the chain has none.

    The flag says whether this call deployed. A recorded deployment that is live but was built
    from other sources is refused: redeploying would leave two markets on one chain.
    """
    directory = directory or DEPLOYMENTS_DIR
    existing = Deployment.load(chain.chain_id, directory) if record else None
    if existing is not None and is_live(chain, existing):
        if existing.source_hash != build.source_hash:
            raise DeploymentError(
                f"chain {chain.chain_id} already has a GridLedger deployment (market "
                f"{existing.addresses['EnergyMarket']}) built from other sources "
                f"({existing.source_hash[:18]}…, now {build.source_hash[:18]}…). Refusing to deploy a "
                f"second copy: remove {directory / f'{chain.chain_id}.json'} to deploy anew on purpose"
            )
        return existing, False
    if existing is not None and not fresh:
        raise DeploymentError(
            f"{directory / f'{chain.chain_id}.json'} records market {existing.addresses['EnergyMarket']} "
            f"(deployed in block {existing.block}), but chain {chain.chain_id} has no code there: the node was "
            "reset. Refusing to deploy over the record. Restart the node with its state, or run "
            "`gridledger migrate` to deploy anew (the old record is set aside and the accepted orders accounted for)"
        )
    if existing is not None:
        set_aside(chain.chain_id, existing, directory)
    deployment = deploy(chain, transactor, roles, build, settings)
    if record:
        deployment.save(directory)
    return deployment, True


def set_aside(chain_id: int, old: Deployment, directory: Path | None = None) -> Path:
    """Renames the record of ``old`` to ``<chainId>.<market>.<UTC time>.json``; returns the new path."""
    directory = directory or DEPLOYMENTS_DIR
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    target = directory / f"{chain_id}.{old.addresses['EnergyMarket'][:10]}.{stamp}.json"
    (directory / f"{chain_id}.json").replace(target)
    return target


def deploy(chain: Chain, transactor: Transactor, roles: Roles, build: Build, settings: Settings) -> Deployment:
    """Deploys the four contracts and grants the facilitator, DSO and meter roles (the DSO's
    account in the energy market, where network charges are paid, is the DSO role's address)."""
    w3 = chain.w3
    admin = roles.admin

    first_block: list[int] = []

    def create(name: str, *args: object) -> str:
        compiled = build[name]
        factory = w3.eth.contract(abi=compiled.abi, bytecode=compiled.bytecode)
        receipt = transactor.send(admin, factory.constructor(*args), action=f"deploy {name}")
        first_block.append(receipt["blockNumber"])
        return str(receipt["contractAddress"])

    token = create("SettlementToken", admin.address)
    registry = create("ParticipantRegistry", admin.address)
    market = create(
        "EnergyMarket",
        token,
        registry,
        admin.address,
        roles.balancing.address,
        roles.dso.address,  # the DSO's account in the market: network charges are paid into it
        settings.gate_closure_seconds,
        settings.shortfall_price_per_kwh,
        settings.surplus_price_per_kwh,
    )
    flex = create("FlexibilityMarket", token, registry, admin.address)
    registry_c = w3.eth.contract(address=registry, abi=build["ParticipantRegistry"].abi)  # type: ignore[call-overload]
    flex_c = w3.eth.contract(address=flex, abi=build["FlexibilityMarket"].abi)  # type: ignore[call-overload]
    market_c = w3.eth.contract(address=market, abi=build["EnergyMarket"].abi)  # type: ignore[call-overload]
    grants = [
        (registry_c, "FACILITATOR_ROLE", roles.facilitator.address),
        (market_c, "FACILITATOR_ROLE", roles.facilitator.address),
        (market_c, "METER_ROLE", roles.meter.address),
        (market_c, "DSO_ROLE", roles.dso.address),
        (flex_c, "DSO_ROLE", roles.dso.address),
        (flex_c, "FACILITATOR_ROLE", roles.facilitator.address),
        (flex_c, "METER_ROLE", roles.meter.address),
    ]
    for contract, role, account in grants:
        role_id = contract.functions[role]().call()
        transactor.send(admin, contract.functions.grantRole(role_id, account), action=f"grant {role}")
    return Deployment(
        chain_id=chain.chain_id,
        addresses={
            "SettlementToken": token,
            "ParticipantRegistry": registry,
            "EnergyMarket": market,
            "FlexibilityMarket": flex,
        },
        block=first_block[0],
        compiler_version=build.compiler_version,
        source_hash=build.source_hash,
        roles={
            "admin": admin.address,
            "facilitator": roles.facilitator.address,
            "dso": roles.dso.address,
            "meter": roles.meter.address,
            "balancing": roles.balancing.address,
        },
    )
