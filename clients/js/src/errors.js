/** Typed errors: every message names the offending field. */

/** Base class of the package's errors; `field` names the offending input. */
export class FabstirError extends Error {
  constructor(message, field) {
    super(message);
    this.name = new.target.name;
    this.field = field;
  }
}

/** A result, host id or other caller input is malformed. */
export class InputError extends FabstirError {}

/** A proof envelope is malformed (bytes or JSON); `code` says how. */
export class EnvelopeError extends FabstirError {
  constructor(code, message, field) {
    super(message, field);
    this.code = code;
  }
}

/** A verifying key export is malformed, unsupported, or not the pinned key. */
export class KeyError extends FabstirError {
  constructor(code, message, field) {
    super(message, field);
    this.code = code;
  }
}
