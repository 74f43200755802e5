/**
 * @module
 * The project's one error vocabulary, below every layer so that every layer can use it: a
 * coded error (every failure reaches the runtime as a CNI error, so the codes are the CNI
 * specification's), the two failures every layer meets (a configuration value that is wrong,
 * a file that cannot be read or written), and helpers that read any thrown value.
 * `cni/errors.ts` gives the coded error its protocol name and prints it.
 */

/** Error codes of the CNI specification (0-99 reserved) and libcni's 999. */
export const ErrorCode = {
  IncompatibleVersion: 1,
  UnsupportedField: 2,
  UnknownContainer: 3,
  InvalidEnvironment: 4,
  IoFailure: 5,
  DecodeFailure: 6,
  InvalidNetworkConfig: 7,
  TryAgainLater: 11,
  NotAvailable: 50,
  LimitedConnectivity: 51,
  Internal: 999,
} as const;

/** Options of a {@linkcode CodedError}. */
export interface CodedErrorOptions {
  /** Longer explanation: what the user can do. */
  details?: string;
  /** The error that caused this one. */
  cause?: unknown;
}

/** An error with a code from {@linkcode ErrorCode}; `message` becomes the CNI `msg`. */
export class CodedError extends Error {
  override name = "CniError";
  /** Error code (see {@linkcode ErrorCode}). */
  readonly code: number;
  /** CNI `details`. */
  readonly details?: string;

  constructor(code: number, message: string, options: CodedErrorOptions = {}) {
    super(message, { cause: options.cause });
    this.code = code;
    this.details = options.details;
  }
}

/** A configuration value that is missing or wrong; names the field. */
export class ConfigError extends CodedError {
  override name = "ConfigError";
  /** Dotted path of the offending field, e.g. `delegates[1].type`. */
  readonly field: string;

  constructor(field: string, message: string, options: CodedErrorOptions & { code?: number } = {}) {
    super(options.code ?? ErrorCode.InvalidNetworkConfig, message, options);
    this.field = field;
  }
}

/** Reading or writing one of our files failed. */
export class StorageError extends CodedError {
  override name = "StorageError";
  /** The file or directory concerned. */
  readonly path: string;

  constructor(path: string, message: string, options: CodedErrorOptions = {}) {
    super(ErrorCode.IoFailure, message, options);
    this.path = path;
  }
}

/** The message of any thrown value (an `Error`'s message, else its text). */
export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** The code of any thrown value: a coded error's own, else 999. */
export function errorCode(err: unknown): number {
  return err instanceof CodedError ? err.code : ErrorCode.Internal;
}

/**
 * `err` with `what` failed (and for whom) in front of its message, keeping its code and
 * details; `details` is added to them.
 */
export function explain(err: unknown, what: string, details?: string): CodedError {
  const innerDetails = err instanceof CodedError ? err.details : undefined;
  return new CodedError(errorCode(err), `${what}: ${errorMessage(err)}`, {
    details: [innerDetails, details].filter(Boolean).join("; ") || undefined,
    cause: err,
  });
}

/** True for a JSON object (not null, not an array). */
export function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** A JSON value as a message names it: `null`, `an array`, `an object`, or the value itself. */
export function describe(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "an array";
  if (typeof value === "object") return "an object";
  return JSON.stringify(value);
}
