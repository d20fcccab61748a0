"""Hardhat compiles the same sources with the same compiler and settings as the backend."""

from __future__ import annotations

import json
import subprocess

import pytest

from gridledger.paths import PROJECT_ROOT

pytestmark = pytest.mark.devnet


def strip_metadata(bytecode: str) -> str:
    """Bytecode without its trailing CBOR metadata (it hashes source paths, which differ)."""
    code = bytecode.removeprefix("0x")
    length = int(code[-4:], 16)
    return code[: -(length + 2) * 2]


def test_hardhat_build_matches_the_backend_build(build) -> None:
    result = subprocess.run(
        ["node", "scripts/hardhat.mjs", "build"],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    artifacts = PROJECT_ROOT / ".build" / "hardhat" / "artifacts" / "contracts"
    for name in ("SettlementToken", "ParticipantRegistry", "EnergyMarket"):
        artifact = json.loads((artifacts / f"{name}.sol" / f"{name}.json").read_text())
        assert artifact["abi"] == build[name].abi
        assert strip_metadata(artifact["bytecode"]) == strip_metadata(build[name].bytecode), name
