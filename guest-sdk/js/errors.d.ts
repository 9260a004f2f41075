/** A JSON value as it crosses the host boundary. */
export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

/** The wire form of an error (`weft:workflow/types.error`). */
export interface WireError {
  code: string;
  message: string;
  /** JSON text. */
  details?: string;
}

/** A failure with a machine-readable code, as the host records it. */
export class WeftError extends Error {
  constructor(code: string, message: string, details?: unknown);
  /** A short snake_case word, e.g. `payment_declined`. */
  code: string;
  details: unknown;
  /** Marks the error as not worth retrying (`details.retryable = false`). */
  permanent(): this;
  toWire(): WireError;
  static fromWire(e: WireError): WeftError;
}
