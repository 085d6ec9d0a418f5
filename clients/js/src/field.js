/** BN254 scalar-field arithmetic on bigints, and byte/hex helpers. */

/** The BN254 scalar field modulus r. */
export const R = 0x30644e72e131a029b85045b68181585d2833e84879b9709143e1f593f0000001n;
/** The BN254 base field modulus q. */
export const Q = 0x30644e72e131a029b85045b68181585d97816a916871ca8d3c208c16d87cfd47n;

/** a mod r, in [0, r). */
export const mod = (a) => {
  const x = a % R;
  return x < 0n ? x + R : x;
};

/** a^e mod m (e >= 0). */
export function powMod(a, e, m = R) {
  let base = a % m;
  if (base < 0n) base += m;
  let acc = 1n;
  while (e > 0n) {
    if (e & 1n) acc = (acc * base) % m;
    base = (base * base) % m;
    e >>= 1n;
  }
  return acc;
}

/** The inverse mod m, or null for zero (extended Euclid). */
export function inv(a, m = R) {
  let x = a % m;
  if (x < 0n) x += m;
  if (x === 0n) return null;
  let [r0, r1, s0, s1] = [m, x, 0n, 1n];
  while (r1 !== 0n) {
    const q = r0 / r1;
    [r0, r1] = [r1, r0 - q * r1];
    [s0, s1] = [s1, s0 - q * s1];
  }
  return s0 < 0n ? s0 + m : s0;
}

/** Inverts every element at once (Montgomery's trick); null if any is zero. */
export function batchInv(values, m = R) {
  const prefix = new Array(values.length);
  let acc = 1n;
  for (let i = 0; i < values.length; i++) {
    prefix[i] = acc;
    acc = (acc * values[i]) % m;
  }
  let accInv = inv(acc, m);
  if (accInv === null) return null;
  const out = new Array(values.length);
  for (let i = values.length - 1; i >= 0; i--) {
    out[i] = (accInv * prefix[i]) % m;
    accInv = (accInv * values[i]) % m;
  }
  return out;
}

const HEX = /^[0-9a-fA-F]*$/;

/** Bytes from hex (with or without 0x); null if not hex of even length. */
export function hexToBytes(hex) {
  const digits = hex.startsWith('0x') || hex.startsWith('0X') ? hex.slice(2) : hex;
  if (digits.length % 2 !== 0 || !HEX.test(digits)) return null;
  const out = new Uint8Array(digits.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(digits.substr(2 * i, 2), 16);
  return out;
}

const HEX_DIGITS = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));

/** Lowercase hex, 0x-prefixed. */
export function bytesToHex(bytes) {
  let s = '0x';
  for (const b of bytes) s += HEX_DIGITS[b];
  return s;
}

/** A big-endian byte slice as a bigint. */
export function beToBig(bytes, start = 0, end = bytes.length) {
  let x = 0n;
  for (let i = start; i < end; i++) x = (x << 8n) | BigInt(bytes[i]);
  return x;
}

/** A little-endian byte slice as a bigint. */
export function leToBig(bytes, start = 0, end = bytes.length) {
  let x = 0n;
  for (let i = end - 1; i >= start; i--) x = (x << 8n) | BigInt(bytes[i]);
  return x;
}

/** A bigint below 2^(8 len) as big-endian bytes. */
export function bigToBe(x, len = 32) {
  const out = new Uint8Array(len);
  for (let i = len - 1; i >= 0; i--) {
    out[i] = Number(x & 0xffn);
    x >>= 8n;
  }
  return out;
}

/** A bigint below 2^(8 len) as little-endian bytes. */
export function bigToLe(x, len = 32) {
  const out = new Uint8Array(len);
  for (let i = 0; i < len; i++) {
    out[i] = Number(x & 0xffn);
    x >>= 8n;
  }
  return out;
}

/** A field element as 0x + 64 hex digits. */
export const fieldHex = (x) => '0x' + x.toString(16).padStart(64, '0');

/** Concatenates byte arrays. */
export function concat(...parts) {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}
