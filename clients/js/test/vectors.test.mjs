// Every vector of docs/test-vectors.json: Poseidon, host ids, statement encoding.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { poseidon, statementFromResult, InputError } from '../src/index.js';
import { vectors } from './helpers.mjs';

const hex = (x) => '0x' + x.toString(16).padStart(64, '0');
const v = vectors();

test('poseidon with one input matches every vector', () => {
  assert.ok(v.poseidon_1.length > 0);
  for (const { input, output } of v.poseidon_1) assert.equal(hex(poseidon([BigInt(input)])), output);
});

test('poseidon with eleven inputs matches every vector', () => {
  assert.ok(v.poseidon_11.length > 0);
  for (const { inputs, output } of v.poseidon_11) assert.equal(hex(poseidon(inputs.map(BigInt))), output);
});

for (const [list, version] of [['statements', 2], ['statements_v1', 1]]) {
  test(`${list}: every statement encodes exactly as in Rust (circuit version ${version})`, () => {
    assert.ok(v[list].length > 0);
    for (const s of v[list]) {
      assert.equal(hex(poseidon([BigInt(s.host_secret)])), s.host_id, 'host_id = Poseidon(sk)');
      // Version 1 binds no token count (its vectors give none).
      const result = version === 1 ? { tokens_used: 0, ...s.result } : s.result;
      const st = statementFromResult(result, s.host_id, { circuitVersion: version });
      assert.equal(st.inputHash, s.input_hash);
      assert.equal(st.outputHash, s.output_hash);
      assert.equal(st.modelHash, s.model_hash);
      assert.deepEqual(st.commitmentInputs.map(hex), s.commitment_inputs);
      assert.equal(hex(st.commitment), s.commitment);
      assert.deepEqual(st.instances.map(hex), s.instances);
      assert.deepEqual(st.instanceWords.map((w) => '0x' + Buffer.from(w).toString('hex')), s.instances);
    }
  });
}

test('the same result as JSON text gives the same statement', () => {
  const s = v.statements[0];
  const a = statementFromResult(JSON.stringify(s.result), s.host_id);
  assert.equal(hex(a.commitment), s.commitment);
});

test('any change of the result changes the commitment', () => {
  const s = v.statements[0];
  const base = hex(statementFromResult(s.result, s.host_id).commitment);
  for (const change of [{ prompt: s.result.prompt + ' ' }, { response: 'x' }, { tokens_used: s.result.tokens_used + 1 }, { chain_id: 1 }, { job_id: '7' }]) {
    assert.notEqual(hex(statementFromResult({ ...s.result, ...change }, s.host_id).commitment), base, JSON.stringify(change));
  }
});

test('malformed results are refused with errors naming the field', () => {
  const r = v.statements[0].result;
  const host = v.statements[0].host_id;
  const cases = [
    [{ ...r, extra: 1 }, 'extra'],
    [{ ...r, chain_id: -1 }, 'chain_id'],
    [{ ...r, chain_id: 2 ** 64 }, 'chain_id'],
    [{ ...r, tokens_used: 1.5 }, 'tokens_used'],
    [{ ...r, marketplace: '0x1234567890abcdef1234567890ABCDEF12345678' }, 'marketplace'],
    [{ ...r, marketplace: '0x12' }, 'marketplace'],
    [{ ...r, job_id: '0x' }, 'job_id'],
    [{ ...r, job_id: '1'.repeat(80) }, 'job_id'],
    [{ ...r, model: 'm' }, 'model'],
    [{ ...r, model_hash: undefined }, 'model'],
    [{ ...r, prompt: 5 }, 'prompt'],
  ];
  for (const [bad, field] of cases) {
    assert.throws(() => statementFromResult(bad, host), (e) => e instanceof InputError && e.field === field, field);
  }
  assert.throws(() => statementFromResult(r, '0x' + 'f'.repeat(64)), (e) => e instanceof InputError && e.field === 'hostId');
  assert.throws(() => statementFromResult('{"job_id": 1, "job_id": 2}', host), /duplicate key "job_id"/);
});

test('integers above 2^53 in JSON text stay exact', () => {
  const s = v.statements[0];
  const text = JSON.stringify({ ...s.result, tokens_used: 0 }).replace('"tokens_used":0', '"tokens_used":18446744073709551615');
  assert.equal(statementFromResult(text, s.host_id).tokens, 18446744073709551615n);
});
