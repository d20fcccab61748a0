#!/usr/bin/env node
// The `solc` Slither runs (scripts/slither.sh puts it first on PATH as `solc`): scripts/solc.cjs,
// but asking the compiler for the ASTs, ABIs and docs only. Slither's detectors work on the AST;
// crytic-compile still reads `evm.bytecode` and `evm.deployedBytecode`, so they are filled in
// empty. Code generation (viaIR with the optimizer) is most of a compile's time: leaving it out
// keeps the CI run well under a minute. The project's own builds still go through solc.cjs.
"use strict";
const { spawnSync } = require("child_process");
const fs = require("fs");
const path = require("path");

const frontEnd = path.join(__dirname, "solc.cjs");
const args = process.argv.slice(2);
if (!args.includes("--standard-json")) {
  const result = spawnSync(process.execPath, [frontEnd, ...args], { stdio: "inherit" });
  process.exit(result.status ?? 1);
}

const input = JSON.parse(fs.readFileSync(0, "utf8"));
input.settings = input.settings || {};
input.settings.outputSelection = { "*": { "*": ["abi", "metadata", "devdoc", "userdoc"], "": ["ast"] } };
const result = spawnSync(process.execPath, [frontEnd, "--standard-json"], {
  input: JSON.stringify(input),
  maxBuffer: 1 << 30,
  encoding: "utf8",
});
if (result.status !== 0) {
  process.stderr.write(result.stderr || "");
  process.exit(result.status ?? 1);
}
const output = JSON.parse(result.stdout);
const empty = { object: "", sourceMap: "" };
for (const byName of Object.values(output.contracts || {})) {
  for (const contract of Object.values(byName)) {
    contract.evm = { bytecode: empty, deployedBytecode: empty };
  }
}
process.stdout.write(JSON.stringify(output));
