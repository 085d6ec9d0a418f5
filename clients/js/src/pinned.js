/**
 * A reader for halo2's pinned verifying key, the Rust `{:?}` text that
 * halo2 hashes into the key's transcript representation. It reads Rust's
 * debug syntax into a tree: `Name { field: v, .. }` -> {type:'struct'},
 * `Name(a, b)` -> {type:'tuple', name}, `(a, b)` -> {type:'tuple', name:''},
 * `[a, b]` -> array, `Name` -> {type:'ident'}, numbers and 0x-hex -> bigint,
 * "text" -> string.
 */

const PUNCT = new Set(['{', '}', '(', ')', '[', ']', ',', ':']);

/** Parses the pinned text; throws SyntaxError on anything unexpected. */
export function parseDebug(text) {
  let i = 0;
  const n = text.length;
  const fail = (msg) => {
    throw new SyntaxError(`pinned key: ${msg} at offset ${i}`);
  };
  const ws = () => {
    while (i < n) {
      const c = text.charCodeAt(i);
      if (c === 32 || c === 10 || c === 13 || c === 9) i++;
      else break;
    }
  };
  const expect = (ch) => {
    ws();
    if (text[i] !== ch) fail(`expected "${ch}"`);
    i++;
  };
  // Items up to `close`, separated by commas (a trailing comma allowed).
  const items = (close) => {
    const out = [];
    for (;;) {
      ws();
      if (text[i] === close) {
        i++;
        return out;
      }
      out.push(value());
      ws();
      if (text[i] === ',') i++;
      else if (text[i] !== close) fail(`expected "," or "${close}"`);
    }
  };
  const value = () => {
    ws();
    if (i >= n) fail('unexpected end');
    const c = text[i];
    if (c === '[') {
      i++;
      return items(']');
    }
    if (c === '(') {
      i++;
      return { type: 'tuple', name: '', items: items(')') };
    }
    if (c === '"') {
      const end = text.indexOf('"', i + 1);
      if (end < 0) fail('unterminated string');
      const s = text.slice(i + 1, end);
      i = end + 1;
      return s;
    }
    if (c === '-' || (c >= '0' && c <= '9')) {
      const m = /^-?(0x[0-9a-fA-F]+|[0-9]+)/.exec(text.slice(i, i + 80));
      if (!m) fail('bad number');
      i += m[0].length;
      return m[0].startsWith('-') ? -BigInt(m[0].slice(1)) : BigInt(m[0]);
    }
    const m = /^[A-Za-z_][A-Za-z0-9_]*/.exec(text.slice(i, i + 80));
    if (!m) fail('unexpected character');
    const name = m[0];
    i += name.length;
    ws();
    if (text[i] === '(') {
      i++;
      return { type: 'tuple', name, items: items(')') };
    }
    if (text[i] === '{') {
      i++;
      const fields = Object.create(null);
      for (;;) {
        ws();
        if (text[i] === '}') {
          i++;
          break;
        }
        const k = /^[A-Za-z_][A-Za-z0-9_]*/.exec(text.slice(i, i + 80));
        if (!k) fail('expected a field name');
        i += k[0].length;
        expect(':');
        if (k[0] in fields) fail(`repeated field ${k[0]}`);
        fields[k[0]] = value();
        ws();
        if (text[i] === ',') i++;
        else if (text[i] !== '}') fail('expected "," or "}"');
      }
      return { type: 'struct', name, fields };
    }
    if (PUNCT.has(text[i]) || i >= n) return { type: 'ident', name };
    fail('unexpected token');
  };
  const out = value();
  ws();
  if (i !== n) fail('trailing text');
  return out;
}
