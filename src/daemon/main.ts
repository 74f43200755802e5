/**
 * @module
 * `multus daemon`: Multus thick mode's node daemon. Serves CNI requests from the shim on
 * `<socketDir>/multus.sock`, with Prometheus metrics on `metricsPort` when set. SIGTERM (or
 * SIGINT) drains: `/readyz` answers 500, new requests are left to the shims, running ones get
 * `shutdownGraceSeconds` to finish, the socket is removed, and the process exits 0.
 */

import type { Exec } from "../cni/exec.ts";
import { errorMessage } from "../util/errors.ts";
import { log } from "../log/logger.ts";
import { FALLBACK_RECORD_NAME } from "../multus/config/thick.ts";
import {
  type DaemonConfig,
  DaemonConfigError,
  daemonHelp,
  loadDaemonConfig,
  parseDaemonArgs,
} from "./config.ts";
import { DaemonKube } from "./daemon_kube.ts";
import { DaemonMetrics } from "./daemon_metrics.ts";
import { FallbackRecord } from "./fallback_record.ts";
import { daemonDelegateExec } from "./delegate_exec.ts";
import { InProcessCniHandler } from "./handler.ts";
import { stopLeftDelegates } from "./running_delegates.ts";
import { timedExec } from "./timed_exec.ts";
import { RequestLimiter } from "./limiter.ts";
import { type MetricsServer, serveMetrics } from "./metrics.ts";
import { DaemonServer } from "./server.ts";
import { prepareSocketDir, prepareSocketPath, SocketError } from "./socket.ts";
import { type StartLock, takeStartLock } from "./start_lock.ts";

const encoder = new TextEncoder();

/** How long queued pod events may take to be posted at shutdown. */
const EVENT_FLUSH_MS = 2000;

/** A line of the daemon's own, whatever the level (start, stop, problems). */
function say(level: "error" | "verbose", message: string): void {
  log.always(level, message);
}

function writeErr(text: string): void {
  Deno.stderr.writeSync(encoder.encode(text.endsWith("\n") ? text : `${text}\n`));
}

/**
 * Runs the daemon until it is stopped.
 *
 * @param args The arguments after `daemon`.
 * @param version This build's version, for `--version`.
 * @returns The exit status: 0 after a signal, 1 when it cannot start, 2 for a bad command line,
 *   4 after `--version` (Multus's `multus-daemon -version` exits 4).
 */
export async function runDaemon(args: string[], version: string): Promise<number> {
  let config;
  try {
    const parsed = parseDaemonArgs(args, Deno.env.toObject());
    if (parsed.help) {
      Deno.stdout.writeSync(encoder.encode(daemonHelp()));
      return 0;
    }
    if (parsed.version) {
      Deno.stdout.writeSync(encoder.encode(`multus-daemon: version:${version}\n`));
      // Multus's multus-daemon exits 4 after printing its version; scripts ported from it
      // see the same status.
      return 4;
    }
    config = await loadDaemonConfig(parsed);
  } catch (err) {
    if (!(err instanceof DaemonConfigError)) throw err;
    writeErr(err.message);
    return err.exitCode;
  }

  log.configure({
    level: config.logging.level,
    file: config.logging.file,
    toStderr: config.logging.toStderr,
    rotation: config.logging.rotation,
  });
  for (const warning of config.warnings) say("error", `warning: daemon: ${warning}`);
  if (Deno.uid() !== 0) {
    say(
      "error",
      "daemon: must run as root: it runs CNI plugins and owns a root-only socket",
    );
    return 1;
  }
  keepServingOnStrayErrors();
  let delegateExec: Exec;
  try {
    delegateExec = await daemonDelegateExec(
      Deno.env.toObject(),
      config.chrootDir,
      config.socketDir,
    );
  } catch (err) {
    if (!(err instanceof DaemonConfigError)) throw err;
    say("error", `daemon: ${err.message}`);
    return 1;
  }

  const limiter = new RequestLimiter({
    maxParallel: config.maxParallelRequests,
    maxQueued: config.maxQueuedRequests,
  });
  const fallbacks = new FallbackRecord(
    `${config.socketDir.replace(/\/+$/, "")}/${FALLBACK_RECORD_NAME}`,
  );
  const kube = new DaemonKube({
    overlay: config.overlay,
    nodeName: config.nodeName,
    env: Deno.env.toObject(),
    log: (level, message) =>
      level === "warn" ? log.warn(`daemon: ${message}`) : log.debug(`daemon: ${message}`),
  });
  const metrics = new DaemonMetrics({ limiter, fallbacks, kube });
  const away = fallbacks.read().reduce((n, c) => n + c.count, 0);
  if (away > 0) {
    say(
      "error",
      `warning: daemon: shims ran ${away} request(s) themselves (see ${FALLBACK_RECORD_NAME})`,
    );
  }

  // Another daemon on the socket is said first; then metrics, before the socket is served: a
  // served socket says the daemon is ready, so nothing may stop the start after it. The lock
  // comes before the socket is looked at: two daemons starting at once must not both replace
  // a stale socket and serve.
  let lock: StartLock;
  try {
    await prepareSocketDir(config.socketDir);
    lock = await takeStartLock(config.socketDir);
  } catch (err) {
    say("error", `daemon: ${err instanceof SocketError ? err.message : errorMessage(err)}`);
    return 1;
  }
  // Delegates a killed predecessor left running would attach pods its shims reported failed.
  const left = await stopLeftDelegates(config.socketDir);
  if (left > 0) {
    say(
      "error",
      `warning: daemon: stopped ${left} delegate process(es) a previous daemon left running`,
    );
  }
  try {
    return await serveLocked(config, { limiter, metrics, kube, delegateExec });
  } finally {
    lock.release();
  }
}

