/**
 * The proof envelope parser, as strict as the node's
 * (crates/fabstir-zk/src/envelope.rs): bounded size, known versions,
 * canonical scalars, points on the curve and not the identity, public inputs
 * in range, no trailing bytes. Failures are `EnvelopeError`s whose `code`
 * says what is wrong.
 */
import { bn254 } from '@noble/curves/bn254.js';
import { EnvelopeError } from './errors.js';
import { Q, R, beToBig, bigToBe, bytesToHex, fieldHex, hexToBytes } from './field.js';
import { JsonInt, parseStrictJson } from './json.js';
import { INSTANCE_BITS, parseAddress, parseFieldHex, parseJobId, refuseUnsafeNumber, toChecksumAddress, u64 } from './statement.js';

const MAGIC = [0x46, 0x5a, 0x4b, 0x50]; // "FZKP"
const FORMAT_VERSION = 1;
/** Largest binary or JSON envelope accepted. */
export const MAX_ENVELOPE_LEN = 64 * 1024;

/**
 * The proof's shape for this circuit (8 advice columns, the random
 * polynomial, 3 quotient pieces; 35 advice, 11 fixed and 1 random
 * evaluation; 2 opening points): what the node's parser checks before a key
 * is at hand. The verifier checks the key's own layout against it.
 */
export const PROOF_LAYOUT = Object.freeze({ leadingPoints: 12, scalars: 47, trailingPoints: 2 });
/** Proof length in bytes (2,400). */
export const PROOF_LEN = (PROOF_LAYOUT.leadingPoints + PROOF_LAYOUT.trailingPoints) * 64 + PROOF_LAYOUT.scalars * 32;

const INSTANCE_COUNT = { 1: 6, 2: 7 };
const headerLen = (version) => 4 + 4 + 32 + 32 * INSTANCE_COUNT[version] + 4;

const fail = (code, message, field) => {
  throw new EnvelopeError(code, message, field);
};

/** A G1 point from 64 big-endian bytes, or the reason it is refused. */
export function readPoint(bytes, at) {
  const x = beToBig(bytes, at, at + 32);
  const y = beToBig(bytes, at + 32, at + 64);
  if (x >= Q || y >= Q) return { error: 'non_canonical_point' };
  if (x === 0n && y === 0n) return { error: 'identity_point' };
  // y^2 = x^3 + 3 over the base field (G1 of BN254 has cofactor 1).
  if ((y * y) % Q !== (((x * x) % Q) * x + 3n) % Q) return { error: 'point_not_on_curve' };
  return { point: bn254.G1.Point.fromAffine({ x, y }) };
}

/** Checks every element of the halo2 proof bytes. */
export function validateProof(proof) {
  if (proof.length !== PROOF_LEN) fail('proof_length', `proof must be ${PROOF_LEN} bytes, found ${proof.length}`, 'proof');
  const scalarsStart = PROOF_LAYOUT.leadingPoints * 64;
  const trailingStart = scalarsStart + PROOF_LAYOUT.scalars * 32;
  const offsets = [];
  for (let o = 0; o < scalarsStart; o += 64) offsets.push(o);
  for (let o = trailingStart; o < proof.length; o += 64) offsets.push(o);
  for (const o of offsets) {
    const x = beToBig(proof, o, o + 32);
    const y = beToBig(proof, o + 32, o + 64);
    if (x >= Q || y >= Q) fail('non_canonical_point', `proof point at offset ${o} has a coordinate not below q`, 'proof');
    if (x === 0n && y === 0n) fail('identity_point', `proof point at offset ${o} is the point at infinity`, 'proof');
    if ((y * y) % Q !== (((x * x) % Q) * x + 3n) % Q) fail('point_not_on_curve', `proof point at offset ${o} is not on the curve`, 'proof');
  }
  for (let o = scalarsStart; o < trailingStart; o += 32) {
    if (beToBig(proof, o, o + 32) >= R) fail('non_canonical_scalar', `proof scalar at offset ${o} is not below r`, 'proof');
  }
}

function instanceFromElements(elements) {
  const bits = INSTANCE_BITS;
  elements.forEach((x, index) => {
    if (bits[index] < 254 && x >> BigInt(bits[index]) !== 0n) {
      fail('instance', `public input ${index} is out of range`, `instance[${index}]`);
    }
  });
  const [chainId, marketplace, jobHi, jobLo, hostId, commitment, tokens] = elements;
  return {
    chain_id: chainId,
    marketplace: toChecksumAddress(bigToBe(marketplace, 20)),
    job_id: fieldHex((jobHi << 128n) | jobLo),
    ...(tokens === undefined ? {} : { tokens }),
    host_id: fieldHex(hostId),
    commitment: fieldHex(commitment),
  };
}

