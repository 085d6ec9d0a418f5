// verifyOnChain against the verifier contract deployed on a local anvil
// (the binary pinned in contracts/package.json; the contract compiled with
// contracts/tools/compile.js).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createPublicClient, createWalletClient, http } from 'viem';
import { verifyOnChain } from '../src/index.js';
import { devVkId, repoRoot, skipOrFail, vectorProof } from './helpers.mjs';

const ANVIL = repoRoot + 'contracts/node_modules/.bin/anvil';
const COMPILE = repoRoot + 'contracts/tools/compile.js';
const SOURCE = repoRoot + 'contracts/src/FabstirVerifier.sol';

/** Starts anvil on a free loopback port; resolves with its URL and process. */
function startAnvil() {
  return new Promise((resolve, reject) => {
    const child = spawn(ANVIL, ['--host', '127.0.0.1', '--port', '0'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    const timer = setTimeout(() => {
      child.kill();
      reject(new Error(`anvil did not start: ${out}`));
    }, 30_000);
    child.stdout.on('data', (d) => {
      out += d;
      const m = /Listening on (127\.0\.0\.1:\d+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve({ url: `http://${m[1]}`, child });
      }
    });
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
  });
}

test('verifyOnChain gives the contract\'s verdict through eth_call', { timeout: 180_000 }, async (t) => {
  if (!existsSync(ANVIL) || !existsSync(repoRoot + 'contracts/node_modules/solc')) {
    return skipOrFail(t, 'no EVM toolchain: run npm ci --prefix contracts');
  }
  const compiled = JSON.parse(execFileSync('node', [COMPILE, SOURCE, 'FabstirVerifier'], { maxBuffer: 64 << 20 }).toString());
  const { bytecode } = compiled.FabstirVerifier;
  const { url, child } = await startAnvil();
  try {
    const transport = http(url);
    const publicClient = createPublicClient({ transport });
    const [account] = await publicClient.request({ method: 'eth_accounts' });
    const wallet = createWalletClient({ transport, account });
    const chain = { id: await publicClient.getChainId(), name: 'anvil', nativeCurrency: { name: 'Ether', symbol: 'ETH', decimals: 18 }, rpcUrls: { default: { http: [url] } } };
    const hash = await wallet.deployContract({ abi: [], bytecode, chain });
    const receipt = await publicClient.waitForTransactionReceipt({ hash });
    const address = receipt.contractAddress;
    assert.ok(address);

    const { proof, result, hostId } = vectorProof();
    assert.deepEqual(await verifyOnChain(publicClient, address, proof, result, { hostId }), { valid: true });
    const raw = JSON.parse(proof);
    const p = raw.proof;
    const tampered = JSON.stringify({ ...raw, proof: '0x' + p.slice(130, 258) + p.slice(2, 130) + p.slice(258) });
    assert.equal((await verifyOnChain(publicClient, address, tampered, result, { hostId })).reason_code, 'invalid_proof');
    const other = { ...result, response: 'another response' };
    assert.equal((await verifyOnChain(publicClient, address, proof, other, { hostId })).reason_code, 'commitment_mismatch');
    const otherKey = JSON.stringify({ ...raw, vk_id: '0x' + '11'.repeat(32) });
    assert.equal((await verifyOnChain(publicClient, address, otherKey, result, { hostId })).reason_code, 'unknown_verifying_key');
    assert.equal(devVkId(), raw.vk_id);
  } finally {
    child.kill();
  }
});
