"""Where the project's files are. The package is installed in editable mode from the
repository, so the contracts and the Node toolchain sit beside it."""

from __future__ import annotations

import os
from pathlib import Path

PROJECT_ROOT = Path(os.environ.get("GRIDLEDGER_ROOT", Path(__file__).resolve().parents[2]))
CONTRACTS_DIR = PROJECT_ROOT / "contracts"
NODE_MODULES = PROJECT_ROOT / "node_modules"
BUILD_DIR = PROJECT_ROOT / ".build"
DEPLOYMENTS_DIR = Path(os.environ.get("GRIDLEDGER_DEPLOYMENTS_DIR", PROJECT_ROOT / "deployments"))
