#!/usr/bin/env bash
# Sets everything up, then runs one market day on the embedded chain. Extra arguments go to
# `gridledger demo` (try --help).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/gridledger demo "$@"
