/**
 * The verifying key a node exports (`fabstir-node keys export-vk`), checked
 * against the vk_id the caller pins and turned into a verification plan.
 *
 * The id is recomputed here exactly as the Rust crate computes it
 * (keys.rs `VkId::of`): SHA-256 over "fabstir-zk verifying key", the circuit
 * version, halo2's processed key bytes, the key's transcript representation
 * (Blake2b-512 with personalisation "Halo2-Verify-Key" over the pinned text,
 * reduced into the scalar field) and the compressed SRS points [1]_1, [1]_2,
 * [s]_2. Everything the verifier uses (domain, gates, queries, fixed
 * commitments, SRS points) is read from those bound bytes and nothing else.
 */
import { bn254 } from '@noble/curves/bn254.js';
import { blake2b } from '@noble/hashes/blake2.js';
import { sha256 } from '@noble/hashes/sha2.js';
import { KeyError } from './errors.js';
import { Q, R, bigToLe, bytesToHex, concat, hexToBytes, inv, leToBig, powMod } from './field.js';
import { parseStrictJson } from './json.js';
import { PROOF_LAYOUT } from './envelope.js';
import { parseDebug } from './pinned.js';
import { INSTANCE_BITS } from './statement.js';

const EXPORT_FORMAT = 'fabstir-zk verifying key';
/** The `format` of a batch verifying key's export (`keys export-vk --batch-size N`). */
const BATCH_EXPORT_FORMAT = 'fabstir-zk batch verifying key';
/** The largest batch (crates/fabstir-zk/src/batch/layout.rs, `BatchSize::MAX`). */
export const MAX_BATCH_ENTRIES = 236;
/** Size bound in bits of each band of a batch's public inputs (commitment, chain id, marketplace, job hi, job lo, host id, tokens). */
export const BATCH_BAND_BITS = [254, 64, 160, 128, 128, 254, 64];
const MAX_EXPORT_LEN = 8 << 20;
const MAX_DEGREE = 5;
const utf8 = new TextEncoder();

const fail = (code, message, field) => {
  throw new KeyError(code, message, field);
};

function coord(value, field) {
  if (typeof value !== 'string' || !/^0x[0-9a-fA-F]{64}$/.test(value)) {
    fail('malformed_key', `${field} must be 0x + 64 hex digits`, field);
  }
  const x = BigInt(value);
  if (x >= Q) fail('malformed_key', `${field} is not below the base field modulus`, field);
  return x;
}

function g1FromJson(value, field) {
  if (!Array.isArray(value) || value.length !== 2) fail('malformed_key', `${field} must be [x, y]`, field);
  return g1Point(coord(value[0], `${field}.x`), coord(value[1], `${field}.y`), field);
}

function g1Point(x, y, field) {
  try {
    const p = bn254.G1.Point.fromAffine({ x, y });
    p.assertValidity();
    if (p.is0()) throw new Error('identity');
    return p;
  } catch {
    return fail('malformed_key', `${field} is not a point of G1`, field);
  }
}

function g2FromJson(value, field) {
  const ok = Array.isArray(value) && value.length === 2 && value.every((c) => Array.isArray(c) && c.length === 2);
  if (!ok) fail('malformed_key', `${field} must be [[x.c0, x.c1], [y.c0, y.c1]]`, field);
  const x = { c0: coord(value[0][0], `${field}.x.c0`), c1: coord(value[0][1], `${field}.x.c1`) };
  const y = { c0: coord(value[1][0], `${field}.y.c0`), c1: coord(value[1][1], `${field}.y.c1`) };
  try {
    const p = bn254.G2.Point.fromAffine({ x, y });
    p.assertValidity();
    if (p.is0()) throw new Error('identity');
    return { point: p, x, y };
  } catch {
    return fail('malformed_key', `${field} is not a point of G2`, field);
  }
}

/** halo2curves' compressed G1: x little-endian, y's parity in bit 6 of the last byte. */
function compressG1(x, y) {
  const out = bigToLe(x, 32);
  out[31] |= Number(y & 1n) << 6;
  return out;
}