function fromBytes(bytes) {
  if (bytes.length === 0) fail('empty', 'the proof envelope is empty', 'proof');
  if (bytes.length > MAX_ENVELOPE_LEN) fail('too_large', `the envelope is ${bytes.length} bytes; the limit is ${MAX_ENVELOPE_LEN}`, 'proof');
  const prefix = Math.min(bytes.length, 4);
  for (let i = 0; i < prefix; i++) if (bytes[i] !== MAGIC[i]) fail('bad_magic', 'not a proof envelope (magic is not "FZKP")', 'magic');
  if (bytes.length > 4 && bytes[4] !== FORMAT_VERSION) fail('unsupported_version', `envelope format version ${bytes[4]} is not supported`, 'format');
  let version = 2;
  if (bytes.length > 5) {
    version = bytes[5];
    if (!(version in INSTANCE_COUNT)) fail('unsupported_circuit', `circuit version ${version} is not supported`, 'circuit');
  }
  const hl = headerLen(version);
  if (bytes.length < hl) fail('truncated', `the envelope needs ${hl} bytes, found ${bytes.length}`, 'proof');
  if (bytes[6] !== 0 || bytes[7] !== 0) fail('reserved_flags', 'reserved envelope flags are set', 'flags');
  const vkId = bytesToHex(bytes.subarray(8, 40));
  const elements = [];
  for (let at = 40, index = 0; at < hl - 4; at += 32, index++) {
    const x = beToBig(bytes, at, at + 32);
    if (x >= R) fail('instance', `public input ${index} is not a canonical field element`, `instance[${index}]`);
    elements.push(x);
  }
  const instance = instanceFromElements(elements);
  const declared = new DataView(bytes.buffer, bytes.byteOffset + hl - 4, 4).getUint32(0);
  if (declared !== PROOF_LEN) fail('proof_length', `the envelope declares a proof of ${declared} bytes; it must be ${PROOF_LEN}`, 'proof');
  const body = bytes.subarray(hl);
  if (body.length < declared) fail('truncated', `the envelope needs ${hl + declared} bytes, found ${bytes.length}`, 'proof');
  if (body.length > declared) fail('trailing_bytes', `${body.length - declared} bytes follow the proof`, 'proof');
  validateProof(body);
  return { vkId, circuitVersion: version, instance, proof: Uint8Array.from(body) };
}

function intField(v, field) {
  if (!(v instanceof JsonInt) && typeof v !== 'number' && typeof v !== 'bigint') fail('json', `${field} must be an integer`, field);
  try {
    return u64(v, field);
  } catch (e) {
    return fail('json', e.message, field);
  }
}

