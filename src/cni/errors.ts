/**
 * @module
 * CNI error codes and the typed errors of each failure source. Every error the plugin
 * reports reaches the runtime through {@linkcode toCniErrorJson}, in one place (`main.ts`).
 */

import {
  CodedError,
  type CodedErrorOptions,
  ConfigError,
  ErrorCode,
  StorageError,
} from "../util/errors.ts";

/** Error codes of the CNI specification (0-99 reserved) and libcni's 999. */
export const CniErrorCode = ErrorCode;

/** Options of a {@linkcode CniError}. */
export type CniErrorOptions = CodedErrorOptions;

/**
 * An error with a CNI error code; `message` is the CNI `msg`. The project's one coded error
 * (`util/errors.ts`) under the protocol's name: every layer throws it, this one prints it.
 */
export { CodedError as CniError, ConfigError, StorageError };

/** A delegate plugin could not be found, run, or answered with an error. */
export class DelegateError extends CodedError {
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
  if (err instanceof CodedError) {
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
