// The package's ABIs (src/abi.js) are what scripts/abi.mjs generates from
// the interface files, and the contracts have exactly their interfaces'
// functions, events and errors.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { ABI_FILE, compileAbis, contractsDir, generate, loadSolc } from '../scripts/abi.mjs';
import { MARKETPLACE_ABI, VERIFIER_ABI } from '../src/index.js';
import { skipOrFail } from './helpers.mjs';

const hasSolc = () => existsSync(`${contractsDir}/node_modules/solc`);

/** An ABI without its constructor, in a canonical order. */
const surface = (abi) =>
  abi
    .filter((e) => e.type !== 'constructor')
    .map((e) => JSON.stringify(e))
    .sort();

test('src/abi.js is generated from the interface files', { timeout: 120_000 }, (t) => {
  if (!hasSolc()) return skipOrFail(t, 'no solcjs: run npm ci --prefix contracts');
  assert.equal(readFileSync(ABI_FILE, 'utf8'), generate(), 'src/abi.js is stale: run node scripts/abi.mjs');
  assert.ok(VERIFIER_ABI.some((e) => e.type === 'function' && e.name === 'verify'));
  assert.ok(MARKETPLACE_ABI.some((e) => e.type === 'function' && e.name === 'submitVerifiedProof'));
});

test('the contracts have exactly their interfaces\' ABI', { timeout: 300_000 }, (t) => {
  if (!hasSolc()) return skipOrFail(t, 'no solcjs: run npm ci --prefix contracts');
  const solc = loadSolc();
  for (const [file, contract, abi] of [
    ['FabstirVerifier.sol', 'FabstirVerifier', VERIFIER_ABI],
    ['FabstirMarketplace.sol', 'FabstirMarketplace', MARKETPLACE_ABI],
  ]) {
    const [compiled] = compileAbis(solc, file, [contract]);
    assert.deepEqual(surface(compiled), surface(abi), `${contract}'s external surface differs from its interface's`);
  }
});
