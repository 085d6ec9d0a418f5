/**
 * The statement a proof is about and its encoding into public inputs,
 * identical to the Rust crate's (crates/fabstir-zk/src/statement.rs): every
 * 32-byte value split into 128-bit big-endian halves, SHA-256 of the prompt,
 * the response and the model name (or the model hash as given), and the
 * circomlib Poseidon commitment over eleven inputs.
 */
import { sha256 } from '@noble/hashes/sha2.js';
import { keccak_256 } from '@noble/hashes/sha3.js';
import { InputError } from './errors.js';
import { R, beToBig, bigToBe, bytesToHex, fieldHex, hexToBytes } from './field.js';
import { JsonInt, parseStrictJson } from './json.js';
import { poseidon } from './poseidon.js';

const U64_MAX = (1n << 64n) - 1n;
const U256_MAX = (1n << 256n) - 1n;
const TOKENS_SHIFT = 64n;
/** Upper bound (bits) of each public input of circuit version 2. */
export const INSTANCE_BITS = [64, 160, 128, 128, 254, 254, 64];
/** The public inputs' names, in order. */
export const INSTANCE_FIELDS = ['chain_id', 'marketplace', 'job_id.hi', 'job_id.lo', 'host_id', 'commitment', 'tokens'];
const RESULT_FIELDS = ['job_id', 'chain_id', 'marketplace', 'model', 'model_hash', 'prompt', 'response', 'tokens_used'];

const utf8 = new TextEncoder();

/**
 * Throws an `InputError` naming `field` if `value` is a JavaScript number
 * that is an integer above 2^53 - 1 in magnitude: such a number cannot hold
 * every integer exactly, so it may already have been rounded (by JSON.parse,
 * or by `fetch(...).json()`). Refusing it is the only way not to check a
 * rounded value.
 */
export function refuseUnsafeNumber(value, field, remedy = `give ${field} as a BigInt or a decimal string`) {
  if (typeof value === 'number' && Number.isInteger(value) && !Number.isSafeInteger(value)) {
    throw new InputError(
      `${field} is the JavaScript number ${value}, above 2^53 - 1, which cannot hold every integer exactly ` +
        `(JSON.parse and fetch(...).json() round such integers, so it may already be wrong): ${remedy}`,
      field,
    );
  }
}

/**
 * A non-negative integer below 2^64 from a JSON integer (`JsonInt`), a
 * BigInt or a safe JS integer; with `strings`, also from a decimal string
 * (for objects built in JavaScript; the node's JSON takes integers only).
 */
export function u64(value, field, { strings = false } = {}) {
  let x;
  refuseUnsafeNumber(value, field);
  if (value instanceof JsonInt) x = value.toBigInt();
  else if (typeof value === 'bigint') x = value;
  else if (typeof value === 'number' && Number.isSafeInteger(value)) x = BigInt(value);
  else if (strings && typeof value === 'string') {
    if (!/^[0-9]{1,40}$/.test(value)) throw new InputError(`${field} must be decimal digits when given as a string, found ${JSON.stringify(value.slice(0, 50))}`, field);
    x = BigInt(value);
  } else {
    const found = typeof value === 'number' ? String(value) : value === null ? 'null' : `a ${typeof value}`;
    const forms = strings ? ' (a BigInt, a decimal string or a safe integer)' : ' (in JSON, a number without quotes, as the node writes it)';
    throw new InputError(`${field} must be an integer${forms}, found ${found}`, field);
  }
  if (x < 0n || x > U64_MAX) throw new InputError(`${field} must be between 0 and 2^64 - 1`, field);
  return x;
}

