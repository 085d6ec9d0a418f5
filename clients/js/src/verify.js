/**
 * Offline verification of a node's proof, in plain JavaScript: the same
 * algorithm as the Rust reference (crates/fabstir-zk/src/evm/native.rs) and
 * the on-chain verifier. The transcript is the Keccak-based EVM transcript
 * the node proves with; the gates are evaluated at the challenge point from
 * the key's pinned constraint system; SHPLONK reduces all openings to one
 * KZG pair checked with one pairing.
 */
import { bn254 } from '@noble/curves/bn254.js';
import { interleavedMSMUnsafe } from '@noble/curves/abstract/curve.js';
import { keccak_256 } from '@noble/hashes/sha3.js';
import { EnvelopeError, KeyError } from './errors.js';
import { R, batchInv, beToBig, bigToBe, concat, powMod } from './field.js';
import { precheck } from './checks.js';
import { parseProof, readPoint } from './envelope.js';
import { prepareVerifyingKey } from './key.js';
import { statementFromResult } from './statement.js';

const G1 = bn254.G1.Point;
const { Fp12 } = bn254.fields;

/** keccak output to a challenge: the 256-bit big-endian value mod r. */
const challenge = (hash) => beToBig(hash) % R;

/** snark-verifier's EVM transcript. */
class Transcript {
  constructor() {
    this.parts = [];
    this.len = 0;
  }
  absorb(bytes) {
    this.parts.push(bytes);
    this.len += bytes.length;
  }
  squeeze() {
    if (this.len === 32) this.absorb(Uint8Array.of(1));
    const hash = keccak_256(concat(...this.parts));
    this.parts = [hash];
    this.len = 32;
    return challenge(hash);
  }
}

const fixedTables = new WeakMap();
/** Multi-scalar multiplication over the key's fixed commitments and [1]_1, cached per key. */
function fixedMsm(key) {
  let msm = fixedTables.get(key);
  if (!msm) {
    msm = interleavedMSMUnsafe(G1, [...key.fixedCommitments, key.g1], 8);
    fixedTables.set(key, msm);
  }
  return msm;
}

const prepared = new WeakMap();
/** Precomputed pairing lines of the key's G2 points, cached per key. */
function g2Lines(key) {
  let lines = prepared.get(key);
  if (!lines) {
    lines = {
      sG2: bn254.utils.calcPairingPrecomputes(key.sG2),
      minusG2: bn254.utils.calcPairingPrecomputes(key.g2.negate()),
    };
    prepared.set(key, lines);
  }
  return lines;
}

/**
 * The KZG check of one proof for the public inputs `instances` (bigints):
 * true if and only if the proof is valid. `proof` must already have passed
 * the envelope's checks (points on the curve, canonical scalars).
 */
