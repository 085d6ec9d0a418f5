/**
 * Poseidon over the BN254 scalar field with circomlib's parameters
 * (x^5 S-box, 8 full rounds, circomlib's partial round counts), the round
 * constants and MDS matrix derived with the Grain LFSR of the Poseidon
 * paper, exactly as the Rust crate derives them.
 */
import { R, batchInv, inv } from './field.js';

const FULL_ROUNDS = 8;
const PARTIAL_ROUNDS_BY_WIDTH = [56, 57, 56, 60, 60, 63, 64, 63, 60, 66, 60, 65, 70, 60, 64, 68];
const FIELD_BITS = 254;

/** The Grain LFSR (80-bit state) seeded with the parameters. */
class Grain {
  constructor(t, fullRounds, partialRounds) {
    const fields = [
      [1, 2],
      [0, 4],
      [FIELD_BITS, 12],
      [t, 12],
      [fullRounds, 10],
      [partialRounds, 10],
      [(1 << 30) - 1, 30],
    ];
    // A sliding window over the bit stream: bit i of the state is buf[pos + i].
    this.buf = new Uint8Array(80 + 8192);
    let i = 0;
    for (const [value, width] of fields) {
      for (let b = width - 1; b >= 0; b--) this.buf[i++] = Math.floor(value / 2 ** b) & 1;
    }
    this.pos = 0;
    for (let k = 0; k < 160; k++) this.clock();
  }

  clock() {
    const buf = this.buf;
    let p = this.pos;
    if (p === 8192) {
      buf.copyWithin(0, p, p + 80);
      p = 0;
    }
    const b = buf[p + 62] ^ buf[p + 51] ^ buf[p + 38] ^ buf[p + 23] ^ buf[p + 13] ^ buf[p];
    buf[p + 80] = b;
    this.pos = p + 1;
    return b;
  }

  nextBit() {
    for (;;) {
      const keep = this.clock();
      const bit = this.clock();
      if (keep) return bit;
    }
  }

  nextInteger() {
    // 254 bits, most significant first, gathered 30 at a time.
    let x = 0n;
    let left = FIELD_BITS;
    while (left > 0) {
      const n = Math.min(30, left);
      let chunk = 0;
      for (let i = 0; i < n; i++) chunk = chunk * 2 + this.nextBit();
      x = (x << BigInt(n)) | BigInt(chunk);
      left -= n;
    }
    return x;
  }

  nextRejecting() {
    for (;;) {
      const x = this.nextInteger();
      if (x < R) return x;
    }
  }

  nextReduced() {
    return this.nextInteger() % R;
  }
}

function generate(t) {
  const partialRounds = PARTIAL_ROUNDS_BY_WIDTH[t - 2];
  const grain = new Grain(t, FULL_ROUNDS, partialRounds);
  const rounds = FULL_ROUNDS + partialRounds;
  const constants = [];
  for (let r = 0; r < rounds; r++) {
    const row = [];
    for (let i = 0; i < t; i++) row.push(grain.nextRejecting());
    constants.push(row);
  }
  for (;;) {
    let samples;
    do {
      samples = Array.from({ length: 2 * t }, () => grain.nextReduced());
    } while (new Set(samples).size !== samples.length);
    const sums = [];
    for (let i = 0; i < t; i++) for (let j = 0; j < t; j++) sums.push((samples[i] + samples[t + j]) % R);
    // All inverses at once; a zero sum makes the matrix degenerate: sample again.
    const inverses = batchInv(sums);
    const degenerate = inverses === null;
    const mds = degenerate ? null : Array.from({ length: t }, (_, i) => inverses.slice(i * t, (i + 1) * t));
    if (!degenerate) return { t, partialRounds, constants, mds };
  }
}

/** The inverse of a square matrix over Fr (Gauss-Jordan); null if singular. */
function invertMatrix(m) {
  const n = m.length;
  const a = m.map((row, i) => [...row, ...Array.from({ length: n }, (_, j) => (i === j ? 1n : 0n))]);
  for (let col = 0; col < n; col++) {
    const pivot = a.findIndex((row, i) => i >= col && row[col] !== 0n);
    if (pivot < 0) return null;
    [a[col], a[pivot]] = [a[pivot], a[col]];
    const f = inv(a[col][col]);
    a[col] = a[col].map((x) => (x * f) % R);
    for (let i = 0; i < n; i++) {
      if (i === col || a[i][col] === 0n) continue;
      const g = a[i][col];
      a[i] = a[i].map((x, j) => (((x - g * a[col][j]) % R) + R) % R);
    }
  }
  return a.map((row) => row.slice(n));
}

const matMul = (a, b) => a.map((row) => b[0].map((_, j) => row.reduce((acc, x, k) => acc + x * b[k][j], 0n) % R));
const matVec = (m, v) => m.map((row) => row.reduce((acc, x, j) => acc + x * v[j], 0n) % R);

