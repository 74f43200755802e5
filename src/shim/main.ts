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
import { log, parseLogLevel } from "../log/logger.ts";
import {
  DAEMON_ACCEPT_TIMEOUT_MS,
  FALLBACK_HEADER,
  OUTPUT_HEADER,
  SOCKET_NAME,
} from "../multus/config/thick.ts";
import { UnixHttpError, unixHttpRequest, type UnixHttpResponse } from "../util/unix_http.ts";
import { printAnswer, printFailure } from "./answer.ts";
import { readShimConf, type ShimConf, who } from "./shim_conf.ts";

/**
 * Runs one CNI command as the shim: `env` is the runtime's environment, `stdin` the shim
 * configuration. Prints the answer; returns the exit status.
 */
export async function runShim(
  env: Record<string, string | undefined>,
  stdin: string,
): Promise<number> {
  const command = env.CNI_COMMAND ?? "";
  let conf: ShimConf;
  try {
    conf = readShimConf(stdin, command === "DEL");
  } catch (err) {
    return printFailure(command, err);
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
    if (err.stage === "response" && command === "ADD" && err.reason === "closed") {
      return await addBroken(env, stdin, conf, err.message);
    }
    if (err.stage === "response" && command === "ADD") {
      // The daemon had the whole request and may be attaching the pod right now.
      return printFailure(
        command,
        new CniError(
          CniErrorCode.TryAgainLater,
          `The multus daemon took ADD of ${who(env)} but did not answer: ${err.message}`,
          {
            details: "It may still be working; the runtime retries (DEL, then ADD). " +
              "See the daemon's log",
          },
        ),
        conf.cniVersion,
      );
    }
    return await fallBack(env, stdin, conf, reasonOf(err), err.message);
  }

  const fallback = response.headers.get(FALLBACK_HEADER.toLowerCase());
  if (fallback) {
    return await fallBack(env, stdin, conf, fallback, new TextDecoder().decode(response.body));
  }
  if (response.headers.get(OUTPUT_HEADER.toLowerCase()) === "plugin") {
    // Exactly what the thin plugin prints; the daemon logged a failure already.
    printAnswer(new TextDecoder().decode(response.body));
    return response.status === 200 ? 0 : 1;
  }
  // A daemon that answers in Multus's own shape (Go Multus's multus-daemon, during a move).
  const { multusAnswer } = await import("./multus_answer.ts");
  try {
    return printAnswer(await multusAnswer(command, response, conf.cniVersion));
  } catch (err) {
    return printFailure(command, err, conf.cniVersion);
  }
}

/**
 * The connection broke while the daemon had the ADD: the daemon died. The ADD fails with code
 * 11; first, the delegates it left running for this container are stopped and what the ADD
 * attached is released (a DEL run here), so the failed ADD leaves nothing behind (the
 * runtime's own DEL then finds nothing to do).
 */
async function addBroken(
  env: Record<string, string | undefined>,
  stdin: string,
  conf: ShimConf,
  detail: string,
): Promise<number> {
  const { releaseWithoutDaemon } = await import("./fallback.ts");
  const released = await releaseWithoutDaemon({
    env,
    stdin,
    conf,
    reason: "add-broken",
    detail: `the daemon's connection broke during ADD: ${detail}`,
  });
  return printFailure(
    "ADD",
    new CniError(
      CniErrorCode.TryAgainLater,
      `The multus daemon took ADD of ${who(env)} but its connection broke before an answer ` +
        `(${detail}): the daemon stopped`,
      {
        details: released.ok
          ? "What the ADD attached was released here (DEL); the runtime retries the ADD"
          : `Releasing what the ADD attached failed (${released.error.msg}); the runtime's ` +
            "DEL releases it",
      },
    ),
    conf.cniVersion,
  );
}

async function fallBack(
  env: Record<string, string | undefined>,
  stdin: string,
  conf: ShimConf,
  reason: string,
  detail: string,
): Promise<number> {
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
