/**
 * @module
 * Ours against Go Multus v4.0.2 in one run, in Kubernetes mode: our thin plugin (the bundled
 * program, and the `deno run` launcher from source), our daemon mode (shim + `multus daemon`),
 * Go's thin `multus` and Go's thick `multus-shim` + `multus-daemon`, and the delegates called
 * directly (the floor); 1, 4 and 16 extra networks; pods spaced and back to back; ADD and DEL
 * median and p90, API requests per ADD, the daemons' RSS idle with a node's worth of pods and
 * NADs in the cluster and at the peak of a burst, and the shims' start-up. Writes
 * docs/benchmarks-peers.md (scripts/bench_peers_report.ts) and prints its tables.
 *
 * Run as root through `scripts/bench-peers` (`--quick` for a fast check). Go's binaries come
 * from `$MULTUS_PEERS_DIR` or `../shared/peers` (`unpack`). Everything it creates (processes,
 * network namespaces, links, sockets, temporary folders, the service-account mount point of
 * Go's daemon) is removed at the end, also after a failure or Ctrl-C.
 */

import { join } from "node:path";
import {
  type CniCall,
  type PluginRun,
  REPO_ROOT,
  startPlugin,
  SYSTEM_CNI_DIR,
  uniqueSuffix,
} from "../tests/helpers/plugin_run.ts";
import { deleteHostLink, HostVeth, sh, TestNetns } from "../tests/helpers/netns.ts";
import { unpackGoPeers } from "../tests/helpers/go_peers.ts";
import { bundle } from "./_bundled_bench.ts";
import { startTestApiServer, type TestApiServer } from "../tests/k8s_api/server.ts";
import { realisticNad, realisticPod } from "../tests/helpers/realistic_objects.ts";
import { cancellableDeadline, unixHttpRequest } from "../src/util/unix_http.ts";
import {
  type Arrival,
  type DaemonFigures,
  daemonTable,
  IMPL_LABELS,
  type ImplId,
  type ImplSamples,
  latencyTable,
  type PeersResults,
  reportDoc,
  type RequestCount,
  type Scenario,
  stats,
  targetsTable,
} from "./bench_peers_report.ts";

const args = Deno.args;
const QUICK = args.includes("--quick");
const option = (name: string) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
};
const PODS = Number(option("--pods") ?? (QUICK ? 3 : 20));
const SPACING_MS = Number(option("--spacing-ms") ?? (QUICK ? 300 : 1000));
const NETWORKS = (option("--networks") ?? (QUICK ? "1,4" : "1,4,16")).split(",").map(Number);
const API_LATENCY_MS = 5;
const BURST = QUICK ? 10 : 50;
const BACKGROUND_PODS = 110;
const BACKGROUND_NADS = 200;
const SHIM_SAMPLES = QUICK ? 3 : 8;
const SHIM_PAUSE_MS = QUICK ? 500 : 2_000;
const OUT = option("--out") ?? join(REPO_ROOT, "docs", "benchmarks-peers.md");
const NODE = "bench-node";
const NS = "bench";
const SA_DIR = "/run/secrets/kubernetes.io/serviceaccount";
const encoder = new TextEncoder();

const began = performance.now();

function print(text = ""): void {
  Deno.stdout.writeSync(encoder.encode(`${text}\n`));
}

/** A progress line, with the seconds since the start. */
function progress(text: string): void {
  print(`[${((performance.now() - began) / 1000).toFixed(0).padStart(4)} s] ${text}`);
}

/** Set by SIGINT/SIGTERM: no new pod is made after it. */
let interrupted = false;

/** Everything to undo at the end, most recent first. */
const cleanups: (() => Promise<unknown>)[] = [];
let cleaning: Promise<void> | undefined;

function cleanupAll(): Promise<void> {
  cleaning ??= (async () => {
    for (const undo of cleanups.splice(0).reverse()) {
      try {
        await undo();
      } catch (err) {
        Deno.stderr.writeSync(encoder.encode(`cleanup: ${err}\n`));
      }
    }
  })();
  return cleaning;
}

/** A pod of the bench: its API object, network namespace and CNI identity. */
interface BenchPod {
  name: string;
  uid: string;
  containerId: string;
  ns: TestNetns;
  networks: number;
  /** When its DEL started (`Date.now()`): requests after it are the DEL's. */
  delStart?: number;
}

/** A timed CNI call. */
interface Exec extends PluginRun {
  ms: number;
  start: number;
  end: number;
}

/** One implementation: how it runs ADD and DEL for a pod. */
interface Impl {
  id: ImplId;
  add(pod: BenchPod): Promise<Exec>;
  del(pod: BenchPod): Promise<Exec>;
}