/** A job id: decimal or 0x-hex string (1 to 64 digits), or an integer below 2^64. */
export function parseJobId(value, field = 'job_id') {
  if (typeof value !== 'string') {
    return u64(value, field);
  }
  const s = value.trim();
  if (s.startsWith('0x') || s.startsWith('0X')) {
    const d = s.slice(2);
    if (d.length < 1 || d.length > 64) throw new InputError(`${field}: hex job id must have 1 to 64 digits`, field);
    if (!/^[0-9a-fA-F]+$/.test(d)) throw new InputError(`${field}: job id has a non-hex digit`, field);
    return BigInt('0x' + d);
  }
  if (s.length === 0) throw new InputError(`${field}: job id is empty`, field);
  if (!/^[0-9]+$/.test(s)) throw new InputError(`${field}: job id must be decimal digits or 0x-prefixed hex`, field);
  const x = BigInt(s);
  if (x > U256_MAX) throw new InputError(`${field}: job id exceeds 2^256 - 1`, field);
  return x;
}

function fixedHex(value, len, field) {
  if (typeof value !== 'string') throw new InputError(`${field} must be a string`, field);
  const s = value.trim();
  if (!(s.startsWith('0x') || s.startsWith('0X'))) throw new InputError(`${field} must start with 0x`, field);
  if (s.length - 2 !== 2 * len) {
    throw new InputError(`${field} must have ${2 * len} hex digits, found ${s.length - 2}`, field);
  }
  const bytes = hexToBytes(s);
  if (!bytes) throw new InputError(`${field} is not valid hex`, field);
  return bytes;
}

/** EIP-55 checksummed form of a 20-byte address. */
export function toChecksumAddress(bytes) {
  const lower = bytesToHex(bytes).slice(2);
  const hash = keccak_256(utf8.encode(lower));
  let out = '0x';
  for (let i = 0; i < 40; i++) {
    const nibble = (hash[i >> 1] >> (i % 2 === 0 ? 4 : 0)) & 0xf;
    out += /[a-f]/.test(lower[i]) && nibble >= 8 ? lower[i].toUpperCase() : lower[i];
  }
  return out;
}

/** A marketplace address: 0x + 40 hex digits; mixed case must be the EIP-55 checksum. */
export function parseAddress(value, field = 'marketplace') {
  const bytes = fixedHex(value, 20, field);
  const digits = value.trim().slice(2);
  if (/[A-F]/.test(digits) && /[a-f]/.test(digits) && '0x' + digits !== toChecksumAddress(bytes)) {
    throw new InputError(`${field} has a wrong EIP-55 checksum`, field);
  }
  return bytes;
}

/** A canonical field element given as 0x + 64 hex digits. */
export function parseFieldHex(value, field) {
  const x = beToBig(fixedHex(value, 32, field));
  if (x >= R) throw new InputError(`${field} is not a canonical field element (not below r)`, field);
  return x;
}

function text(value, field) {
  if (typeof value !== 'string') throw new InputError(`${field} must be a string`, field);
  if (typeof value.isWellFormed === 'function' && !value.isWellFormed()) {
    throw new InputError(`${field} is not valid Unicode (lone surrogate)`, field);
  }
  return value;
}

/**
 * Reads an inference result (a JSON string, bytes, or an object with the
 * node's field names), refusing unknown or missing fields like the node.
 * In an object, `chain_id` and `tokens_used` may be BigInts, decimal
 * strings or safe integers; a number above 2^53 - 1 is refused (it may have
 * been rounded), never used.
 */