function fromObject(raw) {
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) fail('json', 'the envelope must be a JSON object', 'proof');
  const keys = ['format', 'circuit', 'vk_id', 'instance', 'proof'];
  for (const k of Object.keys(raw)) if (!keys.includes(k)) fail('json', `unknown field "${k}"`, k);
  for (const k of keys) if (raw[k] === undefined) fail('json', `missing field "${k}"`, k);
  const inst = raw.instance;
  if (inst === null || typeof inst !== 'object' || Array.isArray(inst)) fail('json', 'instance must be an object', 'instance');
  const instKeys = ['chain_id', 'marketplace', 'job_id', 'tokens', 'host_id', 'commitment'];
  for (const k of Object.keys(inst)) if (!instKeys.includes(k)) fail('json', `unknown field "instance.${k}"`, `instance.${k}`);
  for (const k of ['chain_id', 'marketplace', 'job_id', 'host_id', 'commitment']) {
    if (inst[k] === undefined) fail('json', `missing field "instance.${k}"`, `instance.${k}`);
  }
  // An integer JSON.parse may have rounded is the caller's mistake, not the
  // proof's: an InputError is thrown (verifyProof does not turn it into a
  // malformed_proof verdict about a proof that may be valid).
  const remedy = 'read the node\'s response with parseProofResponse (integers stay exact as BigInts), or pass the envelope\'s JSON text';
  refuseUnsafeNumber(raw.format, 'proof.format', remedy);
  refuseUnsafeNumber(raw.circuit, 'proof.circuit', remedy);
  for (const k of ['chain_id', 'job_id', 'tokens']) refuseUnsafeNumber(inst[k], `proof.instance.${k}`, remedy);
  const format = intField(raw.format, 'format');
  const circuit = intField(raw.circuit, 'circuit');
  if (typeof raw.vk_id !== 'string' || !/^0[xX][0-9a-fA-F]{64}$/.test(raw.vk_id.trim())) fail('json', 'vk_id must be 0x + 64 hex digits', 'vk_id');
  let instance;
  try {
    const tokens = inst.tokens === undefined || inst.tokens === null ? undefined : u64(inst.tokens, 'instance.tokens');
    if (typeof inst.job_id !== 'string' && !(inst.job_id instanceof JsonInt) && typeof inst.job_id !== 'number' && typeof inst.job_id !== 'bigint') {
      throw new Error('instance.job_id must be a string or an integer');
    }
    const jobId = parseJobId(inst.job_id instanceof JsonInt ? inst.job_id : inst.job_id, 'instance.job_id');
    instance = {
      chain_id: u64(inst.chain_id, 'instance.chain_id'),
      marketplace: toChecksumAddress(parseAddress(inst.marketplace, 'instance.marketplace')),
      job_id: fieldHex(jobId),
      ...(tokens === undefined ? {} : { tokens }),
      host_id: fieldHex(parseFieldHex(inst.host_id, 'instance.host_id')),
      commitment: fieldHex(parseFieldHex(inst.commitment, 'instance.commitment')),
    };
  } catch (e) {
    fail('json', e.message, e.field ?? 'instance');
  }
  if (format !== BigInt(FORMAT_VERSION)) fail('unsupported_version', `envelope format version ${format} is not supported`, 'format');
  if (!(Number(circuit) in INSTANCE_COUNT) || circuit > 255n) fail('unsupported_circuit', `circuit version ${circuit} is not supported`, 'circuit');
  const version = Number(circuit);
  const instanceVersion = instance.tokens === undefined ? 1 : 2;
  if (instanceVersion !== version) {
    fail('instance_version', `circuit ${version} has ${INSTANCE_COUNT[version]} public inputs, the instance has ${INSTANCE_COUNT[instanceVersion]}`, 'instance');
  }
  if (typeof raw.proof !== 'string') fail('json', 'proof must be a string', 'proof');
  if (!raw.proof.startsWith('0x') && !raw.proof.startsWith('0X')) fail('json', 'proof must be 0x-prefixed hex', 'proof');
  const digits = raw.proof.length - 2;
  if (digits % 2 !== 0) fail('json', 'proof has an odd number of hex digits', 'proof');
  if (digits !== 2 * PROOF_LEN) fail('proof_length', `proof must be ${PROOF_LEN} bytes, found ${digits / 2}`, 'proof');
  const proof = hexToBytes(raw.proof);
  if (!proof) fail('json', 'proof is not valid hex', 'proof');
  validateProof(proof);
  return { vkId: raw.vk_id.trim().toLowerCase(), circuitVersion: version, instance, proof };
}

/**
 * Parses a proof envelope: the binary form (Uint8Array), the JSON form (a
 * string, or bytes starting with "{"), or an already parsed JSON object.
 * Returns `{vkId, circuitVersion, instance, proof}`; throws `EnvelopeError`,
 * or `InputError` for an object holding an integer above 2^53 - 1 as a
 * JavaScript number (JSON.parse may have rounded it: pass the JSON text, or
 * the object `parseProofResponse` returns, whose integers are BigInts).
 */
export function parseProof(input) {
  if (input instanceof ArrayBuffer) input = new Uint8Array(input);
  if (input instanceof Uint8Array) {
    let first = 0;
    while (first < input.length && first < 16 && [0x20, 0x09, 0x0a, 0x0d].includes(input[first])) first++;
    if (input[first] !== 0x7b && first === 0) return fromBytes(input);
    if (input.length > MAX_ENVELOPE_LEN) fail('too_large', `the envelope is ${input.length} bytes; the limit is ${MAX_ENVELOPE_LEN}`, 'proof');
    let text;
    try {
      text = new TextDecoder('utf-8', { fatal: true }).decode(input);
    } catch {
      fail('json', 'the JSON envelope is not valid UTF-8', 'proof');
    }
    input = text;
  }
  if (typeof input === 'string') {
    if (input.length > MAX_ENVELOPE_LEN) fail('too_large', `the envelope is ${input.length} bytes; the limit is ${MAX_ENVELOPE_LEN}`, 'proof');
    let raw;
    try {
      raw = parseStrictJson(input);
    } catch (e) {
      fail('json', `the envelope is not valid JSON: ${e.message}`, 'proof');
    }
    return fromObject(raw);
  }
  if (input && typeof input === 'object' && input.proof instanceof Uint8Array && typeof input.vkId === 'string') {
    return input; // already parsed
  }
  return fromObject(input);
}
