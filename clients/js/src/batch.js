/**
 * Batch proofs: one proof for N checkpoints of one host
 * (crates/fabstir-zk/src/batch). A client holding one result checks its
 * own checkpoint inside a batch: `checkBatchEntry` recomputes its entry's
 * public inputs, finds the entry of its job and cumulative tokens, compares
 * the commitment and verifies the proof, in the node's order and with its
 * reason codes (crates/fabstir-zk/src/batch/check.rs).
 *
 * The batch comes from the node (`parseBatch` of the binary form FZK-BP1,
 * or its 0x hex text) or from the transaction that paid it
 * (`batchFromCalldata` of `submitVerifiedBatch` calldata, with the chain
 * id, the marketplace and the host id the chain gives).
 */
import { keccak_256 } from '@noble/hashes/sha3.js';
import { EnvelopeError } from './errors.js';
import { R, beToBig, bigToBe, bytesToHex, fieldHex, hexToBytes } from './field.js';
import { readPoint } from './envelope.js';
import { MAX_BATCH_ENTRIES } from './key.js';
import { parseStrictJson } from './json.js';
import { parseAddress, parseHostId, statementFromResult, toChecksumAddress } from './statement.js';
import { keyFor, verifyRaw } from './verify.js';

/** First bytes of the binary form. */
const MAGIC = [0x46, 0x5a, 0x4b, 0x2d, 0x42, 0x50, 0x31, 0x00]; // "FZK-BP1\0"
const FORMAT = 1;
/** The longest proof the parser accepts (crates/fabstir-zk/src/batch/encoding.rs). */
export const MAX_BATCH_PROOF_BYTES = 8192;
const HEADER = 8 + 1 + 32 + 2 + 8 + 20 + 32;
const ENTRY = 32 + 8 + 32;
/** The longest binary form: the largest batch with the longest proof. */
export const MAX_BATCH_LEN = HEADER + ENTRY * MAX_BATCH_ENTRIES + 4 + MAX_BATCH_PROOF_BYTES;

const utf8 = new TextEncoder();
/** The 4-byte selector of `submitVerifiedBatch((uint256,uint256,uint256)[],bytes)`. */
export const SUBMIT_VERIFIED_BATCH_SELECTOR = bytesToHex(keccak_256(utf8.encode('submitVerifiedBatch((uint256,uint256,uint256)[],bytes)')).subarray(0, 4));

const fail = (code, message, field) => {
  throw new EnvelopeError(code, message, field);
};

/** Bytes of a 0x hex string (bounded before decoding) or a Uint8Array. */
function toBytes(input, limit, field) {
  if (input instanceof Uint8Array) return input;
  if (typeof input !== 'string') fail('batch_input', `${field} must be bytes or a 0x hex string`, field);
  const text = input.trim();
  if (!text.startsWith('0x')) fail('batch_hex', `${field}: the hex form must start with 0x`, field);
  if (text.length - 2 > 2 * limit) fail('too_large', `${field}: the hex form is longer than any batch`, field);
  if ((text.length & 1) !== 0 || !/^0x[0-9a-fA-F]*$/.test(text)) fail('batch_hex', `${field}: the hex form has an odd length or a character that is not a hex digit`, field);
  return hexToBytes(text);
}

/**
 * Parses a batch proof's binary form (FZK-BP1, or its 0x hex text), as
 * strictly as the node: magic, format, a supported size (else code
 * `unsupported_batch_size`), a bounded proof length, the exact length,
 * canonical field elements. Returns `{vkId, size, chainId, marketplace,
 * hostId, entries: [{jobId, tokens, commitment}], proof}` (chainId, tokens
 * and commitment BigInts; jobId and hostId 0x + 64 hex digits; marketplace
 * checksummed). Throws `EnvelopeError` on anything else.
 */
