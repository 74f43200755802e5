/**
 * @module
 * CNI error codes and the typed errors of each failure source. Every error the plugin
 * reports reaches the runtime through {@linkcode toCniErrorJson}, in one place (`main.ts`).
 */

/** Error codes of the CNI specification (0-99 reserved) and libcni's 999. */
export const CniErrorCode = {
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

/** Options of a {@linkcode CniError}. */
export interface CniErrorOptions {
  /** Longer explanation: what the user can do. */
  details?: string;
  /** The error that caused this one. */
  cause?: unknown;
}

/** An error with a CNI error code; `message` is the CNI `msg`. */
export class CniError extends Error {
  override name = "CniError";
  /** CNI error code (see {@linkcode CniErrorCode}). */
  readonly code: number;
  /** CNI `details`. */
  readonly details?: string;

  constructor(code: number, message: string, options: CniErrorOptions = {}) {
    super(message, { cause: options.cause });
    this.code = code;
    this.details = options.details;
  }
}

/** A configuration value that is missing or wrong; names the field. */
export class ConfigError extends CniError {
  override name = "ConfigError";
  /** Dotted path of the offending field, e.g. `delegates[1].type`. */
  readonly field: string;

  constructor(field: string, message: string, options: CniErrorOptions & { code?: number } = {}) {
    super(options.code ?? CniErrorCode.InvalidNetworkConfig, message, options);
    this.field = field;
  }
}

/** A delegate plugin could not be found, run, or answered with an error. */
export class DelegateError extends CniError {
  override name = "DelegateError";
  /** The plugin `type`. */
  readonly pluginType: string;
  /** The CNI command that failed. */
  readonly command: string;

  constructor(
    pluginType: string,
    command: string,
    message: string,
    options: CniErrorOptions & { code?: number } = {},
  ) {
    super(options.code ?? CniErrorCode.Internal, message, options);
    this.pluginType = pluginType;
    this.command = command;
  }
}

/** Reading or writing one of our files failed. */
export class StorageError extends CniError {
  override name = "StorageError";
  /** The file or directory concerned. */
  readonly path: string;

  constructor(path: string, message: string, options: CniErrorOptions = {}) {
    super(CniErrorCode.IoFailure, message, options);
    this.path = path;
  }
}

/** The CNI error object printed on stdout. */
export interface CniErrorJson {
  cniVersion?: string;
  code: number;
  msg: string;
  details?: string;
}

/**
 * Turns any thrown value into the CNI error object. Unknown errors become code 999 with their
 * message only: never a stack trace.
 */
export function toCniErrorJson(err: unknown, cniVersion?: string): CniErrorJson {
  const out: CniErrorJson = { code: CniErrorCode.Internal, msg: "" };
  if (cniVersion) out.cniVersion = cniVersion;
  if (err instanceof CniError) {
    out.code = err.code;
    out.msg = err.message;
    if (err.details) out.details = err.details;
  } else if (err instanceof Error) {
    out.msg = err.message;
  } else {
    out.msg = String(err);
  }
  return out;
}
