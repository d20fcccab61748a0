"""Offline compilation and the deployment record: reuse, refusal, never a silent second copy."""

from __future__ import annotations

import dataclasses
import json

import pytest

from gridledger.chain import compile as compiler
from gridledger.chain.connection import Roles, connect
from gridledger.chain.deploy import Deployment, ensure_deployed
from gridledger.chain.reverts import RevertDecoder
from gridledger.chain.transactions import Transactor
from gridledger.config import Settings
from gridledger.errors import ConfigurationError, DeploymentError


def test_build_is_cached_by_source_hash_and_names_the_npm_compiler(build) -> None:
    assert build.compiler_version.startswith(compiler.SOLC_VERSION + "+commit")
    assert build.source_hash == compiler.source_hash()
    assert compiler.compile_contracts() == build  # served from .build/, same contents
    assert {"SettlementToken", "ParticipantRegistry", "EnergyMarket"} <= {
        name for name, c in build.contracts.items() if c.bytecode
    }
    # Every custom error the market declares is in its ABI, so the backend can decode it.
    errors = {i["name"] for i in build["EnergyMarket"].abi if i["type"] == "error"}
    assert {"InvalidSignature", "NonceAlreadyUsed", "OrderExpired", "GateClosed", "FillsMismatch"} <= errors


def test_source_hash_changes_with_any_source() -> None:
    sources = compiler._sources()
    changed = dict(sources)
    path = next(iter(changed))
    changed[path] += "\n// a comment\n"
    assert compiler.source_hash(changed) != compiler.source_hash(sources)


def test_deploy_records_then_reuses_and_refuses_other_sources(build, tmp_path) -> None:
    settings = Settings(chain="embedded")
    chain = connect(settings)
    roles = Roles.from_settings(settings)
    tx = Transactor(chain, RevertDecoder(c.abi for c in build.contracts.values()))

    first, deployed = ensure_deployed(chain, tx, roles, build, settings, directory=tmp_path)
    assert deployed
    record = json.loads((tmp_path / f"{chain.chain_id}.json").read_text())
    assert record["addresses"] == first.addresses
    assert record["compiler_version"] == build.compiler_version
    assert record["source_hash"] == build.source_hash
    assert record["block"] >= 1

    again, deployed = ensure_deployed(chain, tx, roles, build, settings, directory=tmp_path)
    assert not deployed and again == first

    other = dataclasses.replace(build, source_hash="0x" + "ab" * 32)
    with pytest.raises(DeploymentError, match="Refusing to deploy a second copy"):
        ensure_deployed(chain, tx, roles, other, settings, directory=tmp_path)
    assert Deployment.load(chain.chain_id, tmp_path) == first


def test_a_stale_record_of_a_reset_chain_is_refused_then_set_aside_on_purpose(build, tmp_path) -> None:
    settings = Settings(chain="embedded")
    roles = Roles.from_settings(settings)
    chain = connect(settings)
    tx = Transactor(chain, RevertDecoder(c.abi for c in build.contracts.values()))
    ensure_deployed(chain, tx, roles, build, settings, directory=tmp_path)
    fresh = connect(settings)  # a new chain with the same id and no code
    tx2 = Transactor(fresh, RevertDecoder(c.abi for c in build.contracts.values()))
    record = (tmp_path / f"{fresh.chain_id}.json").read_text()
    with pytest.raises(DeploymentError, match="gridledger migrate"):
        ensure_deployed(fresh, tx2, roles, build, settings, directory=tmp_path)
    assert (tmp_path / f"{fresh.chain_id}.json").read_text() == record  # never overwritten silently
    _, deployed = ensure_deployed(fresh, tx2, roles, build, settings, directory=tmp_path, fresh=True)
    assert deployed
    (aside,) = tmp_path.glob(f"{fresh.chain_id}.0x*.json")
    assert aside.read_text() == record


def test_roles_are_granted(ledger) -> None:
    m = ledger.market.functions
    assert m.hasRole(m.FACILITATOR_ROLE().call(), ledger.roles.facilitator.address).call()
    assert m.hasRole(m.METER_ROLE().call(), ledger.roles.meter.address).call()
    # The DSO sets the energy market's network tariff, and only the DSO may.
    assert m.hasRole(m.DSO_ROLE().call(), ledger.roles.dso.address).call()
    assert not m.hasRole(m.DSO_ROLE().call(), ledger.roles.facilitator.address).call()
    assert m.DSO_ACCOUNT().call() == ledger.roles.dso.address
    f = ledger.flex.functions
    assert f.hasRole(f.DSO_ROLE().call(), ledger.roles.dso.address).call()
    assert f.hasRole(f.FACILITATOR_ROLE().call(), ledger.roles.facilitator.address).call()
    assert f.hasRole(f.METER_ROLE().call(), ledger.roles.meter.address).call()
    assert not m.hasRole(m.FACILITATOR_ROLE().call(), ledger.roles.meter.address).call()
    r = ledger.registry.functions
    assert r.hasRole(r.FACILITATOR_ROLE().call(), ledger.roles.facilitator.address).call()


def test_unknown_chain_names_are_refused() -> None:
    with pytest.raises(ConfigurationError, match="use embedded, hardhat, anvil or an http"):
        connect(Settings(chain="mainnet-please"))
