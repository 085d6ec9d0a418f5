/**
 * Poseidon over the BN254 scalar field with circomlib's parameters
 * (x^5 S-box, 8 full rounds, circomlib's partial round counts), the round
 * constants and MDS matrix derived with the Grain LFSR of the Poseidon
 * paper, exactly as the Rust crate derives them.
 */
import { R, inv } from './field.js';

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
    this.bits = new Uint8Array(80);
    let i = 0;
    for (const [value, width] of fields) {
      for (let b = width - 1; b >= 0; b--) this.bits[i++] = (value / 2 ** b) & 1;
    }
    this.head = 0;
    for (let k = 0; k < 160; k++) this.clock();
  }

  bit(i) {
    return this.bits[(this.head + i) % 80];
  }

  clock() {
    const b = this.bit(62) ^ this.bit(51) ^ this.bit(38) ^ this.bit(23) ^ this.bit(13) ^ this.bit(0);
    this.bits[this.head] = b;
    this.head = (this.head + 1) % 80;
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
    let x = 0n;
    for (let i = 0; i < FIELD_BITS; i++) x = (x << 1n) | BigInt(this.nextBit());
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
    const mds = [];
    let degenerate = false;
    for (let i = 0; i < t; i++) {
      const row = [];
      for (let j = 0; j < t; j++) {
        const x = inv(samples[i] + samples[t + j]);
        if (x === null) degenerate = true;
        row.push(x ?? 0n);
      }
      mds.push(row);
    }
    if (!degenerate) return { t, partialRounds, constants, mds };
  }
}

const cache = new Map();
function params(t) {
  let p = cache.get(t);
  if (!p) {
    p = generate(t);
    cache.set(t, p);
  }
  return p;
}

const pow5 = (x) => {
  const x2 = (x * x) % R;
  return (((x2 * x2) % R) * x) % R;
};

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
  const { t, partialRounds, constants, mds } = params(inputs.length + 1);
  let state = [0n, ...inputs];
  const half = FULL_ROUNDS / 2;
  for (let r = 0; r < constants.length; r++) {
    const c = constants[r];
    for (let i = 0; i < t; i++) state[i] = (state[i] + c[i]) % R;
    if (r < half || r >= half + partialRounds) {
      for (let i = 0; i < t; i++) state[i] = pow5(state[i]);
    } else {
      state[0] = pow5(state[0]);
    }
    const next = new Array(t);
    for (let i = 0; i < t; i++) {
      let acc = 0n;
      const row = mds[i];
      for (let j = 0; j < t; j++) acc += row[j] * state[j];
      next[i] = acc % R;
    }
    state = next;
  }
  return state[0];
}