/** What the run shares. */
interface Bench {
  work: string;
  api: TestApiServer;
  veth: HostVeth;
  clusterFile: string;
  bridgeConf: Record<string, unknown>;
  macvlanConf(i: number): Record<string, unknown>;
  kubeconfig: string;
  confDir: string;
  /** Our launcher for the bundled program (also linked as `multus-shim`). */
  ours: string;
  oursShim: string;
  peers: string;
  /** Live namespaces, removed at the end if a failure left them. */
  namespaces: Set<TestNetns>;
}

function cniEnv(command: string, pod: BenchPod, ifName = "eth0"): CniCall {
  return {
    command,
    containerId: pod.containerId,
    netns: pod.ns.path,
    ifName,
    args:
      `IgnoreUnknown=1;K8S_POD_NAMESPACE=${NS};K8S_POD_NAME=${pod.name};K8S_POD_INFRA_CONTAINER_ID=${pod.containerId};K8S_POD_UID=${pod.uid}`,
    path: [SYSTEM_CNI_DIR],
    config: "",
  };
}

async function timed(binary: string, call: CniCall): Promise<Exec> {
  const start = Date.now();
  const t0 = performance.now();
  const run = await startPlugin(binary, call).done;
  return { ...run, ms: performance.now() - t0, start, end: Date.now() };
}

/** Calls made through each implementation (the daemon's fallback count is out of these). */
const calls = new Map<ImplId, number>();

/** An implementation that is one CNI binary with one configuration. */
function binaryImpl(id: ImplId, binary: string, conf: Record<string, unknown> | string): Impl {
  const config = typeof conf === "string" ? conf : JSON.stringify(conf);
  const call = (command: string, pod: BenchPod) => {
    calls.set(id, (calls.get(id) ?? 0) + 1);
    return timed(binary, { ...cniEnv(command, pod), config });
  };
  return { id, add: (pod) => call("ADD", pod), del: (pod) => call("DEL", pod) };
}

/** The delegates called directly, in Multus's order (DEL in reverse). */
function floorImpl(b: Bench): Impl {
  const delegates = (pod: BenchPod) => {
    const list: [string, string, Record<string, unknown>][] = [["bridge", "eth0", b.bridgeConf]];
    for (let i = 1; i <= pod.networks; i++) {
      list.push(["macvlan", `net${i}`, { ...b.macvlanConf(i), name: `mv-${i}` }]);
    }
    return list;
  };
  const run = async (command: string, pod: BenchPod) => {
    const start = Date.now();
    const t0 = performance.now();
    const list = delegates(pod);
    let last: PluginRun = { code: 0, stdout: "", stderr: "" };
    for (const [type, ifName, conf] of command === "DEL" ? list.reverse() : list) {
      last = await startPlugin(join(SYSTEM_CNI_DIR, type), {
        ...cniEnv(command, pod, ifName),
        config: JSON.stringify(conf),
      }).done;
      if (last.code !== 0) break;
    }
    return { ...last, ms: performance.now() - t0, start, end: Date.now() };
  };
  return { id: "floor", add: (pod) => run("ADD", pod), del: (pod) => run("DEL", pod) };
}

/** A Kubernetes-mode thin configuration with its own cache dir. */
function thinConf(b: Bench, cniDir: string): Record<string, unknown> {
  return {
    cniVersion: "1.0.0",
    name: "multus-cni-network",
    type: "multus",
    kubeconfig: b.kubeconfig,
    clusterNetwork: b.clusterFile,
    cniDir,
    binDir: SYSTEM_CNI_DIR,
    confDir: b.confDir,
  };
}

/** A daemon process whose memory the bench reads. */
interface Daemon {
  pid: number;
  socketDir: string;
  log: string;
  stop(): Promise<void>;
}

/** True once the daemon answers 200 on `path` (v4.0.2 has `/healthz` only; ours `/readyz`). */
async function ready(socketDir: string, path: string): Promise<boolean> {
  try {
    const res = await unixHttpRequest({
      socketPath: join(socketDir, "multus.sock"),
      method: "GET",
      path,
      acceptTimeoutMs: 2_000,
      responseTimeoutMs: 2_000,
      deadline: cancellableDeadline,
    });
    return res.status === 200;
  } catch {
    return false;
  }
}

