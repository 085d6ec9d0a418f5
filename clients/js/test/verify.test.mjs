// Offline verification with the development key: valid, each refusal, and
// keys that are not the pinned one.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { verifyProof, verifyRaw, prepareVerifyingKey, KeyError, PROOF_LEN } from '../src/index.js';
import { hexToBytes } from '../src/field.js';
import { devKey, devVkId, readRepo, vectorProof } from './helpers.mjs';

const key = devKey();
const vkId = devVkId();
const { proof, result, hostId } = vectorProof();
const prepared = prepareVerifyingKey(key, { vkId });

test('the exported key has the pinned vk_id, recomputed from its contents', () => {
  assert.equal(prepared.vkId, vkId);
  assert.equal(JSON.parse(key).vk_id, vkId);
});

test('the EVM verifier\'s test vectors verify, and not with a public input at its bound', () => {
  // The JSON the forge test of contracts/src/FabstirVerifier.sol reads (written by
  // `fabstir-node evm verifier --test-out`): public inputs as uint256 words, proof bytes.
  const doc = JSON.parse(readRepo('contracts/test/vectors/FabstirVerifier.json'));
  assert.equal(doc.vk_id, vkId);
  assert.equal(doc.proof_length, PROOF_LEN);
  assert.ok(doc.vectors.length >= 2);
  for (const [i, { instances, proof }] of doc.vectors.entries()) {
    const words = instances.map(BigInt);
    const bytes = hexToBytes(proof);
    assert.equal(words.length, doc.num_instances);
    assert.equal(verifyRaw(prepared, words, bytes), true, `vector ${i}`);
    for (let j = 0; j < words.length; j++) {
      assert.equal(verifyRaw(prepared, words.with(j, BigInt(doc.bounds[j])), bytes), false, `vector ${i}: input ${j} at its bound`);
    }
  }
  const [a, b] = doc.vectors;
  assert.equal(verifyRaw(prepared, b.instances.map(BigInt), hexToBytes(a.proof)), false, 'another proof\'s public inputs');
});

test('the checked-in proof verifies, from the export and from a prepared key', () => {
  assert.deepEqual(verifyProof(key, proof, result, { hostId, vkId }), { valid: true });
  assert.deepEqual(verifyProof(prepared, proof, result, { hostId, vkId }), { valid: true });
});

test('a changed result, job, host or token count is refused with the node\'s reason', () => {
  const cases = [
    [{ ...result, response: result.response + '!' }, hostId, 'commitment_mismatch'],
    [{ ...result, prompt: 'another prompt' }, hostId, 'commitment_mismatch'],
    [{ ...result, job_id: '1235' }, hostId, 'wrong_job'],
    [{ ...result, chain_id: 1 }, hostId, 'wrong_chain'],
    [{ ...result, marketplace: '0x0000000000000000000000000000000000000001' }, hostId, 'wrong_marketplace'],
    [{ ...result, tokens_used: 1 }, hostId, 'wrong_tokens'],
    [result, '0x' + '0'.repeat(63) + '7', 'wrong_host'],
  ];
  for (const [r, h, reason] of cases) {
    const verdict = verifyProof(prepared, proof, r, { hostId: h, vkId });
    assert.equal(verdict.valid, false);
    assert.equal(verdict.reason_code, reason);
  }
});

test('a proof whose public inputs match but whose bytes are changed is invalid', () => {
  const raw = JSON.parse(proof);
  // Change one evaluation (keeping it canonical), then swap two commitments.
  const scalar = 12 * 64 * 2 + 2 + 62;
  const flipped = raw.proof.slice(0, scalar) + (raw.proof[scalar] === '0' ? '1' : '0') + raw.proof.slice(scalar + 1);
  const p = raw.proof.slice(2);
  const swapped = '0x' + p.slice(128, 256) + p.slice(0, 128) + p.slice(256);
  for (const bytes of [flipped, swapped]) {
    const verdict = verifyProof(prepared, JSON.stringify({ ...raw, proof: bytes }), result, { hostId, vkId });
    assert.equal(verdict.reason_code, 'invalid_proof');
  }
});

test('a proof naming another key, or malformed, is refused before any check', () => {
  const raw = JSON.parse(proof);
  const other = JSON.stringify({ ...raw, vk_id: '0x' + 'ab'.repeat(32) });
  assert.equal(verifyProof(prepared, other, result, { hostId, vkId }).reason_code, 'unknown_verifying_key');
  assert.equal(verifyProof(prepared, proof.slice(0, 100), result, { hostId, vkId }).reason_code, 'malformed_proof');
});

test('a key with another id than the pinned one is refused', () => {
  const wrong = '0x' + 'cd'.repeat(32);
  assert.throws(() => prepareVerifyingKey(key, { vkId: wrong }), (e) => e instanceof KeyError && e.code === 'vk_id_mismatch');
  assert.throws(() => verifyProof(prepared, proof, result, { hostId, vkId: wrong }), (e) => e instanceof KeyError && e.code === 'vk_id_mismatch');
  assert.throws(() => prepareVerifyingKey(key, {}), (e) => e instanceof KeyError && e.code === 'bad_vk_id');
});

test('an export whose vk_id field disagrees with its contents is refused', () => {
  const obj = JSON.parse(key);
  const lying = JSON.stringify({ ...obj, vk_id: '0x' + '00'.repeat(32) });
  assert.throws(() => prepareVerifyingKey(lying, { vkId }), (e) => e instanceof KeyError && e.code === 'malformed_key' && e.field === 'vk_id');
});

test('any change to what the verifier uses changes the id, so the key is refused', () => {
  const obj = JSON.parse(key);
  const constant = /Constant\(0x([0-9a-f]{64})\)/.exec(obj.pinned);
  assert.ok(constant, 'the pinned key has gate constants');
  const last = constant[1].at(-1) === '0' ? '1' : '0';
  const changes = {
    'a gate constant': { pinned: obj.pinned.replace(constant[0], `Constant(0x${constant[1].slice(0, 63)}${last})`) },
    'a rotation': { pinned: obj.pinned.replace('Rotation(-3)', 'Rotation(-2)') },
    'the vk bytes': { vk: obj.vk.slice(0, -1) + (obj.vk.at(-1) === '0' ? '1' : '0') },
    '[s]_2': { s_g2: obj.g2 },
    '[1]_1': { g1: [obj.g1[0], '0x' + (0x30644e72e131a029b85045b68181585d97816a916871ca8d3c208c16d87cfd47n - BigInt(obj.g1[1])).toString(16).padStart(64, '0')] },
    'the circuit version': { circuit_version: 1 },
  };
  for (const [what, change] of Object.entries(changes)) {
    assert.throws(() => prepareVerifyingKey(JSON.stringify({ ...obj, ...change }), { vkId }), KeyError, what);
  }
});