/** halo2curves' compressed G2: x.c0, x.c1 little-endian, y.c0's parity in bit 6 of the last byte. */
function compressG2(x, y) {
  const out = concat(bigToLe(x.c0, 32), bigToLe(x.c1, 32));
  out[63] |= Number(y.c0 & 1n) << 6;
  return out;
}

/** halo2's transcript representation of a key: Blake2b-512 of the pinned text, reduced mod r. */
export function transcriptRepr(pinned) {
  const body = utf8.encode(pinned);
  const len = new Uint8Array(8);
  new DataView(len.buffer).setBigUint64(0, BigInt(body.length), true);
  const digest = blake2b(concat(len, body), { dkLen: 64, personalization: utf8.encode('Halo2-Verify-Key') });
  return leToBig(digest) % R;
}

// Accessors of the pinned tree, failing with the path they expected.
const field = (node, name, path) => {
  if (!node || node.type !== 'struct' || !(name in node.fields)) fail('unsupported_key', `pinned key has no ${path}`, path);
  return node.fields[name];
};
const int = (v, path) => (typeof v === 'bigint' ? v : fail('unsupported_key', `pinned ${path} is not a number`, path));
const list = (v, path) => (Array.isArray(v) ? v : fail('unsupported_key', `pinned ${path} is not a list`, path));
function rotation(v, path) {
  if (!v || v.type !== 'tuple' || v.name !== 'Rotation' || v.items.length !== 1) fail('unsupported_key', `pinned ${path} is not a Rotation`, path);
  return Number(int(v.items[0], path));
}

function queries(v, kind, path) {
  return list(v, path).map((q, i) => {
    if (!q || q.type !== 'tuple' || q.name !== '' || q.items.length !== 2) fail('unsupported_key', `pinned ${path}[${i}] is not a query`, path);
    const col = q.items[0];
    const type = field(col, 'column_type', `${path}[${i}].column_type`);
    if (type.type !== 'ident' || type.name !== kind) fail('unsupported_key', `pinned ${path}[${i}] is not a ${kind} column`, path);
    return [Number(int(field(col, 'index', `${path}[${i}].index`), path)), rotation(q.items[1], path)];
  });
}

/**
 * The gates as one expression graph (each distinct node once; children
 * before parents) and each gate polynomial's root, in halo2's order.
 */
function buildGraph(gates, advice, fixed, instance) {
  const nodes = [];
  const index = new Map();
  const push = (key, node) => {
    let at = index.get(key);
    if (at === undefined) {
      at = nodes.length;
      nodes.push(node);
      index.set(key, at);
    }
    return at;
  };
  const query = (e, list, kind) => {
    const col = Number(int(field(e, 'column_index', 'gate column'), 'gate'));
    const rot = rotation(field(e, 'rotation', 'gate rotation'), 'gate');
    const qi = Number(int(field(e, 'query_index', 'gate query'), 'gate'));
    const found = kind === 'instance' ? list.findIndex((r) => r === rot && col === 0) : list.findIndex(([c, r]) => c === col && r === rot);
    if (found < 0 || found !== qi) fail('unsupported_key', `a gate's ${kind} query is not in the key`, 'gates');
    return found;
  };
  const degrees = [];
  const walk = (e) => {
    if (!e || (e.type !== 'tuple' && e.type !== 'struct')) fail('unsupported_key', 'a gate is not an expression', 'gates');
    switch (e.type === 'struct' ? e.name : e.name + '()') {
      case 'Constant()': {
        const c = int(e.items[0], 'gates');
        if (c >= R) fail('unsupported_key', 'a gate constant is not below r', 'gates');
        return [push('c' + c, { op: 'const', c }), 0];
      }
      case 'Advice':
        return [push('a' + query(e, advice, 'advice'), { op: 'advice', i: query(e, advice, 'advice') }), 1];
      case 'Fixed':
        return [push('f' + query(e, fixed, 'fixed'), { op: 'fixed', i: query(e, fixed, 'fixed') }), 1];
      case 'Instance':
        return [push('i' + query(e, instance, 'instance'), { op: 'instance', i: query(e, instance, 'instance') }), 1];
      case 'Negated()': {
        const [a, d] = walk(e.items[0]);
        return [push('n' + a, { op: 'neg', a }), d];
      }
      case 'Sum()': {
        const [a, da] = walk(e.items[0]);
        const [b, db] = walk(e.items[1]);
        return [push(`s${Math.min(a, b)},${Math.max(a, b)}`, { op: 'add', a, b }), Math.max(da, db)];
      }
      case 'Product()': {
        const [a, da] = walk(e.items[0]);
        const [b, db] = walk(e.items[1]);
        return [push(`p${Math.min(a, b)},${Math.max(a, b)}`, { op: 'mul', a, b }), da + db];
      }
      case 'Scaled()': {
        const [a, d] = walk(e.items[0]);
        const c = int(e.items[1], 'gates');
        if (c >= R) fail('unsupported_key', 'a gate constant is not below r', 'gates');
        const b = push('c' + c, { op: 'const', c });
        return [push(`p${Math.min(a, b)},${Math.max(a, b)}`, { op: 'mul', a, b }), d];
      }
      default:
        return fail('unsupported_key', `gates with ${e.name} are not supported`, 'gates');
    }
  };
  const roots = gates.map((g) => {
    const [root, d] = walk(g);
    degrees.push(d);
    return root;
  });
  return { nodes, roots, maxDegree: Math.max(0, ...degrees) };
}

