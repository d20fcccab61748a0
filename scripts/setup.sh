#!/usr/bin/env bash
# Installs everything GridLedger needs from PyPI and npm, and nothing from anywhere else:
# the Node side (solc-js, OpenZeppelin, Hardhat 3 with its Node 22, anvil) from package-lock.json,
# and the Python side into .venv from requirements.lock. Safe to run again: it skips what is current.
set -euo pipefail
cd "$(dirname "$0")/.."

for tool in python3 node npm; do
  command -v "$tool" >/dev/null || { echo "setup: $tool is missing (need Python 3.11+, Node 20+, npm)" >&2; exit 1; }
done

if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "setup: installing the Node side (npm ci)…"
  npm ci --no-audit --no-fund --loglevel=error
fi

stamp=.venv/.gridledger-installed
if [ ! -x .venv/bin/python ]; then
  echo "setup: creating .venv…"
  python3 -m venv .venv
fi
if [ ! -f "$stamp" ] || [ requirements.lock -nt "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  echo "setup: installing the Python side (pip)…"
  .venv/bin/python -m pip install --quiet --upgrade pip
  .venv/bin/python -m pip install --quiet -r requirements.lock
  .venv/bin/python -m pip install --quiet --no-deps -e .
  touch "$stamp"
fi

# Compile once here so that the first command does not pay for it (cached by source hash).
.venv/bin/gridledger compile >/dev/null

# USEF's shapeshifter-uftp aggregator for the UFTP interop test (tests/backend/uftp/): its service
# needs FastAPI 0.135–0.139, so it gets its own venv; the test builds it too if this did not.
agr_venv=.build/uftp-agr-venv
agr_requirements="shapeshifter-uftp==2.4.0 fastapi==0.139.2"
if [ "$(cat "$agr_venv/.installed" 2>/dev/null)" != "$agr_requirements" ]; then
  echo "setup: building the UFTP aggregator's venv ($agr_requirements)…"
  python3 -m venv --clear "$agr_venv"
  # shellcheck disable=SC2086  # the requirements are separate words
  "$agr_venv/bin/python" -m pip install --quiet $agr_requirements
  printf '%s' "$agr_requirements" > "$agr_venv/.installed"
fi