/**
 * The same permutation with cheaper partial rounds (the Poseidon paper's
 * appendix B): the constants of a partial round other than the first
 * element are pushed into the next round through the MDS matrix, and each
 * partial round's matrix is factored as a sparse matrix (first row and
 * column, identity elsewhere) times a matrix acting on elements 1.. only,
 * which commutes with the partial S-box and is pushed into the round
 * before; the last one lands in the last full round of the first half.
 */
function optimize(p) {
  const { t, partialRounds, mds } = p;
  const half = FULL_ROUNDS / 2;
  const constants = p.constants.map((row) => [...row]);
  for (let r = half; r < half + partialRounds; r++) {
    const rest = [0n, ...constants[r].slice(1)];
    const pushed = matVec(mds, rest);
    constants[r] = [constants[r][0], ...Array(t - 1).fill(0n)];
    constants[r + 1] = constants[r + 1].map((c, i) => (c + pushed[i]) % R);
  }
  // Partial round k's matrix (k = 0 first) is diag(1, H_k) M with
  // H_k = hat^(RP-1-k), hat = M's lower-right block: its sparse factor has
  // row 0 = [m00, m01^T H'^-1] (H' = H_k hat) and column 0 = H_k m10.
  const hat = mds.slice(1).map((row) => row.slice(1));
  const hatInv = invertMatrix(hat);
  if (!hatInv) return null;
  const vecMat = (v, m) => m[0].map((_, j) => v.reduce((acc, x, i) => acc + x * m[i][j], 0n) % R);
  const sparse = new Array(partialRounds);
  let b = mds[0].slice(1);
  let col = mds.slice(1).map((row) => row[0]);
  for (let k = partialRounds - 1; k >= 0; k--) {
    b = vecMat(b, hatInv);
    sparse[k] = { row0: [mds[0][0], ...b], col0: col };
    col = matVec(hat, col);
  }
  // The first partial round's dense factor diag(1, hat^RP) joins the last full round of the first half.
  let power = null;
  let base = hat;
  for (let e = partialRounds; e > 0; e >>= 1) {
    if (e & 1) power = power ? matMul(power, base) : base;
    if (e > 1) base = matMul(base, base);
  }
  const current = matMul([[1n, ...Array(t - 1).fill(0n)], ...power.map((row) => [0n, ...row])], mds);
  return { t, partialRounds, constants, mds, firstHalfLast: current, sparse };
}

const cache = new Map();
function params(t) {
  let p = cache.get(t);
  if (!p) {
    const plain = generate(t);
    p = optimize(plain) ?? { ...plain, sparse: null };
    cache.set(t, p);
  }
  return p;
}

const pow5 = (x) => {
  const x2 = (x * x) % R;
  return (((x2 * x2) % R) * x) % R;
};

function dense(m, state, t) {
  const next = new Array(t);
  for (let i = 0; i < t; i++) {
    let acc = 0n;
    const row = m[i];
    for (let j = 0; j < t; j++) acc += row[j] * state[j];
    next[i] = acc % R;
  }
  return next;
}

/**
 * circomlib's Poseidon of `inputs` (1 to 15 field elements as bigints below
 * r): the state [0, ...inputs] permuted, its first element returned.
 */
export function poseidon(inputs) {
  if (!Array.isArray(inputs) || inputs.length < 1 || inputs.length > 15) {
    throw new RangeError('poseidon: inputs must be 1 to 15 field elements');
  }
  for (const [i, x] of inputs.entries()) {
    if (typeof x !== 'bigint' || x < 0n || x >= R) {
      throw new RangeError(`poseidon: inputs[${i}] is not a field element below r`);
    }
  }
  const { t, partialRounds, constants, mds, sparse, firstHalfLast } = params(inputs.length + 1);
  let state = [0n, ...inputs];
  const half = FULL_ROUNDS / 2;
  for (let r = 0; r < constants.length; r++) {
    const c = constants[r];
    const partial = r >= half && r < half + partialRounds;
    if (partial && sparse) {
      const s0 = pow5((state[0] + c[0]) % R);
      const { row0, col0 } = sparse[r - half];
      let acc = row0[0] * s0;
      for (let j = 1; j < t; j++) acc += row0[j] * state[j];
      for (let j = 1; j < t; j++) state[j] = (state[j] + col0[j - 1] * s0) % R;
      state[0] = acc % R;
      continue;
    }
    for (let i = 0; i < t; i++) state[i] = (state[i] + c[i]) % R;
    if (partial) state[0] = pow5(state[0]);
    else for (let i = 0; i < t; i++) state[i] = pow5(state[i]);
    state = dense(sparse && r === half - 1 ? firstHalfLast : mds, state, t);
  }
  return state[0];
}
