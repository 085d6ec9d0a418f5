// Integers above 2^53 stay exact end to end, or are refused by name: the
// node writes chain ids and token counts (up to 2^64 - 1) as plain JSON
// integers, which JSON.parse rounds.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { InputError, parseProof, parseProofResponse, prepareVerifyingKey, verifyProof } from '../src/index.js';
import { JsonInt, parseStrictJson } from '../src/json.js';
import { corpusPath, devKey, devVkId, hasCorpus, skipOrFail, vectorProof } from './helpers.mjs';

const vkId = devVkId();
const key = prepareVerifyingKey(devKey(), { vkId });
const { proof, result, hostId } = vectorProof();
const inputError = (field) => (e) => e instanceof InputError && e.field === field && e.message.includes(field);

/** A body like the node's GET /v1/proofs/{job_id} for a proved job (the envelope's JSON text embedded). */
function proofResponse(envelopeText, host, tokens) {
  return `{"attempts":1,"created_at_ms":1795574355054,"host_id":"${host}","job_id":"0x2a","mock":false,
    "proof":${envelopeText},"proof_sha256":"0x${'11'.repeat(32)}","prove_ms":105.9,"state":"proved",
    "tokens_used":${tokens},"updated_at_ms":1795574355161}`;
}

test('chain_id and tokens_used may be a BigInt, a decimal string or a safe integer', () => {
  assert.equal(typeof result.tokens_used, 'number');
  for (const tokens of [result.tokens_used, BigInt(result.tokens_used), String(result.tokens_used)]) {
    for (const chain of [result.chain_id, BigInt(result.chain_id), String(result.chain_id)]) {
      assert.deepEqual(verifyProof(key, proof, { ...result, tokens_used: tokens, chain_id: chain }, { hostId, vkId }), { valid: true });
    }
  }
  // Other values are still checked as values.
  assert.equal(verifyProof(key, proof, { ...result, tokens_used: `${result.tokens_used + 1}` }, { hostId, vkId }).reason_code, 'wrong_tokens');
  for (const bad of ['12a', '-1', ' 12', '1e3', '0x10', '']) {
    assert.throws(() => verifyProof(key, proof, { ...result, tokens_used: bad }, { hostId, vkId }), inputError('tokens_used'), bad);
  }
  assert.throws(() => verifyProof(key, proof, { ...result, tokens_used: `${1n << 64n}` }, { hostId, vkId }), inputError('tokens_used'));
  assert.throws(() => verifyProof(key, proof, { ...result, tokens_used: 12.5 }, { hostId, vkId }), inputError('tokens_used'));
});

test('a JavaScript number above 2^53 - 1 in a result is refused by name, never rounded', () => {
  // 2^63 - 1 as a number is 2^63: any such number may already be wrong.
  for (const [field, value] of [
    ['tokens_used', 2 ** 63 - 1],
    ['tokens_used', Number.MAX_SAFE_INTEGER + 1],
    ['chain_id', 2 ** 60],
    ['job_id', 2 ** 60],
  ]) {
    assert.throws(() => verifyProof(key, proof, { ...result, [field]: value }, { hostId, vkId }), (e) => inputError(field)(e) && /2\^53 - 1/.test(e.message), field);
  }
  // The largest safe integer is a value like any other.
  assert.equal(verifyProof(key, proof, { ...result, tokens_used: Number.MAX_SAFE_INTEGER }, { hostId, vkId }).reason_code, 'wrong_tokens');
});

test('in a result given as JSON text, integers are exact JSON numbers, as for the node', () => {
  const text = JSON.stringify(result);
  assert.deepEqual(verifyProof(key, proof, text, { hostId, vkId }), { valid: true });
  const quoted = text.replace(`"tokens_used":${result.tokens_used}`, `"tokens_used":"${result.tokens_used}"`);
  assert.notEqual(quoted, text);
  assert.throws(() => verifyProof(key, proof, quoted, { hostId, vkId }), inputError('tokens_used'));
});

test('a proof object with a number above 2^53 - 1 (from JSON.parse) throws InputError, not a verdict', () => {
  for (const [path, set] of [
    ['proof.instance.tokens', (p) => (p.instance.tokens = 2 ** 63)],
    ['proof.instance.chain_id', (p) => (p.instance.chain_id = 2 ** 64)],
    ['proof.format', (p) => (p.format = 2 ** 60)],
  ]) {
    const raw = JSON.parse(proof);
    set(raw);
    assert.throws(() => verifyProof(key, raw, result, { hostId, vkId }), (e) => inputError(path)(e) && e.message.includes('parseProofResponse'), path);
    assert.throws(() => parseProof(raw), inputError(path), path);
  }
  // Safe numbers in a parsed object are fine, and BigInts too.
  const raw = JSON.parse(proof);
  assert.deepEqual(verifyProof(key, raw, result, { hostId, vkId }), { valid: true });
  const big = { ...raw, format: 1n, circuit: 2n, instance: { ...raw.instance, chain_id: BigInt(raw.instance.chain_id), tokens: BigInt(raw.instance.tokens) } };
  assert.deepEqual(verifyProof(key, big, result, { hostId, vkId }), { valid: true });
});

