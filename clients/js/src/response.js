/**
 * The node's answer to `GET /v1/proofs/{job_id}`, read without losing a
 * digit. The node writes `tokens_used`, `chain_id` and the envelope's
 * `tokens` as JSON integers up to 2^64 - 1; JSON.parse (and so
 * `fetch(...).json()`) rounds any integer above 2^53, which turns a valid
 * proof of a large count into a wrong one. This reader keeps every integer
 * exact as a BigInt.
 */
import { InputError } from './errors.js';
import { JsonInt, parseStrictJson } from './json.js';

/** A parsed strict-JSON value with every integer as a BigInt and plain objects. */
function exact(value) {
  if (value instanceof JsonInt) return value.toBigInt();
  if (Array.isArray(value)) return value.map(exact);
  if (value !== null && typeof value === 'object') {
    const out = {};
    for (const [k, v] of Object.entries(value)) out[k] = exact(v);
    return out;
  }
  return value;
}

/**
 * Parses the body of `GET /v1/proofs/{job_id}` (text or UTF-8 bytes) as
 * the node wrote it: every integer becomes a BigInt (`tokens_used`,
 * `attempts`, `*_at_ms`, and in `proof` and `public_inputs` the `format`,
 * `circuit`, `chain_id` and `tokens`), and a key repeated in any object is
 * refused, as the node refuses it. Pass the returned `proof` and `host_id`
 * to `verifyProof` unchanged.
 *
 * Throws `InputError` (field `proofResponse`, or `proofResponse.<name>`)
 * if the body is not such a document, and for the node's error body
 * (`{"error": {"code", "message"}}`, e.g. `unknown_job`), with its code and
 * message.
 */
export function parseProofResponse(body) {
  const field = 'proofResponse';
  let text = body;
  if (body instanceof ArrayBuffer) text = new Uint8Array(body);
  if (text instanceof Uint8Array) {
    try {
      text = new TextDecoder('utf-8', { fatal: true }).decode(text);
    } catch {
      throw new InputError('the proof response is not valid UTF-8', field);
    }
  }
  if (typeof text !== 'string') {
    throw new InputError(
      `the proof response must be the body's text (await response.text()), not ${text === null ? 'null' : typeof text}`,
      field,
    );
  }
  let doc;
  try {
    doc = exact(parseStrictJson(text));
  } catch (e) {
    throw new InputError(`the proof response is not valid JSON: ${e.message}`, field);
  }
  if (doc === null || typeof doc !== 'object' || Array.isArray(doc)) {
    throw new InputError('the proof response must be a JSON object', field);
  }
  if (doc.error !== undefined) {
    const { code, message } = doc.error ?? {};
    throw new InputError(`the node answered with an error: ${code ?? 'no code'}: ${message ?? 'no message'}`, `${field}.error`);
  }
  for (const name of ['job_id', 'state', 'host_id']) {
    if (typeof doc[name] !== 'string') {
      throw new InputError(`the proof response has no ${name} string: is it the body of GET /v1/proofs/{job_id}?`, `${field}.${name}`);
    }
  }
  if (typeof doc.tokens_used !== 'bigint') {
    throw new InputError('the proof response has no integer tokens_used', `${field}.tokens_used`);
  }
  return doc;
}
