/**
 * @module
 * The shim's configuration (the runtime's stdin): Multus's shim keys and ours, read
 * case-insensitively as Go's encoding/json does, and how requests are named in messages.
 */

import { CniError, CniErrorCode } from "../cni/errors.ts";
import { log } from "../log/logger.ts";
import {
  DEFAULT_DAEMON_TIMEOUT_SECONDS,
  DEFAULT_SOCKET_DIR,
  DEFAULT_THIN_CONFIG,
} from "../multus/config/thick.ts";
import { errorMessage } from "../util/errors.ts";

/** The shim's own settings, from its configuration. */
export interface ShimConf {
  /** `cniVersion` of the shim configuration (the runtime's). */
  cniVersion: string;
  /** `daemonSocketDir` (Multus's key; default `/run/multus/`). */
  socketDir: string;
  /** Ours: the thin configuration to run requests with when the daemon cannot. */
  thinConfig: string;
  /** Ours: how long to wait for the daemon's answer once it took the request. */
  daemonTimeoutMs: number;
  logFile: string;
  logLevel: string;
  logToStderr: boolean;
}

/** `pod "ns/name"` from CNI_ARGS, else `container "<id>"`, for messages. */
export function who(env: Record<string, string | undefined>): string {
  const args = new Map(
    (env.CNI_ARGS ?? "").split(";").map((pair) => {
      const eq = pair.indexOf("=");
      return [pair.slice(0, eq), pair.slice(eq + 1)] as [string, string];
    }),
  );
  const namespace = args.get("K8S_POD_NAMESPACE");
  const name = args.get("K8S_POD_NAME");
  if (namespace && name) return `pod "${namespace}/${name}"`;
  return `container "${(env.CNI_CONTAINERID ?? "").slice(0, 12)}"`;
}

/**
 * Reads the shim's keys (case-insensitively, as Go's encoding/json does). Throws a CniError
 * naming the key for a value of the wrong type, unless `lenient` (DEL must not be stopped by
 * a broken configuration: the wrong key is ignored and said).
 */
export function readShimConf(text: string, lenient: boolean): ShimConf {
  let parsed: Record<string, unknown>;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    throw new CniError(
      CniErrorCode.DecodeFailure,
      `invalid CNI configuration passed to multus-shim: ${errorMessage(err)}`,
    );
  }
  const keys = new Map<string, unknown>();
  for (const [key, value] of Object.entries(parsed)) keys.set(key.toLowerCase(), value);
  const get = <T>(key: string, type: "string" | "boolean" | "number", fallback: T): T => {
    const value = keys.get(key.toLowerCase());
    if (value === undefined || value === null) return fallback;
    if (typeof value === type && (type !== "number" || (value as number) > 0)) return value as T;
    const message = `invalid CNI configuration passed to multus-shim: "${key}" must be ${
      type === "number" ? "a positive number" : `a ${type}`
    }, got ${JSON.stringify(value)}`;
    if (!lenient) throw new CniError(CniErrorCode.InvalidNetworkConfig, message);
    log.always("error", `warning: ${message}; using ${JSON.stringify(fallback)}`);
    return fallback;
  };
  return {
    cniVersion: get("cniVersion", "string", ""),
    socketDir: get("daemonSocketDir", "string", DEFAULT_SOCKET_DIR) || DEFAULT_SOCKET_DIR,
    thinConfig: get("thinConfig", "string", DEFAULT_THIN_CONFIG) || DEFAULT_THIN_CONFIG,
    daemonTimeoutMs: get("daemonTimeoutSeconds", "number", DEFAULT_DAEMON_TIMEOUT_SECONDS) *
      1000,
    logFile: get("logFile", "string", ""),
    logLevel: get("logLevel", "string", ""),
    // Multus's shim writes to stderr only when asked.
    logToStderr: get("logToStderr", "boolean", false),
  };
}