/** halo2's SHPLONK rotation sets (construct_intermediate_sets), in its order. */
function rotationSets(advice, fixed) {
  const qs = [
    ...advice.map(([c, r], i) => [`a${c}`, { kind: 'advice', c }, r, { kind: 'advice', i }]),
    ...fixed.map(([c, r], i) => [`f${c}`, { kind: 'fixed', c }, r, { kind: 'fixed', i }]),
    ['q', { kind: 'quotient' }, 0, { kind: 'quotient' }],
    ['r', { kind: 'random' }, 0, { kind: 'random' }],
  ];
  const per = [];
  for (const [key, commitment, r, e] of qs) {
    const found = per.find((p) => p.key === key);
    if (found) found.points.push([r, e]);
    else per.push({ key, commitment, points: [[r, e]] });
  }
  const sets = [];
  for (const { commitment, points } of per) {
    points.sort((a, b) => a[0] - b[0]);
    const rotations = points.map((p) => p[0]);
    const evals = points.map((p) => p[1]);
    const set = sets.find((s) => s.rotations.length === rotations.length && s.rotations.every((r, i) => r === rotations[i]));
    if (set) set.commitments.push({ commitment, evals });
    else sets.push({ rotations, commitments: [{ commitment, evals }] });
  }
  return sets;
}

/** Checks halo2's processed key bytes against the pinned key and returns them. */
function checkVkBytes(bytes, k, fixedCommitments) {
  const n = fixedCommitments.length;
  const expected = 1 + 4 + 1 + 4 + 32 * n;
  if (bytes.length !== expected) fail('malformed_key', `vk must be ${expected} bytes (no permutation, no selectors), found ${bytes.length}`, 'vk');
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (bytes[0] !== 2) fail('malformed_key', `vk has halo2 key version ${bytes[0]}, expected 2`, 'vk');
  if (view.getUint32(1, true) !== k) fail('malformed_key', 'vk names another k than the pinned key', 'vk');
  if (bytes[5] !== 0) fail('unsupported_key', 'vk with compressed selectors is not supported', 'vk');
  if (view.getUint32(6, true) !== n) fail('malformed_key', 'vk has another number of fixed commitments than the pinned key', 'vk');
  fixedCommitments.forEach((p, i) => {
    const { x, y } = p.toAffine();
    const c = compressG1(x, y);
    for (let j = 0; j < 32; j++) {
      if (bytes[10 + 32 * i + j] !== c[j]) fail('malformed_key', `vk fixed commitment ${i} differs from the pinned key's`, 'vk');
    }
  });
}