export function parseBatch(input) {
  const bytes = toBytes(input, MAX_BATCH_LEN, 'batch');
  const need = (n) => {
    if (bytes.length < n) fail('truncated', `the batch proof is truncated (${bytes.length} bytes)`, 'batch');
  };
  need(8);
  for (let i = 0; i < 8; i++) if (bytes[i] !== MAGIC[i]) fail('bad_magic', 'not a batch proof (magic is not "FZK-BP1")', 'magic');
  need(9);
  if (bytes[8] !== FORMAT) fail('unsupported_version', `batch format version ${bytes[8]} is not supported`, 'format');
  need(43);
  const vkId = bytesToHex(bytes.subarray(9, 41));
  const size = (bytes[41] << 8) | bytes[42];
  if (size < 1 || size > MAX_BATCH_ENTRIES) fail('unsupported_batch_size', `a batch of ${size} entries is not supported: a batch has 1 to ${MAX_BATCH_ENTRIES} entries`, 'entries');
  need(HEADER);
  const chainId = beToBig(bytes, 43, 51);
  const marketplace = toChecksumAddress(bytes.subarray(51, 71));
  const host = beToBig(bytes, 71, 103);
  if (host >= R) fail('non_canonical', 'host_id is not a canonical field element', 'host_id');
  const lengthAt = HEADER + ENTRY * size;
  need(lengthAt + 4);
  const proofLen = new DataView(bytes.buffer, bytes.byteOffset + lengthAt, 4).getUint32(0);
  if (proofLen > MAX_BATCH_PROOF_BYTES) fail('too_large', 'the proof is longer than any batch proof', 'proof');
  if (bytes.length !== lengthAt + 4 + proofLen) fail('length', 'the length does not match the entries and proof the batch declares', 'batch');
  const entries = [];
  for (let i = 0, at = HEADER; i < size; i++, at += ENTRY) {
    const commitment = beToBig(bytes, at + 40, at + 72);
    if (commitment >= R) fail('non_canonical', `entry ${i}'s commitment is not a canonical field element`, `entries[${i}].commitment`);
    entries.push({ jobId: fieldHex(beToBig(bytes, at, at + 32)), tokens: beToBig(bytes, at + 32, at + 40), commitment });
  }
  return { vkId, size, chainId, marketplace, hostId: fieldHex(host), entries, proof: Uint8Array.from(bytes.subarray(lengthAt + 4)) };
}

/** One 32-byte word of ABI data as a BigInt, or a refusal naming it. */
function word(data, at, what) {
  if (at + 32 > data.length) fail('calldata', `the calldata ends inside ${what}`, 'calldata');
  return beToBig(data, at, at + 32);
}

/**
 * The batch a `submitVerifiedBatch(BatchEntry[] entries, bytes proof)`
 * transaction carries (its `input`, bytes or 0x hex), with what the chain
 * gives: `chainId` (the chain's), `marketplace` (the transaction's `to`),
 * `hostId` (the marketplace's `hostIdOf(from)`) and `vkId` (the `VK_ID()` of
 * the marketplace's `batchVerifier(entries.length)`; optional: calldata
 * names no key, and without it `vkId` is null and the batch is checked under
 * whatever key the caller trusts). Returns the shape of `parseBatch`. Bounded: at most 236 entries and an 8 KiB proof; throws
 * `EnvelopeError` (code `calldata`) on anything malformed.
 */
export function batchFromCalldata(calldata, { chainId, marketplace, hostId, vkId } = {}) {
  const data = toBytes(calldata, 4 + 32 * (4 + 3 * MAX_BATCH_ENTRIES) + MAX_BATCH_PROOF_BYTES + 32, 'calldata');
  if (data.length < 4 || bytesToHex(data.subarray(0, 4)) !== SUBMIT_VERIFIED_BATCH_SELECTOR) {
    fail('calldata', `not a submitVerifiedBatch call (selector ${SUBMIT_VERIFIED_BATCH_SELECTOR})`, 'calldata');
  }
  const args = data.subarray(4);
  const offset = (at, what) => {
    const o = word(args, at, what);
    if (o > BigInt(args.length) || o % 32n !== 0n) fail('calldata', `the offset of ${what} is out of bounds`, 'calldata');
    return Number(o);
  };
  const entriesAt = offset(0, 'entries');
  const proofAt = offset(32, 'proof');
  const count = word(args, entriesAt, 'the entries\' length');
  if (count < 1n || count > BigInt(MAX_BATCH_ENTRIES)) fail('unsupported_batch_size', `a batch of ${count} entries is not supported: a batch has 1 to ${MAX_BATCH_ENTRIES} entries`, 'entries');
  const entries = [];
  for (let i = 0; i < Number(count); i++) {
    const at = entriesAt + 32 + 96 * i;
    const job = word(args, at, `entry ${i}`);
    entries.push({ jobId: fieldHex(job), tokens: word(args, at + 32, `entry ${i}`), commitment: word(args, at + 64, `entry ${i}`) });
  }
  const proofLen = word(args, proofAt, 'the proof\'s length');
  if (proofLen > BigInt(MAX_BATCH_PROOF_BYTES)) fail('too_large', 'the proof is longer than any batch proof', 'proof');
  const start = proofAt + 32;
  if (start + Number(proofLen) > args.length) fail('calldata', 'the calldata ends inside the proof', 'calldata');
  if (vkId !== undefined && vkId !== null && (typeof vkId !== 'string' || !/^0x[0-9a-fA-F]{64}$/.test(vkId))) {
    fail('calldata', 'vkId (the batch verifier\'s VK_ID) must be 0x + 64 hex digits', 'vkId');
  }
  let chain;
  try {
    chain = BigInt(chainId);
  } catch {
    chain = -1n;
  }
  if (chain < 0n || chain >> 64n !== 0n) fail('calldata', 'chainId must be an integer below 2^64', 'chainId');
  let host;
  let market;
  try {
    host = parseHostId(hostId);
    market = toChecksumAddress(parseAddress(marketplace, 'marketplace'));
  } catch (e) {
    fail('calldata', e.message, e.field);
  }
  return {
    vkId: typeof vkId === 'string' ? vkId.toLowerCase() : null,
    size: Number(count),
    chainId: chain,
    marketplace: market,
    hostId: fieldHex(host),
    entries,
    proof: Uint8Array.from(args.subarray(start, start + Number(proofLen))),
  };
}

