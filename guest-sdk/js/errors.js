// The error workflows and RPC functions fail with, shared by `@weft/sdk`
// and `@weft/sdk/rpc`. It imports nothing from the host, so it bundles into
// either world.

/** A failure with a machine-readable code, as the host records it. */
export class WeftError extends Error {
  constructor(code, message, details) {
    super(message);
    this.name = 'WeftError';
    this.code = code;
    this.details = details;
  }

  /** Marks the error as not worth retrying. */
  permanent() {
    // Details that are not an object are kept under `value`, as the Rust
    // SDK keeps them.
    const kept = isObject(this.details) ? this.details : this.details === undefined ? {} : { value: this.details };
    this.details = { ...kept, retryable: false };
    return this;
  }

  /** The wire form (`weft:workflow/types.error`). */
  toWire() {
    return {
      code: this.code,
      message: this.message,
      details: this.details === undefined ? undefined : JSON.stringify(this.details),
    };
  }

  static fromWire(e) {
    let details;
    if (e.details !== undefined) {
      try {
        details = JSON.parse(e.details);
      } catch {
        details = e.details;
      }
    }
    return new WeftError(e.code, e.message, details);
  }
}

function isObject(v) {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

/** Any thrown value as a WeftError. */
export function asWeftError(e) {
  if (e instanceof WeftError) return e;
  if (e instanceof Error) return new WeftError('error', e.message);
  return new WeftError('error', String(e));
}
