#!/usr/bin/env bash
# Runs Slither on the contracts, offline, with the project's own compiler, and fails on any high or
# medium finding. Slither (through crytic-compile) gets a standard-JSON input with the same sources
# and settings as `gridledger compile` (viaIR, optimizer, evmVersion), and scripts/slither-solc.cjs (solc-js,
# ASTs only) as its `solc`: it answers `--version` and `--standard-json`, and resolves `@openzeppelin/...`
# imports from node_modules, so no compiler is downloaded. OpenZeppelin is left out of the report
# (--filter-paths node_modules); the mocks in contracts/test are not compiled. A false positive is
# suppressed in the Solidity source with `// slither-disable-next-line <detector>` and a comment
# saying why. Prints the findings (low and informational too) and their count by impact.
# Usage: bash scripts/slither.sh   (tests/contracts/test_static_analysis.py runs it in CI)
set -euo pipefail
cd "$(dirname "$0")/.."
out=.build/slither
mkdir -p "$out"
.venv/bin/python - "$out/input.json" <<'PY'
import json
import sys

from gridledger.chain.compile import COMPILER_SETTINGS, _sources

sources = {path: {"content": text} for path, text in _sources().items() if not path.startswith("contracts/test/")}
# The project's settings, but the output crytic-compile needs (ASTs, docs, source maps).
settings = {key: value for key, value in COMPILER_SETTINGS.items() if key != "outputSelection"}
settings["outputSelection"] = {
    "*": {"*": ["abi", "metadata", "devdoc", "userdoc", "evm.bytecode", "evm.deployedBytecode"], "": ["ast"]}
}
with open(sys.argv[1], "w") as f:
    json.dump({"language": "Solidity", "sources": sources, "settings": settings}, f)
PY
# crytic-compile 0.3 runs standard JSON through the `solc` on PATH (whatever --solc says): put ours first.
mkdir -p "$out/bin"
ln -sf "$PWD/scripts/slither-solc.cjs" "$out/bin/solc"
rm -f "$out/report.json"
status=0
PATH="$PWD/$out/bin:$PATH" .venv/bin/slither "$out/input.json" --compile-force-framework solc-json --solc "$PWD/scripts/slither-solc.cjs" \
  --filter-paths node_modules --exclude-dependencies --json "$out/report.json" 2>"$out/log.txt" || status=$?
if [ ! -s "$out/report.json" ]; then
  cat "$out/log.txt" >&2
  echo "slither: no report (exit status $status)" >&2
  exit 2
fi
.venv/bin/python - "$out/report.json" <<'PY'
import json
import sys
from collections import Counter

report = json.load(open(sys.argv[1]))
if not report.get("success"):
    sys.exit(f"slither failed: {report.get('error')}")
findings = report.get("results", {}).get("detectors", [])
impacts = ("High", "Medium", "Low", "Informational", "Optimization")
for impact in impacts:
    for f in findings:
        if f["impact"] == impact:
            print(f"[{impact}] {f['check']}: {f['description'].strip().splitlines()[0]}")
count = Counter(f["impact"] for f in findings)
print("slither: " + ", ".join(f"{count[i]} {i.lower()}" for i in impacts))
sys.exit(1 if count["High"] or count["Medium"] else 0)
PY
