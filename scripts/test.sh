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
# USEF's shapeshifter-uftp aggregator for the UFTP interop test (tests/backend/uftp/): its service
# needs FastAPI 0.135–0.139, so it gets its own venv; the test builds it too if this did not.
# Built here rather than in setup.sh: only the tests need it.
agr_venv=.build/uftp-agr-venv
agr_requirements="shapeshifter-uftp==2.4.0 fastapi==0.139.2"
if [ "$(cat "$agr_venv/.installed" 2>/dev/null)" != "$agr_requirements" ]; then
  echo "setup: building the UFTP aggregator's venv ($agr_requirements)…"
  python3 -m venv --clear "$agr_venv"
  # shellcheck disable=SC2086  # the requirements are separate words
  "$agr_venv/bin/python" -m pip install --quiet $agr_requirements
  printf '%s' "$agr_requirements" > "$agr_venv/.installed"
fi

echo "== pytest"
exec .venv/bin/python -m pytest "$@"
