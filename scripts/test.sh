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
if [ ! -x /usr/bin/chromium ]; then
  # The browser tests (tests/browser) drive Debian's Chromium: Playwright's own download is unreachable.
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "== installing Debian's chromium for the browser tests"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  else
    echo "test: /usr/bin/chromium is missing (install it: apt-get install chromium); tests/browser will fail" >&2
  fi
fi
echo "== pytest"
exec .venv/bin/python -m pytest "$@"
