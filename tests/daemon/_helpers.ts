/**
 * @module
 * Helpers for the daemon's end-to-end tests: a node root (bin dir with the launcher as
 * `multus` and `multus-shim`, a slow bridge wrapper), the three configurations of thick mode
 * (daemon, shim, thin), the daemon started as a real process, requests over its socket, and
 * its metrics.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import {
  makeTestRoot,
  REPO_ROOT,
  runPlugin,
  SYSTEM_CNI_DIR,
  type TestRoot,
  uniqueSuffix,
} from "../helpers/plugin_run.ts";
import { deleteHostLink, TestNetns } from "../helpers/netns.ts";
import type { K8sFixture } from "../helpers/k8s_fixture.ts";
import {
  cancellableDeadline,
  unixHttpRequest,
  type UnixHttpResponse,
} from "../../src/util/unix_http.ts";

/** A CNI node for thick-mode tests. */
export interface Node {
  root: TestRoot;
  /** The daemon's socket directory. */
  socketDir: string;
  socketPath: string;
  /** Where the slow bridge records starts and looks for holds. */
  gateDir: string;
  bridge: string;
  leaseDir: string;
  /** The netconf keys both the daemon and the thin configuration carry. */
  netconf: Record<string, unknown>;
  /** Path of the thin configuration (written by {@linkcode makeNode}). */
  thinConfig: string;
  namespaces: TestNetns[];
  cleanup(): Promise<void>;
}

let subnet = 20 + Math.floor(Math.random() * 150);

/**
 * A node whose networks are one bridge (through `slow-bridge`, which waits while a hold file
 * for the container exists) with host-local addresses.
 */
export async function makeNode(options: { extraNetconf?: Record<string, unknown> } = {}) {
  const root = await makeTestRoot();
  await Deno.symlink(join(REPO_ROOT, "scripts", "dev-multus"), join(root.binDir, "multus-shim"));
  const gateDir = join(root.dir, "gates");
  await Deno.mkdir(gateDir);
  const slow = join(root.binDir, "slow-bridge");
  await Deno.writeTextFile(
    slow,
    `#!/bin/sh
# The real bridge plugin; ADD first says it started, then waits while the test holds it.
if [ "$CNI_COMMAND" = ADD ]; then
  : > "${gateDir}/started-$CNI_CONTAINERID"
  while [ -e "${gateDir}/hold-$CNI_CONTAINERID" ]; do sleep 0.05; done
fi
exec /usr/lib/cni/bridge "$@"
`,
  );
  await Deno.chmod(slow, 0o755);
  const bridge = `mtbr${uniqueSuffix()}`;
  const leaseDir = join(root.dir, "leases");
  const n = subnet++;
  const netconf = {
    cniDir: root.cniDir,
    binDir: root.binDir,
    logFile: root.logFile,
    logLevel: "verbose",
    delegates: [{
      cniVersion: "1.0.0",
      name: "slow-net",
      type: "slow-bridge",
      bridge,
      isGateway: true,
      ipam: {
        type: "host-local",
        subnet: `10.241.${n}.0/24`,
        dataDir: leaseDir,
        routes: [{ dst: "0.0.0.0/0" }],
      },
    }],
    ...options.extraNetconf,
  };
  const socketDir = join(root.dir, "run");
  const thinConfig = join(root.dir, "thin.conf");
  await Deno.writeTextFile(
    thinConfig,
    JSON.stringify({ cniVersion: "1.0.0", name: "multus-cni-network", type: "multus", ...netconf }),
  );
  const node: Node = {
    root,
    socketDir,
    socketPath: join(socketDir, "multus.sock"),
    gateDir,
    bridge,
    leaseDir,
    netconf,
    thinConfig,
    namespaces: [],
    async cleanup() {
      for (const ns of node.namespaces) await ns.remove();
      await deleteHostLink(bridge);
      await root.cleanup();
    },
  };
  return node;
}

/**
 * The daemon's view of a node on a Kubernetes fixture: the launcher installed as
 * `multus-shim` too, `thinConf` written as the thin configuration, and the netconf keys of
 * `daemonConf` (its cniVersion, name and type dropped) for the daemon's configuration.
 */