export function verifyRaw(key, instances, proof) {
  const L = key.layout;
  if (proof.length !== L.len || instances.length !== key.instanceBits.length) return false;
  for (let i = 0; i < instances.length; i++) {
    const x = instances[i];
    if (x < 0n || x >= R || (key.instanceBits[i] < 254 && x >> BigInt(key.instanceBits[i]) !== 0n)) return false;
  }
  const points = (at, count) => {
    const out = [];
    for (let i = 0; i < count; i++) {
      const p = readPoint(proof, at + 64 * i);
      if (!p.point) return null;
      out.push(p.point);
    }
    return out;
  };
  const scalars = (at, count) => {
    const out = [];
    for (let i = 0; i < count; i++) {
      const x = beToBig(proof, at + 32 * i, at + 32 * i + 32);
      if (x >= R) return null;
      out.push(x);
    }
    return out;
  };
  const advice = points(L.advice, key.numAdvice);
  const random = points(L.random, 1);
  const quotient = points(L.quotient, key.quotientPieces);
  const w1 = points(L.w, 1);
  const w2 = points(L.wPrime, 1);
  const adviceEvals = scalars(L.adviceEvals, key.adviceQueries.length);
  const fixedEvals = scalars(L.fixedEvals, key.fixedQueries.length);
  const randomEval = scalars(L.randomEval, 1);
  if (!advice || !random || !quotient || !w1 || !w2 || !adviceEvals || !fixedEvals || !randomEval) return false;

  // Transcript, in halo2's order.
  const t = new Transcript();
  t.absorb(bigToBe(key.transcriptRepr));
  for (const x of instances) t.absorb(bigToBe(x));
  t.absorb(proof.subarray(L.advice, L.random));
  t.squeeze(); // theta
  t.squeeze(); // beta
  t.squeeze(); // gamma
  t.absorb(proof.subarray(L.random, L.quotient));
  const y = t.squeeze();
  t.absorb(proof.subarray(L.quotient, L.adviceEvals));
  const x = t.squeeze();
  t.absorb(proof.subarray(L.adviceEvals, L.w));
  const shplonkY = t.squeeze();
  const v = t.squeeze();
  t.absorb(proof.subarray(L.w, L.wPrime));
  const u = t.squeeze();

  // Vanishing polynomial and Lagrange values at x.
  const n = key.n;
  const xn = powMod(x, n);
  const xnMinusOne = (xn - 1n + R) % R;
  const nInv = key.nInv;
  // Lagrange indices j - rot for every instance row j and query rotation.
  const lagrangeIdx = [];
  for (const rot of key.instanceRotations) for (let j = 0; j < instances.length; j++) lagrangeIdx.push(j - rot);
  const uniqueIdx = [...new Set(lagrangeIdx)];
  const wis = uniqueIdx.map((i) => key.omegaPow(i));
  // SHPLONK's differences u - x w^r, and the vanishing product of the
  // rotations outside set 0.
  const diff = new Map(key.allRotations.map((r) => [r, (u - ((x * key.omegaPows.get(r)) % R) + R) % R]));
  const zDiff = (s) => key.allRotations.filter((r) => !key.sets[s].rotations.includes(r)).reduce((acc, r) => (acc * diff.get(r)) % R, 1n);
  // Everything to invert at once: x^n - 1, x, z_diff(0), x - w^i.
  const toInvert = [xnMinusOne, x, zDiff(0), ...wis.map((wi) => (x - wi + R) % R)];
  const inverses = batchInv(toInvert);
  if (!inverses) return false;
  const [xnMinusOneInv, xInv, zDiff0Inv] = inverses;
  const lagrange = new Map();
  uniqueIdx.forEach((i, k) => {
    lagrange.set(i, (((((wis[k] * xnMinusOne) % R) * nInv) % R) * inverses[3 + k]) % R);
  });
  const instanceEvals = key.instanceRotations.map((rot) => {
    let sum = 0n;
    for (let j = 0; j < instances.length; j++) sum += instances[j] * lagrange.get(j - rot);
    return sum % R;
  });

  // Gates, folded with powers of y, divided by x^n - 1.
  const nodes = key.nodes;
  const values = new Array(nodes.length);
  for (let i = 0; i < nodes.length; i++) {
    const nd = nodes[i];
    switch (nd.op) {
      case 'const':
        values[i] = nd.c;
        break;
      case 'advice':
        values[i] = adviceEvals[nd.i];
        break;
      case 'fixed':
        values[i] = fixedEvals[nd.i];
        break;
      case 'instance':
        values[i] = instanceEvals[nd.i];
        break;
      case 'neg':
        values[i] = values[nd.a] === 0n ? 0n : R - values[nd.a];
        break;
      case 'add': {
        const s = values[nd.a] + values[nd.b];
        values[i] = s >= R ? s - R : s;
        break;
      }
      default:
        values[i] = (values[nd.a] * values[nd.b]) % R;
    }
  }
  let hEval = 0n;
  for (const root of key.gateRoots) hEval = (hEval * y + values[root]) % R;
  hEval = (hEval * xnMinusOneInv) % R;

  // SHPLONK.
  const z0 = key.sets[0].rotations.reduce((acc, r) => (acc * diff.get(r)) % R, 1n);
  const evalOf = (e) => (e.kind === 'advice' ? adviceEvals[e.i] : e.kind === 'fixed' ? fixedEvals[e.i] : e.kind === 'quotient' ? hEval : randomEval[0]);
  const msmPoints = [];
  const msmScalars = [];
  const fixedScalars = new Array(key.fixedCommitments.length).fill(0n);
  const add = (p, k) => {
    msmPoints.push(p);
    msmScalars.push(k % R);
  };
  let rOuter = 0n;
  let vPow = 1n;
  key.sets.forEach((set, s) => {
    const scale = s === 0 ? vPow : (((vPow * zDiff(s)) % R) * zDiff0Inv) % R;
    const m = set.rotations.length;
    const xPowInv = powMod(xInv, BigInt(m - 1));
    const basis = set.rotations.map((_, t2) => {
      let num = 1n;
      for (let j = 0; j < m; j++) if (j !== t2) num = (num * diff.get(set.rotations[j])) % R;
      return (((num * xPowInv) % R) * key.setDenominatorInvs[s][t2]) % R;
    });
    let yPow = 1n;
    let rInner = 0n;
    for (const { commitment, evals } of set.commitments) {
      let rEval = 0n;
      evals.forEach((e, k2) => {
        rEval += evalOf(e) * basis[k2];
      });
      rInner = (rInner + yPow * (rEval % R)) % R;
      const k = (scale * yPow) % R;
      switch (commitment.kind) {
        case 'advice':
          add(advice[commitment.c], k);
          break;
        case 'fixed':
          fixedScalars[commitment.c] = (fixedScalars[commitment.c] + k) % R;
          break;
        case 'random':
          add(random[0], k);
          break;
        default: {
          let kp = k;
          for (const piece of quotient) {
            add(piece, kp);
            kp = (kp * xn) % R;
          }
        }
      }
      yPow = (yPow * shplonkY) % R;
    }
    rOuter = (rOuter + scale * rInner) % R;
    vPow = (vPow * v) % R;
  });
  add(w1[0], R - z0);
  add(w2[0], u);
  // The proof's points with small per-proof tables; the key's fixed
  // commitments and [1]_1 with tables made once per key.
  const fromProof = interleavedMSMUnsafe(G1, msmPoints, 4)(msmScalars);
  const fromKey = fixedMsm(key)([...fixedScalars, (R - rOuter) % R]);
  const right = fromProof.add(fromKey);
  const left = w2[0];
  if (right.is0()) return false;
  const lines = g2Lines(key);
  const l = left.toAffine();
  const r = right.toAffine();
  const gt = bn254.fields.Fp12.finalExponentiate(
    bn254.millerLoopBatch([
      [lines.sG2, l.x, l.y],
      [lines.minusG2, r.x, r.y],
    ]),
  );
  return Fp12.eql(gt, Fp12.ONE);
}

