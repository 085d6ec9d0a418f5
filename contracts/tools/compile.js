#!/usr/bin/env node
// Compiles one Solidity file with solcjs, with the settings of foundry.toml (optimizer,
// runs, evm_version), for tests that deploy contracts without forge (the Rust harness
// crates/fabstir-node/src/evm_local.rs calls it).
//
//   node contracts/tools/compile.js <file.sol> [ContractName...]
//
// Prints {"<Name>": {"bytecode": "0x…", "deployedBytecode": "0x…", "abi": [...]}} on
// stdout, for the named contracts (all contracts of the file when none is named).
// Imports are read relative to the file's directory. Errors go to stderr, exit code 1.
'use strict';
const fs = require('fs');
const path = require('path');
const solc = require('solc');

// Must match foundry.toml.
const SETTINGS = { optimizer: { enabled: true, runs: 200 }, evmVersion: 'osaka' };

function fail(message) {
  process.stderr.write(`compile.js: ${message}\n`);
  process.exit(1);
}

const [file, ...wanted] = process.argv.slice(2);
if (!file) fail('usage: compile.js <file.sol> [ContractName...]');
let source;
try {
  source = fs.readFileSync(file, 'utf8');
} catch (e) {
  fail(`${file}: ${e.message}`);
}
const dir = path.dirname(path.resolve(file));
const name = path.basename(file);

const input = {
  language: 'Solidity',
  sources: { [name]: { content: source } },
  settings: {
    ...SETTINGS,
    outputSelection: { [name]: { '*': ['abi', 'evm.bytecode.object', 'evm.deployedBytecode.object'] } },
  },
};
const findImports = (p) => {
  try {
    return { contents: fs.readFileSync(path.resolve(dir, p), 'utf8') };
  } catch (e) {
    return { error: `${p}: ${e.message}` };
  }
};
const output = JSON.parse(solc.compile(JSON.stringify(input), { import: findImports }));

const errors = (output.errors || []).filter((e) => e.severity === 'error');
for (const e of output.errors || []) {
  if (e.severity !== 'error') process.stderr.write(e.formattedMessage || e.message);
}
if (errors.length > 0) fail(`\n${errors.map((e) => e.formattedMessage || e.message).join('')}`);

const contracts = (output.contracts || {})[name] || {};
const names = wanted.length > 0 ? wanted : Object.keys(contracts);
const result = {};
for (const n of names) {
  const c = contracts[n];
  if (!c) fail(`${file}: no contract ${n} (found: ${Object.keys(contracts).join(', ') || 'none'})`);
  result[n] = {
    bytecode: `0x${c.evm.bytecode.object}`,
    deployedBytecode: `0x${c.evm.deployedBytecode.object}`,
    abi: c.abi,
  };
}
process.stdout.write(`${JSON.stringify(result)}\n`);