export async function fixtureNode(
  f: K8sFixture,
  daemonConf: Record<string, unknown>,
  thinConf: Record<string, unknown>,
): Promise<Node> {
  await Deno.symlink(join(f.root.binDir, "multus"), join(f.root.binDir, "multus-shim"));
  const { cniVersion: _v, name: _n, type: _t, ...netconf } = daemonConf;
  const socketDir = join(f.root.dir, "run");
  const thinConfig = join(f.root.dir, "thin.conf");
  await Deno.writeTextFile(thinConfig, JSON.stringify(thinConf));
  return {
    root: f.root,
    socketDir,
    socketPath: join(socketDir, "multus.sock"),
    gateDir: join(f.root.dir, "gates"),
    bridge: f.bridge,
    leaseDir: f.leaseDir,
    netconf,
    thinConfig,
    namespaces: [],
    cleanup: () => Promise.resolve(),
  };
}

/**
 * A Kubernetes fixture's node with its daemon up. `cleanup` stops the daemon, removes the
 * network namespaces of `namespaces` and the fixture, then fails unless the daemon exited 0.
 */
export interface FixtureDaemon {
  f: K8sFixture;
  node: Node;
  daemon: RunningDaemon;
  /** The pods' network namespaces (see {@linkcode newSandbox}). */
  namespaces: TestNetns[];
  cleanup(): Promise<void>;
}

/**
 * Starts the daemon on `f`'s node ({@linkcode fixtureNode}) with `MULTUS_NODE_NAME=nodeName`;
 * cleans the fixture up when it cannot.
 */
export async function startFixtureDaemon(
  f: K8sFixture,
  nodeName: string,
  daemonConf: Record<string, unknown>,
  thinConf: Record<string, unknown>,
): Promise<FixtureDaemon> {
  let node: Node;
  let daemon: RunningDaemon;
  try {
    node = await fixtureNode(f, daemonConf, thinConf);
    daemon = await startDaemon(node, {}, { env: { MULTUS_NODE_NAME: nodeName } });
  } catch (err) {
    await f.cleanup();
    throw err;
  }
  const namespaces: TestNetns[] = [];
  return {
    f,
    node,
    daemon,
    namespaces,
    async cleanup() {
      const stopped = await stopDaemon(daemon);
      for (const ns of namespaces) await ns.remove();
      await f.cleanup();
      assert.equal(stopped.code, 0, stopped.stderr);
    },
  };
}

/** A new sandbox: a fresh network namespace (removed by `d.cleanup`) and container id. */
export async function newSandbox(
  d: Pick<FixtureDaemon, "namespaces">,
): Promise<{ ns: TestNetns; containerId: string }> {
  const ns = await TestNetns.create();
  d.namespaces.push(ns);
  return { ns, containerId: containerId() };
}

/** The CNI_ARGS a runtime passes for a pod's sandbox. */
export function podArgs(
  pod: { namespace: string; name: string; uid: string; containerId: string },
): string {
  return `IgnoreUnknown=1;K8S_POD_NAMESPACE=${pod.namespace};K8S_POD_NAME=${pod.name};K8S_POD_INFRA_CONTAINER_ID=${pod.containerId};K8S_POD_UID=${pod.uid}`;
}

/** The shim configuration the runtime passes (Multus's keys plus ours). */
export function shimConf(node: Node, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    cniVersion: "0.4.0",
    name: "multus-cni-network",
    type: "multus-shim",
    daemonSocketDir: node.socketDir,
    thinConfig: node.thinConfig,
    logFile: node.root.logFile,
    ...extra,
  };
}

/** A fresh network namespace, removed by the node's cleanup. */
export async function podNetns(node: Node): Promise<TestNetns> {
  const ns = await TestNetns.create();
  node.namespaces.push(ns);
  return ns;
}

/** Runs a command through the shim (`multus-shim` in the bin dir) as the runtime would. */
export function shimCall(
  node: Node,
  command: string,
  pod: { ns: TestNetns; containerId: string; name?: string },
  conf: Record<string, unknown> = shimConf(node),
) {
  return node.root.run({
    command,
    containerId: pod.containerId,
    netns: pod.ns.path,
    ifName: "eth0",
    args: `IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=${pod.name ?? pod.containerId}`,
    config: conf,
  });
}