/**
 * Reads an exported verifying key (its JSON text, bytes or parsed object),
 * recomputes its vk_id and refuses it unless that equals `vkId`, the id the
 * caller trusts. Returns the prepared key `verifyProof` uses. A batch key's
 * export (`"format": "fabstir-zk batch verifying key"`, `"entries": N`) gives
 * the key `verifyBatch` and `checkBatchEntry` use (`batchEntries` = N; its
 * id is computed as crates/fabstir-zk/src/keys.rs `VkId::of_batch`).
 */
export function prepareVerifyingKey(exported, { vkId } = {}) {
  if (typeof vkId !== 'string' || !/^0x[0-9a-fA-F]{64}$/.test(vkId)) {
    fail('bad_vk_id', 'vkId (the id you trust) must be 0x + 64 hex digits', 'vkId');
  }
  let obj = exported;
  if (typeof exported === 'string' || exported instanceof Uint8Array) {
    const text = typeof exported === 'string' ? exported : new TextDecoder().decode(exported);
    if (text.length > MAX_EXPORT_LEN) fail('malformed_key', `the key export is over ${MAX_EXPORT_LEN} bytes`, 'key');
    try {
      obj = parseStrictJson(text);
    } catch (e) {
      fail('malformed_key', `the key export is not valid JSON: ${e.message}`, 'key');
    }
  }
  if (!obj || typeof obj !== 'object') fail('malformed_key', 'the key export must be a JSON object', 'key');
  const batch = obj.format === BATCH_EXPORT_FORMAT;
  if (obj.format !== EXPORT_FORMAT && !batch) fail('malformed_key', `format must be "${EXPORT_FORMAT}" or "${BATCH_EXPORT_FORMAT}"`, 'format');
  const fv = Number(obj.format_version?.text ?? obj.format_version);
  if (fv !== 1) fail('unsupported_key', `format_version ${obj.format_version} is not supported`, 'format_version');
  // A batch key: its size, which its vk_id covers; a single key: its circuit version.
  const entries = batch ? Number(obj.entries?.text ?? obj.entries) : 0;
  if (batch && !(Number.isInteger(entries) && entries >= 1 && entries <= MAX_BATCH_ENTRIES)) {
    fail('malformed_key', `entries must be an integer from 1 to ${MAX_BATCH_ENTRIES}`, 'entries');
  }
  const version = batch ? 2 : Number(obj.circuit_version?.text ?? obj.circuit_version);
  if (version !== 2) fail('unsupported_key', `circuit_version ${obj.circuit_version} is not supported (2 is: its vk_id covers the SRS points)`, 'circuit_version');
  const vkBytes = typeof obj.vk === 'string' && obj.vk.startsWith('0x') ? hexToBytes(obj.vk) : null;
  if (!vkBytes) fail('malformed_key', 'vk must be 0x-prefixed hex', 'vk');
  if (typeof obj.pinned !== 'string') fail('malformed_key', 'pinned must be a string', 'pinned');
  const g1 = g1FromJson(obj.g1, 'g1');
  const g2 = g2FromJson(obj.g2, 'g2');
  const sG2 = g2FromJson(obj.s_g2, 's_g2');

  // The identity, from the bound data only.
  const repr = transcriptRepr(obj.pinned);
  const g1a = g1.toAffine();
  const sizeBytes = new Uint8Array(8);
  new DataView(sizeBytes.buffer).setBigUint64(0, BigInt(entries), false);
  const id = bytesToHex(
    sha256(
      concat(
        ...(batch ? [utf8.encode('fabstir-zk batch verifying key'), sizeBytes] : [utf8.encode('fabstir-zk verifying key'), Uint8Array.of(version)]),
        vkBytes,
        bigToLe(repr, 32),
        compressG1(g1a.x, g1a.y),
        compressG2(g2.x, g2.y),
        compressG2(sG2.x, sG2.y),
      ),
    ),
  );
  if (id !== vkId.toLowerCase()) {
    fail('vk_id_mismatch', `this key's vk_id is ${id}, not the trusted ${vkId.toLowerCase()}: refused`, 'vkId');
  }
  if (typeof obj.vk_id === 'string' && obj.vk_id.toLowerCase() !== id) {
    fail('malformed_key', `the export names vk_id ${obj.vk_id} but its contents have ${id}`, 'vk_id');
  }

  // The plan, from the pinned key.
  let pinned;
  try {
    pinned = parseDebug(obj.pinned);
  } catch (e) {
    fail('malformed_key', e.message, 'pinned');
  }
  if (field(pinned, 'base_modulus', 'base_modulus') !== '0x' + Q.toString(16).padStart(64, '0') ||
      field(pinned, 'scalar_modulus', 'scalar_modulus') !== '0x' + R.toString(16).padStart(64, '0')) {
    fail('unsupported_key', 'the pinned key is not over BN254', 'pinned');
  }
  const domain = field(pinned, 'domain', 'domain');
  const k = Number(int(field(domain, 'k', 'domain.k'), 'domain.k'));
  const extendedK = Number(int(field(domain, 'extended_k', 'domain.extended_k'), 'domain.extended_k'));
  const omega = int(field(domain, 'omega', 'domain.omega'), 'domain.omega');
  if (k < 1 || k > 26) fail('unsupported_key', `k = ${k} is out of range`, 'domain.k');
  const n = 1n << BigInt(k);
  if (powMod(omega, n) !== 1n || powMod(omega, n / 2n) === 1n) fail('malformed_key', 'omega is not a primitive 2^k-th root of unity', 'domain.omega');
  const cs = field(pinned, 'cs', 'cs');
  const num = (name) => Number(int(field(cs, name, `cs.${name}`), `cs.${name}`));
  if (num('num_instance_columns') !== 1) fail('unsupported_key', 'only one instance column is supported', 'cs.num_instance_columns');
  if (num('num_selectors') !== 0) fail('unsupported_key', 'selectors are not supported', 'cs.num_selectors');
  const permutationColumns = list(field(field(cs, 'permutation', 'cs.permutation'), 'columns', 'cs.permutation.columns'), 'cs.permutation.columns');
  if (permutationColumns.length !== 0) fail('unsupported_key', 'a permutation argument is not supported', 'cs.permutation');
  if (list(field(cs, 'lookups', 'cs.lookups'), 'cs.lookups').length !== 0) fail('unsupported_key', 'lookups are not supported', 'cs.lookups');
  if (list(field(cs, 'constants', 'cs.constants'), 'cs.constants').length !== 0) fail('unsupported_key', 'constants are not supported', 'cs.constants');
  const advice = queries(field(cs, 'advice_queries', 'cs.advice_queries'), 'Advice', 'cs.advice_queries');
  const fixed = queries(field(cs, 'fixed_queries', 'cs.fixed_queries'), 'Fixed', 'cs.fixed_queries');
  const instanceQ = queries(field(cs, 'instance_queries', 'cs.instance_queries'), 'Instance', 'cs.instance_queries');
  const numAdvice = num('num_advice_columns');
  const numFixed = num('num_fixed_columns');
  if (advice.some(([c]) => c >= numAdvice) || fixed.some(([c]) => c >= numFixed) || instanceQ.some(([c]) => c !== 0)) {
    fail('malformed_key', 'a query names a column the key does not have', 'cs');
  }
  const graph = buildGraph(list(field(cs, 'gates', 'cs.gates'), 'cs.gates'), advice, fixed, instanceQ.map(([, r]) => r));
  const minDeg = field(cs, 'minimum_degree', 'cs.minimum_degree');
  const minimum = minDeg.type === 'tuple' && minDeg.name === 'Some' ? Number(int(minDeg.items[0], 'cs.minimum_degree')) : 1;
  // halo2's cs.degree(): the permutation's 3, the minimum, the gates; capped at MAX_DEGREE.
  const degree = Math.max(3, minimum, graph.maxDegree);
  if (degree > MAX_DEGREE) fail('unsupported_key', `degree ${degree} is above ${MAX_DEGREE}`, 'cs.gates');
  let ek = k;
  while (2 ** ek < 2 ** k * (degree - 1)) ek++;
  if (ek !== extendedK) fail('malformed_key', 'extended_k does not match the gates\' degree', 'domain.extended_k');
  const fixedCommitments = list(field(pinned, 'fixed_commitments', 'fixed_commitments'), 'fixed_commitments').map((t, i) => {
    if (!t || t.type !== 'tuple' || t.items.length !== 2) fail('malformed_key', `fixed_commitments[${i}] is not (x, y)`, 'fixed_commitments');
    const [x, y] = t.items.map((c) => int(c, 'fixed_commitments'));
    if (x >= Q || y >= Q) fail('malformed_key', `fixed_commitments[${i}] is not canonical`, 'fixed_commitments');
    return g1Point(x, y, `fixed_commitments[${i}]`);
  });
  if (fixedCommitments.length !== numFixed) fail('malformed_key', 'one fixed commitment per fixed column expected', 'fixed_commitments');
  const permCommitments = list(field(field(pinned, 'permutation', 'permutation'), 'commitments', 'permutation.commitments'), 'permutation.commitments');
  if (permCommitments.length !== 0) fail('unsupported_key', 'permutation commitments are not supported', 'permutation');
  checkVkBytes(vkBytes, k, fixedCommitments);

  const omegaPow = (rot) => powMod(omega, ((BigInt(rot) % n) + n) % n);
  const sets = rotationSets(advice, fixed);
  const allRotations = [];
  for (const s of sets) for (const r of s.rotations) if (!allRotations.includes(r)) allRotations.push(r);
  // A batch's public inputs are seven bands of `entries` values each (crates/fabstir-zk/src/batch/layout.rs).
  const instanceBits = batch ? BATCH_BAND_BITS.flatMap((bits) => new Array(entries).fill(bits)) : INSTANCE_BITS;
  // Proof layout (bytes).
  const quotientPieces = degree - 1;
  const layout = {};
  layout.advice = 0;
  layout.random = 64 * numAdvice;
  layout.quotient = layout.random + 64;
  layout.adviceEvals = layout.quotient + 64 * quotientPieces;
  layout.fixedEvals = layout.adviceEvals + 32 * advice.length;
  layout.randomEval = layout.fixedEvals + 32 * fixed.length;
  layout.w = layout.randomEval + 32;
  layout.wPrime = layout.w + 64;
  layout.len = layout.wPrime + 64;
  const leading = numAdvice + 1 + quotientPieces;
  const scalarCount = advice.length + fixed.length + 1;
  if (!batch && (leading !== PROOF_LAYOUT.leadingPoints || scalarCount !== PROOF_LAYOUT.scalars)) {
    fail('unsupported_key', `the key's proofs have ${leading} leading points and ${scalarCount} evaluations; this package reads ${PROOF_LAYOUT.leadingPoints} and ${PROOF_LAYOUT.scalars}`, 'cs');
  }
  // Per set and point: the inverse of the Lagrange denominator at x = 1, a
  // constant (distinct rotations give distinct powers of omega: never zero).
  const setDenominatorInvs = sets.map((s) =>
    s.rotations.map((rt, t) => inv(s.rotations.reduce((acc, rj, j) => (j === t ? acc : (acc * ((omegaPow(rt) - omegaPow(rj) + R) % R)) % R), 1n))),
  );
  if (setDenominatorInvs.flat().some((x) => x === null)) fail('malformed_key', 'two rotations of a set coincide', 'cs');
  return Object.freeze({
    kind: 'fabstir-prepared-vk',
    vkId: id,
    circuitVersion: version,
    // 0 for a single proof's key; the batch size for a batch key.
    batchEntries: entries,
    k,
    n,
    omega,
    transcriptRepr: repr,
    instanceBits,
    instanceRotations: instanceQ.map(([, r]) => r),
    adviceQueries: advice,
    fixedQueries: fixed,
    numAdvice,
    quotientPieces,
    nodes: graph.nodes,
    gateRoots: graph.roots,
    sets,
    allRotations,
    setDenominatorInvs,
    nInv: inv(n % R),
    omegaPows: new Map(allRotations.map((r) => [r, omegaPow(r)])),
    omegaPow,
    fixedCommitments,
    g1,
    g2: g2.point,
    sG2: sG2.point,
    layout,
  });
}
