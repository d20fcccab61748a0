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

# The browser dashboard (served by `gridledger serve` at /): esbuild bundles its script with the npm
# packages it imports (viem, uPlot) into build/, so the page loads nothing from elsewhere.
dash=backend/gridledger/dashboard
if [ ! -f "$dash/build/app.js" ] || [ -n "$(find "$dash/src" package-lock.json -newer "$dash/build/app.js" 2>/dev/null)" ]; then
  echo "setup: building the dashboard (esbuild)…"
  mkdir -p "$dash/build"
  node_modules/.bin/esbuild "$dash/src/app.js" --bundle --format=esm --minify --target=es2022 \
    --outfile="$dash/build/app.js" --log-level=warning
  cp "$dash/src/index.html" "$dash/src/app.css" "$dash/build/"
  cp node_modules/uplot/dist/uPlot.min.css "$dash/build/uplot.css"
fi
