/**
 * @module
 * Errors of the Kubernetes side: a request the API server refused or never answered
 * ({@linkcode K8sApiError}), and a kubeconfig we cannot use ({@linkcode KubeconfigError}).
 * Messages name what was asked and what happened; they never carry a token, a key or a
 * certificate body.
 */

import { CodedError, type CodedErrorOptions, ErrorCode } from "../util/errors.ts";
import type { KubeStatus } from "./types.ts";

/** HTTP statuses worth another try later: overload and transient server errors. */
const RETRYABLE_STATUSES: ReadonlySet<number> = new Set([429, 500, 503]);

/**
 * True when a failure with this HTTP status (0 for no answer at all) may succeed if tried
 * again: connection errors and timeouts, 429, 500 and 503.
 */
export function isRetryableStatus(status: number): boolean {
  return status === 0 || RETRYABLE_STATUSES.has(status);
}

/** Options of a {@linkcode K8sApiError}. */
export interface K8sApiErrorOptions extends CodedErrorOptions {
  /** HTTP status of the answer; 0 when there was none (connection error, timeout). */
  status: number;
  /**
   * `Status.reason` (`NotFound`, `Forbidden`, …) or, without an answer, what went wrong:
   * `Timeout`, `ConnectionRefused`, `ConnectionReset`, `TlsError`, …
   */
  reason: string;
  /** The Kubernetes verb: `get`, `patch`, `update`, `create`. */
  verb: string;
  /** The request path, e.g. `/api/v1/namespaces/default/pods/web`. */
  path: string;
  /** The `Status` object the server answered with, when there was one. */
  kubeStatus?: KubeStatus;
  /** Override the CNI code (default: 11 when retryable, else 999). */
  code?: number;
}

/**
 * A Kubernetes API request that failed. The CNI code is 11 (try again later) for failures
 * that may pass on their own (no answer, 429, 500, 503), else 999.
 */
export class K8sApiError extends CodedError {
  override name = "K8sApiError";
  /** HTTP status of the answer; 0 when there was none. */
  readonly status: number;
  /** `Status.reason`, or what went wrong when there was no answer (`Timeout`, …). */
  readonly reason: string;
  /** The Kubernetes verb of the failed request. */
  readonly verb: string;
  /** The request path. */
  readonly path: string;
  /** The `Status` object from the server, when there was one. */
  readonly kubeStatus?: KubeStatus;

  constructor(message: string, options: K8sApiErrorOptions) {
    const code = options.code ??
      (isRetryableStatus(options.status) ? ErrorCode.TryAgainLater : ErrorCode.Internal);
    super(code, message, options);
    this.status = options.status;
    this.reason = options.reason;
    this.verb = options.verb;
    this.path = options.path;
    this.kubeStatus = options.kubeStatus;
  }

  /** True when the object does not exist (404). */
  get notFound(): boolean {
    return this.status === 404;
  }

  /** True when trying again later may succeed (CNI code 11). */
  get retryable(): boolean {
    return this.code === ErrorCode.TryAgainLater;
  }
}

/** A kubeconfig (or the in-cluster service account) that cannot be used; names file and field. */
export class KubeconfigError extends CodedError {
  override name = "KubeconfigError";
  /** The kubeconfig file (or service-account folder) concerned. */
  readonly file: string;
  /** The offending field, e.g. `users["multus"].user.exec`; empty for the whole file. */
  readonly field: string;

  constructor(
    file: string,
    message: string,
    options: CodedErrorOptions & { field?: string } = {},
  ) {
    super(ErrorCode.InvalidNetworkConfig, message, options);
    this.file = file;
    this.field = options.field ?? "";
  }
}
