"""Compile the Solidity sources in ``contracts/`` offline with npm's solc-js.

py-solc-x drives ``scripts/solc.cjs``, a ``solc``-compatible front end for the WebAssembly
compiler, through standard JSON. Output is cached under ``.build/`` by the hash of every
source, the compiler version and the settings, so an unchanged tree compiles once.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import solcx

from gridledger.errors import CompilationError, ToolchainError
from gridledger.paths import BUILD_DIR, CONTRACTS_DIR, NODE_MODULES, PROJECT_ROOT

SOLC_FRONT_END = PROJECT_ROOT / "scripts" / "solc.cjs"

# Keep in step with hardhat.config.js: both compile the same sources the same way.
SOLC_VERSION = "0.8.37"
COMPILER_SETTINGS: dict[str, Any] = {
    "evmVersion": "cancun",
    "viaIR": True,
    "optimizer": {"enabled": True, "runs": 1000},
    "outputSelection": {"*": {"*": ["abi", "evm.bytecode.object", "evm.deployedBytecode.object"]}},
}


@dataclass(frozen=True)
class CompiledContract:
    name: str
    abi: list[dict[str, Any]]
    bytecode: str


@dataclass(frozen=True)
class Build:
    """The compiled contracts of one source tree."""

    contracts: dict[str, CompiledContract]
    compiler_version: str
    source_hash: str

    def __getitem__(self, name: str) -> CompiledContract:
        try:
            return self.contracts[name]
        except KeyError:
            known = ", ".join(sorted(self.contracts))
            raise CompilationError(f"no contract named {name!r}; compiled: {known}") from None


def _sources() -> dict[str, str]:
    files = sorted(CONTRACTS_DIR.rglob("*.sol"))
    if not files:
        raise CompilationError(f"no Solidity sources under {CONTRACTS_DIR}")
    return {f.relative_to(PROJECT_ROOT).as_posix(): f.read_text() for f in files}


def _openzeppelin_version() -> str:
    package = NODE_MODULES / "@openzeppelin" / "contracts" / "package.json"
    if not package.exists():
        raise ToolchainError("node_modules/@openzeppelin/contracts is missing: run `npm ci` (scripts/setup.sh does)")
    return str(json.loads(package.read_text())["version"])


def source_hash(sources: dict[str, str] | None = None) -> str:
    """The hash that names a build: sources, OpenZeppelin version, compiler and settings."""
    digest = hashlib.sha256()
    for path, text in sorted((sources or _sources()).items()):
        digest.update(path.encode() + b"\0" + text.encode() + b"\0")
    digest.update(_openzeppelin_version().encode())
    digest.update(SOLC_VERSION.encode())
    digest.update(json.dumps(COMPILER_SETTINGS, sort_keys=True).encode())
    return "0x" + digest.hexdigest()


def _solc_binary() -> Path:
    if not (NODE_MODULES / "solc").exists():
        raise ToolchainError("npm's solc is not installed: run `npm ci` (scripts/setup.sh does)")
    if shutil.which("node") is None:
        raise ToolchainError("node is not on PATH: the compiler front end needs Node.js 20 or later")
    return SOLC_FRONT_END


def compile_contracts(*, use_cache: bool = True) -> Build:
    """Compile every contract under ``contracts/``, or load the cached build of this tree."""
    sources = _sources()
    key = source_hash(sources)
    cache_file = BUILD_DIR / f"contracts-{key[2:18]}.json"
    if use_cache and cache_file.exists():
        return _load(json.loads(cache_file.read_text()), key)

    standard_input = {
        "language": "Solidity",
        "sources": {path: {"content": text} for path, text in sources.items()},
        "settings": COMPILER_SETTINGS,
    }
    try:
        output = solcx.compile_standard(standard_input, solc_binary=_solc_binary(), allow_paths=[str(PROJECT_ROOT)])
    except solcx.exceptions.SolcError as exc:
        raise CompilationError(_error_messages(exc.stdout_data or "") or f"solc failed: {exc.message}") from None

    artifact: dict[str, Any] = {"compilerVersion": _compiler_version(), "contracts": {}}
    for path, by_name in output["contracts"].items():
        if not path.startswith("contracts/"):
            continue
        for name, item in by_name.items():
            bytecode = item["evm"]["bytecode"]["object"]
            artifact["contracts"][name] = {"abi": item["abi"], "bytecode": bytecode}
    BUILD_DIR.mkdir(parents=True, exist_ok=True)
    cache_file.write_text(json.dumps(artifact))
    return _load(artifact, key)


def _error_messages(stdout: str) -> str:
    try:
        errors = json.loads(stdout).get("errors", [])
    except (ValueError, AttributeError):
        return ""
    return "\n".join(e.get("formattedMessage", e["message"]) for e in errors if e.get("severity") == "error")


def _compiler_version() -> str:
    result = subprocess.run([str(_solc_binary()), "--version"], capture_output=True, text=True, check=True)
    return result.stdout.strip().splitlines()[-1].removeprefix("Version: ")


def _load(artifact: dict[str, Any], key: str) -> Build:
    contracts = {
        name: CompiledContract(name=name, abi=item["abi"], bytecode=item["bytecode"])
        for name, item in artifact["contracts"].items()
    }
    return Build(contracts=contracts, compiler_version=artifact["compilerVersion"], source_hash=key)