/** Runs a command through a given binary (the shim of the node or another one). */
export function binaryCall(
  node: Node,
  binary: string,
  command: string,
  pod: { ns: TestNetns; containerId: string },
  conf: Record<string, unknown>,
) {
  return runPlugin(binary, {
    command,
    containerId: pod.containerId,
    netns: pod.ns.path,
    ifName: "eth0",
    args: `IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=${pod.containerId}`,
    path: [node.root.binDir, SYSTEM_CNI_DIR],
    config: conf,
  });
}

/** A container id that is unique on the host. */
export function containerId(): string {
  return `ctr-${uniqueSuffix()}${uniqueSuffix()}`;
}

/** A free TCP port on 127.0.0.1. */
export function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  return port;
}

/** A daemon process. */
export interface RunningDaemon {
  pid: number;
  configFile: string;
  metricsPort?: number;
  /** Sends a signal. */
  kill(signal: Deno.Signal): void;
  /** Exit status and everything it wrote to stderr. */
  exited: Promise<{ code: number; signal: Deno.Signal | null; stderr: string }>;
  /** The `/metrics` text. */
  metrics(): Promise<string>;
}

/**
 * Writes the daemon configuration (the node's netconf keys, its socket dir, `extra`) and
 * starts `scripts/dev-multus daemon --config FILE`. With `waitReady` (default), returns once
 * the daemon answers `/readyz`, or throws with its stderr if it exited first.
 */
export async function startDaemon(
  node: Node,
  extra: Record<string, unknown> = {},
  options: {
    waitReady?: boolean;
    metrics?: boolean;
    args?: string[];
    env?: Record<string, string>;
    /** A command the daemon runs under (e.g. `unshare -m ...`); it must exec its arguments. */
    wrapper?: string[];
  } = {},
): Promise<RunningDaemon> {
  for (let attempt = 1;; attempt++) {
    try {
      return await startDaemonOnce(node, extra, options);
    } catch (err) {
      // The free port found may be taken by another process before the daemon binds it.
      if (attempt < 3 && /cannot serve metrics/.test(String(err))) continue;
      throw err;
    }
  }
}