/** The batch's public inputs: seven bands of N values (commitment, chain id, marketplace, job hi, job lo, host id, tokens). */
export function batchInstances(batch) {
  const n = batch.entries.length;
  const out = new Array(7 * n);
  const market = beToBig(parseAddress(batch.marketplace, 'marketplace'));
  const host = BigInt(batch.hostId);
  batch.entries.forEach((e, i) => {
    const job = BigInt(e.jobId);
    out[i] = e.commitment;
    out[n + i] = batch.chainId;
    out[2 * n + i] = market;
    out[3 * n + i] = job >> 128n;
    out[4 * n + i] = job & ((1n << 128n) - 1n);
    out[5 * n + i] = host;
    out[6 * n + i] = e.tokens;
  });
  return out;
}

/** Points on the curve (not the identity) and canonical scalars, in the key's proof layout; null when sound. */
function malformedProof(key, proof) {
  const L = key.layout;
  if (proof.length !== L.len) return `the proof is ${proof.length} bytes; this key's proofs are ${L.len}`;
  const points = [];
  for (let o = 0; o < L.adviceEvals; o += 64) points.push(o);
  for (let o = L.w; o < L.len; o += 64) points.push(o);
  for (const o of points) {
    const p = readPoint(proof, o);
    if (!p.point) return `proof point at offset ${o}: ${p.error}`;
  }
  for (let o = L.adviceEvals; o < L.w; o += 32) {
    if (beToBig(proof, o, o + 32) >= R) return `proof scalar at offset ${o} is not below r`;
  }
  return null;
}

function asBatch(batch) {
  if (batch && typeof batch === 'object' && !(batch instanceof Uint8Array) && Array.isArray(batch.entries)) return batch;
  return parseBatch(batch);
}

/** The proof of `batch` under `key`, or the refusal (the node's codes). */
function proofVerdict(key, batch) {
  if (batch.size !== key.batchEntries || batch.entries.length !== key.batchEntries) {
    return { valid: false, reason_code: 'unsupported_batch_size', reason: `the batch proof has ${batch.entries.length} entries, the batch verifying key is for batches of ${key.batchEntries}` };
  }
  if (batch.vkId !== null && batch.vkId !== key.vkId) {
    return { valid: false, reason_code: 'unknown_verifying_key', reason: `the batch proof was made for batch verifying key ${batch.vkId}, not the trusted ${key.vkId}` };
  }
  const bad = malformedProof(key, batch.proof);
  if (bad) return { valid: false, reason_code: 'malformed_proof', reason: bad };
  if (!verifyRaw(key, batchInstances(batch), batch.proof)) {
    return { valid: false, reason_code: 'invalid_proof', reason: 'the batch proof does not verify for this batch' };
  }
  return { valid: true };
}

/** A malformed batch as a verdict; other errors are thrown. */
function refusedBatch(e) {
  if (!(e instanceof EnvelopeError)) throw e;
  return { valid: false, reason_code: e.code === 'unsupported_batch_size' ? 'unsupported_batch_size' : 'malformed_proof', reason: e.message };
}

/**
 * Verifies a batch proof as it is given (bytes, 0x hex, or a parsed batch)
 * under the batch verifying key `verifyingKey` (an export or a prepared
 * key) whose id must be `vkId`: `{valid: true}` or `{valid: false,
 * reason_code, reason}` (`malformed_proof`, `unsupported_batch_size`,
 * `unknown_verifying_key`, `invalid_proof`).
 */
export function verifyBatch(verifyingKey, batch, { vkId } = {}) {
  const key = keyFor(verifyingKey, vkId);
  let parsed;
  try {
    parsed = asBatch(batch);
  } catch (e) {
    return refusedBatch(e);
  }
  return proofVerdict(key, parsed);
}

