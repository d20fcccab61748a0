// Hardhat 3: compiles contracts/ with the same solc-js build and settings as the Python
// backend (backend/gridledger/chain/compile.py), offline, and runs the devnet node.
// Hardhat 3 needs Node >= 22.13: scripts/hardhat.mjs runs it with the Node 22 that npm installs.
import { createRequire } from "node:module";
import { defineConfig } from "hardhat/config";

const require = createRequire(import.meta.url);
const solc = require("solc/package.json");

export default defineConfig({
  solidity: {
    version: solc.version,
    // The WebAssembly compiler from npm: nothing is downloaded.
    path: require.resolve("solc/soljson.js"),
    settings: {
      evmVersion: "cancun",
      viaIR: true,
      optimizer: { enabled: true, runs: 1000 },
    },
  },
  paths: {
    sources: "./contracts",
    artifacts: "./.build/hardhat/artifacts",
    cache: "./.build/hardhat/cache",
  },
  networks: {
    // The network `hardhat node` serves (Hardhat 3 names it "node"). Osaka, mainnet's fork since
    // December 2025: EIP-7825 caps a transaction, and EDR an eth_call too, at 16,777,216 gas, so
    // every batch the ledger sends is tried against the cap. Blocks may share a timestamp, so
    // that a feeder's hundreds of blocks a minute keep the node's clock on the wall clock.
    node: {
      type: "edr-simulated",
      chainType: "l1",
      hardfork: "osaka",
      allowBlocksWithSameTimestamp: true,
    },
  },
});
