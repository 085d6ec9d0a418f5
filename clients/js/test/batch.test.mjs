// The batch differential test: the corpus of batch proofs the Rust tests made
// and mutated (crates/fabstir-node/tests/it/batch_check.rs writes it, with the
// verdicts of Rust and of the generated Solidity batch verifier on anvil,
// which agree); the JavaScript verifier must reach the same verdicts, for the
// batch as given and for the client's own entry. Also: the FZK-BP1 parser's
// bounds, and a batch taken from submitVerifiedBatch calldata.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import {
  prepareVerifyingKey,
  parseBatch,
  batchFromCalldata,
  batchToBytes,
  verifyBatch,
  checkBatchEntry,
  EnvelopeError,
  SUBMIT_VERIFIED_BATCH_SELECTOR,
} from '../src/index.js';
import { parseStrictJson } from '../src/json.js';
import { bigToBe, bytesToHex, concat, hexToBytes } from '../src/field.js';
import { repoRoot, skipOrFail } from './helpers.mjs';

const batchCorpusPath = () => process.env.FABSTIR_JS_BATCH_CORPUS || repoRoot + 'target/js-client/batch-corpus.json';

let loaded;
/** The corpus with its prepared keys by size, read once. */
function corpus(t) {
  if (!existsSync(batchCorpusPath())) {
    skipOrFail(t, `no batch corpus at ${batchCorpusPath()}: run cargo test -p fabstir-node --test it -- batch_check:: first`);
    return null;
  }
  if (!loaded) {
    const c = parseStrictJson(readFileSync(batchCorpusPath(), 'utf8'));
    const keys = new Map(c.keys.map((k) => [Number(k.entries.text ?? k.entries), { key: prepareVerifyingKey(k.key, { vkId: k.vk_id }), vkId: k.vk_id }]));
    loaded = { ...c, keysBySize: keys };
  }
  return loaded;
}

const tokensOf = (c) => BigInt(c.tokens.text ?? c.tokens);

/** The JavaScript verdicts of a case: the batch as given, and the client's entry. */
function jsVerdicts(c, keys) {
  let size = 0;
  try {
    size = parseBatch(c.batch).size;
  } catch {
    // Refused below with its code.
  }
  const k = keys.get(size) ?? keys.values().next().value;
  const whole = verifyBatch(k.key, c.batch, { vkId: k.vkId });
  const entry = checkBatchEntry(k.key, c.batch, c.result, { hostId: c.host_id, tokens: tokensOf(c), vkId: k.vkId });
  // A size without a key: the verifier of another size refuses it as unsupported.
  return [whole.valid ? 'valid' : whole.reason_code, entry.valid ? 'valid' : entry.reason_code, entry];
}

test('JavaScript agrees with Rust and the EVM on every batch corpus case', (t) => {
  const c = corpus(t);
  if (!c) return;
  assert.ok(c.cases.length >= 200, `only ${c.cases.length} cases`);
  const started = performance.now();
  const disagreements = [];
  const seen = {};
  for (const [i, k] of c.cases.entries()) {
    const [whole, entry] = jsVerdicts(k, c.keysBySize);
    seen[`entry ${entry}`] = (seen[`entry ${entry}`] ?? 0) + 1;
    seen[`proof ${whole}`] = (seen[`proof ${whole}`] ?? 0) + 1;
    if (whole !== k.proof || entry !== k.entry) {
      disagreements.push(`case ${i} (${k.name}, ${k.entries} entries): rust ${k.proof}/${k.entry}, js ${whole}/${entry}`);
    }
    // The EVM's verdicts are in the corpus: Rust agreed with them when it was written.
    assert.equal(k.evm.proof, k.proof === 'valid', `case ${i}: corpus EVM verdict`);
    assert.equal(k.evm.entry, k.entry === 'valid', `case ${i}: corpus EVM verdict`);
  }
  assert.deepEqual(disagreements, []);
  assert.deepEqual(seen, Object.fromEntries(Object.entries(c.verdicts).map(([k, v]) => [k, Number(v.text)])));
  t.diagnostic(`${c.cases.length} batch cases agree in ${((performance.now() - started) / 1000).toFixed(1)} s: ${JSON.stringify(seen)}`);
});

test('a client checks its entry of a deployed-size batch, and the time it takes', (t) => {
  const c = corpus(t);
  if (!c) return;
  const valid = c.cases.find((k) => Number(k.entries.text ?? k.entries) === 16 && k.entry === 'valid');
  assert.ok(valid, 'the corpus has a valid batch of 16');
  const k = c.keysBySize.get(16);
  const started = performance.now();
  const runs = 5;
  let verdict;
  for (let i = 0; i < runs; i++) verdict = checkBatchEntry(k.key, valid.batch, valid.result, { hostId: valid.host_id, tokens: tokensOf(valid), vkId: k.vkId });
  const ms = (performance.now() - started) / runs;
  assert.equal(verdict.valid, true, verdict.reason);
  assert.equal(verdict.batchSize, 16);
  t.diagnostic(`checkBatchEntry of a batch of 16: ${ms.toFixed(1)} ms`);
});

