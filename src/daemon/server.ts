/**
 * @module
 * The daemon's socket API, as Multus's (`pkg/server`), on a root-only unix socket:
 *
 * - `POST /cni` with `{env, config}`: runs the CNI request. Success is 200 with
 *   `{"Result": <1.0.0 result>}` for ADD and an empty body otherwise; a CNI error is 400 with
 *   its JSON. Our shim asks (header `X-Multus-Output: plugin`) for exactly what the thin
 *   plugin prints instead.
 * - `GET|POST /healthz`: 200 while the process serves.
 * - `GET|POST /readyz`: 200, or 500 once SIGTERM arrived.
 * - `POST /delegate` (Multus's hot-plug API): 501, not supported yet.
 *
 * Requests are checked like the plugin's stdin, then bounded: at most `maxParallel` run, at
 * most `maxQueued` wait (each up to `queueWaitMs`); beyond that the answer is CNI code 11.
 * A request that the daemon must not run (shutting down, a mode it declines) is answered with
 * the header `X-Multus-Fallback`, and our shim runs it itself.
 *
 * Per-request data lives in each request's own scope; the server object holds only what all
 * requests share (the limiter, the overlay, the handler, the metrics).
 */

import { CniError, CniErrorCode, toCniErrorJson } from "../cni/errors.ts";
import { sniffCniVersion } from "../cni/config_sniff.ts";
import { type CniRequest, parseRequest } from "../cni/request.ts";
import { log, type Logger } from "../log/logger.ts";
import { applyOverlay, type ConfOverlay } from "../multus/config/conf_overlay.ts";
import { FALLBACK_HEADER, OUTPUT_HEADER } from "../multus/config/thick.ts";
import { errorMessage } from "../util/errors.ts";
import type { DaemonMetrics } from "./daemon_metrics.ts";
import type { CniAnswer, CniCall, CniHandler } from "./handler.ts";
import { LimiterRefusal, type RequestLimiter } from "./limiter.ts";
import { parseShimRequest, readRequestBody } from "./shim_request.ts";
import {
  type FileIdentity,
  prepareSocketPath,
  removeSocketIfOurs,
  socketIdentity,
} from "./socket.ts";

/** What a {@linkcode DaemonServer} needs. */
export interface DaemonServerOptions {
  socketPath: string;
  handler: CniHandler;
  /** Netconf keys laid over every request. */
  overlay: ConfOverlay;
  limiter: RequestLimiter;
  /** How long a request may wait for a slot. */
  queueWaitMs: number;
  /** How long a request may run before its caller gets code 11 (the work goes on). */
  requestTimeoutMs: number;
  metrics: DaemonMetrics;
}

const JSON_HEADERS = { "Content-Type": "application/json" };

/** The daemon's lines about one request carry its container and pod. */
function requestLog(request: CniRequest): Logger {
  const args = new Map(request.args);
  const ns = args.get("K8S_POD_NAMESPACE");
  const name = args.get("K8S_POD_NAME");
  return log.child({
    containerId: request.containerId || undefined,
    pod: ns && name ? `${ns}/${name}` : undefined,
  });
}

/** The socket server. */
export class DaemonServer {
  #options: DaemonServerOptions;
  #server: Deno.HttpServer<Deno.UnixAddr> | undefined;
  #identity: FileIdentity | undefined;
  #draining = false;

  private constructor(options: DaemonServerOptions) {
    this.#options = options;
  }