/** Keys prepared once: per export text (a few recent ones) or export object. */
const textCache = new Map();
const objectCache = new WeakMap();
/** The prepared key of `verifyingKey` (an export or a prepared key) with the trusted id `vkId`, cached. */
export function keyFor(verifyingKey, vkId) {
  if (verifyingKey && verifyingKey.kind === 'fabstir-prepared-vk') {
    if (typeof vkId !== 'string') throw new KeyError('bad_vk_id', 'vkId (the id you trust) must be given', 'vkId');
    if (verifyingKey.vkId !== vkId.toLowerCase()) {
      throw new KeyError('vk_id_mismatch', `this key's vk_id is ${verifyingKey.vkId}, not the trusted ${vkId.toLowerCase()}: refused`, 'vkId');
    }
    return verifyingKey;
  }
  const isText = typeof verifyingKey === 'string';
  const isObject = verifyingKey !== null && typeof verifyingKey === 'object' && !(verifyingKey instanceof Uint8Array);
  const hit = isText ? textCache.get(verifyingKey) : isObject ? objectCache.get(verifyingKey) : undefined;
  if (hit && typeof vkId === 'string' && hit.vkId === vkId.toLowerCase()) return hit;
  const key = prepareVerifyingKey(verifyingKey, { vkId });
  if (isText) {
    if (textCache.size >= 8) textCache.clear();
    textCache.set(verifyingKey, key);
  } else if (isObject) {
    objectCache.set(verifyingKey, key);
  }
  return key;
}

/**
 * Verifies `proof` (envelope: bytes, JSON text or object) for `result` (the
 * inference result the caller holds) and the host `hostId`, under the
 * verifying key `verifyingKey` (the node's export, or a prepared key),
 * which must have the id `vkId` the caller trusts (else a `KeyError` is
 * thrown). The public inputs are recomputed from `result`; those in the
 * envelope are only compared with them, for a precise reason.
 *
 * Returns `{valid: true}` or `{valid: false, reason_code, reason}` with the
 * node's codes: malformed_proof, unknown_verifying_key, wrong_chain,
 * wrong_marketplace, wrong_job, wrong_tokens, wrong_host,
 * commitment_mismatch, invalid_proof.
 */
export function verifyProof(verifyingKey, proof, result, { hostId, vkId } = {}) {
  const key = keyFor(verifyingKey, vkId);
  const statement = statementFromResult(result, hostId);
  let envelope;
  try {
    envelope = parseProof(proof);
  } catch (e) {
    if (e instanceof EnvelopeError) return { valid: false, reason_code: 'malformed_proof', reason: e.message };
    throw e;
  }
  const refused = precheck(envelope, statement, key.vkId, key.circuitVersion);
  if (refused) return refused;
  if (!verifyRaw(key, statement.instances, envelope.proof)) {
    return { valid: false, reason_code: 'invalid_proof', reason: 'the public inputs match but the proof does not verify' };
  }
  return { valid: true };
}
