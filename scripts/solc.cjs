#!/usr/bin/env node
// A `solc`-compatible front end for solc-js (npm `solc`), so that py-solc-x and
// other tools that expect a native compiler can drive the WebAssembly build
// offline. It answers `--version` and `--standard-json` (JSON on stdin, JSON on
// stdout, nothing else), and resolves imports from the project's node_modules.
"use strict";
const fs = require("fs");
const path = require("path");

const root = path.resolve(__dirname, "..");
const solc = require(path.join(root, "node_modules", "solc"));

function findImport(importPath) {
  const candidates = [
    path.join(root, importPath),
    path.join(root, "node_modules", importPath),
  ];
  for (const candidate of candidates) {
    if (fs.existsSync(candidate)) {
      return { contents: fs.readFileSync(candidate, "utf8") };
    }
  }
  return { error: `File not found: ${importPath} (looked in the project and node_modules)` };
}

const args = process.argv.slice(2);
if (args.includes("--version")) {
  process.stdout.write(`solc, the solidity compiler commandline interface\nVersion: ${solc.version()}\n`);
} else if (args.includes("--standard-json")) {
  const input = fs.readFileSync(0, "utf8");
  process.stdout.write(solc.compile(input, { import: findImport }));
} else {
  process.stderr.write("usage: solc.cjs --version | --standard-json < input.json\n");
  process.exit(2);
}