  /**
   * Prepares the socket path (see `socket.ts`) and starts serving. Throws SocketError when
   * another daemon serves the socket.
   */
  static async start(options: DaemonServerOptions): Promise<DaemonServer> {
    await prepareSocketPath(options.socketPath);
    const server = new DaemonServer(options);
    server.#server = Deno.serve(
      {
        path: options.socketPath,
        onListen() {},
        onError: (err) => {
          log.always("error", `daemon: request failed: ${errorMessage(err)}`);
          return new Response("internal error\n", { status: 500 });
        },
      },
      (request) => server.#route(request),
    );
    await Deno.chmod(options.socketPath, 0o600);
    server.#identity = await socketIdentity(options.socketPath);
    return server;
  }

  /** False once shutdown started. */
  get ready(): boolean {
    return !this.#draining;
  }

  /**
   * Stops taking requests (`/readyz` answers 500, new and waiting requests are left to the
   * shim), waits up to `graceMs` for the running ones, then closes the socket and removes it.
   * Returns how many requests were still running.
   */
  async shutdown(graceMs: number): Promise<number> {
    this.#draining = true;
    const limiter = this.#options.limiter;
    limiter.drain();
    let timer: ReturnType<typeof setTimeout> | undefined;
    const graceOver = new Promise<"grace-over">((resolve) => {
      timer = setTimeout(() => resolve("grace-over"), graceMs);
    });
    const outcome = await Promise.race([limiter.idle(), graceOver]);
    clearTimeout(timer);
    const unfinished = outcome === "grace-over" ? limiter.running : 0;
    if (unfinished === 0) {
      // Lets the last answers go out; removes the socket file.
      await this.#server?.shutdown();
    }
    removeSocketIfOurs(this.#options.socketPath, this.#identity);
    return unfinished;
  }

  async #route(request: Request): Promise<Response> {
    const path = new URL(request.url).pathname;
    const response = await this.#dispatch(path, request);
    const handler = ["/cni", "/delegate", "/healthz", "/readyz"].includes(path) ? path : "NotFound";
    this.#options.metrics.httpRequests.inc({
      handler,
      code: String(response.status),
      method: request.method.toLowerCase(),
    });
    return response;
  }

  #dispatch(path: string, request: Request): Promise<Response> | Response {
    const method = request.method;
    switch (path) {
      case "/cni":
        if (method !== "POST") return methodNotAllowed();
        return this.#handleCni(request);
      case "/delegate":
        if (method !== "POST") return methodNotAllowed();
        return errorResponse(
          501,
          new CniError(
            CniErrorCode.UnsupportedField,
            "The multus daemon does not support the /delegate (hot-plug) API yet",
          ),
        );
      case "/healthz":
        if (method !== "GET" && method !== "POST") return methodNotAllowed();
        return new Response(null, { status: 200, headers: JSON_HEADERS });
      case "/readyz":
        if (method !== "GET" && method !== "POST") return methodNotAllowed();
        return new Response(null, { status: this.#draining ? 500 : 200, headers: JSON_HEADERS });
      default:
        return new Response(null, { status: 404 });
    }
  }

  async #handleCni(request: Request): Promise<Response> {
    const o = this.#options;
    const wantsOutput = request.headers.get(OUTPUT_HEADER) === "plugin";
    let env: Record<string, string>;
    let config: string;
    let cni: CniRequest;
    try {
      ({ env, config } = parseShimRequest(await readRequestBody(request)));
    } catch (err) {
      const status = err instanceof CniError && err.name === "RequestTooLarge" ? 413 : 400;
      return answer(await failed("request", undefined, err), { wantsOutput, status });
    }
    try {
      cni = parseRequest(env);
    } catch {
      // A bad environment: the handler's skeleton refuses it before anything runs, with the
      // plugin's own error.
      const command = env.CNI_COMMAND ?? "";
      const outcome = await o.handler.handle({ command, containerId: "", env, config });
      o.metrics.requests.inc({ command, result: "error" });
      return answer(outcome, { wantsOutput });
    }
    const call: CniCall = {
      command: cni.command,
      containerId: cni.containerId,
      env,
      config: applyOverlay(config, o.overlay),
    };
    const command = call.command;
    if (command === "VERSION") return answer(await o.handler.handle(call), { wantsOutput });

    const notHere = this.#draining ? "draining" : o.handler.declines(call);
    if (notHere) {
      o.metrics.requests.inc({ command, result: "fallback" });
      requestLog(cni).verbose(
        `daemon: ${command} of ${describe(cni)} left to the shim (${notHere})`,
      );
      return leaveToShim(notHere, command, config);
    }

    const waitStart = performance.now();
    let startedAt = 0;
    let onStart!: () => void;
    const started = new Promise<void>((resolve) => onStart = resolve);
    const run = o.limiter.run(call.containerId, o.queueWaitMs, () => {
      startedAt = performance.now();
      o.metrics.queueWait.observe({}, (startedAt - waitStart) / 1000);
      onStart();
      return o.handler.handle(call);
    });
    run.then((outcome) => {
      const seconds = (performance.now() - startedAt) / 1000;
      o.metrics.duration.observe({ command }, seconds);
      requestLog(cni).verbose(
        `daemon: ${command} of ${describe(cni)} ${outcome.ok ? "done" : "failed"} in ${
          Math.round(seconds * 1000)
        } ms (waited ${Math.round(startedAt - waitStart)} ms)`,
      );
    }, () => {});

    let timer: ReturnType<typeof setTimeout> | undefined;
    const tooLong = started.then(() =>
      new Promise<"too-long">((resolve) => {
        timer = setTimeout(() => resolve("too-long"), o.requestTimeoutMs);
      })
    );
    let outcome: CniAnswer | "too-long";
    try {
      outcome = await Promise.race([run, tooLong]);
    } catch (err) {
      if (!(err instanceof LimiterRefusal)) throw err;
      o.metrics.queueWait.observe({}, (performance.now() - waitStart) / 1000);
      if (err.reason === "draining") {
        o.metrics.requests.inc({ command, result: "fallback" });
        return leaveToShim("draining", command, config);
      }
      o.metrics.requests.inc({ command, result: "busy" });
      const busy = new CniError(
        CniErrorCode.TryAgainLater,
        `The multus daemon is busy: ${command} of ${describe(cni)} did not run because ` +
          `${err.message}`,
        { details: "The runtime retries it; raise maxParallelRequests if this lasts" },
      );
      return answer(await failed(command, sniffCniVersion(config), busy), {
        wantsOutput,
        status: 503,
        retryAfter: true,
      });
    } finally {
      clearTimeout(timer);
    }
    if (outcome === "too-long") {
      o.metrics.requests.inc({ command, result: "timeout" });
      const late = new CniError(
        CniErrorCode.TryAgainLater,
        `The multus daemon is still running ${command} of ${describe(cni)} after ` +
          `${Math.round(o.requestTimeoutMs / 1000)} s`,
        {
          details: "The runtime retries; a retry for this container waits for it to finish",
        },
      );
      return answer(await failed(command, sniffCniVersion(config), late), { wantsOutput });
    }
    o.metrics.requests.inc({ command, result: outcome.ok ? "success" : "error" });
    return answer(outcome, { wantsOutput, command, cniVersion: sniffCniVersion(call.config) });
  }
}

