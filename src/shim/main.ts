/**
 * @module
 * The shim: the plugin run for a configuration of type `multus-shim`. It forwards the CNI
 * request to the node's multus daemon over `<daemonSocketDir>/multus.sock` and prints the
 * daemon's answer, which is exactly what the thin plugin would have printed.
 *
 * The daemon is never a single point of failure: when it is missing, refuses, is not ready
 * or does not take the request in time, the shim runs the request itself as the thin plugin
 * would (see `fallback.ts`). Once the daemon has taken the request, an ADD is never run a
 * second time here: if the daemon then fails to answer, ADD fails with code 11 (try again
 * later) and the runtime retries it after a DEL. DEL, CHECK, STATUS and GC are safe to
 * repeat, so they are run here in that case too.
 *
 * The forwarding path imports almost nothing (this module, the HTTP client, the logger the
 * entry point already loaded): a shim start costs what Deno's own start costs.
 */

import { CniError, CniErrorCode } from "../cni/errors.ts";
import { type CommandOutcome, commandOutcome } from "../cni/outcome.ts";
import { log, parseLogLevel } from "../log/logger.ts";
import { UnixHttpError, unixHttpRequest, type UnixHttpResponse } from "./unix_http.ts";
import {
  DAEMON_ACCEPT_TIMEOUT_MS,
  DEFAULT_DAEMON_TIMEOUT_SECONDS,
  DEFAULT_SOCKET_DIR,
  DEFAULT_THIN_CONFIG,
  FALLBACK_HEADER,
  OUTPUT_HEADER,
  SOCKET_NAME,
} from "./protocol.ts";

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

/**
 * Runs one CNI command as the shim: `env` is the runtime's environment, `stdin` the shim
 * configuration. Returns what to print and the exit status.
 */
export async function runShim(
  env: Record<string, string | undefined>,
  stdin: string,
): Promise<CommandOutcome> {
  const command = env.CNI_COMMAND ?? "";
  let conf: ShimConf;
  try {
    conf = readShimConf(stdin, command === "DEL");
  } catch (err) {
    return await commandOutcome(command, undefined, () => Promise.reject(err));
  }
  log.configure({
    file: conf.logFile,
    level: parseLogLevel(conf.logLevel),
    toStderr: conf.logToStderr,
  });

  let response: UnixHttpResponse;
  try {
    response = await unixHttpRequest({
      socketPath: `${conf.socketDir.replace(/\/+$/, "")}/${SOCKET_NAME}`,
      method: "POST",
      path: "/cni",
      headers: { "Content-Type": "application/json", [OUTPUT_HEADER]: "plugin" },
      body: requestBody(env, stdin),
      acceptTimeoutMs: DAEMON_ACCEPT_TIMEOUT_MS,
      responseTimeoutMs: conf.daemonTimeoutMs,
    });
  } catch (err) {
    if (!(err instanceof UnixHttpError)) throw err;
    if (err.stage === "response" && command === "ADD") {
      // The daemon had the whole request and may be attaching the pod right now.
      return await commandOutcome(command, conf.cniVersion, () =>
        Promise.reject(
          new CniError(
            CniErrorCode.TryAgainLater,
            `The multus daemon took ADD of ${who(env)} but did not answer: ${err.message}`,
            {
              details: "It may still be working; the runtime retries (DEL, then ADD). " +
                "See the daemon's log",
            },
          ),
        ));
    }
    return await fallBack(env, stdin, conf, reasonOf(err), err.message);
  }

  const fallback = response.headers.get(FALLBACK_HEADER.toLowerCase());
  if (fallback) {
    return await fallBack(env, stdin, conf, fallback, new TextDecoder().decode(response.body));
  }
  if (response.headers.get(OUTPUT_HEADER.toLowerCase()) === "plugin") {
    const stdout = new TextDecoder().decode(response.body);
    return { stdout, exitCode: response.status === 200 ? 0 : 1 };
  }
  // A daemon that answers in Multus's own shape (Go Multus's multus-daemon, during a move).
  const { multusAnswer } = await import("./multus_answer.ts");
  return await commandOutcome(
    command,
    conf.cniVersion,
    () => multusAnswer(command, response, conf.cniVersion),
  );
}

async function fallBack(
  env: Record<string, string | undefined>,
  stdin: string,
  conf: ShimConf,
  reason: string,
  detail: string,
): Promise<CommandOutcome> {
  const { runWithoutDaemon } = await import("./fallback.ts");
  return await runWithoutDaemon({ env, stdin, conf, reason, detail });
}

/** A short, stable reason for a request the daemon never had, for logs and counters. */
function reasonOf(err: UnixHttpError): string {
  if (err.stage === "connect") return err.reason === "not-found" ? "no-socket" : err.reason;
  if (err.stage === "accept") return err.reason === "timeout" ? "not-accepted" : "closed";
  return "no-answer";
}

/** The JSON body of `POST /cni`: the CNI variables and the configuration (base64). */
function requestBody(env: Record<string, string | undefined>, stdin: string): Uint8Array {
  const cniEnv: Record<string, string> = {};
  for (const [key, value] of Object.entries(env)) {
    if (key.startsWith("CNI_") && value !== undefined) cniEnv[key] = value;
  }
  const config = base64(new TextEncoder().encode(stdin));
  return new TextEncoder().encode(JSON.stringify({ env: cniEnv, config }));
}

function base64(bytes: Uint8Array): string {
  let binary = "";
  for (let i = 0; i < bytes.length; i += 8192) {
    binary += String.fromCharCode(...bytes.subarray(i, i + 8192));
  }
  return btoa(binary);
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
      `invalid CNI configuration passed to multus-shim: ${(err as Error).message}`,
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