test('parseProofResponse reads the node\'s proof response with every integer a BigInt', () => {
  const doc = parseProofResponse(proofResponse(proof, hostId, result.tokens_used));
  assert.equal(doc.state, 'proved');
  assert.equal(doc.host_id, hostId);
  assert.equal(doc.tokens_used, BigInt(result.tokens_used));
  assert.equal(doc.attempts, 1n);
  assert.equal(doc.created_at_ms, 1795574355054n);
  assert.equal(doc.prove_ms, 105.9);
  assert.equal(doc.proof.format, 1n);
  assert.equal(doc.proof.instance.tokens, BigInt(result.tokens_used));
  assert.equal(Object.getPrototypeOf(doc.proof), Object.prototype);
  assert.deepEqual(verifyProof(key, doc.proof, result, { hostId: doc.host_id, vkId }), { valid: true });
  // The same from bytes.
  const bytes = new TextEncoder().encode(proofResponse(proof, hostId, result.tokens_used));
  assert.deepEqual(parseProofResponse(bytes), doc);
  // A job not yet proved has no proof.
  const queued = parseProofResponse(`{"job_id":"0x2a","state":"queued","attempts":0,"host_id":"${hostId}","tokens_used":12,"created_at_ms":1,"updated_at_ms":1}`);
  assert.equal(queued.state, 'queued');
  assert.equal(queued.proof, undefined);
});

test('parseProofResponse refuses what is not a proof response, naming why', () => {
  const cases = [
    ['{"error": {"code": "unknown_job", "message": "no result for job 42"}}', 'proofResponse.error', /unknown_job: no result for job 42/],
    ['not json', 'proofResponse', /not valid JSON/],
    ['{"state": "proved", "state": "queued"}', 'proofResponse', /duplicate key "state"/],
    ['[1, 2]', 'proofResponse', /JSON object/],
    ['{"job_id": "0x2a", "host_id": "0x01", "tokens_used": 1}', 'proofResponse.state', /state/],
    [`{"job_id": "0x2a", "state": "proved", "host_id": "${hostId}", "tokens_used": "12"}`, 'proofResponse.tokens_used', /tokens_used/],
  ];
  for (const [text, field, message] of cases) {
    assert.throws(() => parseProofResponse(text), (e) => e instanceof InputError && e.field === field && message.test(e.message), text);
  }
  // A parsed object is refused: its integers may already be rounded.
  assert.throws(() => parseProofResponse({ state: 'proved' }), (e) => e instanceof InputError && /text\(\)/.test(e.message));
});

test('proofs of counts and chain ids above 2^53 made by the node verify from the response text, and not after JSON.parse', (t) => {
  if (!hasCorpus()) {
    return skipOrFail(t, `no corpus at ${corpusPath()}: run cargo test -p fabstir-node --test it -- js_client:: first`);
  }
  const corpus = parseStrictJson(readFileSync(corpusPath(), 'utf8'));
  const corpusKey = prepareVerifyingKey(corpus.key, { vkId: corpus.vk_id });
  const big = corpus.cases.filter(
    (c) => c.name === 'valid' && c.proof.form === 'json' && c.result.tokens_used.toBigInt() > BigInt(Number.MAX_SAFE_INTEGER),
  );
  assert.ok(big.length >= 10, `only ${big.length} valid proofs of more than 2^53 tokens in the corpus`);
  let unsafeChains = 0;
  for (const c of big) {
    const tokens = c.result.tokens_used.toBigInt();
    const text = proofResponse(c.proof.data, c.host_id, tokens);
    const doc = parseProofResponse(text);
    assert.equal(doc.tokens_used, tokens);
    // The caller's result with the integers as BigInts, and as decimal strings.
    const exact = Object.fromEntries(Object.entries(c.result).map(([k, v]) => [k, v instanceof JsonInt ? v.toBigInt() : v]));
    const strings = Object.fromEntries(Object.entries(exact).map(([k, v]) => [k, typeof v === 'bigint' ? String(v) : v]));
    assert.deepEqual(verifyProof(corpusKey, doc.proof, exact, { hostId: doc.host_id, vkId: corpus.vk_id }), { valid: true }, c.name);
    assert.deepEqual(verifyProof(corpusKey, doc.proof, strings, { hostId: doc.host_id, vkId: corpus.vk_id }), { valid: true }, c.name);
    // JSON.parse rounds: refused by name, never a wrong verdict.
    const rounded = JSON.parse(text);
    assert.ok(!Number.isSafeInteger(rounded.tokens_used));
    const unsafeChain = exact.chain_id > BigInt(Number.MAX_SAFE_INTEGER);
    if (unsafeChain) unsafeChains++;
    // The first rounded integer is named (chain_id comes before tokens).
    const field = unsafeChain ? 'proof.instance.chain_id' : 'proof.instance.tokens';
    assert.throws(() => verifyProof(corpusKey, rounded.proof, exact, { hostId: rounded.host_id, vkId: corpus.vk_id }), inputError(field));
  }
  t.diagnostic(`${big.length} proofs of more than 2^53 tokens (${unsafeChains} also with chain ids above 2^53)`);
});