function describe(request: CniRequest): string {
  const pod = new Map(request.args);
  const ns = pod.get("K8S_POD_NAMESPACE");
  const name = pod.get("K8S_POD_NAME");
  if (ns && name) return `pod "${ns}/${name}"`;
  return request.containerId ? `container "${request.containerId.slice(0, 12)}"` : "the node";
}

/** A failure answered without running the request, logged as the skeleton logs one. */
function failed(
  command: string | undefined,
  cniVersion: string | undefined,
  err: unknown,
): Promise<CniAnswer> {
  const error = toCniErrorJson(err, cniVersion);
  log.always(
    "error",
    `${command ?? "request"} failed: ${error.msg}${error.details ? ` (${error.details})` : ""}`,
  );
  return Promise.resolve({ ok: false, stdout: JSON.stringify(error, null, 4) });
}

function methodNotAllowed(): Response {
  return new Response("Method not allowed\n", {
    status: 405,
    headers: { "Content-Type": "text/plain; charset=utf-8" },
  });
}

function errorResponse(status: number, err: CniError): Response {
  const json = { code: err.code, msg: err.message, details: err.details };
  return new Response(JSON.stringify(json), { status, headers: JSON_HEADERS });
}

/** 503 with `X-Multus-Fallback`; a shim that cannot fall back shows the code 11 error. */
function leaveToShim(reason: string, command: string, config: string): Response {
  const messages: Record<string, string> = {
    draining: "The multus daemon is shutting down",
  };
  const json = {
    cniVersion: sniffCniVersion(config),
    code: CniErrorCode.TryAgainLater,
    msg: `${messages[reason] ?? "The multus daemon cannot run this request"}: ${command} left ` +
      "to the shim",
    details: "Our multus-shim runs it itself; the runtime retries otherwise",
  };
  return new Response(JSON.stringify(json, null, 4), {
    status: 503,
    headers: { ...JSON_HEADERS, [FALLBACK_HEADER]: reason },
  });
}

/**
 * The HTTP answer for an outcome: exactly the plugin's output for our shim; Multus's shape
 * (`{"Result": ...}` in version 1.0.0, or the error JSON) for Multus's shim.
 */
async function answer(
  outcome: CniAnswer,
  options: {
    wantsOutput: boolean;
    status?: number;
    retryAfter?: boolean;
    command?: string;
    cniVersion?: string;
  },
): Promise<Response> {
  const headers: Record<string, string> = { ...JSON_HEADERS };
  if (options.retryAfter) headers["Retry-After"] = "1";
  const status = options.status ?? (outcome.ok ? 200 : 400);
  if (options.wantsOutput) {
    headers[OUTPUT_HEADER] = "plugin";
    return new Response(outcome.stdout, { status, headers });
  }
  if (!outcome.ok) return new Response(outcome.stdout, { status, headers });
  if (options.command !== "ADD" || outcome.stdout.trim() === "") {
    return new Response(null, { status: 200, headers });
  }
  try {
    const { convertResult, parseResult, resultToJson } = await import("../cni/result.ts");
    const result = parseResult(JSON.parse(outcome.stdout), options.cniVersion ?? "");
    const json = resultToJson(convertResult(result, "1.0.0"));
    return new Response(`{"Result":${json}}`, { status: 200, headers });
  } catch (err) {
    const converted = await failed(
      "ADD",
      options.cniVersion,
      new CniError(
        CniErrorCode.IncompatibleVersion,
        `failed to generate the CNI result: ${errorMessage(err)}`,
      ),
    );
    return new Response(converted.stdout, { status: 400, headers });
  }
}
