// The differential test: the corpus of proofs the node made and mutated,
// each with the Rust verifier's verdict (crates/fabstir-node/tests/it/js_client.rs
// writes it); the JavaScript verifier must reach the same verdict on every case.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { verifyProof, prepareVerifyingKey, KeyError } from '../src/index.js';
import { parseStrictJson } from '../src/json.js';
import { corpusPath, hasCorpus, skipOrFail } from './helpers.mjs';

test('the JavaScript verifier agrees with Rust on every corpus case', (t) => {
  if (!hasCorpus()) {
    return skipOrFail(t, `no corpus at ${corpusPath()}: run cargo test -p fabstir-node --test it -- js_client:: first`);
  }
  // Integers stay exact (chain ids and token counts up to 2^64 - 1).
  const corpus = parseStrictJson(readFileSync(corpusPath(), 'utf8'));
  assert.ok(corpus.cases.length >= 200, `only ${corpus.cases.length} cases`);
  const key = prepareVerifyingKey(corpus.key, { vkId: corpus.vk_id });
  const disagreements = [];
  const seen = {};
  for (const [i, c] of corpus.cases.entries()) {
    const proof = c.proof.form === 'json' ? c.proof.data : new Uint8Array(Buffer.from(c.proof.data.slice(2), 'hex'));
    const verdict = verifyProof(key, proof, c.result, { hostId: c.host_id, vkId: corpus.vk_id });
    const js = verdict.valid ? 'valid' : verdict.reason_code;
    seen[js] = (seen[js] ?? 0) + 1;
    if (js !== c.rust) disagreements.push(`case ${i} (${c.name}): rust ${c.rust}, js ${js} (${verdict.reason ?? ''})`);
  }
  assert.deepEqual(disagreements, []);
  assert.deepEqual(seen, Object.fromEntries(Object.entries(corpus.verdicts).map(([k, v]) => [k, Number(v.text)])));
  t.diagnostic(`${corpus.cases.length} cases agree: ${JSON.stringify(seen)}`);
});

test('another key set\'s export is refused under the pinned id, and accepted under its own', (t) => {
  if (!hasCorpus()) return skipOrFail(t, `no corpus at ${corpusPath()}`);
  const corpus = JSON.parse(readFileSync(corpusPath(), 'utf8'));
  assert.notEqual(corpus.other_vk_id, corpus.vk_id);
  assert.throws(() => prepareVerifyingKey(corpus.other_key, { vkId: corpus.vk_id }), (e) => e instanceof KeyError && e.code === 'vk_id_mismatch');
  assert.equal(prepareVerifyingKey(corpus.other_key, { vkId: corpus.other_vk_id }).vkId, corpus.other_vk_id);
});
