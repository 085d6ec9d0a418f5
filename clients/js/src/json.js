/**
 * A strict JSON reader: a key repeated in any object is refused (as the
 * node's parser does), and integers are kept exact as `JsonInt` (plain
 * JSON.parse rounds integers above 2^53).
 */

/** An integer literal from the JSON text, kept exact. */
export class JsonInt {
  constructor(text) {
    this.text = text;
  }
  toBigInt() {
    return BigInt(this.text);
  }
}

/** Parses `text`; throws SyntaxError naming the position or the repeated key. */
export function parseStrictJson(text) {
  let i = 0;
  const fail = (msg) => {
    throw new SyntaxError(`${msg} at position ${i}`);
  };
  const ws = () => {
    while (i < text.length && ' \t\n\r'.includes(text[i])) i++;
  };
  const value = (path) => {
    ws();
    const c = text[i];
    if (c === '{') {
      i++;
      const obj = Object.create(null);
      ws();
      if (text[i] === '}') {
        i++;
        return obj;
      }
      for (;;) {
        ws();
        if (text[i] !== '"') fail('expected a key');
        const key = string();
        if (Object.prototype.hasOwnProperty.call(obj, key)) {
          throw new SyntaxError(`duplicate key "${key}" at ${path}`);
        }
        ws();
        if (text[i] !== ':') fail('expected ":"');
        i++;
        obj[key] = value(`${path}.${key}`);
        ws();
        if (text[i] === ',') {
          i++;
          continue;
        }
        if (text[i] === '}') {
          i++;
          return obj;
        }
        fail('expected "," or "}"');
      }
    }
    if (c === '[') {
      i++;
      const arr = [];
      ws();
      if (text[i] === ']') {
        i++;
        return arr;
      }
      for (;;) {
        arr.push(value(`${path}[${arr.length}]`));
        ws();
        if (text[i] === ',') {
          i++;
          continue;
        }
        if (text[i] === ']') {
          i++;
          return arr;
        }
        fail('expected "," or "]"');
      }
    }
    if (c === '"') return string();
    if (text.startsWith('true', i)) {
      i += 4;
      return true;
    }
    if (text.startsWith('false', i)) {
      i += 5;
      return false;
    }
    if (text.startsWith('null', i)) {
      i += 4;
      return null;
    }
    const m = /^-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?/.exec(text.slice(i, i + 400));
    if (!m) fail('unexpected character');
    i += m[0].length;
    return m[2] || m[3] ? Number(m[0]) : new JsonInt(m[0]);
  };
  const string = () => {
    const start = i;
    i++;
    for (;;) {
      if (i >= text.length) fail('unterminated string');
      const ch = text.charCodeAt(i);
      if (ch === 0x22) break;
      if (ch < 0x20) fail('control character in string');
      if (ch === 0x5c) i++;
      i++;
    }
    i++;
    return JSON.parse(text.slice(start, i));
  };
  const out = value('$');
  ws();
  if (i !== text.length) fail('trailing characters');
  return out;
}
