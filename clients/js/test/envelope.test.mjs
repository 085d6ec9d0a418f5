// The envelope parser: as strict as the node's (crates/fabstir-zk/src/envelope.rs).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseProof, EnvelopeError, PROOF_LEN } from '../src/index.js';
import { vectorProof, vectors } from './helpers.mjs';

const R = 0x30644e72e131a029b85045b68181585d2833e84879b9709143e1f593f0000001n;
const { proof: proofJson } = vectorProof();
const raw = JSON.parse(proofJson);
const proofBytes = Buffer.from(raw.proof.slice(2), 'hex');
const instances = vectors().statements[0].instances.map((h) => Buffer.from(h.slice(2), 'hex'));

/** The binary form (test-only encoder, following the documented layout). */
function binary({ magic = 'FZKP', format = 1, circuit = 2, flags = 0, words = instances, declared = PROOF_LEN, body = proofBytes } = {}) {
  const len = Buffer.alloc(4);
  len.writeUInt32BE(declared);
  return new Uint8Array(Buffer.concat([Buffer.from(magic), Buffer.from([format, circuit, flags, 0]), Buffer.from(raw.vk_id.slice(2), 'hex'), ...words, len, body]));
}

const code = (c) => (e) => e instanceof EnvelopeError && e.code === c;

test('the checked-in proof parses in JSON and binary form to the same envelope', () => {
  const a = parseProof(proofJson);
  const b = parseProof(binary());
  const c = parseProof(new TextEncoder().encode(proofJson));
  assert.equal(a.proof.length, PROOF_LEN);
  assert.equal(a.vkId, raw.vk_id);
  assert.deepEqual(a, b);
  assert.deepEqual(a, c);
  assert.equal(a.instance.tokens, BigInt(raw.instance.tokens));
  assert.equal(a.instance.marketplace, raw.instance.marketplace);
});

test('binary envelopes are refused for every kind of damage', () => {
  const full = binary();
  assert.throws(() => parseProof(new Uint8Array()), code('empty'));
  assert.throws(() => parseProof(new Uint8Array(64 * 1024 + 1).fill(0x46)), code('too_large'));
  assert.throws(() => parseProof(binary({ magic: 'FZKQ' })), code('bad_magic'));
  assert.throws(() => parseProof(full.subarray(0, 3)), code('truncated'));
  assert.throws(() => parseProof(binary({ format: 2 })), code('unsupported_version'));
  assert.throws(() => parseProof(binary({ circuit: 3 })), code('unsupported_circuit'));
  assert.throws(() => parseProof(binary({ flags: 1 })), code('reserved_flags'));
  assert.throws(() => parseProof(binary({ declared: PROOF_LEN + 1 })), code('proof_length'));
  for (const cut of [10, 300, full.length - 1]) assert.throws(() => parseProof(full.subarray(0, cut)), code('truncated'), `cut ${cut}`);
  assert.throws(() => parseProof(binary({ body: Buffer.concat([proofBytes, Buffer.from([0])]) })), code('trailing_bytes'));
  // Public inputs: canonical and in range.
  const big = Buffer.from(R.toString(16).padStart(64, '0'), 'hex');
  assert.throws(() => parseProof(binary({ words: [big, ...instances.slice(1)] })), code('instance'));
  const wide = Buffer.alloc(32);
  wide[23] = 1; // chain_id = 2^64
  assert.throws(() => parseProof(binary({ words: [wide, ...instances.slice(1)] })), code('instance'));
  // Proof elements: a scalar not below r, a point off the curve, the identity.
  const scalarAt = 12 * 64;
  const bad = Buffer.from(proofBytes);
  bad.fill(0xff, scalarAt, scalarAt + 32);
  assert.throws(() => parseProof(binary({ body: bad })), code('non_canonical_scalar'));
  const off = Buffer.from(proofBytes);
  off[63] ^= 1;
  assert.throws(() => parseProof(binary({ body: off })), code('point_not_on_curve'));
  const zero = Buffer.from(proofBytes);
  zero.fill(0, 64, 128);
  assert.throws(() => parseProof(binary({ body: zero })), code('identity_point'));
  const big2 = Buffer.from(proofBytes);
  big2.fill(0xff, 0, 32);
  assert.throws(() => parseProof(binary({ body: big2 })), code('non_canonical_point'));
});

test('JSON envelopes are refused for every kind of damage', () => {
  const with_ = (patch) => JSON.stringify({ ...raw, ...patch });
  assert.throws(() => parseProof(proofJson + ' x'), code('json'));
  assert.throws(() => parseProof(proofJson.replace('"format": 1', '"format": 1, "format": 1')), code('json'));
  assert.throws(() => parseProof(with_({ extra: 1 })), code('json'));
  assert.throws(() => parseProof(with_({ format: 2 })), code('unsupported_version'));
  assert.throws(() => parseProof(with_({ circuit: 9 })), code('unsupported_circuit'));
  assert.throws(() => parseProof(with_({ circuit: 1 })), code('instance_version'));
  assert.throws(() => parseProof(with_({ proof: raw.proof.slice(2) })), code('json'));
  assert.throws(() => parseProof(with_({ proof: raw.proof + '0' })), code('json'));
  assert.throws(() => parseProof(with_({ proof: raw.proof + '00' })), code('proof_length'));
  assert.throws(() => parseProof(with_({ proof: raw.proof.slice(0, -2) + 'zz' })), code('json'));
  assert.throws(() => parseProof(with_({ instance: { ...raw.instance, host_id: '0x' + 'f'.repeat(64) } })), code('json'));
  assert.throws(() => parseProof(with_({ instance: { ...raw.instance, chain_id: -1 } })), code('json'));
  assert.throws(() => parseProof(with_({ instance: { ...raw.instance, extra: 1 } })), code('json'));
  assert.throws(() => parseProof('x'.repeat(64 * 1024 + 1)), code('too_large'));
});