async function startDaemonOnce(
  node: Node,
  extra: Record<string, unknown>,
  options: {
    waitReady?: boolean;
    metrics?: boolean;
    args?: string[];
    env?: Record<string, string>;
    /** A command the daemon runs under (e.g. `unshare -m ...`); it must exec its arguments. */
    wrapper?: string[];
  },
): Promise<RunningDaemon> {
  const metricsPort = options.metrics === false ? undefined : freePort();
  const config = {
    socketDir: node.socketDir,
    ...node.netconf,
    ...(metricsPort ? { metricsPort } : {}),
    ...extra,
  };
  const configFile = join(node.root.dir, `daemon-config-${uniqueSuffix()}.json`);
  // Compact, as the thin configuration: delegates reach plugins byte for byte from either.
  await Deno.writeTextFile(configFile, JSON.stringify(config));
  const argv = [
    ...(options.wrapper ?? []),
    join(REPO_ROOT, "scripts", "dev-multus"),
    "daemon",
    ...(options.args ?? ["--config", configFile]),
  ];
  const child = new Deno.Command(argv[0], {
    args: argv.slice(1),
    env: options.env,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const exited = child.output().then((out) => ({
    code: out.code,
    signal: out.signal,
    stderr: new TextDecoder().decode(out.stderr) + new TextDecoder().decode(out.stdout),
  }));
  const daemon: RunningDaemon = {
    pid: child.pid,
    configFile,
    metricsPort,
    kill(signal) {
      try {
        child.kill(signal);
      } catch {
        // gone already
      }
    },
    exited,
    async metrics() {
      const res = await fetch(`http://127.0.0.1:${metricsPort}/metrics`);
      return await res.text();
    },
  };
  if (options.waitReady !== false) {
    let gone = false;
    exited.then(() => gone = true);
    for (;;) {
      if (gone) throw new Error(`the daemon exited at start: ${(await exited).stderr}`);
      const ready = await socketRequest(node.socketPath, "GET", "/readyz").catch(() => undefined);
      if (ready?.status === 200) break;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
  return daemon;
}

/** Stops a daemon with SIGTERM and returns how it ended. */
export async function stopDaemon(daemon: RunningDaemon) {
  daemon.kill("SIGTERM");
  return await daemon.exited;
}

/** One HTTP request over the daemon's socket. */
export function socketRequest(
  socketPath: string,
  method: "GET" | "POST",
  path: string,
  body?: unknown,
  headers: Record<string, string> = {},
): Promise<UnixHttpResponse & { text: string }> {
  const bytes = body === undefined
    ? undefined
    : body instanceof Uint8Array
    ? body
    : new TextEncoder().encode(typeof body === "string" ? body : JSON.stringify(body));
  return unixHttpRequest({
    socketPath,
    method,
    path,
    headers: { "Content-Type": "application/json", ...headers },
    body: bytes,
    acceptTimeoutMs: 10_000,
    responseTimeoutMs: 60_000,
    deadline: cancellableDeadline,
  }).then((res) => ({ ...res, text: new TextDecoder().decode(res.body) }));
}

/** The body Multus's shim sends for a CNI call. */
export function cniBody(env: Record<string, string>, config: unknown): Record<string, unknown> {
  const text = typeof config === "string" ? config : JSON.stringify(config);
  return { env, config: btoa(String.fromCharCode(...new TextEncoder().encode(text))) };
}

/** Waits until `path` exists (a delegate started). */
export async function waitForFile(path: string): Promise<void> {
  for (;;) {
    try {
      await Deno.stat(path);
      return;
    } catch {
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
  }
}

/**
 * Waits until the slow bridge's ADD for `id` started; throws with the call's output if the
 * call ends first.
 */
export async function waitForStart(
  node: Node,
  id: string,
  call: Promise<{ code: number; stdout: string; stderr: string }>,
): Promise<void> {
  const first = await Promise.race([
    waitForFile(join(node.gateDir, `started-${id}`)).then(() => undefined),
    call,
  ]);
  if (first) {
    throw new Error(`the ADD ended before its delegate started: ${first.stdout}${first.stderr}`);
  }
}

/** Holds the slow bridge's ADD for a container until the returned function is called. */
export async function hold(node: Node, id: string): Promise<() => Promise<void>> {
  const file = join(node.gateDir, `hold-${id}`);
  await Deno.writeTextFile(file, "");
  return () => Deno.remove(file);
}

/** The value of a metric series in a `/metrics` text (0 when absent). */
export function metricValue(text: string, series: string): number {
  const line = text.split("\n").find((l) => l.startsWith(`${series} `));
  return line ? Number(line.slice(series.length + 1)) : 0;
}

/**
 * Polls the daemon's metrics until `ready` holds for them. Gives up after a minute (a daemon
 * without caches never gets there), saying what the metrics were.
 */
export async function untilMetrics(
  daemon: RunningDaemon,
  ready: (text: string) => boolean,
): Promise<string> {
  const giveUpAt = Date.now() + 60_000;
  for (;;) {
    const text = await daemon.metrics();
    if (ready(text)) return text;
    if (Date.now() > giveUpAt) throw new Error(`the daemon's metrics never got there:\n${text}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

/** The names of the interfaces in `ns`, sorted. */
export async function linkNames(ns: TestNetns): Promise<string[]> {
  return (await ns.links()).map((l) => l.ifname).sort();
}

/** Runs `scripts/dev-multus daemon ARGS` to its end (no stdin): exit code and output. */
export async function daemonRun(args: string[]) {
  const out = await new Deno.Command(join(REPO_ROOT, "scripts", "dev-multus"), {
    args: ["daemon", ...args],
    stdin: "null",
  }).output();
  return {
    code: out.code,
    stdout: new TextDecoder().decode(out.stdout),
    stderr: new TextDecoder().decode(out.stderr),
  };
}

/** Lines of the fallback record, parsed. */
export async function fallbackRecord(node: Node): Promise<Record<string, string>[]> {
  try {
    const text = await Deno.readTextFile(join(node.socketDir, "fallbacks.log"));
    return text.split("\n").filter((l) => l !== "").map((l) => JSON.parse(l));
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return [];
    throw err;
  }
}