/**
 * Checks the caller's own checkpoint inside a batch: `result` (the
 * inference result it holds) at `tokens` cumulative tokens (default its
 * `tokens_used`), proved by the host `hostId`. Returns `{valid: true,
 * entry, entries, batchSize}` (the first index holding the checkpoint, and
 * every one) or `{valid: false, reason_code, reason}`, the checks in the
 * node's order: `malformed_proof`, `unsupported_batch_size`,
 * `unknown_verifying_key`, `wrong_chain`, `wrong_marketplace`, `wrong_host`,
 * `not_in_batch` (job 0 included: padding never matches),
 * `commitment_mismatch`, `invalid_proof`.
 */
export function checkBatchEntry(verifyingKey, batch, result, { hostId, tokens, vkId } = {}) {
  const key = keyFor(verifyingKey, vkId);
  let b;
  try {
    b = asBatch(batch);
  } catch (e) {
    return refusedBatch(e);
  }
  let mine = result;
  if (tokens !== undefined && tokens !== null) {
    const obj = typeof result === 'string' || result instanceof Uint8Array ? parseStrictJson(typeof result === 'string' ? result : new TextDecoder().decode(result)) : result;
    mine = { ...obj, tokens_used: BigInt(tokens) };
  }
  const s = statementFromResult(mine, hostId);
  if (b.size !== key.batchEntries || b.entries.length !== key.batchEntries) return proofVerdict(key, b);
  if (b.vkId !== null && b.vkId !== key.vkId) return proofVerdict(key, b);
  if (b.chainId !== s.chainId) {
    return { valid: false, reason_code: 'wrong_chain', reason: `the batch's chain_id is ${b.chainId}, the result's is ${s.chainId}: the batch is for another chain` };
  }
  if (b.marketplace !== s.marketplace) {
    return { valid: false, reason_code: 'wrong_marketplace', reason: `the batch's marketplace is ${b.marketplace}, the result's is ${s.marketplace}` };
  }
  if (b.hostId !== s.hostId) {
    return { valid: false, reason_code: 'wrong_host', reason: `the batch's host_id is ${b.hostId}, the expected host is ${s.hostId}: the batch is another host's` };
  }
  if (BigInt(s.jobId) === 0n) {
    return { valid: false, reason_code: 'not_in_batch', reason: 'job_id 0 marks padding entries: a result with job_id 0 never matches an entry of a batch' };
  }
  const ofJob = b.entries.map((e, i) => [i, e]).filter(([, e]) => e.jobId === s.jobId);
  const atTokens = ofJob.filter(([, e]) => e.tokens === s.tokens);
  if (atTokens.length === 0) {
    const seen = ofJob.length === 0 ? 'the job is in no entry' : `the job's entries have tokens ${ofJob.map(([, e]) => e.tokens).join(', ')}`;
    return { valid: false, reason_code: 'not_in_batch', reason: `no entry of the batch has job_id ${s.jobId} at tokens ${s.tokens} (${seen})` };
  }
  const entries = atTokens.filter(([, e]) => e.commitment === s.commitment).map(([i]) => i);
  if (entries.length === 0) {
    const [i, e] = atTokens[0];
    return { valid: false, reason_code: 'commitment_mismatch', reason: `entry ${i} has the job and tokens but commitment ${fieldHex(e.commitment)}, the result's is ${fieldHex(s.commitment)}` };
  }
  const verdict = proofVerdict(key, b);
  if (!verdict.valid) return verdict;
  return { valid: true, entry: entries[0], entries, batchSize: b.size };
}

/** The binary form of a parsed batch (the inverse of `parseBatch`). */
export function batchToBytes(batch) {
  const n = batch.entries.length;
  const out = new Uint8Array(HEADER + ENTRY * n + 4 + batch.proof.length);
  out.set(MAGIC, 0);
  out[8] = FORMAT;
  out.set(hexToBytes(batch.vkId), 9);
  out[41] = n >> 8;
  out[42] = n & 0xff;
  out.set(bigToBe(batch.chainId, 8), 43);
  out.set(parseAddress(batch.marketplace, 'marketplace'), 51);
  out.set(bigToBe(BigInt(batch.hostId)), 71);
  batch.entries.forEach((e, i) => {
    const at = HEADER + ENTRY * i;
    out.set(bigToBe(BigInt(e.jobId)), at);
    out.set(bigToBe(e.tokens, 8), at + 32);
    out.set(bigToBe(e.commitment), at + 40);
  });
  new DataView(out.buffer).setUint32(HEADER + ENTRY * n, batch.proof.length);
  out.set(batch.proof, HEADER + ENTRY * n + 4);
  return out;
}