/** The ABI calldata of submitVerifiedBatch for a parsed batch. */
function calldataOf(batch) {
  const word = (x) => bigToBe(BigInt(x));
  const n = batch.entries.length;
  const entries = concat(word(n), ...batch.entries.flatMap((e) => [word(e.jobId), word(e.tokens), word(e.commitment)]));
  const padded = new Uint8Array(Math.ceil(batch.proof.length / 32) * 32);
  padded.set(batch.proof);
  return concat(hexToBytes(SUBMIT_VERIFIED_BATCH_SELECTOR), word(64), word(64 + entries.length), entries, word(batch.proof.length), padded);
}

test('a batch taken from submitVerifiedBatch calldata checks like the node\'s form', (t) => {
  const c = corpus(t);
  if (!c) return;
  const valid = c.cases.find((k) => k.entry === 'valid' && Number(k.entries.text ?? k.entries) === 4);
  const k = c.keysBySize.get(4);
  const batch = parseBatch(valid.batch);
  const data = bytesToHex(calldataOf(batch));
  const chain = { chainId: batch.chainId, marketplace: batch.marketplace, hostId: batch.hostId, vkId: k.vkId };
  const fromTx = batchFromCalldata(data, chain);
  assert.deepEqual(fromTx, batch);
  const opts = { hostId: valid.host_id, tokens: tokensOf(valid), vkId: k.vkId };
  assert.equal(checkBatchEntry(k.key, fromTx, valid.result, opts).valid, true);
  // The chain's values are the client's: another host id for the sender refuses the batch.
  const other = batchFromCalldata(data, { ...chain, hostId: 5n });
  assert.equal(checkBatchEntry(k.key, other, valid.result, opts).reason_code, 'wrong_host');
  // A commitment changed in the calldata: the client's own entry is refused...
  const mine = checkBatchEntry(k.key, fromTx, valid.result, opts).entry;
  const forged = structuredClone(batch);
  forged.entries[mine].commitment ^= 1n;
  assert.equal(checkBatchEntry(k.key, batchFromCalldata(bytesToHex(calldataOf(forged)), chain), valid.result, opts).reason_code, 'commitment_mismatch');
  // ... and another entry's change makes the proof fail.
  const moved = structuredClone(batch);
  moved.entries.reverse();
  const verdict = checkBatchEntry(k.key, batchFromCalldata(bytesToHex(calldataOf(moved)), chain), valid.result, opts);
  assert.equal(verdict.valid, false);
  // Malformed calldata is refused with a typed error.
  for (const bad of ['0x12345678', data.slice(0, data.length - 64), '0x' + 'ab'.repeat(3)]) {
    assert.throws(() => batchFromCalldata(bad, chain), EnvelopeError, bad.slice(0, 20));
  }
  assert.throws(() => batchFromCalldata(data, { ...chain, vkId: 'x' }), EnvelopeError);
  // Without a vkId (calldata names none) the batch is checked under the key the caller trusts.
  const unlabelled = batchFromCalldata(data, { ...chain, vkId: undefined });
  assert.equal(unlabelled.vkId, null);
  assert.equal(checkBatchEntry(k.key, unlabelled, valid.result, opts).valid, true);
  // ... and a key of another size refuses it.
  const k2 = c.keysBySize.get(2);
  assert.equal(checkBatchEntry(k2.key, unlabelled, valid.result, { ...opts, vkId: k2.vkId }).reason_code, 'unsupported_batch_size');
});

test('the FZK-BP1 parser is bounded and exact', (t) => {
  const c = corpus(t);
  if (!c) return;
  const bytes = hexToBytes(c.cases.find((k) => k.entry === 'valid').batch);
  const batch = parseBatch(bytes);
  assert.deepEqual(batchToBytes(batch), bytes);
  assert.deepEqual(parseBatch(` ${bytesToHex(bytes)}\n`), batch);
  const code = (b) => {
    try {
      parseBatch(b);
      return 'accepted';
    } catch (e) {
      assert.ok(e instanceof EnvelopeError, String(e));
      return e.code;
    }
  };
  for (let len = 0; len < bytes.length; len += 7) assert.notEqual(code(bytes.subarray(0, len)), 'accepted', `truncated to ${len}`);
  assert.equal(code(concat(bytes, Uint8Array.of(0))), 'length');
  const flip = (at, value) => {
    const b = Uint8Array.from(bytes);
    b[at] = value;
    return b;
  };
  assert.equal(code(flip(0, 0)), 'bad_magic');
  assert.equal(code(flip(8, 2)), 'unsupported_version');
  assert.equal(code(flip(42, 0)), 'unsupported_batch_size');
  const big = Uint8Array.from(bytes);
  big.fill(0xff, 71, 103);
  assert.equal(code(big), 'non_canonical');
  const long = Uint8Array.from(bytes);
  new DataView(long.buffer).setUint32(103 + 72 * batch.size, 0xffffffff);
  assert.equal(code(long), 'too_large');
  assert.equal(code('0x' + '00'.repeat(60000)), 'too_large');
  assert.equal(code('0xzz'), 'batch_hex');
  assert.equal(code(bytesToHex(bytes).slice(2)), 'batch_hex');
});