/** The daemon's life once it holds the socket directory's lock. */
async function serveLocked(
  config: DaemonConfig,
  { limiter, metrics, kube, delegateExec }: {
    limiter: RequestLimiter;
    metrics: DaemonMetrics;
    kube: DaemonKube;
    delegateExec: Exec;
  },
): Promise<number> {
  try {
    await prepareSocketPath(config.socketPath);
  } catch (err) {
    say("error", `daemon: ${err instanceof SocketError ? err.message : errorMessage(err)}`);
    return 1;
  }
  let metricsServer: MetricsServer | undefined;
  if (config.metricsPort !== undefined) {
    try {
      metricsServer = serveMetrics(metrics.registry, {
        hostname: config.metricsAddress,
        port: config.metricsPort,
      });
    } catch (err) {
      say(
        "error",
        `daemon: cannot serve metrics on ${config.metricsAddress}:${config.metricsPort}: ${
          errorMessage(err)
        }`,
      );
      return 1;
    }
  }

  await kube.start();
  let server: DaemonServer;
  try {
    server = await DaemonServer.start({
      socketPath: config.socketPath,
      handler: new InProcessCniHandler(Deno.env.toObject(), {
        openKubeClient: kube.access,
        exec: timedExec(
          (plugin, command, seconds, ok) =>
            metrics.delegateDuration.observe(
              { plugin, command, result: ok ? "success" : "error" },
              seconds,
            ),
          delegateExec,
        ),
      }),
      overlay: config.overlay,
      limiter,
      queueWaitMs: config.queueTimeoutSeconds * 1000,
      requestTimeoutMs: config.requestTimeoutSeconds * 1000,
      metrics,
    });
  } catch (err) {
    const message = err instanceof SocketError
      ? err.message
      : `Cannot serve ${config.socketPath}: ${errorMessage(err)}`;
    say("error", `daemon: ${message}`);
    await kube.stop(0);
    await metricsServer?.close();
    return 1;
  }

  say(
    "verbose",
    `daemon: serving ${config.socketPath} (at most ${config.maxParallelRequests} requests ` +
      `at once, ${config.maxQueuedRequests} waiting)` +
      (metricsServer ? `, metrics on ${config.metricsAddress}:${metricsServer.port}` : "") +
      (config.nodeName ? `, node ${config.nodeName}` : ""),
  );

  const signal = await stopSignal();
  say("verbose", `daemon: ${signal}: draining (readyz 500, new requests to the shims)`);
  const unfinished = await server.shutdown(config.shutdownGraceSeconds * 1000);
  const unsent = await kube.stop(EVENT_FLUSH_MS);
  if (unsent > 0) say("error", `daemon: ${unsent} pod event(s) not posted at shutdown`);
  await metricsServer?.close();
  if (unfinished > 0) {
    say(
      "error",
      `daemon: ${unfinished} request(s) still running after ${config.shutdownGraceSeconds} s ` +
        "are abandoned: their shims stop the delegates left running, release what an ADD " +
        "attached and report code 11, and run other commands themselves",
    );
  }
  say("verbose", "daemon: stopped");
  return 0;
}

/** Resolves with the first SIGTERM or SIGINT. */
function stopSignal(): Promise<Deno.Signal> {
  return new Promise((resolve) => {
    const signals: Deno.Signal[] = ["SIGTERM", "SIGINT"];
    const handlers = signals.map((signal) => {
      const handler = () => {
        signals.forEach((s, i) => Deno.removeSignalListener(s, handlers[i]));
        resolve(signal);
      };
      Deno.addSignalListener(signal, handler);
      return handler;
    });
  });
}

/**
 * One request's stray promise or timer must not stop the node's daemon: such errors are
 * logged and the daemon goes on (each request's own errors are answered to its shim).
 */
function keepServingOnStrayErrors(): void {
  globalThis.addEventListener("unhandledrejection", (event) => {
    event.preventDefault();
    const reason = event.reason as Error | undefined;
    say("error", `daemon: unhandled rejection: ${reason?.message ?? String(reason)}`);
  });
  globalThis.addEventListener("error", (event) => {
    event.preventDefault();
    say("error", `daemon: uncaught error: ${event.message}`);
  });
}