export function parseResult(result) {
  let obj = result;
  // JSON text is read as the node reads it (integers must be JSON integers,
  // kept exact); an object built in JavaScript may also give the integers as
  // decimal strings or BigInts.
  const fromText = typeof result === 'string' || result instanceof Uint8Array;
  if (fromText) {
    const s = typeof result === 'string' ? result : new TextDecoder('utf-8', { fatal: true }).decode(result);
    try {
      obj = parseStrictJson(s);
    } catch (e) {
      throw new InputError(`result is not valid JSON: ${e.message}`, 'result');
    }
  }
  if (obj === null || typeof obj !== 'object' || Array.isArray(obj)) {
    throw new InputError('result must be a JSON object', 'result');
  }
  for (const key of Object.keys(obj)) {
    if (!RESULT_FIELDS.includes(key)) throw new InputError(`result has an unknown field "${key}"`, key);
  }
  for (const key of ['job_id', 'chain_id', 'marketplace', 'prompt', 'response', 'tokens_used']) {
    if (obj[key] === undefined) throw new InputError(`result is missing "${key}"`, key);
  }
  const model = obj.model ?? null;
  const modelHash = obj.model_hash ?? null;
  let modelDigest;
  if (model !== null && modelHash !== null) {
    throw new InputError('result gives both model and model_hash; give one', 'model');
  } else if (modelHash !== null) {
    modelDigest = fixedHex(modelHash, 32, 'model_hash');
  } else if (model !== null && text(model, 'model') !== '') {
    modelDigest = sha256(utf8.encode(model));
  } else {
    throw new InputError('result has no model: give model or model_hash', 'model');
  }
  return {
    jobId: parseJobId(obj.job_id),
    chainId: u64(obj.chain_id, 'chain_id', { strings: !fromText }),
    marketplace: parseAddress(obj.marketplace),
    modelHash: modelDigest,
    inputHash: sha256(utf8.encode(text(obj.prompt, 'prompt'))),
    outputHash: sha256(utf8.encode(text(obj.response, 'response'))),
    tokens: u64(obj.tokens_used, 'tokens_used', { strings: !fromText }),
  };
}

const limbs = (bytes) => [beToBig(bytes, 0, 16), beToBig(bytes, 16, 32)];

/** A host id: a canonical field element (bigint or 0x + 64 hex digits). */
export function parseHostId(hostId) {
  if (typeof hostId === 'bigint') {
    if (hostId < 0n || hostId >= R) throw new InputError('hostId is not a field element', 'hostId');
    return hostId;
  }
  return parseFieldHex(hostId, 'hostId');
}

/**
 * The statement of `result` for the host `hostId`: its hashes, the
 * commitment's eleven Poseidon inputs, the commitment and the public inputs
 * (bigints; `instanceWords` as 32-byte big-endian words, the form a
 * contract takes). Circuit version 2 (default) binds the token count: seven
 * public inputs; version 1 (older proofs) has six.
 */
export function statementFromResult(result, hostId, { circuitVersion = 2 } = {}) {
  if (circuitVersion !== 1 && circuitVersion !== 2) {
    throw new InputError(`circuitVersion must be 1 or 2, not ${circuitVersion}`, 'circuitVersion');
  }
  const r = parseResult(result);
  const host = parseHostId(hostId);
  const [jobHi, jobLo] = limbs(bigToBe(r.jobId));
  const [modelHi, modelLo] = limbs(r.modelHash);
  const [inputHi, inputLo] = limbs(r.inputHash);
  const [outputHi, outputLo] = limbs(r.outputHash);
  const marketplace = beToBig(r.marketplace);
  const commitmentInputs = [
    circuitVersion === 2 ? r.chainId + (r.tokens << TOKENS_SHIFT) : r.chainId,
    marketplace,
    jobHi,
    jobLo,
    modelHi,
    modelLo,
    inputHi,
    inputLo,
    outputHi,
    outputLo,
    host,
  ];
  const commitment = poseidon(commitmentInputs);
  const instances = [r.chainId, marketplace, jobHi, jobLo, host, commitment];
  if (circuitVersion === 2) instances.push(r.tokens);
  return {
    circuitVersion,
    chainId: r.chainId,
    marketplace: toChecksumAddress(r.marketplace),
    jobId: fieldHex(r.jobId),
    modelHash: bytesToHex(r.modelHash),
    inputHash: bytesToHex(r.inputHash),
    outputHash: bytesToHex(r.outputHash),
    hostId: fieldHex(host),
    tokens: r.tokens,
    commitmentInputs,
    commitment,
    instances,
    instanceWords: instances.map((x) => bigToBe(x)),
  };
}

