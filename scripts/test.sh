#!/usr/bin/env bash
# Sets everything up, then runs the whole test suite: lint (ruff), types (mypy), and pytest,
# including the integration tests that start real Hardhat and anvil nodes.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
echo "== ruff"
.venv/bin/ruff check backend tests benchmarks
.venv/bin/ruff format --check backend tests benchmarks
echo "== import layers"
.venv/bin/lint-imports
echo "== mypy"
.venv/bin/mypy
echo "== pytest"
exec .venv/bin/python -m pytest "$@"