/** Starts `argv` with its output appended to `log`; resolves once its socket says ready. */
async function startDaemon(
  name: string,
  argv: string[],
  env: Record<string, string>,
  socketDir: string,
  log: string,
  readyPath: string,
): Promise<Daemon> {
  // `exec` keeps the pid: the one whose /proc/<pid>/status the bench reads is the daemon.
  const child = new Deno.Command("sh", {
    args: ["-c", `exec "$@" >>"${log}" 2>&1`, "sh", ...argv],
    env,
    stdin: "null",
    stdout: "null",
    stderr: "null",
  }).spawn();
  let exited = false;
  const status = child.status.then((s) => {
    exited = true;
    return s;
  });
  const daemon: Daemon = {
    pid: child.pid,
    socketDir,
    log,
    async stop() {
      if (exited) return;
      try {
        child.kill("SIGTERM");
      } catch { /* gone */ }
      const timer = setTimeout(() => {
        try {
          child.kill("SIGKILL");
        } catch { /* gone */ }
      }, 15_000);
      await status;
      clearTimeout(timer);
    },
  };
  cleanups.push(() => daemon.stop());
  const deadline = Date.now() + 60_000;
  while (!(await ready(socketDir, readyPath))) {
    if (exited || Date.now() > deadline) {
      const text = await Deno.readTextFile(log).catch(() => "");
      throw new Error(`${name} did not become ready:\n${text.slice(-3000)}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return daemon;
}

/** Our daemon and our shim (the bundled program). */
async function oursDaemon(b: Bench): Promise<{ impl: Impl; daemon: Daemon; shimConf: string }> {
  const dir = join(b.work, "ours-daemon");
  await Deno.mkdir(dir);
  const cniDir = join(dir, "cache");
  const socketDir = join(dir, "run");
  const thinConfig = join(dir, "thin.conf");
  await Deno.writeTextFile(thinConfig, JSON.stringify(thinConf(b, cniDir)));
  const configFile = join(dir, "daemon-config.json");
  const { cniVersion: _v, name: _n, type: _t, ...netconf } = thinConf(b, cniDir);
  await Deno.writeTextFile(
    configFile,
    JSON.stringify({ socketDir, logToStderr: true, logLevel: "error", ...netconf }),
  );
  const daemon = await startDaemon(
    "multus daemon",
    [b.ours, "daemon", "--config", configFile],
    { MULTUS_NODE_NAME: NODE },
    socketDir,
    join(dir, "daemon.log"),
    "/readyz",
  );
  const shimConf = JSON.stringify({
    cniVersion: "1.0.0",
    name: "multus-cni-network",
    type: "multus-shim",
    daemonSocketDir: socketDir,
    thinConfig,
  });
  return { impl: binaryImpl("oursDaemon", b.oursShim, shimConf), daemon, shimConf };
}

/**
 * Go's daemon. v4.0.2 builds its API client from the in-cluster environment only (the
 * service-account token and CA under /run/secrets/kubernetes.io/serviceaccount): the bench
 * bind-mounts them there in a mount namespace of the daemon's own (slave propagation, so the
 * pods' network namespaces mounted later are seen), leaving the host's view untouched but for
 * the empty mount point, which it removes at the end if it made it.
 */
async function goDaemon(b: Bench): Promise<{ impl: Impl; daemon: Daemon; shimConf: string }> {
  const dir = join(b.work, "go-daemon");
  await Deno.mkdir(dir);
  const sa = join(dir, "serviceaccount");
  await Deno.mkdir(sa);
  await Deno.writeTextFile(join(sa, "token"), b.api.token);
  await Deno.writeTextFile(join(sa, "ca.crt"), b.api.caPem);
  await Deno.writeTextFile(join(sa, "namespace"), "kube-system");
  await makeMountPoint(SA_DIR);
  const socketDir = join(dir, "run");
  const cniConfigDir = join(dir, "net.d");
  await Deno.mkdir(cniConfigDir);
  const shimConf = JSON.stringify({
    cniVersion: "1.0.0",
    name: "multus-cni-network",
    type: "multus-shim",
    daemonSocketDir: socketDir,
  });
  const shimConfFile = join(dir, "00-multus.conf");
  await Deno.writeTextFile(shimConfFile, shimConf);
  const { cniVersion: _v, name: _n, type: _t, kubeconfig: _k, ...netconf } = thinConf(
    b,
    join(dir, "cache"),
  );
  const configFile = join(dir, "daemon-config.json");
  await Deno.writeTextFile(
    configFile,
    JSON.stringify({
      cniVersion: "1.0.0",
      socketDir,
      multusConfigFile: shimConfFile,
      cniConfigDir,
      logLevel: "error",
      logToStderr: true,
      ...netconf,
    }),
  );
  const daemon = await startDaemon(
    "Go multus-daemon",
    [
      "unshare",
      "--mount",
      "--propagation",
      "slave",
      "sh",
      "-c",
      `mount --bind "${sa}" "${SA_DIR}" && exec "$0" "$@"`,
      join(b.peers, "multus-daemon"),
      "-config",
      configFile,
    ],
    {
      KUBERNETES_SERVICE_HOST: "127.0.0.1",
      KUBERNETES_SERVICE_PORT: String(b.api.port),
      MULTUS_NODE_NAME: NODE,
    },
    socketDir,
    join(dir, "daemon.log"),
    "/healthz",
  );
  return {
    impl: binaryImpl("goThick", join(b.peers, "multus-shim"), shimConf),
    daemon,
    shimConf,
  };
}

/** Creates `path` and its missing parents; the ones it made are removed at the end. */
async function makeMountPoint(path: string): Promise<void> {
  const made: string[] = [];
  const parts = path.split("/").filter((p) => p);
  for (let i = 1; i <= parts.length; i++) {
    const dir = `/${parts.slice(0, i).join("/")}`;
    try {
      await Deno.mkdir(dir);
      made.push(dir);
    } catch (err) {
      if (!(err instanceof Deno.errors.AlreadyExists)) throw err;
    }
  }
  cleanups.push(async () => {
    for (const dir of made.reverse()) await Deno.remove(dir).catch(() => {});
  });
}

async function setup(): Promise<Bench> {
  const work = await Deno.makeTempDir({ prefix: "multus-bench-peers-" });
  cleanups.push(() => Deno.remove(work, { recursive: true }));
  const unpacked = await unpackGoPeers(join(work, "peers"));
  if (typeof unpacked !== "string") throw new Error(unpacked.missing);
  const peers = unpacked;
  const oursDir = join(work, "ours");
  const ours = await bundle(REPO_ROOT, oursDir);
  const api = await startTestApiServer();
  cleanups.push(() => api.close());
  const veth = await HostVeth.create();
  cleanups.push(() => veth.remove());
  const octet = 10 + Math.floor(Math.random() * 200);
  const bridge = `mtbp${uniqueSuffix()}`;
  cleanups.push(() => deleteHostLink(bridge));
  const clusterFile = join(work, "10-bridge.conf");
  const bridgeConf = {
    cniVersion: "1.0.0",
    name: "cluster-bridge",
    type: "bridge",
    bridge,
    isGateway: true,
    ipam: {
      type: "host-local",
      subnet: `10.240.${octet}.0/24`,
      dataDir: join(work, "leases"),
      routes: [{ dst: "0.0.0.0/0" }],
    },
  };
  await Deno.writeTextFile(clusterFile, JSON.stringify(bridgeConf));
  const macvlanConf = (i: number) => ({
    cniVersion: "1.0.0",
    type: "macvlan",
    master: veth.a,
    mode: "bridge",
    ipam: { type: "static", addresses: [{ address: `10.239.${octet}.${10 + i}/24` }] },
  });
  for (let i = 1; i <= Math.max(...NETWORKS); i++) {
    api.setNad({
      metadata: { name: `mv-${i}`, namespace: NS },
      spec: { config: JSON.stringify(macvlanConf(i)) },
    });
  }
  // A node's worth of pods and a cluster's NADs, as the daemons' caches would hold them.
  for (let i = 0; i < BACKGROUND_PODS; i++) {
    api.setPod(
      realisticPod({
        name: `app-${i}-7c9f8d6b5d-x${i}`,
        namespace: `team-${i % 10}`,
        nodeName: NODE,
        index: i,
      }),
    );
  }
  for (let i = 0; i < BACKGROUND_NADS; i++) {
    api.setNad(realisticNad(`net-${i}`, `team-${i % 10}`, i));
  }
  const confDir = join(work, "net.d");
  await Deno.mkdir(confDir);
  const namespaces = new Set<TestNetns>();
  cleanups.push(async () => {
    for (const ns of namespaces) await ns.remove();
  });
  return {
    work,
    api,
    veth,
    clusterFile,
    bridgeConf,
    macvlanConf,
    kubeconfig: await api.writeKubeconfig({ auth: "token" }),
    confDir,
    ours,
    oursShim: join(oursDir, "multus-shim"),
    peers,
    namespaces,
  };
}

let podCounter = 0;

/** Creates the pod in the API server (bound to the node) and its network namespace. */
async function newPod(b: Bench, tag: string, networks: number): Promise<BenchPod> {
  if (interrupted) throw new Error("interrupted");
  const name = `${tag}-${(podCounter++).toString(36)}`;
  const stored = b.api.setPod({
    metadata: {
      name,
      namespace: NS,
      annotations: networks === 0 ? {} : {
        "k8s.v1.cni.cncf.io/networks": Array.from({ length: networks }, (_, i) => `mv-${i + 1}`)
          .join(","),
      },
    },
    spec: { nodeName: NODE, containers: [{ name: "app", image: "registry.k8s.io/pause:3.10" }] },
  });
  const ns = await TestNetns.create();
  if (interrupted) {
    // Cleanup may have gone through the namespaces while this one was being made.
    await ns.remove();
    throw new Error("interrupted");
  }
  b.namespaces.add(ns);
  return {
    name,
    uid: stored.metadata.uid!,
    containerId: `bench${uniqueSuffix()}${uniqueSuffix()}`,
    ns,
    networks,
  };
}

async function dropPod(b: Bench, pod: BenchPod): Promise<void> {
  b.api.deletePod(NS, pod.name);
  await pod.ns.remove();
  b.namespaces.delete(pod.ns);
}

const emptySamples = (): ImplSamples => ({ add: [], del: [], requests: [], failures: 0 });

function fail(samples: ImplSamples, what: string, run: Exec): void {
  samples.failures++;
  samples.firstError ??= `${what} (${run.code}): ${run.stdout.slice(0, 400)} ${
    run.stderr.slice(-400)
  }`;
}

interface AddRecord {
  pod: BenchPod;
  start: number;
  end: number;
  samples: ImplSamples;
}

/** The requests of one ADD in the server's log (see the report's definition). */
function countRequests(log: ReturnType<TestApiServer["requests"]>, a: AddRecord): RequestCount {
  const c: RequestCount = {
    podGet: 0,
    nadGet: 0,
    statusWrite: 0,
    events: 0,
    other: 0,
    critical: 0,
  };
  const podPath = `/namespaces/${NS}/pods/${a.pod.name}`;
  for (const r of log) {
    if (r.verb === "list" || r.verb === "watch") continue;
    if (r.time < a.start || r.time >= (a.pod.delStart ?? Infinity)) continue;
    const during = r.time <= a.end;
    const body = r.body as { involvedObject?: { name?: string } } | undefined;
    if (r.path.endsWith("/events")) {
      if (body?.involvedObject?.name === a.pod.name) c.events++;
      continue;
    }
    if (r.path.includes("network-attachment-definitions/")) {
      if (during) {
        c.nadGet++;
        c.critical++;
      }
      continue;
    }
    if (r.path === `/api/v1${podPath}` || r.path === `/api/v1${podPath}/status`) {
      if (r.path.endsWith("/status")) c.statusWrite++;
      else if (r.method === "GET") c.podGet++;
      else c.other++;
      if (during) c.critical++;
    }
  }
  return c;
}

async function addOne(b: Bench, impl: Impl, samples: ImplSamples, networks: number, tag: string) {
  const pod = await newPod(b, tag, networks);
  const run = await impl.add(pod);
  if (run.code !== 0) {
    fail(samples, "ADD", run);
    return { pod, failed: true, record: undefined };
  }
  samples.add.push(run.ms);
  return { pod, failed: false, record: { pod, start: run.start, end: run.end, samples } };
}

async function delOne(b: Bench, impl: Impl, samples: ImplSamples, pod: BenchPod) {
  pod.delStart = Date.now();
  const run = await impl.del(pod);
  if (run.code !== 0) fail(samples, "DEL", run);
  else samples.del.push(run.ms);
  await dropPod(b, pod);
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const loads: number[] = [];
async function sampleLoad(): Promise<number> {
  const load = Number((await Deno.readTextFile("/proc/loadavg")).split(" ")[0]);
  loads.push(load);
  return load;
}

const TAGS: Record<ImplId, string> = {
  oursThin: "ot",
  oursThinSource: "os",
  oursDaemon: "od",
  goThin: "gt",
  goThick: "gk",
  floor: "fl",
};

/** One scenario: every implementation, `PODS` pods each. */
async function scenario(
  b: Bench,
  impls: Impl[],
  networks: number,
  arrival: Arrival,
): Promise<Scenario> {
  const result: Scenario = { networks, arrival, impls: {} };
  for (const impl of impls) result.impls[impl.id] = emptySamples();
  const adds: AddRecord[] = [];
  b.api.clearRequests();
  const tag = (impl: Impl) => `${TAGS[impl.id]}-n${networks}-${arrival === "spaced" ? "s" : "b"}`;
  if (arrival === "spaced") {
    const live = new Map<ImplId, BenchPod[]>(impls.map((i) => [i.id, []]));
    for (let round = 0; round < PODS; round++) {
      const started = performance.now();
      const order = impls.map((_, k) => impls[(k + round) % impls.length]);
      for (const impl of order) {
        const samples = result.impls[impl.id]!;
        const added = await addOne(b, impl, samples, networks, tag(impl));
        if (added.record) adds.push(added.record);
        live.get(impl.id)!.push(added.pod);
      }
      await sleep(Math.max(0, SPACING_MS - (performance.now() - started)));
    }
    for (let round = 0; round < PODS; round++) {
      const started = performance.now();
      const order = impls.map((_, k) => impls[(k + round) % impls.length]);
      for (const impl of order) {
        await delOne(b, impl, result.impls[impl.id]!, live.get(impl.id)![round]);
      }
      await sleep(Math.max(0, SPACING_MS - (performance.now() - started)));
    }
  } else {
    for (const impl of impls) {
      const samples = result.impls[impl.id]!;
      const pods: BenchPod[] = [];
      for (let i = 0; i < PODS; i++) {
        const added = await addOne(b, impl, samples, networks, tag(impl));
        if (added.record) adds.push(added.record);
        pods.push(added.pod);
      }
      for (const pod of pods) await delOne(b, impl, samples, pod);
    }
  }
  // Events queued behind a client-side rate limit land after their ADD returned.
  await sleep(QUICK ? 500 : 2_000);
  const log = b.api.requests();
  for (const a of adds) a.samples.requests.push(countRequests(log, a));
  b.api.clearRequests();
  const load = await sampleLoad();
  for (const impl of impls) {
    const s = result.impls[impl.id]!;
    const add = stats(s.add);
    progress(
      `  ${networks} networks, ${arrival}, ${IMPL_LABELS[impl.id]}: ADD ${
        add ? `${add.median.toFixed(0)} / ${add.p90.toFixed(0)}` : "–"
      } ms${s.failures ? `, ${s.failures} failed: ${s.firstError}` : ""} (load ${load})`,
    );
  }
  return result;
}

/** VmRSS and VmHWM of a process, in MiB. */
async function memoryOf(pid: number): Promise<{ rss: number; hwm: number }> {
  const text = await Deno.readTextFile(`/proc/${pid}/status`);
  const kb = (key: string) => Number(new RegExp(`${key}:\\s+(\\d+)`).exec(text)?.[1] ?? NaN);
  return { rss: kb("VmRSS") / 1024, hwm: kb("VmHWM") / 1024 };
}

/** Idle RSS: after a pause, the lowest of a few readings a second apart. */
async function idleRss(pid: number): Promise<number> {
  await sleep(QUICK ? 1_000 : 3_000);
  let low = Infinity;
  for (let i = 0; i < 3; i++) {
    low = Math.min(low, (await memoryOf(pid)).rss);
    await sleep(1_000);
  }
  return low;
}

/** `BURST` pods added at once through the daemon's shim, then deleted at once. */
async function burst(b: Bench, impl: Impl, daemon: Daemon, figures: DaemonFigures) {
  const pods = await Promise.all(
    Array.from({ length: BURST }, () => newPod(b, `${TAGS[impl.id]}-burst`, 1)),
  );
  await Deno.writeTextFile(`/proc/${daemon.pid}/clear_refs`, "5");
  let peak = 0;
  let sampling = true;
  const sampler = (async () => {
    while (sampling) {
      peak = Math.max(peak, (await memoryOf(daemon.pid)).rss);
      await sleep(50);
    }
  })();
  try {
    let t0 = performance.now();
    const added = await Promise.all(pods.map((pod) => impl.add(pod)));
    figures.burstAddMs = performance.now() - t0;
    t0 = performance.now();
    const deleted = await Promise.all(pods.map((pod) => impl.del(pod)));
    figures.burstDelMs = performance.now() - t0;
    figures.burstFailures = [...added, ...deleted].filter((r) => r.code !== 0).length;
    const failedRun = [...added, ...deleted].find((r) => r.code !== 0);
    if (failedRun) print(`    a burst call failed: ${failedRun.stdout.slice(0, 300)}`);
  } finally {
    sampling = false;
    await sampler;
    for (const pod of pods) await dropPod(b, pod);
  }
  figures.burstPeakMiB = Math.max(peak, (await memoryOf(daemon.pid)).hwm);
}

/**
 * The shim's own cost: ADDs through the shim and the same requests sent by the bench on the
 * daemon's socket, interleaved pod by pod (1 network).
 */
async function shimStartup(
  b: Bench,
  impl: Impl,
  daemon: Daemon,
  shimConf: string,
  figures: DaemonFigures,
  shimBinary: string,
) {
  const viaShim: number[] = [];
  const direct: number[] = [];
  for (let i = 0; i < SHIM_SAMPLES; i++) {
    // Spaced, so that Go's daemon's 5 requests/s limit has refilled before each timed ADD.
    await sleep(SHIM_PAUSE_MS);
    const pod = await newPod(b, `${TAGS[impl.id]}-shim`, 1);
    const run = await impl.add(pod);
    if (run.code === 0) viaShim.push(run.ms);
    await impl.del(pod);
    await dropPod(b, pod);
    await sleep(SHIM_PAUSE_MS);
    const pod2 = await newPod(b, `${TAGS[impl.id]}-sock`, 1);
    const call = cniEnv("ADD", pod2);
    const env: Record<string, string> = {
      CNI_COMMAND: "ADD",
      CNI_CONTAINERID: call.containerId!,
      CNI_NETNS: call.netns!,
      CNI_IFNAME: "eth0",
      CNI_ARGS: call.args!,
      CNI_PATH: SYSTEM_CNI_DIR,
    };
    const body = encoder.encode(JSON.stringify({ env, config: btoa(shimConf) }));
    const t0 = performance.now();
    const res = await unixHttpRequest({
      socketPath: join(daemon.socketDir, "multus.sock"),
      method: "POST",
      path: "/cni",
      headers: { "Content-Type": "application/json" },
      body,
      acceptTimeoutMs: 10_000,
      responseTimeoutMs: 120_000,
      deadline: cancellableDeadline,
    });
    const ms = performance.now() - t0;
    if (res.status === 200) direct.push(ms);
    else {
      figures.shimNote ??= `${IMPL_LABELS[impl.id]}: the daemon answered ${res.status} ${
        res.headers.get("x-multus-fallback") ?? ""
      } to a Kubernetes-mode request: shim start-up not measured`;
    }
    await impl.del(pod2);
    await dropPod(b, pod2);
  }
  const versions: number[] = [];
  for (let i = 0; i < SHIM_SAMPLES; i++) {
    versions.push((await timed(shimBinary, { command: "VERSION", config: "" })).ms);
  }
  figures.shimVersionMs = stats(versions)?.median;
  if (direct.length && viaShim.length) {
    figures.shimAddMs = stats(viaShim)!.median;
    figures.directAddMs = stats(direct)!.median;
  }
}

async function machine(): Promise<Record<string, string>> {
  const cpuinfo = await Deno.readTextFile("/proc/cpuinfo");
  const meminfo = await Deno.readTextFile("/proc/meminfo");
  const kb = Number(/MemTotal:\s+(\d+)/.exec(meminfo)?.[1] ?? 0);
  return {
    nproc: (await sh(["nproc"])).trim(),
    cpu: /model name\s*:\s*(.+)/.exec(cpuinfo)?.[1]?.trim() ?? "unknown",
    memory: `${(kb / 1024 / 1024).toFixed(1)} GiB`,
    kernel: Deno.osRelease(),
    deno: `${Deno.version.deno} (V8 ${Deno.version.v8})`,
  };
}

async function countLines(path: string): Promise<number> {
  try {
    return (await Deno.readTextFile(path)).split("\n").filter((l) => l.trim()).length;
  } catch {
    return 0;
  }
}

async function run(): Promise<PeersResults> {
  const host = await machine();
  await sampleLoad();
  progress(`Setting up (bundling ours, unpacking Go Multus v4.0.2, the test API server)...`);
  const b = await setup();
  b.api.inject({ kind: "latency", ms: API_LATENCY_MS });
  const notes: string[] = [];

  const goThin = binaryImpl(
    "goThin",
    join(b.peers, "multus"),
    thinConf(b, join(b.work, "cache-go-thin")),
  );
  const oursThin = binaryImpl("oursThin", b.ours, thinConf(b, join(b.work, "cache-ours-thin")));
  const oursSource = binaryImpl(
    "oursThinSource",
    join(REPO_ROOT, "scripts", "dev-multus"),
    thinConf(b, join(b.work, "cache-ours-source")),
  );
  const floor = floorImpl(b);
  progress("Starting the daemons...");
  const ours = await oursDaemon(b);
  const go = await goDaemon(b);
  // Our daemon's caches: its pod and NAD watches (none before it has Kubernetes mode).
  for (let i = 0; i < 50 && b.api.openWatches() < 2; i++) await sleep(100);
  if (b.api.openWatches() < 2) {
    notes.push(
      "Our daemon opened no pod and NAD watches: it has no Kubernetes mode in this build, so it declined every Kubernetes-mode request and our shim ran them itself (thin fallback).",
    );
  }

  const all = [oursThin, oursSource, ours.impl, goThin, go.impl, floor];
  progress("Warming up...");
  for (const impl of all) {
    for (let i = 0; i < 2; i++) {
      const pod = await newPod(b, `${TAGS[impl.id]}-warm`, 1);
      const added = await impl.add(pod);
      if (added.code !== 0) {
        throw new Error(
          `${IMPL_LABELS[impl.id]}: warm-up ADD failed: ${added.stdout} ${
            added.stderr.slice(-1500)
          }`,
        );
      }
      await impl.del(pod);
      await dropPod(b, pod);
    }
  }
  const oursFigures = { burstFailures: 0 } as DaemonFigures;
  const goFigures = { burstFailures: 0 } as DaemonFigures;
  progress("Idle RSS...");
  [oursFigures.idleRssMiB, goFigures.idleRssMiB] = await Promise.all([
    idleRss(ours.daemon.pid),
    idleRss(go.daemon.pid),
  ]);
  print(
    `  ours ${oursFigures.idleRssMiB.toFixed(1)} MiB, Go ${goFigures.idleRssMiB.toFixed(1)} MiB`,
  );

  const scenarios: Scenario[] = [];
  for (const networks of NETWORKS) {
    progress(`${networks} networks, spaced (${SPACING_MS} ms rounds)...`);
    // The launcher from source only at 1 network: like with like for the thin start-up.
    const spaced = networks === 1 ? all : all.filter((i) => i !== oursSource);
    scenarios.push(await scenario(b, spaced, networks, "spaced"));
    progress(`${networks} networks, back to back...`);
    // Back to back: the thin and daemon modes, each implementation's pods in a row.
    const order = [oursThin, ours.impl, goThin, go.impl];
    scenarios.push(
      await scenario(b, networks % 2 ? order : [...order].reverse(), networks, "back-to-back"),
    );
  }

  progress("Idle RSS after the scenarios...");
  [oursFigures.idleAfterRssMiB, goFigures.idleAfterRssMiB] = await Promise.all([
    idleRss(ours.daemon.pid),
    idleRss(go.daemon.pid),
  ]);
  progress("Shim start-up...");
  await shimStartup(b, ours.impl, ours.daemon, ours.shimConf, oursFigures, b.oursShim);
  await shimStartup(b, go.impl, go.daemon, go.shimConf, goFigures, join(b.peers, "multus-shim"));
  progress(`Burst of ${BURST} pods...`);
  await burst(b, ours.impl, ours.daemon, oursFigures);
  await sampleLoad();
  await burst(b, go.impl, go.daemon, goFigures);
  await sampleLoad();

  const fallbacks = await countLines(join(ours.daemon.socketDir, "fallbacks.log"));
  const oursDaemonRequests = calls.get("oursDaemon") ?? 0;
  return {
    command: `scripts/bench-peers${args.length ? ` ${args.join(" ")}` : ""}`,
    date: new Date().toISOString().slice(0, 16).replace("T", " ") + " UTC",
    quick: QUICK,
    host,
    pods: PODS,
    spacingMs: SPACING_MS,
    apiLatencyMs: API_LATENCY_MS,
    burstPods: BURST,
    backgroundPods: BACKGROUND_PODS,
    backgroundNads: BACKGROUND_NADS,
    loads,
    durationS: (performance.now() - began) / 1000,
    scenarios,
    daemons: { oursDaemon: oursFigures, goThick: goFigures },
    oursFallbacks: fallbacks,
    oursDaemonRequests,
    oursProgram:
      "the bundled program (`deno bundle`, what `deno compile --bundle` embeds) run by `deno run` with the release permission flags; `deno compile` cannot run here (its runtime, denort, is not cached and dl.deno.land is unreachable)",
    notes,
  };
}

async function main(): Promise<number> {
  if (Deno.uid() !== 0) {
    Deno.stderr.writeSync(encoder.encode("scripts/bench-peers must run as root\n"));
    return 1;
  }
  // The run stops at its next pod (the calls under way finish), then cleans up; cleaning up
  // while it went on would race the pods it still made.
  const onSignal = () => {
    if (interrupted) return;
    interrupted = true;
    Deno.stderr.writeSync(encoder.encode("interrupted: stopping at the next pod, cleaning up\n"));
    setTimeout(() => cleanupAll().finally(() => Deno.exit(130)), 120_000);
  };
  Deno.addSignalListener("SIGINT", onSignal);
  Deno.addSignalListener("SIGTERM", onSignal);
  try {
    const results = await run();
    await cleanupAll();
    await Deno.writeTextFile(OUT, reportDoc(results));
    await new Deno.Command(Deno.execPath(), { args: ["fmt", "--quiet", OUT], cwd: REPO_ROOT })
      .output();
    print();
    print(targetsTable(results));
    print();
    print(latencyTable(results));
    print();
    print(daemonTable(results));
    print();
    print(`Wrote ${OUT}`);
    return 0;
  } catch (err) {
    if (interrupted) return 130;
    Deno.stderr.writeSync(
      encoder.encode(`scripts/bench-peers: ${err instanceof Error ? err.stack : err}\n`),
    );
    return 1;
  } finally {
    await cleanupAll();
  }
}

if (import.meta.main) Deno.exit(await main());
